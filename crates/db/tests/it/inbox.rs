//! The inbox adapters: Chatwoot connection, mirror and sync runs (lease, apply, failure),
//! providers and instances (tombstones, links), health (compare-and-set, history, audit,
//! claims across accounts), each with a two-tenant isolation test.

use std::collections::BTreeSet;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use whatpro_db::{PgInboxStore, PgProviderStore};
use whatpro_iam::{AuditContext, ChatwootRole, PlatformScope};
use whatpro_inbox::{
    ChatwootInbox, ChatwootInboxId, HealthSaved, HealthSource, HealthState, HealthUpdate, Inbox,
    InboxError, InboxId, InboxStore, InstanceChanges, InstanceHealth, InstanceId, NewConnection,
    NewInstance, NewProvider, ProviderChanges, ProviderId, ProviderStore, ProviderType,
    SealedCredentials, SyncRunId, SyncStart, SyncStatus, SyncTrigger, plan_sync,
};
use whatpro_kernel::{AccountId, Limit, UserId, UuidV7Gen};

use crate::support::{Fixture, admin_scope, now};

async fn two_accounts(fx: &Fixture) {
    let p = crate::support::profile(
        5,
        &[
            (1, ChatwootRole::Administrator),
            (2, ChatwootRole::Administrator),
        ],
    );
    fx.login(&p, "t-inbox", now()).await;
}

fn audit() -> AuditContext {
    AuditContext {
        request_id: "req-inbox".to_owned(),
        ip: None,
    }
}

fn connection(user: i64) -> NewConnection {
    NewConnection {
        sealed_token: format!("v4.local.sealed-token-of-{user}"),
        chatwoot_user_id: UserId::new(user),
        chatwoot_user_name: format!("User {user}"),
        verified_at: now(),
    }
}

fn listed(id: i64, name: &str) -> ChatwootInbox {
    ChatwootInbox {
        id: ChatwootInboxId::new(id),
        name: name.to_owned(),
        channel_type: "Channel::Api".to_owned(),
    }
}

fn run_id() -> SyncRunId {
    SyncRunId::from_uuid(Uuid::now_v7())
}

/// Starts and applies one sync of `listed` for `account`; returns the run's status.
async fn sync(
    store: &PgInboxStore,
    account: i64,
    chatwoot: &[ChatwootInbox],
    limit: Option<i64>,
) -> whatpro_inbox::SyncRun {
    let scope = admin_scope(account, 5);
    let run = run_id();
    let at = now();
    let start = store
        .begin_sync(
            &scope,
            run,
            SyncTrigger::Manual,
            at,
            at + Duration::minutes(2),
        )
        .await
        .unwrap();
    assert!(matches!(start, SyncStart::Started { .. }), "{start:?}");
    let mirror = store.mirror(&scope).await.unwrap();
    let plan = plan_sync(&mirror, chatwoot, limit, at, &UuidV7Gen);
    store.apply_sync(&scope, run, &plan, at).await.unwrap()
}

fn by_chatwoot_id(mirror: &[Inbox], id: i64) -> &Inbox {
    mirror
        .iter()
        .find(|i| i.chatwoot_inbox_id == ChatwootInboxId::new(id))
        .unwrap()
}

#[tokio::test]
async fn the_connection_is_saved_replaced_and_removed_with_audit_rows() {
    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    let store = PgInboxStore::new(fx.pool.clone());
    let a = admin_scope(1, 5);
    assert_eq!(store.connection(&a).await.unwrap(), None);
    let saved = store
        .save_connection(&a, &connection(5), &audit())
        .await
        .unwrap();
    assert_eq!(saved.chatwoot_user_id, UserId::new(5));
    assert_eq!(saved.last_sync_at, None);
    let replaced = store
        .save_connection(&a, &connection(7), &audit())
        .await
        .unwrap();
    assert_eq!(replaced.chatwoot_user_id, UserId::new(7));
    assert_eq!(replaced.created_at, saved.created_at);
    assert_eq!(
        store.sealed_token(&a).await.unwrap().as_deref(),
        Some("v4.local.sealed-token-of-7")
    );
    assert!(store.delete_connection(&a, &audit()).await.unwrap());
    assert!(!store.delete_connection(&a, &audit()).await.unwrap());
    let actions: Vec<String> = fx.audit(1).await.into_iter().map(|e| e.action).collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.starts_with("chatwoot_connection."))
            .collect::<Vec<_>>(),
        [
            "chatwoot_connection.removed",
            "chatwoot_connection.saved",
            "chatwoot_connection.saved"
        ]
    );
    // The token never reaches the audit log.
    let entries = fx.audit(1).await;
    assert!(
        entries
            .iter()
            .all(|e| !e.metadata.to_string().contains("sealed-token"))
    );
}

