//! PostgreSQL adapter of [`AccountInstallations`]: Platform App install/uninstall events,
//! de-duplicated by id, applied with their audit row and cache invalidations in one
//! transaction.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use time::OffsetDateTime;
use whatpro_iam::{PlatformScope, StoreError};
use whatpro_kernel::UserId;
use whatpro_tenancy::{
    AccountInstallations, InstallationChange, InstallationEvent, InstallationOutcome,
};

use crate::Pool;
use crate::iam::{AuditEvent, TxError, insert_audit, notify, pool_error, user_payload};
use crate::iam_cache::IamInvalidator;
use crate::schema::{account_members, platform_app_events};

/// Install: create the account, or clear its uninstall mark (an empty name keeps the known
/// one). The status (active/suspended) stays Chatwoot's.
const INSTALL_SQL: &str = "
INSERT INTO accounts (id, name) VALUES ($1, $2)
ON CONFLICT (id) DO UPDATE SET
    name = CASE WHEN EXCLUDED.name = '' THEN accounts.name ELSE EXCLUDED.name END,
    uninstalled_at = NULL";

/// Uninstall: mark the account (created as uninstalled when the Hub has not seen it yet, so a
/// later login cannot make it usable); an earlier mark is kept.
const UNINSTALL_SQL: &str = "
INSERT INTO accounts (id, name, uninstalled_at) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET
    name = CASE WHEN EXCLUDED.name = '' THEN accounts.name ELSE EXCLUDED.name END,
    uninstalled_at = COALESCE(accounts.uninstalled_at, EXCLUDED.uninstalled_at)";

/// [`AccountInstallations`] over PostgreSQL. With an [`IamInvalidator`], the members' cached
/// principals are also dropped on this instance at once (other instances learn through
/// `pg_notify`).
#[derive(Clone)]
pub struct PgAccountInstallations {
    pool: Pool,
    invalidator: Option<IamInvalidator>,
}

impl std::fmt::Debug for PgAccountInstallations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgAccountInstallations")
            .finish_non_exhaustive()
    }
}

impl PgAccountInstallations {
    /// Installations on `pool`.
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            invalidator: None,
        }
    }

    /// Also drops the members' principals from this instance's identity cache.
    #[must_use]
    pub fn with_invalidator(mut self, invalidator: IamInvalidator) -> Self {
        self.invalidator = Some(invalidator);
        self
    }
}

fn actor_columns(scope: &PlatformScope) -> (&'static str, Option<String>) {
    match scope.actor().user_id() {
        Some(user) => ("user", Some(user.get().to_string())),
        None => ("system", None),
    }
}

async fn apply_in(
    conn: &mut AsyncPgConnection,
    scope: &PlatformScope,
    event: &InstallationEvent,
    now: OffsetDateTime,
) -> Result<Option<Vec<UserId>>, TxError> {
    let account = event.account_id.get();
    let recorded: Option<String> = diesel::insert_into(platform_app_events::table)
        .values((
            platform_app_events::id.eq(&event.id),
            platform_app_events::event.eq(event.change.as_str()),
            platform_app_events::account_id.eq(account),
            platform_app_events::received_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .returning(platform_app_events::id)
        .get_result(conn)
        .await
        .optional()?;
    if recorded.is_none() {
        return Ok(None);
    }
    match event.change {
        InstallationChange::Installed => {
            diesel::sql_query(INSTALL_SQL)
                .bind::<BigInt, _>(account)
                .bind::<Text, _>(&event.account_name)
                .execute(conn)
                .await?;
        }
        InstallationChange::Uninstalled => {
            diesel::sql_query(UNINSTALL_SQL)
                .bind::<BigInt, _>(account)
                .bind::<Text, _>(&event.account_name)
                .bind::<Nullable<Timestamptz>, _>(Some(now))
                .execute(conn)
                .await?;
        }
    }
    let (actor_type, actor_id) = actor_columns(scope);
    let audit = AuditEvent {
        actor_type,
        actor_id,
        action: event.change.as_str(),
        target: Some(format!("account:{account}")),
        metadata: json!({ "event_id": event.id, "delivery": event.delivery }),
        audit: &event.audit,
        at: now,
    };
    insert_audit(conn, &[audit.row(Some(event.account_id))]).await?;
    let members: Vec<i64> = account_members::table
        .filter(account_members::account_id.eq(account))
        .select(account_members::user_id)
        .order(account_members::user_id.asc())
        .load(conn)
        .await?;
    let members: Vec<UserId> = members.into_iter().map(UserId::new).collect();
    for user in &members {
        notify(conn, &user_payload(*user)).await?;
    }
    Ok(Some(members))
}

#[async_trait]
impl AccountInstallations for PgAccountInstallations {
    async fn apply(
        &self,
        scope: &PlatformScope,
        event: &InstallationEvent,
    ) -> Result<InstallationOutcome, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let now = OffsetDateTime::now_utc();
        let applied = conn
            .transaction::<_, TxError, _>(async |conn| apply_in(conn, scope, event, now).await)
            .await
            .map_err(|e| e.into_store("apply platform app event"))?;
        let Some(members) = applied else {
            return Ok(InstallationOutcome::Duplicate);
        };
        if let Some(invalidator) = &self.invalidator {
            for user in members {
                invalidator.user(user);
            }
        }
        tracing::info!(
            event_id = event.id.as_str(),
            event = event.change.as_str(),
            account_id = event.account_id.get(),
            "platform app event applied"
        );
        Ok(InstallationOutcome::Applied)
    }
}
