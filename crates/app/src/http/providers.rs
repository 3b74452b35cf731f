//! WhatsApp providers and their instances (admins manage, every member reads), instance health
//! (current, history, probe now), and the provider webhook receiver.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;
use whatpro_entitlements::Metric;
use whatpro_inbox::{
    CreatedInstance, Credentials, HealthChange, InstanceHealth, InstanceId, InstancePatch,
    InstanceRequest, Provider, ProviderId, ProviderInstance, ProviderPatch, ProviderRequest,
};
use whatpro_kernel::Limit;

use super::auth::{Authed, ClientInfo, bearer, policy};
use super::error::{ApiError, ErrorBody};
use super::inbox::{next_cursor, uuid_cursor};
use super::tenancy::{ListPage, PageParams};
use crate::state::AppState;

/// Where providers send an instance's webhooks (`{instance_id}` replaced).
pub const PROVIDER_WEBHOOK_PATH: &str = "/api/v1/webhooks/providers/{instance_id}";

/// `Some(value)` for a present field (also `null`), `None` for an absent one (with
/// `#[serde(default)]`): tells "unlink" from "leave as is" in PATCH bodies.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

// ---------------------------------------------------------------------------------------------
// Bodies and views.

/// `POST .../providers`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateProviderBody {
    /// `evolution`, `zapi`, `wppconnect`, `uazapi` or `whatsapp_cloud`.
    #[serde(rename = "type")]
    pub provider_type: String,
    /// A label, 1-100 characters.
    pub name: String,
    /// The provider's base URL (http/https; checked against the SSRF guard).
    pub base_url: String,
    /// Secrets by key (per type: see docs/providers.md). Stored encrypted, never returned.
    #[serde(default)]
    pub credentials: BTreeMap<String, String>,
}

/// `PATCH .../providers/{provider_id}` (absent fields are unchanged; the type never changes).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PatchProviderBody {
    /// New label.
    pub name: Option<String>,
    /// New base URL.
    pub base_url: Option<String>,
    /// New credentials, replacing all of them.
    pub credentials: Option<BTreeMap<String, String>>,
}

/// A provider (credentials are never shown: only their key names).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderView {
    /// Id.
    pub id: Uuid,
    /// Type.
    #[serde(rename = "type")]
    pub provider_type: &'static str,
    /// Label.
    pub name: String,
    /// Base URL.
    pub base_url: String,
    /// Names of the stored credentials.
    pub credential_keys: Vec<String>,
    /// Live instances.
    pub instance_count: i64,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: OffsetDateTime,
}

impl From<Provider> for ProviderView {
    fn from(p: Provider) -> Self {
        Self {
            id: p.id.as_uuid(),
            provider_type: p.provider_type.as_str(),
            name: p.name,
            base_url: p.base_url,
            credential_keys: p.credential_keys,
            instance_count: p.instance_count,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// `POST .../instances`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateInstanceBody {
    /// The instance's name at the provider (Evolution instance name, Z-API instance id,
    /// WPPConnect session, uazapi label, WhatsApp Cloud phone-number id).
    pub name: String,
    /// The Hub inbox (`id` of `GET .../inboxes`) this instance serves.
    pub inbox_id: Option<Uuid>,
    /// The instance's own secrets (per type: see docs/providers.md).
    pub credentials: Option<BTreeMap<String, String>>,
}

/// `PATCH .../instances/{instance_id}` (absent fields are unchanged; `null` clears).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PatchInstanceBody {
    /// New name.
    pub name: Option<String>,
    /// New inbox link; `null` unlinks.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub inbox_id: Option<Option<Uuid>>,
    /// New credentials; `null` removes them.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub credentials: Option<Option<BTreeMap<String, String>>>,
}

/// An instance's health.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthView {
    /// `unknown` (never probed), `healthy`, `degraded` or `down`.
    pub state: &'static str,
    /// RFC 3339: when it was last established.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub checked_at: Option<OffsetDateTime>,
    /// The last probe's latency.
    pub latency_ms: Option<i64>,
    /// Why.
    pub reason: Option<String>,
}

