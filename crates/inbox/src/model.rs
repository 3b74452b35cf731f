//! Values of the inbox domain: the Chatwoot connection, mirrored inboxes and sync runs,
//! providers, instances and their health.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;
use uuid::Uuid;
use whatpro_entitlements::QuotaClaim;
use whatpro_kernel::{AccountId, UserId};

use crate::ids::{ChatwootInboxId, InboxId, InstanceId, ProviderId, SyncRunId};
use crate::provider::ProviderType;

// ---------------------------------------------------------------------------------------------
// Chatwoot connection.

/// An account's connection to Chatwoot: whose token the Hub uses for server-to-server calls.
/// The token itself never leaves the store (sealed with `HUB_DATA_KEYS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatwootConnection {
    /// The account.
    pub account_id: AccountId,
    /// The Chatwoot user the token belongs to (an administrator of the account when stored).
    pub chatwoot_user_id: UserId,
    /// That user's name.
    pub chatwoot_user_name: String,
    /// When Chatwoot last confirmed the token (at `PUT`).
    pub verified_at: OffsetDateTime,
    /// The end of the last successful sync.
    pub last_sync_at: Option<OffsetDateTime>,
    /// First stored.
    pub created_at: OffsetDateTime,
    /// Last replaced.
    pub updated_at: OffsetDateTime,
}

/// A connection to store (the token already sealed).
#[derive(Clone, PartialEq, Eq)]
pub struct NewConnection {
    /// The token, sealed for this account.
    pub sealed_token: String,
    /// Its Chatwoot user.
    pub chatwoot_user_id: UserId,
    /// That user's name.
    pub chatwoot_user_name: String,
    /// When Chatwoot confirmed it.
    pub verified_at: OffsetDateTime,
}

impl fmt::Debug for NewConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewConnection")
            .field("chatwoot_user_id", &self.chatwoot_user_id)
            .finish_non_exhaustive()
    }
}

/// The connection (if any) with the latest sync run, as `GET .../chatwoot/connection` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionStatus {
    /// The stored connection.
    pub connection: Option<ChatwootConnection>,
    /// The latest sync run of the account.
    pub last_run: Option<SyncRun>,
}

// ---------------------------------------------------------------------------------------------
// Inbox mirror.

/// An inbox as Chatwoot lists it (the fields the Hub keeps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatwootInbox {
    /// Chatwoot's id.
    pub id: ChatwootInboxId,
    /// Name.
    pub name: String,
    /// `Channel::Whatsapp`, `Channel::Api` ...
    pub channel_type: String,
}

/// A mirrored inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbox {
    /// The Hub's id.
    pub id: InboxId,
    /// Chatwoot's id.
    pub chatwoot_inbox_id: ChatwootInboxId,
    /// Name (as of the last sync that saw it).
    pub name: String,
    /// Chatwoot channel type.
    pub channel_type: String,
    /// The provider instance linked to it, if any.
    pub provider_instance_id: Option<InstanceId>,
    /// Beyond the plan's `max_inboxes` (the oldest inboxes keep service).
    pub over_quota: bool,
    /// Gone from Chatwoot (kept for history).
    pub removed: bool,
    /// When the Hub first saw it (decides who keeps service when over quota).
    pub first_seen_at: OffsetDateTime,
    /// The last sync that saw it.
    pub last_synced_at: OffsetDateTime,
}

/// What starts a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncTrigger {
    /// `POST .../inboxes/sync`.
    Manual,
    /// The periodic background job.
    Scheduled,
}

impl SyncTrigger {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncTrigger::Manual => "manual",
            SyncTrigger::Scheduled => "scheduled",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "manual" => Some(SyncTrigger::Manual),
            "scheduled" => Some(SyncTrigger::Scheduled),
            _ => None,
        }
    }
}

/// Where a sync run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStatus {
    /// Started, not finished (or abandoned by a crashed process).
    Running,
    /// The mirror was updated.
    Succeeded,
    /// Nothing changed; `error` says why.
    Failed,
}

