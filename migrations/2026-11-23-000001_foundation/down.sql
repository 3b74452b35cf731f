DROP FUNCTION IF EXISTS hub_manage_updated_at(regclass);
DROP FUNCTION IF EXISTS hub_set_updated_at();
