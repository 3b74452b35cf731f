//! The Hub as a Chatwoot app: the configuration the embedding needs, the Platform App's
//! install/uninstall events (HMAC-signed like Chatwoot's webhooks), and the registration of the
//! Hub as a Dashboard App in a Chatwoot account.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;
use whatpro_iam::ChatwootCredential;
use whatpro_kernel::AccountId;
use whatpro_tenancy::{InstallationChange, InstallationEvent, NewDashboardApp};

use super::auth::{Authed, Caller, ClientInfo, policy};
use super::embed::{APP_PATH, DASHBOARD_SCRIPT_PATH};
use super::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Header carrying `sha256=<hex>` of HMAC-SHA256(`HUB_PLATFORM_APP_SECRET`, `"{timestamp}.{body}"`).
pub const SIGNATURE_HEADER: &str = "x-whatpro-signature";
/// Header carrying the signing time (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-whatpro-timestamp";
/// Header carrying the sender's delivery id (kept in the audit row).
pub const DELIVERY_HEADER: &str = "x-whatpro-delivery";
/// How far a timestamp may be from now, either way.
pub const TIMESTAMP_WINDOW_SECS: i64 = 300;

/// The Hub's features. Plans and entitlements (a later issue) will restrict them per account;
/// until then every account has all of them.
pub const HUB_FEATURES: [&str; 5] = [
    "kanban",
    "internal_chat",
    "providers",
    "api_access",
    "embed",
];

/// Title of the Dashboard App the Hub registers.
pub const DASHBOARD_APP_TITLE: &str = "WhatPro Hub";

/// The caller's features in one account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountFeatures {
    /// Chatwoot account id.
    pub account_id: i64,
    /// Feature name → enabled.
    pub features: BTreeMap<String, bool>,
}

/// `GET /api/v1/platform-app/config`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlatformAppConfig {
    /// The page Chatwoot frames (Dashboard App URL).
    pub iframe_url: String,
    /// The script for Chatwoot's `DASHBOARD_SCRIPTS` (self-hosted Chatwoot).
    pub dashboard_script_url: String,
    /// Origins that may frame the Hub and call it from a browser (Chatwoot's + `HUB_ALLOWED_ORIGINS`).
    pub allowed_origins: Vec<String>,
    /// Enabled features per account the caller can use.
    pub features: Vec<AccountFeatures>,
}

/// The account of a Platform App event.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PlatformEventAccount {
    /// Chatwoot account id.
    pub id: i64,
    /// The account's name.
    #[serde(default)]
    pub name: Option<String>,
}

/// `POST /api/v1/platform-app/events` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PlatformEventBody {
    /// The sender's event id; a repeated id is acknowledged without a second effect.
    pub id: String,
    /// `account.installed` or `account.uninstalled`.
    pub event: String,
    /// The account.
    pub account: PlatformEventAccount,
}

/// Answer to a Platform App event.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlatformEventAck {
    /// The event id.
    pub id: String,
    /// `applied` (stored now) or `duplicate` (seen before; nothing changed).
    pub status: &'static str,
}

/// `POST .../chatwoot/dashboard-app` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DashboardAppRequest {
    /// A personal API token of a Chatwoot administrator of the account. Required until the
    /// account has a stored Chatwoot connection.
    pub api_access_token: Option<String>,
}

/// A Dashboard App as Chatwoot answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardAppView {
    /// Chatwoot's id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// `[{"type": "frame", "url": "..."}]`.
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
    /// As Chatwoot renders it.
    #[schema(value_type = Object)]
    pub created_at: serde_json::Value,
}

