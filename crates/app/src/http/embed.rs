//! The pages Chatwoot embeds: the Dashboard Script (`/embed/dashboard-script.js`), the iframe
//! shell (`/embed/app`) with its script and style. The assets live in `crates/app/assets/`,
//! compiled in, and are filled in once at start-up with the Hub's origin and the allowed
//! Chatwoot origins (as JSON string literals, escaped for a script context).
//!
//! The security headers come from [`super::security`]: every `/embed/` response gets the embed
//! CSP (`script-src 'self'`, `connect-src 'self'`, `frame-ancestors` = Chatwoot's origin +
//! `HUB_ALLOWED_ORIGINS`) and no `X-Frame-Options`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, get, web};
use serde_json::Value;

use crate::config::Config;

/// Path of the iframe shell.
pub const APP_PATH: &str = "/embed/app";
/// Path of the Dashboard Script.
pub const DASHBOARD_SCRIPT_PATH: &str = "/embed/dashboard-script.js";

/// Scopes the Dashboard Script asks for: the read scopes every member role holds (so the
/// request never exceeds a viewer's role).
pub const EMBED_SCOPES: [&str; 6] = [
    "members:read",
    "chat:read",
    "kanban:read",
    "inboxes:read",
    "providers:read",
    "features:read",
];

/// Lifetime asked for the instance tokens of the Dashboard Script (renewed at 80 %).
pub const EMBED_TOKEN_TTL_MINUTES: u32 = 15;

const DASHBOARD_SCRIPT: &str = include_str!("../../assets/dashboard-script.js");
const APP_HTML: &str = include_str!("../../assets/app.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const APP_CSS: &str = include_str!("../../assets/app.css");

/// The rendered assets (cheap to clone: shared bytes).
#[derive(Debug, Clone)]
pub struct EmbedAssets {
    dashboard_script: web::Bytes,
    app_js: web::Bytes,
}

/// A JSON value as a literal safe inside a `<script>` element or a script file: JSON, with
/// `<`, `>`, `&`, U+2028 and U+2029 escaped so it can neither close the element nor break the
/// statement.
pub fn js_literal(value: &Value) -> String {
    let json = value.to_string();
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

impl EmbedAssets {
    /// Fills the templates in from the configuration: the Hub origin (`HUB_PUBLIC_URL`) and
    /// the origins allowed to frame the Hub and talk to it (Chatwoot's + `HUB_ALLOWED_ORIGINS`).
    pub fn from_config(config: &Config) -> Self {
        let hub = js_literal(&Value::from(config.public_url.as_str()));
        let allowed: Vec<Value> = config
            .trusted_origins()
            .iter()
            .map(|o| Value::from(o.as_str()))
            .collect();
        let allowed = js_literal(&Value::Array(allowed));
        let scopes = js_literal(&Value::from(EMBED_SCOPES.to_vec()));
        let script = DASHBOARD_SCRIPT
            .replace("__WHATPRO_HUB_ORIGIN__", &hub)
            .replace("__WHATPRO_SCOPES__", &scopes)
            .replace(
                "__WHATPRO_TTL_MINUTES__",
                &EMBED_TOKEN_TTL_MINUTES.to_string(),
            );
        let app_js = APP_JS.replace("__WHATPRO_ALLOWED_ORIGINS__", &allowed);
        Self {
            dashboard_script: web::Bytes::from(script),
            app_js: web::Bytes::from(app_js),
        }
    }
}

fn asset(content_type: &'static str, cache: &'static str, body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static(cache)))
        .body(body)
}

