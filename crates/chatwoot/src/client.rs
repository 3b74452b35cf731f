//! [`ChatwootClient`] and the single path every call takes ([`ChatwootClient::send`]):
//! URL joining, credential headers, timeouts, the retry of idempotent calls, status mapping,
//! a bounded body read, and tracing.

use std::fmt;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;
use whatpro_iam::ChatwootCredential;

use crate::error::ChatwootError;

/// Pause before the retry of an idempotent call.
pub const RETRY_DELAY: Duration = Duration::from_millis(200);

/// Largest successful answer body read (larger answers are [`ChatwootError::Decode`]).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// How much of an error answer is read to find Chatwoot's message.
const MAX_ERROR_BODY_BYTES: usize = 16 * 1024;

/// Longest Chatwoot error message kept in a [`ChatwootError`].
const MAX_MESSAGE_CHARS: usize = 200;

/// How the client talks to Chatwoot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// Bound on establishing a connection (default 2 s).
    pub connect_timeout: Duration,
    /// Bound on one attempt, from connecting until the body is read (default 5 s).
    pub request_timeout: Duration,
    /// Extra attempts for idempotent calls (GET) after a connect error, a timeout, or a
    /// 502/503/504, each after [`RETRY_DELAY`] (default 1).
    pub retries: u32,
    /// `User-Agent` (default `whatpro-hub/<version>`).
    pub user_agent: String,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            retries: 1,
            user_agent: format!("whatpro-hub/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// How a call proves who it acts for.
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    /// A personal (or bot) API token: header `api_access_token`.
    ApiToken(&'a str),
    /// devise_token_auth session headers.
    Devise {
        access_token: &'a str,
        client: &'a str,
        uid: &'a str,
    },
}

impl<'a> From<&'a ChatwootCredential> for Auth<'a> {
    fn from(credential: &'a ChatwootCredential) -> Self {
        match credential {
            ChatwootCredential::AccessToken(token) => Auth::ApiToken(token),
            ChatwootCredential::Session {
                access_token,
                client,
                uid,
            } => Auth::Devise {
                access_token,
                client,
                uid,
            },
        }
    }
}

impl Auth<'_> {
    /// The secret values, to keep them out of error messages.
    fn secrets(&self) -> Vec<&str> {
        match self {
            Auth::ApiToken(token) => vec![token],
            Auth::Devise {
                access_token,
                client,
                ..
            } => vec![access_token, client],
        }
    }

    /// The credential headers (marked sensitive). An empty value, or one that cannot be a
    /// header value, can never be valid: [`ChatwootError::Unauthorized`] without a call.
    fn headers(&self) -> Result<HeaderMap, ChatwootError> {
        let mut headers = HeaderMap::new();
        match self {
            Auth::ApiToken(token) => {
                insert(&mut headers, "api_access_token", token)?;
            }
            Auth::Devise {
                access_token,
                client,
                uid,
            } => {
                insert(&mut headers, "access-token", access_token)?;
                insert(&mut headers, "client", client)?;
                insert(&mut headers, "uid", uid)?;
                headers.insert(
                    HeaderName::from_static("token-type"),
                    HeaderValue::from_static("Bearer"),
                );
            }
        }
        Ok(headers)
    }
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) -> Result<(), ChatwootError> {
    let refused = || ChatwootError::Unauthorized { message: None };
    if value.trim().is_empty() {
        return Err(refused());
    }
    let mut value = HeaderValue::from_str(value).map_err(|_| refused())?;
    value.set_sensitive(true);
    headers.insert(HeaderName::from_static(name), value);
    Ok(())
}

/// The reqwest client the Hub uses to talk to Chatwoot. Cheap to clone (shares its
/// connection pool).
#[derive(Clone)]
pub struct ChatwootClient {
    http: reqwest::Client,
    base: Url,
    request_timeout: Duration,
    retries: u32,
}

impl fmt::Debug for ChatwootClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut base = self.base.clone();
        // Never show credentials embedded in the URL.
        let _ = base.set_username("");
        let _ = base.set_password(None);
        f.debug_struct("ChatwootClient")
            .field("base", &base.as_str())
            .field("request_timeout", &self.request_timeout)
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
}

