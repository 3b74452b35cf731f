//! The Hub's HTTP client for Asaas API v3 (billing), after the contract in
//! `shared/asaas/README.md`.
//!
//! Owns [`AsaasClient`] (reqwest): customers, subscriptions and their payments. It sends the
//! `access_token` header (the API key), a `User-Agent` and `Content-Type: application/json`,
//! never a body on GET, bounds every attempt with connect and request timeouts, retries
//! only where it is safe (GET/PUT/DELETE; POST only when the connection failed before
//! anything was sent) with a small back-off, and maps answers to [`AsaasError`], which
//! implements [`whatpro_kernel::Classify`]. The API key never appears in `Debug` output,
//! logs or error messages.
//!
//! Also owns the webhook side: [`parse_webhook`] reads the envelope Asaas POSTs (lenient
//! about unknown events and keys) and [`token_matches`] checks the `asaas-access-token`
//! header in constant time.
//!
//! Money is integer cents (`94.51` BRL ⇄ `9451`), dates are [`time::Date`] read from
//! `yyyy-MM-dd` or `dd/MM/yyyy`. This crate knows nothing about tenants or plans: the billing
//! domain maps them to customers and subscriptions through its `externalReference`.

mod client;
mod error;
mod gateway;
mod types;
mod webhook;
mod wire;

pub use client::{AsaasClient, AsaasSettings, MAX_BODY_BYTES, MAX_PAGE_SIZE, RETRY_BACKOFF};
pub use error::{AsaasError, AsaasErrorItem};
pub use gateway::customer_reference;
pub use types::{
    BillingType, Customer, Cycle, Deleted, ListPage, NewCustomer, NewSubscription, Payment,
    PaymentStatus, Subscription, SubscriptionStatus, SubscriptionUpdate,
};
pub use webhook::{
    WEBHOOK_TOKEN_HEADER, WebhookEvent, WebhookParseError, parse_webhook, token_matches,
};
pub use wire::{cents_to_f64, decimal_to_cents, f64_to_cents, format_date, parse_date};
