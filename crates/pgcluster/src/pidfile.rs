//! Reading `postmaster.pid` and telling live processes from dead ones.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

/// What `postmaster.pid` says about a postmaster whose process is alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Postmaster {
    /// Its process id.
    pub(crate) pid: i32,
    /// The port it listens on (line 4).
    pub(crate) port: Option<u16>,
    /// `starting`, `ready`, `stopping`, `standby` (line 8, PostgreSQL 10+).
    pub(crate) status: Option<String>,
}

/// True when a process with this pid exists (also when it belongs to another user).
pub(crate) fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match kill(Pid::from_raw(pid), None) {
        Ok(()) | Err(Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// The postmaster of `data_dir`, when its pid file names a live `postgres` process.
pub(crate) fn running_postmaster(data_dir: &Path) -> Option<Postmaster> {
    let text = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let postmaster = parse(&text)?;
    if !pid_alive(postmaster.pid) {
        return None;
    }
    // A stale pid file whose pid now belongs to something else does not count.
    if let Ok(comm) = fs::read_to_string(format!("/proc/{}/comm", postmaster.pid))
        && !comm.trim().starts_with("postgres")
    {
        return None;
    }
    Some(postmaster)
}

fn parse(text: &str) -> Option<Postmaster> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let pid = lines.first()?.parse().ok()?;
    let port = lines.get(3).and_then(|l| l.parse().ok());
    let status = lines
        .get(7)
        .filter(|l| !l.is_empty())
        .map(|l| (*l).to_owned());
    Some(Postmaster { pid, port, status })
}

/// True when something accepts TCP connections on `127.0.0.1:port`.
pub(crate) fn tcp_accepts(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pid_port_and_status() {
        let text =
            "4242\n/tmp/x/data\n1700000000\n54321\n/tmp/x\n127.0.0.1\n  1234  5678\nready   \n";
        assert_eq!(
            parse(text),
            Some(Postmaster {
                pid: 4242,
                port: Some(54321),
                status: Some("ready".to_owned()),
            })
        );
        assert_eq!(parse("garbage"), None);
    }

    #[test]
    fn own_pid_is_alive_and_nonsense_is_not() {
        assert!(pid_alive(i32::try_from(std::process::id()).unwrap()));
        assert!(!pid_alive(0));
        assert!(!pid_alive(-5));
    }
}
