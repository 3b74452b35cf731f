-- Instances of a provider (one WhatsApp session each): the name at the provider, the Hub inbox
-- it serves (at most one live instance per inbox), its own sealed credentials, and the SHA-256
-- of its webhook token (the token is shown once). Children point at their parents through
-- (account_id, id) keys, so an instance can never hang under another account's provider or
-- inbox. `id` alone is unique too: a provider webhook's URL carries only the instance id.
CREATE TABLE provider_instances (
    account_id         BIGINT      NOT NULL,
    id                 UUID        NOT NULL,
    provider_id        UUID        NOT NULL,
    name               TEXT        NOT NULL
                                   CONSTRAINT provider_instances_name_check
                                   CHECK (char_length(name) BETWEEN 1 AND 200),
    inbox_id           UUID,
    sealed_credentials TEXT,
    credential_keys    TEXT[]      NOT NULL DEFAULT '{}',
    webhook_token_hash BYTEA       NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at         TIMESTAMPTZ,
    CONSTRAINT provider_instances_pkey PRIMARY KEY (account_id, id),
    CONSTRAINT provider_instances_provider_fkey FOREIGN KEY (account_id, provider_id)
        REFERENCES providers (account_id, id) ON DELETE CASCADE,
    CONSTRAINT provider_instances_inbox_fkey FOREIGN KEY (account_id, inbox_id)
        REFERENCES inboxes (account_id, id)
);

CREATE UNIQUE INDEX provider_instances_id_key ON provider_instances (id);
CREATE INDEX provider_instances_account_id_provider_id_idx
    ON provider_instances (account_id, provider_id);
CREATE UNIQUE INDEX provider_instances_account_id_inbox_id_key
    ON provider_instances (account_id, inbox_id)
    WHERE inbox_id IS NOT NULL AND deleted_at IS NULL;

SELECT hub_manage_updated_at('provider_instances');
