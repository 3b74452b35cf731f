//! `whatpro-hub dev`: the Hub on embedded defaults for a first look.
//!
//! Without `DATABASE_URL` it runs a project-local PostgreSQL cluster under `.data/pg` (kept
//! between runs); without `CHATWOOT_URL` it runs the bundled Chatwoot simulator with a seeded
//! demo; without `ASAAS_API_KEY` it runs the bundled Asaas simulator (billing works, nothing
//! is charged; its webhooks come back to the Hub); without keys it generates them once and
//! keeps them in `.data/dev-keys.toml`. Ctrl-C stops everything it started.

use std::path::{Path, PathBuf};

use whatpro_asaas_sim::{AsaasSim, SimConfig as AsaasSimConfig, WebhookTarget};
use whatpro_chatwoot_sim::{ChatwootSim, DemoSeed};
use whatpro_crypto::KeyRing;
use whatpro_pgcluster::{ClusterConfig, LocalCluster};

use crate::config::{Config, Sources};
use crate::startup::{self, Application, StartupError};

/// Where `dev` keeps its state.
const DATA_DIR: &str = ".data";
/// The database `dev` creates in its own cluster.
const DEV_DATABASE: &str = "whatpro";

/// The Asaas API key of the bundled simulator `dev` starts when `ASAAS_API_KEY` is unset.
const DEV_ASAAS_KEY: &str = "$aact_dev_whatpro_hub_simulator";
/// The webhook token `dev` gives the bundled Asaas simulator and the Hub.
const DEV_ASAAS_WEBHOOK_TOKEN: &str = "dev-Wq4zNm8rTx2vKp6sLb9cHd3fJg7y";

/// Runs the Hub in development mode until Ctrl-C.
///
/// # Errors
/// Any start-up failure, described.
pub async fn run() -> Result<(), StartupError> {
    let mut sources = Sources::from_process()?;
    let data_dir = PathBuf::from(DATA_DIR);
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| StartupError::Other(format!("cannot create {DATA_DIR}/: {e}")))?;

    let cluster = if sources.has("DATABASE_URL") {
        None
    } else {
        let cluster = start_cluster(&data_dir).await?;
        let created = whatpro_db::ensure_database(&cluster.url("postgres"), DEV_DATABASE).await?;
        if created {
            println!("created database `{DEV_DATABASE}` in {DATA_DIR}/pg");
        }
        sources.set("DATABASE_URL", cluster.url(DEV_DATABASE));
        Some(cluster)
    };

    let simulator = if sources.has("CHATWOOT_URL") {
        None
    } else {
        let sim = ChatwootSim::start(([127, 0, 0, 1], 0).into())
            .await
            .map_err(|e| {
                StartupError::Other(format!("cannot start the Chatwoot simulator: {e}"))
            })?;
        let seed = sim.seed_demo();
        sources.set("CHATWOOT_URL", sim.url());
        Some((sim, seed))
    };

    // Billing against the bundled Asaas simulator unless a real Asaas is configured.
    let asaas = if sources.has("ASAAS_API_KEY") {
        None
    } else {
        let sim = AsaasSim::start(AsaasSimConfig::new(DEV_ASAAS_KEY))
            .await
            .map_err(|e| StartupError::Other(format!("cannot start the Asaas simulator: {e}")))?;
        sources.set("ASAAS_URL", sim.url());
        sources.set("ASAAS_API_KEY", DEV_ASAAS_KEY);
        sources.set_default("ASAAS_WEBHOOK_TOKEN", DEV_ASAAS_WEBHOOK_TOKEN);
        Some(sim)
    };

    let keys_file = data_dir.join("dev-keys.toml");
    for var in ["HUB_TOKEN_KEYS", "HUB_DATA_KEYS"] {
        if !sources.has(var) {
            sources.set(var, dev_key(&keys_file, var)?);
        }
    }
    sources.set_default("HUB_ALLOW_PRIVATE_UPSTREAMS", "true");
    sources.set_default("HUB_LOG_FORMAT", "pretty");

    let config = Config::load(&sources)?;
    let _telemetry = whatpro_telemetry::init(&whatpro_telemetry::TelemetryConfig {
        filter: config.log_filter.clone(),
        format: config.log_format,
        otlp_endpoint: config.otlp_endpoint.as_ref().map(ToString::to_string),
        service_name: "whatpro-hub".to_owned(),
    })
    .map_err(|e| StartupError::Other(e.to_string()))?;

    let pool = startup::connect(&config).await?;
    startup::migrate(&pool).await?;
    let app = Application::build(config.clone(), pool).await?;
    if let (Some(sim), Some(token)) = (&asaas, &config.asaas_webhook_token) {
        sim.set_webhook_target(Some(WebhookTarget::new(
            format!("{}/api/v1/webhooks/asaas", config.public_url),
            token.expose(),
        )));
    }
    print_banner(
        &config,
        cluster.as_ref(),
        simulator.as_ref().map(|(sim, seed)| (sim, seed)),
        asaas.as_ref(),
    );

    let result = app.run_until_signalled().await;
    if let Some(cluster) = &cluster {
        println!("stopping PostgreSQL in {DATA_DIR}/pg");
        if let Err(err) = cluster.stop() {
            eprintln!("could not stop PostgreSQL: {err}");
        }
    }
    drop(simulator);
    drop(asaas);
    result.map_err(|e| StartupError::Other(e.to_string()))
}

