//! WPPConnect: generate-token (cached), then `GET /api/{session}/status-session` with a bearer.

use whatpro_inbox::{ProbeOutcome, ProviderType};
use whatpro_providers_sim::{Behaviour, SimCredentials, SimInstance, SimState};

use crate::common::{Probe, clients, requests_ending, sim};

const SESSION: &str = "tenant7f3c";
const SECRET: &str = "THISISMYSECURETOKEN";
const STORED: &str = "$2b$10$StoredTokenStoredTokenStoredTokenStoredTokenStoredTo";

fn instance() -> SimInstance {
    SimInstance {
        provider: ProviderType::Wppconnect,
        name: SESSION.to_owned(),
        credentials: SimCredentials {
            secret: SECRET.to_owned(),
            client_token: None,
            bearer_token: Some(STORED.to_owned()),
        },
        state: SimState::Connected,
    }
}

fn probe(base: String) -> Probe {
    Probe::new(ProviderType::Wppconnect, base, SESSION).provider(&[("secret_key", SECRET)])
}

#[tokio::test]
async fn generates_a_token_once_and_maps_each_state() {
    let sim = sim().await;
    sim.add_instance(instance());
    let clients = clients();
    let probe = probe(sim.url());
    for (state, outcome, detail) in [
        (
            SimState::Connected,
            ProbeOutcome::Connected,
            "status CONNECTED",
        ),
        (
            SimState::Connecting,
            ProbeOutcome::Connecting,
            "status QRCODE",
        ),
        (
            SimState::Disconnected,
            ProbeOutcome::Disconnected,
            "status CLOSED",
        ),
    ] {
        sim.set_state(SESSION, state);
        let report = probe.run(&clients).await;
        assert_eq!((report.outcome, report.detail.as_str()), (outcome, detail));
    }
    let generated = requests_ending(&sim, "/generate-token");
    assert_eq!(generated.len(), 1, "the token is cached");
    assert_eq!(generated[0].method, "POST");
    assert_eq!(
        generated[0].path,
        format!("/api/{SESSION}/{SECRET}/generate-token")
    );
    assert_eq!(clients.cached_tokens(), 1);

    let statuses = requests_ending(&sim, "/status-session");
    assert_eq!(statuses.len(), 3);
    let bearer = statuses[0].header("authorization").unwrap();
    assert!(bearer.starts_with("Bearer $2b$10$"), "{bearer}");
    assert!(
        statuses
            .iter()
            .all(|r| r.header("authorization") == Some(bearer))
    );
}

#[tokio::test]
async fn a_refused_cached_token_is_renewed_once() {
    let sim = sim().await;
    sim.add_instance(instance());
    let clients = clients();
    let probe = probe(sim.url());
    assert_eq!(probe.run(&clients).await.outcome, ProbeOutcome::Connected);

    sim.revoke_tokens(SESSION);
    let report = probe.run(&clients).await;
    assert_eq!(report.outcome, ProbeOutcome::Connected);
    assert_eq!(requests_ending(&sim, "/generate-token").len(), 2);
    assert_eq!(requests_ending(&sim, "/status-session").len(), 3);

    // A clone shares the cache.
    let clone = clients.clone();
    assert_eq!(probe.run(&clone).await.outcome, ProbeOutcome::Connected);
    assert_eq!(requests_ending(&sim, "/generate-token").len(), 2);
}

#[tokio::test]
async fn a_wrong_secret_is_unauthorized() {
    let sim = sim().await;
    sim.add_instance(instance());
    let clients = clients();
    let report = Probe::new(ProviderType::Wppconnect, sim.url(), SESSION)
        .provider(&[("secret_key", "WRONG")])
        .run(&clients)
        .await;
    assert_eq!(report.outcome, ProbeOutcome::Unauthorized);
    assert_eq!(report.detail, "secret key refused");
    assert_eq!(clients.cached_tokens(), 0);
    assert!(requests_ending(&sim, "/status-session").is_empty());
}

#[tokio::test]
async fn a_stored_token_is_used_as_is() {
    let sim = sim().await;
    sim.add_instance(instance());
    let clients = clients();
    let report = probe(sim.url())
        .instance(&[("token", STORED)])
        .run(&clients)
        .await;
    assert_eq!(report.outcome, ProbeOutcome::Connected);
    assert!(requests_ending(&sim, "/generate-token").is_empty());
    assert_eq!(
        sim.requests()[0].header("authorization"),
        Some(format!("Bearer {STORED}").as_str())
    );

    let report = probe(sim.url())
        .instance(&[("token", "not-the-token")])
        .run(&clients)
        .await;
    assert_eq!(report.outcome, ProbeOutcome::Unauthorized);
    assert_eq!(report.detail, "token refused");
    assert!(requests_ending(&sim, "/generate-token").is_empty());
}

#[tokio::test]
async fn nothing_to_authenticate_with_is_unauthorized_without_a_call() {
    let sim = sim().await;
    let clients = clients();
    let report = Probe::new(ProviderType::Wppconnect, sim.url(), SESSION)
        .run(&clients)
        .await;
    assert_eq!(report.outcome, ProbeOutcome::Unauthorized);
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn server_errors_and_garbage() {
    let sim = sim().await;
    sim.add_instance(instance());
    let clients = clients();
    let probe = probe(sim.url()).instance(&[("token", STORED)]);
    sim.set_behaviour(SESSION, Behaviour::Status(502));
    let report = probe.run(&clients).await;
    assert_eq!(
        (report.outcome, report.detail.as_str()),
        (ProbeOutcome::Unreachable, "HTTP 502")
    );
    sim.set_behaviour(SESSION, Behaviour::Garbage);
    assert_eq!(probe.run(&clients).await.outcome, ProbeOutcome::BadAnswer);

    // A failing generate-token is reported the same way.
    sim.set_behaviour(SESSION, Behaviour::Status(503));
    let report = Probe::new(ProviderType::Wppconnect, sim.url(), SESSION)
        .provider(&[("secret_key", SECRET)])
        .run(&clients)
        .await;
    assert_eq!(report.outcome, ProbeOutcome::Unreachable);
}
