//! PostgreSQL adapters of the tenancy ports: [`MemberRepository`], [`AuditLog`] and
//! [`AccountDirectory`]. Every query on a tenant table starts from the scope's account.

use async_trait::async_trait;
use diesel::dsl::{Eq as SqlEq, Filter};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sql_types::{BigInt, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;
use whatpro_iam::{PlatformScope, Role, StoreError, TenantScope};
use whatpro_kernel::{AccountId, Limit, UserId};
use whatpro_tenancy::{
    AccountDirectory, AccountSummary, AuditActor, AuditEntry, AuditLog, AuditQuery, Member,
    MemberPage, MemberRepository, RoleChange, TenancyError,
};

use crate::Pool;
use crate::iam::{
    AuditEvent, TxError, actor_columns, db_error, insert_audit, notify, parse_chatwoot_role,
    parse_role, parse_status, pool_error, user_payload,
};
use crate::iam_cache::IamInvalidator;
use crate::schema::{account_members, audit_log, users};

/// The member rows of the scope's account: every member query starts here.
fn members_of(
    scope: &TenantScope,
) -> Filter<account_members::table, SqlEq<account_members::account_id, i64>> {
    account_members::table.filter(account_members::account_id.eq(scope.account_id().get()))
}

/// The audit rows of the scope's account: every audit query starts here.
fn audit_of(scope: &TenantScope) -> Filter<audit_log::table, SqlEq<audit_log::account_id, i64>> {
    audit_log::table.filter(audit_log::account_id.eq(scope.account_id().get()))
}

/// One page size plus the extra row that tells whether more exist.
fn page_plus_one(limit: Limit) -> i64 {
    i64::from(limit.get()) + 1
}

type MemberTuple = (
    i64,
    String,
    String,
    String,
    String,
    OffsetDateTime,
    OffsetDateTime,
);

fn member_from(row: MemberTuple) -> Result<Member, TxError> {
    let (user_id, email, name, role, chatwoot_role, created_at, updated_at) = row;
    Ok(Member {
        user_id: UserId::new(user_id),
        email,
        name,
        role: parse_role(&role)?,
        chatwoot_role: parse_chatwoot_role(&chatwoot_role)?,
        created_at,
        updated_at,
    })
}

/// Selected columns of a member with their user.
type MemberColumns = (
    account_members::user_id,
    users::email,
    users::name,
    account_members::role,
    account_members::chatwoot_role,
    account_members::created_at,
    account_members::updated_at,
);

const MEMBER_COLUMNS: MemberColumns = (
    account_members::user_id,
    users::email,
    users::name,
    account_members::role,
    account_members::chatwoot_role,
    account_members::created_at,
    account_members::updated_at,
);

async fn load_member(
    conn: &mut AsyncPgConnection,
    scope: &TenantScope,
    user: UserId,
) -> Result<Option<Member>, TxError> {
    let row: Option<MemberTuple> = members_of(scope)
        .inner_join(users::table)
        .filter(account_members::user_id.eq(user.get()))
        .select(MEMBER_COLUMNS)
        .first(conn)
        .await
        .optional()?;
    row.map(member_from).transpose()
}

/// Why a role change did not happen.
enum ChangeFailure {
    Tx(TxError),
    NotFound,
    LastAdmin,
}

impl From<DieselError> for ChangeFailure {
    fn from(err: DieselError) -> Self {
        ChangeFailure::Tx(TxError::Db(err))
    }
}

impl From<TxError> for ChangeFailure {
    fn from(err: TxError) -> Self {
        ChangeFailure::Tx(err)
    }
}

/// [`MemberRepository`] over PostgreSQL. With an [`IamInvalidator`], a role change also drops
/// the local cached principal at once (other instances learn through `pg_notify`).
#[derive(Clone)]
pub struct PgMemberRepository {
    pool: Pool,
    invalidator: Option<IamInvalidator>,
}

impl std::fmt::Debug for PgMemberRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgMemberRepository").finish_non_exhaustive()
    }
}

impl PgMemberRepository {
    /// A repository on `pool`.
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            invalidator: None,
        }
    }

    /// Also drops the changed user's principal from this instance's identity cache.
    #[must_use]
    pub fn with_invalidator(mut self, invalidator: IamInvalidator) -> Self {
        self.invalidator = Some(invalidator);
        self
    }
}

