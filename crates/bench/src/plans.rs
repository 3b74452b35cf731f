//! Benchmarks of plans and billing: the cost of the quota check and of metering on a write
//! path (the same write with them on and off, in the same run), and how many Asaas webhook
//! events per second the Hub accepts (each one new, so each is stored).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use http_body_util::Full;
use hyper::Request;
use whatpro_app::health_events::BroadcastHealthEvents;
use whatpro_crypto::{HubWebhookTokens, KeyRing, SecretBox};
use whatpro_db::{PgProviderStore, Pool};
use whatpro_entitlements::{
    EntitlementError, EntitlementsService, MeteringService, Overrides, QuotaClaim, Reservation,
    Resource,
};
use whatpro_iam::{AuditContext, PlatformScope, TenantScope};
use whatpro_inbox::{
    Credentials, HealthSettings, InstanceRequest, ProviderId, ProviderPorts, ProviderRequest,
    ProviderService, ProviderStore, Quotas,
};
use whatpro_kernel::{AccountId, SystemClock, UserId, UuidV7Gen};
use whatpro_netguard::UrlGuard;

use crate::AnyResult;
use crate::loadgen::{Connection, Outcome, Worker};
use crate::scenario::Goal;

/// Report section of these rows.
pub const SECTION: &str = "plans and billing";
/// The write path (creating a provider instance through the Hub's own service and store)
/// without quota check and metering.
pub const WRITE_OFF: &str = "create instance (service + Postgres), quota + metering off";
/// The same write path with the quota reservation and metering, as the Hub runs it.
pub const WRITE_ON: &str = "create instance (service + Postgres), quota + metering on";
/// The same, every worker creating in the same account (reservations queue on one counter
/// row: the price of exact limits under concurrency).
pub const WRITE_ON_ONE_ACCOUNT: &str = "create instance, quota + metering on, all in one account";
/// Asaas webhooks, each with a new event id.
pub const WEBHOOKS: &str = "hub POST /api/v1/webhooks/asaas (new event ids)";
/// The `ASAAS_WEBHOOK_TOKEN` the bench gives the Hub.
pub const WEBHOOK_TOKEN: &str = "bench-Zq7mWv3xTr9pLk2sNd5fHj8gBc4y";
/// The Asaas API key of the simulator the Hub is pointed at.
pub const ASAAS_KEY: &str = "$aact_bench_whatpro_hub_key";

/// The target: with quota and metering on, at least 95% of the requests per second of the
/// same write path without them, at `connections`.
pub fn write_goal(connections: usize) -> Goal {
    Goal {
        connections,
        of: WRITE_OFF.to_owned(),
        min_percent: 95.0,
        label: ">= 95% of the same create without quota + metering".to_owned(),
    }
}

/// First account id of the bench's tenants (one per worker).
const FIRST_ACCOUNT: i64 = 900_000;

/// A quota port that takes nothing and checks nothing: the "off" side of the comparison
/// (bench only; the Hub always uses the entitlements service).
struct NoQuotas;

#[async_trait::async_trait]
impl Quotas for NoQuotas {
    async fn claim(
        &self,
        _scope: &TenantScope,
        _resource: Resource,
    ) -> Result<Option<QuotaClaim>, EntitlementError> {
        Ok(None)
    }

    async fn release(
        &self,
        _scope: &TenantScope,
        _reservation: Reservation,
    ) -> Result<(), EntitlementError> {
        Ok(())
    }

    async fn limit(
        &self,
        _scope: &TenantScope,
        _resource: Resource,
    ) -> Result<Option<i64>, EntitlementError> {
        Ok(None)
    }
}

fn provider_service(pool: &Pool, keys: &KeyRing, quotas: Arc<dyn Quotas>) -> ProviderService {
    let store: Arc<dyn ProviderStore> = Arc::new(PgProviderStore::new(pool.clone()));
    ProviderService::new(
        ProviderPorts {
            store,
            urls: Arc::new(UrlGuard::new(true)),
            sealer: Arc::new(SecretBox::new(keys.clone())),
            tokens: Arc::new(HubWebhookTokens),
            quotas,
            events: Arc::new(BroadcastHealthEvents::new()),
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7Gen),
        },
        // First probes spread over a day: the Hub under test runs its health scheduler on the
        // same database, and probing the bench's growing pile of instances during the run
        // would load PostgreSQL more and more, always against the later row of a pair.
        HealthSettings {
            interval: std::time::Duration::from_secs(24 * 3600),
            ..HealthSettings::default()
        },
        PlatformScope::for_system_jobs(),
    )
}

