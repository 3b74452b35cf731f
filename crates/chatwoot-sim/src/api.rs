//! Routing and endpoint handlers. Everything here is synchronous and runs under the state lock.

use hyper::{HeaderMap, Method};
use serde_json::{Map, Value, json};

use crate::fixtures;
use crate::model::WebhookEntry;
use crate::model::{Account, DashboardAppEntry, InboxEntry, Membership, Session, State, User};
use crate::types::{AccountStatus, DeviseSession, SimRole};
use crate::util;

/// `Content-Type` of every JSON answer (Rails default).
const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// devise_token_auth `token_lifespan` (2 months).
const TOKEN_LIFESPAN_SECS: i64 = 60 * 24 * 60 * 60;

/// `Webhook::ALLOWED_WEBHOOK_EVENTS` (README 4a).
pub(crate) const ALLOWED_WEBHOOK_EVENTS: [&str; 12] = [
    "conversation_created",
    "conversation_updated",
    "conversation_status_changed",
    "message_created",
    "message_updated",
    "contact_created",
    "contact_updated",
    "webwidget_triggered",
    "inbox_created",
    "inbox_updated",
    "conversation_typing_on",
    "conversation_typing_off",
];

/// Column default of `webhooks.subscriptions` (used when a create request has none).
const DEFAULT_WEBHOOK_SUBSCRIPTIONS: [&str; 8] = [
    "conversation_status_changed",
    "conversation_updated",
    "conversation_created",
    "contact_created",
    "contact_updated",
    "message_created",
    "message_updated",
    "webwidget_triggered",
];

/// Attributes of the `Webhook` model: Rails `wrap_parameters` moves these keys of a JSON
/// body without a `webhook` root under `webhook`.
const WEBHOOK_ATTRIBUTES: [&str; 10] = [
    "id",
    "name",
    "subscriptions",
    "url",
    "webhook_type",
    "created_at",
    "updated_at",
    "account_id",
    "inbox_id",
    "secret",
];

/// Attributes of the `DashboardApp` model (for `wrap_parameters`).
const DASHBOARD_APP_ATTRIBUTES: [&str; 7] = [
    "id",
    "content",
    "title",
    "created_at",
    "updated_at",
    "account_id",
    "user_id",
];

/// Inbox keys only administrators see (README 3).
const ADMIN_ONLY_INBOX_KEYS: [&str; 3] = ["hmac_token", "secret", "provider_config"];

/// Conversations per page (`ConversationFinder`).
const CONVERSATIONS_PER_PAGE: usize = 25;

/// A request as the handlers see it.
pub(crate) struct ApiRequest<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// A response before it becomes a hyper response.
#[derive(Debug)]
pub(crate) struct ApiResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ApiResponse {
    pub fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".to_owned(), JSON_CONTENT_TYPE.to_owned())],
            body: body.to_string().into_bytes(),
        }
    }

    pub fn text(status: u16, content_type: &str, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".to_owned(), content_type.to_owned())],
            body: body.as_bytes().to_vec(),
        }
    }

    fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

type Res<T> = Result<T, ApiResponse>;

// ---------------------------------------------------------------- errors

/// An error status and body taken from `api/errors.json`.
fn fixture_error(kind: &str) -> ApiResponse {
    let entry = &fixtures::ERRORS_JSON[kind];
    let status = entry["status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(500);
    ApiResponse::json(status, &entry["body"])
}

/// 404 `{"error":"Resource could not be found"}`.
pub(crate) fn not_found() -> ApiResponse {
    fixture_error("not_found")
}

/// 401 `{"error":"You are not authorized to do this action"}` (Pundit refusal).
fn policy_refused() -> ApiResponse {
    fixture_error("pundit_forbidden")
}

/// 422 for `ActiveRecord::RecordInvalid`: full messages joined with ", ", attribute names.
fn record_invalid(errors: &[(&str, &str)]) -> ApiResponse {
    let message = errors
        .iter()
        .map(|(_, m)| *m)
        .collect::<Vec<_>>()
        .join(", ");
    let mut attributes: Vec<&str> = Vec::new();
    for (attr, _) in errors {
        if !attributes.contains(attr) {
            attributes.push(attr);
        }
    }
    ApiResponse::json(
        422,
        &json!({ "message": message, "attributes": attributes }),
    )
}

/// 422 for `ActionController::ParameterMissing`.
fn param_missing(root: &str) -> ApiResponse {
    ApiResponse::json(
        422,
        &json!({ "error": format!("param is missing or the value is empty: {root}") }),
    )
}

/// 400 for an unparsable JSON body (`ActionDispatch::PublicExceptions`).
fn bad_request() -> ApiResponse {
    ApiResponse::json(400, &json!({ "status": 400, "error": "Bad Request" }))
}

/// 500 as Rails renders it for a JSON request (e.g. a NOT NULL violation).
fn server_error() -> ApiResponse {
    ApiResponse::json(
        500,
        &json!({ "status": 500, "error": "Internal Server Error" }),
    )
}

/// The answer of an injected [`crate::Fault::Status`].
pub(crate) fn fault_response(status: u16) -> ApiResponse {
    if status == 429 {
        // rack-attack's default throttled responder.
        return ApiResponse::text(429, "text/plain", "Retry later\n");
    }
    let reason = hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    ApiResponse::json(status, &json!({ "status": status, "error": reason }))
}

// ---------------------------------------------------------------- routing

enum Route<'a> {
    SignIn,
    ValidateToken,
    SignOut,
    Profile,
    Account(&'a str, AccountRoute<'a>),
}

