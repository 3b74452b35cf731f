//! CORS: exact-origin allowlist (Chatwoot + HUB_ALLOWED_ORIGINS), never `*`.

use reqwest::StatusCode;
use serde_json::Value;
use whatpro_testkit::TestApp;

async fn app() -> TestApp {
    TestApp::builder()
        .var("HUB_ALLOWED_ORIGINS", "https://app.whatpro.example")
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_origins_get_their_own_origin_back_with_credentials() {
    let app = app().await;
    let chatwoot_origin = app.chatwoot.url();
    for origin in [chatwoot_origin.as_str(), "https://app.whatpro.example"] {
        let response = app
            .client
            .get(app.url("/healthz"))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["access-control-allow-origin"], origin);
        assert_eq!(
            response.headers()["access-control-allow-credentials"],
            "true"
        );
        assert!(
            response.headers()["access-control-expose-headers"]
                .to_str()
                .unwrap()
                .contains("x-request-id")
        );
        assert!(
            response
                .headers()
                .get_all("vary")
                .iter()
                .any(|v| v == "Origin")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_from_an_allowed_origin_answers_204_with_methods_and_headers() {
    let app = app().await;
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/anything"))
        .header("origin", "https://app.whatpro.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let headers = response.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.whatpro.example"
    );
    assert!(
        headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert!(
        headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    assert!(headers.contains_key("x-request-id"));
}

#[tokio::test(flavor = "multi_thread")]
async fn other_origins_null_and_lookalikes_are_denied() {
    let app = app().await;
    let chatwoot = app.chatwoot.url(); // http://127.0.0.1:PORT
    let port = chatwoot.rsplit(':').next().unwrap().to_owned();
    let denied = [
        "null".to_owned(),
        "https://evil.example".to_owned(),
        "https://app.whatpro.example.evil.example".to_owned(),
        "https://evilapp.whatpro.example".to_owned(),
        "http://app.whatpro.example".to_owned(),
        "https://app.whatpro.example:8443".to_owned(),
        format!("{chatwoot}.evil.example"),
        format!("https://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        "*".to_owned(),
    ];
    for origin in &denied {
        let response = app
            .client
            .get(app.url("/healthz"))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{origin}");
        assert!(
            !response
                .headers()
                .contains_key("access-control-allow-origin"),
            "{origin} must not be allowed"
        );
        assert!(
            !response
                .headers()
                .contains_key("access-control-allow-credentials")
        );

        let preflight = app
            .client
            .request(reqwest::Method::OPTIONS, app.url("/healthz"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status(), StatusCode::FORBIDDEN, "{origin}");
        assert!(
            !preflight
                .headers()
                .contains_key("access-control-allow-origin")
        );
        let body: Value = preflight.json().await.unwrap();
        assert_eq!(body["code"], "origin_not_allowed");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_without_origin_get_no_cors_headers() {
    let app = app().await;
    let response = app.get("/healthz").await;
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
}