/// The services (as the Hub builds them, one with and one without quotas) and one account
/// with one provider per worker.
#[derive(Clone)]
pub struct WriteSetup {
    on: Arc<ProviderService>,
    off: Arc<ProviderService>,
    metering: Arc<MeteringService>,
    tenants: Arc<Vec<(TenantScope, ProviderId)>>,
}

impl WriteSetup {
    /// Creates `tenants` accounts (rows in `accounts`, as Chatwoot logins would), lifts their
    /// instance limit out of the way, and gives each an Evolution provider.
    ///
    /// # Errors
    /// When the database or a service refuses.
    pub async fn new(pool: Pool, tenants: usize) -> AnyResult<Self> {
        let keys = KeyRing::generate().map_err(|e| e.to_string())?;
        let entitlements = Arc::new(EntitlementsService::new(
            Arc::new(whatpro_db::PgEntitlementStore::new(pool.clone())),
            Arc::new(SystemClock),
        ));
        let metering = Arc::new(MeteringService::new(
            Arc::new(whatpro_db::PgUsageStore::new(pool.clone())),
            Arc::new(SystemClock),
        ));
        let on = provider_service(&pool, &keys, Arc::clone(&entitlements) as Arc<dyn Quotas>);
        let off = provider_service(&pool, &keys, Arc::new(NoQuotas));
        let count = i64::try_from(tenants)?;
        let mut conn = pool.get().await?;
        diesel::sql_query(
            "INSERT INTO accounts (id, name) SELECT g, 'Bench ' || g FROM generate_series($1, $2) g
             ON CONFLICT (id) DO NOTHING",
        )
        .bind::<BigInt, _>(FIRST_ACCOUNT)
        .bind::<BigInt, _>(FIRST_ACCOUNT + count - 1)
        .execute(&mut conn)
        .await?;
        drop(conn);
        let audit = AuditContext {
            request_id: "bench".to_owned(),
            ip: None,
        };
        let mut list = Vec::with_capacity(tenants);
        for n in 0..count {
            let scope = PlatformScope::for_system_jobs().tenant(AccountId::new(FIRST_ACCOUNT + n));
            let overrides = Overrides {
                limits: [(Resource::Instances, Some(i64::MAX))].into(),
                features: Default::default(),
            };
            entitlements
                .set_account(&scope, None, Some(overrides))
                .await
                .map_err(|e| format!("cannot prepare bench account: {e}"))?;
            let provider = on
                .create_provider(
                    &scope,
                    ProviderRequest {
                        provider_type: "evolution".to_owned(),
                        name: "bench".to_owned(),
                        base_url: "http://127.0.0.1:9".to_owned(),
                        credentials: Credentials::new(
                            [("api_key".to_owned(), "bench-key".to_owned())].into(),
                        ),
                    },
                    &audit,
                )
                .await
                .map_err(|e| format!("cannot create a bench provider: {e}"))?;
            list.push((scope, provider.id));
        }
        Ok(Self {
            on: Arc::new(on),
            off: Arc::new(off),
            metering,
            tenants: Arc::new(list),
        })
    }
}

/// One task of the write-path rows.
pub struct WriteWorker {
    setup: WriteSetup,
    with_checks: bool,
    tenant: usize,
    n: u64,
}

impl WriteWorker {
    /// Worker `index`; `with_checks` uses the Hub's quota reservation and metering;
    /// `spread` gives each worker its own account (else every worker uses the first).
    pub fn new(setup: WriteSetup, with_checks: bool, index: usize, spread: bool) -> Self {
        let tenant = if spread {
            index % setup.tenants.len().max(1)
        } else {
            0
        };
        Self {
            setup,
            with_checks,
            tenant,
            n: 0,
        }
    }

