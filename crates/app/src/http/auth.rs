//! Authentication extractors: [`Caller`] (a live session) and [`Authed<P>`] (a tenant scope
//! whose role — and, for machine credentials, whose scopes — allow the policy `P`, for routes
//! with `{account_id}`).
//!
//! `Authorization: Bearer` carries one of three credentials, told apart without trial
//! decryption: `whp_...` is an API key; a PASETO whose (authenticated) footer says
//! `"typ":"instance"` is an instance token; anything else is taken for an access token. API keys
//! and instance tokens work only on `/api/v1/accounts/{account_id}/...` routes ([`Authed`]);
//! elsewhere they answer 401 `unsupported_credential`.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use whatpro_billing::Gate;
use whatpro_entitlements::Feature;
use whatpro_iam::{
    API_KEY_PREFIX, Action, ApiKeyAuth, AuditContext, AuthContext, DeviceInfo, IamError,
    InstanceAuth, TenantScope,
};
use whatpro_kernel::{AccountId, UserId};
use whatpro_ratelimit::Quota;

use super::error::ApiError;
use super::observe::LogIdentity;
use super::request_id::{self, RequestId};
use crate::config::Origin;
use crate::state::AppState;

/// An authenticated user with a live session (routes outside `/accounts/{account_id}`).
#[derive(Debug, Clone)]
pub struct Caller(pub AuthContext);

/// The verified credential behind a tenant scope.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A user's access token and live session.
    Session(AuthContext),
    /// An API key, acting with its creator's current role.
    ApiKey(ApiKeyAuth),
    /// An instance token of the embedded UI.
    InstanceToken(InstanceAuth),
}

impl Credential {
    /// The user the request acts for (an API key's creator).
    pub fn user_id(&self) -> UserId {
        match self {
            Credential::Session(ctx) => ctx.claims.user_id,
            Credential::ApiKey(auth) => auth.key.created_by,
            Credential::InstanceToken(auth) => auth.claims.user_id,
        }
    }
}

/// A tenant scope for the path's `{account_id}`, whose role (and scopes, for machine
/// credentials) allow `P::ACTION`.
#[derive(Debug, Clone)]
pub struct Authed<P> {
    /// The scope every tenant port takes.
    pub scope: TenantScope,
    /// The verified credential behind it.
    pub credential: Credential,
    _policy: PhantomData<P>,
}

/// A permission a route requires; implemented by the marker types in [`policy`].
pub trait Policy {
    /// The action checked against the caller's role.
    const ACTION: Action;
}

/// Marker types naming the action a route needs: `Authed<policy::MembersWrite>`.
pub mod policy {
    use super::{Action, Policy};

    macro_rules! policies {
        ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy)]
            pub struct $name;
            impl Policy for $name {
                const ACTION: Action = Action::$name;
            }
        )*};
    }

    policies!(
        /// List members.
        MembersRead,
        /// Change member roles.
        MembersWrite,
        /// Read the audit log.
        AuditRead,
        /// List API keys.
        ApiKeysRead,
        /// Create, rotate and revoke API keys.
        ApiKeysWrite,
        /// Read across accounts.
        PlatformRead,
        /// Change account settings (Chatwoot connection, Dashboard App registration).
        SettingsWrite,
        /// Read the plan, limits, usage counters and feature flags.
        FeaturesRead,
        /// Read metered usage reports.
        UsageRead,
        /// Read the billing state.
        BillingRead,
        /// Subscribe, change plan, cancel.
        BillingWrite,
        /// Read the inbox mirror.
        InboxesRead,
        /// Sync the inbox mirror.
        InboxesWrite,
        /// Read providers and instances.
        ProvidersRead,
        /// Manage providers and instances.
        ProvidersWrite,
    );
}

/// The `Authorization: Bearer` credential, if any.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    // Byte-level parsing: `HeaderValue::to_str` checks every byte one by one, which showed up
    // as the hottest Hub function of an authenticated request in a profile.
    let value = req.headers().get(header::AUTHORIZATION)?.as_bytes();
    let space = value.iter().position(|b| *b == b' ')?;
    let (scheme, token) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = token.trim_ascii();
    if token.is_empty() || !token.is_ascii() {
        return None;
    }
    std::str::from_utf8(token).ok()
}

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("application state missing"))
}

