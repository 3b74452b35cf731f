//! Billing state of an account, and what the gateway tells about subscriptions and payments.

use std::fmt;
use std::str::FromStr;

use time::{Date, OffsetDateTime};
use whatpro_entitlements::PlanId;
use whatpro_kernel::AccountId;

use crate::document::CpfCnpj;

/// Where an account stands with billing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BillingStatus {
    /// No subscription yet: trial plan limits, nothing locked.
    Trialing,
    /// Subscribed; the first payment is not confirmed yet.
    Pending,
    /// Paid up.
    Active,
    /// A payment is overdue; the grace period runs.
    PastDue,
    /// The grace period is over: writes answer 402, reads and login still work.
    Restricted,
    /// The subscription ended: everything but billing answers 402.
    Canceled,
}

impl BillingStatus {
    /// Every status.
    pub const ALL: [BillingStatus; 6] = [
        BillingStatus::Trialing,
        BillingStatus::Pending,
        BillingStatus::Active,
        BillingStatus::PastDue,
        BillingStatus::Restricted,
        BillingStatus::Canceled,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            BillingStatus::Trialing => "trialing",
            BillingStatus::Pending => "pending",
            BillingStatus::Active => "active",
            BillingStatus::PastDue => "past_due",
            BillingStatus::Restricted => "restricted",
            BillingStatus::Canceled => "canceled",
        }
    }

    /// Whether a subscription exists that has not ended.
    pub fn has_live_subscription(self) -> bool {
        matches!(
            self,
            BillingStatus::Pending
                | BillingStatus::Active
                | BillingStatus::PastDue
                | BillingStatus::Restricted
        )
    }
}

impl fmt::Display for BillingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BillingStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BillingStatus::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a billing status"))
    }
}

/// How the payer pays (Asaas names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingType {
    /// The payer chooses on the invoice page.
    Undefined,
    /// Boleto bancário.
    Boleto,
    /// Credit card.
    CreditCard,
    /// Pix.
    Pix,
}

impl BillingType {
    /// The wire name (`UNDEFINED`, `BOLETO`, `CREDIT_CARD`, `PIX`).
    pub fn as_str(self) -> &'static str {
        match self {
            BillingType::Undefined => "UNDEFINED",
            BillingType::Boleto => "BOLETO",
            BillingType::CreditCard => "CREDIT_CARD",
            BillingType::Pix => "PIX",
        }
    }
}

impl FromStr for BillingType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "UNDEFINED" => Ok(BillingType::Undefined),
            "BOLETO" => Ok(BillingType::Boleto),
            "CREDIT_CARD" => Ok(BillingType::CreditCard),
            "PIX" => Ok(BillingType::Pix),
            _ => Err(format!(
                "billing_type `{s}` is not one of UNDEFINED, BOLETO, CREDIT_CARD, PIX"
            )),
        }
    }
}

/// The payer, as the admin enters it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerInfo {
    /// Name (person or company), 1-200 characters.
    pub name: String,
    /// CPF or CNPJ, validated.
    pub cpf_cnpj: CpfCnpj,
    /// Email for invoices.
    pub email: String,
}

/// A subscription to create at the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    /// The gateway's customer id.
    pub customer_id: String,
    /// How the payer pays.
    pub billing_type: BillingType,
    /// Monthly price in cents.
    pub value_cents: i64,
    /// Due date of the first payment.
    pub next_due_date: Date,
    /// Shown on invoices.
    pub description: String,
    /// Our reference (`whatpro-account-<id>`).
    pub external_reference: String,
}

/// A subscription's state at the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionState {
    /// Generating payments.
    Active,
    /// Paused.
    Inactive,
    /// Ended by its end date or payment count.
    Expired,
    /// A state this version does not know.
    Other(String),
}

/// A subscription as the gateway reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySubscription {
    /// The gateway's id (`sub_...`).
    pub id: String,
    /// Its state.
    pub state: SubscriptionState,
    /// Whether it was deleted.
    pub deleted: bool,
    /// Due date of the next payment to be generated.
    pub next_due_date: Option<Date>,
    /// Current price in cents.
    pub value_cents: i64,
}

impl GatewaySubscription {
    /// Whether the subscription has ended (deleted, inactive or expired).
    pub fn ended(&self) -> bool {
        self.deleted
            || matches!(
                self.state,
                SubscriptionState::Inactive | SubscriptionState::Expired
            )
    }
}

/// A payment's state at the gateway, reduced to what billing acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentState {
    /// Waiting for the payer.
    Pending,
    /// Paid, money not yet released (cards).
    Confirmed,
    /// Paid and available.
    Received,
    /// Paid outside the gateway and marked by hand.
    ReceivedInCash,
    /// Past its due date, unpaid.
    Overdue,
    /// Refunded.
    Refunded,
    /// Any other state (chargebacks, dunning, risk analysis...), kept verbatim.
    Other(String),
}

