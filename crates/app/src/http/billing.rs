//! Billing of an account through Asaas (subscribe, change plan, cancel, state) and the Asaas
//! webhook receiver.

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use whatpro_asaas::{WEBHOOK_TOKEN_HEADER, token_matches};
use whatpro_billing::{
    BillingAccount, BillingError, BillingType, CpfCnpj, CustomerInfo, GatewayEvent, PaymentView,
};
use whatpro_entitlements::PlanId;
use whatpro_iam::PlatformScope;

use super::auth::{Authed, ClientInfo, policy};
use super::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// A payment of the subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentItem {
    /// Asaas id (`pay_...`).
    pub id: String,
    /// Asaas status (`PENDING`, `RECEIVED`, `CONFIRMED`, `OVERDUE`, ...).
    pub status: String,
    /// Amount in cents of BRL.
    pub value_cents: i64,
    /// `YYYY-MM-DD`.
    pub due_date: Option<String>,
    /// `YYYY-MM-DD`, when paid.
    pub paid_at: Option<String>,
    /// The invoice page for the payer.
    pub invoice_url: Option<String>,
}

impl From<PaymentView> for PaymentItem {
    fn from(p: PaymentView) -> Self {
        Self {
            id: p.id,
            status: p.status,
            value_cents: p.value_cents,
            due_date: p.due_date.map(|d| d.to_string()),
            paid_at: p.paid_at.map(|d| d.to_string()),
            invoice_url: p.invoice_url,
        }
    }
}

/// The account's billing state.
#[derive(Debug, Serialize, ToSchema)]
pub struct BillingView {
    /// `trialing`, `pending`, `active`, `past_due`, `restricted` or `canceled`.
    pub status: String,
    /// The subscribed plan (null while trialing).
    pub plan_id: Option<String>,
    /// A cheaper plan that takes effect at `next_due_date`.
    pub pending_plan_id: Option<String>,
    /// Due date of the next payment (`YYYY-MM-DD`): the end of the paid period.
    pub next_due_date: Option<String>,
    /// Cancellation asked for: the subscription ends at `next_due_date`.
    pub cancel_at_period_end: bool,
    /// RFC 3339: since when a payment is overdue.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub past_due_since: Option<time::OffsetDateTime>,
    /// Whether this Hub has a payment gateway configured.
    pub billing_configured: bool,
    /// Recent payments, newest due date first.
    pub payments: Vec<PaymentItem>,
}

fn view(state: &AppState, record: BillingAccount, payments: Vec<PaymentView>) -> BillingView {
    BillingView {
        status: record.status.as_str().to_owned(),
        plan_id: record.plan_id.map(|p| p.to_string()),
        pending_plan_id: record.pending_plan_id.map(|p| p.to_string()),
        next_due_date: record.next_due_date.map(|d| d.to_string()),
        cancel_at_period_end: record.cancel_at_period_end,
        past_due_since: record.past_due_since,
        billing_configured: state.billing.configured(),
        payments: payments.into_iter().map(PaymentItem::from).collect(),
    }
}

async fn current_view(
    state: &AppState,
    scope: &whatpro_iam::TenantScope,
) -> Result<BillingView, ApiError> {
    let (record, payments) = state.billing.overview(scope).await?;
    Ok(view(state, record, payments))
}

/// The account's billing status, plan, next due date and recent payments (admins).
#[utoipa::path(
    tag = "billing",
    params(("account_id" = i64, Path, description = "Chatwoot account id")),
    responses(
        (status = 200, body = BillingView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/accounts/{account_id}/billing")]
pub async fn get_billing(
    authed: Authed<policy::BillingRead>,
    state: web::Data<AppState>,
) -> Result<web::Json<BillingView>, ApiError> {
    Ok(web::Json(current_view(&state, &authed.scope).await?))
}

/// The payer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerBody {
    /// Person or company name, 1-200 characters.
    pub name: String,
    /// CPF (11 digits) or CNPJ (14 digits); punctuation allowed; check digits verified.
    pub cpf_cnpj: String,
    /// Where invoices go.
    pub email: String,
}

/// `POST .../billing/subscribe`. The account and the user come from the credential, never
/// from the body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeBody {
    /// A paid plan, e.g. `starter`.
    pub plan_id: String,
    /// `UNDEFINED` (the payer chooses), `BOLETO`, `CREDIT_CARD` or `PIX`.
    pub billing_type: String,
    /// The payer.
    pub customer: CustomerBody,
}

