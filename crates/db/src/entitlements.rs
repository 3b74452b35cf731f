//! PostgreSQL adapters of the entitlements ports: [`PgEntitlementStore`] (plans, accounts'
//! plans and overrides, reservation counters) and [`PgUsageStore`] (metered usage).

use std::collections::BTreeMap;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date as SqlDate, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Map, Value};
use time::Date;
use whatpro_entitlements::{
    AccountEntitlements, ActiveUsers, EntitlementError, EntitlementStore, Feature, LimitValue,
    MeterSnapshot, Metric, Overrides, Plan, PlanId, QuotaClaim, ReserveOutcome, Resource, UsageDay,
    UsageStore, UsageTotals,
};
use whatpro_iam::{PlatformScope, StoreError, TenantScope};
use whatpro_kernel::AccountId;

use crate::Pool;
use crate::iam::{TxError, db_error, pool_error};
use crate::reusable::reusable;
use crate::schema::{account_entitlements, accounts, plans, quota_counters};

// ---------------------------------------------------------------------------------------------
// JSON <-> domain maps.

fn limits_to_json(limits: &BTreeMap<Resource, LimitValue>) -> Value {
    let map: Map<String, Value> = limits
        .iter()
        .map(|(r, v)| (r.limit_key().to_owned(), v.map_or(Value::Null, Value::from)))
        .collect();
    Value::Object(map)
}

fn features_to_json(features: &BTreeMap<Feature, bool>) -> Value {
    let map: Map<String, Value> = features
        .iter()
        .map(|(f, on)| (f.as_str().to_owned(), Value::Bool(*on)))
        .collect();
    Value::Object(map)
}

fn limits_from_json(value: &Value) -> Result<BTreeMap<Resource, LimitValue>, TxError> {
    let object = value
        .as_object()
        .ok_or_else(|| TxError::Corrupt("limits are not a JSON object".to_owned()))?;
    let mut limits = BTreeMap::new();
    for (key, v) in object {
        // Names this version does not know (a newer instance wrote them) are skipped.
        let Some(resource) = Resource::from_limit_key(key) else {
            continue;
        };
        let limit = match v {
            Value::Null => None,
            other => Some(
                other
                    .as_i64()
                    .ok_or_else(|| TxError::Corrupt(format!("limit {key} is not an integer")))?,
            ),
        };
        limits.insert(resource, limit);
    }
    Ok(limits)
}

fn features_from_json(value: &Value) -> Result<BTreeMap<Feature, bool>, TxError> {
    let object = value
        .as_object()
        .ok_or_else(|| TxError::Corrupt("features are not a JSON object".to_owned()))?;
    let mut features = BTreeMap::new();
    for (key, v) in object {
        let Some(feature) = Feature::from_name(key) else {
            continue;
        };
        let on = v
            .as_bool()
            .ok_or_else(|| TxError::Corrupt(format!("feature {key} is not a boolean")))?;
        features.insert(feature, on);
    }
    Ok(features)
}

type PlanRow = (String, String, i64, Value, Value);

const PLAN_COLUMNS: (
    plans::id,
    plans::name,
    plans::price_cents,
    plans::limits,
    plans::features,
) = (
    plans::id,
    plans::name,
    plans::price_cents,
    plans::limits,
    plans::features,
);

fn plan_from(row: PlanRow) -> Result<Plan, TxError> {
    let (id, name, price_cents, limits, features) = row;
    Ok(Plan {
        id: id
            .parse()
            .map_err(|_| TxError::Corrupt(format!("plan id `{id}` is not valid")))?,
        name,
        price_cents,
        limits: limits_from_json(&limits)?,
        features: features_from_json(&features)?,
    })
}

