//! Operations endpoints: liveness, readiness, metrics.

use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// How long the readiness probe waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Status of a probe.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthBody {
    /// `ok`.
    pub status: &'static str,
}

/// Readiness with the state of each dependency.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyBody {
    /// `ok`.
    pub status: &'static str,
    /// `ok` per dependency.
    pub checks: ReadyChecks,
}

/// Dependencies checked by `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyChecks {
    /// The PostgreSQL pool answered `SELECT 1`.
    pub database: &'static str,
}

/// Liveness: the process is up and serving.
#[utoipa::path(tag = "ops", responses((status = 200, body = HealthBody)))]
#[get("/healthz")]
pub async fn healthz() -> web::Json<HealthBody> {
    web::Json(HealthBody { status: "ok" })
}

/// Readiness: the database answers. 503 `database_unavailable` otherwise.
#[utoipa::path(
    tag = "ops",
    responses((status = 200, body = ReadyBody), (status = 503, body = ErrorBody))
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<web::Json<ReadyBody>, ApiError> {
    whatpro_db::ping(&state.pool, READY_TIMEOUT)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "readiness check failed");
            ApiError::unavailable("database_unavailable", "the database is not reachable")
                .with_retry_after(5)
        })?;
    Ok(web::Json(ReadyBody {
        status: "ok",
        checks: ReadyChecks { database: "ok" },
    }))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(tag = "ops", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let status = whatpro_db::pool_status(&state.pool);
    state.metrics.set_pool(status.idle, status.in_use);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}