async fn start_cluster(data_dir: &Path) -> Result<LocalCluster, StartupError> {
    let config = ClusterConfig {
        data_dir: data_dir.join("pg"),
        port: None,
        durable: true,
    };
    tokio::task::spawn_blocking(move || LocalCluster::start(config))
        .await
        .map_err(|e| StartupError::Other(e.to_string()))?
        .map_err(|e| StartupError::Other(format!("local PostgreSQL: {e}")))
}

/// A key kept in `.data/dev-keys.toml` so that tokens survive a restart of `dev`.
fn dev_key(file: &Path, var: &str) -> Result<String, StartupError> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut table: toml::Table = text.parse().unwrap_or_default();
    if let Some(key) = table.get(var).and_then(|v| v.as_str())
        && KeyRing::parse(key).is_ok()
    {
        return Ok(key.to_owned());
    }
    let key = KeyRing::generate()
        .map_err(|e| StartupError::Other(e.to_string()))?
        .to_paserk_list();
    table.insert(var.to_owned(), toml::Value::String(key.clone()));
    std::fs::write(file, table.to_string())
        .map_err(|e| StartupError::Other(format!("cannot write {}: {e}", file.display())))?;
    restrict_permissions(file);
    eprintln!(
        "warning: {var} is not set; generated a development key in {} (set {var} in production)",
        file.display()
    );
    Ok(key)
}

fn restrict_permissions(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600));
}

fn print_banner(
    config: &Config,
    cluster: Option<&LocalCluster>,
    sim: Option<(&ChatwootSim, &DemoSeed)>,
    asaas: Option<&AsaasSim>,
) {
    let hub = config.public_url.as_str();
    println!();
    println!("WhatPro Hub is running in dev mode");
    println!("  Hub          {hub}");
    println!("  API docs     {hub}/docs   (OpenAPI: {hub}/api/v1/openapi.json)");
    println!("  Ops          {hub}/healthz  {hub}/readyz  {hub}/metrics");
    match cluster {
        Some(c) => println!(
            "  PostgreSQL   {} (data in {DATA_DIR}/pg, kept between runs)",
            c.url(DEV_DATABASE)
        ),
        None => println!("  PostgreSQL   from DATABASE_URL"),
    }
    if let Some((sim, seed)) = sim {
        println!("  Chatwoot     {} (bundled simulator)", sim.url());
        println!(
            "    accounts   {} \"WhatPro Demo\", {} \"Cliente Beta\"",
            seed.primary_account_id, seed.secondary_account_id
        );
        println!(
            "    admin      {} <{}>  api_access_token: {}",
            seed.admin.name, seed.admin.email, seed.admin.access_token
        );
        println!(
            "    agent      {} <{}>  api_access_token: {}",
            seed.agent.name, seed.agent.email, seed.agent.access_token
        );
        println!();
        println!("Try first:");
        println!("  curl -s {hub}/readyz");
        println!(
            "  curl -s -X POST {hub}/api/v1/auth/sso -H 'content-type: application/json' \\\n       -d '{{\"chatwoot_access_token\":\"{}\",\"token_delivery\":\"body\"}}'",
            seed.admin.access_token
        );
        println!("  curl -s -H 'authorization: Bearer <access_token>' {hub}/api/v1/me");
        println!(
            "  curl -s -H 'authorization: Bearer <access_token>' {hub}/api/v1/accounts/1/members"
        );
    } else {
        println!(
            "  Chatwoot     {}",
            config
                .chatwoot_url
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        );
    }
    match asaas {
        Some(sim) => println!(
            "  Asaas        {} (bundled simulator; its webhooks come back to the Hub)",
            sim.url()
        ),
        None => println!("  Asaas        {}", config.asaas_url),
    }
    println!();
    println!("Press Ctrl-C to stop everything.");
}
