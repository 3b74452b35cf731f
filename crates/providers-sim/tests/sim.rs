//! Black-box tests of the fake provider server against the shared contracts in
//! /work/shared/providers.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use whatpro_inbox::ProviderType;
use whatpro_providers_sim::{
    Behaviour, EvolutionEvent, EvolutionState, ProvidersSim, Scope, SimCredentials, SimError,
    SimInstance, SimState, fixtures,
};

// ------------------------------------------------------------------ helpers

fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/providers")
}

fn shared_json(rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(shared_dir().join(rel)).unwrap()).unwrap()
}

/// Asserts that `actual` has exactly the keys of `expected`, recursively for objects and for
/// the first item of arrays.
fn assert_same_keys(actual: &Value, expected: &Value, path: &str) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            let mut ak: Vec<_> = a.keys().collect();
            let mut ek: Vec<_> = e.keys().collect();
            ak.sort();
            ek.sort();
            assert_eq!(ak, ek, "keys at {path}");
            for (key, value) in e {
                assert_same_keys(&a[key], value, &format!("{path}/{key}"));
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            if let (Some(first), Some(example)) = (a.first(), e.first()) {
                assert_same_keys(first, example, &format!("{path}/0"));
            }
        }
        _ => {}
    }
}

struct Answer {
    status: u16,
    content_type: String,
    body: Value,
    text: String,
}

