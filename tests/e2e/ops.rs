//! `/healthz`, `/readyz`, `/metrics`.

use reqwest::StatusCode;
use serde_json::Value;
use whatpro_testkit::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn healthz_answers_ok_with_request_id_and_security_headers() {
    let app = TestApp::spawn().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert!(headers.contains_key("x-request-id"));
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        headers["referrer-policy"],
        "strict-origin-when-cross-origin"
    );
    assert!(headers.contains_key("permissions-policy"));
    assert!(
        !headers.contains_key("strict-transport-security"),
        "plain http must not send HSTS"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_answers_ok_when_the_database_answers() {
    let app = TestApp::spawn().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_answers_503_while_the_database_is_unreachable_and_recovers() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);

    // Take the database away: rename it (kicking its sessions out), so reconnects fail.
    let hidden = format!("{}_hidden", app.db.name());
    admin_sql(
        &app,
        &format!(
            "ALTER DATABASE \"{}\" RENAME TO \"{hidden}\"",
            app.db.name()
        ),
    )
    .await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "database_unavailable");
    assert!(body["request_id"].is_string());
    // Liveness does not depend on the database.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);

    admin_sql(
        &app,
        &format!(
            "ALTER DATABASE \"{hidden}\" RENAME TO \"{}\"",
            app.db.name()
        ),
    )
    .await;
    let mut recovered = false;
    for _ in 0..50 {
        if app.get("/readyz").await.status() == StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        recovered,
        "readyz did not recover after the database came back"
    );
}

/// Runs one statement on the server's admin database, first terminating the sessions of the
/// test database (a database with sessions cannot be renamed).
async fn admin_sql(app: &TestApp, statement: &str) {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let mut conn = AsyncPgConnection::establish(&app.db.admin_url())
        .await
        .unwrap();
    for name in [
        app.db.name().to_owned(),
        format!("{}_hidden", app.db.name()),
    ] {
        diesel::sql_query(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    diesel::sql_query(statement)
        .execute(&mut conn)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_by_route_pattern_and_show_pool_gauges() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        app.get("/healthz").await;
    }
    app.get("/no/such/route/123").await;
    app.get("/readyz").await;

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/healthz",status="200"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
        "{text}"
    );
    assert!(
        !text.contains("/no/such/route"),
        "raw paths must not become labels"
    );
    assert!(
        text.contains(r#"http_request_duration_seconds_count{method="GET",route="/readyz"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"db_pool_connections{state="idle"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"db_pool_connections{state="in_use"}"#),
        "{text}"
    );
}
