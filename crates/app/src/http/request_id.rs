//! `X-Request-Id`: kept from the client when it is 1-128 characters of `[A-Za-z0-9._-]`,
//! otherwise a new UUID v7. The id is put in the request extensions, in a task-local (so error
//! bodies built far from the request can include it) and on every response.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};

/// The response and request header carrying the id.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static CURRENT: RequestId;
}

/// The id of the request being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn from_header(value: Option<&HeaderValue>) -> Self {
        value
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_acceptable(v))
            .map_or_else(
                || Self(uuid::Uuid::now_v7().to_string()),
                |v| Self(v.to_owned()),
            )
    }
}

/// Whether a client-supplied id is kept.
pub fn is_acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The id of the request being served on this task, or a fresh one outside any request.
pub fn current() -> String {
    CURRENT
        .try_with(|id| id.0.clone())
        .unwrap_or_else(|_| uuid::Uuid::now_v7().to_string())
}

/// Middleware: assigns the id and stamps it on the response (including error responses).
pub async fn assign(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = RequestId::from_header(req.headers().get(&HEADER));
    req.extensions_mut().insert(id.clone());
    let header = HeaderValue::from_str(id.as_str()).ok();
    let mut res = CURRENT.scope(id, next.call(req)).await?;
    if let Some(value) = header {
        res.headers_mut().insert(HEADER, value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_sane_tokens_only() {
        assert!(is_acceptable("abc-123_X.y"));
        assert!(is_acceptable(&"a".repeat(128)));
        assert!(!is_acceptable(""));
        assert!(!is_acceptable(&"a".repeat(129)));
        assert!(!is_acceptable("has space"));
        assert!(!is_acceptable("semi;colon"));
        assert!(!is_acceptable("ümlaut"));
    }
}
