//! Routing and endpoint handlers of `/v3`, and the state changes the test hooks make.
//! Everything here is synchronous and runs under the state lock.

use hyper::{HeaderMap, Method};
use serde_json::{Map, Value, json};
use time::Date;

use crate::fixtures;
use crate::model::{State, flag, net_value, number, put, text};
use crate::types::SimError;
use crate::util;

/// Content type of every JSON answer.
const JSON: &str = "application/json";

/// Page size when `limit` is absent or invalid.
const DEFAULT_LIMIT: usize = 10;

/// Largest page size (`limit` above it is clamped).
const MAX_LIMIT: usize = 100;

/// Billing types a subscription accepts.
const SUBSCRIPTION_BILLING_TYPES: [&str; 4] = ["UNDEFINED", "BOLETO", "CREDIT_CARD", "PIX"];

/// Cycles a subscription accepts.
const CYCLES: [&str; 7] = [
    "WEEKLY",
    "BIWEEKLY",
    "MONTHLY",
    "BIMONTHLY",
    "QUARTERLY",
    "SEMIANNUALLY",
    "YEARLY",
];

/// Optional text fields of a customer, as sent and as returned.
const CUSTOMER_TEXT_FIELDS: [&str; 14] = [
    "email",
    "company",
    "phone",
    "mobilePhone",
    "address",
    "addressNumber",
    "complement",
    "province",
    "postalCode",
    "additionalEmails",
    "externalReference",
    "observations",
    "municipalInscription",
    "stateInscription",
];

/// A request as the handlers see it.
pub(crate) struct ApiRequest<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// An answer before it becomes a hyper response.
#[derive(Debug)]
pub(crate) struct ApiResponse {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
}

impl ApiResponse {
    pub fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            content_type: Some(JSON),
            body: body.to_string().into_bytes(),
        }
    }

    pub fn text(status: u16, content_type: &'static str, body: &str) -> Self {
        Self {
            status,
            content_type: Some(content_type),
            body: body.as_bytes().to_vec(),
        }
    }

    fn empty(status: u16) -> Self {
        Self {
            status,
            content_type: None,
            body: Vec::new(),
        }
    }
}

type Res<T> = Result<T, ApiResponse>;

// ---------------------------------------------------------------- errors

/// 400 with Asaas' error list.
fn invalid(errors: &[(&str, &str)]) -> ApiResponse {
    let items: Vec<Value> = errors
        .iter()
        .map(|(code, description)| json!({ "code": code, "description": description }))
        .collect();
    ApiResponse::json(400, &json!({ "errors": items }))
}

/// 401 with the `error-401.json` body.
pub(crate) fn unauthorized() -> ApiResponse {
    ApiResponse::json(401, &fixtures::ERROR_401_JSON)
}

/// 404 with an empty body (unknown object or path).
fn not_found() -> ApiResponse {
    ApiResponse::empty(404)
}

/// The answer of an injected [`crate::Fault::Status`].
pub(crate) fn fault_response(status: u16) -> ApiResponse {
    match status {
        401 => unauthorized(),
        404 => not_found(),
        _ => {
            let reason = hyper::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Falha simulada");
            ApiResponse::json(
                status,
                &json!({ "errors": [{ "code": "sim_fault", "description": reason }] }),
            )
        }
    }
}

/// The answer of an injected [`crate::Fault::Garbage`].
pub(crate) fn garbage_response() -> ApiResponse {
    ApiResponse::text(200, JSON, "<html><body>upstream garbage")
}

// ---------------------------------------------------------------- routing

