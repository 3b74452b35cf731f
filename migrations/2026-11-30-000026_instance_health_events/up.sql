-- Every health transition of an instance (the first entry, `unknown`, when it is created), for
-- the history endpoint. Each transition is also audited as `provider.health_changed`.
CREATE TABLE instance_health_events (
    account_id     BIGINT      NOT NULL,
    id             UUID        NOT NULL,
    instance_id    UUID        NOT NULL,
    state          TEXT        NOT NULL
                               CONSTRAINT instance_health_events_state_check
                               CHECK (state IN ('unknown', 'healthy', 'degraded', 'down')),
    previous_state TEXT
                               CONSTRAINT instance_health_events_previous_state_check
                               CHECK (previous_state IN ('unknown', 'healthy', 'degraded', 'down')),
    reason         TEXT,
    latency_ms     BIGINT,
    source         TEXT        NOT NULL
                               CONSTRAINT instance_health_events_source_check
                               CHECK (source IN ('created', 'probe', 'webhook')),
    created_at     TIMESTAMPTZ NOT NULL,
    CONSTRAINT instance_health_events_pkey PRIMARY KEY (account_id, id),
    CONSTRAINT instance_health_events_instance_fkey FOREIGN KEY (account_id, instance_id)
        REFERENCES provider_instances (account_id, id) ON DELETE CASCADE
);

CREATE INDEX instance_health_events_account_id_instance_id_id_idx
    ON instance_health_events (account_id, instance_id, id);
