//! Sign-in through Chatwoot, token refresh, logout, the caller's profile and sessions.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;
use whatpro_iam::{ChatwootCredential, IamError, LoginResult, Principal, SessionId};
use whatpro_kernel::AccountId;
use whatpro_ratelimit::{Decision, Quota};

use super::auth::{Caller, ClientInfo, cookie};
use super::error::{ApiError, ErrorBody};
use super::observe::LogIdentity;
use crate::state::AppState;

/// Name of the refresh cookie.
pub const REFRESH_COOKIE: &str = "whatpro_refresh";
/// Path the refresh cookie is scoped to.
const COOKIE_PATH: &str = "/api/v1/auth";
/// Longest credential string accepted.
const MAX_CREDENTIAL_LEN: usize = 512;

/// The devise session headers of the Chatwoot dashboard (`cw_d_session_info`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatwootSessionBody {
    /// `access-token`.
    #[serde(rename = "access-token")]
    pub access_token: String,
    /// `client`.
    pub client: String,
    /// `uid` (the email).
    pub uid: String,
}

/// Where the refresh token goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenDelivery {
    /// `whatpro_refresh` cookie (default).
    #[default]
    Cookie,
    /// `refresh_token` in the JSON body.
    Body,
}

/// `POST /api/v1/auth/sso`: exactly one of the two credentials.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SsoBody {
    /// A Chatwoot user's personal API token.
    pub chatwoot_access_token: Option<String>,
    /// The Chatwoot dashboard session.
    pub chatwoot_session: Option<ChatwootSessionBody>,
    /// When set, the user must be an active member of this account.
    pub account_id: Option<i64>,
    /// Cookie (default) or body.
    #[serde(default)]
    pub token_delivery: TokenDelivery,
}

/// `POST /api/v1/auth/refresh` and `/logout` bodies (optional in cookie mode).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RefreshBody {
    /// The refresh token (body mode).
    pub refresh_token: Option<String>,
}

/// The signed-in user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Chatwoot user id.
    pub id: i64,
    /// Email.
    pub email: String,
    /// Name.
    pub name: String,
    /// Operator of the Hub.
    pub super_admin: bool,
}

/// An account the user can use, with their Hub role.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    /// Chatwoot account id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Hub role.
    pub role: String,
}

/// Answer of SSO and refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// PASETO access token.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The session.
    pub session_id: Uuid,
    /// The user.
    pub user: UserView,
    /// Usable accounts.
    pub accounts: Vec<AccountView>,
    /// Only with `"token_delivery": "body"` (or a body-mode refresh).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// `GET /api/v1/me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    /// The user.
    pub user: UserView,
    /// Usable accounts.
    pub accounts: Vec<AccountView>,
    /// The current session.
    pub session_id: Uuid,
}

/// One of the caller's sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// Id.
    pub id: Uuid,
    /// The session of this request.
    pub current: bool,
    /// Device.
    pub user_agent: Option<String>,
    /// Client IP at login.
    pub ip: Option<String>,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last login or refresh.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// Ends unless refreshed.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `{"data": [...], "next_cursor": null}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    /// Live sessions, newest first.
    pub data: Vec<SessionView>,
    /// Always null (a user has few sessions).
    pub next_cursor: Option<String>,
}

/// `POST /api/v1/me/sessions/revoke-others`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedCount {
    /// How many sessions ended.
    pub revoked: u64,
}

fn user_view(principal: &Principal) -> (UserView, Vec<AccountView>) {
    let user = &principal.user;
    (
        UserView {
            id: user.id.get(),
            email: user.email.clone(),
            name: user.name.clone(),
            super_admin: user.super_admin,
        },
        principal
            .memberships
            .iter()
            .map(|m| AccountView {
                id: m.account_id.get(),
                name: m.account_name.clone(),
                role: m.role.to_string(),
            })
            .collect(),
    )
}

/// Parses an optional JSON body with the same errors as the JSON extractor.
fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                format!("the body does not have the expected fields: {e}"),
            )
        } else {
            ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
        }
    })
}

/// Counts one event for `key`; 429 `rate_limited` with `Retry-After` when over `quota`.
///
/// # Errors
/// The 429.
pub(crate) async fn limit(state: &AppState, key: String, quota: Quota) -> Result<(), ApiError> {
    match state.limiter.check(&key, quota).await {
        Decision::Allowed { .. } => Ok(()),
        limited @ Decision::Limited { .. } => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many attempts; retry later",
        )
        .with_retry_after(limited.retry_after_secs().unwrap_or(1))),
    }
}

fn refresh_cookie(token: &str, max_age: i64) -> HeaderValue {
    let text = format!(
        "{REFRESH_COOKIE}={token}; Path={COOKIE_PATH}; Max-Age={max_age}; HttpOnly; Secure; SameSite=None; Partitioned"
    );
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("whatpro_refresh=; Max-Age=0"))
}

