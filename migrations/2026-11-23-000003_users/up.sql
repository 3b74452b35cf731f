-- Chatwoot users who signed in to the Hub. The id is Chatwoot's user id; a user spans accounts.
CREATE TABLE users (
    id          BIGINT      PRIMARY KEY,
    email       TEXT        NOT NULL,
    name        TEXT        NOT NULL,
    super_admin BOOLEAN     NOT NULL DEFAULT false,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

SELECT hub_manage_updated_at('users');