/// Loads the stored plan and overrides of `account` (trial when no row exists).
async fn load_account(
    conn: &mut AsyncPgConnection,
    account: AccountId,
) -> Result<AccountEntitlements, TxError> {
    let row: Option<(String, Value, Value)> = account_entitlements::table
        .filter(account_entitlements::account_id.eq(account.get()))
        .select((
            account_entitlements::plan_id,
            account_entitlements::limit_overrides,
            account_entitlements::feature_overrides,
        ))
        .first(conn)
        .await
        .optional()?;
    let (plan_id, limit_overrides, feature_overrides) = match row {
        Some(row) => row,
        None => (
            PlanId::trial().to_string(),
            Value::Object(Map::new()),
            Value::Object(Map::new()),
        ),
    };
    let plan_row: PlanRow = plans::table
        .filter(plans::id.eq(&plan_id))
        .select(PLAN_COLUMNS)
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| TxError::Corrupt(format!("plan `{plan_id}` is missing")))?;
    Ok(AccountEntitlements {
        account_id: account,
        plan: plan_from(plan_row)?,
        overrides: Overrides {
            limits: limits_from_json(&limit_overrides)?,
            features: features_from_json(&feature_overrides)?,
        },
    })
}

// ---------------------------------------------------------------------------------------------
// Entitlements.

/// Plans, accounts' plans and overrides, and quota counters in PostgreSQL.
#[derive(Clone)]
pub struct PgEntitlementStore {
    pool: Pool,
}

impl std::fmt::Debug for PgEntitlementStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgEntitlementStore").finish_non_exhaustive()
    }
}

