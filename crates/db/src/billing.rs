//! PostgreSQL adapter of the billing port: [`PgBillingStore`] (billing records with
//! optimistic concurrency and audited status changes, payments, received gateway events).

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};
use time::{Date, OffsetDateTime};
use whatpro_billing::{
    BillingAccount, BillingStatus, BillingStore, EventOutcome, GatewayEvent, GatewayPayment,
    PaymentView, SaveError, StatusChange,
};
use whatpro_iam::{AuditContext, PlatformScope, StoreError, TenantScope};
use whatpro_kernel::AccountId;

use crate::Pool;
use crate::iam::{AuditEvent, TxError, actor_columns, db_error, insert_audit, pool_error};
use crate::schema::{billing_accounts, billing_events, billing_payments};

/// Billing records, payments and gateway events in PostgreSQL.
#[derive(Clone)]
pub struct PgBillingStore {
    pool: Pool,
}

impl std::fmt::Debug for PgBillingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBillingStore").finish_non_exhaustive()
    }
}

impl PgBillingStore {
    /// A store over `pool`.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

type RecordRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Date>,
    bool,
    Option<OffsetDateTime>,
    Option<Date>,
    i64,
);

const RECORD_COLUMNS: (
    billing_accounts::status,
    billing_accounts::plan_id,
    billing_accounts::pending_plan_id,
    billing_accounts::customer_id,
    billing_accounts::subscription_id,
    billing_accounts::next_due_date,
    billing_accounts::cancel_at_period_end,
    billing_accounts::past_due_since,
    billing_accounts::last_paid_due_date,
    billing_accounts::version,
) = (
    billing_accounts::status,
    billing_accounts::plan_id,
    billing_accounts::pending_plan_id,
    billing_accounts::customer_id,
    billing_accounts::subscription_id,
    billing_accounts::next_due_date,
    billing_accounts::cancel_at_period_end,
    billing_accounts::past_due_since,
    billing_accounts::last_paid_due_date,
    billing_accounts::version,
);

fn plan(stored: Option<String>) -> Result<Option<whatpro_entitlements::PlanId>, TxError> {
    stored
        .map(|p| {
            p.parse()
                .map_err(|_| TxError::Corrupt(format!("plan id `{p}` is not valid")))
        })
        .transpose()
}

fn record_from(account: AccountId, row: RecordRow) -> Result<BillingAccount, TxError> {
    let (
        status,
        plan_id,
        pending_plan_id,
        customer_id,
        subscription_id,
        next_due_date,
        cancel_at_period_end,
        past_due_since,
        last_paid_due_date,
        version,
    ) = row;
    Ok(BillingAccount {
        account_id: account,
        status: status.parse().map_err(TxError::Corrupt)?,
        plan_id: plan(plan_id)?,
        pending_plan_id: plan(pending_plan_id)?,
        customer_id,
        subscription_id,
        next_due_date,
        cancel_at_period_end,
        past_due_since,
        last_paid_due_date,
        version,
    })
}

async fn load_record(
    conn: &mut AsyncPgConnection,
    account: AccountId,
) -> Result<BillingAccount, TxError> {
    let row: Option<RecordRow> = billing_accounts::table
        .filter(billing_accounts::account_id.eq(account.get()))
        .select(RECORD_COLUMNS)
        .first(conn)
        .await
        .optional()?;
    match row {
        Some(row) => record_from(account, row),
        None => Ok(BillingAccount::trialing(account)),
    }
}

#[derive(QueryableByName)]
struct ClaimedRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    event: String,
    #[diesel(sql_type = Nullable<Text>)]
    payment_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    subscription_id: Option<String>,
}

