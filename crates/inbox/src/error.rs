//! Failures of the inbox domain's use cases.

use whatpro_entitlements::EntitlementError;
use whatpro_iam::StoreError;
use whatpro_kernel::{Classify, DetailValue, ErrorKind};

/// Every failure of the inbox, provider and health services.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboxError {
    /// The caller's role (or credential scopes) does not allow this.
    #[error("your role does not allow this")]
    Forbidden,
    /// A value is not acceptable; `field` names it.
    #[error("{message}")]
    Invalid {
        /// The body field at fault.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The account has no Chatwoot connection.
    #[error(
        "the account has no Chatwoot connection: an admin must connect it first (PUT .../chatwoot/connection)"
    )]
    ChatwootNotConnected,
    /// The stored connection can no longer be read (the data keys changed).
    #[error(
        "the stored Chatwoot token cannot be decrypted with the current HUB_DATA_KEYS: connect again"
    )]
    ChatwootReconnectRequired,
    /// Another sync of the account is running.
    #[error("another inbox sync of this account is running; try again when it is done")]
    SyncInProgress,
    /// Chatwoot refused the token.
    #[error("Chatwoot refused the token{}", detail(.0))]
    ChatwootTokenInvalid(Option<String>),
    /// The token works, but its user is not an (active) administrator of the account.
    #[error("the token belongs to a Chatwoot user who is not an administrator of account {0}")]
    ChatwootNotAdmin(i64),
    /// Chatwoot failed, answered badly or too slowly.
    #[error("Chatwoot could not be used: {0}")]
    ChatwootUnavailable(String),
    /// No such provider in this account.
    #[error("no such provider in this account")]
    ProviderNotFound,
    /// No such instance of that provider in this account.
    #[error("no such instance in this account")]
    InstanceNotFound,
    /// `inbox_id` names no inbox of this account.
    #[error("inbox_id names no inbox of this account")]
    InboxNotFound,
    /// The inbox is already served by another instance.
    #[error("the inbox is already linked to another instance")]
    InboxAlreadyLinked,
    /// A provider webhook without the instance's token (or for no known instance).
    #[error("the webhook token is missing or wrong")]
    WebhookUnauthorized,
    /// A provider webhook whose body is not JSON.
    #[error("the webhook body is not JSON: {0}")]
    WebhookNotJson(String),
    /// A provider webhook the Hub cannot read.
    #[error("the webhook body is not a readable event: {0}")]
    WebhookMalformed(String),
    /// A quota or feature check failed.
    #[error(transparent)]
    Entitlement(EntitlementError),
    /// Storage (or another dependency of ours) is unavailable.
    #[error("the service is temporarily unavailable")]
    Unavailable(String),
    /// Unexpected failure (detail for the log only).
    #[error("internal error: {0}")]
    Internal(String),
}

fn detail(message: &Option<String>) -> String {
    message
        .as_deref()
        .map(|m| format!(" ({m})"))
        .unwrap_or_default()
}

