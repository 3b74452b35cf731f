#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
//! `AsaasClient` and the webhook helpers against the fake Asaas (`whatpro-asaas-sim`) and the
//! shared contract examples in `shared/asaas/`.

mod customers;
mod errors;
mod retries;
mod subscriptions;
mod webhooks;

use std::path::PathBuf;
use std::time::Duration;

use url::Url;
use whatpro_asaas::{AsaasClient, AsaasSettings, NewCustomer};
use whatpro_asaas_sim::{AsaasSim, SimConfig};

/// The key the simulator accepts in these tests.
pub const KEY: &str = "$aact_hmlg_000MzkwODA2MWY2OGM3MWRlMDU2NWM3MzJlNzZmNGZhZGY6OjA";

/// `shared/asaas/` (next to the workspace).
pub fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/asaas")
}

/// A shared example, as text.
pub fn shared_text(name: &str) -> String {
    std::fs::read_to_string(shared_dir().join(name)).unwrap()
}

/// Fast settings for tests: short timeouts, one retry.
pub fn fast_settings() -> AsaasSettings {
    AsaasSettings {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(800),
        ..AsaasSettings::default()
    }
}

/// A client for `base` with `key` and `settings`.
pub fn client_for(base: &str, key: &str, settings: AsaasSettings) -> AsaasClient {
    AsaasClient::new(Url::parse(base).unwrap(), key.to_owned(), settings).unwrap()
}

/// A simulator and a client for it.
pub async fn start() -> (AsaasSim, AsaasClient) {
    let sim = AsaasSim::start(SimConfig::new(KEY)).await.unwrap();
    let client = client_for(&sim.url(), KEY, fast_settings());
    (sim, client)
}

/// A customer to create, with a valid CNPJ and the given reference.
pub fn new_customer(reference: &str) -> NewCustomer {
    NewCustomer {
        name: "Clínica Sorriso Ltda".to_owned(),
        cpf_cnpj: "11222333000181".to_owned(),
        email: Some("financeiro@clinicasorriso.com.br".to_owned()),
        external_reference: Some(reference.to_owned()),
        notification_disabled: true,
    }
}
