//! [`ProviderClients`]: the shared reqwest client, the one path every provider call takes
//! (URL building, the address guard, bounded body reads, failure mapping) and the
//! [`ProviderProbe`] implementation that dispatches on the provider type.

use std::collections::HashMap;
use std::error::Error as _;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::redirect::{Attempt, Policy};
use reqwest::{Method, StatusCode};
use url::Url;
use whatpro_inbox::{ProbeOutcome, ProbeReport, ProbeRequest, ProviderProbe, ProviderType};
use whatpro_netguard::{ResolveRefused, check_redirect, guarded_client_builder};

use crate::verdict::Verdict;
use crate::{cloud, evolution, uazapi, wppconnect, zapi};

/// Largest answer body read; a larger 2xx answer is a `BadAnswer`, a larger error answer is
/// cut (status endpoints answer a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Upper bound on establishing a connection (the probe timeout applies when it is shorter).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Most WPPConnect tokens kept in memory; the cache is emptied when it would grow past this.
pub const MAX_CACHED_TOKENS: usize = 100_000;

/// How probes talk to providers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSettings {
    /// Bound on one whole probe, token generation included (`HUB_HEALTH_PROBE_TIMEOUT_MS`,
    /// default 5 s).
    pub timeout: Duration,
    /// Let base URLs reach loopback/private addresses (`HUB_ALLOW_PRIVATE_UPSTREAMS`).
    pub allow_private: bool,
    /// Idle keep-alive connections kept per provider host (default 32).
    pub max_idle_per_host: usize,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            allow_private: false,
            max_idle_per_host: 32,
        }
    }
}

/// The HTTP client could not be built (e.g. the TLS backend failed to initialise).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the provider HTTP client: {0}")]
pub struct BuildError(String);

/// The Hub's clients for the providers' status endpoints: one shared, SSRF-guarded reqwest
/// client (connection pool included) for every provider and tenant, plus the WPPConnect
/// tokens issued so far. Cheap to clone; build it once at start-up.
///
/// Redirects are followed only to the same host (e.g. http → https) and within
/// `whatpro_netguard`'s rules: credentials travel in custom headers that reqwest would carry
/// to another host.
#[derive(Clone)]
pub struct ProviderClients {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    settings: ProbeSettings,
    /// WPPConnect tokens by `base \n session \n secret_key`.
    tokens: Mutex<HashMap<String, Arc<str>>>,
}

