DROP TABLE IF EXISTS platform_app_events;
