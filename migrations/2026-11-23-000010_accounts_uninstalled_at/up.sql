-- An account whose Platform App installation was removed (`account.uninstalled`). Its data is
-- kept, but its members lose access until `account.installed` clears the mark. Chatwoot logins
-- never touch this column, so a login cannot bring an uninstalled account back.
ALTER TABLE accounts ADD COLUMN uninstalled_at TIMESTAMPTZ;
