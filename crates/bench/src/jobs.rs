//! `whatpro-bench jobs`: the inbox domain's background work, measured.
//!
//! - **Health scheduler**: N instances (default 10 000) spread over accounts and the five
//!   provider types are stored through the real adapters, the fake provider server
//!   (`whatpro-providers-sim`, in this process) knows them all, and a separate process (this
//!   binary's hidden `health-worker`) runs the Hub's own scheduler ([`HealthScheduler`] over
//!   the state `wiring::build_state` builds, as `serve` does) for a few full rounds. Each
//!   round probes every instance once; the worker reports probes/s per round and, from
//!   `getrusage`, its own CPU time and peak RSS — the provider server's work is not in them.
//! - **Inbox sync**: accounts of the Chatwoot simulator with M inboxes (default 1 000) are
//!   connected and synced through `InboxService` (first sync, unchanged re-sync, a re-sync
//!   after 10 % renamed, removed and added), timed end to end, with Chatwoot's own answer
//!   time measured apart.
//!
//! Results go to `<out>/jobs.json` and `<out>/jobs.md`.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use tokio::process::Command;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use whatpro_app::config::{Config, Sources};
use whatpro_app::health_scheduler::{HEALTH_CONCURRENCY, HealthScheduler};
use whatpro_chatwoot_sim::{ChatwootSim, NewSimUser, SimRole};
use whatpro_crypto::{KeyRing, SecretBox};
use whatpro_db::{PgProviderStore, Pool, PoolSettings};
use whatpro_iam::{AuditContext, PlatformScope};
use whatpro_inbox::{
    Credentials, InstanceId, NewInstance, NewProvider, ProviderId, ProviderStore, ProviderType,
    SealedCredentials, SyncTrigger, instance_credentials_purpose, provider_credentials_purpose,
    seal_credentials,
};
use whatpro_kernel::AccountId;
use whatpro_providers_sim::{ProvidersSim, SimCredentials, SimInstance, SimState};

use crate::AnyResult;
use crate::machine::{LoadAverage, cores, cpu_model};

/// Evolution's server-wide key in the fake provider server.
const EVOLUTION_KEY: &str = "bench-evolution-global-key";

/// Stores written at once while seeding.
const SEED_CONCURRENCY: usize = 16;

/// First account id of the sync benchmark (the health instances use 1..).
const SYNC_ACCOUNT_BASE: i64 = 50_000;

/// `whatpro-bench jobs`.
#[derive(Debug, Clone, clap::Args)]
pub struct JobsArgs {
    /// Small sizes for a quick check: 1 000 instances, 200 inboxes, one round, one account.
    #[arg(long)]
    pub quick: bool,
    /// Instances the health scheduler probes (default 10 000; 1 000 with --quick).
    #[arg(long)]
    pub instances: Option<usize>,
    /// Accounts the instances spread over.
    #[arg(long, default_value = "100")]
    pub accounts: usize,
    /// Full probe rounds (default 3; 1 with --quick).
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Probes in flight (the scheduler's bound).
    #[arg(long, default_value_t = HEALTH_CONCURRENCY)]
    pub concurrency: usize,
    /// Inboxes of each synced account (default 1 000; 200 with --quick).
    #[arg(long)]
    pub inboxes: Option<usize>,
    /// Accounts synced, for a median (default 3; 1 with --quick).
    #[arg(long)]
    pub sync_accounts: Option<usize>,
    /// Directory for jobs.json and jobs.md.
    #[arg(long, default_value = "target/bench")]
    pub out: PathBuf,
}

impl JobsArgs {
    /// The full-size run, writing to `out` (what `whatpro-bench` runs after its HTTP rows).
    pub fn full(out: PathBuf) -> Self {
        Self {
            quick: false,
            instances: None,
            accounts: 100,
            rounds: None,
            concurrency: HEALTH_CONCURRENCY,
            inboxes: None,
            sync_accounts: None,
            out,
        }
    }
}

/// The hidden `health-worker` subcommand (configuration from the environment).
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// Full rounds.
    #[arg(long)]
    pub rounds: usize,
    /// Probes in flight.
    #[arg(long)]
    pub concurrency: usize,
}