    async fn write(&mut self) -> AnyResult<()> {
        let (scope, provider) = self
            .setup
            .tenants
            .get(self.tenant)
            .ok_or("no bench tenant")?
            .clone();
        let service = if self.with_checks {
            self.setup
                .metering
                .record_call(scope.account_id(), Some(UserId::new(1)));
            &self.setup.on
        } else {
            &self.setup.off
        };
        self.n += 1;
        let audit = AuditContext {
            request_id: "bench".to_owned(),
            ip: None,
        };
        service
            .create_instance(
                &scope,
                provider,
                InstanceRequest {
                    name: format!("bench-{}-{}", self.tenant, self.n),
                    inbox_id: None,
                    credentials: None,
                },
                &audit,
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

impl Worker for WriteWorker {
    async fn call(&mut self) -> Outcome {
        match self.write().await {
            Ok(()) => Outcome::Success,
            Err(_) => Outcome::Error,
        }
    }
}

/// One connection posting Asaas webhook events, each with a new id (so each is stored and
/// later processed, not answered as a duplicate).
pub struct WebhookWorker {
    connection: Connection,
    next: Arc<AtomicU64>,
    run: u64,
}

impl WebhookWorker {
    /// A worker; `next` numbers events across the workers, `run` keeps ids of different
    /// runs apart.
    pub fn new(addr: SocketAddr, next: Arc<AtomicU64>, run: u64) -> Self {
        Self {
            connection: Connection::new(addr),
            next,
            run,
        }
    }

    fn body(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // The shape of shared/asaas/webhook-payment-received.json, reduced to what the Hub
        // reads; the payment is unknown to the Hub (processing re-reads it and finds nothing).
        format!(
            r#"{{"id":"evt_bench{run}x{n}&1","event":"PAYMENT_RECEIVED","dateCreated":"2026-11-30 10:00:00","payment":{{"object":"payment","id":"pay_bench{run}x{n}","customer":"cus_bench","subscription":"sub_bench","value":99.0,"status":"RECEIVED","dueDate":"2026-11-30"}}}}"#,
            run = self.run
        )
    }
}

impl Worker for WebhookWorker {
    async fn call(&mut self) -> Outcome {
        let request = Request::post("/api/v1/webhooks/asaas")
            .header("host", self.connection.host())
            .header("content-type", "application/json")
            .header("asaas-access-token", WEBHOOK_TOKEN)
            .body(Full::new(Bytes::from(self.body())));
        match request {
            Ok(request) => self.connection.exchange(request).await,
            Err(_) => Outcome::Error,
        }
    }
}

/// Arguments of `whatpro-bench writes`.
#[derive(Debug, Clone, clap::Args)]
pub struct WritesArgs {
    /// Workers (each in its own account).
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Measured time of each side of a pair.
    #[arg(long, default_value = "4s", value_parser = crate::parse_duration)]
    pub duration: std::time::Duration,
    /// Warm-up before each side.
    #[arg(long, default_value = "1s", value_parser = crate::parse_duration)]
    pub warmup: std::time::Duration,
    /// Pairs (alternating which side goes first).
    #[arg(long, default_value_t = 6)]
    pub pairs: usize,
}

/// `whatpro-bench writes`: only the create-instance comparison (quota + metering on vs off),
/// in alternating pairs over a throwaway PostgreSQL, printing each pair and the median ratio.
/// A quick loop for working on the write path; `just bench` measures the same rows in its
/// full run.
///
/// # Errors
/// When PostgreSQL cannot start or a row mostly fails.
pub async fn writes(args: &WritesArgs) -> AnyResult<()> {
    let cluster = whatpro_pgcluster::LocalCluster::start_throwaway()
        .map_err(|e| format!("cannot start PostgreSQL: {e}"))?;
    let result = async {
        let pool = whatpro_db::build_pool(
            &cluster.url("postgres"),
            &whatpro_db::PoolSettings::default(),
        )?;
        whatpro_db::run_migrations(&pool).await?;
        let setup = WriteSetup::new(pool, args.connections).await?;
        let schedule = crate::loadgen::Schedule {
            warmup: args.warmup,
            duration: args.duration,
        };
        let side = async |with_checks: bool| {
            let workers = (0..args.connections)
                .map(|i| WriteWorker::new(setup.clone(), with_checks, i, true))
                .collect();
            crate::loadgen::run(workers, schedule).await
        };
        let mut ratios = Vec::with_capacity(args.pairs);
        for pair in 0..args.pairs {
            let (off, on) = if pair % 2 == 0 {
                let off = side(false).await?;
                (off, side(true).await?)
            } else {
                let on = side(true).await?;
                (side(false).await?, on)
            };
            if off.errors + on.errors > 0 {
                return Err(format!("{} + {} failed creates", off.errors, on.errors).into());
            }
            let ratio = 100.0 * on.rps / off.rps;
            println!(
                "pair {}: off {:.0}/s (p99 {:.1} ms), on {:.0}/s (p99 {:.1} ms): {ratio:.1}%",
                pair + 1,
                off.rps,
                off.p99_ms,
                on.rps,
                on.p99_ms
            );
            ratios.push(ratio);
        }
        ratios.sort_by(f64::total_cmp);
        if let Some(median) = crate::report::median(&ratios) {
            println!("median on/off: {median:.1}% over {} pairs", ratios.len());
        }
        AnyResult::Ok(())
    }
    .await;
    if let Err(e) = cluster.stop() {
        eprintln!("warning: could not stop PostgreSQL: {e}");
    }
    result
}