/// Handles one API request.
pub(crate) fn handle(state: &mut State, request: &ApiRequest<'_>) -> ApiResponse {
    let presented = request
        .headers
        .get("access_token")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if presented != state.api_key.as_bytes() {
        return unauthorized();
    }
    if request.method == Method::GET && !request.body.is_empty() {
        // Asaas' CDN refuses a GET with a body.
        return ApiResponse::text(403, "text/html", "<html><body>403 Forbidden</body></html>");
    }
    let Some(rest) = request.path.strip_prefix("/v3/") else {
        return not_found();
    };
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| util::decode(s, false))
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let query = request.query.map(util::query_pairs).unwrap_or_default();
    let result = match (request.method, segments.as_slice()) {
        (&Method::POST, ["customers"]) => create_customer(state, request.body),
        (&Method::GET, ["customers"]) => Ok(list_customers(state, &query)),
        (&Method::GET, ["customers", id]) => get(&state.customers, id),
        (&Method::PUT, ["customers", id]) => update_customer(state, id, request.body),
        (&Method::DELETE, ["customers", id]) => delete_customer(state, id),
        (&Method::POST, ["customers", id, "restore"]) => restore_customer(state, id),
        (&Method::POST, ["subscriptions"]) => create_subscription(state, request.body),
        (&Method::GET, ["subscriptions"]) => Ok(list_subscriptions(state, &query)),
        (&Method::GET, ["subscriptions", id]) => get(&state.subscriptions, id),
        (&Method::PUT, ["subscriptions", id]) => update_subscription(state, id, request.body),
        (&Method::DELETE, ["subscriptions", id]) => delete_subscription(state, id),
        (&Method::GET, ["subscriptions", id, "payments"]) => {
            subscription_payments(state, id, &query)
        }
        (&Method::GET, ["payments"]) => Ok(list_payments(state, &query)),
        (&Method::GET, ["payments", id]) => get(&state.payments, id),
        _ => Err(not_found()),
    };
    result.unwrap_or_else(|error| error)
}

fn get(table: &crate::model::Table, id: &str) -> Res<ApiResponse> {
    table
        .get(id)
        .map(|row| ApiResponse::json(200, row))
        .ok_or_else(not_found)
}

/// The JSON object of a request body.
fn body_object(body: &[u8]) -> Res<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(invalid(&[(
            "invalid_object",
            "O corpo da requisição deve ser um objeto JSON válido.",
        )])),
    }
}

/// The value of the first query parameter `key`.
fn param<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The list envelope for `items`, paginated by `offset` and `limit` (≤ 100).
fn page(items: Vec<Value>, query: &[(String, String)]) -> ApiResponse {
    let offset = param(query, "offset")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let limit = param(query, "limit")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&l| l > 0)
        .unwrap_or(DEFAULT_LIMIT)
        .min(MAX_LIMIT);
    let total = items.len();
    let data: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    let has_more = offset.saturating_add(data.len()) < total;
    let mut list = fixtures::LIST_JSON.clone();
    put(&mut list, "hasMore", json!(has_more));
    put(&mut list, "totalCount", json!(total));
    put(&mut list, "limit", json!(limit));
    put(&mut list, "offset", json!(offset));
    put(&mut list, "data", Value::Array(data));
    ApiResponse::json(200, &list)
}

/// Whether `row[key]` equals the query parameter `key` (true when the parameter is absent).
fn matches_param(row: &Value, query: &[(String, String)], key: &str) -> bool {
    param(query, key).is_none_or(|wanted| text(row, key) == wanted)
}

// ---------------------------------------------------------------- validation

/// Collected validation errors.
#[derive(Default)]
struct Errors(Vec<(&'static str, &'static str)>);

impl Errors {
    fn add(&mut self, code: &'static str, description: &'static str) {
        self.0.push((code, description));
    }

    fn check(self) -> Res<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(invalid(&self.0))
        }
    }
}

/// An optional string field: absent or null → `Null`; a string → itself; anything else is
/// an error.
fn optional_text(
    body: &Map<String, Value>,
    key: &str,
    errors: &mut Errors,
    code: &'static str,
    description: &'static str,
) -> Value {
    match body.get(key) {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(_) => {
            errors.add(code, description);
            Value::Null
        }
    }
}

