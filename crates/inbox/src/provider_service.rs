//! [`ProviderService`]: WhatsApp providers and their instances (with quotas), and the
//! provider webhooks that report on instances.

use std::sync::Arc;

use uuid::Uuid;
use whatpro_entitlements::{Reservation, Resource};
use whatpro_iam::{Action, AuditContext, PlatformScope, TenantScope};
use whatpro_kernel::{AccountId, Clock, IdGen, Limit};

use crate::error::InboxError;
use crate::health::{HealthSettings, evaluate_pushed_state, first_check_delay};
use crate::ids::{InboxId, InstanceId, ProviderId};
use crate::model::{
    CreatedInstance, HealthChange, HealthSnapshot, HealthSource, HealthState, HealthTransition,
    HealthUpdate, InstanceChanges, NewInstance, NewProvider, Paged, Provider, ProviderChanges,
    ProviderInstance, SealedCredentials,
};
use crate::ports::{HealthEvents, HealthSaved, ProviderStore, Quotas, SecretSealer, WebhookTokens};
use crate::provider::{Credentials, CredentialsError, ProviderType, UrlCheck};
use crate::secrets::{
    instance_credentials_purpose, provider_credentials_purpose, seal_credentials,
};
use crate::validate;
use crate::webhook::{ProviderEvent, WebhookParseError, constant_time_eq, parse_webhook};

/// How often a compare-and-set of an instance's health is retried after losing a race.
pub(crate) const HEALTH_CAS_ATTEMPTS: usize = 3;

/// `POST .../providers`, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRequest {
    /// `evolution`, `zapi`, `wppconnect`, `uazapi` or `whatsapp_cloud`.
    pub provider_type: String,
    /// Label.
    pub name: String,
    /// Base URL.
    pub base_url: String,
    /// Credentials (see [`ProviderType::required_provider_credentials`]).
    pub credentials: Credentials,
}

/// `PATCH .../providers/{id}`, before validation (`None`: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderPatch {
    /// New label.
    pub name: Option<String>,
    /// New base URL.
    pub base_url: Option<String>,
    /// New credentials (all of them).
    pub credentials: Option<Credentials>,
}

/// `POST .../instances`, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRequest {
    /// Name at the provider.
    pub name: String,
    /// The Hub inbox to link.
    pub inbox_id: Option<Uuid>,
    /// The instance's own credentials.
    pub credentials: Option<Credentials>,
}

/// `PATCH .../instances/{id}`, before validation (`None`: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstancePatch {
    /// New name.
    pub name: Option<String>,
    /// New link (`Some(None)`: unlink).
    pub inbox_id: Option<Option<Uuid>>,
    /// New credentials (`Some(None)`: remove them).
    pub credentials: Option<Option<Credentials>>,
}

/// What the Hub did with a provider webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookOutcome {
    /// The instance's account.
    pub account_id: AccountId,
    /// The normalised event name.
    pub event: String,
    /// Whether it was recorded (`false`: acknowledged and ignored).
    pub recorded: bool,
    /// The instance's health state after it, when it was recorded.
    pub state: Option<HealthState>,
}

/// Providers, instances and provider webhooks.
pub struct ProviderService {
    store: Arc<dyn ProviderStore>,
    urls: Arc<dyn UrlCheck>,
    sealer: Arc<dyn SecretSealer>,
    tokens: Arc<dyn WebhookTokens>,
    quotas: Arc<dyn Quotas>,
    events: Arc<dyn HealthEvents>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    settings: HealthSettings,
    platform: PlatformScope,
}

impl std::fmt::Debug for ProviderService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The ports [`ProviderService`] uses.
pub struct ProviderPorts {
    /// Providers, instances, health.
    pub store: Arc<dyn ProviderStore>,
    /// The SSRF guard.
    pub urls: Arc<dyn UrlCheck>,
    /// Sealing of credentials.
    pub sealer: Arc<dyn SecretSealer>,
    /// Webhook tokens.
    pub tokens: Arc<dyn WebhookTokens>,
    /// Quotas.
    pub quotas: Arc<dyn Quotas>,
    /// Health transitions out.
    pub events: Arc<dyn HealthEvents>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Ids.
    pub ids: Arc<dyn IdGen>,
}

fn require(scope: &TenantScope, action: Action) -> Result<(), InboxError> {
    if scope.can(action) {
        Ok(())
    } else {
        Err(InboxError::Forbidden)
    }
}

fn credentials_error(error: CredentialsError) -> InboxError {
    InboxError::invalid("credentials", error.to_string())
}

