//! Every failure answers the one error body, with the request id, and the security headers.

use reqwest::StatusCode;
use serde_json::Value;
use whatpro_testkit::TestApp;

use crate::probes;

async fn probe_app() -> TestApp {
    TestApp::builder()
        .probe_routes(probes::routes)
        .start()
        .await
}

/// Checks the body shape, that `request_id` equals the `X-Request-Id` header, and returns the body.
async fn error_body(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let header_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("x-request-id header");
    assert_eq!(
        response
            .headers()
            .get("x-content-type-options")
            .and_then(|v| v.to_str().ok()),
        Some("nosniff"),
        "security headers must be present on errors too"
    );
    assert!(response.headers().contains_key("content-security-policy"));
    let body: Value = response.json().await.expect("JSON error body");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(body["request_id"], header_id.as_str());
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(
        keys.iter()
            .all(|k| ["code", "message", "request_id", "details"].contains(k)),
        "unexpected keys {keys:?}"
    );
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_route_answers_404_not_found() {
    let app = probe_app().await;
    error_body(
        app.get("/api/v1/nothing-here").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_method_answers_405_method_not_allowed() {
    let app = probe_app().await;
    let response = app.client.delete(app.url("/healthz")).send().await.unwrap();
    error_body(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_json_answers_400_invalid_json() {
    let app = probe_app().await;
    let response = app
        .client
        .post(app.url("/probe/json"))
        .header("content-type", "application/json")
        .body(r#"{"name": "x""#)
        .send()
        .await
        .unwrap();
    error_body(response, StatusCode::BAD_REQUEST, "invalid_json").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_of_the_wrong_shape_answers_422_validation_failed() {
    let app = probe_app().await;
    let response = app
        .client
        .post(app.url("/probe/json"))
        .json(&serde_json::json!({"nom": "x"}))
        .send()
        .await
        .unwrap();
    let body = error_body(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains("name"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn non_json_content_type_answers_415() {
    let app = probe_app().await;
    let response = app
        .client
        .post(app.url("/probe/json"))
        .header("content-type", "text/plain")
        .body(r#"{"name":"x"}"#)
        .send()
        .await
        .unwrap();
    error_body(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn body_over_the_limit_answers_413_payload_too_large() {
    let app = probe_app().await;
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(1024 * 1024 + 1));
    let response = app
        .client
        .post(app.url("/probe/json"))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    error_body(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    // Without a Content-Length (chunked), the extractor cuts the body off.
    let (status, body) =
        send_chunked(&app, "/probe/json", "application/json", big.as_bytes()).await;
    assert_eq!(status, 413);
    assert_eq!(body["code"], "payload_too_large");

    // A body at the limit is accepted.
    let fits = format!(r#"{{"name":"{}"}}"#, "x".repeat(1024 * 1024 - 20));
    let response = app
        .client
        .post(app.url("/probe/json"))
        .header("content-type", "application/json")
        .body(fits)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_body_over_the_limit_answers_413_too() {
    let app = probe_app().await;
    let body = vec![b'a'; 20 * 64 * 1024];
    let (status, json) = send_chunked(&app, "/probe/raw", "application/octet-stream", &body).await;
    assert_eq!(status, 413);
    assert_eq!(json["code"], "payload_too_large");
    assert!(json["request_id"].is_string());
    let (status, _) = send_chunked(
        &app,
        "/probe/raw",
        "application/octet-stream",
        &body[..1000],
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_path_value_answers_400_invalid_path() {
    let app = probe_app().await;
    error_body(
        app.get("/probe/items/not-a-number").await,
        StatusCode::BAD_REQUEST,
        "invalid_path",
    )
    .await;
    assert_eq!(app.get("/probe/items/42").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_query_value_answers_400_invalid_query() {
    let app = probe_app().await;
    error_body(
        app.get("/probe/list?limit=lots").await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    error_body(
        app.get("/probe/list").await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    assert_eq!(
        app.get("/probe/list?limit=5").await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn internal_error_says_only_internal_error() {
    let app = probe_app().await;
    let body = error_body(
        app.get("/probe/internal").await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
    )
    .await;
    assert_eq!(body["message"], "internal error");
    assert!(!body.to_string().contains("hunter2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn client_request_id_is_kept_when_sane_and_replaced_otherwise() {
    let app = probe_app().await;
    let kept = app
        .client
        .get(app.url("/nope"))
        .header("x-request-id", "abc.DEF_123-x")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "abc.DEF_123-x");
    let body: Value = kept.json().await.unwrap();
    assert_eq!(body["request_id"], "abc.DEF_123-x");

    for bad in ["has space", "semi;colon", &"a".repeat(129)] {
        let replaced = app
            .client
            .get(app.url("/healthz"))
            .header("x-request-id", bad)
            .send()
            .await
            .unwrap();
        let id = replaced.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_ne!(id, bad);
        assert!(uuid_like(&id), "{id}");
    }
    let generated = app.get("/healthz").await;
    assert!(uuid_like(
        generated.headers()["x-request-id"].to_str().unwrap()
    ));
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36 && id.bytes().filter(|b| *b == b'-').count() == 4
}

/// Sends `body` with `Transfer-Encoding: chunked` (no Content-Length) over a raw connection and
/// returns the status and the JSON body (`Null` when the body is not JSON).
async fn send_chunked(app: &TestApp, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(64 * 1024) {
        // The server may answer and close before everything is sent; that is the point.
        if stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .is_err()
            || stream.write_all(chunk).await.is_err()
            || stream.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let json = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| decode_body(b))
        .and_then(|b| serde_json::from_str(&b).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

/// The payload of a response body that may itself be chunked.
fn decode_body(body: &str) -> String {
    let trimmed = body.trim_start();
    if trimmed.starts_with('{') {
        return trimmed.to_owned();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(len) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if len == 0 || tail.len() < len {
            break;
        }
        out.push_str(&tail[..len]);
        rest = tail[len..].trim_start_matches("\r\n");
    }
    out
}