async fn call(
    method: reqwest::Method,
    url: String,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Answer {
    let client = reqwest::Client::new();
    let mut request = client.request(method, url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        content_type,
        body,
        text,
    }
}

async fn get(sim: &ProvidersSim, path: &str, headers: &[(&str, &str)]) -> Answer {
    call(
        reqwest::Method::GET,
        format!("{}{path}", sim.url()),
        headers,
        None,
    )
    .await
}

async fn post(
    sim: &ProvidersSim,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Answer {
    call(
        reqwest::Method::POST,
        format!("{}{path}", sim.url()),
        headers,
        body,
    )
    .await
}

async fn start() -> ProvidersSim {
    ProvidersSim::start().await.unwrap()
}

const EVO_KEY: &str = "B2C1A7E0-5D3F-4C8B-9A61-7E2F0D4C3B95";
const GLOBAL: &str = "429683C4C977415CAAFCCE10F7D57E11";

// ------------------------------------------------------------------ fixtures

#[test]
fn embedded_fixtures_are_the_shared_examples() {
    assert!(fixtures::ALL.len() >= 44);
    for (rel, text) in fixtures::ALL {
        let shared = std::fs::read_to_string(shared_dir().join(rel)).unwrap();
        assert_eq!(*text, shared, "{rel} differs from the shared example");
        serde_json::from_str::<Value>(text).unwrap();
    }
    let mut shared_files = 0;
    for dir in std::fs::read_dir(shared_dir()).unwrap() {
        let dir = dir.unwrap().path();
        if dir.is_dir() {
            shared_files += std::fs::read_dir(dir).unwrap().count();
        }
    }
    assert_eq!(
        shared_files,
        fixtures::ALL.len(),
        "every shared example is embedded"
    );
}

// ------------------------------------------------------------------ Evolution

#[tokio::test]
async fn evolution_connection_state_follows_the_examples() {
    let sim = start().await;
    sim.add_instance(SimInstance::new(ProviderType::Evolution, "loja-1", EVO_KEY));
    for (state, example, wire) in [
        (
            SimState::Connected,
            "evolution/connection-state-open.json",
            "open",
        ),
        (
            SimState::Connecting,
            "evolution/connection-state-connecting.json",
            "connecting",
        ),
        (
            SimState::Disconnected,
            "evolution/connection-state-close.json",
            "close",
        ),
    ] {
        assert!(sim.set_state("loja-1", state));
        let answer = get(
            &sim,
            "/instance/connectionState/loja-1",
            &[("apikey", EVO_KEY)],
        )
        .await;
        assert_eq!(answer.status, 200);
        assert!(answer.content_type.starts_with("application/json"));
        assert_same_keys(&answer.body, &shared_json(example), "");
        assert_eq!(
            answer.body,
            json!({"instance": {"instanceName": "loja-1", "state": wire}})
        );
    }
    assert_eq!(sim.state("loja-1"), Some(SimState::Disconnected));
    assert_eq!(sim.probe_count(), 3);
}

#[tokio::test]
async fn evolution_checks_the_instance_then_the_key() {
    let sim = start().await;
    sim.add_instance(SimInstance::new(ProviderType::Evolution, "loja-1", EVO_KEY));

    let unknown = get(
        &sim,
        "/instance/connectionState/nope",
        &[("apikey", EVO_KEY)],
    )
    .await;
    assert_eq!(unknown.status, 404);
    assert_same_keys(
        &unknown.body,
        &shared_json("evolution/error-404-instance.json"),
        "",
    );
    assert_eq!(
        unknown.body["response"]["message"][0],
        "The \"nope\" instance does not exist"
    );

    for headers in [vec![], vec![("apikey", "wrong")]] {
        let answer = get(&sim, "/instance/connectionState/loja-1", &headers).await;
        assert_eq!(answer.status, 401);
        assert_eq!(answer.body, shared_json("evolution/error-401.json"));
    }

    // The global key opens every instance once set.
    assert_eq!(
        get(
            &sim,
            "/instance/connectionState/loja-1",
            &[("apikey", GLOBAL)]
        )
        .await
        .status,
        401
    );
    sim.set_evolution_global_key(Some(GLOBAL));
    assert_eq!(
        get(
            &sim,
            "/instance/connectionState/loja-1",
            &[("apikey", GLOBAL)]
        )
        .await
        .status,
        200
    );

    // Names arrive percent-encoded.
    sim.add_instance(SimInstance::new(ProviderType::Evolution, "a b/ç", EVO_KEY));
    let answer = get(
        &sim,
        "/instance/connectionState/a%20b%2F%C3%A7",
        &[("apikey", EVO_KEY)],
    )
    .await;
    assert_eq!(answer.body["instance"]["instanceName"], "a b/ç");

    // Another provider's instance is not an Evolution instance.
    sim.add_instance(SimInstance::new(ProviderType::Uazapi, "uaz", EVO_KEY));
    assert_eq!(
        get(
            &sim,
            "/instance/connectionState/uaz",
            &[("apikey", EVO_KEY)]
        )
        .await
        .status,
        404
    );

    let route = get(&sim, "/nothing/here", &[]).await;
    assert_eq!(route.status, 404);
    assert_eq!(
        route.body["response"]["message"][0],
        "Cannot GET /nothing/here"
    );
}

#[tokio::test]
async fn evolution_root_create_fetch_and_send_text() {
    let sim = start().await;
    let root = get(&sim, "/", &[]).await;
    assert_eq!(root.status, 200);
    assert_same_keys(
        &root.body,
        &shared_json("evolution/root-info-response.json"),
        "",
    );
    assert_eq!(root.body["manager"], format!("{}/manager", sim.url()));

    let request = shared_json("evolution/instance-create-request.json");
    assert_eq!(
        post(
            &sim,
            "/instance/create",
            &[("apikey", EVO_KEY)],
            Some(request.clone())
        )
        .await
        .status,
        401
    );
    sim.set_evolution_global_key(Some(GLOBAL));
    let created = post(
        &sim,
        "/instance/create",
        &[("apikey", GLOBAL)],
        Some(request.clone()),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_same_keys(
        &created.body,
        &shared_json("evolution/instance-create-response.json"),
        "",
    );
    assert_eq!(
        created.body["instance"]["instanceName"],
        "tenant7f3c-suporte"
    );
    assert_eq!(created.body["instance"]["status"], "connecting");
    assert_eq!(created.body["hash"], request["token"]);
    assert_eq!(
        created.body["webhook"]["webhookUrl"],
        request["webhook"]["url"]
    );
    assert_eq!(sim.state("tenant7f3c-suporte"), Some(SimState::Connecting));

    let taken = post(
        &sim,
        "/instance/create",
        &[("apikey", GLOBAL)],
        Some(request),
    )
    .await;
    assert_eq!(taken.status, 403);
    assert_same_keys(
        &taken.body,
        &shared_json("evolution/error-403-name-in-use.json"),
        "",
    );

    let generated = post(
        &sim,
        "/instance/create",
        &[("apikey", GLOBAL)],
        Some(json!({"instanceName": "second", "integration": "WHATSAPP-BAILEYS"})),
    )
    .await;
    assert_eq!(generated.status, 201);
    assert_eq!(generated.body["instance"]["status"], "close");
    let hash = generated.body["hash"].as_str().unwrap().to_owned();
    assert_eq!(hash.len(), 36);

    let missing = post(
        &sim,
        "/instance/create",
        &[("apikey", GLOBAL)],
        Some(json!({})),
    )
    .await;
    assert_eq!(missing.status, 400);

    // fetchInstances: everything with the global key, only its own with an instance key.
    let all = get(&sim, "/instance/fetchInstances", &[("apikey", GLOBAL)]).await;
    assert_eq!(all.status, 200);
    assert_eq!(all.body.as_array().unwrap().len(), 2);
    assert_same_keys(
        &all.body,
        &shared_json("evolution/fetch-instances-response.json"),
        "",
    );
    let own = get(&sim, "/instance/fetchInstances", &[("apikey", &hash)]).await;
    assert_eq!(own.body.as_array().unwrap().len(), 1);
    assert_eq!(own.body[0]["name"], "second");
    assert_eq!(own.body[0]["connectionStatus"], "close");
    assert_eq!(own.body[0]["token"], hash.as_str());
    let filtered = get(
        &sim,
        "/instance/fetchInstances?instanceName=tenant7f3c-suporte",
        &[("apikey", GLOBAL)],
    )
    .await;
    assert_eq!(filtered.body.as_array().unwrap().len(), 1);
    let unknown = get(
        &sim,
        "/instance/fetchInstances?instanceName=zzz",
        &[("apikey", GLOBAL)],
    )
    .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        get(&sim, "/instance/fetchInstances", &[("apikey", "x")])
            .await
            .status,
        401
    );

    // sendText needs an open session.
    let text = shared_json("evolution/send-text-request.json");
    let closed = post(
        &sim,
        "/message/sendText/second",
        &[("apikey", &hash)],
        Some(text.clone()),
    )
    .await;
    assert_eq!(closed.status, 400);
    assert_same_keys(&closed.body, &shared_json("evolution/error-400.json"), "");
    sim.set_state("second", SimState::Connected);
    let sent = post(
        &sim,
        "/message/sendText/second",
        &[("apikey", &hash)],
        Some(text.clone()),
    )
    .await;
    assert_eq!(sent.status, 201, "{}", sent.text);
    assert_same_keys(
        &sent.body,
        &shared_json("evolution/send-text-response.json"),
        "",
    );
    assert_eq!(
        sent.body["key"]["remoteJid"],
        "5511987654321@s.whatsapp.net"
    );
    assert_eq!(sent.body["message"]["conversation"], text["text"]);
    assert_eq!(
        post(
            &sim,
            "/message/sendText/second",
            &[("apikey", &hash)],
            Some(json!({}))
        )
        .await
        .status,
        400
    );
    assert_eq!(
        post(
            &sim,
            "/message/sendText/nope",
            &[("apikey", &hash)],
            Some(text)
        )
        .await
        .status,
        404
    );
}

// ------------------------------------------------------------------ Z-API

#[tokio::test]
async fn zapi_status_and_its_auth() {
    let sim = start().await;
    sim.add_instance(SimInstance {
        provider: ProviderType::Zapi,
        name: "3C01".to_owned(),
        credentials: SimCredentials {
            secret: "TOKEN1".to_owned(),
            client_token: Some("CT".to_owned()),
            bearer_token: None,
        },
        state: SimState::Connected,
    });
    let path = "/instances/3C01/token/TOKEN1/status";
    let ok = get(&sim, path, &[("client-token", "CT")]).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body, shared_json("zapi/status-connected.json"));
    sim.set_state("3C01", SimState::Disconnected);
    assert_eq!(
        get(&sim, path, &[("client-token", "CT")]).await.body,
        shared_json("zapi/status-disconnected.json")
    );
    sim.set_state("3C01", SimState::Connecting);
    let connecting = get(&sim, path, &[("client-token", "CT")]).await.body;
    assert_same_keys(&connecting, &shared_json("zapi/status-connected.json"), "");
    assert_eq!(connecting["connected"], true);
    assert_eq!(connecting["smartphoneConnected"], false);

    assert_eq!(get(&sim, path, &[]).await.status, 403);
    assert_eq!(get(&sim, path, &[("client-token", "x")]).await.status, 403);
    let wrong = get(
        &sim,
        "/instances/3C01/token/NOPE/status",
        &[("client-token", "CT")],
    )
    .await;
    assert_eq!((wrong.status, wrong.body["error"].is_string()), (401, true));
    let unknown = get(&sim, "/instances/NOPE/token/TOKEN1/status", &[]).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body, json!({"error": "Instance not found"}));
}

