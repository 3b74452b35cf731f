//! `whatpro-providers`: the Hub's HTTP clients for WhatsApp providers' status endpoints.
//!
//! [`ProviderClients`] implements the inbox domain's [`whatpro_inbox::ProviderProbe`] port for
//! Evolution, Z-API, WPPConnect, uazapi and WhatsApp Cloud (contracts in
//! `/work/shared/providers/README.md`; each module documents its mapping to
//! [`whatpro_inbox::ProbeOutcome`]). Shared rules:
//!
//! - One reqwest client for every probe (pooled keep-alive connections, built once), made with
//!   `whatpro_netguard`'s guarded builder: host names resolving to forbidden addresses are
//!   never connected to, IP-literal base URLs are checked before each call, and redirects are
//!   followed only to the same host.
//! - A whole probe (WPPConnect token generation included) is bounded by
//!   [`ProbeSettings::timeout`]; no answer, a connection error, a 5xx, 408 or 429 →
//!   `Unreachable`; an unreadable 2xx → `BadAnswer`; 401/403 → `Unauthorized`; 404 →
//!   `NotFound` (unless a module says otherwise).
//! - Tenant input in paths (instance names, Z-API tokens, WPPConnect secret keys) is
//!   percent-encoded; `.` and `..` names are refused.
//! - `detail` is a short phrase that never carries a credential or the request URL.
//!
//! Must not depend on the app, the database or actix; it knows the domain only through
//! `whatpro-inbox`'s port types.

mod client;
mod cloud;
mod evolution;
mod uazapi;
mod verdict;
mod wppconnect;
mod zapi;

pub use client::{
    BuildError, CONNECT_TIMEOUT, MAX_BODY_BYTES, MAX_CACHED_TOKENS, ProbeSettings, ProviderClients,
};
pub use cloud::FIELDS as CLOUD_FIELDS;
