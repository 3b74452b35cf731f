//! Building and running the server: pool, migrations, listener, graceful shutdown.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix_web::HttpServer;
use actix_web::dev::Server;

/// Handle to stop a running server (re-exported so callers need not know actix-web).
pub use actix_web::dev::ServerHandle;
use whatpro_db::{Pool, PoolSettings};

use crate::config::Config;
use crate::http::{ServiceConfig, build_app_with};
use crate::jobs::Jobs;
use crate::state::AppState;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Bad configuration (already one line naming the variable).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The database could not be reached or migrated.
    #[error("database: {0}")]
    Database(#[from] whatpro_db::DbError),
    /// The listen address could not be bound.
    #[error("HUB_BIND: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Anything else at start-up.
    #[error("{0}")]
    Other(String),
}

/// How long start-up keeps trying to reach the database before giving up.
const DB_WAIT: Duration = Duration::from_secs(30);

/// Builds the pool from the configuration and waits (up to 30 s) until the database answers.
///
/// # Errors
/// `StartupError::Config` without `DATABASE_URL`; `StartupError::Database` when it stays
/// unreachable.
pub async fn connect(config: &Config) -> Result<Pool, StartupError> {
    let url = config
        .database_url
        .as_ref()
        .ok_or_else(|| crate::config::ConfigError {
            var: "DATABASE_URL".into(),
            problem: "is required".into(),
        })?;
    let settings = PoolSettings {
        max_size: config.db_pool_size,
        ..PoolSettings::default()
    };
    let pool = whatpro_db::build_pool(url.expose(), &settings)?;
    let started = Instant::now();
    loop {
        match whatpro_db::ping(&pool, Duration::from_secs(5)).await {
            Ok(()) => return Ok(pool),
            Err(err) if started.elapsed() < DB_WAIT => {
                tracing::warn!(error = %err, "database not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// Applies pending migrations, logging what was applied.
///
/// # Errors
/// `StartupError::Database` when a migration fails.
pub async fn migrate(pool: &Pool) -> Result<Vec<String>, StartupError> {
    let applied = whatpro_db::run_migrations(pool).await?;
    if applied.is_empty() {
        tracing::info!("database schema is up to date");
    } else {
        tracing::info!(applied = ?applied, "applied migrations");
    }
    Ok(applied)
}

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
}

impl Application {
    /// Binds `config.bind` and prepares the server (it does not run until
    /// [`Application::run_until_stopped`]).
    ///
    /// # Errors
    /// `StartupError::Bind` when the address cannot be bound.
    pub async fn build(config: Config, pool: Pool) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(config.bind).map_err(|source| StartupError::Bind {
            addr: config.bind.to_string(),
            source,
        })?;
        let state = crate::wiring::build_state(config, pool).await?;
        Self::from_listener(state, listener)
    }

    /// Prepares the server on an already bound listener (tests bind port 0).
    ///
    /// # Errors
    /// `StartupError::Bind` when the listener cannot be used.
    pub fn from_listener(state: AppState, listener: TcpListener) -> Result<Self, StartupError> {
        Self::from_listener_with(state, listener, |_| {})
    }

    /// [`Application::from_listener`] with extra routes behind the same middleware (tests
    /// mount probe handlers this way; see [`crate::build_app_with`]).
    ///
    /// # Errors
    /// `StartupError::Bind` when the listener cannot be used.
    pub fn from_listener_with(
        state: AppState,
        listener: TcpListener,
        extra_routes: fn(&mut ServiceConfig),
    ) -> Result<Self, StartupError> {
        let addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: "listener".to_owned(),
            source,
        })?;
        let shutdown = state.config.shutdown_timeout;
        let workers = state.config.workers;
        let app_state = state.clone();
        let mut server = HttpServer::new(move || build_app_with(app_state.clone(), extra_routes))
            .disable_signals()
            .shutdown_timeout(shutdown.as_secs())
            .listen(listener)
            .map_err(|source| StartupError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        if let Some(workers) = workers {
            server = server.workers(workers);
        }
        Ok(Self {
            port: addr.port(),
            server: server.run(),
            state,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server (gracefully or not).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Runs until the server is stopped through its handle.
    ///
    /// # Errors
    /// I/O errors of the server.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let jobs = Jobs::start(&self.state);
        let result = self.server.await;
        jobs.stop().await;
        result
    }

    /// Runs until SIGTERM or SIGINT, then drains in-flight requests (bounded by
    /// `HUB_SHUTDOWN_TIMEOUT_SECS`) and returns.
    ///
    /// # Errors
    /// I/O errors of the server or of signal registration.
    pub async fn run_until_signalled(self) -> std::io::Result<()> {
        let handle = self.handle();
        let signals = tokio::spawn(async move {
            match wait_for_shutdown_signal().await {
                Ok(name) => {
                    tracing::info!(signal = name, "shutting down: draining in-flight requests")
                }
                Err(err) => tracing::error!(error = %err, "cannot listen for signals; stopping"),
            }
            handle.stop(true).await;
        });
        let jobs = Jobs::start(&self.state);
        let result = self.server.await;
        signals.abort();
        jobs.stop().await;
        result
    }
}

/// Waits for SIGTERM or SIGINT and names the one that came.
///
/// # Errors
/// When the signal handlers cannot be installed.
pub async fn wait_for_shutdown_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
