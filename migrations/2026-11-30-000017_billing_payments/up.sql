-- Payments of an account's subscription as last read from the gateway.
CREATE TABLE billing_payments (
    account_id      BIGINT      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id              TEXT        NOT NULL,
    subscription_id TEXT,
    status          TEXT        NOT NULL,
    value_cents     BIGINT      NOT NULL,
    due_date        DATE,
    paid_at         DATE,
    deleted         BOOLEAN     NOT NULL DEFAULT false,
    invoice_url     TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id)
);

CREATE INDEX billing_payments_due_idx ON billing_payments (account_id, due_date DESC);

SELECT hub_manage_updated_at('billing_payments');
