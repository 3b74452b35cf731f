//! The connection pool and its health probes.

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use diesel_async::RunQueryDsl;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::deadpool::{self, BuildError, PoolError};

/// The Hub's PostgreSQL pool.
pub type Pool = deadpool::Pool<AsyncPgConnection>;

/// Size and timeouts of the pool. Every wait is bounded so a dead database turns into a quick
/// `Unavailable` instead of a hung request.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Most connections held at once.
    pub max_size: usize,
    /// How long a caller waits for a free connection.
    pub wait_timeout: Duration,
    /// How long opening a new connection may take.
    pub create_timeout: Duration,
    /// How long the liveness check of a returned connection may take.
    pub recycle_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_size: 16,
            wait_timeout: Duration::from_secs(5),
            create_timeout: Duration::from_secs(5),
            recycle_timeout: Duration::from_secs(2),
        }
    }
}

/// Failures of the database layer, already classified for callers.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached or the pool is exhausted past its wait timeout.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A migration failed to apply or revert.
    #[error("migration failed: {0}")]
    Migration(String),
    /// The pool could not be built from the given settings.
    #[error("invalid pool configuration: {0}")]
    Config(String),
    /// A query failed.
    #[error("query failed: {0}")]
    Query(#[from] diesel::result::Error),
}

impl DbError {
    pub(crate) fn from_pool(err: PoolError) -> Self {
        Self::Unavailable(err.to_string())
    }
}

/// Builds a pool. No connection is opened until the first use.
///
/// # Errors
/// `DbError::Config` when the settings are rejected by deadpool.
pub fn build_pool(url: &str, settings: &PoolSettings) -> Result<Pool, DbError> {
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
    Pool::builder(manager)
        .max_size(settings.max_size)
        .wait_timeout(Some(settings.wait_timeout))
        .create_timeout(Some(settings.create_timeout))
        .recycle_timeout(Some(settings.recycle_timeout))
        .runtime(::deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e: BuildError| DbError::Config(e.to_string()))
}

/// Runs `SELECT 1` on a pooled connection, bounded by `timeout`.
///
/// # Errors
/// `DbError::Unavailable` when no answer arrives in time or the query fails.
pub async fn ping(pool: &Pool, timeout: Duration) -> Result<(), DbError> {
    let probe = async {
        let mut conn = pool.get().await.map_err(DbError::from_pool)?;
        diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .await
            .map_err(|e| DbError::Unavailable(e.to_string()))?;
        Ok(())
    };
    tokio::time::timeout(timeout, probe)
        .await
        .map_err(|_| DbError::Unavailable("ping timed out".to_owned()))?
}

/// How many connections are idle and in use right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Open connections waiting in the pool.
    pub idle: usize,
    /// Connections lent out.
    pub in_use: usize,
    /// The configured maximum.
    pub max_size: usize,
}

/// Reads the pool's counters (no I/O).
pub fn pool_status(pool: &Pool) -> PoolStatus {
    let status = pool.status();
    PoolStatus {
        idle: status.available,
        in_use: status.size.saturating_sub(status.available),
        max_size: status.max_size,
    }
}
