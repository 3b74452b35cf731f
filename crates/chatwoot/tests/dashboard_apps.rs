#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on unexpected errors"
)]
//! Dashboard Apps against the fake Chatwoot (`whatpro-chatwoot-sim`).

use serde_json::{Value, json};
use url::Url;
use whatpro_chatwoot::{ChatwootClient, ChatwootError, ClientSettings};
use whatpro_chatwoot_sim::{ChatwootSim, DemoSeed, Fault};
use whatpro_iam::ChatwootCredential;
use whatpro_kernel::AccountId;
use whatpro_tenancy::NewDashboardApp;

async fn sim() -> (ChatwootSim, DemoSeed) {
    let sim = ChatwootSim::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let seed = sim.seed_demo();
    (sim, seed)
}

fn client(base: &str) -> ChatwootClient {
    ChatwootClient::new(Url::parse(base).unwrap(), ClientSettings::default()).unwrap()
}

fn token(t: &str) -> ChatwootCredential {
    ChatwootCredential::AccessToken(t.to_owned())
}

fn hub_app() -> NewDashboardApp {
    NewDashboardApp {
        title: "WhatPro Hub".to_owned(),
        frame_url: "http://hub.example:8080/embed/app".to_owned(),
    }
}

#[tokio::test]
async fn an_administrator_creates_and_lists_a_frame_app() {
    let (sim, seed) = sim().await;
    let chatwoot = client(&sim.url());
    let admin = token(&seed.admin.access_token);
    let created = chatwoot
        .create_dashboard_app(&admin, AccountId::new(1), &hub_app())
        .await
        .unwrap();
    assert_eq!(created.title, "WhatPro Hub");
    assert!(created.frames("http://hub.example:8080/embed/app"));
    assert!(created.created_at.is_string());

    let stored = sim.dashboard_apps(1);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["id"], json!(created.id));
    assert_eq!(
        stored[0]["content"],
        json!([{"type": "frame", "url": "http://hub.example:8080/embed/app"}])
    );

    let request = sim
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(request.path, "/api/v1/accounts/1/dashboard_apps");
    assert_eq!(
        request.header("api_access_token"),
        Some(seed.admin.access_token.as_str())
    );
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body,
        json!({"dashboard_app": {"title": "WhatPro Hub", "content": [
            {"type": "frame", "url": "http://hub.example:8080/embed/app"}
        ]}})
    );

    let listed = chatwoot
        .dashboard_apps(&admin, AccountId::new(1))
        .await
        .unwrap();
    assert_eq!(listed, vec![created]);
    assert!(sim.dashboard_apps(9).is_empty());
}

#[tokio::test]
async fn agents_strangers_and_bad_tokens_are_unauthorized() {
    let (sim, seed) = sim().await;
    let chatwoot = client(&sim.url());
    for (credential, account) in [
        // Ana is an agent of 1: Chatwoot's policy refuses with 401.
        (token(&seed.agent.access_token), 1),
        // Ana is not a member of 9.
        (token(&seed.agent.access_token), 9),
        (token("not-a-token"), 1),
    ] {
        let error = chatwoot
            .create_dashboard_app(&credential, AccountId::new(account), &hub_app())
            .await
            .unwrap_err();
        assert!(error.is_unauthorized(), "{error:?}");
        assert!(!error.to_string().contains(&seed.agent.access_token));
    }
    assert!(sim.dashboard_apps(1).is_empty());
}

#[tokio::test]
async fn a_post_is_not_retried_and_outages_are_unavailable() {
    let (sim, seed) = sim().await;
    let chatwoot = client(&sim.url());
    let admin = token(&seed.admin.access_token);
    sim.set_fault(Some(Fault::Status(503)));
    let error = chatwoot
        .create_dashboard_app(&admin, AccountId::new(1), &hub_app())
        .await
        .unwrap_err();
    assert!(
        matches!(error, ChatwootError::Status { status: 503, .. }),
        "{error:?}"
    );
    assert_eq!(sim.requests().len(), 1, "a POST is sent once");
    sim.set_fault(None);

    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let error = client(&format!("http://127.0.0.1:{port}"))
        .create_dashboard_app(&admin, AccountId::new(1), &hub_app())
        .await
        .unwrap_err();
    assert!(matches!(error, ChatwootError::Unavailable(_)), "{error:?}");
}
