//! PostgreSQL adapters of the inbox ports: [`PgInboxStore`] (the Chatwoot connection, the inbox
//! mirror and its sync runs) and [`PgProviderStore`] (providers, instances, their health and
//! its history). Every tenant query filters on the scope's account first; the only
//! cross-account queries are the platform jobs' (`claim_due`, `webhook_target`,
//! `accounts_due_for_sync`).

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{
    Array, BigInt, Bool, Bytea, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;
use whatpro_entitlements::{QuotaClaim, ReserveOutcome, Resource};
use whatpro_iam::{Actor, AuditContext, PlatformScope, StoreError, TenantScope};
use whatpro_inbox::{
    ChatwootConnection, ChatwootInboxId, Deleted, HealthChange, HealthSaved, HealthSnapshot,
    HealthSource, HealthState, HealthTransition, HealthUpdate, Inbox, InboxError, InboxId,
    InboxStore, InstanceChanges, InstanceHealth, InstanceId, NewConnection, NewInstance,
    NewProvider, Paged, ProbeTarget, Provider, ProviderChanges, ProviderId, ProviderInstance,
    ProviderStore, ProviderType, SyncCounts, SyncPlan, SyncRun, SyncRunId, SyncStart, SyncStatus,
    SyncTrigger, WebhookTarget,
};
use whatpro_kernel::{AccountId, Limit, UserId};

use crate::Pool;
use crate::entitlements::{claimed_slot_update, take_claimed_slot, take_missing_or_refused_slot};
use crate::iam::{AuditEvent, TxError, actor_columns, db_error, insert_audit, pool_error};
use crate::reusable::reusable;
use crate::schema::{chatwoot_connections, inbox_sync_runs, instance_health_events};

/// The unique index allowing one live instance per inbox.
const ONE_INSTANCE_PER_INBOX: &str = "provider_instances_account_id_inbox_id_key";

fn page_plus_one(limit: Limit) -> i64 {
    i64::from(limit.get()) + 1
}

fn limit_of(limit: Limit) -> usize {
    usize::from(limit.get())
}

/// A failure inside an inbox transaction: the database's, a row we cannot read, or a domain
/// outcome that ends the transaction.
#[derive(Debug)]
enum Fail {
    Tx(TxError),
    Domain(InboxError),
}

impl From<DieselError> for Fail {
    fn from(err: DieselError) -> Self {
        Fail::Tx(TxError::Db(err))
    }
}

impl From<TxError> for Fail {
    fn from(err: TxError) -> Self {
        Fail::Tx(err)
    }
}

impl Fail {
    fn into_inbox(self, context: &str) -> InboxError {
        match self {
            Fail::Tx(err) => InboxError::from(err.into_store(context)),
            Fail::Domain(err) => err,
        }
    }
}

fn store_error(context: &str) -> impl Fn(DieselError) -> StoreError + '_ {
    move |e| db_error(context, &e)
}

fn inbox_db_error(context: &str) -> impl Fn(DieselError) -> InboxError + '_ {
    move |e| InboxError::from(db_error(context, &e))
}

fn pool_inbox_error(err: diesel_async::pooled_connection::deadpool::PoolError) -> InboxError {
    InboxError::from(pool_error(err))
}

fn parse_state(stored: &str) -> Result<HealthState, TxError> {
    stored
        .parse()
        .map_err(|_| TxError::Corrupt(format!("unknown stored health state `{stored}`")))
}

fn parse_type(stored: &str) -> Result<ProviderType, TxError> {
    stored
        .parse()
        .map_err(|_| TxError::Corrupt(format!("unknown stored provider type `{stored}`")))
}

/// One audit row of the scope's account, actor from the scope.
fn audit_row(
    scope: &TenantScope,
    action: &str,
    target: String,
    metadata: Value,
    audit: &AuditContext,
) -> crate::iam::NewAudit {
    let (actor_type, actor_id) = actor_columns(scope.actor());
    AuditEvent {
        actor_type,
        actor_id,
        action,
        target: Some(target),
        metadata,
        audit,
        at: OffsetDateTime::now_utc(),
    }
    .row(Some(scope.account_id()))
}

/// Writes a create's audit row and takes its quota slot (when claimed) in one pipelined round
/// trip, as the transaction's last writes: the counter row is locked only until the commit
/// that follows. A refused slot ends the transaction with `QuotaExceeded`, so nothing of the
/// create is stored; a failed create never holds a slot.
async fn audit_and_take_slot(
    conn: &mut AsyncPgConnection,
    account: i64,
    row: crate::iam::NewAudit,
    quota: Option<&QuotaClaim>,
) -> Result<(), Fail> {
    let shared: &AsyncPgConnection = conn;
    let rows = [row];
    let audited = insert_audit(shared, &rows);
    let Some(claim) = quota else {
        audited.await?;
        return Ok(());
    };
    let (audited, slot) = tokio::join!(audited, take_claimed_slot(shared, account, claim));
    audited?;
    match slot? {
        ReserveOutcome::Granted { .. } => Ok(()),
        ReserveOutcome::Exceeded { used, limit } => Err(Fail::Domain(InboxError::Entitlement(
            claim.exceeded(used, limit),
        ))),
    }
}

// =============================================================================================
// Connection, mirror and sync runs.

/// The Chatwoot connection, the inbox mirror and the sync runs in PostgreSQL.
#[derive(Clone)]
pub struct PgInboxStore {
    pool: Pool,
}

impl std::fmt::Debug for PgInboxStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgInboxStore").finish_non_exhaustive()
    }
}

impl PgInboxStore {
    /// A store over `pool`.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

type ConnectionTuple = (
    i64,
    i64,
    String,
    OffsetDateTime,
    Option<OffsetDateTime>,
    OffsetDateTime,
    OffsetDateTime,
);

const CONNECTION_COLUMNS: (
    chatwoot_connections::account_id,
    chatwoot_connections::chatwoot_user_id,
    chatwoot_connections::chatwoot_user_name,
    chatwoot_connections::verified_at,
    chatwoot_connections::last_sync_at,
    chatwoot_connections::created_at,
    chatwoot_connections::updated_at,
) = (
    chatwoot_connections::account_id,
    chatwoot_connections::chatwoot_user_id,
    chatwoot_connections::chatwoot_user_name,
    chatwoot_connections::verified_at,
    chatwoot_connections::last_sync_at,
    chatwoot_connections::created_at,
    chatwoot_connections::updated_at,
);

fn connection_from(row: ConnectionTuple) -> ChatwootConnection {
    let (account, user, name, verified_at, last_sync_at, created_at, updated_at) = row;
    ChatwootConnection {
        account_id: AccountId::new(account),
        chatwoot_user_id: UserId::new(user),
        chatwoot_user_name: name,
        verified_at,
        last_sync_at,
        created_at,
        updated_at,
    }
}

type RunTuple = (
    Uuid,
    String,
    String,
    OffsetDateTime,
    Option<OffsetDateTime>,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    Option<String>,
);

type RunColumns = (
    inbox_sync_runs::id,
    inbox_sync_runs::triggered_by,
    inbox_sync_runs::status,
    inbox_sync_runs::started_at,
    inbox_sync_runs::finished_at,
    inbox_sync_runs::fetched,
    inbox_sync_runs::added,
    inbox_sync_runs::updated,
    inbox_sync_runs::unchanged,
    inbox_sync_runs::removed,
    inbox_sync_runs::restored,
    inbox_sync_runs::over_quota,
    inbox_sync_runs::error,
);

const RUN_COLUMNS: RunColumns = (
    inbox_sync_runs::id,
    inbox_sync_runs::triggered_by,
    inbox_sync_runs::status,
    inbox_sync_runs::started_at,
    inbox_sync_runs::finished_at,
    inbox_sync_runs::fetched,
    inbox_sync_runs::added,
    inbox_sync_runs::updated,
    inbox_sync_runs::unchanged,
    inbox_sync_runs::removed,
    inbox_sync_runs::restored,
    inbox_sync_runs::over_quota,
    inbox_sync_runs::error,
);

fn run_from(row: RunTuple) -> Result<SyncRun, TxError> {
    let (
        id,
        trigger,
        status,
        started_at,
        finished_at,
        fetched,
        added,
        updated,
        unchanged,
        removed,
        restored,
        over_quota,
        error,
    ) = row;
    Ok(SyncRun {
        id: SyncRunId::from_uuid(id),
        trigger: SyncTrigger::parse(&trigger)
            .ok_or_else(|| TxError::Corrupt(format!("unknown sync trigger `{trigger}`")))?,
        status: SyncStatus::parse(&status)
            .ok_or_else(|| TxError::Corrupt(format!("unknown sync status `{status}`")))?,
        started_at,
        finished_at,
        counts: SyncCounts {
            fetched,
            added,
            updated,
            unchanged,
            removed,
            restored,
            over_quota,
        },
        error,
    })
}

async fn load_run(
    conn: &mut AsyncPgConnection,
    scope: &TenantScope,
    run: SyncRunId,
) -> Result<SyncRun, TxError> {
    let row: RunTuple = inbox_sync_runs::table
        .filter(inbox_sync_runs::account_id.eq(scope.account_id().get()))
        .filter(inbox_sync_runs::id.eq(run.as_uuid()))
        .select(RUN_COLUMNS)
        .first(conn)
        .await?;
    run_from(row)
}

#[derive(QueryableByName)]
struct InboxRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = BigInt)]
    chatwoot_inbox_id: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    channel_type: String,
    #[diesel(sql_type = Bool)]
    over_quota: bool,
    #[diesel(sql_type = Bool)]
    removed: bool,
    #[diesel(sql_type = Timestamptz)]
    first_seen_at: OffsetDateTime,
    #[diesel(sql_type = Timestamptz)]
    last_synced_at: OffsetDateTime,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    provider_instance_id: Option<Uuid>,
}

