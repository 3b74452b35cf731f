//! The account's Chatwoot connection and its inbox mirror: connect (admins), read, disconnect;
//! list inboxes; sync them now; list sync runs.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;
use whatpro_inbox::{
    ChatwootConnection, ConnectionStatus, Inbox, InboxId, SyncRun, SyncRunId, SyncTrigger,
};
use whatpro_kernel::{Cursor, Limit};

use super::auth::{Authed, ClientInfo, policy};
use super::error::{ApiError, ErrorBody};
use super::tenancy::{ListPage, PageParams};
use crate::state::AppState;

/// The UUID carried by a `?cursor=` this server issued.
///
/// # Errors
/// 400 `invalid_cursor`.
pub fn uuid_cursor(cursor: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    cursor
        .map(|c| {
            Cursor::decode(c)
                .ok()
                .and_then(|key| Uuid::parse_str(&key).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_cursor",
                        "the cursor is not one this server issued",
                    )
                })
        })
        .transpose()
}

/// The `next_cursor` of a page whose last key is `next`.
pub fn next_cursor(next: Option<Uuid>) -> Option<String> {
    next.map(|id| Cursor::encode(&id.to_string()).as_str().to_owned())
}

/// `PUT .../chatwoot/connection`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ConnectionBody {
    /// The personal API token (Profile settings → Access token) of a Chatwoot administrator of
    /// this account. Checked with Chatwoot, stored encrypted, never shown again.
    pub api_access_token: String,
}

/// The last sync's counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncCountsView {
    /// Inboxes Chatwoot listed.
    pub fetched: i32,
    /// New in the mirror.
    pub added: i32,
    /// Name or channel type changed.
    pub updated: i32,
    /// Seen again unchanged.
    pub unchanged: i32,
    /// Gone from Chatwoot (kept, marked removed).
    pub removed: i32,
    /// Listed again after being removed.
    pub restored: i32,
    /// In service beyond the plan's `max_inboxes` after the sync.
    pub over_quota: i32,
}

/// One sync run.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncRunView {
    /// Id.
    pub id: Uuid,
    /// `manual` or `scheduled`.
    pub trigger: &'static str,
    /// `running`, `succeeded` or `failed` (the mirror was left as it was).
    pub status: &'static str,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub started_at: OffsetDateTime,
    /// RFC 3339, or null while running.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub finished_at: Option<OffsetDateTime>,
    /// What it did.
    pub counts: SyncCountsView,
    /// Why it failed.
    pub error: Option<String>,
}

impl From<SyncRun> for SyncRunView {
    fn from(run: SyncRun) -> Self {
        let c = run.counts;
        Self {
            id: run.id.as_uuid(),
            trigger: run.trigger.as_str(),
            status: run.status.as_str(),
            started_at: run.started_at,
            finished_at: run.finished_at,
            counts: SyncCountsView {
                fetched: c.fetched,
                added: c.added,
                updated: c.updated,
                unchanged: c.unchanged,
                removed: c.removed,
                restored: c.restored,
                over_quota: c.over_quota,
            },
            error: run.error,
        }
    }
}

/// The Chatwoot connection's state (never the token).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    /// Whether the account has a stored connection.
    pub connected: bool,
    /// The Chatwoot user whose token is stored.
    pub chatwoot_user_id: Option<i64>,
    /// That user's name.
    pub chatwoot_user_name: Option<String>,
    /// RFC 3339: when Chatwoot confirmed the token.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub verified_at: Option<OffsetDateTime>,
    /// RFC 3339: the end of the last successful sync.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub last_sync_at: Option<OffsetDateTime>,
    /// RFC 3339: first connected.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub created_at: Option<OffsetDateTime>,
    /// RFC 3339: token last replaced.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub updated_at: Option<OffsetDateTime>,
    /// The latest sync run, successful or not.
    pub last_run: Option<SyncRunView>,
}

