DROP TABLE chatwoot_connections;
