DROP TABLE instance_health_events;