// ------------------------------------------------------------------ WPPConnect

#[tokio::test]
async fn wppconnect_tokens_status_and_check_connection() {
    let sim = start().await;
    sim.add_instance(SimInstance {
        provider: ProviderType::Wppconnect,
        name: "tenant7f3c".to_owned(),
        credentials: SimCredentials {
            secret: "SECRET".to_owned(),
            client_token: None,
            bearer_token: Some("stored".to_owned()),
        },
        state: SimState::Connected,
    });
    let wrong = post(&sim, "/api/tenant7f3c/WRONG/generate-token", &[], None).await;
    assert_eq!(wrong.status, 400);
    assert_eq!(
        wrong.body,
        shared_json("wppconnect/generate-token-wrong-secret.json")
    );
    let unknown = post(&sim, "/api/other/SECRET/generate-token", &[], None).await;
    assert_eq!(unknown.status, 400);

    let issued = post(&sim, "/api/tenant7f3c/SECRET/generate-token", &[], None).await;
    assert_eq!(issued.status, 201);
    assert_same_keys(
        &issued.body,
        &shared_json("wppconnect/generate-token-response.json"),
        "",
    );
    let token = issued.body["token"].as_str().unwrap().to_owned();
    assert_eq!(issued.body["session"], "tenant7f3c");
    assert_eq!(issued.body["full"], format!("tenant7f3c:{token}"));
    let bearer = format!("Bearer {token}");

    for (state, example, check_example) in [
        (
            SimState::Connected,
            "wppconnect/status-session-connected.json",
            "wppconnect/check-connection-connected.json",
        ),
        (
            SimState::Connecting,
            "wppconnect/status-session-qrcode.json",
            "wppconnect/check-connection-disconnected.json",
        ),
        (
            SimState::Disconnected,
            "wppconnect/status-session-closed.json",
            "wppconnect/check-connection-disconnected.json",
        ),
    ] {
        sim.set_state("tenant7f3c", state);
        let status = get(
            &sim,
            "/api/tenant7f3c/status-session",
            &[("authorization", &bearer)],
        )
        .await;
        assert_eq!(status.status, 200);
        assert_eq!(status.body, shared_json(example));
        let check = get(
            &sim,
            "/api/tenant7f3c/check-connection-session",
            &[("authorization", &bearer)],
        )
        .await;
        assert_eq!(check.body, shared_json(check_example));
    }
    let stored = get(
        &sim,
        "/api/tenant7f3c/status-session",
        &[("authorization", "Bearer stored")],
    )
    .await;
    assert_eq!(stored.status, 200);

    let missing = get(&sim, "/api/tenant7f3c/status-session", &[]).await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.body,
        shared_json("wppconnect/error-401-missing-token.json")
    );
    let refused = get(
        &sim,
        "/api/tenant7f3c/status-session",
        &[("authorization", "Bearer x")],
    )
    .await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body, shared_json("wppconnect/error-401.json"));

    sim.revoke_tokens("tenant7f3c");
    assert_eq!(
        get(
            &sim,
            "/api/tenant7f3c/status-session",
            &[("authorization", &bearer)]
        )
        .await
        .status,
        401
    );
    assert_eq!(sim.probe_count(), 10);
}