fn invalid(message: impl Into<String>) -> ApiError {
    BillingError::Invalid(message.into()).into()
}

fn plan_id(raw: &str) -> Result<PlanId, ApiError> {
    raw.parse()
        .map_err(|_| invalid(format!("plan_id `{raw}` is not a plan id")))
}

fn customer(body: &CustomerBody) -> Result<CustomerInfo, ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(invalid("customer.name must be 1-200 characters"));
    }
    let email = body.email.trim();
    let plausible = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(user, host)| !user.is_empty() && host.contains('.'))
        && !email.chars().any(char::is_whitespace);
    if !plausible {
        return Err(invalid("customer.email must be an email address"));
    }
    let cpf_cnpj = CpfCnpj::parse(&body.cpf_cnpj).map_err(|e| invalid(format!("customer.{e}")))?;
    Ok(CustomerInfo {
        name: name.to_owned(),
        cpf_cnpj,
        email: email.to_owned(),
    })
}

/// Subscribes the account to a paid plan (admins): creates or reuses the Asaas customer and
/// creates a monthly subscription whose first payment is due today. Repeating it for the
/// plan already subscribed answers 200 with the current state.
#[utoipa::path(
    tag = "billing",
    params(("account_id" = i64, Path, description = "Chatwoot account id")),
    request_body = SubscribeBody,
    responses(
        (status = 201, body = BillingView, description = "Subscribed (status `pending` until the first payment)"),
        (status = 200, body = BillingView, description = "Already subscribed to this plan"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`plan_not_found`"),
        (status = 409, body = ErrorBody, description = "`already_subscribed` (another plan: use change-plan), `usage_exceeds_plan`"),
        (status = 422, body = ErrorBody, description = "`validation_failed` (CPF/CNPJ, email, billing type), `plan_not_billable`, `billing_rejected`"),
        (status = 502, body = ErrorBody, description = "`billing_gateway_error`"),
        (status = 503, body = ErrorBody, description = "`billing_not_configured`, `billing_unavailable`"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/accounts/{account_id}/billing/subscribe")]
pub async fn subscribe(
    req: HttpRequest,
    authed: Authed<policy::BillingWrite>,
    state: web::Data<AppState>,
    body: web::Json<SubscribeBody>,
) -> Result<HttpResponse, ApiError> {
    let plan = plan_id(&body.plan_id)?;
    let billing_type: BillingType = body.billing_type.parse().map_err(invalid)?;
    let customer = customer(&body.customer)?;
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    let (_, created) = state
        .billing
        .subscribe(
            &authed.scope,
            &plan,
            billing_type,
            &customer,
            Some(client.audit.request_id),
        )
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(current_view(&state, &authed.scope).await?))
}

/// `POST .../billing/change-plan`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePlanBody {
    /// The new paid plan.
    pub plan_id: String,
}

/// Changes the plan (admins): the same or a higher price applies now; a cheaper plan applies
/// at the end of the paid period and is refused while current usage exceeds its limits.
#[utoipa::path(
    tag = "billing",
    params(("account_id" = i64, Path, description = "Chatwoot account id")),
    request_body = ChangePlanBody,
    responses(
        (status = 200, body = BillingView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`plan_not_found`"),
        (status = 409, body = ErrorBody, description = "`not_subscribed`, `usage_exceeds_plan` (details: resource, limit, used)"),
        (status = 422, body = ErrorBody, description = "`plan_not_billable`"),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/accounts/{account_id}/billing/change-plan")]
pub async fn change_plan(
    req: HttpRequest,
    authed: Authed<policy::BillingWrite>,
    state: web::Data<AppState>,
    body: web::Json<ChangePlanBody>,
) -> Result<web::Json<BillingView>, ApiError> {
    let plan = plan_id(&body.plan_id)?;
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    state
        .billing
        .change_plan(&authed.scope, &plan, Some(client.audit.request_id))
        .await?;
    Ok(web::Json(current_view(&state, &authed.scope).await?))
}

/// Cancels the subscription at the end of the paid period (admins); the status stays until
/// then. Repeating it changes nothing.
#[utoipa::path(
    tag = "billing",
    params(("account_id" = i64, Path, description = "Chatwoot account id")),
    responses(
        (status = 200, body = BillingView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`not_subscribed`"),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/accounts/{account_id}/billing/cancel")]
pub async fn cancel(
    req: HttpRequest,
    authed: Authed<policy::BillingWrite>,
    state: web::Data<AppState>,
) -> Result<web::Json<BillingView>, ApiError> {
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    state
        .billing
        .cancel(&authed.scope, Some(client.audit.request_id))
        .await?;
    Ok(web::Json(current_view(&state, &authed.scope).await?))
}

fn malformed(message: &str) -> ApiError {
    ApiError::bad_request("asaas_webhook_malformed", message.to_owned())
}

/// Reads only what storing and routing the event needs (ids), so that a payment object of
/// an unexpected shape is still stored and acknowledged rather than refused (Asaas would
/// retry a refused event and finally pause the queue). Processing re-reads the payment or
/// subscription from Asaas anyway.
fn gateway_event(body: &[u8]) -> Result<GatewayEvent, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| malformed("the body is not JSON"))?;
    let text = |v: &serde_json::Value| {
        v.as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= 200)
            .map(str::to_owned)
    };
    let id = text(&value["id"]).ok_or_else(|| malformed("the event has no `id`"))?;
    let event = text(&value["event"]).ok_or_else(|| malformed("the event has no `event`"))?;
    let payment_id = text(&value["payment"]["id"]);
    let subscription_id =
        text(&value["subscription"]["id"]).or_else(|| text(&value["payment"]["subscription"]));
    Ok(GatewayEvent {
        id,
        event,
        payment_id,
        subscription_id,
    })
}

