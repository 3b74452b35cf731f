//! Asaas objects as the Hub reads and writes them. Reading is lenient: unknown keys are
//! ignored, unknown enum strings are kept in an `Other` variant, `null` is accepted where
//! Asaas may send it. Money is integer cents; dates are [`time::Date`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::Date;

use crate::wire;

/// Declares an Asaas enum: known values plus `Other(String)` for anything new, read from
/// and written as the Asaas string.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )+
            /// A value this client does not know, kept verbatim.
            Other(String),
        }

        impl $name {
            /// The Asaas string.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Other(text) => text,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $( $text => Self::$variant, )+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Ok(Self::from(text.as_str()))
            }
        }
    };
}

open_enum! {
    /// How a payment is paid (`billingType`). Subscriptions use the first four.
    BillingType {
        /// `UNDEFINED`: the payer chooses on the invoice page.
        Undefined = "UNDEFINED",
        /// `BOLETO`.
        Boleto = "BOLETO",
        /// `CREDIT_CARD`.
        CreditCard = "CREDIT_CARD",
        /// `PIX`.
        Pix = "PIX",
        /// `DEBIT_CARD` (payments only).
        DebitCard = "DEBIT_CARD",
        /// `TRANSFER` (payments only).
        Transfer = "TRANSFER",
        /// `DEPOSIT` (payments only).
        Deposit = "DEPOSIT",
    }
}

open_enum! {
    /// How often a subscription generates a payment (`cycle`).
    Cycle {
        /// `WEEKLY`.
        Weekly = "WEEKLY",
        /// `BIWEEKLY` (every two weeks).
        Biweekly = "BIWEEKLY",
        /// `MONTHLY`.
        Monthly = "MONTHLY",
        /// `BIMONTHLY` (every two months).
        Bimonthly = "BIMONTHLY",
        /// `QUARTERLY`.
        Quarterly = "QUARTERLY",
        /// `SEMIANNUALLY`.
        Semiannually = "SEMIANNUALLY",
        /// `YEARLY`.
        Yearly = "YEARLY",
    }
}

open_enum! {
    /// State of a subscription (`status`). Only `ACTIVE` and `INACTIVE` can be set by update.
    SubscriptionStatus {
        /// `ACTIVE`: generating payments.
        Active = "ACTIVE",
        /// `EXPIRED`: reached its end date or payment count.
        Expired = "EXPIRED",
        /// `INACTIVE`: paused (or deleted).
        Inactive = "INACTIVE",
    }
}

open_enum! {
    /// State of a payment (`status`).
    PaymentStatus {
        /// `PENDING`: awaiting payment.
        Pending = "PENDING",
        /// `RECEIVED`: paid and the money is available.
        Received = "RECEIVED",
        /// `CONFIRMED`: paid, balance not yet released (typical for cards).
        Confirmed = "CONFIRMED",
        /// `OVERDUE`: past its due date, unpaid.
        Overdue = "OVERDUE",
        /// `REFUNDED`.
        Refunded = "REFUNDED",
        /// `RECEIVED_IN_CASH`: marked as paid outside Asaas.
        ReceivedInCash = "RECEIVED_IN_CASH",
        /// `REFUND_REQUESTED`.
        RefundRequested = "REFUND_REQUESTED",
        /// `REFUND_IN_PROGRESS`.
        RefundInProgress = "REFUND_IN_PROGRESS",
        /// `CHARGEBACK_REQUESTED`.
        ChargebackRequested = "CHARGEBACK_REQUESTED",
        /// `CHARGEBACK_DISPUTE`.
        ChargebackDispute = "CHARGEBACK_DISPUTE",
        /// `AWAITING_CHARGEBACK_REVERSAL`.
        AwaitingChargebackReversal = "AWAITING_CHARGEBACK_REVERSAL",
        /// `DUNNING_REQUESTED`.
        DunningRequested = "DUNNING_REQUESTED",
        /// `DUNNING_RECEIVED`.
        DunningReceived = "DUNNING_RECEIVED",
        /// `AWAITING_RISK_ANALYSIS`.
        AwaitingRiskAnalysis = "AWAITING_RISK_ANALYSIS",
        /// `AUTHORIZED`: card pre-authorisation (newer API revisions).
        Authorized = "AUTHORIZED",
    }
}

impl PaymentStatus {
    /// `CONFIRMED`, `RECEIVED` or `RECEIVED_IN_CASH`: the payer has paid.
    pub fn is_paid(&self) -> bool {
        matches!(
            self,
            Self::Confirmed | Self::Received | Self::ReceivedInCash
        )
    }
}

