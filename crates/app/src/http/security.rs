//! Security headers on every response, and CORS with an exact-origin allowlist.

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, ResponseError, web};

use super::error::ApiError;
use crate::config::{Config, Origin};

/// Paths under this prefix are pages meant to be framed by Chatwoot.
pub const EMBED_PREFIX: &str = "/embed/";

/// Header values computed once from the configuration.
#[derive(Debug, Clone)]
pub struct SecurityPolicy {
    allowed_origins: Arc<[Origin]>,
    embed_csp: HeaderValue,
    hsts: bool,
}

const API_CSP: HeaderValue = HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'");
const DOCS_CSP: HeaderValue = HeaderValue::from_static(
    "default-src 'none'; script-src https://cdn.jsdelivr.net; style-src 'unsafe-inline' https://cdn.jsdelivr.net; font-src https://cdn.jsdelivr.net https://fonts.scalar.com data:; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
);
const PERMISSIONS: HeaderValue =
    HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=(), usb=()");
const ALLOW_METHODS: HeaderValue =
    HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, OPTIONS");
const ALLOW_HEADERS: HeaderValue =
    HeaderValue::from_static("authorization, content-type, x-request-id, idempotency-key");
const EXPOSE_HEADERS: HeaderValue = HeaderValue::from_static("x-request-id, retry-after");

impl SecurityPolicy {
    /// Builds the policy: framing and CORS are allowed for Chatwoot's origin and
    /// `HUB_ALLOWED_ORIGINS`; HSTS is sent when the Hub's public URL is https.
    pub fn from_config(config: &Config) -> Self {
        let allowed: Vec<Origin> = config.trusted_origins();
        // The embed pages load only their own files (no inline script or style), talk only to
        // the Hub, and may be framed only by the trusted origins (never `*`).
        let mut embed = String::from(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors",
        );
        if allowed.is_empty() {
            embed.push_str(" 'none'");
        }
        for origin in &allowed {
            embed.push(' ');
            embed.push_str(origin.as_str());
        }
        Self {
            embed_csp: HeaderValue::from_str(&embed).unwrap_or(API_CSP),
            allowed_origins: allowed.into(),
            hsts: config.public_url.is_https(),
        }
    }

    /// Whether an `Origin` header value is on the allowlist (exact match; `null` never is).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        origin != "null" && self.allowed_origins.iter().any(|o| o.as_str() == origin)
    }

    fn stamp(&self, path: &str, headers: &mut HeaderMap) {
        let embed = path.starts_with(EMBED_PREFIX);
        let csp = if embed {
            self.embed_csp.clone()
        } else if path == "/docs" {
            DOCS_CSP
        } else {
            API_CSP
        };
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
        if !embed {
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        }
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        );
        headers.insert(HeaderName::from_static("permissions-policy"), PERMISSIONS);
        if self.hsts {
            headers.insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000; includeSubDomains"),
            );
        }
    }
}

/// Middleware: the security headers of ARCHITECTURE.md section 4 on every response.
pub async fn headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let policy = req.app_data::<web::Data<SecurityPolicy>>().cloned();
    let path = req.path().to_owned();
    let mut res = next.call(req).await?;
    if let Some(policy) = policy {
        policy.stamp(&path, res.headers_mut());
    }
    Ok(res)
}

/// Middleware: CORS. Allowed origins get `Access-Control-Allow-Origin: <origin>` with
/// credentials (never `*`); preflights from other origins answer 403 `origin_not_allowed`;
/// simple requests from other origins are served without CORS headers, so browsers withhold
/// the response.
pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned)
    else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let allowed = req
        .app_data::<web::Data<SecurityPolicy>>()
        .is_some_and(|p| p.origin_allowed(&origin));
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);

    if preflight {
        let response = if allowed {
            let mut response = HttpResponse::build(StatusCode::NO_CONTENT).finish();
            let headers = response.headers_mut();
            allow_origin(headers, &origin);
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS);
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS);
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
            response
        } else {
            let mut response = ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this origin may not call the Hub from a browser",
            )
            .error_response();
            response
                .headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Origin"));
            response
        };
        return Ok(req.into_response(response).map_into_right_body());
    }

    let mut res = next.call(req).await?;
    if allowed {
        allow_origin(res.headers_mut(), &origin);
        res.headers_mut()
            .insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE_HEADERS);
    } else {
        res.headers_mut()
            .append(header::VARY, HeaderValue::from_static("Origin"));
    }
    Ok(res.map_into_left_body())
}

fn allow_origin(headers: &mut HeaderMap, origin: &str) {
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}
