-- WhatsApp providers an account registered: type, label, base URL (vetted by the SSRF guard when
-- stored) and credentials, sealed with HUB_DATA_KEYS and bound to the provider (only their key
-- names are readable). A deleted provider keeps a tombstone (`deleted_at`), so deleting it again
-- is answered without effect and its history stays consistent.
CREATE TABLE providers (
    account_id         BIGINT      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id                 UUID        NOT NULL,
    provider_type      TEXT        NOT NULL
                                   CONSTRAINT providers_provider_type_check
                                   CHECK (provider_type IN
                                          ('evolution', 'zapi', 'wppconnect', 'uazapi', 'whatsapp_cloud')),
    name               TEXT        NOT NULL
                                   CONSTRAINT providers_name_check
                                   CHECK (char_length(name) BETWEEN 1 AND 100),
    base_url           TEXT        NOT NULL,
    sealed_credentials TEXT        NOT NULL,
    credential_keys    TEXT[]      NOT NULL DEFAULT '{}',
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at         TIMESTAMPTZ,
    CONSTRAINT providers_pkey PRIMARY KEY (account_id, id)
);

SELECT hub_manage_updated_at('providers');
