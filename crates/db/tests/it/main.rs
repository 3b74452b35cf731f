//! Integration tests of the PostgreSQL adapters (one binary; each test gets its own database).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on unexpected errors"
)]

mod support;

mod audit;
mod billing;
mod cache;
mod credentials;
mod entitlements;
mod inbox;
mod installations;
mod login;
mod members;
mod rotation;
mod schema;
mod sessions;
