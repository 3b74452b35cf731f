//! PostgreSQL adapter of [`whatpro_iam::IdentityStore`]: users, memberships, sessions, refresh
//! tokens, and the audit rows and cache invalidations their security events write.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Text};
use diesel::upsert::excluded;
use diesel_async::pooled_connection::deadpool::PoolError;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;
use whatpro_iam::{
    AccountStatus, Actor, ApiKeyId, AuditContext, ChatwootMembership, ChatwootProfile,
    ChatwootRole, IdentityStore, LoginRecord, Membership, Principal, RefreshRotation, Role,
    RotateOutcome, SessionId, SessionRecord, SessionRevocation, StoreError, User,
};
use whatpro_kernel::{AccountId, UserId};

use crate::Pool;
use crate::schema::{account_members, accounts, audit_log, refresh_tokens, sessions, users};

/// The LISTEN/NOTIFY channel on which identity changes are announced to every instance.
pub(crate) const NOTIFY_CHANNEL: &str = "whatpro_iam";

// ---------------------------------------------------------------------------------------------
// Error mapping at the seam.

/// A pool failure: the database cannot be reached (or every connection is busy too long).
pub(crate) fn pool_error(err: PoolError) -> StoreError {
    StoreError::Unavailable(format!("no database connection: {err}"))
}

/// A query failure, with what was being done. Diesel's messages carry no bound values.
pub(crate) fn db_error(context: &str, err: &DieselError) -> StoreError {
    match err {
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
        | DieselError::BrokenTransactionManager => {
            StoreError::Unavailable(format!("{context}: {err}"))
        }
        _ => StoreError::Internal(format!("{context}: {err}")),
    }
}

/// Failures inside a transaction: the database's, or rows we cannot read.
#[derive(Debug)]
pub(crate) enum TxError {
    /// A query failed.
    Db(DieselError),
    /// A stored value is not one we know (e.g. an unknown role name).
    Corrupt(String),
}

impl From<DieselError> for TxError {
    fn from(err: DieselError) -> Self {
        TxError::Db(err)
    }
}

impl TxError {
    /// Maps to the port's error, with what was being done.
    pub(crate) fn into_store(self, context: &str) -> StoreError {
        match self {
            TxError::Db(err) => db_error(context, &err),
            TxError::Corrupt(detail) => StoreError::Internal(format!("{context}: {detail}")),
        }
    }
}

/// Parses a stored Hub role.
pub(crate) fn parse_role(stored: &str) -> Result<Role, TxError> {
    stored
        .parse::<Role>()
        .map_err(|_| TxError::Corrupt(format!("unknown stored role `{stored}`")))
}

/// Parses a stored Chatwoot role.
pub(crate) fn parse_chatwoot_role(stored: &str) -> Result<ChatwootRole, TxError> {
    match stored {
        "administrator" => Ok(ChatwootRole::Administrator),
        "agent" => Ok(ChatwootRole::Agent),
        other => Err(TxError::Corrupt(format!(
            "unknown stored Chatwoot role `{other}`"
        ))),
    }
}