impl SyncStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Running => "running",
            SyncStatus::Succeeded => "succeeded",
            SyncStatus::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "running" => Some(SyncStatus::Running),
            "succeeded" => Some(SyncStatus::Succeeded),
            "failed" => Some(SyncStatus::Failed),
            _ => None,
        }
    }
}

/// What a sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounts {
    /// Inboxes Chatwoot listed.
    pub fetched: i32,
    /// New in the mirror.
    pub added: i32,
    /// Name or channel type changed.
    pub updated: i32,
    /// Seen again without change.
    pub unchanged: i32,
    /// Gone from Chatwoot (marked removed).
    pub removed: i32,
    /// Marked removed earlier, listed again.
    pub restored: i32,
    /// Inboxes in service beyond the plan's limit after the sync.
    pub over_quota: i32,
}

/// One run of the inbox sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRun {
    /// Id (UUID v7).
    pub id: SyncRunId,
    /// Manual or scheduled.
    pub trigger: SyncTrigger,
    /// Running, succeeded or failed.
    pub status: SyncStatus,
    /// Start.
    pub started_at: OffsetDateTime,
    /// End.
    pub finished_at: Option<OffsetDateTime>,
    /// What it did (zeros unless it succeeded).
    pub counts: SyncCounts,
    /// Why it failed.
    pub error: Option<String>,
}

/// How a sync may start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncStart {
    /// The run is recorded and the account's sync lease taken; here is the sealed token.
    Started {
        /// The connection's token, sealed.
        sealed_token: String,
    },
    /// The account has no Chatwoot connection.
    NotConnected,
    /// Another sync of the account holds the lease.
    InProgress,
}

/// A new row of the mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMirrorRow {
    /// The Hub's id.
    pub id: InboxId,
    /// What Chatwoot said.
    pub inbox: ChatwootInbox,
}

/// The changes one sync applies, computed by [`crate::plan_sync`] and written in one
/// transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncPlan {
    /// Inboxes seen for the first time.
    pub inserts: Vec<NewMirrorRow>,
    /// Known inboxes listed by Chatwoot (name, channel type refreshed; `removed` cleared).
    pub seen: Vec<(InboxId, ChatwootInbox)>,
    /// Known inboxes no longer listed, to mark removed.
    pub removed: Vec<InboxId>,
    /// Every inbox that is over quota after the sync (all others are not).
    pub over_quota: Vec<InboxId>,
    /// The run's counts.
    pub counts: SyncCounts,
}

// ---------------------------------------------------------------------------------------------
// Providers and instances.

/// A WhatsApp provider an account registered. Credentials are never part of it: only their
/// key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// Id.
    pub id: ProviderId,
    /// Type.
    pub provider_type: ProviderType,
    /// Label.
    pub name: String,
    /// Base URL (vetted by the SSRF guard when stored).
    pub base_url: String,
    /// Names of the stored credentials.
    pub credential_keys: Vec<String>,
    /// Live instances.
    pub instance_count: i64,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
}

/// A provider to store (credentials sealed).
#[derive(Clone, PartialEq, Eq)]
pub struct NewProvider {
    /// Id.
    pub id: ProviderId,
    /// Type.
    pub provider_type: ProviderType,
    /// Label.
    pub name: String,
    /// Base URL.
    pub base_url: String,
    /// Credentials, sealed for this provider.
    pub sealed_credentials: String,
    /// Their key names.
    pub credential_keys: Vec<String>,
    /// The `max_providers` slot the store takes in the same transaction (`None`: quotas are
    /// not enforced).
    pub quota: Option<QuotaClaim>,
}

impl fmt::Debug for NewProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewProvider")
            .field("id", &self.id)
            .field("provider_type", &self.provider_type)
            .field("name", &self.name)
            .field("credential_keys", &self.credential_keys)
            .finish_non_exhaustive()
    }
}

/// Sealed credentials with their key names.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedCredentials {
    /// The sealed JSON object.
    pub sealed: String,
    /// Its key names.
    pub keys: Vec<String>,
}

impl fmt::Debug for SealedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedCredentials")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

/// Changes to a provider (`None`: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderChanges {
    /// New label.
    pub name: Option<String>,
    /// New base URL (vetted).
    pub base_url: Option<String>,
    /// New credentials (replacing all of them).
    pub credentials: Option<SealedCredentials>,
}

