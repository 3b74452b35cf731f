//! `whatpro-bench`: the benchmark harness of WhatPro Hub.
//!
//! Starts a throwaway PostgreSQL, the Chatwoot simulator (in this process), the release
//! `whatpro-hub serve` and a one-route actix-web server (this binary's hidden `serve-minimal`
//! subcommand, in its own process), signs in to the Hub once, then drives the servers with a
//! closed-loop load generator (fixed concurrency, warm-up, measured duration, HDR histograms).
//! The Hub's scenarios are quoted as percentages of references measured in the same run: the
//! minimal actix-web handler, raw `SELECT 1` over the server's pool settings, and (for
//! authenticated routes) the Hub's own `/healthz`. Results go to `<out>/foundation.json` and
//! `<out>/foundation.md`.
//!
//! Then (unless `--skip-jobs`) it measures background work, which `whatpro-bench jobs
//! [--quick]` also runs alone (see [`jobs`]): the health scheduler probing 10 000 instances
//! against the fake provider server, and the inbox sync of accounts with 1 000 inboxes;
//! results in `<out>/jobs.json` and `<out>/jobs.md`.

mod jobs;
mod loadgen;
mod machine;
mod plans;
mod procs;
mod report;
mod scenario;
mod stats;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use serde::Deserialize;
use tokio::process::Command;
use whatpro_asaas_sim::{AsaasSim, SimConfig as AsaasSimConfig};
use whatpro_chatwoot_sim::ChatwootSim;
use whatpro_crypto::KeyRing;

use crate::loadgen::{HttpWorker, Schedule, SelectOneWorker, fetch};
use crate::machine::{LoadAverage, cores};
use crate::procs::{ServerProcess, free_port};
use crate::report::{GoalResult, Report, Row, attach_ratios, evaluate_goals};
use crate::scenario::{
    API_KEYS_PATH, Context, FOUNDATION, HttpScenario, INSTANCE_TOKENS_PATH, RequestSpec, SELECT_1,
    SSO_PATH, Target, api_key_body, authed_post, http_scenarios, instance_token_body, sso_request,
};
use crate::stats::Stats;

/// The error type of the harness: any error, reported as a message.
pub type AnyResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// How long a server may take to answer its health route after starting.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the sign-in and the check request before each scenario may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// `HUB_SSO_RATE_PER_MINUTE` for the Hub (default 10 per client IP and minute; every bench
/// login comes from 127.0.0.1). The largest value the Hub accepts: a burst of a million and
/// ~16 700 more per second, far above what one machine can sign in.
const SSO_RATE_PER_MINUTE: u32 = 1_000_000;

/// `HUB_API_KEY_RATE_PER_MINUTE` for the Hub (default 600 per key and minute): the bench's one
/// key sends far more, and its row must measure verification, not the rate limiter.
const API_KEY_RATE_PER_MINUTE: u32 = 1_000_000;

/// Age after which the bench signs in again before the next concurrency level (the Hub's access
/// tokens live 15 minutes; only runs with long `--duration`s get there).
const RESIGN_IN_AFTER: Duration = Duration::from_secs(10 * 60);

/// Share of failed or non-2xx exchanges in a row above which the report warns.
const WARN_FAILURE_SHARE: f64 = 0.01;

/// Share of failed or non-2xx exchanges above which a row measures failures, not the scenario:
/// the run then exits with an error (after writing the report).
const INVALID_FAILURE_SHARE: f64 = 0.5;

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
    /// Skip the background-job measurements (`jobs`) that follow the HTTP scenarios.
    #[arg(long)]
    skip_jobs: bool,
    /// Extra paired measurements of each target row and its reference (alternating which
    /// goes first); the verdict uses the median of all of them.
    #[arg(long, default_value_t = 4)]
    goal_repeats: usize,
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
    /// Measures the inbox domain's background work: the health scheduler probing many
    /// instances (probes/s, its CPU and peak RSS) and the inbox sync of large accounts.
    Jobs(jobs::JobsArgs),
    /// Runs the Hub's health scheduler for the `jobs` measurement (used by the harness).
    #[command(hide = true)]
    HealthWorker(jobs::WorkerArgs),
    /// Only the write-path comparison (create instance with quota + metering on vs off), in
    /// alternating pairs: a quick loop while working on that path.
    Writes(plans::WritesArgs),
}

