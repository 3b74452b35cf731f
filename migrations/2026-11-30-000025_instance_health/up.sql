-- The current health of each live instance (kept apart from the instance: it changes on every
-- probe), what the health machine needs besides a new observation (consecutive failed probes,
-- the last provider event), when the scheduler probes it next, and a compare-and-set `version`.
-- The row is removed when its instance is deleted, which stops its probes.
--
-- The index on `next_check_at` serves the health scheduler, a platform job that claims due
-- instances across accounts; tenant reads go through the primary key.
CREATE TABLE instance_health (
    account_id           BIGINT      NOT NULL,
    instance_id          UUID        NOT NULL,
    state                TEXT        NOT NULL DEFAULT 'unknown'
                                     CONSTRAINT instance_health_state_check
                                     CHECK (state IN ('unknown', 'healthy', 'degraded', 'down')),
    checked_at           TIMESTAMPTZ,
    latency_ms           BIGINT,
    reason               TEXT,
    consecutive_failures INTEGER     NOT NULL DEFAULT 0,
    last_event_at        TIMESTAMPTZ,
    last_event_type      TEXT,
    next_check_at        TIMESTAMPTZ NOT NULL,
    version              BIGINT      NOT NULL DEFAULT 1,
    CONSTRAINT instance_health_pkey PRIMARY KEY (account_id, instance_id),
    CONSTRAINT instance_health_instance_fkey FOREIGN KEY (account_id, instance_id)
        REFERENCES provider_instances (account_id, id) ON DELETE CASCADE
);

CREATE INDEX instance_health_next_check_at_idx ON instance_health (next_check_at);
