DROP FUNCTION hub_reserve_quota(BIGINT, TEXT, TEXT);
