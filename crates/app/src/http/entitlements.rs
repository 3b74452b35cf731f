//! Plans, an account's entitlements and feature flags, usage reports, and their
//! super_admin administration.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, patch, put, web};
use serde::{Deserialize, Serialize};
use time::Date;
use time::macros::format_description;
use utoipa::{IntoParams, ToSchema};
use whatpro_entitlements::{
    ActiveUsers, EffectiveEntitlements, EntitlementError, Feature, Overrides, Plan, PlanId,
    Resource, UsageDay, UsageTotals,
};
use whatpro_iam::Action;
use whatpro_kernel::AccountId;

use super::auth::{Authed, Caller, policy};
use super::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// A plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView {
    /// Id, e.g. `starter`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Monthly price in cents of BRL.
    pub price_cents: i64,
    /// `max_*` -> number, or null for unlimited.
    pub limits: BTreeMap<String, Option<i64>>,
    /// Feature name -> on/off.
    pub features: BTreeMap<String, bool>,
}

fn limits_view(limits: &BTreeMap<Resource, Option<i64>>) -> BTreeMap<String, Option<i64>> {
    Resource::ALL
        .into_iter()
        .map(|r| (r.limit_key().to_owned(), limits.get(&r).copied().flatten()))
        .collect()
}

fn features_view(features: &BTreeMap<Feature, bool>) -> BTreeMap<String, bool> {
    Feature::ALL
        .into_iter()
        .map(|f| {
            (
                f.as_str().to_owned(),
                features.get(&f).copied().unwrap_or(false),
            )
        })
        .collect()
}

impl From<Plan> for PlanView {
    fn from(plan: Plan) -> Self {
        Self {
            limits: limits_view(&plan.limits),
            features: features_view(&plan.features),
            id: plan.id.to_string(),
            name: plan.name,
            price_cents: plan.price_cents,
        }
    }
}

/// `{"data": [...]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DataList<T> {
    /// Items.
    pub data: Vec<T>,
}

/// What an account may do and how much it uses.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntitlementsView {
    /// The plan.
    pub plan_id: String,
    /// `max_*` -> number, or null for unlimited (plan merged with overrides).
    pub limits: BTreeMap<String, Option<i64>>,
    /// Resource -> in use (`messages_this_month` counts the current UTC month).
    pub usage: BTreeMap<String, i64>,
    /// Feature name -> on/off.
    pub features: BTreeMap<String, bool>,
}

fn entitlements_view(
    effective: &EffectiveEntitlements,
    usage: &BTreeMap<Resource, i64>,
) -> EntitlementsView {
    EntitlementsView {
        plan_id: effective.plan_id.to_string(),
        limits: limits_view(&effective.limits),
        usage: Resource::ALL
            .into_iter()
            .map(|r| {
                (
                    r.usage_key().to_owned(),
                    usage.get(&r).copied().unwrap_or(0),
                )
            })
            .collect(),
        features: features_view(&effective.features),
    }
}

/// An account's feature flags.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeaturesView {
    /// The plan.
    pub plan_id: String,
    /// Feature name -> on/off.
    pub features: BTreeMap<String, bool>,
}

/// The public list of plans.
#[utoipa::path(
    tag = "plans",
    responses((status = 200, body = DataList<PlanView>), (status = 503, body = ErrorBody)),
)]
#[get("/api/v1/plans")]
pub async fn list_plans(
    state: web::Data<AppState>,
) -> Result<web::Json<DataList<PlanView>>, ApiError> {
    let plans = state.entitlements.plans().await?;
    Ok(web::Json(DataList {
        data: plans.into_iter().map(PlanView::from).collect(),
    }))
}

/// `PUT /api/v1/admin/plans/{plan_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    /// Display name, 1-100 characters.
    pub name: String,
    /// Monthly price in cents of BRL (0 for a free plan).
    pub price_cents: i64,
    /// `max_*` -> number, or null for unlimited; names left out are unlimited.
    #[serde(default)]
    pub limits: BTreeMap<String, Option<i64>>,
    /// Feature name -> on/off; names left out are off.
    #[serde(default)]
    pub features: BTreeMap<String, bool>,
}

