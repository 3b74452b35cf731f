//! Many probes through one shared client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use whatpro_inbox::{ProbeOutcome, ProviderType};
use whatpro_providers::{ProbeSettings, ProviderClients};
use whatpro_providers_sim::{SimCredentials, SimInstance, SimState};

use crate::common::{Probe, sim};

const PER_PROVIDER: usize = 400;
const CONCURRENCY: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_probes_share_one_client() {
    let sim = sim().await;
    sim.set_recording(false);
    let base = sim.url();
    let mut probes = Vec::new();
    for i in 0..PER_PROVIDER {
        for provider in ProviderType::ALL {
            let name = match provider {
                ProviderType::WhatsappCloud => format!("5511{i:06}"),
                _ => format!("{}-{i}", provider.as_str()),
            };
            let secret = format!("secret-{}", name);
            sim.add_instance(SimInstance {
                provider,
                name: name.clone(),
                credentials: SimCredentials::secret(secret.clone()),
                state: SimState::Connected,
            });
            let probe = Probe::new(provider, base.clone(), &name);
            probes.push(match provider {
                ProviderType::Evolution => probe.provider(&[("api_key", &secret)]),
                ProviderType::Zapi => probe.instance(&[("instance_token", &secret)]),
                ProviderType::Wppconnect => probe.provider(&[("secret_key", &secret)]),
                ProviderType::Uazapi => probe.instance(&[("token", &secret)]),
                ProviderType::WhatsappCloud => probe.provider(&[("access_token", &secret)]),
            });
        }
    }
    assert_eq!(sim.instance_count(), PER_PROVIDER * 5);

    let clients = ProviderClients::new(ProbeSettings {
        timeout: Duration::from_secs(10),
        allow_private: true,
        max_idle_per_host: CONCURRENCY,
    })
    .unwrap();
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for probe in probes {
        let clients = clients.clone();
        let permits = Arc::clone(&permits);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            probe.run(&clients).await.outcome
        });
    }
    let mut connected = 0;
    while let Some(outcome) = tasks.join_next().await {
        assert_eq!(outcome.unwrap(), ProbeOutcome::Connected);
        connected += 1;
    }
    let elapsed = started.elapsed();
    assert_eq!(connected, PER_PROVIDER * 5);
    assert_eq!(sim.probe_count(), u64::try_from(PER_PROVIDER * 5).unwrap());
    assert_eq!(clients.cached_tokens(), PER_PROVIDER);
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
    eprintln!(
        "{connected} probes in {elapsed:?} ({:.0}/s)",
        f64::from(u32::try_from(connected).unwrap()) / elapsed.as_secs_f64()
    );
}
