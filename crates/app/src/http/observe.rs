//! Per-request observability: the access log line, the Prometheus request metrics, and the
//! normalisation that gives every failure the one JSON error body (including framework errors
//! and panics).

use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, ResponseError, web};
use tracing::{Instrument, Span};

use super::error::ApiError;
use super::request_id::RequestId;
use crate::state::AppState;

/// Who the request acted for, set by authentication once it exists; read by the access log.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogIdentity {
    /// The tenant, when the request was scoped to one.
    pub account_id: Option<i64>,
    /// The Chatwoot user id of the caller, when a user made the request.
    pub user_id: Option<i64>,
}

/// Label used for requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// Middleware: writes the access log line and the request metrics after the response.
pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().to_string();
    // Matching the path against the route table again is not free (it walks the routes in
    // order): done once, for the span and the metrics.
    let route = req.match_pattern();
    let route = route.as_deref().unwrap_or(UNMATCHED);
    let span = request_span(&req, &method, route);
    let res = next.call(req).instrument(span.clone()).await?;

    let elapsed = started.elapsed();
    let status = res.status().as_u16();
    let (request_id, identity) = {
        let ext = res.request().extensions();
        (
            ext.get::<RequestId>()
                .map(|id| id.as_str().to_owned())
                .unwrap_or_default(),
            ext.get::<LogIdentity>().copied().unwrap_or_default(),
        )
    };
    span.record("http.status_code", status);
    if res.status().is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    if let Some(account_id) = identity.account_id {
        span.record("account_id", account_id);
    }
    if let Some(user_id) = identity.user_id {
        span.record("user_id", user_id);
    }
    if let Some(state) = state {
        state
            .metrics
            .observe_request(&method, route, status, elapsed.as_secs_f64());
    }
    tracing::info!(
        target: "http.access",
        parent: &span,
        request_id,
        method,
        route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        account_id = identity.account_id,
        user_id = identity.user_id,
        "request"
    );
    Ok(res)
}

/// The root span of a request, continuing the caller's trace when a `traceparent` came in.
fn request_span(req: &ServiceRequest, method: &str, route: &str) -> Span {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|id| id.as_str().to_owned())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "HTTP request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        http.route = %route,
        http.status_code = tracing::field::Empty,
        request_id = %request_id,
        account_id = tracing::field::Empty,
        user_id = tracing::field::Empty,
    );
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    whatpro_telemetry::continue_remote_trace(&span, header("traceparent"), header("tracestate"));
    span
}

/// Middleware: gives framework errors (extractor and payload errors that did not go through
/// our extractor configuration) the one error body. Handler errors are `ApiError`s already.
pub async fn normalize_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let res = next.call(req).await?;
    let foreign = res
        .response()
        .error()
        .filter(|e| e.as_error::<ApiError>().is_none())
        .map(to_api_error);
    match foreign {
        Some(api) => {
            let (http_req, _) = res.into_parts();
            Ok(ServiceResponse::new(http_req, api.error_response()).map_into_right_body())
        }
        None => Ok(res.map_into_left_body()),
    }
}

fn to_api_error(err: &Error) -> ApiError {
    let status = err.as_response_error().status_code();
    if status.is_server_error() {
        ApiError::internal(err)
    } else {
        ApiError::from_status(status, err.to_string())
    }
}
