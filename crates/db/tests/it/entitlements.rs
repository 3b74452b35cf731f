//! Plans, overrides, quota reservations (race-safe, per tenant) and usage metering.

use std::collections::BTreeMap;
use std::sync::Arc;

use time::macros::{date, datetime};
use whatpro_db::{PgEntitlementStore, PgUsageStore};
use whatpro_entitlements::{
    EntitlementError, EntitlementStore, EntitlementsService, Feature, Meter, Metric, Overrides,
    PlanId, ReserveOutcome, Resource, UsageStore,
};
use whatpro_iam::{ChatwootRole, PlatformScope};
use whatpro_kernel::{AccountId, SystemClock, UserId};

use crate::support::{Fixture, admin_scope, now};

async fn two_accounts(fx: &Fixture) {
    let p = crate::support::profile(
        5,
        &[
            (1, ChatwootRole::Administrator),
            (2, ChatwootRole::Administrator),
        ],
    );
    fx.login(&p, "t-ent", now()).await;
}

#[tokio::test]
async fn default_plans_are_seeded_cheapest_first() {
    let fx = Fixture::new().await;
    let store = PgEntitlementStore::new(fx.pool.clone());
    let plans = store.list_plans().await.unwrap();
    let ids: Vec<&str> = plans.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["trial", "starter", "pro"]);
    let trial = &plans[0];
    assert_eq!(trial.price_cents, 0);
    assert_eq!(trial.limit(Resource::Providers), Some(2));
    assert_eq!(
        plans[2].limit(Resource::MessagesPerMonth),
        None,
        "null is unlimited"
    );
    assert_eq!(plans[1].features.get(&Feature::ApiAccess), Some(&false));
}

#[tokio::test]
async fn accounts_start_on_trial_and_overrides_are_per_account() {
    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    let store = PgEntitlementStore::new(fx.pool.clone());
    let a = admin_scope(1, 5);
    let b = admin_scope(2, 5);
    assert_eq!(store.account(&a).await.unwrap().plan.id, PlanId::trial());

    let overrides = Overrides {
        limits: BTreeMap::from([(Resource::Providers, Some(9)), (Resource::Rooms, None)]),
        features: BTreeMap::from([(Feature::Kanban, false)]),
    };
    let stored = store
        .set_account(&a, Some("pro".parse().unwrap()), Some(overrides.clone()))
        .await
        .unwrap();
    assert_eq!(stored.plan.id.as_str(), "pro");
    assert_eq!(stored.overrides, overrides);
    // Only the plan changes: overrides are kept.
    let again = store
        .set_account(&a, Some("starter".parse().unwrap()), None)
        .await
        .unwrap();
    assert_eq!(again.overrides, overrides);
    // Account B is untouched.
    let other = store.account(&b).await.unwrap();
    assert_eq!(other.plan.id, PlanId::trial());
    assert_eq!(other.overrides, Overrides::default());
}

#[tokio::test]
async fn unknown_plans_and_accounts_are_refused() {
    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    let store = PgEntitlementStore::new(fx.pool.clone());
    let err = store
        .set_account(&admin_scope(1, 5), Some("gold".parse().unwrap()), None)
        .await
        .unwrap_err();
    assert_eq!(err, EntitlementError::PlanNotFound("gold".to_owned()));
    let missing = PlatformScope::for_system_jobs().tenant(AccountId::new(404));
    let err = store.set_account(&missing, None, None).await.unwrap_err();
    assert_eq!(err, EntitlementError::AccountNotFound(404));
}

