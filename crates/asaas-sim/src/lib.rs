//! `whatpro-asaas-sim`: a faithful fake Asaas API v3 for the Hub's tests, `whatpro-hub dev`
//! and benchmarks.
//!
//! It owns the simulated Asaas side of the billing contract in `shared/asaas/README.md`:
//! customers, subscriptions (whose creation also creates the first payment), payments,
//! the `access_token` check, Asaas' error bodies, failure injection, request recording, and
//! a webhook dispatcher that behaves like one `SEQUENTIALLY` webhook configuration (the
//! `asaas-access-token` header, only 200 counts, compressed retries, the queue interrupted
//! after 15 consecutive failures, redelivery of the same event id). Objects are clones of
//! the shared examples embedded in [`fixtures`] with ids and values overwritten, so every
//! answer and webhook has the example's keys, nulls included.
//!
//! Simplifications: dates are "today" in Brazil (UTC−3) and past due dates are accepted;
//! payments of later cycles are created only by [`AsaasSim::create_next_payment`]; `netValue`
//! is `value − 1.99`; CPF/CNPJ check digits are not verified (11 or 14 digits suffice).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use whatpro_asaas_sim::{AsaasSim, SimConfig, WebhookTarget};
//! let sim = AsaasSim::start(SimConfig::new("test-key")).await?;
//! sim.set_webhook_target(Some(WebhookTarget::new("http://127.0.0.1:8080/webhooks/asaas", "tok")));
//! // Point the client at sim.url() (ends in /v3) with the key "test-key".
//! sim.flush_webhooks().await;
//! # Ok(()) }
//! ```

mod api;
pub mod fixtures;
mod model;
mod server;
mod types;
mod util;
mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;
use time::Date;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use types::{
    DEFAULT_API_KEY, Delivery, Fault, RecordedRequest, SimConfig, SimError, WebhookTarget,
};
pub use webhook::{MAX_CONSECUTIVE_FAILURES, TOKEN_HEADER};

use model::{State, flag};
use server::Shared;
use webhook::{Dispatch, Hooks};

/// Stops the server and the dispatcher when the last [`AsaasSim`] clone is dropped.
struct Handle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// A running fake Asaas. Cheap to clone; it stops when the last clone is dropped or
/// [`AsaasSim::shutdown`] is called.
#[derive(Clone)]
pub struct AsaasSim {
    inner: Arc<Handle>,
}

impl std::fmt::Debug for AsaasSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsaasSim")
            .field("addr", &self.inner.addr)
            .finish_non_exhaustive()
    }
}

