//! Diesel table definitions, written by hand to match `migrations/` (diesel_cli is not used).
//! [`schema_mismatches`] compares them with the live catalog, so a drift fails the tests.

use std::collections::{BTreeMap, BTreeSet};

use diesel::QueryableByName;
use diesel::pg::{Pg, PgMetadataLookup, PgTypeMetadata};
use diesel::sql_types::{BigInt, Bool, HasSqlType, SqlType, Text};
use diesel::{Column, Expression, Table};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::DbError;

diesel::table! {
    /// Chatwoot accounts (tenants); `id` is Chatwoot's account id.
    accounts (id) {
        id -> Int8,
        name -> Text,
        status -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        uninstalled_at -> Nullable<Timestamptz>,
        time_zone -> Text,
    }
}

diesel::table! {
    /// Chatwoot users who signed in; `id` is Chatwoot's user id.
    users (id) {
        id -> Int8,
        email -> Text,
        name -> Text,
        super_admin -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    /// Memberships of users in accounts, with both roles.
    account_members (account_id, user_id) {
        account_id -> Int8,
        user_id -> Int8,
        role -> Text,
        chatwoot_role -> Text,
        role_overridden -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    /// Hub sessions (user-level).
    sessions (id) {
        id -> Uuid,
        user_id -> Int8,
        user_agent -> Nullable<Text>,
        ip -> Nullable<Text>,
        sealed_credential -> Nullable<Text>,
        created_at -> Timestamptz,
        last_seen_at -> Timestamptz,
        idle_expires_at -> Timestamptz,
        absolute_expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    /// Refresh tokens (hashes only), bound to sessions.
    refresh_tokens (id) {
        id -> Uuid,
        session_id -> Uuid,
        token_hash -> Bytea,
        parent_id -> Nullable<Uuid>,
        successor_hash -> Nullable<Bytea>,
        used_at -> Nullable<Timestamptz>,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    /// The audit log; `account_id` NULL is a platform-level event.
    audit_log (id) {
        id -> Uuid,
        account_id -> Nullable<Int8>,
        actor_type -> Text,
        actor_id -> Nullable<Text>,
        action -> Text,
        target -> Nullable<Text>,
        metadata -> Jsonb,
        request_id -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    /// Platform App events already applied (de-duplication by the sender's event id).
    platform_app_events (id) {
        id -> Text,
        event -> Text,
        account_id -> Int8,
        received_at -> Timestamptz,
    }
}

diesel::table! {
    /// API keys of an account (secrets only as argon2id hashes).
    api_keys (id) {
        account_id -> Int8,
        id -> Uuid,
        prefix -> Text,
        secret_hash -> Text,
        name -> Text,
        scopes -> Array<Text>,
        created_by -> Int8,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        expires_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        rotated_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// Issued instance tokens (for revocation by `jti`).
    instance_tokens (jti) {
        jti -> Uuid,
        account_id -> Int8,
        user_id -> Int8,
        origin -> Text,
        scopes -> Array<Text>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// Plans: price, limits (`max_*` -> number or null) and feature flags.
    plans (id) {
        id -> Text,
        name -> Text,
        price_cents -> Int8,
        limits -> Jsonb,
        features -> Jsonb,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    /// Each account's plan and its overrides.
    account_entitlements (account_id) {
        account_id -> Int8,
        plan_id -> Text,
        limit_overrides -> Jsonb,
        feature_overrides -> Jsonb,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    /// Quota reservation counters per account, resource and period.
    quota_counters (account_id, resource, period) {
        account_id -> Int8,
        resource -> Text,
        period -> Text,
        used -> Int8,
    }
}

diesel::table! {
    /// Metered usage per account and local day.
    usage_daily (account_id, day) {
        account_id -> Int8,
        day -> Date,
        messages_sent -> Int8,
        conversations_touched -> Int8,
        webhooks_processed -> Int8,
        api_calls -> Int8,
        active_users -> Int8,
    }
}

diesel::table! {
    /// Distinct active users per account and local day.
    usage_active_users (account_id, day, user_id) {
        account_id -> Int8,
        day -> Date,
        user_id -> Int8,
    }
}

diesel::table! {
    /// Billing record of each account.
    billing_accounts (account_id) {
        account_id -> Int8,
        status -> Text,
        plan_id -> Nullable<Text>,
        pending_plan_id -> Nullable<Text>,
        customer_id -> Nullable<Text>,
        subscription_id -> Nullable<Text>,
        next_due_date -> Nullable<Date>,
        cancel_at_period_end -> Bool,
        past_due_since -> Nullable<Timestamptz>,
        last_paid_due_date -> Nullable<Date>,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    /// Payments as last read from the gateway.
    billing_payments (account_id, id) {
        account_id -> Int8,
        id -> Text,
        subscription_id -> Nullable<Text>,
        status -> Text,
        value_cents -> Int8,
        due_date -> Nullable<Date>,
        paid_at -> Nullable<Date>,
        deleted -> Bool,
        invoice_url -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    /// Gateway webhook events (stored, then processed).
    billing_events (id) {
        id -> Text,
        event -> Text,
        payment_id -> Nullable<Text>,
        subscription_id -> Nullable<Text>,
        body -> Jsonb,
        received_at -> Timestamptz,
        claimed_until -> Nullable<Timestamptz>,
        attempts -> Int4,
        processed_at -> Nullable<Timestamptz>,
        outcome -> Nullable<Text>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    /// Each account's Chatwoot connection (token sealed) and its inbox-sync lease.
    chatwoot_connections (account_id) {
        account_id -> Int8,
        sealed_token -> Text,
        chatwoot_user_id -> Int8,
        chatwoot_user_name -> Text,
        verified_at -> Timestamptz,
        sync_lease_until -> Nullable<Timestamptz>,
        last_sync_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    /// The inbox mirror of Chatwoot, per account.
    inboxes (account_id, id) {
        account_id -> Int8,
        id -> Uuid,
        chatwoot_inbox_id -> Int8,
        name -> Text,
        channel_type -> Text,
        over_quota -> Bool,
        first_seen_at -> Timestamptz,
        last_synced_at -> Timestamptz,
        removed_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    /// Inbox sync runs.
    inbox_sync_runs (account_id, id) {
        account_id -> Int8,
        id -> Uuid,
        triggered_by -> Text,
        status -> Text,
        started_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        fetched -> Int4,
        added -> Int4,
        updated -> Int4,
        unchanged -> Int4,
        removed -> Int4,
        restored -> Int4,
        over_quota -> Int4,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    /// WhatsApp providers of an account (credentials sealed; tombstoned on delete).
    providers (account_id, id) {
        account_id -> Int8,
        id -> Uuid,
        provider_type -> Text,
        name -> Text,
        base_url -> Text,
        sealed_credentials -> Text,
        credential_keys -> Array<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// Instances of a provider (webhook token stored as SHA-256; tombstoned on delete).
    provider_instances (account_id, id) {
        account_id -> Int8,
        id -> Uuid,
        provider_id -> Uuid,
        name -> Text,
        inbox_id -> Nullable<Uuid>,
        sealed_credentials -> Nullable<Text>,
        credential_keys -> Array<Text>,
        webhook_token_hash -> Bytea,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// Current health of each live instance and its next probe.
    instance_health (account_id, instance_id) {
        account_id -> Int8,
        instance_id -> Uuid,
        state -> Text,
        checked_at -> Nullable<Timestamptz>,
        latency_ms -> Nullable<Int8>,
        reason -> Nullable<Text>,
        consecutive_failures -> Int4,
        last_event_at -> Nullable<Timestamptz>,
        last_event_type -> Nullable<Text>,
        next_check_at -> Timestamptz,
        version -> Int8,
    }
}

diesel::table! {
    /// Health transitions of instances (history).
    instance_health_events (account_id, id) {
        account_id -> Int8,
        id -> Uuid,
        instance_id -> Uuid,
        state -> Text,
        previous_state -> Nullable<Text>,
        reason -> Nullable<Text>,
        latency_ms -> Nullable<Int8>,
        source -> Text,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(account_members -> accounts (account_id));
diesel::joinable!(account_members -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(audit_log -> accounts (account_id));
diesel::joinable!(api_keys -> accounts (account_id));
diesel::joinable!(api_keys -> users (created_by));
diesel::joinable!(instance_tokens -> accounts (account_id));
diesel::joinable!(instance_tokens -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    accounts,
    users,
    account_members,
    sessions,
    refresh_tokens,
    audit_log,
    platform_app_events,
    api_keys,
    instance_tokens,
    plans,
    account_entitlements,
    quota_counters,
    usage_daily,
    usage_active_users,
    billing_accounts,
    billing_payments,
    billing_events,
    chatwoot_connections,
    inboxes,
    inbox_sync_runs,
    providers,
    provider_instances,
    instance_health,
    instance_health_events,
);

/// One declared column: name, nullable, type OID.
type DeclaredColumn = (&'static str, bool, u32);

/// Whether a diesel SQL type is nullable.
trait NullFlag {
    const NULLABLE: bool;
}

impl NullFlag for diesel::sql_types::is_nullable::IsNullable {
    const NULLABLE: bool = true;
}

impl NullFlag for diesel::sql_types::is_nullable::NotNull {
    const NULLABLE: bool = false;
}

/// Resolves only built-in types; a custom type name yields OID 0 (reported as a mismatch).
struct BuiltinTypesOnly;

impl PgMetadataLookup for BuiltinTypesOnly {
    fn lookup_type(&mut self, _type_name: &str, _schema: Option<&str>) -> PgTypeMetadata {
        PgTypeMetadata::new(0, 0)
    }
}

fn describe_column<C>() -> DeclaredColumn
where
    C: Column + Expression,
    C::SqlType: SqlType,
    <C::SqlType as SqlType>::IsNull: NullFlag,
    Pg: HasSqlType<C::SqlType>,
{
    let metadata = <Pg as HasSqlType<C::SqlType>>::metadata(&mut BuiltinTypesOnly);
    let oid = metadata.oid().unwrap_or(0);
    (
        C::NAME,
        <<C::SqlType as SqlType>::IsNull as NullFlag>::NULLABLE,
        oid,
    )
}

/// A tuple of columns (a table's `AllColumns`) that can describe itself.
trait DescribeColumns {
    fn describe() -> Vec<DeclaredColumn>;
}

macro_rules! describe_tuple {
    ($($c:ident),+) => {
        impl<$($c),+> DescribeColumns for ($($c,)+)
        where
            $(
                $c: Column + Expression,
                $c::SqlType: SqlType,
                <$c::SqlType as SqlType>::IsNull: NullFlag,
                Pg: HasSqlType<$c::SqlType>,
            )+
        {
            fn describe() -> Vec<DeclaredColumn> {
                vec![$(describe_column::<$c>()),+]
            }
        }
    };
}

describe_tuple!(A);
describe_tuple!(A, B);
describe_tuple!(A, B, C);
describe_tuple!(A, B, C, D);
describe_tuple!(A, B, C, D, E);
describe_tuple!(A, B, C, D, E, F);
describe_tuple!(A, B, C, D, E, F, G);
describe_tuple!(A, B, C, D, E, F, G, H);
describe_tuple!(A, B, C, D, E, F, G, H, I);
describe_tuple!(A, B, C, D, E, F, G, H, I, J);
describe_tuple!(A, B, C, D, E, F, G, H, I, J, K);
describe_tuple!(A, B, C, D, E, F, G, H, I, J, K, L);
describe_tuple!(A, B, C, D, E, F, G, H, I, J, K, L, M);
describe_tuple!(A, B, C, D, E, F, G, H, I, J, K, L, M, N);
describe_tuple!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O);
describe_tuple!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P);

/// A declared table's SQL name (its module name) and its columns.
macro_rules! describe_table {
    ($table:ident) => {
        (
            stringify!($table).to_owned(),
            <<$table::table as Table>::AllColumns as DescribeColumns>::describe(),
        )
    };
}

/// Every table declared above, with its columns.
fn declared_tables() -> Vec<(String, Vec<DeclaredColumn>)> {
    vec![
        describe_table!(accounts),
        describe_table!(users),
        describe_table!(account_members),
        describe_table!(sessions),
        describe_table!(refresh_tokens),
        describe_table!(audit_log),
        describe_table!(platform_app_events),
        describe_table!(api_keys),
        describe_table!(instance_tokens),
        describe_table!(plans),
        describe_table!(account_entitlements),
        describe_table!(quota_counters),
        describe_table!(usage_daily),
        describe_table!(usage_active_users),
        describe_table!(billing_accounts),
        describe_table!(billing_payments),
        describe_table!(billing_events),
        describe_table!(chatwoot_connections),
        describe_table!(inboxes),
        describe_table!(inbox_sync_runs),
        describe_table!(providers),
        describe_table!(provider_instances),
        describe_table!(instance_health),
        describe_table!(instance_health_events),
    ]
}

#[derive(QueryableByName)]
struct CatalogColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = BigInt)]
    type_oid: i64,
    #[diesel(sql_type = Bool)]
    nullable: bool,
}

const CATALOG_SQL: &str = r"
SELECT c.relname::text AS table_name, a.attname::text AS column_name,
       a.atttypid::int8 AS type_oid, NOT a.attnotnull AS nullable
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
   AND c.relname NOT LIKE '\_\_diesel\_schema\_migrations%'";

/// Compares the diesel tables of this crate with the database's catalog (tables, column
/// names, types and nullability) and describes every difference; empty means in sync.
///
/// # Errors
/// `DbError::Query` when the catalog cannot be read.
pub async fn schema_mismatches(conn: &mut AsyncPgConnection) -> Result<Vec<String>, DbError> {
    let rows: Vec<CatalogColumn> = diesel::sql_query(CATALOG_SQL).load(conn).await?;
    let mut catalog: BTreeMap<String, BTreeMap<String, (u32, bool)>> = BTreeMap::new();
    for row in rows {
        let oid = u32::try_from(row.type_oid).unwrap_or(0);
        catalog
            .entry(row.table_name)
            .or_default()
            .insert(row.column_name, (oid, row.nullable));
    }

    let mut problems = Vec::new();
    let mut declared_names = BTreeSet::new();
    for (table, columns) in declared_tables() {
        declared_names.insert(table.clone());
        let Some(live) = catalog.get(&table) else {
            problems.push(format!(
                "table `{table}` is declared in schema.rs but missing in the database"
            ));
            continue;
        };
        let mut seen = BTreeSet::new();
        for (column, nullable, oid) in columns {
            seen.insert(column.to_owned());
            match live.get(column) {
                None => problems.push(format!(
                    "column `{table}.{column}` is declared but missing in the database"
                )),
                Some((live_oid, live_nullable)) => {
                    if *live_oid != oid {
                        problems.push(format!(
                            "column `{table}.{column}` has type oid {live_oid} in the database but {oid} in schema.rs"
                        ));
                    }
                    if *live_nullable != nullable {
                        problems.push(format!(
                            "column `{table}.{column}` is {} in the database but {} in schema.rs",
                            if *live_nullable {
                                "nullable"
                            } else {
                                "NOT NULL"
                            },
                            if nullable { "Nullable" } else { "not nullable" },
                        ));
                    }
                }
            }
        }
        for column in live.keys().filter(|c| !seen.contains(*c)) {
            problems.push(format!(
                "column `{table}.{column}` exists in the database but not in schema.rs"
            ));
        }
    }
    for table in catalog.keys().filter(|t| !declared_names.contains(*t)) {
        problems.push(format!(
            "table `{table}` exists in the database but not in schema.rs"
        ));
    }
    Ok(problems)
}