impl ConnectionView {
    fn of(connection: Option<ChatwootConnection>, last_run: Option<SyncRun>) -> Self {
        Self {
            connected: connection.is_some(),
            chatwoot_user_id: connection.as_ref().map(|c| c.chatwoot_user_id.get()),
            chatwoot_user_name: connection.as_ref().map(|c| c.chatwoot_user_name.clone()),
            verified_at: connection.as_ref().map(|c| c.verified_at),
            last_sync_at: connection.as_ref().and_then(|c| c.last_sync_at),
            created_at: connection.as_ref().map(|c| c.created_at),
            updated_at: connection.as_ref().map(|c| c.updated_at),
            last_run: last_run.map(SyncRunView::from),
        }
    }
}

impl From<ConnectionStatus> for ConnectionView {
    fn from(status: ConnectionStatus) -> Self {
        Self::of(status.connection, status.last_run)
    }
}

/// A mirrored inbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxView {
    /// The Hub's id.
    pub id: Uuid,
    /// Chatwoot's id.
    pub chatwoot_inbox_id: i64,
    /// Name.
    pub name: String,
    /// Chatwoot channel type, e.g. `Channel::Whatsapp`.
    pub channel_type: String,
    /// The provider instance serving it, if any.
    pub provider_instance_id: Option<Uuid>,
    /// Beyond the plan's `max_inboxes` (the inboxes first seen keep service).
    pub over_quota: bool,
    /// Gone from Chatwoot (kept for history).
    pub removed: bool,
    /// RFC 3339: the last sync that saw it.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub last_synced_at: OffsetDateTime,
}

impl From<Inbox> for InboxView {
    fn from(inbox: Inbox) -> Self {
        Self {
            id: inbox.id.as_uuid(),
            chatwoot_inbox_id: inbox.chatwoot_inbox_id.get(),
            name: inbox.name,
            channel_type: inbox.channel_type,
            provider_instance_id: inbox.provider_instance_id.map(|i| i.as_uuid()),
            over_quota: inbox.over_quota,
            removed: inbox.removed,
            last_synced_at: inbox.last_synced_at,
        }
    }
}

/// Connects the account to Chatwoot with an administrator's personal API token (admins).
/// Chatwoot must accept the token and list its user as an administrator of this account; the
/// token is then stored encrypted (replacing an earlier one) and never returned.
#[utoipa::path(
    tag = "inboxes",
    params(("account_id" = i64, Path, description = "Chatwoot account id")),
    request_body = ConnectionBody,
    responses(
        (status = 200, body = ConnectionView, description = "Connected"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "`forbidden` (admins only)"),
        (status = 422, body = ErrorBody, description = "`validation_failed` (token shape), `chatwoot_token_invalid` (Chatwoot refused it), `chatwoot_not_admin` (its user is not an administrator of this account)"),
        (status = 502, body = ErrorBody, description = "`chatwoot_unavailable`: Chatwoot failed or did not answer in time"),
    ),
    security(("bearer" = []))
)]
#[put("/api/v1/accounts/{account_id}/chatwoot/connection")]
pub async fn put_connection(
    req: HttpRequest,
    auth: Authed<policy::SettingsWrite>,
    state: web::Data<AppState>,
    body: web::Json<ConnectionBody>,
) -> Result<web::Json<ConnectionView>, ApiError> {
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    let connection = state
        .inbox
        .connect(&auth.scope, &body.api_access_token, &client.audit)
        .await?;
    let last_run = state.inbox.status(&auth.scope).await?.last_run;
    Ok(web::Json(ConnectionView::of(Some(connection), last_run)))
}

