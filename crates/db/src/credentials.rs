//! PostgreSQL adapter of [`whatpro_iam::CredentialStore`]: API keys and instance tokens, with
//! the audit rows and cache invalidations their security events write.

use async_trait::async_trait;
use diesel::dsl::{Eq as SqlEq, Filter};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;
use whatpro_iam::{
    ApiKeyId, ApiKeyPage, ApiKeyRecord, AuditContext, CredentialStore, InstanceTokenRecord,
    KeyChange, KeyDenial, NewApiKey, ScopeSet, StoreError, TenantScope,
};
use whatpro_kernel::{AccountId, Limit, UserId};

use crate::Pool;
use crate::iam::{
    AuditEvent, TxError, actor_columns, api_key_payload, db_error, insert_audit,
    instance_token_payload, notify, pool_error,
};
use crate::schema::{api_keys, instance_tokens};

/// The key rows of the scope's account: every scoped key query starts here.
fn keys_of(scope: &TenantScope) -> Filter<api_keys::table, SqlEq<api_keys::account_id, i64>> {
    api_keys::table.filter(api_keys::account_id.eq(scope.account_id().get()))
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys, check_for_backend(diesel::pg::Pg))]
struct ApiKeyRow {
    account_id: i64,
    id: Uuid,
    prefix: String,
    secret_hash: String,
    name: String,
    scopes: Vec<String>,
    created_by: i64,
    created_at: OffsetDateTime,
    last_used_at: Option<OffsetDateTime>,
    expires_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
    rotated_at: Option<OffsetDateTime>,
}

impl From<ApiKeyRow> for ApiKeyRecord {
    fn from(row: ApiKeyRow) -> Self {
        ApiKeyRecord {
            id: ApiKeyId::from_uuid(row.id),
            account_id: AccountId::new(row.account_id),
            prefix: row.prefix,
            secret_hash: row.secret_hash,
            name: row.name,
            scopes: ScopeSet::from_stored(&row.scopes),
            created_by: UserId::new(row.created_by),
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            rotated_at: row.rotated_at,
        }
    }
}

impl From<&ApiKeyRecord> for ApiKeyRow {
    fn from(key: &ApiKeyRecord) -> Self {
        ApiKeyRow {
            account_id: key.account_id.get(),
            id: key.id.as_uuid(),
            prefix: key.prefix.clone(),
            secret_hash: key.secret_hash.clone(),
            name: key.name.clone(),
            scopes: key.scopes.names(),
            created_by: key.created_by.get(),
            created_at: key.created_at,
            last_used_at: key.last_used_at,
            expires_at: key.expires_at,
            revoked_at: key.revoked_at,
            rotated_at: key.rotated_at,
        }
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = instance_tokens, check_for_backend(diesel::pg::Pg))]
struct InstanceTokenRow {
    jti: Uuid,
    account_id: i64,
    user_id: i64,
    origin: String,
    scopes: Vec<String>,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
}

impl From<InstanceTokenRow> for InstanceTokenRecord {
    fn from(row: InstanceTokenRow) -> Self {
        InstanceTokenRecord {
            token_id: row.jti,
            account_id: AccountId::new(row.account_id),
            user_id: UserId::new(row.user_id),
            origin: row.origin,
            scopes: ScopeSet::from_stored(&row.scopes),
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
        }
    }
}

fn timestamp(at: Option<OffsetDateTime>) -> Value {
    at.and_then(|t| t.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

/// Audits a change (`action`) to key `id` of the scope's account and tells every instance to
/// drop its cached copy; runs inside the change's transaction.
async fn record_key_change(
    conn: &mut AsyncPgConnection,
    scope: &TenantScope,
    id: ApiKeyId,
    row: &ApiKeyRow,
    action: &'static str,
    audit: &AuditContext,
    now: OffsetDateTime,
) -> Result<(), diesel::result::Error> {
    let (actor_type, actor_id) = actor_columns(scope.actor());
    let event = AuditEvent {
        actor_type,
        actor_id,
        action,
        target: key_target(id),
        metadata: json!({ "prefix": row.prefix, "name": row.name }),
        audit,
        at: now,
    };
    audit_in(conn, scope.account_id(), &event).await?;
    notify(conn, &api_key_payload(id)).await
}

fn key_target(id: ApiKeyId) -> Option<String> {
    Some(format!("api_key:{id}"))
}

fn token_target(jti: Uuid) -> Option<String> {
    Some(format!("instance_token:{jti}"))
}

/// One audit row in `account`.
async fn audit_in(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    event: &AuditEvent<'_>,
) -> Result<(), diesel::result::Error> {
    insert_audit(conn, &[event.row(Some(account))]).await
}

/// [`CredentialStore`] over PostgreSQL. Every security event writes its audit row (and, when
/// other instances may hold a cached copy, a `pg_notify('whatpro_iam', ..)`) in the same
/// transaction.
#[derive(Clone)]
pub struct PgCredentialStore {
    pool: Pool,
}

impl std::fmt::Debug for PgCredentialStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCredentialStore").finish_non_exhaustive()
    }
}