enum AccountRoute<'a> {
    Inboxes,
    Inbox(&'a str),
    Agents,
    Teams,
    Conversations,
    Webhooks,
    CreateWebhook,
    UpdateWebhook(&'a str),
    DeleteWebhook(&'a str),
    DashboardApps,
    CreateDashboardApp,
    ShowDashboardApp(&'a str),
    UpdateDashboardApp(&'a str),
    DeleteDashboardApp(&'a str),
}

fn route<'a>(method: &str, segments: &[&'a str]) -> Option<Route<'a>> {
    match (method, segments) {
        ("POST", ["auth", "sign_in"]) => Some(Route::SignIn),
        ("GET", ["auth", "validate_token"]) => Some(Route::ValidateToken),
        ("DELETE", ["auth", "sign_out"]) => Some(Route::SignOut),
        ("GET", ["api", "v1", "profile"]) => Some(Route::Profile),
        (_, ["api", "v1", "accounts", account, rest @ ..]) => {
            account_route(method, rest).map(|r| Route::Account(account, r))
        }
        _ => None,
    }
}

fn account_route<'a>(method: &str, rest: &[&'a str]) -> Option<AccountRoute<'a>> {
    use AccountRoute as R;
    let update = method == "PATCH" || method == "PUT";
    Some(match (method, rest) {
        ("GET", ["inboxes"]) => R::Inboxes,
        ("GET", ["inboxes", id]) => R::Inbox(id),
        ("GET", ["agents"]) => R::Agents,
        ("GET", ["teams"]) => R::Teams,
        ("GET", ["conversations"]) => R::Conversations,
        ("GET", ["webhooks"]) => R::Webhooks,
        ("POST", ["webhooks"]) => R::CreateWebhook,
        (_, ["webhooks", id]) if update => R::UpdateWebhook(id),
        ("DELETE", ["webhooks", id]) => R::DeleteWebhook(id),
        ("GET", ["dashboard_apps"]) => R::DashboardApps,
        ("POST", ["dashboard_apps"]) => R::CreateDashboardApp,
        ("GET", ["dashboard_apps", id]) => R::ShowDashboardApp(id),
        (_, ["dashboard_apps", id]) if update => R::UpdateDashboardApp(id),
        ("DELETE", ["dashboard_apps", id]) => R::DeleteDashboardApp(id),
        _ => return None,
    })
}

/// Path segments; a trailing `.json` format suffix is dropped as Rails does.
fn segments(path: &str) -> Vec<&str> {
    let mut segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(last) = segs.last_mut()
        && let Some(stripped) = last.strip_suffix(".json")
    {
        *last = stripped;
    }
    segs
}

/// Answers one request.
pub(crate) fn handle(state: &mut State, req: &ApiRequest<'_>) -> ApiResponse {
    let segs = segments(req.path);
    let Some(route) = route(req.method.as_str(), &segs) else {
        return not_found();
    };
    let result = match route {
        Route::SignIn => sign_in(state, req),
        Route::ValidateToken => Ok(validate_token(state, req.headers)),
        Route::SignOut => Ok(sign_out(state, req.headers)),
        Route::Profile => authenticate(state, req.headers).map(|user_id| profile(state, user_id)),
        Route::Account(account, account_route) => {
            authenticate(state, req.headers).and_then(|user_id| {
                let ctx = account_access(state, user_id, account)?;
                handle_account(state, &ctx, account_route, req)
            })
        }
    };
    result.unwrap_or_else(|err| err)
}

fn handle_account(
    state: &mut State,
    ctx: &Ctx,
    route: AccountRoute<'_>,
    req: &ApiRequest<'_>,
) -> Res<ApiResponse> {
    use AccountRoute as R;
    match route {
        R::Inboxes => Ok(inboxes_index(state, ctx)),
        R::Inbox(id) => inbox_show(state, ctx, id),
        R::Agents => Ok(agents_index(state, ctx)),
        R::Teams => Ok(teams_index(state, ctx)),
        R::Conversations => conversations_index(state, ctx, &parse_params(req)?),
        R::Webhooks => {
            require_admin(ctx)?;
            Ok(webhooks_index(state, ctx))
        }
        R::CreateWebhook => {
            require_admin(ctx)?;
            webhook_create(state, ctx, &parse_params(req)?)
        }
        R::UpdateWebhook(id) => {
            require_admin(ctx)?;
            webhook_update(state, ctx, id, &parse_params(req)?)
        }
        R::DeleteWebhook(id) => {
            require_admin(ctx)?;
            webhook_delete(state, ctx, id)
        }
        R::DashboardApps => Ok(dashboard_apps_index(state, ctx)),
        R::ShowDashboardApp(id) => dashboard_app_show(state, ctx, id),
        R::CreateDashboardApp => {
            require_admin(ctx)?;
            dashboard_app_create(state, ctx, &parse_params(req)?)
        }
        R::UpdateDashboardApp(id) => {
            require_admin(ctx)?;
            dashboard_app_update(state, ctx, id, &parse_params(req)?)
        }
        R::DeleteDashboardApp(id) => {
            require_admin(ctx)?;
            dashboard_app_delete(state, ctx, id)
        }
    }
}

