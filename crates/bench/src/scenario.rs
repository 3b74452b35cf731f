//! Scenarios: what to send, to which server, and which ceilings the result is quoted against.
//!
//! Adding a scenario is one entry in [`http_scenarios`]; credentials obtained before the
//! measurements (e.g. the Hub access token) come from the [`Context`]:
//!
//! ```text
//! HttpScenario::get("hub GET /api/v1/me/sessions", Target::Hub, "/api/v1/me/sessions")
//!     .header("authorization", ctx.bearer())
//!     .quoted_against(&[HEALTHZ, MINIMAL_ACTIX])
//!     .in_section(IAM),
//! ```
//!
//! The report keeps the declaration order within a section, and the sections in the order they
//! first appear; the run order is the declaration order at each concurrency.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request};

/// Name of the minimal actix-web ceiling scenario.
pub const MINIMAL_ACTIX: &str = "actix minimal GET /";
/// Name of the raw `SELECT 1` ceiling scenario.
pub const SELECT_1: &str = "pg SELECT 1 (pool)";
/// Name of the Hub's liveness scenario (the reference for authenticated routes).
pub const HEALTHZ: &str = "hub GET /healthz";
/// Name of the authenticated profile scenario.
pub const ME: &str = "hub GET /api/v1/me (authenticated)";
/// Name of the sign-in scenario.
pub const SSO: &str = "hub POST /api/v1/auth/sso (fake Chatwoot)";
/// Name of the account-scoped GET with an access token (the reference of the API-key row).
pub const MEMBERS_ACCESS: &str = "hub GET /api/v1/accounts/1/members (access token)";
/// Name of the same GET with an API key.
pub const MEMBERS_API_KEY: &str = "hub GET /api/v1/accounts/1/members (API key)";
/// Name of the instance-token validation scenario.
pub const VALIDATE: &str = "hub GET /api/v1/instance-tokens/validate (instance token)";

/// Report section of the foundation scenarios (and of `SELECT 1`).
pub const FOUNDATION: &str = "foundation";
/// Report section of the identity and access scenarios.
pub const IAM: &str = "iam";
/// Report section of the machine-credential scenarios (API keys, instance tokens).
pub const MACHINE: &str = "machine credentials";

/// The sign-in route.
pub const SSO_PATH: &str = "/api/v1/auth/sso";
/// The account-scoped list both credential rows read (the demo admin's account).
pub const MEMBERS_PATH: &str = "/api/v1/accounts/1/members";
/// Where the bench creates its API key.
pub const API_KEYS_PATH: &str = "/api/v1/accounts/1/api-keys";
/// Where the bench gets its instance token.
pub const INSTANCE_TOKENS_PATH: &str = "/api/v1/instance-tokens";
/// The validation route.
pub const VALIDATE_PATH: &str = "/api/v1/instance-tokens/validate";

/// What the scenarios need from the run, obtained before the measurements.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// A Chatwoot personal API token (of the simulator's seeded administrator): the SSO
    /// credential.
    pub chatwoot_access_token: String,
    /// A Hub access token from signing in once before the scenarios.
    pub hub_access_token: String,
    /// An API key (scope `members:read`) created through the API before the scenarios.
    pub api_key: String,
    /// An instance token (scope `members:read`) obtained through the API before the scenarios.
    pub instance_token: String,
    /// The origin the instance token is bound to (sent as `Origin`).
    pub instance_origin: String,
}

impl Context {
    /// The `Authorization` header value for the Hub.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.hub_access_token)
    }
}

/// The body of `POST /api/v1/accounts/1/api-keys` the bench sends.
pub fn api_key_body() -> String {
    serde_json::json!({"name": "whatpro-bench", "scopes": ["members:read"]}).to_string()
}

/// The body of `POST /api/v1/instance-tokens` the bench sends (the longest lifetime).
pub fn instance_token_body(origin: &str) -> String {
    serde_json::json!({
        "account_id": 1,
        "scopes": ["members:read"],
        "ttl_minutes": 60,
        "origin": origin,
    })
    .to_string()
}