impl AsaasSim {
    /// Starts on `127.0.0.1` with a free port, serving in spawned tokio tasks (the API and
    /// the webhook dispatcher). Starts with no customers.
    pub async fn start(config: SimConfig) -> std::io::Result<AsaasSim> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts on `bind` (e.g. a fixed port for `whatpro-hub dev`).
    pub async fn start_on(bind: SocketAddr, config: SimConfig) -> std::io::Result<AsaasSim> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let hooks = Hooks {
            target: config.webhook,
            ..Hooks::default()
        };
        let dispatch = Dispatch {
            retry_step: config.webhook_retry_step,
            timeout: config.webhook_timeout,
        };
        let shared = Arc::new(Shared::new(State::new(config.api_key), hooks, dispatch));
        let (shutdown, receiver) = watch::channel(false);
        tokio::spawn(server::serve(
            listener,
            Arc::clone(&shared),
            receiver.clone(),
        ));
        tokio::spawn(webhook::run(Arc::clone(&shared), receiver));
        tracing::info!(%addr, "asaas-sim listening");
        Ok(AsaasSim {
            inner: Arc::new(Handle {
                shared,
                addr,
                shutdown,
            }),
        })
    }

    /// Base URL of the API, e.g. `http://127.0.0.1:41234/v3` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}/v3", self.inner.addr)
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Stops accepting connections, closes open ones and stops the dispatcher.
    pub fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    // ------------------------------------------------------------ state

    /// Every customer (deleted ones too), oldest first, as `GET /customers/{id}` renders them.
    pub fn customers(&self) -> Vec<Value> {
        self.shared()
            .lock_state()
            .customers
            .iter()
            .cloned()
            .collect()
    }

    /// Every subscription (deleted ones too), oldest first.
    pub fn subscriptions(&self) -> Vec<Value> {
        self.shared()
            .lock_state()
            .subscriptions
            .iter()
            .cloned()
            .collect()
    }

    /// One subscription as `GET /subscriptions/{id}` renders it.
    pub fn subscription(&self, id: &str) -> Option<Value> {
        self.shared().lock_state().subscriptions.get(id).cloned()
    }

    /// Every payment (deleted ones too), oldest first.
    pub fn payments(&self) -> Vec<Value> {
        self.shared()
            .lock_state()
            .payments
            .iter()
            .cloned()
            .collect()
    }

    /// One payment as `GET /payments/{id}` renders it.
    pub fn payment(&self, id: &str) -> Option<Value> {
        self.shared().lock_state().payments.get(id).cloned()
    }

    /// The payments of a subscription (deleted ones too), oldest first.
    pub fn subscription_payments(&self, subscription_id: &str) -> Vec<Value> {
        self.shared()
            .lock_state()
            .payments
            .iter()
            .filter(|p| p.get("subscription").and_then(Value::as_str) == Some(subscription_id))
            .cloned()
            .collect()
    }

    // ------------------------------------------------------------ test hooks

    /// Moves a payment to `status` (`CONFIRMED`, `RECEIVED`, `RECEIVED_IN_CASH`, `OVERDUE`,
    /// `REFUNDED`, `PENDING`, `REFUND_REQUESTED`, `REFUND_IN_PROGRESS`,
    /// `CHARGEBACK_REQUESTED`, `CHARGEBACK_DISPUTE`, `AWAITING_CHARGEBACK_REVERSAL`,
    /// `DUNNING_REQUESTED`, `DUNNING_RECEIVED`, `AWAITING_RISK_ANALYSIS` or `AUTHORIZED`),
    /// filling the dates Asaas fills (`confirmedDate`, `paymentDate`, `creditDate`, a refund
    /// entry, a card summary for paid card payments…), and queues the matching event
    /// (`PAYMENT_CONFIRMED`, `PAYMENT_RECEIVED`, `PAYMENT_OVERDUE`, `PAYMENT_REFUNDED`…;
    /// `PENDING` and `REFUND_REQUESTED` send `PAYMENT_UPDATED`). Returns the queued envelope.
    ///
    /// # Errors
    /// [`SimError::UnsupportedStatus`] or [`SimError::UnknownPayment`].
    pub fn set_payment_status(&self, payment_id: &str, status: &str) -> Result<Value, SimError> {
        self.shared()
            .with_state(|state| api::set_payment_status(state, payment_id, status))
    }

    /// Creates the `PENDING` payment of a new cycle of a subscription, due on `due_date`,
    /// moves the subscription's `nextDueDate` one cycle after it, and queues
    /// `PAYMENT_CREATED`. Returns the payment.
    ///
    /// # Errors
    /// [`SimError::UnknownSubscription`] for an unknown or deleted subscription.
    pub fn create_next_payment(
        &self,
        subscription_id: &str,
        due_date: Date,
    ) -> Result<Value, SimError> {
        self.shared()
            .with_state(|state| api::create_next_payment(state, subscription_id, due_date))
    }

    /// Queues an arbitrary webhook body exactly as given (it need not be valid).
    pub fn emit(&self, envelope: Value) {
        self.shared().enqueue(vec![envelope]);
    }

    // ------------------------------------------------------------ faults and recording

    /// Failure injection: every following API request gets this fault until
    /// [`clear_fault`](Self::clear_fault). Webhook deliveries are not affected.
    pub fn set_fault(&self, fault: Fault) {
        let mut state = self.shared().lock_fault();
        state.fault = Some(fault);
        state.remaining = None;
    }

    /// Failure injection for the next `times` API requests only.
    pub fn set_fault_times(&self, fault: Fault, times: usize) {
        let mut state = self.shared().lock_fault();
        state.fault = (times > 0).then_some(fault);
        state.remaining = (times > 0).then_some(times);
    }

    /// Normal answers again.
    pub fn clear_fault(&self) {
        let mut state = self.shared().lock_fault();
        state.fault = None;
        state.remaining = None;
    }

    /// Every API request received so far, oldest first (the last 10 000 are kept).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared().lock_requests().iter().cloned().collect()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared().lock_requests().clear();
    }

    // ------------------------------------------------------------ webhooks

    /// Points the dispatcher at a (new) receiver, or at none: events then stay queued.
    pub fn set_webhook_target(&self, target: Option<WebhookTarget>) {
        self.shared().lock_hooks().target = target;
        self.shared().wake.notify_one();
        self.shared().changed.notify_waiters();
    }

    /// Every webhook body queued so far (by the API, the hooks or [`emit`](Self::emit)),
    /// oldest first; redeliveries are not repeated here.
    pub fn events(&self) -> Vec<Value> {
        self.shared().lock_hooks().events.iter().cloned().collect()
    }

    /// Every delivery attempt so far, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared()
            .lock_hooks()
            .deliveries
            .iter()
            .cloned()
            .collect()
    }

    /// Events waiting to be delivered (including the one being tried).
    pub fn pending_webhooks(&self) -> usize {
        self.shared().lock_hooks().queue.len()
    }

    /// Whether the queue was interrupted after [`MAX_CONSECUTIVE_FAILURES`] consecutive
    /// failures.
    pub fn is_interrupted(&self) -> bool {
        self.shared().lock_hooks().interrupted
    }

    /// Re-enables an interrupted queue: the backlog is delivered again in original order.
    pub fn resume(&self) {
        {
            let mut hooks = self.shared().lock_hooks();
            hooks.interrupted = false;
            hooks.consecutive_failures = 0;
        }
        self.shared().wake.notify_one();
        self.shared().changed.notify_waiters();
    }

    /// Queues the event with this id again, unchanged (same `id`), at the end of the queue:
    /// the at-least-once duplicate a receiver must tolerate. `false` for an unknown id.
    pub fn redeliver(&self, event_id: &str) -> bool {
        let found = {
            let mut hooks = self.shared().lock_hooks();
            let envelope = hooks
                .events
                .iter()
                .rev()
                .find(|e| e.get("id").and_then(Value::as_str) == Some(event_id))
                .cloned();
            envelope.map(|envelope| hooks.requeue(envelope)).is_some()
        };
        if found {
            self.shared().wake.notify_one();
            self.shared().changed.notify_waiters();
        }
        found
    }

    /// Waits until the queue is empty, interrupted, or has no target (so it cannot be
    /// delivered). Bound it with a timeout in tests.
    pub async fn flush_webhooks(&self) {
        let changed = &self.shared().changed;
        loop {
            let notified = changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared().lock_hooks().settled() {
                return;
            }
            notified.await;
        }
    }

    /// Whether a customer exists and is not deleted.
    pub fn has_customer(&self, id: &str) -> bool {
        self.shared()
            .lock_state()
            .customers
            .get(id)
            .is_some_and(|c| !flag(c, "deleted"))
    }
}
