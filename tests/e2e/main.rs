//! End-to-end tests of the Hub: the real app (`build_app`, as `main` builds it) on a loopback
//! port, its own PostgreSQL database per test, the Chatwoot simulator as Chatwoot.
//! One test binary for the whole suite keeps link time down.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed step must fail the test loudly"
)]

mod api_keys;
mod billing;
mod browser;
mod cors;
mod embed;
mod entitlements;
mod errors;
mod headers;
mod iam;
mod idor;
mod inbox;
mod instance_tokens;
mod migrations;
mod openapi;
mod ops;
mod platform;
mod probes;
mod providers;
mod support;
mod tenancy;
