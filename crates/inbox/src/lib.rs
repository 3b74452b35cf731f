//! The inbox domain: Chatwoot inboxes mirrored per account, the WhatsApp providers an account
//! registers and their instances, and the health of each instance.
//!
//! Ports on tenant data take `&TenantScope` first; cross-account jobs (periodic sync, the
//! health scheduler) take a `PlatformScope`. No I/O here: PostgreSQL adapters live in
//! `whatpro-db`, the HTTP clients in `whatpro-chatwoot` and `whatpro-providers`.

mod provider;

pub use provider::{
    Credentials, CredentialsError, ProbeOutcome, ProbeReport, ProbeRequest, ProviderProbe,
    ProviderType, UnknownProviderType, UrlCheck, UrlRejected,
};

#[cfg(any(test, feature = "mocks"))]
pub use provider::{MockProviderProbe, MockUrlCheck};
