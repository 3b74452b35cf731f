//! The five contracts: routing, authentication and answers built from the fixtures.

use std::borrow::Cow;

use hyper::http::request::Parts;
use hyper::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};
use whatpro_inbox::ProviderType;

use crate::fixtures as fx;
use crate::server::{Entry, Registry, Shared};
use crate::types::SimState;
use crate::util;

/// An answer before it becomes a hyper response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, value: &Value) -> Reply {
        Reply {
            status,
            content_type: "application/json; charset=utf-8",
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }
}

/// A request path the fake understands. Names are percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `GET /` (Evolution welcome).
    EvoRoot,
    /// `POST /instance/create`.
    EvoCreate,
    /// `GET /instance/fetchInstances`.
    EvoFetch,
    /// `GET /instance/connectionState/{name}`.
    EvoState(String),
    /// `POST /message/sendText/{name}`.
    EvoSendText(String),
    /// `GET /instances/{id}/token/{token}/status`.
    ZapiStatus { id: String, token: String },
    /// `POST /api/{session}/{secret}/generate-token`.
    WppGenerate { session: String, secret: String },
    /// `GET /api/{session}/status-session`.
    WppStatus(String),
    /// `GET /api/{session}/check-connection-session`.
    WppCheck(String),
    /// `GET /instance/status` (uazapi; the `token` header names the instance).
    UazStatus,
    /// `GET /{phone_number_id}` or `GET /v{N}.{M}/{phone_number_id}`.
    Cloud(String),
    /// Anything else: Evolution's `Cannot GET /path` 404.
    Unknown,
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_graph_version(s: &str) -> bool {
    s.strip_prefix('v')
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(major, minor)| is_digits(major) && is_digits(minor))
}

impl Route {
    pub fn parse(method: &Method, path: &str) -> Route {
        let trimmed = path.strip_prefix('/').unwrap_or(path);
        let segments: Vec<&str> = trimmed.split('/').collect();
        let decoded = |s: &str| util::percent_decode(s);
        let route = match (method, segments.as_slice()) {
            (&Method::GET, [""]) => Some(Route::EvoRoot),
            (&Method::POST, ["instance", "create"]) => Some(Route::EvoCreate),
            (&Method::GET, ["instance", "fetchInstances"]) => Some(Route::EvoFetch),
            (&Method::GET, ["instance", "status"]) => Some(Route::UazStatus),
            (&Method::GET, ["instance", "connectionState", name]) => {
                decoded(name).map(Route::EvoState)
            }
            (&Method::POST, ["message", "sendText", name]) => decoded(name).map(Route::EvoSendText),
            (&Method::GET, ["instances", id, "token", token, "status"]) => {
                match (decoded(id), decoded(token)) {
                    (Some(id), Some(token)) => Some(Route::ZapiStatus { id, token }),
                    _ => None,
                }
            }
            (&Method::POST, ["api", session, secret, "generate-token"]) => {
                match (decoded(session), decoded(secret)) {
                    (Some(session), Some(secret)) => Some(Route::WppGenerate { session, secret }),
                    _ => None,
                }
            }
            (&Method::GET, ["api", session, "status-session"]) => {
                decoded(session).map(Route::WppStatus)
            }
            (&Method::GET, ["api", session, "check-connection-session"]) => {
                decoded(session).map(Route::WppCheck)
            }
            (&Method::GET, [id]) if is_digits(id) => Some(Route::Cloud((*id).to_owned())),
            (&Method::GET, [version, id]) if is_graph_version(version) && is_digits(id) => {
                Some(Route::Cloud((*id).to_owned()))
            }
            _ => None,
        };
        route.unwrap_or(Route::Unknown)
    }

    /// Whether this is a status endpoint (counted by `probe_count`).
    pub fn is_probe(&self) -> bool {
        matches!(
            self,
            Route::EvoState(_)
                | Route::ZapiStatus { .. }
                | Route::WppStatus(_)
                | Route::WppCheck(_)
                | Route::UazStatus
                | Route::Cloud(_)
        )
    }

    /// Whether the handler needs the request body.
    pub fn reads_body(&self) -> bool {
        matches!(self, Route::EvoCreate | Route::EvoSendText(_))
    }

