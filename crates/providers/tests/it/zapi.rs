//! Z-API: `GET /instances/{id}/token/{token}/status` with an optional `Client-Token`.

use whatpro_inbox::{ProbeOutcome, ProviderType};
use whatpro_providers_sim::{Behaviour, SimCredentials, SimInstance, SimState};

use crate::common::{Probe, clients, requests_ending, sim};

const ID: &str = "3C01A7B2E5D94F6A8B0C1D2E3F4A5B6C";
const TOKEN: &str = "F1E2D3C4B5A69788A1B2C3D4";
const CLIENT_TOKEN: &str = "Fa1b2c3d4e5f60718293a4b5c6d7e8f9S";

fn instance(client_token: Option<&str>) -> SimInstance {
    SimInstance {
        provider: ProviderType::Zapi,
        name: ID.to_owned(),
        credentials: SimCredentials {
            secret: TOKEN.to_owned(),
            client_token: client_token.map(str::to_owned),
            bearer_token: None,
        },
        state: SimState::Connected,
    }
}

fn probe(base: String) -> Probe {
    Probe::new(ProviderType::Zapi, base, ID)
        .provider(&[("client_token", CLIENT_TOKEN)])
        .instance(&[("instance_token", TOKEN)])
}

#[tokio::test]
async fn maps_each_state_and_sends_the_client_token() {
    let sim = sim().await;
    sim.add_instance(instance(Some(CLIENT_TOKEN)));
    let clients = clients();
    let probe = probe(sim.url());
    for (state, outcome, detail) in [
        (SimState::Connected, ProbeOutcome::Connected, "connected"),
        (
            SimState::Connecting,
            ProbeOutcome::Connecting,
            "connected, phone offline",
        ),
        (
            SimState::Disconnected,
            ProbeOutcome::Disconnected,
            "not connected",
        ),
    ] {
        sim.set_state(ID, state);
        let report = probe.run(&clients).await;
        assert_eq!((report.outcome, report.detail.as_str()), (outcome, detail));
    }
    let requests = requests_ending(&sim, "/status");
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[0].path,
        format!("/instances/{ID}/token/{TOKEN}/status")
    );
    assert_eq!(requests[0].header("client-token"), Some(CLIENT_TOKEN));
}

#[tokio::test]
async fn client_token_is_optional() {
    let sim = sim().await;
    sim.add_instance(instance(None));
    let clients = clients();
    let report = Probe::new(ProviderType::Zapi, sim.url(), ID)
        .instance(&[("instance_token", TOKEN)])
        .run(&clients)
        .await;
    assert_eq!(report.outcome, ProbeOutcome::Connected);
    assert_eq!(sim.requests()[0].header("client-token"), None);
}

#[tokio::test]
async fn refused_tokens_are_unauthorized_and_unknown_ids_not_found() {
    let sim = sim().await;
    sim.add_instance(instance(Some(CLIENT_TOKEN)));
    let clients = clients();

    let missing_client_token = Probe::new(ProviderType::Zapi, sim.url(), ID)
        .instance(&[("instance_token", TOKEN)])
        .run(&clients)
        .await;
    assert_eq!(missing_client_token.outcome, ProbeOutcome::Unauthorized);

    let wrong_token = Probe::new(ProviderType::Zapi, sim.url(), ID)
        .provider(&[("client_token", CLIENT_TOKEN)])
        .instance(&[("instance_token", "WRONG")])
        .run(&clients)
        .await;
    assert_eq!(wrong_token.outcome, ProbeOutcome::Unauthorized);
    assert_eq!(wrong_token.detail, "instance token or Client-Token refused");

    let unknown = Probe::new(ProviderType::Zapi, sim.url(), "UNKNOWN")
        .provider(&[("client_token", CLIENT_TOKEN)])
        .instance(&[("instance_token", TOKEN)])
        .run(&clients)
        .await;
    assert_eq!(unknown.outcome, ProbeOutcome::NotFound);

    let no_token = Probe::new(ProviderType::Zapi, sim.url(), ID)
        .run(&clients)
        .await;
    assert_eq!(no_token.outcome, ProbeOutcome::Unauthorized);
    assert_eq!(no_token.detail, "no Z-API instance token stored");
}

#[tokio::test]
async fn server_errors_and_garbage() {
    let sim = sim().await;
    sim.add_instance(instance(None));
    let clients = clients();
    let probe = probe(sim.url());
    sim.set_behaviour(ID, Behaviour::Status(500));
    assert_eq!(probe.run(&clients).await.outcome, ProbeOutcome::Unreachable);
    sim.set_behaviour(ID, Behaviour::Garbage);
    assert_eq!(probe.run(&clients).await.outcome, ProbeOutcome::BadAnswer);
}
