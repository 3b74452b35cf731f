//! [`AsaasClient`]: the endpoints the Hub uses, and the single path every call takes
//! ([`AsaasClient::send`]): URL joining, headers, timeouts, bounded retries, status mapping,
//! a bounded body read, and tracing.

use std::fmt;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use crate::error::{AsaasError, AsaasErrorItem};
use crate::types::{
    Customer, Deleted, ListPage, NewCustomer, NewSubscription, Payment, Subscription,
    SubscriptionUpdate,
};

/// Pause before the first retry; it doubles for each further retry (capped at one second).
pub const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// Largest successful answer body read (larger answers are [`AsaasError::Upstream`]).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Largest page size Asaas accepts on list endpoints.
pub const MAX_PAGE_SIZE: u32 = 100;

/// How much of an error answer is read to find Asaas' error list.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// Longest Asaas error description kept in an [`AsaasError`].
const MAX_MESSAGE_CHARS: usize = 300;

/// Longest back-off between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// How the client talks to Asaas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsaasSettings {
    /// Bound on establishing a connection (default 2 s).
    pub connect_timeout: Duration,
    /// Bound on one attempt, from connecting until the body is read (default 10 s).
    pub request_timeout: Duration,
    /// Extra attempts (default 1). GET, PUT and DELETE are tried again after a connect
    /// error, a timeout, a broken connection or a 502/503/504; POST only when the
    /// connection failed before the request was sent.
    pub retries: u32,
    /// `User-Agent` (default `WhatPro Hub`; Asaas requires one).
    pub user_agent: String,
}

impl Default for AsaasSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            retries: 1,
            user_agent: "WhatPro Hub".to_owned(),
        }
    }
}

/// The reqwest client the Hub uses to talk to Asaas API v3. Cheap to clone (shares its
/// connection pool). Its `Debug` output never shows the API key.
///
/// Every call sends `access_token`, `User-Agent`, `Content-Type: application/json` and
/// `Accept: application/json` (a body only with POST and PUT), bounds each attempt by the
/// request timeout, and retries as [`AsaasSettings::retries`] says.
///
/// # Errors of any call
/// 400/403/422 with Asaas' error list → [`AsaasError::Rejected`]; 401 →
/// [`AsaasError::Unauthorized`]; 404 → [`AsaasError::NotFound`]; 429 →
/// [`AsaasError::RateLimited`]; any other non-2xx, an oversized or unreadable 2xx body →
/// [`AsaasError::Upstream`]; no answer in time → [`AsaasError::Unavailable`].
#[derive(Clone)]
pub struct AsaasClient {
    http: reqwest::Client,
    base: Url,
    api_key: String,
    key_header: HeaderValue,
    request_timeout: Duration,
    retries: u32,
}

impl fmt::Debug for AsaasClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut base = self.base.clone();
        let _ = base.set_username("");
        let _ = base.set_password(None);
        f.debug_struct("AsaasClient")
            .field("base", &base.as_str())
            .field("api_key", &"<redacted>")
            .field("request_timeout", &self.request_timeout)
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
}

/// Why one attempt got no answer.
struct Failure {
    reason: String,
    /// The connection failed before anything was sent (safe to retry even a POST).
    before_send: bool,
}

/// How one attempt ended.
enum Attempt {
    Answer(StatusCode, Bytes),
    TooLarge(StatusCode),
    Failed(Failure),
}