/// The Hub's embedding configuration and the caller's features per account.
#[utoipa::path(
    tag = "platform-app",
    responses((status = 200, body = PlatformAppConfig), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/v1/platform-app/config")]
pub async fn config(caller: Caller, state: web::Data<AppState>) -> web::Json<PlatformAppConfig> {
    let config = &state.config;
    let hub = config.public_url.as_str();
    let features = caller
        .0
        .principal
        .memberships
        .iter()
        .map(|m| AccountFeatures {
            account_id: m.account_id.get(),
            features: HUB_FEATURES
                .iter()
                .map(|f| ((*f).to_owned(), true))
                .collect(),
        })
        .collect();
    web::Json(PlatformAppConfig {
        iframe_url: format!("{hub}{APP_PATH}"),
        dashboard_script_url: format!("{hub}{DASHBOARD_SCRIPT_PATH}"),
        allowed_origins: config
            .trusted_origins()
            .iter()
            .map(|o| o.as_str().to_owned())
            .collect(),
        features,
    })
}

fn unauthenticated(code: &'static str, message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message.to_owned())
}

fn header<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    fn nibble(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// Whether `signature` (`sha256=<hex>`) is HMAC-SHA256(`secret`, `"{timestamp}.{body}"`);
/// compared in constant time.
pub fn signature_valid(secret: &[u8], timestamp: &str, body: &[u8], signature: &str) -> bool {
    let Some(expected) = signature
        .strip_prefix("sha256=")
        .and_then(hex_decode)
        .filter(|d| d.len() == 32)
    else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// Checks secret, timestamp window and signature, before anything else is read.
fn authenticate_event(req: &HttpRequest, state: &AppState, body: &[u8]) -> Result<(), ApiError> {
    let secret = state.config.platform_app_secret.as_ref().ok_or_else(|| {
        ApiError::unavailable(
            "platform_app_not_configured",
            "Platform App events are off: HUB_PLATFORM_APP_SECRET is not set",
        )
    })?;
    let timestamp = header(req, TIMESTAMP_HEADER)
        .ok_or_else(|| unauthenticated("invalid_signature", "X-Whatpro-Timestamp is missing"))?;
    let signature = header(req, SIGNATURE_HEADER)
        .ok_or_else(|| unauthenticated("invalid_signature", "X-Whatpro-Signature is missing"))?;
    let sent: i64 = timestamp.parse().map_err(|_| {
        unauthenticated(
            "invalid_signature",
            "X-Whatpro-Timestamp is not Unix seconds",
        )
    })?;
    let now = state.iam.now().unix_timestamp();
    if now.abs_diff(sent) > TIMESTAMP_WINDOW_SECS.unsigned_abs() {
        return Err(unauthenticated(
            "stale_timestamp",
            "X-Whatpro-Timestamp is more than 5 minutes from the Hub's clock",
        ));
    }
    if !signature_valid(secret.expose().as_bytes(), timestamp, body, signature) {
        return Err(unauthenticated(
            "invalid_signature",
            "X-Whatpro-Signature does not match the body",
        ));
    }
    Ok(())
}

fn parse_event(body: &[u8]) -> Result<PlatformEventBody, ApiError> {
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

/// Receives a Platform App event: `account.installed` creates or reactivates the account,
/// `account.uninstalled` suspends it (data kept, every credential of its members refused).
#[utoipa::path(
    tag = "platform-app",
    request_body = PlatformEventBody,
    params(
        ("X-Whatpro-Signature" = String, Header, description = "`sha256=` + hex HMAC-SHA256 of `\"{timestamp}.{raw body}\"` with `HUB_PLATFORM_APP_SECRET`"),
        ("X-Whatpro-Timestamp" = i64, Header, description = "Unix seconds; at most 5 minutes from the Hub's clock, either way"),
        ("X-Whatpro-Delivery" = Option<String>, Header, description = "The sender's delivery id (audited)"),
    ),
    responses(
        (status = 200, body = PlatformEventAck, description = "Stored and applied, or a repeat of a known id (no second effect)"),
        (status = 400, body = ErrorBody, description = "`invalid_json`"),
        (status = 401, body = ErrorBody, description = "`invalid_signature` (missing or wrong), `stale_timestamp`"),
        (status = 422, body = ErrorBody, description = "`unknown_event`, `invalid_event`, `validation_failed`"),
        (status = 503, body = ErrorBody, description = "`platform_app_not_configured`: `HUB_PLATFORM_APP_SECRET` is not set"),
    )
)]
#[post("/api/v1/platform-app/events")]
pub async fn events(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<web::Json<PlatformEventAck>, ApiError> {
    authenticate_event(&req, &state, &body)?;
    let parsed = parse_event(&body)?;
    let change = InstallationChange::parse(&parsed.event).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_event",
            "`event` must be account.installed or account.uninstalled",
        )
    })?;
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    let event = InstallationEvent {
        id: parsed.id,
        change,
        account_id: AccountId::new(parsed.account.id),
        account_name: parsed.account.name.unwrap_or_default(),
        delivery: header(&req, DELIVERY_HEADER).map(str::to_owned),
        audit: client.audit,
    };
    let id = event.id.clone();
    let outcome = state.platform_app.apply_event(event).await?;
    Ok(web::Json(PlatformEventAck {
        id,
        status: outcome.as_str(),
    }))
}

