//! API keys and instance tokens: storage, audit rows, two-tenant isolation, and the cache kept
//! coherent across instances.

use std::time::{Duration as StdDuration, Instant};

use time::Duration;
use uuid::Uuid;
use whatpro_db::{CachedCredentialStore, CachedIdentityStore, PgCredentialStore, PgIdentityStore};
use whatpro_iam::{
    Actor, ApiKeyId, ApiKeyRecord, ChatwootRole, CredentialStore, InstanceTokenRecord, KeyChange,
    KeyDenial, NewApiKey, Role, Scope, ScopeSet, TenantScope,
};
use whatpro_kernel::{AccountId, Limit, UserId};
use whatpro_tenancy::AuditActor;

use crate::support::{Fixture, admin_scope, audit_context, now, profile};

fn key(account: i64, creator: i64, prefix: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        id: ApiKeyId::from_uuid(Uuid::now_v7()),
        account_id: AccountId::new(account),
        prefix: prefix.to_owned(),
        secret_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt${prefix}"),
        name: format!("key {prefix}"),
        scopes: [Scope::MembersRead, Scope::ChatWrite].into_iter().collect(),
        created_by: UserId::new(creator),
        created_at: now(),
        last_used_at: None,
        expires_at: Some(now() + Duration::days(30)),
        revoked_at: None,
        rotated_at: None,
    }
}

fn new_key(record: &ApiKeyRecord) -> NewApiKey {
    NewApiKey {
        record: record.clone(),
        actor: Actor::User {
            user_id: record.created_by,
            session_id: whatpro_iam::SessionId::from_uuid(Uuid::nil()),
        },
        audit: audit_context(),
    }
}

fn token(account: i64, user: i64) -> InstanceTokenRecord {
    InstanceTokenRecord {
        token_id: Uuid::now_v7(),
        account_id: AccountId::new(account),
        user_id: UserId::new(user),
        origin: "https://hub.example".to_owned(),
        scopes: ScopeSet::for_role(Role::Agent),
        created_at: now(),
        expires_at: now() + Duration::minutes(15),
        revoked_at: None,
    }
}

