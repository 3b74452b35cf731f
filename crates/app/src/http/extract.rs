//! Extractor configuration so that malformed bodies, paths and queries get the one error body,
//! plus the fallback for unknown routes and wrong methods.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, HttpResponse, ResponseError, web};

use super::error::ApiError;
use crate::state::AppState;

/// JSON bodies: size limit, and 400/413/415/422 with our codes.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| json_error(err).into())
}

/// Raw bodies (`Bytes`, `String`): the same size limit.
pub fn payload_config(limit: usize) -> web::PayloadConfig {
    web::PayloadConfig::new(limit)
}

/// Path parameters: 400 `invalid_path`.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err: PathError, _req| {
        ApiError::bad_request(
            "invalid_path",
            format!("a path parameter is not valid: {err}"),
        )
        .into()
    })
}

/// Query strings: 400 `invalid_query`.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
        let detail = match &err {
            QueryPayloadError::Deserialize(e) => e.to_string(),
            other => other.to_string(),
        };
        ApiError::bad_request(
            "invalid_query",
            format!("the query string is not valid: {detail}"),
        )
        .into()
    })
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the request body is too large",
    )
}

fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            too_large()
        }
        JsonPayloadError::Payload(PayloadError::Overflow) => too_large(),
        JsonPayloadError::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON (Content-Type: application/json)",
        ),
        JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!("the body does not have the expected fields: {e}"),
        ),
        JsonPayloadError::Deserialize(e) => {
            ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
        }
        other => ApiError::bad_request(
            "invalid_body",
            format!("the body could not be read: {other}"),
        ),
    }
}

/// Fallback for requests no route took: 405 when the path exists with other methods, else 404.
pub async fn fallback(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(if req.resource_map().has_resource(req.path()) {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{} is not allowed on this path", req.method()),
        )
    } else {
        ApiError::not_found("no such route")
    })
}

/// Middleware: answers 413 `payload_too_large` at once when `Content-Length` announces a body
/// over the limit, whatever the route (bodies without a length are cut by the extractors).
pub async fn reject_oversized(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map_or(usize::MAX, |state| state.config.body_limit);
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|len| len > u64::try_from(limit).unwrap_or(u64::MAX)) {
        let response = too_large().error_response();
        return Ok(req.into_response(response).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}
