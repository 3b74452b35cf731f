//! WPPConnect-server: `GET {base}/api/{session}/status-session` with `Authorization: Bearer`.
//!
//! The bearer token is the instance credential `token` when stored. Otherwise the Hub asks
//! for one with `POST {base}/api/{session}/{secret_key}/generate-token` and keeps it in
//! memory per (base, session, secret key); a cached token that is refused (401) is dropped,
//! a new one generated and the status asked again, once. A stored token that is refused is
//! reported as Unauthorized (no fallback to the secret key: the tenant should fix it).
//!
//! `CONNECTED` (also `inChat`, `isLogged`) → Connected; `INITIALIZING`, `QRCODE`, `PAIRING`,
//! `STARTING`, `qrReadSuccess` → Connecting; `CLOSED`, `DISCONNECTED`, `notLogged`,
//! `browserClose`, `desconnectedMobile`, `deleteToken` → Disconnected. A wrong secret key
//! (generate-token answers 400 `The SECRET_KEY is incorrect`) → Unauthorized. WPPConnect
//! answers `CLOSED` for a session it does not know, so NotFound never comes from it.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use whatpro_inbox::{ProbeOutcome, ProbeRequest};

use crate::client::{Answer, ProviderClients, Segment, bearer_header, required};
use crate::verdict::{Verdict, by_status};

pub(crate) async fn probe(clients: &ProviderClients, request: &ProbeRequest<'_>) -> Verdict {
    run(clients, request)
        .await
        .unwrap_or_else(|verdict| verdict)
}

async fn run(clients: &ProviderClients, request: &ProbeRequest<'_>) -> Result<Verdict, Verdict> {
    if let Some(token) = request
        .instance_credentials
        .get("token")
        .filter(|t| !t.trim().is_empty())
    {
        let answer = status_session(clients, request, token).await?;
        return Ok(interpret_status(&answer, &[token]));
    }
    let secret = required(
        request.provider_credentials.get("secret_key"),
        "no WPPConnect token or secret key stored",
    )?;
    let key = cache_key(request.base_url, request.instance_name, secret);
    let (token, fresh) = match clients.cached_token(&key) {
        Some(token) => (token, false),
        None => (generate(clients, request, secret, &key).await?, true),
    };
    let answer = status_session(clients, request, &token).await?;
    if answer.status != StatusCode::UNAUTHORIZED || fresh {
        return Ok(interpret_status(&answer, &[secret, &token]));
    }
    // The cached token was refused (server restarted with another SECRET_KEY, token
    // revoked): drop it and try once with a new one.
    clients.forget_token(&key);
    let token = generate(clients, request, secret, &key).await?;
    let answer = status_session(clients, request, &token).await?;
    Ok(interpret_status(&answer, &[secret, &token]))
}

fn cache_key(base: &str, session: &str, secret: &str) -> String {
    let base = base.trim().trim_end_matches('/');
    let mut key = String::with_capacity(base.len() + session.len() + secret.len() + 2);
    key.push_str(base);
    key.push('\n');
    key.push_str(session);
    key.push('\n');
    key.push_str(secret);
    key
}

async fn status_session(
    clients: &ProviderClients,
    request: &ProbeRequest<'_>,
    token: &str,
) -> Result<Answer, Verdict> {
    let url = clients.endpoint(
        request.base_url,
        &[
            Segment::Fixed("api"),
            Segment::Input(request.instance_name),
            Segment::Fixed("status-session"),
        ],
        None,
    )?;
    clients
        .call(Method::GET, url, [bearer_header(token)?])
        .await
}

/// Asks for a token and caches it.
async fn generate(
    clients: &ProviderClients,
    request: &ProbeRequest<'_>,
    secret: &str,
    key: &str,
) -> Result<Arc<str>, Verdict> {
    let url = clients.endpoint(
        request.base_url,
        &[
            Segment::Fixed("api"),
            Segment::Input(request.instance_name),
            Segment::Input(secret),
            Segment::Fixed("generate-token"),
        ],
        None,
    )?;
    let answer = clients.call(Method::POST, url, []).await?;
    let token: Arc<str> = interpret_token(&answer)?.into();
    clients.store_token(key.to_owned(), Arc::clone(&token));
    Ok(token)
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

pub(crate) fn interpret_token(answer: &Answer) -> Result<String, Verdict> {
    let status = answer.status;
    if status.is_success() {
        return serde_json::from_slice::<TokenBody>(&answer.body)
            .ok()
            .map(|body| body.token)
            .filter(|token| !token.trim().is_empty())
            .ok_or_else(Verdict::unreadable);
    }
    Err(match status {
        StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            Verdict::new(ProbeOutcome::Unauthorized, "secret key refused")
        }
        _ => by_status(status),
    })
}