// ---------------------------------------------------------------- params

/// Request parameters: query string merged with the body (body wins), like Rails `params`.
struct Params {
    all: Map<String, Value>,
    /// Parameters from the body only (what `wrap_parameters` looks at).
    body: Map<String, Value>,
    /// The body was JSON (`wrap_parameters format: [:json]`).
    json: bool,
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn parse_params(req: &ApiRequest<'_>) -> Res<Params> {
    let mut all = Map::new();
    if let Some(query) = req.query {
        for (k, v) in util::form_pairs(query) {
            insert_form_param(&mut all, &k, v);
        }
    }
    let content_type = header_str(req.headers, "content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut body = Map::new();
    let json = content_type.contains("json");
    if json {
        if !req.body.trim_ascii().is_empty() {
            match serde_json::from_slice::<Value>(req.body) {
                Ok(Value::Object(map)) => body = map,
                Ok(other) => {
                    body.insert("_json".to_owned(), other);
                }
                Err(_) => return Err(bad_request()),
            }
        }
    } else if content_type.is_empty()
        || content_type.starts_with("application/x-www-form-urlencoded")
    {
        // Rack parses a POST without Content-Type as a form, like the real server.
        let text = String::from_utf8_lossy(req.body);
        for (k, v) in util::form_pairs(text.trim()) {
            insert_form_param(&mut body, &k, v);
        }
    }
    for (k, v) in &body {
        all.insert(k.clone(), v.clone());
    }
    Ok(Params { all, body, json })
}

/// Inserts a form key like `a`, `a[b]`, `a[]` or `a[b][]` (Rack nested params).
fn insert_form_param(map: &mut Map<String, Value>, key: &str, value: String) {
    let (base, mut rest) = match key.find('[') {
        Some(i) if i > 0 => (&key[..i], &key[i..]),
        _ => (key, ""),
    };
    let mut parts = Vec::new();
    while let Some(stripped) = rest.strip_prefix('[') {
        let Some(end) = stripped.find(']') else { break };
        parts.push(&stripped[..end]);
        rest = &stripped[end + 1..];
    }
    let slot = map.entry(base.to_owned()).or_insert(Value::Null);
    insert_path(slot, &parts, value);
}

fn insert_path(slot: &mut Value, parts: &[&str], value: String) {
    match parts.split_first() {
        None => *slot = Value::String(value),
        Some((&"", rest)) => {
            if !slot.is_array() {
                *slot = Value::Array(Vec::new());
            }
            if let Value::Array(items) = slot {
                if rest.is_empty() {
                    items.push(Value::String(value));
                } else {
                    let mut item = Value::Null;
                    insert_path(&mut item, rest, value);
                    items.push(item);
                }
            }
        }
        Some((key, rest)) => {
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(map) = slot {
                let child = map.entry((*key).to_owned()).or_insert(Value::Null);
                insert_path(child, rest, value);
            }
        }
    }
}

/// `params.require(root)`, after Rails `wrap_parameters` (a JSON body without the root key
/// has its model-attribute keys wrapped under it).
fn require_root(params: &Params, root: &str, attributes: &[&str]) -> Res<Map<String, Value>> {
    let found = match params.all.get(root) {
        Some(Value::Object(map)) => map.clone(),
        Some(_) => Map::new(),
        None if params.json => params
            .body
            .iter()
            .filter(|(k, _)| attributes.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        None => Map::new(),
    };
    if found.is_empty() {
        Err(param_missing(root))
    } else {
        Ok(found)
    }
}

fn param_str<'p>(params: &'p Map<String, Value>, key: &str) -> Option<&'p str> {
    params.get(key).and_then(Value::as_str)
}

fn value_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A permitted scalar cast to a string column (`nil` stays `None`).
fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_))
}

// ---------------------------------------------------------------- authentication

fn api_access_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .iter()
        .find(|(name, _)| name.as_str().replace('_', "-") == "api-access-token")
        .and_then(|(_, value)| value.to_str().ok())
        .filter(|value| !value.trim().is_empty())
}

/// The user of valid devise_token_auth headers (`access-token`, `client`, `uid`).
fn devise_user(state: &State, headers: &HeaderMap) -> Option<i64> {
    let token = header_str(headers, "access-token")?;
    let client = header_str(headers, "client")?;
    let uid = header_str(headers, "uid")?;
    let now = util::unix_now();
    state
        .sessions
        .iter()
        .find(|s| {
            s.session.client == client
                && s.session.uid == uid
                && s.session.access_token == token
                && s.session.expiry > now
        })
        .map(|s| s.user_id)
        .filter(|id| state.users.get(id).is_some_and(|u| u.email == uid))
}

/// `Api::BaseController`: an `api_access_token` header wins; otherwise devise headers.
fn authenticate(state: &State, headers: &HeaderMap) -> Res<i64> {
    if let Some(token) = api_access_token(headers) {
        return state
            .users
            .values()
            .find(|u| u.access_token == token)
            .map(|u| u.id)
            .ok_or_else(|| fixture_error("unauthorized_api_token"));
    }
    devise_user(state, headers).ok_or_else(|| fixture_error("unauthorized_no_credentials"))
}

/// The caller inside an account.
struct Ctx {
    user_id: i64,
    account_id: i64,
    role: SimRole,
}

impl Ctx {
    fn is_admin(&self) -> bool {
        self.role == SimRole::Administrator
    }
}

