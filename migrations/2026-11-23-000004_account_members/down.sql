DROP TABLE IF EXISTS account_members;
