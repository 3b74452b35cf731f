//! Subscriptions and payments: create, read, update, delete, list a subscription's payments.

use serde_json::json;
use time::macros::date;
use whatpro_asaas::{
    AsaasClient, AsaasError, BillingType, Cycle, NewSubscription, PaymentStatus, Subscription,
    SubscriptionStatus, SubscriptionUpdate,
};
use whatpro_asaas_sim::AsaasSim;

use crate::{new_customer, start};

fn new_subscription(customer: &str) -> NewSubscription {
    NewSubscription {
        customer: customer.to_owned(),
        billing_type: BillingType::Undefined,
        value_cents: 9451,
        next_due_date: date!(2025 - 03 - 15),
        cycle: Cycle::Monthly,
        description: Some("WhatPro Hub - Plano Pro (mensal)".to_owned()),
        external_reference: Some("tenant_7f3c2a9e:plan_pro".to_owned()),
    }
}

async fn subscribed() -> (AsaasSim, AsaasClient, Subscription) {
    let (sim, client) = start().await;
    let customer = client.create_customer(&new_customer("t1")).await.unwrap();
    let subscription = client
        .create_subscription(&new_subscription(&customer.id))
        .await
        .unwrap();
    (sim, client, subscription)
}

#[tokio::test]
async fn creates_a_subscription_in_brl_and_reads_cents_back() {
    let (sim, client, subscription) = subscribed().await;
    assert!(subscription.id.starts_with("sub_"));
    assert_eq!(subscription.value_cents, 9451);
    assert_eq!(subscription.billing_type, BillingType::Undefined);
    assert_eq!(subscription.cycle, Cycle::Monthly);
    assert_eq!(subscription.status, SubscriptionStatus::Active);
    assert_eq!(subscription.next_due_date, Some(date!(2025 - 03 - 15)));
    assert_eq!(
        subscription.external_reference.as_deref(),
        Some("tenant_7f3c2a9e:plan_pro")
    );
    assert!(!subscription.deleted);

    let post = sim
        .requests()
        .into_iter()
        .find(|r| r.path == "/v3/subscriptions")
        .unwrap();
    let body = post.body_json().unwrap();
    assert_eq!(body["value"], json!(94.51));
    assert_eq!(body["nextDueDate"], json!("2025-03-15"));
    assert_eq!(body["billingType"], json!("UNDEFINED"));
    assert_eq!(body["cycle"], json!("MONTHLY"));
    assert_eq!(
        sim.subscription(&subscription.id).unwrap()["value"],
        json!(94.51)
    );

    // The first payment exists right away; the subscription's next due date moved a cycle.
    let read = client.get_subscription(&subscription.id).await.unwrap();
    assert_eq!(read.next_due_date, Some(date!(2025 - 04 - 15)));
    let page = client
        .list_subscription_payments(&subscription.id, 0, 10)
        .await
        .unwrap();
    assert_eq!(page.data.len(), 1);
    assert_eq!(page.total_count, 1);
    assert!(!page.has_more);
    let first = &page.data[0];
    assert_eq!(first.status, PaymentStatus::Pending);
    assert_eq!(first.value_cents, 9451);
    assert_eq!(first.due_date, date!(2025 - 03 - 15));
    assert_eq!(first.original_due_date, Some(date!(2025 - 03 - 15)));
    assert_eq!(
        first.subscription.as_deref(),
        Some(subscription.id.as_str())
    );
    assert_eq!(first.payment_date, None);
    assert!(
        first
            .invoice_url
            .as_deref()
            .unwrap()
            .starts_with("https://")
    );
    assert_eq!(client.get_payment(&first.id).await.unwrap(), *first);
}

#[tokio::test]
async fn reads_payment_status_changes() {
    let (sim, client, subscription) = subscribed().await;
    let payment_id = sim.subscription_payments(&subscription.id)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.set_payment_status(&payment_id, "RECEIVED").unwrap();
    let payment = client.get_payment(&payment_id).await.unwrap();
    assert_eq!(payment.status, PaymentStatus::Received);
    assert!(payment.status.is_paid());
    assert!(payment.payment_date.is_some());
    assert!(payment.confirmed_date.is_some());
    assert_eq!(
        client.get_payment("pay_unknown").await,
        Err(AsaasError::NotFound)
    );
}

