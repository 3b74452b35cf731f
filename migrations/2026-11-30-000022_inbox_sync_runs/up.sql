-- Every inbox sync of an account (manual or scheduled): when it ran, what it did, why it failed.
-- A failed run left the mirror as it was. Runs still `running` when a later sync takes the
-- account's lease were abandoned by a process that stopped; that sync marks them failed.
CREATE TABLE inbox_sync_runs (
    account_id   BIGINT      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id           UUID        NOT NULL,
    triggered_by TEXT        NOT NULL
                             CONSTRAINT inbox_sync_runs_triggered_by_check
                             CHECK (triggered_by IN ('manual', 'scheduled')),
    status       TEXT        NOT NULL
                             CONSTRAINT inbox_sync_runs_status_check
                             CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ,
    fetched      INTEGER     NOT NULL DEFAULT 0,
    added        INTEGER     NOT NULL DEFAULT 0,
    updated      INTEGER     NOT NULL DEFAULT 0,
    unchanged    INTEGER     NOT NULL DEFAULT 0,
    removed      INTEGER     NOT NULL DEFAULT 0,
    restored     INTEGER     NOT NULL DEFAULT 0,
    over_quota   INTEGER     NOT NULL DEFAULT 0,
    error        TEXT,
    CONSTRAINT inbox_sync_runs_pkey PRIMARY KEY (account_id, id)
);

CREATE INDEX inbox_sync_runs_account_id_started_at_idx ON inbox_sync_runs (account_id, started_at);