impl PgEntitlementStore {
    /// A store over `pool`.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

/// One call of `hub_reserve_quota` (migration `000027`): reads the account's limit (the
/// override when present — a JSON null means unlimited — else the plan's; mirrors
/// `EffectiveEntitlements::of`, a test keeps the two in step) and takes a slot with a
/// conditional upsert unless the counter reached it. Concurrent reservations serialise on
/// the counter row.
const RESERVE_SQL: &str = "SELECT r_granted, r_used, r_limit FROM hub_reserve_quota($1, $2, $3)";

/// Bumps the counter of a claimed slot while it is below the claim's limit (always when
/// unlimited): one conditional upsert, no lookup (the limit travels in the claim). Parameters:
/// `$1` account, `$2` resource, `$3` period, `$4` limit (null: unlimited). Used when the
/// counter row may not exist yet (see [`claimed_slot_update`] for the usual case).
macro_rules! claimed_slot_upsert {
    () => {
        "INSERT INTO quota_counters AS q (account_id, resource, period, used)
         SELECT $1, $2, $3, 1 WHERE $4::bigint IS NULL OR $4 >= 1
             ON CONFLICT (account_id, resource, period)
             DO UPDATE SET used = q.used + 1 WHERE $4::bigint IS NULL OR q.used < $4
         RETURNING q.used"
    };
}

/// The usual way to take a claimed slot, once the account's counter row for the resource and
/// period exists: a plain conditional update (same parameters as [`claimed_slot_upsert`]).
/// Cheaper than the upsert, which first probes for the conflict and locks the row before it
/// updates it (two tuple writes and two WAL records instead of one). No row back means the
/// limit is reached *or* the counter row is missing; [`take_claimed_slot`] tells the two apart.
/// A macro so that a create statement can embed the same text as a data-modifying CTE.
macro_rules! claimed_slot_update {
    () => {
        "UPDATE quota_counters SET used = used + 1
          WHERE account_id = $1 AND resource = $2 AND period = $3
            AND ($4::bigint IS NULL OR used < $4)
         RETURNING used"
    };
}
pub(crate) use claimed_slot_update;

const UPDATE_CLAIMED_SLOT_SQL: &str = claimed_slot_update!();
const UPSERT_CLAIMED_SLOT_SQL: &str = claimed_slot_upsert!();

#[derive(QueryableByName)]
struct Used {
    #[diesel(sql_type = BigInt)]
    used: i64,
}

/// Takes the slot of `claim` for `account` inside the caller's transaction. Takes a shared
/// connection so a create path can pipeline it with its own last statement; the counter row
/// stays locked until that transaction ends, so only a create that commits keeps the slot and
/// concurrent creates never overshoot the limit.
pub(crate) async fn take_claimed_slot(
    conn: &AsyncPgConnection,
    account: i64,
    claim: &QuotaClaim,
) -> Result<ReserveOutcome, diesel::result::Error> {
    if let Some(used) = run_slot_query(conn, UPDATE_CLAIMED_SLOT_SQL, account, claim).await? {
        return Ok(ReserveOutcome::Granted { used });
    }
    take_missing_or_refused_slot(conn, account, claim).await
}

/// The slow path after the plain update took nothing: the upsert creates a missing counter row
/// (the account's first slot of this resource and period); when the row exists and is full it
/// takes nothing either, and the answer is the refusal with the usage that filled the limit.
pub(crate) async fn take_missing_or_refused_slot(
    conn: &AsyncPgConnection,
    account: i64,
    claim: &QuotaClaim,
) -> Result<ReserveOutcome, diesel::result::Error> {
    match run_slot_query(conn, UPSERT_CLAIMED_SLOT_SQL, account, claim).await? {
        Some(used) => Ok(ReserveOutcome::Granted { used }),
        None => refused_claim(conn, account, claim).await,
    }
}

/// Runs one of the two slot statements; `None` when it took no slot.
async fn run_slot_query(
    conn: &AsyncPgConnection,
    sql: &'static str,
    account: i64,
    claim: &QuotaClaim,
) -> Result<Option<i64>, diesel::result::Error> {
    let mut conn = conn;
    let taken: Option<Used> = reusable(
        diesel::sql_query(sql)
            .bind::<BigInt, _>(account)
            .bind::<Text, _>(claim.resource.limit_key())
            .bind::<Text, _>(&claim.period)
            .bind::<Nullable<BigInt>, _>(claim.limit),
    )
    .get_result(&mut conn)
    .await
    .optional()?;
    Ok(taken.map(|t| t.used))
}

/// The refusal of `claim` (the rare path), with the usage that filled the limit.
pub(crate) async fn refused_claim(
    conn: &AsyncPgConnection,
    account: i64,
    claim: &QuotaClaim,
) -> Result<ReserveOutcome, diesel::result::Error> {
    let mut conn = conn;
    let used: Option<i64> = quota_counters::table
        .filter(quota_counters::account_id.eq(account))
        .filter(quota_counters::resource.eq(claim.resource.limit_key()))
        .filter(quota_counters::period.eq(&claim.period))
        .select(quota_counters::used)
        .first(&mut conn)
        .await
        .optional()?;
    Ok(ReserveOutcome::Exceeded {
        used: used.unwrap_or(0),
        limit: claim.limit.unwrap_or(0),
    })
}

#[derive(QueryableByName)]
struct Reserved {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    r_granted: bool,
    #[diesel(sql_type = BigInt)]
    r_used: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    r_limit: Option<i64>,
}

#[async_trait]
impl EntitlementStore for PgEntitlementStore {
    async fn list_plans(&self) -> Result<Vec<Plan>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<PlanRow> = plans::table
            .select(PLAN_COLUMNS)
            .order((plans::price_cents.asc(), plans::id.asc()))
            .load(&mut conn)
            .await
            .map_err(|e| db_error("list plans", &e))?;
        rows.into_iter()
            .map(|r| plan_from(r).map_err(|e| e.into_store("list plans")))
            .collect()
    }

