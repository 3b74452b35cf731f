//! Scenarios: what to send, to which server, and which ceilings the result is quoted against.
//!
//! Adding a scenario is one entry in [`http_scenarios`]:
//!
//! ```text
//! HttpScenario::get("hub GET /api/v1/me", Target::Hub, "/api/v1/me")
//!     .header("authorization", format!("Bearer {token}"))
//!     .quoted_against(&[MINIMAL_ACTIX]),
//! ```

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request};

/// Name of the minimal actix-web ceiling scenario.
pub const MINIMAL_ACTIX: &str = "actix minimal GET /";
/// Name of the raw `SELECT 1` ceiling scenario.
pub const SELECT_1: &str = "pg SELECT 1 (pool)";

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
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(self.path.as_str())
            .header(hyper::header::HOST, host);
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder.body(Full::new(self.body.clone()))
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
        }
    }

    /// Adds a request header.
    #[cfg_attr(not(test), allow(dead_code, reason = "API for upcoming scenarios"))]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.request.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the request body.
    #[cfg_attr(not(test), allow(dead_code, reason = "API for upcoming scenarios"))]
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.request.body = body.into();
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

/// Every HTTP scenario of the foundation run, in run order.
pub fn http_scenarios() -> Vec<HttpScenario> {
    vec![
        HttpScenario::get("hub GET /healthz", Target::Hub, "/healthz")
            .quoted_against(&[MINIMAL_ACTIX]),
        HttpScenario::get("hub GET /readyz", Target::Hub, "/readyz")
            .quoted_against(&[MINIMAL_ACTIX, SELECT_1]),
        HttpScenario::get(MINIMAL_ACTIX, Target::Minimal, "/").ceiling_labelled("ceiling (HTTP)"),
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
    fn names_are_unique() {
        let all = http_scenarios();
        let mut names: Vec<_> = all.iter().map(|s| s.name.as_str()).collect();
        names.push(SELECT_1);
        let before = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(before, names.len());
    }
}
