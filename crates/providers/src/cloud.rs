//! WhatsApp Cloud API (Meta Graph): `GET {base}/{phone_number_id}?fields=...health_status` with
//! `Authorization: Bearer <access_token>`; the base carries the Graph version, e.g.
//! `https://graph.facebook.com/v21.0`.
//!
//! Mapping, in this order:
//! 1. `health_status.can_send_message` `BLOCKED` → Disconnected.
//! 2. The phone number's `status`: `PENDING` → Connecting (registration not finished); any
//!    value other than `CONNECTED` (`DISCONNECTED`, `BANNED`, `RESTRICTED`, `DELETED`, ...) →
//!    Disconnected.
//! 3. `can_send_message` `AVAILABLE` → Connected; `LIMITED` → Connected with the detail
//!    `can send, LIMITED` (messages still go out, within limits; the Hub should not call that
//!    down); absent → Connected when `status` is `CONNECTED`.
//!
//! Errors: Graph code 190 (OAuthException) or HTTP 401 → Unauthorized; code 10 or 200-299
//! (permissions) → Unauthorized; code 100 on a 400/404 (object does not exist) → NotFound;
//! rate-limit codes (4, 17, 32, 613, 80007, 130429) → Unreachable.

use std::borrow::Cow;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use whatpro_inbox::{ProbeOutcome, ProbeRequest};

use crate::client::{Answer, ProviderClients, Segment, bearer_header, required};
use crate::verdict::{Verdict, by_status};

/// The fields asked for.
pub const FIELDS: &str = "fields=verified_name,display_phone_number,quality_rating,code_verification_status,status,health_status";

pub(crate) async fn probe(clients: &ProviderClients, request: &ProbeRequest<'_>) -> Verdict {
    run(clients, request)
        .await
        .unwrap_or_else(|verdict| verdict)
}

async fn run(clients: &ProviderClients, request: &ProbeRequest<'_>) -> Result<Verdict, Verdict> {
    let token = required(
        request.provider_credentials.get("access_token"),
        "no WhatsApp Cloud access token stored",
    )?;
    let url = clients.endpoint(
        request.base_url,
        &[Segment::Input(request.instance_name)],
        Some(FIELDS),
    )?;
    let answer = clients
        .call(Method::GET, url, [bearer_header(token)?])
        .await?;
    Ok(interpret(&answer, &[token]))
}

#[derive(Deserialize)]
struct PhoneBody<'a> {
    #[serde(default, borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    health_status: Option<Health<'a>>,
}

#[derive(Deserialize)]
struct Health<'a> {
    #[serde(default, borrow)]
    can_send_message: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    #[serde(default)]
    code: Option<i64>,
}