impl PgCredentialStore {
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

    /// Locks a key of the scope's account for a change.
    async fn lock_key(
        conn: &mut AsyncPgConnection,
        scope: &TenantScope,
        id: ApiKeyId,
    ) -> Result<Option<ApiKeyRow>, TxError> {
        Ok(keys_of(scope)
            .filter(api_keys::id.eq(id.as_uuid()))
            .select(ApiKeyRow::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?)
    }
}

#[async_trait]
impl CredentialStore for PgCredentialStore {
    async fn create_api_key(&self, key: &NewApiKey) -> Result<bool, StoreError> {
        let record = &key.record;
        let mut conn = self.conn().await?;
        conn.transaction::<_, TxError, _>(async |conn| {
            let inserted = diesel::insert_into(api_keys::table)
                .values(ApiKeyRow::from(record))
                .on_conflict(api_keys::prefix)
                .do_nothing()
                .execute(conn)
                .await?;
            if inserted == 0 {
                return Ok(false);
            }
            let (actor_type, actor_id) = actor_columns(&key.actor);
            let event = AuditEvent {
                actor_type,
                actor_id,
                action: "api_key.created",
                target: key_target(record.id),
                metadata: json!({
                    "name": record.name,
                    "prefix": record.prefix,
                    "scopes": record.scopes.names(),
                    "expires_at": timestamp(record.expires_at),
                }),
                audit: &key.audit,
                at: record.created_at,
            };
            audit_in(conn, record.account_id, &event).await?;
            Ok(true)
        })
        .await
        .map_err(|e| e.into_store("create_api_key"))
    }

    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let mut conn = self.conn().await?;
        let row = api_keys::table
            .filter(api_keys::prefix.eq(prefix))
            .select(ApiKeyRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(|e| db_error("api_key_by_prefix", &e))?;
        Ok(row.map(ApiKeyRecord::from))
    }

    async fn api_key(&self, id: ApiKeyId) -> Result<Option<ApiKeyRecord>, StoreError> {
        let mut conn = self.conn().await?;
        let row = api_keys::table
            .find(id.as_uuid())
            .select(ApiKeyRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(|e| db_error("api_key", &e))?;
        Ok(row.map(ApiKeyRecord::from))
    }

    async fn list_api_keys(
        &self,
        scope: &TenantScope,
        after: Option<ApiKeyId>,
        limit: Limit,
    ) -> Result<ApiKeyPage, StoreError> {
        let mut conn = self.conn().await?;
        let mut query = keys_of(scope).into_boxed();
        if let Some(after) = after {
            query = query.filter(api_keys::id.gt(after.as_uuid()));
        }
        let rows: Vec<ApiKeyRow> = query
            .order(api_keys::id.asc())
            .limit(i64::from(limit.get()) + 1)
            .select(ApiKeyRow::as_select())
            .load(&mut conn)
            .await
            .map_err(|e| db_error("list_api_keys", &e))?;
        let mut keys: Vec<ApiKeyRecord> = rows.into_iter().map(ApiKeyRecord::from).collect();
        let more = keys.len() > usize::from(limit.get());
        keys.truncate(usize::from(limit.get()));
        let next_after = if more {
            keys.last().map(|k| k.id)
        } else {
            None
        };
        Ok(ApiKeyPage { keys, next_after })
    }

    async fn rotate_api_key(
        &self,
        scope: &TenantScope,
        id: ApiKeyId,
        secret_hash: &str,
        audit: &AuditContext,
        now: OffsetDateTime,
    ) -> Result<KeyChange, StoreError> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, TxError, _>(async |conn| {
            let Some(current) = Self::lock_key(conn, scope, id).await? else {
                return Ok(KeyChange::NotFound);
            };
            if current.revoked_at.is_some() {
                return Ok(KeyChange::Revoked);
            }
            let row = diesel::update(keys_of(scope).filter(api_keys::id.eq(id.as_uuid())))
                .set((
                    api_keys::secret_hash.eq(secret_hash),
                    api_keys::rotated_at.eq(now),
                ))
                .returning(ApiKeyRow::as_returning())
                .get_result(conn)
                .await?;
            record_key_change(conn, scope, id, &row, "api_key.rotated", audit, now).await?;
            Ok(KeyChange::Done(row.into()))
        })
        .await
        .map_err(|e| e.into_store("rotate_api_key"))
    }

