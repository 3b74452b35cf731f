//! Throwaway clusters: a fresh directory per process, a detached reaper that removes it after
//! the process is gone, and a sweep of what dead processes left behind.

use std::collections::hash_map::RandomState;
use std::ffi::OsString;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::ErrorKind;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::pidfile::{pid_alive, running_postmaster};
use crate::runner::{Runner, describe, run};
use crate::{ClusterConfig, ClusterError, LocalCluster, start_with};

/// Name prefix of throwaway directories; the owner pid and a random suffix follow.
const PREFIX: &str = "whatpro-test-pg-";
/// The data directory inside a throwaway directory (which also holds the socket).
const DATA: &str = "data";

/// The reaper: waits until the owner pid is gone (or a zombie), stops the postmaster if one is
/// running, removes the directory. Arguments: owner pid, directory, stop command.
const REAPER_SCRIPT: &str = r#"pid=$1; dir=$2; shift 2
while kill -0 "$pid" 2>/dev/null; do
  case "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)" in Z) break ;; esac
  sleep 1
done
if [ -f "$dir/data/postmaster.pid" ]; then "$@"; fi
rm -rf -- "$dir"
"#;

pub(crate) fn start_throwaway() -> Result<LocalCluster, ClusterError> {
    let runner = Runner::detect()?;
    sweep_with(&runner);
    let root = create_unique_dir()?;
    let started = (|| {
        if let Some((uid, gid)) = runner.as_postgres {
            crate::chown(&root, uid, gid)?;
        }
        spawn_reaper(&runner, &root)?;
        let config = ClusterConfig {
            data_dir: root.join(DATA),
            port: None,
            durable: false,
        };
        start_with(runner, &config)
    })();
    match started {
        Ok(mut cluster) => {
            cluster.throwaway_root = Some(root);
            Ok(cluster)
        }
        Err(e) => {
            if running_postmaster(&root.join(DATA)).is_none() {
                let _ = fs::remove_dir_all(&root);
            }
            Err(e)
        }
    }
}

/// Stops and removes the throwaway directories of processes that are no longer alive; returns
/// how many were removed. Directories of live processes are left alone.
///
/// # Errors
/// Only when the PostgreSQL binaries (needed to stop a leftover server) cannot be found;
/// problems with single leftovers are logged and skipped.
pub fn sweep_leftovers() -> Result<usize, ClusterError> {
    Ok(sweep_with(&Runner::detect()?))
}

fn sweep_with(runner: &Runner) -> usize {
    let tmp = std::env::temp_dir();
    let entries = match fs::read_dir(&tmp) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(dir = %tmp.display(), error = %e, "cannot list the temp dir for leftover clusters");
            return 0;
        }
    };
    let own_pid = std::process::id();
    let mut removed = 0;
    for entry in entries.filter_map(Result::ok) {
        let Some(owner) = owner_pid(&entry.file_name()) else {
            continue;
        };
        if owner == own_pid || i32::try_from(owner).is_ok_and(pid_alive) {
            continue;
        }
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = entry.path();
        let data = dir.join(DATA);
        if running_postmaster(&data).is_some() {
            let mut stop = runner.command("pg_ctl");
            stop.arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "-t", "10", "stop"]);
            match run(&mut stop, "pg_ctl") {
                Ok(out) if !out.status.success() => {
                    tracing::warn!(dir = %dir.display(), output = %describe(&out), "could not stop a leftover cluster");
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not stop a leftover cluster")
                }
                Ok(_) => {}
            }
        }
        match fs::remove_dir_all(&dir) {
            Ok(()) => {
                tracing::info!(dir = %dir.display(), owner, "removed a leftover throwaway cluster");
                removed += 1;
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove a leftover throwaway cluster");
            }
        }
    }
    removed
}

/// The owner pid encoded in a throwaway directory name.
fn owner_pid(name: &std::ffi::OsStr) -> Option<u32> {
    let rest = name.to_str()?.strip_prefix(PREFIX)?;
    let (pid, suffix) = rest.split_once('-')?;
    if suffix.is_empty() {
        return None;
    }
    pid.parse().ok()
}

fn create_unique_dir() -> Result<PathBuf, ClusterError> {
    let tmp = std::env::temp_dir();
    let mut last_error = None;
    for _ in 0..16 {
        let dir = tmp.join(format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            random_suffix()
        ));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => {
                return Err(ClusterError::Io {
                    context: format!("could not create {}", dir.display()),
                    source: e,
                });
            }
        }
    }
    Err(ClusterError::Io {
        context: format!(
            "could not create a unique directory under {}",
            tmp.display()
        ),
        source: last_error.unwrap_or_else(|| ErrorKind::AlreadyExists.into()),
    })
}

/// Twelve hex digits, different on every call.
fn random_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(nanos);
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    format!("{:012x}", hasher.finish() & 0xffff_ffff_ffff)
}

/// Starts the detached reaper for `root` in its own session, so neither Ctrl-C nor the death of
/// this process reaches it.
fn spawn_reaper(runner: &Runner, root: &Path) -> Result<(), ClusterError> {
    let mut stop: Vec<OsString> = runner.argv("pg_ctl");
    stop.push("-D".into());
    stop.push(root.join(DATA).into_os_string());
    stop.extend(["-m", "immediate", "-w", "-t", "30", "stop"].map(OsString::from));

    let setsid = ["/usr/bin/setsid", "/bin/setsid"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let mut cmd = match setsid {
        Some(setsid) => {
            let mut cmd = Command::new(setsid);
            cmd.arg("sh");
            cmd
        }
        None => {
            // Without setsid(1), a process group of its own keeps terminal signals away.
            let mut cmd = Command::new("sh");
            cmd.process_group(0);
            cmd
        }
    };
    cmd.arg("-c")
        .arg(REAPER_SCRIPT)
        .arg("whatpro-pg-reaper")
        .arg(std::process::id().to_string())
        .arg(root)
        .args(stop)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.spawn().map_err(|source| ClusterError::Spawn {
        program: "the cleanup process (setsid sh)".to_owned(),
        source,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_is_read_from_the_name() {
        assert_eq!(
            owner_pid("whatpro-test-pg-1234-abcdef".as_ref()),
            Some(1234)
        );
        assert_eq!(owner_pid("whatpro-test-pg-1234".as_ref()), None);
        assert_eq!(owner_pid("whatpro-test-pg-x-abc".as_ref()), None);
        assert_eq!(owner_pid("other-1234-abc".as_ref()), None);
    }

    #[test]
    fn suffixes_differ() {
        assert_ne!(random_suffix(), random_suffix());
        assert_eq!(random_suffix().len(), 12);
    }
}
