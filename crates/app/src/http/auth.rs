//! Authentication extractors: [`Caller`] (a live session) and [`Authed<P>`] (a tenant scope
//! whose role allows the policy `P`, for routes with `{account_id}`).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use whatpro_iam::{Action, AuditContext, AuthContext, DeviceInfo, IamError, TenantScope};
use whatpro_kernel::AccountId;

use super::error::ApiError;
use super::observe::LogIdentity;
use super::request_id::{self, RequestId};
use crate::state::AppState;

/// An authenticated user with a live session (routes outside `/accounts/{account_id}`).
#[derive(Debug, Clone)]
pub struct Caller(pub AuthContext);

/// A tenant scope for the path's `{account_id}`, with a role allowing `P::ACTION`.
#[derive(Debug, Clone)]
pub struct Authed<P> {
    /// The scope every tenant port takes.
    pub scope: TenantScope,
    /// The verified identity behind it.
    pub ctx: AuthContext,
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
        /// Read across accounts.
        PlatformRead,
    );
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("application state missing"))
}

/// Authenticates the request's Bearer token (for handlers that accept several credentials).
///
/// # Errors
/// 401 codes of `IamError`.
pub async fn authenticate_request(req: &HttpRequest) -> Result<AuthContext, ApiError> {
    let state = state(req)?;
    let token = bearer(req).ok_or(IamError::Unauthenticated)?;
    let ctx = state.iam.authenticate(token).await?;
    let mut ext = req.extensions_mut();
    let mut identity = ext.get::<LogIdentity>().copied().unwrap_or_default();
    identity.user_id = Some(ctx.claims.user_id.get());
    ext.insert(identity);
    Ok(ctx)
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
            let ctx = authenticate_request(&req).await?;
            let state = state(&req)?;
            let scope = state
                .iam
                .tenant_scope(&ctx, AccountId::new(account), P::ACTION)?;
            if let Some(identity) = req.extensions_mut().get_mut::<LogIdentity>() {
                identity.account_id = Some(account);
            }
            Ok(Authed {
                scope,
                ctx,
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