impl InboxError {
    /// A validation failure of `field`.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        InboxError::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl Classify for InboxError {
    fn kind(&self) -> ErrorKind {
        match self {
            InboxError::Forbidden => ErrorKind::Forbidden,
            InboxError::Invalid { .. }
            | InboxError::ChatwootTokenInvalid(_)
            | InboxError::ChatwootNotAdmin(_)
            | InboxError::InboxNotFound => ErrorKind::Invalid,
            InboxError::ChatwootNotConnected
            | InboxError::ChatwootReconnectRequired
            | InboxError::SyncInProgress
            | InboxError::InboxAlreadyLinked => ErrorKind::Conflict,
            InboxError::ChatwootUnavailable(_) => ErrorKind::Upstream,
            InboxError::ProviderNotFound | InboxError::InstanceNotFound => ErrorKind::NotFound,
            InboxError::WebhookUnauthorized => ErrorKind::Unauthenticated,
            InboxError::WebhookNotJson(_) | InboxError::WebhookMalformed(_) => {
                ErrorKind::BadRequest
            }
            InboxError::Entitlement(e) => e.kind(),
            InboxError::Unavailable(_) => ErrorKind::Unavailable,
            InboxError::Internal(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            InboxError::Forbidden => "forbidden",
            InboxError::Invalid { .. } => "validation_failed",
            InboxError::ChatwootNotConnected => "chatwoot_not_connected",
            InboxError::ChatwootReconnectRequired => "chatwoot_reconnect_required",
            InboxError::SyncInProgress => "sync_in_progress",
            InboxError::ChatwootTokenInvalid(_) => "chatwoot_token_invalid",
            InboxError::ChatwootNotAdmin(_) => "chatwoot_not_admin",
            InboxError::ChatwootUnavailable(_) => "chatwoot_unavailable",
            InboxError::ProviderNotFound => "provider_not_found",
            InboxError::InstanceNotFound => "instance_not_found",
            InboxError::InboxNotFound => "inbox_not_found",
            InboxError::InboxAlreadyLinked => "inbox_already_linked",
            InboxError::WebhookUnauthorized => "invalid_webhook_token",
            InboxError::WebhookNotJson(_) => "invalid_json",
            InboxError::WebhookMalformed(_) => "invalid_event",
            InboxError::Entitlement(e) => e.code(),
            InboxError::Unavailable(_) => "unavailable",
            InboxError::Internal(_) => "internal_error",
        }
    }

    fn details(&self) -> Vec<(&'static str, DetailValue)> {
        match self {
            InboxError::Invalid { field, .. } => {
                vec![("field", DetailValue::Text((*field).to_owned()))]
            }
            InboxError::Entitlement(e) => e.details(),
            _ => Vec::new(),
        }
    }
}

impl From<StoreError> for InboxError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(d) => InboxError::Unavailable(d),
            StoreError::Internal(d) => InboxError::Internal(d),
        }
    }
}

impl From<EntitlementError> for InboxError {
    fn from(err: EntitlementError) -> Self {
        InboxError::Entitlement(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use whatpro_entitlements::Resource;

    #[test]
    fn quota_errors_keep_their_code_and_numbers() {
        let err = InboxError::from(EntitlementError::QuotaExceeded {
            resource: Resource::Providers,
            limit: 2,
            used: 2,
        });
        assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
        assert_eq!(err.code(), "quota_exceeded");
        assert_eq!(err.details().len(), 3);
    }

    #[test]
    fn codes_and_kinds() {
        let cases = [
            (
                InboxError::ChatwootNotConnected,
                ErrorKind::Conflict,
                "chatwoot_not_connected",
            ),
            (
                InboxError::SyncInProgress,
                ErrorKind::Conflict,
                "sync_in_progress",
            ),
            (
                InboxError::ChatwootUnavailable("x".into()),
                ErrorKind::Upstream,
                "chatwoot_unavailable",
            ),
            (
                InboxError::ChatwootNotAdmin(1),
                ErrorKind::Invalid,
                "chatwoot_not_admin",
            ),
            (
                InboxError::ProviderNotFound,
                ErrorKind::NotFound,
                "provider_not_found",
            ),
            (
                InboxError::WebhookUnauthorized,
                ErrorKind::Unauthenticated,
                "invalid_webhook_token",
            ),
            (
                InboxError::WebhookNotJson("x".into()),
                ErrorKind::BadRequest,
                "invalid_json",
            ),
        ];
        for (err, kind, code) in cases {
            assert_eq!(err.kind(), kind, "{err}");
            assert_eq!(err.code(), code, "{err}");
        }
        let invalid = InboxError::invalid("base_url", "nope");
        assert_eq!(invalid.code(), "validation_failed");
        assert_eq!(
            invalid.details(),
            vec![("field", DetailValue::Text("base_url".to_owned()))]
        );
    }
}