/// Why one attempt got no answer.
struct Transport {
    reason: String,
    retryable: bool,
}

/// How one attempt ended.
enum Attempt {
    Answer(StatusCode, Bytes),
    TooLarge,
    Failed(Transport),
}

impl ChatwootClient {
    /// A client for the Chatwoot at `base` (`CHATWOOT_URL`; it may carry a path prefix such as
    /// `https://x.example/chat/`, with or without the trailing slash). Query and fragment of
    /// `base` are dropped.
    ///
    /// # Errors
    /// [`ChatwootError::Config`] when `base` is not an `http(s)` URL with a host, or the HTTP
    /// client cannot be built (e.g. an invalid `user_agent`).
    pub fn new(mut base: Url, settings: ClientSettings) -> Result<Self, ChatwootError> {
        if !matches!(base.scheme(), "http" | "https") {
            return Err(ChatwootError::Config(format!(
                "the Chatwoot URL must be http or https, not {}",
                base.scheme()
            )));
        }
        if base.cannot_be_a_base() || base.host_str().is_none_or(str::is_empty) {
            return Err(ChatwootError::Config(
                "the Chatwoot URL has no host".to_owned(),
            ));
        }
        base.set_query(None);
        base.set_fragment(None);
        let http = reqwest::Client::builder()
            .user_agent(settings.user_agent.as_str())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            // Credentials travel in custom headers that reqwest would not strip on a
            // cross-host redirect: never follow one.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                ChatwootError::Config(format!("cannot build the HTTP client: {}", e.without_url()))
            })?;
        Ok(Self {
            http,
            base,
            request_timeout: settings.request_timeout,
            retries: settings.retries,
        })
    }

    /// The base URL calls are joined to.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `base` + `path` (segments of `path` appended to the base path, each percent-encoded).
    pub(crate) fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .extend(path.split('/').filter(|s| !s.is_empty()));
        }
        url
    }

    /// GETs `path` and parses the JSON answer (unknown fields ignored by the target types).
    ///
    /// # Errors
    /// As [`send`](Self::send), plus [`ChatwootError::Decode`] for an unparseable body.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        auth: Auth<'_>,
    ) -> Result<T, ChatwootError> {
        let body = self.send(Method::GET, path, auth, None).await?;
        parse_json(&body)
    }

    /// Sends one call and returns the body of its 2xx answer. Every Chatwoot call goes
    /// through here.
    ///
    /// Each attempt is bounded by the request timeout; GET and HEAD are tried again (up to
    /// `retries` times, after [`RETRY_DELAY`]) on connect errors, timeouts and 502/503/504.
    ///
    /// # Errors
    /// 401 → [`ChatwootError::Unauthorized`]; other non-2xx → [`ChatwootError::Status`];
    /// no answer → [`ChatwootError::Unavailable`]; an oversized body →
    /// [`ChatwootError::Decode`].
    #[tracing::instrument(
        name = "chatwoot.call",
        skip_all,
        fields(chatwoot.method = %method, chatwoot.path = path)
    )]
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<&Value>,
    ) -> Result<Bytes, ChatwootError> {
        let url = self.url(path);
        let mut headers = auth.headers()?;
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let body = match body {
            Some(value) => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                let bytes = serde_json::to_vec(value).map_err(|e| {
                    ChatwootError::Config(format!("cannot encode the request body: {e}"))
                })?;
                Some(Bytes::from(bytes))
            }
            None => None,
        };
        let idempotent = matches!(method, Method::GET | Method::HEAD);
        let attempts = if idempotent {
            self.retries.saturating_add(1)
        } else {
            1
        };

        let mut attempt: u32 = 1;
        loop {
            let started = Instant::now();
            let outcome = self
                .attempt(method.clone(), url.clone(), headers.clone(), body.clone())
                .await;
            let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let retry = attempt < attempts;
            match outcome {
                Attempt::Answer(status, bytes) => {
                    tracing::debug!(
                        status = status.as_u16(),
                        latency_ms,
                        attempt,
                        "chatwoot answered"
                    );
                    let retryable = matches!(
                        status,
                        StatusCode::BAD_GATEWAY
                            | StatusCode::SERVICE_UNAVAILABLE
                            | StatusCode::GATEWAY_TIMEOUT
                    );
                    if !(retryable && retry) {
                        return answer(status, bytes, auth);
                    }
                }
                Attempt::TooLarge => {
                    tracing::debug!(latency_ms, attempt, "chatwoot answer too large");
                    return Err(ChatwootError::Decode(format!(
                        "the answer is larger than {MAX_BODY_BYTES} bytes"
                    )));
                }
                Attempt::Failed(failure) => {
                    tracing::debug!(
                        error = failure.reason.as_str(),
                        latency_ms,
                        attempt,
                        "chatwoot call failed"
                    );
                    if !(failure.retryable && retry) {
                        return Err(ChatwootError::Unavailable(failure.reason));
                    }
                }
            }
            tokio::time::sleep(RETRY_DELAY).await;
            attempt += 1;
        }
    }

    /// One attempt, bounded by the request timeout (reqwest's own, and a tokio one around
    /// the body read as a backstop).
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
                        return Ok(Attempt::TooLarge);
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
            Ok(Err(error)) => Attempt::Failed(self.transport(&error)),
            Err(_) => Attempt::Failed(self.timed_out()),
        }
    }

    fn timed_out(&self) -> Transport {
        Transport {
            reason: format!("timed out after {} ms", self.request_timeout.as_millis()),
            retryable: true,
        }
    }

    /// A short reason (no URL, no headers) and whether a retry may help.
    fn transport(&self, error: &reqwest::Error) -> Transport {
        if error.is_timeout() {
            self.timed_out()
        } else if error.is_connect() {
            Transport {
                reason: "connection failed".to_owned(),
                retryable: true,
            }
        } else {
            Transport {
                reason: "connection broken before a complete answer".to_owned(),
                retryable: false,
            }
        }
    }
}

