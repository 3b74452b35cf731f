-- Billing record of each account (a missing row means `trialing`). `version` guards
-- concurrent read-modify-write cycles (API calls, webhook processing, sweeps).
CREATE TABLE billing_accounts (
    account_id           BIGINT      PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    status               TEXT        NOT NULL DEFAULT 'trialing'
                         CONSTRAINT billing_accounts_status_check CHECK (status IN
                         ('trialing', 'pending', 'active', 'past_due', 'restricted', 'canceled')),
    plan_id              TEXT        REFERENCES plans (id),
    pending_plan_id      TEXT        REFERENCES plans (id),
    customer_id          TEXT,
    subscription_id      TEXT        CONSTRAINT billing_accounts_subscription_key UNIQUE,
    next_due_date        DATE,
    cancel_at_period_end BOOLEAN     NOT NULL DEFAULT false,
    past_due_since       TIMESTAMPTZ,
    last_paid_due_date   DATE,
    version              BIGINT      NOT NULL DEFAULT 1,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);

SELECT hub_manage_updated_at('billing_accounts');
