//! Shared helpers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use whatpro_inbox::{Credentials, ProbeReport, ProbeRequest, ProviderProbe, ProviderType};
use whatpro_providers::{ProbeSettings, ProviderClients};
use whatpro_providers_sim::{ProvidersSim, RecordedRequest};

/// The timeout of the test clients: long enough for a debug build, short enough for the
/// timeout tests.
pub const TIMEOUT: Duration = Duration::from_millis(1500);

pub async fn sim() -> ProvidersSim {
    ProvidersSim::start().await.unwrap()
}

/// Clients allowed to reach the simulator on 127.0.0.1.
pub fn clients() -> ProviderClients {
    ProviderClients::new(ProbeSettings {
        timeout: TIMEOUT,
        allow_private: true,
        max_idle_per_host: 8,
    })
    .unwrap()
}

pub fn creds(pairs: &[(&str, &str)]) -> Credentials {
    Credentials::new(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    )
}

/// One probe.
pub struct Probe {
    pub provider_type: ProviderType,
    pub base_url: String,
    pub provider_credentials: Credentials,
    pub instance_name: String,
    pub instance_credentials: Credentials,
}

impl Probe {
    pub fn new(provider_type: ProviderType, base_url: impl Into<String>, name: &str) -> Self {
        Self {
            provider_type,
            base_url: base_url.into(),
            provider_credentials: Credentials::default(),
            instance_name: name.to_owned(),
            instance_credentials: Credentials::default(),
        }
    }

    pub fn provider(mut self, pairs: &[(&str, &str)]) -> Self {
        self.provider_credentials = creds(pairs);
        self
    }

    pub fn instance(mut self, pairs: &[(&str, &str)]) -> Self {
        self.instance_credentials = creds(pairs);
        self
    }

    pub async fn run(&self, clients: &impl ProviderProbe) -> ProbeReport {
        let request = ProbeRequest {
            provider_type: self.provider_type,
            base_url: &self.base_url,
            provider_credentials: &self.provider_credentials,
            instance_name: &self.instance_name,
            instance_credentials: &self.instance_credentials,
        };
        let report = clients.probe(&request).await;
        for secret in self
            .provider_credentials
            .pairs()
            .values()
            .chain(self.instance_credentials.pairs().values())
        {
            assert!(
                !report.detail.contains(secret.as_str()),
                "detail {:?} leaks a credential",
                report.detail
            );
        }
        report
    }
}

/// The recorded requests whose path ends with `suffix`.
pub fn requests_ending(sim: &ProvidersSim, suffix: &str) -> Vec<RecordedRequest> {
    sim.requests()
        .into_iter()
        .filter(|r| r.path.ends_with(suffix))
        .collect()
}

fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/providers")
}

/// A shared example payload, read from `/work/shared/providers`.
pub fn shared_json(rel: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(shared_dir().join(rel)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Clients with another timeout (allowed to reach 127.0.0.1).
pub fn clients_with_timeout(timeout: Duration) -> ProviderClients {
    ProviderClients::new(ProbeSettings {
        timeout,
        allow_private: true,
        max_idle_per_host: 8,
    })
    .unwrap()
}

/// Registers one connected instance per provider type in `sim` and returns a probe for each
/// (instance names: `evo`, `ZAPI1`, `wpp`, `uaz`, `5511`).
pub fn every_provider(sim: &ProvidersSim) -> Vec<Probe> {
    use whatpro_providers_sim::{SimCredentials, SimInstance};
    let base = sim.url();
    sim.add_instance(SimInstance::new(ProviderType::Evolution, "evo", "evo-key"));
    sim.add_instance(SimInstance::new(ProviderType::Zapi, "ZAPI1", "zapi-token"));
    sim.add_instance(SimInstance {
        provider: ProviderType::Wppconnect,
        name: "wpp".to_owned(),
        credentials: SimCredentials::secret("wpp-secret"),
        state: whatpro_providers_sim::SimState::Connected,
    });
    sim.add_instance(SimInstance::new(ProviderType::Uazapi, "uaz", "uaz-token"));
    sim.add_instance(SimInstance::new(
        ProviderType::WhatsappCloud,
        "5511",
        "cloud-token",
    ));
    vec![
        Probe::new(ProviderType::Evolution, base.clone(), "evo")
            .provider(&[("api_key", "global")])
            .instance(&[("instance_api_key", "evo-key")]),
        Probe::new(ProviderType::Zapi, base.clone(), "ZAPI1")
            .instance(&[("instance_token", "zapi-token")]),
        Probe::new(ProviderType::Wppconnect, base.clone(), "wpp")
            .provider(&[("secret_key", "wpp-secret")]),
        Probe::new(ProviderType::Uazapi, base.clone(), "uaz").instance(&[("token", "uaz-token")]),
        Probe::new(ProviderType::WhatsappCloud, base, "5511")
            .provider(&[("access_token", "cloud-token")]),
    ]
}

/// A bare HTTP/1.1 server on 127.0.0.1 answering every request with the same status, headers
/// and body (e.g. an example payload verbatim); closes each connection after answering.
pub struct RawServer {
    pub addr: std::net::SocketAddr,
}

impl RawServer {
    pub async fn start(status: u16, extra_headers: &str, body: Vec<u8>) -> RawServer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n{extra_headers}\r\n",
            body.len()
        );
        let mut answer = head.into_bytes();
        answer.extend_from_slice(&body);
        let answer = std::sync::Arc::new(answer);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let answer = std::sync::Arc::clone(&answer);
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 2048];
                    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let _ = stream.write_all(&answer).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        RawServer { addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}
