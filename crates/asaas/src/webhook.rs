//! Webhooks from Asaas: the envelope ([`parse_webhook`]) and the `asaas-access-token` check
//! ([`token_matches`]). Asaas signs nothing; the static token is the only authentication.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use whatpro_kernel::{Classify, ErrorKind};

use crate::types::{Payment, Subscription};

/// The header Asaas sends the configured `authToken` in.
pub const WEBHOOK_TOKEN_HEADER: &str = "asaas-access-token";

/// One webhook delivery. The same `id` may arrive more than once (at-least-once delivery):
/// store it before acting on the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// Event id, `evt_<hex>&<n>`, stable across redeliveries.
    pub id: String,
    /// Event name such as `PAYMENT_RECEIVED` or `SUBSCRIPTION_DELETED` (an open set).
    pub event: String,
    /// When Asaas created the event, `yyyy-MM-dd HH:mm:ss` in Brazil local time, verbatim.
    pub date_created: Option<String>,
    /// The payment, for `PAYMENT_*` events.
    pub payment: Option<Payment>,
    /// The subscription, for `SUBSCRIPTION_*` events.
    pub subscription: Option<Subscription>,
}

/// Why a webhook body was refused. Messages never quote the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookParseError {
    /// The body is not JSON.
    #[error("the webhook body is not JSON ({0})")]
    NotJson(String),
    /// `id` or `event` is missing, null or empty.
    #[error("the webhook body has no `{0}`")]
    Missing(&'static str),
    /// JSON, but not an envelope (wrong types, a malformed payment or subscription).
    #[error("the webhook body has an unexpected shape ({0})")]
    Invalid(String),
}

impl Classify for WebhookParseError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::BadRequest
    }

    fn code(&self) -> &'static str {
        "asaas_webhook_malformed"
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    date_created: Option<String>,
    #[serde(default)]
    payment: Option<Payment>,
    #[serde(default)]
    subscription: Option<Subscription>,
}

/// Parses a webhook body. Unknown events and unknown keys are accepted.
///
/// # Errors
/// [`WebhookParseError::NotJson`] for malformed JSON, [`WebhookParseError::Missing`] when
/// `id` or `event` is absent or empty, [`WebhookParseError::Invalid`] for any other shape
/// problem (e.g. a `payment` without `id`).
pub fn parse_webhook(body: &[u8]) -> Result<WebhookEvent, WebhookParseError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        let position = format!("line {}, column {}", e.line(), e.column());
        match e.classify() {
            serde_json::error::Category::Data => WebhookParseError::Invalid(position),
            _ => WebhookParseError::NotJson(position),
        }
    })?;
    let id = envelope
        .id
        .filter(|id| !id.trim().is_empty())
        .ok_or(WebhookParseError::Missing("id"))?;
    let event = envelope
        .event
        .filter(|event| !event.trim().is_empty())
        .ok_or(WebhookParseError::Missing("event"))?;
    Ok(WebhookEvent {
        id,
        event,
        date_created: envelope.date_created,
        payment: envelope.payment,
        subscription: envelope.subscription,
    })
}

/// Whether the presented `asaas-access-token` header value equals the configured token, in
/// constant time: both are hashed with SHA-256 and the digests compared without an early
/// exit, so neither the length nor any prefix of the token leaks. An empty `expected`
/// token matches nothing.
pub fn token_matches(expected: &str, presented: &[u8]) -> bool {
    if expected.is_empty() {
        return false;
    }
    let expected = Sha256::digest(expected.as_bytes());
    let presented = Sha256::digest(presented);
    let difference = expected
        .iter()
        .zip(presented.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let token = "wh_9Zk2Lq7Xv4Rt8Pm3Nc6Bd1Fg5Hj0Ks2Wy";
        assert!(token_matches(token, token.as_bytes()));
        assert!(!token_matches(
            token,
            b"wh_9Zk2Lq7Xv4Rt8Pm3Nc6Bd1Fg5Hj0Ks2Wz"
        ));
        assert!(!token_matches(token, b""));
        assert!(!token_matches(token, format!("{token} ").as_bytes()));
        assert!(!token_matches("", b""));
    }

    #[test]
    fn envelope_errors() {
        assert!(matches!(
            parse_webhook(b"{not json"),
            Err(WebhookParseError::NotJson(_))
        ));
        assert!(matches!(
            parse_webhook(b""),
            Err(WebhookParseError::NotJson(_))
        ));
        assert_eq!(
            parse_webhook(br#"{"event":"PAYMENT_CREATED"}"#),
            Err(WebhookParseError::Missing("id"))
        );
        assert_eq!(
            parse_webhook(br#"{"id":"evt_1&1","event":""}"#),
            Err(WebhookParseError::Missing("event"))
        );
        assert!(matches!(
            parse_webhook(br#"{"id":7,"event":"X"}"#),
            Err(WebhookParseError::Invalid(_))
        ));
        assert!(matches!(
            parse_webhook(br#""PAYMENT_CREATED""#),
            Err(WebhookParseError::Invalid(_))
        ));
        assert!(parse_webhook(b"[]").is_err());
        let e = parse_webhook(br#"{"id":"a","event":"PAYMENT_CREATED","payment":{"x":1}}"#)
            .unwrap_err();
        assert!(matches!(e, WebhookParseError::Invalid(_)));
        assert_eq!(e.kind(), ErrorKind::BadRequest);
    }

    #[test]
    fn unknown_events_are_fine() {
        let event =
            parse_webhook(br#"{"id":"evt_x&1","event":"TRANSFER_DONE","transfer":{"id":"t"}}"#)
                .unwrap();
        assert_eq!(event.event, "TRANSFER_DONE");
        assert_eq!(event.payment, None);
        assert_eq!(event.subscription, None);
        assert_eq!(event.date_created, None);
    }
}