/// Parses `10s`, `1.5s`, `500ms`, `2m` or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
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
        Some(Sub::Jobs(args)) => runtime.block_on(jobs::run(&args)),
        Some(Sub::HealthWorker(args)) => runtime.block_on(jobs::health_worker(&args)),
        Some(Sub::Writes(args)) => runtime.block_on(plans::writes(&args)),
        None => runtime.block_on(async {
            bench(&cli).await?;
            if cli.skip_jobs || cli.skip_hub {
                return Ok(());
            }
            jobs::run(&jobs::JobsArgs::full(cli.out.clone())).await
        }),
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

/// What the Hub needs besides the database: its keys and a working Chatwoot.
struct HubSetup {
    /// The simulator's base URL (`CHATWOOT_URL`).
    chatwoot_url: String,
    /// The seeded administrator's personal API token (the SSO credential).
    chatwoot_access_token: String,
    /// `HUB_TOKEN_KEYS`.
    token_keys: String,
    /// `HUB_DATA_KEYS`.
    data_keys: String,
    /// The Asaas simulator's base URL (`ASAAS_URL`).
    asaas_url: String,
}

impl HubSetup {
    /// Fresh keys and the simulator's seeded administrator.
    fn new(sim: &ChatwootSim, asaas: &AsaasSim) -> AnyResult<Self> {
        let key = || -> AnyResult<String> {
            Ok(KeyRing::generate()
                .map_err(|e| format!("cannot generate a PASERK key: {e}"))?
                .to_paserk_list())
        };
        let seed = sim.seed_demo();
        Ok(Self {
            chatwoot_url: sim.url(),
            chatwoot_access_token: seed.admin.access_token,
            token_keys: key()?,
            data_keys: key()?,
            asaas_url: asaas.url(),
        })
    }
}

/// What [`run_scenarios`] measured.
struct RunResults {
    /// The rows, grouped by section, then in declaration order, then by concurrency.
    rows: Vec<Row>,
    /// The targets, checked.
    goals: Vec<GoalResult>,
    /// Skipped scenarios and doubtful rows.
    warnings: Vec<String>,
    /// How many scenario rows were skipped.
    skipped: usize,
    /// How many rows mostly failed (see [`INVALID_FAILURE_SHARE`]).
    invalid: usize,
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
    let loadavg_start = LoadAverage::now();

    // The simulator serves from this process's runtime until it is dropped at the end.
    let sim = if cli.skip_hub {
        None
    } else {
        let sim = ChatwootSim::start(([127, 0, 0, 1], 0).into())
            .await
            .map_err(|e| format!("cannot start the Chatwoot simulator: {e}"))?;
        Some(sim)
    };
    // The fake Asaas the Hub processes webhook events against (also in this process).
    let asaas = if cli.skip_hub {
        None
    } else {
        Some(
            AsaasSim::start(AsaasSimConfig::new(plans::ASAAS_KEY))
                .await
                .map_err(|e| format!("cannot start the Asaas simulator: {e}"))?,
        )
    };
    let setup = match (&sim, &asaas) {
        (Some(sim), Some(asaas)) => Some(HubSetup::new(sim, asaas)?),
        _ => None,
    };

    eprintln!("starting a throwaway PostgreSQL…");
    let cluster = whatpro_pgcluster::LocalCluster::start_throwaway()
        .map_err(|e| format!("cannot start PostgreSQL: {e}"))?;
    let url = cluster.url("postgres");

    let mut servers = Servers {
        hub: None,
        minimal: None,
    };
    let result = tokio::select! {
        result = run_scenarios(cli, &url, setup.as_ref(), &mut servers) => result,
        _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
    };
    let loadavg_end = LoadAverage::now();
    servers.shutdown().await;
    drop(sim);
    drop(asaas);
    if let Err(e) = cluster.stop() {
        eprintln!("warning: could not stop PostgreSQL: {e}");
    }
    let results = result?;

