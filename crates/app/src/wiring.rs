//! The composition root: adapters built from the configuration and plugged into the domain
//! services. `serve`, `dev`, the tests and the benchmarks all build their state here.

use std::sync::Arc;

use whatpro_asaas::{AsaasClient, AsaasSettings};
use whatpro_billing::{BillingService, BillingSettings, PaymentGateway};
use whatpro_chatwoot::{ChatwootClient, ClientSettings};
use whatpro_crypto::{
    Argon2SecretHasher, HubRefreshTokens, HubWebhookTokens, KeyRing, PasetoAccessTokens,
    PasetoInstanceTokens, SecretBox,
};
use whatpro_db::{
    CachedIdentityStore, PgAccountDirectory, PgAccountInstallations, PgAuditLog, PgBillingStore,
    PgCredentialStore, PgEntitlementStore, PgIdentityStore, PgInboxStore, PgMemberRepository,
    PgProviderStore, PgUsageStore, Pool,
};
use whatpro_entitlements::{EntitlementsService, MeteringService};
use whatpro_iam::{IamPorts, IamService, IamSettings, PlatformScope};
use whatpro_inbox::{
    HealthEvents, HealthService, HealthSettings, InboxService, ProviderPorts, ProviderService,
    ProviderStore, Quotas, SecretSealer,
};
use whatpro_kernel::{SystemClock, UuidV7Gen};
use whatpro_netguard::UrlGuard;
use whatpro_providers::{ProbeSettings, ProviderClients};
use whatpro_ratelimit::{LocalLimiter, RateLimiter, RedisLimiter};
use whatpro_telemetry::Metrics;
use whatpro_tenancy::{PlatformAppService, TenancyService};

use crate::config::{Config, ConfigError};
use crate::health_events::BroadcastHealthEvents;
use crate::startup::StartupError;
use crate::state::AppState;

fn missing(var: &str) -> StartupError {
    StartupError::Config(ConfigError {
        var: var.to_owned(),
        problem: "is required".to_owned(),
    })
}

/// Builds every adapter and service for `config` over `pool`, and starts the cache
/// invalidation listener (on the current Tokio runtime).
///
/// # Errors
/// Missing keys or Chatwoot URL; Redis unreachable when `REDIS_URL` is set.
pub async fn build_state(config: Config, pool: Pool) -> Result<AppState, StartupError> {
    let token_keys = config
        .token_keys
        .clone()
        .ok_or_else(|| missing("HUB_TOKEN_KEYS"))?;
    let data_keys = config
        .data_keys
        .clone()
        .ok_or_else(|| missing("HUB_DATA_KEYS"))?;
    let chatwoot_url = config
        .chatwoot_url
        .clone()
        .ok_or_else(|| missing("CHATWOOT_URL"))?;
    let database_url = config
        .database_url
        .clone()
        .ok_or_else(|| missing("DATABASE_URL"))?;

    let chatwoot = ChatwootClient::new(chatwoot_url, ClientSettings::default())
        .map_err(|e| StartupError::Other(format!("CHATWOOT_URL: {e}")))?;
    let store = Arc::new(CachedIdentityStore::new(PgIdentityStore::new(pool.clone())));
    store.spawn_listener(database_url.expose().to_owned());
    let invalidator = store.invalidator();
    let credentials = Arc::new(store.credential_store(PgCredentialStore::new(pool.clone())));
    let iam = IamService::new(
        IamPorts {
            store,
            credentials,
            chatwoot: Arc::new(chatwoot.clone()),
            access: Arc::new(PasetoAccessTokens::new(token_keys.clone())),
            refresh: Arc::new(HubRefreshTokens::new(&token_keys, data_keys.clone())),
            instance: Arc::new(PasetoInstanceTokens::new(token_keys.clone())),
            hasher: Arc::new(Argon2SecretHasher::new()),
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7Gen),
        },
        IamSettings {
            super_admin_emails: config.super_admin_emails.clone(),
            ..IamSettings::default()
        },
    );
    let tenancy = TenancyService::new(
        Arc::new(PgMemberRepository::new(pool.clone()).with_invalidator(invalidator.clone())),
        Arc::new(PgAuditLog::new(pool.clone())),
        Arc::new(PgAccountDirectory::new(pool.clone())),
    );
    let platform_app = PlatformAppService::new(
        Arc::new(PgAccountInstallations::new(pool.clone()).with_invalidator(invalidator)),
        Arc::new(chatwoot.clone()),
        PlatformScope::for_system_jobs(),
    );
    let limiter: Arc<dyn RateLimiter> = match &config.redis_url {
        Some(url) => Arc::new(
            RedisLimiter::connect(url.expose())
                .await
                .map_err(|e| StartupError::Other(format!("REDIS_URL: cannot connect: {e}")))?,
        ),
        None => Arc::new(LocalLimiter::new()),
    };
    let entitlements = EntitlementsService::new(
        Arc::new(PgEntitlementStore::new(pool.clone())),
        Arc::new(SystemClock),
    );
    let entitlements = Arc::new(entitlements);
    let gateway: Option<Arc<dyn PaymentGateway>> = match &config.asaas_api_key {
        Some(key) => Some(Arc::new(
            AsaasClient::new(
                config.asaas_url.clone(),
                key.expose().to_owned(),
                AsaasSettings {
                    request_timeout: config.asaas_timeout,
                    ..AsaasSettings::default()
                },
            )
            .map_err(|e| StartupError::Other(format!("ASAAS_URL: {e}")))?,
        )),
        None => None,
    };
    let billing = BillingService::new(
        Arc::new(PgBillingStore::new(pool.clone())),
        gateway,
        Arc::clone(&entitlements),
        Arc::new(SystemClock),
        BillingSettings {
            grace_days: config.billing_grace_days,
            ..BillingSettings::default()
        },
    );
    let metering = MeteringService::new(
        Arc::new(PgUsageStore::new(pool.clone())),
        Arc::new(SystemClock),
    );
    let metrics = Metrics::new().map_err(|e| StartupError::Other(e.to_string()))?;
    let inbox = inbox_services(&config, &pool, &chatwoot, data_keys, &entitlements)?;
    Ok(AppState {
        pool,
        metrics,
        config: Arc::new(config),
        iam: Arc::new(iam),
        tenancy: Arc::new(tenancy),
        platform_app: Arc::new(platform_app),
        entitlements,
        billing: Arc::new(billing),
        billing_events: Arc::new(tokio::sync::Notify::new()),
        metering: Arc::new(metering),
        limiter,
        inbox: inbox.inbox,
        providers: inbox.providers,
        health: inbox.health,
        health_events: inbox.events,
    })
}

