//! Ports of the tenancy domain.

use async_trait::async_trait;
use whatpro_iam::{PlatformScope, StoreError, TenantScope};
use whatpro_kernel::{AccountId, Limit, UserId};

use crate::error::TenancyError;
use crate::model::{AccountSummary, AuditEntry, AuditQuery, Member, MemberPage, RoleChange};

/// Members of the scope's account.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MemberRepository: Send + Sync {
    /// Members ordered by user id, after `after` (exclusive).
    async fn list(
        &self,
        scope: &TenantScope,
        after: Option<UserId>,
        limit: Limit,
    ) -> Result<MemberPage, StoreError>;

    /// Sets a member's Hub role in one transaction: refuses with `LastAdmin` when it would
    /// leave the account without an admin, audits `member.role_changed` (metadata `from`,
    /// `to`), and tells every instance to drop the user's cached memberships.
    ///
    /// # Errors
    /// - `MemberNotFound` when the user is not a member of the scope's account (including
    ///   members of other accounts: existence is not leaked);
    /// - `LastAdmin`; `Unavailable`; `Internal`.
    async fn change_role(
        &self,
        scope: &TenantScope,
        change: &RoleChange,
    ) -> Result<Member, TenancyError>;
}

/// The audit log of the scope's account.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Entries of the scope's account, newest first, one page (`limit + 1` read to know
    /// whether more exist).
    async fn list(
        &self,
        scope: &TenantScope,
        query: &AuditQuery,
    ) -> Result<(Vec<AuditEntry>, bool), StoreError>;
}

/// Accounts across tenants (super_admin only).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AccountDirectory: Send + Sync {
    /// Accounts ordered by id, after `after` (exclusive).
    async fn list(
        &self,
        scope: &PlatformScope,
        after: Option<AccountId>,
        limit: Limit,
    ) -> Result<(Vec<AccountSummary>, bool), StoreError>;
}