fn valid_cpf_cnpj(value: &str) -> bool {
    matches!(value.len(), 11 | 14) && value.bytes().all(|b| b.is_ascii_digit())
}

fn person_type(cpf_cnpj: &str) -> &'static str {
    if cpf_cnpj.len() == 14 {
        "JURIDICA"
    } else {
        "FISICA"
    }
}

/// Checks the customer fields present in `body` (all of them when `creating`).
fn check_customer(body: &Map<String, Value>, creating: bool, errors: &mut Errors) {
    let present = |key: &str| creating || body.contains_key(key);
    if present("name")
        && body
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(|n| n.trim().is_empty())
    {
        errors.add("invalid_name", "O campo nome deve ser informado.");
    }
    if present("cpfCnpj")
        && !body
            .get("cpfCnpj")
            .and_then(Value::as_str)
            .is_some_and(valid_cpf_cnpj)
    {
        errors.add("invalid_cpfCnpj", "O CPF/CNPJ informado é inválido.");
    }
    match body.get("email") {
        None | Some(Value::Null) => {}
        Some(Value::String(email)) if email.contains('@') => {}
        Some(_) => errors.add("invalid_email", "O email informado é inválido."),
    }
}

/// Writes the customer fields present in `body` into `customer`.
fn apply_customer(customer: &mut Value, body: &Map<String, Value>, creating: bool) {
    let mut ignored = Errors::default();
    for key in ["name", "cpfCnpj"] {
        if let Some(Value::String(value)) = body.get(key) {
            put(customer, key, json!(value));
        }
    }
    let cpf_cnpj = text(customer, "cpfCnpj").to_owned();
    put(customer, "personType", json!(person_type(&cpf_cnpj)));
    for key in CUSTOMER_TEXT_FIELDS {
        if creating || body.contains_key(key) {
            let value = optional_text(body, key, &mut ignored, "", "");
            put(customer, key, value);
        }
    }
    for key in ["notificationDisabled", "foreignCustomer"] {
        if creating || body.contains_key(key) {
            let value = body.get(key).and_then(Value::as_bool).unwrap_or(false);
            put(customer, key, json!(value));
        }
    }
}

// ---------------------------------------------------------------- customers

fn create_customer(state: &mut State, body: &[u8]) -> Res<ApiResponse> {
    let body = body_object(body)?;
    let mut errors = Errors::default();
    check_customer(&body, true, &mut errors);
    errors.check()?;
    let mut customer = fixtures::CUSTOMER_JSON.clone();
    let fields = [
        ("id", json!(state.new_customer_id())),
        ("dateCreated", json!(util::iso(util::today()))),
        ("deleted", json!(false)),
        ("canDelete", json!(true)),
        ("cannotBeDeletedReason", Value::Null),
        ("canEdit", json!(true)),
        ("cannotEditReason", Value::Null),
        ("city", Value::Null),
        ("cityName", Value::Null),
        ("state", Value::Null),
    ];
    for (key, value) in fields {
        put(&mut customer, key, value);
    }
    apply_customer(&mut customer, &body, true);
    state.customers.insert(customer.clone());
    Ok(ApiResponse::json(200, &customer))
}

fn list_customers(state: &State, query: &[(String, String)]) -> ApiResponse {
    let name = param(query, "name").map(str::to_lowercase);
    let items = state
        .customers
        .iter()
        .filter(|c| !flag(c, "deleted"))
        .filter(|c| {
            ["cpfCnpj", "externalReference", "email"]
                .iter()
                .all(|key| matches_param(c, query, key))
        })
        .filter(|c| {
            name.as_deref()
                .is_none_or(|n| text(c, "name").to_lowercase().contains(n))
        })
        .cloned()
        .collect();
    page(items, query)
}