// ------------------------------------------------------------------ uazapi

#[tokio::test]
async fn uazapi_status_by_token() {
    let sim = start().await;
    sim.add_instance(SimInstance::new(ProviderType::Uazapi, "suporte", "tok-1"));
    let connected = get(&sim, "/instance/status", &[("token", "tok-1")]).await;
    assert_eq!(connected.status, 200);
    assert_same_keys(
        &connected.body,
        &shared_json("uazapi/instance-status-connected.json"),
        "",
    );
    assert_eq!(connected.body["instance"]["token"], "tok-1");
    assert_eq!(connected.body["instance"]["name"], "suporte");
    sim.set_state("suporte", SimState::Connecting);
    let connecting = get(&sim, "/instance/status", &[("token", "tok-1")]).await;
    assert_eq!(connecting.body["instance"]["status"], "connecting");
    assert_eq!(connecting.body["status"]["connected"], false);
    sim.set_state("suporte", SimState::Disconnected);
    let disconnected = get(&sim, "/instance/status", &[("token", "tok-1")]).await;
    assert_same_keys(
        &disconnected.body,
        &shared_json("uazapi/instance-status-disconnected.json"),
        "",
    );
    assert_eq!(disconnected.body["instance"]["status"], "disconnected");

    let wrong = get(&sim, "/instance/status", &[("token", "nope")]).await;
    assert_eq!(
        (wrong.status, wrong.body.clone()),
        (401, shared_json("uazapi/error-401.json"))
    );
    let missing = get(&sim, "/instance/status", &[]).await;
    assert_eq!(missing.body, json!({"error": "missing token"}));

    // The token index follows replacement and removal.
    sim.add_instance(SimInstance::new(ProviderType::Uazapi, "suporte", "tok-2"));
    assert_eq!(
        get(&sim, "/instance/status", &[("token", "tok-1")])
            .await
            .status,
        401
    );
    assert_eq!(
        get(&sim, "/instance/status", &[("token", "tok-2")])
            .await
            .status,
        200
    );
    assert!(sim.remove_instance("suporte"));
    assert!(!sim.remove_instance("suporte"));
    assert_eq!(
        get(&sim, "/instance/status", &[("token", "tok-2")])
            .await
            .status,
        401
    );
}