/// Two tenants: user 1 admin of account 1, user 2 admin of account 2.
async fn tenants(fx: &Fixture) {
    fx.login(&profile(1, &[(1, ChatwootRole::Administrator)]), "a", now())
        .await;
    fx.login(&profile(2, &[(2, ChatwootRole::Administrator)]), "b", now())
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_stored_found_by_prefix_listed_per_account_and_audited() {
    let fx = Fixture::new().await;
    tenants(&fx).await;
    let store = PgCredentialStore::new(fx.pool.clone());
    let mine = key(1, 1, "aaaaaaaaaaaaaaaa");
    assert!(store.create_api_key(&new_key(&mine)).await.unwrap());
    // The same prefix again: refused without a row or an audit row.
    let clash = ApiKeyRecord {
        id: ApiKeyId::from_uuid(Uuid::now_v7()),
        ..key(1, 1, "aaaaaaaaaaaaaaaa")
    };
    assert!(!store.create_api_key(&new_key(&clash)).await.unwrap());
    for i in 0..3 {
        let other = key(1, 1, &format!("bbbbbbbbbbbbbbb{i}"));
        assert!(store.create_api_key(&new_key(&other)).await.unwrap());
    }
    let theirs = key(2, 2, "cccccccccccccccc");
    assert!(store.create_api_key(&new_key(&theirs)).await.unwrap());

    let found = store
        .api_key_by_prefix("aaaaaaaaaaaaaaaa")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, mine);
    assert_eq!(store.api_key(mine.id).await.unwrap().unwrap(), mine);
    assert!(store.api_key_by_prefix("nope").await.unwrap().is_none());

    // Keyset pages, account 1 only.
    let scope = admin_scope(1, 1);
    let first = store
        .list_api_keys(&scope, None, Limit::clamped(Some(3)))
        .await
        .unwrap();
    assert_eq!(first.keys.len(), 3);
    let rest = store
        .list_api_keys(&scope, first.next_after, Limit::clamped(Some(3)))
        .await
        .unwrap();
    assert_eq!(rest.keys.len(), 1);
    assert_eq!(rest.next_after, None);
    let all: Vec<_> = first.keys.iter().chain(&rest.keys).collect();
    assert!(all.iter().all(|k| k.account_id == AccountId::new(1)));
    assert!(!all.iter().any(|k| k.id == theirs.id));

    let created = fx.audit(1).await;
    let created: Vec<_> = created
        .iter()
        .filter(|e| e.action == "api_key.created")
        .collect();
    assert_eq!(created.len(), 4);
    assert_eq!(created[0].actor, AuditActor::User(1));
    let text = serde_json::to_string(&created).unwrap();
    assert!(!text.contains("argon2"), "no hash in audit rows: {text}");
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM audit_log WHERE account_id = 2 AND action = 'api_key.created'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_and_revocation_stay_inside_the_account_and_are_audited_once() {
    let fx = Fixture::new().await;
    tenants(&fx).await;
    let store = PgCredentialStore::new(fx.pool.clone());
    let k = key(1, 1, "aaaaaaaaaaaaaaaa");
    store.create_api_key(&new_key(&k)).await.unwrap();
    let t = now();

    // Another tenant's scope sees no such key.
    let foreign = admin_scope(2, 2);
    assert!(matches!(
        store
            .rotate_api_key(&foreign, k.id, "$new", &audit_context(), t)
            .await
            .unwrap(),
        KeyChange::NotFound
    ));
    assert!(matches!(
        store
            .revoke_api_key(&foreign, k.id, &audit_context(), t)
            .await
            .unwrap(),
        KeyChange::NotFound
    ));
    assert_eq!(store.api_key(k.id).await.unwrap().unwrap(), k, "unchanged");

    // An API key rotates it: audited as the key.
    let by_key = TenantScope::for_tests_scoped(
        AccountId::new(1),
        Actor::ApiKey {
            key_id: k.id,
            created_by: UserId::new(1),
        },
        Role::Admin,
        ScopeSet::all(),
    );
    let KeyChange::Done(rotated) = store
        .rotate_api_key(&by_key, k.id, "$new", &audit_context(), t)
        .await
        .unwrap()
    else {
        panic!("rotation failed")
    };
    assert_eq!(rotated.secret_hash, "$new");
    assert_eq!(rotated.rotated_at, Some(t));
    assert_eq!(rotated.prefix, k.prefix, "the prefix stays");

    let scope = admin_scope(1, 1);
    assert!(matches!(
        store
            .revoke_api_key(&scope, k.id, &audit_context(), t)
            .await
            .unwrap(),
        KeyChange::Done(ref r) if r.revoked_at == Some(t)
    ));
    // Again: nothing changes, no second audit row.
    assert!(matches!(
        store
            .revoke_api_key(&scope, k.id, &audit_context(), t + Duration::seconds(5))
            .await
            .unwrap(),
        KeyChange::Done(ref r) if r.revoked_at == Some(t)
    ));
    assert!(matches!(
        store
            .rotate_api_key(&scope, k.id, "$newer", &audit_context(), t)
            .await
            .unwrap(),
        KeyChange::Revoked
    ));

    let audit = fx.audit(1).await;
    let actions: Vec<(&str, &AuditActor)> = audit
        .iter()
        .filter(|e| e.action.starts_with("api_key."))
        .map(|e| (e.action.as_str(), &e.actor))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("api_key.revoked", &AuditActor::User(1)),
            ("api_key.rotated", &AuditActor::ApiKey(k.id.as_uuid())),
            ("api_key.created", &AuditActor::User(1)),
        ]
    );
    assert!(
        fx.audit(2)
            .await
            .iter()
            .all(|e| !e.action.starts_with("api_key."))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn last_use_and_denials_are_recorded() {
    let fx = Fixture::new().await;
    tenants(&fx).await;
    let store = PgCredentialStore::new(fx.pool.clone());
    let k = key(1, 1, "aaaaaaaaaaaaaaaa");
    store.create_api_key(&new_key(&k)).await.unwrap();
    let t = now();
    store.touch_api_key(k.id, t).await.unwrap();
    // An older time never moves it back.
    store
        .touch_api_key(k.id, t - Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(
        store.api_key(k.id).await.unwrap().unwrap().last_used_at,
        Some(t)
    );

    let denial = KeyDenial {
        required_scope: Some("members:write".to_owned()),
        reason: "insufficient_scope",
        account_id: AccountId::new(1),
        audit: audit_context(),
        at: t,
    };
    store.record_api_key_denial(&k, &denial).await.unwrap();
    let audit = fx.audit(1).await;
    let denied = audit.iter().find(|e| e.action == "api_key.denied").unwrap();
    assert_eq!(denied.actor, AuditActor::ApiKey(k.id.as_uuid()));
    assert_eq!(denied.metadata["reason"], "insufficient_scope");
    assert_eq!(denied.metadata["required_scope"], "members:write");
    assert_eq!(denied.request_id.as_deref(), Some("req-test"));
}

#[tokio::test(flavor = "multi_thread")]
async fn instance_tokens_are_recorded_revoked_once_and_audited_in_their_account() {
    let fx = Fixture::new().await;
    tenants(&fx).await;
    let store = PgCredentialStore::new(fx.pool.clone());
    let tok = token(1, 1);
    store
        .record_instance_token(&tok, &audit_context())
        .await
        .unwrap();
    assert_eq!(
        store.instance_token(tok.token_id).await.unwrap().unwrap(),
        tok
    );
    assert!(
        store
            .instance_token(Uuid::now_v7())
            .await
            .unwrap()
            .is_none()
    );

    let t = now();
    assert!(
        store
            .revoke_instance_token(tok.token_id, UserId::new(1), &audit_context(), t)
            .await
            .unwrap()
    );
    assert!(
        store
            .revoke_instance_token(tok.token_id, UserId::new(1), &audit_context(), t)
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_instance_token(Uuid::now_v7(), UserId::new(1), &audit_context(), t)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .instance_token(tok.token_id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(t)
    );
    let audit = fx.audit(1).await;
    let actions: Vec<&str> = audit
        .iter()
        .filter(|e| e.action.starts_with("instance_token."))
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        actions,
        ["instance_token.revoked", "instance_token.created"]
    );
    assert!(
        fx.audit(2)
            .await
            .iter()
            .all(|e| !e.action.starts_with("instance_token."))
    );
}

// ---------------------------------------------------------------------------------------------
// The cache across instances.

const POLL: StdDuration = StdDuration::from_millis(20);

/// One "instance": its own pool, caches and listener on the shared database.
async fn instance(fx: &Fixture) -> (CachedIdentityStore, CachedCredentialStore) {
    let identity = CachedIdentityStore::new(PgIdentityStore::new(fx.db.pool()));
    let credentials = identity.credential_store(PgCredentialStore::new(fx.db.pool()));
    let _listener = identity.spawn_listener(fx.db.url());
    let start = Instant::now();
    while !identity.is_listening() {
        assert!(start.elapsed() < StdDuration::from_secs(20), "listener");
        tokio::time::sleep(POLL).await;
    }
    (identity, credentials)
}

async fn within_a_second(what: &str, check: impl AsyncFn() -> bool) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < StdDuration::from_secs(5), "{what}: never");
        tokio::time::sleep(POLL).await;
    }
    let took = start.elapsed();
    assert!(took < StdDuration::from_secs(1), "{what} took {took:?}");
}

