//! Roles and the one policy table (role x action), deny by default. `docs/rbac.md` mirrors it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A member's role in an account. `SuperAdmin` is a platform role from
/// `HUB_SUPER_ADMIN_EMAILS`; it is never stored as an account role nor granted by the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Operator of the whole Hub (platform routes only).
    SuperAdmin,
    /// Manages the account: members, keys, billing, providers.
    Admin,
    /// Leads agents: everything an agent does plus inbox sync and usage.
    Supervisor,
    /// Works conversations, the Kanban and the internal chat.
    Agent,
    /// Reads only.
    Viewer,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 5] = [
        Role::SuperAdmin,
        Role::Admin,
        Role::Supervisor,
        Role::Agent,
        Role::Viewer,
    ];
    /// The roles an account member can hold.
    pub const MEMBER_ROLES: [Role; 4] = [Role::Admin, Role::Supervisor, Role::Agent, Role::Viewer];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::SuperAdmin => "super_admin",
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Agent => "agent",
            Role::Viewer => "viewer",
        }
    }

    /// Whether this role may perform `action` (the policy table; deny by default).
    pub fn allows(self, action: Action) -> bool {
        use Action::*;
        use Role::*;
        match (self, action) {
            // Members and audit.
            (Admin | Supervisor | Agent | Viewer, MembersRead) => true,
            (Admin, MembersWrite | AuditRead) => true,
            // Machine credentials.
            (Admin, ApiKeysRead | ApiKeysWrite) => true,
            (Admin | Supervisor | Agent | Viewer, InstanceTokensCreate) => true,
            // Work.
            (
                Admin | Supervisor | Agent | Viewer,
                ChatRead | KanbanRead | InboxesRead | FeaturesRead,
            ) => true,
            (Admin | Supervisor | Agent, ChatWrite | KanbanWrite) => true,
            (Admin | Supervisor, InboxesWrite | UsageRead) => true,
            (Admin | Supervisor | Agent | Viewer, ProvidersRead) => true,
            (Admin, ProvidersWrite | BillingRead | BillingWrite | SettingsWrite) => true,
            // Platform.
            (SuperAdmin, PlatformRead | PlatformWrite) => true,
            _ => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a role (expected admin, supervisor, agent or viewer)")]
pub struct RoleParseError(pub String);

impl FromStr for Role {
    type Err = RoleParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| RoleParseError(s.to_owned()))
    }
}

/// Everything a credential can be allowed to do. Scopes of API keys and instance tokens map
/// onto these (`chat:read` -> `ChatRead` ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// List members and their roles.
    MembersRead,
    /// Change a member's role.
    MembersWrite,
    /// Read the account's audit log.
    AuditRead,
    /// List API keys.
    ApiKeysRead,
    /// Create, rotate and revoke API keys.
    ApiKeysWrite,
    /// Ask for an instance token for the embedded UI.
    InstanceTokensCreate,
    /// Read internal chat.
    ChatRead,
    /// Post in internal chat.
    ChatWrite,
    /// Read the Kanban.
    KanbanRead,
    /// Change the Kanban.
    KanbanWrite,
    /// Read the inbox mirror.
    InboxesRead,
    /// Sync inboxes.
    InboxesWrite,
    /// Read providers and instances.
    ProvidersRead,
    /// Manage providers and instances.
    ProvidersWrite,
    /// Read billing.
    BillingRead,
    /// Subscribe, change plan, cancel.
    BillingWrite,
    /// Read usage metering.
    UsageRead,
    /// Read feature flags.
    FeaturesRead,
    /// Change account settings (Chatwoot connection ...).
    SettingsWrite,
    /// Read across accounts (super_admin).
    PlatformRead,
    /// Change across accounts (super_admin).
    PlatformWrite,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admins_manage_members_and_read_audit() {
        for role in Role::ALL {
            assert_eq!(
                role.allows(Action::MembersWrite),
                role == Role::Admin,
                "{role}"
            );
            assert_eq!(
                role.allows(Action::AuditRead),
                role == Role::Admin,
                "{role}"
            );
        }
    }

    #[test]
    fn viewers_only_read() {
        for action in [
            Action::ChatWrite,
            Action::KanbanWrite,
            Action::InboxesWrite,
            Action::MembersWrite,
            Action::ApiKeysWrite,
            Action::BillingWrite,
            Action::ProvidersWrite,
        ] {
            assert!(!Role::Viewer.allows(action), "{action:?}");
        }
        assert!(Role::Viewer.allows(Action::ChatRead));
    }

    #[test]
    fn super_admin_is_a_platform_role_not_an_account_role() {
        assert!(Role::SuperAdmin.allows(Action::PlatformRead));
        assert!(!Role::SuperAdmin.allows(Action::MembersRead));
        assert!(!Role::Admin.allows(Action::PlatformRead));
        assert!(!Role::MEMBER_ROLES.contains(&Role::SuperAdmin));
    }

    #[test]
    fn role_names_round_trip_and_unknown_names_are_refused() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("owner".parse::<Role>().is_err());
        assert!("Admin".parse::<Role>().is_err());
    }
}
