//! What can go wrong talking to Asaas. Messages never contain the API key.

use serde::Deserialize;
use whatpro_kernel::{Classify, ErrorKind};

/// One entry of Asaas' error body `{"errors":[{"code","description"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AsaasErrorItem {
    /// Machine code such as `invalid_value` or `invalid_cpfCnpj` (an open set).
    #[serde(default)]
    pub code: String,
    /// Human text, usually in Portuguese.
    #[serde(default)]
    pub description: String,
}

/// A failed Asaas call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsaasError {
    /// The client could not be built or the call could not be prepared (bad base URL, empty
    /// key, a key that is not a valid header value, an argument that cannot be sent).
    #[error("Asaas client configuration: {0}")]
    Config(String),
    /// Asaas refused the request's content (400, 403 or 422 with its error list).
    #[error("Asaas rejected the request ({status}){}", codes(.errors))]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// Asaas' error list (never empty).
        errors: Vec<AsaasErrorItem>,
    },
    /// Asaas refused the API key (401).
    #[error("Asaas refused the API key (401)")]
    Unauthorized,
    /// The object or path does not exist (404).
    #[error("Asaas has no such object (404)")]
    NotFound,
    /// Too many requests (429).
    #[error("Asaas is rate limiting the Hub (429)")]
    RateLimited,
    /// Asaas answered badly: a 5xx, an unexpected status, or a 2xx whose body we cannot read.
    #[error("Asaas answered {status}: {message}")]
    Upstream {
        /// The HTTP status.
        status: u16,
        /// A short description (Asaas' first error description, or what was wrong).
        message: String,
    },
    /// Asaas could not be reached in time (connect error, timeout, broken connection).
    #[error("Asaas is unreachable: {0}")]
    Unavailable(String),
}

fn codes(errors: &[AsaasErrorItem]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let list: Vec<&str> = errors.iter().map(|e| e.code.as_str()).collect();
    format!(": {}", list.join(", "))
}

impl AsaasError {
    /// The HTTP status Asaas answered with, when the failure is an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            AsaasError::Rejected { status, .. } | AsaasError::Upstream { status, .. } => {
                Some(*status)
            }
            AsaasError::Unauthorized => Some(401),
            AsaasError::NotFound => Some(404),
            AsaasError::RateLimited => Some(429),
            AsaasError::Config(_) | AsaasError::Unavailable(_) => None,
        }
    }

    /// Whether Asaas' error list (for [`AsaasError::Rejected`]) contains `code`.
    pub fn has_code(&self, code: &str) -> bool {
        match self {
            AsaasError::Rejected { errors, .. } => errors.iter().any(|e| e.code == code),
            _ => false,
        }
    }
}

impl Classify for AsaasError {
    fn kind(&self) -> ErrorKind {
        match self {
            AsaasError::Config(_) => ErrorKind::Internal,
            AsaasError::Rejected { .. } => ErrorKind::Invalid,
            AsaasError::NotFound => ErrorKind::NotFound,
            AsaasError::Unauthorized | AsaasError::RateLimited | AsaasError::Upstream { .. } => {
                ErrorKind::Upstream
            }
            AsaasError::Unavailable(_) => ErrorKind::Unavailable,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            AsaasError::Config(_) => "asaas_config",
            AsaasError::Rejected { .. } => "asaas_rejected",
            AsaasError::Unauthorized => "asaas_unauthorized",
            AsaasError::NotFound => "asaas_not_found",
            AsaasError::RateLimited | AsaasError::Upstream { .. } => "asaas_error",
            AsaasError::Unavailable(_) => "asaas_unavailable",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(code: &str) -> AsaasErrorItem {
        AsaasErrorItem {
            code: code.to_owned(),
            description: "x".to_owned(),
        }
    }

    #[test]
    fn classification() {
        let cases = [
            (
                AsaasError::Config("x".into()),
                ErrorKind::Internal,
                "asaas_config",
            ),
            (
                AsaasError::Rejected {
                    status: 400,
                    errors: vec![item("invalid_value")],
                },
                ErrorKind::Invalid,
                "asaas_rejected",
            ),
            (
                AsaasError::Unauthorized,
                ErrorKind::Upstream,
                "asaas_unauthorized",
            ),
            (AsaasError::NotFound, ErrorKind::NotFound, "asaas_not_found"),
            (AsaasError::RateLimited, ErrorKind::Upstream, "asaas_error"),
            (
                AsaasError::Upstream {
                    status: 500,
                    message: "x".into(),
                },
                ErrorKind::Upstream,
                "asaas_error",
            ),
            (
                AsaasError::Unavailable("timed out".into()),
                ErrorKind::Unavailable,
                "asaas_unavailable",
            ),
        ];
        for (error, kind, code) in cases {
            assert_eq!(error.kind(), kind, "{error}");
            assert_eq!(error.code(), code, "{error}");
        }
    }

    #[test]
    fn messages_and_status() {
        let e = AsaasError::Rejected {
            status: 400,
            errors: vec![item("invalid_value"), item("invalid_dueDate")],
        };
        assert_eq!(
            e.to_string(),
            "Asaas rejected the request (400): invalid_value, invalid_dueDate"
        );
        assert!(e.has_code("invalid_dueDate"));
        assert!(!e.has_code("invalid_customer"));
        assert_eq!(e.status(), Some(400));
        assert_eq!(AsaasError::Unauthorized.status(), Some(401));
        assert_eq!(AsaasError::Unavailable("x".into()).status(), None);
    }
}
