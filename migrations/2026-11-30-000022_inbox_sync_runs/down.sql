DROP TABLE inbox_sync_runs;
