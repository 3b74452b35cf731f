//! Public value types of the simulator: configuration, faults, recorded requests, webhook
//! deliveries and errors.

use std::time::Duration;

use serde_json::Value;

/// The API key [`SimConfig::default`] uses.
pub const DEFAULT_API_KEY: &str = "$aact_hmlg_whatpro_sim_000000000000000000000000";

/// Where the simulator posts webhooks (one Asaas webhook configuration, `SEQUENTIALLY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// `http://` URL to POST to (no TLS).
    pub url: String,
    /// Sent verbatim in the `asaas-access-token` header; `None` sends no such header
    /// (a configuration without `authToken`).
    pub auth_token: Option<String>,
}

impl WebhookTarget {
    /// A target with an auth token.
    pub fn new(url: impl Into<String>, auth_token: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            auth_token: Some(auth_token.into()),
        }
    }
}

/// How to start an [`crate::AsaasSim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// The only key accepted in the `access_token` header.
    pub api_key: String,
    /// Where webhooks go; `None` keeps them queued until
    /// [`crate::AsaasSim::set_webhook_target`].
    pub webhook: Option<WebhookTarget>,
    /// The unit of the compressed retry schedule: after the n-th consecutive failure the
    /// dispatcher waits `min(n, 4)` steps (default 50 ms; Asaas waits 30 s, 1 min, 3.5 min…).
    pub webhook_retry_step: Duration,
    /// Bound on one webhook delivery (connect, send, read the answer; default 5 s).
    pub webhook_timeout: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            api_key: DEFAULT_API_KEY.to_owned(),
            webhook: None,
            webhook_retry_step: Duration::from_millis(50),
            webhook_timeout: Duration::from_secs(5),
        }
    }
}

impl SimConfig {
    /// Defaults with this API key.
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            ..Self::default()
        }
    }

    /// Sets the webhook target.
    pub fn with_webhook(mut self, target: WebhookTarget) -> Self {
        self.webhook = Some(target);
        self
    }
}

/// An injected failure of API calls (not of webhook deliveries); see
/// [`crate::AsaasSim::set_fault`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status instead of the real answer: 401 with the `error-401.json`
    /// body, 404 with an empty body, other statuses with an `{"errors":[…]}` body whose
    /// code is `sim_fault`.
    Status(u16),
    /// Answer 200 with a body that is not JSON.
    Garbage,
    /// Wait this long, then answer normally.
    Delay(Duration),
}

/// One request the simulator received (see [`crate::AsaasSim::requests`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method (`"GET"`, `"POST"`, …).
    pub method: String,
    /// Path without the query string (`/v3/customers`).
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Raw body bytes.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// First value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn body_json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The decoded query parameters, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query
            .as_deref()
            .map(crate::util::query_pairs)
            .unwrap_or_default()
    }
}

/// One webhook delivery attempt (see [`crate::AsaasSim::deliveries`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The envelope's `id` (empty if it had none).
    pub event_id: String,
    /// The envelope's `event` (empty if it had none).
    pub event: String,
    /// The receiver's status; `None` when there was no answer.
    pub status: Option<u16>,
    /// Why there was no answer (connect error, timeout…).
    pub error: Option<String>,
}

impl Delivery {
    /// Whether Asaas would count this attempt as a success (exactly 200).
    pub fn succeeded(&self) -> bool {
        self.status == Some(200)
    }
}

/// Errors of the simulator's test hooks and its webhook deliveries.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// No payment with this id.
    #[error("unknown payment {0}")]
    UnknownPayment(String),
    /// No subscription with this id (or it was deleted).
    #[error("unknown or deleted subscription {0}")]
    UnknownSubscription(String),
    /// Not a payment status the simulator can move a payment to.
    #[error("unsupported payment status {0}")]
    UnsupportedStatus(String),
    /// The webhook URL could not be parsed.
    #[error("invalid url: {0}")]
    InvalidUrl(String),
    /// Only plain `http://` targets are supported.
    #[error("unsupported url scheme (only http:// is supported): {0}")]
    UnsupportedScheme(String),
    /// Connecting or talking to the receiver failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// HTTP protocol error.
    #[error("http error: {0}")]
    Http(#[from] hyper::Error),
    /// Building the request failed (bad header value…).
    #[error("invalid request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The receiver did not answer in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}