    async fn plan(&self, id: &PlanId) -> Result<Option<Plan>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let row: Option<PlanRow> = plans::table
            .filter(plans::id.eq(id.as_str()))
            .select(PLAN_COLUMNS)
            .first(&mut conn)
            .await
            .optional()
            .map_err(|e| db_error("read plan", &e))?;
        row.map(|r| plan_from(r).map_err(|e| e.into_store("read plan")))
            .transpose()
    }

    async fn save_plan(&self, _scope: &PlatformScope, plan: &Plan) -> Result<bool, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let limits = limits_to_json(&plan.limits);
        let features = features_to_json(&plan.features);
        let existed: bool = diesel::select(diesel::dsl::exists(
            plans::table.filter(plans::id.eq(plan.id.as_str())),
        ))
        .get_result(&mut conn)
        .await
        .map_err(|e| db_error("save plan", &e))?;
        diesel::insert_into(plans::table)
            .values((
                plans::id.eq(plan.id.as_str()),
                plans::name.eq(&plan.name),
                plans::price_cents.eq(plan.price_cents),
                plans::limits.eq(&limits),
                plans::features.eq(&features),
            ))
            .on_conflict(plans::id)
            .do_update()
            .set((
                plans::name.eq(&plan.name),
                plans::price_cents.eq(plan.price_cents),
                plans::limits.eq(&limits),
                plans::features.eq(&features),
            ))
            .execute(&mut conn)
            .await
            .map_err(|e| db_error("save plan", &e))?;
        Ok(!existed)
    }

    async fn account(&self, scope: &TenantScope) -> Result<AccountEntitlements, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        load_account(&mut conn, scope.account_id())
            .await
            .map_err(|e| e.into_store("read entitlements"))
    }

    async fn set_account(
        &self,
        scope: &TenantScope,
        plan: Option<PlanId>,
        overrides: Option<Overrides>,
    ) -> Result<AccountEntitlements, EntitlementError> {
        let account = scope.account_id();
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let result: Result<Result<AccountEntitlements, EntitlementError>, TxError> = conn
            .transaction::<_, TxError, _>(async |conn| {
                let exists: bool = diesel::select(diesel::dsl::exists(
                    accounts::table.filter(accounts::id.eq(account.get())),
                ))
                .get_result(conn)
                .await?;
                if !exists {
                    return Ok(Err(EntitlementError::AccountNotFound(account.get())));
                }
                if let Some(plan) = &plan {
                    let known: bool = diesel::select(diesel::dsl::exists(
                        plans::table.filter(plans::id.eq(plan.as_str())),
                    ))
                    .get_result(conn)
                    .await?;
                    if !known {
                        return Ok(Err(EntitlementError::PlanNotFound(plan.to_string())));
                    }
                }
                let current = load_account(conn, account).await?;
                let plan_id = plan.unwrap_or(current.plan.id);
                let overrides = overrides.unwrap_or(current.overrides);
                let limits = limits_to_json(&overrides.limits);
                let features = features_to_json(&overrides.features);
                diesel::insert_into(account_entitlements::table)
                    .values((
                        account_entitlements::account_id.eq(account.get()),
                        account_entitlements::plan_id.eq(plan_id.as_str()),
                        account_entitlements::limit_overrides.eq(&limits),
                        account_entitlements::feature_overrides.eq(&features),
                    ))
                    .on_conflict(account_entitlements::account_id)
                    .do_update()
                    .set((
                        account_entitlements::plan_id.eq(plan_id.as_str()),
                        account_entitlements::limit_overrides.eq(&limits),
                        account_entitlements::feature_overrides.eq(&features),
                    ))
                    .execute(conn)
                    .await?;
                Ok(Ok(load_account(conn, account).await?))
            })
            .await;
        result.map_err(|e| EntitlementError::from(e.into_store("set entitlements")))?
    }

    async fn usage(
        &self,
        scope: &TenantScope,
        month: &str,
    ) -> Result<BTreeMap<Resource, i64>, StoreError> {
        use crate::schema::account_members;
        let account = scope.account_id().get();
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let counters: Vec<(String, String, i64)> = quota_counters::table
            .filter(quota_counters::account_id.eq(account))
            .select((
                quota_counters::resource,
                quota_counters::period,
                quota_counters::used,
            ))
            .load(&mut conn)
            .await
            .map_err(|e| db_error("read usage", &e))?;
        let members: i64 = account_members::table
            .filter(account_members::account_id.eq(account))
            .count()
            .get_result(&mut conn)
            .await
            .map_err(|e| db_error("read usage", &e))?;
        let mut usage: BTreeMap<Resource, i64> =
            Resource::ALL.into_iter().map(|r| (r, 0)).collect();
        for (name, period, used) in counters {
            let Some(resource) = Resource::from_limit_key(&name) else {
                continue;
            };
            let current = if resource.is_monthly() {
                period == month
            } else {
                period.is_empty()
            };
            if current {
                usage.insert(resource, used);
            }
        }
        // Members come from Chatwoot logins, not from a Hub create path: count them live.
        usage.insert(Resource::Agents, members);
        Ok(usage)
    }

    async fn reserve(
        &self,
        scope: &TenantScope,
        resource: Resource,
        period: &str,
    ) -> Result<ReserveOutcome, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let row: Reserved = diesel::sql_query(RESERVE_SQL)
            .bind::<BigInt, _>(scope.account_id().get())
            .bind::<Text, _>(resource.limit_key())
            .bind::<Text, _>(period)
            .get_result(&mut conn)
            .await
            .map_err(|e| db_error("reserve quota", &e))?;
        Ok(if row.r_granted {
            ReserveOutcome::Granted { used: row.r_used }
        } else {
            ReserveOutcome::Exceeded {
                used: row.r_used,
                limit: row.r_limit.unwrap_or(0),
            }
        })
    }

    async fn release(
        &self,
        scope: &TenantScope,
        resource: Resource,
        period: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        diesel::update(
            quota_counters::table
                .filter(quota_counters::account_id.eq(scope.account_id().get()))
                .filter(quota_counters::resource.eq(resource.limit_key()))
                .filter(quota_counters::period.eq(period))
                .filter(quota_counters::used.gt(0)),
        )
        .set(quota_counters::used.eq(quota_counters::used - 1))
        .execute(&mut conn)
        .await
        .map_err(|e| db_error("release quota", &e))?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Usage.

/// Metered usage in PostgreSQL.
#[derive(Clone)]
pub struct PgUsageStore {
    pool: Pool,
}

impl std::fmt::Debug for PgUsageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgUsageStore").finish_non_exhaustive()
    }
}

