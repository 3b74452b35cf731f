//! The Platform App: signed install/uninstall events (forged, stale, replayed and malformed
//! ones change nothing), uninstall cutting members off at once, the embedding configuration,
//! and the Dashboard App registration in Chatwoot.

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use whatpro_testkit::TestApp;

use crate::support::{ACCOUNT_A, ACCOUNT_B, authed, demo, get, login, refresh};

const SECRET: &str = "platform-app-test-secret";

async fn app() -> TestApp {
    TestApp::builder()
        .var("HUB_PLATFORM_APP_SECRET", SECRET)
        .start()
        .await
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// Posts `body` with the given timestamp and signature headers (`None`: header left out).
async fn post_raw(
    app: &TestApp,
    body: &[u8],
    timestamp: Option<String>,
    signature: Option<String>,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(app.url("/api/v1/platform-app/events"))
        .header("content-type", "application/json")
        .header("x-whatpro-delivery", "delivery-1")
        .body(body.to_vec());
    if let Some(timestamp) = timestamp {
        request = request.header("x-whatpro-timestamp", timestamp);
    }
    if let Some(signature) = signature {
        request = request.header("x-whatpro-signature", signature);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Posts `body` signed with `secret` at `timestamp`.
async fn post_signed(
    app: &TestApp,
    secret: &str,
    timestamp: i64,
    body: &[u8],
) -> (StatusCode, Value) {
    let ts = timestamp.to_string();
    let sig = signature(secret, &ts, body);
    post_raw(app, body, Some(ts), Some(sig)).await
}

/// Posts a correctly signed event.
async fn send_event(app: &TestApp, id: &str, event: &str, account: i64) -> (StatusCode, Value) {
    let body = json!({"id": id, "event": event, "account": {"id": account, "name": format!("Account {account}")}});
    post_signed(app, SECRET, now(), body.to_string().as_bytes()).await
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    let mut conn = app.state.pool.get().await.unwrap();
    let rows: Vec<Count> = diesel::sql_query(sql).load(&mut conn).await.unwrap();
    rows[0].n
}

/// Everything an event may change, as one comparable tuple.
async fn footprint(app: &TestApp) -> (i64, i64, i64, i64) {
    (
        count(app, "SELECT count(*) AS n FROM platform_app_events").await,
        count(app, "SELECT count(*) AS n FROM accounts").await,
        count(
            app,
            "SELECT count(*) AS n FROM accounts WHERE uninstalled_at IS NOT NULL",
        )
        .await,
        count(
            app,
            "SELECT count(*) AS n FROM audit_log WHERE action LIKE 'account.%'",
        )
        .await,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_event_installs_the_account_once() {
    let app = app().await;
    let (status, body) = send_event(&app, "evt-1", "account.installed", 77).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"id": "evt-1", "status": "applied"}));
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM accounts WHERE id = 77 AND name = 'Account 77' AND uninstalled_at IS NULL"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM audit_log WHERE account_id = 77 AND action = 'account.installed' AND actor_type = 'system' AND metadata->>'event_id' = 'evt-1' AND metadata->>'delivery' = 'delivery-1'"
        )
        .await,
        1
    );
    let before = footprint(&app).await;

    // The same id again, even as another event: acknowledged, no second effect.
    for event in ["account.installed", "account.uninstalled"] {
        let (status, body) = send_event(&app, "evt-1", event, 77).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "duplicate");
    }
    assert_eq!(footprint(&app).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_stale_and_malformed_events_get_clear_4xx_and_change_nothing() {
    let app = app().await;
    let before = footprint(&app).await;
    let good =
        json!({"id": "evt-x", "event": "account.installed", "account": {"id": 78, "name": "X"}})
            .to_string()
            .into_bytes();
    let ts = now().to_string();

    let cases: Vec<(&str, (StatusCode, Value), StatusCode, &str)> = vec![
        (
            "signed with another secret",
            post_signed(&app, "not-the-secret", now(), &good).await,
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
        ),
        (
            "signature of another body",
            post_raw(
                &app,
                &good,
                Some(ts.clone()),
                Some(signature(SECRET, &ts, b"{}")),
            )
            .await,
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
        ),
        (
            "signature of another timestamp",
            post_raw(
                &app,
                &good,
                Some(ts.clone()),
                Some(signature(SECRET, &(now() - 1).to_string(), &good)),
            )
            .await,
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
        ),
        (
            "no signature",
            post_raw(&app, &good, Some(ts.clone()), None).await,
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
        ),
        (
            "no timestamp",
            post_raw(&app, &good, None, Some(signature(SECRET, &ts, &good))).await,
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
        ),
        (
            "garbage signature",
            post_raw(
                &app,
                &good,
                Some(ts.clone()),
                Some("sha256=zzzz".to_owned()),
            )
            .await,
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
        ),
        (
            "six minutes old",
            post_signed(&app, SECRET, now() - 360, &good).await,
            StatusCode::UNAUTHORIZED,
            "stale_timestamp",
        ),
        (
            "six minutes ahead",
            post_signed(&app, SECRET, now() + 360, &good).await,
            StatusCode::UNAUTHORIZED,
            "stale_timestamp",
        ),
        (
            "not JSON",
            post_signed(&app, SECRET, now(), b"{\"id\": ").await,
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "wrong shape",
            post_signed(
                &app,
                SECRET,
                now(),
                br#"{"id": 5, "event": "account.installed"}"#,
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "unknown event",
            post_signed(
                &app,
                SECRET,
                now(),
                br#"{"id": "evt-u", "event": "account.deleted", "account": {"id": 78}}"#,
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_event",
        ),
        (
            "empty id",
            post_signed(
                &app,
                SECRET,
                now(),
                br#"{"id": "", "event": "account.installed", "account": {"id": 78}}"#,
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_event",
        ),
        (
            "account id zero",
            post_signed(
                &app,
                SECRET,
                now(),
                br#"{"id": "evt-0", "event": "account.installed", "account": {"id": 0}}"#,
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_event",
        ),
    ];
    for (label, (status, body), expected, code) in cases {
        assert_eq!(status, expected, "{label}: {body}");
        assert_eq!(body["code"], code, "{label}: {body}");
        assert!(body["request_id"].is_string(), "{label}: {body}");
    }
    assert_eq!(
        footprint(&app).await,
        before,
        "a refused event changed state"
    );

    // The good event itself still works (nothing above consumed its id).
    let (status, body) = post_signed(&app, SECRET, now(), &good).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "applied");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_secret_events_are_refused_with_503() {
    let app = TestApp::spawn().await;
    let body = json!({"id": "e", "event": "account.installed", "account": {"id": 1}}).to_string();
    let (status, json) = post_signed(&app, SECRET, now(), body.as_bytes()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{json}");
    assert_eq!(json["code"], "platform_app_not_configured");
    assert_eq!(footprint(&app).await.0, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn uninstall_cuts_members_off_at_once_and_only_reinstall_brings_them_back() {
    let app = app().await;
    let demo = demo(&app).await;
    let members_a = format!("/api/v1/accounts/{ACCOUNT_A}/members");
    let members_b = format!("/api/v1/accounts/{ACCOUNT_B}/members");
    // Warm the principal cache: the uninstall must invalidate it, not wait for its TTL.
    for token in [&demo.carlos.access_token, &demo.ana.access_token] {
        assert_eq!(get(&app, &members_a, token).await.0, StatusCode::OK);
    }

    // Machine credentials made before the uninstall: an instance token and an API key.
    let response = authed(
        &app,
        Method::POST,
        "/api/v1/instance-tokens",
        &demo.carlos.access_token,
    )
    .json(&json!({"account_id": ACCOUNT_A, "scopes": ["members:read"], "origin": app.address}))
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let instance_token = response.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = authed(
        &app,
        Method::POST,
        &format!("/api/v1/accounts/{ACCOUNT_A}/api-keys"),
        &demo.carlos.access_token,
    )
    .json(&json!({"name": "before uninstall", "scopes": ["members:read"]}))
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let api_key = response.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let validate = |token: String| {
        let request = app
            .client
            .get(app.url("/api/v1/instance-tokens/validate"))
            .bearer_auth(token)
            .header("origin", &app.address);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(validate(instance_token.clone()).await, StatusCode::OK);
    assert_eq!(get(&app, &members_a, &api_key).await.0, StatusCode::OK);

    let (status, body) = send_event(&app, "evt-un-1", "account.uninstalled", ACCOUNT_A).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Every credential of the account is refused at once.
    assert!(validate(instance_token.clone()).await.is_client_error());
    let (status, body) = get(&app, &members_a, &api_key).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let session = app.chatwoot.sign_in(demo.seed.admin.id);
    let response = app
        .client
        .post(app.url("/api/v1/instance-tokens"))
        .header("origin", app.chatwoot.url())
        .json(&json!({
            "account_id": ACCOUNT_A,
            "scopes": ["members:read"],
            "origin": app.address,
            "chatwoot_session": {"access-token": session.access_token, "client": session.client, "uid": session.uid},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "a token for an uninstalled account"
    );

    for token in [&demo.carlos.access_token, &demo.ana.access_token] {
        let (status, body) = get(&app, &members_a, token).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["code"], "not_a_member");
    }
    // Other accounts of the same user are untouched.
    assert_eq!(
        get(&app, &members_b, &demo.carlos.access_token).await.0,
        StatusCode::OK
    );
    let (_, me) = get(&app, "/api/v1/me", &demo.carlos.access_token).await;
    assert_eq!(
        me["accounts"],
        json!([{"id": 9, "name": "Cliente Beta", "role": "agent"}])
    );

    // A new Chatwoot login (Chatwoot still lists the account as active) and a refresh do not
    // bring it back.
    let again = login(&app, &demo.seed.admin.access_token).await;
    let ids: Vec<i64> = again.body["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![ACCOUNT_B]);
    let (status, body) = get(&app, &members_a, &again.access_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, refreshed) = refresh(&app, &again.refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_eq!(refreshed["accounts"].as_array().unwrap().len(), 1);
    // Asking to sign in to the uninstalled account is refused and leaves no session behind.
    let (_, before) = get(&app, "/api/v1/me/sessions", &again.access_token).await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/sso"))
        .json(&json!({"chatwoot_access_token": demo.seed.admin.access_token, "account_id": ACCOUNT_A, "token_delivery": "body"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "not_a_member"
    );
    let (_, after) = get(&app, "/api/v1/me/sessions", &again.access_token).await;
    assert_eq!(
        before["data"].as_array().unwrap().len(),
        after["data"].as_array().unwrap().len()
    );
    // The data is kept.
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM account_members WHERE account_id = 1"
        )
        .await,
        2
    );

    let (status, body) = send_event(&app, "evt-in-2", "account.installed", ACCOUNT_A).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for token in [&demo.carlos.access_token, &demo.ana.access_token] {
        assert_eq!(get(&app, &members_a, token).await.0, StatusCode::OK);
    }
    assert_eq!(validate(instance_token).await, StatusCode::OK);
    assert_eq!(get(&app, &members_a, &api_key).await.0, StatusCode::OK);

    // Both changes are in the account's audit log, by the system.
    let (status, audit) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/audit?action=account.uninstalled"),
        &demo.carlos.access_token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let entry = &audit["data"][0];
    assert_eq!(entry["actor"], json!({"type": "system", "id": null}));
    assert_eq!(entry["target"], "account:1");
    assert_eq!(entry["metadata"]["event_id"], "evt-un-1");
    let (_, audit) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/audit?action=account.installed"),
        &demo.carlos.access_token,
    )
    .await;
    assert_eq!(audit["data"].as_array().unwrap().len(), 1, "{audit}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_uninstalled_before_anyone_signed_in_stays_closed() {
    let app = app().await;
    let (status, body) = send_event(&app, "evt-early", "account.uninstalled", ACCOUNT_A).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let demo = demo(&app).await;
    let (status, body) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/members"),
        &demo.carlos.access_token,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM accounts WHERE id = 1 AND name = 'WhatPro Demo'"
        )
        .await,
        1,
        "the login refreshed the name but not the installation"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_embedding_configuration_needs_a_signed_in_user() {
    let app = TestApp::builder()
        .var("HUB_ALLOWED_ORIGINS", "https://app.whatpro.example")
        .start()
        .await;
    let response = app.get("/api/v1/platform-app/config").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let demo = demo(&app).await;
    let (status, body) = get(
        &app,
        "/api/v1/platform-app/config",
        &demo.carlos.access_token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["iframe_url"], app.url("/embed/app"));
    assert_eq!(
        body["dashboard_script_url"],
        app.url("/embed/dashboard-script.js")
    );
    assert_eq!(
        body["allowed_origins"],
        json!([app.chatwoot.url(), "https://app.whatpro.example"])
    );
    let features = body["features"].as_array().unwrap();
    assert_eq!(features.len(), 2, "{body}");
    for (item, account) in features.iter().zip([ACCOUNT_A, ACCOUNT_B]) {
        assert_eq!(item["account_id"], account);
        for name in [
            "kanban",
            "internal_chat",
            "providers",
            "api_access",
            "embed",
        ] {
            assert_eq!(item["features"][name], true, "{body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_register_the_hub_as_a_dashboard_app_once() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let path = format!("/api/v1/accounts/{ACCOUNT_A}/chatwoot/dashboard-app");
    let register = |token: String, body: Value| {
        let request = authed(&app, Method::POST, &path, &token).json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let admin_cw = json!({"api_access_token": demo.seed.admin.access_token});

    // An agent of the Hub is refused before Chatwoot is called.
    let (status, body) = register(demo.ana.access_token.clone(), admin_cw.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(app.chatwoot.dashboard_apps(ACCOUNT_A).is_empty());

    // No Chatwoot token, or one Chatwoot refuses (an agent's).
    let (status, body) = register(demo.carlos.access_token.clone(), json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "chatwoot_token_required");
    let (status, body) = register(
        demo.carlos.access_token.clone(),
        json!({"api_access_token": demo.seed.agent.access_token}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "chatwoot_credentials_invalid");
    assert!(app.chatwoot.dashboard_apps(ACCOUNT_A).is_empty());

    let (status, created) = register(demo.carlos.access_token.clone(), admin_cw.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["title"], "WhatPro Hub");
    assert_eq!(
        created["content"],
        json!([{"type": "frame", "url": app.url("/embed/app")}])
    );
    assert!(created["created_at"].is_string());
    let apps = app.chatwoot.dashboard_apps(ACCOUNT_A);
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0]["id"], created["id"]);

    // Again: the existing app is answered, nothing is created.
    let (status, again) = register(demo.carlos.access_token.clone(), admin_cw.clone()).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], created["id"]);
    assert_eq!(app.chatwoot.dashboard_apps(ACCOUNT_A).len(), 1);

    // Chatwoot gone: 503.
    app.chatwoot.shutdown();
    let (status, body) = register(demo.carlos.access_token.clone(), admin_cw).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "chatwoot_unavailable");
}