    let report = Report {
        timestamp: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)?,
        git_commit: git_commit(),
        cores: cores(),
        cpu_model: machine::cpu_model(),
        loadavg_start,
        loadavg_end,
        warmup_secs: cli.warmup.as_secs_f64(),
        duration_secs: cli.duration.as_secs_f64(),
        notes: notes(cli.skip_hub),
        rows: results.rows,
        goals: results.goals,
        warnings: results.warnings,
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
    if results.skipped + results.invalid > 0 {
        return Err(format!(
            "{} scenario row(s) were skipped and {} mostly failed; see the warnings in {}",
            results.skipped,
            results.invalid,
            md_path.display()
        )
        .into());
    }
    Ok(())
}

/// How the run was set up, for the report.
fn notes(skip_hub: bool) -> Vec<String> {
    let mut notes = vec![
        "The load generator runs on the same machine as the servers and competes with them for \
         the cores."
            .to_owned(),
        "Percentages are req/s relative to the named reference at the same concurrency; \
         `p99 ×N` is the row's p99 latency over the reference's."
            .to_owned(),
    ];
    notes.push(
        "Each target is measured again in alternating pairs with its reference \
         (`--goal-repeats`, default 4 more pairs); its verdict uses the median of all the \
         paired percentages, listed under targets."
            .to_owned(),
    );
    if skip_hub {
        notes.push("--skip-hub: only the ceilings were measured.".to_owned());
    } else {
        notes.push(format!(
            "The bench raises `HUB_SSO_RATE_PER_MINUTE` to {SSO_RATE_PER_MINUTE} for the Hub \
             (default: 10 per client IP and minute; every bench login comes from 127.0.0.1), so \
             the SSO rows measure signing in, not the rate limiter."
        ));
        notes.push(
            "`CHATWOOT_URL` is the bundled Chatwoot simulator (whatpro-chatwoot-sim), served by \
             the bench process itself: every SSO call verifies the token against it over HTTP \
             and writes a session."
                .to_owned(),
        );
        notes.push(
            "Authenticated rows use the access token of one sign-in before the scenarios (it \
             lives 15 minutes; runs longer than 10 minutes sign in again between concurrency \
             levels)."
                .to_owned(),
        );
        notes.push(
            "The create-instance rows run in the bench process over the Hub's database with \
             the Hub's own provider service and Postgres store (validation, webhook token, \
             insert and audit in one transaction): with the entitlements service as the quota \
             port and the metering record (on), or with a no-op quota port (off), measured \
             back to back; each worker creates in its own account, except in the one-account \
             row. Their first health probes are spread over a day, so the Hub's scheduler \
             (same database) does not probe the growing pile of bench instances during the \
             run."
                .to_owned(),
        );
        notes.push(
            "Webhook rows post Asaas `PAYMENT_RECEIVED` events with a new id each (so each is \
             stored, then processed: the Hub re-reads the payment from the bundled Asaas \
             simulator, which does not know it)."
                .to_owned(),
        );
        notes.push(format!(
            "Machine-credential rows use one API key (scope `members:read`) and one instance \
             token (bound to the Hub's origin, sent as `Origin`), both created through the API \
             after signing in; `HUB_API_KEY_RATE_PER_MINUTE` is raised to \
             {API_KEY_RATE_PER_MINUTE} so the key's row measures verification, not the limiter."
        ));
    }
    notes
}

