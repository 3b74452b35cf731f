//! Values of the tenancy domain.

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;
use whatpro_iam::{AccountStatus, AuditContext, ChatwootRole, Role};
use whatpro_kernel::{AccountId, Limit, UserId};

/// A member of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// Chatwoot user id.
    pub user_id: UserId,
    /// Email.
    pub email: String,
    /// Name.
    pub name: String,
    /// Role in the Hub.
    pub role: Role,
    /// Role in Chatwoot.
    pub chatwoot_role: ChatwootRole,
    /// Became a member.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// One page of members, ordered by user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberPage {
    /// The members.
    pub members: Vec<Member>,
    /// The last user id of this page when there are more.
    pub next_after: Option<UserId>,
}

/// A role change asked by an admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleChange {
    /// Whose role.
    pub user_id: UserId,
    /// The new role (never super_admin).
    pub role: Role,
    /// For the `member.role_changed` audit row.
    pub audit: AuditContext,
}

/// An account as listed to super_admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountSummary {
    /// Chatwoot account id.
    pub id: AccountId,
    /// Name.
    pub name: String,
    /// Active or suspended.
    pub status: AccountStatus,
    /// How many members the Hub knows.
    pub members: i64,
    /// First seen by the Hub.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Who did an audited thing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum AuditActor {
    /// A user.
    User(i64),
    /// An API key.
    ApiKey(Uuid),
    /// The Hub itself.
    System,
}

/// One audit row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Id (UUID v7, time-ordered).
    pub id: Uuid,
    /// Dotted action such as `auth.login`.
    pub action: String,
    /// Who.
    pub actor: AuditActor,
    /// What it was done to (e.g. `user:7`, `session:<id>`).
    pub target: Option<String>,
    /// Extra facts; never secrets.
    pub metadata: serde_json::Value,
    /// The request that did it.
    pub request_id: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A page request over the audit log, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this action.
    pub action: Option<String>,
    /// Page size.
    pub limit: Limit,
    /// Continue after this id (exclusive).
    pub before: Option<Uuid>,
}