// ------------------------------------------------------------------ WhatsApp Cloud

#[tokio::test]
async fn cloud_phone_number_health() {
    let sim = start().await;
    sim.add_instance(SimInstance::new(
        ProviderType::WhatsappCloud,
        "1065",
        "EAAG",
    ));
    let bearer = [("authorization", "Bearer EAAG")];
    for (state, status, can_send) in [
        (SimState::Connected, "CONNECTED", "AVAILABLE"),
        (SimState::Connecting, "PENDING", "LIMITED"),
        (SimState::Disconnected, "DISCONNECTED", "BLOCKED"),
    ] {
        sim.set_state("1065", state);
        for path in ["/1065?fields=status,health_status", "/v21.0/1065"] {
            let answer = get(&sim, path, &bearer).await;
            assert_eq!(answer.status, 200, "{path}");
            assert_same_keys(
                &answer.body,
                &shared_json("whatsapp-cloud/phone-number-response.json"),
                "",
            );
            assert_eq!(answer.body["id"], "1065");
            assert_eq!(answer.body["status"], status);
            assert_eq!(answer.body["health_status"]["can_send_message"], can_send);
        }
    }
    let wrong = get(&sim, "/1065", &[("authorization", "Bearer x")]).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong.body,
        shared_json("whatsapp-cloud/error-401-token.json")
    );
    let unknown = get(&sim, "/999", &bearer).await;
    assert_eq!(unknown.status, 400);
    assert_same_keys(
        &unknown.body,
        &shared_json("whatsapp-cloud/error-401-token.json"),
        "",
    );
    assert_eq!(unknown.body["error"]["code"], 100);
    assert_eq!(unknown.body["error"]["type"], "GraphMethodException");
}

