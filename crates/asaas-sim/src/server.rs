//! The HTTP/1 server (accept loop, request recording, fault injection) and the state shared
//! by the handle, the server task and the webhook dispatcher.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::api::{self, ApiRequest, ApiResponse};
use crate::model::State;
use crate::types::{Fault, RecordedRequest};
use crate::webhook::{Dispatch, Hooks};

/// At most this many requests are kept for [`crate::AsaasSim::requests`] (oldest dropped).
pub(crate) const MAX_RECORDED_REQUESTS: usize = 10_000;

/// The active fault and how many more requests it applies to (`None`: until cleared).
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    pub fault: Option<Fault>,
    pub remaining: Option<usize>,
}

impl FaultState {
    /// The fault for the next request, counting it down.
    fn take(&mut self) -> Option<Fault> {
        let fault = self.fault?;
        if let Some(remaining) = self.remaining.as_mut() {
            *remaining = remaining.saturating_sub(1);
            if *remaining == 0 {
                self.fault = None;
                self.remaining = None;
            }
        }
        Some(fault)
    }
}

/// State shared by the handle, the server task and the dispatcher.
#[derive(Debug)]
pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub requests: Mutex<VecDeque<RecordedRequest>>,
    pub fault: Mutex<FaultState>,
    pub hooks: Mutex<Hooks>,
    /// Wakes the dispatcher (new event, new target, resume).
    pub wake: Notify,
    /// Wakes [`crate::AsaasSim::flush_webhooks`] callers (the queue changed).
    pub changed: Notify,
    pub dispatch: Dispatch,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub fn new(state: State, hooks: Hooks, dispatch: Dispatch) -> Self {
        Self {
            state: Mutex::new(state),
            requests: Mutex::new(VecDeque::new()),
            fault: Mutex::new(FaultState::default()),
            hooks: Mutex::new(hooks),
            wake: Notify::new(),
            changed: Notify::new(),
            dispatch,
        }
    }

    pub fn lock_state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub fn lock_requests(&self) -> MutexGuard<'_, VecDeque<RecordedRequest>> {
        lock(&self.requests)
    }

    pub fn lock_fault(&self) -> MutexGuard<'_, FaultState> {
        lock(&self.fault)
    }

    pub fn lock_hooks(&self) -> MutexGuard<'_, Hooks> {
        lock(&self.hooks)
    }

    /// Runs `f` on the state, then hands the events it produced to the dispatcher.
    pub fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let (result, events) = {
            let mut state = self.lock_state();
            let result = f(&mut state);
            (result, std::mem::take(&mut state.outbox))
        };
        self.enqueue(events);
        result
    }

    /// Appends envelopes to the webhook queue (and the event log) and wakes the dispatcher.
    pub fn enqueue(&self, events: Vec<Value>) {
        if events.is_empty() {
            return;
        }
        self.lock_hooks().push_all(events);
        self.wake.notify_one();
        self.changed.notify_waiters();
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
                tracing::warn!(error = %err, "asaas-sim: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        let mut conn_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(respond(&shared, req).await) }
            });
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                result = conn => {
                    if let Err(err) = result {
                        tracing::debug!(error = %err, "asaas-sim: connection ended with an error");
                    }
                }
                _ = conn_shutdown.changed() => {}
            }
        });
    }
}

async fn respond(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            tracing::debug!(error = %err, "asaas-sim: could not read request body");
            Bytes::new()
        }
    };
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    {
        let mut requests = shared.lock_requests();
        if requests.len() >= MAX_RECORDED_REQUESTS {
            requests.pop_front();
        }
        requests.push_back(RecordedRequest {
            method: parts.method.as_str().to_owned(),
            path: path.clone(),
            query: query.clone(),
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_ascii_lowercase(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        });
    }

    let fault = shared.lock_fault().take();
    match fault {
        Some(Fault::Status(status)) => return into_hyper(api::fault_response(status)),
        Some(Fault::Garbage) => return into_hyper(api::garbage_response()),
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }

    let request = ApiRequest {
        method: &parts.method,
        path: &path,
        query: query.as_deref(),
        headers: &parts.headers,
        body: &body,
    };
    let response = shared.with_state(|state| api::handle(state, &request));
    tracing::debug!(
        method = %parts.method,
        path = %path,
        status = response.status,
        "asaas-sim request"
    );
    into_hyper(response)
}

fn into_hyper(response: ApiResponse) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(response.status);
    if let Some(content_type) = response.content_type {
        builder = builder.header("content-type", content_type);
    }
    builder
        .body(Full::new(Bytes::from(response.body)))
        .unwrap_or_else(|err| {
            tracing::warn!(error = %err, "asaas-sim: could not build response");
            let mut fallback = Response::new(Full::new(Bytes::new()));
            *fallback.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            fallback
        })
}
