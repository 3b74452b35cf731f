//! Benchmarks of plans and billing: the cost of the quota check and of metering on a write
//! path (the same write with them on and off, in the same run), and how many Asaas webhook
//! events per second the Hub accepts (each one new, so each is stored).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, RunQueryDsl};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use whatpro_db::Pool;
use whatpro_entitlements::{EntitlementsService, MeteringService, Overrides, Resource};
use whatpro_iam::{PlatformScope, TenantScope};
use whatpro_kernel::{AccountId, SystemClock, UserId};

use crate::AnyResult;
use crate::loadgen::{Outcome, Worker, connect};
use crate::scenario::Goal;

/// Report section of these rows.
pub const SECTION: &str = "plans and billing";
/// The write path without quota check and metering.
pub const WRITE_OFF: &str = "write path (row + audit in one transaction), quota + metering off";
/// The same write path with the quota reservation and metering in front.
pub const WRITE_ON: &str = "write path (row + audit in one transaction), quota + metering on";
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
        label: ">= 95% of the same write without quota + metering".to_owned(),
    }
}

/// The table the write path writes to (created by the bench in its throwaway database).
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS bench_writes (
    id BIGSERIAL PRIMARY KEY, account_id BIGINT NOT NULL, payload TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now())";

/// What the write path needs: the services (as the Hub builds them) over the bench's pool.
#[derive(Clone)]
pub struct WriteSetup {
    pool: Pool,
    entitlements: Arc<EntitlementsService>,
    metering: Arc<MeteringService>,
    scope: TenantScope,
}

impl WriteSetup {
    /// Prepares account `account` (which must exist): no limit on boards (so reservations
    /// never run out during the run) and the bench table.
    ///
    /// # Errors
    /// When the database refuses.
    pub async fn new(pool: Pool, account: i64) -> AnyResult<Self> {
        let entitlements = Arc::new(EntitlementsService::new(
            Arc::new(whatpro_db::PgEntitlementStore::new(pool.clone())),
            Arc::new(SystemClock),
        ));
        let metering = Arc::new(MeteringService::new(
            Arc::new(whatpro_db::PgUsageStore::new(pool.clone())),
            Arc::new(SystemClock),
        ));
        let scope = PlatformScope::for_system_jobs().tenant(AccountId::new(account));
        let overrides = Overrides {
            limits: [(Resource::Boards, Some(i64::MAX))].into(),
            features: Default::default(),
        };
        entitlements
            .set_account(&scope, None, Some(overrides))
            .await
            .map_err(|e| format!("cannot prepare the bench account: {e}"))?;
        let mut conn = pool.get().await?;
        diesel::sql_query(CREATE_TABLE).execute(&mut conn).await?;
        Ok(Self {
            pool,
            entitlements,
            metering,
            scope,
        })
    }
}

/// One task of the write-path rows.
pub struct WriteWorker {
    setup: WriteSetup,
    with_checks: bool,
}

impl WriteWorker {
    /// A worker; `with_checks` puts the quota reservation and metering in front of the write.
    pub fn new(setup: WriteSetup, with_checks: bool) -> Self {
        Self { setup, with_checks }
    }

    async fn write(&self) -> AnyResult<()> {
        let account = self.setup.scope.account_id().get();
        if self.with_checks {
            self.setup
                .metering
                .record_call(self.setup.scope.account_id(), Some(UserId::new(1)));
            // The slot stays taken: the row below is the board it was reserved for.
            let _board = self
                .setup
                .entitlements
                .check_and_reserve(&self.setup.scope, Resource::Boards)
                .await
                .map_err(|e| e.to_string())?;
        }
        let mut conn = self.setup.pool.get().await?;
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            diesel::sql_query("INSERT INTO bench_writes (account_id, payload) VALUES ($1, $2)")
                .bind::<BigInt, _>(account)
                .bind::<Text, _>("a board")
                .execute(conn)
                .await?;
            diesel::sql_query(
                "INSERT INTO audit_log (id, account_id, actor_type, actor_id, action, target, metadata, created_at)
                 VALUES (gen_random_uuid(), $1, 'user', '1', 'bench.write', NULL, '{}', now())",
            )
            .bind::<BigInt, _>(account)
            .execute(conn)
            .await?;
            Ok(())
        })
        .await?;
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
    addr: SocketAddr,
    host: String,
    next: Arc<AtomicU64>,
    run: u64,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl WebhookWorker {
    /// A worker; `next` numbers events across the workers, `run` keeps ids of different
    /// runs apart.
    pub fn new(addr: SocketAddr, next: Arc<AtomicU64>, run: u64) -> Self {
        Self {
            addr,
            host: addr.to_string(),
            next,
            run,
            sender: None,
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

    async fn exchange(&mut self) -> Option<Outcome> {
        if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
            self.sender = Some(connect(self.addr).await.ok()?);
        }
        let body = self.body();
        let request = Request::post("/api/v1/webhooks/asaas")
            .header("host", &self.host)
            .header("content-type", "application/json")
            .header("asaas-access-token", WEBHOOK_TOKEN)
            .body(Full::new(Bytes::from(body)))
            .ok()?;
        let sender = self.sender.as_mut()?;
        sender.ready().await.ok()?;
        let response = sender.send_request(request).await.ok()?;
        let status = response.status();
        response.into_body().collect().await.ok()?;
        Some(if status.is_success() {
            Outcome::Success
        } else {
            Outcome::NonSuccess(status.as_u16())
        })
    }
}

impl Worker for WebhookWorker {
    async fn call(&mut self) -> Outcome {
        match self.exchange().await {
            Some(outcome) => outcome,
            None => {
                self.sender = None;
                Outcome::Error
            }
        }
    }
}
