-- Gateway webhook events, stored before they are acknowledged and processed from here (with
-- retries), de-duplicated by the gateway's event id. Not tenant data until processed: the
-- account is found from the payment or subscription re-read from the gateway.
CREATE TABLE billing_events (
    id              TEXT        PRIMARY KEY,
    event           TEXT        NOT NULL,
    payment_id      TEXT,
    subscription_id TEXT,
    body            JSONB       NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    claimed_until   TIMESTAMPTZ,
    attempts        INTEGER     NOT NULL DEFAULT 0,
    processed_at    TIMESTAMPTZ,
    outcome         TEXT,
    last_error      TEXT
);

CREATE INDEX billing_events_pending_idx ON billing_events (received_at) WHERE processed_at IS NULL;