fn update_customer(state: &mut State, id: &str, body: &[u8]) -> Res<ApiResponse> {
    let body = body_object(body)?;
    let mut errors = Errors::default();
    check_customer(&body, false, &mut errors);
    let customer = state
        .customers
        .get_mut(id)
        .filter(|c| !flag(c, "deleted"))
        .ok_or_else(not_found)?;
    errors.check()?;
    apply_customer(customer, &body, false);
    Ok(ApiResponse::json(200, customer))
}

fn delete_customer(state: &mut State, id: &str) -> Res<ApiResponse> {
    let customer = state
        .customers
        .get_mut(id)
        .filter(|c| !flag(c, "deleted"))
        .ok_or_else(not_found)?;
    put(customer, "deleted", json!(true));
    let mut answer = fixtures::CUSTOMER_DELETED_JSON.clone();
    put(&mut answer, "id", json!(id));
    Ok(ApiResponse::json(200, &answer))
}

fn restore_customer(state: &mut State, id: &str) -> Res<ApiResponse> {
    let customer = state
        .customers
        .get_mut(id)
        .filter(|c| flag(c, "deleted"))
        .ok_or_else(not_found)?;
    put(customer, "deleted", json!(false));
    Ok(ApiResponse::json(200, customer))
}

// ---------------------------------------------------------------- subscriptions

/// `{value, …}` of a discount, fine or interest: the request's object over the defaults.
fn charge_rule(body: &Map<String, Value>, key: &str, defaults: Value) -> Value {
    let mut rule = defaults;
    if let (Some(Value::Object(given)), Some(target)) = (body.get(key), rule.as_object_mut()) {
        for (k, v) in given {
            if target.contains_key(k) {
                target.insert(k.clone(), v.clone());
            }
        }
    }
    rule
}

fn positive_number(value: Option<&Value>) -> Option<f64> {
    value
        .and_then(Value::as_f64)
        .filter(|v| v.is_finite() && *v > 0.0)
}