#[tokio::test]
async fn fifty_parallel_reservations_for_the_last_slot_give_exactly_one() {
    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    let store = Arc::new(PgEntitlementStore::new(fx.pool.clone()));
    let scope = admin_scope(1, 5);
    // 2 slots; one is already taken.
    assert_eq!(
        store
            .reserve(&scope, Resource::Providers, "")
            .await
            .unwrap(),
        ReserveOutcome::Granted { used: 1 }
    );
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let store = Arc::clone(&store);
        let scope = scope.clone();
        tasks.push(tokio::spawn(async move {
            store
                .reserve(&scope, Resource::Providers, "")
                .await
                .unwrap()
        }));
    }
    let mut granted = 0;
    for t in tasks {
        match t.await.unwrap() {
            ReserveOutcome::Granted { used } => {
                granted += 1;
                assert_eq!(used, 2);
            }
            ReserveOutcome::Exceeded { used, limit } => assert_eq!((used, limit), (2, 2)),
        }
    }
    assert_eq!(granted, 1);
    // The other tenant's counter is its own.
    assert_eq!(
        store
            .reserve(&admin_scope(2, 5), Resource::Providers, "")
            .await
            .unwrap(),
        ReserveOutcome::Granted { used: 1 }
    );
    // Releasing frees a slot; never below zero.
    store
        .release(&scope, Resource::Providers, "")
        .await
        .unwrap();
    assert_eq!(
        store
            .reserve(&scope, Resource::Providers, "")
            .await
            .unwrap(),
        ReserveOutcome::Granted { used: 2 }
    );
    for _ in 0..5 {
        store
            .release(&admin_scope(2, 5), Resource::Providers, "")
            .await
            .unwrap();
    }
    let usage = store.usage(&admin_scope(2, 5), "2026-11").await.unwrap();
    assert_eq!(usage[&Resource::Providers], 0);
}

#[tokio::test]
async fn a_zero_limit_refuses_the_first_reservation() {
    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    let store = PgEntitlementStore::new(fx.pool.clone());
    let scope = admin_scope(1, 5);
    let overrides = Overrides {
        limits: BTreeMap::from([(Resource::Rooms, Some(0))]),
        features: BTreeMap::new(),
    };
    store
        .set_account(&scope, None, Some(overrides))
        .await
        .unwrap();
    assert_eq!(
        store.reserve(&scope, Resource::Rooms, "").await.unwrap(),
        ReserveOutcome::Exceeded { used: 0, limit: 0 }
    );
}

#[tokio::test]
async fn the_service_reports_quota_exceeded_with_limit_and_usage() {
    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    let service = EntitlementsService::new(
        Arc::new(PgEntitlementStore::new(fx.pool.clone())),
        Arc::new(SystemClock),
    );
    let scope = admin_scope(1, 5);
    let overrides = Overrides {
        limits: BTreeMap::from([(Resource::Instances, Some(1))]),
        features: BTreeMap::new(),
    };
    service
        .set_account(&scope, None, Some(overrides))
        .await
        .unwrap();
    let held = service
        .check_and_reserve(&scope, Resource::Instances)
        .await
        .unwrap();
    let err = service
        .check_and_reserve(&scope, Resource::Instances)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        EntitlementError::QuotaExceeded {
            resource: Resource::Instances,
            limit: 1,
            used: 1
        }
    );
    service.release(&scope, held).await.unwrap();
    let (effective, usage) = service.overview(&scope).await.unwrap();
    assert_eq!(effective.limit(Resource::Instances), Some(1));
    assert_eq!(usage[&Resource::Instances], 0);
    assert_eq!(usage[&Resource::Agents], 1, "members are counted live");
}

