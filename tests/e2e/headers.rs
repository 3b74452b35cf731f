//! Security headers: API pages refuse framing; embed pages may be framed by Chatwoot and the
//! allowed origins only; HSTS only behind https.

use reqwest::StatusCode;
use whatpro_testkit::TestApp;

use crate::probes;

#[tokio::test(flavor = "multi_thread")]
async fn embed_pages_may_be_framed_by_chatwoot_and_allowed_origins_only() {
    let app = TestApp::builder()
        .var("HUB_ALLOWED_ORIGINS", "https://app.whatpro.example")
        .probe_routes(probes::routes)
        .start()
        .await;
    let response = app.get("/embed/probe").await;
    assert_eq!(response.status(), StatusCode::OK);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let ancestors = csp
        .split(';')
        .map(str::trim)
        .find_map(|d| d.strip_prefix("frame-ancestors "))
        .expect("frame-ancestors directive");
    let mut listed: Vec<&str> = ancestors.split(' ').collect();
    listed.sort_unstable();
    let chatwoot = app.chatwoot.url();
    let mut expected = vec![chatwoot.as_str(), "https://app.whatpro.example"];
    expected.sort_unstable();
    assert_eq!(listed, expected);
    assert!(!csp.contains('*'));
    assert!(!response.headers().contains_key("x-frame-options"));
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");

    // Everything else refuses framing, including errors.
    for path in ["/healthz", "/api/v1/missing", "/probe/internal"] {
        let response = app.get(path).await;
        assert_eq!(response.headers()["x-frame-options"], "DENY", "{path}");
        assert!(
            response.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hsts_is_sent_when_the_public_url_is_https() {
    let app = TestApp::builder()
        .var("HUB_PUBLIC_URL", "https://hub.whatpro.example")
        .start()
        .await;
    for path in ["/healthz", "/missing"] {
        let response = app.get(path).await;
        assert_eq!(
            response.headers()["strict-transport-security"],
            "max-age=31536000; includeSubDomains",
            "{path}"
        );
    }
}