/// Which verifier a Bearer credential needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BearerKind {
    ApiKey,
    InstanceToken,
    Access,
}

fn classify(state: &AppState, token: &str) -> BearerKind {
    if token.starts_with(API_KEY_PREFIX) {
        BearerKind::ApiKey
    } else if state.iam.is_instance_token(token) {
        BearerKind::InstanceToken
    } else {
        BearerKind::Access
    }
}

fn note_identity(req: &HttpRequest, account: Option<i64>, user: UserId) {
    let mut ext = req.extensions_mut();
    let mut identity = ext.get::<LogIdentity>().copied().unwrap_or_default();
    identity.user_id = Some(user.get());
    if account.is_some() {
        identity.account_id = account;
    }
    ext.insert(identity);
}

/// The web origin a request comes from, for instance tokens: its `Origin` header (normalised);
/// without one, the Hub's own origin when the browser says the request is same-origin
/// (`Sec-Fetch-Site: same-origin` — browsers omit `Origin` on same-origin GETs); else none.
pub fn request_origin(req: &HttpRequest, public_url: &Origin) -> Option<String> {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let text = origin.to_str().ok()?;
        return Some(
            Origin::parse(text).map_or_else(|_| text.to_owned(), |o| o.as_str().to_owned()),
        );
    }
    let same_origin = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("same-origin"));
    same_origin.then(|| public_url.as_str().to_owned())
}

/// Authenticates the request's Bearer access token (for handlers that accept several
/// credentials). API keys and instance tokens are refused here.
///
/// # Errors
/// 401 codes of `IamError` (`unsupported_credential` for API keys and instance tokens).
pub async fn authenticate_request(req: &HttpRequest) -> Result<AuthContext, ApiError> {
    let state = state(req)?;
    let token = bearer(req).ok_or(IamError::Unauthenticated)?;
    if classify(&state, token) != BearerKind::Access {
        return Err(IamError::UnsupportedCredential.into());
    }
    let ctx = state.iam.authenticate(token).await?;
    note_identity(req, None, ctx.claims.user_id);
    Ok(ctx)
}

/// Verifies the request's Bearer instance token against the request's origin.
///
/// # Errors
/// 401 `unauthenticated`, `token_invalid`, `token_origin_mismatch`, `token_expired`,
/// `token_revoked`; 403 `not_a_member`.
pub async fn authenticate_instance_token(req: &HttpRequest) -> Result<InstanceAuth, ApiError> {
    let state = state(req)?;
    let token = bearer(req).ok_or(IamError::Unauthenticated)?;
    let origin = request_origin(req, &state.config.public_url);
    let auth = state
        .iam
        .authenticate_instance_token(token, origin.as_deref())
        .await?;
    note_identity(req, Some(auth.claims.account_id.get()), auth.claims.user_id);
    Ok(auth)
}

/// Counts one request of an API key against `HUB_API_KEY_RATE_PER_MINUTE`.
async fn limit_api_key(state: &AppState, auth: &ApiKeyAuth) -> Result<(), ApiError> {
    super::iam::limit(
        state,
        format!("api_key:{}", auth.key.id),
        Quota::per_minute(state.config.api_key_rate_per_minute),
    )
    .await
}

/// The scope for `account` and action `action` from whatever credential the request carries.
async fn tenant_scope(
    req: &HttpRequest,
    account: i64,
    action: Action,
) -> Result<(TenantScope, Credential), ApiError> {
    let state = state(req)?;
    let token = bearer(req).ok_or(IamError::Unauthenticated)?;
    let account_id = AccountId::new(account);
    match classify(&state, token) {
        BearerKind::Access => {
            let ctx = authenticate_request(req).await?;
            let scope = state.iam.tenant_scope(&ctx, account_id, action)?;
            Ok((scope, Credential::Session(ctx)))
        }
        BearerKind::ApiKey => {
            let auth = state.iam.authenticate_api_key(token).await?;
            note_identity(req, Some(account), auth.key.created_by);
            limit_api_key(&state, &auth).await?;
            let client = ClientInfo::of(req, state.config.trust_forwarded_for);
            let scope = state
                .iam
                .api_key_scope(&auth, account_id, action, &client.audit)
                .await?;
            Ok((scope, Credential::ApiKey(auth)))
        }
        BearerKind::InstanceToken => {
            let auth = authenticate_instance_token(req).await?;
            let scope = state.iam.instance_scope(&auth, account_id, action)?;
            Ok((scope, Credential::InstanceToken(auth)))
        }
    }
}

