//! API keys end to end: create, list, use, rotate, revoke; scopes bounded by the creator's
//! current role; bad keys; audit; the per-key rate limit.

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use whatpro_chatwoot_sim::SimRole;
use whatpro_testkit::TestApp;

use crate::support::{ACCOUNT_A, ACCOUNT_B, add_user, authed, demo, get, login, set_role};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// `SELECT count(*) AS n ...` on the app's database.
pub async fn count(app: &TestApp, sql: &str) -> i64 {
    let mut conn = app.state.pool.get().await.unwrap();
    let rows: Vec<Count> = diesel::sql_query(sql).load(&mut conn).await.unwrap();
    rows.iter().map(|r| r.n).sum()
}

/// Runs a statement on the app's database (behind the app's back).
pub async fn exec(app: &TestApp, sql: &str) {
    let mut conn = app.state.pool.get().await.unwrap();
    diesel::sql_query(sql).execute(&mut conn).await.unwrap();
}

/// A request with any Bearer credential, an optional `Origin` and an optional JSON body:
/// status and JSON body (`Null` when there is none).
pub async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    bearer: &str,
    origin: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = authed(app, method, path, bearer);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `POST .../api-keys` with `token`: status and body.
pub async fn create_key(
    app: &TestApp,
    token: &str,
    account: i64,
    body: Value,
) -> (StatusCode, Value) {
    call(
        app,
        Method::POST,
        &format!("/api/v1/accounts/{account}/api-keys"),
        token,
        None,
        Some(&body),
    )
    .await
}