fn login_response(
    result: LoginResult,
    delivery: TokenDelivery,
    now: OffsetDateTime,
) -> HttpResponse {
    let (user, accounts) = user_view(&result.principal);
    let expires_in = (result.access_token.expires_at - now)
        .as_seconds_f64()
        .round()
        .max(0.0);
    let expires_in = expires_in as i64;
    let cookie_age = (result.session.expires_at() - now).whole_seconds().max(0);
    let body = LoginResponse {
        access_token: result.access_token.token,
        token_type: "Bearer",
        expires_in,
        session_id: result.session.id.as_uuid(),
        user,
        accounts,
        refresh_token: (delivery == TokenDelivery::Body).then(|| result.refresh_token.clone()),
    };
    let mut response = HttpResponse::Ok().json(body);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if delivery == TokenDelivery::Cookie {
        response.headers_mut().append(
            header::SET_COOKIE,
            refresh_cookie(&result.refresh_token, cookie_age),
        );
    }
    response
}

/// Cookie-mode refresh and logout must come from the Hub's own origin or an allowed one.
fn check_origin(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let config = &state.config;
    let allowed = origin == config.public_url.as_str()
        || config
            .trusted_origins()
            .iter()
            .any(|o| o.as_str() == origin);
    if allowed {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "cookie requests must come from the Hub or an allowed origin",
        ))
    }
}

fn credential(body: &SsoBody) -> Result<ChatwootCredential, ApiError> {
    let invalid = |message: &str| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message.to_owned(),
        )
    };
    let field_ok = |s: &str| !s.trim().is_empty() && s.len() <= MAX_CREDENTIAL_LEN;
    match (&body.chatwoot_access_token, &body.chatwoot_session) {
        (Some(token), None) if field_ok(token) => {
            Ok(ChatwootCredential::AccessToken(token.trim().to_owned()))
        }
        (None, Some(s)) if field_ok(&s.access_token) && field_ok(&s.client) && field_ok(&s.uid) => {
            Ok(ChatwootCredential::Session {
                access_token: s.access_token.clone(),
                client: s.client.clone(),
                uid: s.uid.clone(),
            })
        }
        (Some(_), Some(_)) => Err(invalid(
            "send either chatwoot_access_token or chatwoot_session, not both",
        )),
        (None, None) => Err(invalid(
            "chatwoot_access_token or chatwoot_session is required",
        )),
        _ => Err(invalid(
            "the Chatwoot credential is empty or longer than 512 characters",
        )),
    }
}

/// Signs in with a Chatwoot credential.
#[utoipa::path(
    tag = "auth",
    request_body = SsoBody,
    responses(
        (status = 200, body = LoginResponse, description = "Signed in; the refresh token is in the `whatpro_refresh` cookie unless `token_delivery` is `body`"),
        (status = 401, body = ErrorBody, description = "`chatwoot_credentials_invalid`"),
        (status = 403, body = ErrorBody, description = "`not_a_member` of the requested account"),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 502, body = ErrorBody, description = "`chatwoot_bad_gateway`"),
        (status = 503, body = ErrorBody, description = "`chatwoot_unavailable`"),
    )
)]
#[post("/api/v1/auth/sso")]
pub async fn sso(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<SsoBody>,
) -> Result<HttpResponse, ApiError> {
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    limit(
        &state,
        format!("sso:ip:{}", client.ip),
        Quota::per_minute(state.config.sso_rate_per_minute),
    )
    .await?;
    let body = body.into_inner();
    let credential = credential(&body)?;
    let result = state
        .iam
        .sso(
            credential,
            body.account_id.map(AccountId::new),
            client.device,
            client.audit,
        )
        .await?;
    req.extensions_mut().insert(LogIdentity {
        account_id: body.account_id,
        user_id: Some(result.principal.user.id.get()),
    });
    Ok(login_response(result, body.token_delivery, state.iam.now()))
}

/// Rotates the refresh token (cookie or body) into a new pair.
#[utoipa::path(
    tag = "auth",
    request_body(content = RefreshBody, description = "Optional in cookie mode"),
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, body = ErrorBody, description = "`refresh_token_invalid`, `refresh_token_expired`, `refresh_token_reused` (the session is revoked), `session_expired`"),
        (status = 403, body = ErrorBody, description = "`origin_not_allowed` (cookie mode)"),
        (status = 429, body = ErrorBody),
    )
)]
#[post("/api/v1/auth/refresh")]
pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: RefreshBody = optional_json(&body)?;
    let (token, delivery) = match body.refresh_token {
        Some(token) => (token, TokenDelivery::Body),
        None => {
            let token = cookie(&req, REFRESH_COOKIE).ok_or(IamError::RefreshInvalid)?;
            check_origin(&req, &state)?;
            (token, TokenDelivery::Cookie)
        }
    };
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    limit(
        &state,
        format!("refresh:ip:{}", client.ip),
        Quota::per_minute(120),
    )
    .await?;
    if let Some(session) = state.iam.session_of_refresh(&token).await? {
        limit(
            &state,
            format!("refresh:session:{session}"),
            Quota::per_minute(60),
        )
        .await?;
    }
    let result = state.iam.refresh(&token, client.audit).await?;
    req.extensions_mut().insert(LogIdentity {
        account_id: None,
        user_id: Some(result.principal.user.id.get()),
    });
    Ok(login_response(result, delivery, state.iam.now()))
}

