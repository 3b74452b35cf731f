DROP TABLE inboxes;