impl From<InboxRow> for Inbox {
    fn from(row: InboxRow) -> Self {
        Inbox {
            id: InboxId::from_uuid(row.id),
            chatwoot_inbox_id: ChatwootInboxId::new(row.chatwoot_inbox_id),
            name: row.name,
            channel_type: row.channel_type,
            provider_instance_id: row.provider_instance_id.map(InstanceId::from_uuid),
            over_quota: row.over_quota,
            removed: row.removed,
            first_seen_at: row.first_seen_at,
            last_synced_at: row.last_synced_at,
        }
    }
}

/// Inboxes of the account with the live instance linked to each (at most one: a unique
/// index), after an optional id, by id.
const INBOXES_SQL: &str = "
SELECT i.id, i.chatwoot_inbox_id, i.name, i.channel_type, i.over_quota,
       i.removed_at IS NOT NULL AS removed, i.first_seen_at, i.last_synced_at,
       p.id AS provider_instance_id
  FROM inboxes i
  LEFT JOIN provider_instances p
         ON p.account_id = i.account_id AND p.inbox_id = i.id AND p.deleted_at IS NULL
 WHERE i.account_id = $1 AND ($2::uuid IS NULL OR i.id > $2)
 ORDER BY i.id
 LIMIT $3";

/// Takes the account's sync lease unless an unexpired one is held.
const TAKE_LEASE_SQL: &str = "
UPDATE chatwoot_connections SET sync_lease_until = $3
 WHERE account_id = $1 AND (sync_lease_until IS NULL OR sync_lease_until <= $2)
RETURNING sealed_token";

#[derive(QueryableByName)]
struct SealedToken {
    #[diesel(sql_type = Text)]
    sealed_token: String,
}

const INSERT_INBOXES_SQL: &str = "
INSERT INTO inboxes (account_id, id, chatwoot_inbox_id, name, channel_type, first_seen_at,
                     last_synced_at)
SELECT $1, n.id, n.chatwoot_inbox_id, n.name, n.channel_type, $5, $5
  FROM unnest($2::uuid[], $3::int8[], $4::text[], $6::text[])
       AS n(id, chatwoot_inbox_id, name, channel_type)
ON CONFLICT (account_id, chatwoot_inbox_id) DO UPDATE
   SET name = EXCLUDED.name, channel_type = EXCLUDED.channel_type, removed_at = NULL,
       last_synced_at = EXCLUDED.last_synced_at";

const REFRESH_INBOXES_SQL: &str = "
UPDATE inboxes i
   SET name = s.name, channel_type = s.channel_type, removed_at = NULL, last_synced_at = $5
  FROM unnest($2::uuid[], $3::text[], $4::text[]) AS s(id, name, channel_type)
 WHERE i.account_id = $1 AND i.id = s.id";

const REMOVE_INBOXES_SQL: &str = "
UPDATE inboxes SET removed_at = $3
 WHERE account_id = $1 AND id = ANY($2) AND removed_at IS NULL";

const FLAG_OVER_QUOTA_SQL: &str = "
UPDATE inboxes SET over_quota = (id = ANY($2))
 WHERE account_id = $1 AND over_quota IS DISTINCT FROM (id = ANY($2))";

/// Inboxes in service count as the account's `inboxes` usage.
const INBOX_USAGE_SQL: &str = "
INSERT INTO quota_counters (account_id, resource, period, used)
SELECT $1, $2, '', count(*) FROM inboxes WHERE account_id = $1 AND removed_at IS NULL
ON CONFLICT (account_id, resource, period) DO UPDATE SET used = EXCLUDED.used";

const DUE_ACCOUNTS_SQL: &str = "
SELECT c.account_id AS id
  FROM chatwoot_connections c
  JOIN accounts a ON a.id = c.account_id
 WHERE a.status = 'active' AND a.uninstalled_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM inbox_sync_runs r
                    WHERE r.account_id = c.account_id AND r.started_at > $1)
 ORDER BY c.account_id
 LIMIT $2";

#[derive(QueryableByName)]
struct AccountRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The count columns of a run, set from [`SyncCounts`].
type CountsChangeset = (
    diesel::dsl::Eq<inbox_sync_runs::fetched, i32>,
    diesel::dsl::Eq<inbox_sync_runs::added, i32>,
    diesel::dsl::Eq<inbox_sync_runs::updated, i32>,
    diesel::dsl::Eq<inbox_sync_runs::unchanged, i32>,
    diesel::dsl::Eq<inbox_sync_runs::removed, i32>,
    diesel::dsl::Eq<inbox_sync_runs::restored, i32>,
    diesel::dsl::Eq<inbox_sync_runs::over_quota, i32>,
);

fn counts_changeset(counts: &SyncCounts) -> CountsChangeset {
    (
        inbox_sync_runs::fetched.eq(counts.fetched),
        inbox_sync_runs::added.eq(counts.added),
        inbox_sync_runs::updated.eq(counts.updated),
        inbox_sync_runs::unchanged.eq(counts.unchanged),
        inbox_sync_runs::removed.eq(counts.removed),
        inbox_sync_runs::restored.eq(counts.restored),
        inbox_sync_runs::over_quota.eq(counts.over_quota),
    )
}

