DROP TABLE IF EXISTS instance_tokens;
