//! Refresh-token rotation: happy path, grace replays, reuse, expiry, races.

use std::sync::Arc;

use time::Duration;
use whatpro_iam::{ChatwootRole, IdentityStore, RotateOutcome, SessionRevocation};
use whatpro_kernel::UserId;
use whatpro_tenancy::AuditActor;

use crate::support::{Fixture, audit_context, hash, login_record, now, profile, rotation};

#[tokio::test(flavor = "multi_thread")]
async fn rotation_uses_the_token_stores_the_successor_and_extends_the_session() {
    let fx = Fixture::new().await;
    let t = now();
    let (sid, _) = fx
        .login(&profile(10, &[(1, ChatwootRole::Agent)]), "t0", t)
        .await;

    let t1 = t + Duration::minutes(10);
    let RotateOutcome::Rotated(session) = fx
        .store
        .rotate_refresh(&rotation("t0", "t1", t1))
        .await
        .unwrap()
    else {
        panic!("expected Rotated");
    };
    assert_eq!(session.id, sid);
    assert_eq!(session.last_seen_at, t1);
    assert_eq!(session.idle_expires_at, t1 + Duration::days(7));
    assert_eq!(session.absolute_expires_at, t + Duration::days(30));
    assert_eq!(
        fx.store.session(sid).await.unwrap().as_deref(),
        Some(&session)
    );
    assert_eq!(
        fx.store
            .session_for_refresh(&hash("t1"))
            .await
            .unwrap()
            .map(|s| s.id),
        Some(sid)
    );

    // The successor rotates in turn.
    let t2 = t1 + Duration::minutes(10);
    assert!(matches!(
        fx.store
            .rotate_refresh(&rotation("t1", "t2", t2))
            .await
            .unwrap(),
        RotateOutcome::Rotated(_)
    ));
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM refresh_tokens").await,
        3
    );
    assert_eq!(fx.count("SELECT count(*) AS n FROM refresh_tokens WHERE used_at IS NOT NULL AND successor_hash IS NOT NULL").await, 2);
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM refresh_tokens WHERE parent_id IS NOT NULL")
            .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn expiries_are_capped_by_the_absolute_expiry() {
    let fx = Fixture::new().await;
    let t = now();
    let mut record = login_record(&profile(10, &[(1, ChatwootRole::Agent)]), "t0", t);
    record.absolute_expires_at = t + Duration::days(1);
    record.idle_expires_at = t + Duration::hours(20);
    fx.store.record_login(&record).await.unwrap();

    let t1 = t + Duration::hours(12);
    let RotateOutcome::Rotated(session) = fx
        .store
        .rotate_refresh(&rotation("t0", "t1", t1))
        .await
        .unwrap()
    else {
        panic!("expected Rotated");
    };
    assert_eq!(session.idle_expires_at, t + Duration::days(1));
    let capped = fx
        .count(&format!(
            "SELECT count(*) AS n FROM refresh_tokens WHERE token_hash = '\\x{}'::bytea AND expires_at = '{}'::timestamptz",
            hex(&hash("t1")),
            (t + Duration::days(1)).format(&time::format_description::well_known::Rfc3339).unwrap()
        ))
        .await;
    assert_eq!(capped, 1, "the successor expires with the session");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeat_within_the_grace_window_replays_the_same_successor() {
    let fx = Fixture::new().await;
    let t = now();
    let (sid, _) = fx
        .login(&profile(10, &[(1, ChatwootRole::Agent)]), "t0", t)
        .await;
    assert!(matches!(
        fx.store
            .rotate_refresh(&rotation("t0", "t1", t))
            .await
            .unwrap(),
        RotateOutcome::Rotated(_)
    ));

    let again = fx
        .store
        .rotate_refresh(&rotation("t0", "t1", t + Duration::seconds(4)))
        .await
        .unwrap();
    let RotateOutcome::Replayed(session) = again else {
        panic!("expected Replayed, got {again:?}")
    };
    assert_eq!(session.id, sid);
    assert!(session.revoked_at.is_none());
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM refresh_tokens").await,
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeat_with_another_successor_or_after_the_successor_was_used_is_a_reuse() {
    let fx = Fixture::new().await;
    let t = now();
    let (sid, _) = fx
        .login(&profile(10, &[(1, ChatwootRole::Agent)]), "t0", t)
        .await;
    assert!(matches!(
        fx.store
            .rotate_refresh(&rotation("t0", "t1", t))
            .await
            .unwrap(),
        RotateOutcome::Rotated(_)
    ));
    assert!(matches!(
        fx.store
            .rotate_refresh(&rotation("t1", "t2", t))
            .await
            .unwrap(),
        RotateOutcome::Rotated(_)
    ));

    // t0's successor t1 is used: even within the grace window, t0 is now a reuse.
    let outcome = fx
        .store
        .rotate_refresh(&rotation("t0", "t1", t + Duration::seconds(1)))
        .await
        .unwrap();
    assert_eq!(outcome, RotateOutcome::Reused(sid));

    let fx = Fixture::new().await;
    let (sid, _) = fx
        .login(&profile(10, &[(1, ChatwootRole::Agent)]), "t0", t)
        .await;
    assert!(matches!(
        fx.store
            .rotate_refresh(&rotation("t0", "t1", t))
            .await
            .unwrap(),
        RotateOutcome::Rotated(_)
    ));
    let outcome = fx
        .store
        .rotate_refresh(&rotation("t0", "other", t + Duration::seconds(1)))
        .await
        .unwrap();
    assert_eq!(outcome, RotateOutcome::Reused(sid));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reuse_after_the_grace_window_revokes_the_session_and_audits() {
    let fx = Fixture::new().await;
    let t = now();
    let (sid, _) = fx
        .login(
            &profile(10, &[(1, ChatwootRole::Agent), (2, ChatwootRole::Agent)]),
            "t0",
            t,
        )
        .await;
    assert!(matches!(
        fx.store
            .rotate_refresh(&rotation("t0", "t1", t))
            .await
            .unwrap(),
        RotateOutcome::Rotated(_)
    ));

    let late = t + Duration::seconds(6);
    assert_eq!(
        fx.store
            .rotate_refresh(&rotation("t0", "t1", late))
            .await
            .unwrap(),
        RotateOutcome::Reused(sid)
    );

    let session = fx.store.session(sid).await.unwrap().unwrap();
    assert_eq!(session.revoked_at, Some(late));
    assert_eq!(
        session.revoked_reason.as_deref(),
        Some(SessionRevocation::RefreshReused.as_str())
    );
    assert!(
        fx.store
            .live_sessions(UserId::new(10), late)
            .await
            .unwrap()
            .is_empty()
    );
    for account in [1, 2] {
        let rows = fx.audit(account).await;
        let reused: Vec<_> = rows
            .iter()
            .filter(|r| r.action == "auth.refresh_reused")
            .collect();
        assert_eq!(reused.len(), 1, "account {account}");
        assert_eq!(reused[0].actor, AuditActor::User(10));
        assert_eq!(
            reused[0].target.as_deref(),
            Some(format!("session:{sid}").as_str())
        );
    }

    // The legitimate successor is dead with its session.
    assert_eq!(
        fx.store
            .rotate_refresh(&rotation("t1", "t2", late))
            .await
            .unwrap(),
        RotateOutcome::SessionEnded
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_expired_and_ended_are_told_apart() {
    let fx = Fixture::new().await;
    let t = now();
    assert_eq!(
        fx.store
            .rotate_refresh(&rotation("nope", "x", t))
            .await
            .unwrap(),
        RotateOutcome::Unknown
    );

    // Expired token, live session.
    let mut record = login_record(&profile(10, &[(1, ChatwootRole::Agent)]), "short", t);
    record.refresh.expires_at = t + Duration::hours(1);
    fx.store.record_login(&record).await.unwrap();
    let outcome = fx
        .store
        .rotate_refresh(&rotation("short", "x1", t + Duration::hours(2)))
        .await
        .unwrap();
    assert_eq!(outcome, RotateOutcome::Expired);

    // Revoked session.
    let (sid, _) = fx
        .login(&profile(10, &[(1, ChatwootRole::Agent)]), "revoked", t)
        .await;
    assert!(
        fx.store
            .revoke_session(
                UserId::new(10),
                sid,
                SessionRevocation::Logout,
                &audit_context(),
                t
            )
            .await
            .unwrap()
    );
    assert_eq!(
        fx.store
            .rotate_refresh(&rotation("revoked", "x2", t))
            .await
            .unwrap(),
        RotateOutcome::SessionEnded
    );

    // Idle expiry passed (the token itself would still be valid).
    let mut record = login_record(&profile(10, &[(1, ChatwootRole::Agent)]), "idle", t);
    record.idle_expires_at = t + Duration::days(1);
    record.refresh.expires_at = t + Duration::days(30);
    fx.store.record_login(&record).await.unwrap();
    let outcome = fx
        .store
        .rotate_refresh(&rotation("idle", "x3", t + Duration::days(2)))
        .await
        .unwrap();
    assert_eq!(outcome, RotateOutcome::SessionEnded);
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM refresh_tokens WHERE used_at IS NOT NULL")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_parallel_rotations_of_one_token_make_exactly_one_successor() {
    let fx = Fixture::new().await;
    let t = now();
    let (sid, _) = fx
        .login(&profile(10, &[(1, ChatwootRole::Agent)]), "t0", t)
        .await;
    let store = Arc::new(fx.store.clone());

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let store = Arc::clone(&store);
        tasks.spawn(async move { store.rotate_refresh(&rotation("t0", "t1", t)).await });
    }
    let mut rotated = 0;
    let mut replayed = 0;
    while let Some(outcome) = tasks.join_next().await {
        match outcome.unwrap().unwrap() {
            RotateOutcome::Rotated(s) => {
                assert_eq!(s.id, sid);
                rotated += 1;
            }
            RotateOutcome::Replayed(s) => {
                assert_eq!(s.id, sid);
                replayed += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((rotated, replayed), (1, 49));
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM refresh_tokens").await,
        2
    );
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM refresh_tokens WHERE parent_id IS NOT NULL")
            .await,
        1
    );
    assert!(
        fx.store
            .session(sid)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
}
