//! Logins: upserts, membership sync, audit rows.

use serde_json::json;
use time::Duration;
use whatpro_db::PgMemberRepository;
use whatpro_iam::{AccountStatus, AuditContext, ChatwootRole, IdentityStore, Role};
use whatpro_kernel::{AccountId, Limit, UserId};
use whatpro_tenancy::{AuditActor, MemberRepository, RoleChange};

use crate::support::{Fixture, admin_scope, hash, membership, now, profile, profile_with, roles};

#[tokio::test(flavor = "multi_thread")]
async fn login_upserts_user_accounts_memberships_session_and_token() {
    let fx = Fixture::new().await;
    let t = now();
    let p = profile(
        10,
        &[(1, ChatwootRole::Administrator), (2, ChatwootRole::Agent)],
    );
    let (sid, principal) = fx.login(&p, "t0", t).await;

    assert_eq!(principal.user.id, UserId::new(10));
    assert_eq!(principal.user.email, "user10@example.com");
    assert!(!principal.user.super_admin);
    assert_eq!(roles(&principal), vec![(1, Role::Admin), (2, Role::Agent)]);
    assert_eq!(principal.memberships[0].account_name, "Account 1");

    let session = (*fx.store.session(sid).await.unwrap().unwrap()).clone();
    assert_eq!(session.user_id, UserId::new(10));
    assert_eq!(session.created_at, t);
    assert_eq!(session.idle_expires_at, t + Duration::days(7));
    assert_eq!(session.absolute_expires_at, t + Duration::days(30));
    assert_eq!(session.user_agent.as_deref(), Some("test-agent/1.0"));
    assert_eq!(
        session.sealed_credential.as_deref(),
        Some("sealed-secret-credential")
    );
    assert!(session.is_live(t));
    assert_eq!(
        fx.store.session_for_refresh(&hash("t0")).await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(
        fx.store.session_for_refresh(&hash("nope")).await.unwrap(),
        None
    );
    assert_eq!(
        fx.store.live_sessions(UserId::new(10), t).await.unwrap(),
        vec![session]
    );
    assert_eq!(
        fx.store
            .principal(UserId::new(10))
            .await
            .unwrap()
            .as_deref(),
        Some(&principal)
    );
    assert_eq!(fx.store.principal(UserId::new(99)).await.unwrap(), None);

    // A second login updates names and keeps one row per thing.
    let mut renamed = p.clone();
    renamed.name = "Renamed".to_owned();
    renamed.accounts[0].account_name = "Acme".to_owned();
    let (_, principal) = fx.login(&renamed, "t1", t).await;
    assert_eq!(principal.user.name, "Renamed");
    assert_eq!(principal.memberships[0].account_name, "Acme");
    assert_eq!(fx.count("SELECT count(*) AS n FROM users").await, 1);
    assert_eq!(fx.count("SELECT count(*) AS n FROM accounts").await, 2);
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM account_members").await,
        2
    );
    assert_eq!(fx.count("SELECT count(*) AS n FROM sessions").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn super_admin_flag_follows_the_login() {
    let fx = Fixture::new().await;
    let mut record =
        crate::support::login_record(&profile(10, &[(1, ChatwootRole::Agent)]), "t0", now());
    record.super_admin = true;
    assert!(
        fx.store
            .record_login(&record)
            .await
            .unwrap()
            .user
            .super_admin
    );
    let principal = fx
        .store
        .sync_memberships(&record.profile, false)
        .await
        .unwrap();
    assert!(!principal.user.super_admin);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hub_override_is_kept_while_the_chatwoot_role_stays_and_dropped_when_it_changes() {
    let fx = Fixture::new().await;
    let t = now();
    fx.login(&profile(1, &[(1, ChatwootRole::Administrator)]), "admin", t)
        .await;
    fx.login(&profile(10, &[(1, ChatwootRole::Agent)]), "a0", t)
        .await;

    let change = RoleChange {
        user_id: UserId::new(10),
        role: Role::Supervisor,
        audit: AuditContext::default(),
    };
    fx.members()
        .change_role(&admin_scope(1, 1), &change)
        .await
        .unwrap();

    let (_, principal) = fx
        .login(&profile(10, &[(1, ChatwootRole::Agent)]), "a1", t)
        .await;
    assert_eq!(
        roles(&principal),
        vec![(1, Role::Supervisor)],
        "the override survives a login"
    );

    let (_, principal) = fx
        .login(&profile(10, &[(1, ChatwootRole::Administrator)]), "a2", t)
        .await;
    assert_eq!(
        roles(&principal),
        vec![(1, Role::Admin)],
        "a new Chatwoot role drops the override"
    );

    let (_, principal) = fx
        .login(&profile(10, &[(1, ChatwootRole::Agent)]), "a3", t)
        .await;
    assert_eq!(
        roles(&principal),
        vec![(1, Role::Agent)],
        "and the default follows Chatwoot again"
    );

    // The same rules apply to sync_memberships.
    fx.members()
        .change_role(
            &admin_scope(1, 1),
            &RoleChange {
                role: Role::Viewer,
                ..change
            },
        )
        .await
        .unwrap();
    let principal = fx
        .store
        .sync_memberships(&profile(10, &[(1, ChatwootRole::Agent)]), false)
        .await
        .unwrap();
    assert_eq!(roles(&principal), vec![(1, Role::Viewer)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_left_account_is_removed_and_a_suspended_one_is_not_usable() {
    let fx = Fixture::new().await;
    let t = now();
    let (_, principal) = fx
        .login(
            &profile(
                10,
                &[(1, ChatwootRole::Agent), (2, ChatwootRole::Administrator)],
            ),
            "t0",
            t,
        )
        .await;
    assert_eq!(roles(&principal), vec![(1, Role::Agent), (2, Role::Admin)]);

    // Left account 2; account 3 is suspended.
    let p = profile_with(
        10,
        vec![
            membership(1, ChatwootRole::Agent, AccountStatus::Active),
            membership(3, ChatwootRole::Agent, AccountStatus::Suspended),
        ],
    );
    let (_, principal) = fx.login(&p, "t1", t).await;
    assert_eq!(roles(&principal), vec![(1, Role::Agent)]);
    assert_eq!(
        *fx.store.principal(UserId::new(10)).await.unwrap().unwrap(),
        principal
    );

    let members = PgMemberRepository::new(fx.pool.clone());
    let in_2 = members
        .list(&admin_scope(2, 1), None, Limit::default())
        .await
        .unwrap();
    assert!(
        in_2.members.is_empty(),
        "the membership of the left account is gone"
    );
    let in_3 = members
        .list(&admin_scope(3, 1), None, Limit::default())
        .await
        .unwrap();
    assert_eq!(
        in_3.members.len(),
        1,
        "the suspended account keeps its member row"
    );

    // The account comes back to life.
    let p = profile_with(
        10,
        vec![membership(3, ChatwootRole::Agent, AccountStatus::Active)],
    );
    let principal = fx.store.sync_memberships(&p, false).await.unwrap();
    assert_eq!(roles(&principal), vec![(3, Role::Agent)]);
    assert_eq!(
        principal.membership(AccountId::new(3)).map(|m| m.role),
        Some(Role::Agent)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn login_is_audited_in_every_active_account_without_secrets() {
    let fx = Fixture::new().await;
    let t = now();
    let p = profile_with(
        10,
        vec![
            membership(1, ChatwootRole::Agent, AccountStatus::Active),
            membership(2, ChatwootRole::Administrator, AccountStatus::Active),
            membership(3, ChatwootRole::Agent, AccountStatus::Suspended),
        ],
    );
    let (sid, _) = fx.login(&p, "t0", t).await;
    for account in [1, 2] {
        let rows = fx.audit(account).await;
        assert_eq!(rows.len(), 1, "account {account}");
        let row = &rows[0];
        assert_eq!(row.action, "auth.login");
        assert_eq!(row.actor, AuditActor::User(10));
        assert_eq!(
            row.target.as_deref(),
            Some(format!("session:{sid}").as_str())
        );
        assert_eq!(
            row.metadata,
            json!({"user_agent": "test-agent/1.0", "ip": "203.0.113.9"})
        );
        assert_eq!(row.request_id.as_deref(), Some("req-test"));
        assert_eq!(row.created_at, t);
        let text = row.metadata.to_string();
        assert!(!text.contains("sealed") && !text.contains("hash"), "{text}");
    }
    assert!(fx.audit(3).await.is_empty());
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM audit_log WHERE account_id IS NULL")
            .await,
        0
    );

    // A user without any account gets one platform-level row.
    fx.login(&profile(11, &[]), "t1", t).await;
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM audit_log WHERE account_id IS NULL AND action = 'auth.login' AND actor_id = '11'").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn login_failures_are_audited_to_the_users_accounts_or_the_platform() {
    let fx = Fixture::new().await;
    fx.login(
        &profile(10, &[(1, ChatwootRole::Agent), (2, ChatwootRole::Agent)]),
        "t0",
        now(),
    )
    .await;
    let audit = crate::support::audit_context();

    fx.store
        .record_login_failure(Some(UserId::new(10)), "not_a_member", &audit)
        .await
        .unwrap();
    for account in [1, 2] {
        let rows = fx.audit(account).await;
        let failed: Vec<_> = rows
            .iter()
            .filter(|r| r.action == "auth.login_failed")
            .collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].metadata["reason"], "not_a_member");
        assert_eq!(failed[0].actor, AuditActor::User(10));
    }

    fx.store
        .record_login_failure(None, "chatwoot_credentials_invalid", &audit)
        .await
        .unwrap();
    fx.store
        .record_login_failure(Some(UserId::new(77)), "not_a_member", &audit)
        .await
        .unwrap();
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM audit_log WHERE account_id IS NULL AND action = 'auth.login_failed'").await,
        2
    );
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM audit_log WHERE account_id IS NULL AND metadata->>'reason' = 'chatwoot_credentials_invalid' AND actor_id IS NULL").await,
        1
    );
}
