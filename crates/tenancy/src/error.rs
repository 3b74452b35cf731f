//! Failures of tenancy use cases.

use whatpro_kernel::{Classify, ErrorKind};

/// Every failure of the tenancy service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenancyError {
    /// The caller's role does not allow this.
    #[error("your role does not allow this")]
    Forbidden,
    /// No such member in this account.
    #[error("no such member in this account")]
    MemberNotFound,
    /// The change would leave the account without an admin.
    #[error("the account must keep at least one admin")]
    LastAdmin,
    /// The requested role cannot be granted.
    #[error("{0}")]
    InvalidRole(String),
    /// A cursor or filter is not valid.
    #[error("{0}")]
    InvalidQuery(String),
    /// Storage is unavailable.
    #[error("the service is temporarily unavailable")]
    Unavailable(String),
    /// Unexpected failure (detail for the log only).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Classify for TenancyError {
    fn kind(&self) -> ErrorKind {
        match self {
            TenancyError::Forbidden => ErrorKind::Forbidden,
            TenancyError::MemberNotFound => ErrorKind::NotFound,
            TenancyError::LastAdmin => ErrorKind::Conflict,
            TenancyError::InvalidRole(_) | TenancyError::InvalidQuery(_) => ErrorKind::Invalid,
            TenancyError::Unavailable(_) => ErrorKind::Unavailable,
            TenancyError::Internal(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            TenancyError::Forbidden => "forbidden",
            TenancyError::MemberNotFound => "member_not_found",
            TenancyError::LastAdmin => "last_admin",
            TenancyError::InvalidRole(_) => "invalid_role",
            TenancyError::InvalidQuery(_) => "invalid_query",
            TenancyError::Unavailable(_) => "unavailable",
            TenancyError::Internal(_) => "internal_error",
        }
    }
}

impl From<whatpro_iam::StoreError> for TenancyError {
    fn from(err: whatpro_iam::StoreError) -> Self {
        match err {
            whatpro_iam::StoreError::Unavailable(d) => TenancyError::Unavailable(d),
            whatpro_iam::StoreError::Internal(d) => TenancyError::Internal(d),
        }
    }
}
