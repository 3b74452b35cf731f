//! `whatpro-bench`: the benchmark harness of WhatPro Hub.
//!
//! Starts a throwaway PostgreSQL, the release `whatpro-hub serve` and a one-route actix-web
//! server (this binary's hidden `serve-minimal` subcommand, in its own process), then drives them
//! with a closed-loop load generator (fixed concurrency, warm-up, measured duration, HDR
//! histograms). The Hub's scenarios are quoted as percentages of two ceilings measured in the
//! same run: the minimal actix-web handler and raw `SELECT 1` over the server's pool settings.
//! Results go to `<out>/foundation.json` and `<out>/foundation.md`.

mod loadgen;
mod procs;
mod report;
mod scenario;
mod stats;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio::process::Command;

use crate::loadgen::{HttpWorker, Schedule, SelectOneWorker};
use crate::procs::{ServerProcess, free_port};
use crate::report::{Report, Row, attach_ratios};
use crate::scenario::{HttpScenario, SELECT_1, Target, http_scenarios};

/// The error type of the harness: any error, reported as a message.
pub type AnyResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// How long a server may take to answer its health route after starting.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Command line.
#[derive(Debug, Parser)]
#[command(name = "whatpro-bench", about = "Benchmark harness of WhatPro Hub")]
struct Cli {
    /// Hidden helper subcommands.
    #[command(subcommand)]
    command: Option<Sub>,
    /// Measured time per scenario and concurrency (e.g. 10s, 500ms, 1m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Warm-up before each measurement, results discarded.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// Concurrency levels (comma-separated).
    #[arg(long, default_value = "1,16,64", value_delimiter = ',')]
    connections: Vec<usize>,
    /// Directory for foundation.json, foundation.md and the servers' logs.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// The Hub binary (build it with `cargo build --release -p whatpro-app`).
    #[arg(long, default_value = "target/release/whatpro-hub")]
    server_bin: PathBuf,
    /// Run only the ceilings (minimal actix-web, SELECT 1), without the Hub.
    #[arg(long)]
    skip_hub: bool,
}

/// Helper subcommands.
#[derive(Debug, Subcommand)]
enum Sub {
    /// Runs the minimal actix-web server (used by the harness itself).
    #[command(hide = true)]
    ServeMinimal {
        /// Port on 127.0.0.1.
        #[arg(long)]
        port: u16,
        /// Worker threads (default: one per core).
        #[arg(long)]
        workers: Option<usize>,
    },
}

/// Parses `10s`, `1.5s`, `500ms`, `2m` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration `{text}` (expected e.g. 10s, 500ms, 1m)"))?;
    Duration::try_from_secs_f64(value * scale)
        .map_err(|_| format!("invalid duration `{text}` (must be positive and finite)"))
}

/// Logical CPUs of this machine.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the Tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Some(Sub::ServeMinimal { port, workers }) => {
            runtime.block_on(serve_minimal(port, workers.unwrap_or_else(cores)))
        }
        None => runtime.block_on(bench(&cli)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The hidden `serve-minimal` subcommand.
async fn serve_minimal(port: u16, workers: usize) -> AnyResult<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    whatpro_app::bench_support::serve_minimal(listener, workers).await?;
    Ok(())
}

/// The servers a run talks to.
struct Servers {
    hub: Option<ServerProcess>,
    minimal: Option<ServerProcess>,
}

impl Servers {
    /// Stops every server that was started.
    async fn shutdown(self) {
        for server in [self.hub, self.minimal].into_iter().flatten() {
            server.shutdown().await;
        }
    }
}

/// The whole benchmark run.
async fn bench(cli: &Cli) -> AnyResult<()> {
    if cli.connections.is_empty() || cli.connections.contains(&0) {
        return Err("--connections needs one or more positive numbers".into());
    }
    if !cli.skip_hub && !cli.server_bin.is_file() {
        return Err(format!(
            "server binary {} not found: build it with `cargo build --release -p whatpro-app`, \
             pass --server-bin, or pass --skip-hub to measure only the ceilings",
            cli.server_bin.display()
        )
        .into());
    }
    std::fs::create_dir_all(&cli.out)
        .map_err(|e| format!("cannot create {}: {e}", cli.out.display()))?;

    eprintln!("starting a throwaway PostgreSQL…");
    let cluster = whatpro_pgcluster::LocalCluster::start_throwaway()
        .map_err(|e| format!("cannot start PostgreSQL: {e}"))?;
    let url = cluster.url("postgres");

    let mut servers = Servers {
        hub: None,
        minimal: None,
    };
    let result = tokio::select! {
        result = run_scenarios(cli, &url, &mut servers) => result,
        _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
    };
    servers.shutdown().await;
    if let Err(e) = cluster.stop() {
        eprintln!("warning: could not stop PostgreSQL: {e}");
    }
    let rows = result?;

    let report = Report {
        timestamp: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)?,
        git_commit: git_commit(),
        cores: cores(),
        warmup_secs: cli.warmup.as_secs_f64(),
        duration_secs: cli.duration.as_secs_f64(),
        rows,
    };
    let json_path = cli.out.join("foundation.json");
    let md_path = cli.out.join("foundation.md");
    let md = report::markdown(&report);
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)
        .map_err(|e| format!("cannot write {}: {e}", json_path.display()))?;
    std::fs::write(&md_path, &md)
        .map_err(|e| format!("cannot write {}: {e}", md_path.display()))?;
    println!("{md}");
    eprintln!("wrote {} and {}", json_path.display(), md_path.display());
    Ok(())
}

