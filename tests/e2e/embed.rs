//! The embed pages and the Dashboard Script: content types, security headers, the Hub origin
//! baked into the script, and the rule that no `postMessage` ever targets every origin
//! (checked over the served assets and over every source file, like the review hook does).

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use whatpro_testkit::TestApp;

/// Lines where a postMessage call quotes a lone star (single or double quotes) before its
/// closing parenthesis, i.e. targets every origin: the regex
/// `postMessage\([^)]*['"]\*['"]` of the repository's review hook, spelled out.
pub fn star_targets(text: &str) -> Vec<usize> {
    const CALL: &str = "postMessage(";
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(CALL) {
        let start = from + at + CALL.len();
        let args = text[start..].split(')').next().unwrap_or("");
        if args.contains("'*'") || args.contains("\"*\"") {
            found.push(text[..start].matches('\n').count() + 1);
        }
        from = start;
    }
    found
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn files_under(dir: &Path, keep: &dyn Fn(&Path) -> bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            files_under(&path, keep, out);
        } else if keep(&path) {
            out.push(path);
        }
    }
}

#[test]
fn the_lint_finds_star_targets() {
    // Built at run time, so this file does not trip the very check it tests.
    let star = ['\'', '*', '\''].iter().collect::<String>();
    let dq = ['"', '*', '"'].iter().collect::<String>();
    let call = "postMessage(";
    assert_eq!(star_targets(&format!("a\nw.{call}msg, {star});")), vec![2]);
    assert_eq!(
        star_targets(&format!("w.{call}\n  msg,\n  {dq}\n);")),
        vec![1]
    );
    assert!(star_targets(&format!("w.{call}msg, HUB_ORIGIN); x({star})")).is_empty());
    assert!(star_targets(&format!("w.{call}{{a: 1}}, origin)")).is_empty());
}

#[test]
fn no_source_or_asset_posts_to_every_origin() {
    let root = repository();
    let mut files = Vec::new();
    let assets = |p: &Path| p.is_file();
    files_under(&root.join("crates/app/assets"), &assets, &mut files);
    let asset_count = files.len();
    assert!(
        asset_count >= 3,
        "the embed assets were not found under {root:?}"
    );
    let rust = |p: &Path| p.extension().is_some_and(|e| e == "rs");
    for dir in ["crates", "tests"] {
        files_under(&root.join(dir), &rust, &mut files);
    }
    assert!(files.len() > asset_count + 20, "too few sources found");
    let offenders: Vec<String> = files
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            star_targets(&text)
                .into_iter()
                .map(move |line| format!("{}:{line}", path.display()))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "postMessage with target origin '*' (never allowed): {offenders:?}"
    );
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn directive(csp: &str, name: &str) -> Option<String> {
    csp.split(';')
        .map(str::trim)
        .find_map(|d| d.strip_prefix(&format!("{name} ")).map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread")]
async fn embed_pages_are_framable_only_by_trusted_origins_and_run_only_their_own_scripts() {
    let app = TestApp::builder()
        .var("HUB_ALLOWED_ORIGINS", "https://app.whatpro.example")
        .start()
        .await;
    let chatwoot = app.chatwoot.url();
    for (path, content_type) in [
        ("/embed/app", "text/html; charset=utf-8"),
        ("/embed/app.js", "application/javascript; charset=utf-8"),
        ("/embed/app.css", "text/css; charset=utf-8"),
        (
            "/embed/dashboard-script.js",
            "application/javascript; charset=utf-8",
        ),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&response, "content-type"), content_type, "{path}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert!(
            !response.headers().contains_key("x-frame-options"),
            "{path}"
        );
        let csp = header(&response, "content-security-policy");
        assert!(!csp.contains('*'), "{path}: {csp}");
        assert_eq!(directive(&csp, "script-src").as_deref(), Some("'self'"));
        assert_eq!(directive(&csp, "style-src").as_deref(), Some("'self'"));
        assert_eq!(directive(&csp, "connect-src").as_deref(), Some("'self'"));
        assert_eq!(directive(&csp, "base-uri").as_deref(), Some("'none'"));
        assert_eq!(
            directive(&csp, "frame-ancestors"),
            Some(format!("{chatwoot} https://app.whatpro.example")),
            "{path}: {csp}"
        );
        assert!(
            !response
                .headers()
                .contains_key("access-control-allow-origin")
        );
    }

    let page = app.get("/embed/app").await.text().await.unwrap();
    assert!(page.contains(r#"<script src="/embed/app.js" defer></script>"#));
    assert!(page.contains(r#"id="status""#));
    assert!(!page.contains("<script>"), "no inline script");

    let app_js = app.get("/embed/app.js").await.text().await.unwrap();
    assert!(app_js.contains(&format!(
        r#"var ALLOWED_ORIGINS = ["{chatwoot}","https://app.whatpro.example"];"#
    )));
    assert!(app_js.contains("/api/v1/instance-tokens/validate"));
    assert!(app_js.contains("chatwoot-dashboard-app:fetch-info"));
    assert!(star_targets(&app_js).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_script_knows_the_hub_origin_and_loads_cross_origin() {
    let app = TestApp::spawn().await;
    let response = app.get("/embed/dashboard-script.js").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "cross-origin-resource-policy"),
        "cross-origin"
    );
    assert_eq!(header(&response, "cache-control"), "public, max-age=300");
    let script = response.text().await.unwrap();
    assert!(
        script.contains(&format!(r#"var HUB_ORIGIN = "{}";"#, app.address)),
        "the script does not carry the Hub origin"
    );
    assert!(script.contains("postMessage(message, HUB_ORIGIN)"));
    assert!(script.contains("event.origin !== HUB_ORIGIN"));
    assert!(script.contains("cw_d_session_info"));
    assert!(
        star_targets(&script).is_empty(),
        "a postMessage targets '*'"
    );
    assert!(
        !script.contains("__WHATPRO_"),
        "a template placeholder was left"
    );

    // The script's token request from the Chatwoot origin passes CORS (exact origin, no `*`).
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/instance-tokens"))
        .header("origin", app.chatwoot.url())
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        header(&preflight, "access-control-allow-origin"),
        app.chatwoot.url()
    );
    let stranger = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/instance-tokens"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), StatusCode::FORBIDDEN);
}
