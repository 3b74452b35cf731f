//! What every handler can reach: the services, the pool, the metrics and the configuration.

use std::sync::Arc;

use whatpro_billing::BillingService;
use whatpro_db::Pool;
use whatpro_entitlements::{EntitlementsService, MeteringService};
use whatpro_iam::IamService;
use whatpro_inbox::{HealthService, InboxService, ProviderService};
use whatpro_ratelimit::RateLimiter;
use whatpro_telemetry::Metrics;
use whatpro_tenancy::{PlatformAppService, TenancyService};

use crate::config::Config;
use crate::health_events::BroadcastHealthEvents;

/// Shared application state (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    /// The PostgreSQL pool.
    pub pool: Pool,
    /// The Prometheus registry of this process.
    pub metrics: Metrics,
    /// The validated configuration.
    pub config: Arc<Config>,
    /// Identity and access.
    pub iam: Arc<IamService>,
    /// Members, audit, accounts.
    pub tenancy: Arc<TenancyService>,
    /// Platform App events and the Dashboard App registration.
    pub platform_app: Arc<PlatformAppService>,
    /// Plans, limits, feature flags, quota reservations.
    pub entitlements: Arc<EntitlementsService>,
    /// Usage counters (flushed in batches by a background job).
    pub metering: Arc<MeteringService>,
    /// Subscriptions, payments and the billing gate.
    pub billing: Arc<BillingService>,
    /// Wakes the billing event worker when a webhook was stored.
    pub billing_events: Arc<tokio::sync::Notify>,
    /// Rate limits (in-process, or shared through Redis).
    pub limiter: Arc<dyn RateLimiter>,
    /// The Chatwoot connection of each account and its inbox mirror.
    pub inbox: Arc<InboxService>,
    /// WhatsApp providers, their instances and provider webhooks.
    pub providers: Arc<ProviderService>,
    /// Instance health probes (the scheduler in `jobs` and probes on demand).
    pub health: Arc<HealthService>,
    /// Instance health transitions for the realtime layer (subscribe to receive them).
    pub health_events: Arc<BroadcastHealthEvents>,
}
