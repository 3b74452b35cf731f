//! Test harness of the Hub.
//!
//! Owns the test infrastructure: a throwaway PostgreSQL cluster per test process (or
//! `TEST_DATABASE_URL`), per-test databases cloned from a template migrated once per process
//! ([`TestDb`], [`empty_database`]), and the application test builders.

mod db;

pub use db::*;

mod app;
pub use app::*;
