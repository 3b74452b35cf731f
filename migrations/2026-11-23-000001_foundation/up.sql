-- Foundation: helpers that every later table uses.

-- Keeps `updated_at` current on every UPDATE of a table that opts in with
-- SELECT hub_manage_updated_at('table_name');
CREATE FUNCTION hub_set_updated_at() RETURNS trigger AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD AND NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION hub_manage_updated_at(_tbl regclass) RETURNS void AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER set_updated_at BEFORE UPDATE ON %s
                    FOR EACH ROW EXECUTE PROCEDURE hub_set_updated_at()', _tbl);
END;
$$ LANGUAGE plpgsql;