/// The inbox domain's services, built by [`inbox_services`].
struct InboxServices {
    inbox: Arc<InboxService>,
    providers: Arc<ProviderService>,
    health: Arc<HealthService>,
    events: Arc<BroadcastHealthEvents>,
}

/// The Chatwoot connection and inbox mirror, providers and instances, health probes: their
/// stores, the Chatwoot client, the SSRF guard and the provider clients (tenant-supplied base
/// URLs: private addresses only with `HUB_ALLOW_PRIVATE_UPSTREAMS`), sealing with
/// `HUB_DATA_KEYS`, quotas through the entitlements service.
fn inbox_services(
    config: &Config,
    pool: &Pool,
    chatwoot: &ChatwootClient,
    data_keys: KeyRing,
    entitlements: &Arc<EntitlementsService>,
) -> Result<InboxServices, StartupError> {
    let sealer: Arc<dyn SecretSealer> = Arc::new(SecretBox::new(data_keys));
    let quotas: Arc<dyn Quotas> = Arc::clone(entitlements) as Arc<dyn Quotas>;
    let providers_store: Arc<dyn ProviderStore> = Arc::new(PgProviderStore::new(pool.clone()));
    let events = Arc::new(BroadcastHealthEvents::new());
    let settings = HealthSettings {
        interval: config.health_interval,
        slow: config.health_slow,
        silent: config.health_silent,
    };
    let probes = ProviderClients::new(ProbeSettings {
        timeout: config.health_probe_timeout,
        allow_private: config.allow_private_upstreams,
        ..ProbeSettings::default()
    })
    .map_err(|e| StartupError::Other(e.to_string()))?;
    let inbox = InboxService::new(
        Arc::new(PgInboxStore::new(pool.clone())),
        Arc::new(chatwoot.clone()),
        Arc::clone(&sealer),
        Arc::clone(&quotas),
        Arc::new(SystemClock),
        Arc::new(UuidV7Gen),
    );
    let providers = ProviderService::new(
        ProviderPorts {
            store: Arc::clone(&providers_store),
            urls: Arc::new(UrlGuard::new(config.allow_private_upstreams)),
            sealer: Arc::clone(&sealer),
            tokens: Arc::new(HubWebhookTokens),
            quotas,
            events: Arc::clone(&events) as Arc<dyn HealthEvents>,
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7Gen),
        },
        settings,
        PlatformScope::for_system_jobs(),
    );
    let health = HealthService::new(
        providers_store,
        Arc::new(probes),
        sealer,
        Arc::clone(&events) as Arc<dyn HealthEvents>,
        Arc::new(SystemClock),
        settings,
    );
    Ok(InboxServices {
        inbox: Arc::new(inbox),
        providers: Arc::new(providers),
        health: Arc::new(health),
        events,
    })
}