#[async_trait]
impl MemberRepository for PgMemberRepository {
    async fn list(
        &self,
        scope: &TenantScope,
        after: Option<UserId>,
        limit: Limit,
    ) -> Result<MemberPage, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<MemberTuple> = members_of(scope)
            .inner_join(users::table)
            .filter(account_members::user_id.gt(after.map_or(i64::MIN, UserId::get)))
            .order(account_members::user_id.asc())
            .limit(page_plus_one(limit))
            .select(MEMBER_COLUMNS)
            .load(&mut conn)
            .await
            .map_err(|e| db_error("list members", &e))?;
        let mut members = rows
            .into_iter()
            .map(member_from)
            .collect::<Result<Vec<_>, TxError>>()
            .map_err(|e| e.into_store("list members"))?;
        let more = members.len() > usize::from(limit.get());
        members.truncate(usize::from(limit.get()));
        let next_after = if more {
            members.last().map(|m| m.user_id)
        } else {
            None
        };
        Ok(MemberPage {
            members,
            next_after,
        })
    }

    async fn change_role(
        &self,
        scope: &TenantScope,
        change: &RoleChange,
    ) -> Result<Member, TenancyError> {
        let target = change.user_id;
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| TenancyError::from(pool_error(e)))?;
        let result = conn
            .transaction::<_, ChangeFailure, _>(async |conn| {
                // Lock every member row of the account: concurrent changes serialise here, so
                // the last-admin check cannot be raced.
                let rows: Vec<(i64, String)> = members_of(scope)
                    .select((account_members::user_id, account_members::role))
                    .order(account_members::user_id.asc())
                    .for_update()
                    .load(conn)
                    .await?;
                let Some((_, current)) = rows.iter().find(|(user, _)| *user == target.get()) else {
                    return Err(ChangeFailure::NotFound);
                };
                let from = parse_role(current)?;
                if from != change.role {
                    if from == Role::Admin {
                        let admins = rows
                            .iter()
                            .filter(|(_, role)| role == Role::Admin.as_str())
                            .count();
                        if admins <= 1 {
                            return Err(ChangeFailure::LastAdmin);
                        }
                    }
                    diesel::update(
                        members_of(scope).filter(account_members::user_id.eq(target.get())),
                    )
                    .set((
                        account_members::role.eq(change.role.as_str()),
                        account_members::role_overridden.eq(true),
                    ))
                    .execute(conn)
                    .await?;
                    let (actor_type, actor_id) = actor_columns(scope.actor());
                    let event = AuditEvent {
                        actor_type,
                        actor_id,
                        action: "member.role_changed",
                        target: Some(format!("user:{target}")),
                        metadata: json!({ "from": from.as_str(), "to": change.role.as_str() }),
                        audit: &change.audit,
                        at: OffsetDateTime::now_utc(),
                    };
                    insert_audit(conn, &[event.row(Some(scope.account_id()))]).await?;
                    notify(conn, &user_payload(target)).await?;
                }
                load_member(conn, scope, target)
                    .await?
                    .ok_or(ChangeFailure::NotFound)
            })
            .await;
        if let Some(invalidator) = &self.invalidator {
            invalidator.user(target);
        }
        match result {
            Ok(member) => Ok(member),
            Err(ChangeFailure::NotFound) => Err(TenancyError::MemberNotFound),
            Err(ChangeFailure::LastAdmin) => Err(TenancyError::LastAdmin),
            Err(ChangeFailure::Tx(e)) => Err(e.into_store("change_role").into()),
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = audit_log, check_for_backend(diesel::pg::Pg))]
struct AuditRow {
    id: Uuid,
    actor_type: String,
    actor_id: Option<String>,
    action: String,
    target: Option<String>,
    metadata: serde_json::Value,
    request_id: Option<String>,
    created_at: OffsetDateTime,
}

