ALTER TABLE accounts DROP COLUMN IF EXISTS uninstalled_at;