    async fn revoke_api_key(
        &self,
        scope: &TenantScope,
        id: ApiKeyId,
        audit: &AuditContext,
        now: OffsetDateTime,
    ) -> Result<KeyChange, StoreError> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, TxError, _>(async |conn| {
            let Some(current) = Self::lock_key(conn, scope, id).await? else {
                return Ok(KeyChange::NotFound);
            };
            if current.revoked_at.is_some() {
                return Ok(KeyChange::Done(current.into()));
            }
            let row = diesel::update(keys_of(scope).filter(api_keys::id.eq(id.as_uuid())))
                .set(api_keys::revoked_at.eq(now))
                .returning(ApiKeyRow::as_returning())
                .get_result(conn)
                .await?;
            record_key_change(conn, scope, id, &row, "api_key.revoked", audit, now).await?;
            Ok(KeyChange::Done(row.into()))
        })
        .await
        .map_err(|e| e.into_store("revoke_api_key"))
    }

    async fn touch_api_key(&self, id: ApiKeyId, at: OffsetDateTime) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        diesel::update(
            api_keys::table
                .filter(api_keys::id.eq(id.as_uuid()))
                .filter(
                    api_keys::last_used_at
                        .is_null()
                        .or(api_keys::last_used_at.lt(at)),
                ),
        )
        .set(api_keys::last_used_at.eq(at))
        .execute(&mut conn)
        .await
        .map_err(|e| db_error("touch_api_key", &e))?;
        Ok(())
    }

    async fn record_api_key_denial(
        &self,
        key: &ApiKeyRecord,
        denial: &KeyDenial,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let event = AuditEvent {
            actor_type: "api_key",
            actor_id: Some(key.id.to_string()),
            action: "api_key.denied",
            target: key_target(key.id),
            metadata: json!({
                "reason": denial.reason,
                "required_scope": denial.required_scope,
                "account_id": denial.account_id.get(),
            }),
            audit: &denial.audit,
            at: denial.at,
        };
        audit_in(&mut conn, key.account_id, &event)
            .await
            .map_err(|e| db_error("record_api_key_denial", &e))
    }

    async fn record_instance_token(
        &self,
        token: &InstanceTokenRecord,
        audit: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, TxError, _>(async |conn| {
            diesel::insert_into(instance_tokens::table)
                .values(InstanceTokenRow {
                    jti: token.token_id,
                    account_id: token.account_id.get(),
                    user_id: token.user_id.get(),
                    origin: token.origin.clone(),
                    scopes: token.scopes.names(),
                    created_at: token.created_at,
                    expires_at: token.expires_at,
                    revoked_at: None,
                })
                .execute(conn)
                .await?;
            let event = AuditEvent {
                actor_type: "user",
                actor_id: Some(token.user_id.get().to_string()),
                action: "instance_token.created",
                target: token_target(token.token_id),
                metadata: json!({
                    "origin": token.origin,
                    "scopes": token.scopes.names(),
                    "expires_at": timestamp(Some(token.expires_at)),
                }),
                audit,
                at: token.created_at,
            };
            audit_in(conn, token.account_id, &event).await?;
            Ok(())
        })
        .await
        .map_err(|e| e.into_store("record_instance_token"))
    }

    async fn instance_token(&self, id: Uuid) -> Result<Option<InstanceTokenRecord>, StoreError> {
        let mut conn = self.conn().await?;
        let row = instance_tokens::table
            .find(id)
            .select(InstanceTokenRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(|e| db_error("instance_token", &e))?;
        Ok(row.map(InstanceTokenRecord::from))
    }

    async fn revoke_instance_token(
        &self,
        id: Uuid,
        by: UserId,
        audit: &AuditContext,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, TxError, _>(async |conn| {
            let current: Option<InstanceTokenRow> = instance_tokens::table
                .find(id)
                .select(InstanceTokenRow::as_select())
                .for_update()
                .first(conn)
                .await
                .optional()?;
            let Some(current) = current else {
                return Ok(false);
            };
            if current.revoked_at.is_some() {
                return Ok(true);
            }
            diesel::update(instance_tokens::table.find(id))
                .set(instance_tokens::revoked_at.eq(now))
                .execute(conn)
                .await?;
            let event = AuditEvent {
                actor_type: "user",
                actor_id: Some(by.get().to_string()),
                action: "instance_token.revoked",
                target: token_target(id),
                metadata: json!({ "user_id": current.user_id }),
                audit,
                at: now,
            };
            audit_in(conn, AccountId::new(current.account_id), &event).await?;
            notify(conn, &instance_token_payload(id)).await?;
            Ok(true)
        })
        .await
        .map_err(|e| e.into_store("revoke_instance_token"))
    }
}