/// A `POST` with a JSON body and the access token (creating the machine credentials).
pub fn authed_post(path: &str, access_token: &str, body: String) -> RequestSpec {
    HttpScenario::new("setup", Target::Hub, Method::POST, path)
        .header("authorization", format!("Bearer {access_token}"))
        .json_body(body)
        .request
}

/// The body of `POST /api/v1/auth/sso` with a personal API token, refresh token in the body.
pub fn sso_body(chatwoot_access_token: &str) -> String {
    serde_json::json!({
        "chatwoot_access_token": chatwoot_access_token,
        "token_delivery": "body",
    })
    .to_string()
}

/// The sign-in request (also sent once before the scenarios to get the access token).
pub fn sso_request(chatwoot_access_token: &str) -> RequestSpec {
    HttpScenario::new(SSO, Target::Hub, Method::POST, SSO_PATH)
        .json_body(sso_body(chatwoot_access_token))
        .request
}

/// A performance target: this scenario's req/s at `connections`, as a percentage of another
/// scenario's at the same concurrency, must be at least `min_percent`.
#[derive(Debug, Clone, PartialEq)]
pub struct Goal {
    /// The concurrency the target applies to.
    pub connections: usize,
    /// The reference scenario (also listed in `quoted_against`).
    pub of: String,
    /// The lowest acceptable percentage.
    pub min_percent: f64,
    /// How the target is shown, e.g. `>= 85% of /healthz`.
    pub label: String,
}

/// The server a scenario is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The release `whatpro-hub serve` process.
    Hub,
    /// The one-route actix-web server (`whatpro-bench serve-minimal`).
    Minimal,
}

impl Target {
    /// A short name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hub => "hub",
            Self::Minimal => "minimal",
        }
    }
}

/// One HTTP request, rebuilt for every send.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// HTTP method.
    pub method: Method,
    /// Path and query, e.g. `/healthz`.
    pub path: String,
    /// Extra headers (`host` is added automatically).
    pub headers: Vec<(String, String)>,
    /// Request body (empty for GET).
    pub body: Bytes,
}

impl RequestSpec {
    /// Builds the hyper request for a server reachable as `host` (`ip:port`).
    ///
    /// # Errors
    /// When the path or a header is not valid HTTP.
    pub fn build(&self, host: &str) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
        Ok(self.prepare(host)?.request())
    }

    /// Parses and validates the request once for a server reachable as `host`; the load
    /// generator then copies it for every send.
    ///
    /// # Errors
    /// When the path or a header is not valid HTTP.
    pub fn prepare(&self, host: &str) -> Result<PreparedRequest, hyper::http::Error> {
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(self.path.as_str())
            .header(hyper::header::HOST, host);
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let (parts, ()) = builder.body(())?.into_parts();
        Ok(PreparedRequest {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body: self.body.clone(),
        })
    }
}

/// A request parsed once ([`RequestSpec::prepare`]). Copying it shares the header values'
/// bytes, so the generator's work per exchange does not grow with the size of the headers: a
/// scenario with a long bearer token is not charged for re-validating it on every send.
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    method: Method,
    uri: hyper::Uri,
    headers: hyper::HeaderMap,
    body: Bytes,
}

impl PreparedRequest {
    /// A fresh copy to send.
    pub fn request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// A named HTTP load scenario.
#[derive(Debug, Clone)]
pub struct HttpScenario {
    /// Name shown in the reports (unique).
    pub name: String,
    /// The server that receives the requests.
    pub target: Target,
    /// The request sent back to back on every connection.
    pub request: RequestSpec,
    /// Ceiling scenarios this one is quoted against (as a percentage at the same concurrency).
    pub quoted_against: Vec<String>,
    /// Set when this scenario is itself a ceiling: the label shown instead of a percentage.
    pub ceiling: Option<String>,
    /// Report section ([`FOUNDATION`] unless set with [`HttpScenario::in_section`]).
    pub section: &'static str,
    /// Performance targets checked against the results.
    pub goals: Vec<Goal>,
}

impl HttpScenario {
    /// A `GET path` scenario.
    pub fn get(name: impl Into<String>, target: Target, path: impl Into<String>) -> Self {
        Self::new(name, target, Method::GET, path)
    }

