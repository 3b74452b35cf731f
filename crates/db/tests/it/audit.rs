//! The audit log: keyset pages newest first, action filter, tenant isolation.

use time::Duration;
use whatpro_db::PgAuditLog;
use whatpro_iam::{ChatwootRole, IdentityStore, SessionRevocation};
use whatpro_kernel::{Limit, UserId};
use whatpro_tenancy::{AuditLog, AuditQuery};

use crate::support::{Fixture, admin_scope, audit_context, now, profile};

#[tokio::test(flavor = "multi_thread")]
async fn audit_pages_are_newest_first_and_filterable() {
    let fx = Fixture::new().await;
    let t = now();
    let p = profile(10, &[(1, ChatwootRole::Agent)]);
    let mut sessions = Vec::new();
    for i in 0..3 {
        let (sid, _) = fx
            .login(&p, &format!("t{i}"), t + Duration::seconds(i))
            .await;
        sessions.push(sid);
    }
    fx.store
        .revoke_session(
            UserId::new(10),
            sessions[0],
            SessionRevocation::Logout,
            &audit_context(),
            t,
        )
        .await
        .unwrap();
    let log = PgAuditLog::new(fx.pool.clone());
    let scope = admin_scope(1, 10);

    let query = AuditQuery {
        action: None,
        limit: Limit::clamped(Some(3)),
        before: None,
    };
    let (first, more) = log.list(&scope, &query).await.unwrap();
    assert!(more);
    let actions: Vec<&str> = first.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, vec!["auth.logout", "auth.login", "auth.login"]);
    assert!(first.windows(2).all(|w| w[0].id > w[1].id));

    let query = AuditQuery {
        action: None,
        limit: Limit::clamped(Some(3)),
        before: first.last().map(|e| e.id),
    };
    let (second, more) = log.list(&scope, &query).await.unwrap();
    assert!(!more);
    assert_eq!(second.len(), 1);
    assert_eq!(
        second[0].target.as_deref(),
        Some(format!("session:{}", sessions[0]).as_str())
    );

    let query = AuditQuery {
        action: Some("auth.login".to_owned()),
        limit: Limit::default(),
        before: None,
    };
    let (logins, more) = log.list(&scope, &query).await.unwrap();
    assert!(!more);
    assert_eq!(logins.len(), 3);
    assert!(logins.iter().all(|e| e.action == "auth.login"));

    // Another account's scope sees none of it.
    fx.login(
        &profile(20, &[(2, ChatwootRole::Administrator)]),
        "other",
        t,
    )
    .await;
    let query = AuditQuery {
        action: None,
        limit: Limit::default(),
        before: None,
    };
    let (other, _) = log.list(&admin_scope(2, 20), &query).await.unwrap();
    assert_eq!(other.len(), 1);
    assert!(
        other
            .iter()
            .all(|e| e.actor == whatpro_tenancy::AuditActor::User(20))
    );
    // Even with a cursor taken from account 1.
    let query = AuditQuery {
        action: None,
        limit: Limit::default(),
        before: Some(uuid::Uuid::max()),
    };
    let (other, _) = log.list(&admin_scope(2, 20), &query).await.unwrap();
    assert_eq!(other.len(), 1);
}