    /// The contract whose error shape this route uses.
    pub fn provider(&self) -> ProviderType {
        match self {
            Route::EvoRoot
            | Route::EvoCreate
            | Route::EvoFetch
            | Route::EvoState(_)
            | Route::EvoSendText(_)
            | Route::Unknown => ProviderType::Evolution,
            Route::ZapiStatus { .. } => ProviderType::Zapi,
            Route::WppGenerate { .. } | Route::WppStatus(_) | Route::WppCheck(_) => {
                ProviderType::Wppconnect
            }
            Route::UazStatus => ProviderType::Uazapi,
            Route::Cloud(_) => ProviderType::WhatsappCloud,
        }
    }

    /// The instance the request is about, if any (for behaviours).
    pub fn instance_name(&self, registry: &Registry, headers: &HeaderMap) -> Option<String> {
        match self {
            Route::EvoState(name)
            | Route::EvoSendText(name)
            | Route::WppStatus(name)
            | Route::WppCheck(name)
            | Route::Cloud(name)
            | Route::ZapiStatus { id: name, .. }
            | Route::WppGenerate { session: name, .. } => Some(name.clone()),
            Route::UazStatus => {
                let token = header(headers, "token")?;
                registry.uazapi_tokens.get(token).cloned()
            }
            Route::EvoRoot | Route::EvoCreate | Route::EvoFetch | Route::Unknown => None,
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = header(headers, "authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Overwrites the value at a JSON pointer, if the fixture has it.
fn put(value: &mut Value, pointer: &str, new: Value) {
    if let Some(slot) = value.pointer_mut(pointer) {
        *slot = new;
    }
}

fn reason(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

// ------------------------------------------------------------------ dispatch

pub(crate) fn handle(
    shared: &Shared,
    route: &Route,
    parts: &Parts,
    body: &[u8],
    lie: bool,
) -> Reply {
    let headers = &parts.headers;
    match route {
        Route::EvoRoot => evo_root(shared),
        Route::EvoCreate => evo_create(shared, headers, body),
        Route::EvoFetch => evo_fetch(shared, headers, parts.uri.query()),
        Route::EvoState(name) => evo_state(shared, headers, name, lie),
        Route::EvoSendText(name) => evo_send_text(shared, headers, name, body),
        Route::ZapiStatus { id, token } => zapi_status(shared, headers, id, token, lie),
        Route::WppGenerate { session, secret } => wpp_generate(shared, session, secret),
        Route::WppStatus(session) => wpp_status(shared, headers, session, lie, false),
        Route::WppCheck(session) => wpp_status(shared, headers, session, lie, true),
        Route::UazStatus => uaz_status(shared, headers, lie),
        Route::Cloud(id) => cloud_phone(shared, headers, id, lie),
        Route::Unknown => evo_error(
            404,
            json!([format!("Cannot {} {}", parts.method, parts.uri.path())]),
        ),
    }
}

/// The error answer a [`crate::Behaviour::Status`] gives, in the provider's shape.
pub(crate) fn error_reply(provider: ProviderType, status: u16, name: &str) -> Reply {
    match provider {
        ProviderType::Evolution => match status {
            401 => Reply::json(401, &fx::EVO_ERROR_401),
            404 => evo_not_found(name),
            403 => {
                let mut value = fx::EVO_ERROR_403.clone();
                put(
                    &mut value,
                    "/response/message/0",
                    json!(format!("This name \"{name}\" is already in use.")),
                );
                Reply::json(403, &value)
            }
            400 => evo_not_connected(name),
            _ => evo_error(status, json!(reason(status))),
        },
        ProviderType::Zapi => Reply::json(status, &json!({ "error": reason(status) })),
        ProviderType::Wppconnect => match status {
            401 => Reply::json(401, &fx::WPP_ERROR_401),
            _ => Reply::json(
                status,
                &json!({ "status": "error", "message": reason(status) }),
            ),
        },
        ProviderType::Uazapi => match status {
            401 => Reply::json(401, &fx::UAZ_ERROR_401),
            _ => Reply::json(status, &json!({ "error": reason(status) })),
        },
        ProviderType::WhatsappCloud => match status {
            401 => Reply::json(401, &fx::CLOUD_ERROR_401),
            _ => cloud_error(status, 2, "OAuthException", reason(status)),
        },
    }
}

/// A 200 that is not JSON (e.g. a web server's default page in front of the provider).
pub(crate) fn garbage() -> Reply {
    Reply {
        status: 200,
        content_type: "text/html; charset=utf-8",
        body: b"<!DOCTYPE html><html><head><title>Welcome</title></head><body>It works!</body></html>\n"
            .to_vec(),
    }
}

// ------------------------------------------------------------------ Evolution

fn evo_error(status: u16, message: Value) -> Reply {
    let mut value = fx::EVO_ERROR_400.clone();
    put(&mut value, "/status", json!(status));
    put(&mut value, "/error", json!(reason(status)));
    put(&mut value, "/response/message", message);
    Reply::json(status, &value)
}

fn evo_not_found(name: &str) -> Reply {
    let mut value = fx::EVO_ERROR_404.clone();
    put(
        &mut value,
        "/response/message/0",
        json!(format!("The \"{name}\" instance does not exist")),
    );
    Reply::json(404, &value)
}

fn evo_not_connected(name: &str) -> Reply {
    let mut value = fx::EVO_ERROR_400.clone();
    put(
        &mut value,
        "/response/message/0",
        json!(format!("The \"{name}\" instance is not connected")),
    );
    Reply::json(400, &value)
}

fn evo_unauthorized() -> Reply {
    Reply::json(401, &fx::EVO_ERROR_401)
}

fn evo_state_str(state: SimState) -> &'static str {
    match state {
        SimState::Connected => "open",
        SimState::Connecting => "connecting",
        SimState::Disconnected => "close",
    }
}

/// Whether `apikey` opens `entry` (its instance token or the global key).
fn evo_key_fits(registry: &Registry, entry: &Entry, apikey: Option<&str>) -> bool {
    let Some(key) = apikey else { return false };
    key == entry.credentials.secret || registry.evolution_global_key.as_deref() == Some(key)
}

fn evo_is_global(registry: &Registry, apikey: Option<&str>) -> bool {
    apikey.is_some() && registry.evolution_global_key.as_deref() == apikey
}

/// The instance guard (404) runs before the auth guard (401), as in Evolution's router.
fn evo_instance<'r>(
    registry: &'r Registry,
    headers: &HeaderMap,
    name: &str,
) -> Result<&'r Entry, Reply> {
    let entry = registry
        .instances
        .get(name)
        .filter(|e| e.provider == ProviderType::Evolution)
        .ok_or_else(|| evo_not_found(name))?;
    if !evo_key_fits(registry, entry, header(headers, "apikey")) {
        return Err(evo_unauthorized());
    }
    Ok(entry)
}

fn evo_root(shared: &Shared) -> Reply {
    let mut value = fx::EVO_ROOT.clone();
    put(
        &mut value,
        "/manager",
        json!(format!("{}/manager", shared.url)),
    );
    Reply::json(200, &value)
}

fn evo_state(shared: &Shared, headers: &HeaderMap, name: &str, lie: bool) -> Reply {
    let registry = shared.read();
    let entry = match evo_instance(&registry, headers, name) {
        Ok(entry) => entry,
        Err(reply) => return reply,
    };
    let state = if lie {
        SimState::Connected
    } else {
        entry.state
    };
    let mut value = match state {
        SimState::Connected => fx::EVO_STATE_OPEN.clone(),
        SimState::Connecting => fx::EVO_STATE_CONNECTING.clone(),
        SimState::Disconnected => fx::EVO_STATE_CLOSE.clone(),
    };
    put(&mut value, "/instance/instanceName", json!(name));
    Reply::json(200, &value)
}

fn evo_create(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Reply {
    let mut registry = shared.write();
    if !evo_is_global(&registry, header(headers, "apikey")) {
        return evo_unauthorized();
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return evo_error(400, json!(["instance requires a JSON body"]));
    };
    let Some(name) = request
        .get("instanceName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    else {
        return evo_error(400, json!(["instance requires property \"instanceName\""]));
    };
    if registry.instances.contains_key(name) {
        let mut value = fx::EVO_ERROR_403.clone();
        put(
            &mut value,
            "/response/message/0",
            json!(format!("This name \"{name}\" is already in use.")),
        );
        return Reply::json(403, &value);
    }
    let hash = request
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map_or_else(
            || uuid::Uuid::new_v4().to_string().to_uppercase(),
            str::to_owned,
        );
    let qrcode = request
        .get("qrcode")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let state = if qrcode {
        SimState::Connecting
    } else {
        SimState::Disconnected
    };
    let id = uuid::Uuid::new_v4().to_string();

    let mut value = fx::EVO_CREATE.clone();
    put(&mut value, "/instance/instanceName", json!(name));
    put(&mut value, "/instance/instanceId", json!(id));
    if let Some(integration) = request.get("integration").and_then(Value::as_str) {
        put(&mut value, "/instance/integration", json!(integration));
    }
    put(&mut value, "/instance/status", json!(evo_state_str(state)));
    put(&mut value, "/hash", json!(hash));
    let webhook = request.get("webhook");
    let field = |key: &str| webhook.and_then(|w| w.get(key)).cloned();
    put(
        &mut value,
        "/webhook/webhookUrl",
        field("url").unwrap_or(json!("")),
    );
    put(
        &mut value,
        "/webhook/webhookHeaders",
        field("headers").unwrap_or(json!({})),
    );
    put(
        &mut value,
        "/webhook/webhookByEvents",
        field("byEvents").unwrap_or(json!(false)),
    );
    put(
        &mut value,
        "/webhook/webhookBase64",
        field("base64").unwrap_or(json!(false)),
    );
    for key in [
        "rejectCall",
        "msgCall",
        "groupsIgnore",
        "alwaysOnline",
        "readMessages",
        "readStatus",
        "syncFullHistory",
    ] {
        if let Some(setting) = request.get(key) {
            put(&mut value, &format!("/settings/{key}"), setting.clone());
        }
    }
    registry.instances.insert(
        name.to_owned(),
        Entry {
            provider: ProviderType::Evolution,
            credentials: crate::SimCredentials::secret(hash),
            state,
            id,
            behaviour: None,
            issued: Default::default(),
        },
    );
    Reply::json(201, &value)
}

fn query_param<'q>(query: Option<&'q str>, key: &str) -> Option<Cow<'q, str>> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| {
            util::percent_decode(&v.replace('+', " ")).map_or(Cow::Borrowed(v), Cow::Owned)
        })
    })
}

