//! The HTTP/1 server: accept loop, request recording, behaviours, dispatch.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use whatpro_inbox::ProviderType;

use crate::routes::{self, Reply, Route};
use crate::types::{Behaviour, RecordedRequest, SimCredentials, SimState};

/// At most this many requests are kept for [`crate::ProvidersSim::requests`] (oldest dropped).
pub(crate) const MAX_RECORDED_REQUESTS: usize = 10_000;

/// Largest request body read (create and send-text bodies are small).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How long a [`Behaviour::Silent`] connection is held open before it is dropped, still
/// without an answer (so a long benchmark against silent instances does not pile up sockets).
pub(crate) const SILENT_HOLD: std::time::Duration = std::time::Duration::from_secs(60);

/// One simulated instance.
#[derive(Debug)]
pub(crate) struct Entry {
    pub provider: ProviderType,
    pub credentials: SimCredentials,
    pub state: SimState,
    /// The provider-side id (Evolution `instanceId`, uazapi `id`).
    pub id: String,
    pub behaviour: Option<Behaviour>,
    /// WPPConnect bearer tokens issued by generate-token.
    pub issued: HashSet<String>,
}

/// Instances and behaviours.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    /// By name (unique across providers).
    pub instances: HashMap<String, Entry>,
    /// uazapi instance token → name (uazapi identifies the instance by its token alone).
    pub uazapi_tokens: HashMap<String, String>,
    /// Behaviour of requests without their own.
    pub global: Behaviour,
    /// Evolution's server-wide `AUTHENTICATION_API_KEY`.
    pub evolution_global_key: Option<String>,
}

impl Registry {
    /// Removes an instance and its token index entry.
    pub fn remove(&mut self, name: &str) -> Option<Entry> {
        let entry = self.instances.remove(name)?;
        if entry.provider == ProviderType::Uazapi {
            self.uazapi_tokens.remove(&entry.credentials.secret);
        }
        Some(entry)
    }
}

/// State shared by the handles and the server task.
#[derive(Debug)]
pub(crate) struct Shared {
    pub registry: RwLock<Registry>,
    pub requests: Mutex<VecDeque<RecordedRequest>>,
    pub recording: AtomicBool,
    pub probes: AtomicU64,
    /// The simulator's own base URL (`server_url`, `manager` links).
    pub url: String,
}

impl Shared {
    pub fn new(url: String) -> Self {
        Self {
            registry: RwLock::new(Registry::default()),
            requests: Mutex::new(VecDeque::new()),
            recording: AtomicBool::new(true),
            probes: AtomicU64::new(0),
            url,
        }
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn lock_requests(&self) -> MutexGuard<'_, VecDeque<RecordedRequest>> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Serves `listener` until `shutdown` changes or its sender is dropped.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) => {
                tracing::warn!(error = %err, "providers-sim: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let mut conn_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let close = Arc::new(Notify::new());
            let close_for_service = Arc::clone(&close);
            let service = service_fn(move |req| {
                let shared = Arc::clone(&shared);
                let close = Arc::clone(&close_for_service);
                async move { Ok::<_, Infallible>(respond(&shared, &close, req).await) }
            });
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                result = conn => {
                    if let Err(err) = result {
                        tracing::debug!(error = %err, "providers-sim: connection ended with an error");
                    }
                }
                // Behaviour::Silent gave up: drop the connection without an answer.
                () = close.notified() => {}
                _ = conn_shutdown.changed() => {}
            }
        });
    }
}

fn record(shared: &Shared, request: &hyper::http::request::Parts) {
    if !shared.recording.load(Ordering::Relaxed) {
        return;
    }
    let recorded = RecordedRequest {
        method: request.method.as_str().to_owned(),
        path: request.uri.path().to_owned(),
        query: request.uri.query().map(str::to_owned),
        headers: request
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
    };
    let mut requests = shared.lock_requests();
    if requests.len() >= MAX_RECORDED_REQUESTS {
        requests.pop_front();
    }
    requests.push_back(recorded);
}

async fn respond(shared: &Shared, close: &Notify, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    record(shared, &parts);
    let route = Route::parse(&parts.method, parts.uri.path());
    if route.is_probe() {
        shared.probes.fetch_add(1, Ordering::Relaxed);
    }

    let (behaviour, name) = {
        let registry = shared.read();
        let name = route.instance_name(&registry, &parts.headers);
        let behaviour = name
            .as_deref()
            .and_then(|n| registry.instances.get(n))
            .and_then(|entry| entry.behaviour)
            .unwrap_or(registry.global);
        (behaviour, name)
    };
    let mut lie = false;
    match behaviour {
        Behaviour::Normal => {}
        Behaviour::Silent => {
            tokio::time::sleep(SILENT_HOLD).await;
            close.notify_one();
            std::future::pending::<()>().await;
        }
        Behaviour::Slow(delay) => tokio::time::sleep(delay).await,
        Behaviour::Lie => lie = true,
        Behaviour::Status(status) => {
            return into_hyper(routes::error_reply(
                route.provider(),
                status,
                name.as_deref().unwrap_or(""),
            ));
        }
        Behaviour::Garbage => return into_hyper(routes::garbage()),
    }

    let body = if route.reads_body() {
        match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(err) => {
                tracing::debug!(error = %err, "providers-sim: could not read request body");
                Bytes::new()
            }
        }
    } else {
        Bytes::new()
    };
    let reply = routes::handle(shared, &route, &parts, &body, lie);
    tracing::debug!(
        method = %parts.method,
        path = parts.uri.path(),
        status = reply.status,
        "providers-sim request"
    );
    into_hyper(reply)
}

fn into_hyper(reply: Reply) -> Response<Full<Bytes>> {
    Response::builder()
        .status(reply.status)
        .header(hyper::header::CONTENT_TYPE, reply.content_type)
        .body(Full::new(Bytes::from(reply.body)))
        .unwrap_or_else(|err| {
            tracing::warn!(error = %err, "providers-sim: could not build response");
            let mut fallback = Response::new(Full::new(Bytes::new()));
            *fallback.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            fallback
        })
}
