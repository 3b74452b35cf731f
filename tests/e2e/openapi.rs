//! The OpenAPI document is generated from the handlers, served, and committed.

use reqwest::StatusCode;
use serde_json::Value;
use whatpro_testkit::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn served_document_matches_the_committed_docs_openapi_json() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let served: Value = response.json().await.unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
    let committed_text = std::fs::read_to_string(path).expect("docs/openapi.json exists");
    let committed: Value = serde_json::from_str(&committed_text).unwrap();
    assert_eq!(
        served, committed,
        "docs/openapi.json is stale: regenerate it with `cargo run -p whatpro-app -- openapi > docs/openapi.json`"
    );
    assert_eq!(
        committed_text,
        whatpro_app::openapi_json(),
        "docs/openapi.json is not in canonical form"
    );
    for route in ["/healthz", "/readyz", "/metrics"] {
        assert!(
            served["paths"][route]["get"].is_object(),
            "{route} is not documented"
        );
    }
    assert!(served["components"]["schemas"]["ErrorBody"].is_object());
}

#[tokio::test(flavor = "multi_thread")]
async fn docs_page_serves_the_reference_ui() {
    let app = TestApp::spawn().await;
    let response = app.get("/docs").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("WhatPro Hub API"));
    assert!(html.contains("\"openapi\""), "the page embeds the document");
}
