//! The identity cache: served from memory, invalidated locally at once and on other instances
//! through LISTEN/NOTIFY within a second.

use std::time::{Duration as StdDuration, Instant};

use diesel_async::RunQueryDsl;
use whatpro_db::{CacheSettings, CachedIdentityStore, PgIdentityStore, PgMemberRepository};
use whatpro_iam::{AuditContext, ChatwootRole, IdentityStore, Role, SessionId, SessionRevocation};
use whatpro_kernel::UserId;
use whatpro_tenancy::{MemberRepository, RoleChange};

use crate::support::{Fixture, admin_scope, audit_context, now, profile, roles};

const POLL: StdDuration = StdDuration::from_millis(20);

/// One "instance": its own pool, cache and listener on the shared database.
async fn instance(fx: &Fixture) -> CachedIdentityStore {
    let store = CachedIdentityStore::new(PgIdentityStore::new(fx.db.pool()));
    let _listener = store.spawn_listener(fx.db.url());
    wait_until(
        "the listener connects",
        StdDuration::from_secs(20),
        || async { store.is_listening() },
    )
    .await;
    store
}

/// Polls `check` every 20 ms; returns how long it took, panics after `limit`.
async fn wait_until<F, Fut>(what: &str, limit: StdDuration, check: F) -> StdDuration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(POLL).await;
    }
}

/// Reads the session through `store` until it is cached (a notification for the same key
/// still in flight when a load starts keeps that load out of the cache, by design).
async fn cache_session(store: &CachedIdentityStore, sid: SessionId) {
    wait_until(
        "the session is cached",
        StdDuration::from_secs(5),
        || async {
            store.session(sid).await.unwrap().unwrap();
            store.cached_entries().0 == 1
        },
    )
    .await;
}

