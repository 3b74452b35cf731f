//! A textual description of the database schema, built from the catalog, used to prove that
//! migrations are reversible (up, down, up gives the same schema).

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::DbError;

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

const DUMP_SQL: &str = r"
SELECT 'table ' || c.relname || ' ' || c.relkind::text AS line
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relname NOT LIKE '\_\_diesel\_schema\_migrations%'
UNION ALL
SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' null=' ||
       is_nullable || ' default=' || coalesce(column_default, '')
  FROM information_schema.columns
 WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'
UNION ALL
SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' ||
       pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
   AND conrelid::regclass::text <> '__diesel_schema_migrations'
UNION ALL
SELECT 'index ' || indexdef FROM pg_indexes
 WHERE schemaname = 'public' AND tablename <> '__diesel_schema_migrations'
UNION ALL
SELECT 'function ' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') ' ||
       md5(p.prosrc)
  FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
UNION ALL
SELECT 'trigger ' || tgrelid::regclass::text || ' ' || tgname || ' ' || pg_get_triggerdef(oid)
  FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'type ' || t.typname || ' ' || t.typtype::text
  FROM pg_type t
 WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd', 'c')
   AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.reltype = t.oid)
UNION ALL
SELECT 'enum ' || t.typname || ' ' || e.enumlabel
  FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
 WHERE t.typnamespace = 'public'::regnamespace
UNION ALL
SELECT 'extension ' || extname FROM pg_extension
ORDER BY 1";

/// Lists the tables, columns, constraints, indexes, functions, triggers and types of the
/// `public` schema as sorted lines (the migrations bookkeeping table is left out).
///
/// # Errors
/// `DbError::Query` when the catalog cannot be read.
pub async fn dump_schema(conn: &mut AsyncPgConnection) -> Result<Vec<String>, DbError> {
    let lines: Vec<Line> = diesel::sql_query(DUMP_SQL).load(conn).await?;
    Ok(lines.into_iter().map(|l| l.line).collect())
}
