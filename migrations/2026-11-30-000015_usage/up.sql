-- Usage metering. Days are local dates in the account's IANA time zone (UTC by default).
ALTER TABLE accounts ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';

CREATE TABLE usage_daily (
    account_id            BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    day                   DATE   NOT NULL,
    messages_sent         BIGINT NOT NULL DEFAULT 0,
    conversations_touched BIGINT NOT NULL DEFAULT 0,
    webhooks_processed    BIGINT NOT NULL DEFAULT 0,
    api_calls             BIGINT NOT NULL DEFAULT 0,
    active_users          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, day)
);

CREATE INDEX usage_daily_day_idx ON usage_daily (day);

-- Distinct users active per account and local day (DAU/WAU/MAU are counted from here).
CREATE TABLE usage_active_users (
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    day        DATE   NOT NULL,
    user_id    BIGINT NOT NULL,
    PRIMARY KEY (account_id, day, user_id)
);
