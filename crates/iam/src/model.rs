//! The values identity and access work with.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;
use whatpro_kernel::{AccountId, UserId};

use crate::policy::Role;

/// A Hub session (one per signed-in device).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(Uuid);

impl SessionId {
    /// Wraps a UUID.
    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The UUID.
    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An API key's id (UUID v7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiKeyId(Uuid);

impl ApiKeyId {
    /// Wraps a UUID.
    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The UUID.
    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A user's role in a Chatwoot account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatwootRole {
    /// Chatwoot `administrator`.
    Administrator,
    /// Chatwoot `agent`.
    Agent,
}

impl ChatwootRole {
    /// Chatwoot's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ChatwootRole::Administrator => "administrator",
            ChatwootRole::Agent => "agent",
        }
    }

    /// The Hub role a member gets by default: administrator -> admin, agent -> agent.
    pub fn default_role(self) -> Role {
        match self {
            ChatwootRole::Administrator => Role::Admin,
            ChatwootRole::Agent => Role::Agent,
        }
    }
}

/// Whether a Chatwoot account is usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// Usable.
    Active,
    /// Suspended in Chatwoot: its members lose access to it in the Hub.
    Suspended,
}

impl AccountStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Suspended => "suspended",
        }
    }
}

/// One entry of the profile's `accounts[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatwootMembership {
    /// The account.
    pub account_id: AccountId,
    /// Its name.
    pub account_name: String,
    /// Active or suspended.
    pub status: AccountStatus,
    /// The user's role there.
    pub role: ChatwootRole,
}

/// What Chatwoot says about a verified user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatwootProfile {
    /// Chatwoot user id.
    pub user_id: UserId,
    /// Email (devise uid).
    pub email: String,
    /// Full name.
    pub name: String,
    /// Memberships, one per account.
    pub accounts: Vec<ChatwootMembership>,
}

/// A Chatwoot credential presented at SSO. `Debug` never shows the secrets.
#[derive(Clone, PartialEq, Eq)]
pub enum ChatwootCredential {
    /// A user's personal API token (`api_access_token`).
    AccessToken(String),
    /// The dashboard's devise_token_auth session headers.
    Session {
        /// `access-token`.
        access_token: String,
        /// `client`.
        client: String,
        /// `uid` (the email).
        uid: String,
    },
}

impl fmt::Debug for ChatwootCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatwootCredential::AccessToken(_) => f.write_str("AccessToken(***)"),
            ChatwootCredential::Session { uid, .. } => f
                .debug_struct("Session")
                .field("uid", uid)
                .finish_non_exhaustive(),
        }
    }
}

/// Where a request came from, as stored on sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    /// `User-Agent`, truncated.
    pub user_agent: Option<String>,
    /// Client IP.
    pub ip: Option<String>,
}

/// Facts recorded with every audit row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditContext {
    /// The request id.
    pub request_id: String,
    /// Client IP.
    pub ip: Option<String>,
}

/// A refresh token to store: only its hash.
#[derive(Clone, PartialEq, Eq)]
pub struct NewRefreshToken {
    /// SHA-256 of the token.
    pub hash: Vec<u8>,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

impl fmt::Debug for NewRefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewRefreshToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Everything a successful SSO writes, in one transaction.
#[derive(Debug, Clone)]
pub struct LoginRecord {
    /// The verified profile: user, accounts and memberships are upserted from it; memberships
    /// of accounts missing from it are removed.
    pub profile: ChatwootProfile,
    /// Whether the user is a super_admin (from configuration).
    pub super_admin: bool,
    /// The new session.
    pub session_id: SessionId,
    /// Its device.
    pub device: DeviceInfo,
    /// Its first refresh token.
    pub refresh: NewRefreshToken,
    /// The Chatwoot credential, sealed (encrypted) so refreshes can re-check memberships.
    pub sealed_credential: Option<String>,
    /// Now.
    pub now: OffsetDateTime,
    /// Idle expiry of the session.
    pub idle_expires_at: OffsetDateTime,
    /// Absolute expiry of the session.
    pub absolute_expires_at: OffsetDateTime,
    /// For the `auth.login` audit rows.
    pub audit: AuditContext,
}

/// A Hub user (a Chatwoot user who signed in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Chatwoot user id.
    pub id: UserId,
    /// Email.
    pub email: String,
    /// Name.
    pub name: String,
    /// super_admin of the Hub.
    pub super_admin: bool,
}

