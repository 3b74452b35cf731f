//! Evolution API: `GET /instance/connectionState/{name}` with `apikey`.

use whatpro_inbox::{ProbeOutcome, ProviderType};
use whatpro_providers_sim::{Behaviour, SimInstance, SimState};

use crate::common::{Probe, clients, requests_ending, sim};

const KEY: &str = "B2C1A7E0-5D3F-4C8B-9A61-7E2F0D4C3B95";
const GLOBAL: &str = "global-429683C4C977415CAAFCCE10F7D57E11";

fn probe(base: String, name: &str) -> Probe {
    Probe::new(ProviderType::Evolution, base, name).provider(&[("api_key", GLOBAL)])
}

#[tokio::test]
async fn maps_each_state() {
    let sim = sim().await;
    sim.set_evolution_global_key(Some(GLOBAL));
    sim.add_instance(SimInstance::new(
        ProviderType::Evolution,
        "tenant7f3c-suporte",
        KEY,
    ));
    let clients = clients();
    let probe = probe(sim.url(), "tenant7f3c-suporte");
    for (state, outcome, detail) in [
        (SimState::Connected, ProbeOutcome::Connected, "state open"),
        (
            SimState::Connecting,
            ProbeOutcome::Connecting,
            "state connecting",
        ),
        (
            SimState::Disconnected,
            ProbeOutcome::Disconnected,
            "state close",
        ),
    ] {
        sim.set_state("tenant7f3c-suporte", state);
        let report = probe.run(&clients).await;
        assert_eq!(report.outcome, outcome, "{state:?}");
        assert_eq!(report.detail, detail);
        assert!(report.latency > std::time::Duration::ZERO);
    }
    assert_eq!(sim.probe_count(), 3);
}

#[tokio::test]
async fn sends_the_instance_key_when_stored_else_the_global_key() {
    let sim = sim().await;
    sim.set_evolution_global_key(Some(GLOBAL));
    sim.add_instance(SimInstance::new(ProviderType::Evolution, "suporte", KEY));
    let clients = clients();

    let report = probe(sim.url(), "suporte")
        .instance(&[("instance_api_key", KEY)])
        .run(&clients)
        .await;
    assert_eq!(report.outcome, ProbeOutcome::Connected);
    let report = probe(sim.url(), "suporte").run(&clients).await;
    assert_eq!(report.outcome, ProbeOutcome::Connected);

    let requests = requests_ending(&sim, "/instance/connectionState/suporte");
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].header("apikey"), Some(KEY));
    assert_eq!(requests[1].header("apikey"), Some(GLOBAL));
    assert!(
        requests[0]
            .header("user-agent")
            .unwrap()
            .starts_with("whatpro-hub/")
    );
}

#[tokio::test]
async fn wrong_key_is_unauthorized_and_unknown_instance_not_found() {
    let sim = sim().await;
    sim.add_instance(SimInstance::new(ProviderType::Evolution, "suporte", KEY));
    let clients = clients();
    let report = probe(sim.url(), "suporte").run(&clients).await;
    assert_eq!(report.outcome, ProbeOutcome::Unauthorized);
    assert_eq!(report.detail, "api key refused");

    let report = probe(sim.url(), "nope").run(&clients).await;
    assert_eq!(report.outcome, ProbeOutcome::NotFound);
    assert_eq!(report.detail, "instance not found");

    sim.remove_instance("suporte");
    let report = probe(sim.url(), "suporte")
        .instance(&[("instance_api_key", KEY)])
        .run(&clients)
        .await;
    assert_eq!(report.outcome, ProbeOutcome::NotFound);
}

#[tokio::test]
async fn a_base_url_that_is_not_evolution_says_so() {
    let sim = sim().await;
    let clients = clients();
    let report = probe(format!("{}/some/prefix", sim.url()), "suporte")
        .run(&clients)
        .await;
    assert_eq!(report.outcome, ProbeOutcome::NotFound);
    assert_eq!(
        report.detail,
        "route not found (is base_url an Evolution API server?)"
    );
}

#[tokio::test]
async fn server_errors_are_unreachable_and_garbage_a_bad_answer() {
    let sim = sim().await;
    sim.add_instance(SimInstance::new(ProviderType::Evolution, "suporte", KEY));
    let clients = clients();
    let probe = probe(sim.url(), "suporte").instance(&[("instance_api_key", KEY)]);

    sim.set_behaviour("suporte", Behaviour::Status(503));
    let report = probe.run(&clients).await;
    assert_eq!(report.outcome, ProbeOutcome::Unreachable);
    assert_eq!(report.detail, "HTTP 503");

    sim.set_behaviour("suporte", Behaviour::Status(401));
    assert_eq!(
        probe.run(&clients).await.outcome,
        ProbeOutcome::Unauthorized
    );

    sim.set_behaviour("suporte", Behaviour::Garbage);
    let report = probe.run(&clients).await;
    assert_eq!(report.outcome, ProbeOutcome::BadAnswer);
    assert_eq!(report.detail, "unreadable answer");

    sim.set_behaviour("suporte", Behaviour::Normal);
    assert_eq!(probe.run(&clients).await.outcome, ProbeOutcome::Connected);
}
