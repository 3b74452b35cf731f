#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
//! Black-box tests of the fake Asaas against the shared contract in `shared/asaas/`.

mod api;
mod dispatcher;
mod hooks;

use std::collections::{BTreeSet, VecDeque};
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use whatpro_asaas_sim::{AsaasSim, SimConfig};

/// The key the simulator accepts in these tests.
pub const KEY: &str = "$aact_hmlg_sim_test_key";

// ------------------------------------------------------------------ shared examples

pub fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/asaas")
}

pub fn shared_text(name: &str) -> String {
    std::fs::read_to_string(shared_dir().join(name)).unwrap()
}

pub fn shared_json(name: &str) -> Value {
    serde_json::from_str(&shared_text(name)).unwrap()
}

/// Asserts that `actual` has exactly the keys of `expected`, recursively through objects
/// and (against the example's first item) arrays of objects.
pub fn assert_same_keys(actual: &Value, expected: &Value, path: &str) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            let ak: BTreeSet<&String> = a.keys().collect();
            let ek: BTreeSet<&String> = e.keys().collect();
            assert_eq!(ak, ek, "key sets differ at {path}");
            for (key, value) in a {
                assert_same_keys(value, &e[key], &format!("{path}.{key}"));
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            if let Some(first) = e.first() {
                for (i, item) in a.iter().enumerate() {
                    assert_same_keys(item, first, &format!("{path}[{i}]"));
                }
            }
        }
        (Value::Object(_), other) | (other, Value::Object(_)) if !other.is_null() => {
            panic!("type mismatch at {path}: {actual} vs {expected}")
        }
        _ => {}
    }
}

// ------------------------------------------------------------------ the simulator over HTTP

pub async fn start() -> AsaasSim {
    AsaasSim::start(SimConfig::new(KEY)).await.unwrap()
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Calls `method path` (relative to `/v3`) with the right key; returns status and JSON
/// (`Null` for an empty body, a string for non-JSON).
pub async fn call(sim: &AsaasSim, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    call_with_key(sim, method, path, body, Some(KEY)).await
}

pub async fn call_with_key(
    sim: &AsaasSim,
    method: &str,
    path: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = http().request(method, format!("{}{path}", sim.url()));
    if let Some(key) = key {
        request = request.header("access_token", key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

/// Creates a customer (CPF) and returns it.
pub async fn create_customer(sim: &AsaasSim, reference: &str) -> Value {
    let (status, customer) = call(
        sim,
        "POST",
        "/customers",
        Some(json!({"name": "Ana Reis", "cpfCnpj": "12345678909",
                    "externalReference": reference, "notificationDisabled": true})),
    )
    .await;
    assert_eq!(status, 200, "{customer}");
    customer
}

/// Creates a monthly 197.00 subscription due 2025-03-15 (plus `extra` fields).
pub async fn create_subscription(sim: &AsaasSim, customer: &str, extra: Value) -> Value {
    let mut body = json!({"customer": customer, "billingType": "PIX", "value": 197.0,
                          "nextDueDate": "2025-03-15", "cycle": "MONTHLY",
                          "description": "WhatPro Hub - Plano Pro (mensal)",
                          "externalReference": "tenant_1:plan_pro"});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    let (status, subscription) = call(sim, "POST", "/subscriptions", Some(body)).await;
    assert_eq!(status, 200, "{subscription}");
    subscription
}

pub fn codes(errors: &Value) -> Vec<String> {
    errors["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap().to_owned())
        .collect()
}

// ------------------------------------------------------------------ a webhook receiver

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Hit {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct Script {
    next: VecDeque<u16>,
    otherwise: u16,
    hits: Vec<Hit>,
}

/// A tiny HTTP receiver: answers the scripted statuses in order, then `otherwise`.
pub struct Receiver {
    pub url: String,
    script: Arc<Mutex<Script>>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start(statuses: &[u16]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhooks/asaas", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(Script {
            next: statuses.iter().copied().collect(),
            otherwise: 200,
            hits: Vec::new(),
        }));
        let shared = Arc::clone(&script);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let script = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let script = Arc::clone(&script);
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await.unwrap().to_bytes().to_vec();
                            let headers = parts
                                .headers
                                .iter()
                                .map(|(n, v)| {
                                    (n.as_str().to_owned(), v.to_str().unwrap().to_owned())
                                })
                                .collect();
                            let status = {
                                let mut script = script.lock().unwrap();
                                script.hits.push(Hit { headers, body });
                                let otherwise = script.otherwise;
                                script.next.pop_front().unwrap_or(otherwise)
                            };
                            let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
                            *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { url, script, task }
    }

    /// The status answered once the script is used up.
    pub fn answer(&self, status: u16) {
        self.script.lock().unwrap().otherwise = status;
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.script.lock().unwrap().hits.clone()
    }

    /// `event` of every body received, in order.
    pub fn events(&self) -> Vec<String> {
        self.hits()
            .iter()
            .map(|h| h.json()["event"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

/// `sim.flush_webhooks()` bounded by five seconds.
pub async fn flush(sim: &AsaasSim) {
    tokio::time::timeout(Duration::from_secs(5), sim.flush_webhooks())
        .await
        .expect("webhooks flushed in time");
}