impl From<InstanceHealth> for HealthView {
    fn from(h: InstanceHealth) -> Self {
        Self {
            state: h.state.as_str(),
            checked_at: h.checked_at,
            latency_ms: h.latency_ms,
            reason: h.reason,
        }
    }
}

/// An instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceView {
    /// Id.
    pub id: Uuid,
    /// Its provider.
    pub provider_id: Uuid,
    /// Name at the provider.
    pub name: String,
    /// The Hub inbox it serves.
    pub inbox_id: Option<Uuid>,
    /// Names of its own stored credentials.
    pub credential_keys: Vec<String>,
    /// Current health.
    pub health: HealthView,
    /// RFC 3339: the last provider event received.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub last_event_at: Option<OffsetDateTime>,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: OffsetDateTime,
}

impl From<ProviderInstance> for InstanceView {
    fn from(i: ProviderInstance) -> Self {
        Self {
            id: i.id.as_uuid(),
            provider_id: i.provider_id.as_uuid(),
            name: i.name,
            inbox_id: i.inbox_id.map(|id| id.as_uuid()),
            credential_keys: i.credential_keys,
            health: i.health.into(),
            last_event_at: i.last_event_at,
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

/// A created instance, with where and how its provider must send webhooks (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceCreated {
    /// The instance.
    #[serde(flatten)]
    pub instance: InstanceView,
    /// Where the provider sends this instance's events.
    pub webhook_url: String,
    /// Send as `Authorization: Bearer <webhook_token>`; shown only here (stored hashed).
    pub webhook_token: String,
}

/// One health transition.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthChangeView {
    /// Id (time-ordered).
    pub id: Uuid,
    /// The new state.
    pub state: &'static str,
    /// The state before (null for the first entry).
    pub previous_state: Option<&'static str>,
    /// Why.
    pub reason: Option<String>,
    /// The probe's latency, when a probe caused it.
    pub latency_ms: Option<i64>,
    /// `created`, `probe` or `webhook`.
    pub source: &'static str,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub at: OffsetDateTime,
}

impl From<HealthChange> for HealthChangeView {
    fn from(c: HealthChange) -> Self {
        Self {
            id: c.id,
            state: c.state.as_str(),
            previous_state: c.previous_state.map(|s| s.as_str()),
            reason: c.reason,
            latency_ms: c.latency_ms,
            source: c.source.as_str(),
            at: c.at,
        }
    }
}

/// What the Hub did with a provider webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAck {
    /// `recorded`, or `ignored` (an event the Hub does not use, or one naming another
    /// instance).
    pub status: &'static str,
    /// The normalised event name, e.g. `CONNECTION_UPDATE`.
    pub event: String,
    /// The instance's health state afterwards, when recorded.
    pub state: Option<&'static str>,
}

fn credentials(pairs: BTreeMap<String, String>) -> Credentials {
    Credentials::new(pairs)
}

fn webhook_url(state: &AppState, id: InstanceId) -> String {
    format!(
        "{}{}",
        state.config.public_url.as_str(),
        PROVIDER_WEBHOOK_PATH.replace("{instance_id}", &id.to_string())
    )
}

