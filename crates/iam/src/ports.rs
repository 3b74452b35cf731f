//! The ports of identity and access. Each method's doc is the adapter's contract.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;
use whatpro_kernel::{Limit, UserId};

use crate::credentials::{
    ApiKeyPage, ApiKeyRecord, InstanceClaims, InstanceTokenRecord, KeyChange, KeyDenial,
    KeyMaterial, NewApiKey,
};
use crate::model::{
    AccessClaims, ApiKeyId, AuditContext, ChatwootCredential, ChatwootProfile, LoginRecord,
    Principal, RefreshRotation, RotateOutcome, SessionId, SessionRecord, SessionRevocation,
};
use crate::scope::TenantScope;

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
    /// An instance token that does not open with the given origin as its implicit assertion
    /// (another origin; a tampered token looks the same).
    #[error("the token is not bound to this origin")]
    OriginMismatch,
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

    /// The user and the memberships they can use now (active accounts only). Shared: the
    /// per-request authentication reads it from a cache without copying it.
    async fn principal(&self, user: UserId) -> Result<Option<Arc<Principal>>, StoreError>;

    /// A session, live or not (shared, like the principal).
    async fn session(&self, id: SessionId) -> Result<Option<Arc<SessionRecord>>, StoreError>;

    /// The session and its user's principal when a cache in front of the database holds both
    /// right now: no I/O and no future to box, so the per-request authentication tries it
    /// first and awaits [`session`](Self::session) and [`principal`](Self::principal) only on
    /// a miss. What it returns must be exactly what those two would return. A store without a
    /// cache answers `None`.
    fn remembered(
        &self,
        session: SessionId,
        user: UserId,
    ) -> Option<(Arc<SessionRecord>, Arc<Principal>)>;

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

/// Issues and verifies instance tokens (PASETO `v4.local`, `aud=whatpro:embed`,
/// `typ=instance`, implicit assertion `{"origin":"<origin>"}`, footer `{"kid","typ":"instance"}`).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait InstanceTokens: Send + Sync {
    /// A token carrying `claims`, bound to `claims.origin`.
    ///
    /// # Errors
    /// `TokenError::Internal` only.
    fn issue(&self, claims: &InstanceClaims) -> Result<String, TokenError>;

    /// Whether the token says (in its authenticated footer) that it is an instance token; no
    /// decryption. Used to pick the verifier for a Bearer credential.
    fn recognizes(&self, token: &str) -> bool;

    /// Checks the token for a request from `origin` at `now`.
    ///
    /// # Errors
    /// `Malformed`, `UnknownKey`, `OriginMismatch` (does not open with this origin), `Invalid`
    /// (other audience or type, bad claims), `Expired`, `NotYetValid`.
    fn verify(
        &self,
        token: &str,
        origin: &str,
        now: OffsetDateTime,
    ) -> Result<InstanceClaims, TokenError>;
}

/// Why hashing failed. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secret hashing failed: {0}")]
pub struct HashError(pub String);

/// Makes API key material and hashes secrets (argon2id, off the async threads).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SecretHasher: Send + Sync {
    /// New random key material (a unique-enough prefix and a 256-bit secret).
    fn generate(&self) -> KeyMaterial;

    /// A fast digest (SHA-256) of a presented credential: the key of the verification cache,
    /// so the cache never holds the credential itself.
    fn fingerprint(&self, presented: &str) -> [u8; 32];

    /// The PHC string of `secret`.
    ///
    /// # Errors
    /// When hashing fails (no randomness, no worker).
    async fn hash(&self, secret: &str) -> Result<String, HashError>;

    /// Whether `secret` matches the PHC string `hash` (false also for an unreadable hash).
    ///
    /// # Errors
    /// When no worker could run the check.
    async fn verify(&self, secret: &str, hash: &str) -> Result<bool, HashError>;
}

/// API keys and instance tokens. Every write that is a security event writes its audit row in
/// the same transaction and tells other instances to drop cached copies
/// (`{"api_key": "<id>"}`, `{"instance_token": "<jti>"}` on `whatpro_iam`).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// Stores a new key and audits `api_key.created` in its account; false (nothing stored)
    /// when its prefix is taken, so the caller can generate another.
    async fn create_api_key(&self, key: &NewApiKey) -> Result<bool, StoreError>;

    /// The key with this prefix (any account, revoked or not).
    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKeyRecord>, StoreError>;

    /// The key with this id (any account); adapters may serve it from a coherent cache.
    async fn api_key(&self, id: ApiKeyId) -> Result<Option<ApiKeyRecord>, StoreError>;

    /// Keys of the scope's account by id, after `after` (exclusive).
    async fn list_api_keys(
        &self,
        scope: &TenantScope,
        after: Option<ApiKeyId>,
        limit: Limit,
    ) -> Result<ApiKeyPage, StoreError>;

    /// Replaces the secret hash of a live key of the scope's account (sets `rotated_at`),
    /// audits `api_key.rotated` (actor from the scope).
    async fn rotate_api_key(
        &self,
        scope: &TenantScope,
        id: ApiKeyId,
        secret_hash: &str,
        audit: &AuditContext,
        now: OffsetDateTime,
    ) -> Result<KeyChange, StoreError>;

    /// Revokes a key of the scope's account and audits `api_key.revoked`; a key already revoked
    /// is left as it is (no audit row).
    async fn revoke_api_key(
        &self,
        scope: &TenantScope,
        id: ApiKeyId,
        audit: &AuditContext,
        now: OffsetDateTime,
    ) -> Result<KeyChange, StoreError>;

    /// Sets `last_used_at` (callers throttle this to about once a minute per key).
    async fn touch_api_key(&self, id: ApiKeyId, at: OffsetDateTime) -> Result<(), StoreError>;

    /// Audits `api_key.denied` for a verified key used beyond its scopes or role.
    async fn record_api_key_denial(
        &self,
        key: &ApiKeyRecord,
        denial: &KeyDenial,
    ) -> Result<(), StoreError>;

    /// Stores an issued instance token and audits `instance_token.created` (actor: its user).
    async fn record_instance_token(
        &self,
        token: &InstanceTokenRecord,
        audit: &AuditContext,
    ) -> Result<(), StoreError>;

    /// The instance token with this `jti`; adapters may serve it from a coherent cache.
    async fn instance_token(&self, id: Uuid) -> Result<Option<InstanceTokenRecord>, StoreError>;

    /// Revokes an instance token and audits `instance_token.revoked` (actor: `by`); false when
    /// there is no such token. A token already revoked is left as it is (no audit row).
    async fn revoke_instance_token(
        &self,
        id: Uuid,
        by: UserId,
        audit: &AuditContext,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
}
