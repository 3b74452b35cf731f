//! The one error body of the API and the single place where error kinds become statuses.
//!
//! `{"code": "snake_case", "message": "sentence", "request_id": "...", "details": [...]?}`

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;
use whatpro_kernel::{Classify, DetailValue, ErrorKind};

use super::request_id;

/// The body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `invalid_json`.
    pub code: String,
    /// A human sentence; for 500 it is only "internal error".
    pub message: String,
    /// The request id, also sent as `X-Request-Id`.
    pub request_id: String,
    /// Extra structured facts (validation problems, quota numbers ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub details: Option<Vec<serde_json::Value>>,
}

/// An error on its way to becoming an HTTP response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Option<Vec<serde_json::Value>>,
    retry_after_secs: Option<u64>,
    /// The cause, logged for 5xx and never sent to the client.
    cause: Option<String>,
}

impl ApiError {
    /// An error with an explicit status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after_secs: None,
            cause: None,
        }
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 503 with a code.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// 500: the client sees "internal error"; `cause` goes to the log.
    pub fn internal(cause: impl fmt::Display) -> Self {
        let mut err = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error",
        );
        err.cause = Some(cause.to_string());
        err
    }

    /// Adds `details`.
    #[must_use]
    pub fn with_details(mut self, details: Vec<serde_json::Value>) -> Self {
        self.details = Some(details);
        self
    }

    /// Adds a `Retry-After` header (for 429 and 503).
    #[must_use]
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The status that will be sent.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The error that stands for a bare status produced outside our handlers (e.g. by a
    /// framework extractor), with a generic code for that status. 5xx other than 503 say only
    /// "internal error".
    pub fn from_status(status: StatusCode, message: impl Into<String>) -> Self {
        let code = match status.as_u16() {
            401 => "unauthenticated",
            403 => "forbidden",
            404 => "not_found",
            405 => "method_not_allowed",
            406 => "not_acceptable",
            408 => "request_timeout",
            409 => "conflict",
            411 => "length_required",
            413 => "payload_too_large",
            414 => "uri_too_long",
            415 => "unsupported_media_type",
            422 => "validation_failed",
            429 => "rate_limited",
            431 => "headers_too_large",
            503 => "unavailable",
            s if (400..500).contains(&s) => "bad_request",
            _ => return Self::internal(message.into()),
        };
        Self::new(status, code, message)
    }
}

/// The status for each kind of domain failure; the only such table in the Hub.
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::PaymentRequired => StatusCode::PAYMENT_REQUIRED,
        ErrorKind::Forbidden | ErrorKind::QuotaExceeded => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Upstream => StatusCode::BAD_GATEWAY,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl<E> From<E> for ApiError
where
    E: Classify + std::error::Error,
{
    fn from(err: E) -> Self {
        let kind = err.kind();
        if kind == ErrorKind::Internal {
            return Self::internal(error_chain(&err));
        }
        let mut api = Self::new(status_for(kind), err.code(), err.to_string());
        let facts = err.details();
        if !facts.is_empty() {
            let object: serde_json::Map<String, serde_json::Value> = facts
                .into_iter()
                .map(|(k, v)| {
                    let value = match v {
                        DetailValue::Int(n) => serde_json::Value::from(n),
                        DetailValue::Text(t) => serde_json::Value::from(t),
                    };
                    (k.to_owned(), value)
                })
                .collect();
            api.details = Some(vec![serde_json::Value::Object(object)]);
        }
        if matches!(kind, ErrorKind::Upstream | ErrorKind::Unavailable) {
            api.cause = Some(error_chain(&err));
        }
        api
    }
}

/// `error: cause: cause ...` on one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = request_id::current();
        if self.status.is_server_error() {
            tracing::error!(
                request_id = %request_id,
                code = self.code,
                cause = self.cause.as_deref().unwrap_or(&self.message),
                "request failed"
            );
        }
        let body = ErrorBody {
            code: self.code.to_owned(),
            message: self.message.clone(),
            request_id,
            details: self.details.clone(),
        };
        let mut response = HttpResponse::build(self.status).json(body);
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