// ------------------------------------------------------------------ behaviours

#[tokio::test]
async fn status_behaviour_uses_each_providers_error_shape() {
    let sim = start().await;
    sim.add_instance(SimInstance::new(ProviderType::Evolution, "evo", "k"));
    sim.add_instance(SimInstance::new(ProviderType::Uazapi, "uaz", "t"));
    sim.add_instance(SimInstance::new(ProviderType::WhatsappCloud, "55", "c"));
    sim.add_instance(SimInstance::new(ProviderType::Wppconnect, "wpp", "s"));
    sim.add_instance(SimInstance::new(ProviderType::Zapi, "Z", "z"));
    sim.set_behaviour(Scope::All, Behaviour::Status(503));

    let evo = get(&sim, "/instance/connectionState/evo", &[]).await;
    assert_eq!(evo.status, 503);
    assert_same_keys(&evo.body, &shared_json("evolution/error-401.json"), "");
    assert_eq!(evo.body["status"], 503);
    assert_eq!(evo.body["error"], "Service Unavailable");

    let uaz = get(&sim, "/instance/status", &[("token", "t")]).await;
    assert_eq!((uaz.status, uaz.body["error"].is_string()), (503, true));

    let cloud = get(&sim, "/55", &[]).await;
    assert_eq!(cloud.status, 503);
    assert_same_keys(
        &cloud.body,
        &shared_json("whatsapp-cloud/error-401-token.json"),
        "",
    );

    let wpp = get(&sim, "/api/wpp/status-session", &[]).await;
    assert_eq!(wpp.status, 503);
    assert_eq!(wpp.body["status"], "error");

    let zapi = get(&sim, "/instances/Z/token/z/status", &[]).await;
    assert_eq!((zapi.status, zapi.body["error"].is_string()), (503, true));

    sim.set_behaviour("evo", Behaviour::Status(401));
    let evo = get(&sim, "/instance/connectionState/evo", &[]).await;
    assert_eq!(
        (evo.status, evo.body.clone()),
        (401, shared_json("evolution/error-401.json"))
    );
    sim.set_behaviour("evo", Behaviour::Status(404));
    let evo = get(&sim, "/instance/connectionState/evo", &[]).await;
    assert_eq!(
        evo.body["response"]["message"][0],
        "The \"evo\" instance does not exist"
    );
}

