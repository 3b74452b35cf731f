//! Starts real clusters from the machine's PostgreSQL binaries.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions"
)]

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use whatpro_pgcluster::{ClusterConfig, ClusterError, LocalCluster, sweep_leftovers};

fn accepts(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

fn select_one(cluster: &LocalCluster) -> String {
    let out = Command::new(cluster.bin_dir().join("psql"))
        .args(["-X", "-h", "127.0.0.1", "-p"])
        .arg(cluster.port().to_string())
        .args(["-U", "postgres", "-d", "postgres", "-Atc", "select 1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A pid that belonged to a process that has exited.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn throwaway_cluster_answers_and_stops() {
    let cluster = LocalCluster::start_throwaway().unwrap();
    let dir = cluster.throwaway_dir().unwrap().to_path_buf();
    let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with(&format!("whatpro-test-pg-{}-", std::process::id())),
        "{name}"
    );
    assert!(dir.starts_with(std::env::temp_dir()));
    assert_eq!(
        cluster.url("app"),
        format!("postgres://postgres@127.0.0.1:{}/app", cluster.port())
    );
    assert_eq!(select_one(&cluster), "1");

    cluster.stop().unwrap();
    assert!(!accepts(cluster.port()), "port still accepts after stop");
    // Stopping again is fine.
    cluster.stop().unwrap();
}

#[test]
fn starting_twice_in_one_data_dir_reuses_the_running_cluster() {
    let first = LocalCluster::start_throwaway().unwrap();
    let config = ClusterConfig {
        data_dir: first.data_dir().to_path_buf(),
        port: None,
        durable: false,
    };
    let second = LocalCluster::start(config.clone()).unwrap();
    assert_eq!(second.port(), first.port());
    assert_eq!(select_one(&second), "1");

    let same_port = LocalCluster::start(ClusterConfig {
        port: Some(first.port()),
        ..config.clone()
    })
    .unwrap();
    assert_eq!(same_port.port(), first.port());

    let other_port = first.port().wrapping_add(1).max(1024);
    let err = LocalCluster::start(ClusterConfig {
        port: Some(other_port),
        ..config
    })
    .unwrap_err();
    assert!(
        matches!(err, ClusterError::PortMismatch { .. }),
        "unexpected error: {err}"
    );

    first.stop().unwrap();
}

#[test]
fn a_stopped_cluster_starts_again_in_the_same_dir() {
    let first = LocalCluster::start_throwaway().unwrap();
    first.stop().unwrap();
    let again = LocalCluster::start(ClusterConfig {
        data_dir: first.data_dir().to_path_buf(),
        port: None,
        durable: true,
    })
    .unwrap();
    assert_eq!(select_one(&again), "1");
    again.stop().unwrap();
}

#[test]
fn sweep_removes_leftovers_of_dead_processes_only() {
    let tmp = std::env::temp_dir();
    let dead = dead_pid();

    // A leftover whose postmaster still runs. It is built under our own (live) pid, so that
    // concurrent sweeps leave it alone until it is complete, then renamed to the dead pid.
    let building = tmp.join(format!("whatpro-test-pg-{}-sweeptest1", std::process::id()));
    let running = LocalCluster::start(ClusterConfig {
        data_dir: building.join("data"),
        port: None,
        durable: false,
    })
    .unwrap();
    assert!(accepts(running.port()));
    let running_dir = tmp.join(format!("whatpro-test-pg-{dead}-sweeptest1"));
    std::fs::rename(&building, &running_dir).unwrap();

    // A leftover with files only.
    let plain_building = tmp.join(format!("whatpro-test-pg-{}-sweeptest2", std::process::id()));
    std::fs::create_dir_all(plain_building.join("data")).unwrap();
    std::fs::write(plain_building.join("data").join("PG_VERSION"), b"15\n").unwrap();
    let plain_dir = tmp.join(format!("whatpro-test-pg-{dead}-sweeptest2"));
    std::fs::rename(&plain_building, &plain_dir).unwrap();

    // A directory of a live process (ours) stays.
    let live_dir = tmp.join(format!("whatpro-test-pg-{}-sweeptest3", std::process::id()));
    std::fs::create_dir_all(&live_dir).unwrap();

    // Other test processes on this machine may sweep them too; either way they must go.
    sweep_leftovers().unwrap();
    assert!(!running_dir.exists());
    assert!(!plain_dir.exists());
    assert!(!accepts(running.port()), "leftover postmaster still runs");
    assert!(live_dir.exists());
    std::fs::remove_dir_all(&live_dir).unwrap();
}

const CHILD_ENV: &str = "WHATPRO_PGCLUSTER_REAPER_CHILD";

/// Runs only inside the child process of `reaper_cleans_up_after_a_killed_process`.
#[test]
fn reaper_child_helper() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let cluster = LocalCluster::start_throwaway().unwrap();
    println!(
        "CLUSTER {} {}",
        cluster.port(),
        cluster.throwaway_dir().unwrap().display()
    );
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn reaper_cleans_up_after_a_killed_process() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "reaper_child_helper", "--nocapture"])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut found = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("CLUSTER ") {
            let (port, dir) = rest.split_once(' ').unwrap();
            found = Some((port.parse::<u16>().unwrap(), PathBuf::from(dir)));
            break;
        }
    }
    let (port, dir) = found.expect("the child printed its cluster");
    assert!(accepts(port));
    assert!(dir.exists());

    kill(
        Pid::from_raw(i32::try_from(child.id()).unwrap()),
        Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();

    wait_until("the reaper removed the directory", || {
        !Path::new(&dir).exists()
    });
    wait_until("the killed process's cluster stopped", || !accepts(port));
}
