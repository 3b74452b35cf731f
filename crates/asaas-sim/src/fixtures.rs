//! Verbatim copies of the shared Asaas example payloads (`shared/asaas/`), embedded at
//! compile time. Every object the simulator serves or posts starts as a clone of one of
//! these, with ids and values overwritten, so it has exactly the example's keys (nulls
//! included). Tests check that the copies are byte-identical to the shared originals.

use std::sync::LazyLock;

use serde_json::Value;

/// `customer-create-response.json`: the customer object.
pub const CUSTOMER: &str = include_str!("../fixtures/customer-create-response.json");
/// `customer-delete-response.json`: `{"deleted":true,"id":…}`.
pub const CUSTOMER_DELETED: &str = include_str!("../fixtures/customer-delete-response.json");
/// `subscription-create-response.json`: the subscription object.
pub const SUBSCRIPTION: &str = include_str!("../fixtures/subscription-create-response.json");
/// `subscription-delete-response.json`: `{"deleted":true,"id":…}`.
pub const SUBSCRIPTION_DELETED: &str =
    include_str!("../fixtures/subscription-delete-response.json");
/// `subscription-payments-list-response.json`: the list envelope and payment objects.
pub const PAYMENTS_LIST: &str =
    include_str!("../fixtures/subscription-payments-list-response.json");
/// `error-400.json`: a validation error list.
pub const ERROR_400: &str = include_str!("../fixtures/error-400.json");
/// `error-401.json`: the answer to a missing or wrong `access_token`.
pub const ERROR_401: &str = include_str!("../fixtures/error-401.json");

/// Webhook example bodies (`webhook-<name>.json`), keyed by event name.
pub const WEBHOOK_EXAMPLES: &[(&str, &str)] = &[
    (
        "PAYMENT_CREATED",
        include_str!("../fixtures/webhook-payment-created.json"),
    ),
    (
        "PAYMENT_UPDATED",
        include_str!("../fixtures/webhook-payment-updated.json"),
    ),
    (
        "PAYMENT_CONFIRMED",
        include_str!("../fixtures/webhook-payment-confirmed.json"),
    ),
    (
        "PAYMENT_RECEIVED",
        include_str!("../fixtures/webhook-payment-received.json"),
    ),
    (
        "PAYMENT_OVERDUE",
        include_str!("../fixtures/webhook-payment-overdue.json"),
    ),
    (
        "PAYMENT_REFUNDED",
        include_str!("../fixtures/webhook-payment-refunded.json"),
    ),
    (
        "PAYMENT_DELETED",
        include_str!("../fixtures/webhook-payment-deleted.json"),
    ),
    (
        "SUBSCRIPTION_CREATED",
        include_str!("../fixtures/webhook-subscription-created.json"),
    ),
    (
        "SUBSCRIPTION_UPDATED",
        include_str!("../fixtures/webhook-subscription-updated.json"),
    ),
    (
        "SUBSCRIPTION_INACTIVATED",
        include_str!("../fixtures/webhook-subscription-inactivated.json"),
    ),
    (
        "SUBSCRIPTION_DELETED",
        include_str!("../fixtures/webhook-subscription-deleted.json"),
    ),
];

/// The embedded example body for a webhook `event`, parsed; `None` for an event without one.
pub fn webhook_example(event: &str) -> Option<Value> {
    WEBHOOK_EXAMPLES
        .iter()
        .find(|(name, _)| *name == event)
        .map(|(_, text)| parse(text))
}

fn parse(text: &str) -> Value {
    // The copies are valid JSON (checked by the tests); `Null` only guards against a bad copy.
    serde_json::from_str(text).unwrap_or(Value::Null)
}

pub(crate) static CUSTOMER_JSON: LazyLock<Value> = LazyLock::new(|| parse(CUSTOMER));
pub(crate) static CUSTOMER_DELETED_JSON: LazyLock<Value> =
    LazyLock::new(|| parse(CUSTOMER_DELETED));
pub(crate) static SUBSCRIPTION_JSON: LazyLock<Value> = LazyLock::new(|| parse(SUBSCRIPTION));
pub(crate) static SUBSCRIPTION_DELETED_JSON: LazyLock<Value> =
    LazyLock::new(|| parse(SUBSCRIPTION_DELETED));
pub(crate) static ERROR_401_JSON: LazyLock<Value> = LazyLock::new(|| parse(ERROR_401));

/// A pending payment (the second item of the list example).
pub(crate) static PAYMENT_JSON: LazyLock<Value> =
    LazyLock::new(|| parse(PAYMENTS_LIST)["data"][1].clone());

/// The list envelope without items.
pub(crate) static LIST_JSON: LazyLock<Value> = LazyLock::new(|| {
    let mut list = parse(PAYMENTS_LIST);
    if let Some(object) = list.as_object_mut() {
        object.insert("data".to_owned(), Value::Array(Vec::new()));
    }
    list
});

/// The subscription object as SUBSCRIPTION_* webhooks carry it (other keys than the REST
/// object, dates as `dd/MM/yyyy`).
pub(crate) static WEBHOOK_SUBSCRIPTION_JSON: LazyLock<Value> = LazyLock::new(|| {
    webhook_example("SUBSCRIPTION_CREATED")
        .map(|e| e["subscription"].clone())
        .unwrap_or(Value::Null)
});

/// The card summary a card payment carries once paid (from the PAYMENT_CONFIRMED example).
pub(crate) static CREDIT_CARD_JSON: LazyLock<Value> = LazyLock::new(|| {
    webhook_example("PAYMENT_CONFIRMED")
        .map(|e| e["payment"]["creditCard"].clone())
        .unwrap_or(Value::Null)
});

/// A refund entry (from the PAYMENT_REFUNDED example).
pub(crate) static REFUND_JSON: LazyLock<Value> = LazyLock::new(|| {
    webhook_example("PAYMENT_REFUNDED")
        .map(|e| e["payment"]["refunds"][0].clone())
        .unwrap_or(Value::Null)
});