/// One round of the worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoundResult {
    /// Instances probed.
    pub probed: usize,
    /// State changes stored.
    pub transitions: usize,
    /// Results that could not be stored.
    pub failed: usize,
    /// Wall time.
    pub secs: f64,
    /// `probed / secs`.
    pub probes_per_sec: f64,
}

/// What the worker reports on its last stdout line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerReport {
    /// The rounds.
    pub rounds: Vec<RoundResult>,
    /// User CPU time of the worker process (whole life, start-up included).
    pub cpu_user_secs: f64,
    /// System CPU time.
    pub cpu_sys_secs: f64,
    /// Peak resident set size.
    pub max_rss_kib: i64,
}

/// The health part of the report.
#[derive(Debug, Clone, Serialize)]
pub struct HealthResult {
    /// Instances.
    pub instances: usize,
    /// Accounts.
    pub accounts: usize,
    /// Probes in flight.
    pub concurrency: usize,
    /// Time to store the instances through the adapters.
    pub seed_secs: f64,
    /// The worker's report.
    pub worker: WorkerReport,
    /// Instances healthy afterwards (all of them, when every probe worked).
    pub healthy_after: i64,
    /// Status requests the provider server received.
    pub provider_requests: u64,
}

/// The sync part of the report.
#[derive(Debug, Clone, Serialize)]
pub struct SyncResult {
    /// Inboxes per account.
    pub inboxes: usize,
    /// Accounts synced.
    pub accounts: usize,
    /// Seconds of each first sync (every inbox new).
    pub first_secs: Vec<f64>,
    /// Seconds of each unchanged re-sync.
    pub unchanged_secs: Vec<f64>,
    /// Seconds of each re-sync after 10 % renamed, 10 % removed and 10 % added.
    pub changed_secs: Vec<f64>,
    /// Seconds Chatwoot (the simulator) takes to answer the inbox list, alone.
    pub chatwoot_list_secs: Vec<f64>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct JobsReport {
    /// RFC 3339.
    pub timestamp: String,
    /// Cores.
    pub cores: usize,
    /// CPU model.
    pub cpu_model: Option<String>,
    /// Load average before.
    pub loadavg_start: Option<LoadAverage>,
    /// Load average after.
    pub loadavg_end: Option<LoadAverage>,
    /// Health scheduler.
    pub health: HealthResult,
    /// Inbox sync.
    pub sync: SyncResult,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(pool: &Pool, sql: &str) -> AnyResult<i64> {
    let mut conn = pool.get().await?;
    let rows: Vec<Count> = diesel::sql_query(sql).load(&mut conn).await?;
    Ok(rows.iter().map(|r| r.n).sum())
}

async fn create_accounts(pool: &Pool, first: i64, last: i64) -> AnyResult<()> {
    let mut conn = pool.get().await?;
    diesel::sql_query(
        "INSERT INTO accounts (id, name) SELECT g, 'Bench ' || g FROM generate_series($1, $2) g",
    )
    .bind::<BigInt, _>(first)
    .bind::<BigInt, _>(last)
    .execute(&mut conn)
    .await?;
    Ok(())
}

fn creds(pairs: &[(&str, &str)]) -> Credentials {
    Credentials::new(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

/// The provider credentials of `provider_type` in account `account` (the fake server is told
/// the same secrets).
fn provider_secret(provider_type: ProviderType, account: i64) -> Credentials {
    match provider_type {
        ProviderType::Evolution => creds(&[("api_key", EVOLUTION_KEY)]),
        ProviderType::Wppconnect => creds(&[("secret_key", &format!("wpp-secret-{account}"))]),
        ProviderType::WhatsappCloud => {
            creds(&[("access_token", &format!("cloud-token-{account}"))])
        }
        ProviderType::Zapi | ProviderType::Uazapi => Credentials::default(),
    }
}

/// The instance `n` of the run: its name at the provider, the secret the fake demands, and the
/// instance credentials the Hub stores.
fn instance_of(
    provider_type: ProviderType,
    account: i64,
    n: usize,
) -> (String, String, Credentials) {
    match provider_type {
        ProviderType::Evolution => (
            format!("evo-{n}"),
            EVOLUTION_KEY.to_owned(),
            Credentials::default(),
        ),
        ProviderType::Zapi => {
            let token = format!("zapi-token-{n}");
            (
                format!("zapi-{n}"),
                token.clone(),
                creds(&[("instance_token", &token)]),
            )
        }
        ProviderType::Wppconnect => (
            format!("wpp-{n}"),
            format!("wpp-secret-{account}"),
            Credentials::default(),
        ),
        ProviderType::Uazapi => {
            let token = format!("uaz-token-{n}");
            (
                format!("uaz-{n}"),
                token.clone(),
                creds(&[("token", &token)]),
            )
        }
        ProviderType::WhatsappCloud => (
            format!("{}", 10_000_000_000_u64 + n as u64),
            format!("cloud-token-{account}"),
            Credentials::default(),
        ),
    }
}

/// Stores `instances` instances over `accounts` accounts (one provider per type and account)
/// and teaches the fake provider server every one of them.
async fn seed_instances(
    pool: &Pool,
    sim: &ProvidersSim,
    sealer: &SecretBox,
    instances: usize,
    accounts: usize,
) -> AnyResult<()> {
    let accounts = accounts.max(1);
    create_accounts(pool, 1, i64::try_from(accounts)?).await?;
    let store = Arc::new(PgProviderStore::new(pool.clone()));
    let platform = PlatformScope::for_system_jobs();
    let audit = AuditContext::default();
    let base_url = sim.url();
    // providers[account - 1][type index]
    let mut providers = Vec::with_capacity(accounts);
    for account in 1..=i64::try_from(accounts)? {
        let scope = platform.tenant(AccountId::new(account));
        let mut of_account = Vec::new();
        for provider_type in ProviderType::ALL {
            let id = ProviderId::from_uuid(uuid_v7());
            let sealed = seal_credentials(
                sealer,
                &provider_credentials_purpose(scope.account_id(), id),
                &provider_secret(provider_type, account),
            )?;
            let provider = NewProvider {
                id,
                provider_type,
                name: format!("{provider_type} of {account}"),
                base_url: base_url.clone(),
                sealed_credentials: sealed.sealed,
                credential_keys: sealed.keys,
                quota: None,
            };
            store.create_provider(&scope, &provider, &audit).await?;
            of_account.push(id);
        }
        providers.push(of_account);
    }
    let permits = Arc::new(Semaphore::new(SEED_CONCURRENCY));
    let mut tasks = JoinSet::new();
    let due = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    for n in 0..instances {
        let account_index = n % accounts;
        let account = i64::try_from(account_index + 1)?;
        let type_index = (n / accounts) % ProviderType::ALL.len();
        let provider_type = ProviderType::ALL[type_index];
        let provider_id = providers[account_index][type_index];
        let (name, secret, instance_credentials) = instance_of(provider_type, account, n);
        sim.add_instance(SimInstance {
            provider: provider_type,
            name: name.clone(),
            credentials: SimCredentials::secret(secret),
            state: SimState::Connected,
        });
        let id = InstanceId::from_uuid(uuid_v7());
        let scope = platform.tenant(AccountId::new(account));
        let sealed: Option<SealedCredentials> = if instance_credentials.keys().next().is_some() {
            Some(seal_credentials(
                sealer,
                &instance_credentials_purpose(scope.account_id(), id),
                &instance_credentials,
            )?)
        } else {
            None
        };
        let instance = NewInstance {
            id,
            provider_id,
            name,
            inbox_id: None,
            credentials: sealed,
            webhook_token_hash: vec![0; 32],
            first_check_at: due,
            quota: None,
        };
        let store = Arc::clone(&store);
        let permit = Arc::clone(&permits).acquire_owned().await?;
        let audit = audit.clone();
        tasks.spawn(async move {
            let result = store.create_instance(&scope, &instance, &audit).await;
            drop(permit);
            result.map(drop)
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

fn uuid_v7() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// The environment of the worker (and of the in-process sync state).
fn hub_env(
    database_url: &str,
    chatwoot_url: &str,
    data_keys: &str,
    token_keys: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", database_url.to_owned()),
        ("CHATWOOT_URL", chatwoot_url.to_owned()),
        ("HUB_DATA_KEYS", data_keys.to_owned()),
        ("HUB_TOKEN_KEYS", token_keys.to_owned()),
        ("HUB_ALLOW_PRIVATE_UPSTREAMS", "true".to_owned()),
        ("HUB_LOG_FORMAT", "json".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ]
}

/// The hidden `health-worker` subcommand: the Hub's scheduler over the Hub's own state, for
/// `rounds` full rounds; prints a [`WorkerReport`] as its last stdout line.
///
/// # Errors
/// Configuration, database or state errors.
pub async fn health_worker(args: &WorkerArgs) -> AnyResult<()> {
    let config = Config::load(&Sources::from_process()?)?;
    let url = config
        .database_url
        .as_ref()
        .ok_or("DATABASE_URL is required")?
        .expose()
        .to_owned();
    let pool = whatpro_db::build_pool(
        &url,
        &PoolSettings {
            max_size: config.db_pool_size,
            ..PoolSettings::default()
        },
    )?;
    let state = whatpro_app::wiring::build_state(config, pool.clone()).await?;
    let scheduler = HealthScheduler::new(state.health.clone(), args.concurrency);
    let mut rounds = Vec::new();
    for _ in 0..args.rounds {
        {
            let mut conn = pool.get().await?;
            diesel::sql_query(
                "UPDATE instance_health SET next_check_at = now() - interval '1 second'",
            )
            .execute(&mut conn)
            .await?;
        }
        let (stats, elapsed) = scheduler.probe_all_due().await;
        let secs = elapsed.as_secs_f64();
        rounds.push(RoundResult {
            probed: stats.probed,
            transitions: stats.transitions,
            failed: stats.failed,
            secs,
            probes_per_sec: stats.probed as f64 / secs.max(f64::EPSILON),
        });
    }
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)?;
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    let report = WorkerReport {
        rounds,
        cpu_user_secs: seconds(usage.user_time()),
        cpu_sys_secs: seconds(usage.system_time()),
        max_rss_kib: usage.max_rss(),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Runs the worker process and reads its report.
async fn run_worker(
    env: &[(&'static str, String)],
    rounds: usize,
    concurrency: usize,
) -> AnyResult<WorkerReport> {
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command
        .args([
            "health-worker",
            "--rounds",
            &rounds.to_string(),
            "--concurrency",
            &concurrency.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().await?;
    if !output.status.success() {
        return Err(format!("the health worker failed: {}", output.status).into());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or("the health worker printed no report")?;
    Ok(serde_json::from_str(line)?)
}

/// Times `f`.
async fn timed<T, F: std::future::Future<Output = T>>(f: F) -> (T, f64) {
    let started = Instant::now();
    let value = f.await;
    (value, started.elapsed().as_secs_f64())
}

/// Connects `accounts` simulator accounts with `inboxes` inboxes each and times their syncs.
async fn sync_bench(
    pool: &Pool,
    sim: &ChatwootSim,
    env: &[(&'static str, String)],
    inboxes: usize,
    accounts: usize,
) -> AnyResult<SyncResult> {
    let first = SYNC_ACCOUNT_BASE;
    let last = first + i64::try_from(accounts.max(1))? - 1;
    create_accounts(pool, first, last).await?;
    let sources = Sources::from_pairs(env.iter().map(|(k, v)| (*k, v.clone())));
    let state = whatpro_app::wiring::build_state(Config::load(&sources)?, pool.clone()).await?;
    let chatwoot = whatpro_chatwoot::ChatwootClient::new(
        url::Url::parse(&sim.url())?,
        whatpro_chatwoot::ClientSettings::default(),
    )?;
    let platform = PlatformScope::for_system_jobs();
    let mut result = SyncResult {
        inboxes,
        accounts: accounts.max(1),
        first_secs: Vec::new(),
        unchanged_secs: Vec::new(),
        changed_secs: Vec::new(),
        chatwoot_list_secs: Vec::new(),
    };
    let tenth = (inboxes / 10).max(1);
    for (i, account) in (first..=last).enumerate() {
        let token = format!("bench-admin-token-{account}");
        let user = 900_000 + account;
        sim.add_account(account, &format!("Bench {account}"));
        sim.set_inboxes(account, Vec::new());
        let ids = sim.seed_inboxes(account, 1_000_000 * (i64::try_from(i)? + 1), inboxes);
        sim.add_user(NewSimUser::new(
            user,
            "Bench Admin",
            format!("bench{account}@example.com"),
            token.clone(),
        ));
        sim.add_membership(user, account, SimRole::Administrator);
        let scope = platform.tenant(AccountId::new(account));
        state
            .inbox
            .connect(&scope, &token, &AuditContext::default())
            .await?;

        let (list, secs) = timed(chatwoot.list_inboxes(&token, AccountId::new(account))).await;
        if list?.len() != inboxes {
            return Err("the simulator listed another number of inboxes".into());
        }
        result.chatwoot_list_secs.push(secs);

        let (run, secs) = timed(state.inbox.sync(&scope, SyncTrigger::Manual)).await;
        let run = run?;
        if usize::try_from(run.counts.added)? != inboxes {
            return Err(format!("first sync added {} of {inboxes}", run.counts.added).into());
        }
        result.first_secs.push(secs);

        let (run, secs) = timed(state.inbox.sync(&scope, SyncTrigger::Manual)).await;
        if usize::try_from(run?.counts.unchanged)? != inboxes {
            return Err("the unchanged re-sync changed something".into());
        }
        result.unchanged_secs.push(secs);

        for id in ids.iter().take(tenth) {
            sim.add_inbox(
                account,
                ChatwootSim::api_inbox(*id, &format!("Renamed {id}")),
            );
        }
        for id in ids.iter().skip(tenth).take(tenth) {
            sim.remove_inbox(account, *id);
        }
        sim.seed_inboxes(
            account,
            1_000_000 * (i64::try_from(i)? + 1) + 500_000,
            tenth,
        );
        let (run, secs) = timed(state.inbox.sync(&scope, SyncTrigger::Manual)).await;
        let run = run?;
        if usize::try_from(run.counts.removed)? != tenth {
            return Err("the changed re-sync did not remove what it should".into());
        }
        result.changed_secs.push(secs);
    }
    Ok(result)
}

fn median(values: &[f64]) -> f64 {
    crate::report::median(values).unwrap_or(f64::NAN)
}

/// The markdown table of a run.
pub fn markdown(report: &JobsReport) -> String {
    let h = &report.health;
    let s = &report.sync;
    let mut out = String::new();
    out.push_str(&format!(
        "## Jobs run of {} ({} cores{})\n\n",
        report.timestamp,
        report.cores,
        report
            .cpu_model
            .as_deref()
            .map(|m| format!(", {m}"))
            .unwrap_or_default()
    ));
    if let (Some(start), Some(end)) = (&report.loadavg_start, &report.loadavg_end) {
        out.push_str(&format!(
            "Load average (1/5/15 min) {:.2} {:.2} {:.2} at start, {:.2} {:.2} {:.2} at end.\n\n",
            start.one, start.five, start.fifteen, end.one, end.five, end.fifteen
        ));
    }
    out.push_str(&format!(
        "- Health scheduler: {} instances over {} accounts and the five provider types, {} \
         probes in flight, against the fake provider server (in the bench process); the \
         scheduler runs in its own process (the Hub's `HealthScheduler` over `build_state`), so \
         its CPU and RSS are its own. Seeding them through the adapters took {:.1} s.\n",
        h.instances, h.accounts, h.concurrency, h.seed_secs
    ));
    out.push_str(&format!(
        "- Inbox sync: {} account(s) of the Chatwoot simulator with {} inboxes each, synced \
         through `InboxService` (Chatwoot call, planning, one transaction).\n\n",
        s.accounts, s.inboxes
    ));
    out.push_str("| measurement | result |\n|---|---|\n");
    for (i, round) in h.worker.rounds.iter().enumerate() {
        let label = if i == 0 {
            "health round 1 (cold: connections, WPPConnect tokens)".to_owned()
        } else {
            format!("health round {}", i + 1)
        };
        out.push_str(&format!(
            "| {label} | {} probes in {:.2} s = **{:.0} probes/s** ({} transitions, {} failed) |\n",
            round.probed, round.secs, round.probes_per_sec, round.transitions, round.failed
        ));
    }
    let probes: usize = h.worker.rounds.iter().map(|r| r.probed).sum();
    let cpu = h.worker.cpu_user_secs + h.worker.cpu_sys_secs;
    out.push_str(&format!(
        "| scheduler CPU (user + sys, whole process) | {cpu:.2} s ({:.2} + {:.2}) for {probes} probes = {:.0} µs/probe |\n",
        h.worker.cpu_user_secs,
        h.worker.cpu_sys_secs,
        cpu * 1e6 / probes.max(1) as f64
    ));
    out.push_str(&format!(
        "| scheduler peak RSS | {:.1} MiB |\n",
        h.worker.max_rss_kib as f64 / 1024.0
    ));
    out.push_str(&format!(
        "| healthy after the rounds | {} of {} (provider status requests: {}) |\n",
        h.healthy_after, h.instances, h.provider_requests
    ));
    let row = |label: &str, values: &[f64]| {
        format!(
            "| {label} | **{:.3} s** median of {} ({}) |\n",
            median(values),
            values.len(),
            values
                .iter()
                .map(|v| format!("{v:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    out.push_str(&row(
        &format!("inbox sync, first ({} new inboxes)", s.inboxes),
        &s.first_secs,
    ));
    out.push_str(&row(
        &format!("inbox sync, unchanged ({} inboxes)", s.inboxes),
        &s.unchanged_secs,
    ));
    out.push_str(&row(
        "inbox sync, 10 % renamed + 10 % removed + 10 % added",
        &s.changed_secs,
    ));
    out.push_str(&row(
        &format!(
            "of which: the simulator's inbox list ({} inboxes), alone",
            s.inboxes
        ),
        &s.chatwoot_list_secs,
    ));
    out
}

/// `whatpro-bench jobs`.
///
/// # Errors
/// Any failure to start, seed or measure.
pub async fn run(args: &JobsArgs) -> AnyResult<()> {
    let instances = args
        .instances
        .unwrap_or(if args.quick { 1_000 } else { 10_000 });
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let inboxes = args.inboxes.unwrap_or(if args.quick { 200 } else { 1_000 });
    let sync_accounts = args.sync_accounts.unwrap_or(if args.quick { 1 } else { 3 });
    let accounts = args.accounts.clamp(1, instances.max(1));
    std::fs::create_dir_all(&args.out)?;
    let loadavg_start = LoadAverage::now();

    eprintln!("starting a throwaway PostgreSQL…");
    let cluster = whatpro_pgcluster::LocalCluster::start_throwaway()
        .map_err(|e| format!("cannot start PostgreSQL: {e}"))?;
    let result = async {
        let url = cluster.url("postgres");
        let pool = whatpro_db::build_pool(&url, &PoolSettings::default())?;
        whatpro_db::run_migrations(&pool).await?;
        let data_keys = KeyRing::generate()?;
        let token_keys = KeyRing::generate()?.to_paserk_list();
        let sealer = SecretBox::new(data_keys.clone());

        let providers = ProvidersSim::start().await?;
        providers.set_recording(false);
        providers.set_evolution_global_key(Some(EVOLUTION_KEY));
        let chatwoot = ChatwootSim::start(([127, 0, 0, 1], 0).into()).await?;
        let env = hub_env(
            &url,
            &chatwoot.url(),
            &data_keys.to_paserk_list(),
            &token_keys,
        );

        eprintln!("seeding {instances} instances over {accounts} accounts…");
        let ((), seed_secs) = {
            let (done, secs) = timed(seed_instances(
                &pool, &providers, &sealer, instances, accounts,
            ))
            .await;
            (done?, secs)
        };
        eprintln!("seeded in {seed_secs:.1} s; running the health worker ({rounds} rounds)…");
        providers.clear_requests();
        let worker = run_worker(&env, rounds, args.concurrency).await?;
        for (i, r) in worker.rounds.iter().enumerate() {
            eprintln!(
                "round {}: {} probes in {:.2} s ({:.0}/s)",
                i + 1,
                r.probed,
                r.secs,
                r.probes_per_sec
            );
        }
        let healthy_after = count(
            &pool,
            "SELECT count(*) AS n FROM instance_health WHERE state = 'healthy'",
        )
        .await?;
        let health = HealthResult {
            instances,
            accounts,
            concurrency: args.concurrency,
            seed_secs,
            worker,
            healthy_after,
            provider_requests: providers.probe_count(),
        };

        eprintln!("syncing {sync_accounts} account(s) of {inboxes} inboxes…");
        let sync = sync_bench(&pool, &chatwoot, &env, inboxes, sync_accounts).await?;
        pool.close();
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((health, sync))
    }
    .await;
    if let Err(e) = cluster.stop() {
        eprintln!("warning: could not stop PostgreSQL: {e}");
    }
    let (health, sync) = result?;
    let report = JobsReport {
        timestamp: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)?,
        cores: cores(),
        cpu_model: cpu_model(),
        loadavg_start,
        loadavg_end: LoadAverage::now(),
        health,
        sync,
    };
    let md = markdown(&report);
    let json_path = args.out.join("jobs.json");
    let md_path = args.out.join("jobs.md");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)?;
    std::fs::write(&md_path, &md)?;
    println!("{md}");
    eprintln!("wrote {} and {}", json_path.display(), md_path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_get_distinct_names_and_cloud_ids_are_digits() {
        let mut names = std::collections::BTreeSet::new();
        for n in 0..50 {
            for provider_type in ProviderType::ALL {
                let (name, _, _) = instance_of(provider_type, 1, n);
                if provider_type == ProviderType::WhatsappCloud {
                    assert!(name.bytes().all(|b| b.is_ascii_digit()), "{name}");
                }
                assert!(names.insert(name));
            }
        }
        // Z-API and uazapi instances carry their own token; the others use the provider's.
        assert!(
            instance_of(ProviderType::Zapi, 1, 0)
                .2
                .get("instance_token")
                .is_some()
        );
        assert!(
            instance_of(ProviderType::Uazapi, 1, 0)
                .2
                .get("token")
                .is_some()
        );
        assert!(
            provider_secret(ProviderType::Wppconnect, 3)
                .get("secret_key")
                .is_some()
        );
    }

    #[test]
    fn the_table_quotes_rounds_cpu_memory_and_sync_medians() {
        let report = JobsReport {
            timestamp: "2026-12-01T00:00:00Z".to_owned(),
            cores: 2,
            cpu_model: None,
            loadavg_start: None,
            loadavg_end: None,
            health: HealthResult {
                instances: 10_000,
                accounts: 100,
                concurrency: 64,
                seed_secs: 7.0,
                worker: WorkerReport {
                    rounds: vec![
                        RoundResult {
                            probed: 10_000,
                            transitions: 10_000,
                            failed: 0,
                            secs: 5.0,
                            probes_per_sec: 2000.0,
                        },
                        RoundResult {
                            probed: 10_000,
                            transitions: 0,
                            failed: 0,
                            secs: 2.5,
                            probes_per_sec: 4000.0,
                        },
                    ],
                    cpu_user_secs: 3.0,
                    cpu_sys_secs: 1.0,
                    max_rss_kib: 20_480,
                },
                healthy_after: 10_000,
                provider_requests: 20_000,
            },
            sync: SyncResult {
                inboxes: 1000,
                accounts: 3,
                first_secs: vec![0.3, 0.1, 0.2],
                unchanged_secs: vec![0.1],
                changed_secs: vec![0.1],
                chatwoot_list_secs: vec![0.05],
            },
        };
        let md = markdown(&report);
        assert!(md.contains("**2000 probes/s**"), "{md}");
        assert!(md.contains("**4000 probes/s**"), "{md}");
        assert!(md.contains("200 µs/probe"), "{md}");
        assert!(md.contains("20.0 MiB"), "{md}");
        assert!(md.contains("**0.200 s** median of 3"), "{md}");
    }
}
