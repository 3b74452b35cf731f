//! The simulator's in-memory "database": customers, subscriptions and payments kept as the
//! JSON objects Asaas serves (clones of the shared examples with values overwritten), plus
//! the event outbox filled while handling a request or a test hook.

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use time::Date;

use crate::fixtures;
use crate::util;

/// Fee the simulator subtracts to compute `netValue` (as the examples: 197.00 → 195.01).
const FEE: f64 = 1.99;

/// Rows in creation order, with an index by `id`. Rows are never removed (deletion sets
/// `deleted: true`, as Asaas keeps deleted objects readable by id).
#[derive(Debug, Default)]
pub(crate) struct Table {
    rows: Vec<Value>,
    index: HashMap<String, usize>,
}

impl Table {
    pub fn insert(&mut self, row: Value) {
        let id = text(&row, "id").to_owned();
        self.index.insert(id, self.rows.len());
        self.rows.push(row);
    }

    pub fn get(&self, id: &str) -> Option<&Value> {
        self.index.get(id).and_then(|&i| self.rows.get(i))
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Value> {
        let i = *self.index.get(id)?;
        self.rows.get_mut(i)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Value> {
        self.rows.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Value> {
        self.rows.iter_mut()
    }
}

/// Everything the simulated Asaas account holds.
#[derive(Debug)]
pub(crate) struct State {
    pub api_key: String,
    pub customers: Table,
    pub subscriptions: Table,
    pub payments: Table,
    next_customer: u64,
    next_invoice: u64,
    next_nosso_numero: u64,
    event_prefix: String,
    next_event: u64,
    /// Webhook envelopes produced but not yet handed to the dispatcher.
    pub outbox: Vec<Value>,
}

impl State {
    pub fn new(api_key: String) -> Self {
        Self {
            api_key,
            customers: Table::default(),
            subscriptions: Table::default(),
            payments: Table::default(),
            next_customer: util::number(1_000_000..9_000_000),
            next_invoice: util::number(10_000_000..20_000_000),
            next_nosso_numero: util::number(100_000..900_000),
            event_prefix: util::hex(32),
            next_event: util::number(10_000_000..90_000_000),
            outbox: Vec::new(),
        }
    }

    pub fn new_customer_id(&mut self) -> String {
        self.next_customer += 1;
        format!("cus_{:012}", self.next_customer)
    }

    /// Queues a webhook envelope `{id, event, dateCreated, <key>: object}`.
    pub fn emit(&mut self, event: &str, key: &str, object: Value) {
        self.next_event += 1;
        let mut envelope = Map::new();
        envelope.insert(
            "id".to_owned(),
            Value::String(format!("evt_{}&{}", self.event_prefix, self.next_event)),
        );
        envelope.insert("event".to_owned(), Value::String(event.to_owned()));
        envelope.insert(
            "dateCreated".to_owned(),
            Value::String(util::timestamp_now()),
        );
        envelope.insert(key.to_owned(), object);
        self.outbox.push(Value::Object(envelope));
    }

    /// Queues a `PAYMENT_*` event for the payment's current state.
    pub fn emit_payment(&mut self, event: &str, payment_id: &str) {
        if let Some(payment) = self.payments.get(payment_id).cloned() {
            self.emit(event, "payment", payment);
        }
    }

    /// Queues a `SUBSCRIPTION_*` event for `subscription` (a REST-shaped object).
    pub fn emit_subscription(&mut self, event: &str, subscription: &Value) {
        self.emit(event, "subscription", webhook_subscription(subscription));
    }

    /// A new `PENDING` payment of `subscription` due on `due`, stored and returned.
    pub fn create_payment(&mut self, subscription: &Value, due: Date) -> Value {
        let suffix = util::lower_alnum(16);
        let value = number(subscription, "value");
        let billing_type = text(subscription, "billingType").to_owned();
        let boleto = billing_type == "BOLETO";
        self.next_invoice += 1;
        self.next_nosso_numero += 1;
        let mut payment = fixtures::PAYMENT_JSON.clone();
        let fields = [
            ("id", json!(format!("pay_{suffix}"))),
            ("dateCreated", json!(util::iso(util::today()))),
            ("customer", subscription["customer"].clone()),
            ("subscription", subscription["id"].clone()),
            ("value", json!(value)),
            ("netValue", json!(net_value(value))),
            ("description", subscription["description"].clone()),
            ("billingType", json!(billing_type)),
            ("status", json!("PENDING")),
            ("dueDate", json!(util::iso(due))),
            ("originalDueDate", json!(util::iso(due))),
            ("confirmedDate", Value::Null),
            ("paymentDate", Value::Null),
            ("clientPaymentDate", Value::Null),
            ("pixTransaction", Value::Null),
            (
                "invoiceUrl",
                json!(format!("https://sandbox.asaas.com/i/{suffix}")),
            ),
            ("invoiceNumber", json!(format!("{:08}", self.next_invoice))),
            (
                "externalReference",
                subscription["externalReference"].clone(),
            ),
            ("deleted", json!(false)),
            ("creditDate", Value::Null),
            ("estimatedCreditDate", Value::Null),
            ("transactionReceiptUrl", Value::Null),
            (
                "nossoNumero",
                if boleto {
                    json!(self.next_nosso_numero.to_string())
                } else {
                    Value::Null
                },
            ),
            (
                "bankSlipUrl",
                if boleto {
                    json!(format!("https://sandbox.asaas.com/b/pdf/{suffix}"))
                } else {
                    Value::Null
                },
            ),
            ("discount", subscription["discount"].clone()),
            ("fine", subscription["fine"].clone()),
            ("interest", subscription["interest"].clone()),
            ("refunds", Value::Null),
        ];
        for (key, value) in fields {
            put(&mut payment, key, value);
        }
        self.payments.insert(payment.clone());
        payment
    }
}

/// `netValue` for a gross `value`.
pub(crate) fn net_value(value: f64) -> f64 {
    util::round2((value - FEE).max(0.0))
}

/// Replaces `key` of a JSON object, only if the object already has it: objects keep the
/// key set of the example they were cloned from.
pub(crate) fn put(object: &mut Value, key: &str, value: Value) {
    match object.get_mut(key) {
        Some(slot) => *slot = value,
        None => tracing::debug!(key, "asaas-sim: key not in the example, not added"),
    }
}

/// A string field (empty when absent or not a string).
pub(crate) fn text<'a>(object: &'a Value, key: &str) -> &'a str {
    object.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// A number field (0 when absent or not a number).
pub(crate) fn number(object: &Value, key: &str) -> f64 {
    object.get(key).and_then(Value::as_f64).unwrap_or_default()
}

/// A boolean field (false when absent or not a boolean).
pub(crate) fn flag(object: &Value, key: &str) -> bool {
    object.get(key).and_then(Value::as_bool).unwrap_or_default()
}

/// A REST subscription object rendered as SUBSCRIPTION_* webhooks carry it: exactly the keys
/// of the webhook example, values from the subscription, dates as `dd/MM/yyyy`.
pub(crate) fn webhook_subscription(subscription: &Value) -> Value {
    let mut rendered = fixtures::WEBHOOK_SUBSCRIPTION_JSON.clone();
    if let Some(object) = rendered.as_object_mut() {
        for (key, slot) in object.iter_mut() {
            let Some(value) = subscription.get(key) else {
                continue;
            };
            *slot = match (key.as_str(), value.as_str().and_then(util::parse_iso)) {
                ("dateCreated" | "nextDueDate", Some(date)) => Value::String(util::br(date)),
                _ => value.clone(),
            };
        }
        if let Some(slot) = object.get_mut("sendPaymentByPostalService") {
            *slot = Value::Bool(false);
        }
    }
    rendered
}
