//! Public value types of the simulator.

use std::time::Duration;

use whatpro_inbox::ProviderType;

/// What a simulated instance reports about its WhatsApp session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimState {
    /// Paired and online. Evolution `open`, Z-API `connected:true`, WPPConnect `CONNECTED`,
    /// uazapi `connected`, Cloud `can_send_message: AVAILABLE`.
    Connected,
    /// Pairing or reconnecting. Evolution `connecting`, Z-API `connected:true` with
    /// `smartphoneConnected:false`, WPPConnect `QRCODE`, uazapi `connecting`, Cloud
    /// `status: PENDING` with `can_send_message: LIMITED`.
    Connecting,
    /// No session. Evolution `close`, Z-API `connected:false`, WPPConnect `CLOSED`, uazapi
    /// `disconnected`, Cloud `status: DISCONNECTED` with `can_send_message: BLOCKED`.
    Disconnected,
}

/// The secrets the fake demands of one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimCredentials {
    /// The main secret: Evolution `apikey` header (the instance token; the global key set
    /// with [`crate::ProvidersSim::set_evolution_global_key`] is accepted too), Z-API instance
    /// token (in the path), WPPConnect secret key (in the generate-token path), uazapi `token`
    /// header (it also identifies the instance), Cloud bearer access token.
    pub secret: String,
    /// Z-API only: the `Client-Token` header demanded (none demanded when `None`).
    pub client_token: Option<String>,
    /// WPPConnect only: a bearer token accepted besides those generate-token issued (what a
    /// tenant stores as the instance credential `token`).
    pub bearer_token: Option<String>,
}

impl SimCredentials {
    /// Only the main secret.
    pub fn secret(secret: impl Into<String>) -> Self {
        Self {
            secret: secret.into(),
            ..Self::default()
        }
    }
}

/// One instance to simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimInstance {
    /// Which contract it speaks.
    pub provider: ProviderType,
    /// Evolution instance name, Z-API instance id, WPPConnect session, uazapi label, Cloud
    /// phone-number id (digits). Unique across the simulator.
    pub name: String,
    /// What the fake demands.
    pub credentials: SimCredentials,
    /// What it reports.
    pub state: SimState,
}

impl SimInstance {
    /// A connected instance demanding only `secret`.
    pub fn new(provider: ProviderType, name: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            provider,
            name: name.into(),
            credentials: SimCredentials::secret(secret),
            state: SimState::Connected,
        }
    }

    /// The same instance in `state`.
    #[must_use]
    pub fn with_state(mut self, state: SimState) -> Self {
        self.state = state;
        self
    }
}

/// How the fake answers requests (see [`crate::ProvidersSim::set_behaviour`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behaviour {
    /// The contract's answers.
    #[default]
    Normal,
    /// Accepts the connection and reads the request but never answers (the connection is
    /// dropped, unanswered, after 60 s or when the simulator stops).
    Silent,
    /// Answers normally after this delay.
    Slow(Duration),
    /// Status endpoints say connected whatever the state (the Hub can only notice through
    /// the silence of events); other routes answer normally.
    Lie,
    /// Answers this status with the provider's error body shape.
    Status(u16),
    /// Answers 200 with an HTML page instead of JSON.
    Garbage,
}

/// Which requests a behaviour applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every request. Setting it clears the per-instance behaviours.
    All,
    /// Requests about this instance (by name); they win over [`Scope::All`].
    Instance(String),
}

impl From<&str> for Scope {
    fn from(name: &str) -> Self {
        Scope::Instance(name.to_owned())
    }
}

impl From<String> for Scope {
    fn from(name: String) -> Self {
        Scope::Instance(name)
    }
}

/// One request the fake received (bodies are not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path as sent (still percent-encoded).
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// Headers with lower-case names, in arrival order.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An Evolution connection state as `connection.update` webhooks carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvolutionState {
    /// `open`.
    Open,
    /// `connecting`.
    Connecting,
    /// `close`.
    Close,
    /// `refused` (QR code attempt limit reached; only in webhooks).
    Refused,
}

impl EvolutionState {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            EvolutionState::Open => "open",
            EvolutionState::Connecting => "connecting",
            EvolutionState::Close => "close",
            EvolutionState::Refused => "refused",
        }
    }
}

/// An Evolution webhook event the fake can post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvolutionEvent {
    /// `connection.update` with this state.
    ConnectionUpdate(EvolutionState),
    /// `messages.upsert`: an inbound text message.
    MessagesUpsert,
    /// `qrcode.updated`.
    QrcodeUpdated,
}

impl EvolutionEvent {
    /// The `event` string of the envelope.
    pub fn name(self) -> &'static str {
        match self {
            EvolutionEvent::ConnectionUpdate(_) => "connection.update",
            EvolutionEvent::MessagesUpsert => "messages.upsert",
            EvolutionEvent::QrcodeUpdated => "qrcode.updated",
        }
    }
}

/// Errors of the simulator's outgoing calls.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The target URL cannot be parsed.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// Only `http://` targets are supported.
    #[error("only http:// URLs are supported: {0}")]
    UnsupportedScheme(String),
    /// Connecting, sending or reading failed.
    #[error("webhook delivery failed: {0}")]
    Delivery(String),
    /// No answer in time.
    #[error("webhook delivery timed out")]
    Timeout,
}
