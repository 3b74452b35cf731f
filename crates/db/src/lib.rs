//! PostgreSQL adapter of the Hub.
//!
//! Owns the connection pool (diesel-async over deadpool, with timeouts), the migrations embedded
//! from `migrations/`, the diesel schema and the `Pg*` implementations of the domain ports:
//! [`PgIdentityStore`] and [`PgCredentialStore`] (and their caches [`CachedIdentityStore`],
//! [`CachedCredentialStore`]) for `whatpro-iam`,
//! [`PgMemberRepository`], [`PgAuditLog`], [`PgAccountDirectory`] and
//! [`PgAccountInstallations`] (Platform App events) for `whatpro-tenancy`;
//! [`PgInboxStore`] and [`PgProviderStore`] for `whatpro-inbox`.
//! Nothing outside this crate uses diesel.

mod billing;
mod credentials;
mod entitlements;
mod iam;
mod iam_cache;
mod inbox;
mod platform;
mod pool;
mod reusable;
mod schema;
mod schema_dump;
mod tenancy;

pub use billing::PgBillingStore;
pub use credentials::PgCredentialStore;
pub use entitlements::{PgEntitlementStore, PgUsageStore};
pub use iam::PgIdentityStore;
pub use iam_cache::{
    CacheSettings, CachedCredentialStore, CachedIdentityStore, IamInvalidator,
    LISTENER_APPLICATION_NAME,
};
pub use inbox::{PgInboxStore, PgProviderStore};
pub use platform::PgAccountInstallations;
pub use pool::{DbError, Pool, PoolSettings, PoolStatus, build_pool, ping, pool_status};
pub use schema::schema_mismatches;
pub use schema_dump::dump_schema;
pub use tenancy::{PgAccountDirectory, PgAuditLog, PgMemberRepository};

use diesel_async::AsyncMigrationHarness;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// Every migration of `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Applies pending migrations and returns the versions that were applied.
///
/// Needs the multi-thread Tokio runtime (diesel's harness uses `block_in_place`).
///
/// # Errors
/// `DbError::Unavailable` when no connection can be had, `DbError::Migration` when a migration
/// fails (that migration's transaction is rolled back).
pub async fn run_migrations(pool: &Pool) -> Result<Vec<String>, DbError> {
    let conn = pool.get().await.map_err(DbError::from_pool)?;
    let mut harness = AsyncMigrationHarness::new(conn);
    let applied = harness
        .run_pending_migrations(MIGRATIONS)
        .map_err(|e| DbError::Migration(e.to_string()))?
        .iter()
        .map(ToString::to_string)
        .collect();
    Ok(applied)
}

/// Reverts every applied migration, newest first (used by the reversibility test).
///
/// # Errors
/// As [`run_migrations`].
pub async fn revert_all_migrations(pool: &Pool) -> Result<Vec<String>, DbError> {
    let conn = pool.get().await.map_err(DbError::from_pool)?;
    let mut harness = AsyncMigrationHarness::new(conn);
    let reverted = harness
        .revert_all_migrations(MIGRATIONS)
        .map_err(|e| DbError::Migration(e.to_string()))?
        .iter()
        .map(ToString::to_string)
        .collect();
    Ok(reverted)
}

/// Creates database `name` on the server of `admin_url` unless it exists (used by `dev`).
///
/// # Errors
/// `DbError::Unavailable` when the server cannot be reached, `DbError::Query` when creation
/// fails.
pub async fn ensure_database(admin_url: &str, name: &str) -> Result<bool, DbError> {
    use diesel::sql_types::Text;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        #[expect(dead_code, reason = "only the row's existence matters")]
        one: i32,
    }

    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(DbError::Config(format!(
            "`{name}` is not a plain database name"
        )));
    }
    let mut conn = AsyncPgConnection::establish(admin_url)
        .await
        .map_err(|e| DbError::Unavailable(e.to_string()))?;
    let found: Vec<Found> =
        diesel::sql_query("SELECT 1 AS one FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(name)
            .load(&mut conn)
            .await?;
    if !found.is_empty() {
        return Ok(false);
    }
    diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await?;
    Ok(true)
}