#[tokio::test]
async fn connections_and_mirrors_are_per_tenant() {
    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    let store = PgInboxStore::new(fx.pool.clone());
    let a = admin_scope(1, 5);
    let b = admin_scope(2, 5);
    store
        .save_connection(&a, &connection(5), &audit())
        .await
        .unwrap();
    sync(&store, 1, &[listed(10, "A1"), listed(11, "A2")], None).await;

    // B sees nothing of A.
    assert_eq!(store.connection(&b).await.unwrap(), None);
    assert_eq!(store.sealed_token(&b).await.unwrap(), None);
    assert!(store.mirror(&b).await.unwrap().is_empty());
    let page = store
        .list_inboxes(&b, None, Limit::default())
        .await
        .unwrap();
    assert!(page.items.is_empty());
    assert!(
        store
            .list_runs(&b, None, Limit::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        store
            .begin_sync(
                &b,
                run_id(),
                SyncTrigger::Manual,
                now(),
                now() + Duration::minutes(2)
            )
            .await
            .unwrap(),
        SyncStart::NotConnected
    );
    // B's removal of its (missing) connection does not touch A's.
    assert!(!store.delete_connection(&b, &audit()).await.unwrap());
    assert!(store.connection(&a).await.unwrap().is_some());

    // The same Chatwoot ids in B are B's own rows.
    store
        .save_connection(&b, &connection(5), &audit())
        .await
        .unwrap();
    sync(&store, 2, &[listed(10, "B1")], None).await;
    let a_mirror = store.mirror(&a).await.unwrap();
    let b_mirror = store.mirror(&b).await.unwrap();
    assert_eq!(a_mirror.len(), 2);
    assert_eq!(b_mirror.len(), 1);
    assert_ne!(by_chatwoot_id(&a_mirror, 10).id, b_mirror[0].id);
    assert_eq!(by_chatwoot_id(&a_mirror, 10).name, "A1");
}

#[tokio::test]
async fn the_sync_lease_lets_one_sync_run_at_a_time_and_expires() {
    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    let store = PgInboxStore::new(fx.pool.clone());
    let a = admin_scope(1, 5);
    store
        .save_connection(&a, &connection(5), &audit())
        .await
        .unwrap();
    let t0 = now();
    let first = run_id();
    let start = store
        .begin_sync(
            &a,
            first,
            SyncTrigger::Scheduled,
            t0,
            t0 + Duration::minutes(2),
        )
        .await
        .unwrap();
    assert_eq!(
        start,
        SyncStart::Started {
            sealed_token: "v4.local.sealed-token-of-5".into()
        }
    );
    // Held: a second sync is refused, and records no run.
    assert_eq!(
        store
            .begin_sync(
                &a,
                run_id(),
                SyncTrigger::Manual,
                t0,
                t0 + Duration::minutes(2)
            )
            .await
            .unwrap(),
        SyncStart::InProgress
    );
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM inbox_sync_runs").await,
        1
    );

    // 50 racing starts on a free lease: exactly one wins.
    store.fail_sync(&a, first, "test", t0).await.unwrap();
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let t = now();
            store
                .begin_sync(
                    &admin_scope(1, 5),
                    run_id(),
                    SyncTrigger::Manual,
                    t,
                    t + Duration::minutes(2),
                )
                .await
                .unwrap()
        }));
    }
    let mut started = 0;
    for task in tasks {
        if matches!(task.await.unwrap(), SyncStart::Started { .. }) {
            started += 1;
        }
    }
    assert_eq!(started, 1);

    // After the lease expires (the process died), the next sync takes it and marks the
    // abandoned run failed.
    let later = now() + Duration::minutes(3);
    let next = run_id();
    assert!(matches!(
        store
            .begin_sync(
                &a,
                next,
                SyncTrigger::Manual,
                later,
                later + Duration::minutes(2)
            )
            .await
            .unwrap(),
        SyncStart::Started { .. }
    ));
    let runs = store
        .list_runs(&a, None, Limit::default())
        .await
        .unwrap()
        .items;
    assert_eq!(runs[0].id, next);
    assert_eq!(runs[0].status, SyncStatus::Running);
    let abandoned = &runs[1];
    assert_eq!(abandoned.status, SyncStatus::Failed);
    assert!(abandoned.error.as_deref().unwrap().starts_with("abandoned"));
}