/// Claims the oldest pending event whose lease is free; concurrent claimers skip locked rows.
const CLAIM_SQL: &str = "
UPDATE billing_events SET claimed_until = now() + make_interval(secs => $1), attempts = attempts + 1
 WHERE id = (SELECT id FROM billing_events
              WHERE processed_at IS NULL AND (claimed_until IS NULL OR claimed_until < now())
              ORDER BY received_at, id
              LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id, event, payment_id, subscription_id";

#[derive(QueryableByName)]
struct AccountRow {
    #[diesel(sql_type = BigInt)]
    account_id: i64,
}

const DUE_SQL: &str = "
SELECT account_id FROM billing_accounts
 WHERE (status = 'past_due' AND past_due_since IS NOT NULL)
    OR (status IN ('pending', 'active', 'past_due', 'restricted')
        AND next_due_date <= ($1 AT TIME ZONE 'UTC')::date
        AND (pending_plan_id IS NOT NULL OR cancel_at_period_end))
 ORDER BY account_id";

#[async_trait]
impl BillingStore for PgBillingStore {
    async fn load(&self, scope: &TenantScope) -> Result<BillingAccount, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        load_record(&mut conn, scope.account_id())
            .await
            .map_err(|e| e.into_store("read billing"))
    }

    async fn save(
        &self,
        scope: &TenantScope,
        record: &BillingAccount,
        changes: Vec<StatusChange>,
        request_id: Option<String>,
    ) -> Result<BillingAccount, SaveError> {
        let account = scope.account_id();
        let (actor_type, actor_id) = actor_columns(scope.actor());
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let record = record.clone();
        let result: Result<Option<BillingAccount>, TxError> = conn
            .transaction::<_, TxError, _>(async |conn| {
                let values = (
                    billing_accounts::status.eq(record.status.as_str()),
                    billing_accounts::plan_id.eq(record.plan_id.as_ref().map(|p| p.as_str())),
                    billing_accounts::pending_plan_id
                        .eq(record.pending_plan_id.as_ref().map(|p| p.as_str())),
                    billing_accounts::customer_id.eq(record.customer_id.as_deref()),
                    billing_accounts::subscription_id.eq(record.subscription_id.as_deref()),
                    billing_accounts::next_due_date.eq(record.next_due_date),
                    billing_accounts::cancel_at_period_end.eq(record.cancel_at_period_end),
                    billing_accounts::past_due_since.eq(record.past_due_since),
                    billing_accounts::last_paid_due_date.eq(record.last_paid_due_date),
                );
                let written = if record.version == 0 {
                    // Never stored: insert, unless someone else inserted first.
                    diesel::insert_into(billing_accounts::table)
                        .values((billing_accounts::account_id.eq(account.get()), values))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?
                } else {
                    diesel::update(
                        billing_accounts::table
                            .filter(billing_accounts::account_id.eq(account.get()))
                            .filter(billing_accounts::version.eq(record.version)),
                    )
                    .set((values, billing_accounts::version.eq(record.version + 1)))
                    .execute(conn)
                    .await?
                };
                if written == 0 {
                    return Ok(None);
                }
                let audit = AuditContext {
                    request_id: request_id.clone().unwrap_or_default(),
                    ip: None,
                };
                let now = OffsetDateTime::now_utc();
                let rows: Vec<_> = changes
                    .iter()
                    .map(|c| {
                        AuditEvent {
                            actor_type,
                            actor_id: actor_id.clone(),
                            action: "billing.status_changed",
                            target: Some(format!("account:{account}")),
                            metadata: json!({
                                "from": c.from.as_str(),
                                "to": c.to.as_str(),
                                "reason": c.reason,
                            }),
                            audit: &audit,
                            at: now,
                        }
                        .row(Some(account))
                    })
                    .collect();
                insert_audit(conn, &rows).await?;
                Ok(Some(load_record(conn, account).await?))
            })
            .await;
        match result {
            Ok(Some(saved)) => Ok(saved),
            Ok(None) => Err(SaveError::Stale),
            Err(e) => Err(SaveError::Store(e.into_store("save billing"))),
        }
    }

    async fn record_payment(
        &self,
        scope: &TenantScope,
        payment: &GatewayPayment,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let values = (
            billing_payments::subscription_id.eq(payment.subscription_id.as_deref()),
            billing_payments::status.eq(payment.state.as_str()),
            billing_payments::value_cents.eq(payment.value_cents),
            billing_payments::due_date.eq(payment.due_date),
            billing_payments::paid_at.eq(payment.payment_date),
            billing_payments::deleted.eq(payment.deleted),
            billing_payments::invoice_url.eq(payment.invoice_url.as_deref()),
        );
        diesel::insert_into(billing_payments::table)
            .values((
                billing_payments::account_id.eq(scope.account_id().get()),
                billing_payments::id.eq(&payment.id),
                values,
            ))
            .on_conflict((billing_payments::account_id, billing_payments::id))
            .do_update()
            .set(values)
            .execute(&mut conn)
            .await
            .map_err(|e| db_error("record payment", &e))?;
        Ok(())
    }

    async fn recent_payments(
        &self,
        scope: &TenantScope,
        limit: i64,
    ) -> Result<Vec<PaymentView>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        type Row = (
            String,
            String,
            i64,
            Option<Date>,
            Option<Date>,
            Option<String>,
            OffsetDateTime,
        );
        let rows: Vec<Row> = billing_payments::table
            .filter(billing_payments::account_id.eq(scope.account_id().get()))
            .filter(billing_payments::deleted.eq(false))
            .select((
                billing_payments::id,
                billing_payments::status,
                billing_payments::value_cents,
                billing_payments::due_date,
                billing_payments::paid_at,
                billing_payments::invoice_url,
                billing_payments::updated_at,
            ))
            .order((
                billing_payments::due_date.desc().nulls_last(),
                billing_payments::id.desc(),
            ))
            .limit(limit)
            .load(&mut conn)
            .await
            .map_err(|e| db_error("list payments", &e))?;
        Ok(rows
            .into_iter()
            .map(
                |(id, status, value_cents, due_date, paid_at, invoice_url, updated_at)| {
                    PaymentView {
                        id,
                        status,
                        value_cents,
                        due_date,
                        paid_at,
                        invoice_url,
                        updated_at,
                    }
                },
            )
            .collect())
    }

    async fn account_of_subscription(
        &self,
        _scope: &PlatformScope,
        subscription_id: &str,
    ) -> Result<Option<AccountId>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let account: Option<i64> = billing_accounts::table
            .filter(billing_accounts::subscription_id.eq(subscription_id))
            .select(billing_accounts::account_id)
            .first(&mut conn)
            .await
            .optional()
            .map_err(|e| db_error("find subscription", &e))?;
        Ok(account.map(AccountId::new))
    }

    async fn store_event(
        &self,
        _scope: &PlatformScope,
        event: &GatewayEvent,
        body: &[u8],
    ) -> Result<bool, StoreError> {
        let body: Value = serde_json::from_slice(body)
            .map_err(|e| StoreError::Internal(format!("event body is not JSON: {e}")))?;
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let inserted = diesel::insert_into(billing_events::table)
            .values((
                billing_events::id.eq(&event.id),
                billing_events::event.eq(&event.event),
                billing_events::payment_id.eq(event.payment_id.as_deref()),
                billing_events::subscription_id.eq(event.subscription_id.as_deref()),
                billing_events::body.eq(&body),
            ))
            .on_conflict_do_nothing()
            .execute(&mut conn)
            .await
            .map_err(|e| db_error("store event", &e))?;
        Ok(inserted == 1)
    }

    async fn claim_event(
        &self,
        _scope: &PlatformScope,
        lease_secs: i64,
    ) -> Result<Option<GatewayEvent>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let lease = i32::try_from(lease_secs).unwrap_or(i32::MAX);
        let rows: Vec<ClaimedRow> = diesel::sql_query(CLAIM_SQL)
            .bind::<Integer, _>(lease)
            .load(&mut conn)
            .await
            .map_err(|e| db_error("claim event", &e))?;
        Ok(rows.into_iter().next().map(|r| GatewayEvent {
            id: r.id,
            event: r.event,
            payment_id: r.payment_id,
            subscription_id: r.subscription_id,
        }))
    }

    async fn finish_event(
        &self,
        _scope: &PlatformScope,
        event_id: &str,
        outcome: Option<EventOutcome>,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let target = billing_events::table.filter(billing_events::id.eq(event_id));
        let result = match outcome {
            Some(outcome) => {
                diesel::update(target)
                    .set((
                        billing_events::processed_at.eq(diesel::dsl::now),
                        billing_events::outcome.eq(outcome.as_str()),
                        billing_events::claimed_until.eq(None::<OffsetDateTime>),
                        billing_events::last_error.eq(None::<String>),
                    ))
                    .execute(&mut conn)
                    .await
            }
            None => {
                diesel::update(target)
                    .set(billing_events::last_error.eq(error))
                    .execute(&mut conn)
                    .await
            }
        };
        result.map_err(|e| db_error("finish event", &e))?;
        Ok(())
    }

    async fn due_for_sweep(
        &self,
        _scope: &PlatformScope,
        now: OffsetDateTime,
    ) -> Result<Vec<AccountId>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<AccountRow> = diesel::sql_query(DUE_SQL)
            .bind::<diesel::sql_types::Timestamptz, _>(now)
            .load(&mut conn)
            .await
            .map_err(|e| db_error("billing sweep", &e))?;
        Ok(rows
            .into_iter()
            .map(|r| AccountId::new(r.account_id))
            .collect())
    }

    async fn status(&self, account: AccountId) -> Result<BillingStatus, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let status: Option<String> = billing_accounts::table
            .filter(billing_accounts::account_id.eq(account.get()))
            .select(billing_accounts::status)
            .first(&mut conn)
            .await
            .optional()
            .map_err(|e| db_error("read billing status", &e))?;
        match status {
            None => Ok(BillingStatus::Trialing),
            Some(s) => s.parse().map_err(StoreError::Internal),
        }
    }
}