impl PaymentState {
    /// Whether the payment counts as paid.
    pub fn is_paid(&self) -> bool {
        matches!(
            self,
            PaymentState::Confirmed | PaymentState::Received | PaymentState::ReceivedInCash
        )
    }

    /// The gateway's name of the state.
    pub fn as_str(&self) -> &str {
        match self {
            PaymentState::Pending => "PENDING",
            PaymentState::Confirmed => "CONFIRMED",
            PaymentState::Received => "RECEIVED",
            PaymentState::ReceivedInCash => "RECEIVED_IN_CASH",
            PaymentState::Overdue => "OVERDUE",
            PaymentState::Refunded => "REFUNDED",
            PaymentState::Other(s) => s,
        }
    }

    /// Parses a gateway state name; unknown names are kept.
    pub fn parse(s: &str) -> Self {
        match s {
            "PENDING" => PaymentState::Pending,
            "CONFIRMED" => PaymentState::Confirmed,
            "RECEIVED" => PaymentState::Received,
            "RECEIVED_IN_CASH" => PaymentState::ReceivedInCash,
            "OVERDUE" => PaymentState::Overdue,
            "REFUNDED" => PaymentState::Refunded,
            other => PaymentState::Other(other.to_owned()),
        }
    }
}

/// A payment as the gateway reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayPayment {
    /// The gateway's id (`pay_...`).
    pub id: String,
    /// The subscription it belongs to.
    pub subscription_id: Option<String>,
    /// Its state.
    pub state: PaymentState,
    /// Amount in cents.
    pub value_cents: i64,
    /// Due date.
    pub due_date: Option<Date>,
    /// When it was paid.
    pub payment_date: Option<Date>,
    /// Whether it was removed.
    pub deleted: bool,
    /// The invoice page.
    pub invoice_url: Option<String>,
}

/// A payment as the Hub keeps it (for `GET .../billing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentView {
    /// The gateway's id.
    pub id: String,
    /// The gateway's state name.
    pub status: String,
    /// Amount in cents.
    pub value_cents: i64,
    /// Due date.
    pub due_date: Option<Date>,
    /// When it was paid.
    pub paid_at: Option<Date>,
    /// The invoice page.
    pub invoice_url: Option<String>,
    /// When the Hub last saw it change.
    pub updated_at: OffsetDateTime,
}

/// An account's billing record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingAccount {
    /// The account.
    pub account_id: AccountId,
    /// Where it stands.
    pub status: BillingStatus,
    /// The subscribed plan (none while trialing).
    pub plan_id: Option<PlanId>,
    /// A cheaper plan that takes effect at `next_due_date`.
    pub pending_plan_id: Option<PlanId>,
    /// The gateway's customer id.
    pub customer_id: Option<String>,
    /// The gateway's subscription id.
    pub subscription_id: Option<String>,
    /// Due date of the next payment (the end of the paid period).
    pub next_due_date: Option<Date>,
    /// Cancellation asked for: the subscription ends at `next_due_date`.
    pub cancel_at_period_end: bool,
    /// Since when a payment is overdue.
    pub past_due_since: Option<OffsetDateTime>,
    /// The latest due date of a paid payment (older overdue notices are stale).
    pub last_paid_due_date: Option<Date>,
    /// Optimistic-concurrency version (the store refuses a save over a newer one).
    pub version: i64,
}

impl BillingAccount {
    /// The record of an account that never subscribed.
    pub fn trialing(account_id: AccountId) -> Self {
        Self {
            account_id,
            status: BillingStatus::Trialing,
            plan_id: None,
            pending_plan_id: None,
            customer_id: None,
            subscription_id: None,
            next_due_date: None,
            cancel_at_period_end: false,
            past_due_since: None,
            last_paid_due_date: None,
            version: 0,
        }
    }
}

/// A status transition, audited as `billing.status_changed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// From.
    pub from: BillingStatus,
    /// To.
    pub to: BillingStatus,
    /// Why (e.g. `PAYMENT_OVERDUE pay_123`).
    pub reason: String,
}

/// A webhook event as stored (the full body is kept by the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayEvent {
    /// The gateway's event id (de-duplication key).
    pub id: String,
    /// The event name, e.g. `PAYMENT_RECEIVED`.
    pub event: String,
    /// The payment it is about.
    pub payment_id: Option<String>,
    /// The subscription it is about (or the payment's subscription).
    pub subscription_id: Option<String>,
}

/// What processing an event did (stored with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// State was updated (possibly without a status change).
    Applied,
    /// An event type billing does not act on.
    Ignored,
    /// The gateway does not know the payment or subscription, or it is not one of ours.
    Unknown,
}

impl EventOutcome {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventOutcome::Applied => "applied",
            EventOutcome::Ignored => "ignored",
            EventOutcome::Unknown => "unknown",
        }
    }
}
