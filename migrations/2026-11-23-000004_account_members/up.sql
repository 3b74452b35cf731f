-- Who belongs to which account, with the Chatwoot role and the Hub role. `role_overridden` is
-- true when a Hub admin set the role: the override is kept across logins while the Chatwoot
-- role stays the same, and dropped (back to the default for the Chatwoot role) when it changes.
CREATE TABLE account_members (
    account_id      BIGINT      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    user_id         BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            TEXT        NOT NULL
                                CONSTRAINT account_members_role_check
                                CHECK (role IN ('admin', 'supervisor', 'agent', 'viewer')),
    chatwoot_role   TEXT        NOT NULL
                                CONSTRAINT account_members_chatwoot_role_check
                                CHECK (chatwoot_role IN ('administrator', 'agent')),
    role_overridden BOOLEAN     NOT NULL DEFAULT false,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, user_id)
);

CREATE INDEX account_members_user_id_idx ON account_members (user_id);

SELECT hub_manage_updated_at('account_members');
