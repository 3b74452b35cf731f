//! uazapiGO v2: `GET {base}/instance/status` with header `token` (the instance token, which
//! alone identifies the instance; the instance name is only a label).
//!
//! `instance.status`: `connected` → Connected, `connecting` → Connecting, `disconnected` →
//! Disconnected; 401/403 → Unauthorized; 404 → NotFound.

use std::borrow::Cow;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use whatpro_inbox::{ProbeOutcome, ProbeRequest};

use crate::client::{Answer, ProviderClients, Segment, required, secret_header};
use crate::verdict::{Verdict, by_status};

pub(crate) async fn probe(clients: &ProviderClients, request: &ProbeRequest<'_>) -> Verdict {
    run(clients, request)
        .await
        .unwrap_or_else(|verdict| verdict)
}

async fn run(clients: &ProviderClients, request: &ProbeRequest<'_>) -> Result<Verdict, Verdict> {
    let token = required(
        request.instance_credentials.get("token"),
        "no uazapi instance token stored",
    )?;
    let url = clients.endpoint(
        request.base_url,
        &[Segment::Fixed("instance"), Segment::Fixed("status")],
        None,
    )?;
    let answer = clients
        .call(Method::GET, url, [secret_header("token", token)?])
        .await?;
    Ok(interpret(&answer, &[token]))
}

#[derive(Deserialize)]
struct StatusBody<'a> {
    #[serde(borrow)]
    instance: StatusInstance<'a>,
}

#[derive(Deserialize)]
struct StatusInstance<'a> {
    #[serde(borrow)]
    status: Cow<'a, str>,
}

pub(crate) fn interpret(answer: &Answer, secrets: &[&str]) -> Verdict {
    let status = answer.status;
    if status.is_success() {
        let Ok(body) = serde_json::from_slice::<StatusBody<'_>>(&answer.body) else {
            return Verdict::unreadable();
        };
        return match body.instance.status.as_ref() {
            "connected" => Verdict::new(ProbeOutcome::Connected, "status connected"),
            "connecting" => Verdict::new(ProbeOutcome::Connecting, "status connecting"),
            "disconnected" => Verdict::new(ProbeOutcome::Disconnected, "status disconnected"),
            other => Verdict::unknown_state("status", other, secrets),
        };
    }
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            Verdict::new(ProbeOutcome::Unauthorized, "token refused")
        }
        StatusCode::NOT_FOUND => Verdict::new(ProbeOutcome::NotFound, "instance not found"),
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
        interpret(&answer, &["640c7a9c-b878-414e-ac6f-1a4877153968"])
    }

    #[test]
    fn reads_the_examples() {
        assert_eq!(
            verdict(200, fx::UAZAPI_INSTANCE_STATUS_CONNECTED),
            Verdict::new(ProbeOutcome::Connected, "status connected")
        );
        assert_eq!(
            verdict(200, fx::UAZAPI_INSTANCE_STATUS_DISCONNECTED).outcome,
            ProbeOutcome::Disconnected
        );
        assert_eq!(
            verdict(200, r#"{"instance":{"status":"connecting"},"status":{}}"#).outcome,
            ProbeOutcome::Connecting
        );
        assert_eq!(
            verdict(401, fx::UAZAPI_ERROR_401),
            Verdict::new(ProbeOutcome::Unauthorized, "token refused")
        );
        assert_eq!(
            verdict(404, r#"{"error":"x"}"#).outcome,
            ProbeOutcome::NotFound
        );
        assert_eq!(verdict(504, "").outcome, ProbeOutcome::Unreachable);
        assert_eq!(
            verdict(200, r#"{"status":{}}"#).outcome,
            ProbeOutcome::BadAnswer
        );
    }
}
