//! uazapi: `GET /instance/status` with header `token`.

use whatpro_inbox::{ProbeOutcome, ProviderType};
use whatpro_providers_sim::{Behaviour, SimInstance, SimState};

use crate::common::{Probe, clients, sim};

const TOKEN: &str = "640c7a9c-b878-414e-ac6f-1a4877153968";

fn probe(base: String, token: &str) -> Probe {
    Probe::new(ProviderType::Uazapi, base, "tenant7f3c-suporte").instance(&[("token", token)])
}

#[tokio::test]
async fn maps_each_state() {
    let sim = sim().await;
    sim.add_instance(SimInstance::new(ProviderType::Uazapi, "suporte", TOKEN));
    let clients = clients();
    let probe = probe(sim.url(), TOKEN);
    for (state, outcome, detail) in [
        (
            SimState::Connected,
            ProbeOutcome::Connected,
            "status connected",
        ),
        (
            SimState::Connecting,
            ProbeOutcome::Connecting,
            "status connecting",
        ),
        (
            SimState::Disconnected,
            ProbeOutcome::Disconnected,
            "status disconnected",
        ),
    ] {
        sim.set_state("suporte", state);
        let report = probe.run(&clients).await;
        assert_eq!((report.outcome, report.detail.as_str()), (outcome, detail));
    }
    let request = &sim.requests()[0];
    assert_eq!(request.path, "/instance/status");
    assert_eq!(request.header("token"), Some(TOKEN));
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized() {
    let sim = sim().await;
    sim.add_instance(SimInstance::new(ProviderType::Uazapi, "suporte", TOKEN));
    let clients = clients();
    let report = probe(sim.url(), "wrong").run(&clients).await;
    assert_eq!(
        (report.outcome, report.detail.as_str()),
        (ProbeOutcome::Unauthorized, "token refused")
    );
    let report = Probe::new(ProviderType::Uazapi, sim.url(), "x")
        .run(&clients)
        .await;
    assert_eq!(report.outcome, ProbeOutcome::Unauthorized);
}

#[tokio::test]
async fn not_found_server_errors_and_garbage() {
    let sim = sim().await;
    sim.add_instance(SimInstance::new(ProviderType::Uazapi, "suporte", TOKEN));
    let clients = clients();
    let probe = probe(sim.url(), TOKEN);
    sim.set_behaviour("suporte", Behaviour::Status(404));
    assert_eq!(probe.run(&clients).await.outcome, ProbeOutcome::NotFound);
    sim.set_behaviour("suporte", Behaviour::Status(500));
    assert_eq!(probe.run(&clients).await.outcome, ProbeOutcome::Unreachable);
    sim.set_behaviour("suporte", Behaviour::Garbage);
    assert_eq!(probe.run(&clients).await.outcome, ProbeOutcome::BadAnswer);
}