fn evo_fetch(shared: &Shared, headers: &HeaderMap, query: Option<&str>) -> Reply {
    let registry = shared.read();
    let Some(apikey) = header(headers, "apikey") else {
        return evo_unauthorized();
    };
    let global = evo_is_global(&registry, Some(apikey));
    let wanted = query_param(query, "instanceName");
    let mut owned: Vec<(&String, &Entry)> = registry
        .instances
        .iter()
        .filter(|(_, e)| e.provider == ProviderType::Evolution)
        .filter(|(_, e)| global || e.credentials.secret == apikey)
        .collect();
    if !global && owned.is_empty() {
        return evo_unauthorized();
    }
    if let Some(wanted) = wanted.as_deref() {
        owned.retain(|(name, _)| name.as_str() == wanted);
        if owned.is_empty() {
            return evo_not_found(wanted);
        }
    }
    owned.sort_by(|a, b| a.0.cmp(b.0));
    let template = fx::EVO_FETCH.get(0).cloned().unwrap_or(Value::Null);
    let rows: Vec<Value> = owned
        .into_iter()
        .map(|(name, entry)| {
            let mut row = template.clone();
            put(&mut row, "/id", json!(entry.id));
            put(&mut row, "/name", json!(name));
            put(
                &mut row,
                "/connectionStatus",
                json!(evo_state_str(entry.state)),
            );
            put(&mut row, "/token", json!(entry.credentials.secret));
            put(&mut row, "/Setting/instanceId", json!(entry.id));
            if entry.state != SimState::Connected {
                for key in ["/ownerJid", "/profileName", "/profilePicUrl", "/number"] {
                    put(&mut row, key, Value::Null);
                }
            }
            row
        })
        .collect();
    Reply::json(200, &Value::Array(rows))
}