#[async_trait]
impl InboxStore for PgInboxStore {
    async fn connection(
        &self,
        scope: &TenantScope,
    ) -> Result<Option<ChatwootConnection>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let row: Option<ConnectionTuple> = chatwoot_connections::table
            .filter(chatwoot_connections::account_id.eq(scope.account_id().get()))
            .select(CONNECTION_COLUMNS)
            .first(&mut conn)
            .await
            .optional()
            .map_err(store_error("read chatwoot connection"))?;
        Ok(row.map(connection_from))
    }

    async fn sealed_token(&self, scope: &TenantScope) -> Result<Option<String>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        chatwoot_connections::table
            .filter(chatwoot_connections::account_id.eq(scope.account_id().get()))
            .select(chatwoot_connections::sealed_token)
            .first(&mut conn)
            .await
            .optional()
            .map_err(store_error("read chatwoot token"))
    }

    async fn save_connection(
        &self,
        scope: &TenantScope,
        connection: &NewConnection,
        audit: &AuditContext,
    ) -> Result<ChatwootConnection, StoreError> {
        let account = scope.account_id().get();
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        conn.transaction::<_, TxError, _>(async |conn| {
            let now = OffsetDateTime::now_utc();
            diesel::insert_into(chatwoot_connections::table)
                .values((
                    chatwoot_connections::account_id.eq(account),
                    chatwoot_connections::sealed_token.eq(&connection.sealed_token),
                    chatwoot_connections::chatwoot_user_id.eq(connection.chatwoot_user_id.get()),
                    chatwoot_connections::chatwoot_user_name.eq(&connection.chatwoot_user_name),
                    chatwoot_connections::verified_at.eq(connection.verified_at),
                    chatwoot_connections::created_at.eq(now),
                    chatwoot_connections::updated_at.eq(now),
                ))
                .on_conflict(chatwoot_connections::account_id)
                .do_update()
                .set((
                    chatwoot_connections::sealed_token.eq(&connection.sealed_token),
                    chatwoot_connections::chatwoot_user_id.eq(connection.chatwoot_user_id.get()),
                    chatwoot_connections::chatwoot_user_name.eq(&connection.chatwoot_user_name),
                    chatwoot_connections::verified_at.eq(connection.verified_at),
                    chatwoot_connections::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
            insert_audit(
                conn,
                &[audit_row(
                    scope,
                    "chatwoot_connection.saved",
                    format!("chatwoot_user:{}", connection.chatwoot_user_id),
                    json!({ "chatwoot_user_id": connection.chatwoot_user_id.get() }),
                    audit,
                )],
            )
            .await?;
            let row: ConnectionTuple = chatwoot_connections::table
                .filter(chatwoot_connections::account_id.eq(account))
                .select(CONNECTION_COLUMNS)
                .first(conn)
                .await?;
            Ok(connection_from(row))
        })
        .await
        .map_err(|e| e.into_store("save chatwoot connection"))
    }

    async fn delete_connection(
        &self,
        scope: &TenantScope,
        audit: &AuditContext,
    ) -> Result<bool, StoreError> {
        let account = scope.account_id().get();
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        conn.transaction::<_, TxError, _>(async |conn| {
            let removed: Option<i64> = diesel::delete(
                chatwoot_connections::table.filter(chatwoot_connections::account_id.eq(account)),
            )
            .returning(chatwoot_connections::chatwoot_user_id)
            .get_result(conn)
            .await
            .optional()?;
            if let Some(user) = removed {
                insert_audit(
                    conn,
                    &[audit_row(
                        scope,
                        "chatwoot_connection.removed",
                        format!("chatwoot_user:{user}"),
                        json!({ "chatwoot_user_id": user }),
                        audit,
                    )],
                )
                .await?;
            }
            Ok(removed.is_some())
        })
        .await
        .map_err(|e| e.into_store("remove chatwoot connection"))
    }

    async fn begin_sync(
        &self,
        scope: &TenantScope,
        run: SyncRunId,
        trigger: SyncTrigger,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<SyncStart, StoreError> {
        let account = scope.account_id().get();
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        conn.transaction::<_, TxError, _>(async |conn| {
            let taken: Option<SealedToken> = diesel::sql_query(TAKE_LEASE_SQL)
                .bind::<BigInt, _>(account)
                .bind::<Timestamptz, _>(now)
                .bind::<Timestamptz, _>(lease_until)
                .get_result(conn)
                .await
                .optional()?;
            let Some(taken) = taken else {
                let connected: bool = diesel::select(diesel::dsl::exists(
                    chatwoot_connections::table
                        .filter(chatwoot_connections::account_id.eq(account)),
                ))
                .get_result(conn)
                .await?;
                return Ok(if connected {
                    SyncStart::InProgress
                } else {
                    SyncStart::NotConnected
                });
            };
            // Holding the lease, any run still marked running was abandoned.
            diesel::update(
                inbox_sync_runs::table
                    .filter(inbox_sync_runs::account_id.eq(account))
                    .filter(inbox_sync_runs::status.eq(SyncStatus::Running.as_str())),
            )
            .set((
                inbox_sync_runs::status.eq(SyncStatus::Failed.as_str()),
                inbox_sync_runs::finished_at.eq(now),
                inbox_sync_runs::error
                    .eq("abandoned: the Hub process running it stopped before it finished"),
            ))
            .execute(conn)
            .await?;
            diesel::insert_into(inbox_sync_runs::table)
                .values((
                    inbox_sync_runs::account_id.eq(account),
                    inbox_sync_runs::id.eq(run.as_uuid()),
                    inbox_sync_runs::triggered_by.eq(trigger.as_str()),
                    inbox_sync_runs::status.eq(SyncStatus::Running.as_str()),
                    inbox_sync_runs::started_at.eq(now),
                ))
                .execute(conn)
                .await?;
            Ok(SyncStart::Started {
                sealed_token: taken.sealed_token,
            })
        })
        .await
        .map_err(|e| e.into_store("begin inbox sync"))
    }

    async fn mirror(&self, scope: &TenantScope) -> Result<Vec<Inbox>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<InboxRow> = diesel::sql_query(INBOXES_SQL)
            .bind::<BigInt, _>(scope.account_id().get())
            .bind::<Nullable<SqlUuid>, _>(None::<Uuid>)
            .bind::<BigInt, _>(i64::MAX)
            .load(&mut conn)
            .await
            .map_err(store_error("read inbox mirror"))?;
        Ok(rows.into_iter().map(Inbox::from).collect())
    }

    async fn apply_sync(
        &self,
        scope: &TenantScope,
        run: SyncRunId,
        plan: &SyncPlan,
        now: OffsetDateTime,
    ) -> Result<SyncRun, StoreError> {
        let account = scope.account_id().get();
        let insert_ids: Vec<Uuid> = plan.inserts.iter().map(|r| r.id.as_uuid()).collect();
        let insert_chatwoot: Vec<i64> = plan.inserts.iter().map(|r| r.inbox.id.get()).collect();
        let insert_names: Vec<&str> = plan.inserts.iter().map(|r| r.inbox.name.as_str()).collect();
        let insert_channels: Vec<&str> = plan
            .inserts
            .iter()
            .map(|r| r.inbox.channel_type.as_str())
            .collect();
        let seen_ids: Vec<Uuid> = plan.seen.iter().map(|(id, _)| id.as_uuid()).collect();
        let seen_names: Vec<&str> = plan.seen.iter().map(|(_, i)| i.name.as_str()).collect();
        let seen_channels: Vec<&str> = plan
            .seen
            .iter()
            .map(|(_, i)| i.channel_type.as_str())
            .collect();
        let removed: Vec<Uuid> = plan.removed.iter().map(|id| id.as_uuid()).collect();
        let over_quota: Vec<Uuid> = plan.over_quota.iter().map(|id| id.as_uuid()).collect();
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        conn.transaction::<_, TxError, _>(async |conn| {
            if !insert_ids.is_empty() {
                diesel::sql_query(INSERT_INBOXES_SQL)
                    .bind::<BigInt, _>(account)
                    .bind::<Array<SqlUuid>, _>(&insert_ids)
                    .bind::<Array<BigInt>, _>(&insert_chatwoot)
                    .bind::<Array<Text>, _>(&insert_names)
                    .bind::<Timestamptz, _>(now)
                    .bind::<Array<Text>, _>(&insert_channels)
                    .execute(conn)
                    .await?;
            }
            if !seen_ids.is_empty() {
                diesel::sql_query(REFRESH_INBOXES_SQL)
                    .bind::<BigInt, _>(account)
                    .bind::<Array<SqlUuid>, _>(&seen_ids)
                    .bind::<Array<Text>, _>(&seen_names)
                    .bind::<Array<Text>, _>(&seen_channels)
                    .bind::<Timestamptz, _>(now)
                    .execute(conn)
                    .await?;
            }
            if !removed.is_empty() {
                diesel::sql_query(REMOVE_INBOXES_SQL)
                    .bind::<BigInt, _>(account)
                    .bind::<Array<SqlUuid>, _>(&removed)
                    .bind::<Timestamptz, _>(now)
                    .execute(conn)
                    .await?;
            }
            diesel::sql_query(FLAG_OVER_QUOTA_SQL)
                .bind::<BigInt, _>(account)
                .bind::<Array<SqlUuid>, _>(&over_quota)
                .execute(conn)
                .await?;
            diesel::sql_query(INBOX_USAGE_SQL)
                .bind::<BigInt, _>(account)
                .bind::<Text, _>(Resource::Inboxes.limit_key())
                .execute(conn)
                .await?;
            diesel::update(
                inbox_sync_runs::table
                    .filter(inbox_sync_runs::account_id.eq(account))
                    .filter(inbox_sync_runs::id.eq(run.as_uuid())),
            )
            .set((
                inbox_sync_runs::status.eq(SyncStatus::Succeeded.as_str()),
                inbox_sync_runs::finished_at.eq(now),
                counts_changeset(&plan.counts),
            ))
            .execute(conn)
            .await?;
            diesel::update(
                chatwoot_connections::table.filter(chatwoot_connections::account_id.eq(account)),
            )
            .set((
                chatwoot_connections::sync_lease_until.eq(None::<OffsetDateTime>),
                chatwoot_connections::last_sync_at.eq(now),
            ))
            .execute(conn)
            .await?;
            load_run(conn, scope, run).await
        })
        .await
        .map_err(|e| e.into_store("apply inbox sync"))
    }

    async fn fail_sync(
        &self,
        scope: &TenantScope,
        run: SyncRunId,
        error: &str,
        now: OffsetDateTime,
    ) -> Result<SyncRun, StoreError> {
        let account = scope.account_id().get();
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        conn.transaction::<_, TxError, _>(async |conn| {
            diesel::update(
                inbox_sync_runs::table
                    .filter(inbox_sync_runs::account_id.eq(account))
                    .filter(inbox_sync_runs::id.eq(run.as_uuid())),
            )
            .set((
                inbox_sync_runs::status.eq(SyncStatus::Failed.as_str()),
                inbox_sync_runs::finished_at.eq(now),
                inbox_sync_runs::error.eq(error),
            ))
            .execute(conn)
            .await?;
            diesel::update(
                chatwoot_connections::table.filter(chatwoot_connections::account_id.eq(account)),
            )
            .set(chatwoot_connections::sync_lease_until.eq(None::<OffsetDateTime>))
            .execute(conn)
            .await?;
            load_run(conn, scope, run).await
        })
        .await
        .map_err(|e| e.into_store("record failed inbox sync"))
    }

    async fn list_inboxes(
        &self,
        scope: &TenantScope,
        after: Option<InboxId>,
        limit: Limit,
    ) -> Result<Paged<Inbox>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<InboxRow> = diesel::sql_query(INBOXES_SQL)
            .bind::<BigInt, _>(scope.account_id().get())
            .bind::<Nullable<SqlUuid>, _>(after.map(InboxId::as_uuid))
            .bind::<BigInt, _>(page_plus_one(limit))
            .load(&mut conn)
            .await
            .map_err(store_error("list inboxes"))?;
        let inboxes = rows.into_iter().map(Inbox::from).collect();
        Ok(Paged::from_rows(inboxes, limit_of(limit), |i: &Inbox| {
            i.id.as_uuid()
        }))
    }

    async fn list_runs(
        &self,
        scope: &TenantScope,
        before: Option<SyncRunId>,
        limit: Limit,
    ) -> Result<Paged<SyncRun>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let mut query = inbox_sync_runs::table
            .filter(inbox_sync_runs::account_id.eq(scope.account_id().get()))
            .select(RUN_COLUMNS)
            .order(inbox_sync_runs::id.desc())
            .limit(page_plus_one(limit))
            .into_boxed();
        if let Some(before) = before {
            query = query.filter(inbox_sync_runs::id.lt(before.as_uuid()));
        }
        let rows: Vec<RunTuple> = query
            .load(&mut conn)
            .await
            .map_err(store_error("list sync runs"))?;
        let runs = rows
            .into_iter()
            .map(run_from)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.into_store("list sync runs"))?;
        Ok(Paged::from_rows(runs, limit_of(limit), |r: &SyncRun| {
            r.id.as_uuid()
        }))
    }

    async fn accounts_due_for_sync(
        &self,
        _scope: &PlatformScope,
        started_before: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<AccountId>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<AccountRow> = diesel::sql_query(DUE_ACCOUNTS_SQL)
            .bind::<Timestamptz, _>(started_before)
            .bind::<BigInt, _>(limit)
            .load(&mut conn)
            .await
            .map_err(store_error("list accounts due for sync"))?;
        Ok(rows.into_iter().map(|r| AccountId::new(r.id)).collect())
    }
}

