//! The Hub's HTTP client for Chatwoot's API.
//!
//! Owns [`ChatwootClient`] (reqwest): how the Hub reaches Chatwoot (`CHATWOOT_URL`, possibly
//! under a path prefix), authenticates (`api_access_token` or devise_token_auth headers),
//! bounds every call (connect and per-attempt timeouts, one retry of idempotent calls on
//! connect errors, timeouts and 502/503/504), and maps answers to [`ChatwootError`]. Every
//! call goes through one private helper, which also emits a tracing span
//! (`chatwoot.path`) and a debug event with status and latency. Credentials never appear
//! in logs or error messages.
//!
//! It implements the [`whatpro_iam::ChatwootIdentity`] port (SSO verification) over
//! `GET /api/v1/profile` and `GET /auth/validate_token`, and the
//! [`whatpro_tenancy::ChatwootDashboardApps`] port over `.../dashboard_apps` (registering the Hub
//! as a Dashboard App), and the [`whatpro_inbox::ChatwootAccounts`] port over
//! `GET /api/v1/accounts/{id}/inboxes` and `GET /api/v1/profile` (an account's inboxes, and
//! whether a token belongs to an administrator of the account).

mod client;
mod dashboard_apps;
mod error;
mod identity;
mod inboxes;

pub use client::{ChatwootClient, ClientSettings, MAX_BODY_BYTES, RETRY_DELAY};
pub use error::ChatwootError;
pub use inboxes::AccountStanding;