fn audit_actor(actor_type: &str, actor_id: Option<&str>) -> Result<AuditActor, TxError> {
    let corrupt = || {
        TxError::Corrupt(format!(
            "unreadable audit actor `{actor_type}` `{actor_id:?}`"
        ))
    };
    match (actor_type, actor_id) {
        ("user", Some(id)) => id
            .parse::<i64>()
            .map(AuditActor::User)
            .map_err(|_| corrupt()),
        ("api_key", Some(id)) => Uuid::parse_str(id)
            .map(AuditActor::ApiKey)
            .map_err(|_| corrupt()),
        ("system", _) => Ok(AuditActor::System),
        _ => Err(corrupt()),
    }
}

fn audit_entry(row: AuditRow) -> Result<AuditEntry, TxError> {
    Ok(AuditEntry {
        id: row.id,
        actor: audit_actor(&row.actor_type, row.actor_id.as_deref())?,
        action: row.action,
        target: row.target,
        metadata: row.metadata,
        request_id: row.request_id,
        created_at: row.created_at,
    })
}

/// [`AuditLog`] over PostgreSQL (keyset by UUID v7 id, newest first).
#[derive(Clone)]
pub struct PgAuditLog {
    pool: Pool,
}

impl std::fmt::Debug for PgAuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgAuditLog").finish_non_exhaustive()
    }
}

impl PgAuditLog {
    /// An audit log on `pool`.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl AuditLog for PgAuditLog {
    async fn list(
        &self,
        scope: &TenantScope,
        query: &AuditQuery,
    ) -> Result<(Vec<AuditEntry>, bool), StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let mut rows_query = audit_of(scope).into_boxed();
        if let Some(action) = &query.action {
            rows_query = rows_query.filter(audit_log::action.eq(action.clone()));
        }
        if let Some(before) = query.before {
            rows_query = rows_query.filter(audit_log::id.lt(before));
        }
        let rows: Vec<AuditRow> = rows_query
            .order(audit_log::id.desc())
            .limit(page_plus_one(query.limit))
            .select(AuditRow::as_select())
            .load(&mut conn)
            .await
            .map_err(|e| db_error("list audit", &e))?;
        let mut entries = rows
            .into_iter()
            .map(audit_entry)
            .collect::<Result<Vec<_>, TxError>>()
            .map_err(|e| e.into_store("list audit"))?;
        let more = entries.len() > usize::from(query.limit.get());
        entries.truncate(usize::from(query.limit.get()));
        Ok((entries, more))
    }
}

#[derive(QueryableByName)]
struct AccountRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: OffsetDateTime,
    #[diesel(sql_type = BigInt)]
    members: i64,
}

const ACCOUNTS_SQL: &str = "
SELECT a.id, a.name, a.status, a.created_at,
       (SELECT count(*) FROM account_members m WHERE m.account_id = a.id) AS members
  FROM accounts a
 WHERE a.id > $1
 ORDER BY a.id
 LIMIT $2";

/// [`AccountDirectory`] over PostgreSQL (platform scope: across tenants).
#[derive(Clone)]
pub struct PgAccountDirectory {
    pool: Pool,
}

impl std::fmt::Debug for PgAccountDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgAccountDirectory").finish_non_exhaustive()
    }
}

impl PgAccountDirectory {
    /// A directory on `pool`.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl AccountDirectory for PgAccountDirectory {
    async fn list(
        &self,
        _scope: &PlatformScope,
        after: Option<AccountId>,
        limit: Limit,
    ) -> Result<(Vec<AccountSummary>, bool), StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<AccountRow> = diesel::sql_query(ACCOUNTS_SQL)
            .bind::<BigInt, _>(after.map_or(i64::MIN, AccountId::get))
            .bind::<BigInt, _>(page_plus_one(limit))
            .load(&mut conn)
            .await
            .map_err(|e| db_error("list accounts", &e))?;
        let mut accounts = rows
            .into_iter()
            .map(|row| {
                Ok(AccountSummary {
                    id: AccountId::new(row.id),
                    name: row.name,
                    status: parse_status(&row.status)?,
                    members: row.members,
                    created_at: row.created_at,
                })
            })
            .collect::<Result<Vec<_>, TxError>>()
            .map_err(|e| e.into_store("list accounts"))?;
        let more = accounts.len() > usize::from(limit.get());
        accounts.truncate(usize::from(limit.get()));
        Ok((accounts, more))
    }
}
