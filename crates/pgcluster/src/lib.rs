//! Starts and stops a local PostgreSQL cluster from the machine's own binaries.
//!
//! Owns finding the server binaries (`/usr/lib/postgresql/*/bin` or `PG_BIN_DIR`), `initdb`,
//! `pg_ctl start/stop`, free-port picking, running the tools as the `postgres` user when the
//! process is root, and throwaway clusters for tests that clean up after the process exits (even
//! when it is killed). The API is blocking: it is called once at start-up.
#![warn(missing_docs)]

mod error;
mod pidfile;
mod runner;
mod throwaway;

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use error::ClusterError;
pub use throwaway::sweep_leftovers;

use pidfile::{running_postmaster, tcp_accepts};
use runner::{Runner, describe, run};

/// The server log, kept inside the data directory.
const LOG_FILE: &str = "server.log";
/// How many times a start is retried on a fresh port when the picked one got taken meanwhile.
const PORT_ATTEMPTS: usize = 3;
/// How long `pg_ctl` (and the wait for an already running cluster) may take.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How many lines of the server log an error shows.
const LOG_TAIL_LINES: usize = 30;

/// Where and how to run a cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The data directory (`initdb -D`); its parent holds the Unix socket.
    pub data_dir: PathBuf,
    /// The TCP port; `None` picks a free one (or keeps the port of a cluster already running in
    /// `data_dir`).
    pub port: Option<u16>,
    /// `false` trades crash safety for speed: `fsync=off`, `synchronous_commit=off`,
    /// `full_page_writes=off` (and `initdb --no-sync`).
    pub durable: bool,
}

/// A running PostgreSQL cluster on `127.0.0.1`, user `postgres`, trust authentication.
#[derive(Debug)]
pub struct LocalCluster {
    runner: Runner,
    data_dir: PathBuf,
    port: u16,
    /// For throwaway clusters: the directory removed when the process exits.
    throwaway_root: Option<PathBuf>,
}

impl LocalCluster {
    /// Starts the cluster in `config.data_dir`: runs initdb when the directory has no cluster
    /// yet, reuses a cluster that is already running there (postmaster.pid with a live pid), else
    /// starts it. Listens on 127.0.0.1 only, Unix socket in the data dir's parent, trust auth,
    /// user `postgres`, UTF8, no locale.
    ///
    /// # Errors
    /// Missing binaries or `postgres` user, directory problems, and `initdb`/`pg_ctl` failures
    /// (with their output and the server log tail).
    pub fn start(config: ClusterConfig) -> Result<LocalCluster, ClusterError> {
        start_with(Runner::detect()?, &config)
    }