/// Maps a final answer: 2xx → its body, 401 → `Unauthorized`, else `Status`.
fn answer(status: StatusCode, body: Bytes, auth: Auth<'_>) -> Result<Bytes, ChatwootError> {
    if status.is_success() {
        return Ok(body);
    }
    let message = error_message(&body, &auth.secrets());
    if status == StatusCode::UNAUTHORIZED {
        Err(ChatwootError::Unauthorized { message })
    } else {
        Err(ChatwootError::Status {
            status: status.as_u16(),
            message,
        })
    }
}

/// Chatwoot's error message, read like its dashboard does: `message`, then `error`, then
/// `errors[0]`. Shortened, and dropped if it contains any of `secrets`.
fn error_message(body: &[u8], secrets: &[&str]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let text = ["message", "error"]
        .iter()
        .find_map(|key| value.get(key).and_then(Value::as_str))
        .or_else(|| value.get("errors")?.get(0)?.as_str())?
        .trim();
    if text.is_empty() || secrets.iter().any(|s| !s.is_empty() && text.contains(s)) {
        return None;
    }
    Some(text.chars().take(MAX_MESSAGE_CHARS).collect())
}

/// Parses a JSON body; the error names only the kind and position, never the content.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ChatwootError> {
    serde_json::from_slice(body).map_err(|e| {
        let kind = match e.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "unexpected JSON shape",
            serde_json::error::Category::Eof => "truncated JSON",
        };
        ChatwootError::Decode(format!("{kind} (line {}, column {})", e.line(), e.column()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> ChatwootClient {
        ChatwootClient::new(Url::parse(base).unwrap(), ClientSettings::default()).unwrap()
    }

    #[test]
    fn joins_paths_under_a_prefix() {
        for (base, expected) in [
            ("http://cw.example", "http://cw.example/api/v1/profile"),
            ("http://cw.example/", "http://cw.example/api/v1/profile"),
            (
                "https://x.example/chat/",
                "https://x.example/chat/api/v1/profile",
            ),
            (
                "https://x.example/chat",
                "https://x.example/chat/api/v1/profile",
            ),
            (
                "https://x.example/a/b/?q=1#f",
                "https://x.example/a/b/api/v1/profile",
            ),
        ] {
            assert_eq!(client(base).url("/api/v1/profile").as_str(), expected);
        }
        assert_eq!(
            client("http://cw.example/chat/")
                .url("auth/validate_token")
                .path(),
            "/chat/auth/validate_token"
        );
    }

    #[test]
    fn path_segments_cannot_escape() {
        let url = client("http://cw.example/chat/").url("/api/v1/x?y=1/..");
        assert_eq!(url.query(), None);
        assert!(url.path().starts_with("/chat/api/v1/"));
    }

    #[test]
    fn rejects_bad_bases() {
        for base in ["ftp://cw.example/", "mailto:a@b.example", "file:///tmp/x"] {
            let result = ChatwootClient::new(Url::parse(base).unwrap(), ClientSettings::default());
            assert!(matches!(result, Err(ChatwootError::Config(_))), "{base}");
        }
    }

    #[test]
    fn debug_hides_url_credentials() {
        let c = client("https://user:pw@x.example/chat/");
        let shown = format!("{c:?}");
        assert!(!shown.contains("pw"), "{shown}");
        assert!(!shown.contains("user"), "{shown}");
    }

    #[test]
    fn default_settings() {
        let s = ClientSettings::default();
        assert_eq!(s.connect_timeout, Duration::from_secs(2));
        assert_eq!(s.request_timeout, Duration::from_secs(5));
        assert_eq!(s.retries, 1);
        assert_eq!(
            s.user_agent,
            format!("whatpro-hub/{}", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn reads_error_messages_like_the_dashboard() {
        let m = |body: &str| error_message(body.as_bytes(), &["sekret"]);
        assert_eq!(m(r#"{"message":"a","error":"b"}"#).as_deref(), Some("a"));
        assert_eq!(
            m(r#"{"error":"Invalid Access Token"}"#).as_deref(),
            Some("Invalid Access Token")
        );
        assert_eq!(
            m(r#"{"success":false,"errors":["Invalid login credentials"]}"#).as_deref(),
            Some("Invalid login credentials")
        );
        assert_eq!(m("Retry later\n"), None);
        assert_eq!(m(r#"{"error":"token sekret is bad"}"#), None);
        assert_eq!(
            m(&format!(r#"{{"error":"{}"}}"#, "x".repeat(500))).map(|s| s.len()),
            Some(MAX_MESSAGE_CHARS)
        );
    }

    #[test]
    fn credential_headers() {
        let h = Auth::ApiToken("tok").headers().unwrap();
        assert_eq!(h.get("api_access_token").unwrap(), "tok");
        assert!(h.get("api_access_token").unwrap().is_sensitive());
        let h = Auth::Devise {
            access_token: "a",
            client: "c",
            uid: "u@x.example",
        }
        .headers()
        .unwrap();
        assert_eq!(h.get("access-token").unwrap(), "a");
        assert_eq!(h.get("client").unwrap(), "c");
        assert_eq!(h.get("uid").unwrap(), "u@x.example");
        assert_eq!(h.get("token-type").unwrap(), "Bearer");
        assert!(
            Auth::ApiToken("  ")
                .headers()
                .unwrap_err()
                .is_unauthorized()
        );
        assert!(
            Auth::ApiToken("a\nb")
                .headers()
                .unwrap_err()
                .is_unauthorized()
        );
    }

    #[test]
    fn decode_errors_do_not_echo_content() {
        let e = parse_json::<u32>(br#""kZ8yX7wV6uT5sR4qP3oN2mLk""#).unwrap_err();
        assert!(!e.to_string().contains("kZ8y"), "{e}");
        assert!(matches!(
            parse_json::<u32>(b"<html>"),
            Err(ChatwootError::Decode(_))
        ));
    }
}
