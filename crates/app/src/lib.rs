//! The `whatpro-hub` application: configuration, composition root, HTTP surface and
//! subcommands (`serve`, `migrate`, `dev`).
//!
//! This is the only crate that knows actix-web. Domain crates reach it only through their
//! ports, wired here.

pub mod bench_support;
pub mod config;
pub mod dev;
pub mod health_events;
pub mod health_scheduler;
pub mod http;
pub mod jobs;
pub mod startup;
pub mod state;
pub mod wiring;

pub use config::{Config, ConfigError, Sources};
pub use http::{build_app, build_app_with, openapi, openapi_json};
pub use startup::{Application, StartupError};
pub use state::AppState;