#[derive(Deserialize)]
struct StatusBody<'a> {
    #[serde(borrow)]
    status: std::borrow::Cow<'a, str>,
}

pub(crate) fn interpret_status(answer: &Answer, secrets: &[&str]) -> Verdict {
    let status = answer.status;
    if status.is_success() {
        let Ok(body) = serde_json::from_slice::<StatusBody<'_>>(&answer.body) else {
            return Verdict::unreadable();
        };
        let connected = |detail| Verdict::new(ProbeOutcome::Connected, detail);
        let connecting = |detail| Verdict::new(ProbeOutcome::Connecting, detail);
        let disconnected = |detail| Verdict::new(ProbeOutcome::Disconnected, detail);
        return match body.status.as_ref() {
            "CONNECTED" => connected("status CONNECTED"),
            "inChat" => connected("status inChat"),
            "isLogged" => connected("status isLogged"),
            "INITIALIZING" => connecting("status INITIALIZING"),
            "QRCODE" => connecting("status QRCODE"),
            "PAIRING" => connecting("status PAIRING"),
            "STARTING" => connecting("status STARTING"),
            "qrReadSuccess" => connecting("status qrReadSuccess"),
            "CLOSED" => disconnected("status CLOSED"),
            "DISCONNECTED" => disconnected("status DISCONNECTED"),
            "notLogged" => disconnected("status notLogged"),
            "browserClose" => disconnected("status browserClose"),
            "desconnectedMobile" => disconnected("status desconnectedMobile"),
            "deleteToken" => disconnected("status deleteToken"),
            other => Verdict::unknown_state("status", other, secrets),
        };
    }
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            Verdict::new(ProbeOutcome::Unauthorized, "token refused")
        }
        _ => by_status(status),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use whatpro_providers_sim::fixtures as fx;

    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap_or_default(),
            body: Bytes::copy_from_slice(body.as_bytes()),
        }
    }

    fn status(code: u16, body: &str) -> Verdict {
        interpret_status(&answer(code, body), &[])
    }

    #[test]
    fn reads_the_example_statuses() {
        assert_eq!(
            status(200, fx::WPPCONNECT_STATUS_SESSION_CONNECTED),
            Verdict::new(ProbeOutcome::Connected, "status CONNECTED")
        );
        assert_eq!(
            status(200, fx::WPPCONNECT_STATUS_SESSION_QRCODE).outcome,
            ProbeOutcome::Connecting
        );
        assert_eq!(
            status(200, fx::WPPCONNECT_STATUS_SESSION_CLOSED).outcome,
            ProbeOutcome::Disconnected
        );
        assert_eq!(
            status(200, r#"{"status":"INITIALIZING","qrcode":null}"#).outcome,
            ProbeOutcome::Connecting
        );
        assert_eq!(
            status(401, fx::WPPCONNECT_ERROR_401).outcome,
            ProbeOutcome::Unauthorized
        );
        assert_eq!(
            status(401, fx::WPPCONNECT_ERROR_401_MISSING_TOKEN).outcome,
            ProbeOutcome::Unauthorized
        );
        assert_eq!(status(200, "<html>").outcome, ProbeOutcome::BadAnswer);
        assert_eq!(
            status(200, r#"{"status":"LIMBO"}"#).detail,
            "unknown status LIMBO"
        );
        assert_eq!(status(500, "").outcome, ProbeOutcome::Unreachable);
    }

    #[test]
    fn reads_the_example_tokens() {
        let token = interpret_token(&answer(201, fx::WPPCONNECT_GENERATE_TOKEN_RESPONSE))
            .unwrap_or_default();
        assert!(token.starts_with("$2b$10$"));
        assert_eq!(
            interpret_token(&answer(400, fx::WPPCONNECT_GENERATE_TOKEN_WRONG_SECRET)),
            Err(Verdict::new(
                ProbeOutcome::Unauthorized,
                "secret key refused"
            ))
        );
        assert_eq!(
            interpret_token(&answer(201, r#"{"status":"success","token":""}"#))
                .map_err(|v| v.outcome),
            Err(ProbeOutcome::BadAnswer)
        );
        assert_eq!(
            interpret_token(&answer(503, "")).map_err(|v| v.outcome),
            Err(ProbeOutcome::Unreachable)
        );
    }

    #[test]
    fn cache_keys_separate_bases_sessions_and_secrets() {
        assert_eq!(
            cache_key("http://w.example/", "s", "k"),
            cache_key("http://w.example", "s", "k")
        );
        assert_ne!(
            cache_key("http://w.example", "s", "k"),
            cache_key("http://w.example", "s", "k2")
        );
        assert_ne!(
            cache_key("http://w.example", "s", "k"),
            cache_key("http://w.example", "s2", "k")
        );
    }
}