// =============================================================================================
// Providers, instances, health.

/// Providers, instances and their health in PostgreSQL.
#[derive(Clone)]
pub struct PgProviderStore {
    pool: Pool,
}

impl std::fmt::Debug for PgProviderStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgProviderStore").finish_non_exhaustive()
    }
}

impl PgProviderStore {
    /// A store over `pool`.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

#[derive(QueryableByName)]
struct ProviderRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    provider_type: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    base_url: String,
    #[diesel(sql_type = Array<Text>)]
    credential_keys: Vec<String>,
    #[diesel(sql_type = BigInt)]
    instance_count: i64,
    #[diesel(sql_type = Timestamptz)]
    created_at: OffsetDateTime,
    #[diesel(sql_type = Timestamptz)]
    updated_at: OffsetDateTime,
}

impl ProviderRow {
    fn into_provider(self) -> Result<Provider, TxError> {
        Ok(Provider {
            id: ProviderId::from_uuid(self.id),
            provider_type: parse_type(&self.provider_type)?,
            name: self.name,
            base_url: self.base_url,
            credential_keys: self.credential_keys,
            instance_count: self.instance_count,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// Live providers of the account, one (`$2`) or a page after `$3`.
const PROVIDERS_SQL: &str = "
SELECT p.id, p.provider_type, p.name, p.base_url, p.credential_keys, p.created_at, p.updated_at,
       (SELECT count(*) FROM provider_instances i
         WHERE i.account_id = p.account_id AND i.provider_id = p.id
           AND i.deleted_at IS NULL) AS instance_count
  FROM providers p
 WHERE p.account_id = $1 AND p.deleted_at IS NULL
   AND ($2::uuid IS NULL OR p.id = $2)
   AND ($3::uuid IS NULL OR p.id > $3)
 ORDER BY p.id
 LIMIT $4";

async fn load_providers(
    conn: &mut AsyncPgConnection,
    account: i64,
    one: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Provider>, TxError> {
    let rows: Vec<ProviderRow> = diesel::sql_query(PROVIDERS_SQL)
        .bind::<BigInt, _>(account)
        .bind::<Nullable<SqlUuid>, _>(one)
        .bind::<Nullable<SqlUuid>, _>(after)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?;
    rows.into_iter().map(ProviderRow::into_provider).collect()
}

async fn load_provider(
    conn: &mut AsyncPgConnection,
    account: i64,
    id: ProviderId,
) -> Result<Option<Provider>, TxError> {
    Ok(load_providers(conn, account, Some(id.as_uuid()), None, 1)
        .await?
        .into_iter()
        .next())
}

#[derive(QueryableByName)]
struct InstanceRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    provider_id: Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    inbox_id: Option<Uuid>,
    #[diesel(sql_type = Array<Text>)]
    credential_keys: Vec<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: OffsetDateTime,
    #[diesel(sql_type = Timestamptz)]
    updated_at: OffsetDateTime,
    #[diesel(sql_type = Nullable<Text>)]
    state: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    checked_at: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<BigInt>)]
    latency_ms: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    reason: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_event_at: Option<OffsetDateTime>,
}

impl InstanceRow {
    fn into_instance(self) -> Result<ProviderInstance, TxError> {
        let state = match &self.state {
            Some(s) => parse_state(s)?,
            None => HealthState::Unknown,
        };
        Ok(ProviderInstance {
            id: InstanceId::from_uuid(self.id),
            provider_id: ProviderId::from_uuid(self.provider_id),
            name: self.name,
            inbox_id: self.inbox_id.map(InboxId::from_uuid),
            credential_keys: self.credential_keys,
            health: InstanceHealth {
                state,
                checked_at: self.checked_at,
                latency_ms: self.latency_ms,
                reason: self.reason,
            },
            last_event_at: self.last_event_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// Live instances of a live provider of the account, one (`$3`) or a page after `$4`.
/// The columns of an [`InstanceRow`] and the joins they come from; the statements add their
/// `WHERE` (live instances of a live provider: `$1` account, `$2` provider).
macro_rules! instance_select {
    () => {
        "
SELECT i.id, i.provider_id, i.name, i.inbox_id, i.credential_keys, i.created_at, i.updated_at,
       h.state, h.checked_at, h.latency_ms, h.reason, h.last_event_at
  FROM provider_instances i
  JOIN providers p ON p.account_id = i.account_id AND p.id = i.provider_id
                  AND p.deleted_at IS NULL
  LEFT JOIN instance_health h ON h.account_id = i.account_id AND h.instance_id = i.id
 WHERE i.account_id = $1 AND i.provider_id = $2 AND i.deleted_at IS NULL"
    };
}

const INSTANCES_SQL: &str = concat!(
    instance_select!(),
    "
   AND ($3::uuid IS NULL OR i.id = $3)
   AND ($4::uuid IS NULL OR i.id > $4)
 ORDER BY i.id
 LIMIT $5"
);

async fn load_instances(
    conn: &mut AsyncPgConnection,
    account: i64,
    provider: ProviderId,
    one: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ProviderInstance>, TxError> {
    let rows: Vec<InstanceRow> = diesel::sql_query(INSTANCES_SQL)
        .bind::<BigInt, _>(account)
        .bind::<SqlUuid, _>(provider.as_uuid())
        .bind::<Nullable<SqlUuid>, _>(one)
        .bind::<Nullable<SqlUuid>, _>(after)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?;
    rows.into_iter().map(InstanceRow::into_instance).collect()
}

/// One live instance by its exact key (its own statement: the optional filters of
/// `INSTANCES_SQL` would let a generic plan walk every instance of the provider).
const INSTANCE_SQL: &str = concat!(instance_select!(), " AND i.id = $3");

async fn load_instance(
    conn: &AsyncPgConnection,
    account: i64,
    provider: ProviderId,
    id: InstanceId,
) -> Result<Option<ProviderInstance>, TxError> {
    let mut conn = conn;
    let row: Option<InstanceRow> = reusable(
        diesel::sql_query(INSTANCE_SQL)
            .bind::<BigInt, _>(account)
            .bind::<SqlUuid, _>(provider.as_uuid())
            .bind::<SqlUuid, _>(id.as_uuid()),
    )
    .get_result(&mut conn)
    .await
    .optional()?;
    row.map(InstanceRow::into_instance).transpose()
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    #[expect(dead_code, reason = "only the row's existence matters")]
    flag: bool,
}

/// Whether the account has a live provider `$2`; locks it against a concurrent delete.
const LOCK_LIVE_PROVIDER_SQL: &str = "
SELECT true AS flag FROM providers
 WHERE account_id = $1 AND id = $2 AND deleted_at IS NULL
   FOR SHARE";

async fn lock_live_provider(
    conn: &mut AsyncPgConnection,
    account: i64,
    provider: ProviderId,
) -> Result<bool, DieselError> {
    let found: Option<Flag> = reusable(
        diesel::sql_query(LOCK_LIVE_PROVIDER_SQL)
            .bind::<BigInt, _>(account)
            .bind::<SqlUuid, _>(provider.as_uuid()),
    )
    .get_result(conn)
    .await
    .optional()?;
    Ok(found.is_some())
}

async fn inbox_exists(
    conn: &mut AsyncPgConnection,
    account: i64,
    inbox: InboxId,
) -> Result<bool, DieselError> {
    use crate::schema::inboxes;
    diesel::select(diesel::dsl::exists(
        inboxes::table
            .filter(inboxes::account_id.eq(account))
            .filter(inboxes::id.eq(inbox.as_uuid())),
    ))
    .get_result(conn)
    .await
}

/// A unique violation of the one-instance-per-inbox index becomes `InboxAlreadyLinked`.
fn link_conflict(err: DieselError) -> Fail {
    if let DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) = &err
        && info.constraint_name() == Some(ONE_INSTANCE_PER_INBOX)
    {
        return Fail::Domain(InboxError::InboxAlreadyLinked);
    }
    Fail::from(err)
}

/// One history entry to write.
struct HistoryEntry<'a> {
    account: i64,
    instance: InstanceId,
    state: HealthState,
    previous: Option<HealthState>,
    reason: Option<&'a str>,
    latency_ms: Option<i64>,
    source: HealthSource,
    at: OffsetDateTime,
}

async fn insert_history(
    conn: &AsyncPgConnection,
    entry: &HistoryEntry<'_>,
) -> Result<(), DieselError> {
    let mut conn = conn;
    diesel::insert_into(instance_health_events::table)
        .values((
            instance_health_events::account_id.eq(entry.account),
            instance_health_events::id.eq(Uuid::now_v7()),
            instance_health_events::instance_id.eq(entry.instance.as_uuid()),
            instance_health_events::state.eq(entry.state.as_str()),
            instance_health_events::previous_state.eq(entry.previous.map(HealthState::as_str)),
            instance_health_events::reason.eq(entry.reason),
            instance_health_events::latency_ms.eq(entry.latency_ms),
            instance_health_events::source.eq(entry.source.as_str()),
            instance_health_events::created_at.eq(entry.at),
        ))
        .execute(&mut conn)
        .await
        .map(drop)
}

const INSERT_INSTANCE_SQL: &str = "
INSERT INTO provider_instances (account_id, id, provider_id, name, inbox_id, sealed_credentials,
                                credential_keys, webhook_token_hash)
VALUES ($1, $5, $6, $7, $8, $9, $10, $11)";

/// The instance insert that first takes its quota slot (`$1`-`$4` as in the slot update): no
/// slot, no row. One statement, so the quota costs the create no extra round trip. No row
/// also when the account has no counter row yet; the create then takes the slow path.
const INSERT_INSTANCE_WITH_SLOT_SQL: &str = concat!(
    "WITH slot AS (",
    claimed_slot_update!(),
    ")
INSERT INTO provider_instances (account_id, id, provider_id, name, inbox_id, sealed_credentials,
                                credential_keys, webhook_token_hash)
SELECT $1, $5, $6, $7, $8, $9, $10, $11 FROM slot"
);

/// Inserts `instance`, taking the slot of `claim` in the same statement when one is given
/// (see [`INSERT_INSTANCE_WITH_SLOT_SQL`]); the number of rows inserted.
async fn insert_instance(
    conn: &mut AsyncPgConnection,
    account: i64,
    instance: &NewInstance,
    claim: Option<&QuotaClaim>,
) -> Result<usize, Fail> {
    let (sealed, keys) = match &instance.credentials {
        Some(c) => (Some(c.sealed.as_str()), c.keys.as_slice()),
        None => (None, &[][..]),
    };
    let (sql, resource, period, limit) = match claim {
        Some(claim) => (
            INSERT_INSTANCE_WITH_SLOT_SQL,
            claim.resource.limit_key(),
            claim.period.as_str(),
            claim.limit,
        ),
        None => (INSERT_INSTANCE_SQL, "", "", None),
    };
    reusable(
        diesel::sql_query(sql)
            .bind::<BigInt, _>(account)
            .bind::<Text, _>(resource)
            .bind::<Text, _>(period)
            .bind::<Nullable<BigInt>, _>(limit)
            .bind::<SqlUuid, _>(instance.id.as_uuid())
            .bind::<SqlUuid, _>(instance.provider_id.as_uuid())
            .bind::<Text, _>(&instance.name)
            .bind::<Nullable<SqlUuid>, _>(instance.inbox_id.map(InboxId::as_uuid))
            .bind::<Nullable<Text>, _>(sealed)
            .bind::<Array<Text>, _>(keys)
            .bind::<Bytea, _>(&instance.webhook_token_hash),
    )
    .execute(conn)
    .await
    .map_err(link_conflict)
}

const INSERT_HEALTH_SQL: &str = "
INSERT INTO instance_health (account_id, instance_id, next_check_at) VALUES ($1, $2, $3)";

const UPDATE_PROVIDER_SQL: &str = "
UPDATE providers
   SET name = coalesce($3, name),
       base_url = coalesce($4, base_url),
       sealed_credentials = coalesce($5, sealed_credentials),
       credential_keys = coalesce($6, credential_keys)
 WHERE account_id = $1 AND id = $2 AND deleted_at IS NULL
RETURNING true AS flag";

const UPDATE_INSTANCE_SQL: &str = "
UPDATE provider_instances
   SET name = coalesce($4, name),
       inbox_id = CASE WHEN $5 THEN $6 ELSE inbox_id END,
       sealed_credentials = CASE WHEN $7 THEN $8 ELSE sealed_credentials END,
       credential_keys = CASE WHEN $7 THEN $9 ELSE credential_keys END
 WHERE account_id = $1 AND provider_id = $2 AND id = $3 AND deleted_at IS NULL
RETURNING true AS flag";

#[derive(QueryableByName)]
struct Tombstone {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    deleted_at: Option<OffsetDateTime>,
}

const LOCK_PROVIDER_SQL: &str = "
SELECT deleted_at FROM providers WHERE account_id = $1 AND id = $2 FOR UPDATE";

const LOCK_INSTANCE_SQL: &str = "
SELECT deleted_at FROM provider_instances
 WHERE account_id = $1 AND provider_id = $2 AND id = $3 FOR UPDATE";

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

const DELETE_PROVIDER_INSTANCES_SQL: &str = "
UPDATE provider_instances SET deleted_at = $3
 WHERE account_id = $1 AND provider_id = $2 AND deleted_at IS NULL
RETURNING id";

const DELETE_HEALTH_SQL: &str = "
DELETE FROM instance_health WHERE account_id = $1 AND instance_id = ANY($2)";

#[derive(QueryableByName)]
struct HistoryRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Nullable<Text>)]
    previous_state: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    reason: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    latency_ms: Option<i64>,
    #[diesel(sql_type = Text)]
    source: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: OffsetDateTime,
}

impl HistoryRow {
    fn into_change(self) -> Result<HealthChange, TxError> {
        Ok(HealthChange {
            id: self.id,
            state: parse_state(&self.state)?,
            previous_state: self
                .previous_state
                .as_deref()
                .map(parse_state)
                .transpose()?,
            reason: self.reason,
            latency_ms: self.latency_ms,
            source: HealthSource::parse(&self.source).ok_or_else(|| {
                TxError::Corrupt(format!("unknown health source `{}`", self.source))
            })?,
            at: self.created_at,
        })
    }
}

const HISTORY_SQL: &str = "
SELECT id, state, previous_state, reason, latency_ms, source, created_at
  FROM instance_health_events
 WHERE account_id = $1 AND instance_id = $2 AND ($3::uuid IS NULL OR id < $3)
 ORDER BY id DESC
 LIMIT $4";

#[derive(QueryableByName)]
struct SnapshotRow {
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    checked_at: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<BigInt>)]
    latency_ms: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    reason: Option<String>,
    #[diesel(sql_type = Integer)]
    consecutive_failures: i32,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_event_at: Option<OffsetDateTime>,
    #[diesel(sql_type = BigInt)]
    version: i64,
}