/// The account's Chatwoot connection: whether there is one, whose token it is, the last sync
/// (never the token).
#[utoipa::path(
    tag = "inboxes",
    params(("account_id" = i64, Path, description = "Chatwoot account id")),
    responses((status = 200, body = ConnectionView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/v1/accounts/{account_id}/chatwoot/connection")]
pub async fn get_connection(
    auth: Authed<policy::InboxesRead>,
    state: web::Data<AppState>,
) -> Result<web::Json<ConnectionView>, ApiError> {
    Ok(web::Json(state.inbox.status(&auth.scope).await?.into()))
}

/// Removes the account's Chatwoot connection (admins). The mirror is kept; syncs answer 409
/// `chatwoot_not_connected` until an admin connects again. Removing a missing connection
/// succeeds.
#[utoipa::path(
    tag = "inboxes",
    params(("account_id" = i64, Path, description = "Chatwoot account id")),
    responses((status = 204, description = "Removed (or there was none)"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/api/v1/accounts/{account_id}/chatwoot/connection")]
pub async fn delete_connection(
    req: HttpRequest,
    auth: Authed<policy::SettingsWrite>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    state.inbox.disconnect(&auth.scope, &client.audit).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The account's inboxes as the last sync saw them, by the Hub's id (removed ones included).
#[utoipa::path(
    tag = "inboxes",
    params(("account_id" = i64, Path, description = "Chatwoot account id"), PageParams),
    responses(
        (status = 200, body = ListPage<InboxView>),
        (status = 400, body = ErrorBody, description = "`invalid_cursor`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/accounts/{account_id}/inboxes")]
pub async fn list_inboxes(
    auth: Authed<policy::InboxesRead>,
    state: web::Data<AppState>,
    params: web::Query<PageParams>,
) -> Result<web::Json<ListPage<InboxView>>, ApiError> {
    let after = uuid_cursor(params.cursor.as_deref())?.map(InboxId::from_uuid);
    let page = state
        .inbox
        .list_inboxes(&auth.scope, after, Limit::clamped(params.limit))
        .await?;
    Ok(web::Json(ListPage {
        next_cursor: next_cursor(page.next_after),
        data: page.items.into_iter().map(InboxView::from).collect(),
    }))
}

/// Syncs the mirror with Chatwoot now (admins and supervisors) and answers the run: inboxes
/// are upserted by Chatwoot id, those gone from Chatwoot marked removed, those beyond the
/// plan's `max_inboxes` flagged `over_quota` (the first seen keep service). One sync per
/// account at a time. When Chatwoot fails the mirror is left as it was and the run (see
/// `sync-runs`) records the error.
#[utoipa::path(
    tag = "inboxes",
    params(("account_id" = i64, Path, description = "Chatwoot account id")),
    responses(
        (status = 200, body = SyncRunView, description = "The run, succeeded"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`chatwoot_not_connected`, `sync_in_progress`, `chatwoot_reconnect_required`"),
        (status = 502, body = ErrorBody, description = "`chatwoot_unavailable`: Chatwoot answered 401/404/5xx, something unreadable, or nothing in time; the mirror is unchanged"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/accounts/{account_id}/inboxes/sync")]
pub async fn sync_inboxes(
    auth: Authed<policy::InboxesWrite>,
    state: web::Data<AppState>,
) -> Result<web::Json<SyncRunView>, ApiError> {
    let run = state.inbox.sync(&auth.scope, SyncTrigger::Manual).await?;
    Ok(web::Json(run.into()))
}

/// The account's sync runs, newest first.
#[utoipa::path(
    tag = "inboxes",
    params(("account_id" = i64, Path, description = "Chatwoot account id"), PageParams),
    responses(
        (status = 200, body = ListPage<SyncRunView>),
        (status = 400, body = ErrorBody, description = "`invalid_cursor`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/accounts/{account_id}/inboxes/sync-runs")]
pub async fn list_sync_runs(
    auth: Authed<policy::InboxesRead>,
    state: web::Data<AppState>,
    params: web::Query<PageParams>,
) -> Result<web::Json<ListPage<SyncRunView>>, ApiError> {
    let before = uuid_cursor(params.cursor.as_deref())?.map(SyncRunId::from_uuid);
    let page = state
        .inbox
        .list_runs(&auth.scope, before, Limit::clamped(params.limit))
        .await?;
    Ok(web::Json(ListPage {
        next_cursor: next_cursor(page.next_after),
        data: page.items.into_iter().map(SyncRunView::from).collect(),
    }))
}
