//! Ports of the inbox domain: its stores (PostgreSQL in `whatpro-db`), Chatwoot's account API
//! (`whatpro-chatwoot`), sealing of third-party secrets and webhook tokens (`whatpro-crypto`),
//! the publication of health transitions, and the quota checks (`whatpro-entitlements`).
//!
//! Store methods on tenant data take `&TenantScope` first and never reach another account's
//! rows: an id of another account is `NotFound`. Cross-account jobs take `&PlatformScope`.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;
use whatpro_entitlements::{
    EntitlementError, EntitlementsService, QuotaClaim, Reservation, Resource,
};
use whatpro_iam::{AuditContext, ChatwootProfile, PlatformScope, StoreError, TenantScope};
use whatpro_kernel::{AccountId, Limit};

use crate::error::InboxError;
use crate::ids::{InboxId, InstanceId, ProviderId, SyncRunId};
use crate::model::{
    ChatwootConnection, ChatwootInbox, Deleted, HealthChange, HealthSnapshot, HealthTransition,
    HealthUpdate, Inbox, InstanceChanges, NewConnection, NewInstance, NewProvider, Paged,
    ProbeTarget, Provider, ProviderChanges, ProviderInstance, SyncPlan, SyncRun, SyncStart,
    SyncTrigger, WebhookTarget,
};
use crate::provider::ProviderType;