impl ProviderService {
    /// Wires the service; `platform` is the jobs' scope (used to find the instance a webhook
    /// is addressed to, before its token is checked).
    pub fn new(ports: ProviderPorts, settings: HealthSettings, platform: PlatformScope) -> Self {
        Self {
            store: ports.store,
            urls: ports.urls,
            sealer: ports.sealer,
            tokens: ports.tokens,
            quotas: ports.quotas,
            events: ports.events,
            clock: ports.clock,
            ids: ports.ids,
            settings,
            platform,
        }
    }

    async fn check_base_url(&self, text: &str) -> Result<String, InboxError> {
        let url = validate::base_url_shape(text)?;
        self.urls
            .check(&url)
            .await
            .map_err(|e| InboxError::invalid("base_url", e.to_string()))?;
        Ok(url)
    }

    async fn release(&self, scope: &TenantScope, resource: Resource, n: i64) {
        for _ in 0..n {
            let reservation = Reservation {
                resource,
                period: String::new(),
            };
            if let Err(error) = self.quotas.release(scope, reservation).await {
                tracing::warn!(
                    account = %scope.account_id(),
                    resource = resource.limit_key(),
                    error = %error,
                    "could not give a quota slot back"
                );
            }
        }
    }

    // ------------------------------------------------------------------------ providers

    /// Registers a provider (admins): type, label, base URL (vetted by the SSRF guard) and
    /// credentials (checked against the type, sealed). Takes a `max_providers` slot.
    ///
    /// # Errors
    /// `Forbidden`; `Invalid` (`type`, `name`, `base_url`, `credentials`); `QuotaExceeded`
    /// (through `Entitlement`); storage errors. Nothing is stored on any error.
    pub async fn create_provider(
        &self,
        scope: &TenantScope,
        request: ProviderRequest,
        audit: &AuditContext,
    ) -> Result<Provider, InboxError> {
        require(scope, Action::ProvidersWrite)?;
        let provider_type: ProviderType = request.provider_type.trim().parse().map_err(
            |e: crate::provider::UnknownProviderType| InboxError::invalid("type", e.to_string()),
        )?;
        let name = validate::label("name", &request.name)?;
        request
            .credentials
            .check(
                provider_type.required_provider_credentials(),
                provider_type.optional_provider_credentials(),
            )
            .map_err(credentials_error)?;
        let base_url = self.check_base_url(&request.base_url).await?;

        let id = ProviderId::from_uuid(self.ids.new_id());
        let sealed = seal_credentials(
            self.sealer.as_ref(),
            &provider_credentials_purpose(scope.account_id(), id),
            &request.credentials,
        )?;
        let provider = NewProvider {
            id,
            provider_type,
            name,
            base_url,
            sealed_credentials: sealed.sealed,
            credential_keys: sealed.keys,
            quota: self.quotas.claim(scope, Resource::Providers).await?,
        };
        self.store.create_provider(scope, &provider, audit).await
    }

    /// Live providers by id (`ProvidersRead`).
    ///
    /// # Errors
    /// `Forbidden`; storage errors.
    pub async fn list_providers(
        &self,
        scope: &TenantScope,
        after: Option<ProviderId>,
        limit: Limit,
    ) -> Result<Paged<Provider>, InboxError> {
        require(scope, Action::ProvidersRead)?;
        Ok(self.store.list_providers(scope, after, limit).await?)
    }

    /// One provider (`ProvidersRead`).
    ///
    /// # Errors
    /// `Forbidden`; `ProviderNotFound`; storage errors.
    pub async fn provider(
        &self,
        scope: &TenantScope,
        id: ProviderId,
    ) -> Result<Provider, InboxError> {
        require(scope, Action::ProvidersRead)?;
        self.store.provider(scope, id).await
    }

    /// Changes a provider's label, base URL or credentials (admins). Its type never changes.
    ///
    /// # Errors
    /// `Forbidden`; `ProviderNotFound`; `Invalid`; storage errors.
    pub async fn update_provider(
        &self,
        scope: &TenantScope,
        id: ProviderId,
        patch: ProviderPatch,
        audit: &AuditContext,
    ) -> Result<Provider, InboxError> {
        require(scope, Action::ProvidersWrite)?;
        let current = self.store.provider(scope, id).await?;
        let provider_type = current.provider_type;
        let name = patch
            .name
            .as_deref()
            .map(|n| validate::label("name", n))
            .transpose()?;
        if let Some(credentials) = &patch.credentials {
            credentials
                .check(
                    provider_type.required_provider_credentials(),
                    provider_type.optional_provider_credentials(),
                )
                .map_err(credentials_error)?;
        }
        let base_url = match patch.base_url.as_deref() {
            Some(url) => Some(self.check_base_url(url).await?),
            None => None,
        };
        let credentials = patch
            .credentials
            .as_ref()
            .map(|c| {
                seal_credentials(
                    self.sealer.as_ref(),
                    &provider_credentials_purpose(scope.account_id(), id),
                    c,
                )
            })
            .transpose()?;
        let changes = ProviderChanges {
            name,
            base_url,
            credentials,
        };
        if changes == ProviderChanges::default() {
            return Ok(current);
        }
        self.store.update_provider(scope, id, &changes, audit).await
    }

