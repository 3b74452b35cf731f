//! Outgoing webhooks the way Chatwoot posts them (README 4c): Rails JSON body, delivery and
//! timestamp headers, HMAC-SHA256 signature, no retry, 5 s timeout.

use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sha2::Sha256;
use tokio::net::TcpStream;

use crate::types::SimError;
use crate::util;

/// Chatwoot's default `WEBHOOK_TIMEOUT` (open + read).
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// How a webhook delivery is signed, i.e. which Chatwoot version is mimicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookSigning<'a> {
    /// Before 4.11.2: no `X-Chatwoot-*` headers at all.
    Legacy,
    /// `X-Chatwoot-Delivery` and `X-Chatwoot-Timestamp`, but no signature (no secret set).
    Unsigned,
    /// All three headers, signed with this secret.
    Signed(&'a str),
}

/// `X-Chatwoot-Signature` value: `sha256=` + lower-case hex of
/// HMAC-SHA256(key = `secret`, message = `"{timestamp}.{body}"`).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this arm cannot be reached.
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", util::hex(&mac.finalize().into_bytes()))
}

/// Checks an `X-Chatwoot-Signature` header against the raw body in constant time.
pub fn verify_signature(secret: &str, timestamp: &str, body: &[u8], signature: &str) -> bool {
    let Ok(timestamp) = timestamp.trim().parse::<i64>() else {
        return false;
    };
    let expected = sign(secret, timestamp, body);
    let (a, b) = (expected.as_bytes(), signature.trim().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Serializes like Rails `to_json`: compact, UTF-8, with `<`, `>`, `&`, U+2028 and U+2029
/// escaped as `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`.
pub fn rails_json(payload: &Value) -> String {
    let compact = payload.to_string();
    let mut out = String::with_capacity(compact.len());
    for c in compact.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

struct Target {
    host: String,
    port: u16,
    authority: String,
    path_and_query: String,
}

fn parse_url(url: &str) -> Result<Target, SimError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| SimError::InvalidUrl(url.to_owned()))?;
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(SimError::UnsupportedScheme(url.to_owned()));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let mut path_and_query = rest[end..].split('#').next().unwrap_or("").to_owned();
    if !path_and_query.starts_with('/') {
        path_and_query.insert(0, '/');
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| SimError::InvalidUrl(url.to_owned()))?;
        (host.to_owned(), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (authority.to_owned(), None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse()
            .map_err(|_| SimError::InvalidUrl(url.to_owned()))?,
        None => 80,
    };
    if host.is_empty() {
        return Err(SimError::InvalidUrl(url.to_owned()));
    }
    Ok(Target {
        host,
        port,
        authority: authority.to_owned(),
        path_and_query,
    })
}

/// POSTs `body` to `url` once; returns the receiver's status.
pub(crate) async fn deliver(
    url: &str,
    body: Vec<u8>,
    signing: WebhookSigning<'_>,
) -> Result<u16, SimError> {
    let target = parse_url(url)?;
    let mut builder = Request::post(target.path_and_query.as_str())
        .header("host", target.authority.as_str())
        .header("content-type", "application/json")
        .header("accept", "application/json");
    if signing != WebhookSigning::Legacy {
        let timestamp = util::unix_now();
        builder = builder
            .header("x-chatwoot-delivery", uuid::Uuid::new_v4().to_string())
            .header("x-chatwoot-timestamp", timestamp.to_string());
        if let WebhookSigning::Signed(secret) = signing {
            builder = builder.header("x-chatwoot-signature", sign(secret, timestamp, &body));
        }
    }
    let request = builder.body(Full::new(Bytes::from(body)))?;

    let exchange = async {
        let stream = TcpStream::connect((target.host.as_str(), target.port)).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let driver = tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "chatwoot-sim: webhook connection error");
            }
        });
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        // Read the answer to the end, as the Ruby client does; its content is ignored.
        let _ = response.into_body().collect().await;
        drop(sender);
        driver.abort();
        Ok::<u16, SimError>(status)
    };
    match tokio::time::timeout(WEBHOOK_TIMEOUT, exchange).await {
        Ok(result) => result,
        Err(_) => Err(SimError::Timeout(WEBHOOK_TIMEOUT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rails_json_escapes_html_characters() {
        let v = json!({"a": "<b>&</b>", "c": "São\u{2028}"});
        assert_eq!(
            rails_json(&v),
            r#"{"a":"\u003cb\u003e\u0026\u003c/b\u003e","c":"São\u2028"}"#
        );
    }

    #[test]
    fn url_parsing() {
        let t = parse_url("http://127.0.0.1:8080/hook?x=1#frag").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 8080));
        assert_eq!(t.path_and_query, "/hook?x=1");
        let t = parse_url("http://[::1]:81").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path_and_query.as_str()),
            ("::1", 81, "/")
        );
        assert!(matches!(
            parse_url("https://x"),
            Err(SimError::UnsupportedScheme(_))
        ));
        assert!(matches!(parse_url("nope"), Err(SimError::InvalidUrl(_))));
    }

    #[test]
    fn verify_rejects_tampering() {
        let sig = sign("k", 10, b"{}");
        assert!(verify_signature("k", "10", b"{}", &sig));
        assert!(!verify_signature("k", "11", b"{}", &sig));
        assert!(!verify_signature("k", "10", b"{ }", &sig));
    }
}