impl AsaasClient {
    /// A client for the Asaas API at `base_url`, which includes the version
    /// (`https://api.asaas.com/v3`, `https://api-sandbox.asaas.com/v3`, or a simulator's URL).
    /// Query and fragment of `base_url` are dropped.
    ///
    /// # Errors
    /// [`AsaasError::Config`] when `base_url` is not an `http(s)` URL with a host, the key is
    /// empty or not a valid header value, or the HTTP client cannot be built.
    pub fn new(
        mut base_url: Url,
        api_key: String,
        settings: AsaasSettings,
    ) -> Result<Self, AsaasError> {
        if !matches!(base_url.scheme(), "http" | "https") {
            return Err(AsaasError::Config(format!(
                "the Asaas URL must be http or https, not {}",
                base_url.scheme()
            )));
        }
        if base_url.cannot_be_a_base() || base_url.host_str().is_none_or(str::is_empty) {
            return Err(AsaasError::Config("the Asaas URL has no host".to_owned()));
        }
        base_url.set_query(None);
        base_url.set_fragment(None);
        if api_key.trim().is_empty() {
            return Err(AsaasError::Config("the Asaas API key is empty".to_owned()));
        }
        let mut key_header = HeaderValue::from_str(&api_key).map_err(|_| {
            AsaasError::Config("the Asaas API key is not a valid header value".to_owned())
        })?;
        key_header.set_sensitive(true);
        let http = reqwest::Client::builder()
            .user_agent(settings.user_agent.as_str())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            // The key travels in a custom header reqwest would keep on a cross-host redirect.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                AsaasError::Config(format!("cannot build the HTTP client: {}", e.without_url()))
            })?;
        Ok(Self {
            http,
            base: base_url,
            api_key,
            key_header,
            request_timeout: settings.request_timeout,
            retries: settings.retries,
        })
    }

    /// The base URL calls are joined to.
    pub fn base(&self) -> &Url {
        &self.base
    }

    // ------------------------------------------------------------ customers

    /// The first non-deleted customer whose `externalReference` is exactly `reference`
    /// (`GET /customers?externalReference=`), if any.
    ///
    /// # Errors
    /// [`AsaasError::Config`] for an empty `reference` (it would match every customer);
    /// otherwise as any call (see [`AsaasClient`]).
    pub async fn find_customer_by_external_reference(
        &self,
        reference: &str,
    ) -> Result<Option<Customer>, AsaasError> {
        if reference.is_empty() {
            return Err(AsaasError::Config(
                "an empty external reference would match every customer".to_owned(),
            ));
        }
        let query = [
            ("externalReference", reference.to_owned()),
            ("limit", MAX_PAGE_SIZE.to_string()),
        ];
        let page: ListPage<Customer> = self.get(&["customers"], &query).await?;
        Ok(page
            .data
            .into_iter()
            .find(|c| !c.deleted && c.external_reference.as_deref() == Some(reference)))
    }

    /// Creates a customer (`POST /customers`). Asaas does not de-duplicate: look the
    /// customer up by external reference first.
    ///
    /// # Errors
    /// As any call (see [`AsaasClient`]); an invalid name or CPF/CNPJ is [`AsaasError::Rejected`].
    pub async fn create_customer(&self, customer: &NewCustomer) -> Result<Customer, AsaasError> {
        self.write(Method::POST, &["customers"], customer).await
    }

    /// One customer (`GET /customers/{id}`); deleted customers come back with `deleted`.
    ///
    /// # Errors
    /// [`AsaasError::NotFound`] for an unknown (or empty) id; otherwise as any call (see
    /// [`AsaasClient`]).
    pub async fn get_customer(&self, id: &str) -> Result<Customer, AsaasError> {
        self.get(&["customers", object_id(id)?], &[]).await
    }

    // ------------------------------------------------------------ subscriptions

    /// Creates a subscription (`POST /subscriptions`); Asaas creates its first payment
    /// right away (due on `next_due_date`).
    ///
    /// # Errors
    /// As any call (see [`AsaasClient`]); invalid fields are [`AsaasError::Rejected`].
    pub async fn create_subscription(
        &self,
        subscription: &NewSubscription,
    ) -> Result<Subscription, AsaasError> {
        self.write(Method::POST, &["subscriptions"], subscription)
            .await
    }

    /// One subscription (`GET /subscriptions/{id}`).
    ///
    /// # Errors
    /// [`AsaasError::NotFound`] for an unknown (or empty) id; otherwise as any call (see
    /// [`AsaasClient`]).
    pub async fn get_subscription(&self, id: &str) -> Result<Subscription, AsaasError> {
        self.get(&["subscriptions", object_id(id)?], &[]).await
    }

    /// Changes a subscription (`PUT /subscriptions/{id}`) and returns it as updated.
    ///
    /// # Errors
    /// [`AsaasError::NotFound`] for an unknown (or empty) id; invalid fields are
    /// [`AsaasError::Rejected`]; otherwise as any call (see [`AsaasClient`]).
    pub async fn update_subscription(
        &self,
        id: &str,
        update: &SubscriptionUpdate,
    ) -> Result<Subscription, AsaasError> {
        self.write(Method::PUT, &["subscriptions", object_id(id)?], update)
            .await
    }

    /// Cancels a subscription (`DELETE /subscriptions/{id}`); Asaas removes its pending
    /// payments.
    ///
    /// # Errors
    /// [`AsaasError::NotFound`] for an unknown (or empty) id; otherwise as any call (see
    /// [`AsaasClient`]).
    pub async fn delete_subscription(&self, id: &str) -> Result<Deleted, AsaasError> {
        let bytes = self
            .send(
                Method::DELETE,
                &["subscriptions", object_id(id)?],
                &[],
                None,
            )
            .await?;
        decode(&bytes)
    }

    /// One page of a subscription's payments (`GET /subscriptions/{id}/payments`).
    /// `limit` is clamped to 1..=100.
    ///
    /// # Errors
    /// [`AsaasError::NotFound`] for an unknown (or empty) id; otherwise as any call (see
    /// [`AsaasClient`]).
    pub async fn list_subscription_payments(
        &self,
        id: &str,
        offset: u32,
        limit: u32,
    ) -> Result<ListPage<Payment>, AsaasError> {
        let query = [
            ("offset", offset.to_string()),
            ("limit", limit.clamp(1, MAX_PAGE_SIZE).to_string()),
        ];
        self.get(&["subscriptions", object_id(id)?, "payments"], &query)
            .await
    }

    // ------------------------------------------------------------ payments

    /// One payment (`GET /payments/{id}`).
    ///
    /// # Errors
    /// [`AsaasError::NotFound`] for an unknown (or empty) id; otherwise as any call (see
    /// [`AsaasClient`]).
    pub async fn get_payment(&self, id: &str) -> Result<Payment, AsaasError> {
        self.get(&["payments", object_id(id)?], &[]).await
    }

    // ------------------------------------------------------------ plumbing

    async fn get<T: DeserializeOwned>(
        &self,
        path: &[&str],
        query: &[(&str, String)],
    ) -> Result<T, AsaasError> {
        let bytes = self.send(Method::GET, path, query, None).await?;
        decode(&bytes)
    }

    async fn write<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &[&str],
        body: &B,
    ) -> Result<T, AsaasError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| AsaasError::Config(format!("cannot encode the request body: {e}")))?;
        let bytes = self
            .send(method, path, &[], Some(Bytes::from(body)))
            .await?;
        decode(&bytes)
    }

    /// `base` + the path segments (each percent-encoded) + the query.
    fn url(&self, path: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    /// Sends one call and returns the body of its 2xx answer. Every Asaas call goes
    /// through here.
    ///
    /// Headers: `access_token`, `User-Agent`, `Content-Type: application/json`,
    /// `Accept: application/json`; a body only for POST and PUT. Each attempt is bounded by
    /// the request timeout. GET, PUT and DELETE are tried again (up to `retries` times, with
    /// a doubling back-off from [`RETRY_BACKOFF`]) after a transport failure or a
    /// 502/503/504; POST only after a connect failure (nothing was sent).
    ///
    /// # Errors
    /// 400/403/422 with Asaas' error list → [`AsaasError::Rejected`]; 401 →
    /// [`AsaasError::Unauthorized`]; 404 → [`AsaasError::NotFound`]; 429 →
    /// [`AsaasError::RateLimited`]; any other non-2xx or an oversized body →
    /// [`AsaasError::Upstream`]; no answer → [`AsaasError::Unavailable`].
    #[tracing::instrument(
        name = "asaas.call",
        skip_all,
        fields(asaas.method = %method, asaas.path = %path.join("/"))
    )]
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<Bytes>,
    ) -> Result<Bytes, AsaasError> {
        let url = self.url(path, query);
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("access_token"),
            self.key_header.clone(),
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        // Asaas' CDN answers 403 to a GET with a body: only POST and PUT carry one.
        let body = body.filter(|_| matches!(method, Method::POST | Method::PUT));
        let idempotent = matches!(method, Method::GET | Method::PUT | Method::DELETE);
        let attempts = self.retries.saturating_add(1);

        let mut attempt: u32 = 1;
        loop {
            let started = Instant::now();
            let outcome = self
                .attempt(method.clone(), url.clone(), headers.clone(), body.clone())
                .await;
            let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let more = attempt < attempts;
            match outcome {
                Attempt::Answer(status, bytes) => {
                    tracing::debug!(
                        status = status.as_u16(),
                        latency_ms,
                        attempt,
                        "asaas answered"
                    );
                    let retryable = idempotent
                        && matches!(
                            status,
                            StatusCode::BAD_GATEWAY
                                | StatusCode::SERVICE_UNAVAILABLE
                                | StatusCode::GATEWAY_TIMEOUT
                        );
                    if !(retryable && more) {
                        return answer(status, &bytes, &self.api_key);
                    }
                }
                Attempt::TooLarge(status) => {
                    tracing::debug!(latency_ms, attempt, "asaas answer too large");
                    return Err(AsaasError::Upstream {
                        status: status.as_u16(),
                        message: format!("the answer is larger than {MAX_BODY_BYTES} bytes"),
                    });
                }
                Attempt::Failed(failure) => {
                    tracing::debug!(
                        error = failure.reason.as_str(),
                        latency_ms,
                        attempt,
                        "asaas call failed"
                    );
                    let retryable = idempotent || failure.before_send;
                    if !(retryable && more) {
                        return Err(AsaasError::Unavailable(failure.reason));
                    }
                }
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// One attempt, bounded by the request timeout (reqwest's own, and a tokio one around
    /// the whole exchange as a backstop).
    async fn attempt(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Attempt {
        let mut request = self.http.request(method, url).headers(headers);
        if let Some(body) = body {
            request = request.body(body);
        }
        let exchange = async {
            let mut response = request.send().await?;
            let status = response.status();
            let (limit, strict) = if status.is_success() {
                (MAX_BODY_BYTES, true)
            } else {
                (MAX_ERROR_BODY_BYTES, false)
            };
            let mut buffer = BytesMut::new();
            while let Some(chunk) = response.chunk().await? {
                if buffer.len().saturating_add(chunk.len()) > limit {
                    if strict {
                        return Ok(Attempt::TooLarge(status));
                    }
                    let room = limit.saturating_sub(buffer.len());
                    buffer.extend_from_slice(chunk.get(..room).unwrap_or_default());
                    break;
                }
                buffer.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>(Attempt::Answer(status, buffer.freeze()))
        };
        match tokio::time::timeout(self.request_timeout, exchange).await {
            Ok(Ok(attempt)) => attempt,
            Ok(Err(error)) => Attempt::Failed(self.failure(&error)),
            Err(_) => Attempt::Failed(self.timed_out()),
        }
    }

    fn timed_out(&self) -> Failure {
        Failure {
            reason: format!("timed out after {} ms", self.request_timeout.as_millis()),
            before_send: false,
        }
    }

    /// A short reason (no URL, no headers) and whether nothing was sent.
    fn failure(&self, error: &reqwest::Error) -> Failure {
        if error.is_connect() {
            Failure {
                reason: "connection failed".to_owned(),
                before_send: true,
            }
        } else if error.is_timeout() {
            self.timed_out()
        } else {
            Failure {
                reason: "connection broken before a complete answer".to_owned(),
                before_send: false,
            }
        }
    }
}

/// Pause after failed attempt number `attempt` (1-based).
fn backoff(attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(4);
    RETRY_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

/// A path segment for an object id; an empty id names nothing.
fn object_id(id: &str) -> Result<&str, AsaasError> {
    if id.trim().is_empty() {
        Err(AsaasError::NotFound)
    } else {
        Ok(id)
    }
}

/// Maps a final answer to its body or an error.
fn answer(status: StatusCode, body: &Bytes, api_key: &str) -> Result<Bytes, AsaasError> {
    if status.is_success() {
        return Ok(body.clone());
    }
    let code = status.as_u16();
    match code {
        401 => return Err(AsaasError::Unauthorized),
        404 => return Err(AsaasError::NotFound),
        429 => return Err(AsaasError::RateLimited),
        _ => {}
    }
    let errors = error_items(body, api_key);
    if matches!(code, 400 | 403 | 422) && !errors.is_empty() {
        return Err(AsaasError::Rejected {
            status: code,
            errors,
        });
    }
    let message = errors
        .first()
        .map(|e| e.description.clone())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("unexpected status")
                .to_owned()
        });
    Err(AsaasError::Upstream {
        status: code,
        message,
    })
}

/// Asaas' error list `{"errors":[{"code","description"}]}`, shortened; any text that
/// contains the API key is replaced.
fn error_items(body: &[u8], api_key: &str) -> Vec<AsaasErrorItem> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let Some(items) = value.get("errors").and_then(Value::as_array) else {
        return Vec::new();
    };
    let clean = |text: Option<&str>| -> String {
        let text = text.unwrap_or_default().trim();
        if !api_key.is_empty() && text.contains(api_key) {
            return "[redacted]".to_owned();
        }
        text.chars().take(MAX_MESSAGE_CHARS).collect()
    };
    items
        .iter()
        .filter(|item| item.is_object())
        .map(|item| AsaasErrorItem {
            code: clean(item.get("code").and_then(Value::as_str)),
            description: clean(item.get("description").and_then(Value::as_str)),
        })
        .collect()
}

/// Parses a 2xx body; the error names only the kind and position, never the content.
fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, AsaasError> {
    serde_json::from_slice(body).map_err(|e| {
        let kind = match e.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "unexpected JSON shape",
            serde_json::error::Category::Eof => "truncated JSON",
        };
        AsaasError::Upstream {
            status: 200,
            message: format!(
                "unreadable answer: {kind} (line {}, column {})",
                e.line(),
                e.column()
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "$aact_hmlg_000MzkwODA2MWY2OGM3MWRlMDU2NWM3MzJlNzZmNGZhZGY6OjA";

    fn client(base: &str) -> AsaasClient {
        AsaasClient::new(
            Url::parse(base).unwrap(),
            KEY.to_owned(),
            AsaasSettings::default(),
        )
        .unwrap()
    }

    #[test]
    fn joins_paths_and_queries_under_v3() {
        for base in [
            "https://api.asaas.com/v3",
            "https://api.asaas.com/v3/",
            "https://api.asaas.com/v3?x=1#f",
        ] {
            assert_eq!(
                client(base).url(&["customers", "cus_1"], &[]).as_str(),
                "https://api.asaas.com/v3/customers/cus_1"
            );
        }
        let url = client("http://127.0.0.1:9/v3").url(
            &["customers"],
            &[("externalReference", "tenant 1&x=y".to_owned())],
        );
        assert_eq!(url.path(), "/v3/customers");
        assert_eq!(url.query(), Some("externalReference=tenant+1%26x%3Dy"));
        let url = client("http://127.0.0.1:9/v3").url(&["payments", "../x?y"], &[]);
        assert_eq!(url.path(), "/v3/payments/..%2Fx%3Fy");
    }

    #[test]
    fn rejects_bad_configuration() {
        let bad = |base: &str, key: &str| {
            AsaasClient::new(
                Url::parse(base).unwrap(),
                key.to_owned(),
                AsaasSettings::default(),
            )
            .unwrap_err()
        };
        assert!(matches!(
            bad("ftp://x.example/v3", KEY),
            AsaasError::Config(_)
        ));
        assert!(matches!(
            bad("https://x.example/v3", " "),
            AsaasError::Config(_)
        ));
        let e = bad("https://x.example/v3", "key\nwith newline");
        assert!(matches!(e, AsaasError::Config(_)));
        assert!(!e.to_string().contains("newline"), "{e}");
    }

    #[test]
    fn debug_hides_the_key() {
        let shown = format!("{:?}", client("https://u:pw@api.asaas.com/v3"));
        assert!(!shown.contains(KEY), "{shown}");
        assert!(!shown.contains("aact"), "{shown}");
        assert!(!shown.contains("pw"), "{shown}");
        assert!(shown.contains("api.asaas.com/v3"), "{shown}");
    }

    #[test]
    fn default_settings() {
        let s = AsaasSettings::default();
        assert_eq!(s.connect_timeout, Duration::from_secs(2));
        assert_eq!(s.request_timeout, Duration::from_secs(10));
        assert_eq!(s.retries, 1);
        assert_eq!(s.user_agent, "WhatPro Hub");
    }

    #[test]
    fn backoff_is_small_and_bounded() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(3), Duration::from_millis(400));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn maps_statuses() {
        let body = |s: &str| Bytes::from(s.to_owned());
        let errors = body(r#"{"errors":[{"code":"invalid_value","description":"d"}]}"#);
        let status = |n: u16| StatusCode::from_u16(n).unwrap();
        assert!(matches!(
            answer(status(400), &errors, KEY),
            Err(AsaasError::Rejected { status: 400, .. })
        ));
        assert!(matches!(
            answer(status(422), &errors, KEY),
            Err(AsaasError::Rejected { status: 422, .. })
        ));
        assert_eq!(
            answer(status(403), &body("<html>denied</html>"), KEY),
            Err(AsaasError::Upstream {
                status: 403,
                message: "Forbidden".into()
            })
        );
        assert_eq!(
            answer(status(401), &errors, KEY),
            Err(AsaasError::Unauthorized)
        );
        assert_eq!(
            answer(status(404), &body(""), KEY),
            Err(AsaasError::NotFound)
        );
        assert_eq!(
            answer(status(429), &body(""), KEY),
            Err(AsaasError::RateLimited)
        );
        assert_eq!(
            answer(status(500), &errors, KEY),
            Err(AsaasError::Upstream {
                status: 500,
                message: "d".into()
            })
        );
        assert_eq!(
            answer(status(418), &body("x"), KEY),
            Err(AsaasError::Upstream {
                status: 418,
                message: "I'm a teapot".into()
            })
        );
        assert!(answer(status(200), &body("{}"), KEY).is_ok());
    }

    #[test]
    fn error_texts_never_echo_the_key() {
        let body = format!(
            r#"{{"errors":[{{"code":"invalid_access_token","description":"{KEY} bad"}},"x"]}}"#
        );
        let items = error_items(body.as_bytes(), KEY);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].code, "invalid_access_token");
        assert_eq!(items[0].description, "[redacted]");
        let long = format!(
            r#"{{"errors":[{{"code":"c","description":"{}"}}]}}"#,
            "x".repeat(1000)
        );
        assert_eq!(
            error_items(long.as_bytes(), KEY)[0].description.len(),
            MAX_MESSAGE_CHARS
        );
    }

    #[test]
    fn decode_errors_do_not_echo_content() {
        let e = decode::<u32>(br#""kZ8yX7wV6uT5sR4qP3oN2mLk""#).unwrap_err();
        assert!(!e.to_string().contains("kZ8y"), "{e}");
        assert!(matches!(
            decode::<u32>(b"<html>"),
            Err(AsaasError::Upstream { status: 200, .. })
        ));
    }
}
