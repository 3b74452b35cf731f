//! Provider webhooks: reading Evolution's envelope (`/work/shared/providers/README.md` §1,
//! "Webhooks emitted by Evolution") and checking the per-instance token.

use serde_json::Value;

use crate::health::PushedState;

/// An event a provider sent about one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderEvent {
    /// `connection.update`: the session's state changed. `state` is `None` for a state
    /// string this version does not know (the event is recorded, the health is not moved).
    ConnectionUpdate {
        /// The pushed state.
        state: Option<PushedState>,
        /// The raw state string.
        raw_state: String,
        /// Evolution's `statusReason` (Baileys disconnect code), if any.
        status_reason: Option<i64>,
    },
    /// `messages.upsert`: a message arrived or was sent.
    MessagesUpsert,
    /// `qrcode.updated`: a new pairing QR code.
    QrcodeUpdated,
    /// Any other event name (acknowledged and ignored).
    Other(String),
}

impl ProviderEvent {
    /// The event's normalised name (`CONNECTION_UPDATE` ...).
    pub fn name(&self) -> &str {
        match self {
            ProviderEvent::ConnectionUpdate { .. } => "CONNECTION_UPDATE",
            ProviderEvent::MessagesUpsert => "MESSAGES_UPSERT",
            ProviderEvent::QrcodeUpdated => "QRCODE_UPDATED",
            ProviderEvent::Other(name) => name,
        }
    }

    /// Whether the Hub records this event (it counts as a sign of life of the instance).
    pub fn is_known(&self) -> bool {
        !matches!(self, ProviderEvent::Other(_))
    }
}

/// A webhook body, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedWebhook {
    /// The event.
    pub event: ProviderEvent,
    /// The envelope's `instance` (the instance name at the provider), if present.
    pub instance: Option<String>,
}

/// Why a webhook body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookParseError {
    /// The body is not JSON.
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an event the Hub can read.
    #[error("{0}")]
    Malformed(String),
}

/// `connection.update` → `CONNECTION_UPDATE` (upper case, `.` and `-` become `_`), as the
/// contract says to normalise event names.
pub fn normalise_event_name(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| match c {
            '.' | '-' => '_',
            other => other.to_ascii_uppercase(),
        })
        .collect()
}

/// Reads an Evolution webhook envelope `{event, instance, data, ...}`.
///
/// # Errors
/// [`WebhookParseError::NotJson`] for a body that is not JSON;
/// [`WebhookParseError::Malformed`] for JSON without a string `event`, or a known event whose
/// `data` lacks what the Hub reads (`data.state` of `connection.update`, an object for
/// `messages.upsert` and `qrcode.updated`).
pub fn parse_webhook(body: &[u8]) -> Result<ParsedWebhook, WebhookParseError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        WebhookParseError::NotJson(format!("line {}, column {}", e.line(), e.column()))
    })?;
    let object = value
        .as_object()
        .ok_or_else(|| WebhookParseError::Malformed("the body must be a JSON object".to_owned()))?;
    let name = object
        .get("event")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| WebhookParseError::Malformed("`event` must be a string".to_owned()))?;
    let instance = object
        .get("instance")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let data = object.get("data");
    let data_object = || {
        data.and_then(Value::as_object).ok_or_else(|| {
            WebhookParseError::Malformed(format!("`data` of {name} must be an object"))
        })
    };
    let normalised = normalise_event_name(name);
    let event = match normalised.as_str() {
        "CONNECTION_UPDATE" => {
            let data = data_object()?;
            let raw_state = data
                .get("state")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    WebhookParseError::Malformed(
                        "`data.state` of connection.update must be a string".to_owned(),
                    )
                })?
                .to_owned();
            ProviderEvent::ConnectionUpdate {
                state: PushedState::parse(&raw_state),
                status_reason: data.get("statusReason").and_then(Value::as_i64),
                raw_state,
            }
        }
        "MESSAGES_UPSERT" => {
            data_object()?;
            ProviderEvent::MessagesUpsert
        }
        "QRCODE_UPDATED" => {
            data_object()?;
            ProviderEvent::QrcodeUpdated
        }
        _ => ProviderEvent::Other(normalised),
    };
    Ok(ParsedWebhook { event, instance })
}

/// Compares two byte strings in time that depends only on their lengths (token hashes have a
/// fixed length, so nothing about the stored hash leaks).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared example payloads of Evolution's webhooks.
    fn example(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../../shared/providers/evolution/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn reads_the_shared_examples() {
        let parsed = parse_webhook(&example("webhook-connection-update-open.json")).unwrap();
        assert!(matches!(
            parsed.event,
            ProviderEvent::ConnectionUpdate {
                state: Some(PushedState::Open),
                ..
            }
        ));
        assert!(parsed.instance.is_some());
        let parsed = parse_webhook(&example("webhook-connection-update-close.json")).unwrap();
        assert!(matches!(
            parsed.event,
            ProviderEvent::ConnectionUpdate {
                state: Some(PushedState::Close),
                ..
            }
        ));
        let parsed = parse_webhook(&example("webhook-connection-update-refused.json")).unwrap();
        assert!(matches!(
            parsed.event,
            ProviderEvent::ConnectionUpdate {
                state: Some(PushedState::Refused),
                ..
            }
        ));
        assert_eq!(
            parse_webhook(&example("webhook-messages-upsert.json"))
                .unwrap()
                .event,
            ProviderEvent::MessagesUpsert
        );
        assert_eq!(
            parse_webhook(&example("webhook-qrcode-updated.json"))
                .unwrap()
                .event,
            ProviderEvent::QrcodeUpdated
        );
        let logout = parse_webhook(&example("webhook-logout-instance.json")).unwrap();
        assert_eq!(
            logout.event,
            ProviderEvent::Other("LOGOUT_INSTANCE".to_owned())
        );
        assert!(!logout.event.is_known());
    }

    #[test]
    fn names_are_normalised_and_unknown_states_kept() {
        assert_eq!(
            normalise_event_name("group-participants.update"),
            "GROUP_PARTICIPANTS_UPDATE"
        );
        assert_eq!(
            normalise_event_name("CONNECTION_UPDATE"),
            "CONNECTION_UPDATE"
        );
        let parsed = parse_webhook(
            br#"{"event":"CONNECTION_UPDATE","instance":"x","data":{"state":"paused"}}"#,
        )
        .unwrap();
        assert_eq!(
            parsed.event,
            ProviderEvent::ConnectionUpdate {
                state: None,
                raw_state: "paused".to_owned(),
                status_reason: None
            }
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(matches!(
            parse_webhook(b"<xml/>"),
            Err(WebhookParseError::NotJson(_))
        ));
        assert!(matches!(
            parse_webhook(b""),
            Err(WebhookParseError::NotJson(_))
        ));
        for body in [
            &br#"[1,2]"#[..],
            br#"{"instance":"x"}"#,
            br#"{"event":5}"#,
            br#"{"event":"connection.update","data":{}}"#,
            br#"{"event":"connection.update","data":{"state":3}}"#,
            br#"{"event":"messages.upsert","data":"x"}"#,
            br#"{"event":"qrcode.updated"}"#,
        ] {
            assert!(
                matches!(parse_webhook(body), Err(WebhookParseError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // Unknown events need no data.
        assert!(parse_webhook(br#"{"event":"presence.update"}"#).is_ok());
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
