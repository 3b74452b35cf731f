//! WhatsApp Cloud: `GET /{phone_number_id}?fields=...` with a bearer access token.

use whatpro_inbox::{ProbeOutcome, ProviderType};
use whatpro_providers::CLOUD_FIELDS;
use whatpro_providers_sim::{Behaviour, SimInstance, SimState};

use crate::common::{Probe, clients, sim};

const PHONE: &str = "106540352242922";
const TOKEN: &str = "EAAGm0PX4ZCpsBAKZCZBq3example";

fn probe(base: String, phone: &str) -> Probe {
    Probe::new(ProviderType::WhatsappCloud, base, phone).provider(&[("access_token", TOKEN)])
}

#[tokio::test]
async fn maps_each_state_under_a_versioned_base() {
    let sim = sim().await;
    sim.add_instance(SimInstance::new(ProviderType::WhatsappCloud, PHONE, TOKEN));
    let clients = clients();
    let probe = probe(format!("{}/v21.0", sim.url()), PHONE);
    for (state, outcome, detail) in [
        (
            SimState::Connected,
            ProbeOutcome::Connected,
            "can_send_message AVAILABLE",
        ),
        (
            SimState::Connecting,
            ProbeOutcome::Connecting,
            "status PENDING",
        ),
        (
            SimState::Disconnected,
            ProbeOutcome::Disconnected,
            "can_send_message BLOCKED",
        ),
    ] {
        sim.set_state(PHONE, state);
        let report = probe.run(&clients).await;
        assert_eq!((report.outcome, report.detail.as_str()), (outcome, detail));
    }
    let request = &sim.requests()[0];
    assert_eq!(request.path, format!("/v21.0/{PHONE}"));
    assert_eq!(request.query.as_deref(), Some(CLOUD_FIELDS));
    assert!(request.query.as_deref().unwrap().contains("health_status"));
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

#[tokio::test]
async fn a_refused_token_is_unauthorized_and_an_unknown_id_not_found() {
    let sim = sim().await;
    sim.add_instance(SimInstance::new(ProviderType::WhatsappCloud, PHONE, TOKEN));
    let clients = clients();
    let report = Probe::new(ProviderType::WhatsappCloud, sim.url(), PHONE)
        .provider(&[("access_token", "EAAG-expired")])
        .run(&clients)
        .await;
    assert_eq!(
        (report.outcome, report.detail.as_str()),
        (ProbeOutcome::Unauthorized, "access token refused")
    );
    let report = probe(sim.url(), "999").run(&clients).await;
    assert_eq!(
        (report.outcome, report.detail.as_str()),
        (ProbeOutcome::NotFound, "phone number id not found")
    );
}

#[tokio::test]
async fn server_errors_and_garbage() {
    let sim = sim().await;
    sim.add_instance(SimInstance::new(ProviderType::WhatsappCloud, PHONE, TOKEN));
    let clients = clients();
    let probe = probe(sim.url(), PHONE);
    sim.set_behaviour(PHONE, Behaviour::Status(500));
    assert_eq!(probe.run(&clients).await.outcome, ProbeOutcome::Unreachable);
    sim.set_behaviour(PHONE, Behaviour::Status(401));
    assert_eq!(
        probe.run(&clients).await.outcome,
        ProbeOutcome::Unauthorized
    );
    sim.set_behaviour(PHONE, Behaviour::Garbage);
    assert_eq!(probe.run(&clients).await.outcome, ProbeOutcome::BadAnswer);
}
