//! `whatpro-providers-sim`: a fake WhatsApp provider server for the Hub's tests and benchmarks.
//!
//! One HTTP/1.1 server speaks the five contracts of `/work/shared/providers/README.md` at once;
//! their path shapes do not overlap:
//!
//! | provider | routes |
//! |---|---|
//! | Evolution | `GET /`, `POST /instance/create`, `GET /instance/fetchInstances`, `GET /instance/connectionState/{name}`, `POST /message/sendText/{name}` (header `apikey`) |
//! | Z-API | `GET /instances/{id}/token/{token}/status` (header `Client-Token` when demanded) |
//! | WPPConnect | `POST /api/{session}/{secret}/generate-token`, `GET /api/{session}/status-session`, `GET /api/{session}/check-connection-session` (bearer token) |
//! | uazapi | `GET /instance/status` (header `token`) |
//! | WhatsApp Cloud | `GET /{phone_number_id}` and `GET /v{N}.{M}/{phone_number_id}` (bearer access token) |
//!
//! Answers are built from the shared example payloads ([`fixtures`], embedded verbatim) with
//! names and values overwritten and every field kept; errors use each provider's error shape.
//! Instances live in hash maps (no linear scans on the request path), so 10 000 instances and
//! thousands of probes per second are fine. Failure injection: [`Behaviour`]. Outgoing
//! Evolution webhooks: [`ProvidersSim::send_evolution_webhook`].
//!
//! Where the README leaves a detail open, the fake picks one and says so: Z-API answers an
//! unknown instance id with 404 `{"error":"Instance not found"}`, a wrong instance token with
//! 401 `{"error":"Invalid instance token"}` and a missing or wrong `Client-Token` with 403
//! `{"error":"Client-Token is not allowed"}`; WPPConnect answers generate-token for an
//! unknown session like a wrong secret (400) and status calls for it with 401; uazapi answers
//! an unknown token with 401 (use `Behaviour::Status(404)` for its 404); Cloud answers an
//! unknown phone-number id with Graph's 400 code 100 `GraphMethodException`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use whatpro_inbox::ProviderType;
//! use whatpro_providers_sim::{ProvidersSim, SimInstance, SimState};
//! let sim = ProvidersSim::start().await?;
//! sim.add_instance(SimInstance::new(ProviderType::Evolution, "tenant7f3c-suporte", "B2C1A7E0"));
//! sim.set_state("tenant7f3c-suporte", SimState::Connecting);
//! // GET {sim.url()}/instance/connectionState/tenant7f3c-suporte with `apikey: B2C1A7E0`
//! # Ok(()) }
//! ```

pub mod fixtures;
mod routes;
mod server;
mod types;
mod util;
mod webhook;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::net::TcpListener;
use tokio::sync::watch;
use whatpro_inbox::ProviderType;

pub use types::{
    Behaviour, EvolutionEvent, EvolutionState, RecordedRequest, Scope, SimCredentials, SimError,
    SimInstance, SimState,
};
pub use webhook::WEBHOOK_TIMEOUT;

use server::{Entry, Shared};

/// Stops the server when the last [`ProvidersSim`] clone is dropped.
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

/// A running fake provider server. Cheap to clone; it stops (closing open connections,
/// silent ones included) when the last clone is dropped or on [`shutdown`](Self::shutdown).
#[derive(Clone)]
pub struct ProvidersSim {
    inner: Arc<Handle>,
}

impl std::fmt::Debug for ProvidersSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvidersSim")
            .field("addr", &self.inner.addr)
            .finish_non_exhaustive()
    }
}

