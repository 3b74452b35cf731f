-- The Chatwoot connection of an account: the personal API token of one of its administrators
-- (checked with Chatwoot when stored), sealed with HUB_DATA_KEYS and bound to the account (it is
-- never stored in clear), used for server-to-server calls such as the inbox sync.
--
-- `sync_lease_until` serialises the inbox syncs of an account across Hub instances: a sync takes
-- the lease with one conditional UPDATE and frees it when done; the lease of a process that died
-- mid-sync expires on its own. `updated_at` is set when the token is replaced (no trigger: the
-- lease columns change on every sync).
CREATE TABLE chatwoot_connections (
    account_id         BIGINT      PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    sealed_token       TEXT        NOT NULL,
    chatwoot_user_id   BIGINT      NOT NULL,
    chatwoot_user_name TEXT        NOT NULL,
    verified_at        TIMESTAMPTZ NOT NULL,
    sync_lease_until   TIMESTAMPTZ,
    last_sync_at       TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
