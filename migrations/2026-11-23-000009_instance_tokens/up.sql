-- Every issued instance token (the short-lived, origin-bound credential of the embedded UI),
-- so it can be revoked by `jti` before it expires. Rows past `expires_at` are dead weight and
-- may be deleted.
CREATE TABLE instance_tokens (
    jti        UUID        PRIMARY KEY,
    account_id BIGINT      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    origin     TEXT        NOT NULL,
    scopes     TEXT[]      NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);

CREATE INDEX instance_tokens_account_id_user_id_idx ON instance_tokens (account_id, user_id);
CREATE INDEX instance_tokens_expires_at_idx ON instance_tokens (expires_at);