/// Ends the current session (Bearer access token, or the refresh cookie alone).
#[utoipa::path(
    tag = "auth",
    responses(
        (status = 204, description = "Logged out; the refresh cookie is cleared"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "`origin_not_allowed` (cookie mode)"),
    )
)]
#[post("/api/v1/auth/logout")]
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    let has_bearer = req.headers().contains_key(header::AUTHORIZATION);
    if has_bearer {
        let caller = Caller(super::auth::authenticate_request(&req).await?);
        state.iam.logout(&caller.0, &client.audit).await?;
    } else {
        let token = cookie(&req, REFRESH_COOKIE).ok_or(IamError::Unauthenticated)?;
        check_origin(&req, &state)?;
        state.iam.logout_with_refresh(&token, &client.audit).await?;
    }
    let mut response = HttpResponse::NoContent().finish();
    response
        .headers_mut()
        .append(header::SET_COOKIE, refresh_cookie("", 0));
    Ok(response)
}

/// The signed-in user and their accounts.
#[utoipa::path(tag = "me", responses((status = 200, body = MeResponse), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
#[get("/api/v1/me")]
pub async fn me(caller: Caller) -> HttpResponse {
    let principal = &caller.0.principal;
    let user = &principal.user;
    HttpResponse::Ok().json(MeBody {
        user: UserRef {
            id: user.id.get(),
            email: &user.email,
            name: &user.name,
            super_admin: user.super_admin,
        },
        accounts: principal
            .memberships
            .iter()
            .map(|m| AccountRef {
                id: m.account_id.get(),
                name: &m.account_name,
                role: m.role.as_str(),
            })
            .collect(),
        session_id: caller.0.claims.session_id.as_uuid(),
    })
}

/// The body of `GET /api/v1/me` ([`MeResponse`] is its documented shape), written straight
/// from the cached principal: the busiest authenticated read copies no strings.
#[derive(Serialize)]
struct MeBody<'a> {
    user: UserRef<'a>,
    accounts: Vec<AccountRef<'a>>,
    session_id: Uuid,
}

/// [`UserView`], borrowed.
#[derive(Serialize)]
struct UserRef<'a> {
    id: i64,
    email: &'a str,
    name: &'a str,
    super_admin: bool,
}

/// [`AccountView`], borrowed.
#[derive(Serialize)]
struct AccountRef<'a> {
    id: i64,
    name: &'a str,
    role: &'static str,
}

/// The caller's live sessions, the current one marked.
#[utoipa::path(tag = "me", responses((status = 200, body = SessionList), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
#[get("/api/v1/me/sessions")]
pub async fn list_sessions(
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<web::Json<SessionList>, ApiError> {
    let current = caller.0.claims.session_id;
    let sessions = state.iam.sessions(&caller.0).await?;
    let data = sessions
        .into_iter()
        .map(|s| SessionView {
            id: s.id.as_uuid(),
            current: s.id == current,
            expires_at: s.expires_at(),
            user_agent: s.user_agent,
            ip: s.ip,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
        })
        .collect();
    Ok(web::Json(SessionList {
        data,
        next_cursor: None,
    }))
}

/// Revokes one of the caller's sessions (others' sessions answer 404).
#[utoipa::path(
    tag = "me",
    params(("session_id" = Uuid, Path, description = "A session id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody, description = "`session_not_found`")),
    security(("bearer" = []))
)]
#[delete("/api/v1/me/sessions/{session_id}")]
pub async fn revoke_session(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    state
        .iam
        .revoke_session(
            &caller.0,
            SessionId::from_uuid(path.into_inner()),
            &client.audit,
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Revokes every session of the caller except the current one.
#[utoipa::path(tag = "me", responses((status = 200, body = RevokedCount), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
#[post("/api/v1/me/sessions/revoke-others")]
pub async fn revoke_other_sessions(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<web::Json<RevokedCount>, ApiError> {
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    let revoked = state
        .iam
        .revoke_other_sessions(&caller.0, &client.audit)
        .await?;
    Ok(web::Json(RevokedCount { revoked }))
}
