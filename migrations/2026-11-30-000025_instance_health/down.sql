DROP TABLE instance_health;