    /// A scenario with any method (add a body with [`HttpScenario::body`]).
    pub fn new(
        name: impl Into<String>,
        target: Target,
        method: Method,
        path: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            target,
            request: RequestSpec {
                method,
                path: path.into(),
                headers: Vec::new(),
                body: Bytes::new(),
            },
            quoted_against: Vec::new(),
            ceiling: None,
            section: FOUNDATION,
            goals: Vec::new(),
        }
    }

    /// Adds a request header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.request.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the request body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.request.body = body.into();
        self
    }

    /// Sets a JSON request body (and its `Content-Type`).
    pub fn json_body(self, body: impl Into<Bytes>) -> Self {
        self.header("content-type", "application/json").body(body)
    }

    /// Puts this scenario in a report section.
    pub fn in_section(mut self, section: &'static str) -> Self {
        self.section = section;
        self
    }

    /// Adds a target: at `connections`, req/s at least `min_percent` of scenario `of`.
    pub fn goal(
        mut self,
        connections: usize,
        of: &str,
        min_percent: f64,
        label: impl Into<String>,
    ) -> Self {
        self.goals.push(Goal {
            connections,
            of: of.to_owned(),
            min_percent,
            label: label.into(),
        });
        self
    }

    /// Quotes this scenario as a percentage of the named ceiling scenarios.
    pub fn quoted_against(mut self, ceilings: &[&str]) -> Self {
        self.quoted_against = ceilings.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    /// Marks this scenario as a ceiling, shown with `label`.
    pub fn ceiling_labelled(mut self, label: impl Into<String>) -> Self {
        self.ceiling = Some(label.into());
        self
    }
}

