//! Support for the benchmark harness (`whatpro-bench`).
//!
//! The harness quotes the Hub's routes as a fraction of what a bare actix-web handler can do on
//! the same machine. Only this crate may depend on actix-web, so that bare server lives here.

use actix_web::{App, HttpResponse, HttpServer, web};

/// Serves one route, `GET /` → `200 ok`, with no middleware, on `listener` with `workers`
/// worker threads, until the process is told to stop (SIGTERM / SIGINT).
///
/// # Errors
/// When actix-web cannot adopt the listener or the server fails while running.
pub async fn serve_minimal(listener: std::net::TcpListener, workers: usize) -> std::io::Result<()> {
    HttpServer::new(|| App::new().route("/", web::get().to(ok)))
        .workers(workers.max(1))
        .shutdown_timeout(1)
        .listen(listener)?
        .run()
        .await
}

/// The single handler of the minimal server.
async fn ok() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}
