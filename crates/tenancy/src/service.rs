//! Tenancy use cases with their role checks.

use std::sync::Arc;

use whatpro_iam::{Action, PlatformScope, Role, TenantScope};
use whatpro_kernel::{AccountId, Limit, UserId};

use crate::error::TenancyError;
use crate::model::{AccountSummary, AuditEntry, AuditQuery, Member, MemberPage, RoleChange};
use crate::ports::{AccountDirectory, AuditLog, MemberRepository};

/// Members, audit and the account directory behind role checks.
pub struct TenancyService {
    members: Arc<dyn MemberRepository>,
    audit: Arc<dyn AuditLog>,
    accounts: Arc<dyn AccountDirectory>,
}

impl TenancyService {
    /// Wires the service.
    pub fn new(
        members: Arc<dyn MemberRepository>,
        audit: Arc<dyn AuditLog>,
        accounts: Arc<dyn AccountDirectory>,
    ) -> Self {
        Self {
            members,
            audit,
            accounts,
        }
    }

    /// Members of the scope's account.
    ///
    /// # Errors
    /// `Forbidden` without `MembersRead`; storage errors.
    pub async fn list_members(
        &self,
        scope: &TenantScope,
        after: Option<UserId>,
        limit: Limit,
    ) -> Result<MemberPage, TenancyError> {
        if !scope.can(Action::MembersRead) {
            return Err(TenancyError::Forbidden);
        }
        Ok(self.members.list(scope, after, limit).await?)
    }

    /// Changes a member's role (admins only; never to super_admin; never the last admin).
    ///
    /// # Errors
    /// `Forbidden`, `InvalidRole`, `MemberNotFound`, `LastAdmin`, storage errors.
    pub async fn change_role(
        &self,
        scope: &TenantScope,
        change: RoleChange,
    ) -> Result<Member, TenancyError> {
        if !scope.can(Action::MembersWrite) {
            return Err(TenancyError::Forbidden);
        }
        if change.role == Role::SuperAdmin {
            return Err(TenancyError::InvalidRole(
                "super_admin cannot be granted through the API".to_owned(),
            ));
        }
        self.members.change_role(scope, &change).await
    }

    /// A page of the account's audit log.
    ///
    /// # Errors
    /// `Forbidden` without `AuditRead`; `InvalidQuery` for a malformed action filter.
    pub async fn list_audit(
        &self,
        scope: &TenantScope,
        query: AuditQuery,
    ) -> Result<(Vec<AuditEntry>, bool), TenancyError> {
        if !scope.can(Action::AuditRead) {
            return Err(TenancyError::Forbidden);
        }
        if let Some(action) = &query.action {
            let valid = !action.is_empty()
                && action.len() <= 64
                && action
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_');
            if !valid {
                return Err(TenancyError::InvalidQuery(format!(
                    "`{action}` is not an audit action"
                )));
            }
        }
        Ok(self.audit.list(scope, &query).await?)
    }

    /// Accounts across tenants (super_admin).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list_accounts(
        &self,
        scope: &PlatformScope,
        after: Option<AccountId>,
        limit: Limit,
    ) -> Result<(Vec<AccountSummary>, bool), TenancyError> {
        Ok(self.accounts.list(scope, after, limit).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockAccountDirectory, MockAuditLog, MockMemberRepository};
    use whatpro_iam::AuditContext;

    fn service(members: MockMemberRepository, audit: MockAuditLog) -> TenancyService {
        TenancyService::new(
            Arc::new(members),
            Arc::new(audit),
            Arc::new(MockAccountDirectory::new()),
        )
    }

    fn scope(role: Role) -> TenantScope {
        TenantScope::for_tests(AccountId::new(1), UserId::new(5), role)
    }

    fn change(role: Role) -> RoleChange {
        RoleChange {
            user_id: UserId::new(6),
            role,
            audit: AuditContext::default(),
        }
    }

    #[tokio::test]
    async fn only_admins_change_roles_and_the_store_is_not_touched_otherwise() {
        for role in [Role::Supervisor, Role::Agent, Role::Viewer] {
            let mut members = MockMemberRepository::new();
            members.expect_change_role().never();
            let err = service(members, MockAuditLog::new())
                .change_role(&scope(role), change(Role::Viewer))
                .await
                .unwrap_err();
            assert_eq!(err, TenancyError::Forbidden, "{role}");
        }
    }

    #[tokio::test]
    async fn super_admin_is_never_granted() {
        let mut members = MockMemberRepository::new();
        members.expect_change_role().never();
        let err = service(members, MockAuditLog::new())
            .change_role(&scope(Role::Admin), change(Role::SuperAdmin))
            .await
            .unwrap_err();
        assert!(matches!(err, TenancyError::InvalidRole(_)));
    }

    #[tokio::test]
    async fn admins_reach_the_store_with_their_scope() {
        let mut members = MockMemberRepository::new();
        members
            .expect_change_role()
            .withf(|scope, change| {
                scope.account_id() == AccountId::new(1) && change.role == Role::Supervisor
            })
            .returning(|_, _| Err(TenancyError::LastAdmin));
        let err = service(members, MockAuditLog::new())
            .change_role(&scope(Role::Admin), change(Role::Supervisor))
            .await
            .unwrap_err();
        assert_eq!(err, TenancyError::LastAdmin);
    }

    #[tokio::test]
    async fn audit_is_for_admins_and_filters_are_checked() {
        let mut audit = MockAuditLog::new();
        audit
            .expect_list()
            .times(1)
            .returning(|_, _| Ok((Vec::new(), false)));
        let svc = service(MockMemberRepository::new(), audit);
        let query = |action: Option<&str>| AuditQuery {
            action: action.map(str::to_owned),
            limit: Limit::default(),
            before: None,
        };
        assert_eq!(
            svc.list_audit(&scope(Role::Agent), query(None))
                .await
                .unwrap_err(),
            TenancyError::Forbidden
        );
        assert!(matches!(
            svc.list_audit(&scope(Role::Admin), query(Some("DROP TABLE")))
                .await
                .unwrap_err(),
            TenancyError::InvalidQuery(_)
        ));
        assert!(
            svc.list_audit(&scope(Role::Admin), query(Some("auth.login")))
                .await
                .is_ok()
        );
    }
}