/// Changes the session row behind every cache's back (no notification).
async fn touch_session_silently(fx: &Fixture, sid: SessionId) {
    let mut conn = fx.pool.get().await.unwrap();
    diesel::sql_query(format!(
        "UPDATE sessions SET user_agent = 'changed' WHERE id = '{sid}'"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_and_principals_are_served_from_memory() {
    let fx = Fixture::new().await;
    let store = CachedIdentityStore::new(PgIdentityStore::new(fx.pool.clone()));
    let (sid, _) = fx
        .login(&profile(10, &[(1, ChatwootRole::Agent)]), "t0", now())
        .await;

    let first = store.session(sid).await.unwrap().unwrap();
    store.principal(UserId::new(10)).await.unwrap().unwrap();
    assert_eq!(store.cached_entries(), (1, 1));
    touch_session_silently(&fx, sid).await;
    assert_eq!(
        store.session(sid).await.unwrap().unwrap(),
        first,
        "served from the cache"
    );

    // Unknown ids are not cached.
    assert_eq!(
        store
            .session(SessionId::from_uuid(uuid::Uuid::now_v7()))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.principal(UserId::new(99)).await.unwrap(), None);
    assert_eq!(store.cached_entries(), (1, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn entries_expire_and_the_size_is_bounded() {
    let fx = Fixture::new().await;
    let settings = CacheSettings {
        capacity: 16,
        ttl: StdDuration::from_millis(300),
    };
    let store = CachedIdentityStore::with_settings(PgIdentityStore::new(fx.pool.clone()), settings);
    let t = now();
    let mut sessions = Vec::new();
    for i in 0..40 {
        let (sid, _) = fx
            .login(
                &profile(10, &[(1, ChatwootRole::Agent)]),
                &format!("t{i}"),
                t,
            )
            .await;
        sessions.push(sid);
    }
    for sid in &sessions {
        store.session(*sid).await.unwrap().unwrap();
    }
    assert!(
        store.cached_entries().0 <= 16,
        "{:?}",
        store.cached_entries()
    );

    let sid = sessions[0];
    store.session(sid).await.unwrap().unwrap();
    touch_session_silently(&fx, sid).await;
    tokio::time::sleep(StdDuration::from_millis(400)).await;
    let fresh = store.session(sid).await.unwrap().unwrap();
    assert_eq!(
        fresh.user_agent.as_deref(),
        Some("changed"),
        "expired entries are reloaded"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn local_mutations_take_effect_at_once() {
    let fx = Fixture::new().await;
    let store = CachedIdentityStore::new(PgIdentityStore::new(fx.pool.clone()));
    let t = now();
    let p = profile(10, &[(1, ChatwootRole::Agent)]);
    let record = crate::support::login_record(&p, "t0", t);
    store.record_login(&record).await.unwrap();
    let sid = record.session_id;
    let (other, _) = fx.login(&p, "t1", t).await;

    assert!(store.session(sid).await.unwrap().unwrap().is_live(t));
    assert!(store.session(other).await.unwrap().unwrap().is_live(t));
    store
        .revoke_other_sessions(UserId::new(10), sid, &audit_context(), t)
        .await
        .unwrap();
    assert!(!store.session(other).await.unwrap().unwrap().is_live(t));
    store
        .revoke_session(
            UserId::new(10),
            sid,
            SessionRevocation::Logout,
            &audit_context(),
            t,
        )
        .await
        .unwrap();
    assert!(!store.session(sid).await.unwrap().unwrap().is_live(t));

    // Memberships: sync and a role change through a repository sharing the invalidator.
    assert_eq!(
        roles(&store.principal(UserId::new(10)).await.unwrap().unwrap()),
        vec![(1, Role::Agent)]
    );
    store
        .sync_memberships(&profile(10, &[(1, ChatwootRole::Administrator)]), false)
        .await
        .unwrap();
    assert_eq!(
        roles(&store.principal(UserId::new(10)).await.unwrap().unwrap()),
        vec![(1, Role::Admin)]
    );
    fx.login(&profile(2, &[(1, ChatwootRole::Administrator)]), "t2", t)
        .await;
    let members = PgMemberRepository::new(fx.pool.clone()).with_invalidator(store.invalidator());
    let change = RoleChange {
        user_id: UserId::new(10),
        role: Role::Viewer,
        audit: AuditContext::default(),
    };
    members
        .change_role(&admin_scope(1, 2), &change)
        .await
        .unwrap();
    assert_eq!(
        roles(&store.principal(UserId::new(10)).await.unwrap().unwrap()),
        vec![(1, Role::Viewer)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_on_instance_a_reaches_instance_b_within_a_second() {
    let fx = Fixture::new().await;
    let a = instance(&fx).await;
    let b = instance(&fx).await;
    let t = now();
    let record = crate::support::login_record(&profile(10, &[(1, ChatwootRole::Agent)]), "t0", t);
    a.record_login(&record).await.unwrap();
    let sid = record.session_id;

    assert!(b.session(sid).await.unwrap().unwrap().is_live(t));
    cache_session(&b, sid).await;

    assert!(
        a.revoke_session(
            UserId::new(10),
            sid,
            SessionRevocation::Logout,
            &audit_context(),
            t
        )
        .await
        .unwrap()
    );
    assert!(
        a.session(sid).await.unwrap().unwrap().revoked_at.is_some(),
        "at once on A"
    );
    let took = wait_until(
        "B sees the revocation",
        StdDuration::from_secs(5),
        || async { b.session(sid).await.unwrap().unwrap().revoked_at.is_some() },
    )
    .await;
    assert!(took < StdDuration::from_secs(1), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_change_reaches_every_instance_within_a_second() {
    let fx = Fixture::new().await;
    let a = instance(&fx).await;
    let b = instance(&fx).await;
    let t = now();
    fx.login(&profile(1, &[(1, ChatwootRole::Administrator)]), "admin", t)
        .await;
    fx.login(&profile(10, &[(1, ChatwootRole::Agent)]), "agent", t)
        .await;
    let user = UserId::new(10);
    assert_eq!(
        roles(&a.principal(user).await.unwrap().unwrap()),
        vec![(1, Role::Agent)]
    );
    assert_eq!(
        roles(&b.principal(user).await.unwrap().unwrap()),
        vec![(1, Role::Agent)]
    );
    wait_until(
        "B caches the principal",
        StdDuration::from_secs(5),
        || async {
            b.principal(user).await.unwrap().unwrap();
            b.cached_entries().1 == 1
        },
    )
    .await;

    // The repository of instance A shares A's invalidator.
    let members = PgMemberRepository::new(fx.db.pool()).with_invalidator(a.invalidator());
    let change = RoleChange {
        user_id: user,
        role: Role::Viewer,
        audit: AuditContext::default(),
    };
    members
        .change_role(&admin_scope(1, 1), &change)
        .await
        .unwrap();

    assert_eq!(
        roles(&a.principal(user).await.unwrap().unwrap()),
        vec![(1, Role::Viewer)],
        "at once on A"
    );
    let took = wait_until("B sees the new role", StdDuration::from_secs(5), || async {
        roles(&b.principal(user).await.unwrap().unwrap()) == vec![(1, Role::Viewer)]
    })
    .await;
    assert!(took < StdDuration::from_secs(1), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_listener_connection_empties_the_cache_and_reconnects() {
    let fx = Fixture::new().await;
    let a = instance(&fx).await;
    let b = instance(&fx).await;
    let t = now();
    let record = crate::support::login_record(&profile(10, &[(1, ChatwootRole::Agent)]), "t0", t);
    a.record_login(&record).await.unwrap();
    let sid = record.session_id;
    cache_session(&b, sid).await;

    // Kill both listeners' connections.
    let (a0, b0) = (a.listener_connections(), b.listener_connections());
    let mut conn = fx.pool.get().await.unwrap();
    diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
          WHERE datname = current_database() AND application_name = '{}'",
        whatpro_db::LISTENER_APPLICATION_NAME
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    drop(conn);

    wait_until("B reconnects", StdDuration::from_secs(20), || async {
        b.listener_connections() > b0
    })
    .await;
    wait_until("A reconnects", StdDuration::from_secs(20), || async {
        a.listener_connections() > a0
    })
    .await;
    wait_until("B listens", StdDuration::from_secs(20), || async {
        b.is_listening()
    })
    .await;
    assert_eq!(
        b.cached_entries(),
        (0, 0),
        "a reconnection starts from an empty cache"
    );
    assert!(b.session(sid).await.unwrap().unwrap().is_live(t));
    cache_session(&b, sid).await;
    assert!(
        a.revoke_session(
            UserId::new(10),
            sid,
            SessionRevocation::Revoked,
            &audit_context(),
            t
        )
        .await
        .unwrap()
    );
    let took = wait_until(
        "B sees the revocation after reconnecting",
        StdDuration::from_secs(5),
        || async { b.session(sid).await.unwrap().unwrap().revoked_at.is_some() },
    )
    .await;
    assert!(took < StdDuration::from_secs(1), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_listening_connection_the_cache_is_bypassed() {
    let fx = Fixture::new().await;
    let store = CachedIdentityStore::new(PgIdentityStore::new(fx.pool.clone()));
    // Nothing listens on port 1: the listener keeps retrying.
    let listener = store.spawn_listener("postgres://nobody@127.0.0.1:1/none");
    let (sid, _) = fx
        .login(&profile(10, &[(1, ChatwootRole::Agent)]), "t0", now())
        .await;

    store.session(sid).await.unwrap().unwrap();
    store.principal(UserId::new(10)).await.unwrap().unwrap();
    assert_eq!(store.cached_entries(), (0, 0));
    touch_session_silently(&fx, sid).await;
    assert_eq!(
        store
            .session(sid)
            .await
            .unwrap()
            .unwrap()
            .user_agent
            .as_deref(),
        Some("changed")
    );
    assert!(!store.is_listening());
    assert_eq!(store.listener_connections(), 0);

    // Stopping the listener leaves the cache bypassed too.
    listener.abort();
    let _ = listener.await;
    store.session(sid).await.unwrap().unwrap();
    assert_eq!(store.cached_entries(), (0, 0));
}
