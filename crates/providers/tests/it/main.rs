//! Integration tests of the provider clients against the fake provider server
//! (`whatpro-providers-sim`), one module per provider plus failures, the address guard and a
//! load check.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod cloud;
mod common;
mod evolution;
mod examples;
mod failures;
mod guard;
mod load;
mod uazapi;
mod wppconnect;
mod zapi;