fn evo_send_text(shared: &Shared, headers: &HeaderMap, name: &str, body: &[u8]) -> Reply {
    let registry = shared.read();
    let entry = match evo_instance(&registry, headers, name) {
        Ok(entry) => entry,
        Err(reply) => return reply,
    };
    let request = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    let number = request.get("number").and_then(Value::as_str);
    let text = request.get("text").and_then(Value::as_str);
    let (Some(number), Some(text)) = (number, text) else {
        return evo_error(
            400,
            json!([
                "instance requires property \"number\"",
                "instance requires property \"text\""
            ]),
        );
    };
    if entry.state != SimState::Connected {
        return evo_not_connected(name);
    }
    let jid = if number.contains('@') {
        number.to_owned()
    } else {
        format!("{number}@s.whatsapp.net")
    };
    let mut value = fx::EVO_SEND_TEXT.clone();
    put(&mut value, "/key/remoteJid", json!(jid));
    put(&mut value, "/key/id", json!(util::message_id()));
    put(&mut value, "/message/conversation", json!(text));
    put(&mut value, "/messageTimestamp", json!(util::unix_now()));
    put(&mut value, "/instanceId", json!(entry.id));
    Reply::json(201, &value)
}

// ------------------------------------------------------------------ Z-API

fn zapi_error(status: u16, message: &str) -> Reply {
    Reply::json(status, &json!({ "error": message }))
}