/// A response that no cache may keep (it carries a secret).
fn no_store(status: StatusCode, body: impl Serialize) -> HttpResponse {
    let mut response = HttpResponse::build(status).json(body);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

// ---------------------------------------------------------------------------------------------
// Providers.

/// Registers a WhatsApp provider (admins). Takes a `max_providers` slot.
#[utoipa::path(
    tag = "providers",
    params(("account_id" = i64, Path, description = "Chatwoot account id")),
    request_body = CreateProviderBody,
    responses(
        (status = 201, body = ProviderView, description = "Created (credentials stored encrypted, only their names shown)"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "`forbidden`, `feature_disabled`, `quota_exceeded` (details: resource, limit, used)"),
        (status = 422, body = ErrorBody, description = "`validation_failed`; `details[0].field` names `type` (unknown type), `name`, `base_url` (malformed or forbidden address) or `credentials` (missing or unknown key)"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/accounts/{account_id}/providers")]
pub async fn create_provider(
    req: HttpRequest,
    auth: Authed<policy::ProvidersWrite>,
    state: web::Data<AppState>,
    body: web::Json<CreateProviderBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    let provider = state
        .providers
        .create_provider(
            &auth.scope,
            ProviderRequest {
                provider_type: body.provider_type,
                name: body.name,
                base_url: body.base_url,
                credentials: credentials(body.credentials),
            },
            &client.audit,
        )
        .await?;
    Ok(HttpResponse::Created().json(ProviderView::from(provider)))
}

/// The account's providers, by id.
#[utoipa::path(
    tag = "providers",
    params(("account_id" = i64, Path, description = "Chatwoot account id"), PageParams),
    responses((status = 200, body = ListPage<ProviderView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/v1/accounts/{account_id}/providers")]
pub async fn list_providers(
    auth: Authed<policy::ProvidersRead>,
    state: web::Data<AppState>,
    params: web::Query<PageParams>,
) -> Result<web::Json<ListPage<ProviderView>>, ApiError> {
    let after = uuid_cursor(params.cursor.as_deref())?.map(ProviderId::from_uuid);
    let page = state
        .providers
        .list_providers(&auth.scope, after, Limit::clamped(params.limit))
        .await?;
    Ok(web::Json(ListPage {
        next_cursor: next_cursor(page.next_after),
        data: page.items.into_iter().map(ProviderView::from).collect(),
    }))
}

/// One provider.
#[utoipa::path(
    tag = "providers",
    params(("account_id" = i64, Path, description = "Chatwoot account id"), ("provider_id" = Uuid, Path, description = "Provider id")),
    responses((status = 200, body = ProviderView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "`provider_not_found`")),
    security(("bearer" = []))
)]
#[get("/api/v1/accounts/{account_id}/providers/{provider_id}")]
pub async fn get_provider(
    auth: Authed<policy::ProvidersRead>,
    state: web::Data<AppState>,
    path: web::Path<(i64, Uuid)>,
) -> Result<web::Json<ProviderView>, ApiError> {
    let (_, id) = path.into_inner();
    let provider = state
        .providers
        .provider(&auth.scope, ProviderId::from_uuid(id))
        .await?;
    Ok(web::Json(provider.into()))
}

/// Changes a provider's label, base URL or credentials (admins).
#[utoipa::path(
    tag = "providers",
    params(("account_id" = i64, Path, description = "Chatwoot account id"), ("provider_id" = Uuid, Path, description = "Provider id")),
    request_body = PatchProviderBody,
    responses(
        (status = 200, body = ProviderView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`provider_not_found`"),
        (status = 422, body = ErrorBody, description = "`validation_failed`"),
    ),
    security(("bearer" = []))
)]
#[patch("/api/v1/accounts/{account_id}/providers/{provider_id}")]
pub async fn update_provider(
    req: HttpRequest,
    auth: Authed<policy::ProvidersWrite>,
    state: web::Data<AppState>,
    path: web::Path<(i64, Uuid)>,
    body: web::Json<PatchProviderBody>,
) -> Result<web::Json<ProviderView>, ApiError> {
    let (_, id) = path.into_inner();
    let body = body.into_inner();
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    let provider = state
        .providers
        .update_provider(
            &auth.scope,
            ProviderId::from_uuid(id),
            ProviderPatch {
                name: body.name,
                base_url: body.base_url,
                credentials: body.credentials.map(credentials),
            },
            &client.audit,
        )
        .await?;
    Ok(web::Json(provider.into()))
}

/// Deletes a provider and its instances (admins); their quota slots are given back and their
/// webhook tokens stop working. Deleting a deleted provider succeeds.
#[utoipa::path(
    tag = "providers",
    params(("account_id" = i64, Path, description = "Chatwoot account id"), ("provider_id" = Uuid, Path, description = "Provider id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "`provider_not_found`")),
    security(("bearer" = []))
)]
#[delete("/api/v1/accounts/{account_id}/providers/{provider_id}")]
pub async fn delete_provider(
    req: HttpRequest,
    auth: Authed<policy::ProvidersWrite>,
    state: web::Data<AppState>,
    path: web::Path<(i64, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (_, id) = path.into_inner();
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    state
        .providers
        .delete_provider(&auth.scope, ProviderId::from_uuid(id), &client.audit)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---------------------------------------------------------------------------------------------
// Instances.

/// Creates an instance of a provider (admins) and answers, once, its `webhook_url` and
/// `webhook_token`. Takes a `max_instances` slot. Its health starts `unknown`.
#[utoipa::path(
    tag = "providers",
    params(("account_id" = i64, Path, description = "Chatwoot account id"), ("provider_id" = Uuid, Path, description = "Provider id")),
    request_body = CreateInstanceBody,
    responses(
        (status = 201, body = InstanceCreated, description = "Created; `webhook_token` is shown only here"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "`forbidden`, `feature_disabled`, `quota_exceeded`"),
        (status = 404, body = ErrorBody, description = "`provider_not_found` (also another account's provider)"),
        (status = 409, body = ErrorBody, description = "`inbox_already_linked`"),
        (status = 422, body = ErrorBody, description = "`validation_failed` (`name`, `credentials`), `inbox_not_found`"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/accounts/{account_id}/providers/{provider_id}/instances")]
pub async fn create_instance(
    req: HttpRequest,
    auth: Authed<policy::ProvidersWrite>,
    state: web::Data<AppState>,
    path: web::Path<(i64, Uuid)>,
    body: web::Json<CreateInstanceBody>,
) -> Result<HttpResponse, ApiError> {
    let (_, provider) = path.into_inner();
    let body = body.into_inner();
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    let CreatedInstance {
        instance,
        webhook_token,
    } = state
        .providers
        .create_instance(
            &auth.scope,
            ProviderId::from_uuid(provider),
            InstanceRequest {
                name: body.name,
                inbox_id: body.inbox_id,
                credentials: body.credentials.map(credentials),
            },
            &client.audit,
        )
        .await?;
    let url = webhook_url(&state, instance.id);
    Ok(no_store(
        StatusCode::CREATED,
        InstanceCreated {
            instance: instance.into(),
            webhook_url: url,
            webhook_token,
        },
    ))
}

/// The provider's instances with their health, by id.
#[utoipa::path(
    tag = "providers",
    params(("account_id" = i64, Path, description = "Chatwoot account id"), ("provider_id" = Uuid, Path, description = "Provider id"), PageParams),
    responses((status = 200, body = ListPage<InstanceView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "`provider_not_found`")),
    security(("bearer" = []))
)]
#[get("/api/v1/accounts/{account_id}/providers/{provider_id}/instances")]
pub async fn list_instances(
    auth: Authed<policy::ProvidersRead>,
    state: web::Data<AppState>,
    path: web::Path<(i64, Uuid)>,
    params: web::Query<PageParams>,
) -> Result<web::Json<ListPage<InstanceView>>, ApiError> {
    let (_, provider) = path.into_inner();
    let after = uuid_cursor(params.cursor.as_deref())?.map(InstanceId::from_uuid);
    let page = state
        .providers
        .list_instances(
            &auth.scope,
            ProviderId::from_uuid(provider),
            after,
            Limit::clamped(params.limit),
        )
        .await?;
    Ok(web::Json(ListPage {
        next_cursor: next_cursor(page.next_after),
        data: page.items.into_iter().map(InstanceView::from).collect(),
    }))
}

/// One instance with its health.
#[utoipa::path(
    tag = "providers",
    params(("account_id" = i64, Path, description = "Chatwoot account id"), ("provider_id" = Uuid, Path, description = "Provider id"), ("instance_id" = Uuid, Path, description = "Instance id")),
    responses((status = 200, body = InstanceView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "`instance_not_found`")),
    security(("bearer" = []))
)]
#[get("/api/v1/accounts/{account_id}/providers/{provider_id}/instances/{instance_id}")]
pub async fn get_instance(
    auth: Authed<policy::ProvidersRead>,
    state: web::Data<AppState>,
    path: web::Path<(i64, Uuid, Uuid)>,
) -> Result<web::Json<InstanceView>, ApiError> {
    let (_, provider, id) = path.into_inner();
    let instance = state
        .providers
        .instance(
            &auth.scope,
            ProviderId::from_uuid(provider),
            InstanceId::from_uuid(id),
        )
        .await?;
    Ok(web::Json(instance.into()))
}

/// Renames an instance, links or unlinks its inbox, replaces or removes its credentials
/// (admins).
#[utoipa::path(
    tag = "providers",
    params(("account_id" = i64, Path, description = "Chatwoot account id"), ("provider_id" = Uuid, Path, description = "Provider id"), ("instance_id" = Uuid, Path, description = "Instance id")),
    request_body = PatchInstanceBody,
    responses(
        (status = 200, body = InstanceView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`instance_not_found`"),
        (status = 409, body = ErrorBody, description = "`inbox_already_linked`"),
        (status = 422, body = ErrorBody, description = "`validation_failed`, `inbox_not_found`"),
    ),
    security(("bearer" = []))
)]
#[patch("/api/v1/accounts/{account_id}/providers/{provider_id}/instances/{instance_id}")]
pub async fn update_instance(
    req: HttpRequest,
    auth: Authed<policy::ProvidersWrite>,
    state: web::Data<AppState>,
    path: web::Path<(i64, Uuid, Uuid)>,
    body: web::Json<PatchInstanceBody>,
) -> Result<web::Json<InstanceView>, ApiError> {
    let (_, provider, id) = path.into_inner();
    let body = body.into_inner();
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    let instance = state
        .providers
        .update_instance(
            &auth.scope,
            ProviderId::from_uuid(provider),
            InstanceId::from_uuid(id),
            InstancePatch {
                name: body.name,
                inbox_id: body.inbox_id,
                credentials: body.credentials.map(|c| c.map(credentials)),
            },
            &client.audit,
        )
        .await?;
    Ok(web::Json(instance.into()))
}

/// Deletes an instance (admins): its quota slot is given back, it is no longer probed and its
/// webhook token stops working. Deleting a deleted instance succeeds.
#[utoipa::path(
    tag = "providers",
    params(("account_id" = i64, Path, description = "Chatwoot account id"), ("provider_id" = Uuid, Path, description = "Provider id"), ("instance_id" = Uuid, Path, description = "Instance id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "`instance_not_found`")),
    security(("bearer" = []))
)]
#[delete("/api/v1/accounts/{account_id}/providers/{provider_id}/instances/{instance_id}")]
pub async fn delete_instance(
    req: HttpRequest,
    auth: Authed<policy::ProvidersWrite>,
    state: web::Data<AppState>,
    path: web::Path<(i64, Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (_, provider, id) = path.into_inner();
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    state
        .providers
        .delete_instance(
            &auth.scope,
            ProviderId::from_uuid(provider),
            InstanceId::from_uuid(id),
            &client.audit,
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The instance's health transitions, newest first (the first entry is its creation,
/// `unknown`).
#[utoipa::path(
    tag = "providers",
    params(("account_id" = i64, Path, description = "Chatwoot account id"), ("provider_id" = Uuid, Path, description = "Provider id"), ("instance_id" = Uuid, Path, description = "Instance id"), PageParams),
    responses((status = 200, body = ListPage<HealthChangeView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "`instance_not_found`")),
    security(("bearer" = []))
)]
#[get("/api/v1/accounts/{account_id}/providers/{provider_id}/instances/{instance_id}/health")]
pub async fn health_history(
    auth: Authed<policy::ProvidersRead>,
    state: web::Data<AppState>,
    path: web::Path<(i64, Uuid, Uuid)>,
    params: web::Query<PageParams>,
) -> Result<web::Json<ListPage<HealthChangeView>>, ApiError> {
    let (_, provider, id) = path.into_inner();
    let before = uuid_cursor(params.cursor.as_deref())?;
    let page = state
        .providers
        .health_history(
            &auth.scope,
            ProviderId::from_uuid(provider),
            InstanceId::from_uuid(id),
            before,
            Limit::clamped(params.limit),
        )
        .await?;
    Ok(web::Json(ListPage {
        next_cursor: next_cursor(page.next_after),
        data: page.items.into_iter().map(HealthChangeView::from).collect(),
    }))
}

/// Probes the instance now (admins), as the scheduler would, and answers it with its new
/// health.
#[utoipa::path(
    tag = "providers",
    params(("account_id" = i64, Path, description = "Chatwoot account id"), ("provider_id" = Uuid, Path, description = "Provider id"), ("instance_id" = Uuid, Path, description = "Instance id")),
    responses((status = 200, body = InstanceView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "`instance_not_found`")),
    security(("bearer" = []))
)]
#[post("/api/v1/accounts/{account_id}/providers/{provider_id}/instances/{instance_id}/probe")]
pub async fn probe_instance(
    auth: Authed<policy::ProvidersWrite>,
    state: web::Data<AppState>,
    path: web::Path<(i64, Uuid, Uuid)>,
) -> Result<web::Json<InstanceView>, ApiError> {
    let (_, provider, id) = path.into_inner();
    let instance = state
        .health
        .probe_now(
            &auth.scope,
            ProviderId::from_uuid(provider),
            InstanceId::from_uuid(id),
        )
        .await?;
    Ok(web::Json(instance.into()))
}