/// Every HTTP scenario of the run, in run order (`/me` right after `/healthz`, which it is
/// compared with, so that both see the same background load).
pub fn http_scenarios(ctx: &Context) -> Vec<HttpScenario> {
    vec![
        HttpScenario::get(HEALTHZ, Target::Hub, "/healthz").quoted_against(&[MINIMAL_ACTIX]),
        HttpScenario::get(ME, Target::Hub, "/api/v1/me")
            .header("authorization", ctx.bearer())
            .quoted_against(&[HEALTHZ, MINIMAL_ACTIX])
            .goal(64, HEALTHZ, 85.0, ">= 85% of /healthz")
            .in_section(IAM),
        HttpScenario::get("hub GET /readyz", Target::Hub, "/readyz")
            .quoted_against(&[MINIMAL_ACTIX, SELECT_1]),
        HttpScenario::get(MINIMAL_ACTIX, Target::Minimal, "/").ceiling_labelled("ceiling (HTTP)"),
        // Each call verifies the token against the simulator over HTTP and writes a session.
        HttpScenario::new(SSO, Target::Hub, Method::POST, SSO_PATH)
            .json_body(sso_body(&ctx.chatwoot_access_token))
            .quoted_against(&[MINIMAL_ACTIX])
            .in_section(IAM),
        // The same account-scoped GET with an access token and with an API key, back to back:
        // the key's row shows what its verification costs once argon2 is cached.
        HttpScenario::get(MEMBERS_ACCESS, Target::Hub, MEMBERS_PATH)
            .header("authorization", ctx.bearer())
            .quoted_against(&[HEALTHZ])
            .in_section(MACHINE),
        HttpScenario::get(MEMBERS_API_KEY, Target::Hub, MEMBERS_PATH)
            .header("authorization", format!("Bearer {}", ctx.api_key))
            .quoted_against(&[MEMBERS_ACCESS, HEALTHZ])
            .goal(64, MEMBERS_ACCESS, 80.0, ">= 80% of the access-token GET")
            .in_section(MACHINE),
        HttpScenario::get(VALIDATE, Target::Hub, VALIDATE_PATH)
            .header("authorization", format!("Bearer {}", ctx.instance_token))
            .header("origin", ctx.instance_origin.clone())
            .quoted_against(&[HEALTHZ])
            .in_section(MACHINE),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_request_with_host_headers_and_body() {
        let sc = HttpScenario::new("x", Target::Hub, Method::POST, "/a?b=1")
            .header("authorization", "Bearer t")
            .body("{}");
        let req = sc.request.build("127.0.0.1:80").unwrap();
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri(), "/a?b=1");
        assert_eq!(req.headers()["host"], "127.0.0.1:80");
        assert_eq!(req.headers()["authorization"], "Bearer t");
    }

    #[test]
    fn every_copy_of_a_prepared_request_is_the_whole_request() {
        use http_body_util::BodyExt;

        let sc = HttpScenario::new("x", Target::Hub, Method::POST, "/a?b=1")
            .header("authorization", "Bearer t")
            .body("{\"k\":1}");
        let prepared = sc.request.prepare("127.0.0.1:80").unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for _ in 0..2 {
            let req = prepared.request();
            assert_eq!(req.method(), Method::POST);
            assert_eq!(req.uri(), "/a?b=1");
            assert_eq!(req.headers()["host"], "127.0.0.1:80");
            assert_eq!(req.headers()["authorization"], "Bearer t");
            assert_eq!(req.headers().len(), 2);
            let body = runtime
                .block_on(req.into_body().collect())
                .unwrap()
                .to_bytes();
            assert_eq!(&body[..], b"{\"k\":1}");
        }
        assert!(
            HttpScenario::get("bad", Target::Hub, "no spaces allowed")
                .request
                .prepare("h:1")
                .is_err()
        );
    }

    #[test]
    fn sso_request_is_json_with_escaped_token() {
        let req = sso_request("a\"b").build("h:1").unwrap();
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri(), SSO_PATH);
        assert_eq!(req.headers()["content-type"], "application/json");
        let body: serde_json::Value = serde_json::from_str(&sso_body("a\"b")).unwrap();
        assert_eq!(body["chatwoot_access_token"], "a\"b");
        assert_eq!(body["token_delivery"], "body");
    }

    #[test]
    fn me_is_authenticated_and_targeted() {
        let ctx = Context {
            chatwoot_access_token: "cw".into(),
            hub_access_token: "v4.local.x".into(),
            ..Context::default()
        };
        let all = http_scenarios(&ctx);
        let me = all.iter().find(|s| s.name == ME).unwrap();
        let req = me.request.build("h:1").unwrap();
        assert_eq!(req.headers()["authorization"], "Bearer v4.local.x");
        assert_eq!(me.section, IAM);
        assert_eq!(me.goals.len(), 1);
        assert_eq!(me.goals[0].connections, 64);
        // A goal's reference must be quoted, or its percentage would never be computed.
        for sc in &all {
            for goal in &sc.goals {
                assert!(sc.quoted_against.contains(&goal.of), "{}", sc.name);
            }
        }
    }

    #[test]
    fn machine_credential_rows_carry_their_credentials() {
        let ctx = Context {
            hub_access_token: "v4.local.access".into(),
            api_key: "whp_abc_def".into(),
            instance_token: "v4.local.instance".into(),
            instance_origin: "http://127.0.0.1:1".into(),
            ..Context::default()
        };
        let all = http_scenarios(&ctx);
        let row = |name: &str| all.iter().find(|s| s.name == name).unwrap();
        let key = row(MEMBERS_API_KEY).request.build("h:1").unwrap();
        assert_eq!(key.headers()["authorization"], "Bearer whp_abc_def");
        let access = row(MEMBERS_ACCESS).request.build("h:1").unwrap();
        assert_eq!(
            key.uri(),
            access.uri(),
            "the same GET with both credentials"
        );
        let goal = &row(MEMBERS_API_KEY).goals[0];
        assert_eq!((goal.of.as_str(), goal.min_percent), (MEMBERS_ACCESS, 80.0));
        let validate = row(VALIDATE).request.build("h:1").unwrap();
        assert_eq!(validate.headers()["origin"], "http://127.0.0.1:1");
        assert_eq!(
            validate.headers()["authorization"],
            "Bearer v4.local.instance"
        );
        let body: serde_json::Value =
            serde_json::from_str(&instance_token_body("http://127.0.0.1:1")).unwrap();
        assert_eq!(body["origin"], "http://127.0.0.1:1");
        assert_eq!(body["ttl_minutes"], 60);
    }

    #[test]
    fn names_are_unique() {
        let all = http_scenarios(&Context::default());
        let mut names: Vec<_> = all.iter().map(|s| s.name.as_str()).collect();
        names.push(SELECT_1);
        let before = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(before, names.len());
    }
}
