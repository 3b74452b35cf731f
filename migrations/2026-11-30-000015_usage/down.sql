DROP TABLE usage_active_users;
DROP TABLE usage_daily;
ALTER TABLE accounts DROP COLUMN time_zone;