/// `EnsureCurrentAccountHelper`: unknown account 404, suspended 401, non-member 401.
fn account_access(state: &State, user_id: i64, raw_account: &str) -> Res<Ctx> {
    let account_id: i64 = raw_account.parse().map_err(|_| not_found())?;
    let account = state.accounts.get(&account_id).ok_or_else(not_found)?;
    if account.status == AccountStatus::Suspended {
        return Err(fixture_error("account_suspended"));
    }
    let membership = state
        .membership(user_id, account_id)
        .ok_or_else(|| fixture_error("not_member_of_account"))?;
    Ok(Ctx {
        user_id,
        account_id,
        role: membership.role,
    })
}

fn require_admin(ctx: &Ctx) -> Res<()> {
    if ctx.is_admin() {
        Ok(())
    } else {
        Err(policy_refused())
    }
}

fn account<'s>(state: &'s State, ctx: &Ctx) -> Res<&'s Account> {
    state.accounts.get(&ctx.account_id).ok_or_else(not_found)
}

fn account_mut<'s>(state: &'s mut State, ctx: &Ctx) -> Res<&'s mut Account> {
    state
        .accounts
        .get_mut(&ctx.account_id)
        .ok_or_else(not_found)
}

// ---------------------------------------------------------------- users and sessions

/// Copies `template`, replacing the values of its keys found in `values`; other template keys
/// keep their example value. The result has exactly the template's keys.
fn fill(template: &Value, values: &Map<String, Value>) -> Value {
    match template {
        Value::Object(t) => Value::Object(
            t.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        values.get(k).cloned().unwrap_or_else(|| v.clone()),
                    )
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn account_fields(account: &Account, membership: &Membership) -> Map<String, Value> {
    let mut f = Map::new();
    f.insert("id".into(), account.id.into());
    f.insert("name".into(), account.name.clone().into());
    f.insert("status".into(), account.status.as_str().into());
    f.insert(
        "active_at".into(),
        membership
            .active_at
            .clone()
            .map_or(Value::Null, Value::from),
    );
    f.insert("role".into(), membership.role.as_str().into());
    f.insert("permissions".into(), json!([membership.role.as_str()]));
    f.insert(
        "availability".into(),
        membership.availability.as_str().into(),
    );
    f.insert(
        "availability_status".into(),
        membership.presence.as_str().into(),
    );
    f.insert("auto_offline".into(), membership.auto_offline.into());
    f.insert("custom_role_id".into(), Value::Null);
    f.insert("custom_role".into(), Value::Null);
    f
}

/// `api/v1/models/_user.json.jbuilder`, shaped like `template` (profile, sign-in or
/// validate-token example).
pub(crate) fn render_user(state: &State, user: &User, template: &Value) -> Value {
    let memberships = state.memberships_of(user.id);
    let active = memberships
        .iter()
        .filter(|(_, m)| m.active_at.is_some())
        .max_by(|a, b| a.1.active_at.cmp(&b.1.active_at))
        .or_else(|| memberships.first());
    let account_template = template
        .get("accounts")
        .and_then(|a| a.get(0))
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let accounts: Vec<Value> = memberships
        .iter()
        .map(|(a, m)| fill(&account_template, &account_fields(a, m)))
        .collect();

    let mut f = Map::new();
    f.insert("access_token".into(), user.access_token.clone().into());
    f.insert(
        "account_id".into(),
        active.map_or(Value::Null, |(a, _)| a.id.into()),
    );
    f.insert("available_name".into(), user.available_name().into());
    f.insert("avatar_url".into(), "".into());
    f.insert("confirmed".into(), true.into());
    f.insert(
        "display_name".into(),
        user.display_name.clone().map_or(Value::Null, Value::from),
    );
    f.insert("message_signature".into(), Value::Null);
    f.insert("email".into(), user.email.clone().into());
    f.insert("id".into(), user.id.into());
    f.insert("inviter_id".into(), Value::Null);
    f.insert("name".into(), user.name.clone().into());
    f.insert("provider".into(), "email".into());
    f.insert("pubsub_token".into(), user.pubsub_token.clone().into());
    f.insert(
        "role".into(),
        active.map_or(Value::Null, |(_, m)| m.role.as_str().into()),
    );
    f.insert("uid".into(), user.email.clone().into());
    f.insert(
        "type".into(),
        user.user_type.clone().map_or(Value::Null, Value::from),
    );
    f.insert("created_at".into(), user.created_at.clone().into());
    f.insert("accounts".into(), Value::Array(accounts));

    let mut out = fill(template, &f);
    if !user.custom_attributes.is_empty()
        && let Some(obj) = out.as_object_mut()
    {
        obj.insert(
            "custom_attributes".into(),
            Value::Object(user.custom_attributes.clone()),
        );
    }
    out
}

fn profile(state: &State, user_id: i64) -> ApiResponse {
    match state.users.get(&user_id) {
        Some(user) => ApiResponse::json(200, &render_user(state, user, &fixtures::PROFILE_JSON)),
        None => fixture_error("unauthorized_no_credentials"),
    }
}

fn validate_token(state: &State, headers: &HeaderMap) -> ApiResponse {
    let fixture = &*fixtures::VALIDATE_TOKEN_JSON;
    let user = devise_user(state, headers).and_then(|id| state.users.get(&id));
    let Some(user) = user else {
        return ApiResponse::json(401, &fixture["_response_401"]);
    };
    let mut body = fixture["_response_200"].clone();
    let data = render_user(state, user, &fixture["_response_200"]["payload"]["data"]);
    if let Some(slot) = body.pointer_mut("/payload/data") {
        *slot = data;
    }
    ApiResponse::json(200, &body)
}

/// Creates a devise session for `user_id` (uid = the user's email).
pub(crate) fn create_session(state: &mut State, user_id: i64) -> DeviseSession {
    let uid = state
        .users
        .get(&user_id)
        .map(|u| u.email.clone())
        .unwrap_or_default();
    let session = DeviseSession {
        access_token: util::urlsafe_token(22),
        token_type: "Bearer".to_owned(),
        client: util::urlsafe_token(22),
        uid,
        expiry: util::unix_now() + TOKEN_LIFESPAN_SECS,
    };
    state.sessions.push(Session {
        user_id,
        session: session.clone(),
    });
    session
}

fn sign_in(state: &mut State, req: &ApiRequest<'_>) -> Res<ApiResponse> {
    let fixture = &*fixtures::SIGN_IN_JSON;
    let params = parse_params(req)?;
    let email = param_str(&params.all, "email")
        .unwrap_or("")
        .trim()
        .to_lowercase();
    let password = param_str(&params.all, "password").unwrap_or("");
    let user_id = state
        .users
        .values()
        .find(|u| {
            !email.is_empty()
                && u.email.to_lowercase() == email
                && u.password.as_deref().is_some_and(|p| p == password)
        })
        .map(|u| u.id);
    let Some(user_id) = user_id else {
        return Ok(ApiResponse::json(401, &fixture["_response_401"]));
    };
    let session = create_session(state, user_id);
    let Some(user) = state.users.get(&user_id) else {
        return Ok(ApiResponse::json(401, &fixture["_response_401"]));
    };
    let data = render_user(state, user, &fixture["_response_200"]["data"]);
    let mut response = ApiResponse::json(200, &json!({ "data": data }));
    for (name, value) in session.headers() {
        response.headers.push((name.to_owned(), value));
    }
    response
        .headers
        .push(("authorization".to_owned(), session.authorization()));
    Ok(response)
}

fn sign_out(state: &mut State, headers: &HeaderMap) -> ApiResponse {
    let client = header_str(headers, "client");
    match devise_user(state, headers) {
        Some(user_id) => {
            state
                .sessions
                .retain(|s| !(s.user_id == user_id && Some(s.session.client.as_str()) == client));
            ApiResponse::json(200, &json!({ "success": true }))
        }
        None => ApiResponse::json(
            404,
            &json!({ "success": false, "errors": ["User was not found or was not logged in."] }),
        ),
    }
}

// ---------------------------------------------------------------- inboxes, agents, teams

fn render_inbox(entry: &InboxEntry, ctx: &Ctx) -> Value {
    let mut value = entry.value.clone();
    if !ctx.is_admin()
        && let Some(obj) = value.as_object_mut()
    {
        obj.retain(|k, _| {
            !ADMIN_ONLY_INBOX_KEYS.contains(&k.as_str())
                && !k.starts_with("imap_")
                && !k.starts_with("smtp_")
        });
    }
    value
}

/// Inboxes the caller may see (admins: all; agents: those they are members of).
fn visible_inboxes<'a>(account: &'a Account, ctx: &Ctx) -> Vec<&'a InboxEntry> {
    account
        .inboxes
        .iter()
        .filter(|i| ctx.is_admin() || i.has_member(ctx.user_id))
        .collect()
}