pub(crate) fn interpret(answer: &Answer, secrets: &[&str]) -> Verdict {
    let status = answer.status;
    if status.is_success() {
        let Ok(body) = serde_json::from_slice::<PhoneBody<'_>>(&answer.body) else {
            return Verdict::unreadable();
        };
        let can_send = body
            .health_status
            .as_ref()
            .and_then(|h| h.can_send_message.as_deref());
        if can_send == Some("BLOCKED") {
            return Verdict::new(ProbeOutcome::Disconnected, "can_send_message BLOCKED");
        }
        match body.status.as_deref() {
            None | Some("CONNECTED") => {}
            Some("PENDING") => return Verdict::new(ProbeOutcome::Connecting, "status PENDING"),
            Some(other) => {
                return match crate::verdict::safe_word(other, secrets) {
                    Some(word) => {
                        Verdict::owned(ProbeOutcome::Disconnected, format!("status {word}"))
                    }
                    None => Verdict::new(ProbeOutcome::Disconnected, "status not CONNECTED"),
                };
            }
        }
        return match (can_send, body.status.is_some()) {
            (Some("AVAILABLE"), _) => {
                Verdict::new(ProbeOutcome::Connected, "can_send_message AVAILABLE")
            }
            (Some("LIMITED"), _) => Verdict::new(ProbeOutcome::Connected, "can send, LIMITED"),
            (Some(other), _) => Verdict::unknown_state("can_send_message", other, secrets),
            (None, true) => Verdict::new(ProbeOutcome::Connected, "status CONNECTED"),
            (None, false) => Verdict::unreadable(),
        };
    }
    let code = serde_json::from_slice::<ErrorBody>(&answer.body)
        .ok()
        .and_then(|body| body.error.code);
    match (status, code) {
        (_, Some(190)) | (StatusCode::UNAUTHORIZED, _) => {
            Verdict::new(ProbeOutcome::Unauthorized, "access token refused")
        }
        (_, Some(10 | 200..=299)) | (StatusCode::FORBIDDEN, _) => {
            Verdict::new(ProbeOutcome::Unauthorized, "permission denied")
        }
        (StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND, Some(100))
        | (StatusCode::NOT_FOUND, _) => {
            Verdict::new(ProbeOutcome::NotFound, "phone number id not found")
        }
        (_, Some(4 | 17 | 32 | 613 | 80007 | 130_429)) => {
            Verdict::new(ProbeOutcome::Unreachable, "rate limited")
        }
        _ => by_status(status),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use whatpro_providers_sim::fixtures as fx;

    use super::*;

    fn verdict(status: u16, body: &str) -> Verdict {
        let answer = Answer {
            status: StatusCode::from_u16(status).unwrap_or_default(),
            body: Bytes::copy_from_slice(body.as_bytes()),
        };
        interpret(&answer, &["EAAG-secret"])
    }

    fn with(status: &str, can_send: &str) -> String {
        let mut value: serde_json::Value =
            serde_json::from_str(fx::WHATSAPP_CLOUD_PHONE_NUMBER_RESPONSE).unwrap_or_default();
        value["status"] = status.into();
        value["health_status"]["can_send_message"] = can_send.into();
        value.to_string()
    }

    #[test]
    fn reads_the_example() {
        assert_eq!(
            verdict(200, fx::WHATSAPP_CLOUD_PHONE_NUMBER_RESPONSE),
            Verdict::new(ProbeOutcome::Connected, "can_send_message AVAILABLE")
        );
    }

    #[test]
    fn health_and_status_mapping() {
        assert_eq!(
            verdict(200, &with("CONNECTED", "LIMITED")),
            Verdict::new(ProbeOutcome::Connected, "can send, LIMITED")
        );
        assert_eq!(
            verdict(200, &with("CONNECTED", "BLOCKED")).outcome,
            ProbeOutcome::Disconnected
        );
        assert_eq!(
            verdict(200, &with("PENDING", "LIMITED")).outcome,
            ProbeOutcome::Connecting
        );
        assert_eq!(
            verdict(200, &with("BANNED", "AVAILABLE")),
            Verdict::new(ProbeOutcome::Disconnected, "status BANNED")
        );
        assert_eq!(
            verdict(200, r#"{"status":"CONNECTED","id":"1"}"#).outcome,
            ProbeOutcome::Connected
        );
        assert_eq!(
            verdict(200, r#"{"id":"1"}"#).outcome,
            ProbeOutcome::BadAnswer
        );
        assert_eq!(
            verdict(200, &with("CONNECTED", "MAYBE")).detail,
            "unknown can_send_message MAYBE"
        );
        assert_eq!(verdict(200, "garbage").outcome, ProbeOutcome::BadAnswer);
    }

    #[test]
    fn graph_errors() {
        assert_eq!(
            verdict(401, fx::WHATSAPP_CLOUD_ERROR_401_TOKEN),
            Verdict::new(ProbeOutcome::Unauthorized, "access token refused")
        );
        let graph =
            |code: i64| format!(r#"{{"error":{{"message":"m","type":"T","code":{code}}}}}"#);
        assert_eq!(
            verdict(400, &graph(190)).outcome,
            ProbeOutcome::Unauthorized
        );
        assert_eq!(
            verdict(403, &graph(200)).outcome,
            ProbeOutcome::Unauthorized
        );
        assert_eq!(verdict(400, &graph(100)).outcome, ProbeOutcome::NotFound);
        assert_eq!(verdict(400, &graph(4)).outcome, ProbeOutcome::Unreachable);
        assert_eq!(verdict(500, &graph(2)).outcome, ProbeOutcome::Unreachable);
        assert_eq!(
            verdict(400, &graph(131_000)).outcome,
            ProbeOutcome::BadAnswer
        );
    }
}
