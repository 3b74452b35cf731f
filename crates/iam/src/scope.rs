//! The scopes every tenant-facing port takes. Minted only in this crate.

use whatpro_kernel::{AccountId, UserId};

use crate::model::SessionId;
use crate::policy::{Action, Role};

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
    /// The Hub itself (background jobs).
    System,
}

impl Actor {
    /// The user, when a user acts.
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Actor::User { user_id, .. } => Some(*user_id),
            Actor::System => None,
        }
    }
}

/// Proof that the caller was authenticated for exactly one Chatwoot account, with a role there.
/// No public constructor, no `Default`, no `Deserialize`: every port method on tenant data
/// takes `&TenantScope` first and reads the account from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantScope {
    account: AccountId,
    actor: Actor,
    role: Role,
}

impl TenantScope {
    pub(crate) fn new(account: AccountId, actor: Actor, role: Role) -> Self {
        Self {
            account,
            actor,
            role,
        }
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

    /// Whether the role allows `action`.
    pub fn can(&self, action: Action) -> bool {
        self.role.allows(action)
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