#[tokio::test]
async fn pages_through_a_subscriptions_payments() {
    let (sim, client, subscription) = subscribed().await;
    for due in [date!(2025 - 04 - 15), date!(2025 - 05 - 15)] {
        sim.create_next_payment(&subscription.id, due).unwrap();
    }
    let first = client
        .list_subscription_payments(&subscription.id, 0, 2)
        .await
        .unwrap();
    assert_eq!(first.data.len(), 2);
    assert!(first.has_more);
    assert_eq!(first.total_count, 3);
    assert_eq!((first.offset, first.limit), (0, 2));
    let second = client
        .list_subscription_payments(&subscription.id, 2, 2)
        .await
        .unwrap();
    assert_eq!(second.data.len(), 1);
    assert!(!second.has_more);
    assert_eq!(second.data[0].due_date, date!(2025 - 05 - 15));
    // A limit above 100 is clamped before it is sent.
    client
        .list_subscription_payments(&subscription.id, 0, 1000)
        .await
        .unwrap();
    let sent = sim.requests().pop().unwrap();
    assert!(sent.query_pairs().contains(&("limit".into(), "100".into())));
    assert_eq!(
        client.list_subscription_payments("sub_nope", 0, 10).await,
        Err(AsaasError::NotFound)
    );
}

#[tokio::test]
async fn updates_a_subscription() {
    let (sim, client, subscription) = subscribed().await;
    let updated = client
        .update_subscription(
            &subscription.id,
            &SubscriptionUpdate {
                value_cents: Some(29_700),
                description: Some("WhatPro Hub - Plano Business (mensal)".to_owned()),
                update_pending_payments: Some(true),
                billing_type: Some(BillingType::Pix),
                ..SubscriptionUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.value_cents, 29_700);
    assert_eq!(updated.billing_type, BillingType::Pix);
    assert_eq!(
        updated.description.as_deref(),
        Some("WhatPro Hub - Plano Business (mensal)")
    );
    let put = sim.requests().pop().unwrap();
    assert_eq!(put.method, "PUT");
    assert_eq!(
        put.body_json().unwrap(),
        json!({"value": 297.0, "description": "WhatPro Hub - Plano Business (mensal)",
               "updatePendingPayments": true, "billingType": "PIX"})
    );
    // The pending payment follows because of updatePendingPayments.
    let payment = &sim.subscription_payments(&subscription.id)[0];
    assert_eq!(payment["value"], json!(297.0));

    let paused = client
        .update_subscription(
            &subscription.id,
            &SubscriptionUpdate {
                status: Some(SubscriptionStatus::Inactive),
                ..SubscriptionUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(paused.status, SubscriptionStatus::Inactive);

    // Reactivating requires a next due date.
    let error = client
        .update_subscription(
            &subscription.id,
            &SubscriptionUpdate {
                status: Some(SubscriptionStatus::Active),
                ..SubscriptionUpdate::default()
            },
        )
        .await
        .unwrap_err();
    assert!(error.has_code("invalid_nextDueDate"), "{error:?}");
    let active = client
        .update_subscription(
            &subscription.id,
            &SubscriptionUpdate {
                status: Some(SubscriptionStatus::Active),
                next_due_date: Some(date!(2025 - 06 - 01)),
                ..SubscriptionUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(active.status, SubscriptionStatus::Active);
    assert_eq!(active.next_due_date, Some(date!(2025 - 06 - 01)));
}

#[tokio::test]
async fn deletes_a_subscription() {
    let (sim, client, subscription) = subscribed().await;
    let deleted = client.delete_subscription(&subscription.id).await.unwrap();
    assert!(deleted.deleted);
    assert_eq!(deleted.id, subscription.id);
    let read = client.get_subscription(&subscription.id).await.unwrap();
    assert!(read.deleted);
    assert_eq!(read.status, SubscriptionStatus::Inactive);
    // Its pending payment was removed.
    let page = client
        .list_subscription_payments(&subscription.id, 0, 10)
        .await
        .unwrap();
    assert!(page.data.is_empty());
    let delete = sim
        .requests()
        .into_iter()
        .find(|r| r.method == "DELETE")
        .unwrap();
    assert!(delete.body.is_empty());
    assert_eq!(
        client.delete_subscription(&subscription.id).await,
        Err(AsaasError::NotFound)
    );
}

#[tokio::test]
async fn rejects_an_invalid_subscription() {
    let (_sim, client) = start().await;
    let mut invalid = new_subscription("cus_missing");
    invalid.value_cents = 0;
    let error = client.create_subscription(&invalid).await.unwrap_err();
    let AsaasError::Rejected {
        status: 400,
        errors,
    } = &error
    else {
        panic!("{error:?}");
    };
    let codes: Vec<&str> = errors.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(codes, ["invalid_customer", "invalid_value"]);
}