/// Registers the Hub (`/embed/app`) as a Dashboard App of the Chatwoot account (admins), with
/// the account's stored Chatwoot connection when there is one, else with the body's token. An
/// app already framing the Hub is answered with 200 instead of creating a second one.
#[utoipa::path(
    tag = "platform-app",
    params(("account_id" = i64, Path, description = "Chatwoot account id")),
    request_body = DashboardAppRequest,
    responses(
        (status = 201, body = DashboardAppView, description = "Created in Chatwoot"),
        (status = 200, body = DashboardAppView, description = "Already registered"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`chatwoot_token_required`, `chatwoot_credentials_invalid` (Chatwoot refused the token: invalid, or not an administrator of the account)"),
        (status = 502, body = ErrorBody, description = "`chatwoot_bad_gateway`"),
        (status = 503, body = ErrorBody, description = "`chatwoot_unavailable`"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/accounts/{account_id}/chatwoot/dashboard-app")]
pub async fn register_dashboard_app(
    auth: Authed<policy::SettingsWrite>,
    state: web::Data<AppState>,
    body: web::Json<DashboardAppRequest>,
) -> Result<HttpResponse, ApiError> {
    // The account's stored Chatwoot connection is used first; else the body's token.
    let stored = state.inbox.stored_token(&auth.scope).await?;
    let token = stored
        .or_else(|| {
            body.into_inner()
                .api_access_token
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty() && t.len() <= 512)
        })
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "chatwoot_token_required",
                "api_access_token (a Chatwoot administrator's personal token, at most 512 characters) is required: the account has no stored Chatwoot connection",
            )
        })?;
    let app = NewDashboardApp {
        title: DASHBOARD_APP_TITLE.to_owned(),
        frame_url: format!("{}{APP_PATH}", state.config.public_url.as_str()),
    };
    let registration = state
        .platform_app
        .register_dashboard_app(&auth.scope, &ChatwootCredential::AccessToken(token), &app)
        .await?;
    let status = if registration.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let app = registration.app;
    Ok(HttpResponse::build(status).json(DashboardAppView {
        id: app.id,
        title: app.title,
        content: app.content,
        created_at: app.created_at,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use super::*;

    fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        let bytes = mac.finalize().into_bytes();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256={hex}")
    }

    #[test]
    fn accepts_chatwoots_own_test_vector() {
        // The same scheme as Chatwoot's webhooks: check against its published vector.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/chatwoot/webhooks/_signature_test_vector.json"
        );
        let vector: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("shared test vector"))
                .unwrap();
        let secret = vector["secret"].as_str().unwrap();
        let timestamp = vector["headers"]["X-Chatwoot-Timestamp"].as_str().unwrap();
        let signature = vector["headers"]["X-Chatwoot-Signature"].as_str().unwrap();
        let body = vector["body"].as_str().unwrap().as_bytes();
        assert!(signature_valid(
            secret.as_bytes(),
            timestamp,
            body,
            signature
        ));
        assert_eq!(sign(secret, timestamp, body), signature);
        assert!(signature_valid(
            secret.as_bytes(),
            timestamp,
            body,
            &signature.to_uppercase().replace("SHA256=", "sha256=")
        ));
    }

    #[test]
    fn refuses_anything_else() {
        let good = sign("s3cret", "1700000000", b"{}");
        assert!(signature_valid(b"s3cret", "1700000000", b"{}", &good));
        for (secret, timestamp, body, signature) in [
            ("other", "1700000000", &b"{}"[..], good.as_str()),
            ("s3cret", "1700000001", b"{}", good.as_str()),
            ("s3cret", "1700000000", b"{ }", good.as_str()),
            (
                "s3cret",
                "1700000000",
                b"{}",
                good.trim_start_matches("sha256="),
            ),
            ("s3cret", "1700000000", b"{}", &good[..good.len() - 2]),
            ("s3cret", "1700000000", b"{}", "sha256=zz"),
            ("s3cret", "1700000000", b"{}", ""),
        ] {
            assert!(
                !signature_valid(secret.as_bytes(), timestamp, body, signature),
                "{secret} {timestamp} {signature}"
            );
        }
    }

    #[test]
    fn hex_decoding() {
        assert_eq!(hex_decode("00ff10Ab"), Some(vec![0, 255, 16, 171]));
        assert_eq!(hex_decode("abc"), None);
        assert_eq!(hex_decode("gg"), None);
        assert_eq!(hex_decode(""), Some(vec![]));
    }
}
