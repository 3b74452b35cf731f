//! The address guard and path encoding, end to end.

use whatpro_inbox::{ProbeOutcome, ProviderType};
use whatpro_providers::{ProbeSettings, ProviderClients};
use whatpro_providers_sim::SimInstance;

use crate::common::{Probe, clients, every_provider, sim};

fn guarded() -> ProviderClients {
    ProviderClients::new(ProbeSettings::default()).unwrap()
}

#[tokio::test]
async fn private_upstreams_are_refused_unless_allowed() {
    let sim = sim().await;
    let probes = every_provider(&sim);
    let refusing = guarded();
    for probe in &probes {
        let report = probe.run(&refusing).await;
        assert_eq!(report.outcome, ProbeOutcome::Unreachable);
        assert_eq!(
            report.detail,
            "base_url points to a loopback address (127.0.0.1), which is not allowed"
        );
    }
    for mut probe in every_provider(&sim) {
        probe.base_url = format!("http://localhost:{}", sim.addr().port());
        let report = probe.run(&refusing).await;
        assert_eq!(
            (report.outcome, report.detail.as_str()),
            (
                ProbeOutcome::Unreachable,
                "base_url resolves to an address that is not allowed"
            )
        );
    }
    assert!(sim.requests().is_empty(), "nothing reached the simulator");

    let open = clients();
    for probe in &probes {
        assert_eq!(probe.run(&open).await.outcome, ProbeOutcome::Connected);
    }
}

#[tokio::test]
async fn instance_names_are_percent_encoded() {
    let sim = sim().await;
    let name = "Clínica Sorriso/1?x=#%";
    sim.add_instance(SimInstance::new(ProviderType::Evolution, name, "evo-key-1"));
    let clients = clients();
    let report = Probe::new(
        ProviderType::Evolution,
        format!("{}/?ignored=1", sim.url()),
        name,
    )
    .provider(&[("api_key", "evo-key-1")])
    .run(&clients)
    .await;
    assert_eq!(report.outcome, ProbeOutcome::Connected);
    assert_eq!(
        sim.requests()[0].path,
        "/instance/connectionState/Cl%C3%ADnica%20Sorriso%2F1%3Fx%3D%23%25"
    );
    assert_eq!(sim.requests()[0].query, None);

    for name in ["..", ".", ""] {
        let report = Probe::new(ProviderType::Evolution, sim.url(), name)
            .provider(&[("api_key", "evo-key-1")])
            .run(&clients)
            .await;
        assert_eq!(report.outcome, ProbeOutcome::NotFound, "{name:?}");
    }
    assert_eq!(sim.requests().len(), 1);
}

#[tokio::test]
async fn secrets_in_paths_are_encoded_too() {
    let sim = sim().await;
    sim.add_instance(SimInstance::new(ProviderType::Zapi, "ID1", "a/b+c=="));
    let report = Probe::new(ProviderType::Zapi, sim.url(), "ID1")
        .instance(&[("instance_token", "a/b+c==")])
        .run(&clients())
        .await;
    assert_eq!(report.outcome, ProbeOutcome::Connected);
    assert_eq!(
        sim.requests()[0].path,
        "/instances/ID1/token/a%2Fb%2Bc%3D%3D/status"
    );
}

#[tokio::test]
async fn an_unusable_base_url_is_unreachable_without_a_call() {
    let clients = clients();
    for base in ["", "ftp://files.example.com", "not a url"] {
        let report = Probe::new(ProviderType::Evolution, base, "x")
            .provider(&[("api_key", "evo-key-1")])
            .run(&clients)
            .await;
        assert_eq!(
            (report.outcome, report.detail.as_str()),
            (
                ProbeOutcome::Unreachable,
                "base_url is not a usable http(s) URL"
            ),
            "{base:?}"
        );
    }
}