#[tokio::test]
async fn garbage_lie_slow_and_silent() {
    let sim = start().await;
    sim.add_instance(
        SimInstance::new(ProviderType::Evolution, "evo", "k").with_state(SimState::Disconnected),
    );
    let path = "/instance/connectionState/evo";
    let key = [("apikey", "k")];

    sim.set_behaviour("evo", Behaviour::Garbage);
    let garbage = get(&sim, path, &key).await;
    assert_eq!(garbage.status, 200);
    assert!(garbage.content_type.starts_with("text/html"));
    assert!(serde_json::from_str::<Value>(&garbage.text).is_err());

    sim.set_behaviour("evo", Behaviour::Lie);
    assert_eq!(
        get(&sim, path, &key).await.body["instance"]["state"],
        "open"
    );
    assert_eq!(sim.state("evo"), Some(SimState::Disconnected));

    sim.set_behaviour("evo", Behaviour::Slow(Duration::from_millis(200)));
    let started = Instant::now();
    assert_eq!(
        get(&sim, path, &key).await.body["instance"]["state"],
        "close"
    );
    assert!(started.elapsed() >= Duration::from_millis(200));

    sim.set_behaviour("evo", Behaviour::Silent);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let error = client
        .get(format!("{}{path}", sim.url()))
        .header("apikey", "k")
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error:?}");

    // Scope::All clears per-instance behaviours.
    sim.set_behaviour(Scope::All, Behaviour::Normal);
    assert_eq!(get(&sim, path, &key).await.status, 200);
    assert_eq!(sim.probe_count(), 5);
}

// ------------------------------------------------------------------ recording

#[tokio::test]
async fn requests_are_recorded_with_lower_case_headers() {
    let sim = start().await;
    let _ = get(
        &sim,
        "/instance/status?x=1",
        &[("Token", "abc"), ("X-Custom", "v")],
    )
    .await;
    let requests = sim.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, "/instance/status");
    assert_eq!(requests[0].query.as_deref(), Some("x=1"));
    assert_eq!(requests[0].header("token"), Some("abc"));
    assert_eq!(requests[0].header("x-custom"), Some("v"));
    assert_eq!(sim.probe_count(), 1);

    sim.clear_requests();
    assert!(sim.requests().is_empty());
    assert_eq!(sim.probe_count(), 0);
    sim.set_recording(false);
    let _ = get(&sim, "/instance/status", &[]).await;
    assert!(sim.requests().is_empty());
    assert_eq!(sim.probe_count(), 1);
}

// ------------------------------------------------------------------ lifecycle and scale

