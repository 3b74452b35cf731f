//! Outgoing Evolution webhooks: the envelope built from the `webhook-*.json` examples, posted
//! over plain HTTP/1.1 the way Evolution's axios client does.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::fixtures as fx;
use crate::types::{EvolutionEvent, EvolutionState, SimError};
use crate::util;

/// How long a delivery may take (connect + answer).
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// Values that vary per delivery.
pub(crate) struct Envelope<'a> {
    pub instance: &'a str,
    pub destination: &'a str,
    pub server_url: &'a str,
    pub apikey: Option<&'a str>,
    pub instance_id: Option<&'a str>,
}

fn put(value: &mut Value, pointer: &str, new: Value) {
    if let Some(slot) = value.pointer_mut(pointer) {
        *slot = new;
    }
}

/// The webhook body for `event`, from the matching example with names and values replaced.
pub(crate) fn payload(event: EvolutionEvent, envelope: &Envelope<'_>) -> Value {
    let mut value = match event {
        EvolutionEvent::ConnectionUpdate(EvolutionState::Open) => fx::EVO_WEBHOOK_OPEN.clone(),
        EvolutionEvent::ConnectionUpdate(EvolutionState::Close) => fx::EVO_WEBHOOK_CLOSE.clone(),
        EvolutionEvent::ConnectionUpdate(EvolutionState::Refused) => {
            fx::EVO_WEBHOOK_REFUSED.clone()
        }
        EvolutionEvent::ConnectionUpdate(EvolutionState::Connecting) => {
            let mut value = fx::EVO_WEBHOOK_CLOSE.clone();
            put(&mut value, "/data/state", json!("connecting"));
            put(&mut value, "/data/statusReason", json!(200));
            value
        }
        EvolutionEvent::MessagesUpsert => {
            let mut value = fx::EVO_WEBHOOK_UPSERT.clone();
            put(&mut value, "/data/key/id", json!(util::message_id()));
            put(
                &mut value,
                "/data/messageTimestamp",
                json!(util::unix_now()),
            );
            if let Some(id) = envelope.instance_id {
                put(&mut value, "/data/instanceId", json!(id));
            }
            value
        }
        EvolutionEvent::QrcodeUpdated => {
            let mut value = fx::EVO_WEBHOOK_QRCODE.clone();
            put(
                &mut value,
                "/data/qrcode/instance",
                json!(envelope.instance),
            );
            value
        }
    };
    put(&mut value, "/instance", json!(envelope.instance));
    put(&mut value, "/data/instance", json!(envelope.instance));
    put(&mut value, "/destination", json!(envelope.destination));
    put(&mut value, "/date_time", json!(util::iso_now()));
    put(&mut value, "/server_url", json!(envelope.server_url));
    put(
        &mut value,
        "/apikey",
        envelope.apikey.map_or(Value::Null, |key| json!(key)),
    );
    value
}

/// Posts `body` to `url` with `Authorization: Bearer <bearer>`; returns the answer's status.
pub(crate) async fn deliver(url: &str, bearer: &str, body: Vec<u8>) -> Result<u16, SimError> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|_| SimError::InvalidUrl(url.to_owned()))?;
    if uri.scheme_str() != Some("http") {
        return Err(SimError::UnsupportedScheme(url.to_owned()));
    }
    let (Some(host), Some(authority)) = (uri.host(), uri.authority()) else {
        return Err(SimError::InvalidUrl(url.to_owned()));
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let authority = authority.as_str().to_owned();
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let delivery = async move {
        let failed = |e: &dyn std::fmt::Display| SimError::Delivery(e.to_string());
        let stream = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| failed(&e))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| failed(&e))?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "providers-sim: webhook connection ended");
            }
        });
        let request = Request::post(path)
            .header(HOST, authority)
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, "axios/1.7.9")
            .header(AUTHORIZATION, format!("Bearer {bearer}"))
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| failed(&e))?;
        let response = sender.send_request(request).await.map_err(|e| failed(&e))?;
        let status = response.status().as_u16();
        let _ = response.into_body().collect().await;
        Ok(status)
    };
    tokio::time::timeout(WEBHOOK_TIMEOUT, delivery)
        .await
        .map_err(|_| SimError::Timeout)?
}