/// Acknowledgement of a webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAck {
    /// Always true: the event is stored.
    pub received: bool,
    /// The event id was already stored (a redelivery); nothing happens twice.
    pub duplicate: bool,
}

/// Asaas webhooks: authenticated by the `asaas-access-token` header (constant-time compare
/// with `ASAAS_WEBHOOK_TOKEN`), de-duplicated by event id, answered 200 once durably stored
/// and processed afterwards (the payment or subscription is re-read from Asaas first).
#[utoipa::path(
    tag = "webhooks",
    request_body(content = serde_json::Value, description = "Asaas event envelope `{id, event, dateCreated, payment | subscription}`"),
    responses(
        (status = 200, body = WebhookAck, description = "Stored (unknown events and payments included)"),
        (status = 400, body = ErrorBody, description = "`asaas_webhook_malformed`"),
        (status = 401, body = ErrorBody, description = "`webhook_token_invalid`"),
        (status = 503, body = ErrorBody),
    ),
)]
#[post("/api/v1/webhooks/asaas")]
pub async fn asaas_webhook(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Bytes,
) -> Result<web::Json<WebhookAck>, ApiError> {
    let expected = state
        .config
        .asaas_webhook_token
        .as_ref()
        .map(|s| s.expose())
        .unwrap_or_default();
    let presented = req
        .headers()
        .get(WEBHOOK_TOKEN_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !token_matches(expected, presented) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "webhook_token_invalid",
            "the asaas-access-token header is missing or wrong",
        ));
    }
    let event = gateway_event(&body)?;
    let platform = PlatformScope::for_system_jobs();
    let new = state
        .billing
        .receive_event(&platform, &event, &body)
        .await?;
    if new {
        state.billing_events.notify_one();
    }
    Ok(web::Json(WebhookAck {
        received: true,
        duplicate: !new,
    }))
}