/// The Chatwoot connection, the inbox mirror and its sync runs.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait InboxStore: Send + Sync {
    /// The account's connection, if any (never the token).
    async fn connection(
        &self,
        scope: &TenantScope,
    ) -> Result<Option<ChatwootConnection>, StoreError>;

    /// The sealed token of the account's connection, if any.
    async fn sealed_token(&self, scope: &TenantScope) -> Result<Option<String>, StoreError>;

    /// Creates or replaces the account's connection, audited (`chatwoot_connection.saved`,
    /// metadata: the Chatwoot user id, never the token).
    async fn save_connection(
        &self,
        scope: &TenantScope,
        connection: &NewConnection,
        audit: &AuditContext,
    ) -> Result<ChatwootConnection, StoreError>;

    /// Removes the account's connection (`true` when there was one), audited
    /// (`chatwoot_connection.removed`). The mirror is kept.
    async fn delete_connection(
        &self,
        scope: &TenantScope,
        audit: &AuditContext,
    ) -> Result<bool, StoreError>;

    /// Starts a sync: takes the account's sync lease until `lease_until` (unless another sync
    /// holds an unexpired one) and records the run as running, atomically.
    async fn begin_sync(
        &self,
        scope: &TenantScope,
        run: SyncRunId,
        trigger: SyncTrigger,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<SyncStart, StoreError>;

    /// Every mirrored inbox of the account (removed ones included), for planning a sync.
    async fn mirror(&self, scope: &TenantScope) -> Result<Vec<Inbox>, StoreError>;

    /// Applies a planned sync in one transaction: the mirror's rows, the over-quota flags, the
    /// run (succeeded, with its counts) and the release of the lease.
    async fn apply_sync(
        &self,
        scope: &TenantScope,
        run: SyncRunId,
        plan: &SyncPlan,
        now: OffsetDateTime,
    ) -> Result<SyncRun, StoreError>;

    /// Records a failed run (the mirror untouched) and releases the lease.
    async fn fail_sync(
        &self,
        scope: &TenantScope,
        run: SyncRunId,
        error: &str,
        now: OffsetDateTime,
    ) -> Result<SyncRun, StoreError>;

    /// Mirrored inboxes ordered by id, after `after` (exclusive).
    async fn list_inboxes(
        &self,
        scope: &TenantScope,
        after: Option<InboxId>,
        limit: Limit,
    ) -> Result<Paged<Inbox>, StoreError>;

    /// Sync runs, newest first, before `before` (exclusive).
    async fn list_runs(
        &self,
        scope: &TenantScope,
        before: Option<SyncRunId>,
        limit: Limit,
    ) -> Result<Paged<SyncRun>, StoreError>;

    /// Accounts with a connection and no sync run started after `started_before`, by id.
    async fn accounts_due_for_sync(
        &self,
        scope: &PlatformScope,
        started_before: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<AccountId>, StoreError>;
}

/// Providers, their instances and the instances' health.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ProviderStore: Send + Sync {
    /// Stores a provider, audited (`provider.created`), taking its quota slot
    /// (`provider.quota`) in the same transaction.
    ///
    /// # Errors
    /// `Entitlement(QuotaExceeded)` when no slot is left (nothing stored); storage errors.
    async fn create_provider(
        &self,
        scope: &TenantScope,
        provider: &NewProvider,
        audit: &AuditContext,
    ) -> Result<Provider, InboxError>;

    /// Live providers ordered by id, after `after` (exclusive).
    async fn list_providers(
        &self,
        scope: &TenantScope,
        after: Option<ProviderId>,
        limit: Limit,
    ) -> Result<Paged<Provider>, StoreError>;

    /// One live provider.
    ///
    /// # Errors
    /// `ProviderNotFound` (also for another account's id).
    async fn provider(&self, scope: &TenantScope, id: ProviderId) -> Result<Provider, InboxError>;

    /// The type of one live provider (what a create path needs, without counting instances).
    ///
    /// # Errors
    /// `ProviderNotFound` (also for another account's id).
    async fn provider_type(
        &self,
        scope: &TenantScope,
        id: ProviderId,
    ) -> Result<ProviderType, InboxError>;

    /// Changes a live provider, audited (`provider.updated`, metadata: changed field names).
    ///
    /// # Errors
    /// `ProviderNotFound`.
    async fn update_provider(
        &self,
        scope: &TenantScope,
        id: ProviderId,
        changes: &ProviderChanges,
        audit: &AuditContext,
    ) -> Result<Provider, InboxError>;

    /// Deletes a provider and its live instances (tombstones), audited (`provider.deleted`).
    /// Deleting a deleted provider succeeds with `now: false`.
    ///
    /// # Errors
    /// `ProviderNotFound` when the id was never a provider of this account.
    async fn delete_provider(
        &self,
        scope: &TenantScope,
        id: ProviderId,
        audit: &AuditContext,
    ) -> Result<Deleted, InboxError>;

    /// Stores an instance with its health (`unknown`, first history entry), audited
    /// (`provider_instance.created`), taking its quota slot (`instance.quota`) in the same
    /// transaction.
    ///
    /// # Errors
    /// `ProviderNotFound`, `InboxNotFound`, `InboxAlreadyLinked`, `Entitlement(QuotaExceeded)`
    /// (nothing stored).
    async fn create_instance(
        &self,
        scope: &TenantScope,
        instance: &NewInstance,
        audit: &AuditContext,
    ) -> Result<ProviderInstance, InboxError>;

    /// Live instances of a live provider ordered by id, after `after` (exclusive).
    ///
    /// # Errors
    /// `ProviderNotFound`.
    async fn list_instances(
        &self,
        scope: &TenantScope,
        provider: ProviderId,
        after: Option<InstanceId>,
        limit: Limit,
    ) -> Result<Paged<ProviderInstance>, InboxError>;

    /// One live instance of a live provider.
    ///
    /// # Errors
    /// `InstanceNotFound` (also when the provider is not this account's).
    async fn instance(
        &self,
        scope: &TenantScope,
        provider: ProviderId,
        id: InstanceId,
    ) -> Result<ProviderInstance, InboxError>;

    /// Changes a live instance, audited (`provider_instance.updated`).
    ///
    /// # Errors
    /// `InstanceNotFound`, `InboxNotFound`, `InboxAlreadyLinked`.
    async fn update_instance(
        &self,
        scope: &TenantScope,
        provider: ProviderId,
        id: InstanceId,
        changes: &InstanceChanges,
        audit: &AuditContext,
    ) -> Result<ProviderInstance, InboxError>;

    /// Deletes an instance (tombstone; its health is no longer probed), audited
    /// (`provider_instance.deleted`). Deleting a deleted instance succeeds with `now: false`.
    ///
    /// # Errors
    /// `InstanceNotFound` when the id was never an instance of that provider in this account.
    async fn delete_instance(
        &self,
        scope: &TenantScope,
        provider: ProviderId,
        id: InstanceId,
        audit: &AuditContext,
    ) -> Result<Deleted, InboxError>;

    /// Health transitions of a live instance, newest first, before `before` (exclusive).
    ///
    /// # Errors
    /// `InstanceNotFound`.
    async fn health_history(
        &self,
        scope: &TenantScope,
        provider: ProviderId,
        id: InstanceId,
        before: Option<Uuid>,
        limit: Limit,
    ) -> Result<Paged<HealthChange>, InboxError>;

    /// What a probe of one live instance needs.
    ///
    /// # Errors
    /// `InstanceNotFound`.
    async fn probe_target(
        &self,
        scope: &TenantScope,
        provider: ProviderId,
        id: InstanceId,
    ) -> Result<ProbeTarget, InboxError>;

    /// The instance's current health snapshot (after a lost compare-and-set).
    ///
    /// # Errors
    /// `InstanceNotFound` (also when it was deleted meanwhile).
    async fn health_snapshot(
        &self,
        scope: &TenantScope,
        id: InstanceId,
    ) -> Result<HealthSnapshot, InboxError>;

    /// Stores a new health if the stored one still has `expected_version` (and bumps it); on
    /// a change of state also writes a history entry and the `provider.health_changed` audit
    /// row (actor system), in the same transaction. See [`HealthSaved`] for the outcomes.
    ///
    /// # Errors
    /// `InstanceNotFound` when the instance is gone.
    async fn save_health(
        &self,
        scope: &TenantScope,
        id: InstanceId,
        expected_version: i64,
        update: &HealthUpdate,
    ) -> Result<HealthSaved, InboxError>;

    /// Records an accepted provider event (`last_event_at`, its type).
    ///
    /// # Errors
    /// `InstanceNotFound`.
    async fn record_event(
        &self,
        scope: &TenantScope,
        id: InstanceId,
        event: &str,
        at: OffsetDateTime,
    ) -> Result<HealthSnapshot, InboxError>;

    /// Claims up to `limit` live instances whose next probe is due at `now`, across accounts,
    /// and moves their next probe to `now + interval ± jitter` (random per instance), so that
    /// no other scheduler (on this or another Hub instance) claims them again meanwhile.
    async fn claim_due(
        &self,
        scope: &PlatformScope,
        now: OffsetDateTime,
        interval_ms: i64,
        jitter_ms: i64,
        limit: i64,
    ) -> Result<Vec<ProbeTarget>, StoreError>;

    /// The instance a provider webhook is addressed to, across accounts (`None`: no live
    /// instance has that id).
    async fn webhook_target(
        &self,
        scope: &PlatformScope,
        id: InstanceId,
    ) -> Result<Option<WebhookTarget>, StoreError>;
}

