//! The closed-loop load generator: N tasks, each sending back to back for warm-up + duration;
//! only exchanges that *start* inside the measured window are counted.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use diesel_async::RunQueryDsl;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::AnyResult;
use crate::scenario::{PreparedRequest, RequestSpec};
use crate::stats::{Stats, Tally, summarize};

/// How long a run warms up (discarded) and then measures.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Warm-up time, results discarded.
    pub warmup: Duration,
    /// Measured time.
    pub duration: Duration,
}

/// Result of one exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Completed with a success status.
    Success,
    /// Completed, but the status (this one) was not 2xx.
    NonSuccess(u16),
    /// Failed (connection, I/O, protocol or query error).
    Error,
}

/// One load-generating connection: performs one exchange per call.
pub trait Worker: Send + 'static {
    /// Performs one exchange (reconnecting first if needed).
    fn call(&mut self) -> impl Future<Output = Outcome> + Send;
}

/// How long an exchange may outlive the end of the measured window before it counts as failed.
const STRAGGLER_GRACE: Duration = Duration::from_secs(5);

/// Drives `workers` concurrently through `schedule` and returns the merged summary.
///
/// # Errors
/// When a task panics or a histogram cannot be made.
pub async fn run<W: Worker>(workers: Vec<W>, schedule: Schedule) -> AnyResult<Stats> {
    let start = Instant::now();
    let measure_start = start + schedule.warmup;
    let end = measure_start + schedule.duration;
    let mut handles = Vec::with_capacity(workers.len());
    for worker in workers {
        handles.push(tokio::spawn(drive(worker, measure_start, end)));
    }
    let mut tallies = Vec::with_capacity(handles.len());
    for handle in handles {
        tallies.push(handle.await??);
    }
    let total = Tally::merge_all(&tallies)?;
    Ok(summarize(&total, schedule.duration))
}

/// The loop of one task.
async fn drive<W: Worker>(mut worker: W, measure_start: Instant, end: Instant) -> AnyResult<Tally> {
    let mut tally = Tally::new()?;
    loop {
        let started = Instant::now();
        if started >= end {
            break;
        }
        let outcome = tokio::time::timeout_at(end + STRAGGLER_GRACE, worker.call()).await;
        if started < measure_start {
            continue;
        }
        match outcome {
            Ok(Outcome::Success) => tally.record(started.elapsed(), None),
            Ok(Outcome::NonSuccess(status)) => tally.record(started.elapsed(), Some(status)),
            Ok(Outcome::Error) => tally.errors += 1,
            Err(_elapsed) => {
                tally.errors += 1;
                break;
            }
        }
    }
    Ok(tally)
}

/// Opens one HTTP/1.1 keep-alive connection to `addr`.
///
/// # Errors
/// When the TCP connection or the handshake fails.
pub async fn connect(addr: SocketAddr) -> AnyResult<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // The connection ends when the sender is dropped or the server closes it; either way
        // the worker notices through its sender.
        let _ignored = conn.await;
    });
    Ok(sender)
}

/// Sends one request on a fresh connection and returns the status code and the body (used for
/// readiness, signing in and the check before each scenario).
///
/// # Errors
/// When connecting, sending or reading the body fails.
pub async fn fetch(addr: SocketAddr, spec: &RequestSpec) -> AnyResult<(u16, Bytes)> {
    let mut sender = connect(addr).await?;
    let response = sender.send_request(spec.build(&addr.to_string())?).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// One keep-alive HTTP/1.1 connection, opened lazily and replaced after a failure.
#[derive(Debug)]
pub struct Connection {
    addr: SocketAddr,
    host: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    /// A connection to `addr` (not opened yet).
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            host: addr.to_string(),
            sender: None,
        }
    }

    /// The `host` header value for requests on this connection.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Sends `request` and reads the whole answer; a failure drops the connection so the
    /// next exchange opens a new one.
    pub async fn exchange(&mut self, request: Request<Full<Bytes>>) -> Outcome {
        match self.try_exchange(request).await {
            Some(outcome) => outcome,
            None => {
                self.sender = None;
                Outcome::Error
            }
        }
    }

    async fn try_exchange(&mut self, request: Request<Full<Bytes>>) -> Option<Outcome> {
        if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
            self.sender = None;
            match connect(self.addr).await {
                Ok(sender) => self.sender = Some(sender),
                Err(_) => {
                    // Do not spin on a refused port.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    return None;
                }
            }
        }
        let sender = self.sender.as_mut()?;
        sender.ready().await.ok()?;
        let response = sender.send_request(request).await.ok()?;
        let status = response.status();
        response.into_body().collect().await.ok()?;
        Some(if status.is_success() {
            Outcome::Success
        } else {
            Outcome::NonSuccess(status.as_u16())
        })
    }
}

/// A worker sending the same request over one keep-alive HTTP/1.1 connection.
#[derive(Debug)]
pub struct HttpWorker {
    connection: Connection,
    request: Arc<PreparedRequest>,
}

impl HttpWorker {
    /// A worker sending `request` to `addr` (connects lazily; `request` was prepared for
    /// that address).
    pub fn new(addr: SocketAddr, request: Arc<PreparedRequest>) -> Self {
        Self {
            connection: Connection::new(addr),
            request,
        }
    }
}

impl Worker for HttpWorker {
    async fn call(&mut self) -> Outcome {
        self.connection.exchange(self.request.request()).await
    }
}

/// A worker that takes a pooled connection and runs `SELECT 1` on it, per call.
#[derive(Clone)]
pub struct SelectOneWorker {
    pool: whatpro_db::Pool,
}

impl SelectOneWorker {
    /// A worker using `pool` (shared by all workers, as in the server).
    pub fn new(pool: whatpro_db::Pool) -> Self {
        Self { pool }
    }
}

impl Worker for SelectOneWorker {
    async fn call(&mut self) -> Outcome {
        let Ok(mut conn) = self.pool.get().await else {
            return Outcome::Error;
        };
        match diesel::sql_query("SELECT 1").execute(&mut conn).await {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Succeeds after a short sleep; every third call fails.
    struct Fake(u64);

    impl Worker for Fake {
        async fn call(&mut self) -> Outcome {
            self.0 += 1;
            tokio::time::sleep(Duration::from_millis(1)).await;
            if self.0.is_multiple_of(3) {
                Outcome::Error
            } else {
                Outcome::Success
            }
        }
    }

    #[tokio::test]
    async fn warmup_is_discarded_and_counts_add_up() {
        let schedule = Schedule {
            warmup: Duration::from_millis(50),
            duration: Duration::from_millis(200),
        };
        let stats = run(vec![Fake(0), Fake(0)], schedule).await.unwrap();
        assert!(stats.requests > 0);
        assert!(stats.errors > 0);
        assert_eq!(stats.non_2xx, 0);
        // At most one exchange per millisecond per worker fits in the measured window.
        assert!(stats.requests + stats.errors <= 2 * 201, "{stats:?}");
        assert!(stats.p50_ms >= 1.0, "{stats:?}");
    }
}
