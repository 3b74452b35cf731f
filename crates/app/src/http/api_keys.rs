//! API keys of an account (admins): create, list, rotate, revoke.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use uuid::Uuid;
use whatpro_iam::{ApiKeyId, ApiKeyRecord, ApiKeyRequest, IamError, IssuedApiKey};
use whatpro_kernel::{Cursor, Limit};

use super::auth::{Authed, ClientInfo, policy};
use super::error::{ApiError, ErrorBody};
use super::tenancy::{ListPage, PageParams};
use crate::state::AppState;

/// `POST .../api-keys`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateApiKeyBody {
    /// A label, 1-100 characters.
    pub name: String,
    /// Scopes such as `members:read` (at least one; each allowed to your role).
    pub scopes: Vec<String>,
    /// RFC 3339 time in the future after which the key stops working; none: until revoked.
    pub expires_at: Option<String>,
}

/// A key as created or rotated: `key` is shown only in this answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyCreated {
    /// Id.
    pub id: Uuid,
    /// The full key, `whp_<prefix>_<secret>`; store it now, it is never shown again.
    pub key: String,
    /// The public part of the key (shown in lists).
    pub prefix: String,
    /// Label.
    pub name: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// RFC 3339, or null (until revoked).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<OffsetDateTime>,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
}

impl From<IssuedApiKey> for ApiKeyCreated {
    fn from(issued: IssuedApiKey) -> Self {
        let record = issued.record;
        Self {
            id: record.id.as_uuid(),
            key: issued.key,
            prefix: record.prefix,
            name: record.name,
            scopes: record.scopes.names(),
            expires_at: record.expires_at,
            created_at: record.created_at,
        }
    }
}

/// A key in a list (never its secret or hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    /// Id.
    pub id: Uuid,
    /// The public part of the key.
    pub prefix: String,
    /// Label.
    pub name: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// The Chatwoot user id of its creator (whose current role the key acts with).
    pub created_by: i64,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    /// RFC 3339 (updated at most once a minute), or null.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub last_used_at: Option<OffsetDateTime>,
    /// RFC 3339, or null.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<OffsetDateTime>,
    /// RFC 3339, or null.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<ApiKeyRecord> for ApiKeyView {
    fn from(key: ApiKeyRecord) -> Self {
        Self {
            id: key.id.as_uuid(),
            prefix: key.prefix,
            name: key.name,
            scopes: key.scopes.names(),
            created_by: key.created_by.get(),
            created_at: key.created_at,
            last_used_at: key.last_used_at,
            expires_at: key.expires_at,
            revoked_at: key.revoked_at,
        }
    }
}

/// A response that must not be stored by any cache (it carries a secret).
fn secret_response(status: StatusCode, body: ApiKeyCreated) -> HttpResponse {
    let mut response = HttpResponse::build(status).json(body);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn expiry(text: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    text.map(|t| {
        OffsetDateTime::parse(t, &Rfc3339).map_err(|_| {
            ApiError::from(IamError::Invalid(
                "expires_at must be an RFC 3339 time such as 2030-01-31T12:00:00Z".to_owned(),
            ))
        })
    })
    .transpose()
}

/// Creates an API key (admins). Its scopes never exceed the creator's role; the key acts with
/// the creator's current role in this account.
#[utoipa::path(
    tag = "api_keys",
    params(("account_id" = i64, Path, description = "Chatwoot account id")),
    request_body = CreateApiKeyBody,
    responses(
        (status = 201, body = ApiKeyCreated, description = "Created; `key` is shown only here"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "`forbidden` (not an admin), `insufficient_scope` (a scope beyond what you may grant)"),
        (status = 422, body = ErrorBody, description = "`validation_failed` (name, empty scopes, expiry), `unknown_scope`"),
        (status = 429, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/accounts/{account_id}/api-keys")]
pub async fn create_api_key(
    req: HttpRequest,
    auth: Authed<policy::ApiKeysWrite>,
    state: web::Data<AppState>,
    body: web::Json<CreateApiKeyBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let request = ApiKeyRequest {
        expires_at: expiry(body.expires_at.as_deref())?,
        name: body.name,
        scopes: body.scopes,
    };
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    let issued = state
        .iam
        .create_api_key(&auth.scope, request, client.audit)
        .await?;
    Ok(secret_response(StatusCode::CREATED, issued.into()))
}

/// The account's API keys, by id (never their secrets).
#[utoipa::path(
    tag = "api_keys",
    params(("account_id" = i64, Path, description = "Chatwoot account id"), PageParams),
    responses((status = 200, body = ListPage<ApiKeyView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/v1/accounts/{account_id}/api-keys")]
pub async fn list_api_keys(
    auth: Authed<policy::ApiKeysRead>,
    state: web::Data<AppState>,
    params: web::Query<PageParams>,
) -> Result<web::Json<ListPage<ApiKeyView>>, ApiError> {
    let after = params
        .cursor
        .as_deref()
        .map(|c| {
            Cursor::decode(c)
                .ok()
                .and_then(|key| Uuid::parse_str(&key).ok())
                .map(ApiKeyId::from_uuid)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_cursor",
                        "the cursor is not one this server issued",
                    )
                })
        })
        .transpose()?;
    let page = state
        .iam
        .list_api_keys(&auth.scope, after, Limit::clamped(params.limit))
        .await?;
    Ok(web::Json(ListPage {
        next_cursor: page
            .next_after
            .map(|id| Cursor::encode(&id.to_string()).as_str().to_owned()),
        data: page.keys.into_iter().map(ApiKeyView::from).collect(),
    }))
}

/// Gives a key a new secret; the old secret stops working at once (on every instance).
#[utoipa::path(
    tag = "api_keys",
    params(("account_id" = i64, Path, description = "Chatwoot account id"), ("key_id" = Uuid, Path, description = "API key id")),
    responses(
        (status = 200, body = ApiKeyCreated, description = "The new `key`, shown only here"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`api_key_not_found`"),
        (status = 409, body = ErrorBody, description = "`api_key_revoked`"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/accounts/{account_id}/api-keys/{key_id}/rotate")]
pub async fn rotate_api_key(
    req: HttpRequest,
    auth: Authed<policy::ApiKeysWrite>,
    state: web::Data<AppState>,
    path: web::Path<(i64, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (_, key_id) = path.into_inner();
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    let issued = state
        .iam
        .rotate_api_key(&auth.scope, ApiKeyId::from_uuid(key_id), client.audit)
        .await?;
    Ok(secret_response(StatusCode::OK, issued.into()))
}

/// Revokes a key at once (on every instance). Revoking a revoked key succeeds.
#[utoipa::path(
    tag = "api_keys",
    params(("account_id" = i64, Path, description = "Chatwoot account id"), ("key_id" = Uuid, Path, description = "API key id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`api_key_not_found`"),
    ),
    security(("bearer" = []))
)]
#[delete("/api/v1/accounts/{account_id}/api-keys/{key_id}")]
pub async fn revoke_api_key(
    req: HttpRequest,
    auth: Authed<policy::ApiKeysWrite>,
    state: web::Data<AppState>,
    path: web::Path<(i64, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (_, key_id) = path.into_inner();
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    state
        .iam
        .revoke_api_key(&auth.scope, ApiKeyId::from_uuid(key_id), client.audit)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
