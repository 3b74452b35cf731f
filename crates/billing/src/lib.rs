//! Billing of accounts: subscribing to a paid plan through a payment gateway (Asaas), plan
//! changes (upgrade now, downgrade at the end of the period), cancellation, payments, and the
//! status machine `trialing -> pending -> active -> past_due -> restricted -> canceled` driven
//! by the gateway's webhooks (always re-read from the gateway before a state change).
//!
//! No I/O here: the PostgreSQL adapter lives in `whatpro-db`, the Asaas client in
//! `whatpro-asaas`.

mod document;
mod error;
mod model;
mod ports;
mod rules;
mod service;

pub use document::{CpfCnpj, CpfCnpjError};
pub use error::{BillingError, GatewayError};
pub use model::{
    BillingAccount, BillingStatus, BillingType, CustomerInfo, EventOutcome, GatewayEvent,
    GatewayPayment, GatewaySubscription, NewSubscription, PaymentState, PaymentView, StatusChange,
    SubscriptionState,
};
pub use ports::{BillingStore, PaymentGateway, SaveError};
pub use rules::{Sweep, apply_payment, apply_subscription, sweep};
pub use service::{BillingService, BillingSettings, Gate, ProcessedEvent};

#[cfg(any(test, feature = "mocks"))]
pub use ports::{MockBillingStore, MockPaymentGateway};
