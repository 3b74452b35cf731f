//! Child server processes: spawning with output to a log file, waiting for health, stopping.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::AnyResult;
use crate::loadgen::fetch;
use crate::scenario::RequestSpec;

/// How much of a server's log is quoted in an error.
const LOG_TAIL_BYTES: usize = 8 * 1024;

/// Picks a free TCP port on 127.0.0.1 (bind to port 0, read it, release it).
///
/// # Errors
/// When binding fails.
pub fn free_port() -> AnyResult<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A server process started by the harness. Killed on drop if [`ServerProcess::shutdown`] was
/// not called (e.g. on a panic).
#[derive(Debug)]
pub struct ServerProcess {
    name: String,
    child: Child,
    log_path: PathBuf,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `command` with stdout and stderr appended to `log_path`.
    ///
    /// # Errors
    /// When the log file cannot be created or the program cannot be started.
    pub fn spawn(
        name: &str,
        mut command: Command,
        addr: SocketAddr,
        log_path: &Path,
    ) -> AnyResult<Self> {
        let log = std::fs::File::create(log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start the {name} server: {e}"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log_path: log_path.to_owned(),
            addr,
        })
    }

    /// The end of the server's log, for error messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let start = text.len().saturating_sub(LOG_TAIL_BYTES);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        format!(
            "--- {} (last {} bytes) ---\n{}",
            self.log_path.display(),
            text.len() - start,
            &text[start..]
        )
    }

    /// Waits until `GET path` answers 2xx.
    ///
    /// # Errors
    /// When the process exits first or `timeout` passes; the message quotes the server's log.
    pub async fn wait_healthy(&mut self, path: &str, timeout: Duration) -> AnyResult<()> {
        let spec = RequestSpec {
            method: hyper::Method::GET,
            path: path.to_owned(),
            headers: Vec::new(),
            body: bytes::Bytes::new(),
        };
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!(
                    "the {} server exited ({status}) before answering GET {path}\n{}",
                    self.name,
                    self.log_tail()
                )
                .into());
            }
            let last =
                match tokio::time::timeout(Duration::from_secs(2), fetch(self.addr, &spec)).await {
                    Ok(Ok((status, _))) if (200..300).contains(&status) => return Ok(()),
                    Ok(Ok((status, _))) => format!("status {status}"),
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => "probe timed out".to_owned(),
                };
            if Instant::now() >= deadline {
                return Err(format!(
                    "the {} server did not answer GET {path} with 2xx within {} s (last: {last})\n{}",
                    self.name,
                    timeout.as_secs(),
                    self.log_tail()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM and waits up to 10 s, then kills.
    pub async fn shutdown(mut self) {
        let Some(id) = self.child.id() else {
            return; // already exited and reaped
        };
        let terminated = i32::try_from(id)
            .ok()
            .is_some_and(|pid| kill(Pid::from_raw(pid), Signal::SIGTERM).is_ok());
        if terminated
            && tokio::time::timeout(Duration::from_secs(10), self.child.wait())
                .await
                .is_ok()
        {
            return;
        }
        eprintln!(
            "warning: the {} server ignored SIGTERM; killing it",
            self.name
        );
        if let Err(e) = self.child.kill().await {
            eprintln!("warning: could not kill the {} server: {e}", self.name);
        }
    }
}
