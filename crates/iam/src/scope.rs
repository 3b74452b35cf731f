//! The scopes every tenant-facing port takes. Minted only in this crate.

use uuid::Uuid;
use whatpro_kernel::{AccountId, UserId};

use crate::model::{ApiKeyId, SessionId};
use crate::policy::{Action, Role};
use crate::scopes::ScopeSet;

/// Who acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in user in one of their sessions.
    User {
        /// The Chatwoot user id.
        user_id: UserId,
        /// The session.
        session_id: SessionId,
    },
    /// An API key, acting with its creator's current role (audited as the key).
    ApiKey {
        /// The key.
        key_id: ApiKeyId,
        /// The user who created it.
        created_by: UserId,
    },
    /// A user through an instance token of the embedded UI (audited as the user).
    InstanceToken {
        /// The Chatwoot user id.
        user_id: UserId,
        /// The token's `jti`.
        token_id: Uuid,
    },
    /// The Hub itself (background jobs).
    System,
}

impl Actor {
    /// The user, when a user acts (for an API key: the user who created it).
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Actor::User { user_id, .. } | Actor::InstanceToken { user_id, .. } => Some(*user_id),
            Actor::ApiKey { created_by, .. } => Some(*created_by),
            Actor::System => None,
        }
    }
}

/// Proof that the caller was authenticated for exactly one Chatwoot account, with a role there
/// and, for machine credentials (API keys, instance tokens), the scopes the credential carries.
/// No public constructor, no `Default`, no `Deserialize`: every port method on tenant data
/// takes `&TenantScope` first and reads the account from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantScope {
    account: AccountId,
    actor: Actor,
    role: Role,
    /// `None` for a user's own session (the role alone decides).
    scopes: Option<ScopeSet>,
}

impl TenantScope {
    pub(crate) fn new(account: AccountId, actor: Actor, role: Role) -> Self {
        Self {
            account,
            actor,
            role,
            scopes: None,
        }
    }

    pub(crate) fn scoped(account: AccountId, actor: Actor, role: Role, scopes: ScopeSet) -> Self {
        Self {
            account,
            actor,
            role,
            scopes: Some(scopes),
        }
    }

    /// A scope of a machine credential, for tests of other crates (feature `test-util`).
    #[cfg(any(test, feature = "test-util"))]
    pub fn for_tests_scoped(
        account: AccountId,
        actor: Actor,
        role: Role,
        scopes: ScopeSet,
    ) -> Self {
        Self::scoped(account, actor, role, scopes)
    }

    /// A scope for tests of other crates (feature `test-util`, dev-dependencies only).
    #[cfg(any(test, feature = "test-util"))]
    pub fn for_tests(account: AccountId, user: UserId, role: Role) -> Self {
        Self::new(
            account,
            Actor::User {
                user_id: user,
                session_id: SessionId::from_uuid(uuid::Uuid::nil()),
            },
            role,
        )
    }

    /// The tenant.
    pub fn account_id(&self) -> AccountId {
        self.account
    }

    /// Who acts.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The actor's role in the account.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The scopes of the machine credential behind this scope; `None` for a user's session.
    pub fn scopes(&self) -> Option<ScopeSet> {
        self.scopes
    }

    /// Whether the role allows `action` and, for a machine credential, its scopes do too.
    pub fn can(&self, action: Action) -> bool {
        self.role.allows(action) && self.scopes.is_none_or(|s| s.allows(action))
    }

    /// The most a credential made by this caller may carry: what the role allows, narrowed by
    /// the caller's own scopes when the caller is itself a machine credential.
    pub fn grantable(&self) -> ScopeSet {
        let by_role = ScopeSet::for_role(self.role);
        self.scopes.map_or(by_role, |s| s.intersect(by_role))
    }
}

/// Proof of a super_admin (or the Hub's own jobs) acting across accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformScope {
    actor: Actor,
}

impl PlatformScope {
    pub(crate) fn new(actor: Actor) -> Self {
        Self { actor }
    }

    /// The scope of the Hub's background jobs; call it only from the composition root.
    pub fn for_system_jobs() -> Self {
        Self::new(Actor::System)
    }

    /// Who acts.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// A tenant scope for one account, for cross-tenant jobs that then use scoped ports.
    pub fn tenant(&self, account: AccountId) -> TenantScope {
        TenantScope::new(account, self.actor, Role::Admin)
    }
}
