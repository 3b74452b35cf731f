-- The plan of each account and its per-account overrides (set by a super_admin). An account
-- without a row is on the trial plan.
CREATE TABLE account_entitlements (
    account_id        BIGINT      PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    plan_id           TEXT        NOT NULL REFERENCES plans (id),
    limit_overrides   JSONB       NOT NULL DEFAULT '{}',
    feature_overrides JSONB       NOT NULL DEFAULT '{}',
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX account_entitlements_plan_idx ON account_entitlements (plan_id);

SELECT hub_manage_updated_at('account_entitlements');
