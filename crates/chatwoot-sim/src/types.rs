//! Public value types of the simulator: users, roles, sessions, faults, recorded requests.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::util;

/// Status of a simulated account (`accounts.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    /// Normal account.
    Active,
    /// Suspended: every account-scoped call answers 401 `{"error":"Account is suspended"}`.
    Suspended,
}

impl AccountStatus {
    /// The string Chatwoot uses in JSON (`"active"` / `"suspended"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }
}

/// Role of a user in an account (`account_users.role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimRole {
    /// `"agent"`.
    Agent,
    /// `"administrator"`.
    Administrator,
}

impl SimRole {
    /// The string Chatwoot uses in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Administrator => "administrator",
        }
    }
}

/// Availability of a user in an account (`account_users.availability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// `"online"`.
    Online,
    /// `"offline"`.
    Offline,
    /// `"busy"`.
    Busy,
}

impl Availability {
    /// The string Chatwoot uses in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
            Self::Busy => "busy",
        }
    }
}

/// A user to add to the simulator (see [`crate::ChatwootSim::add_user`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewSimUser {
    /// Database id.
    pub id: i64,
    /// Full name.
    pub name: String,
    /// Email; also the devise `uid`.
    pub email: String,
    /// Personal API token (`api_access_token`).
    pub access_token: String,
    /// `type`: `None` (JSON null) or `Some("SuperAdmin")`.
    pub user_type: Option<String>,
    /// Password for `POST /auth/sign_in`; `None` means sign-in always fails.
    pub password: Option<String>,
    /// `display_name`; `available_name` falls back to `name` when unset.
    pub display_name: Option<String>,
    /// `custom_attributes`; omitted from responses when empty, as Chatwoot does.
    pub custom_attributes: Map<String, Value>,
}

impl NewSimUser {
    /// A plain user with a personal API token and no password.
    pub fn new(
        id: i64,
        name: impl Into<String>,
        email: impl Into<String>,
        access_token: impl Into<String>,
    ) -> Self {
        Self {
            id,
            name: name.into(),
            email: email.into(),
            access_token: access_token.into(),
            ..Self::default()
        }
    }

    /// Sets the sign-in password.
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Sets `display_name`.
    pub fn with_display_name(mut self, display_name: impl Into<String>) -> Self {
        self.display_name = Some(display_name.into());
        self
    }

    /// Makes the user an installation super admin (`"type":"SuperAdmin"`).
    pub fn super_admin(mut self) -> Self {
        self.user_type = Some("SuperAdmin".to_owned());
        self
    }

    /// Sets `custom_attributes`.
    pub fn with_custom_attributes(mut self, attributes: Map<String, Value>) -> Self {
        self.custom_attributes = attributes;
        self
    }
}

/// A devise_token_auth session: the five values the dashboard keeps in `cw_d_session_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviseSession {
    /// `access-token` header.
    pub access_token: String,
    /// `token-type` header (always `"Bearer"`).
    pub token_type: String,
    /// `client` header.
    pub client: String,
    /// `uid` header (the user's email).
    pub uid: String,
    /// `expiry` header: Unix seconds (sent as a string).
    pub expiry: i64,
}

impl DeviseSession {
    /// The headers the dashboard sends on every API call (lower-case names).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("access-token", self.access_token.clone()),
            ("token-type", self.token_type.clone()),
            ("client", self.client.clone()),
            ("expiry", self.expiry.to_string()),
            ("uid", self.uid.clone()),
        ]
    }

    /// The five values as a JSON object string, like the `cw_d_session_info` cookie
    /// (which also holds other response headers; those are noise).
    pub fn cookie_value(&self) -> String {
        let mut map = Map::new();
        for (name, value) in self.headers() {
            map.insert(name.to_owned(), Value::String(value));
        }
        Value::Object(map).to_string()
    }

    /// The `authorization` header devise_token_auth returns on sign-in:
    /// `Bearer <base64 of the JSON of the five values>`.
    pub fn authorization(&self) -> String {
        let json = format!(
            "{{\"access-token\":{},\"token-type\":{},\"client\":{},\"expiry\":{},\"uid\":{}}}",
            Value::String(self.access_token.clone()),
            Value::String(self.token_type.clone()),
            Value::String(self.client.clone()),
            Value::String(self.expiry.to_string()),
            Value::String(self.uid.clone()),
        );
        format!("Bearer {}", util::base64(json.as_bytes()))
    }
}

/// An injected upstream failure (see [`crate::ChatwootSim::set_fault`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status instead of the real response. 429 answers like rack-attack
    /// (`text/plain` `Retry later\n`); other codes answer `{"status":code,"error":"<reason>"}`.
    Status(u16),
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Drop the connection without answering.
    Close,
    /// Answer 200 with an HTML page instead of JSON (a proxy's error page, a captive portal).
    Garbage,
}

/// One request the simulator received (see [`crate::ChatwootSim::requests`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method (`"GET"`, `"POST"`, ...).
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Raw body bytes.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// First value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn body_json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as (lossy) UTF-8 text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A user created by [`crate::ChatwootSim::seed_demo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeededUser {
    /// User id.
    pub id: i64,
    /// Full name.
    pub name: String,
    /// Email (devise `uid`).
    pub email: String,
    /// Personal API token.
    pub access_token: String,
    /// Sign-in password.
    pub password: String,
}

/// What [`crate::ChatwootSim::seed_demo`] created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSeed {
    /// Account 1, "WhatPro Demo".
    pub primary_account_id: i64,
    /// Account 9, "Cliente Beta".
    pub secondary_account_id: i64,
    /// Carlos Lima (id 5): administrator in account 1, agent in account 9.
    pub admin: SeededUser,
    /// Ana Reis (id 6): agent in account 1 only.
    pub agent: SeededUser,
}

/// Errors of the simulator's own outgoing calls (webhook delivery).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The URL could not be parsed.
    #[error("invalid url: {0}")]
    InvalidUrl(String),
    /// Only plain `http://` targets are supported (no TLS).
    #[error("unsupported url scheme (only http:// is supported): {0}")]
    UnsupportedScheme(String),
    /// Connecting or talking to the receiver failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// HTTP protocol error.
    #[error("http error: {0}")]
    Http(#[from] hyper::Error),
    /// Building the request failed (bad header value, ...).
    #[error("invalid request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The receiver did not answer in time (Chatwoot's `WEBHOOK_TIMEOUT`, 5 s).
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}