impl PgUsageStore {
    /// A store over `pool`.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

/// Adds counter buckets to the days they fall on in each account's time zone. Buckets of
/// accounts the Hub does not know are dropped (they cannot be billed to anyone).
const FLUSH_COUNTS_SQL: &str = "
INSERT INTO usage_daily AS u
       (account_id, day, messages_sent, conversations_touched, webhooks_processed, api_calls)
SELECT b.account_id,
       (to_timestamp(b.minute * 60) AT TIME ZONE a.time_zone)::date AS day,
       coalesce(sum(b.n) FILTER (WHERE b.metric = 'messages_sent'), 0),
       coalesce(sum(b.n) FILTER (WHERE b.metric = 'conversations_touched'), 0),
       coalesce(sum(b.n) FILTER (WHERE b.metric = 'webhooks_processed'), 0),
       coalesce(sum(b.n) FILTER (WHERE b.metric = 'api_calls'), 0)
  FROM unnest($1::int8[], $2::int8[], $3::text[], $4::int8[]) AS b(account_id, minute, metric, n)
  JOIN accounts a ON a.id = b.account_id
 GROUP BY 1, 2
ON CONFLICT (account_id, day) DO UPDATE SET
       messages_sent = u.messages_sent + EXCLUDED.messages_sent,
       conversations_touched = u.conversations_touched + EXCLUDED.conversations_touched,
       webhooks_processed = u.webhooks_processed + EXCLUDED.webhooks_processed,
       api_calls = u.api_calls + EXCLUDED.api_calls";

/// Records distinct active users per local day and counts the new ones into `usage_daily`.
const FLUSH_ACTIVE_SQL: &str = "
WITH seen AS (
    INSERT INTO usage_active_users (account_id, day, user_id)
    SELECT DISTINCT b.account_id, (to_timestamp(b.minute * 60) AT TIME ZONE a.time_zone)::date,
           b.user_id
      FROM unnest($1::int8[], $2::int8[], $3::int8[]) AS b(account_id, minute, user_id)
      JOIN accounts a ON a.id = b.account_id
    ON CONFLICT DO NOTHING
    RETURNING account_id, day
)
INSERT INTO usage_daily AS u (account_id, day, active_users)
SELECT account_id, day, count(*) FROM seen GROUP BY 1, 2
ON CONFLICT (account_id, day) DO UPDATE SET active_users = u.active_users + EXCLUDED.active_users";

#[derive(QueryableByName)]
struct DailyRow {
    #[diesel(sql_type = SqlDate)]
    day: Date,
    #[diesel(sql_type = BigInt)]
    messages_sent: i64,
    #[diesel(sql_type = BigInt)]
    conversations_touched: i64,
    #[diesel(sql_type = BigInt)]
    webhooks_processed: i64,
    #[diesel(sql_type = BigInt)]
    api_calls: i64,
    #[diesel(sql_type = BigInt)]
    active_users: i64,
}

const DAILY_SQL: &str = "
SELECT d.day::date AS day,
       coalesce(u.messages_sent, 0) AS messages_sent,
       coalesce(u.conversations_touched, 0) AS conversations_touched,
       coalesce(u.webhooks_processed, 0) AS webhooks_processed,
       coalesce(u.api_calls, 0) AS api_calls,
       coalesce(u.active_users, 0) AS active_users
  FROM generate_series($2::date, $3::date, interval '1 day') AS d(day)
  LEFT JOIN usage_daily u ON u.account_id = $1 AND u.day = d.day::date
 ORDER BY 1";

#[derive(QueryableByName)]
struct ActiveRow {
    #[diesel(sql_type = SqlDate)]
    today: Date,
    #[diesel(sql_type = Text)]
    time_zone: String,
    #[diesel(sql_type = BigInt)]
    dau: i64,
    #[diesel(sql_type = BigInt)]
    wau: i64,
    #[diesel(sql_type = BigInt)]
    mau: i64,
}

const ACTIVE_SQL: &str = "
WITH acc AS (
    SELECT time_zone, (now() AT TIME ZONE time_zone)::date AS today FROM accounts WHERE id = $1
)
SELECT acc.today, acc.time_zone,
       count(DISTINCT v.user_id) FILTER (WHERE v.day = acc.today) AS dau,
       count(DISTINCT v.user_id) FILTER (WHERE v.day > acc.today - 7) AS wau,
       count(DISTINCT v.user_id) AS mau
  FROM acc
  LEFT JOIN usage_active_users v
         ON v.account_id = $1 AND v.day > acc.today - 30 AND v.day <= acc.today
 GROUP BY acc.today, acc.time_zone";

#[derive(QueryableByName)]
struct TotalsRow {
    #[diesel(sql_type = BigInt)]
    accounts: i64,
    #[diesel(sql_type = BigInt)]
    messages_sent: i64,
    #[diesel(sql_type = BigInt)]
    conversations_touched: i64,
    #[diesel(sql_type = BigInt)]
    webhooks_processed: i64,
    #[diesel(sql_type = BigInt)]
    api_calls: i64,
    #[diesel(sql_type = BigInt)]
    active_users: i64,
}

const TOTALS_SQL: &str = "
SELECT count(DISTINCT account_id) AS accounts,
       coalesce(sum(messages_sent), 0)::int8 AS messages_sent,
       coalesce(sum(conversations_touched), 0)::int8 AS conversations_touched,
       coalesce(sum(webhooks_processed), 0)::int8 AS webhooks_processed,
       coalesce(sum(api_calls), 0)::int8 AS api_calls,
       (SELECT count(*) FROM (SELECT DISTINCT account_id, user_id FROM usage_active_users
                               WHERE day BETWEEN $1 AND $2) x) AS active_users
  FROM usage_daily WHERE day BETWEEN $1 AND $2";

#[async_trait]
impl UsageStore for PgUsageStore {
    async fn flush(&self, batch: &MeterSnapshot) -> Result<(), StoreError> {
        let mut accounts = Vec::with_capacity(batch.counts.len());
        let mut minutes = Vec::with_capacity(batch.counts.len());
        let mut metrics = Vec::with_capacity(batch.counts.len());
        let mut counts = Vec::with_capacity(batch.counts.len());
        for ((account, minute, metric), n) in &batch.counts {
            accounts.push(account.get());
            minutes.push(*minute);
            metrics.push(metric.as_str().to_owned());
            counts.push(*n);
        }
        let mut active_accounts = Vec::with_capacity(batch.active.len());
        let mut active_minutes = Vec::with_capacity(batch.active.len());
        let mut active_users = Vec::with_capacity(batch.active.len());
        for (account, minute, user) in &batch.active {
            active_accounts.push(account.get());
            active_minutes.push(*minute);
            active_users.push(user.get());
        }
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            if !accounts.is_empty() {
                diesel::sql_query(FLUSH_COUNTS_SQL)
                    .bind::<Array<BigInt>, _>(accounts)
                    .bind::<Array<BigInt>, _>(minutes)
                    .bind::<Array<Text>, _>(metrics)
                    .bind::<Array<BigInt>, _>(counts)
                    .execute(conn)
                    .await?;
            }
            if !active_accounts.is_empty() {
                diesel::sql_query(FLUSH_ACTIVE_SQL)
                    .bind::<Array<BigInt>, _>(active_accounts)
                    .bind::<Array<BigInt>, _>(active_minutes)
                    .bind::<Array<BigInt>, _>(active_users)
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
        .await
        .map_err(|e| db_error("flush usage", &e))
    }

    async fn daily(
        &self,
        scope: &TenantScope,
        from: Date,
        to: Date,
    ) -> Result<Vec<UsageDay>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<DailyRow> = diesel::sql_query(DAILY_SQL)
            .bind::<BigInt, _>(scope.account_id().get())
            .bind::<SqlDate, _>(from)
            .bind::<SqlDate, _>(to)
            .load(&mut conn)
            .await
            .map_err(|e| db_error("read usage", &e))?;
        Ok(rows
            .into_iter()
            .map(|r| UsageDay {
                date: r.day,
                messages_sent: r.messages_sent,
                conversations_touched: r.conversations_touched,
                webhooks_processed: r.webhooks_processed,
                api_calls: r.api_calls,
                active_users: r.active_users,
            })
            .collect())
    }

