-- Reservation counters behind quota checks: one row per account, resource and period
-- ('' for live objects, 'YYYY-MM' for monthly resources). A reservation is a single
-- conditional upsert, so concurrent creates never overshoot a limit.
CREATE TABLE quota_counters (
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    resource   TEXT   NOT NULL,
    period     TEXT   NOT NULL DEFAULT '',
    used       BIGINT NOT NULL DEFAULT 0 CONSTRAINT quota_counters_used_check CHECK (used >= 0),
    PRIMARY KEY (account_id, resource, period)
);