impl ProvidersSim {
    /// Binds `127.0.0.1:0` and serves in a spawned tokio task. Starts with no instances.
    ///
    /// # Errors
    /// When the listener cannot be bound.
    pub async fn start() -> std::io::Result<ProvidersSim> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(format!("http://{addr}")));
        let (shutdown, receiver) = watch::channel(false);
        tokio::spawn(server::serve(listener, Arc::clone(&shared), receiver));
        tracing::info!(%addr, "providers-sim listening");
        Ok(ProvidersSim {
            inner: Arc::new(Handle {
                shared,
                addr,
                shutdown,
            }),
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn url(&self) -> String {
        self.inner.shared.url.clone()
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Stops accepting connections and closes open ones.
    pub fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    // ------------------------------------------------------------ instances

    /// Adds an instance, replacing one of the same name (its behaviour and issued tokens are
    /// dropped).
    pub fn add_instance(&self, instance: SimInstance) {
        let mut registry = self.shared().write();
        registry.remove(&instance.name);
        if instance.provider == ProviderType::Uazapi {
            registry
                .uazapi_tokens
                .insert(instance.credentials.secret.clone(), instance.name.clone());
        }
        let id = match instance.provider {
            ProviderType::Uazapi => util::uazapi_id(),
            _ => uuid::Uuid::new_v4().to_string(),
        };
        registry.instances.insert(
            instance.name,
            Entry {
                provider: instance.provider,
                credentials: instance.credentials,
                state: instance.state,
                id,
                behaviour: None,
                issued: Default::default(),
            },
        );
    }

    /// Changes what an instance reports; `false` when there is no such instance.
    pub fn set_state(&self, name: &str, state: SimState) -> bool {
        let mut registry = self.shared().write();
        match registry.instances.get_mut(name) {
            Some(entry) => {
                entry.state = state;
                true
            }
            None => false,
        }
    }

    /// What an instance reports, if it exists.
    pub fn state(&self, name: &str) -> Option<SimState> {
        self.shared().read().instances.get(name).map(|e| e.state)
    }

    /// Removes an instance; `false` when there was none. Its routes then answer as for an
    /// unknown instance.
    pub fn remove_instance(&self, name: &str) -> bool {
        self.shared().write().remove(name).is_some()
    }

    /// How many instances exist.
    pub fn instance_count(&self) -> usize {
        self.shared().read().instances.len()
    }

    /// Evolution's server-wide key (`AUTHENTICATION_API_KEY`): accepted as `apikey` for every
    /// Evolution instance and required by `POST /instance/create`. `None` (the default):
    /// only instance tokens work and create answers 401.
    pub fn set_evolution_global_key(&self, key: Option<&str>) {
        self.shared().write().evolution_global_key = key.map(str::to_owned);
    }

    /// Forgets the WPPConnect tokens generate-token issued for this session (as when the
    /// server's `SECRET_KEY` changes): they answer 401 until a new one is generated.
    pub fn revoke_tokens(&self, name: &str) {
        if let Some(entry) = self.shared().write().instances.get_mut(name) {
            entry.issued.clear();
        }
    }

    // ------------------------------------------------------------ behaviours

    /// Sets how requests are answered. [`Scope::All`] sets the default for every request and
    /// clears per-instance behaviours; [`Scope::Instance`] (or a `&str` name) applies to
    /// requests about that instance and wins over the default. `Behaviour::Normal` on an
    /// instance removes its own behaviour.
    pub fn set_behaviour(&self, scope: impl Into<Scope>, behaviour: Behaviour) {
        let mut registry = self.shared().write();
        match scope.into() {
            Scope::All => {
                registry.global = behaviour;
                for entry in registry.instances.values_mut() {
                    entry.behaviour = None;
                }
            }
            Scope::Instance(name) => {
                if let Some(entry) = registry.instances.get_mut(&name) {
                    entry.behaviour = (behaviour != Behaviour::Normal).then_some(behaviour);
                }
            }
        }
    }

    // ------------------------------------------------------------ counters

    /// How many status-endpoint requests arrived (every provider's health call, whatever the
    /// answer).
    pub fn probe_count(&self) -> u64 {
        self.shared().probes.load(Ordering::Relaxed)
    }

    /// Every request received so far (oldest first; the last 10 000 are kept).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared().lock_requests().iter().cloned().collect()
    }

    /// Forgets the recorded requests and zeroes [`probe_count`](Self::probe_count).
    pub fn clear_requests(&self) {
        self.shared().lock_requests().clear();
        self.shared().probes.store(0, Ordering::Relaxed);
    }

    /// Turns request recording on (the default) or off (for benchmarks; counters still run).
    pub fn set_recording(&self, on: bool) {
        self.shared().recording.store(on, Ordering::Relaxed);
    }

    // ------------------------------------------------------------ webhooks out

    /// The body [`send_evolution_webhook`](Self::send_evolution_webhook) would post: the
    /// matching `webhook-*.json` example with `instance` (and `data.instance`), `destination`
    /// (= `url`), `date_time` (now), `server_url` (this simulator) and `apikey` (the
    /// instance's token when it is a known Evolution instance, else `null`) replaced.
    pub fn evolution_webhook_payload(
        &self,
        event: EvolutionEvent,
        instance_name: &str,
        url: &str,
    ) -> serde_json::Value {
        let registry = self.shared().read();
        let entry = registry
            .instances
            .get(instance_name)
            .filter(|e| e.provider == ProviderType::Evolution);
        webhook::payload(
            event,
            &webhook::Envelope {
                instance: instance_name,
                destination: url,
                server_url: &self.shared().url,
                apikey: entry.map(|e| e.credentials.secret.as_str()),
                instance_id: entry.map(|e| e.id.as_str()),
            },
        )
    }

    /// Posts an Evolution webhook to the Hub: JSON body from
    /// [`evolution_webhook_payload`](Self::evolution_webhook_payload), headers
    /// `Content-Type: application/json` and `Authorization: Bearer <bearer_token>`. No retry;
    /// [`WEBHOOK_TIMEOUT`]. Returns the receiver's status, whatever it is. Does not change the
    /// instance's state.
    ///
    /// # Errors
    /// [`SimError`] when `url` is not `http://`, or nothing answered in time.
    pub async fn send_evolution_webhook(
        &self,
        url: &str,
        bearer_token: &str,
        event: EvolutionEvent,
        instance_name: &str,
    ) -> Result<u16, SimError> {
        let payload = self.evolution_webhook_payload(event, instance_name, url);
        let body = serde_json::to_vec(&payload).unwrap_or_default();
        webhook::deliver(url, bearer_token, body).await
    }
}
