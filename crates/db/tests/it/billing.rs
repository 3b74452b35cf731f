//! The billing store: optimistic concurrency, audited transitions, per-tenant records,
//! de-duplicated events and their claims.

use time::macros::date;
use whatpro_billing::{
    BillingAccount, BillingStatus, BillingStore, EventOutcome, GatewayEvent, GatewayPayment,
    PaymentState, SaveError, StatusChange,
};
use whatpro_db::PgBillingStore;
use whatpro_iam::{ChatwootRole, PlatformScope};
use whatpro_kernel::AccountId;

use crate::support::{Fixture, admin_scope, now};

async fn two_accounts(fx: &Fixture) {
    let p = crate::support::profile(
        5,
        &[
            (1, ChatwootRole::Administrator),
            (2, ChatwootRole::Administrator),
        ],
    );
    fx.login(&p, "t-bill", now()).await;
}

fn subscribed(account: i64, version: i64) -> BillingAccount {
    let mut r = BillingAccount::trialing(AccountId::new(account));
    r.status = BillingStatus::Pending;
    r.plan_id = Some("starter".parse().unwrap());
    r.subscription_id = Some(format!("sub_{account}"));
    r.customer_id = Some(format!("cus_{account}"));
    r.next_due_date = Some(date!(2026 - 12 - 30));
    r.version = version;
    r
}

#[tokio::test]
async fn saves_are_versioned_audited_and_per_tenant() {
    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    let store = PgBillingStore::new(fx.pool.clone());
    let a = admin_scope(1, 5);
    assert_eq!(
        store.load(&a).await.unwrap().status,
        BillingStatus::Trialing
    );
    let change = StatusChange {
        from: BillingStatus::Trialing,
        to: BillingStatus::Pending,
        reason: "subscribed".to_owned(),
    };
    let saved = store
        .save(
            &a,
            &subscribed(1, 0),
            vec![change],
            Some("req-1".to_owned()),
        )
        .await
        .unwrap();
    assert_eq!((saved.status, saved.version), (BillingStatus::Pending, 1));
    // A second writer that loaded version 0 (or any stale version) is refused.
    assert_eq!(
        store.save(&a, &subscribed(1, 0), vec![], None).await,
        Err(SaveError::Stale)
    );
    let mut next = saved.clone();
    next.status = BillingStatus::Active;
    let again = store.save(&a, &next, vec![], None).await.unwrap();
    assert_eq!(again.version, 2);
    assert_eq!(
        store.save(&a, &next, vec![], None).await,
        Err(SaveError::Stale)
    );
    // Account 2 is untouched; the subscription maps to account 1 only.
    assert_eq!(
        store.load(&admin_scope(2, 5)).await.unwrap().status,
        BillingStatus::Trialing
    );
    let platform = PlatformScope::for_system_jobs();
    assert_eq!(
        store
            .account_of_subscription(&platform, "sub_1")
            .await
            .unwrap(),
        Some(AccountId::new(1))
    );
    assert_eq!(
        store
            .account_of_subscription(&platform, "sub_2")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.status(AccountId::new(1)).await.unwrap(),
        BillingStatus::Active
    );
    // The transition was audited in account 1 only, with the request id.
    let audit = fx.audit(1).await;
    let row = audit
        .iter()
        .find(|e| e.action == "billing.status_changed")
        .unwrap();
    assert_eq!(row.metadata["to"], "pending");
    assert_eq!(row.request_id.as_deref(), Some("req-1"));
    assert!(
        fx.audit(2)
            .await
            .iter()
            .all(|e| e.action != "billing.status_changed")
    );
}

#[tokio::test]
async fn payments_are_upserted_and_listed_per_tenant() {
    let fx = Fixture::new().await;
    two_accounts(&fx).await;
    let store = PgBillingStore::new(fx.pool.clone());
    let a = admin_scope(1, 5);
    let mut payment = GatewayPayment {
        id: "pay_1".to_owned(),
        subscription_id: Some("sub_1".to_owned()),
        state: PaymentState::Pending,
        value_cents: 9900,
        due_date: Some(date!(2026 - 11 - 30)),
        payment_date: None,
        deleted: false,
        invoice_url: Some("https://sandbox.asaas.com/i/1".to_owned()),
    };
    store.record_payment(&a, &payment).await.unwrap();
    payment.state = PaymentState::Received;
    payment.payment_date = Some(date!(2026 - 11 - 30));
    store.record_payment(&a, &payment).await.unwrap();
    let listed = store.recent_payments(&a, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].status.as_str(), listed[0].paid_at),
        ("RECEIVED", Some(date!(2026 - 11 - 30)))
    );
    assert!(
        store
            .recent_payments(&admin_scope(2, 5), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn events_are_stored_once_and_claimed_by_one_worker_at_a_time() {
    let fx = Fixture::new().await;
    let store = PgBillingStore::new(fx.pool.clone());
    let platform = PlatformScope::for_system_jobs();
    let event = |id: &str| GatewayEvent {
        id: id.to_owned(),
        event: "PAYMENT_RECEIVED".to_owned(),
        payment_id: Some("pay_1".to_owned()),
        subscription_id: None,
    };
    assert!(
        store
            .store_event(&platform, &event("evt_1"), b"{\"id\":\"evt_1\"}")
            .await
            .unwrap()
    );
    assert!(
        !store
            .store_event(&platform, &event("evt_1"), b"{\"id\":\"evt_1\"}")
            .await
            .unwrap()
    );
    assert!(
        store
            .store_event(&platform, &event("evt_2"), b"{\"id\":\"evt_2\"}")
            .await
            .unwrap()
    );
    // Two claims take the two events in order of arrival; a third finds nothing free.
    let first = store.claim_event(&platform, 60).await.unwrap().unwrap();
    let second = store.claim_event(&platform, 60).await.unwrap().unwrap();
    assert_eq!((first.id.as_str(), second.id.as_str()), ("evt_1", "evt_2"));
    assert!(store.claim_event(&platform, 60).await.unwrap().is_none());
    // A failed attempt keeps the event (claimable again once its lease ends); a finished
    // one is never claimed again.
    store
        .finish_event(&platform, "evt_1", None, Some("gateway down".to_owned()))
        .await
        .unwrap();
    store
        .finish_event(&platform, "evt_2", Some(EventOutcome::Applied), None)
        .await
        .unwrap();
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM billing_events WHERE processed_at IS NULL AND last_error = 'gateway down'")
            .await,
        1
    );
    let retried = store.claim_event(&platform, 0).await.unwrap();
    assert!(retried.is_none(), "evt_1's 60 s lease is still running");
    use diesel_async::RunQueryDsl;
    let mut conn = fx.pool.get().await.unwrap();
    diesel::sql_query("UPDATE billing_events SET claimed_until = now() - interval '1 second'")
        .execute(&mut conn)
        .await
        .unwrap();
    let retried = store.claim_event(&platform, 60).await.unwrap().unwrap();
    assert_eq!(retried.id, "evt_1");
}
