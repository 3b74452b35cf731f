//! The ports of identity and access. Each method's doc is the adapter's contract.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;
use whatpro_kernel::UserId;

use crate::model::{
    AccessClaims, AuditContext, ChatwootCredential, ChatwootProfile, LoginRecord, Principal,
    RefreshRotation, RotateOutcome, SessionId, SessionRecord, SessionRevocation,
};

/// Why Chatwoot could not vouch for a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Chatwoot refused the credential (401).
    #[error("Chatwoot rejected the credential")]
    InvalidCredentials,
    /// Chatwoot could not be reached in time (connect error, timeout).
    #[error("Chatwoot is unreachable: {0}")]
    Unavailable(String),
    /// Chatwoot answered with an error or a body we cannot read.
    #[error("Chatwoot answered badly: {0}")]
    Upstream(String),
}

/// Verifies Chatwoot credentials (implemented over Chatwoot's API).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ChatwootIdentity: Send + Sync {
    /// The profile of the credential's user.
    ///
    /// # Errors
    /// - `InvalidCredentials` when Chatwoot answers 401;
    /// - `Unavailable` on connect errors and timeouts (every call is bounded);
    /// - `Upstream` on other statuses or unreadable bodies.
    async fn verify(
        &self,
        credential: &ChatwootCredential,
    ) -> Result<ChatwootProfile, IdentityError>;
}

/// Why a token was refused. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a PASETO `v4.local` token, or its footer is unreadable.
    #[error("the token is malformed")]
    Malformed,
    /// Its `kid` names no key we hold.
    #[error("the token was made with an unknown key")]
    UnknownKey,
    /// Decryption or a claim check failed (tampered, other audience or type, bad claims).
    #[error("the token is not valid")]
    Invalid,
    /// Past its `exp`.
    #[error("the token has expired")]
    Expired,
    /// Before its `nbf`.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// Issuing failed (a bug or no randomness).
    #[error("token issuing failed: {0}")]
    Internal(String),
}

/// A freshly issued access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedAccessToken {
    /// The PASETO.
    pub token: String,
    /// `exp`.
    pub expires_at: OffsetDateTime,
    /// `jti`.
    pub token_id: Uuid,
}

/// Issues and verifies access tokens (PASETO `v4.local`, `aud=whatpro:api`, `typ=access`).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait AccessTokens: Send + Sync {
    /// A token for `user` in `session`, valid from `now` for the configured lifetime.
    ///
    /// # Errors
    /// `TokenError::Internal` only.
    fn issue(
        &self,
        user: UserId,
        session: SessionId,
        now: OffsetDateTime,
    ) -> Result<IssuedAccessToken, TokenError>;

    /// Checks the token at `now`: key, integrity, audience, type, times.
    ///
    /// # Errors
    /// Every other `TokenError` variant, as named.
    fn verify(&self, token: &str, now: OffsetDateTime) -> Result<AccessClaims, TokenError>;
}

/// Makes and recognises refresh tokens (256-bit random; stored only as hashes).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait RefreshTokens: Send + Sync {
    /// A new token and its hash.
    fn generate(&self) -> (String, Vec<u8>);
    /// The successor of a presented token and its hash: deterministic (keyed), so a repeat in
    /// the grace window gets the same successor without the Hub ever storing it. `None` when
    /// the presented text is not a refresh token.
    fn successor(&self, presented: &str) -> Option<(String, Vec<u8>)>;
    /// The stored hash of a presented token; `None` when it is not a refresh token.
    fn hash(&self, presented: &str) -> Option<Vec<u8>>;
    /// Encrypts a Chatwoot credential for storage.
    fn seal(&self, credential: &ChatwootCredential) -> Option<String>;
    /// Decrypts a sealed credential; `None` when it cannot be opened (e.g. its key was removed).
    fn open(&self, sealed: &str) -> Option<ChatwootCredential>;
}

/// A storage failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error("storage failed: {0}")]
    Internal(String),
}

/// Users, memberships, sessions and refresh tokens. Every write that is a security event also
/// writes its audit rows (to every account the user belongs to at that moment) in the same
/// transaction, and tells other instances to drop cached copies.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// Upserts the user, the accounts (name, status) and the memberships from the profile
    /// (Chatwoot role stored; Hub role = the default for the Chatwoot role unless a Hub admin
    /// set supervisor or viewer — an override survives logins while the Chatwoot role stays
    /// the same), removes memberships of accounts missing from the profile, creates the session
    /// and its first refresh token, writes `auth.login` audit rows, and returns the principal.
    async fn record_login(&self, login: &LoginRecord) -> Result<Principal, StoreError>;

    /// Updates memberships from a fresh profile (as `record_login`, without a new session).
    async fn sync_memberships(
        &self,
        profile: &ChatwootProfile,
        super_admin: bool,
    ) -> Result<Principal, StoreError>;

    /// Writes an `auth.login_failed` audit row (to the user's accounts when the user is known,
    /// else a platform-level row).
    async fn record_login_failure(
        &self,
        user: Option<UserId>,
        reason: &str,
        audit: &AuditContext,
    ) -> Result<(), StoreError>;

    /// The user and the memberships they can use now (active accounts only).
    async fn principal(&self, user: UserId) -> Result<Option<Principal>, StoreError>;

    /// A session, live or not.
    async fn session(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError>;

    /// The session a refresh token belongs to (for logout with the refresh cookie alone).
    async fn session_for_refresh(&self, hash: &[u8]) -> Result<Option<SessionRecord>, StoreError>;

    /// Rotates a refresh token atomically (row lock on the presented token), so 50 parallel
    /// rotations of one token produce one successor. See [`RotateOutcome`]. A reuse outside the
    /// grace window revokes the session (reason `refresh_reused`) and audits `auth.refresh_reused`.
    async fn rotate_refresh(&self, rotation: &RefreshRotation)
    -> Result<RotateOutcome, StoreError>;

    /// Revokes `session` if it belongs to `user` and is live; audits `auth.logout` or
    /// `session.revoked`. Returns false when there is no such live session of that user.
    async fn revoke_session(
        &self,
        user: UserId,
        session: SessionId,
        why: SessionRevocation,
        audit: &AuditContext,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Revokes every live session of `user` except `keep`; returns how many.
    async fn revoke_other_sessions(
        &self,
        user: UserId,
        keep: SessionId,
        audit: &AuditContext,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError>;

    /// The user's live sessions, newest first.
    async fn live_sessions(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError>;
}
