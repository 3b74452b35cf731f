//! Every status and error example of `/work/shared/providers`, served verbatim, read by the
//! real client.

use whatpro_inbox::{ProbeOutcome, ProviderType};

use crate::common::{Probe, RawServer, clients, shared_json};

fn probe_for(provider: ProviderType, base: String) -> Probe {
    let probe = Probe::new(provider, base, "tenant7f3c-suporte");
    match provider {
        ProviderType::Evolution => probe.provider(&[("api_key", "example-api-key-1")]),
        ProviderType::Zapi => probe.instance(&[("instance_token", "example-token-1")]),
        ProviderType::Wppconnect => probe.instance(&[("token", "example-token-1")]),
        ProviderType::Uazapi => probe.instance(&[("token", "example-token-1")]),
        ProviderType::WhatsappCloud => probe.provider(&[("access_token", "example-token-1")]),
    }
}

#[tokio::test]
async fn each_example_maps_to_its_outcome() {
    use ProbeOutcome::*;
    use ProviderType::*;
    let cases = [
        (
            Evolution,
            "evolution/connection-state-open.json",
            200,
            Connected,
        ),
        (
            Evolution,
            "evolution/connection-state-connecting.json",
            200,
            Connecting,
        ),
        (
            Evolution,
            "evolution/connection-state-close.json",
            200,
            Disconnected,
        ),
        (Evolution, "evolution/error-401.json", 401, Unauthorized),
        (
            Evolution,
            "evolution/error-404-instance.json",
            404,
            NotFound,
        ),
        (Evolution, "evolution/error-400.json", 400, BadAnswer),
        (Zapi, "zapi/status-connected.json", 200, Connected),
        (Zapi, "zapi/status-disconnected.json", 200, Disconnected),
        (
            Wppconnect,
            "wppconnect/status-session-connected.json",
            200,
            Connected,
        ),
        (
            Wppconnect,
            "wppconnect/status-session-qrcode.json",
            200,
            Connecting,
        ),
        (
            Wppconnect,
            "wppconnect/status-session-closed.json",
            200,
            Disconnected,
        ),
        (Wppconnect, "wppconnect/error-401.json", 401, Unauthorized),
        (
            Wppconnect,
            "wppconnect/error-401-missing-token.json",
            401,
            Unauthorized,
        ),
        (
            Uazapi,
            "uazapi/instance-status-connected.json",
            200,
            Connected,
        ),
        (
            Uazapi,
            "uazapi/instance-status-disconnected.json",
            200,
            Disconnected,
        ),
        (Uazapi, "uazapi/error-401.json", 401, Unauthorized),
        (
            WhatsappCloud,
            "whatsapp-cloud/phone-number-response.json",
            200,
            Connected,
        ),
        (
            WhatsappCloud,
            "whatsapp-cloud/error-401-token.json",
            401,
            Unauthorized,
        ),
        (
            WhatsappCloud,
            "whatsapp-cloud/error-401-token.json",
            400,
            Unauthorized,
        ),
    ];
    let clients = clients();
    for (provider, file, status, outcome) in cases {
        let body = serde_json::to_vec(&shared_json(file)).unwrap();
        let server = RawServer::start(status, "", body).await;
        let report = probe_for(provider, server.url()).run(&clients).await;
        assert_eq!(report.outcome, outcome, "{file} ({status})");
    }
}

#[tokio::test]
async fn a_wrong_wppconnect_secret_example_is_unauthorized() {
    let body =
        serde_json::to_vec(&shared_json("wppconnect/generate-token-wrong-secret.json")).unwrap();
    let server = RawServer::start(400, "", body).await;
    let report = Probe::new(ProviderType::Wppconnect, server.url(), "tenant7f3c")
        .provider(&[("secret_key", "WRONG")])
        .run(&clients())
        .await;
    assert_eq!(report.outcome, ProbeOutcome::Unauthorized);
}

#[tokio::test]
async fn redirects_to_another_host_are_not_followed() {
    let target = RawServer::start(200, "", b"{}".to_vec()).await;
    let redirect = RawServer::start(
        302,
        &format!("location: http://localhost:{}/\r\n", target.addr.port()),
        Vec::new(),
    )
    .await;
    let report = probe_for(ProviderType::Evolution, redirect.url())
        .run(&clients())
        .await;
    assert_eq!(report.outcome, ProbeOutcome::BadAnswer);
    assert_eq!(report.detail, "HTTP 302 (redirect not followed)");
}

#[tokio::test]
async fn redirects_on_the_same_host_are_followed() {
    let target = RawServer::start(
        200,
        "",
        serde_json::to_vec(&shared_json("evolution/connection-state-open.json")).unwrap(),
    )
    .await;
    let redirect = RawServer::start(
        301,
        &format!(
            "location: http://127.0.0.1:{}/moved\r\n",
            target.addr.port()
        ),
        Vec::new(),
    )
    .await;
    let report = probe_for(ProviderType::Evolution, redirect.url())
        .run(&clients())
        .await;
    assert_eq!(report.outcome, ProbeOutcome::Connected);
}

#[tokio::test]
async fn an_oversized_answer_is_a_bad_answer() {
    let mut body = br#"{"instance":{"state":"open"},"pad":""#.to_vec();
    body.extend(std::iter::repeat_n(b'x', whatpro_providers::MAX_BODY_BYTES));
    body.extend_from_slice(b"\"}");
    let server = RawServer::start(200, "", body).await;
    let report = probe_for(ProviderType::Evolution, server.url())
        .run(&clients())
        .await;
    assert_eq!(
        (report.outcome, report.detail.as_str()),
        (ProbeOutcome::BadAnswer, "answer too large")
    );
}