fn create_subscription(state: &mut State, body: &[u8]) -> Res<ApiResponse> {
    let body = body_object(body)?;
    let mut errors = Errors::default();
    let customer = body
        .get("customer")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if state
        .customers
        .get(customer)
        .is_none_or(|c| flag(c, "deleted"))
    {
        errors.add("invalid_customer", "Cliente inválido ou não informado.");
    }
    let billing_type = body
        .get("billingType")
        .and_then(Value::as_str)
        .filter(|b| SUBSCRIPTION_BILLING_TYPES.contains(b));
    if billing_type.is_none() {
        errors.add("invalid_billingType", "Forma de pagamento inválida.");
    }
    let value = positive_number(body.get("value"));
    if value.is_none() {
        errors.add("invalid_value", "O campo value deve ser informado");
    }
    let next_due = body
        .get("nextDueDate")
        .and_then(Value::as_str)
        .and_then(util::parse_iso);
    if next_due.is_none() {
        errors.add(
            "invalid_nextDueDate",
            "A data do próximo vencimento deve ser informada.",
        );
    }
    let cycle = body
        .get("cycle")
        .and_then(Value::as_str)
        .filter(|c| CYCLES.contains(c));
    if cycle.is_none() {
        errors.add("invalid_cycle", "Periodicidade inválida.");
    }
    let description = optional_text(
        &body,
        "description",
        &mut errors,
        "invalid_description",
        "Descrição inválida.",
    );
    if description
        .as_str()
        .is_some_and(|d| d.chars().count() > 500)
    {
        errors.add(
            "invalid_description",
            "A descrição deve ter no máximo 500 caracteres.",
        );
    }
    let external_reference = optional_text(
        &body,
        "externalReference",
        &mut errors,
        "invalid_externalReference",
        "Referência externa inválida.",
    );
    let end_date = match body.get("endDate") {
        None | Some(Value::Null) => Value::Null,
        Some(v) => match v.as_str().and_then(util::parse_iso) {
            Some(date) => json!(util::iso(date)),
            None => {
                errors.add("invalid_endDate", "Data de término inválida.");
                Value::Null
            }
        },
    };
    errors.check()?;
    let (Some(billing_type), Some(value), Some(next_due), Some(cycle)) =
        (billing_type, value, next_due, cycle)
    else {
        return Err(invalid(&[("invalid_object", "Requisição inválida.")]));
    };

    let id = format!("sub_{}", util::lower_alnum(16));
    let mut subscription = fixtures::SUBSCRIPTION_JSON.clone();
    let fields = [
        ("id", json!(id)),
        ("dateCreated", json!(util::iso(util::today()))),
        ("customer", json!(customer)),
        ("paymentLink", Value::Null),
        ("billingType", json!(billing_type)),
        ("cycle", json!(cycle)),
        ("value", json!(value)),
        ("nextDueDate", json!(util::iso(next_due))),
        ("endDate", end_date),
        ("description", description),
        ("status", json!("ACTIVE")),
        (
            "discount",
            charge_rule(
                &body,
                "discount",
                json!({"value": 0, "limitDate": null, "dueDateLimitDays": 0, "type": "FIXED"}),
            ),
        ),
        (
            "fine",
            charge_rule(&body, "fine", json!({"value": 0, "type": "FIXED"})),
        ),
        (
            "interest",
            charge_rule(&body, "interest", json!({"value": 0, "type": "PERCENTAGE"})),
        ),
        ("deleted", json!(false)),
        (
            "maxPayments",
            body.get("maxPayments").cloned().unwrap_or(Value::Null),
        ),
        ("externalReference", external_reference),
        ("checkoutSession", Value::Null),
        ("split", Value::Null),
    ];
    for (key, value) in fields {
        put(&mut subscription, key, value);
    }
    state.subscriptions.insert(subscription.clone());
    state.emit_subscription("SUBSCRIPTION_CREATED", &subscription);
    let payment = state.create_payment(&subscription, next_due);
    state.emit_payment("PAYMENT_CREATED", text(&payment, "id"));
    // The first payment exists: the next one to generate is a cycle later.
    advance_next_due_date(state, &id, next_due);
    Ok(ApiResponse::json(200, &subscription))
}

/// Sets the subscription's `nextDueDate` to one cycle after `generated`.
fn advance_next_due_date(state: &mut State, id: &str, generated: Date) {
    if let Some(subscription) = state.subscriptions.get_mut(id)
        && let Some(next) = util::add_cycle(generated, text(subscription, "cycle"))
    {
        put(subscription, "nextDueDate", json!(util::iso(next)));
    }
}

fn list_subscriptions(state: &State, query: &[(String, String)]) -> ApiResponse {
    let include_deleted = param(query, "includeDeleted") == Some("true");
    let items = state
        .subscriptions
        .iter()
        .filter(|s| include_deleted || !flag(s, "deleted"))
        .filter(|s| {
            ["customer", "externalReference", "status", "billingType"]
                .iter()
                .all(|key| matches_param(s, query, key))
        })
        .cloned()
        .collect();
    page(items, query)
}