#[tokio::test]
async fn stops_when_the_last_clone_is_dropped() {
    let sim = start().await;
    let url = sim.url();
    let clone = sim.clone();
    drop(sim);
    assert_eq!(
        call(reqwest::Method::GET, format!("{url}/"), &[], None)
            .await
            .status,
        200
    );
    drop(clone);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let refused = reqwest::Client::new().get(format!("{url}/")).send().await;
    assert!(refused.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_instances_and_many_concurrent_probes() {
    let sim = start().await;
    sim.set_recording(false);
    let started = Instant::now();
    for i in 0..10_000 {
        let provider = ProviderType::ALL[i % 5];
        let name = match provider {
            ProviderType::WhatsappCloud => format!("55{i:08}"),
            _ => format!("inst-{i}"),
        };
        sim.add_instance(SimInstance::new(provider, name, format!("secret-{i}")));
    }
    assert_eq!(sim.instance_count(), 10_000);
    assert!(started.elapsed() < Duration::from_secs(5));

    let client = reqwest::Client::new();
    let sim = Arc::new(sim);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..50 {
        let client = client.clone();
        let base = sim.url();
        tasks.spawn(async move {
            for j in 0..40 {
                // Evolution instances are every fifth index.
                let i = (worker * 40 + j) * 5 % 10_000;
                let status = client
                    .get(format!("{base}/instance/connectionState/inst-{i}"))
                    .header("apikey", format!("secret-{i}"))
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert_eq!(status, 200);
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap();
    }
    assert_eq!(sim.probe_count(), 2_000);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    eprintln!("2000 probes against 10 000 instances in {elapsed:?}");
}

// ------------------------------------------------------------------ webhooks

/// A receiver on 127.0.0.1 that answers `status` and forwards (headers, body).
async fn receiver(
    status: u16,
) -> (
    String,
    mpsc::UnboundedReceiver<(Vec<(String, String)>, Value)>,
) {
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let sender = sender.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let sender = sender.clone();
                    async move {
                        let headers = req
                            .headers()
                            .iter()
                            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
                            .collect();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let _ = sender.send((headers, serde_json::from_slice(&body).unwrap()));
                        let mut response = hyper::Response::new(Full::new(Bytes::new()));
                        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (format!("http://{addr}/webhooks/evolution/abc"), receiver)
}

#[tokio::test]
async fn sends_evolution_webhooks_built_from_the_examples() {
    let sim = start().await;
    sim.add_instance(SimInstance::new(ProviderType::Evolution, "loja-1", EVO_KEY));
    let (url, mut received) = receiver(200).await;
    for (event, example) in [
        (
            EvolutionEvent::ConnectionUpdate(EvolutionState::Open),
            "evolution/webhook-connection-update-open.json",
        ),
        (
            EvolutionEvent::ConnectionUpdate(EvolutionState::Close),
            "evolution/webhook-connection-update-close.json",
        ),
        (
            EvolutionEvent::ConnectionUpdate(EvolutionState::Refused),
            "evolution/webhook-connection-update-refused.json",
        ),
        (
            EvolutionEvent::ConnectionUpdate(EvolutionState::Connecting),
            "evolution/webhook-connection-update-close.json",
        ),
        (
            EvolutionEvent::MessagesUpsert,
            "evolution/webhook-messages-upsert.json",
        ),
        (
            EvolutionEvent::QrcodeUpdated,
            "evolution/webhook-qrcode-updated.json",
        ),
    ] {
        let status = sim
            .send_evolution_webhook(&url, "hub-webhook-token", event, "loja-1")
            .await
            .unwrap();
        assert_eq!(status, 200);
        let (headers, body) = received.recv().await.unwrap();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("authorization"), Some("Bearer hub-webhook-token"));
        assert_eq!(header("content-type"), Some("application/json"));
        assert_same_keys(&body, &shared_json(example), "");
        assert_eq!(body["event"], event.name());
        assert_eq!(body["instance"], "loja-1");
        assert_eq!(body["destination"], url.as_str());
        assert_eq!(body["server_url"], sim.url());
        assert_eq!(body["apikey"], EVO_KEY);
        assert_eq!(body["date_time"].as_str().unwrap().len(), 24);
        match event {
            EvolutionEvent::ConnectionUpdate(state) => {
                assert_eq!(body["data"]["state"], state.as_str());
                assert_eq!(body["data"]["instance"], "loja-1");
            }
            EvolutionEvent::QrcodeUpdated => {
                assert_eq!(body["data"]["qrcode"]["instance"], "loja-1");
            }
            EvolutionEvent::MessagesUpsert => {
                assert_eq!(body["data"]["key"]["fromMe"], false);
            }
        }
    }

    // Unknown instance: apikey null; the receiver's status comes back as is.
    let (url, mut received) = receiver(401).await;
    let status = sim
        .send_evolution_webhook(&url, "wrong", EvolutionEvent::MessagesUpsert, "ghost")
        .await
        .unwrap();
    assert_eq!(status, 401);
    let (_, body) = received.recv().await.unwrap();
    assert_eq!(body["apikey"], Value::Null);
    assert_eq!(body["instance"], "ghost");
}

#[tokio::test]
async fn webhook_errors() {
    let sim = start().await;
    let https = sim
        .send_evolution_webhook(
            "https://hub.example/x",
            "t",
            EvolutionEvent::QrcodeUpdated,
            "x",
        )
        .await;
    assert!(matches!(https, Err(SimError::UnsupportedScheme(_))));
    let invalid = sim
        .send_evolution_webhook("not a url", "t", EvolutionEvent::QrcodeUpdated, "x")
        .await;
    assert!(matches!(invalid, Err(SimError::InvalidUrl(_))));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let refused = sim
        .send_evolution_webhook(&closed, "t", EvolutionEvent::QrcodeUpdated, "x")
        .await;
    assert!(matches!(refused, Err(SimError::Delivery(_))));
}
