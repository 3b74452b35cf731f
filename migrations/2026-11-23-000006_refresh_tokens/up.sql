-- Refresh tokens, stored only as hashes, each bound to a session and rotated on every use.
-- `successor_hash` is the hash of the token that replaced this one (set with `used_at`).
CREATE TABLE refresh_tokens (
    id             UUID        PRIMARY KEY,
    session_id     UUID        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_hash     BYTEA       NOT NULL CONSTRAINT refresh_tokens_token_hash_key UNIQUE,
    parent_id      UUID        REFERENCES refresh_tokens (id) ON DELETE CASCADE,
    successor_hash BYTEA,
    used_at        TIMESTAMPTZ,
    expires_at     TIMESTAMPTZ NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_parent_id_idx ON refresh_tokens (parent_id);
