//! The webhook dispatcher: one queue, delivered strictly in order (`SEQUENTIALLY`), as one
//! Asaas webhook configuration does. Anything but 200 is a failure; the head event is retried
//! on a compressed schedule; after [`MAX_CONSECUTIVE_FAILURES`] the queue is interrupted until
//! [`crate::AsaasSim::resume`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::server::Shared;
use crate::types::{Delivery, SimError, WebhookTarget};

/// Consecutive failed attempts after which Asaas interrupts (pauses) the queue.
pub const MAX_CONSECUTIVE_FAILURES: u32 = 15;

/// The header the auth token travels in.
pub const TOKEN_HEADER: &str = "asaas-access-token";

/// `User-Agent` of deliveries.
const USER_AGENT: &str = "whatpro-asaas-sim (Asaas webhook)";

/// Bound on the queue, the event log and the delivery log (oldest dropped), so a long
/// `dev` session does not grow without bound.
const MAX_KEPT: usize = 10_000;

/// Dispatcher timings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dispatch {
    pub retry_step: Duration,
    pub timeout: Duration,
}

impl Dispatch {
    /// Pause after the n-th consecutive failure: `min(n, 4)` steps.
    fn backoff(&self, failures: u32) -> Duration {
        self.retry_step.saturating_mul(failures.clamp(1, 4))
    }
}

/// Queue and logs of the webhook configuration.
#[derive(Debug, Default)]
pub(crate) struct Hooks {
    pub target: Option<WebhookTarget>,
    pub queue: VecDeque<Value>,
    pub interrupted: bool,
    pub consecutive_failures: u32,
    pub deliveries: VecDeque<Delivery>,
    pub events: VecDeque<Value>,
}

fn push_bounded<T>(list: &mut VecDeque<T>, item: T) {
    if list.len() >= MAX_KEPT {
        list.pop_front();
    }
    list.push_back(item);
}

impl Hooks {
    /// New events: logged and queued.
    pub fn push_all(&mut self, events: Vec<Value>) {
        for event in events {
            push_bounded(&mut self.events, event.clone());
            push_bounded(&mut self.queue, event);
        }
    }

    /// An envelope queued again (a redelivery); not logged as a new event.
    pub fn requeue(&mut self, envelope: Value) {
        push_bounded(&mut self.queue, envelope);
    }

    /// Nothing more will be delivered without outside help: the queue is empty, interrupted,
    /// or there is no target.
    pub fn settled(&self) -> bool {
        self.queue.is_empty() || self.interrupted || self.target.is_none()
    }

    fn next(&self) -> Option<(WebhookTarget, Value)> {
        if self.interrupted {
            return None;
        }
        Some((self.target.clone()?, self.queue.front()?.clone()))
    }
}

fn field(envelope: &Value, key: &str) -> String {
    envelope
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Delivers the queue until `shutdown` changes or its sender is dropped.
pub(crate) async fn run(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let job = shared.lock_hooks().next();
        let Some((target, envelope)) = job else {
            tokio::select! {
                () = shared.wake.notified() => continue,
                _ = shutdown.changed() => return,
            }
        };
        let body = envelope.to_string().into_bytes();
        let outcome = tokio::select! {
            outcome = deliver(&target, body, shared.dispatch.timeout) => outcome,
            _ = shutdown.changed() => return,
        };
        let delivery = Delivery {
            event_id: field(&envelope, "id"),
            event: field(&envelope, "event"),
            status: outcome.as_ref().ok().copied(),
            error: outcome.as_ref().err().map(ToString::to_string),
        };
        let succeeded = delivery.succeeded();
        tracing::debug!(
            event_id = delivery.event_id.as_str(),
            event = delivery.event.as_str(),
            status = delivery.status,
            "asaas-sim: webhook delivery"
        );
        let failures = {
            let mut hooks = shared.lock_hooks();
            push_bounded(&mut hooks.deliveries, delivery);
            if succeeded {
                if hooks.queue.front() == Some(&envelope) {
                    hooks.queue.pop_front();
                }
                hooks.consecutive_failures = 0;
            } else {
                hooks.consecutive_failures = hooks.consecutive_failures.saturating_add(1);
                if hooks.consecutive_failures >= MAX_CONSECUTIVE_FAILURES {
                    hooks.interrupted = true;
                    tracing::info!("asaas-sim: webhook queue interrupted");
                }
            }
            hooks.consecutive_failures
        };
        shared.changed.notify_waiters();
        if !succeeded && failures < MAX_CONSECUTIVE_FAILURES {
            tokio::select! {
                () = tokio::time::sleep(shared.dispatch.backoff(failures)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// POSTs `body` to the target once; returns the receiver's status.
pub(crate) async fn deliver(
    target: &WebhookTarget,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<u16, SimError> {
    let uri: Uri = target
        .url
        .parse()
        .map_err(|_| SimError::InvalidUrl(target.url.clone()))?;
    if uri.scheme_str() != Some("http") {
        return Err(SimError::UnsupportedScheme(target.url.clone()));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| SimError::InvalidUrl(target.url.clone()))?
        .clone();
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = authority.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();

    let mut builder = Request::post(path)
        .header("host", authority.as_str())
        .header("content-type", "application/json")
        .header("user-agent", USER_AGENT);
    if let Some(token) = target.auth_token.as_deref() {
        builder = builder.header(TOKEN_HEADER, token);
    }
    let request = builder.body(Full::new(Bytes::from(body)))?;

    let exchange = async {
        let stream = TcpStream::connect((host.as_str(), port)).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let driver = tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "asaas-sim: webhook connection error");
            }
        });
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let _ = response.into_body().collect().await;
        drop(sender);
        driver.abort();
        Ok::<u16, SimError>(status)
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(SimError::Timeout(timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_stays() {
        let d = Dispatch {
            retry_step: Duration::from_millis(50),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(d.backoff(1), Duration::from_millis(50));
        assert_eq!(d.backoff(2), Duration::from_millis(100));
        assert_eq!(d.backoff(4), Duration::from_millis(200));
        assert_eq!(d.backoff(14), Duration::from_millis(200));
    }

    #[test]
    fn settled_and_next() {
        let mut hooks = Hooks::default();
        assert!(hooks.settled());
        hooks.push_all(vec![serde_json::json!({"id": "evt_1&1"})]);
        assert!(hooks.settled(), "no target");
        assert!(hooks.next().is_none());
        hooks.target = Some(WebhookTarget::new("http://127.0.0.1:1/", "t"));
        assert!(!hooks.settled());
        assert!(hooks.next().is_some());
        hooks.interrupted = true;
        assert!(hooks.settled());
        assert!(hooks.next().is_none());
        assert_eq!(hooks.events.len(), 1);
    }

    #[tokio::test]
    async fn bad_targets() {
        let timeout = Duration::from_secs(1);
        let target = |url: &str| WebhookTarget {
            url: url.to_owned(),
            auth_token: None,
        };
        assert!(matches!(
            deliver(&target("https://x.example/"), Vec::new(), timeout).await,
            Err(SimError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            deliver(&target("not a url"), Vec::new(), timeout).await,
            Err(SimError::InvalidUrl(_))
        ));
    }
}