    async fn active_users(&self, scope: &TenantScope) -> Result<ActiveUsers, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let row: Option<ActiveRow> = diesel::sql_query(ACTIVE_SQL)
            .bind::<BigInt, _>(scope.account_id().get())
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(|e| db_error("read active users", &e))?;
        let row = row.ok_or_else(|| {
            StoreError::Internal(format!("account {} is missing", scope.account_id()))
        })?;
        Ok(ActiveUsers {
            as_of: row.today,
            time_zone: row.time_zone,
            dau: row.dau,
            wau: row.wau,
            mau: row.mau,
        })
    }

    async fn set_time_zone(
        &self,
        scope: &TenantScope,
        time_zone: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let updated = diesel::sql_query(
            "UPDATE accounts SET time_zone = $2 WHERE id = $1
                AND EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $2)",
        )
        .bind::<BigInt, _>(scope.account_id().get())
        .bind::<Text, _>(time_zone)
        .execute(&mut conn)
        .await
        .map_err(|e| db_error("set time zone", &e))?;
        Ok(updated == 1)
    }

    async fn totals(
        &self,
        _scope: &PlatformScope,
        from: Date,
        to: Date,
    ) -> Result<UsageTotals, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let row: TotalsRow = diesel::sql_query(TOTALS_SQL)
            .bind::<SqlDate, _>(from)
            .bind::<SqlDate, _>(to)
            .get_result(&mut conn)
            .await
            .map_err(|e| db_error("read usage totals", &e))?;
        Ok(UsageTotals {
            accounts: row.accounts,
            messages_sent: row.messages_sent,
            conversations_touched: row.conversations_touched,
            webhooks_processed: row.webhooks_processed,
            api_calls: row.api_calls,
            active_users: row.active_users,
        })
    }
}

/// Metrics are written by name; keep the SQL's names in step with the domain's.
const _: () = {
    let _ = Metric::ALL;
};