/// Starts the servers, signs in, and runs every scenario at every concurrency.
async fn run_scenarios(
    cli: &Cli,
    url: &str,
    setup: Option<&HubSetup>,
    servers: &mut Servers,
) -> AnyResult<RunResults> {
    let schedule = Schedule {
        warmup: cli.warmup,
        duration: cli.duration,
    };

    let minimal = servers.minimal.insert(start_minimal(&cli.out)?);
    minimal.wait_healthy("/", STARTUP_TIMEOUT).await?;
    let minimal_addr = minimal.addr;

    let hub = match setup {
        None => {
            eprintln!("--skip-hub: not starting the Hub, its scenarios are skipped");
            None
        }
        Some(setup) => {
            let hub = servers
                .hub
                .insert(start_hub(&cli.server_bin, url, setup, &cli.out)?);
            hub.wait_healthy("/healthz", STARTUP_TIMEOUT).await?;
            Some((hub.addr, setup))
        }
    };
    let hub_addr = hub.map(|(addr, _)| addr);
    let mut signed_in_at = Instant::now();
    let mut ctx = match hub {
        Some((addr, setup)) => {
            let hub_access_token = sign_in(addr, &setup.chatwoot_access_token).await?;
            let (api_key, instance_token, instance_origin) =
                machine_credentials(addr, &hub_access_token).await?;
            Context {
                chatwoot_access_token: setup.chatwoot_access_token.clone(),
                hub_access_token,
                api_key,
                instance_token,
                instance_origin,
            }
        }
        None => Context::default(),
    };
    if hub.is_some() {
        eprintln!(
            "signed in to the Hub as the simulator's administrator; created an API key and an \
             instance token"
        );
    }

    // Concurrency is the outer loop so that each row and the references it is quoted against
    // are measured close together in time (the machine's background load drifts).
    let mut scenarios = http_scenarios(&ctx);
    let pool = whatpro_db::build_pool(url, &whatpro_db::PoolSettings::default())?;
    let mut rows = Vec::new();
    let mut warnings = Vec::new();
    let mut skipped = 0;
    let mut invalid = 0;
    let mut write_setup: Option<plans::WriteSetup> = None;
    let mut webhook_run = 0;
    for &conns in &cli.connections {
        if let Some((addr, _)) = hub
            && signed_in_at.elapsed() >= RESIGN_IN_AFTER
        {
            ctx.hub_access_token = sign_in(addr, &ctx.chatwoot_access_token).await?;
            // The instance token lives at most an hour: take a fresh one too.
            let (_, instance_token, _) = machine_credentials(addr, &ctx.hub_access_token).await?;
            ctx.instance_token = instance_token;
            signed_in_at = Instant::now();
            scenarios = http_scenarios(&ctx);
            eprintln!("signed in again (the access token was about to expire)");
        }
        for sc in &scenarios {
            let addr = match (sc.target, hub_addr) {
                (Target::Minimal, _) => minimal_addr,
                (Target::Hub, Some(addr)) => addr,
                (Target::Hub, None) => continue,
            };
            match run_http(sc, addr, conns, schedule).await? {
                Measured::Row(row) => {
                    warnings.extend(row_warning(&row));
                    invalid += usize::from(mostly_failed(&row.stats));
                    rows.push(*row);
                }
                Measured::Skipped(reason) => {
                    eprintln!("warning: {reason}");
                    warnings.push(reason);
                    skipped += 1;
                }
            }
        }
        if let Some(addr) = hub_addr {
            let write = match &write_setup {
                Some(w) => w.clone(),
                None => {
                    let tenants = cli.connections.iter().copied().max().unwrap_or(1);
                    let setup = plans::WriteSetup::new(pool.clone(), tenants).await?;
                    write_setup.insert(setup).clone()
                }
            };
            webhook_run += 1;
            for row in plans_rows(addr, &write, conns, schedule, webhook_run).await? {
                progress(&row);
                warnings.extend(row_warning(&row));
                invalid += usize::from(mostly_failed(&row.stats));
                rows.push(row);
            }
        }
        let workers = vec![SelectOneWorker::new(pool.clone()); conns];
        let stats = loadgen::run(workers, schedule).await?;
        let row = Row {
            section: FOUNDATION.to_owned(),
            scenario: SELECT_1.to_owned(),
            target: "postgres".to_owned(),
            connections: conns,
            stats,
            ceiling: Some("ceiling (DB)".to_owned()),
            quoted_against: Vec::new(),
            ratios: Vec::new(),
        };
        progress(&row);
        warnings.extend(row_warning(&row));
        invalid += usize::from(mostly_failed(&row.stats));
        rows.push(row);
    }

    // Report grouped by section (in order of first declaration), then by scenario (in
    // declaration order), then by concurrency (the sort is stable).
    let mut sections: Vec<&str> = Vec::new();
    for sc in &scenarios {
        if !sections.contains(&sc.section) {
            sections.push(sc.section);
        }
    }
    let section_rank = |name: &str| {
        sections
            .iter()
            .position(|s| *s == name)
            .unwrap_or(sections.len())
    };
    let rank = |name: &str| {
        scenarios
            .iter()
            .position(|sc| sc.name == name)
            .unwrap_or(scenarios.len())
    };
    rows.sort_by_key(|row| (section_rank(&row.section), rank(&row.scenario)));
    attach_ratios(&mut rows);
    let top = cli.connections.iter().copied().max().unwrap_or(1);
    let write_goal = plans::write_goal(top);
    let mut goals = evaluate_goals(
        scenarios
            .iter()
            .filter(|sc| sc.target == Target::Minimal || hub_addr.is_some())
            .flat_map(|sc| sc.goals.iter().map(|g| (sc.name.as_str(), g)))
            .chain(hub_addr.map(|_| (plans::WRITE_ON, &write_goal))),
        &rows,
    );
    // Repeat each target's pair (row and reference) to take the median: a single
    // measurement on a shared 2-core machine swings by tens of percent.
    if let Some((addr, _)) = hub
        && signed_in_at.elapsed() >= RESIGN_IN_AFTER
    {
        ctx.hub_access_token = sign_in(addr, &ctx.chatwoot_access_token).await?;
        let (_, instance_token, _) = machine_credentials(addr, &ctx.hub_access_token).await?;
        ctx.instance_token = instance_token;
        scenarios = http_scenarios(&ctx);
    }
    for goal in &mut goals {
        if goal.percent.is_none() || cli.goal_repeats == 0 {
            continue;
        }
        let mut repeats = Vec::with_capacity(cli.goal_repeats);
        for round in 0..cli.goal_repeats {
            let pair = if round % 2 == 0 {
                [goal.of.clone(), goal.scenario.clone()]
            } else {
                [goal.scenario.clone(), goal.of.clone()]
            };
            let mut rps = std::collections::HashMap::new();
            for name in pair {
                let measured = measure_named(
                    &name,
                    &scenarios,
                    hub_addr,
                    minimal_addr,
                    write_setup.as_ref(),
                    goal.connections,
                    schedule,
                )
                .await?;
                if let Some(value) = measured {
                    rps.insert(name, value);
                }
            }
            if let (Some(row), Some(reference)) = (rps.get(&goal.scenario), rps.get(&goal.of))
                && *reference > 0.0
            {
                repeats.push(100.0 * row / reference);
            }
        }
        eprintln!(
            "{} at {}: repeats {repeats:?}",
            goal.scenario, goal.connections
        );
        goal.add_samples(&repeats);
    }
    pool.close();
    Ok(RunResults {
        rows,
        goals,
        warnings,
        skipped,
        invalid,
    })
}