/// Reads until the entry is in the cache (a notification in flight keeps a load out).
async fn cache_key(store: &CachedCredentialStore, id: ApiKeyId) {
    let start = Instant::now();
    loop {
        store.api_key(id).await.unwrap().unwrap();
        if store.cached_entries().0 == 1 {
            return;
        }
        assert!(start.elapsed() < StdDuration::from_secs(5));
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_and_tokens_are_served_from_memory_until_changed() {
    let fx = Fixture::new().await;
    tenants(&fx).await;
    let identity = CachedIdentityStore::new(PgIdentityStore::new(fx.pool.clone()));
    let store = identity.credential_store(PgCredentialStore::new(fx.pool.clone()));
    let k = key(1, 1, "aaaaaaaaaaaaaaaa");
    store.create_api_key(&new_key(&k)).await.unwrap();
    let tok = token(1, 1);
    store
        .record_instance_token(&tok, &audit_context())
        .await
        .unwrap();
    store.api_key(k.id).await.unwrap().unwrap();
    store.instance_token(tok.token_id).await.unwrap().unwrap();
    assert_eq!(store.cached_entries(), (1, 1));

    // A change behind the cache's back is not seen ...
    let mut conn = fx.pool.get().await.unwrap();
    use diesel_async::RunQueryDsl;
    diesel::sql_query(format!(
        "UPDATE api_keys SET name = 'changed' WHERE id = '{}'",
        k.id
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(store.api_key(k.id).await.unwrap().unwrap().name, k.name);
    // ... a change through the store is, at once.
    store
        .revoke_api_key(&admin_scope(1, 1), k.id, &audit_context(), now())
        .await
        .unwrap();
    let fresh = store.api_key(k.id).await.unwrap().unwrap();
    assert!(fresh.revoked_at.is_some());
    assert_eq!(fresh.name, "changed");
    store
        .revoke_instance_token(tok.token_id, UserId::new(1), &audit_context(), now())
        .await
        .unwrap();
    assert!(
        store
            .instance_token(tok.token_id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn revocations_and_rotations_on_one_instance_reach_the_other_within_a_second() {
    let fx = Fixture::new().await;
    tenants(&fx).await;
    let (_a_identity, a) = instance(&fx).await;
    let (_b_identity, b) = instance(&fx).await;
    let scope = admin_scope(1, 1);

    // Rotation.
    let k = key(1, 1, "aaaaaaaaaaaaaaaa");
    a.create_api_key(&new_key(&k)).await.unwrap();
    cache_key(&b, k.id).await;
    a.rotate_api_key(&scope, k.id, "$rotated", &audit_context(), now())
        .await
        .unwrap();
    assert_eq!(
        a.api_key(k.id).await.unwrap().unwrap().secret_hash,
        "$rotated",
        "at once on A"
    );
    within_a_second("B sees the rotation", async || {
        b.api_key(k.id).await.unwrap().unwrap().secret_hash == "$rotated"
    })
    .await;

    // Revocation.
    cache_key(&b, k.id).await;
    a.revoke_api_key(&scope, k.id, &audit_context(), now())
        .await
        .unwrap();
    within_a_second("B sees the key revoked", async || {
        b.api_key(k.id).await.unwrap().unwrap().revoked_at.is_some()
    })
    .await;

    // Instance tokens.
    let tok = token(1, 1);
    a.record_instance_token(&tok, &audit_context())
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        b.instance_token(tok.token_id).await.unwrap().unwrap();
        if b.cached_entries().1 == 1 {
            break;
        }
        assert!(start.elapsed() < StdDuration::from_secs(5));
        tokio::time::sleep(POLL).await;
    }
    a.revoke_instance_token(tok.token_id, UserId::new(1), &audit_context(), now())
        .await
        .unwrap();
    within_a_second("B sees the token revoked", async || {
        b.instance_token(tok.token_id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    })
    .await;
}