/// The health states of an instance (see `docs/providers.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HealthState {
    /// Never probed.
    Unknown,
    /// Connected, answering in time, events arriving.
    Healthy,
    /// Slower than `HUB_HEALTH_SLOW_MS`, pairing/reconnecting, one probe without answer, or
    /// "connected" but silent for `HUB_HEALTH_SILENT_SECS` after having sent events.
    Degraded,
    /// Disconnected (or credentials refused, or unknown to the provider), or two probes in a
    /// row without an answer.
    Down,
}

impl HealthState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Unknown => "unknown",
            HealthState::Healthy => "healthy",
            HealthState::Degraded => "degraded",
            HealthState::Down => "down",
        }
    }
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HealthState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "unknown" => Ok(HealthState::Unknown),
            "healthy" => Ok(HealthState::Healthy),
            "degraded" => Ok(HealthState::Degraded),
            "down" => Ok(HealthState::Down),
            other => Err(format!("`{other}` is not a health state")),
        }
    }
}

/// An instance's current health: `{state, checked_at, latency_ms, reason}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceHealth {
    /// The state.
    pub state: HealthState,
    /// When it was last established (probe or event).
    pub checked_at: Option<OffsetDateTime>,
    /// The last probe's latency.
    pub latency_ms: Option<i64>,
    /// A short explanation (never a credential).
    pub reason: Option<String>,
}

impl InstanceHealth {
    /// The health of an instance never probed.
    pub fn unknown() -> Self {
        Self {
            state: HealthState::Unknown,
            checked_at: None,
            latency_ms: None,
            reason: None,
        }
    }
}

/// What the health machine needs to know about an instance besides a new observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSnapshot {
    /// Current health.
    pub health: InstanceHealth,
    /// Probes in a row that got no usable answer.
    pub consecutive_failures: i32,
    /// The last accepted event from the instance (provider webhook).
    pub last_event_at: Option<OffsetDateTime>,
    /// Compare-and-set token of the stored health.
    pub version: i64,
}

/// What produced a health observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthSource {
    /// The instance was created (state `unknown`).
    Created,
    /// A probe of the provider's status endpoint (scheduled or asked for).
    Probe,
    /// A provider webhook (`connection.update`).
    Webhook,
}

impl HealthSource {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthSource::Created => "created",
            HealthSource::Probe => "probe",
            HealthSource::Webhook => "webhook",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "created" => Some(HealthSource::Created),
            "probe" => Some(HealthSource::Probe),
            "webhook" => Some(HealthSource::Webhook),
            _ => None,
        }
    }
}

/// A new health to store for an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthUpdate {
    /// The health.
    pub health: InstanceHealth,
    /// Probes in a row without an answer.
    pub consecutive_failures: i32,
    /// What produced it.
    pub source: HealthSource,
}

/// One stored health transition (history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthChange {
    /// Id (UUID v7, time-ordered).
    pub id: Uuid,
    /// The new state.
    pub state: HealthState,
    /// The state before (`None` for the first entry).
    pub previous_state: Option<HealthState>,
    /// Why.
    pub reason: Option<String>,
    /// The probe's latency, when a probe produced it.
    pub latency_ms: Option<i64>,
    /// What produced it.
    pub source: HealthSource,
    /// When.
    pub at: OffsetDateTime,
}

/// A health transition as published for the realtime layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthTransition {
    /// The account.
    pub account_id: AccountId,
    /// The provider.
    pub provider_id: ProviderId,
    /// The instance.
    pub instance_id: InstanceId,
    /// Before.
    pub from: HealthState,
    /// After.
    pub to: HealthState,
    /// Why.
    pub reason: Option<String>,
    /// What produced it.
    pub source: HealthSource,
    /// When.
    pub at: OffsetDateTime,
}