impl SnapshotRow {
    fn into_snapshot(self) -> Result<HealthSnapshot, TxError> {
        Ok(HealthSnapshot {
            health: InstanceHealth {
                state: parse_state(&self.state)?,
                checked_at: self.checked_at,
                latency_ms: self.latency_ms,
                reason: self.reason,
            },
            consecutive_failures: self.consecutive_failures,
            last_event_at: self.last_event_at,
            version: self.version,
        })
    }
}

const SNAPSHOT_SQL: &str = "
SELECT state, checked_at, latency_ms, reason, consecutive_failures, last_event_at, version
  FROM instance_health WHERE account_id = $1 AND instance_id = $2";

const RECORD_EVENT_SQL: &str = "
UPDATE instance_health
   SET last_event_at = $3, last_event_type = $4, version = version + 1
 WHERE account_id = $1 AND instance_id = $2
RETURNING state, checked_at, latency_ms, reason, consecutive_failures, last_event_at, version";

#[derive(QueryableByName)]
struct LockedHealth {
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = BigInt)]
    version: i64,
    #[diesel(sql_type = SqlUuid)]
    provider_id: Uuid,
}

const LOCK_HEALTH_SQL: &str = "
SELECT h.state, h.version, i.provider_id
  FROM instance_health h
  JOIN provider_instances i ON i.account_id = h.account_id AND i.id = h.instance_id
 WHERE h.account_id = $1 AND h.instance_id = $2
   FOR UPDATE OF h";

const SAVE_HEALTH_SQL: &str = "
UPDATE instance_health
   SET state = $3, checked_at = $4, latency_ms = $5, reason = $6, consecutive_failures = $7,
       version = version + 1
 WHERE account_id = $1 AND instance_id = $2";

#[derive(QueryableByName)]
struct TargetRow {
    #[diesel(sql_type = BigInt)]
    account_id: i64,
    #[diesel(sql_type = SqlUuid)]
    instance_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    provider_id: Uuid,
    #[diesel(sql_type = Text)]
    provider_type: String,
    #[diesel(sql_type = Text)]
    base_url: String,
    #[diesel(sql_type = Text)]
    provider_credentials: String,
    #[diesel(sql_type = Text)]
    instance_name: String,
    #[diesel(sql_type = Nullable<Text>)]
    instance_credentials: Option<String>,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    checked_at: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<BigInt>)]
    latency_ms: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    reason: Option<String>,
    #[diesel(sql_type = Integer)]
    consecutive_failures: i32,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_event_at: Option<OffsetDateTime>,
    #[diesel(sql_type = BigInt)]
    version: i64,
}

