//! Instance tokens of the embedded UI: issue (with a Hub access token or the Chatwoot dashboard
//! session), validate, revoke.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;
use whatpro_entitlements::Feature;
use whatpro_iam::{
    ChatwootCredential, IamError, InstanceClaims, InstanceTokenRequest, PlatformScope,
};
use whatpro_kernel::AccountId;
use whatpro_ratelimit::Quota;

use super::auth::{Caller, ClientInfo, authenticate_instance_token, authenticate_request};
use super::error::{ApiError, ErrorBody};
use super::iam::{ChatwootSessionBody, limit};
use super::observe::LogIdentity;
use crate::config::Origin;
use crate::state::AppState;

/// Longest Chatwoot session field accepted.
const MAX_CREDENTIAL_LEN: usize = 512;

/// `POST /api/v1/instance-tokens`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InstanceTokenBody {
    /// The Chatwoot account the token works in (the user must be an active member).
    pub account_id: i64,
    /// Scopes such as `chat:read`; left out: every scope the user's role allows (viewers: read
    /// scopes only).
    pub scopes: Option<Vec<String>>,
    /// Lifetime in minutes: 1-60, default 15.
    pub ttl_minutes: Option<u32>,
    /// The web origin (`https://host[:port]`) whose requests may use the token; in production
    /// (https `HUB_PUBLIC_URL`) it must be https.
    pub origin: Option<String>,
    /// The Chatwoot dashboard session (the dashboard script's way in), instead of a Bearer
    /// access token.
    pub chatwoot_session: Option<ChatwootSessionBody>,
}

/// An issued instance token.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceTokenIssued {
    /// The PASETO (`Authorization: Bearer`), usable only with the bound `Origin`.
    pub token: String,
    /// Its id (for revocation).
    pub jti: Uuid,
    /// The account it works in.
    pub account_id: i64,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub expires_at: OffsetDateTime,
}

/// `GET /api/v1/instance-tokens/validate`.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceTokenValidation {
    /// Always true (an invalid token answers 401).
    pub valid: bool,
    /// The account it works in.
    pub account_id: i64,
    /// The Chatwoot user it acts for.
    pub user_id: i64,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub expires_at: OffsetDateTime,
}

fn no_store(mut response: HttpResponse) -> HttpResponse {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn invalid(message: impl Into<String>) -> ApiError {
    IamError::Invalid(message.into()).into()
}

/// The token's origin: a valid http(s) origin, https in production mode.
fn bound_origin(text: Option<&str>, state: &AppState) -> Result<String, ApiError> {
    let text = text
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| invalid("origin is required (e.g. https://hub.example.com)"))?;
    let origin = Origin::parse(text).map_err(|problem| invalid(format!("origin: {problem}")))?;
    if state.config.public_url.is_https() && !origin.is_https() {
        return Err(invalid(
            "origin must use https (the Hub runs in production mode)",
        ));
    }
    Ok(origin.as_str().to_owned())
}

fn session_credential(body: &ChatwootSessionBody) -> Result<ChatwootCredential, ApiError> {
    let ok = |s: &str| !s.trim().is_empty() && s.len() <= MAX_CREDENTIAL_LEN;
    if ok(&body.access_token) && ok(&body.client) && ok(&body.uid) {
        Ok(ChatwootCredential::Session {
            access_token: body.access_token.clone(),
            client: body.client.clone(),
            uid: body.uid.clone(),
        })
    } else {
        Err(invalid(
            "chatwoot_session needs access-token, client and uid, each 1-512 characters",
        ))
    }
}

fn issued_view(token: String, claims: &InstanceClaims) -> InstanceTokenIssued {
    InstanceTokenIssued {
        token,
        jti: claims.token_id,
        account_id: claims.account_id.get(),
        scopes: claims.scopes.names(),
        expires_at: claims.expires_at,
    }
}

