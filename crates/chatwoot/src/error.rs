//! What can go wrong talking to Chatwoot. Messages never contain credentials.

use whatpro_iam::IdentityError;

/// A failed Chatwoot call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatwootError {
    /// The client could not be built (bad base URL, TLS set-up).
    #[error("Chatwoot client configuration: {0}")]
    Config(String),
    /// Chatwoot refused the credential or the caller's access (401), or the credential
    /// could not even be sent (empty, or not a valid header value).
    #[error("Chatwoot answered 401{}", detail(.message))]
    Unauthorized {
        /// Chatwoot's error message (`message`, `error` or `errors[0]`), if any.
        message: Option<String>,
    },
    /// Chatwoot could not be reached in time (connect error, timeout, broken connection).
    #[error("Chatwoot is unreachable: {0}")]
    Unavailable(String),
    /// Chatwoot answered with a status other than 2xx and 401.
    #[error("Chatwoot answered {status}{}", detail(.message))]
    Status {
        /// The HTTP status.
        status: u16,
        /// Chatwoot's error message (`message`, `error` or `errors[0]`), if any.
        message: Option<String>,
    },
    /// A 2xx answer whose body we cannot read.
    #[error("Chatwoot's answer is unreadable: {0}")]
    Decode(String),
}

fn detail(message: &Option<String>) -> String {
    message
        .as_deref()
        .map(|m| format!(" ({m})"))
        .unwrap_or_default()
}

impl ChatwootError {
    /// Whether the call was refused with 401.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, ChatwootError::Unauthorized { .. })
    }

    /// The HTTP status Chatwoot answered with, when the failure is an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ChatwootError::Unauthorized { .. } => Some(401),
            ChatwootError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<ChatwootError> for IdentityError {
    fn from(error: ChatwootError) -> Self {
        match error {
            ChatwootError::Unauthorized { .. } => IdentityError::InvalidCredentials,
            ChatwootError::Unavailable(reason) => IdentityError::Unavailable(reason),
            other @ (ChatwootError::Config(_)
            | ChatwootError::Status { .. }
            | ChatwootError::Decode(_)) => IdentityError::Upstream(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_to_identity_errors() {
        assert_eq!(
            IdentityError::from(ChatwootError::Unauthorized { message: None }),
            IdentityError::InvalidCredentials
        );
        assert_eq!(
            IdentityError::from(ChatwootError::Unavailable("timed out".into())),
            IdentityError::Unavailable("timed out".into())
        );
        assert_eq!(
            IdentityError::from(ChatwootError::Status {
                status: 503,
                message: Some("Service Unavailable".into())
            }),
            IdentityError::Upstream("Chatwoot answered 503 (Service Unavailable)".into())
        );
        assert!(matches!(
            IdentityError::from(ChatwootError::Decode("x".into())),
            IdentityError::Upstream(_)
        ));
    }

    #[test]
    fn status_and_unauthorized() {
        let e = ChatwootError::Status {
            status: 429,
            message: None,
        };
        assert_eq!(e.status(), Some(429));
        assert_eq!(e.to_string(), "Chatwoot answered 429");
        assert!(ChatwootError::Unauthorized { message: None }.is_unauthorized());
        assert_eq!(ChatwootError::Unavailable("x".into()).status(), None);
    }
}
