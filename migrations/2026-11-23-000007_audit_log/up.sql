-- The audit log. `account_id` NULL marks a platform-level event (e.g. a failed login of an
-- unknown user). Ids are UUID v7, so `id DESC` is newest first.
CREATE TABLE audit_log (
    id         UUID        PRIMARY KEY,
    account_id BIGINT      REFERENCES accounts (id) ON DELETE CASCADE,
    actor_type TEXT        NOT NULL
                           CONSTRAINT audit_log_actor_type_check
                           CHECK (actor_type IN ('user', 'api_key', 'system')),
    actor_id   TEXT,
    action     TEXT        NOT NULL,
    target     TEXT,
    metadata   JSONB       NOT NULL DEFAULT '{}',
    request_id TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX audit_log_account_id_id_idx ON audit_log (account_id, id DESC);
CREATE INDEX audit_log_account_id_action_id_idx ON audit_log (account_id, action, id DESC);