/// Measures one named scenario (HTTP, or the in-process write path) at `conns` and returns
/// its req/s; `None` when it cannot be measured here.
async fn measure_named(
    name: &str,
    scenarios: &[HttpScenario],
    hub: Option<SocketAddr>,
    minimal: SocketAddr,
    write: Option<&plans::WriteSetup>,
    conns: usize,
    schedule: Schedule,
) -> AnyResult<Option<f64>> {
    if name == plans::WRITE_ON || name == plans::WRITE_OFF {
        let Some(write) = write else {
            return Ok(None);
        };
        let with_checks = name == plans::WRITE_ON;
        let workers = (0..conns)
            .map(|i| plans::WriteWorker::new(write.clone(), with_checks, i, true))
            .collect();
        return Ok(Some(loadgen::run(workers, schedule).await?.rps));
    }
    let Some(sc) = scenarios.iter().find(|sc| sc.name == name) else {
        return Ok(None);
    };
    let addr = match (sc.target, hub) {
        (Target::Minimal, _) => minimal,
        (Target::Hub, Some(addr)) => addr,
        (Target::Hub, None) => return Ok(None),
    };
    Ok(match run_http(sc, addr, conns, schedule).await? {
        Measured::Row(row) => Some(row.stats.rps),
        Measured::Skipped(_) => None,
    })
}