/// The plan feature an action belongs to, if any: a route whose feature is off answers 403
/// `feature_disabled`.
pub fn feature_for(action: Action) -> Option<Feature> {
    match action {
        Action::KanbanRead | Action::KanbanWrite => Some(Feature::Kanban),
        Action::ChatRead | Action::ChatWrite => Some(Feature::InternalChat),
        Action::ProvidersRead | Action::ProvidersWrite => Some(Feature::Providers),
        Action::ApiKeysRead | Action::ApiKeysWrite => Some(Feature::ApiAccess),
        Action::InstanceTokensCreate => Some(Feature::Embed),
        _ => None,
    }
}

/// Plan checks every account-scoped request passes after authentication: the billing status
/// (`restricted` refuses writes and `canceled` everything, except billing routes: 402), then
/// the route's feature (and, for machine credentials, `api_access` / `embed`). Fails closed.
async fn gate(
    state: &AppState,
    scope: &TenantScope,
    credential: &Credential,
    action: Action,
    method: &actix_web::http::Method,
) -> Result<(), ApiError> {
    // Billing first: a locked account answers 402 whatever the route's feature says.
    let gate = Gate {
        write: !matches!(
            *method,
            actix_web::http::Method::GET | actix_web::http::Method::HEAD
        ),
        billing: matches!(action, Action::BillingRead | Action::BillingWrite),
    };
    state.billing.check(scope, gate).await?;
    // Machine credentials also need the feature that issues them.
    let credential_feature = match credential {
        Credential::ApiKey(_) => Some(Feature::ApiAccess),
        Credential::InstanceToken(_) => Some(Feature::Embed),
        Credential::Session(_) => None,
    };
    let needed: Vec<Feature> = feature_for(action)
        .into_iter()
        .chain(credential_feature)
        .collect();
    state.entitlements.require_features(scope, &needed).await?;
    Ok(())
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate_request(&req).await.map(Caller) })
    }
}

impl<P: Policy + 'static> FromRequest for Authed<P> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let raw = req.match_info().get("account_id").unwrap_or_default();
            let account: i64 = raw.parse().map_err(|_| {
                ApiError::bad_request("invalid_path", format!("`{raw}` is not an account id"))
            })?;
            let (scope, credential) = tenant_scope(&req, account, P::ACTION).await?;
            if let Some(identity) = req.extensions_mut().get_mut::<LogIdentity>() {
                identity.account_id = Some(account);
            }
            let state = state(&req)?;
            state
                .metering
                .record_call(scope.account_id(), scope.actor().user_id());
            gate(&state, &scope, &credential, P::ACTION, req.method()).await?;
            Ok(Authed {
                scope,
                credential,
                _policy: PhantomData,
            })
        })
    }
}

/// How the request looks for audit rows and sessions: request id, client IP, user agent.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// For audit rows.
    pub audit: AuditContext,
    /// For sessions.
    pub device: DeviceInfo,
    /// The client IP used for rate limits.
    pub ip: String,
}

impl ClientInfo {
    /// Reads the request. The client IP is the peer address, or the first `X-Forwarded-For`
    /// hop when `HUB_TRUST_FORWARDED_FOR` is on (only behind a proxy that sets it).
    pub fn of(req: &HttpRequest, trust_forwarded: bool) -> Self {
        let forwarded = trust_forwarded
            .then(|| {
                req.headers()
                    .get("x-forwarded-for")?
                    .to_str()
                    .ok()?
                    .split(',')
                    .next()
                    .map(|s| s.trim().to_owned())
            })
            .flatten()
            .filter(|s| s.parse::<std::net::IpAddr>().is_ok());
        let ip = forwarded
            .or_else(|| req.peer_addr().map(|a| a.ip().to_string()))
            .unwrap_or_else(|| "unknown".to_owned());
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(256).collect());
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map_or_else(request_id::current, |id| id.as_str().to_owned());
        Self {
            audit: AuditContext {
                request_id,
                ip: Some(ip.clone()),
            },
            device: DeviceInfo {
                user_agent,
                ip: Some(ip.clone()),
            },
            ip,
        }
    }
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
}
