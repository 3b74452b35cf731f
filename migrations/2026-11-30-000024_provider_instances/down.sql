DROP TABLE provider_instances;