/// Issues an instance token for the embedded UI, authenticated by a Hub access token (Bearer)
/// or by the Chatwoot dashboard session in the body (checked with Chatwoot; no Hub session is
/// created; limited per client IP like SSO).
#[utoipa::path(
    tag = "instance_tokens",
    request_body = InstanceTokenBody,
    responses(
        (status = 201, body = InstanceTokenIssued),
        (status = 401, body = ErrorBody, description = "`unauthenticated`, `chatwoot_credentials_invalid`, access-token codes"),
        (status = 403, body = ErrorBody, description = "`not_a_member`, `insufficient_scope` (scopes above the role)"),
        (status = 422, body = ErrorBody, description = "`validation_failed` (TTL over 60, origin missing, not an origin, not https in production), `unknown_scope`"),
        (status = 429, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
#[post("/api/v1/instance-tokens")]
pub async fn issue_instance_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<InstanceTokenBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    let has_bearer = req.headers().contains_key(header::AUTHORIZATION);
    let request = |origin: String| InstanceTokenRequest {
        account_id: AccountId::new(body.account_id),
        scopes: body.scopes.clone(),
        ttl_minutes: body.ttl_minutes,
        origin,
    };
    // The account's plan must include embedding (checked before anything is issued; the
    // answer reveals only that flag of the named account).
    let plan_scope = PlatformScope::for_system_jobs().tenant(AccountId::new(body.account_id));
    state
        .entitlements
        .require_feature(&plan_scope, Feature::Embed)
        .await?;
    let issued = match (has_bearer, &body.chatwoot_session) {
        (true, Some(_)) => {
            return Err(invalid(
                "send either a Bearer access token or chatwoot_session, not both",
            ));
        }
        (false, None) => return Err(IamError::Unauthenticated.into()),
        (true, None) => {
            let ctx = authenticate_request(&req).await?;
            let origin = bound_origin(body.origin.as_deref(), &state)?;
            state
                .iam
                .issue_instance_token(&ctx, request(origin), client.audit)
                .await?
        }
        (false, Some(session)) => {
            limit(
                &state,
                format!("instance_token:ip:{}", client.ip),
                Quota::per_minute(state.config.sso_rate_per_minute),
            )
            .await?;
            let credential = session_credential(session)?;
            let origin = bound_origin(body.origin.as_deref(), &state)?;
            state
                .iam
                .issue_instance_token_with_chatwoot(credential, request(origin), client.audit)
                .await?
        }
    };
    req.extensions_mut().insert(LogIdentity {
        account_id: Some(issued.claims.account_id.get()),
        user_id: Some(issued.claims.user_id.get()),
    });
    let view = issued_view(issued.token, &issued.claims);
    Ok(no_store(
        HttpResponse::build(StatusCode::CREATED).json(view),
    ))
}

/// Checks the Bearer instance token for this request's origin (`Origin`, or the Hub's own
/// origin for a same-origin request without one).
#[utoipa::path(
    tag = "instance_tokens",
    responses(
        (status = 200, body = InstanceTokenValidation),
        (status = 401, body = ErrorBody, description = "`unauthenticated`, `token_invalid`, `token_origin_mismatch`, `token_expired`, `token_revoked`"),
        (status = 403, body = ErrorBody, description = "`not_a_member` (the user left the account)"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/instance-tokens/validate")]
pub async fn validate_instance_token(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let auth = authenticate_instance_token(&req).await?;
    let claims = auth.claims;
    let body = InstanceTokenValidation {
        valid: true,
        account_id: claims.account_id.get(),
        user_id: claims.user_id.get(),
        scopes: claims.scopes.names(),
        expires_at: claims.expires_at,
    };
    Ok(no_store(HttpResponse::Ok().json(body)))
}

/// Revokes an instance token at once (on every instance). Allowed to the token's user and to
/// admins of its account; for anyone else it does not exist.
#[utoipa::path(
    tag = "instance_tokens",
    params(("jti" = Uuid, Path, description = "The token's `jti`")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`instance_token_not_found`"),
    ),
    security(("bearer" = []))
)]
#[delete("/api/v1/instance-tokens/{jti}")]
pub async fn revoke_instance_token(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    state
        .iam
        .revoke_instance_token(&caller.0, path.into_inner(), client.audit)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
