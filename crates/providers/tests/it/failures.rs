//! Silence, slowness, lies, refused connections and global behaviours.

use std::time::{Duration, Instant};

use whatpro_inbox::ProbeOutcome;
use whatpro_providers_sim::{Behaviour, Scope, SimState};

use crate::common::{clients, clients_with_timeout, every_provider, sim};

const NAMES: [&str; 5] = ["evo", "ZAPI1", "wpp", "uaz", "5511"];

#[tokio::test]
async fn every_provider_answers_connected_normally() {
    let sim = sim().await;
    let clients = clients();
    for probe in every_provider(&sim) {
        let report = probe.run(&clients).await;
        assert_eq!(
            report.outcome,
            ProbeOutcome::Connected,
            "{:?}",
            probe.provider_type
        );
    }
    assert_eq!(sim.probe_count(), 5);
}

#[tokio::test]
async fn silence_is_unreachable_after_the_timeout() {
    let sim = sim().await;
    let probes = every_provider(&sim);
    sim.set_behaviour(Scope::All, Behaviour::Silent);
    let clients = clients_with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for probe in probes {
        let clients = clients.clone();
        tasks.spawn(async move { (probe.provider_type, probe.run(&clients).await) });
    }
    while let Some(joined) = tasks.join_next().await {
        let (provider, report) = joined.unwrap();
        assert_eq!(report.outcome, ProbeOutcome::Unreachable, "{provider:?}");
        assert_eq!(report.detail, "no answer within 300 ms");
        assert!(report.latency >= Duration::from_millis(300), "{provider:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn slowness_shows_in_latency_until_it_exceeds_the_timeout() {
    let sim = sim().await;
    let probes = every_provider(&sim);
    let clients = clients_with_timeout(Duration::from_millis(600));
    for (probe, name) in probes.iter().zip(NAMES) {
        sim.set_behaviour(name, Behaviour::Slow(Duration::from_millis(150)));
        let report = probe.run(&clients).await;
        assert_eq!(report.outcome, ProbeOutcome::Connected, "{name}");
        assert!(report.latency >= Duration::from_millis(150), "{name}");

        sim.set_behaviour(name, Behaviour::Slow(Duration::from_millis(900)));
        let report = probe.run(&clients).await;
        assert_eq!(report.outcome, ProbeOutcome::Unreachable, "{name}");
        assert!(report.latency < Duration::from_millis(900), "{name}");
        sim.set_behaviour(name, Behaviour::Normal);
    }
}

#[tokio::test]
async fn a_lying_provider_says_connected_whatever_its_state() {
    let sim = sim().await;
    let probes = every_provider(&sim);
    let clients = clients();
    for name in NAMES {
        sim.set_state(name, SimState::Disconnected);
    }
    for probe in &probes {
        assert_eq!(
            probe.run(&clients).await.outcome,
            ProbeOutcome::Disconnected,
            "{:?}",
            probe.provider_type
        );
    }
    sim.set_behaviour(Scope::All, Behaviour::Lie);
    for probe in &probes {
        assert_eq!(
            probe.run(&clients).await.outcome,
            ProbeOutcome::Connected,
            "{:?}",
            probe.provider_type
        );
    }
}

#[tokio::test]
async fn a_global_behaviour_applies_to_all_and_instance_ones_win() {
    let sim = sim().await;
    let probes = every_provider(&sim);
    let clients = clients();
    sim.set_behaviour(Scope::All, Behaviour::Status(503));
    sim.set_behaviour("uaz", Behaviour::Garbage);
    for probe in &probes {
        let expected = if probe.instance_name == "uaz" {
            ProbeOutcome::BadAnswer
        } else {
            ProbeOutcome::Unreachable
        };
        assert_eq!(
            probe.run(&clients).await.outcome,
            expected,
            "{:?}",
            probe.provider_type
        );
    }
    sim.set_behaviour(Scope::All, Behaviour::Normal);
    for probe in &probes {
        assert_eq!(probe.run(&clients).await.outcome, ProbeOutcome::Connected);
    }
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let sim = sim().await;
    let clients = clients();
    for mut probe in every_provider(&sim) {
        probe.base_url = base.clone();
        let report = probe.run(&clients).await;
        assert_eq!(
            (report.outcome, report.detail.as_str()),
            (ProbeOutcome::Unreachable, "connection failed"),
            "{:?}",
            probe.provider_type
        );
    }
}

#[tokio::test]
async fn a_stopped_simulator_is_unreachable() {
    let sim = sim().await;
    let probes = every_provider(&sim);
    let clients = clients();
    assert_eq!(
        probes[0].run(&clients).await.outcome,
        ProbeOutcome::Connected
    );
    sim.shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    for probe in &probes {
        assert_eq!(probe.run(&clients).await.outcome, ProbeOutcome::Unreachable);
    }
}
