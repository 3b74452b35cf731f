-- API keys of an account (server-to-server credentials). The key `whp_<prefix>_<secret>` is
-- shown once; the secret is stored only as an argon2id PHC string and found by its unique
-- prefix. A key acts with its creator's current role in the account, narrowed by `scopes`.
CREATE TABLE api_keys (
    account_id   BIGINT      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id           UUID        NOT NULL,
    prefix       TEXT        NOT NULL CONSTRAINT api_keys_prefix_key UNIQUE,
    secret_hash  TEXT        NOT NULL,
    name         TEXT        NOT NULL
                             CONSTRAINT api_keys_name_check
                             CHECK (char_length(name) BETWEEN 1 AND 100),
    scopes       TEXT[]      NOT NULL,
    created_by   BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    rotated_at   TIMESTAMPTZ,
    CONSTRAINT api_keys_pkey PRIMARY KEY (id),
    CONSTRAINT api_keys_account_id_id_key UNIQUE (account_id, id)
);

CREATE INDEX api_keys_account_id_created_by_idx ON api_keys (account_id, created_by);
