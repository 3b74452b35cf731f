//! Webhook envelopes: every shared example, the simulator's own deliveries, token checks,
//! dates in both formats, money rounding.

use serde_json::{Value, json};
use time::macros::date;
use whatpro_asaas::{
    ListPage, Payment, PaymentStatus, SubscriptionStatus, WebhookParseError, decimal_to_cents,
    f64_to_cents, parse_date, parse_webhook, token_matches,
};

use crate::{new_customer, shared_dir, shared_text, start};

/// Every `webhook-*.json` example except the webhook-configuration ones.
fn webhook_examples() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(shared_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with("webhook-")
                && !name.starts_with("webhook-config")
                && name.ends_with(".json")
        })
        .map(|path| {
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&path).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn parses_every_shared_webhook_example() {
    let examples = webhook_examples();
    assert_eq!(examples.len(), 11, "payment x7 + subscription x4");
    for (name, body) in examples {
        let raw: Value = serde_json::from_slice(&body).unwrap();
        let event = parse_webhook(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(event.id, raw["id"].as_str().unwrap(), "{name}");
        assert_eq!(event.event, raw["event"].as_str().unwrap(), "{name}");
        assert_eq!(
            event.date_created.as_deref(),
            raw["dateCreated"].as_str(),
            "{name}"
        );
        if name.starts_with("webhook-payment-") {
            let payment = event.payment.unwrap_or_else(|| panic!("{name}"));
            assert!(event.subscription.is_none(), "{name}");
            assert_eq!(payment.id, raw["payment"]["id"].as_str().unwrap());
            assert_eq!(payment.value_cents, 19_700, "{name}");
            assert_eq!(
                payment.status.as_str(),
                raw["payment"]["status"].as_str().unwrap(),
                "{name}"
            );
            assert!(!matches!(payment.status, PaymentStatus::Other(_)), "{name}");
            assert_eq!(
                payment.deleted,
                raw["payment"]["deleted"].as_bool().unwrap()
            );
            assert_eq!(
                payment.subscription.as_deref(),
                Some("sub_k8w2q7r1tz0m4pvn")
            );
        } else {
            let subscription = event.subscription.unwrap_or_else(|| panic!("{name}"));
            assert!(event.payment.is_none(), "{name}");
            assert_eq!(subscription.id, "sub_k8w2q7r1tz0m4pvn");
            // dd/MM/yyyy in these examples.
            let text = raw["subscription"]["nextDueDate"].as_str().unwrap();
            assert!(text.contains('/'), "{name}: {text}");
            assert_eq!(subscription.next_due_date, parse_date(text), "{name}");
            assert!(!matches!(subscription.status, SubscriptionStatus::Other(_)));
        }
    }
}

#[test]
fn example_details() {
    let confirmed = parse_webhook(shared_text("webhook-payment-confirmed.json").as_bytes())
        .unwrap()
        .payment
        .unwrap();
    assert_eq!(confirmed.status, PaymentStatus::Confirmed);
    assert_eq!(confirmed.net_value_cents, Some(18_746));
    assert_eq!(confirmed.confirmed_date, Some(date!(2025 - 03 - 14)));
    assert_eq!(confirmed.payment_date, None);
    let updated = parse_webhook(shared_text("webhook-payment-updated.json").as_bytes())
        .unwrap()
        .payment
        .unwrap();
    assert_eq!(updated.due_date, date!(2025 - 03 - 18));
    assert_eq!(updated.original_due_date, Some(date!(2025 - 03 - 15)));
    let deleted = parse_webhook(shared_text("webhook-subscription-deleted.json").as_bytes())
        .unwrap()
        .subscription
        .unwrap();
    assert!(deleted.deleted);
    assert_eq!(deleted.status, SubscriptionStatus::Inactive);
    assert_eq!(deleted.next_due_date, Some(date!(2025 - 05 - 15)));
    let updated = parse_webhook(shared_text("webhook-subscription-updated.json").as_bytes())
        .unwrap()
        .subscription
        .unwrap();
    assert_eq!(updated.value_cents, 29_700);
}

#[test]
fn parses_the_payments_list_example() {
    let page: ListPage<Payment> =
        serde_json::from_str(&shared_text("subscription-payments-list-response.json")).unwrap();
    assert!(!page.has_more);
    assert_eq!((page.total_count, page.limit, page.offset), (2, 10, 0));
    assert_eq!(page.data.len(), 2);
    assert_eq!(page.data[0].status, PaymentStatus::Received);
    assert_eq!(page.data[0].net_value_cents, Some(19_501));
    assert_eq!(page.data[1].status, PaymentStatus::Pending);
}

#[test]
fn unknown_events_statuses_and_keys_are_accepted() {
    let mut raw: Value =
        serde_json::from_str(&shared_text("webhook-payment-received.json")).unwrap();
    raw["event"] = json!("PAYMENT_SOMETHING_NEW");
    raw["payment"]["status"] = json!("SOMETHING_NEW");
    raw["payment"]["brandNewField"] = json!({"nested": [1, 2]});
    raw["account"] = json!({"id": "acc", "ownerId": 1});
    let event = parse_webhook(raw.to_string().as_bytes()).unwrap();
    assert_eq!(event.event, "PAYMENT_SOMETHING_NEW");
    assert_eq!(
        event.payment.unwrap().status,
        PaymentStatus::Other("SOMETHING_NEW".into())
    );
}

#[test]
fn malformed_envelopes_are_errors() {
    assert!(matches!(
        parse_webhook(b"{\"id\":"),
        Err(WebhookParseError::NotJson(_))
    ));
    let mut raw: Value =
        serde_json::from_str(&shared_text("webhook-payment-created.json")).unwrap();
    raw.as_object_mut().unwrap().remove("id");
    assert_eq!(
        parse_webhook(raw.to_string().as_bytes()),
        Err(WebhookParseError::Missing("id"))
    );
    let mut raw: Value =
        serde_json::from_str(&shared_text("webhook-payment-created.json")).unwrap();
    raw["event"] = Value::Null;
    assert_eq!(
        parse_webhook(raw.to_string().as_bytes()),
        Err(WebhookParseError::Missing("event"))
    );
    let mut raw: Value =
        serde_json::from_str(&shared_text("webhook-payment-created.json")).unwrap();
    raw["payment"]["dueDate"] = json!("15.03.2025");
    assert!(matches!(
        parse_webhook(raw.to_string().as_bytes()),
        Err(WebhookParseError::Invalid(_))
    ));
}

#[test]
fn dates_in_both_formats() {
    let mut raw: Value =
        serde_json::from_str(&shared_text("webhook-payment-created.json")).unwrap();
    raw["payment"]["dueDate"] = json!("20/04/2025");
    raw["payment"]["originalDueDate"] = json!("2025-04-15");
    let payment = parse_webhook(raw.to_string().as_bytes())
        .unwrap()
        .payment
        .unwrap();
    assert_eq!(payment.due_date, date!(2025 - 04 - 20));
    assert_eq!(payment.original_due_date, Some(date!(2025 - 04 - 15)));
    assert_eq!(parse_date("29/02/2024"), Some(date!(2024 - 02 - 29)));
    assert_eq!(parse_date("29/02/2025"), None);
}

#[test]
fn money_rounds_to_the_nearest_cent() {
    let mut raw: Value =
        serde_json::from_str(&shared_text("webhook-payment-created.json")).unwrap();
    for (value, cents) in [
        (json!(94.51), 9451),
        (json!(0.29), 29),
        (json!(1.15), 115),
        (json!(197), 19_700),
        (json!(10.005), 1001),
        (json!(10.004), 1000),
    ] {
        raw["payment"]["value"] = value.clone();
        let payment = parse_webhook(raw.to_string().as_bytes())
            .unwrap()
            .payment
            .unwrap();
        assert_eq!(payment.value_cents, cents, "{value}");
    }
    assert_eq!(f64_to_cents(94.51), Some(9451));
    assert_eq!(decimal_to_cents("94.505"), Some(9451));
}

#[test]
fn token_check() {
    let token = "wh_9Zk2Lq7Xv4Rt8Pm3Nc6Bd1Fg5Hj0Ks2Wy";
    assert!(token_matches(token, token.as_bytes()));
    assert!(!token_matches(
        token,
        b"wh_9Zk2Lq7Xv4Rt8Pm3Nc6Bd1Fg5Hj0Ks2W"
    ));
    assert!(!token_matches(token, b""));
    assert!(!token_matches("", b""));
}

/// Everything the simulator sends (subscription created/updated/deleted, every payment
/// event) parses with the client's types.
#[tokio::test]
async fn parses_every_envelope_the_simulator_emits() {
    let (sim, client) = start().await;
    let customer = client.create_customer(&new_customer("t")).await.unwrap();
    let subscription = client
        .create_subscription(&whatpro_asaas::NewSubscription {
            customer: customer.id,
            billing_type: whatpro_asaas::BillingType::CreditCard,
            value_cents: 9451,
            next_due_date: date!(2025 - 03 - 15),
            cycle: whatpro_asaas::Cycle::Monthly,
            description: None,
            external_reference: Some("t:plan".into()),
        })
        .await
        .unwrap();
    let payment = sim.subscription_payments(&subscription.id)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for status in ["CONFIRMED", "RECEIVED", "REFUNDED", "OVERDUE", "PENDING"] {
        sim.set_payment_status(&payment, status).unwrap();
    }
    sim.create_next_payment(&subscription.id, date!(2025 - 04 - 15))
        .unwrap();
    client
        .update_subscription(
            &subscription.id,
            &whatpro_asaas::SubscriptionUpdate {
                status: Some(SubscriptionStatus::Inactive),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    client.delete_subscription(&subscription.id).await.unwrap();

    let events = sim.events();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "SUBSCRIPTION_CREATED",
            "PAYMENT_CREATED",
            "PAYMENT_CONFIRMED",
            "PAYMENT_RECEIVED",
            "PAYMENT_REFUNDED",
            "PAYMENT_OVERDUE",
            "PAYMENT_UPDATED",
            "PAYMENT_CREATED",
            "SUBSCRIPTION_UPDATED",
            "SUBSCRIPTION_INACTIVATED",
            "PAYMENT_DELETED",
            "PAYMENT_DELETED",
            "SUBSCRIPTION_DELETED",
        ]
    );
    for raw in &events {
        let event = parse_webhook(raw.to_string().as_bytes()).unwrap();
        if event.event.starts_with("PAYMENT_") {
            assert_eq!(event.payment.unwrap().value_cents, 9451);
        } else {
            let s = event.subscription.unwrap();
            assert_eq!(s.id, subscription.id);
            assert_eq!(s.value_cents, 9451);
        }
    }
}