/// A user's access to one (active) account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    /// The account.
    pub account_id: AccountId,
    /// Its name.
    pub account_name: String,
    /// The Hub role there.
    pub role: Role,
}

/// A user with the accounts they may use now (active accounts, current memberships).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user.
    pub user: User,
    /// Usable memberships.
    pub memberships: Vec<Membership>,
}

impl Principal {
    /// The membership in `account`, if any.
    pub fn membership(&self, account: AccountId) -> Option<&Membership> {
        self.memberships.iter().find(|m| m.account_id == account)
    }
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Id.
    pub id: SessionId,
    /// Owner.
    pub user_id: UserId,
    /// Device user agent.
    pub user_agent: Option<String>,
    /// Device IP.
    pub ip: Option<String>,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last login or refresh.
    pub last_seen_at: OffsetDateTime,
    /// Ends when not refreshed before this.
    pub idle_expires_at: OffsetDateTime,
    /// Ends at this time whatever happens.
    pub absolute_expires_at: OffsetDateTime,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
    /// Why (`logout`, `revoked`, `refresh_reused`, ...).
    pub revoked_reason: Option<String>,
    /// The sealed Chatwoot credential, when one was kept.
    pub sealed_credential: Option<String>,
}

impl SessionRecord {
    /// Not revoked and within both expiries.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && now < self.idle_expires_at && now < self.absolute_expires_at
    }

    /// When the session ends unless refreshed.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.idle_expires_at.min(self.absolute_expires_at)
    }
}

/// One refresh-token rotation, done atomically by the store.
#[derive(Debug, Clone)]
pub struct RefreshRotation {
    /// Hash of the presented token.
    pub presented_hash: Vec<u8>,
    /// The successor (deterministic from the presented token, so a repeat in the grace window
    /// yields the same one).
    pub successor: NewRefreshToken,
    /// Now.
    pub now: OffsetDateTime,
    /// How long after its use a token may be presented again for the same successor.
    pub grace: time::Duration,
    /// The session's new idle expiry.
    pub idle_expires_at: OffsetDateTime,
    /// For audit rows (reuse).
    pub audit: AuditContext,
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The token was current: it is now used and the successor stored.
    Rotated(SessionRecord),
    /// The token was used less than the grace period ago and its successor is unused: the
    /// same successor stands.
    Replayed(SessionRecord),
    /// The token was used before (outside the grace window): the session is now revoked.
    Reused(SessionId),
    /// No such token.
    Unknown,
    /// The token expired.
    Expired,
    /// The session was revoked or expired.
    SessionEnded,
}

/// The claims of a verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    /// `sub`.
    pub user_id: UserId,
    /// `sid`.
    pub session_id: SessionId,
    /// `jti`.
    pub token_id: Uuid,
    /// `exp`.
    pub expires_at: OffsetDateTime,
}

/// Why a session was ended, as stored and audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRevocation {
    /// The user logged out.
    Logout,
    /// The user revoked it from another session.
    Revoked,
    /// The user revoked every other session.
    RevokedOthers,
    /// A rotated refresh token was presented again.
    RefreshReused,
    /// Chatwoot no longer accepts the user's credential.
    ChatwootRejected,
}

impl SessionRevocation {
    /// The stored reason.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionRevocation::Logout => "logout",
            SessionRevocation::Revoked => "revoked",
            SessionRevocation::RevokedOthers => "revoked_others",
            SessionRevocation::RefreshReused => "refresh_reused",
            SessionRevocation::ChatwootRejected => "chatwoot_rejected",
        }
    }
}
