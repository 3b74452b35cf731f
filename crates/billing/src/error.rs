//! Errors of the billing domain.

use whatpro_entitlements::EntitlementError;
use whatpro_iam::StoreError;
use whatpro_kernel::{Classify, DetailValue, ErrorKind};

use crate::model::BillingStatus;

/// A failed gateway call. Messages never contain credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The gateway refused the request's values (e.g. a CPF it does not accept).
    #[error("the payment gateway refused the request: {0}")]
    Rejected(String),
    /// The gateway refused our API key.
    #[error("the payment gateway refused the Hub's credentials")]
    Unauthorized,
    /// The gateway answered badly (5xx, unreadable).
    #[error("the payment gateway failed: {0}")]
    Upstream(String),
    /// The gateway could not be reached in time.
    #[error("the payment gateway is unreachable: {0}")]
    Unavailable(String),
}

/// Why a billing action failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillingError {
    /// No gateway is configured (`ASAAS_API_KEY` unset).
    #[error("billing is not configured on this Hub (ASAAS_API_KEY is unset)")]
    NotConfigured,
    /// A value is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The plan is free: nothing to subscribe to.
    #[error("plan `{0}` is free and cannot be subscribed to")]
    PlanNotBillable(String),
    /// A subscription already exists (change plan instead).
    #[error("the account already has a subscription; use change-plan")]
    AlreadySubscribed,
    /// No live subscription to change or cancel.
    #[error("the account has no active subscription")]
    NotSubscribed,
    /// The account's usage is above the new plan's limits.
    #[error("current usage exceeds the limits of plan `{plan}`: {}", excess_text(.excess))]
    UsageExceedsPlan {
        /// The refused plan.
        plan: String,
        /// `(limit name, limit, used)`.
        excess: Vec<(&'static str, i64, i64)>,
    },
    /// The account's billing status forbids the action.
    #[error("{}", payment_required_message(*.0))]
    PaymentRequired(BillingStatus),
    /// The record changed under us; retry.
    #[error("billing state changed concurrently; retry")]
    Conflict,
    /// Entitlements failed (unknown plan...).
    #[error(transparent)]
    Entitlements(#[from] EntitlementError),
    /// The gateway failed; the account keeps its state.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// The store cannot be reached.
    #[error("billing unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error("billing failed: {0}")]
    Internal(String),
}

fn excess_text(excess: &[(&'static str, i64, i64)]) -> String {
    excess
        .iter()
        .map(|(name, limit, used)| format!("{name} {used} in use, limit {limit}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn payment_required_message(status: BillingStatus) -> &'static str {
    match status {
        BillingStatus::Canceled => {
            "the account's subscription was canceled: only billing is available"
        }
        _ => "the account's payment is overdue: changes are locked until it is paid",
    }
}

impl From<StoreError> for BillingError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(m) => BillingError::Unavailable(m),
            StoreError::Internal(m) => BillingError::Internal(m),
        }
    }
}

impl Classify for BillingError {
    fn kind(&self) -> ErrorKind {
        match self {
            BillingError::NotConfigured => ErrorKind::Unavailable,
            BillingError::Invalid(_) | BillingError::PlanNotBillable(_) => ErrorKind::Invalid,
            BillingError::AlreadySubscribed
            | BillingError::NotSubscribed
            | BillingError::UsageExceedsPlan { .. }
            | BillingError::Conflict => ErrorKind::Conflict,
            BillingError::PaymentRequired(_) => ErrorKind::PaymentRequired,
            BillingError::Entitlements(e) => e.kind(),
            BillingError::Gateway(GatewayError::Rejected(_)) => ErrorKind::Invalid,
            BillingError::Gateway(GatewayError::Unavailable(_)) | BillingError::Unavailable(_) => {
                ErrorKind::Unavailable
            }
            BillingError::Gateway(_) => ErrorKind::Upstream,
            BillingError::Internal(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            BillingError::NotConfigured => "billing_not_configured",
            BillingError::Invalid(_) => "validation_failed",
            BillingError::PlanNotBillable(_) => "plan_not_billable",
            BillingError::AlreadySubscribed => "already_subscribed",
            BillingError::NotSubscribed => "not_subscribed",
            BillingError::UsageExceedsPlan { .. } => "usage_exceeds_plan",
            BillingError::PaymentRequired(_) => "payment_required",
            BillingError::Conflict => "conflict",
            BillingError::Entitlements(e) => e.code(),
            BillingError::Gateway(GatewayError::Rejected(_)) => "billing_rejected",
            BillingError::Gateway(GatewayError::Unavailable(_)) => "billing_unavailable",
            BillingError::Gateway(_) => "billing_gateway_error",
            BillingError::Unavailable(_) => "unavailable",
            BillingError::Internal(_) => "internal_error",
        }
    }

    fn details(&self) -> Vec<(&'static str, DetailValue)> {
        match self {
            // The first resource over the limit (the message lists every one).
            BillingError::UsageExceedsPlan { excess, .. } => excess
                .first()
                .map(|(name, limit, used)| {
                    vec![
                        ("resource", DetailValue::Text((*name).to_owned())),
                        ("limit", DetailValue::Int(*limit)),
                        ("used", DetailValue::Int(*used)),
                    ]
                })
                .unwrap_or_default(),
            BillingError::PaymentRequired(status) => {
                vec![(
                    "billing_status",
                    DetailValue::Text(status.as_str().to_owned()),
                )]
            }
            BillingError::Entitlements(e) => e.details(),
            _ => Vec::new(),
        }
    }
}