fn zapi_status(shared: &Shared, headers: &HeaderMap, id: &str, token: &str, lie: bool) -> Reply {
    let registry = shared.read();
    let Some(entry) = registry
        .instances
        .get(id)
        .filter(|e| e.provider == ProviderType::Zapi)
    else {
        return zapi_error(404, "Instance not found");
    };
    if entry.credentials.secret != token {
        return zapi_error(401, "Invalid instance token");
    }
    if let Some(demanded) = entry.credentials.client_token.as_deref()
        && header(headers, "client-token") != Some(demanded)
    {
        return zapi_error(403, "Client-Token is not allowed");
    }
    let state = if lie {
        SimState::Connected
    } else {
        entry.state
    };
    let value = match state {
        SimState::Connected => fx::ZAPI_CONNECTED.clone(),
        SimState::Connecting => {
            let mut value = fx::ZAPI_CONNECTED.clone();
            put(&mut value, "/smartphoneConnected", json!(false));
            value
        }
        SimState::Disconnected => fx::ZAPI_DISCONNECTED.clone(),
    };
    Reply::json(200, &value)
}

// ------------------------------------------------------------------ WPPConnect

fn wpp_generate(shared: &Shared, session: &str, secret: &str) -> Reply {
    let mut registry = shared.write();
    let Some(entry) = registry
        .instances
        .get_mut(session)
        .filter(|e| e.provider == ProviderType::Wppconnect && e.credentials.secret == secret)
    else {
        return Reply::json(400, &fx::WPP_WRONG_SECRET);
    };
    let token = util::bcrypt_like_token();
    entry.issued.insert(token.clone());
    let mut value = fx::WPP_TOKEN.clone();
    put(&mut value, "/session", json!(session));
    put(&mut value, "/token", json!(token));
    put(&mut value, "/full", json!(format!("{session}:{token}")));
    Reply::json(201, &value)
}

fn wpp_status(
    shared: &Shared,
    headers: &HeaderMap,
    session: &str,
    lie: bool,
    check: bool,
) -> Reply {
    let Some(token) = bearer(headers) else {
        return Reply::json(401, &fx::WPP_ERROR_401_MISSING);
    };
    let registry = shared.read();
    let Some(entry) = registry
        .instances
        .get(session)
        .filter(|e| e.provider == ProviderType::Wppconnect)
        .filter(|e| {
            e.issued.contains(token) || e.credentials.bearer_token.as_deref() == Some(token)
        })
    else {
        return Reply::json(401, &fx::WPP_ERROR_401);
    };
    let state = if lie {
        SimState::Connected
    } else {
        entry.state
    };
    let value = match (check, state) {
        (true, SimState::Connected) => fx::WPP_CHECK_CONNECTED.clone(),
        (true, _) => fx::WPP_CHECK_DISCONNECTED.clone(),
        (false, SimState::Connected) => fx::WPP_CONNECTED.clone(),
        (false, SimState::Connecting) => fx::WPP_QRCODE.clone(),
        (false, SimState::Disconnected) => fx::WPP_CLOSED.clone(),
    };
    Reply::json(200, &value)
}

// ------------------------------------------------------------------ uazapi

fn uaz_status(shared: &Shared, headers: &HeaderMap, lie: bool) -> Reply {
    let Some(token) = header(headers, "token").filter(|t| !t.is_empty()) else {
        return Reply::json(401, &json!({ "error": "missing token" }));
    };
    let registry = shared.read();
    let Some((name, entry)) = registry
        .uazapi_tokens
        .get(token)
        .and_then(|name| registry.instances.get(name).map(|e| (name, e)))
    else {
        return Reply::json(401, &fx::UAZ_ERROR_401);
    };
    let state = if lie {
        SimState::Connected
    } else {
        entry.state
    };
    let mut value = match state {
        SimState::Connected => fx::UAZ_CONNECTED.clone(),
        SimState::Connecting => {
            let mut value = fx::UAZ_CONNECTED.clone();
            put(&mut value, "/instance/status", json!("connecting"));
            put(
                &mut value,
                "/instance/qrcode",
                json!("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA..."),
            );
            put(&mut value, "/status/connected", json!(false));
            put(&mut value, "/status/loggedIn", json!(false));
            put(&mut value, "/status/jid", Value::Null);
            value
        }
        SimState::Disconnected => fx::UAZ_DISCONNECTED.clone(),
    };
    put(&mut value, "/instance/id", json!(entry.id));
    put(&mut value, "/instance/token", json!(token));
    put(&mut value, "/instance/name", json!(name));
    Reply::json(200, &value)
}