impl fmt::Debug for ProviderClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderClients")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// The redirect policy: netguard's checks, and only to the host of the first URL.
fn same_host_policy(allow_private: bool) -> Policy {
    Policy::custom(move |attempt: Attempt<'_>| {
        if let Err(refused) = check_redirect(attempt.url(), attempt.previous().len(), allow_private)
        {
            return attempt.error(refused);
        }
        let same_host = attempt
            .previous()
            .first()
            .is_some_and(|first| first.host_str() == attempt.url().host_str());
        if same_host {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

impl ProviderClients {
    /// Builds the shared client.
    ///
    /// # Errors
    /// [`BuildError`] when reqwest cannot build a client.
    pub fn new(settings: ProbeSettings) -> Result<Self, BuildError> {
        let http = guarded_client_builder(settings.allow_private)
            .redirect(same_host_policy(settings.allow_private))
            .user_agent(concat!("whatpro-hub/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(settings.timeout.min(CONNECT_TIMEOUT))
            .timeout(settings.timeout)
            .pool_max_idle_per_host(settings.max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| BuildError(e.without_url().to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                settings,
                tokens: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &ProbeSettings {
        &self.inner.settings
    }

    /// How many WPPConnect tokens are cached.
    pub fn cached_tokens(&self) -> usize {
        self.lock_tokens().len()
    }

    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<str>>> {
        self.inner
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn cached_token(&self, key: &str) -> Option<Arc<str>> {
        self.lock_tokens().get(key).cloned()
    }

    pub(crate) fn store_token(&self, key: String, token: Arc<str>) {
        let mut tokens = self.lock_tokens();
        if tokens.len() >= MAX_CACHED_TOKENS && !tokens.contains_key(&key) {
            tokens.clear();
        }
        tokens.insert(key, token);
    }

    pub(crate) fn forget_token(&self, key: &str) {
        self.lock_tokens().remove(key);
    }

    /// Builds the endpoint URL and checks an IP-literal host against the guard (host names
    /// are checked by the resolver at connect time).
    pub(crate) fn endpoint(
        &self,
        base: &str,
        segments: &[Segment<'_>],
        query: Option<&str>,
    ) -> Result<Url, Verdict> {
        let url = build_url(base, segments, query)?;
        if let Some((addr, class)) =
            whatpro_netguard::forbidden_literal(&url, self.inner.settings.allow_private)
        {
            return Err(Verdict::owned(
                ProbeOutcome::Unreachable,
                format!("base_url points to {class} ({addr}), which is not allowed"),
            ));
        }
        Ok(url)
    }

    /// Sends one request and reads its answer (bounded by [`MAX_BODY_BYTES`]).
    pub(crate) async fn call(
        &self,
        method: Method,
        url: Url,
        headers: impl IntoIterator<Item = (HeaderName, HeaderValue)>,
    ) -> Result<Answer, Verdict> {
        let mut request = self.inner.http.request(method, url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let mut response = request.send().await.map_err(|e| self.failure(&e))?;
        let status = response.status();
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.failure(&e))? {
            if body.len().saturating_add(chunk.len()) > MAX_BODY_BYTES {
                if status.is_success() {
                    return Err(Verdict::new(ProbeOutcome::BadAnswer, "answer too large"));
                }
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            body: body.freeze(),
        })
    }

    /// A short reason for a failed exchange (never the URL: Z-API and WPPConnect carry
    /// secrets in the path).
    fn failure(&self, error: &reqwest::Error) -> Verdict {
        let mut source = error.source();
        while let Some(cause) = source {
            if cause.downcast_ref::<ResolveRefused>().is_some() {
                return Verdict::new(
                    ProbeOutcome::Unreachable,
                    "base_url resolves to an address that is not allowed",
                );
            }
            source = cause.source();
        }
        if error.is_timeout() {
            self.timed_out()
        } else if error.is_redirect() {
            Verdict::new(ProbeOutcome::BadAnswer, "redirect refused")
        } else if error.is_connect() {
            Verdict::new(ProbeOutcome::Unreachable, "connection failed")
        } else {
            Verdict::new(
                ProbeOutcome::Unreachable,
                "connection broken before a complete answer",
            )
        }
    }

    fn timed_out(&self) -> Verdict {
        Verdict::owned(
            ProbeOutcome::Unreachable,
            format!(
                "no answer within {} ms",
                self.inner.settings.timeout.as_millis()
            ),
        )
    }

    async fn dispatch(&self, request: &ProbeRequest<'_>) -> Verdict {
        match request.provider_type {
            ProviderType::Evolution => evolution::probe(self, request).await,
            ProviderType::Zapi => zapi::probe(self, request).await,
            ProviderType::Wppconnect => wppconnect::probe(self, request).await,
            ProviderType::Uazapi => uazapi::probe(self, request).await,
            ProviderType::WhatsappCloud => cloud::probe(self, request).await,
        }
    }
}

#[async_trait]
impl ProviderProbe for ProviderClients {
    async fn probe<'a>(&self, request: &ProbeRequest<'a>) -> ProbeReport {
        let started = Instant::now();
        let verdict =
            match tokio::time::timeout(self.inner.settings.timeout, self.dispatch(request)).await {
                Ok(verdict) => verdict,
                Err(_) => self.timed_out(),
            };
        let latency = started.elapsed();
        tracing::debug!(
            provider = request.provider_type.as_str(),
            outcome = ?verdict.outcome,
            latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            detail = %verdict.detail,
            "provider probed"
        );
        ProbeReport {
            outcome: verdict.outcome,
            latency,
            detail: verdict.detail.into_owned(),
        }
    }
}

/// A provider's answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

/// One path segment of an endpoint.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Segment<'a> {
    /// A fixed segment of the contract (ASCII, needs no encoding).
    Fixed(&'static str),
    /// Tenant input (instance name, token): percent-encoded.
    Input(&'a str),
}

/// `base` (query and fragment dropped, trailing `/` trimmed) + `/segment`... + `?query`.
pub(crate) fn build_url(
    base: &str,
    segments: &[Segment<'_>],
    query: Option<&str>,
) -> Result<Url, Verdict> {
    let base = base
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .trim()
        .trim_end_matches('/');
    let mut text = String::with_capacity(base.len() + 96);
    text.push_str(base);
    for segment in segments {
        text.push('/');
        match segment {
            Segment::Fixed(fixed) => text.push_str(fixed),
            Segment::Input(input) => {
                if input.is_empty() || *input == "." || *input == ".." {
                    return Err(Verdict::new(
                        ProbeOutcome::NotFound,
                        "instance name cannot be used in a URL",
                    ));
                }
                push_encoded(&mut text, input);
            }
        }
    }
    if let Some(query) = query {
        text.push('?');
        text.push_str(query);
    }
    let unusable = || {
        Verdict::new(
            ProbeOutcome::Unreachable,
            "base_url is not a usable http(s) URL",
        )
    };
    let url = Url::parse(&text).map_err(|_| unusable())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(unusable());
    }
    Ok(url)
}

/// Appends `input` percent-encoded: everything but RFC 3986 unreserved characters.
fn push_encoded(out: &mut String, input: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in input.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

/// A credential as a header value, marked sensitive (kept out of debug output).
///
/// # Errors
/// An `Unauthorized` verdict when the value cannot travel in a header (control characters).
pub(crate) fn secret_header(
    name: &'static str,
    value: &str,
) -> Result<(HeaderName, HeaderValue), Verdict> {
    let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
        Verdict::new(
            ProbeOutcome::Unauthorized,
            "a credential cannot be sent in a header",
        )
    })?;
    value.set_sensitive(true);
    Ok((HeaderName::from_static(name), value))
}

/// `Authorization: Bearer <token>`, marked sensitive.
pub(crate) fn bearer_header(token: &str) -> Result<(HeaderName, HeaderValue), Verdict> {
    let mut text = String::with_capacity(token.len() + 7);
    text.push_str("Bearer ");
    text.push_str(token.trim());
    secret_header("authorization", &text)
}

/// A required credential, or an `Unauthorized` verdict naming the key.
pub(crate) fn required<'c>(
    value: Option<&'c str>,
    missing: &'static str,
) -> Result<&'c str, Verdict> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Verdict::new(ProbeOutcome::Unauthorized, missing))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn encodes_tenant_segments() {
        let url = build_url(
            "https://evo.example.com/base/?x=1#f",
            &[
                Segment::Fixed("instance"),
                Segment::Fixed("connectionState"),
                Segment::Input("a b/c?d#e%f&ç"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "https://evo.example.com/base/instance/connectionState/a%20b%2Fc%3Fd%23e%25f%26%C3%A7"
        );
        let url = build_url(
            "http://127.0.0.1:1",
            &[Segment::Input("x.y-z_~")],
            Some("a=b,c"),
        )
        .unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:1/x.y-z_~?a=b,c");
    }

    #[test]
    fn refuses_dot_segments_and_unusable_bases() {
        for name in ["", ".", ".."] {
            let verdict =
                build_url("https://x.example", &[Segment::Input(name)], None).unwrap_err();
            assert_eq!(verdict.outcome, ProbeOutcome::NotFound, "{name:?}");
        }
        for base in ["", "ftp://x.example", "not a url", "mailto:a@b.example"] {
            let verdict = build_url(base, &[Segment::Fixed("x")], None).unwrap_err();
            assert_eq!(verdict.outcome, ProbeOutcome::Unreachable, "{base:?}");
        }
    }

    #[test]
    fn secret_headers_are_sensitive_and_checked() {
        let (name, value) = secret_header("apikey", " k ").unwrap();
        assert_eq!(name, "apikey");
        assert_eq!(value, "k");
        assert!(value.is_sensitive());
        assert_eq!(bearer_header("t").unwrap().1, "Bearer t");
        assert_eq!(
            secret_header("apikey", "a\nb").unwrap_err().outcome,
            ProbeOutcome::Unauthorized
        );
        assert!(required(Some("  "), "x").is_err());
        assert_eq!(required(Some(" v "), "x").unwrap(), "v");
    }

    #[test]
    fn default_settings() {
        let settings = ProbeSettings::default();
        assert_eq!(settings.timeout, Duration::from_secs(5));
        assert!(!settings.allow_private);
        assert_eq!(settings.max_idle_per_host, 32);
    }

    #[tokio::test]
    async fn refuses_forbidden_ip_literals_before_any_call() {
        let clients = ProviderClients::new(ProbeSettings::default()).unwrap();
        let verdict = clients
            .endpoint("http://10.0.0.5:8080", &[Segment::Fixed("x")], None)
            .unwrap_err();
        assert_eq!(verdict.outcome, ProbeOutcome::Unreachable);
        assert_eq!(
            verdict.detail,
            "base_url points to a private address (10.0.0.5), which is not allowed"
        );
        let open = ProviderClients::new(ProbeSettings {
            allow_private: true,
            ..ProbeSettings::default()
        })
        .unwrap();
        assert!(
            open.endpoint("http://10.0.0.5:8080", &[Segment::Fixed("x")], None)
                .is_ok()
        );
    }
}