// ---------------------------------------------------------------------------------------------
// Provider webhooks.

/// Receives a provider's event about one instance, authenticated by the instance's
/// `Authorization: Bearer <webhook_token>`. Evolution's `connection.update` (moves the health
/// state), `messages.upsert` and `qrcode.updated` are recorded (their arrival keeps a
/// "connected" instance from being judged silent); other events are acknowledged and ignored.
#[utoipa::path(
    tag = "webhooks",
    params(
        ("instance_id" = Uuid, Path, description = "Instance id (from its `webhook_url`)"),
        ("Authorization" = String, Header, description = "`Bearer <webhook_token>`"),
    ),
    request_body(content = Object, description = "Evolution webhook envelope `{event, instance, data, ...}`"),
    responses(
        (status = 200, body = WebhookAck, description = "Recorded, or acknowledged and ignored"),
        (status = 400, body = ErrorBody, description = "`invalid_json` (not JSON), `invalid_event` (a known event without the fields the Hub reads)"),
        (status = 401, body = ErrorBody, description = "`invalid_webhook_token` (missing or wrong token, or no such instance)"),
    )
)]
#[post("/api/v1/webhooks/providers/{instance_id}")]
pub async fn provider_webhook(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<web::Json<WebhookAck>, ApiError> {
    let outcome = state
        .providers
        .receive_webhook(path.into_inner(), bearer(&req), &body)
        .await?;
    state
        .metering
        .record(outcome.account_id, Metric::WebhooksProcessed, 1);
    Ok(web::Json(WebhookAck {
        status: if outcome.recorded {
            "recorded"
        } else {
            "ignored"
        },
        event: outcome.event,
        state: outcome.state.map(|s| s.as_str()),
    }))
}