    /// Deletes a provider and its instances (admins), giving their quota slots back. Deleting
    /// it again succeeds without effect.
    ///
    /// # Errors
    /// `Forbidden`; `ProviderNotFound`; storage errors.
    pub async fn delete_provider(
        &self,
        scope: &TenantScope,
        id: ProviderId,
        audit: &AuditContext,
    ) -> Result<(), InboxError> {
        require(scope, Action::ProvidersWrite)?;
        let deleted = self.store.delete_provider(scope, id, audit).await?;
        if deleted.now {
            self.release(scope, Resource::Providers, 1).await;
            self.release(scope, Resource::Instances, deleted.instances)
                .await;
        }
        Ok(())
    }

    // ------------------------------------------------------------------------ instances

    fn instance_credentials(
        &self,
        provider_type: ProviderType,
        credentials: Option<&Credentials>,
    ) -> Result<(), InboxError> {
        let empty = Credentials::default();
        credentials
            .unwrap_or(&empty)
            .check(
                provider_type.required_instance_credentials(),
                provider_type.optional_instance_credentials(),
            )
            .map_err(credentials_error)
    }

    fn seal_instance_credentials(
        &self,
        scope: &TenantScope,
        id: InstanceId,
        credentials: Option<&Credentials>,
    ) -> Result<Option<SealedCredentials>, InboxError> {
        credentials
            .filter(|c| c.keys().next().is_some())
            .map(|c| {
                seal_credentials(
                    self.sealer.as_ref(),
                    &instance_credentials_purpose(scope.account_id(), id),
                    c,
                )
            })
            .transpose()
    }

    /// Creates an instance of a provider (admins) with a fresh webhook token (returned once,
    /// stored hashed). Takes a `max_instances` slot. Its health starts `unknown`; the
    /// scheduler probes it first at a point of the interval taken from its id.
    ///
    /// # Errors
    /// `Forbidden`; `ProviderNotFound` (also another account's provider); `Invalid` (`name`,
    /// `credentials`); `InboxNotFound`; `InboxAlreadyLinked`; `QuotaExceeded`; storage errors.
    pub async fn create_instance(
        &self,
        scope: &TenantScope,
        provider_id: ProviderId,
        request: InstanceRequest,
        audit: &AuditContext,
    ) -> Result<CreatedInstance, InboxError> {
        require(scope, Action::ProvidersWrite)?;
        let provider_type = self.store.provider_type(scope, provider_id).await?;
        let name = validate::instance_name(provider_type, &request.name)?;
        self.instance_credentials(provider_type, request.credentials.as_ref())?;

        let id = InstanceId::from_uuid(self.ids.new_id());
        let (webhook_token, webhook_token_hash) = self.tokens.generate();
        let credentials =
            self.seal_instance_credentials(scope, id, request.credentials.as_ref())?;
        let delay = time::Duration::try_from(first_check_delay(id, self.settings.interval))
            .map_err(|e| InboxError::Internal(e.to_string()))?;
        let instance = NewInstance {
            id,
            provider_id,
            name,
            inbox_id: request.inbox_id.map(InboxId::from_uuid),
            credentials,
            webhook_token_hash,
            first_check_at: self.clock.now() + delay,
            quota: self.quotas.claim(scope, Resource::Instances).await?,
        };
        let instance = self.store.create_instance(scope, &instance, audit).await?;
        Ok(CreatedInstance {
            instance,
            webhook_token,
        })
    }

    /// Live instances of a provider (`ProvidersRead`).
    ///
    /// # Errors
    /// `Forbidden`; `ProviderNotFound`; storage errors.
    pub async fn list_instances(
        &self,
        scope: &TenantScope,
        provider: ProviderId,
        after: Option<InstanceId>,
        limit: Limit,
    ) -> Result<Paged<ProviderInstance>, InboxError> {
        require(scope, Action::ProvidersRead)?;
        self.store
            .list_instances(scope, provider, after, limit)
            .await
    }