/// A customer (payer) as Asaas returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    /// `cus_…`.
    pub id: String,
    /// Name.
    #[serde(default, deserialize_with = "wire::de_text")]
    pub name: String,
    /// E-mail, if set.
    #[serde(default)]
    pub email: Option<String>,
    /// CPF (11 digits) or CNPJ (14 digits).
    #[serde(default)]
    pub cpf_cnpj: Option<String>,
    /// The Hub's reference (the tenant), if set.
    #[serde(default)]
    pub external_reference: Option<String>,
    /// Whether the customer was deleted.
    #[serde(default, deserialize_with = "wire::de_flag")]
    pub deleted: bool,
}

/// A customer to create (`POST /customers`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewCustomer {
    /// Name (required).
    pub name: String,
    /// CPF or CNPJ, digits only (required).
    pub cpf_cnpj: String,
    /// E-mail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The Hub's reference (the tenant); Asaas does not de-duplicate, so search by it first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_reference: Option<String>,
    /// `true`: Asaas sends no e-mail or SMS to the payer (the Hub does its own dunning).
    pub notification_disabled: bool,
}

/// A subscription (recurring charge) as Asaas returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// `sub_…`.
    pub id: String,
    /// The customer's `cus_…` id.
    #[serde(default, deserialize_with = "wire::de_text")]
    pub customer: String,
    /// How its payments are paid.
    pub billing_type: BillingType,
    /// How often a payment is generated.
    pub cycle: Cycle,
    /// Amount per cycle, in cents.
    #[serde(rename = "value", deserialize_with = "wire::de_cents")]
    pub value_cents: i64,
    /// Due date of the next payment to be generated.
    #[serde(default, deserialize_with = "wire::de_opt_date")]
    pub next_due_date: Option<Date>,
    /// State.
    pub status: SubscriptionStatus,
    /// Whether the subscription was deleted.
    #[serde(default, deserialize_with = "wire::de_flag")]
    pub deleted: bool,
    /// The Hub's reference, if set.
    #[serde(default)]
    pub external_reference: Option<String>,
    /// Description shown to the payer, if set.
    #[serde(default)]
    pub description: Option<String>,
}

/// A subscription to create (`POST /subscriptions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSubscription {
    /// The customer's `cus_…` id.
    pub customer: String,
    /// `UNDEFINED`, `BOLETO`, `CREDIT_CARD` or `PIX`.
    pub billing_type: BillingType,
    /// Amount per cycle in cents (sent as a BRL number).
    #[serde(rename = "value", serialize_with = "wire::ser_cents")]
    pub value_cents: i64,
    /// Due date of the first payment.
    #[serde(serialize_with = "wire::ser_date")]
    pub next_due_date: Date,
    /// How often a payment is generated.
    pub cycle: Cycle,
    /// Description shown to the payer (≤ 500 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The Hub's reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_reference: Option<String>,
}

/// Changes to a subscription (`PUT /subscriptions/{id}`); `None` fields are not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionUpdate {
    /// New amount per cycle in cents; affects only future payments unless
    /// `update_pending_payments`.
    #[serde(
        rename = "value",
        serialize_with = "wire::ser_opt_cents",
        skip_serializing_if = "Option::is_none"
    )]
    pub value_cents: Option<i64>,
    /// Due date of the next payment to be generated (does not move an existing one).
    #[serde(
        serialize_with = "wire::ser_opt_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_due_date: Option<Date>,
    /// New description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `ACTIVE` or `INACTIVE` (going back to `ACTIVE` requires `next_due_date`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<SubscriptionStatus>,
    /// Also apply value and billing type to payments not yet paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_pending_payments: Option<bool>,
    /// New billing type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing_type: Option<BillingType>,
}

/// A payment (one charge, e.g. one cycle of a subscription) as Asaas returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    /// `pay_…`.
    pub id: String,
    /// The customer's `cus_…` id.
    #[serde(default, deserialize_with = "wire::de_text")]
    pub customer: String,
    /// The subscription's `sub_…` id, for subscription payments.
    #[serde(default)]
    pub subscription: Option<String>,
    /// State.
    pub status: PaymentStatus,
    /// How it is (or was) paid.
    #[serde(default)]
    pub billing_type: Option<BillingType>,
    /// Amount in cents.
    #[serde(rename = "value", deserialize_with = "wire::de_cents")]
    pub value_cents: i64,
    /// Amount after Asaas' fee, in cents, when known.
    #[serde(rename = "netValue", default, deserialize_with = "wire::de_opt_cents")]
    pub net_value_cents: Option<i64>,
    /// Current due date.
    #[serde(deserialize_with = "wire::de_date")]
    pub due_date: Date,
    /// Due date when the payment was created.
    #[serde(default, deserialize_with = "wire::de_opt_date")]
    pub original_due_date: Option<Date>,
    /// Date the money was received.
    #[serde(default, deserialize_with = "wire::de_opt_date")]
    pub payment_date: Option<Date>,
    /// Date the payment was confirmed.
    #[serde(default, deserialize_with = "wire::de_opt_date")]
    pub confirmed_date: Option<Date>,
    /// Whether the payment was deleted.
    #[serde(default, deserialize_with = "wire::de_flag")]
    pub deleted: bool,
    /// The payer's invoice page.
    #[serde(default)]
    pub invoice_url: Option<String>,
    /// The Hub's reference, if set.
    #[serde(default)]
    pub external_reference: Option<String>,
}