async fn set_time_zone(fx: &Fixture, account: i64, tz: &str) {
    use diesel_async::RunQueryDsl;
    let mut conn = fx.pool.get().await.unwrap();
    diesel::sql_query(format!(
        "UPDATE accounts SET time_zone = '{tz}' WHERE id = {account}"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
}

#[tokio::test]
async fn usage_lands_on_the_local_day_of_each_account() {
    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    // Account 1 is in São Paulo (UTC-3), account 2 stays in UTC.
    set_time_zone(&fx, 1, "America/Sao_Paulo").await;
    let usage = PgUsageStore::new(fx.pool.clone());
    let meter = Meter::new();
    let (a, b) = (AccountId::new(1), AccountId::new(2));
    // 01:30 UTC on Dec 1st is still Nov 30th in São Paulo.
    let late = datetime!(2026-12-01 01:30 UTC);
    let noon = datetime!(2026-12-01 12:00 UTC);
    meter.record(a, Metric::ApiCalls, 2, late);
    meter.record(a, Metric::ApiCalls, 3, noon);
    meter.record(a, Metric::MessagesSent, 7, noon);
    meter.record(b, Metric::ApiCalls, 1, late);
    meter.record(AccountId::new(999), Metric::ApiCalls, 1, late); // unknown: dropped
    meter.record_active(a, UserId::new(5), late);
    meter.record_active(a, UserId::new(5), noon);
    meter.record_active(a, UserId::new(6), noon);
    usage.flush(&meter.take()).await.unwrap();
    // A second flush adds to the same days and does not recount a known user.
    meter.record(a, Metric::ApiCalls, 1, noon);
    meter.record_active(a, UserId::new(6), noon + time::Duration::minutes(5));
    usage.flush(&meter.take()).await.unwrap();

    let days = usage
        .daily(
            &admin_scope(1, 5),
            date!(2026 - 11 - 30),
            date!(2026 - 12 - 02),
        )
        .await
        .unwrap();
    assert_eq!(days.len(), 3, "every day of the range, zeros included");
    assert_eq!(
        (days[0].date, days[0].api_calls, days[0].active_users),
        (date!(2026 - 11 - 30), 2, 1)
    );
    assert_eq!(
        (
            days[1].api_calls,
            days[1].messages_sent,
            days[1].active_users
        ),
        (4, 7, 2)
    );
    assert_eq!(days[2].api_calls, 0);
    let other = usage
        .daily(
            &admin_scope(2, 5),
            date!(2026 - 11 - 30),
            date!(2026 - 12 - 01),
        )
        .await
        .unwrap();
    assert_eq!(
        (other[0].api_calls, other[1].api_calls),
        (0, 1),
        "UTC account"
    );
    let totals = usage
        .totals(
            &PlatformScope::for_system_jobs(),
            date!(2026 - 11 - 01),
            date!(2026 - 12 - 31),
        )
        .await
        .unwrap();
    assert_eq!(totals.api_calls, 7);
    assert_eq!(totals.accounts, 2);
    assert_eq!(totals.active_users, 2);
}

#[tokio::test]
async fn dau_wau_mau_count_distinct_users_over_local_days() {
    use diesel_async::RunQueryDsl;
    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    let mut conn = fx.pool.get().await.unwrap();
    // Relative to today in the account's zone: user 5 today and 3 days ago, user 6 10 days
    // ago, user 7 40 days ago; account 2's users never count for account 1.
    diesel::sql_query(
        "INSERT INTO usage_active_users (account_id, day, user_id)
         SELECT a, (now() AT TIME ZONE 'UTC')::date - d, u
           FROM (VALUES (1, 0, 5), (1, 3, 5), (1, 10, 6), (1, 40, 7), (2, 0, 8)) v(a, d, u)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let active = PgUsageStore::new(fx.pool.clone())
        .active_users(&admin_scope(1, 5))
        .await
        .unwrap();
    assert_eq!((active.dau, active.wau, active.mau), (1, 1, 2));
    assert_eq!(active.time_zone, "UTC");
}

#[tokio::test]
async fn the_limit_taken_by_a_reservation_is_the_effective_one() {
    use whatpro_entitlements::EffectiveEntitlements;
    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    let store = PgEntitlementStore::new(fx.pool.clone());
    let scope = admin_scope(1, 5);
    // Pro plan (max_boards 50, max_messages_per_month unlimited), with overrides: rooms
    // unlimited by a null override, teams lowered to 1.
    let overrides = Overrides {
        limits: BTreeMap::from([(Resource::Rooms, None), (Resource::Teams, Some(1))]),
        features: BTreeMap::new(),
    };
    let stored = store
        .set_account(&scope, Some("pro".parse().unwrap()), Some(overrides))
        .await
        .unwrap();
    let effective = EffectiveEntitlements::of(&stored);
    for resource in [
        Resource::Teams,
        Resource::Boards,
        Resource::Rooms,
        Resource::MessagesPerMonth,
    ] {
        // Reserve until refused (or 60 times for unlimited ones): the refusal reports the
        // limit the domain computes, and comes exactly at it.
        let mut granted = 0;
        let refused = loop {
            match store.reserve(&scope, resource, "").await.unwrap() {
                ReserveOutcome::Granted { .. } => granted += 1,
                ReserveOutcome::Exceeded { limit, .. } => break Some(limit),
            }
            if granted == 60 {
                break None;
            }
        };
        match effective.limit(resource) {
            Some(limit) => {
                assert_eq!(refused, Some(limit), "{resource:?}");
                assert_eq!(granted, limit, "{resource:?}");
            }
            None => assert_eq!(refused, None, "{resource:?} is unlimited"),
        }
    }
}