    /// One instance (`ProvidersRead`).
    ///
    /// # Errors
    /// `Forbidden`; `InstanceNotFound`; storage errors.
    pub async fn instance(
        &self,
        scope: &TenantScope,
        provider: ProviderId,
        id: InstanceId,
    ) -> Result<ProviderInstance, InboxError> {
        require(scope, Action::ProvidersRead)?;
        self.store.instance(scope, provider, id).await
    }

    /// Renames an instance, links or unlinks its inbox, replaces or removes its credentials
    /// (admins).
    ///
    /// # Errors
    /// `Forbidden`; `InstanceNotFound`; `Invalid`; `InboxNotFound`; `InboxAlreadyLinked`;
    /// storage errors.
    pub async fn update_instance(
        &self,
        scope: &TenantScope,
        provider_id: ProviderId,
        id: InstanceId,
        patch: InstancePatch,
        audit: &AuditContext,
    ) -> Result<ProviderInstance, InboxError> {
        require(scope, Action::ProvidersWrite)?;
        let current = self.store.instance(scope, provider_id, id).await?;
        let provider = self.store.provider(scope, provider_id).await?;
        let name = patch
            .name
            .as_deref()
            .map(|n| validate::instance_name(provider.provider_type, n))
            .transpose()?;
        let credentials = match &patch.credentials {
            Some(new) => {
                self.instance_credentials(provider.provider_type, new.as_ref())?;
                Some(self.seal_instance_credentials(scope, id, new.as_ref())?)
            }
            None => None,
        };
        let changes = InstanceChanges {
            name,
            inbox_id: patch.inbox_id.map(|link| link.map(InboxId::from_uuid)),
            credentials,
        };
        if changes == InstanceChanges::default() {
            return Ok(current);
        }
        self.store
            .update_instance(scope, provider_id, id, &changes, audit)
            .await
    }

    /// Deletes an instance (admins), giving its quota slot back; it is no longer probed and
    /// its webhook token stops working. Deleting it again succeeds without effect.
    ///
    /// # Errors
    /// `Forbidden`; `InstanceNotFound`; storage errors.
    pub async fn delete_instance(
        &self,
        scope: &TenantScope,
        provider_id: ProviderId,
        id: InstanceId,
        audit: &AuditContext,
    ) -> Result<(), InboxError> {
        require(scope, Action::ProvidersWrite)?;
        let deleted = self
            .store
            .delete_instance(scope, provider_id, id, audit)
            .await?;
        if deleted.now {
            self.release(scope, Resource::Instances, 1).await;
        }
        Ok(())
    }

    /// The instance's health transitions, newest first (`ProvidersRead`).
    ///
    /// # Errors
    /// `Forbidden`; `InstanceNotFound`; storage errors.
    pub async fn health_history(
        &self,
        scope: &TenantScope,
        provider_id: ProviderId,
        id: InstanceId,
        before: Option<Uuid>,
        limit: Limit,
    ) -> Result<Paged<HealthChange>, InboxError> {
        require(scope, Action::ProvidersRead)?;
        self.store
            .health_history(scope, provider_id, id, before, limit)
            .await
    }

    // ------------------------------------------------------------------------ webhooks

    /// Handles a provider webhook for instance `id`: the Bearer token must be the instance's
    /// (compared as hashes, in constant time), then the body is read. `connection.update`,
    /// `messages.upsert` and `qrcode.updated` are recorded as signs of life (the health
    /// machine reads their age) and `connection.update` moves the health state; other events
    /// are acknowledged and ignored, as are events naming another instance.
    ///
    /// # Errors
    /// `WebhookUnauthorized` (no such live instance, no token or a wrong one);
    /// `WebhookNotJson`; `WebhookMalformed`; storage errors.
    pub async fn receive_webhook(
        &self,
        id: Uuid,
        bearer: Option<&str>,
        body: &[u8],
    ) -> Result<WebhookOutcome, InboxError> {
        let instance_id = InstanceId::from_uuid(id);
        let target = self
            .store
            .webhook_target(&self.platform, instance_id)
            .await?
            .ok_or(InboxError::WebhookUnauthorized)?;
        let presented = bearer.ok_or(InboxError::WebhookUnauthorized)?;
        if !constant_time_eq(&self.tokens.hash(presented), &target.token_hash) {
            return Err(InboxError::WebhookUnauthorized);
        }
        let parsed = parse_webhook(body).map_err(|e| match e {
            WebhookParseError::NotJson(m) => InboxError::WebhookNotJson(m),
            WebhookParseError::Malformed(m) => InboxError::WebhookMalformed(m),
        })?;
        let ignored = WebhookOutcome {
            account_id: target.account_id,
            event: parsed.event.name().to_owned(),
            recorded: false,
            state: None,
        };
        if !parsed.event.is_known() {
            return Ok(ignored);
        }
        if parsed
            .instance
            .as_deref()
            .is_some_and(|name| name != target.instance_name)
        {
            // e.g. a server-wide webhook pointed at this instance's URL.
            return Ok(ignored);
        }
        let scope = self.platform.tenant(target.account_id);
        let now = self.clock.now();
        let snapshot = self
            .store
            .record_event(&scope, instance_id, parsed.event.name(), now)
            .await?;
        let mut state = snapshot.health.state;
        if let ProviderEvent::ConnectionUpdate {
            state: Some(pushed),
            status_reason,
            ..
        } = parsed.event
        {
            let (after, _) = save_with_retry(
                self.store.as_ref(),
                self.events.as_ref(),
                &scope,
                instance_id,
                snapshot,
                |snapshot| {
                    let evaluation = evaluate_pushed_state(snapshot, pushed, status_reason, now);
                    HealthUpdate {
                        health: evaluation.health,
                        consecutive_failures: evaluation.consecutive_failures,
                        source: HealthSource::Webhook,
                    }
                },
            )
            .await?;
            state = after;
        }
        Ok(WebhookOutcome {
            recorded: true,
            state: Some(state),
            ..ignored
        })
    }
}