fn update_subscription(state: &mut State, id: &str, body: &[u8]) -> Res<ApiResponse> {
    let body = body_object(body)?;
    let current = state
        .subscriptions
        .get(id)
        .filter(|s| !flag(s, "deleted"))
        .cloned()
        .ok_or_else(not_found)?;
    let mut errors = Errors::default();
    let mut changes: Vec<(&str, Value)> = Vec::new();
    if body.contains_key("value") {
        match positive_number(body.get("value")) {
            Some(value) => changes.push(("value", json!(value))),
            None => errors.add("invalid_value", "O valor informado é inválido."),
        }
    }
    let next_due = body.get("nextDueDate").filter(|v| !v.is_null());
    if let Some(next_due) = next_due {
        match next_due.as_str().and_then(util::parse_iso) {
            Some(date) => changes.push(("nextDueDate", json!(util::iso(date)))),
            None => errors.add(
                "invalid_nextDueDate",
                "A data do próximo vencimento é inválida.",
            ),
        }
    }
    let mut new_status = None;
    if let Some(status) = body.get("status").filter(|v| !v.is_null()) {
        match status.as_str() {
            Some(s @ ("ACTIVE" | "INACTIVE")) => {
                if s == "ACTIVE" && text(&current, "status") != "ACTIVE" && next_due.is_none() {
                    errors.add(
                        "invalid_nextDueDate",
                        "Para reativar a assinatura informe o próximo vencimento.",
                    );
                }
                new_status = Some(s);
                changes.push(("status", json!(s)));
            }
            _ => errors.add("invalid_status", "Situação inválida."),
        }
    }
    if let Some(billing_type) = body.get("billingType").filter(|v| !v.is_null()) {
        match billing_type
            .as_str()
            .filter(|b| SUBSCRIPTION_BILLING_TYPES.contains(b))
        {
            Some(b) => changes.push(("billingType", json!(b))),
            None => errors.add("invalid_billingType", "Forma de pagamento inválida."),
        }
    }
    if let Some(cycle) = body.get("cycle").filter(|v| !v.is_null()) {
        match cycle.as_str().filter(|c| CYCLES.contains(c)) {
            Some(c) => changes.push(("cycle", json!(c))),
            None => errors.add("invalid_cycle", "Periodicidade inválida."),
        }
    }
    for (key, code, description) in [
        ("description", "invalid_description", "Descrição inválida."),
        (
            "externalReference",
            "invalid_externalReference",
            "Referência externa inválida.",
        ),
    ] {
        if body.contains_key(key) {
            let value = optional_text(&body, key, &mut errors, code, description);
            if key == "description" && value.as_str().is_some_and(|d| d.chars().count() > 500) {
                errors.add(
                    "invalid_description",
                    "A descrição deve ter no máximo 500 caracteres.",
                );
            }
            changes.push((key, value));
        }
    }
    if let Some(end_date) = body.get("endDate") {
        match end_date {
            Value::Null => changes.push(("endDate", Value::Null)),
            other => match other.as_str().and_then(util::parse_iso) {
                Some(date) => changes.push(("endDate", json!(util::iso(date)))),
                None => errors.add("invalid_endDate", "Data de término inválida."),
            },
        }
    }
    let update_pending = match body.get("updatePendingPayments") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.add(
                "invalid_updatePendingPayments",
                "O campo updatePendingPayments deve ser booleano.",
            );
            false
        }
    };
    errors.check()?;

    let Some(subscription) = state.subscriptions.get_mut(id) else {
        return Err(not_found());
    };
    for (key, value) in changes {
        put(subscription, key, value);
    }
    let updated = subscription.clone();
    state.emit_subscription("SUBSCRIPTION_UPDATED", &updated);
    if update_pending {
        let pending: Vec<String> = state
            .payments
            .iter_mut()
            .filter(|p| {
                text(p, "subscription") == id
                    && text(p, "status") == "PENDING"
                    && !flag(p, "deleted")
            })
            .map(|payment| {
                let value = number(&updated, "value");
                put(payment, "value", json!(value));
                put(payment, "netValue", json!(net_value(value)));
                put(payment, "billingType", updated["billingType"].clone());
                put(payment, "description", updated["description"].clone());
                text(payment, "id").to_owned()
            })
            .collect();
        for payment_id in pending {
            state.emit_payment("PAYMENT_UPDATED", &payment_id);
        }
    }
    if new_status == Some("INACTIVE") && text(&current, "status") != "INACTIVE" {
        state.emit_subscription("SUBSCRIPTION_INACTIVATED", &updated);
    }
    Ok(ApiResponse::json(200, &updated))
}