fn parse_limits(
    raw: &BTreeMap<String, Option<i64>>,
) -> Result<BTreeMap<Resource, Option<i64>>, ApiError> {
    raw.iter()
        .map(|(name, value)| {
            let resource = Resource::from_limit_key(name).ok_or_else(|| {
                ApiError::from(EntitlementError::Invalid(format!(
                    "limits.{name} is not a limit (expected one of {})",
                    Resource::ALL.map(Resource::limit_key).join(", ")
                )))
            })?;
            // Negative values are refused by the service (`Plan::validate`, `set_account`).
            Ok((resource, *value))
        })
        .collect()
}

fn parse_features(raw: &BTreeMap<String, bool>) -> Result<BTreeMap<Feature, bool>, ApiError> {
    raw.iter()
        .map(|(name, on)| {
            let feature = Feature::from_name(name).ok_or_else(|| {
                ApiError::from(EntitlementError::Invalid(format!(
                    "features.{name} is not a feature (expected one of {})",
                    Feature::ALL.map(Feature::as_str).join(", ")
                )))
            })?;
            Ok((feature, *on))
        })
        .collect()
}

fn parse_plan_id(raw: &str) -> Result<PlanId, ApiError> {
    raw.parse().map_err(|e: whatpro_entitlements::PlanIdError| {
        ApiError::from(EntitlementError::Invalid(format!("plan_id: {e}")))
    })
}

/// Creates (201) or replaces (200) a plan (super_admin).
#[utoipa::path(
    tag = "admin",
    params(("plan_id" = String, Path, description = "1-40 characters of a-z, 0-9, `_`, `-`")),
    request_body = PlanBody,
    responses(
        (status = 200, body = PlanView, description = "Replaced"),
        (status = 201, body = PlanView, description = "Created"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`validation_failed`"),
    ),
    security(("bearer" = []))
)]
#[put("/api/v1/admin/plans/{plan_id}")]
pub async fn save_plan(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<PlanBody>,
) -> Result<HttpResponse, ApiError> {
    let scope = state.iam.platform_scope(&caller.0, Action::PlatformWrite)?;
    let body = body.into_inner();
    let plan = Plan {
        id: parse_plan_id(&path)?,
        name: body.name.trim().to_owned(),
        price_cents: body.price_cents,
        limits: parse_limits(&body.limits)?,
        features: parse_features(&body.features)?,
    };
    let created = state.entitlements.save_plan(&scope, &plan).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(PlanView::from(plan)))
}

/// `PUT /api/v1/admin/accounts/{account_id}/entitlements`: each field present replaces that
/// part; absent fields keep what is stored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverridesBody {
    /// The account's plan.
    pub plan_id: Option<String>,
    /// Limit overrides (`max_*` -> number, or null for unlimited); `{}` clears them.
    pub limits: Option<BTreeMap<String, Option<i64>>>,
    /// Feature overrides; `{}` clears them.
    pub features: Option<BTreeMap<String, bool>>,
}

/// Sets an account's plan and overrides (super_admin).
#[utoipa::path(
    tag = "admin",
    params(("account_id" = i64, Path, description = "Chatwoot account id")),
    request_body = OverridesBody,
    responses(
        (status = 200, body = EntitlementsView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`account_not_found`, `plan_not_found`"),
        (status = 422, body = ErrorBody, description = "`validation_failed`"),
    ),
    security(("bearer" = []))
)]
#[put("/api/v1/admin/accounts/{account_id}/entitlements")]
pub async fn set_account_entitlements(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<OverridesBody>,
) -> Result<web::Json<EntitlementsView>, ApiError> {
    let platform = state.iam.platform_scope(&caller.0, Action::PlatformWrite)?;
    let scope = platform.tenant(AccountId::new(path.into_inner()));
    let body = body.into_inner();
    let plan = body.plan_id.as_deref().map(parse_plan_id).transpose()?;
    let overrides = if body.limits.is_none() && body.features.is_none() {
        None
    } else {
        // A part left out keeps what is stored.
        let stored = state.entitlements.stored_overrides(&scope).await?;
        Some(Overrides {
            limits: match &body.limits {
                Some(raw) => parse_limits(raw)?,
                None => stored.limits,
            },
            features: match &body.features {
                Some(raw) => parse_features(raw)?,
                None => stored.features,
            },
        })
    };
    let effective = state
        .entitlements
        .set_account(&scope, plan, overrides)
        .await?;
    let (_, usage) = state.entitlements.overview(&scope).await?;
    Ok(web::Json(entitlements_view(&effective, &usage)))
}

