//! The errors of cluster management, each with a message that says what to do about it.

use std::io;
use std::path::PathBuf;

/// Why a cluster could not be found, created, started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No directory with `initdb`, `pg_ctl` and `postgres` was found.
    #[error(
        "no PostgreSQL server binaries found under /usr/lib/postgresql/*/bin (install the postgresql package)"
    )]
    NoBinaries,
    /// `PG_BIN_DIR` is set but does not hold the server binaries.
    #[error("PG_BIN_DIR={0} does not contain initdb, pg_ctl and postgres")]
    BadBinDir(PathBuf),
    /// Running as root, but there is no `postgres` user to run the server as.
    #[error(
        "running as root but there is no `postgres` user to run the server as (install the postgresql package, or run as a normal user)"
    )]
    NoPostgresUser,
    /// The `postgres` user cannot reach or write a directory the cluster needs.
    #[error(
        "the postgres user cannot write to {0} (every directory above it must be searchable by postgres, e.g. chmod o+x)"
    )]
    NotAccessible(PathBuf),
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Changing the owner of a directory to `postgres` failed.
    #[error("could not chown {path} to the postgres user: {source}")]
    Chown {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A program could not be run at all.
    #[error("could not run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// `initdb` failed.
    #[error("initdb failed for {data_dir}:\n{output}")]
    Initdb {
        /// The data directory.
        data_dir: PathBuf,
        /// What initdb printed.
        output: String,
    },
    /// The server did not start (or did not become ready in time).
    #[error(
        "PostgreSQL failed to start in {data_dir}:\n{output}\n--- server log (tail) ---\n{log_tail}"
    )]
    Start {
        /// The data directory.
        data_dir: PathBuf,
        /// What pg_ctl printed.
        output: String,
        /// The last lines the server logged during this attempt.
        log_tail: String,
    },
    /// A cluster already runs in the data directory, on another port than the one asked for.
    #[error(
        "a cluster is already running in {data_dir} on port {running}, not on the requested port {requested}; stop it or ask for port {running}"
    )]
    PortMismatch {
        /// The data directory.
        data_dir: PathBuf,
        /// The port it listens on.
        running: u16,
        /// The port that was asked for.
        requested: u16,
    },
    /// `pg_ctl stop` failed.
    #[error("stopping the cluster in {data_dir} failed:\n{output}")]
    Stop {
        /// The data directory.
        data_dir: PathBuf,
        /// What pg_ctl printed.
        output: String,
    },
}

impl ClusterError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}
