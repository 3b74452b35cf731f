//! The HTTP/1 server: accept loop, request recording, fault injection.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::api::{self, ApiRequest, ApiResponse};
use crate::model::State;
use crate::types::{Fault, RecordedRequest};

/// At most this many requests are kept for [`crate::ChatwootSim::requests`] (oldest dropped),
/// so a long `whatpro-hub dev` session does not grow without bound.
pub(crate) const MAX_RECORDED_REQUESTS: usize = 10_000;

/// The active fault and how many more requests it applies to (`None`: until cleared), and
/// the faults of single routes (by a piece of their path).
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    pub fault: Option<Fault>,
    pub remaining: Option<usize>,
    pub routes: Vec<(String, Fault)>,
}

impl FaultState {
    /// The fault for the next request to `path`: a route fault first (it stays until
    /// cleared), else the global one, counting it down.
    fn take(&mut self, path: &str) -> Option<Fault> {
        if let Some((_, fault)) = self
            .routes
            .iter()
            .find(|(piece, _)| path.contains(piece.as_str()))
        {
            return Some(*fault);
        }
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

/// State shared by the handle and the server task.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub requests: Mutex<VecDeque<RecordedRequest>>,
    pub fault: Mutex<FaultState>,
    /// Static HTML pages by exact path (see [`crate::ChatwootSim::set_page`]).
    pub pages: Mutex<HashMap<String, String>>,
}

impl Shared {
    pub fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn lock_requests(&self) -> std::sync::MutexGuard<'_, VecDeque<RecordedRequest>> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn lock_fault(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.fault.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn lock_pages(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.pages.lock().unwrap_or_else(PoisonError::into_inner)
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
                tracing::warn!(error = %err, "chatwoot-sim: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
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
                        tracing::debug!(error = %err, "chatwoot-sim: connection ended with an error");
                    }
                }
                // Fault::Close: drop the connection without an answer.
                () = close.notified() => {}
                _ = conn_shutdown.changed() => {}
            }
        });
    }
}

async fn respond(shared: &Shared, close: &Notify, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            tracing::debug!(error = %err, "chatwoot-sim: could not read request body");
            Bytes::new()
        }
    };
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);

    let recorded = RecordedRequest {
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
    };
    {
        let mut requests = shared.lock_requests();
        if requests.len() >= MAX_RECORDED_REQUESTS {
            requests.pop_front();
        }
        requests.push_back(recorded);
    }

    let fault = shared.lock_fault().take(&path);
    match fault {
        Some(Fault::Status(status)) => return into_hyper(api::fault_response(status)),
        Some(Fault::Garbage) => {
            return into_hyper(ApiResponse::text(
                200,
                "text/html; charset=utf-8",
                "<html><body><h1>Bad Gateway</h1>nginx</body></html>",
            ));
        }
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::Close) => {
            close.notify_one();
            std::future::pending::<()>().await;
        }
        None => {}
    }

    if parts.method == hyper::Method::GET
        && let Some(html) = shared.lock_pages().get(&path).cloned()
    {
        return into_hyper(ApiResponse::text(200, "text/html; charset=utf-8", &html));
    }

    let api_request = ApiRequest {
        method: &parts.method,
        path: &path,
        query: query.as_deref(),
        headers: &parts.headers,
        body: &body,
    };
    let response = {
        let mut state = shared.lock_state();
        api::handle(&mut state, &api_request)
    };
    tracing::debug!(
        method = %parts.method,
        path = %path,
        status = response.status,
        "chatwoot-sim request"
    );
    into_hyper(response)
}

fn into_hyper(response: ApiResponse) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(Full::new(Bytes::from(response.body)))
        .unwrap_or_else(|err| {
            tracing::warn!(error = %err, "chatwoot-sim: could not build response");
            let mut fallback = Response::new(Full::new(Bytes::new()));
            *fallback.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            fallback
        })
}