#[tokio::test]
async fn a_sync_upserts_removes_flags_and_counts_in_one_go() {
    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    let store = PgInboxStore::new(fx.pool.clone());
    let a = admin_scope(1, 5);
    store
        .save_connection(&a, &connection(5), &audit())
        .await
        .unwrap();
    let first = sync(
        &store,
        1,
        &[listed(1, "Suporte"), listed(2, "Vendas"), listed(3, "Site")],
        Some(2),
    )
    .await;
    assert_eq!(first.status, SyncStatus::Succeeded);
    assert_eq!(first.counts.added, 3);
    assert_eq!(first.counts.over_quota, 1);
    let mirror = store.mirror(&a).await.unwrap();
    assert_eq!(mirror.iter().filter(|i| i.over_quota).count(), 1);
    assert!(
        by_chatwoot_id(&mirror, 3).over_quota,
        "the highest id of the first sync"
    );
    assert!(
        store
            .connection(&a)
            .await
            .unwrap()
            .unwrap()
            .last_sync_at
            .is_some()
    );
    assert_eq!(
        fx.count(
            "SELECT used AS n FROM quota_counters WHERE account_id = 1 AND resource = 'max_inboxes'"
        )
        .await,
        3
    );

    // Idempotent: the same list again changes nothing but the sync time.
    let again = sync(
        &store,
        1,
        &[listed(1, "Suporte"), listed(2, "Vendas"), listed(3, "Site")],
        Some(2),
    )
    .await;
    assert_eq!(again.counts.unchanged, 3);
    assert_eq!(
        again.counts.added + again.counts.updated + again.counts.removed,
        0
    );
    let after = store.mirror(&a).await.unwrap();
    assert_eq!(
        after
            .iter()
            .map(|i| (i.id, i.over_quota))
            .collect::<BTreeSet<_>>(),
        mirror
            .iter()
            .map(|i| (i.id, i.over_quota))
            .collect::<BTreeSet<_>>()
    );

    // Rename one, drop one: the dropped one frees its slot; a removed inbox is kept.
    let third = sync(
        &store,
        1,
        &[listed(2, "Vendas BR"), listed(3, "Site")],
        Some(2),
    )
    .await;
    assert_eq!(third.counts.updated, 1);
    assert_eq!(third.counts.removed, 1);
    assert_eq!(third.counts.over_quota, 0);
    let mirror = store.mirror(&a).await.unwrap();
    assert!(by_chatwoot_id(&mirror, 1).removed);
    assert_eq!(by_chatwoot_id(&mirror, 2).name, "Vendas BR");
    assert!(!by_chatwoot_id(&mirror, 3).over_quota);
    assert_eq!(
        fx.count(
            "SELECT used AS n FROM quota_counters WHERE account_id = 1 AND resource = 'max_inboxes'"
        )
        .await,
        2
    );
    // Back again: restored with its old first-seen time, so it keeps service again.
    let fourth = sync(
        &store,
        1,
        &[
            listed(1, "Suporte"),
            listed(2, "Vendas BR"),
            listed(3, "Site"),
        ],
        Some(2),
    )
    .await;
    assert_eq!(fourth.counts.restored, 1);
    let mirror = store.mirror(&a).await.unwrap();
    assert!(!by_chatwoot_id(&mirror, 1).removed);
    assert!(by_chatwoot_id(&mirror, 3).over_quota);

    // Pages by id.
    let page = store
        .list_inboxes(&a, None, Limit::clamped(Some(2)))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    let next = page.next_after.unwrap();
    let rest = store
        .list_inboxes(&a, Some(InboxId::from_uuid(next)), Limit::clamped(Some(2)))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.next_after, None);
    let runs = store
        .list_runs(&a, None, Limit::clamped(Some(3)))
        .await
        .unwrap();
    assert_eq!(runs.items.len(), 3);
    assert_eq!(runs.items[0].id, fourth.id);
    assert!(runs.next_after.is_some());
}

#[tokio::test]
async fn a_failed_sync_leaves_the_mirror_and_frees_the_lease() {
    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    let store = PgInboxStore::new(fx.pool.clone());
    let a = admin_scope(1, 5);
    store
        .save_connection(&a, &connection(5), &audit())
        .await
        .unwrap();
    sync(&store, 1, &[listed(1, "Suporte")], None).await;
    let before = store.mirror(&a).await.unwrap();
    let run = run_id();
    let t = now();
    store
        .begin_sync(&a, run, SyncTrigger::Manual, t, t + Duration::minutes(2))
        .await
        .unwrap();
    let failed = store
        .fail_sync(&a, run, "Chatwoot answered 500", t)
        .await
        .unwrap();
    assert_eq!(failed.status, SyncStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("Chatwoot answered 500"));
    assert_eq!(store.mirror(&a).await.unwrap(), before);
    // The lease is free again.
    assert!(matches!(
        store
            .begin_sync(
                &a,
                run_id(),
                SyncTrigger::Manual,
                t,
                t + Duration::minutes(2)
            )
            .await
            .unwrap(),
        SyncStart::Started { .. }
    ));
}