impl TargetRow {
    fn into_target(self) -> Result<ProbeTarget, TxError> {
        Ok(ProbeTarget {
            account_id: AccountId::new(self.account_id),
            provider_id: ProviderId::from_uuid(self.provider_id),
            instance_id: InstanceId::from_uuid(self.instance_id),
            provider_type: parse_type(&self.provider_type)?,
            base_url: self.base_url,
            provider_credentials: self.provider_credentials,
            instance_name: self.instance_name,
            instance_credentials: self.instance_credentials,
            snapshot: HealthSnapshot {
                health: InstanceHealth {
                    state: parse_state(&self.state)?,
                    checked_at: self.checked_at,
                    latency_ms: self.latency_ms,
                    reason: self.reason,
                },
                consecutive_failures: self.consecutive_failures,
                last_event_at: self.last_event_at,
                version: self.version,
            },
        })
    }
}

const PROBE_TARGET_SQL: &str = "
SELECT i.account_id, i.id AS instance_id, i.provider_id, p.provider_type, p.base_url,
       p.sealed_credentials AS provider_credentials, i.name AS instance_name,
       i.sealed_credentials AS instance_credentials,
       h.state, h.checked_at, h.latency_ms, h.reason, h.consecutive_failures, h.last_event_at,
       h.version
  FROM provider_instances i
  JOIN providers p ON p.account_id = i.account_id AND p.id = i.provider_id
                  AND p.deleted_at IS NULL
  JOIN instance_health h ON h.account_id = i.account_id AND h.instance_id = i.id
 WHERE i.account_id = $1 AND i.provider_id = $2 AND i.id = $3 AND i.deleted_at IS NULL";

/// Claims due instances across accounts (skipping rows another scheduler holds) and moves
/// their next probe to `now + interval ± jitter`.
const CLAIM_DUE_SQL: &str = "
WITH due AS (
    SELECT account_id, instance_id FROM instance_health
     WHERE next_check_at <= $1
     ORDER BY next_check_at
     LIMIT $4
       FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE instance_health h
       SET next_check_at = $1 + (($2::float8 + (random() * 2 - 1) * $3::float8)
                                 * interval '1 millisecond')
      FROM due
     WHERE h.account_id = due.account_id AND h.instance_id = due.instance_id
    RETURNING h.account_id, h.instance_id, h.state, h.checked_at, h.latency_ms, h.reason,
              h.consecutive_failures, h.last_event_at, h.version
)
SELECT c.account_id, c.instance_id, i.provider_id, p.provider_type, p.base_url,
       p.sealed_credentials AS provider_credentials, i.name AS instance_name,
       i.sealed_credentials AS instance_credentials,
       c.state, c.checked_at, c.latency_ms, c.reason, c.consecutive_failures, c.last_event_at,
       c.version
  FROM claimed c
  JOIN provider_instances i ON i.account_id = c.account_id AND i.id = c.instance_id
  JOIN providers p ON p.account_id = i.account_id AND p.id = i.provider_id";

#[derive(QueryableByName)]
struct WebhookRow {
    #[diesel(sql_type = BigInt)]
    account_id: i64,
    #[diesel(sql_type = SqlUuid)]
    provider_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    provider_type: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Bytea)]
    webhook_token_hash: Vec<u8>,
}

const WEBHOOK_TARGET_SQL: &str = "
SELECT i.account_id, i.provider_id, i.id, p.provider_type, i.name, i.webhook_token_hash
  FROM provider_instances i
  JOIN providers p ON p.account_id = i.account_id AND p.id = i.provider_id
                  AND p.deleted_at IS NULL
 WHERE i.id = $1 AND i.deleted_at IS NULL";

/// The audit row of a health transition: always the Hub itself observing it.
fn health_audit_row(
    account: AccountId,
    transition: &HealthTransition,
    audit: &AuditContext,
) -> crate::iam::NewAudit {
    let (actor_type, actor_id) = actor_columns(&Actor::System);
    AuditEvent {
        actor_type,
        actor_id,
        action: "provider.health_changed",
        target: Some(format!("provider_instance:{}", transition.instance_id)),
        metadata: json!({
            "provider_id": transition.provider_id.to_string(),
            "instance_id": transition.instance_id.to_string(),
            "from": transition.from.as_str(),
            "to": transition.to.as_str(),
            "reason": transition.reason,
            "source": transition.source.as_str(),
        }),
        audit,
        at: transition.at,
    }
    .row(Some(account))
}

#[async_trait]
impl ProviderStore for PgProviderStore {
    async fn create_provider(
        &self,
        scope: &TenantScope,
        provider: &NewProvider,
        audit: &AuditContext,
    ) -> Result<Provider, InboxError> {
        use crate::schema::providers;
        let account = scope.account_id().get();
        let mut conn = self.pool.get().await.map_err(pool_inbox_error)?;
        conn.transaction::<_, Fail, _>(async |conn| {
            diesel::insert_into(providers::table)
                .values((
                    providers::account_id.eq(account),
                    providers::id.eq(provider.id.as_uuid()),
                    providers::provider_type.eq(provider.provider_type.as_str()),
                    providers::name.eq(&provider.name),
                    providers::base_url.eq(&provider.base_url),
                    providers::sealed_credentials.eq(&provider.sealed_credentials),
                    providers::credential_keys.eq(&provider.credential_keys),
                ))
                .execute(conn)
                .await?;
            audit_and_take_slot(
                conn,
                account,
                audit_row(
                    scope,
                    "provider.created",
                    format!("provider:{}", provider.id),
                    json!({
                        "type": provider.provider_type.as_str(),
                        "name": provider.name,
                        "credential_keys": provider.credential_keys,
                    }),
                    audit,
                ),
                provider.quota.as_ref(),
            )
            .await?;
            load_provider(conn, account, provider.id)
                .await?
                .ok_or_else(|| Fail::Tx(TxError::Corrupt("the new provider is missing".into())))
        })
        .await
        .map_err(|e| e.into_inbox("create provider"))
    }