    /// A throwaway cluster (not durable) in a fresh directory under the temp dir named
    /// `whatpro-test-pg-<pid>-<random>`. A detached reaper stops it and removes the directory
    /// once this process is gone, however it ends. Leftovers of dead processes are swept first.
    ///
    /// # Errors
    /// As [`LocalCluster::start`], plus failures to create the directory or spawn the reaper.
    pub fn start_throwaway() -> Result<LocalCluster, ClusterError> {
        throwaway::start_throwaway()
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:{port}/{database}`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// For a throwaway cluster, the directory that goes away when this process exits.
    pub fn throwaway_dir(&self) -> Option<&Path> {
        self.throwaway_root.as_deref()
    }

    /// The bin dir in use (e.g. `/usr/lib/postgresql/15/bin`).
    pub fn bin_dir(&self) -> &Path {
        &self.runner.bin_dir
    }

    /// Stops the cluster (`pg_ctl stop -m fast`); a cluster that is not running is fine.
    /// Throwaway clusters also clean up by themselves at process exit.
    ///
    /// # Errors
    /// `ClusterError::Stop` when `pg_ctl` fails and the server is still running.
    pub fn stop(&self) -> Result<(), ClusterError> {
        if running_postmaster(&self.data_dir).is_none() {
            return Ok(());
        }
        let timeout = READY_TIMEOUT.as_secs().to_string();
        let mut cmd = self.runner.command("pg_ctl");
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "fast", "-w", "-t", &timeout, "stop"]);
        let output = run(&mut cmd, "pg_ctl")?;
        if output.status.success() || running_postmaster(&self.data_dir).is_none() {
            tracing::info!(data_dir = %self.data_dir.display(), "PostgreSQL stopped");
            Ok(())
        } else {
            Err(ClusterError::Stop {
                data_dir: self.data_dir.clone(),
                output: describe(&output),
            })
        }
    }
}

/// The whole start sequence with an already detected runner.
fn start_with(runner: Runner, config: &ClusterConfig) -> Result<LocalCluster, ClusterError> {
    let data_dir = std::path::absolute(&config.data_dir).map_err(ClusterError::io(format!(
        "could not resolve the data directory {}",
        config.data_dir.display()
    )))?;
    let socket_dir = data_dir.parent().unwrap_or(Path::new("/")).to_path_buf();

    if let Some(running) = wait_for_running(&data_dir)? {
        if let Some(requested) = config.port
            && requested != running
        {
            return Err(ClusterError::PortMismatch {
                data_dir,
                running,
                requested,
            });
        }
        tracing::info!(data_dir = %data_dir.display(), port = running, "reusing running PostgreSQL");
        return Ok(LocalCluster {
            runner,
            data_dir,
            port: running,
            throwaway_root: None,
        });
    }

    prepare_dirs(&runner, &data_dir, &socket_dir)?;
    if !data_dir.join("PG_VERSION").exists() {
        initdb(&runner, &data_dir, config.durable)?;
    }

    let attempts = if config.port.is_some() {
        1
    } else {
        PORT_ATTEMPTS
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let port = match config.port {
            Some(port) => port,
            None => free_port()?,
        };
        match pg_ctl_start(&runner, &data_dir, &socket_dir, port, config.durable) {
            Ok(()) => {
                tracing::info!(data_dir = %data_dir.display(), port, "PostgreSQL started");
                return Ok(LocalCluster {
                    runner,
                    data_dir,
                    port,
                    throwaway_root: None,
                });
            }
            Err(ClusterError::Start { log_tail, .. })
                if attempt < attempts && port_was_taken(&log_tail) =>
            {
                tracing::warn!(
                    port,
                    "port got taken before PostgreSQL could bind it; retrying"
                );
            }
            Err(e) => return Err(e),
        }
    }
}

/// Port of a cluster already running in `data_dir`, once it accepts connections; `None` when no
/// live postmaster owns the directory.
fn wait_for_running(data_dir: &Path) -> Result<Option<u16>, ClusterError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let Some(postmaster) = running_postmaster(data_dir) else {
            return Ok(None);
        };
        let ready = matches!(postmaster.status.as_deref(), None | Some("ready"));
        if ready
            && let Some(port) = postmaster.port
            && tcp_accepts(port)
        {
            return Ok(Some(port));
        }
        if Instant::now() >= deadline {
            return Err(ClusterError::Start {
                data_dir: data_dir.to_path_buf(),
                output: format!(
                    "a postmaster (pid {}, status {}) runs in this directory but does not accept connections on 127.0.0.1 after {} s",
                    postmaster.pid,
                    postmaster.status.as_deref().unwrap_or("unknown"),
                    READY_TIMEOUT.as_secs()
                ),
                log_tail: log_tail(&data_dir.join(LOG_FILE), 0),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Creates the data directory and, when root, hands it and the socket directory to `postgres`.
fn prepare_dirs(runner: &Runner, data_dir: &Path, socket_dir: &Path) -> Result<(), ClusterError> {
    fs::create_dir_all(data_dir).map_err(ClusterError::io(format!(
        "could not create the data directory {}",
        data_dir.display()
    )))?;
    let Some((uid, gid)) = runner.as_postgres else {
        return Ok(());
    };
    let fresh = fs::read_dir(data_dir)
        .map_err(ClusterError::io(format!(
            "could not read {}",
            data_dir.display()
        )))?
        .next()
        .is_none();
    if fresh {
        chown(data_dir, uid, gid)?;
    }
    let meta = fs::metadata(socket_dir).map_err(ClusterError::io(format!(
        "could not inspect {}",
        socket_dir.display()
    )))?;
    // A world-writable directory (such as /tmp) is usable as it is and must not change owner.
    if meta.uid() != uid.as_raw() && meta.permissions().mode() & 0o002 == 0 {
        chown(socket_dir, uid, gid)?;
    }
    let mut check = runner.shell_as_server_user(
        r#"test -d "$1" && test -w "$1" && test -x "$1""#,
        &[socket_dir.as_os_str()],
    );
    let output = run(&mut check, "runuser")?;
    if output.status.success() {
        Ok(())
    } else {
        Err(ClusterError::NotAccessible(socket_dir.to_path_buf()))
    }
}

fn chown(path: &Path, uid: nix::unistd::Uid, gid: nix::unistd::Gid) -> Result<(), ClusterError> {
    std::os::unix::fs::chown(path, Some(uid.as_raw()), Some(gid.as_raw())).map_err(|source| {
        ClusterError::Chown {
            path: path.to_path_buf(),
            source,
        }
    })
}

fn initdb(runner: &Runner, data_dir: &Path, durable: bool) -> Result<(), ClusterError> {
    let mut cmd = runner.command("initdb");
    cmd.arg("-D").arg(data_dir).args([
        "-U",
        "postgres",
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--no-locale",
    ]);
    if !durable {
        cmd.arg("--no-sync");
    }
    let output = run(&mut cmd, "initdb")?;
    if output.status.success() {
        tracing::info!(data_dir = %data_dir.display(), "initdb done");
        Ok(())
    } else {
        Err(ClusterError::Initdb {
            data_dir: data_dir.to_path_buf(),
            output: describe(&output),
        })
    }
}

fn pg_ctl_start(
    runner: &Runner,
    data_dir: &Path,
    socket_dir: &Path,
    port: u16,
    durable: bool,
) -> Result<(), ClusterError> {
    let log = data_dir.join(LOG_FILE);
    let log_offset = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    // pg_ctl hands these options to `sh -c`, so the socket path is shell-quoted.
    let mut options = OsString::from(format!("-p {port} -c listen_addresses=127.0.0.1 -k "));
    options.push(shell_quote(socket_dir.as_os_str()));
    if !durable {
        options.push(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
    }
    let timeout = READY_TIMEOUT.as_secs().to_string();
    let mut cmd = runner.command("pg_ctl");
    cmd.arg("-D")
        .arg(data_dir)
        .arg("-l")
        .arg(&log)
        .args(["-w", "-t", &timeout, "-o"])
        .arg(options)
        .arg("start");
    let output = run(&mut cmd, "pg_ctl")?;
    if output.status.success() && tcp_accepts(port) {
        Ok(())
    } else {
        Err(ClusterError::Start {
            data_dir: data_dir.to_path_buf(),
            output: describe(&output),
            log_tail: log_tail(&log, log_offset),
        })
    }
}

/// True when the server log says the port (or its socket lock) was in use.
fn port_was_taken(log_tail: &str) -> bool {
    ["Address already in use", "could not bind", ".s.PGSQL."]
        .iter()
        .any(|needle| log_tail.contains(needle))
}

/// A port that was free a moment ago: bind `127.0.0.1:0`, read it, let it go.
fn free_port() -> Result<u16, ClusterError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(ClusterError::io("could not find a free TCP port"))?;
    let port = listener
        .local_addr()
        .map_err(ClusterError::io("could not find a free TCP port"))?
        .port();
    Ok(port)
}

/// The last lines written to `path` from byte `offset` on.
fn log_tail(path: &Path, offset: u64) -> String {
    let mut text = String::new();
    let read = fs::File::open(path).and_then(|mut f| {
        f.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)?;
        text = String::from_utf8_lossy(&bytes).into_owned();
        Ok(())
    });
    if let Err(e) = read {
        return format!("(no server log at {}: {e})", path.display());
    }
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    lines[start..].join("\n")
}

/// `'...'` with embedded single quotes escaped, for `sh`.
fn shell_quote(raw: &std::ffi::OsStr) -> OsString {
    let mut out = vec![b'\''];
    for &b in raw.as_bytes() {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    OsString::from_vec(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_for_sh() {
        assert_eq!(
            shell_quote(std::ffi::OsStr::new("/tmp/it's here")),
            OsString::from("'/tmp/it'\\''s here'")
        );
    }

    #[test]
    fn recognises_port_conflicts() {
        assert!(port_was_taken(
            "LOG:  could not bind IPv4 address \"127.0.0.1\": Address already in use"
        ));
        assert!(!port_was_taken(
            "FATAL:  data directory has wrong ownership"
        ));
    }

    #[test]
    fn url_has_the_expected_shape() {
        let cluster = LocalCluster {
            runner: Runner {
                bin_dir: PathBuf::from("/x/bin"),
                as_postgres: None,
            },
            data_dir: PathBuf::from("/x/data"),
            port: 5555,
            throwaway_root: None,
        };
        assert_eq!(cluster.url("app"), "postgres://postgres@127.0.0.1:5555/app");
        assert_eq!(cluster.bin_dir(), Path::new("/x/bin"));
    }
}