/// The plans-and-billing rows at one concurrency: the write path without and with quota
/// check + metering (measured back to back), then webhook intake.
async fn plans_rows(
    hub: SocketAddr,
    write: &plans::WriteSetup,
    conns: usize,
    schedule: Schedule,
    run: u64,
) -> AnyResult<Vec<Row>> {
    let row = |scenario: &str, target: &str, stats: Stats, quoted: Vec<String>| Row {
        section: plans::SECTION.to_owned(),
        scenario: scenario.to_owned(),
        target: target.to_owned(),
        connections: conns,
        stats,
        ceiling: None,
        quoted_against: quoted,
        ratios: Vec::new(),
    };
    let off = (0..conns)
        .map(|i| plans::WriteWorker::new(write.clone(), false, i, true))
        .collect();
    let off = loadgen::run(off, schedule).await?;
    let on = (0..conns)
        .map(|i| plans::WriteWorker::new(write.clone(), true, i, true))
        .collect();
    let on = loadgen::run(on, schedule).await?;
    let one_account = (0..conns)
        .map(|i| plans::WriteWorker::new(write.clone(), true, i, false))
        .collect();
    let one_account = loadgen::run(one_account, schedule).await?;
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let webhooks = (0..conns)
        .map(|_| plans::WebhookWorker::new(hub, Arc::clone(&next), run))
        .collect();
    let webhooks = loadgen::run(webhooks, schedule).await?;
    Ok(vec![
        row(plans::WRITE_OFF, "in-process", off, Vec::new()),
        row(
            plans::WRITE_ON,
            "in-process",
            on,
            vec![plans::WRITE_OFF.to_owned()],
        ),
        row(
            plans::WRITE_ON_ONE_ACCOUNT,
            "in-process",
            one_account,
            vec![plans::WRITE_OFF.to_owned()],
        ),
        row(plans::WEBHOOKS, "hub", webhooks, Vec::new()),
    ])
}