/// The account's plan, limits, usage and features.
#[utoipa::path(
    tag = "entitlements",
    params(("account_id" = i64, Path, description = "Chatwoot account id")),
    responses(
        (status = 200, body = EntitlementsView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/accounts/{account_id}/entitlements")]
pub async fn get_entitlements(
    authed: Authed<policy::FeaturesRead>,
    state: web::Data<AppState>,
) -> Result<web::Json<EntitlementsView>, ApiError> {
    let (effective, usage) = state.entitlements.overview(&authed.scope).await?;
    Ok(web::Json(entitlements_view(&effective, &usage)))
}

/// The account's feature flags.
#[utoipa::path(
    tag = "entitlements",
    params(("account_id" = i64, Path, description = "Chatwoot account id")),
    responses(
        (status = 200, body = FeaturesView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/accounts/{account_id}/features")]
pub async fn get_features(
    authed: Authed<policy::FeaturesRead>,
    state: web::Data<AppState>,
) -> Result<web::Json<FeaturesView>, ApiError> {
    let effective = state.entitlements.effective(&authed.scope).await?;
    Ok(web::Json(FeaturesView {
        plan_id: effective.plan_id.to_string(),
        features: features_view(&effective.features),
    }))
}

/// `?from=&to=` (dates, `YYYY-MM-DD`).
#[derive(Debug, Deserialize, IntoParams)]
pub struct RangeParams {
    /// First day (default: 29 days before `to`).
    pub from: Option<String>,
    /// Last day, included (default: today, UTC).
    pub to: Option<String>,
}

fn parse_date(field: &str, raw: &str) -> Result<Date, ApiError> {
    Date::parse(raw, format_description!("[year]-[month]-[day]")).map_err(|_| {
        EntitlementError::Invalid(format!("{field} must be a date such as 2026-11-30")).into()
    })
}

fn range(state: &AppState, params: &RangeParams) -> Result<(Date, Date), ApiError> {
    let to = match &params.to {
        Some(raw) => parse_date("to", raw)?,
        None => state.metering.today(),
    };
    let from = match &params.from {
        Some(raw) => parse_date("from", raw)?,
        None => to.saturating_sub(time::Duration::days(29)),
    };
    Ok((from, to))
}

/// One day of usage.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageDayView {
    /// `YYYY-MM-DD`, the account's local date.
    pub date: String,
    /// Messages sent.
    pub messages_sent: i64,
    /// Conversations touched.
    pub conversations_touched: i64,
    /// Webhooks processed.
    pub webhooks_processed: i64,
    /// Authenticated API calls.
    pub api_calls: i64,
    /// Distinct active users.
    pub active_users: i64,
}

impl From<UsageDay> for UsageDayView {
    fn from(day: UsageDay) -> Self {
        Self {
            date: day.date.to_string(),
            messages_sent: day.messages_sent,
            conversations_touched: day.conversations_touched,
            webhooks_processed: day.webhooks_processed,
            api_calls: day.api_calls,
            active_users: day.active_users,
        }
    }
}

/// Daily usage of the account (`from..=to`, at most 366 days; every day listed).
#[utoipa::path(
    tag = "usage",
    params(("account_id" = i64, Path, description = "Chatwoot account id"), RangeParams),
    responses(
        (status = 200, body = DataList<UsageDayView>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`validation_failed` (dates, range)"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/accounts/{account_id}/usage")]
pub async fn get_usage(
    authed: Authed<policy::UsageRead>,
    state: web::Data<AppState>,
    params: web::Query<RangeParams>,
) -> Result<web::Json<DataList<UsageDayView>>, ApiError> {
    let (from, to) = range(&state, &params)?;
    let days = state.metering.daily(&authed.scope, from, to).await?;
    Ok(web::Json(DataList {
        data: days.into_iter().map(UsageDayView::from).collect(),
    }))
}

/// Active users.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveUsersView {
    /// Distinct users today (the account's local date).
    pub dau: i64,
    /// Distinct users in the last 7 local days, today included.
    pub wau: i64,
    /// Distinct users in the last 30 local days, today included.
    pub mau: i64,
    /// Today's local date, `YYYY-MM-DD`.
    pub as_of: String,
    /// The account's IANA time zone.
    pub time_zone: String,
}

impl From<ActiveUsers> for ActiveUsersView {
    fn from(a: ActiveUsers) -> Self {
        Self {
            dau: a.dau,
            wau: a.wau,
            mau: a.mau,
            as_of: a.as_of.to_string(),
            time_zone: a.time_zone,
        }
    }
}

/// DAU, WAU and MAU of the account (counted up to the last flush of the usage counters).
#[utoipa::path(
    tag = "usage",
    params(("account_id" = i64, Path, description = "Chatwoot account id")),
    responses(
        (status = 200, body = ActiveUsersView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/accounts/{account_id}/usage/active-users")]
pub async fn get_active_users(
    authed: Authed<policy::UsageRead>,
    state: web::Data<AppState>,
) -> Result<web::Json<ActiveUsersView>, ApiError> {
    let active = state.metering.active_users(&authed.scope).await?;
    Ok(web::Json(active.into()))
}

/// Usage totals across accounts.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageTotalsView {
    /// First day.
    pub from: String,
    /// Last day.
    pub to: String,
    /// Accounts with usage in the range.
    pub accounts: i64,
    /// Messages sent.
    pub messages_sent: i64,
    /// Conversations touched.
    pub conversations_touched: i64,
    /// Webhooks processed.
    pub webhooks_processed: i64,
    /// API calls.
    pub api_calls: i64,
    /// Distinct (account, user) pairs active in the range.
    pub active_users: i64,
}

fn totals_view(from: Date, to: Date, t: UsageTotals) -> UsageTotalsView {
    UsageTotalsView {
        from: from.to_string(),
        to: to.to_string(),
        accounts: t.accounts,
        messages_sent: t.messages_sent,
        conversations_touched: t.conversations_touched,
        webhooks_processed: t.webhooks_processed,
        api_calls: t.api_calls,
        active_users: t.active_users,
    }
}

/// Usage totals of every account (super_admin).
#[utoipa::path(
    tag = "admin",
    params(RangeParams),
    responses(
        (status = 200, body = UsageTotalsView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/admin/usage")]
pub async fn admin_usage(
    caller: Caller,
    state: web::Data<AppState>,
    params: web::Query<RangeParams>,
) -> Result<web::Json<UsageTotalsView>, ApiError> {
    let scope = state.iam.platform_scope(&caller.0, Action::PlatformRead)?;
    let (from, to) = range(&state, &params)?;
    let totals = state.metering.totals(&scope, from, to).await?;
    Ok(web::Json(totals_view(from, to, totals)))
}

/// `PATCH .../settings`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    /// IANA time zone in which usage days are counted (default `UTC`).
    pub time_zone: String,
}

/// The account's settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsView {
    /// IANA time zone in which usage days are counted.
    pub time_zone: String,
}

/// Changes account settings (admins): the time zone of usage days (days already counted keep
/// their dates).
#[utoipa::path(
    tag = "usage",
    params(("account_id" = i64, Path, description = "Chatwoot account id")),
    request_body = SettingsBody,
    responses(
        (status = 200, body = SettingsView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`validation_failed` (unknown time zone)"),
    ),
    security(("bearer" = []))
)]
#[patch("/api/v1/accounts/{account_id}/settings")]
pub async fn update_settings(
    authed: Authed<policy::SettingsWrite>,
    state: web::Data<AppState>,
    body: web::Json<SettingsBody>,
) -> Result<web::Json<SettingsView>, ApiError> {
    let time_zone = body.into_inner().time_zone.trim().to_owned();
    state
        .metering
        .set_time_zone(&authed.scope, &time_zone)
        .await?;
    Ok(web::Json(SettingsView { time_zone }))
}
