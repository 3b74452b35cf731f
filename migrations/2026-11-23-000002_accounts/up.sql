-- Chatwoot accounts: the Hub's tenants. The id is Chatwoot's account id.
CREATE TABLE accounts (
    id         BIGINT      PRIMARY KEY,
    name       TEXT        NOT NULL,
    status     TEXT        NOT NULL DEFAULT 'active'
                           CONSTRAINT accounts_status_check CHECK (status IN ('active', 'suspended')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

SELECT hub_manage_updated_at('accounts');