/// An instance (one WhatsApp session at a provider).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderInstance {
    /// Id.
    pub id: InstanceId,
    /// Its provider.
    pub provider_id: ProviderId,
    /// Its name at the provider (see [`ProviderType::instance_name_meaning`]).
    pub name: String,
    /// The Hub inbox it serves, if linked.
    pub inbox_id: Option<InboxId>,
    /// Names of its own credentials.
    pub credential_keys: Vec<String>,
    /// Current health.
    pub health: InstanceHealth,
    /// The last accepted provider event.
    pub last_event_at: Option<OffsetDateTime>,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
}

/// An instance to store.
#[derive(Clone, PartialEq, Eq)]
pub struct NewInstance {
    /// Id.
    pub id: InstanceId,
    /// Its provider.
    pub provider_id: ProviderId,
    /// Name at the provider.
    pub name: String,
    /// Linked inbox.
    pub inbox_id: Option<InboxId>,
    /// Its own credentials, sealed (`None`: none given).
    pub credentials: Option<SealedCredentials>,
    /// SHA-256 of the webhook token (the token itself is shown once).
    pub webhook_token_hash: Vec<u8>,
    /// When the scheduler first probes it.
    pub first_check_at: OffsetDateTime,
    /// The `max_instances` slot the store takes in the same transaction (`None`: quotas are
    /// not enforced).
    pub quota: Option<QuotaClaim>,
}

impl fmt::Debug for NewInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewInstance")
            .field("id", &self.id)
            .field("provider_id", &self.provider_id)
            .field("name", &self.name)
            .field("inbox_id", &self.inbox_id)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// Changes to an instance (`None`: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceChanges {
    /// New name.
    pub name: Option<String>,
    /// New link (`Some(None)` unlinks).
    pub inbox_id: Option<Option<InboxId>>,
    /// New credentials (`Some(None)` removes them).
    pub credentials: Option<Option<SealedCredentials>>,
}

/// The outcome of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    /// Whether this call deleted it (`false`: it was already deleted, nothing changed).
    pub now: bool,
    /// Live instances deleted with it (providers only).
    pub instances: i64,
}

/// A created instance with its webhook token (shown once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedInstance {
    /// The instance.
    pub instance: ProviderInstance,
    /// The token providers send as `Authorization: Bearer`.
    pub webhook_token: String,
}

/// Everything a probe of one instance needs, as the store hands it to the scheduler.
#[derive(Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    /// The account.
    pub account_id: AccountId,
    /// The provider.
    pub provider_id: ProviderId,
    /// The instance.
    pub instance_id: InstanceId,
    /// The provider's type.
    pub provider_type: ProviderType,
    /// The provider's base URL.
    pub base_url: String,
    /// The provider's credentials, sealed.
    pub provider_credentials: String,
    /// The instance's name at the provider.
    pub instance_name: String,
    /// The instance's credentials, sealed.
    pub instance_credentials: Option<String>,
    /// The instance's health before the probe.
    pub snapshot: HealthSnapshot,
}

impl fmt::Debug for ProbeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeTarget")
            .field("account_id", &self.account_id)
            .field("provider_id", &self.provider_id)
            .field("instance_id", &self.instance_id)
            .field("provider_type", &self.provider_type)
            .field("instance_name", &self.instance_name)
            .field("snapshot", &self.snapshot)
            .finish_non_exhaustive()
    }
}

/// What a provider webhook needs to be authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// The account.
    pub account_id: AccountId,
    /// The provider.
    pub provider_id: ProviderId,
    /// The instance.
    pub instance_id: InstanceId,
    /// The provider's type.
    pub provider_type: ProviderType,
    /// The instance's name at the provider.
    pub instance_name: String,
    /// SHA-256 of its webhook token.
    pub token_hash: Vec<u8>,
}

/// A page of items ordered by their UUID key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paged<T> {
    /// The items.
    pub items: Vec<T>,
    /// The key of the last item when more exist.
    pub next_after: Option<Uuid>,
}

impl<T> Paged<T> {
    /// Builds a page from `limit + 1` rows: drops the extra row and remembers the last key.
    pub fn from_rows(mut rows: Vec<T>, limit: usize, key: impl Fn(&T) -> Uuid) -> Self {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_after = if more { rows.last().map(key) } else { None };
        Self {
            items: rows,
            next_after,
        }
    }
}
