-- The inbox mirror: Chatwoot's inboxes of each account as the last sync saw them, keyed by the
-- Hub's own id and unique per Chatwoot id. Inboxes gone from Chatwoot keep their row
-- (`removed_at`) for history. `first_seen_at` orders who keeps service when the plan's
-- `max_inboxes` is exceeded: the oldest keep it, the others are flagged `over_quota` by the sync.
CREATE TABLE inboxes (
    account_id        BIGINT      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id                UUID        NOT NULL,
    chatwoot_inbox_id BIGINT      NOT NULL,
    name              TEXT        NOT NULL,
    channel_type      TEXT        NOT NULL,
    over_quota        BOOLEAN     NOT NULL DEFAULT false,
    first_seen_at     TIMESTAMPTZ NOT NULL,
    last_synced_at    TIMESTAMPTZ NOT NULL,
    removed_at        TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT inboxes_pkey PRIMARY KEY (account_id, id),
    CONSTRAINT inboxes_account_id_chatwoot_inbox_id_key UNIQUE (account_id, chatwoot_inbox_id)
);
