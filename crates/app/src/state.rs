//! What every handler can reach: the pool, the metrics and the configuration.

use std::sync::Arc;

use whatpro_db::Pool;
use whatpro_telemetry::Metrics;

use crate::config::Config;

/// Shared application state (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    /// The PostgreSQL pool.
    pub pool: Pool,
    /// The Prometheus registry of this process.
    pub metrics: Metrics,
    /// The validated configuration.
    pub config: Arc<Config>,
}

impl AppState {
    /// Assembles the state.
    pub fn new(config: Config, pool: Pool, metrics: Metrics) -> Self {
        Self {
            pool,
            metrics,
            config: Arc::new(config),
        }
    }
}
