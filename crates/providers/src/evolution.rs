//! Evolution API v2: `GET {base}/instance/connectionState/{name}` with header `apikey` (the
//! instance's own key `instance_api_key` when stored, else the provider's global `api_key`).
//!
//! `open` → Connected; `connecting` → Connecting; `close` and `refused` → Disconnected;
//! 401/403 → Unauthorized; 404 → NotFound (an unknown route, `Cannot GET ...`, is told apart
//! in the detail: the base URL is probably not an Evolution server).

use std::borrow::Cow;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use whatpro_inbox::{ProbeOutcome, ProbeRequest};

use crate::client::{Answer, ProviderClients, Segment, required, secret_header};
use crate::verdict::{Verdict, by_status};

pub(crate) async fn probe(clients: &ProviderClients, request: &ProbeRequest<'_>) -> Verdict {
    run(clients, request)
        .await
        .unwrap_or_else(|verdict| verdict)
}

async fn run(clients: &ProviderClients, request: &ProbeRequest<'_>) -> Result<Verdict, Verdict> {
    let own = request
        .instance_credentials
        .get("instance_api_key")
        .filter(|k| !k.trim().is_empty());
    let key = required(
        own.or_else(|| request.provider_credentials.get("api_key")),
        "no Evolution api key stored",
    )?;
    let url = clients.endpoint(
        request.base_url,
        &[
            Segment::Fixed("instance"),
            Segment::Fixed("connectionState"),
            Segment::Input(request.instance_name),
        ],
        None,
    )?;
    let answer = clients
        .call(Method::GET, url, [secret_header("apikey", key)?])
        .await?;
    Ok(interpret(&answer, &[key]))
}

#[derive(Deserialize)]
struct StateBody<'a> {
    #[serde(borrow)]
    instance: StateInstance<'a>,
}

#[derive(Deserialize)]
struct StateInstance<'a> {
    #[serde(borrow)]
    state: Cow<'a, str>,
}

pub(crate) fn interpret(answer: &Answer, secrets: &[&str]) -> Verdict {
    let status = answer.status;
    if status.is_success() {
        let Ok(body) = serde_json::from_slice::<StateBody<'_>>(&answer.body) else {
            return Verdict::unreadable();
        };
        return match body.instance.state.as_ref() {
            "open" => Verdict::new(ProbeOutcome::Connected, "state open"),
            "connecting" => Verdict::new(ProbeOutcome::Connecting, "state connecting"),
            "close" => Verdict::new(ProbeOutcome::Disconnected, "state close"),
            "refused" => Verdict::new(ProbeOutcome::Disconnected, "state refused"),
            other => Verdict::unknown_state("state", other, secrets),
        };
    }
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            Verdict::new(ProbeOutcome::Unauthorized, "api key refused")
        }
        StatusCode::NOT_FOUND if unknown_route(&answer.body) => Verdict::new(
            ProbeOutcome::NotFound,
            "route not found (is base_url an Evolution API server?)",
        ),
        StatusCode::NOT_FOUND => Verdict::new(ProbeOutcome::NotFound, "instance not found"),
        _ => by_status(status),
    }
}

/// Whether a 404 body is Express's `Cannot GET /path` rather than the instance guard's.
fn unknown_route(body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let message = value.pointer("/response/message");
    let first = match message {
        Some(Value::Array(items)) => items.first().and_then(Value::as_str),
        Some(Value::String(text)) => Some(text.as_str()),
        _ => None,
    };
    first.is_some_and(|text| text.starts_with("Cannot "))
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
        interpret(&answer, &["B2C1A7E0-5D3F-4C8B-9A61-7E2F0D4C3B95"])
    }

    #[test]
    fn reads_the_example_states() {
        assert_eq!(
            verdict(200, fx::EVOLUTION_CONNECTION_STATE_OPEN),
            Verdict::new(ProbeOutcome::Connected, "state open")
        );
        assert_eq!(
            verdict(200, fx::EVOLUTION_CONNECTION_STATE_CONNECTING).outcome,
            ProbeOutcome::Connecting
        );
        assert_eq!(
            verdict(200, fx::EVOLUTION_CONNECTION_STATE_CLOSE).outcome,
            ProbeOutcome::Disconnected
        );
        assert_eq!(
            verdict(
                200,
                r#"{"instance":{"instanceName":"x","state":"refused"}}"#
            )
            .outcome,
            ProbeOutcome::Disconnected
        );
    }

    #[test]
    fn reads_the_example_errors() {
        assert_eq!(
            verdict(401, fx::EVOLUTION_ERROR_401),
            Verdict::new(ProbeOutcome::Unauthorized, "api key refused")
        );
        assert_eq!(
            verdict(404, fx::EVOLUTION_ERROR_404_INSTANCE),
            Verdict::new(ProbeOutcome::NotFound, "instance not found")
        );
        assert_eq!(
            verdict(
                404,
                r#"{"status":404,"error":"Not Found","response":{"message":["Cannot GET /x"]}}"#
            )
            .detail,
            "route not found (is base_url an Evolution API server?)"
        );
        assert_eq!(verdict(500, "oops").outcome, ProbeOutcome::Unreachable);
        assert_eq!(
            verdict(400, fx::EVOLUTION_ERROR_400).outcome,
            ProbeOutcome::BadAnswer
        );
    }

    #[test]
    fn odd_answers_are_bad_answers() {
        assert_eq!(verdict(200, "<html>").outcome, ProbeOutcome::BadAnswer);
        assert_eq!(verdict(200, "{}").outcome, ProbeOutcome::BadAnswer);
        assert_eq!(
            verdict(200, r#"{"instance":{"state":"sleeping"}}"#).detail,
            "unknown state sleeping"
        );
        assert_eq!(
            verdict(
                200,
                r#"{"instance":{"state":"B2C1A7E0-5D3F-4C8B-9A61-7E2F0D4C3B95"}}"#
            )
            .detail,
            "unknown state"
        );
    }
}
