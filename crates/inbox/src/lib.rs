//! The inbox domain: Chatwoot inboxes mirrored per account, the WhatsApp providers an account
//! registers and their instances, and the health of each instance.
//!
//! - [`InboxService`]: the account's Chatwoot connection (token checked with Chatwoot, sealed
//!   at rest) and the inbox mirror with its sync runs ([`plan_sync`] is the pure planner).
//! - [`ProviderService`]: providers and instances (quotas through [`Quotas`], base URLs through
//!   the [`UrlCheck`] SSRF guard, credentials sealed), and provider webhooks.
//! - [`HealthService`]: probes through [`ProviderProbe`] judged by the pure health machine
//!   ([`evaluate_probe`], [`evaluate_pushed_state`]); transitions stored, audited and
//!   published through [`HealthEvents`].
//!
//! Ports on tenant data take `&TenantScope` first; cross-account jobs (periodic sync, the
//! health scheduler, finding the instance a webhook is for) take a `PlatformScope`. No I/O
//! here: PostgreSQL adapters live in `whatpro-db`, the HTTP clients in `whatpro-chatwoot` and
//! `whatpro-providers`, sealing and tokens in `whatpro-crypto`.

mod error;
mod health;
mod health_service;
mod ids;
mod inbox_service;
mod model;
mod ports;
mod provider;
mod provider_service;
mod secrets;
mod sync;
mod validate;
mod webhook;

pub use error::InboxError;
pub use health::{
    Evaluation, FAILURES_BEFORE_DOWN, HealthSettings, PushedState, evaluate_probe,
    evaluate_pushed_state, first_check_delay,
};
pub use health_service::{HealthService, JITTER_RATIO};
pub use ids::{ChatwootInboxId, InboxId, InstanceId, ProviderId, SyncRunId};
pub use inbox_service::{InboxService, SYNC_LEASE, SyncRound};
pub use model::{
    ChatwootConnection, ChatwootInbox, ConnectionStatus, CreatedInstance, Deleted, HealthChange,
    HealthSnapshot, HealthSource, HealthState, HealthTransition, HealthUpdate, Inbox,
    InstanceChanges, InstanceHealth, NewConnection, NewInstance, NewMirrorRow, NewProvider, Paged,
    ProbeTarget, Provider, ProviderChanges, ProviderInstance, SealedCredentials, SyncCounts,
    SyncPlan, SyncRun, SyncStart, SyncStatus, SyncTrigger, WebhookTarget,
};
pub use ports::{
    ChatwootAccounts, ChatwootCallError, HealthEvents, HealthSaved, InboxStore, ProviderStore,
    Quotas, SealError, SecretSealer, WebhookTokens,
};
pub use provider::{
    Credentials, CredentialsError, ProbeOutcome, ProbeReport, ProbeRequest, ProviderProbe,
    ProviderType, UnknownProviderType, UrlCheck, UrlRejected,
};
pub use provider_service::{
    InstancePatch, InstanceRequest, ProviderPatch, ProviderPorts, ProviderRequest, ProviderService,
    WebhookOutcome,
};
pub use secrets::{
    chatwoot_token_purpose, instance_credentials_purpose, open_credentials,
    provider_credentials_purpose, seal_credentials,
};
pub use sync::plan_sync;
pub use validate::{MAX_INSTANCE_NAME_CHARS, MAX_NAME_CHARS, MAX_TOKEN_CHARS};
pub use webhook::{
    ParsedWebhook, ProviderEvent, WebhookParseError, constant_time_eq, normalise_event_name,
    parse_webhook,
};

#[cfg(any(test, feature = "mocks"))]
pub use ports::{
    MockChatwootAccounts, MockHealthEvents, MockInboxStore, MockProviderStore, MockQuotas,
    MockSecretSealer, MockWebhookTokens,
};
#[cfg(any(test, feature = "mocks"))]
pub use provider::{MockProviderProbe, MockUrlCheck};
