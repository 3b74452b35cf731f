-- Platform App events (install/uninstall of the Hub in an account) already applied, by the
-- sender's event id: a repeated id is acknowledged without a second effect.
CREATE TABLE platform_app_events (
    id          TEXT        PRIMARY KEY
                            CONSTRAINT platform_app_events_id_check
                            CHECK (char_length(id) BETWEEN 1 AND 200),
    event       TEXT        NOT NULL
                            CONSTRAINT platform_app_events_event_check
                            CHECK (event IN ('account.installed', 'account.uninstalled')),
    account_id  BIGINT      NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX platform_app_events_account_id_received_at_idx
    ON platform_app_events (account_id, received_at DESC);
