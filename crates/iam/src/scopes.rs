//! Scopes of machine credentials (API keys, instance tokens): `resource:read|write`, each the
//! permission of exactly one [`Action`]. A credential's scope set narrows its holder's role; it
//! never widens it. `docs/rbac.md` mirrors the table.

use std::fmt;
use std::str::FromStr;

use crate::policy::{Action, Role};

/// One grantable permission of a machine credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// `chat:read`.
    ChatRead,
    /// `chat:write`.
    ChatWrite,
    /// `kanban:read`.
    KanbanRead,
    /// `kanban:write`.
    KanbanWrite,
    /// `inboxes:read`.
    InboxesRead,
    /// `inboxes:write`.
    InboxesWrite,
    /// `providers:read`.
    ProvidersRead,
    /// `providers:write`.
    ProvidersWrite,
    /// `billing:read`.
    BillingRead,
    /// `billing:write`.
    BillingWrite,
    /// `usage:read`.
    UsageRead,
    /// `members:read`.
    MembersRead,
    /// `members:write`.
    MembersWrite,
    /// `api_keys:read`.
    ApiKeysRead,
    /// `api_keys:write`.
    ApiKeysWrite,
    /// `features:read`.
    FeaturesRead,
    /// `audit:read`.
    AuditRead,
}

impl Scope {
    /// Every scope, in the order lists are shown.
    pub const ALL: [Scope; 17] = [
        Scope::ChatRead,
        Scope::ChatWrite,
        Scope::KanbanRead,
        Scope::KanbanWrite,
        Scope::InboxesRead,
        Scope::InboxesWrite,
        Scope::ProvidersRead,
        Scope::ProvidersWrite,
        Scope::BillingRead,
        Scope::BillingWrite,
        Scope::UsageRead,
        Scope::MembersRead,
        Scope::MembersWrite,
        Scope::ApiKeysRead,
        Scope::ApiKeysWrite,
        Scope::FeaturesRead,
        Scope::AuditRead,
    ];

    /// The wire name, e.g. `chat:read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ChatRead => "chat:read",
            Scope::ChatWrite => "chat:write",
            Scope::KanbanRead => "kanban:read",
            Scope::KanbanWrite => "kanban:write",
            Scope::InboxesRead => "inboxes:read",
            Scope::InboxesWrite => "inboxes:write",
            Scope::ProvidersRead => "providers:read",
            Scope::ProvidersWrite => "providers:write",
            Scope::BillingRead => "billing:read",
            Scope::BillingWrite => "billing:write",
            Scope::UsageRead => "usage:read",
            Scope::MembersRead => "members:read",
            Scope::MembersWrite => "members:write",
            Scope::ApiKeysRead => "api_keys:read",
            Scope::ApiKeysWrite => "api_keys:write",
            Scope::FeaturesRead => "features:read",
            Scope::AuditRead => "audit:read",
        }
    }

    /// The action this scope permits.
    pub fn action(self) -> Action {
        match self {
            Scope::ChatRead => Action::ChatRead,
            Scope::ChatWrite => Action::ChatWrite,
            Scope::KanbanRead => Action::KanbanRead,
            Scope::KanbanWrite => Action::KanbanWrite,
            Scope::InboxesRead => Action::InboxesRead,
            Scope::InboxesWrite => Action::InboxesWrite,
            Scope::ProvidersRead => Action::ProvidersRead,
            Scope::ProvidersWrite => Action::ProvidersWrite,
            Scope::BillingRead => Action::BillingRead,
            Scope::BillingWrite => Action::BillingWrite,
            Scope::UsageRead => Action::UsageRead,
            Scope::MembersRead => Action::MembersRead,
            Scope::MembersWrite => Action::MembersWrite,
            Scope::ApiKeysRead => Action::ApiKeysRead,
            Scope::ApiKeysWrite => Action::ApiKeysWrite,
            Scope::FeaturesRead => Action::FeaturesRead,
            Scope::AuditRead => Action::AuditRead,
        }
    }

    /// The scope that permits `action`; `None` for actions no machine credential can be granted
    /// (creating instance tokens, account settings, platform administration).
    pub fn for_action(action: Action) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.action() == action)
    }

    /// Whether this is a `:read` scope.
    pub fn is_read(self) -> bool {
        self.as_str().ends_with(":read")
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a scope")]
pub struct ScopeParseError(pub String);

impl FromStr for Scope {
    type Err = ScopeParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| ScopeParseError(s.chars().take(64).collect()))
    }
}

/// A set of scopes (small and `Copy`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScopeSet(u32);

impl ScopeSet {
    /// No scope.
    pub const EMPTY: ScopeSet = ScopeSet(0);