/// Stores the health `evaluate` computes from the latest snapshot, retrying a lost
/// compare-and-set; publishes a transition. Returns the state stored (or, after losing every
/// attempt, the latest state read) and the transition, if the state changed.
pub(crate) async fn save_with_retry(
    store: &dyn ProviderStore,
    events: &dyn HealthEvents,
    scope: &TenantScope,
    id: InstanceId,
    mut snapshot: HealthSnapshot,
    evaluate: impl Fn(&HealthSnapshot) -> HealthUpdate,
) -> Result<(HealthState, Option<HealthTransition>), InboxError> {
    for _ in 0..HEALTH_CAS_ATTEMPTS {
        let update = evaluate(&snapshot);
        match store
            .save_health(scope, id, snapshot.version, &update)
            .await?
        {
            HealthSaved::Changed(transition) => {
                events.publish(&transition);
                return Ok((transition.to, Some(transition)));
            }
            HealthSaved::Unchanged => return Ok((update.health.state, None)),
            HealthSaved::Conflict => snapshot = store.health_snapshot(scope, id).await?,
        }
    }
    Ok((snapshot.health.state, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Deleted, InstanceHealth, WebhookTarget};
    use crate::ports::{
        MockHealthEvents, MockProviderStore, MockQuotas, MockSecretSealer, MockWebhookTokens,
    };
    use crate::provider::{MockUrlCheck, UrlRejected};
    use std::collections::BTreeMap;
    use time::OffsetDateTime;
    use time::macros::datetime;
    use whatpro_entitlements::EntitlementError;
    use whatpro_iam::Role;
    use whatpro_kernel::{FixedClock, UserId, UuidV7Gen};

    const NOW: OffsetDateTime = datetime!(2026-12-01 10:00:00 UTC);

    struct Mocks {
        store: MockProviderStore,
        urls: MockUrlCheck,
        sealer: MockSecretSealer,
        tokens: MockWebhookTokens,
        quotas: MockQuotas,
        events: MockHealthEvents,
    }

    impl Mocks {
        fn new() -> Self {
            let mut sealer = MockSecretSealer::new();
            sealer
                .expect_seal()
                .returning(|purpose, _| Ok(format!("sealed-for:{purpose}")));
            let mut tokens = MockWebhookTokens::new();
            tokens
                .expect_generate()
                .returning(|| ("whpw_token".to_owned(), b"hash:whpw_token".to_vec()));
            tokens
                .expect_hash()
                .returning(|t| format!("hash:{t}").into_bytes());
            let mut urls = MockUrlCheck::new();
            urls.expect_check().returning(|url| {
                if url.starts_with("https://") {
                    Ok(())
                } else {
                    Err(UrlRejected(format!("{url} is not allowed")))
                }
            });
            Self {
                store: MockProviderStore::new(),
                urls,
                sealer,
                tokens,
                quotas: MockQuotas::new(),
                events: MockHealthEvents::new(),
            }
        }

        fn service(self) -> ProviderService {
            ProviderService::new(
                ProviderPorts {
                    store: Arc::new(self.store),
                    urls: Arc::new(self.urls),
                    sealer: Arc::new(self.sealer),
                    tokens: Arc::new(self.tokens),
                    quotas: Arc::new(self.quotas),
                    events: Arc::new(self.events),
                    clock: Arc::new(FixedClock::new(NOW)),
                    ids: Arc::new(UuidV7Gen),
                },
                HealthSettings::default(),
                PlatformScope::for_system_jobs(),
            )
        }
    }

    fn scope(role: Role) -> TenantScope {
        TenantScope::for_tests(AccountId::new(1), UserId::new(5), role)
    }

    fn creds(pairs: &[(&str, &str)]) -> Credentials {
        Credentials::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    fn request(provider_type: &str, url: &str, credentials: Credentials) -> ProviderRequest {
        ProviderRequest {
            provider_type: provider_type.to_owned(),
            name: "Evo".to_owned(),
            base_url: url.to_owned(),
            credentials,
        }
    }

    fn provider(provider_type: ProviderType) -> Provider {
        Provider {
            id: ProviderId::from_uuid(Uuid::now_v7()),
            provider_type,
            name: "Evo".into(),
            base_url: "https://evo.example".into(),
            credential_keys: vec!["api_key".into()],
            instance_count: 0,
            created_at: NOW,
            updated_at: NOW,
        }
    }

    fn instance(provider_id: ProviderId) -> ProviderInstance {
        ProviderInstance {
            id: InstanceId::from_uuid(Uuid::now_v7()),
            provider_id,
            name: "suporte".into(),
            inbox_id: None,
            credential_keys: Vec::new(),
            health: InstanceHealth::unknown(),
            last_event_at: None,
            created_at: NOW,
            updated_at: NOW,
        }
    }

    #[tokio::test]
    async fn bad_provider_input_is_refused_before_any_quota_or_store_call() {
        let cases = [
            (request("telegram", "https://e.example", creds(&[])), "type"),
            (
                request("evolution", "https://e.example", creds(&[])),
                "credentials",
            ),
            (
                request(
                    "evolution",
                    "https://e.example",
                    creds(&[("api_key", "k"), ("x", "y")]),
                ),
                "credentials",
            ),
            (
                request("evolution", "http://10.0.0.1", creds(&[("api_key", "k")])),
                "base_url",
            ),
            (
                request("evolution", "  ", creds(&[("api_key", "k")])),
                "base_url",
            ),
        ];
        for (req, field) in cases {
            let mut m = Mocks::new();
            m.quotas.expect_claim().never();
            m.store.expect_create_provider().never();
            let err = m
                .service()
                .create_provider(&scope(Role::Admin), req.clone(), &AuditContext::default())
                .await
                .unwrap_err();
            match err {
                InboxError::Invalid { field: f, .. } => assert_eq!(f, field, "{req:?}"),
                other => panic!("{req:?}: {other:?}"),
            }
        }
        let mut m = Mocks::new();
        m.quotas.expect_claim().never();
        let err = m
            .service()
            .create_provider(
                &scope(Role::Supervisor),
                request("evolution", "https://e.example", creds(&[("api_key", "k")])),
                &AuditContext::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(err, InboxError::Forbidden);
    }

    fn claim(resource: Resource) -> Option<whatpro_entitlements::QuotaClaim> {
        Some(whatpro_entitlements::QuotaClaim {
            resource,
            period: String::new(),
            limit: Some(2),
        })
    }

    fn claimed(
        _: &TenantScope,
        resource: Resource,
    ) -> Result<Option<whatpro_entitlements::QuotaClaim>, EntitlementError> {
        Ok(claim(resource))
    }

    #[tokio::test]
    async fn a_provider_hands_its_quota_claim_to_the_store_and_never_releases_by_hand() {
        let mut m = Mocks::new();
        m.quotas
            .expect_claim()
            .withf(|_, r| *r == Resource::Providers)
            .times(1)
            .returning(claimed);
        m.store
            .expect_create_provider()
            .withf(|_, p, _| {
                p.sealed_credentials
                    == format!("sealed-for:whatpro:sealed:provider-credentials:1:{}", p.id)
                    && p.credential_keys == ["api_key"]
                    && p.base_url == "https://evo.example"
                    && p.quota == claim(Resource::Providers)
            })
            .returning(|_, _, _| Err(InboxError::Unavailable("down".into())));
        // The slot is taken in the store's transaction: a failed create rolls it back there.
        m.quotas.expect_release().never();
        let err = m
            .service()
            .create_provider(
                &scope(Role::Admin),
                request(
                    "evolution",
                    " https://evo.example ",
                    creds(&[("api_key", "k")]),
                ),
                &AuditContext::default(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, InboxError::Unavailable(_)));
    }

    #[tokio::test]
    async fn quota_exceeded_in_the_store_reaches_the_caller_as_quota_exceeded() {
        let mut m = Mocks::new();
        m.quotas.expect_claim().returning(claimed);
        m.store
            .expect_create_provider()
            .times(1)
            .returning(|_, p, _| {
                let claim = p.quota.as_ref().expect("a claim");
                Err(InboxError::Entitlement(claim.exceeded(2, 2)))
            });
        m.quotas.expect_release().never();
        let err = m
            .service()
            .create_provider(
                &scope(Role::Admin),
                request("zapi", "https://api.z-api.io", creds(&[])),
                &AuditContext::default(),
            )
            .await
            .unwrap_err();
        use whatpro_kernel::Classify;
        assert_eq!(err.code(), "quota_exceeded");
        assert_eq!(
            err,
            InboxError::Entitlement(EntitlementError::QuotaExceeded {
                resource: Resource::Providers,
                limit: 2,
                used: 2,
            })
        );
    }

    #[tokio::test]
    async fn deleting_gives_back_the_provider_and_its_instances_once() {
        let mut m = Mocks::new();
        let mut first = true;
        m.store
            .expect_delete_provider()
            .times(2)
            .returning(move |_, _, _| {
                let now = first;
                first = false;
                Ok(Deleted { now, instances: 2 })
            });
        m.quotas.expect_release().times(3).returning(|_, _| Ok(()));
        let svc = m.service();
        let id = ProviderId::from_uuid(Uuid::now_v7());
        svc.delete_provider(&scope(Role::Admin), id, &AuditContext::default())
            .await
            .unwrap();
        svc.delete_provider(&scope(Role::Admin), id, &AuditContext::default())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn instances_need_their_types_credentials_and_get_a_token_once() {
        // Z-API instances need their instance token.
        let mut m = Mocks::new();
        let zapi = provider(ProviderType::Zapi);
        let zapi_id = zapi.id;
        m.store
            .expect_provider_type()
            .withf(move |_, id| *id == zapi_id)
            .returning(|_, _| Ok(ProviderType::Zapi));
        m.quotas.expect_claim().never();
        let err = m
            .service()
            .create_instance(
                &scope(Role::Admin),
                zapi_id,
                InstanceRequest {
                    name: "3C0F".into(),
                    inbox_id: None,
                    credentials: None,
                },
                &AuditContext::default(),
            )
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            InboxError::Invalid {
                field: "credentials",
                ..
            }
        ));

        let mut m = Mocks::new();
        let evo = provider(ProviderType::Evolution);
        let evo_id = evo.id;
        m.store
            .expect_provider_type()
            .withf(move |_, id| *id == evo_id)
            .returning(|_, _| Ok(ProviderType::Evolution));
        m.quotas
            .expect_claim()
            .withf(|_, r| *r == Resource::Instances)
            .returning(claimed);
        m.store
            .expect_create_instance()
            .withf(|_, i, _| {
                i.quota == claim(Resource::Instances)
                    && i.webhook_token_hash == b"hash:whpw_token"
                    && i.first_check_at >= NOW
                    && i.first_check_at < NOW + time::Duration::seconds(60)
                    && i.credentials.as_ref().is_some_and(|c| {
                        c.sealed
                            == format!("sealed-for:whatpro:sealed:instance-credentials:1:{}", i.id)
                    })
            })
            .returning(|_, i, _| Ok(instance(i.provider_id)));
        let created = m
            .service()
            .create_instance(
                &scope(Role::Admin),
                evo_id,
                InstanceRequest {
                    name: "suporte".into(),
                    inbox_id: None,
                    credentials: Some(creds(&[("instance_api_key", "h")])),
                },
                &AuditContext::default(),
            )
            .await
            .unwrap();
        assert_eq!(created.webhook_token, "whpw_token");
    }

    fn target(account: i64) -> WebhookTarget {
        WebhookTarget {
            account_id: AccountId::new(account),
            provider_id: ProviderId::from_uuid(Uuid::now_v7()),
            instance_id: InstanceId::from_uuid(Uuid::now_v7()),
            provider_type: ProviderType::Evolution,
            instance_name: "suporte".into(),
            token_hash: b"hash:good".to_vec(),
        }
    }

    fn snapshot(state: HealthState, version: i64) -> HealthSnapshot {
        HealthSnapshot {
            health: InstanceHealth {
                state,
                ..InstanceHealth::unknown()
            },
            consecutive_failures: 0,
            last_event_at: Some(NOW),
            version,
        }
    }

    #[tokio::test]
    async fn webhooks_need_the_instances_token_before_the_body_is_read() {
        for bearer in [None, Some("bad"), Some("")] {
            let mut m = Mocks::new();
            m.store
                .expect_webhook_target()
                .returning(|_, _| Ok(Some(target(1))));
            m.store.expect_record_event().never();
            let err = m
                .service()
                .receive_webhook(Uuid::now_v7(), bearer, b"not json")
                .await
                .unwrap_err();
            assert_eq!(err, InboxError::WebhookUnauthorized, "{bearer:?}");
        }
        let mut m = Mocks::new();
        m.store.expect_webhook_target().returning(|_, _| Ok(None));
        let err = m
            .service()
            .receive_webhook(Uuid::now_v7(), Some("good"), b"{}")
            .await
            .unwrap_err();
        assert_eq!(err, InboxError::WebhookUnauthorized);

        let mut m = Mocks::new();
        m.store
            .expect_webhook_target()
            .returning(|_, _| Ok(Some(target(1))));
        let err = m
            .service()
            .receive_webhook(Uuid::now_v7(), Some("good"), b"not json")
            .await
            .unwrap_err();
        assert!(matches!(err, InboxError::WebhookNotJson(_)));
    }

    #[tokio::test]
    async fn connection_updates_move_the_health_and_are_published() {
        let mut m = Mocks::new();
        m.store
            .expect_webhook_target()
            .returning(|_, _| Ok(Some(target(7))));
        m.store
            .expect_record_event()
            .withf(|scope, _, event, at| {
                scope.account_id() == AccountId::new(7)
                    && event == "CONNECTION_UPDATE"
                    && *at == NOW
            })
            .returning(|_, _, _, _| Ok(snapshot(HealthState::Healthy, 3)));
        // The first compare-and-set loses a race; the second wins.
        let mut calls = 0;
        m.store
            .expect_save_health()
            .times(2)
            .returning(move |scope, id, version, update| {
                calls += 1;
                assert_eq!(update.health.state, HealthState::Down);
                assert_eq!(update.source, HealthSource::Webhook);
                if calls == 1 {
                    assert_eq!(version, 3);
                    Ok(HealthSaved::Conflict)
                } else {
                    assert_eq!(version, 4);
                    Ok(HealthSaved::Changed(crate::model::HealthTransition {
                        account_id: scope.account_id(),
                        provider_id: ProviderId::from_uuid(Uuid::nil()),
                        instance_id: id,
                        from: HealthState::Healthy,
                        to: HealthState::Down,
                        reason: update.health.reason.clone(),
                        source: HealthSource::Webhook,
                        at: NOW,
                    }))
                }
            });
        m.store
            .expect_health_snapshot()
            .returning(|_, _| Ok(snapshot(HealthState::Healthy, 4)));
        m.events
            .expect_publish()
            .withf(|t| t.to == HealthState::Down)
            .times(1)
            .return_const(());
        let outcome = m
            .service()
            .receive_webhook(
                Uuid::now_v7(),
                Some("good"),
                br#"{"event":"connection.update","instance":"suporte","data":{"state":"close","statusReason":401}}"#,
            )
            .await
            .unwrap();
        assert_eq!(outcome.state, Some(HealthState::Down));
        assert!(outcome.recorded);
        assert_eq!(outcome.account_id, AccountId::new(7));
    }

    #[tokio::test]
    async fn unknown_events_and_other_instances_events_are_ignored() {
        for body in [
            &br#"{"event":"presence.update","instance":"suporte"}"#[..],
            br#"{"event":"messages.upsert","instance":"vendas","data":{}}"#,
        ] {
            let mut m = Mocks::new();
            m.store
                .expect_webhook_target()
                .returning(|_, _| Ok(Some(target(1))));
            m.store.expect_record_event().never();
            let outcome = m
                .service()
                .receive_webhook(Uuid::now_v7(), Some("good"), body)
                .await
                .unwrap();
            assert!(!outcome.recorded);
        }
        let mut m = Mocks::new();
        m.store
            .expect_webhook_target()
            .returning(|_, _| Ok(Some(target(1))));
        m.store
            .expect_record_event()
            .times(1)
            .returning(|_, _, _, _| Ok(snapshot(HealthState::Healthy, 1)));
        m.store.expect_save_health().never();
        let outcome = m
            .service()
            .receive_webhook(
                Uuid::now_v7(),
                Some("good"),
                br#"{"event":"messages.upsert","instance":"suporte","data":{"key":{}}}"#,
            )
            .await
            .unwrap();
        assert!(outcome.recorded);
        assert_eq!(outcome.state, Some(HealthState::Healthy));
    }
}