fn inboxes_index(state: &State, ctx: &Ctx) -> ApiResponse {
    let Ok(account) = account(state, ctx) else {
        return not_found();
    };
    let mut inboxes = visible_inboxes(account, ctx);
    inboxes.sort_by(|a, b| {
        a.name()
            .to_lowercase()
            .cmp(&b.name().to_lowercase())
            .then(a.id().cmp(&b.id()))
    });
    let payload: Vec<Value> = inboxes.iter().map(|i| render_inbox(i, ctx)).collect();
    ApiResponse::json(200, &json!({ "payload": payload }))
}

fn inbox_show(state: &State, ctx: &Ctx, raw_id: &str) -> Res<ApiResponse> {
    let id: i64 = raw_id.parse().map_err(|_| not_found())?;
    let entry = account(state, ctx)?
        .inboxes
        .iter()
        .find(|i| i.id() == Some(id))
        .ok_or_else(not_found)?;
    if !ctx.is_admin() && !entry.has_member(ctx.user_id) {
        return Err(policy_refused());
    }
    Ok(ApiResponse::json(200, &render_inbox(entry, ctx)))
}

fn render_agent(user: &User, account_id: i64, membership: &Membership) -> Value {
    let template = fixtures::AGENTS_JSON
        .get(0)
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let mut f = Map::new();
    f.insert("id".into(), user.id.into());
    f.insert("account_id".into(), account_id.into());
    f.insert(
        "availability_status".into(),
        membership.presence.as_str().into(),
    );
    f.insert("auto_offline".into(), membership.auto_offline.into());
    f.insert("confirmed".into(), true.into());
    f.insert("email".into(), user.email.clone().into());
    f.insert("provider".into(), "email".into());
    f.insert("available_name".into(), user.available_name().into());
    f.insert("name".into(), user.name.clone().into());
    f.insert("role".into(), membership.role.as_str().into());
    f.insert("thumbnail".into(), "".into());
    f.insert("custom_role_id".into(), Value::Null);
    let mut out = fill(&template, &f);
    if let Some(obj) = out.as_object_mut() {
        obj.remove("custom_attributes");
        if !user.custom_attributes.is_empty() {
            obj.insert(
                "custom_attributes".into(),
                Value::Object(user.custom_attributes.clone()),
            );
        }
    }
    out
}