    /// Every scope.
    pub fn all() -> Self {
        Scope::ALL.into_iter().collect()
    }

    /// Every scope whose action `role` allows: the most a credential of a member with that role
    /// may hold.
    pub fn for_role(role: Role) -> Self {
        Scope::ALL
            .into_iter()
            .filter(|s| role.allows(s.action()))
            .collect()
    }

    /// Parses scope names; duplicates collapse.
    ///
    /// # Errors
    /// The first name that is not a scope.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, ScopeParseError> {
        names.iter().map(|n| n.as_ref().parse::<Scope>()).collect()
    }

    /// Parses stored names, ignoring unknown ones (a stored set never gains a scope by a later
    /// rename; an unknown name simply grants nothing).
    pub fn from_stored<S: AsRef<str>>(names: &[S]) -> Self {
        names
            .iter()
            .filter_map(|n| n.as_ref().parse::<Scope>().ok())
            .collect()
    }

    /// Whether `scope` is in the set.
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether the set permits `action` (some scope in it maps to the action).
    pub fn allows(self, action: Action) -> bool {
        Scope::for_action(action).is_some_and(|s| self.contains(s))
    }

    /// Whether the set holds no scope.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset(self, other: ScopeSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// Scopes in both sets.
    #[must_use]
    pub fn intersect(self, other: ScopeSet) -> Self {
        Self(self.0 & other.0)
    }

    /// Scopes of `self` missing from `other`.
    #[must_use]
    pub fn minus(self, other: ScopeSet) -> Self {
        Self(self.0 & !other.0)
    }

    /// Only the `:read` scopes.
    #[must_use]
    pub fn reads(self) -> Self {
        self.iter().filter(|s| s.is_read()).collect()
    }

    /// The scopes, in [`Scope::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// The wire names, in [`Scope::ALL`] order.
    pub fn names(self) -> Vec<String> {
        self.iter().map(|s| s.as_str().to_owned()).collect()
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<T: IntoIterator<Item = Scope>>(iter: T) -> Self {
        Self(iter.into_iter().fold(0, |bits, s| bits | s.bit()))
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(Scope::as_str))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_each_action_has_at_most_one_scope() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
            assert_eq!(Scope::for_action(scope.action()), Some(scope));
        }
        for bad in [
            "chat",
            "chat:delete",
            "CHAT:READ",
            "usage:write",
            "audit:write",
            "",
        ] {
            assert!(bad.parse::<Scope>().is_err(), "{bad}");
        }
        for action in [
            Action::InstanceTokensCreate,
            Action::SettingsWrite,
            Action::PlatformRead,
            Action::PlatformWrite,
        ] {
            assert_eq!(Scope::for_action(action), None, "{action:?}");
        }
    }

    #[test]
    fn sets_parse_collapse_and_compare() {
        let set = ScopeSet::parse(&["chat:read", "chat:read", "members:write"]).unwrap();
        assert_eq!(set.names(), ["chat:read", "members:write"]);
        assert!(set.allows(Action::ChatRead));
        assert!(
            !set.allows(Action::ChatWrite),
            "write does not imply read or the reverse"
        );
        assert!(!set.allows(Action::InstanceTokensCreate));
        assert_eq!(
            ScopeSet::parse(&["chat:read", "nope"]).unwrap_err(),
            ScopeParseError("nope".into())
        );
        assert!(set.is_subset(ScopeSet::all()));
        assert!(!ScopeSet::all().is_subset(set));
        assert_eq!(
            ScopeSet::from_stored(&["chat:read", "gone:read"]).names(),
            ["chat:read"]
        );
        assert_eq!(
            set.minus(ScopeSet::for_role(Role::Agent)).names(),
            ["members:write"]
        );
    }

    #[test]
    fn role_sets_follow_the_policy_table() {
        assert_eq!(ScopeSet::for_role(Role::Admin), ScopeSet::all());
        assert_eq!(ScopeSet::for_role(Role::SuperAdmin), ScopeSet::EMPTY);
        let viewer = ScopeSet::for_role(Role::Viewer);
        assert!(viewer.iter().all(Scope::is_read), "{viewer:?}");
        assert_eq!(viewer.reads(), viewer);
        for role in Role::MEMBER_ROLES {
            for scope in ScopeSet::for_role(role).iter() {
                assert!(role.allows(scope.action()), "{role} {scope}");
            }
        }
        assert!(!ScopeSet::for_role(Role::Agent).contains(Scope::ApiKeysRead));
        assert!(ScopeSet::for_role(Role::Supervisor).contains(Scope::UsageRead));
    }
}