// ------------------------------------------------------------------ WhatsApp Cloud

fn cloud_error(status: u16, code: u16, kind: &str, message: &str) -> Reply {
    let mut value = fx::CLOUD_ERROR_401.clone();
    put(&mut value, "/error/message", json!(message));
    put(&mut value, "/error/type", json!(kind));
    put(&mut value, "/error/code", json!(code));
    put(&mut value, "/error/error_subcode", Value::Null);
    put(&mut value, "/error/fbtrace_id", json!(util::fbtrace_id()));
    Reply::json(status, &value)
}

fn cloud_phone(shared: &Shared, headers: &HeaderMap, id: &str, lie: bool) -> Reply {
    let registry = shared.read();
    let Some(entry) = registry
        .instances
        .get(id)
        .filter(|e| e.provider == ProviderType::WhatsappCloud)
    else {
        return cloud_error(
            400,
            100,
            "GraphMethodException",
            &format!(
                "Unsupported get request. Object with ID '{id}' does not exist, cannot be \
                 loaded due to missing permissions, or does not support this operation."
            ),
        );
    };
    if bearer(headers) != Some(entry.credentials.secret.as_str()) {
        return Reply::json(401, &fx::CLOUD_ERROR_401);
    }
    let state = if lie {
        SimState::Connected
    } else {
        entry.state
    };
    let (status, can_send) = match state {
        SimState::Connected => ("CONNECTED", "AVAILABLE"),
        SimState::Connecting => ("PENDING", "LIMITED"),
        SimState::Disconnected => ("DISCONNECTED", "BLOCKED"),
    };
    let mut value = fx::CLOUD_PHONE.clone();
    put(&mut value, "/id", json!(id));
    put(&mut value, "/status", json!(status));
    put(
        &mut value,
        "/health_status/can_send_message",
        json!(can_send),
    );
    put(&mut value, "/health_status/entities/0/id", json!(id));
    put(
        &mut value,
        "/health_status/entities/0/can_send_message",
        json!(can_send),
    );
    Reply::json(200, &value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_route_shape() {
        let get = Method::GET;
        let post = Method::POST;
        let cases = [
            (&get, "/", Route::EvoRoot),
            (&post, "/instance/create", Route::EvoCreate),
            (&get, "/instance/fetchInstances", Route::EvoFetch),
            (
                &get,
                "/instance/connectionState/a%20b%2Fc",
                Route::EvoState("a b/c".to_owned()),
            ),
            (
                &post,
                "/message/sendText/x",
                Route::EvoSendText("x".to_owned()),
            ),
            (
                &get,
                "/instances/3C01/token/T0K/status",
                Route::ZapiStatus {
                    id: "3C01".to_owned(),
                    token: "T0K".to_owned(),
                },
            ),
            (
                &post,
                "/api/s1/THISISMYSECURETOKEN/generate-token",
                Route::WppGenerate {
                    session: "s1".to_owned(),
                    secret: "THISISMYSECURETOKEN".to_owned(),
                },
            ),
            (
                &get,
                "/api/s1/status-session",
                Route::WppStatus("s1".to_owned()),
            ),
            (
                &get,
                "/api/s1/check-connection-session",
                Route::WppCheck("s1".to_owned()),
            ),
            (&get, "/instance/status", Route::UazStatus),
            (
                &get,
                "/106540352242922",
                Route::Cloud("106540352242922".to_owned()),
            ),
            (
                &get,
                "/v21.0/106540352242922",
                Route::Cloud("106540352242922".to_owned()),
            ),
            (&get, "/abc", Route::Unknown),
            (&post, "/instance/connectionState/x", Route::Unknown),
            (&get, "/instance/connectionState/%ZZ", Route::Unknown),
        ];
        for (method, path, expected) in cases {
            assert_eq!(Route::parse(method, path), expected, "{method} {path}");
        }
    }
}