/// At most `max` characters of a response body, for error messages.
fn snippet(body: &Bytes, max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(max).collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// A hint for a 429: the Hub limited the bench.
fn rate_limit_hint(status: u16) -> String {
    if status == 429 {
        format!(
            " (429: the Hub rate-limited the bench, which sets HUB_SSO_RATE_PER_MINUTE={SSO_RATE_PER_MINUTE}; \
             does this server build honour it?)"
        )
    } else {
        String::new()
    }
}

/// Signs in once with the simulator's administrator token and returns the Hub access token.
async fn sign_in(hub: SocketAddr, chatwoot_access_token: &str) -> AnyResult<String> {
    /// The part of the login answer the bench needs.
    #[derive(Deserialize)]
    struct Login {
        access_token: String,
    }
    let spec = sso_request(chatwoot_access_token);
    let (status, body) = tokio::time::timeout(CHECK_TIMEOUT, fetch(hub, &spec))
        .await
        .map_err(|_| {
            format!("signing in (POST {SSO_PATH}) got no answer within {CHECK_TIMEOUT:?}")
        })?
        .map_err(|e| format!("signing in (POST {SSO_PATH}) failed: {e}"))?;
    if status != 200 {
        return Err(format!(
            "signing in (POST {SSO_PATH} with the simulator's administrator token) answered \
             {status}, expected 200{}: {}",
            rate_limit_hint(status),
            snippet(&body, 500)
        )
        .into());
    }
    let login: Login = serde_json::from_slice(&body).map_err(|e| {
        format!(
            "signing in (POST {SSO_PATH}) answered 200 without an access_token ({e}): {}",
            snippet(&body, 500)
        )
    })?;
    Ok(login.access_token)
}

/// Sends a set-up request and reads its JSON answer; anything but `expected` is an error.
async fn setup_call<T: serde::de::DeserializeOwned>(
    hub: SocketAddr,
    spec: &RequestSpec,
    expected: u16,
) -> AnyResult<T> {
    let what = format!("{} {}", spec.method, spec.path);
    let (status, body) = tokio::time::timeout(CHECK_TIMEOUT, fetch(hub, spec))
        .await
        .map_err(|_| format!("{what} got no answer within {CHECK_TIMEOUT:?}"))?
        .map_err(|e| format!("{what} failed: {e}"))?;
    if status != expected {
        return Err(format!(
            "{what} answered {status}, expected {expected}: {}",
            snippet(&body, 500)
        )
        .into());
    }
    Ok(serde_json::from_slice(&body)
        .map_err(|e| format!("{what}: unexpected answer ({e}): {}", snippet(&body, 500)))?)
}

/// Creates, through the API, the API key and the instance token the machine-credential rows
/// use: `(key, instance token, its origin)`. The token is bound to the Hub's own origin, as
/// for the embedded UI.
async fn machine_credentials(
    hub: SocketAddr,
    access_token: &str,
) -> AnyResult<(String, String, String)> {
    /// The part of `POST .../api-keys` the bench needs.
    #[derive(Deserialize)]
    struct Key {
        key: String,
    }
    /// The part of `POST /api/v1/instance-tokens` the bench needs.
    #[derive(Deserialize)]
    struct Token {
        token: String,
    }
    let origin = format!("http://{hub}");
    let key: Key = setup_call(
        hub,
        &authed_post(API_KEYS_PATH, access_token, api_key_body()),
        201,
    )
    .await?;
    let token: Token = setup_call(
        hub,
        &authed_post(
            INSTANCE_TOKENS_PATH,
            access_token,
            instance_token_body(&origin),
        ),
        201,
    )
    .await?;
    Ok((key.key, token.token, origin))
}

/// A scenario at one concurrency: measured, or skipped with the reason.
enum Measured {
    Row(Box<Row>),
    Skipped(String),
}

/// Runs one HTTP scenario at one concurrency, after checking that one request succeeds.
async fn run_http(
    sc: &HttpScenario,
    addr: SocketAddr,
    conns: usize,
    schedule: Schedule,
) -> AnyResult<Measured> {
    // Fail early on a request that cannot be built instead of counting errors.
    let prepared = sc
        .request
        .prepare(&addr.to_string())
        .map_err(|e| format!("scenario `{}` has an invalid request: {e}", sc.name))?;
    // A scenario whose requests fail would measure error handling: skip it, with the reason.
    let skip = |why: String| {
        Ok(Measured::Skipped(format!(
            "skipped `{}` at c={conns}: {why}",
            sc.name
        )))
    };
    match tokio::time::timeout(CHECK_TIMEOUT, fetch(addr, &sc.request)).await {
        Err(_) => {
            return skip(format!(
                "a first request got no answer within {CHECK_TIMEOUT:?}"
            ));
        }
        Ok(Err(e)) => return skip(format!("a first request failed: {e}")),
        Ok(Ok((status, body))) if !(200..300).contains(&status) => {
            return skip(format!(
                "a first request answered {status}{}: {}",
                rate_limit_hint(status),
                snippet(&body, 300)
            ));
        }
        Ok(Ok(_)) => {}
    }
    let prepared = Arc::new(prepared);
    let workers = (0..conns)
        .map(|_| HttpWorker::new(addr, Arc::clone(&prepared)))
        .collect();
    let stats = loadgen::run(workers, schedule).await?;
    let row = Row {
        section: sc.section.to_owned(),
        scenario: sc.name.clone(),
        target: sc.target.as_str().to_owned(),
        connections: conns,
        stats,
        ceiling: sc.ceiling.clone(),
        quoted_against: sc.quoted_against.clone(),
        ratios: Vec::new(),
    };
    progress(&row);
    Ok(Measured::Row(Box::new(row)))
}

/// Whether more than [`INVALID_FAILURE_SHARE`] of the exchanges failed or were not 2xx (or
/// none completed).
fn mostly_failed(s: &Stats) -> bool {
    let attempts = s.attempts();
    attempts == 0 || (s.errors + s.non_2xx) as f64 > INVALID_FAILURE_SHARE * attempts as f64
}

/// A warning when more than [`WARN_FAILURE_SHARE`] of a row's exchanges failed or were not 2xx.
fn row_warning(row: &Row) -> Option<String> {
    let s: &Stats = &row.stats;
    let bad = s.errors + s.non_2xx;
    let attempts = s.attempts();
    if attempts == 0 {
        return Some(format!(
            "`{}` at c={}: no exchange completed in the measured window",
            row.scenario, row.connections
        ));
    }
    if (bad as f64) <= WARN_FAILURE_SHARE * attempts as f64 {
        return None;
    }
    let hint = if s.non_2xx_statuses.contains_key(&429) {
        rate_limit_hint(429)
    } else {
        String::new()
    };
    let statuses = if s.non_2xx > 0 {
        format!(" ({})", s.status_summary())
    } else {
        String::new()
    };
    let consequence = if mostly_failed(s) {
        "the row measures failures, not the scenario"
    } else {
        "its req/s counts non-2xx answers too"
    };
    Some(format!(
        "`{}` at c={}: {} of {attempts} exchanges failed ({} errors, {} non-2xx{statuses}){hint}; \
         {consequence}",
        row.scenario, row.connections, bad, s.errors, s.non_2xx
    ))
}

/// One line per finished row on stderr.
fn progress(row: &Row) {
    let s = &row.stats;
    eprintln!(
        "{:<42} c={:<3} {:>9.0} req/s  p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms  \
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

/// Starts `<server_bin> serve` against the throwaway database and the simulator.
fn start_hub(
    server_bin: &Path,
    url: &str,
    setup: &HubSetup,
    out: &Path,
) -> AnyResult<ServerProcess> {
    let port = free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut command = Command::new(server_bin);
    command
        .arg("serve")
        .env("DATABASE_URL", url)
        .env("CHATWOOT_URL", &setup.chatwoot_url)
        .env("HUB_TOKEN_KEYS", &setup.token_keys)
        .env("HUB_DATA_KEYS", &setup.data_keys)
        .env("HUB_SSO_RATE_PER_MINUTE", SSO_RATE_PER_MINUTE.to_string())
        .env(
            "HUB_API_KEY_RATE_PER_MINUTE",
            API_KEY_RATE_PER_MINUTE.to_string(),
        )
        // The simulator listens on loopback (as in `whatpro-hub dev` and the tests).
        .env("HUB_ALLOW_PRIVATE_UPSTREAMS", "true")
        .env("ASAAS_URL", &setup.asaas_url)
        .env("ASAAS_API_KEY", plans::ASAAS_KEY)
        .env("ASAAS_WEBHOOK_TOKEN", plans::WEBHOOK_TOKEN)
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

    fn stats(requests: u64, errors: u64, non_2xx: &[(u16, u64)]) -> Stats {
        Stats {
            requests,
            rps: 0.0,
            p50_ms: 0.0,
            p90_ms: 0.0,
            p99_ms: 0.0,
            max_ms: 0.0,
            errors,
            non_2xx: non_2xx.iter().map(|(_, n)| n).sum(),
            non_2xx_statuses: non_2xx.iter().copied().collect(),
        }
    }

    fn row_of(stats: Stats) -> Row {
        Row {
            section: FOUNDATION.to_owned(),
            scenario: "s".to_owned(),
            target: "hub".to_owned(),
            connections: 4,
            stats,
            ceiling: None,
            quoted_against: Vec::new(),
            ratios: Vec::new(),
        }
    }

    #[test]
    fn failure_shares() {
        // Clean, and at most 1 % failed: no warning.
        assert_eq!(row_warning(&row_of(stats(1000, 0, &[]))), None);
        assert_eq!(row_warning(&row_of(stats(1000, 10, &[]))), None);
        // A few percent: a warning, but still a measurement.
        let some = stats(1000, 0, &[(503, 30)]);
        assert!(!mostly_failed(&some));
        let text = row_warning(&row_of(some)).unwrap();
        assert!(text.contains("30 of 1000 exchanges failed"), "{text}");
        assert!(text.contains("(503×30)"), "{text}");
        assert!(text.contains("counts non-2xx"), "{text}");
        // Mostly 429: invalid, with the rate-limit hint.
        let limited = stats(1000, 0, &[(429, 999)]);
        assert!(mostly_failed(&limited));
        let text = row_warning(&row_of(limited)).unwrap();
        assert!(text.contains("HUB_SSO_RATE_PER_MINUTE"), "{text}");
        assert!(text.contains("measures failures"), "{text}");
        // Nothing completed at all.
        assert!(mostly_failed(&stats(0, 0, &[])));
        assert!(row_warning(&row_of(stats(0, 0, &[]))).is_some());
    }

    #[test]
    fn snippets_are_cut_on_characters() {
        assert_eq!(snippet(&Bytes::from_static(b"short"), 10), "short");
        assert_eq!(snippet(&Bytes::from("ããããã"), 3), "ããã…");
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