/// Parses a stored account status.
pub(crate) fn parse_status(stored: &str) -> Result<AccountStatus, TxError> {
    match stored {
        "active" => Ok(AccountStatus::Active),
        "suspended" => Ok(AccountStatus::Suspended),
        other => Err(TxError::Corrupt(format!(
            "unknown stored account status `{other}`"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared writes: notifications and audit rows.

/// `{"user": <id>}`: drop the user's cached principal.
pub(crate) fn user_payload(user: UserId) -> String {
    json!({ "user": user.get() }).to_string()
}

/// `{"session": "<uuid>"}`: drop the cached session.
pub(crate) fn session_payload(session: SessionId) -> String {
    json!({ "session": session.to_string() }).to_string()
}

/// `{"api_key": "<uuid>"}`: drop the cached API key.
pub(crate) fn api_key_payload(key: ApiKeyId) -> String {
    json!({ "api_key": key.to_string() }).to_string()
}

/// `{"instance_token": "<jti>"}`: drop the cached instance token.
pub(crate) fn instance_token_payload(jti: Uuid) -> String {
    json!({ "instance_token": jti.to_string() }).to_string()
}

/// The audit actor columns (`actor_type`, `actor_id`) of a scope's actor: a user through an
/// instance token is audited as the user; an API key as the key.
pub(crate) fn actor_columns(actor: &Actor) -> (&'static str, Option<String>) {
    match actor {
        Actor::User { user_id, .. } | Actor::InstanceToken { user_id, .. } => {
            ("user", Some(user_id.get().to_string()))
        }
        Actor::ApiKey { key_id, .. } => ("api_key", Some(key_id.to_string())),
        Actor::System => ("system", None),
    }
}

/// Announces a change to every instance; delivered when the transaction commits.
pub(crate) async fn notify(conn: &mut AsyncPgConnection, payload: &str) -> Result<(), DieselError> {
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<Text, _>(NOTIFY_CHANNEL)
        .bind::<Text, _>(payload)
        .execute(conn)
        .await
        .map(drop)
}

/// One audit row to insert.
#[derive(Insertable)]
#[diesel(table_name = audit_log, check_for_backend(diesel::pg::Pg))]
pub(crate) struct NewAudit {
    id: Uuid,
    account_id: Option<i64>,
    actor_type: String,
    actor_id: Option<String>,
    action: String,
    target: Option<String>,
    metadata: Value,
    request_id: Option<String>,
    created_at: OffsetDateTime,
}

/// What an audited event says, before it is fanned out to accounts.
pub(crate) struct AuditEvent<'a> {
    /// `user`, `api_key` or `system`.
    pub actor_type: &'static str,
    /// The actor's id, when there is one.
    pub actor_id: Option<String>,
    /// Dotted action.
    pub action: &'a str,
    /// What it was done to.
    pub target: Option<String>,
    /// Extra facts (never secrets).
    pub metadata: Value,
    /// The request.
    pub audit: &'a AuditContext,
    /// When.
    pub at: OffsetDateTime,
}

impl AuditEvent<'_> {
    /// The row for `account` (`None`: platform-level).
    pub(crate) fn row(&self, account: Option<AccountId>) -> NewAudit {
        NewAudit {
            id: Uuid::now_v7(),
            account_id: account.map(AccountId::get),
            actor_type: self.actor_type.to_owned(),
            actor_id: self.actor_id.clone(),
            action: self.action.to_owned(),
            target: self.target.clone(),
            metadata: self.metadata.clone(),
            request_id: Some(self.audit.request_id.clone()).filter(|r| !r.is_empty()),
            created_at: self.at,
        }
    }
}

/// Inserts audit rows (takes a shared connection, so a create can pipeline it with its other
/// writes).
pub(crate) async fn insert_audit(
    conn: &AsyncPgConnection,
    rows: &[NewAudit],
) -> Result<(), DieselError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut conn = conn;
    diesel::insert_into(audit_log::table)
        .values(rows)
        .execute(&mut conn)
        .await
        .map(drop)
}

/// The accounts in which `user` has a membership in an active account, by id.
async fn active_accounts(
    conn: &mut AsyncPgConnection,
    user: UserId,
) -> Result<Vec<AccountId>, DieselError> {
    let ids: Vec<i64> = account_members::table
        .inner_join(accounts::table)
        .filter(account_members::user_id.eq(user.get()))
        .filter(accounts::status.eq(AccountStatus::Active.as_str()))
        .order(account_members::account_id.asc())
        .select(account_members::account_id)
        .load(conn)
        .await?;
    Ok(ids.into_iter().map(AccountId::new).collect())
}

/// Writes a user-level security event to every account the user is an active member of, or
/// one platform-level row when there is none.
async fn audit_user_event(
    conn: &mut AsyncPgConnection,
    user: UserId,
    events: &[AuditEvent<'_>],
) -> Result<(), DieselError> {
    let accounts = active_accounts(conn, user).await?;
    let rows: Vec<NewAudit> = events
        .iter()
        .flat_map(|event| {
            if accounts.is_empty() {
                vec![event.row(None)]
            } else {
                accounts.iter().map(|a| event.row(Some(*a))).collect()
            }
        })
        .collect();
    insert_audit(conn, &rows).await
}

fn user_actor_id(user: UserId) -> Option<String> {
    Some(user.get().to_string())
}

fn session_target(session: SessionId) -> Option<String> {
    Some(format!("session:{session}"))
}

fn metadata(pairs: &[(&str, Option<&str>)]) -> Value {
    let map: Map<String, Value> = pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| ((*k).to_owned(), Value::String(v.to_owned()))))
        .collect();
    Value::Object(map)
}

// ---------------------------------------------------------------------------------------------
// Rows.

#[derive(Queryable, Selectable)]
#[diesel(table_name = sessions, check_for_backend(diesel::pg::Pg))]
struct SessionRow {
    id: Uuid,
    user_id: i64,
    user_agent: Option<String>,
    ip: Option<String>,
    sealed_credential: Option<String>,
    created_at: OffsetDateTime,
    last_seen_at: OffsetDateTime,
    idle_expires_at: OffsetDateTime,
    absolute_expires_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
    revoked_reason: Option<String>,
}

impl From<SessionRow> for SessionRecord {
    fn from(row: SessionRow) -> Self {
        SessionRecord {
            id: SessionId::from_uuid(row.id),
            user_id: UserId::new(row.user_id),
            user_agent: row.user_agent,
            ip: row.ip,
            created_at: row.created_at,
            last_seen_at: row.last_seen_at,
            idle_expires_at: row.idle_expires_at,
            absolute_expires_at: row.absolute_expires_at,
            revoked_at: row.revoked_at,
            revoked_reason: row.revoked_reason,
            sealed_credential: row.sealed_credential,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
struct UserRow {
    id: i64,
    email: String,
    name: String,
    super_admin: bool,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = refresh_tokens, check_for_backend(diesel::pg::Pg))]
struct TokenRow {
    id: Uuid,
    successor_hash: Option<Vec<u8>>,
    used_at: Option<OffsetDateTime>,
    expires_at: OffsetDateTime,
}

// ---------------------------------------------------------------------------------------------
// Shared reads and writes of identity.

/// The user and their memberships in active accounts. Accounts where the Hub was uninstalled
/// (Platform App `account.uninstalled`) are left out: their members keep their rows but lose
/// access until the account is installed again.
async fn load_principal(
    conn: &mut AsyncPgConnection,
    user: UserId,
) -> Result<Option<Principal>, TxError> {
    let Some(row) = users::table
        .find(user.get())
        .select(UserRow::as_select())
        .first(conn)
        .await
        .optional()?
    else {
        return Ok(None);
    };
    let members: Vec<(i64, String, String)> = account_members::table
        .inner_join(accounts::table)
        .filter(account_members::user_id.eq(user.get()))
        .filter(accounts::status.eq(AccountStatus::Active.as_str()))
        .filter(accounts::uninstalled_at.is_null())
        .order(account_members::account_id.asc())
        .select((
            account_members::account_id,
            accounts::name,
            account_members::role,
        ))
        .load(conn)
        .await?;
    let memberships = members
        .into_iter()
        .map(|(account, name, role)| {
            Ok(Membership {
                account_id: AccountId::new(account),
                account_name: name,
                role: parse_role(&role)?,
            })
        })
        .collect::<Result<Vec<_>, TxError>>()?;
    Ok(Some(Principal {
        user: User {
            id: UserId::new(row.id),
            email: row.email,
            name: row.name,
            super_admin: row.super_admin,
        },
        memberships,
    }))
}

/// Upserts a member from Chatwoot: the Hub role follows the Chatwoot role unless a Hub admin
/// overrode it and the Chatwoot role is unchanged.
const UPSERT_MEMBER_SQL: &str = "
INSERT INTO account_members (account_id, user_id, role, chatwoot_role, role_overridden)
VALUES ($1, $2, $3, $4, false)
ON CONFLICT (account_id, user_id) DO UPDATE SET
    role = CASE WHEN account_members.role_overridden
                     AND account_members.chatwoot_role = EXCLUDED.chatwoot_role
                THEN account_members.role
                ELSE EXCLUDED.role END,
    role_overridden = account_members.role_overridden
                      AND account_members.chatwoot_role = EXCLUDED.chatwoot_role,
    chatwoot_role = EXCLUDED.chatwoot_role";

/// Upserts the user, their accounts and memberships from a profile and removes memberships of
/// accounts missing from it. Accounts are written in id order (a stable lock order).
async fn apply_profile(
    conn: &mut AsyncPgConnection,
    profile: &ChatwootProfile,
    super_admin: bool,
) -> Result<(), DieselError> {
    let user = profile.user_id.get();
    diesel::insert_into(users::table)
        .values((
            users::id.eq(user),
            users::email.eq(&profile.email),
            users::name.eq(&profile.name),
            users::super_admin.eq(super_admin),
        ))
        .on_conflict(users::id)
        .do_update()
        .set((
            users::email.eq(excluded(users::email)),
            users::name.eq(excluded(users::name)),
            users::super_admin.eq(excluded(users::super_admin)),
        ))
        .execute(conn)
        .await?;

    // One entry per account (the last wins), in id order.
    let by_account: BTreeMap<i64, &ChatwootMembership> = profile
        .accounts
        .iter()
        .map(|m| (m.account_id.get(), m))
        .collect();
    // The upsert sets only name and status: `uninstalled_at` belongs to the Platform App, so a
    // login never reinstalls an account.
    for (account, membership) in &by_account {
        diesel::insert_into(accounts::table)
            .values((
                accounts::id.eq(*account),
                accounts::name.eq(&membership.account_name),
                accounts::status.eq(membership.status.as_str()),
            ))
            .on_conflict(accounts::id)
            .do_update()
            .set((
                accounts::name.eq(excluded(accounts::name)),
                accounts::status.eq(excluded(accounts::status)),
            ))
            .execute(conn)
            .await?;
    }
    for (account, membership) in &by_account {
        diesel::sql_query(UPSERT_MEMBER_SQL)
            .bind::<BigInt, _>(*account)
            .bind::<BigInt, _>(user)
            .bind::<Text, _>(membership.role.default_role().as_str())
            .bind::<Text, _>(membership.role.as_str())
            .execute(conn)
            .await?;
    }
    let kept: Vec<i64> = by_account.keys().copied().collect();
    diesel::delete(
        account_members::table
            .filter(account_members::user_id.eq(user))
            .filter(account_members::account_id.ne_all(kept)),
    )
    .execute(conn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The adapter.

/// [`IdentityStore`] over PostgreSQL. Every security event writes its audit rows and a
/// `pg_notify('whatpro_iam', ..)` in the same transaction.
#[derive(Clone)]
pub struct PgIdentityStore {
    pool: Pool,
}

impl std::fmt::Debug for PgIdentityStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgIdentityStore").finish_non_exhaustive()
    }
}

impl PgIdentityStore {
    /// A store on `pool`.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    async fn conn(
        &self,
    ) -> Result<diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>, StoreError>
    {
        self.pool.get().await.map_err(pool_error)
    }

    /// Revokes every live session of `user` except `keep` and returns their ids (the cache
    /// uses them to drop its copies at once).
    ///
    /// # Errors
    /// `Unavailable` when no connection can be had; `Internal` otherwise.
    pub async fn revoke_other_sessions_returning(
        &self,
        user: UserId,
        keep: SessionId,
        audit: &AuditContext,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionId>, StoreError> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, TxError, _>(async |conn| {
            let ids: Vec<Uuid> = diesel::update(
                sessions::table
                    .filter(sessions::user_id.eq(user.get()))
                    .filter(sessions::id.ne(keep.as_uuid()))
                    .filter(sessions::revoked_at.is_null())
                    .filter(sessions::idle_expires_at.gt(now))
                    .filter(sessions::absolute_expires_at.gt(now)),
            )
            .set((
                sessions::revoked_at.eq(now),
                sessions::revoked_reason.eq(SessionRevocation::RevokedOthers.as_str()),
            ))
            .returning(sessions::id)
            .get_results(conn)
            .await?;
            let ids: Vec<SessionId> = ids.into_iter().map(SessionId::from_uuid).collect();
            let reason = SessionRevocation::RevokedOthers.as_str();
            let events: Vec<AuditEvent<'_>> = ids
                .iter()
                .map(|id| AuditEvent {
                    actor_type: "user",
                    actor_id: user_actor_id(user),
                    action: "session.revoked",
                    target: session_target(*id),
                    metadata: json!({ "reason": reason }),
                    audit,
                    at: now,
                })
                .collect();
            audit_user_event(conn, user, &events).await?;
            for id in &ids {
                notify(conn, &session_payload(*id)).await?;
            }
            Ok(ids)
        })
        .await
        .map_err(|e| e.into_store("revoke_other_sessions"))
    }
}

#[async_trait]
impl IdentityStore for PgIdentityStore {
    async fn record_login(&self, login: &LoginRecord) -> Result<Principal, StoreError> {
        let user = login.profile.user_id;
        let mut conn = self.conn().await?;
        let principal = conn
            .transaction::<_, TxError, _>(async |conn| {
                apply_profile(conn, &login.profile, login.super_admin).await?;

                let absolute = login.absolute_expires_at;
                diesel::insert_into(sessions::table)
                    .values((
                        sessions::id.eq(login.session_id.as_uuid()),
                        sessions::user_id.eq(user.get()),
                        sessions::user_agent.eq(login.device.user_agent.as_deref()),
                        sessions::ip.eq(login.device.ip.as_deref()),
                        sessions::sealed_credential.eq(login.sealed_credential.as_deref()),
                        sessions::created_at.eq(login.now),
                        sessions::last_seen_at.eq(login.now),
                        sessions::idle_expires_at.eq(login.idle_expires_at.min(absolute)),
                        sessions::absolute_expires_at.eq(absolute),
                    ))
                    .execute(conn)
                    .await?;
                diesel::insert_into(refresh_tokens::table)
                    .values((
                        refresh_tokens::id.eq(Uuid::now_v7()),
                        refresh_tokens::session_id.eq(login.session_id.as_uuid()),
                        refresh_tokens::token_hash.eq(&login.refresh.hash),
                        refresh_tokens::expires_at.eq(login.refresh.expires_at.min(absolute)),
                        refresh_tokens::created_at.eq(login.now),
                    ))
                    .execute(conn)
                    .await?;

                let ip = login.device.ip.as_deref().or(login.audit.ip.as_deref());
                let event = AuditEvent {
                    actor_type: "user",
                    actor_id: user_actor_id(user),
                    action: "auth.login",
                    target: session_target(login.session_id),
                    metadata: metadata(&[
                        ("user_agent", login.device.user_agent.as_deref()),
                        ("ip", ip),
                    ]),
                    audit: &login.audit,
                    at: login.now,
                };
                audit_user_event(conn, user, std::slice::from_ref(&event)).await?;
                notify(conn, &user_payload(user)).await?;
                load_principal(conn, user).await
            })
            .await
            .map_err(|e| e.into_store("record_login"))?;
        principal.ok_or_else(|| StoreError::Internal("record_login: the user vanished".to_owned()))
    }

    async fn sync_memberships(
        &self,
        profile: &ChatwootProfile,
        super_admin: bool,
    ) -> Result<Principal, StoreError> {
        let user = profile.user_id;
        let mut conn = self.conn().await?;
        let principal = conn
            .transaction::<_, TxError, _>(async |conn| {
                apply_profile(conn, profile, super_admin).await?;
                notify(conn, &user_payload(user)).await?;
                load_principal(conn, user).await
            })
            .await
            .map_err(|e| e.into_store("sync_memberships"))?;
        principal
            .ok_or_else(|| StoreError::Internal("sync_memberships: the user vanished".to_owned()))
    }

    async fn record_login_failure(
        &self,
        user: Option<UserId>,
        reason: &str,
        audit: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, TxError, _>(async |conn| {
            let event = AuditEvent {
                actor_type: "user",
                actor_id: user.and_then(user_actor_id),
                action: "auth.login_failed",
                target: user.map(|u| format!("user:{u}")),
                metadata: metadata(&[("reason", Some(reason)), ("ip", audit.ip.as_deref())]),
                audit,
                at: OffsetDateTime::now_utc(),
            };
            match user {
                Some(user) => audit_user_event(conn, user, std::slice::from_ref(&event)).await?,
                None => insert_audit(conn, &[event.row(None)]).await?,
            }
            Ok(())
        })
        .await
        .map_err(|e| e.into_store("record_login_failure"))
    }

    async fn principal(&self, user: UserId) -> Result<Option<Arc<Principal>>, StoreError> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, TxError, _>(async |conn| load_principal(conn, user).await)
            .await
            .map(|found| found.map(Arc::new))
            .map_err(|e| e.into_store("principal"))
    }

    async fn session(&self, id: SessionId) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        let mut conn = self.conn().await?;
        let row = sessions::table
            .find(id.as_uuid())
            .select(SessionRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(|e| db_error("session", &e))?;
        Ok(row.map(|row| Arc::new(SessionRecord::from(row))))
    }

    fn remembered(
        &self,
        _session: SessionId,
        _user: UserId,
    ) -> Option<(Arc<SessionRecord>, Arc<Principal>)> {
        // No cache here: `CachedIdentityStore` is the one in front of this store.
        None
    }

    async fn session_for_refresh(&self, hash: &[u8]) -> Result<Option<SessionRecord>, StoreError> {
        let mut conn = self.conn().await?;
        let row = refresh_tokens::table
            .inner_join(sessions::table)
            .filter(refresh_tokens::token_hash.eq(hash))
            .select(SessionRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(|e| db_error("session_for_refresh", &e))?;
        Ok(row.map(SessionRecord::from))
    }

    async fn rotate_refresh(
        &self,
        rotation: &RefreshRotation,
    ) -> Result<RotateOutcome, StoreError> {
        let now = rotation.now;
        let mut conn = self.conn().await?;
        conn.transaction::<_, TxError, _>(async |conn| {
            // The row lock serialises every rotation of this token (and of its session).
            let found: Option<(TokenRow, SessionRow)> = refresh_tokens::table
                .inner_join(sessions::table)
                .filter(refresh_tokens::token_hash.eq(&rotation.presented_hash))
                .select((TokenRow::as_select(), SessionRow::as_select()))
                .for_update()
                .first(conn)
                .await
                .optional()?;
            let Some((token, session)) = found else {
                return Ok(RotateOutcome::Unknown);
            };
            let session = SessionRecord::from(session);
            if now >= token.expires_at {
                return Ok(RotateOutcome::Expired);
            }
            if !session.is_live(now) {
                return Ok(RotateOutcome::SessionEnded);
            }

            if let Some(used_at) = token.used_at {
                let within_grace = now - used_at <= rotation.grace;
                let same_successor =
                    token.successor_hash.as_deref() == Some(rotation.successor.hash.as_slice());
                let successor_unused = if within_grace && same_successor {
                    let successor: Option<Option<OffsetDateTime>> = refresh_tokens::table
                        .filter(refresh_tokens::token_hash.eq(&rotation.successor.hash))
                        .select(refresh_tokens::used_at)
                        .first(conn)
                        .await
                        .optional()?;
                    matches!(successor, Some(None))
                } else {
                    false
                };
                if within_grace && same_successor && successor_unused {
                    return Ok(RotateOutcome::Replayed(session));
                }

                // A rotated token came back: revoke the whole session (RFC 9700 4.14.2).
                let reason = SessionRevocation::RefreshReused.as_str();
                diesel::update(sessions::table.find(session.id.as_uuid()))
                    .set((
                        sessions::revoked_at.eq(now),
                        sessions::revoked_reason.eq(reason),
                    ))
                    .execute(conn)
                    .await?;
                let event = AuditEvent {
                    actor_type: "user",
                    actor_id: user_actor_id(session.user_id),
                    action: "auth.refresh_reused",
                    target: session_target(session.id),
                    metadata: metadata(&[
                        ("reason", Some(reason)),
                        ("ip", rotation.audit.ip.as_deref()),
                    ]),
                    audit: &rotation.audit,
                    at: now,
                };
                audit_user_event(conn, session.user_id, std::slice::from_ref(&event)).await?;
                notify(conn, &session_payload(session.id)).await?;
                return Ok(RotateOutcome::Reused(session.id));
            }

            let absolute = session.absolute_expires_at;
            diesel::update(refresh_tokens::table.find(token.id))
                .set((
                    refresh_tokens::used_at.eq(now),
                    refresh_tokens::successor_hash.eq(&rotation.successor.hash),
                ))
                .execute(conn)
                .await?;
            diesel::insert_into(refresh_tokens::table)
                .values((
                    refresh_tokens::id.eq(Uuid::now_v7()),
                    refresh_tokens::session_id.eq(session.id.as_uuid()),
                    refresh_tokens::token_hash.eq(&rotation.successor.hash),
                    refresh_tokens::parent_id.eq(token.id),
                    refresh_tokens::expires_at.eq(rotation.successor.expires_at.min(absolute)),
                    refresh_tokens::created_at.eq(now),
                ))
                .execute(conn)
                .await?;
            let updated = diesel::update(sessions::table.find(session.id.as_uuid()))
                .set((
                    sessions::last_seen_at.eq(now),
                    sessions::idle_expires_at.eq(rotation.idle_expires_at.min(absolute)),
                ))
                .returning(SessionRow::as_returning())
                .get_result(conn)
                .await?;
            notify(conn, &session_payload(session.id)).await?;
            Ok(RotateOutcome::Rotated(updated.into()))
        })
        .await
        .map_err(|e| e.into_store("rotate_refresh"))
    }

    async fn revoke_session(
        &self,
        user: UserId,
        session: SessionId,
        why: SessionRevocation,
        audit: &AuditContext,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, TxError, _>(async |conn| {
            let revoked: Option<Uuid> = diesel::update(
                sessions::table
                    .filter(sessions::id.eq(session.as_uuid()))
                    .filter(sessions::user_id.eq(user.get()))
                    .filter(sessions::revoked_at.is_null())
                    .filter(sessions::idle_expires_at.gt(now))
                    .filter(sessions::absolute_expires_at.gt(now)),
            )
            .set((
                sessions::revoked_at.eq(now),
                sessions::revoked_reason.eq(why.as_str()),
            ))
            .returning(sessions::id)
            .get_result(conn)
            .await
            .optional()?;
            if revoked.is_none() {
                return Ok(false);
            }
            let action = match why {
                SessionRevocation::Logout => "auth.logout",
                _ => "session.revoked",
            };
            let event = AuditEvent {
                actor_type: "user",
                actor_id: user_actor_id(user),
                action,
                target: session_target(session),
                metadata: json!({ "reason": why.as_str() }),
                audit,
                at: now,
            };
            audit_user_event(conn, user, std::slice::from_ref(&event)).await?;
            notify(conn, &session_payload(session)).await?;
            Ok(true)
        })
        .await
        .map_err(|e| e.into_store("revoke_session"))
    }

    async fn revoke_other_sessions(
        &self,
        user: UserId,
        keep: SessionId,
        audit: &AuditContext,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let ids = self
            .revoke_other_sessions_returning(user, keep, audit, now)
            .await?;
        Ok(u64::try_from(ids.len()).unwrap_or(u64::MAX))
    }

    async fn live_sessions(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let mut conn = self.conn().await?;
        let rows: Vec<SessionRow> = sessions::table
            .filter(sessions::user_id.eq(user.get()))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::idle_expires_at.gt(now))
            .filter(sessions::absolute_expires_at.gt(now))
            .order((sessions::created_at.desc(), sessions::id.desc()))
            .select(SessionRow::as_select())
            .load(&mut conn)
            .await
            .map_err(|e| db_error("live_sessions", &e))?;
        Ok(rows.into_iter().map(SessionRecord::from).collect())
    }
}