    async fn list_providers(
        &self,
        scope: &TenantScope,
        after: Option<ProviderId>,
        limit: Limit,
    ) -> Result<Paged<Provider>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows = load_providers(
            &mut conn,
            scope.account_id().get(),
            None,
            after.map(ProviderId::as_uuid),
            page_plus_one(limit),
        )
        .await
        .map_err(|e| e.into_store("list providers"))?;
        Ok(Paged::from_rows(rows, limit_of(limit), |p: &Provider| {
            p.id.as_uuid()
        }))
    }

    async fn provider(&self, scope: &TenantScope, id: ProviderId) -> Result<Provider, InboxError> {
        let mut conn = self.pool.get().await.map_err(pool_inbox_error)?;
        load_provider(&mut conn, scope.account_id().get(), id)
            .await
            .map_err(|e| InboxError::from(e.into_store("read provider")))?
            .ok_or(InboxError::ProviderNotFound)
    }

    async fn provider_type(
        &self,
        scope: &TenantScope,
        id: ProviderId,
    ) -> Result<ProviderType, InboxError> {
        use crate::schema::providers;
        let mut conn = self.pool.get().await.map_err(pool_inbox_error)?;
        let found: Option<String> = providers::table
            .filter(providers::account_id.eq(scope.account_id().get()))
            .filter(providers::id.eq(id.as_uuid()))
            .filter(providers::deleted_at.is_null())
            .select(providers::provider_type)
            .first(&mut conn)
            .await
            .optional()
            .map_err(inbox_db_error("read provider type"))?;
        let text = found.ok_or(InboxError::ProviderNotFound)?;
        text.parse()
            .map_err(|_| InboxError::Internal(format!("unknown stored provider type `{text}`")))
    }

    async fn update_provider(
        &self,
        scope: &TenantScope,
        id: ProviderId,
        changes: &ProviderChanges,
        audit: &AuditContext,
    ) -> Result<Provider, InboxError> {
        let account = scope.account_id().get();
        let mut fields = Vec::new();
        if changes.name.is_some() {
            fields.push("name");
        }
        if changes.base_url.is_some() {
            fields.push("base_url");
        }
        if changes.credentials.is_some() {
            fields.push("credentials");
        }
        let mut conn = self.pool.get().await.map_err(pool_inbox_error)?;
        conn.transaction::<_, Fail, _>(async |conn| {
            let updated: Option<Flag> = diesel::sql_query(UPDATE_PROVIDER_SQL)
                .bind::<BigInt, _>(account)
                .bind::<SqlUuid, _>(id.as_uuid())
                .bind::<Nullable<Text>, _>(changes.name.as_deref())
                .bind::<Nullable<Text>, _>(changes.base_url.as_deref())
                .bind::<Nullable<Text>, _>(changes.credentials.as_ref().map(|c| c.sealed.as_str()))
                .bind::<Nullable<Array<Text>>, _>(changes.credentials.as_ref().map(|c| &c.keys))
                .get_result(conn)
                .await
                .optional()?;
            if updated.is_none() {
                return Err(Fail::Domain(InboxError::ProviderNotFound));
            }
            insert_audit(
                conn,
                &[audit_row(
                    scope,
                    "provider.updated",
                    format!("provider:{id}"),
                    json!({ "fields": fields }),
                    audit,
                )],
            )
            .await?;
            load_provider(conn, account, id)
                .await?
                .ok_or(Fail::Domain(InboxError::ProviderNotFound))
        })
        .await
        .map_err(|e| e.into_inbox("update provider"))
    }

    async fn delete_provider(
        &self,
        scope: &TenantScope,
        id: ProviderId,
        audit: &AuditContext,
    ) -> Result<Deleted, InboxError> {
        use crate::schema::providers;
        let account = scope.account_id().get();
        let mut conn = self.pool.get().await.map_err(pool_inbox_error)?;
        conn.transaction::<_, Fail, _>(async |conn| {
            let found: Option<Tombstone> = diesel::sql_query(LOCK_PROVIDER_SQL)
                .bind::<BigInt, _>(account)
                .bind::<SqlUuid, _>(id.as_uuid())
                .get_result(conn)
                .await
                .optional()?;
            match found {
                None => return Err(Fail::Domain(InboxError::ProviderNotFound)),
                Some(Tombstone {
                    deleted_at: Some(_),
                }) => {
                    return Ok(Deleted {
                        now: false,
                        instances: 0,
                    });
                }
                Some(_) => {}
            }
            let now = OffsetDateTime::now_utc();
            diesel::update(
                providers::table
                    .filter(providers::account_id.eq(account))
                    .filter(providers::id.eq(id.as_uuid())),
            )
            .set(providers::deleted_at.eq(now))
            .execute(conn)
            .await?;
            let instances: Vec<IdRow> = diesel::sql_query(DELETE_PROVIDER_INSTANCES_SQL)
                .bind::<BigInt, _>(account)
                .bind::<SqlUuid, _>(id.as_uuid())
                .bind::<Timestamptz, _>(now)
                .load(conn)
                .await?;
            let ids: Vec<Uuid> = instances.iter().map(|r| r.id).collect();
            diesel::sql_query(DELETE_HEALTH_SQL)
                .bind::<BigInt, _>(account)
                .bind::<Array<SqlUuid>, _>(&ids)
                .execute(conn)
                .await?;
            insert_audit(
                conn,
                &[audit_row(
                    scope,
                    "provider.deleted",
                    format!("provider:{id}"),
                    json!({ "instances_deleted": ids.len() }),
                    audit,
                )],
            )
            .await?;
            Ok(Deleted {
                now: true,
                instances: i64::try_from(ids.len()).unwrap_or(i64::MAX),
            })
        })
        .await
        .map_err(|e| e.into_inbox("delete provider"))
    }

    async fn create_instance(
        &self,
        scope: &TenantScope,
        instance: &NewInstance,
        audit: &AuditContext,
    ) -> Result<ProviderInstance, InboxError> {
        let account = scope.account_id().get();
        let mut conn = self.pool.get().await.map_err(pool_inbox_error)?;
        conn.transaction::<_, Fail, _>(async |conn| {
            if !lock_live_provider(conn, account, instance.provider_id).await? {
                return Err(Fail::Domain(InboxError::ProviderNotFound));
            }
            if let Some(inbox) = instance.inbox_id
                && !inbox_exists(conn, account, inbox).await?
            {
                return Err(Fail::Domain(InboxError::InboxNotFound));
            }
            let claim = instance.quota.as_ref();
            // Only the insert with a slot can insert nothing: no counter row yet, or the limit
            // is reached. The upsert tells the two apart.
            if insert_instance(conn, account, instance, claim).await? == 0
                && let Some(claim) = claim
            {
                if let ReserveOutcome::Exceeded { used, limit } =
                    take_missing_or_refused_slot(conn, account, claim).await?
                {
                    return Err(Fail::Domain(InboxError::Entitlement(
                        claim.exceeded(used, limit),
                    )));
                }
                insert_instance(conn, account, instance, None).await?;
            }
            // The row exists: its health, first history entry, audit row and read-back go
            // in one pipelined round trip (the slot's counter row stays locked until the
            // commit, so keeping this short keeps concurrent creates of the account moving).
            let shared: &AsyncPgConnection = conn;
            let health = async {
                let mut conn = shared;
                reusable(
                    diesel::sql_query(INSERT_HEALTH_SQL)
                        .bind::<BigInt, _>(account)
                        .bind::<SqlUuid, _>(instance.id.as_uuid())
                        .bind::<Timestamptz, _>(instance.first_check_at),
                )
                .execute(&mut conn)
                .await
            };
            let entry = HistoryEntry {
                account,
                instance: instance.id,
                state: HealthState::Unknown,
                previous: None,
                reason: Some("created"),
                latency_ms: None,
                source: HealthSource::Created,
                at: OffsetDateTime::now_utc(),
            };
            let rows = [audit_row(
                scope,
                "provider_instance.created",
                format!("provider_instance:{}", instance.id),
                json!({
                    "provider_id": instance.provider_id.to_string(),
                    "name": instance.name,
                    "inbox_id": instance.inbox_id.map(|i| i.to_string()),
                }),
                audit,
            )];
            let (health, history, audited, loaded) = tokio::join!(
                health,
                insert_history(shared, &entry),
                insert_audit(shared, &rows),
                load_instance(shared, account, instance.provider_id, instance.id)
            );
            health?;
            history?;
            audited?;
            loaded?.ok_or_else(|| Fail::Tx(TxError::Corrupt("the new instance is missing".into())))
        })
        .await
        .map_err(|e| e.into_inbox("create instance"))
    }

    async fn list_instances(
        &self,
        scope: &TenantScope,
        provider: ProviderId,
        after: Option<InstanceId>,
        limit: Limit,
    ) -> Result<Paged<ProviderInstance>, InboxError> {
        let account = scope.account_id().get();
        let mut conn = self.pool.get().await.map_err(pool_inbox_error)?;
        let exists = load_provider(&mut conn, account, provider)
            .await
            .map_err(|e| InboxError::from(e.into_store("read provider")))?
            .is_some();
        if !exists {
            return Err(InboxError::ProviderNotFound);
        }
        let rows = load_instances(
            &mut conn,
            account,
            provider,
            None,
            after.map(InstanceId::as_uuid),
            page_plus_one(limit),
        )
        .await
        .map_err(|e| InboxError::from(e.into_store("list instances")))?;
        Ok(Paged::from_rows(
            rows,
            limit_of(limit),
            |i: &ProviderInstance| i.id.as_uuid(),
        ))
    }

    async fn instance(
        &self,
        scope: &TenantScope,
        provider: ProviderId,
        id: InstanceId,
    ) -> Result<ProviderInstance, InboxError> {
        let conn = self.pool.get().await.map_err(pool_inbox_error)?;
        load_instance(&conn, scope.account_id().get(), provider, id)
            .await
            .map_err(|e| InboxError::from(e.into_store("read instance")))?
            .ok_or(InboxError::InstanceNotFound)
    }

    async fn update_instance(
        &self,
        scope: &TenantScope,
        provider: ProviderId,
        id: InstanceId,
        changes: &InstanceChanges,
        audit: &AuditContext,
    ) -> Result<ProviderInstance, InboxError> {
        let account = scope.account_id().get();
        let mut fields = Vec::new();
        if changes.name.is_some() {
            fields.push("name");
        }
        if changes.inbox_id.is_some() {
            fields.push("inbox_id");
        }
        if changes.credentials.is_some() {
            fields.push("credentials");
        }
        let set_credentials = changes.credentials.is_some();
        let (sealed, keys) = match &changes.credentials {
            Some(Some(c)) => (Some(c.sealed.as_str()), c.keys.clone()),
            _ => (None, Vec::new()),
        };
        let mut conn = self.pool.get().await.map_err(pool_inbox_error)?;
        conn.transaction::<_, Fail, _>(async |conn| {
            if !lock_live_provider(conn, account, provider).await? {
                return Err(Fail::Domain(InboxError::InstanceNotFound));
            }
            if let Some(Some(inbox)) = changes.inbox_id
                && !inbox_exists(conn, account, inbox).await?
            {
                return Err(Fail::Domain(InboxError::InboxNotFound));
            }
            let updated: Option<Flag> = diesel::sql_query(UPDATE_INSTANCE_SQL)
                .bind::<BigInt, _>(account)
                .bind::<SqlUuid, _>(provider.as_uuid())
                .bind::<SqlUuid, _>(id.as_uuid())
                .bind::<Nullable<Text>, _>(changes.name.as_deref())
                .bind::<Bool, _>(changes.inbox_id.is_some())
                .bind::<Nullable<SqlUuid>, _>(changes.inbox_id.flatten().map(InboxId::as_uuid))
                .bind::<Bool, _>(set_credentials)
                .bind::<Nullable<Text>, _>(sealed)
                .bind::<Array<Text>, _>(&keys)
                .get_result(conn)
                .await
                .optional()
                .map_err(link_conflict)?;
            if updated.is_none() {
                return Err(Fail::Domain(InboxError::InstanceNotFound));
            }
            insert_audit(
                conn,
                &[audit_row(
                    scope,
                    "provider_instance.updated",
                    format!("provider_instance:{id}"),
                    json!({ "fields": fields }),
                    audit,
                )],
            )
            .await?;
            load_instance(conn, account, provider, id)
                .await?
                .ok_or(Fail::Domain(InboxError::InstanceNotFound))
        })
        .await
        .map_err(|e| e.into_inbox("update instance"))
    }

    async fn delete_instance(
        &self,
        scope: &TenantScope,
        provider: ProviderId,
        id: InstanceId,
        audit: &AuditContext,
    ) -> Result<Deleted, InboxError> {
        use crate::schema::provider_instances;
        let account = scope.account_id().get();
        let mut conn = self.pool.get().await.map_err(pool_inbox_error)?;
        conn.transaction::<_, Fail, _>(async |conn| {
            let found: Option<Tombstone> = diesel::sql_query(LOCK_INSTANCE_SQL)
                .bind::<BigInt, _>(account)
                .bind::<SqlUuid, _>(provider.as_uuid())
                .bind::<SqlUuid, _>(id.as_uuid())
                .get_result(conn)
                .await
                .optional()?;
            match found {
                None => return Err(Fail::Domain(InboxError::InstanceNotFound)),
                Some(Tombstone {
                    deleted_at: Some(_),
                }) => {
                    return Ok(Deleted {
                        now: false,
                        instances: 0,
                    });
                }
                Some(_) => {}
            }
            diesel::update(
                provider_instances::table
                    .filter(provider_instances::account_id.eq(account))
                    .filter(provider_instances::id.eq(id.as_uuid())),
            )
            .set(provider_instances::deleted_at.eq(OffsetDateTime::now_utc()))
            .execute(conn)
            .await?;
            diesel::sql_query(DELETE_HEALTH_SQL)
                .bind::<BigInt, _>(account)
                .bind::<Array<SqlUuid>, _>(vec![id.as_uuid()])
                .execute(conn)
                .await?;
            insert_audit(
                conn,
                &[audit_row(
                    scope,
                    "provider_instance.deleted",
                    format!("provider_instance:{id}"),
                    json!({ "provider_id": provider.to_string() }),
                    audit,
                )],
            )
            .await?;
            Ok(Deleted {
                now: true,
                instances: 1,
            })
        })
        .await
        .map_err(|e| e.into_inbox("delete instance"))
    }

    async fn health_history(
        &self,
        scope: &TenantScope,
        provider: ProviderId,
        id: InstanceId,
        before: Option<Uuid>,
        limit: Limit,
    ) -> Result<Paged<HealthChange>, InboxError> {
        let account = scope.account_id().get();
        let mut conn = self.pool.get().await.map_err(pool_inbox_error)?;
        let live = load_instance(&conn, account, provider, id)
            .await
            .map_err(|e| InboxError::from(e.into_store("read instance")))?
            .is_some();
        if !live {
            return Err(InboxError::InstanceNotFound);
        }
        let rows: Vec<HistoryRow> = diesel::sql_query(HISTORY_SQL)
            .bind::<BigInt, _>(account)
            .bind::<SqlUuid, _>(id.as_uuid())
            .bind::<Nullable<SqlUuid>, _>(before)
            .bind::<BigInt, _>(page_plus_one(limit))
            .load(&mut conn)
            .await
            .map_err(inbox_db_error("read health history"))?;
        let changes = rows
            .into_iter()
            .map(HistoryRow::into_change)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| InboxError::from(e.into_store("read health history")))?;
        Ok(Paged::from_rows(
            changes,
            limit_of(limit),
            |c: &HealthChange| c.id,
        ))
    }

    async fn probe_target(
        &self,
        scope: &TenantScope,
        provider: ProviderId,
        id: InstanceId,
    ) -> Result<ProbeTarget, InboxError> {
        let mut conn = self.pool.get().await.map_err(pool_inbox_error)?;
        let row: Option<TargetRow> = diesel::sql_query(PROBE_TARGET_SQL)
            .bind::<BigInt, _>(scope.account_id().get())
            .bind::<SqlUuid, _>(provider.as_uuid())
            .bind::<SqlUuid, _>(id.as_uuid())
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(inbox_db_error("read probe target"))?;
        row.ok_or(InboxError::InstanceNotFound)?
            .into_target()
            .map_err(|e| InboxError::from(e.into_store("read probe target")))
    }

    async fn health_snapshot(
        &self,
        scope: &TenantScope,
        id: InstanceId,
    ) -> Result<HealthSnapshot, InboxError> {
        let mut conn = self.pool.get().await.map_err(pool_inbox_error)?;
        let row: Option<SnapshotRow> = diesel::sql_query(SNAPSHOT_SQL)
            .bind::<BigInt, _>(scope.account_id().get())
            .bind::<SqlUuid, _>(id.as_uuid())
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(inbox_db_error("read health"))?;
        row.ok_or(InboxError::InstanceNotFound)?
            .into_snapshot()
            .map_err(|e| InboxError::from(e.into_store("read health")))
    }

    async fn save_health(
        &self,
        scope: &TenantScope,
        id: InstanceId,
        expected_version: i64,
        update: &HealthUpdate,
    ) -> Result<HealthSaved, InboxError> {
        let account = scope.account_id();
        let mut conn = self.pool.get().await.map_err(pool_inbox_error)?;
        conn.transaction::<_, Fail, _>(async |conn| {
            let locked: Option<LockedHealth> = diesel::sql_query(LOCK_HEALTH_SQL)
                .bind::<BigInt, _>(account.get())
                .bind::<SqlUuid, _>(id.as_uuid())
                .get_result(conn)
                .await
                .optional()?;
            let Some(locked) = locked else {
                return Err(Fail::Domain(InboxError::InstanceNotFound));
            };
            if locked.version != expected_version {
                return Ok(HealthSaved::Conflict);
            }
            let health = &update.health;
            diesel::sql_query(SAVE_HEALTH_SQL)
                .bind::<BigInt, _>(account.get())
                .bind::<SqlUuid, _>(id.as_uuid())
                .bind::<Text, _>(health.state.as_str())
                .bind::<Nullable<Timestamptz>, _>(health.checked_at)
                .bind::<Nullable<BigInt>, _>(health.latency_ms)
                .bind::<Nullable<Text>, _>(health.reason.as_deref())
                .bind::<Integer, _>(update.consecutive_failures)
                .execute(conn)
                .await?;
            let previous = parse_state(&locked.state)?;
            if previous == health.state {
                return Ok(HealthSaved::Unchanged);
            }
            let at = health.checked_at.unwrap_or_else(OffsetDateTime::now_utc);
            insert_history(
                conn,
                &HistoryEntry {
                    account: account.get(),
                    instance: id,
                    state: health.state,
                    previous: Some(previous),
                    reason: health.reason.as_deref(),
                    latency_ms: health.latency_ms,
                    source: update.source,
                    at,
                },
            )
            .await?;
            let transition = HealthTransition {
                account_id: account,
                provider_id: ProviderId::from_uuid(locked.provider_id),
                instance_id: id,
                from: previous,
                to: health.state,
                reason: health.reason.clone(),
                source: update.source,
                at,
            };
            insert_audit(
                conn,
                &[health_audit_row(
                    account,
                    &transition,
                    &AuditContext::default(),
                )],
            )
            .await?;
            Ok(HealthSaved::Changed(transition))
        })
        .await
        .map_err(|e| e.into_inbox("save health"))
    }

    async fn record_event(
        &self,
        scope: &TenantScope,
        id: InstanceId,
        event: &str,
        at: OffsetDateTime,
    ) -> Result<HealthSnapshot, InboxError> {
        let mut conn = self.pool.get().await.map_err(pool_inbox_error)?;
        let row: Option<SnapshotRow> = diesel::sql_query(RECORD_EVENT_SQL)
            .bind::<BigInt, _>(scope.account_id().get())
            .bind::<SqlUuid, _>(id.as_uuid())
            .bind::<Timestamptz, _>(at)
            .bind::<Text, _>(event)
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(inbox_db_error("record provider event"))?;
        row.ok_or(InboxError::InstanceNotFound)?
            .into_snapshot()
            .map_err(|e| InboxError::from(e.into_store("record provider event")))
    }

    async fn claim_due(
        &self,
        _scope: &PlatformScope,
        now: OffsetDateTime,
        interval_ms: i64,
        jitter_ms: i64,
        limit: i64,
    ) -> Result<Vec<ProbeTarget>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<TargetRow> = diesel::sql_query(CLAIM_DUE_SQL)
            .bind::<Timestamptz, _>(now)
            .bind::<BigInt, _>(interval_ms)
            .bind::<BigInt, _>(jitter_ms)
            .bind::<BigInt, _>(limit)
            .load(&mut conn)
            .await
            .map_err(store_error("claim due instances"))?;
        rows.into_iter()
            .map(TargetRow::into_target)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.into_store("claim due instances"))
    }

    async fn webhook_target(
        &self,
        _scope: &PlatformScope,
        id: InstanceId,
    ) -> Result<Option<WebhookTarget>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let row: Option<WebhookRow> = diesel::sql_query(WEBHOOK_TARGET_SQL)
            .bind::<SqlUuid, _>(id.as_uuid())
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(store_error("read webhook target"))?;
        row.map(|r| {
            Ok(WebhookTarget {
                account_id: AccountId::new(r.account_id),
                provider_id: ProviderId::from_uuid(r.provider_id),
                instance_id: InstanceId::from_uuid(r.id),
                provider_type: parse_type(&r.provider_type)?,
                instance_name: r.name,
                token_hash: r.webhook_token_hash,
            })
        })
        .transpose()
        .map_err(|e: TxError| e.into_store("read webhook target"))
    }
}
