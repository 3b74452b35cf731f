//! Session revocation and listing: only the user's own live sessions.

use serde_json::json;
use time::Duration;
use whatpro_iam::{ChatwootRole, IdentityStore, SessionId, SessionRevocation};
use whatpro_kernel::UserId;

use crate::support::{Fixture, audit_context, now, profile};

#[tokio::test(flavor = "multi_thread")]
async fn a_user_revokes_only_their_own_live_sessions() {
    let fx = Fixture::new().await;
    let t = now();
    let (mine, _) = fx
        .login(&profile(10, &[(1, ChatwootRole::Agent)]), "a", t)
        .await;
    let (theirs, _) = fx
        .login(&profile(20, &[(1, ChatwootRole::Agent)]), "b", t)
        .await;
    let audit = audit_context();
    let me = UserId::new(10);

    assert!(
        !fx.store
            .revoke_session(me, theirs, SessionRevocation::Revoked, &audit, t)
            .await
            .unwrap()
    );
    assert!(fx.store.session(theirs).await.unwrap().unwrap().is_live(t));
    assert!(
        !fx.store
            .revoke_session(
                me,
                SessionId::from_uuid(uuid::Uuid::now_v7()),
                SessionRevocation::Revoked,
                &audit,
                t
            )
            .await
            .unwrap()
    );

    assert!(
        fx.store
            .revoke_session(me, mine, SessionRevocation::Logout, &audit, t)
            .await
            .unwrap()
    );
    let session = fx.store.session(mine).await.unwrap().unwrap();
    assert_eq!(session.revoked_at, Some(t));
    assert_eq!(session.revoked_reason.as_deref(), Some("logout"));
    assert!(
        !fx.store
            .revoke_session(me, mine, SessionRevocation::Logout, &audit, t)
            .await
            .unwrap(),
        "already revoked"
    );

    let rows = fx.audit(1).await;
    let logout: Vec<_> = rows.iter().filter(|r| r.action == "auth.logout").collect();
    assert_eq!(logout.len(), 1);
    assert_eq!(logout[0].metadata, json!({"reason": "logout"}));
    assert_eq!(
        logout[0].target.as_deref(),
        Some(format!("session:{mine}").as_str())
    );
    assert!(
        rows.iter().all(|r| r.action != "session.revoked"),
        "failed attempts write nothing"
    );

    // Other reasons are `session.revoked`; an expired session is not live any more.
    let (other, _) = fx
        .login(&profile(10, &[(1, ChatwootRole::Agent)]), "c", t)
        .await;
    assert!(
        !fx.store
            .revoke_session(
                me,
                other,
                SessionRevocation::Revoked,
                &audit,
                t + Duration::days(8)
            )
            .await
            .unwrap()
    );
    assert!(
        fx.store
            .revoke_session(me, other, SessionRevocation::ChatwootRejected, &audit, t)
            .await
            .unwrap()
    );
    let rows = fx.audit(1).await;
    let revoked: Vec<_> = rows
        .iter()
        .filter(|r| r.action == "session.revoked")
        .collect();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].metadata, json!({"reason": "chatwoot_rejected"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_other_sessions_keeps_the_current_one_and_other_users_sessions() {
    let fx = Fixture::new().await;
    let t = now();
    let p = profile(10, &[(1, ChatwootRole::Agent)]);
    let (keep, _) = fx.login(&p, "a", t).await;
    let (s2, _) = fx.login(&p, "b", t).await;
    let (s3, _) = fx.login(&p, "c", t).await;
    let (theirs, _) = fx
        .login(&profile(20, &[(1, ChatwootRole::Agent)]), "d", t)
        .await;

    let n = fx
        .store
        .revoke_other_sessions(UserId::new(10), keep, &audit_context(), t)
        .await
        .unwrap();
    assert_eq!(n, 2);
    let live: Vec<_> = fx
        .store
        .live_sessions(UserId::new(10), t)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(live, vec![keep]);
    assert!(fx.store.session(theirs).await.unwrap().unwrap().is_live(t));
    for sid in [s2, s3] {
        assert_eq!(
            fx.store
                .session(sid)
                .await
                .unwrap()
                .unwrap()
                .revoked_reason
                .as_deref(),
            Some("revoked_others")
        );
    }
    let rows = fx.audit(1).await;
    let revoked: Vec<_> = rows
        .iter()
        .filter(|r| r.action == "session.revoked")
        .collect();
    assert_eq!(revoked.len(), 2);
    assert!(
        revoked
            .iter()
            .all(|r| r.metadata == json!({"reason": "revoked_others"}))
    );

    assert_eq!(
        fx.store
            .revoke_other_sessions(UserId::new(10), keep, &audit_context(), t)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn live_sessions_are_newest_first_and_exclude_ended_ones() {
    let fx = Fixture::new().await;
    let t = now();
    let p = profile(10, &[(1, ChatwootRole::Agent)]);
    let (old, _) = fx.login(&p, "a", t).await;
    let (mid, _) = fx.login(&p, "b", t + Duration::minutes(1)).await;
    let (new, _) = fx.login(&p, "c", t + Duration::minutes(2)).await;
    let (gone, _) = fx.login(&p, "d", t + Duration::minutes(3)).await;
    fx.store
        .revoke_session(
            UserId::new(10),
            gone,
            SessionRevocation::Logout,
            &audit_context(),
            t,
        )
        .await
        .unwrap();

    let at = t + Duration::minutes(5);
    let live: Vec<_> = fx
        .store
        .live_sessions(UserId::new(10), at)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(live, vec![new, mid, old]);
    // Past the idle expiry of the first one only.
    let later = t + Duration::days(7) + Duration::seconds(30);
    let live: Vec<_> = fx
        .store
        .live_sessions(UserId::new(10), later)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(live, vec![new, mid]);
}
