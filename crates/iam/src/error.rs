//! Outcomes of identity and access that are not success, classified once.

use whatpro_kernel::{Classify, ErrorKind};

use crate::ports::{IdentityError, StoreError, TokenError};

/// Every failure of the IAM service. Messages are safe to show to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IamError {
    /// No credential was presented.
    #[error("authentication is required")]
    Unauthenticated,
    /// The access token is malformed, tampered, for another audience or type, or made with an
    /// unknown key.
    #[error("the access token is not valid")]
    TokenInvalid,
    /// The access token expired.
    #[error("the access token has expired")]
    TokenExpired,
    /// The session was revoked (logout, revoke, refresh reuse).
    #[error("the session has ended")]
    SessionRevoked,
    /// The session reached its idle or absolute expiry.
    #[error("the session has expired")]
    SessionExpired,
    /// Chatwoot rejected the presented credential.
    #[error("Chatwoot did not accept these credentials")]
    ChatwootCredentialsInvalid,
    /// Chatwoot could not be reached in time.
    #[error("Chatwoot is not reachable right now; try again shortly")]
    ChatwootUnavailable,
    /// Chatwoot answered with an error.
    #[error("Chatwoot answered with an error")]
    ChatwootUpstream,
    /// The user is not a member of the account (or the account is suspended).
    #[error("you are not a member of this account")]
    NotAMember,
    /// The role may not do this.
    #[error("your role does not allow this")]
    Forbidden,
    /// The refresh token is unknown or malformed.
    #[error("the refresh token is not valid")]
    RefreshInvalid,
    /// The refresh token expired.
    #[error("the refresh token has expired")]
    RefreshExpired,
    /// A rotated refresh token was presented again: the session is now revoked.
    #[error("the refresh token was already used; the session has been revoked")]
    RefreshReused,
    /// No such session among the caller's.
    #[error("no such session")]
    SessionNotFound,
    /// The role allows this, but the credential's scopes do not.
    #[error("the credential's scopes do not allow this")]
    InsufficientScope,
    /// A credential that does not work on this route (API keys and instance tokens work only on
    /// `/api/v1/accounts/{account_id}/...` routes; some routes take only one kind).
    #[error("this route does not accept this kind of credential")]
    UnsupportedCredential,
    /// The API key is malformed, unknown, or its secret does not match (a rotated-away secret
    /// included).
    #[error("the API key is not valid")]
    ApiKeyInvalid,
    /// The API key was revoked.
    #[error("the API key has been revoked")]
    ApiKeyRevoked,
    /// The API key expired.
    #[error("the API key has expired")]
    ApiKeyExpired,
    /// No such API key in this account.
    #[error("no such API key in this account")]
    ApiKeyNotFound,
    /// The API key is revoked, so it cannot be rotated.
    #[error("the API key is revoked and cannot be rotated")]
    ApiKeyAlreadyRevoked,
    /// The instance token does not open for the request's origin (another or no `Origin`).
    #[error("the token is not valid for this origin")]
    TokenOriginMismatch,
    /// The credential belongs to another account than the route's.
    #[error("the credential is not valid for this account")]
    TokenAccountMismatch,
    /// The instance token was revoked.
    #[error("the token has been revoked")]
    TokenRevoked,
    /// No such instance token (or not one the caller may revoke).
    #[error("no such instance token")]
    InstanceTokenNotFound,
    /// A scope name that is not one of ours.
    #[error("{0}")]
    UnknownScope(String),
    /// A value that is not acceptable (the message says which and why).
    #[error("{0}")]
    Invalid(String),
    /// Storage is unavailable.
    #[error("the service is temporarily unavailable")]
    Unavailable(String),
    /// A bug or unexpected failure (the detail is for the log only).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Classify for IamError {
    fn kind(&self) -> ErrorKind {
        match self {
            IamError::Unauthenticated
            | IamError::TokenInvalid
            | IamError::TokenExpired
            | IamError::SessionRevoked
            | IamError::SessionExpired
            | IamError::ChatwootCredentialsInvalid
            | IamError::RefreshInvalid
            | IamError::RefreshExpired
            | IamError::RefreshReused
            | IamError::UnsupportedCredential
            | IamError::ApiKeyInvalid
            | IamError::ApiKeyRevoked
            | IamError::ApiKeyExpired
            | IamError::TokenOriginMismatch
            | IamError::TokenRevoked => ErrorKind::Unauthenticated,
            IamError::NotAMember
            | IamError::Forbidden
            | IamError::InsufficientScope
            | IamError::TokenAccountMismatch => ErrorKind::Forbidden,
            IamError::SessionNotFound
            | IamError::ApiKeyNotFound
            | IamError::InstanceTokenNotFound => ErrorKind::NotFound,
            IamError::ApiKeyAlreadyRevoked => ErrorKind::Conflict,
            IamError::UnknownScope(_) | IamError::Invalid(_) => ErrorKind::Invalid,
            IamError::ChatwootUnavailable | IamError::Unavailable(_) => ErrorKind::Unavailable,
            IamError::ChatwootUpstream => ErrorKind::Upstream,
            IamError::Internal(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            IamError::Unauthenticated => "unauthenticated",
            IamError::TokenInvalid => "token_invalid",
            IamError::TokenExpired => "token_expired",
            IamError::SessionRevoked => "session_revoked",
            IamError::SessionExpired => "session_expired",
            IamError::ChatwootCredentialsInvalid => "chatwoot_credentials_invalid",
            IamError::ChatwootUnavailable => "chatwoot_unavailable",
            IamError::ChatwootUpstream => "chatwoot_bad_gateway",
            IamError::NotAMember => "not_a_member",
            IamError::Forbidden => "forbidden",
            IamError::RefreshInvalid => "refresh_token_invalid",
            IamError::RefreshExpired => "refresh_token_expired",
            IamError::RefreshReused => "refresh_token_reused",
            IamError::SessionNotFound => "session_not_found",
            IamError::InsufficientScope => "insufficient_scope",
            IamError::UnsupportedCredential => "unsupported_credential",
            IamError::ApiKeyInvalid => "api_key_invalid",
            IamError::ApiKeyRevoked | IamError::ApiKeyAlreadyRevoked => "api_key_revoked",
            IamError::ApiKeyExpired => "api_key_expired",
            IamError::ApiKeyNotFound => "api_key_not_found",
            IamError::TokenOriginMismatch => "token_origin_mismatch",
            IamError::TokenAccountMismatch => "token_account_mismatch",
            IamError::TokenRevoked => "token_revoked",
            IamError::InstanceTokenNotFound => "instance_token_not_found",
            IamError::UnknownScope(_) => "unknown_scope",
            IamError::Invalid(_) => "validation_failed",
            IamError::Unavailable(_) => "unavailable",
            IamError::Internal(_) => "internal_error",
        }
    }
}

impl From<StoreError> for IamError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(detail) => IamError::Unavailable(detail),
            StoreError::Internal(detail) => IamError::Internal(detail),
        }
    }
}

impl From<IdentityError> for IamError {
    fn from(err: IdentityError) -> Self {
        match err {
            IdentityError::InvalidCredentials => IamError::ChatwootCredentialsInvalid,
            IdentityError::Unavailable(_) => IamError::ChatwootUnavailable,
            IdentityError::Upstream(_) => IamError::ChatwootUpstream,
        }
    }
}

impl From<TokenError> for IamError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::Expired => IamError::TokenExpired,
            TokenError::Internal(detail) => IamError::Internal(detail),
            TokenError::OriginMismatch => IamError::TokenOriginMismatch,
            TokenError::Malformed
            | TokenError::UnknownKey
            | TokenError::Invalid
            | TokenError::NotYetValid => IamError::TokenInvalid,
        }
    }
}

/// Kept for readability at call sites that only authenticate.
pub type AuthError = IamError;
