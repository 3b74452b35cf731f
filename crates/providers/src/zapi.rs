//! Z-API: `GET {base}/instances/{name}/token/{instance_token}/status` with header
//! `Client-Token` when the provider stores `client_token`. The base is what the tenant stored
//! (normally `https://api.z-api.io`).
//!
//! `connected: true` → Connected, unless `smartphoneConnected: false` → Connecting (detail
//! `connected, phone offline`): the session is up but Z-API cannot reach the phone, which the
//! Hub should show as "needs attention" rather than healthy or down. `connected: false` →
//! Disconnected (the detail says when Z-API asks for a session restore). 401/403 →
//! Unauthorized (wrong instance token or Client-Token); 404 → NotFound.

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
        request.instance_credentials.get("instance_token"),
        "no Z-API instance token stored",
    )?;
    let url = clients.endpoint(
        request.base_url,
        &[
            Segment::Fixed("instances"),
            Segment::Input(request.instance_name),
            Segment::Fixed("token"),
            Segment::Input(token),
            Segment::Fixed("status"),
        ],
        None,
    )?;
    let client_token = request
        .provider_credentials
        .get("client_token")
        .filter(|t| !t.trim().is_empty());
    let header = client_token
        .map(|t| secret_header("client-token", t))
        .transpose()?;
    let answer = clients.call(Method::GET, url, header).await?;
    Ok(interpret(&answer))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusBody<'a> {
    connected: bool,
    #[serde(default)]
    smartphone_connected: Option<bool>,
    #[serde(default, borrow)]
    error: Option<std::borrow::Cow<'a, str>>,
}

pub(crate) fn interpret(answer: &Answer) -> Verdict {
    let status = answer.status;
    if status.is_success() {
        let Ok(body) = serde_json::from_slice::<StatusBody<'_>>(&answer.body) else {
            return Verdict::unreadable();
        };
        return match (body.connected, body.smartphone_connected) {
            (true, Some(false)) => {
                Verdict::new(ProbeOutcome::Connecting, "connected, phone offline")
            }
            (true, _) => Verdict::new(ProbeOutcome::Connected, "connected"),
            (false, _) => {
                let restore = body
                    .error
                    .as_deref()
                    .is_some_and(|e| e.to_ascii_lowercase().contains("restore"));
                if restore {
                    Verdict::new(
                        ProbeOutcome::Disconnected,
                        "not connected, session needs restoring",
                    )
                } else {
                    Verdict::new(ProbeOutcome::Disconnected, "not connected")
                }
            }
        };
    }
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Verdict::new(
            ProbeOutcome::Unauthorized,
            "instance token or Client-Token refused",
        ),
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
        interpret(&Answer {
            status: StatusCode::from_u16(status).unwrap_or_default(),
            body: Bytes::copy_from_slice(body.as_bytes()),
        })
    }

    #[test]
    fn reads_the_examples() {
        assert_eq!(
            verdict(200, fx::ZAPI_STATUS_CONNECTED),
            Verdict::new(ProbeOutcome::Connected, "connected")
        );
        assert_eq!(
            verdict(200, fx::ZAPI_STATUS_DISCONNECTED),
            Verdict::new(ProbeOutcome::Disconnected, "not connected")
        );
        assert_eq!(
            verdict(
                200,
                r#"{"connected":true,"error":"You are already connected.","smartphoneConnected":false}"#
            ),
            Verdict::new(ProbeOutcome::Connecting, "connected, phone offline")
        );
        assert_eq!(
            verdict(
                200,
                r#"{"connected":false,"error":"You need to restore the session.","smartphoneConnected":false}"#
            )
            .detail,
            "not connected, session needs restoring"
        );
        assert_eq!(
            verdict(200, r#"{"connected":true}"#).outcome,
            ProbeOutcome::Connected
        );
    }

    #[test]
    fn errors_and_odd_answers() {
        assert_eq!(
            verdict(401, r#"{"error":"x"}"#).outcome,
            ProbeOutcome::Unauthorized
        );
        assert_eq!(
            verdict(403, r#"{"error":"x"}"#).outcome,
            ProbeOutcome::Unauthorized
        );
        assert_eq!(
            verdict(404, r#"{"error":"x"}"#).outcome,
            ProbeOutcome::NotFound
        );
        assert_eq!(verdict(502, "").outcome, ProbeOutcome::Unreachable);
        assert_eq!(
            verdict(200, r#"{"connected":"yes"}"#).outcome,
            ProbeOutcome::BadAnswer
        );
        assert_eq!(verdict(200, "[]").outcome, ProbeOutcome::BadAnswer);
    }
}
