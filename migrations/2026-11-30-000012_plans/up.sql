-- Plans: price and what they grant. `limits` maps `max_*` names to a number or null
-- (unlimited; a missing name is unlimited too); `features` maps feature names to booleans
-- (a missing name is off).
CREATE TABLE plans (
    id          TEXT        PRIMARY KEY CONSTRAINT plans_id_check CHECK (id ~ '^[a-z0-9_-]{1,40}$'),
    name        TEXT        NOT NULL,
    price_cents BIGINT      NOT NULL CONSTRAINT plans_price_check CHECK (price_cents >= 0),
    limits      JSONB       NOT NULL DEFAULT '{}',
    features    JSONB       NOT NULL DEFAULT '{}',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

SELECT hub_manage_updated_at('plans');

INSERT INTO plans (id, name, price_cents, limits, features) VALUES
('trial', 'Trial', 0,
 '{"max_agents": 5, "max_teams": 2, "max_inboxes": 3, "max_providers": 2, "max_instances": 3,
   "max_boards": 2, "max_rooms": 5, "max_messages_per_month": 2000}',
 '{"kanban": true, "internal_chat": true, "providers": true, "api_access": true, "embed": true}'),
('starter', 'Starter', 9900,
 '{"max_agents": 10, "max_teams": 5, "max_inboxes": 5, "max_providers": 2, "max_instances": 5,
   "max_boards": 5, "max_rooms": 20, "max_messages_per_month": 20000}',
 '{"kanban": true, "internal_chat": true, "providers": true, "api_access": false, "embed": true}'),
('pro', 'Pro', 29900,
 '{"max_agents": 50, "max_teams": 25, "max_inboxes": 30, "max_providers": 10, "max_instances": 30,
   "max_boards": 50, "max_rooms": 200, "max_messages_per_month": null}',
 '{"kanban": true, "internal_chat": true, "providers": true, "api_access": true, "embed": true}');
