//! [`TestApp`]: the real application (`whatpro_app::build_app`, the same function `main`
//! uses) served on a loopback port, over its own database, with the Chatwoot simulator as
//! Chatwoot and the Asaas simulator as the payment gateway (its webhooks go to the app).

use std::net::TcpListener;

use whatpro_app::config::{Config, Sources};
use whatpro_app::http::ServiceConfig;
use whatpro_app::startup::ServerHandle;
use whatpro_app::{AppState, Application};
use whatpro_asaas_sim::{AsaasSim, SimConfig, WebhookTarget};
use whatpro_chatwoot_sim::ChatwootSim;
use whatpro_crypto::KeyRing;

use crate::db::TestDb;

/// The Asaas API key of the test configuration.
pub const ASAAS_KEY: &str = "$aact_test_whatpro_hub_key";
/// The `ASAAS_WEBHOOK_TOKEN` of the test configuration (32+ characters, as Asaas requires).
pub const ASAAS_WEBHOOK_TOKEN: &str = "whk-Tq8vLp2mZr6sWx4yNb7cJd9fGh3k";

/// Builder for [`TestApp`]: extra configuration variables and a choice of database.
#[derive(Debug, Default)]
pub struct TestAppBuilder {
    vars: Vec<(String, String)>,
    probes: Option<fn(&mut ServiceConfig)>,
}

impl TestAppBuilder {
    /// Sets a configuration variable (as if it were in the environment).
    #[must_use]
    pub fn var(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.push((name.to_owned(), value.into()));
        self
    }

    /// Mounts extra routes behind the real middleware stack (probe handlers for tests of
    /// cross-cutting behaviour).
    #[must_use]
    pub fn probe_routes(mut self, routes: fn(&mut ServiceConfig)) -> Self {
        self.probes = Some(routes);
        self
    }

    /// Starts the simulator, creates the database and serves the app on a free port.
    ///
    /// # Panics
    /// When any part cannot start (this is test code: failing loudly is the point).
    pub async fn start(self) -> TestApp {
        whatpro_telemetry::init_for_tests();
        let db = TestDb::new().await;
        let chatwoot = ChatwootSim::start(([127, 0, 0, 1], 0).into())
            .await
            .unwrap_or_else(|e| panic!("chatwoot simulator did not start: {e}"));
        let asaas = AsaasSim::start(SimConfig::new(ASAAS_KEY))
            .await
            .unwrap_or_else(|e| panic!("asaas simulator did not start: {e}"));
        let keys = || {
            KeyRing::generate()
                .unwrap_or_else(|e| panic!("key generation failed: {e}"))
                .to_paserk_list()
        };
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let mut sources = Sources::from_pairs([
            ("HUB_PUBLIC_URL", format!("http://127.0.0.1:{port}")),
            ("DATABASE_URL", db.url().to_owned()),
            ("CHATWOOT_URL", chatwoot.url()),
            ("HUB_BIND", "127.0.0.1:0".to_owned()),
            ("HUB_TOKEN_KEYS", keys()),
            ("HUB_DATA_KEYS", keys()),
            ("HUB_ALLOW_PRIVATE_UPSTREAMS", "true".to_owned()),
            ("ASAAS_URL", asaas.url()),
            ("ASAAS_API_KEY", ASAAS_KEY.to_owned()),
            ("ASAAS_WEBHOOK_TOKEN", ASAAS_WEBHOOK_TOKEN.to_owned()),
            ("HUB_WORKERS", "2".to_owned()),
            ("HUB_SHUTDOWN_TIMEOUT_SECS", "1".to_owned()),
        ]);
        for (name, value) in self.vars {
            sources.set(&name, value);
        }
        let config = Config::load(&sources).unwrap_or_else(|e| panic!("test config: {e}"));
        let state = whatpro_app::wiring::build_state(config, db.pool())
            .await
            .unwrap_or_else(|e| panic!("app state: {e}"));
        let app =
            Application::from_listener_with(state.clone(), listener, self.probes.unwrap_or(|_| {}))
                .unwrap_or_else(|e| panic!("app did not start: {e}"));
        asaas.set_webhook_target(Some(WebhookTarget::new(
            format!("http://127.0.0.1:{port}/api/v1/webhooks/asaas"),
            ASAAS_WEBHOOK_TOKEN,
        )));
        let handle = app.handle();
        let running = tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|e| panic!("http client: {e}"));
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            client,
            state,
            chatwoot,
            asaas,
            handle,
            running: std::sync::Mutex::new(Some(running)),
            db,
        }
    }
}

/// A running Hub for one test. Dropping it stops the server and drops its database.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// A client without redirects or cookies.
    pub client: reqwest::Client,
    /// The state the app was built with (pool, metrics, configuration).
    pub state: AppState,
    /// The Chatwoot the app talks to.
    pub chatwoot: ChatwootSim,
    /// The Asaas the app talks to (its webhooks are delivered to the app).
    pub asaas: AsaasSim,
    handle: ServerHandle,
    running: std::sync::Mutex<Option<tokio::task::JoinHandle<std::io::Result<()>>>>,
    /// Last field: dropped after the server and pool are gone.
    pub db: TestDb,
}

impl TestApp {
    /// A builder for a non-default app.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    /// An app with the default test configuration.
    pub async fn spawn() -> Self {
        Self::builder().start().await
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Stops the server gracefully and waits until it and its background jobs (with their
    /// last run, e.g. the final usage flush) are done. The database stays available.
    ///
    /// # Panics
    /// When the server task failed.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
        let running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(task) = running {
            task.await
                .unwrap_or_else(|e| panic!("server task: {e}"))
                .unwrap_or_else(|e| panic!("server: {e}"));
        }
    }

    /// `GET path`.
    ///
    /// # Panics
    /// When the request cannot be sent.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { handle.stop(false).await });
        }
    }
}
