//! Errors of the entitlements domain.

use whatpro_iam::StoreError;
use whatpro_kernel::{Classify, DetailValue, ErrorKind};

use crate::model::{Feature, Resource};

/// Why an entitlement check or a plan change failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntitlementError {
    /// The plan's limit for `resource` is reached.
    #[error("the plan allows {limit} {}; {used} in use", .resource.noun())]
    QuotaExceeded {
        /// The limited resource.
        resource: Resource,
        /// The limit.
        limit: i64,
        /// How many are in use.
        used: i64,
    },
    /// The plan does not include `feature`.
    #[error("the plan does not include {}", .0.as_str())]
    FeatureDisabled(Feature),
    /// No plan with that id.
    #[error("no plan `{0}`")]
    PlanNotFound(String),
    /// No such account.
    #[error("no account {0}")]
    AccountNotFound(i64),
    /// A value is not acceptable (the message says which).
    #[error("{0}")]
    Invalid(String),
    /// The store cannot be reached; checks fail closed.
    #[error("entitlements unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error("entitlements failed: {0}")]
    Internal(String),
}

impl From<StoreError> for EntitlementError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(m) => EntitlementError::Unavailable(m),
            StoreError::Internal(m) => EntitlementError::Internal(m),
        }
    }
}

impl Classify for EntitlementError {
    fn kind(&self) -> ErrorKind {
        match self {
            EntitlementError::QuotaExceeded { .. } => ErrorKind::QuotaExceeded,
            EntitlementError::FeatureDisabled(_) => ErrorKind::Forbidden,
            EntitlementError::PlanNotFound(_) | EntitlementError::AccountNotFound(_) => {
                ErrorKind::NotFound
            }
            EntitlementError::Invalid(_) => ErrorKind::Invalid,
            EntitlementError::Unavailable(_) => ErrorKind::Unavailable,
            EntitlementError::Internal(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            EntitlementError::QuotaExceeded { .. } => "quota_exceeded",
            EntitlementError::FeatureDisabled(_) => "feature_disabled",
            EntitlementError::PlanNotFound(_) => "plan_not_found",
            EntitlementError::AccountNotFound(_) => "account_not_found",
            EntitlementError::Invalid(_) => "validation_failed",
            EntitlementError::Unavailable(_) => "unavailable",
            EntitlementError::Internal(_) => "internal_error",
        }
    }

    fn details(&self) -> Vec<(&'static str, DetailValue)> {
        match self {
            EntitlementError::QuotaExceeded {
                resource,
                limit,
                used,
            } => vec![
                (
                    "resource",
                    DetailValue::Text(resource.limit_key().to_owned()),
                ),
                ("limit", DetailValue::Int(*limit)),
                ("used", DetailValue::Int(*used)),
            ],
            EntitlementError::FeatureDisabled(feature) => {
                vec![("feature", DetailValue::Text(feature.as_str().to_owned()))]
            }
            _ => Vec::new(),
        }
    }
}
