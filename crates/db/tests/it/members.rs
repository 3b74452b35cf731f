//! Members: listing, role changes, the last-admin rule and two-tenant isolation.

use serde_json::json;
use whatpro_iam::{AuditContext, ChatwootRole, IdentityStore, PlatformScope, Role};
use whatpro_kernel::{AccountId, Limit, UserId};
use whatpro_tenancy::{AccountDirectory, AuditActor, MemberRepository, RoleChange, TenancyError};

use crate::support::{Fixture, admin_scope, now, profile, roles};

fn change(user: i64, role: Role) -> RoleChange {
    RoleChange {
        user_id: UserId::new(user),
        role,
        audit: AuditContext {
            request_id: "req-role".to_owned(),
            ip: None,
        },
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn members_are_listed_by_user_id_in_pages() {
    let fx = Fixture::new().await;
    let t = now();
    for user in [30, 10, 20] {
        fx.login(
            &profile(user, &[(1, ChatwootRole::Agent)]),
            &format!("t{user}"),
            t,
        )
        .await;
    }
    let members = fx.members();
    let scope = admin_scope(1, 10);
    let page = members
        .list(&scope, None, Limit::clamped(Some(2)))
        .await
        .unwrap();
    let ids: Vec<i64> = page.members.iter().map(|m| m.user_id.get()).collect();
    assert_eq!(ids, vec![10, 20]);
    assert_eq!(page.next_after, Some(UserId::new(20)));
    assert_eq!(page.members[0].email, "user10@example.com");
    assert_eq!(page.members[0].role, Role::Agent);
    assert_eq!(page.members[0].chatwoot_role, ChatwootRole::Agent);

    let page = members
        .list(&scope, page.next_after, Limit::clamped(Some(2)))
        .await
        .unwrap();
    let ids: Vec<i64> = page.members.iter().map(|m| m.user_id.get()).collect();
    assert_eq!(ids, vec![30]);
    assert_eq!(page.next_after, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_change_is_stored_audited_and_overrides() {
    let fx = Fixture::new().await;
    let t = now();
    fx.login(&profile(1, &[(1, ChatwootRole::Administrator)]), "admin", t)
        .await;
    fx.login(&profile(10, &[(1, ChatwootRole::Agent)]), "agent", t)
        .await;

    let member = fx
        .members()
        .change_role(&admin_scope(1, 1), &change(10, Role::Supervisor))
        .await
        .unwrap();
    assert_eq!(member.user_id, UserId::new(10));
    assert_eq!(member.role, Role::Supervisor);
    assert_eq!(member.chatwoot_role, ChatwootRole::Agent);
    assert_eq!(
        roles(&fx.store.principal(UserId::new(10)).await.unwrap().unwrap()),
        vec![(1, Role::Supervisor)]
    );
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM account_members WHERE role_overridden")
            .await,
        1
    );

    let rows = fx.audit(1).await;
    let changed: Vec<_> = rows
        .iter()
        .filter(|r| r.action == "member.role_changed")
        .collect();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].actor, AuditActor::User(1));
    assert_eq!(changed[0].target.as_deref(), Some("user:10"));
    assert_eq!(
        changed[0].metadata,
        json!({"from": "agent", "to": "supervisor"})
    );
    assert_eq!(changed[0].request_id.as_deref(), Some("req-role"));

    // Setting the same role again changes and audits nothing.
    fx.members()
        .change_role(&admin_scope(1, 1), &change(10, Role::Supervisor))
        .await
        .unwrap();
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM audit_log WHERE action = 'member.role_changed'")
            .await,
        1
    );

    // System actors (platform jobs) are audited as such.
    let system = PlatformScope::for_system_jobs().tenant(AccountId::new(1));
    fx.members()
        .change_role(&system, &change(10, Role::Viewer))
        .await
        .unwrap();
    let rows = fx.audit(1).await;
    assert_eq!(rows[0].action, "member.role_changed");
    assert_eq!(rows[0].actor, AuditActor::System);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_admin_cannot_be_demoted() {
    let fx = Fixture::new().await;
    let t = now();
    fx.login(&profile(1, &[(1, ChatwootRole::Administrator)]), "a1", t)
        .await;
    fx.login(&profile(2, &[(1, ChatwootRole::Administrator)]), "a2", t)
        .await;
    fx.login(&profile(3, &[(1, ChatwootRole::Agent)]), "a3", t)
        .await;
    let members = fx.members();
    let scope = admin_scope(1, 1);

    members
        .change_role(&scope, &change(2, Role::Agent))
        .await
        .unwrap();
    let err = members
        .change_role(&scope, &change(1, Role::Viewer))
        .await
        .unwrap_err();
    assert_eq!(err, TenancyError::LastAdmin);
    assert_eq!(
        roles(&fx.store.principal(UserId::new(1)).await.unwrap().unwrap()),
        vec![(1, Role::Admin)]
    );

    // Promoting someone else first makes the demotion possible.
    members
        .change_role(&scope, &change(3, Role::Admin))
        .await
        .unwrap();
    members
        .change_role(&scope, &change(1, Role::Viewer))
        .await
        .unwrap();
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM account_members WHERE role = 'admin'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_demotions_cannot_remove_every_admin() {
    let fx = Fixture::new().await;
    let t = now();
    fx.login(&profile(1, &[(1, ChatwootRole::Administrator)]), "a1", t)
        .await;
    fx.login(&profile(2, &[(1, ChatwootRole::Administrator)]), "a2", t)
        .await;
    let members = std::sync::Arc::new(fx.members());
    let scope = admin_scope(1, 1);
    let (a, b) = tokio::join!(
        {
            let (members, scope) = (members.clone(), scope.clone());
            async move { members.change_role(&scope, &change(1, Role::Agent)).await }
        },
        {
            let (members, scope) = (members.clone(), scope.clone());
            async move { members.change_role(&scope, &change(2, Role::Agent)).await }
        }
    );
    assert_eq!(
        [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{a:?} {b:?}"
    );
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM account_members WHERE role = 'admin'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scope_for_account_b_cannot_reach_account_a() {
    let fx = Fixture::new().await;
    let t = now();
    // Account 1 (A): admin 1, agent 10. Account 2 (B): admin 2, agent 20. User 30 is in both.
    fx.login(&profile(1, &[(1, ChatwootRole::Administrator)]), "a1", t)
        .await;
    fx.login(&profile(10, &[(1, ChatwootRole::Agent)]), "a10", t)
        .await;
    fx.login(&profile(2, &[(2, ChatwootRole::Administrator)]), "b2", t)
        .await;
    fx.login(&profile(20, &[(2, ChatwootRole::Agent)]), "b20", t)
        .await;
    fx.login(
        &profile(30, &[(1, ChatwootRole::Agent), (2, ChatwootRole::Agent)]),
        "ab30",
        t,
    )
    .await;
    let members = fx.members();
    let b = admin_scope(2, 2);

    // List: only B's members.
    let page = members.list(&b, None, Limit::default()).await.unwrap();
    let ids: Vec<i64> = page.members.iter().map(|m| m.user_id.get()).collect();
    assert_eq!(ids, vec![2, 20, 30]);

    // Change: A's members are not found, and nothing changes in A.
    for user in [1, 10] {
        let err = members
            .change_role(&b, &change(user, Role::Viewer))
            .await
            .unwrap_err();
        assert_eq!(err, TenancyError::MemberNotFound, "user {user}");
    }
    let err = members
        .change_role(&b, &change(999, Role::Viewer))
        .await
        .unwrap_err();
    assert_eq!(err, TenancyError::MemberNotFound);
    assert_eq!(
        roles(&fx.store.principal(UserId::new(10)).await.unwrap().unwrap()),
        vec![(1, Role::Agent)]
    );

    // A member of both accounts changes only in B.
    members
        .change_role(&b, &change(30, Role::Viewer))
        .await
        .unwrap();
    assert_eq!(
        roles(&fx.store.principal(UserId::new(30)).await.unwrap().unwrap()),
        vec![(1, Role::Agent), (2, Role::Viewer)]
    );

    // The last-admin check counts B's admins only (A's admin does not help).
    let err = members
        .change_role(&b, &change(2, Role::Agent))
        .await
        .unwrap_err();
    assert_eq!(err, TenancyError::LastAdmin);

    // Audit: B sees its own rows only.
    let b_rows = fx.audit(2).await;
    assert!(!b_rows.is_empty());
    let a_rows = fx.audit(1).await;
    let a_ids: Vec<_> = a_rows.iter().map(|r| r.id).collect();
    assert!(b_rows.iter().all(|r| !a_ids.contains(&r.id)));
    assert!(
        b_rows.iter().all(
            |r| r.target.as_deref() != Some("user:1") && r.target.as_deref() != Some("user:10")
        )
    );
    let b_login_actors: Vec<_> = b_rows
        .iter()
        .filter(|r| r.action == "auth.login")
        .map(|r| r.actor.clone())
        .collect();
    assert_eq!(b_login_actors.len(), 3, "logins of users 2, 20 and 30");
    assert!(!b_login_actors.contains(&AuditActor::User(1)));
    assert!(!b_login_actors.contains(&AuditActor::User(10)));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_account_directory_lists_accounts_with_member_counts() {
    let fx = Fixture::new().await;
    let t = now();
    fx.login(
        &profile(
            1,
            &[(5, ChatwootRole::Administrator), (7, ChatwootRole::Agent)],
        ),
        "a",
        t,
    )
    .await;
    fx.login(&profile(2, &[(5, ChatwootRole::Agent)]), "b", t)
        .await;
    fx.login(&profile(3, &[(9, ChatwootRole::Agent)]), "c", t)
        .await;
    let directory = whatpro_db::PgAccountDirectory::new(fx.pool.clone());
    let scope = PlatformScope::for_system_jobs();

    let (page, more) = directory
        .list(&scope, None, Limit::clamped(Some(2)))
        .await
        .unwrap();
    assert!(more);
    let got: Vec<(i64, i64)> = page.iter().map(|a| (a.id.get(), a.members)).collect();
    assert_eq!(got, vec![(5, 2), (7, 1)]);
    assert_eq!(page[0].name, "Account 5");
    assert_eq!(page[0].status, whatpro_iam::AccountStatus::Active);

    let (page, more) = directory
        .list(&scope, Some(AccountId::new(7)), Limit::clamped(Some(2)))
        .await
        .unwrap();
    assert!(!more);
    let got: Vec<(i64, i64)> = page.iter().map(|a| (a.id.get(), a.members)).collect();
    assert_eq!(got, vec![(9, 1)]);
}
