DROP TABLE quota_counters;
