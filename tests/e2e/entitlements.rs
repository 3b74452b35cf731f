//! Plans, entitlements, feature flags and usage metering end to end.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use whatpro_chatwoot_sim::{NewSimUser, SimRole};
use whatpro_testkit::TestApp;

use crate::api_keys::{call, new_key};
use crate::support::{ACCOUNT_A, ACCOUNT_B, Login, demo, get, login};

const ROOT_EMAIL: &str = "root@example.com";

/// An app whose user 300 (`root@example.com`, agent of account 50 only) is a super_admin.
async fn app_with_root() -> (TestApp, Login) {
    let app = TestApp::builder()
        .var("HUB_SUPER_ADMIN_EMAILS", ROOT_EMAIL)
        .start()
        .await;
    app.chatwoot.add_account(50, "Ops");
    let token = "root-token-xxxxxxxxxxxx";
    app.chatwoot
        .add_user(NewSimUser::new(300, "Root", ROOT_EMAIL, token));
    app.chatwoot.add_membership(300, 50, SimRole::Agent);
    let root = login(&app, token).await;
    (app, root)
}

async fn put(app: &TestApp, path: &str, bearer: &str, body: Value) -> (StatusCode, Value) {
    call(app, Method::PUT, path, bearer, None, Some(&body)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plan_list_is_public_and_seeded() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/v1/plans").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["trial", "starter", "pro"]);
    let trial = &body["data"][0];
    assert_eq!(trial["price_cents"], 0);
    assert_eq!(trial["limits"]["max_providers"], 2);
    assert_eq!(trial["features"]["kanban"], true);
    // Every limit and feature is listed, unlimited as null.
    assert_eq!(
        body["data"][2]["limits"]["max_messages_per_month"],
        Value::Null
    );
    assert_eq!(trial["limits"].as_object().unwrap().len(), 8);
    assert_eq!(trial["features"].as_object().unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn super_admins_create_and_edit_plans_and_nobody_else_can() {
    let (app, root) = app_with_root().await;
    let demo = demo(&app).await;
    let plan = json!({
        "name": "Enterprise",
        "price_cents": 99900,
        "limits": {"max_providers": 50, "max_messages_per_month": null},
        "features": {"kanban": true, "providers": true}
    });
    let (status, body) = put(
        &app,
        "/api/v1/admin/plans/enterprise",
        &demo.carlos.access_token,
        plan.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = put(
        &app,
        "/api/v1/admin/plans/enterprise",
        &root.access_token,
        plan.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["limits"]["max_providers"], 50);
    assert_eq!(body["features"]["api_access"], false, "left out: off");
    let (status, _) = put(
        &app,
        "/api/v1/admin/plans/enterprise",
        &root.access_token,
        plan,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "replaced");

    for (bad, code) in [
        (json!({"name": "", "price_cents": 1}), "validation_failed"),
        (json!({"name": "X", "price_cents": -1}), "validation_failed"),
        (
            json!({"name": "X", "price_cents": 1, "limits": {"max_unicorns": 1}}),
            "validation_failed",
        ),
        (
            json!({"name": "X", "price_cents": 1, "limits": {"max_rooms": -2}}),
            "validation_failed",
        ),
        (
            json!({"name": "X", "price_cents": 1, "features": {"teleport": true}}),
            "validation_failed",
        ),
    ] {
        let (status, body) = put(
            &app,
            "/api/v1/admin/plans/broken",
            &root.access_token,
            bad.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["code"], code);
    }
    let (status, _) = put(
        &app,
        "/api/v1/admin/plans/Not%20An%20Id",
        &root.access_token,
        json!({"name": "X", "price_cents": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let response = app.get("/api/v1/plans").await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["data"].as_array().unwrap().len(),
        4,
        "nothing broken was stored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn overrides_change_one_account_and_feature_flags_close_routes() {
    let (app, root) = app_with_root().await;
    let demo = demo(&app).await;
    let carlos = &demo.carlos.access_token;
    let (_, key) = new_key(&app, carlos, ACCOUNT_A, &["api_keys:read", "members:read"]).await;

    let (status, body) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/entitlements"),
        carlos,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["plan_id"], "trial");
    assert_eq!(body["usage"]["agents"], 2, "Carlos and Ana");
    assert_eq!(body["features"]["api_access"], true);

    // Only admins of the platform set overrides.
    let path = format!("/api/v1/admin/accounts/{ACCOUNT_A}/entitlements");
    let (status, _) = put(&app, &path, carlos, json!({"plan_id": "pro"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = put(
        &app,
        &path,
        &root.access_token,
        json!({"plan_id": "starter", "limits": {"max_providers": 7}, "features": {"kanban": false}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["plan_id"], "starter");
    assert_eq!(body["limits"]["max_providers"], 7);
    assert_eq!(body["features"]["kanban"], false);
    assert_eq!(
        body["features"]["api_access"], false,
        "starter has no API access"
    );

    // API keys: their routes and their use answer 403 feature_disabled.
    let (status, body) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/api-keys"),
        carlos,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("feature_disabled")),
        "{body}"
    );
    assert_eq!(body["details"][0]["feature"], "api_access");
    let (status, body) = get(&app, &format!("/api/v1/accounts/{ACCOUNT_A}/members"), &key).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("feature_disabled")),
        "{body}"
    );
    // Sessions still work where no feature is needed.
    let (status, _) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/members"),
        carlos,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/features"),
        carlos,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["features"]["kanban"], false);

    // Account B is untouched.
    let (status, body) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_B}/entitlements"),
        carlos,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["plan_id"], "trial");

    // A partial update keeps the other parts; unknown plan and account are 404.
    let (status, body) = put(&app, &path, &root.access_token, json!({"features": {}})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["limits"]["max_providers"], 7, "limits kept");
    assert_eq!(
        body["features"]["kanban"], true,
        "feature overrides cleared"
    );
    let (status, body) = put(&app, &path, &root.access_token, json!({"plan_id": "gold"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("plan_not_found"))
    );
    let (status, body) = put(
        &app,
        "/api/v1/admin/accounts/777/entitlements",
        &root.access_token,
        json!({"plan_id": "pro"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("account_not_found"))
    );
    let (status, _) = put(
        &app,
        &path,
        &root.access_token,
        json!({"limits": {"max_rooms": "many"}}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a wrong JSON type"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_is_metered_in_batches_and_reported_per_day() {
    let (app, root) = app_with_root().await;
    let demo = demo(&app).await;
    let carlos = &demo.carlos.access_token;
    let ana = &demo.ana.access_token;
    for _ in 0..3 {
        get(
            &app,
            &format!("/api/v1/accounts/{ACCOUNT_A}/members"),
            carlos,
        )
        .await;
    }
    get(&app, &format!("/api/v1/accounts/{ACCOUNT_A}/members"), ana).await;
    // Nothing is written per request: the counters wait for the flush.
    assert_eq!(
        crate::api_keys::count(&app, "SELECT count(*) AS n FROM usage_daily").await,
        0
    );
    assert!(app.state.metering.flush().await.unwrap() > 0);

    let today = time::OffsetDateTime::now_utc().date().to_string();
    let (status, body) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/usage?from={today}&to={today}"),
        carlos,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let day = &body["data"][0];
    assert_eq!(day["date"], today.as_str());
    assert_eq!(day["api_calls"], 4);
    assert_eq!(day["active_users"], 2);
    let (status, body) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/usage/active-users"),
        carlos,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            body["dau"].as_i64(),
            body["wau"].as_i64(),
            body["mau"].as_i64()
        ),
        (Some(2), Some(2), Some(2))
    );
    assert_eq!(body["time_zone"], "UTC");

    // Agents may not read usage; bad ranges are 422.
    let (status, _) = get(&app, &format!("/api/v1/accounts/{ACCOUNT_A}/usage"), ana).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for query in [
        "from=2026-13-01",
        "from=2026-11-30&to=2026-11-01",
        "from=2020-01-01&to=2026-01-01",
    ] {
        let (status, body) = get(
            &app,
            &format!("/api/v1/accounts/{ACCOUNT_A}/usage?{query}"),
            carlos,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
    }
    // Default range: the last 30 days.
    let (_, body) = get(&app, &format!("/api/v1/accounts/{ACCOUNT_A}/usage"), carlos).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 30);

    let (status, body) = get(&app, "/api/v1/admin/usage", &root.access_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["api_calls"], 4, "only flushed counters: {body}");
    assert_eq!(body["active_users"], 2);
    let (status, _) = get(&app, "/api/v1/admin/usage", carlos).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_counters_are_flushed_when_the_server_stops() {
    let app = TestApp::builder()
        .var("HUB_USAGE_FLUSH_SECS", "3600")
        .start()
        .await;
    let demo = demo(&app).await;
    get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/members"),
        &demo.carlos.access_token,
    )
    .await;
    app.stop().await;
    assert_eq!(
        crate::api_keys::count(&app, "SELECT sum(api_calls)::int8 AS n FROM usage_daily").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_set_the_time_zone_of_usage_days() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let path = format!("/api/v1/accounts/{ACCOUNT_A}/settings");
    let (status, body) = call(
        &app,
        Method::PATCH,
        &path,
        &demo.carlos.access_token,
        None,
        Some(&json!({"time_zone": "America/Sao_Paulo"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["time_zone"], "America/Sao_Paulo");
    let (_, active) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/usage/active-users"),
        &demo.carlos.access_token,
    )
    .await;
    assert_eq!(active["time_zone"], "America/Sao_Paulo");
    for bad in ["Mars/Olympus_Mons", "", "'; DROP TABLE accounts; --"] {
        let (status, body) = call(
            &app,
            Method::PATCH,
            &path,
            &demo.carlos.access_token,
            None,
            Some(&json!({"time_zone": bad})),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (status, _) = call(
        &app,
        Method::PATCH,
        &path,
        &demo.ana.access_token,
        None,
        Some(&json!({"time_zone": "UTC"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "agents may not");
    let (_, active) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/usage/active-users"),
        &demo.carlos.access_token,
    )
    .await;
    assert_eq!(
        active["time_zone"], "America/Sao_Paulo",
        "unchanged by refused calls"
    );
}