/// The answer to a delete: `{"deleted":true,"id":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Deleted {
    /// Whether the object is now deleted.
    #[serde(default, deserialize_with = "wire::de_flag")]
    pub deleted: bool,
    /// The deleted object's id.
    #[serde(default, deserialize_with = "wire::de_text")]
    pub id: String,
}

/// One page of a list endpoint:
/// `{"object":"list","hasMore","totalCount","limit","offset","data":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPage<T> {
    /// Whether more items follow this page.
    #[serde(default, deserialize_with = "wire::de_flag")]
    pub has_more: bool,
    /// Items matching in total.
    #[serde(default)]
    pub total_count: u64,
    /// Page size used.
    #[serde(default)]
    pub limit: u64,
    /// Offset of the first item.
    #[serde(default)]
    pub offset: u64,
    /// The items.
    pub data: Vec<T>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::date;

    #[test]
    fn enums_keep_unknown_values() {
        assert_eq!(PaymentStatus::from("RECEIVED"), PaymentStatus::Received);
        let odd: PaymentStatus = serde_json::from_value(json!("SOMETHING_NEW")).unwrap();
        assert_eq!(odd, PaymentStatus::Other("SOMETHING_NEW".into()));
        assert_eq!(serde_json::to_value(&odd).unwrap(), json!("SOMETHING_NEW"));
        assert_eq!(
            serde_json::to_value(BillingType::CreditCard).unwrap(),
            json!("CREDIT_CARD")
        );
        assert_eq!(Cycle::from("YEARLY").to_string(), "YEARLY");
        assert!(PaymentStatus::Confirmed.is_paid());
        assert!(!PaymentStatus::Overdue.is_paid());
    }

    #[test]
    fn requests_serialize_like_asaas_expects() {
        let body = serde_json::to_value(NewSubscription {
            customer: "cus_1".into(),
            billing_type: BillingType::Undefined,
            value_cents: 9451,
            next_due_date: date!(2025 - 03 - 15),
            cycle: Cycle::Monthly,
            description: None,
            external_reference: Some("t1".into()),
        })
        .unwrap();
        assert_eq!(
            body,
            json!({"customer":"cus_1","billingType":"UNDEFINED","value":94.51,
                   "nextDueDate":"2025-03-15","cycle":"MONTHLY","externalReference":"t1"})
        );
        let update = serde_json::to_value(SubscriptionUpdate {
            value_cents: Some(29700),
            status: Some(SubscriptionStatus::Inactive),
            ..SubscriptionUpdate::default()
        })
        .unwrap();
        assert_eq!(update, json!({"value":297.0,"status":"INACTIVE"}));
        assert_eq!(
            serde_json::to_value(SubscriptionUpdate::default()).unwrap(),
            json!({})
        );
        let customer = serde_json::to_value(NewCustomer {
            name: "A".into(),
            cpf_cnpj: "12345678909".into(),
            notification_disabled: true,
            ..NewCustomer::default()
        })
        .unwrap();
        assert_eq!(
            customer,
            json!({"name":"A","cpfCnpj":"12345678909","notificationDisabled":true})
        );
    }

    #[test]
    fn lenient_reads() {
        let c: Customer = serde_json::from_value(json!({
            "id": "cus_1", "name": null, "deleted": null, "brandNew": {"x": 1}
        }))
        .unwrap();
        assert_eq!(c.name, "");
        assert!(!c.deleted);
        let p: Payment = serde_json::from_value(json!({
            "id": "pay_1", "customer": "cus_1", "status": "AUTHORIZED", "value": "10.5",
            "dueDate": "01/04/2025", "paymentDate": null, "confirmedDate": ""
        }))
        .unwrap();
        assert_eq!(p.value_cents, 1050);
        assert_eq!(p.net_value_cents, None);
        assert_eq!(p.due_date, date!(2025 - 04 - 01));
        assert_eq!(p.payment_date, None);
        assert_eq!(p.confirmed_date, None);
        assert_eq!(p.status, PaymentStatus::Authorized);
        assert!(
            serde_json::from_value::<Payment>(json!({
                "id": "pay_1", "customer": "c", "status": "PENDING", "value": 1, "dueDate": "soon"
            }))
            .is_err()
        );
    }
}