fn delete_subscription(state: &mut State, id: &str) -> Res<ApiResponse> {
    if state
        .subscriptions
        .get(id)
        .is_none_or(|s| flag(s, "deleted"))
    {
        return Err(not_found());
    }
    let removed: Vec<String> = state
        .payments
        .iter_mut()
        .filter(|p| {
            text(p, "subscription") == id
                && matches!(text(p, "status"), "PENDING" | "OVERDUE")
                && !flag(p, "deleted")
        })
        .map(|payment| {
            put(payment, "deleted", json!(true));
            text(payment, "id").to_owned()
        })
        .collect();
    for payment_id in removed {
        state.emit_payment("PAYMENT_DELETED", &payment_id);
    }
    let Some(subscription) = state.subscriptions.get_mut(id) else {
        return Err(not_found());
    };
    put(subscription, "deleted", json!(true));
    put(subscription, "status", json!("INACTIVE"));
    let deleted = subscription.clone();
    state.emit_subscription("SUBSCRIPTION_DELETED", &deleted);
    let mut answer = fixtures::SUBSCRIPTION_DELETED_JSON.clone();
    put(&mut answer, "id", json!(id));
    Ok(ApiResponse::json(200, &answer))
}

fn subscription_payments(state: &State, id: &str, query: &[(String, String)]) -> Res<ApiResponse> {
    if state.subscriptions.get(id).is_none() {
        return Err(not_found());
    }
    let items = state
        .payments
        .iter()
        .filter(|p| text(p, "subscription") == id && !flag(p, "deleted"))
        .filter(|p| matches_param(p, query, "status"))
        .cloned()
        .collect();
    Ok(page(items, query))
}

// ---------------------------------------------------------------- payments

fn list_payments(state: &State, query: &[(String, String)]) -> ApiResponse {
    let items = state
        .payments
        .iter()
        .filter(|p| !flag(p, "deleted"))
        .filter(|p| {
            [
                "subscription",
                "customer",
                "status",
                "billingType",
                "externalReference",
            ]
            .iter()
            .all(|key| matches_param(p, query, key))
        })
        .cloned()
        .collect();
    page(items, query)
}

// ---------------------------------------------------------------- test hooks

/// The event Asaas sends when a payment reaches `status`.
fn event_for_status(status: &str) -> Option<&'static str> {
    Some(match status {
        "PENDING" | "REFUND_REQUESTED" => "PAYMENT_UPDATED",
        "CONFIRMED" => "PAYMENT_CONFIRMED",
        "RECEIVED" | "RECEIVED_IN_CASH" => "PAYMENT_RECEIVED",
        "OVERDUE" => "PAYMENT_OVERDUE",
        "REFUNDED" => "PAYMENT_REFUNDED",
        "REFUND_IN_PROGRESS" => "PAYMENT_REFUND_IN_PROGRESS",
        "CHARGEBACK_REQUESTED" => "PAYMENT_CHARGEBACK_REQUESTED",
        "CHARGEBACK_DISPUTE" => "PAYMENT_CHARGEBACK_DISPUTE",
        "AWAITING_CHARGEBACK_REVERSAL" => "PAYMENT_AWAITING_CHARGEBACK_REVERSAL",
        "DUNNING_REQUESTED" => "PAYMENT_DUNNING_REQUESTED",
        "DUNNING_RECEIVED" => "PAYMENT_DUNNING_RECEIVED",
        "AWAITING_RISK_ANALYSIS" => "PAYMENT_AWAITING_RISK_ANALYSIS",
        "AUTHORIZED" => "PAYMENT_AUTHORIZED",
        _ => return None,
    })
}

