//! The embed handshake in a real browser: headless Chromium driven through WebDriver
//! (chromedriver) with fantoccini.
//!
//! 1. A page on the fake Chatwoot's origin stands in for the dashboard: it holds a real
//!    dashboard session in the `cw_d_session_info` cookie and loads the Hub's Dashboard
//!    Script. The script exchanges the session for an instance token, opens the Hub iframe and
//!    hands the token over; the iframe verifies it with `GET /api/v1/instance-tokens/validate`
//!    and shows the identity. A route change to another account repeats the handshake.
//! 2. A page on a third origin opens the iframe page and posts a forged token message (with a
//!    valid token) to it: the page ignores it. Framing the page from that origin is refused by
//!    the CSP's `frame-ancestors`.
//!
//! Set-up: Debian's `chromium` and `chromium-driver` are installed with apt-get when missing
//! (once per test process); when that is impossible the tests fail with the reason.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::StatusCode;
use serde_json::{Value, json};
use whatpro_chatwoot_sim::ChatwootSim;
use whatpro_testkit::TestApp;

use crate::support::{ACCOUNT_A, ACCOUNT_B, authed, login};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Longest wait for any one thing the browser should do.
const STEP_TIMEOUT: Duration = Duration::from_secs(15);

/// Installs Chromium and its driver with apt-get when either binary is missing; the outcome is
/// computed once per process.
fn ensure_chromium() -> Result<(), String> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let present = || Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
            if present() {
                return Ok(());
            }
            eprintln!("browser tests: installing chromium and chromium-driver with apt-get");
            let run = |args: &[&str]| -> Result<(), String> {
                let output = Command::new("apt-get")
                    .args(args)
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| format!("cannot run apt-get: {e}"))?;
                if output.status.success() {
                    Ok(())
                } else {
                    let stderr = String::from_utf8_lossy(&output.stderr);
                    let tail: String = stderr.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
                    Err(format!(
                        "apt-get {args:?} failed ({}): {tail}",
                        output.status
                    ))
                }
            };
            run(&["update", "-qq"])?;
            run(&["install", "-y", "-qq", "chromium", "chromium-driver"])?;
            if present() {
                Ok(())
            } else {
                Err(format!(
                    "apt-get succeeded but {CHROMIUM} or {CHROMEDRIVER} is still missing"
                ))
            }
        })
        .clone()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn fresh_dir(label: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "whatpro-{label}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

/// chromedriver, in a process group of its own so that the browsers it starts go with it,
/// and a WebDriver session on a headless Chromium with a fresh profile.
struct Browser {
    client: Option<Client>,
    driver: Child,
    profile: PathBuf,
}

impl Browser {
    async fn start() -> Browser {
        tokio::task::spawn_blocking(ensure_chromium)
            .await
            .expect("the installer task")
            .unwrap_or_else(|e| {
                panic!("browser tests need {CHROMIUM} and {CHROMEDRIVER}, and installing them failed: {e}")
            });
        let port = free_port();
        let profile = fresh_dir("chromium-profile");
        let driver = {
            use std::os::unix::process::CommandExt;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"))
        };
        let mut browser = Browser {
            client: None,
            driver,
            profile,
        };
        let webdriver = format!("http://127.0.0.1:{port}");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-default-apps",
                    "--disable-extensions",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", browser.profile.display()),
                ],
            }),
        );
        let deadline = Instant::now() + STEP_TIMEOUT;
        let client = loop {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&webdriver)
                .await
            {
                Ok(client) => break client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no WebDriver session from {CHROMEDRIVER}: {e}"),
            }
        };
        browser.client = Some(client);
        browser
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("a WebDriver session")
    }

    /// Ends the session (the browser closes); `Drop` kills whatever is left.
    async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Only the group this test started: chromedriver and the browsers it launched.
        if let Ok(pid) = i32::try_from(self.driver.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Polls `probe` (a script returning a value) until `done` holds; panics with the last value.
async fn wait_for(
    client: &Client,
    what: &str,
    probe: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let value = client
            .execute(probe, vec![])
            .await
            .unwrap_or_else(|e| json!({ "error": e.to_string() }));
        if done(&value) {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out waiting for {what}; last value: {value}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The iframe page's visible state.
const STATUS_PROBE: &str = "var s = document.getElementById('status'); return s ? { state: s.dataset.state, account: s.dataset.accountId, user: s.dataset.userId, ignored: Number(s.dataset.ignored), text: s.textContent } : null;";

/// A JSON string literal, safe inside an inline script of the test pages.
fn js(text: &str) -> String {
    whatpro_app::http::embed::js_literal(&Value::from(text))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_script_hands_a_verified_token_to_the_hub_iframe() {
    let app = TestApp::spawn().await;
    let seed = app.chatwoot.seed_demo();
    let session = app.chatwoot.sign_in(seed.admin.id);
    // Chatwoot's dashboard: the session cookie as js-cookie writes it, then the Dashboard
    // Script as DASHBOARD_SCRIPTS puts it, last in <body>.
    let dashboard = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Chatwoot</title></head>
<body><div id="app">dashboard of account 1</div>
<script>document.cookie = "cw_d_session_info=" + encodeURIComponent({cookie}) + "; path=/; SameSite=Lax";</script>
<script src="{hub}/embed/dashboard-script.js"></script>
</body></html>"#,
        cookie = js(&session.cookie_value()),
        hub = app.address,
    );
    app.chatwoot
        .set_page(&format!("/app/accounts/{ACCOUNT_A}/dashboard"), dashboard);

    let browser = Browser::start().await;
    let client = browser.client();
    client
        .goto(&format!(
            "{}/app/accounts/{ACCOUNT_A}/dashboard",
            app.chatwoot.url()
        ))
        .await
        .unwrap();
    client
        .wait()
        .at_most(STEP_TIMEOUT)
        .for_element(Locator::Id("whatpro-hub-launcher"))
        .await
        .expect("the Dashboard Script added its launcher")
        .click()
        .await
        .unwrap();
    let frame = client
        .wait()
        .at_most(STEP_TIMEOUT)
        .for_element(Locator::Id("whatpro-hub-frame"))
        .await
        .expect("the Hub iframe");
    assert_eq!(
        frame.attr("src").await.unwrap().as_deref(),
        Some(app.url("/embed/app").as_str())
    );
    frame.enter_frame().await.unwrap();
    let status = wait_for(client, "the verified identity", STATUS_PROBE, |v| {
        v["state"] == "verified"
    })
    .await;
    assert_eq!(status["text"], "verified account 1 user 5", "{status}");
    assert_eq!(status["account"], "1");
    assert_eq!(status["user"], "5");
    assert_eq!(status["ignored"], 0, "the script sent something malformed");

    // The token came from the script's exchange and was checked by the Hub.
    let calls: Vec<String> = app
        .chatwoot
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert!(
        calls.iter().any(|p| p == "/auth/validate_token"),
        "the dashboard session was not verified with Chatwoot: {calls:?}"
    );

    // The dashboard (a SPA) moves to another account: the script follows with a new token.
    client.enter_parent_frame().await.unwrap();
    client
        .execute(
            &format!(
                "history.pushState({{}}, '', '/app/accounts/{ACCOUNT_B}/dashboard'); document.getElementById('app').textContent = 'dashboard of account 9';"
            ),
            vec![],
        )
        .await
        .unwrap();
    client
        .find(Locator::Id("whatpro-hub-frame"))
        .await
        .unwrap()
        .enter_frame()
        .await
        .unwrap();
    let status = wait_for(client, "the identity in account 9", STATUS_PROBE, |v| {
        v["state"] == "verified" && v["account"] == "9"
    })
    .await;
    assert_eq!(status["text"], "verified account 9 user 5", "{status}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_third_origin_can_neither_hand_over_a_token_nor_frame_the_hub() {
    let app = TestApp::spawn().await;
    let seed = app.chatwoot.seed_demo();
    let carlos = login(&app, &seed.admin.access_token).await;
    // A genuine instance token for the Hub origin: were the message accepted, it would verify.
    let response = authed(
        &app,
        reqwest::Method::POST,
        "/api/v1/instance-tokens",
        &carlos.access_token,
    )
    .json(&json!({
        "account_id": ACCOUNT_A,
        "scopes": ["members:read"],
        "origin": app.address,
    }))
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let token = response.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let check = app
        .client
        .get(app.url("/api/v1/instance-tokens/validate"))
        .bearer_auth(&token)
        .header("origin", &app.address)
        .send()
        .await
        .unwrap();
    assert_eq!(check.status(), StatusCode::OK, "the token is valid");

    // The third origin: another loopback port, not on any allowlist.
    let stranger = ChatwootSim::start(([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let hub = js(&app.address);
    let page = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>elsewhere</title></head>
<body><button id="open" type="button">open</button><p id="sent">0</p>
<iframe id="framed" src="{address}/embed/app"></iframe>
<script>
var HUB = {hub};
var TOKEN = {token};
document.getElementById("open").addEventListener("click", function () {{
  var target = window.open(HUB + "/embed/app", "hub");
  var sent = 0;
  var timer = setInterval(function () {{
    sent += 1;
    target.postMessage({{ type: "whatpro:instance-token", token: TOKEN, account_id: 1 }}, HUB);
    target.postMessage(JSON.stringify({{ event: "appContext", data: {{ conversation: {{ id: 42, account_id: 1 }} }} }}), HUB);
    document.getElementById("sent").textContent = String(sent);
    if (sent >= 15) {{ clearInterval(timer); }}
  }}, 100);
}});
</script></body></html>"#,
        address = app.address,
        token = js(&token),
    );
    stranger.set_page("/attack", page);

    let browser = Browser::start().await;
    let client = browser.client();
    client
        .goto(&format!("{}/attack", stranger.url()))
        .await
        .unwrap();
    let opener = client.window().await.unwrap();
    client
        .find(Locator::Id("open"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + STEP_TIMEOUT;
    let popup = loop {
        let windows = client.windows().await.unwrap();
        if let Some(other) = windows.into_iter().find(|w| *w != opener) {
            break other;
        }
        assert!(Instant::now() < deadline, "the page was not opened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    client.switch_to_window(popup).await.unwrap();
    // Wait until the forged messages have arrived (and were counted as ignored) ...
    let status = wait_for(client, "the forged messages", STATUS_PROBE, |v| {
        v["ignored"].as_u64().unwrap_or(0) >= 10 || v["state"] != "waiting"
    })
    .await;
    // ... then give a verification that should not happen time to happen.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status_after = client.execute(STATUS_PROBE, vec![]).await.unwrap();
    for s in [&status, &status_after] {
        assert_eq!(s["state"], "waiting", "a forged message was accepted: {s}");
        assert_eq!(s["account"], "");
        assert_eq!(s["user"], "");
    }
    let conversation_shown = client
        .execute(
            "return !document.getElementById('conversation').hidden;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        conversation_shown,
        json!(false),
        "a forged context was used"
    );
    assert!(
        !app.chatwoot
            .requests()
            .iter()
            .any(|r| r.path == "/auth/validate_token"),
        "nothing should have reached Chatwoot"
    );

    // Framed from the third origin, the page does not even load (frame-ancestors).
    client.switch_to_window(opener).await.unwrap();
    client
        .find(Locator::Id("framed"))
        .await
        .unwrap()
        .enter_frame()
        .await
        .unwrap();
    let framed = client
        .execute("return document.getElementById('status') === null;", vec![])
        .await
        .unwrap();
    assert_eq!(
        framed,
        json!(true),
        "the Hub page rendered inside a stranger's frame"
    );
    browser.close().await;
}
