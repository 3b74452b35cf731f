//! Probe handlers mounted behind the real middleware stack, to exercise cross-cutting
//! behaviour (extractor errors, internal errors, panics, embed headers) that no product route
//! may trigger on purpose.

use actix_web::{HttpResponse, web};
use whatpro_app::http::ServiceConfig;
use whatpro_app::http::error::ApiError;

#[derive(serde::Deserialize)]
struct Shape {
    #[expect(dead_code, reason = "only its presence in the body is checked")]
    name: String,
}

#[derive(serde::Deserialize)]
struct ListQuery {
    limit: u32,
}

async fn json_probe(body: web::Json<Shape>) -> HttpResponse {
    let _ = body;
    HttpResponse::NoContent().finish()
}

async fn raw_probe(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok().body(format!("{}", body.len()))
}

async fn path_probe(id: web::Path<u32>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "id": *id }))
}

async fn query_probe(query: web::Query<ListQuery>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "limit": query.limit }))
}

async fn internal_probe() -> Result<HttpResponse, ApiError> {
    Err(ApiError::internal(
        "connection to 10.0.0.7 refused: password=hunter2",
    ))
}

async fn embed_probe() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html")
        .body("<p>embed</p>")
}

/// Mounts every probe.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/probe/json", web::post().to(json_probe))
        .route("/probe/raw", web::post().to(raw_probe))
        .route("/probe/items/{id}", web::get().to(path_probe))
        .route("/probe/list", web::get().to(query_probe))
        .route("/probe/internal", web::get().to(internal_probe))
        .route("/embed/probe", web::get().to(embed_probe));
}