/// The outcome of [`ProviderStore::save_health`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthSaved {
    /// Stored; the state is the same as before.
    Unchanged,
    /// Stored; the state changed.
    Changed(HealthTransition),
    /// Not stored: another writer changed the health since it was read.
    Conflict,
}

/// Why a Chatwoot call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatwootCallError {
    /// Chatwoot refused the token (401).
    #[error("Chatwoot refused the token (401){}", .0.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Unauthorized(Option<String>),
    /// Chatwoot answered with another error status, or something unreadable.
    #[error("{0}")]
    Upstream(String),
    /// No answer in time.
    #[error("{0}")]
    Unavailable(String),
}

/// Chatwoot's user API, called with an account's token.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ChatwootAccounts: Send + Sync {
    /// Whose `token` this is, with their account memberships (`GET /api/v1/profile`).
    async fn token_owner(
        &self,
        scope: &TenantScope,
        token: &str,
    ) -> Result<ChatwootProfile, ChatwootCallError>;

    /// The inboxes of the scope's account (`GET /api/v1/accounts/{id}/inboxes`).
    async fn inboxes(
        &self,
        scope: &TenantScope,
        token: &str,
    ) -> Result<Vec<ChatwootInbox>, ChatwootCallError>;
}

/// A secret could not be sealed or opened (wrong key, other purpose, corrupt text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SealError(pub String);

/// Encrypts third-party secrets at rest (`HUB_DATA_KEYS`). `purpose` binds a sealed text to
/// what it is for (and whose it is), so it cannot be opened as something else.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait SecretSealer: Send + Sync {
    /// Seals `plaintext` for `purpose`.
    ///
    /// # Errors
    /// [`SealError`] when encryption fails.
    fn seal(&self, purpose: &str, plaintext: &[u8]) -> Result<String, SealError>;

    /// Opens what [`seal`](Self::seal) made for the same `purpose` (with any key still
    /// configured).
    ///
    /// # Errors
    /// [`SealError`] for another purpose, an unknown key or a corrupt text.
    fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, SealError>;
}

/// Per-instance webhook tokens: random, stored only as a hash.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait WebhookTokens: Send + Sync {
    /// A new token and its hash.
    fn generate(&self) -> (String, Vec<u8>);

    /// The hash of a presented token.
    fn hash(&self, presented: &str) -> Vec<u8>;
}

/// Where health transitions go for the realtime layer (in-process now; Redis later).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait HealthEvents: Send + Sync {
    /// Publishes one transition; never blocks, never fails (no subscriber: dropped).
    fn publish(&self, transition: &HealthTransition);
}

/// Quota claims and limits (the entitlements service).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Quotas: Send + Sync {
    /// The claim on one slot of `resource` that a create hands to its store, which takes it in
    /// the create's own transaction (`None`: quotas are not enforced).
    async fn claim(
        &self,
        scope: &TenantScope,
        resource: Resource,
    ) -> Result<Option<QuotaClaim>, EntitlementError>;

    /// Gives a slot back.
    async fn release(
        &self,
        scope: &TenantScope,
        reservation: Reservation,
    ) -> Result<(), EntitlementError>;

    /// The account's current limit of `resource` (`None`: unlimited).
    async fn limit(
        &self,
        scope: &TenantScope,
        resource: Resource,
    ) -> Result<Option<i64>, EntitlementError>;
}

#[async_trait]
impl Quotas for EntitlementsService {
    async fn claim(
        &self,
        scope: &TenantScope,
        resource: Resource,
    ) -> Result<Option<QuotaClaim>, EntitlementError> {
        Ok(Some(
            EntitlementsService::claim(self, scope, resource).await?,
        ))
    }

    async fn release(
        &self,
        scope: &TenantScope,
        reservation: Reservation,
    ) -> Result<(), EntitlementError> {
        EntitlementsService::release(self, scope, reservation).await
    }

    async fn limit(
        &self,
        scope: &TenantScope,
        resource: Resource,
    ) -> Result<Option<i64>, EntitlementError> {
        Ok(self.effective(scope).await?.limit(resource))
    }
}