#[tokio::test]
async fn accounts_are_due_for_sync_until_a_run_starts() {
    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    let store = PgInboxStore::new(fx.pool.clone());
    let platform = PlatformScope::for_system_jobs();
    let cutoff = now() - Duration::minutes(5);
    assert!(
        store
            .accounts_due_for_sync(&platform, cutoff, 10)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .save_connection(&admin_scope(1, 5), &connection(5), &audit())
        .await
        .unwrap();
    store
        .save_connection(&admin_scope(2, 5), &connection(5), &audit())
        .await
        .unwrap();
    assert_eq!(
        store
            .accounts_due_for_sync(&platform, cutoff, 10)
            .await
            .unwrap(),
        [AccountId::new(1), AccountId::new(2)]
    );
    sync(&store, 1, &[], None).await;
    assert_eq!(
        store
            .accounts_due_for_sync(&platform, cutoff, 10)
            .await
            .unwrap(),
        [AccountId::new(2)]
    );
    assert_eq!(
        store
            .accounts_due_for_sync(&platform, now() + Duration::minutes(1), 1)
            .await
            .unwrap(),
        [AccountId::new(1)]
    );
}

// ---------------------------------------------------------------------------------------------
// Providers and instances.

fn new_provider(provider_type: ProviderType) -> NewProvider {
    NewProvider {
        id: ProviderId::from_uuid(Uuid::now_v7()),
        provider_type,
        name: "Evolution principal".into(),
        base_url: "https://evo.example".into(),
        sealed_credentials: "v4.local.sealed-credentials".into(),
        credential_keys: vec!["api_key".into()],
        quota: None,
    }
}

fn new_instance(
    provider: ProviderId,
    inbox: Option<InboxId>,
    first_check: OffsetDateTime,
) -> NewInstance {
    NewInstance {
        id: InstanceId::from_uuid(Uuid::now_v7()),
        provider_id: provider,
        name: "suporte".into(),
        inbox_id: inbox,
        credentials: Some(SealedCredentials {
            sealed: "v4.local.instance".into(),
            keys: vec!["instance_api_key".into()],
        }),
        webhook_token_hash: vec![7; 32],
        first_check_at: first_check,
        quota: None,
    }
}

#[tokio::test]
async fn providers_are_created_changed_and_tombstoned() {
    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    let store = PgProviderStore::new(fx.pool.clone());
    let a = admin_scope(1, 5);
    let created = store
        .create_provider(&a, &new_provider(ProviderType::Evolution), &audit())
        .await
        .unwrap();
    assert_eq!(created.provider_type, ProviderType::Evolution);
    assert_eq!(created.credential_keys, ["api_key"]);
    assert_eq!(created.instance_count, 0);
    let changed = store
        .update_provider(
            &a,
            created.id,
            &ProviderChanges {
                name: Some("Evo 2".into()),
                base_url: None,
                credentials: Some(SealedCredentials {
                    sealed: "v4.local.other".into(),
                    keys: vec!["api_key".into()],
                }),
            },
            &audit(),
        )
        .await
        .unwrap();
    assert_eq!(changed.name, "Evo 2");
    assert_eq!(changed.base_url, "https://evo.example");
    store
        .create_instance(&a, &new_instance(created.id, None, now()), &audit())
        .await
        .unwrap();
    store
        .create_instance(&a, &new_instance(created.id, None, now()), &audit())
        .await
        .unwrap();
    assert_eq!(
        store.provider(&a, created.id).await.unwrap().instance_count,
        2
    );

    let deleted = store
        .delete_provider(&a, created.id, &audit())
        .await
        .unwrap();
    assert!(deleted.now);
    assert_eq!(deleted.instances, 2);
    let again = store
        .delete_provider(&a, created.id, &audit())
        .await
        .unwrap();
    assert!(!again.now);
    assert_eq!(
        store.provider(&a, created.id).await.unwrap_err(),
        InboxError::ProviderNotFound
    );
    assert!(
        store
            .list_providers(&a, None, Limit::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM instance_health").await,
        0
    );
    let actions: Vec<String> = fx.audit(1).await.into_iter().map(|e| e.action).collect();
    for action in [
        "provider.created",
        "provider.updated",
        "provider.deleted",
        "provider_instance.created",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
    // Nothing secret in the audit metadata.
    assert!(
        fx.audit(1)
            .await
            .iter()
            .all(|e| !e.metadata.to_string().contains("v4.local"))
    );
}

#[tokio::test]
async fn providers_instances_and_health_are_per_tenant() {
    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    let store = PgProviderStore::new(fx.pool.clone());
    let a = admin_scope(1, 5);
    let b = admin_scope(2, 5);
    let provider = store
        .create_provider(&a, &new_provider(ProviderType::Evolution), &audit())
        .await
        .unwrap();
    let instance = store
        .create_instance(&a, &new_instance(provider.id, None, now()), &audit())
        .await
        .unwrap();

    assert!(
        store
            .list_providers(&b, None, Limit::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        store.provider(&b, provider.id).await.unwrap_err(),
        InboxError::ProviderNotFound
    );
    assert_eq!(
        store
            .update_provider(&b, provider.id, &ProviderChanges::default(), &audit())
            .await
            .unwrap_err(),
        InboxError::ProviderNotFound
    );
    assert_eq!(
        store
            .delete_provider(&b, provider.id, &audit())
            .await
            .unwrap_err(),
        InboxError::ProviderNotFound
    );
    // An instance of A's provider cannot be made from B.
    assert_eq!(
        store
            .create_instance(&b, &new_instance(provider.id, None, now()), &audit())
            .await
            .unwrap_err(),
        InboxError::ProviderNotFound
    );
    assert_eq!(
        store
            .list_instances(&b, provider.id, None, Limit::default())
            .await
            .unwrap_err(),
        InboxError::ProviderNotFound
    );
    for result in [
        store.instance(&b, provider.id, instance.id).await.map(drop),
        store
            .update_instance(
                &b,
                provider.id,
                instance.id,
                &InstanceChanges::default(),
                &audit(),
            )
            .await
            .map(drop),
        store
            .delete_instance(&b, provider.id, instance.id, &audit())
            .await
            .map(drop),
        store
            .health_history(&b, provider.id, instance.id, None, Limit::default())
            .await
            .map(drop),
        store
            .probe_target(&b, provider.id, instance.id)
            .await
            .map(drop),
        store.health_snapshot(&b, instance.id).await.map(drop),
        store
            .record_event(&b, instance.id, "MESSAGES_UPSERT", now())
            .await
            .map(drop),
    ] {
        assert_eq!(result.unwrap_err(), InboxError::InstanceNotFound);
    }
    let update = HealthUpdate {
        health: InstanceHealth {
            state: HealthState::Down,
            checked_at: Some(now()),
            latency_ms: Some(1),
            reason: Some("x".into()),
        },
        consecutive_failures: 0,
        source: HealthSource::Probe,
    };
    assert_eq!(
        store
            .save_health(&b, instance.id, 1, &update)
            .await
            .unwrap_err(),
        InboxError::InstanceNotFound
    );
    // A's instance is untouched.
    let same = store.instance(&a, provider.id, instance.id).await.unwrap();
    assert_eq!(same.health.state, HealthState::Unknown);
    assert_eq!(same.last_event_at, None);
}

#[tokio::test]
async fn instances_link_one_inbox_each_of_their_own_account() {
    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    let inboxes = PgInboxStore::new(fx.pool.clone());
    let store = PgProviderStore::new(fx.pool.clone());
    let a = admin_scope(1, 5);
    let b = admin_scope(2, 5);
    for scope in [&a, &b] {
        inboxes
            .save_connection(scope, &connection(5), &audit())
            .await
            .unwrap();
    }
    sync(&inboxes, 1, &[listed(1, "A1"), listed(2, "A2")], None).await;
    sync(&inboxes, 2, &[listed(1, "B1")], None).await;
    let a_inbox = by_chatwoot_id(&inboxes.mirror(&a).await.unwrap(), 1).id;
    let b_inbox = inboxes.mirror(&b).await.unwrap()[0].id;
    let provider = store
        .create_provider(&a, &new_provider(ProviderType::Evolution), &audit())
        .await
        .unwrap();

    // B's inbox does not exist for A.
    assert_eq!(
        store
            .create_instance(
                &a,
                &new_instance(provider.id, Some(b_inbox), now()),
                &audit()
            )
            .await
            .unwrap_err(),
        InboxError::InboxNotFound
    );
    let linked = store
        .create_instance(
            &a,
            &new_instance(provider.id, Some(a_inbox), now()),
            &audit(),
        )
        .await
        .unwrap();
    assert_eq!(linked.inbox_id, Some(a_inbox));
    assert_eq!(
        store
            .create_instance(
                &a,
                &new_instance(provider.id, Some(a_inbox), now()),
                &audit()
            )
            .await
            .unwrap_err(),
        InboxError::InboxAlreadyLinked
    );
    let mirror = inboxes.mirror(&a).await.unwrap();
    assert_eq!(
        by_chatwoot_id(&mirror, 1).provider_instance_id,
        Some(linked.id)
    );
    assert_eq!(by_chatwoot_id(&mirror, 2).provider_instance_id, None);

    // Move the link, rename, drop credentials.
    let other = by_chatwoot_id(&mirror, 2).id;
    let moved = store
        .update_instance(
            &a,
            provider.id,
            linked.id,
            &InstanceChanges {
                name: Some("vendas".into()),
                inbox_id: Some(Some(other)),
                credentials: Some(None),
            },
            &audit(),
        )
        .await
        .unwrap();
    assert_eq!(moved.name, "vendas");
    assert_eq!(moved.inbox_id, Some(other));
    assert!(moved.credential_keys.is_empty());
    // Deleting frees the inbox for another instance.
    assert!(
        store
            .delete_instance(&a, provider.id, linked.id, &audit())
            .await
            .unwrap()
            .now
    );
    assert!(
        !store
            .delete_instance(&a, provider.id, linked.id, &audit())
            .await
            .unwrap()
            .now
    );
    store
        .create_instance(&a, &new_instance(provider.id, Some(other), now()), &audit())
        .await
        .unwrap();
    let page = store
        .list_instances(&a, provider.id, None, Limit::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
}

#[tokio::test]
async fn health_is_saved_by_compare_and_set_with_history_and_audit() {
    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    let store = PgProviderStore::new(fx.pool.clone());
    let a = admin_scope(1, 5);
    let provider = store
        .create_provider(&a, &new_provider(ProviderType::Evolution), &audit())
        .await
        .unwrap();
    let instance = store
        .create_instance(&a, &new_instance(provider.id, None, now()), &audit())
        .await
        .unwrap();
    let snapshot = store.health_snapshot(&a, instance.id).await.unwrap();
    assert_eq!(snapshot.health.state, HealthState::Unknown);
    let healthy = HealthUpdate {
        health: InstanceHealth {
            state: HealthState::Healthy,
            checked_at: Some(now()),
            latency_ms: Some(42),
            reason: Some("connected".into()),
        },
        consecutive_failures: 0,
        source: HealthSource::Probe,
    };
    let saved = store
        .save_health(&a, instance.id, snapshot.version, &healthy)
        .await
        .unwrap();
    let HealthSaved::Changed(transition) = saved else {
        panic!("{saved:?}");
    };
    assert_eq!(
        (transition.from, transition.to),
        (HealthState::Unknown, HealthState::Healthy)
    );
    assert_eq!(transition.provider_id, provider.id);
    // A stale version loses.
    assert_eq!(
        store
            .save_health(&a, instance.id, snapshot.version, &healthy)
            .await
            .unwrap(),
        HealthSaved::Conflict
    );
    let current = store.health_snapshot(&a, instance.id).await.unwrap();
    assert_eq!(current.version, snapshot.version + 1);
    assert_eq!(
        store
            .save_health(&a, instance.id, current.version, &healthy)
            .await
            .unwrap(),
        HealthSaved::Unchanged
    );
    // An event is recorded and moves the version on.
    let after_event = store
        .record_event(&a, instance.id, "MESSAGES_UPSERT", now())
        .await
        .unwrap();
    assert_eq!(after_event.version, current.version + 2);
    assert!(after_event.last_event_at.is_some());
    let read = store.instance(&a, provider.id, instance.id).await.unwrap();
    assert_eq!(read.health.state, HealthState::Healthy);
    assert_eq!(read.health.latency_ms, Some(42));
    assert!(read.last_event_at.is_some());

    let history = store
        .health_history(&a, provider.id, instance.id, None, Limit::default())
        .await
        .unwrap()
        .items;
    let states: Vec<(HealthState, Option<HealthState>, HealthSource)> = history
        .iter()
        .map(|h| (h.state, h.previous_state, h.source))
        .collect();
    assert_eq!(
        states,
        [
            (
                HealthState::Healthy,
                Some(HealthState::Unknown),
                HealthSource::Probe
            ),
            (HealthState::Unknown, None, HealthSource::Created),
        ]
    );
    let audits: Vec<_> = fx
        .audit(1)
        .await
        .into_iter()
        .filter(|e| e.action == "provider.health_changed")
        .collect();
    assert_eq!(audits.len(), 1);
    assert_eq!(audits[0].actor, whatpro_tenancy::AuditActor::System);
    assert_eq!(audits[0].metadata["to"], "healthy");
    assert_eq!(
        audits[0].target.as_deref(),
        Some(format!("provider_instance:{}", instance.id).as_str())
    );
}

#[tokio::test]
async fn the_scheduler_claims_due_instances_of_every_account_once() {
    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    let store = Arc::new(PgProviderStore::new(fx.pool.clone()));
    let platform = PlatformScope::for_system_jobs();
    let t0 = now();
    let mut due = BTreeSet::new();
    for account in [1, 2] {
        let scope = admin_scope(account, 5);
        let provider = store
            .create_provider(&scope, &new_provider(ProviderType::Zapi), &audit())
            .await
            .unwrap();
        for i in 0..10 {
            let first = if i < 8 {
                t0 - Duration::seconds(1)
            } else {
                t0 + Duration::hours(1)
            };
            let instance = store
                .create_instance(&scope, &new_instance(provider.id, None, first), &audit())
                .await
                .unwrap();
            if i < 8 {
                due.insert(instance.id);
            }
        }
    }
    // A deleted instance is never claimed.
    let deleted = *due.iter().next().unwrap();
    let (account, provider) = {
        let t = store
            .webhook_target(&platform, deleted)
            .await
            .unwrap()
            .unwrap();
        (t.account_id, t.provider_id)
    };
    store
        .delete_instance(&admin_scope(account.get(), 5), provider, deleted, &audit())
        .await
        .unwrap();
    due.remove(&deleted);
    assert_eq!(
        store.webhook_target(&platform, deleted).await.unwrap(),
        None
    );

    // Four claimers at once: disjoint, and together exactly the due instances.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store
                .claim_due(&PlatformScope::for_system_jobs(), t0, 60_000, 6_000, 5)
                .await
                .unwrap()
        }));
    }
    let mut claimed = Vec::new();
    for task in tasks {
        claimed.extend(task.await.unwrap());
    }
    let ids: BTreeSet<InstanceId> = claimed.iter().map(|t| t.instance_id).collect();
    assert_eq!(ids.len(), claimed.len(), "claimed twice");
    let rest = store
        .claim_due(&platform, t0, 60_000, 6_000, 100)
        .await
        .unwrap();
    let all: BTreeSet<InstanceId> = ids
        .union(&rest.iter().map(|t| t.instance_id).collect())
        .copied()
        .collect();
    assert_eq!(all, due);
    assert_eq!(
        claimed
            .iter()
            .chain(&rest)
            .map(|t| t.account_id)
            .collect::<BTreeSet<_>>(),
        [AccountId::new(1), AccountId::new(2)].into_iter().collect()
    );
    let target = &rest.first().unwrap_or_else(|| &claimed[0]);
    assert_eq!(target.provider_type, ProviderType::Zapi);
    assert_eq!(target.provider_credentials, "v4.local.sealed-credentials");
    assert_eq!(
        target.instance_credentials.as_deref(),
        Some("v4.local.instance")
    );
    // Claimed ones are not due again until about one interval later.
    assert!(
        store
            .claim_due(&platform, t0, 60_000, 6_000, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .claim_due(&platform, t0 + Duration::seconds(53), 60_000, 6_000, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let later = store
        .claim_due(&platform, t0 + Duration::seconds(67), 60_000, 6_000, 100)
        .await
        .unwrap();
    assert_eq!(later.len(), due.len());
}

#[tokio::test]
async fn webhook_targets_are_found_by_instance_id_alone() {
    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    let store = PgProviderStore::new(fx.pool.clone());
    let b = admin_scope(2, 5);
    let provider = store
        .create_provider(&b, &new_provider(ProviderType::Evolution), &audit())
        .await
        .unwrap();
    let instance = store
        .create_instance(&b, &new_instance(provider.id, None, now()), &audit())
        .await
        .unwrap();
    let platform = PlatformScope::for_system_jobs();
    let target = store
        .webhook_target(&platform, instance.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(target.account_id, AccountId::new(2));
    assert_eq!(target.instance_name, "suporte");
    assert_eq!(target.token_hash, vec![7; 32]);
    assert_eq!(
        store
            .webhook_target(&platform, InstanceId::from_uuid(Uuid::now_v7()))
            .await
            .unwrap(),
        None
    );
    // Deleting the provider ends its instances' webhooks.
    store
        .delete_provider(&b, provider.id, &audit())
        .await
        .unwrap();
    assert_eq!(
        store.webhook_target(&platform, instance.id).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn creates_take_their_quota_slot_in_their_own_transaction() {
    use std::collections::BTreeMap;
    use whatpro_db::PgEntitlementStore;
    use whatpro_entitlements::{
        EntitlementError, EntitlementStore, Overrides, QuotaClaim, Resource,
    };

    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    let entitlements = PgEntitlementStore::new(fx.pool.clone());
    let store = PgProviderStore::new(fx.pool.clone());
    let a = admin_scope(1, 5);
    let b = admin_scope(2, 5);
    let one_instance = Overrides {
        limits: BTreeMap::from([(Resource::Instances, Some(1))]),
        features: BTreeMap::new(),
    };
    entitlements
        .set_account(&a, None, Some(one_instance))
        .await
        .unwrap();
    let claim = |resource| {
        Some(QuotaClaim {
            resource,
            period: String::new(),
            limit: if resource == Resource::Instances {
                Some(1)
            } else {
                Some(2)
            },
        })
    };
    let used = async |scope, resource| {
        entitlements
            .usage(scope, "2026-12")
            .await
            .unwrap()
            .get(&resource)
            .copied()
            .unwrap_or(0)
    };
    let create_claimed_provider = async || {
        store
            .create_provider(
                &a,
                &NewProvider {
                    quota: claim(Resource::Providers),
                    ..new_provider(ProviderType::Evolution)
                },
                &audit(),
            )
            .await
    };

    let provider = create_claimed_provider().await.unwrap();
    // A create that fails keeps no slot: the slot is taken in its rolled-back transaction.
    let missing_inbox = InboxId::from_uuid(Uuid::now_v7());
    let failed = store
        .create_instance(
            &a,
            &NewInstance {
                quota: claim(Resource::Instances),
                ..new_instance(provider.id, Some(missing_inbox), now())
            },
            &audit(),
        )
        .await
        .unwrap_err();
    assert_eq!(failed, InboxError::InboxNotFound);
    assert_eq!(used(&a, Resource::Instances).await, 0);

    let first = store
        .create_instance(
            &a,
            &NewInstance {
                quota: claim(Resource::Instances),
                ..new_instance(provider.id, None, now())
            },
            &audit(),
        )
        .await
        .unwrap();
    assert_eq!(used(&a, Resource::Instances).await, 1);

    // The second instance finds no slot left: refused with the limit, and nothing is stored.
    let refused = new_instance(provider.id, None, now());
    let refused_id = refused.id;
    let err = store
        .create_instance(
            &a,
            &NewInstance {
                quota: claim(Resource::Instances),
                ..refused
            },
            &audit(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        InboxError::Entitlement(EntitlementError::QuotaExceeded {
            resource: Resource::Instances,
            limit: 1,
            used: 1,
        })
    );
    let live = store
        .list_instances(&a, provider.id, None, Limit::clamped(Some(50)))
        .await
        .unwrap();
    let ids: Vec<InstanceId> = live.items.iter().map(|i| i.id).collect();
    assert_eq!(ids, [first.id]);
    assert!(!ids.contains(&refused_id));
    let created_rows = fx
        .audit(1)
        .await
        .into_iter()
        .filter(|e| e.action == "provider_instance.created")
        .count();
    assert_eq!(created_rows, 1, "the refused create left no audit row");
    assert_eq!(used(&a, Resource::Instances).await, 1);

    // Account B has its own counter (trial: 3 instances).
    let b_provider = store
        .create_provider(&b, &new_provider(ProviderType::Evolution), &audit())
        .await
        .unwrap();
    store
        .create_instance(
            &b,
            &NewInstance {
                quota: claim(Resource::Instances),
                ..new_instance(b_provider.id, None, now())
            },
            &audit(),
        )
        .await
        .unwrap();
    assert_eq!(used(&b, Resource::Instances).await, 1);
    assert_eq!(used(&a, Resource::Instances).await, 1);

    // Once the counter row exists, a slot is taken by the plain update (the first provider
    // created the row): the second provider fits the limit of 2, the third does not.
    assert_eq!(used(&a, Resource::Providers).await, 1);
    create_claimed_provider().await.unwrap();
    assert_eq!(used(&a, Resource::Providers).await, 2);
    let err = create_claimed_provider().await.unwrap_err();
    assert_eq!(
        err,
        InboxError::Entitlement(EntitlementError::QuotaExceeded {
            resource: Resource::Providers,
            limit: 2,
            used: 2,
        })
    );
    assert_eq!(used(&a, Resource::Providers).await, 2);
    let listed = store
        .list_providers(&a, None, Limit::clamped(Some(50)))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2, "the refused provider is not stored");
}

#[tokio::test]
async fn instance_creates_prepare_their_statements_once_per_connection() {
    use diesel::QueryableByName;
    use diesel::sql_types::Text;
    use diesel_async::RunQueryDsl;
    use whatpro_db::{PoolSettings, build_pool};
    use whatpro_entitlements::{QuotaClaim, Resource};

    #[derive(QueryableByName)]
    struct Statement {
        #[diesel(sql_type = Text)]
        statement: String,
    }

    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    // One connection: every create runs on it, so its prepared statements can be read back.
    let settings = PoolSettings {
        max_size: 1,
        ..PoolSettings::default()
    };
    let pool = build_pool(fx.db.url(), &settings).unwrap();
    let store = PgProviderStore::new(pool.clone());
    let a = admin_scope(1, 5);
    let provider = store
        .create_provider(&a, &new_provider(ProviderType::Evolution), &audit())
        .await
        .unwrap();
    // The first create takes the slow path (no counter row yet), the later ones the usual one.
    for _ in 0..3 {
        store
            .create_instance(
                &a,
                &NewInstance {
                    quota: Some(QuotaClaim {
                        resource: Resource::Instances,
                        period: String::new(),
                        limit: Some(10),
                    }),
                    ..new_instance(provider.id, None, now())
                },
                &audit(),
            )
            .await
            .unwrap();
    }

    let mut conn = pool.get().await.unwrap();
    let prepared: Vec<String> = diesel::sql_query("SELECT statement FROM pg_prepared_statements")
        .load::<Statement>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.statement)
        .collect();
    let count = |needles: &[&str]| {
        prepared
            .iter()
            .filter(|s| needles.iter().all(|n| s.contains(n)))
            .count()
    };
    // Each text is prepared once and reused (a statement diesel does not cache would run as
    // the unnamed statement and not be listed at all).
    assert_eq!(
        count(&["WITH slot AS", "INSERT INTO provider_instances"]),
        1
    );
    assert_eq!(count(&["INSERT INTO quota_counters", "ON CONFLICT"]), 1);
    assert_eq!(count(&["INSERT INTO instance_health ("]), 1);
    assert_eq!(count(&["FROM providers", "FOR SHARE"]), 1);
    assert_eq!(count(&["AND i.id = $3"]), 1);
    let plain_insert = prepared
        .iter()
        .filter(|s| s.contains("INSERT INTO provider_instances") && !s.contains("WITH slot"))
        .count();
    assert_eq!(plain_insert, 1, "the slow path's plain insert");
    drop(conn);
    let listed = store
        .list_instances(&a, provider.id, None, Limit::clamped(Some(50)))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 3);
}
