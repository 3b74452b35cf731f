//! `whatpro-hub`: the WhatPro Hub server and its operator commands.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use whatpro_app::config::{Config, Sources};
use whatpro_app::{Application, StartupError, dev, startup};
use whatpro_telemetry::TelemetryConfig;

/// WhatPro Hub: multi-tenant SaaS companion for Chatwoot.
#[derive(Debug, Parser)]
#[command(name = "whatpro-hub", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HTTP (applies pending migrations first unless --no-migrate).
    Serve {
        /// Do not apply migrations at start-up (run `whatpro-hub migrate` in your pipeline).
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply pending migrations and exit.
    Migrate,
    /// Run on embedded defaults: a project-local PostgreSQL under .data/ and the bundled
    /// Chatwoot simulator, unless DATABASE_URL / CHATWOOT_URL are set.
    Dev,
    /// Print the OpenAPI document (the content of docs/openapi.json).
    Openapi,
    /// Print a new PASERK k4.local key for HUB_TOKEN_KEYS or HUB_DATA_KEYS.
    Keygen,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { no_migrate } => serve(no_migrate).await,
            Command::Migrate => migrate().await,
            Command::Dev => dev::run().await,
            Command::Openapi => {
                print!("{}", whatpro_app::openapi_json());
                Ok(())
            }
            Command::Keygen => whatpro_crypto::KeyRing::generate()
                .map(|ring| println!("{}", ring.to_paserk_list()))
                .map_err(|e| StartupError::Other(e.to_string())),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(StartupError::Config(err)) => {
            eprintln!("{err}");
            ExitCode::from(2)
        }
        Err(err) => {
            tracing::error!(error = %err, "whatpro-hub stopped");
            eprintln!("whatpro-hub: {err}");
            ExitCode::FAILURE
        }
    }
}

fn load_config() -> Result<Config, StartupError> {
    Ok(Config::load(&Sources::from_process()?)?)
}

fn telemetry(config: &Config) -> Result<whatpro_telemetry::TelemetryGuard, StartupError> {
    whatpro_telemetry::init(&TelemetryConfig {
        filter: config.log_filter.clone(),
        format: config.log_format,
        otlp_endpoint: config.otlp_endpoint.as_ref().map(ToString::to_string),
        service_name: "whatpro-hub".to_owned(),
    })
    .map_err(|e| StartupError::Other(e.to_string()))
}

async fn serve(no_migrate: bool) -> Result<(), StartupError> {
    let config = load_config()?;
    config.require_for_serve()?;
    let _telemetry = telemetry(&config)?;
    let pool = startup::connect(&config).await?;
    if !no_migrate {
        startup::migrate(&pool).await?;
    }
    let app = Application::build(config.clone(), pool).await?;
    tracing::info!(bind = %config.bind, public_url = %config.public_url, "whatpro-hub listening");
    app.run_until_signalled()
        .await
        .map_err(|e| StartupError::Other(e.to_string()))?;
    tracing::info!("whatpro-hub stopped");
    Ok(())
}

async fn migrate() -> Result<(), StartupError> {
    let config = load_config()?;
    let _telemetry = telemetry(&config)?;
    let pool = startup::connect(&config).await?;
    startup::migrate(&pool).await?;
    Ok(())
}