/// Starts the servers and runs every scenario at every concurrency.
async fn run_scenarios(cli: &Cli, url: &str, servers: &mut Servers) -> AnyResult<Vec<Row>> {
    let schedule = Schedule {
        warmup: cli.warmup,
        duration: cli.duration,
    };

    let minimal = servers.minimal.insert(start_minimal(&cli.out)?);
    minimal.wait_healthy("/", STARTUP_TIMEOUT).await?;
    let minimal_addr = minimal.addr;

    let hub_addr = if cli.skip_hub {
        eprintln!("--skip-hub: not starting the Hub, its scenarios are skipped");
        None
    } else {
        let hub = servers
            .hub
            .insert(start_hub(&cli.server_bin, url, &cli.out)?);
        hub.wait_healthy("/healthz", STARTUP_TIMEOUT).await?;
        Some(hub.addr)
    };

    // Concurrency is the outer loop so that each row and the ceilings it is quoted against are
    // measured close together in time (the machine's background load drifts).
    let scenarios = http_scenarios();
    let pool = whatpro_db::build_pool(url, &whatpro_db::PoolSettings::default())?;
    let mut rows = Vec::new();
    for &conns in &cli.connections {
        for sc in &scenarios {
            let addr = match (sc.target, hub_addr) {
                (Target::Minimal, _) => minimal_addr,
                (Target::Hub, Some(addr)) => addr,
                (Target::Hub, None) => continue,
            };
            rows.push(run_http(sc, addr, conns, schedule).await?);
        }
        let workers = vec![SelectOneWorker::new(pool.clone()); conns];
        let stats = loadgen::run(workers, schedule).await?;
        let row = Row {
            scenario: SELECT_1.to_owned(),
            target: "postgres".to_owned(),
            connections: conns,
            stats,
            ceiling: Some("ceiling (DB)".to_owned()),
            quoted_against: Vec::new(),
            ratios: Vec::new(),
        };
        progress(&row);
        rows.push(row);
    }
    pool.close();

    // Report grouped by scenario (in declaration order), then by concurrency.
    let rank = |name: &str| {
        scenarios
            .iter()
            .position(|sc| sc.name == name)
            .unwrap_or(scenarios.len())
    };
    rows.sort_by_key(|row| rank(&row.scenario));
    attach_ratios(&mut rows);
    Ok(rows)
}

/// Runs one HTTP scenario at one concurrency.
async fn run_http(
    sc: &HttpScenario,
    addr: SocketAddr,
    conns: usize,
    schedule: Schedule,
) -> AnyResult<Row> {
    // Fail early on a request that cannot be built instead of counting errors.
    sc.request
        .build(&addr.to_string())
        .map_err(|e| format!("scenario `{}` has an invalid request: {e}", sc.name))?;
    let spec = Arc::new(sc.request.clone());
    let workers = (0..conns)
        .map(|_| HttpWorker::new(addr, Arc::clone(&spec)))
        .collect();
    let stats = loadgen::run(workers, schedule).await?;
    let row = Row {
        scenario: sc.name.clone(),
        target: sc.target.as_str().to_owned(),
        connections: conns,
        stats,
        ceiling: sc.ceiling.clone(),
        quoted_against: sc.quoted_against.clone(),
        ratios: Vec::new(),
    };
    progress(&row);
    Ok(row)
}

/// One line per finished row on stderr.
fn progress(row: &Row) {
    let s = &row.stats;
    eprintln!(
        "{:<24} c={:<3} {:>9.0} req/s  p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms  \
         errors {}  non-2xx {}",
        row.scenario,
        row.connections,
        s.rps,
        s.p50_ms,
        s.p90_ms,
        s.p99_ms,
        s.max_ms,
        s.errors,
        s.non_2xx
    );
}

/// Starts this binary's `serve-minimal` in its own process.
fn start_minimal(out: &Path) -> AnyResult<ServerProcess> {
    let port = free_port()?;
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command.args(["serve-minimal", "--port", &port.to_string()]);
    ServerProcess::spawn(
        "minimal actix-web",
        command,
        SocketAddr::from(([127, 0, 0, 1], port)),
        &out.join("minimal-server.log"),
    )
}

/// Starts `<server_bin> serve` against the throwaway database.
fn start_hub(server_bin: &Path, url: &str, out: &Path) -> AnyResult<ServerProcess> {
    let port = free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut command = Command::new(server_bin);
    command
        .arg("serve")
        .env("DATABASE_URL", url)
        .env("CHATWOOT_URL", "http://127.0.0.1:9")
        .env("HUB_BIND", addr.to_string())
        .env("HUB_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn");
    ServerProcess::spawn("Hub", command, addr, &out.join("hub-server.log"))
}

/// `git rev-parse --short HEAD`, if git and a commit are available.
fn git_commit() -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let commit = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !commit.is_empty()).then_some(commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn cli_defaults() {
        let cli = Cli::try_parse_from(["whatpro-bench"]).unwrap();
        assert_eq!(cli.connections, vec![1, 16, 64]);
        assert_eq!(cli.duration, Duration::from_secs(10));
        assert_eq!(cli.warmup, Duration::from_secs(2));
        let cli = Cli::try_parse_from(["whatpro-bench", "serve-minimal", "--port", "1"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Sub::ServeMinimal { port: 1, .. })
        ));
    }
}