/// Moves a payment to `status` (filling the dates and fields Asaas fills) and queues the
/// matching `PAYMENT_*` event; returns the queued envelope.
pub(crate) fn set_payment_status(
    state: &mut State,
    payment_id: &str,
    status: &str,
) -> Result<Value, SimError> {
    let event =
        event_for_status(status).ok_or_else(|| SimError::UnsupportedStatus(status.to_owned()))?;
    let payment = state
        .payments
        .get_mut(payment_id)
        .ok_or_else(|| SimError::UnknownPayment(payment_id.to_owned()))?;
    let today = util::today();
    let today_text = json!(util::iso(today));
    let card = text(payment, "billingType") == "CREDIT_CARD";
    let receipt = json!(format!(
        "https://sandbox.asaas.com/comprovantes/{}",
        util::number(1_000_000_000_000_000..9_999_999_999_999_999)
    ));
    put(payment, "status", json!(status));
    let fill_if_null = |payment: &mut Value, key: &str, value: &Value| {
        if payment.get(key).is_some_and(Value::is_null) {
            put(payment, key, value.clone());
        }
    };
    match status {
        "PENDING" => {
            for key in [
                "confirmedDate",
                "paymentDate",
                "clientPaymentDate",
                "creditDate",
                "estimatedCreditDate",
                "transactionReceiptUrl",
            ] {
                put(payment, key, Value::Null);
            }
        }
        "CONFIRMED" => {
            let credit = if card {
                today.checked_add(time::Duration::days(30)).unwrap_or(today)
            } else {
                today
            };
            put(payment, "confirmedDate", today_text.clone());
            put(payment, "clientPaymentDate", today_text.clone());
            put(payment, "creditDate", json!(util::iso(credit)));
            put(payment, "estimatedCreditDate", json!(util::iso(credit)));
            put(payment, "transactionReceiptUrl", receipt);
            if card && let Some(object) = payment.as_object_mut() {
                object.insert("creditCard".to_owned(), fixtures::CREDIT_CARD_JSON.clone());
            }
        }
        "RECEIVED" | "RECEIVED_IN_CASH" => {
            put(payment, "paymentDate", today_text.clone());
            fill_if_null(payment, "confirmedDate", &today_text);
            fill_if_null(payment, "clientPaymentDate", &today_text);
            fill_if_null(payment, "creditDate", &today_text);
            fill_if_null(payment, "estimatedCreditDate", &today_text);
            fill_if_null(payment, "transactionReceiptUrl", &receipt);
            if text(payment, "billingType") == "PIX" {
                fill_if_null(
                    payment,
                    "pixTransaction",
                    &json!(format!(
                        "{}-{}-4{}-a{}-{}",
                        util::hex(8),
                        util::hex(4),
                        util::hex(3),
                        util::hex(3),
                        util::hex(12)
                    )),
                );
            }
        }
        "REFUNDED" => {
            let mut refund = fixtures::REFUND_JSON.clone();
            put(&mut refund, "dateCreated", json!(util::timestamp_now()));
            put(&mut refund, "status", json!("DONE"));
            put(&mut refund, "value", payment["value"].clone());
            put(&mut refund, "description", json!("Estorno"));
            put(&mut refund, "transactionReceiptUrl", receipt);
            put(payment, "refunds", json!([refund]));
        }
        _ => {}
    }
    state.emit_payment(event, payment_id);
    Ok(state.outbox.last().cloned().unwrap_or(Value::Null))
}

/// Creates the payment of a new cycle of a subscription, due on `due` (and moves the
/// subscription's `nextDueDate` one cycle after it); queues `PAYMENT_CREATED`.
pub(crate) fn create_next_payment(
    state: &mut State,
    subscription_id: &str,
    due: Date,
) -> Result<Value, SimError> {
    let subscription = state
        .subscriptions
        .get(subscription_id)
        .filter(|s| !flag(s, "deleted"))
        .cloned()
        .ok_or_else(|| SimError::UnknownSubscription(subscription_id.to_owned()))?;
    let payment = state.create_payment(&subscription, due);
    state.emit_payment("PAYMENT_CREATED", text(&payment, "id"));
    advance_next_due_date(state, subscription_id, due);
    Ok(payment)
}