/// The Dashboard Script for Chatwoot's `DASHBOARD_SCRIPTS`.
#[utoipa::path(
    tag = "embed",
    responses((status = 200, content_type = "application/javascript", body = String,
        description = "Loaded by the Chatwoot dashboard as a classic cross-origin script: exchanges the dashboard session for an instance token and hands it to the Hub iframe with `postMessage(msg, hubOrigin)`"))
)]
#[get("/embed/dashboard-script.js")]
pub async fn dashboard_script(data: web::Data<EmbedAssets>) -> HttpResponse {
    let mut response = asset(
        "application/javascript; charset=utf-8",
        "public, max-age=300",
        data.dashboard_script.clone(),
    );
    // Chatwoot's page loads it from another origin; say so explicitly, so a
    // Cross-Origin-Embedder-Policy on Chatwoot's side does not block it.
    response.headers_mut().insert(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("cross-origin"),
    );
    response
}

/// The iframe shell: verifies a token handed over by the Dashboard Script, reads Chatwoot's
/// Dashboard App context, or offers SSO.
#[utoipa::path(
    tag = "embed",
    responses((status = 200, content_type = "text/html", body = String,
        description = "Framed by Chatwoot (CSP `frame-ancestors` = Chatwoot's origin + `HUB_ALLOWED_ORIGINS`); scripts only from the Hub itself"))
)]
#[get("/embed/app")]
pub async fn app_page() -> HttpResponse {
    asset(
        "text/html; charset=utf-8",
        "no-cache",
        web::Bytes::from_static(APP_HTML.as_bytes()),
    )
}

/// The iframe page's script (a file of its own so the CSP can be `script-src 'self'`).
#[utoipa::path(
    tag = "embed",
    responses((status = 200, content_type = "application/javascript", body = String))
)]
#[get("/embed/app.js")]
pub async fn app_script(data: web::Data<EmbedAssets>) -> HttpResponse {
    asset(
        "application/javascript; charset=utf-8",
        "no-cache",
        data.app_js.clone(),
    )
}

/// The iframe page's style.
#[utoipa::path(
    tag = "embed",
    responses((status = 200, content_type = "text/css", body = String))
)]
#[get("/embed/app.css")]
pub async fn app_style() -> HttpResponse {
    asset(
        "text/css; charset=utf-8",
        "public, max-age=300",
        web::Bytes::from_static(APP_CSS.as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::config::Sources;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::load(&Sources::from_pairs(pairs.iter().copied())).unwrap()
    }

    #[test]
    fn literals_cannot_break_out_of_a_script() {
        let text = js_literal(&Value::from("</script><b>&\u{2028}\"x\\"));
        assert_eq!(
            text,
            r#""\u003c/script\u003e\u003cb\u003e\u0026\u2028\"x\\""#
        );
        assert!(!text.contains('<') && !text.contains('>'));
    }

    #[test]
    fn templates_are_filled_with_the_configured_origins() {
        let assets = EmbedAssets::from_config(&config(&[
            ("HUB_PUBLIC_URL", "https://hub.example.com"),
            ("CHATWOOT_URL", "https://chat.example.com/"),
            ("HUB_ALLOWED_ORIGINS", "https://other.example.com"),
        ]));
        let script = std::str::from_utf8(&assets.dashboard_script).unwrap();
        assert!(script.contains(r#"var HUB_ORIGIN = "https://hub.example.com";"#));
        assert!(script.contains(r#""members:read""#));
        assert!(script.contains("var TTL_MINUTES = 15;"));
        let app = std::str::from_utf8(&assets.app_js).unwrap();
        assert!(app.contains(
            r#"var ALLOWED_ORIGINS = ["https://chat.example.com","https://other.example.com"];"#
        ));
        for text in [script, app] {
            assert!(!text.contains("__WHATPRO_"), "a placeholder was left");
        }
    }

    #[test]
    fn the_page_loads_only_its_own_files() {
        assert!(!APP_HTML.contains("<script>"), "no inline script");
        assert!(!APP_HTML.contains(" style="), "no inline style");
        assert!(APP_HTML.contains(r#"<script src="/embed/app.js" defer></script>"#));
        assert!(APP_HTML.contains(r#"href="/embed/app.css""#));
    }
}