fn agents_index(state: &State, ctx: &Ctx) -> ApiResponse {
    let Ok(account) = account(state, ctx) else {
        return not_found();
    };
    if let Some(agents) = &account.agents {
        return ApiResponse::json(200, &Value::Array(agents.clone()));
    }
    let mut members = state.members_of(ctx.account_id);
    members.sort_by(|a, b| {
        a.0.name
            .to_lowercase()
            .cmp(&b.0.name.to_lowercase())
            .then(a.0.id.cmp(&b.0.id))
    });
    let agents: Vec<Value> = members
        .iter()
        .map(|(u, m)| render_agent(u, ctx.account_id, m))
        .collect();
    ApiResponse::json(200, &Value::Array(agents))
}

fn teams_index(state: &State, ctx: &Ctx) -> ApiResponse {
    let Ok(account) = account(state, ctx) else {
        return not_found();
    };
    let teams: Vec<Value> = account
        .teams
        .iter()
        .map(|t| {
            let mut value = t.value.clone();
            if let Some(obj) = value.as_object_mut() {
                obj.insert("is_member".into(), t.has_member(ctx.user_id).into());
            }
            value
        })
        .collect();
    ApiResponse::json(200, &Value::Array(teams))
}

// ---------------------------------------------------------------- conversations

fn conversations_index(state: &State, ctx: &Ctx, params: &Params) -> Res<ApiResponse> {
    let account = account(state, ctx)?;
    let visible: Vec<i64> = visible_inboxes(account, ctx)
        .iter()
        .filter_map(|i| i.id())
        .collect();
    let status = param_str(&params.all, "status").unwrap_or("open");
    let inbox_filter = params.all.get("inbox_id").and_then(value_i64);
    let team_filter = params.all.get("team_id").and_then(value_i64);
    let assignee_id = |c: &Value| c.pointer("/meta/assignee/id").and_then(Value::as_i64);

    let mut matching: Vec<&Value> = account
        .conversations
        .iter()
        .filter(|c| {
            let inbox = c.get("inbox_id").and_then(Value::as_i64);
            ctx.is_admin() || inbox.is_some_and(|i| visible.contains(&i))
        })
        .filter(|c| status == "all" || c.get("status").and_then(Value::as_str) == Some(status))
        .filter(|c| {
            inbox_filter.is_none() || c.get("inbox_id").and_then(Value::as_i64) == inbox_filter
        })
        .filter(|c| {
            team_filter.is_none()
                || c.pointer("/meta/team/id").and_then(Value::as_i64) == team_filter
        })
        .collect();

    let mine = matching
        .iter()
        .filter(|c| assignee_id(c) == Some(ctx.user_id))
        .count();
    let assigned = matching.iter().filter(|c| assignee_id(c).is_some()).count();
    let all = matching.len();
    let meta = json!({
        "mine_count": mine,
        "assigned_count": assigned,
        "unassigned_count": all - assigned,
        "all_count": all,
    });

    match param_str(&params.all, "assignee_type") {
        Some("me") => matching.retain(|c| assignee_id(c) == Some(ctx.user_id)),
        Some("unassigned") => matching.retain(|c| assignee_id(c).is_none()),
        Some("assigned") => matching.retain(|c| assignee_id(c).is_some()),
        _ => {}
    }
    let last_activity = |c: &Value| {
        c.get("last_activity_at")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    matching.sort_by_key(|c| std::cmp::Reverse(last_activity(c)));
    let page = params
        .all
        .get("page")
        .and_then(value_i64)
        .and_then(|p| usize::try_from(p).ok())
        .unwrap_or(1)
        .max(1);
    let payload: Vec<Value> = matching
        .into_iter()
        .skip((page - 1).saturating_mul(CONVERSATIONS_PER_PAGE))
        .take(CONVERSATIONS_PER_PAGE)
        .cloned()
        .collect();
    Ok(ApiResponse::json(
        200,
        &json!({ "data": { "meta": meta, "payload": payload } }),
    ))
}

// ---------------------------------------------------------------- webhooks

pub(crate) fn render_webhook(account: &Account, w: &WebhookEntry) -> Value {
    let mut obj = Map::new();
    obj.insert("id".into(), w.id.into());
    obj.insert(
        "name".into(),
        w.name.clone().map_or(Value::Null, Value::from),
    );
    obj.insert("url".into(), w.url.clone().into());
    obj.insert("account_id".into(), account.id.into());
    obj.insert(
        "subscriptions".into(),
        Value::Array(w.subscriptions.clone()),
    );
    if let Some(inbox) = w
        .inbox_id
        .and_then(|id| account.inboxes.iter().find(|i| i.id() == Some(id)))
    {
        obj.insert(
            "inbox".into(),
            json!({ "id": inbox.id(), "name": inbox.name() }),
        );
    }
    obj.insert("secret".into(), w.secret.clone().into());
    Value::Object(obj)
}

fn webhooks_index(state: &State, ctx: &Ctx) -> ApiResponse {
    let Ok(account) = account(state, ctx) else {
        return not_found();
    };
    let webhooks: Vec<Value> = account
        .webhooks
        .iter()
        .map(|w| render_webhook(account, w))
        .collect();
    ApiResponse::json(200, &json!({ "payload": { "webhooks": webhooks } }))
}

/// Applies the permitted params (`:inbox_id, :name, :url, subscriptions: []`).
fn apply_webhook_params(w: &mut WebhookEntry, p: &Map<String, Value>) {
    match p.get("url") {
        Some(Value::Null) => w.url = String::new(),
        Some(v) => {
            if let Some(s) = scalar_string(v) {
                w.url = s;
            }
        }
        None => {}
    }
    match p.get("name") {
        Some(Value::Null) => w.name = None,
        Some(v) => {
            if let Some(s) = scalar_string(v) {
                w.name = Some(s);
            }
        }
        None => {}
    }
    if let Some(Value::Array(items)) = p.get("subscriptions") {
        w.subscriptions = items.iter().filter(|v| is_scalar(v)).cloned().collect();
    }
    if let Some(v) = p.get("inbox_id") {
        w.inbox_id = value_i64(v);
    }
}

/// `URI::DEFAULT_PARSER.make_regexp(%w[http https])`, approximated: an http(s) URL with a host.
fn is_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// `Webhook` validations: url unique in the account and http(s); subscriptions valid.
fn validate_webhook(account: &Account, w: &WebhookEntry) -> Res<()> {
    let mut errors: Vec<(&str, &str)> = Vec::new();
    if !w.url.is_empty()
        && account
            .webhooks
            .iter()
            .any(|other| other.id != w.id && other.url == w.url)
    {
        errors.push(("url", "Url has already been taken"));
    }
    if !is_http_url(&w.url) {
        errors.push(("url", "Url is invalid"));
    }
    let subscriptions_ok = !w.subscriptions.is_empty()
        && w.subscriptions.iter().all(|s| {
            s.as_str()
                .is_some_and(|s| ALLOWED_WEBHOOK_EVENTS.contains(&s))
        });
    if !subscriptions_ok {
        errors.push(("subscriptions", "Subscriptions Invalid events"));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(record_invalid(&errors))
    }
}

fn webhook_create(state: &mut State, ctx: &Ctx, params: &Params) -> Res<ApiResponse> {
    let root = require_root(params, "webhook", &WEBHOOK_ATTRIBUTES)?;
    let mut webhook = WebhookEntry {
        id: 0,
        name: None,
        url: String::new(),
        subscriptions: DEFAULT_WEBHOOK_SUBSCRIPTIONS
            .iter()
            .map(|s| Value::from(*s))
            .collect(),
        inbox_id: None,
        secret: util::alphanumeric(24),
    };
    apply_webhook_params(&mut webhook, &root);
    validate_webhook(account(state, ctx)?, &webhook)?;
    webhook.id = state.next_id();
    let account = account_mut(state, ctx)?;
    account.webhooks.push(webhook.clone());
    let body = json!({ "payload": { "webhook": render_webhook(account, &webhook) } });
    Ok(ApiResponse::json(200, &body))
}

fn webhook_update(state: &mut State, ctx: &Ctx, raw_id: &str, params: &Params) -> Res<ApiResponse> {
    let id: i64 = raw_id.parse().map_err(|_| not_found())?;
    let account = account_mut(state, ctx)?;
    let index = account
        .webhooks
        .iter()
        .position(|w| w.id == id)
        .ok_or_else(not_found)?;
    let root = require_root(params, "webhook", &WEBHOOK_ATTRIBUTES)?;
    let mut webhook = account.webhooks[index].clone();
    apply_webhook_params(&mut webhook, &root);
    validate_webhook(account, &webhook)?;
    account.webhooks[index] = webhook.clone();
    let body = json!({ "payload": { "webhook": render_webhook(account, &webhook) } });
    Ok(ApiResponse::json(200, &body))
}

fn webhook_delete(state: &mut State, ctx: &Ctx, raw_id: &str) -> Res<ApiResponse> {
    let id: i64 = raw_id.parse().map_err(|_| not_found())?;
    let account = account_mut(state, ctx)?;
    let index = account
        .webhooks
        .iter()
        .position(|w| w.id == id)
        .ok_or_else(not_found)?;
    account.webhooks.remove(index);
    Ok(ApiResponse::empty(200))
}

// ---------------------------------------------------------------- dashboard apps

pub(crate) fn render_dashboard_app(app: &DashboardAppEntry) -> Value {
    json!({
        "id": app.id,
        "title": app.title,
        "content": app.content,
        "created_at": app.created_at,
    })
}

fn dashboard_apps_index(state: &State, ctx: &Ctx) -> ApiResponse {
    let Ok(account) = account(state, ctx) else {
        return not_found();
    };
    let apps: Vec<Value> = account
        .dashboard_apps
        .iter()
        .map(render_dashboard_app)
        .collect();
    ApiResponse::json(200, &Value::Array(apps))
}

fn dashboard_app_show(state: &State, ctx: &Ctx, raw_id: &str) -> Res<ApiResponse> {
    let id: i64 = raw_id.parse().map_err(|_| not_found())?;
    let app = account(state, ctx)?
        .dashboard_apps
        .iter()
        .find(|a| a.id == id)
        .ok_or_else(not_found)?;
    Ok(ApiResponse::json(200, &render_dashboard_app(app)))
}

/// Strong params `content: [:url, :type]`: `None` when the key is absent or not permitted.
fn permit_content(value: &Value) -> Option<Value> {
    let permit_item = |item: &Map<String, Value>| {
        let kept: Map<String, Value> = item
            .iter()
            .filter(|(k, v)| (k.as_str() == "url" || k.as_str() == "type") && is_scalar(v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Value::Object(kept)
    };
    match value {
        Value::Array(items) => Some(Value::Array(
            items
                .iter()
                .filter_map(Value::as_object)
                .map(permit_item)
                .collect(),
        )),
        Value::Object(item) => Some(permit_item(item)),
        Value::Null => Some(Value::Null),
        _ => None,
    }
}

/// `DashboardApp#validate_content` (JSON schema: non-empty array of `{type:"frame", url:^https?://}`).
fn content_is_valid(content: &Value) -> bool {
    let Some(items) = content.as_array() else {
        return false;
    };
    !items.is_empty()
        && items.iter().all(|item| {
            item.get("type").and_then(Value::as_str) == Some("frame")
                && item
                    .get("url")
                    .and_then(Value::as_str)
                    .is_some_and(is_http_url)
        })
}

/// Applies `permit(:title, content: [...])` and validates; `Err` is the answer to send.
fn apply_dashboard_app_params(
    title: &mut Option<String>,
    content: &mut Value,
    p: &Map<String, Value>,
) -> Res<()> {
    if let Some(v) = p.get("title") {
        if v.is_null() {
            *title = None;
        } else if let Some(s) = scalar_string(v) {
            *title = Some(s);
        }
    }
    if let Some(c) = p.get("content").and_then(permit_content) {
        *content = c;
    }
    if !content_is_valid(content) {
        return Err(record_invalid(&[("content", "Content : Invalid data")]));
    }
    Ok(())
}

fn dashboard_app_create(state: &mut State, ctx: &Ctx, params: &Params) -> Res<ApiResponse> {
    let root = require_root(params, "dashboard_app", &DASHBOARD_APP_ATTRIBUTES)?;
    let mut title = None;
    let mut content = Value::Null;
    apply_dashboard_app_params(&mut title, &mut content, &root)?;
    // `title` is NOT NULL without a model validation: Chatwoot answers 500.
    let title = title.ok_or_else(server_error)?;
    let app = DashboardAppEntry {
        id: state.next_id(),
        title,
        content,
        created_at: util::iso_now(),
    };
    let body = render_dashboard_app(&app);
    account_mut(state, ctx)?.dashboard_apps.push(app);
    Ok(ApiResponse::json(200, &body))
}

fn dashboard_app_update(
    state: &mut State,
    ctx: &Ctx,
    raw_id: &str,
    params: &Params,
) -> Res<ApiResponse> {
    let id: i64 = raw_id.parse().map_err(|_| not_found())?;
    let account = account_mut(state, ctx)?;
    let app = account
        .dashboard_apps
        .iter_mut()
        .find(|a| a.id == id)
        .ok_or_else(not_found)?;
    let root = require_root(params, "dashboard_app", &DASHBOARD_APP_ATTRIBUTES)?;
    let mut title = Some(app.title.clone());
    let mut content = app.content.clone();
    apply_dashboard_app_params(&mut title, &mut content, &root)?;
    app.title = title.ok_or_else(server_error)?;
    app.content = content;
    Ok(ApiResponse::json(200, &render_dashboard_app(app)))
}

fn dashboard_app_delete(state: &mut State, ctx: &Ctx, raw_id: &str) -> Res<ApiResponse> {
    let id: i64 = raw_id.parse().map_err(|_| not_found())?;
    let account = account_mut(state, ctx)?;
    let index = account
        .dashboard_apps
        .iter()
        .position(|a| a.id == id)
        .ok_or_else(not_found)?;
    account.dashboard_apps.remove(index);
    Ok(ApiResponse::empty(204))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_rails_resources() {
        assert!(route("GET", &segments("/api/v1/profile.json")).is_some());
        assert!(route("PUT", &segments("/api/v1/accounts/1/webhooks/3")).is_some());
        assert!(route("GET", &segments("/api/v1/accounts/1/webhooks/3")).is_none());
        assert!(route("POST", &segments("/auth/sign_in/")).is_some());
        assert!(route("GET", &segments("/nope")).is_none());
    }

    #[test]
    fn nested_form_params() {
        let mut map = Map::new();
        insert_form_param(&mut map, "webhook[url]", "http://x".into());
        insert_form_param(&mut map, "webhook[subscriptions][]", "a".into());
        insert_form_param(&mut map, "webhook[subscriptions][]", "b".into());
        insert_form_param(&mut map, "page", "2".into());
        assert_eq!(
            Value::Object(map),
            json!({"webhook": {"url": "http://x", "subscriptions": ["a", "b"]}, "page": "2"})
        );
    }

    #[test]
    fn http_url_check() {
        assert!(is_http_url("https://hub.example/x?y=1"));
        assert!(is_http_url("HTTP://localhost:8080"));
        assert!(!is_http_url("ftp://x"));
        assert!(!is_http_url("https://"));
        assert!(!is_http_url("https://a b"));
        assert!(!is_http_url("not a url"));
    }
}