/// Creates a key and returns `(id, key)`; panics unless it answers 201.
pub async fn new_key(
    app: &TestApp,
    token: &str,
    account: i64,
    scopes: &[&str],
) -> (String, String) {
    let (status, body) = create_key(
        app,
        token,
        account,
        json!({"name": "test key", "scopes": scopes}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["id"].as_str().unwrap().to_owned(),
        body["key"].as_str().unwrap().to_owned(),
    )
}

/// The audit entries of `account` with `action`, read by `admin_token`.
pub async fn audit_rows(
    app: &TestApp,
    admin_token: &str,
    account: i64,
    action: &str,
) -> Vec<Value> {
    let (status, body) = get(
        app,
        &format!("/api/v1/accounts/{account}/audit?action={action}&limit=200"),
        admin_token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().clone()
}

fn members(account: i64) -> String {
    format!("/api/v1/accounts/{account}/members")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_creates_lists_uses_rotates_and_revokes_a_key() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let admin = &demo.carlos.access_token;

    let response = authed(&app, Method::POST, "/api/v1/accounts/1/api-keys", admin)
        .json(&json!({"name": "CI", "scopes": ["members:read", "chat:read"], "expires_at": "2099-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let key = created["key"].as_str().unwrap().to_owned();
    let prefix = created["prefix"].as_str().unwrap();
    assert!(key.starts_with(&format!("whp_{prefix}_")), "{created}");
    assert_eq!(created["name"], "CI");
    assert_eq!(created["scopes"], json!(["chat:read", "members:read"]));
    assert_eq!(created["expires_at"], "2099-01-01T00:00:00Z");
    assert!(created["created_at"].is_string());

    // The key works, repeatedly (the second use is served without argon2).
    for _ in 0..3 {
        let (status, body) = get(&app, &members(ACCOUNT_A), &key).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(!body["data"].as_array().unwrap().is_empty());
    }

    // Listed without the secret or its hash, with the creator and the last use.
    let (status, list) = get(&app, "/api/v1/accounts/1/api-keys", admin).await;
    assert_eq!(status, StatusCode::OK);
    let item = &list["data"][0];
    assert_eq!(item["id"], id.as_str());
    assert_eq!(item["created_by"], 5);
    assert!(item["last_used_at"].is_string(), "{item}");
    assert!(item["revoked_at"].is_null());
    let text = list.to_string();
    assert!(!text.contains(&key) && !text.contains("argon2") && item.get("key").is_none());

    // Rotation: a new secret, the old one dead at once.
    let response = authed(
        &app,
        Method::POST,
        &format!("/api/v1/accounts/1/api-keys/{id}/rotate"),
        admin,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let rotated: Value = response.json().await.unwrap();
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    assert_eq!(rotated["id"], id.as_str());
    assert_eq!(rotated["prefix"], prefix);
    assert_ne!(new_key, key);
    let (status, body) = get(&app, &members(ACCOUNT_A), &key).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("api_key_invalid"))
    );
    let (status, _) = get(&app, &members(ACCOUNT_A), &new_key).await;
    assert_eq!(status, StatusCode::OK);

    // Revocation: dead at once; revoking again changes nothing.
    for _ in 0..2 {
        let response = authed(
            &app,
            Method::DELETE,
            &format!("/api/v1/accounts/1/api-keys/{id}"),
            admin,
        )
        .send()
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    let (status, body) = get(&app, &members(ACCOUNT_A), &new_key).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("api_key_revoked"))
    );
    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/api/v1/accounts/1/api-keys/{id}/rotate"),
        admin,
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("api_key_revoked"))
    );

    // Audited: created, rotated, revoked (once) — and no row per successful use.
    for action in ["api_key.created", "api_key.rotated", "api_key.revoked"] {
        let rows = audit_rows(&app, admin, ACCOUNT_A, action).await;
        assert_eq!(rows.len(), 1, "{action}: {rows:?}");
        assert_eq!(rows[0]["target"], format!("api_key:{id}"));
        assert_eq!(rows[0]["actor"], json!({"type": "user", "id": 5}));
        assert!(!rows[0].to_string().contains(&new_key));
    }
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM audit_log WHERE action LIKE 'api_key.%'"
        )
        .await,
        3
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_expired_and_malformed_keys_are_refused() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let admin = &demo.carlos.access_token;
    let (id, key) = new_key(&app, admin, ACCOUNT_A, &["members:read"]).await;
    let (prefix, secret) = key["whp_".len()..].split_once('_').unwrap();

    let wrong_secret = format!("whp_{prefix}_{}", "0".repeat(secret.len()));
    let wrong_prefix = format!("whp_{}_{secret}", "0".repeat(prefix.len()));
    for (bad, code) in [
        (wrong_secret.as_str(), "api_key_invalid"),
        (wrong_prefix.as_str(), "api_key_invalid"),
        ("whp_", "api_key_invalid"),
        ("whp_ABC_def", "api_key_invalid"),
        ("whp_abc_d-f", "api_key_invalid"),
    ] {
        let (status, body) = get(&app, &members(ACCOUNT_A), bad).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some(code)),
            "{bad}"
        );
    }

    // Expired (moved into the past before its first use).
    let (expiring, expiring_key) = new_key(&app, admin, ACCOUNT_A, &["members:read"]).await;
    exec(
        &app,
        &format!(
            "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = '{expiring}'"
        ),
    )
    .await;
    let (status, body) = get(&app, &members(ACCOUNT_A), &expiring_key).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("api_key_expired"))
    );

    // Keys work only on account routes.
    for path in [
        "/api/v1/me",
        "/api/v1/me/sessions",
        "/api/v1/admin/accounts",
    ] {
        let (status, body) = get(&app, path, &key).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unsupported_credential")),
            "{path}"
        );
    }
    // The good key still works after all that.
    let (status, _) = get(&app, &members(ACCOUNT_A), &key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        count(
            &app,
            &format!("SELECT count(*) AS n FROM api_keys WHERE id = '{id}' AND revoked_at IS NULL")
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn scopes_are_enforced_out_of_scope_uses_are_audited_and_keys_stay_in_their_account() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let admin = &demo.carlos.access_token;
    let (id, key) = new_key(&app, admin, ACCOUNT_A, &["members:read"]).await;

    // Out of scope: the role (admin) allows, the key does not.
    let (status, body) = call(
        &app,
        Method::PATCH,
        "/api/v1/accounts/1/members/6",
        &key,
        None,
        Some(&json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_scope")),
        "{body}"
    );
    let (status, body) = get(&app, "/api/v1/accounts/1/audit", &key).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );
    // Nothing changed.
    let (_, members_now) = get(&app, &members(ACCOUNT_A), admin).await;
    assert!(members_now.to_string().contains("\"role\":\"agent\""));

    // Another tenant: refused (Carlos is a member of 9, the key is not).
    let (status, body) = get(&app, &members(ACCOUNT_B), &key).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("token_account_mismatch"))
    );

    let denied = audit_rows(&app, admin, ACCOUNT_A, "api_key.denied").await;
    assert_eq!(denied.len(), 3, "{denied:?}");
    assert!(
        denied
            .iter()
            .all(|r| r["actor"] == json!({"type": "api_key", "id": id}))
    );
    let reasons: Vec<&str> = denied
        .iter()
        .map(|r| r["metadata"]["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"insufficient_scope") && reasons.contains(&"token_account_mismatch"));
    assert!(
        denied
            .iter()
            .any(|r| r["metadata"]["required_scope"] == "members:write")
    );
    assert!(
        audit_rows(&app, admin, ACCOUNT_A, "member.role_changed")
            .await
            .is_empty()
    );

    // A key that may change roles is audited as the key.
    let (writer_id, writer) = new_key(&app, admin, ACCOUNT_A, &["members:write"]).await;
    let (status, body) = call(
        &app,
        Method::PATCH,
        "/api/v1/accounts/1/members/6",
        &writer,
        None,
        Some(&json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let changed = audit_rows(&app, admin, ACCOUNT_A, "member.role_changed").await;
    assert_eq!(
        changed[0]["actor"],
        json!({"type": "api_key", "id": writer_id})
    );

    // A key with api_keys:write cannot mint a key with more than its own scopes.
    let (_, minter) = new_key(&app, admin, ACCOUNT_A, &["api_keys:write"]).await;
    let (status, body) = create_key(
        &app,
        &minter,
        ACCOUNT_A,
        json!({"name": "x", "scopes": ["members:write"]}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );
    let (status, body) = create_key(
        &app,
        &minter,
        ACCOUNT_A,
        json!({"name": "x", "scopes": ["api_keys:write"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Nor take over a stronger key by rotating it.
    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/api/v1/accounts/1/api-keys/{writer_id}/rotate"),
        &minter,
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_acts_with_its_creators_current_role_and_dies_with_the_membership() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let carlos = &demo.carlos.access_token;
    let token = add_user(&app, 100, &[(ACCOUNT_A, SimRole::Administrator)]);
    let second_admin = login(&app, &token).await;
    let (_, key) = new_key(
        &app,
        &second_admin.access_token,
        ACCOUNT_A,
        &["members:read", "members:write"],
    )
    .await;
    let promote = json!({"role": "viewer"});
    let (status, _) = call(
        &app,
        Method::PATCH,
        "/api/v1/accounts/1/members/6",
        &key,
        None,
        Some(&promote),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // The creator is demoted: the key loses what the role lost, at once.
    set_role(&app, &demo.carlos, ACCOUNT_A, 100, "agent").await;
    let (status, body) = call(
        &app,
        Method::PATCH,
        "/api/v1/accounts/1/members/6",
        &key,
        None,
        Some(&json!({"role": "agent"})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (status, _) = get(&app, &members(ACCOUNT_A), &key).await;
    assert_eq!(status, StatusCode::OK, "agents may still read members");
    // Only admins manage keys.
    let (status, body) = get(
        &app,
        "/api/v1/accounts/1/api-keys",
        &second_admin.access_token,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );

    // The creator leaves the account (seen at their next sign-in): the key is refused.
    app.chatwoot.remove_membership(100, ACCOUNT_A);
    login(&app, &token).await;
    let (status, body) = get(&app, &members(ACCOUNT_A), &key).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_a_member"))
    );

    // A suspended account refuses its keys too.
    let (_, carlos_key) = new_key(&app, carlos, ACCOUNT_A, &["members:read"]).await;
    app.chatwoot
        .set_account_status(ACCOUNT_A, whatpro_chatwoot_sim::AccountStatus::Suspended);
    login(&app, &demo.seed.admin.access_token).await;
    let (status, body) = get(&app, &members(ACCOUNT_A), &carlos_key).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_a_member"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_creation_requests_get_a_clear_4xx_and_create_nothing() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let admin = &demo.carlos.access_token;
    let long = "x".repeat(101);
    let cases = [
        (
            json!({"name": "", "scopes": ["members:read"]}),
            422,
            "validation_failed",
        ),
        (
            json!({"name": "   ", "scopes": ["members:read"]}),
            422,
            "validation_failed",
        ),
        (
            json!({"name": long, "scopes": ["members:read"]}),
            422,
            "validation_failed",
        ),
        (json!({"name": "k", "scopes": []}), 422, "validation_failed"),
        (
            json!({"name": "k", "scopes": ["members:read", "root:write"]}),
            422,
            "unknown_scope",
        ),
        (
            json!({"name": "k", "scopes": ["usage:write"]}),
            422,
            "unknown_scope",
        ),
        (
            json!({"name": "k", "scopes": ["members:read"], "expires_at": "2001-01-01T00:00:00Z"}),
            422,
            "validation_failed",
        ),
        (
            json!({"name": "k", "scopes": ["members:read"], "expires_at": "tomorrow"}),
            422,
            "validation_failed",
        ),
        (json!({"name": "k"}), 422, "validation_failed"),
        (
            json!({"name": 5, "scopes": ["members:read"]}),
            422,
            "validation_failed",
        ),
    ];
    for (body, status, code) in cases {
        let (got, answer) = create_key(&app, admin, ACCOUNT_A, body.clone()).await;
        assert_eq!(
            (got.as_u16(), answer["code"].as_str()),
            (status, Some(code)),
            "{body}: {answer}"
        );
    }
    // Not an admin; not a member; no credential.
    let (status, body) = create_key(
        &app,
        &demo.ana.access_token,
        ACCOUNT_A,
        json!({"name": "k", "scopes": ["chat:read"]}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (status, _) = create_key(
        &app,
        &demo.ana.access_token,
        ACCOUNT_B,
        json!({"name": "k", "scopes": ["chat:read"]}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let response = app
        .client
        .post(app.url("/api/v1/accounts/1/api-keys"))
        .json(&json!({"name": "k", "scopes": ["chat:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM api_keys").await, 0);

    // Rotating or revoking what is not a key of this account: 404, nothing changes.
    let (b_key_id, _) = {
        let token = add_user(&app, 201, &[(ACCOUNT_B, SimRole::Administrator)]);
        let b_admin = login(&app, &token).await;
        new_key(&app, &b_admin.access_token, ACCOUNT_B, &["members:read"]).await
    };
    for id in [b_key_id.as_str(), "0193b1a8-0000-7000-8000-000000000000"] {
        for (method, path) in [
            (
                Method::POST,
                format!("/api/v1/accounts/1/api-keys/{id}/rotate"),
            ),
            (Method::DELETE, format!("/api/v1/accounts/1/api-keys/{id}")),
        ] {
            let (status, body) = call(&app, method, &path, admin, None, None).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (StatusCode::NOT_FOUND, Some("api_key_not_found")),
                "{path}"
            );
        }
    }
    let (status, body) = call(
        &app,
        Method::DELETE,
        "/api/v1/accounts/1/api-keys/not-a-uuid",
        admin,
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_path"))
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL AND rotated_at IS NULL"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_key_is_rate_limited_with_retry_after() {
    let app = TestApp::builder()
        .var("HUB_API_KEY_RATE_PER_MINUTE", "3")
        .start()
        .await;
    let demo = demo(&app).await;
    let (_, key) = new_key(
        &app,
        &demo.carlos.access_token,
        ACCOUNT_A,
        &["members:read"],
    )
    .await;
    let (_, other) = new_key(
        &app,
        &demo.carlos.access_token,
        ACCOUNT_A,
        &["members:read"],
    )
    .await;
    for _ in 0..3 {
        let (status, _) = get(&app, &members(ACCOUNT_A), &key).await;
        assert_eq!(status, StatusCode::OK);
    }
    let response = authed(&app, Method::GET, &members(ACCOUNT_A), &key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    // Another key has its own budget; the access token is not limited by the key's.
    let (status, _) = get(&app, &members(ACCOUNT_A), &other).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = get(&app, &members(ACCOUNT_A), &demo.carlos.access_token).await;
    assert_eq!(status, StatusCode::OK);
}
