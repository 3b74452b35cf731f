//! Members and roles, the audit log, the super_admin account list.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use whatpro_chatwoot_sim::SimRole;
use whatpro_testkit::TestApp;

use crate::support::{ACCOUNT_A, add_user, authed, demo, get, login, set_role};

#[tokio::test(flavor = "multi_thread")]
async fn members_are_listed_with_hub_and_chatwoot_roles_and_paginated() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    for id in 10..15 {
        let token = add_user(&app, id, &[(ACCOUNT_A, SimRole::Agent)]);
        login(&app, &token).await;
    }
    let (status, page) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/members?limit=3"),
        &demo.ana.access_token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let first: Vec<i64> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_i64().unwrap())
        .collect();
    assert_eq!(first, [5, 6, 10]);
    assert_eq!(page["data"][0]["role"], "admin");
    assert_eq!(page["data"][0]["chatwoot_role"], "administrator");
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/members?limit=50&cursor={cursor}"),
        &demo.ana.access_token,
    )
    .await;
    let rest: Vec<i64> = rest["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_i64().unwrap())
        .collect();
    assert_eq!(rest, [11, 12, 13, 14]);

    let (status, body) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/members?cursor=zz"),
        &demo.ana.access_token,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_cursor");
    let (status, body) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/members?limit=abc"),
        &demo.ana.access_token,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_query");
    let (status, page) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/members?limit=5000"),
        &demo.ana.access_token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "limits above 200 are clamped");
    assert_eq!(page["data"].as_array().unwrap().len(), 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_change_roles_which_apply_at_once_and_are_audited() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    set_role(&app, &demo.carlos, ACCOUNT_A, 6, "viewer").await;

    // Ana's existing token now carries the viewer role.
    let (_, me) = get(&app, "/api/v1/me", &demo.ana.access_token).await;
    assert_eq!(me["accounts"][0]["role"], "viewer");

    // The override survives Ana's next login (her Chatwoot role is unchanged).
    let again = login(&app, &demo.seed.agent.access_token).await;
    assert_eq!(again.body["accounts"][0]["role"], "viewer");

    let (_, audit) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/audit?action=member.role_changed"),
        &demo.carlos.access_token,
    )
    .await;
    let entry = &audit["data"][0];
    assert_eq!(entry["actor"], json!({"type": "user", "id": 5}));
    assert_eq!(entry["target"], "user:6");
    assert_eq!(entry["metadata"]["from"], "agent");
    assert_eq!(entry["metadata"]["to"], "viewer");
    assert!(entry["request_id"].as_str().is_some_and(|r| !r.is_empty()));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_role_changes_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let patch = |token: String, user: i64, body: Value| {
        let request = authed(
            &app,
            Method::PATCH,
            &format!("/api/v1/accounts/{ACCOUNT_A}/members/{user}"),
            &token,
        )
        .json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let carlos = demo.carlos.access_token.clone();
    for (token, user, body, status, code) in [
        (
            carlos.clone(),
            6,
            json!({"role": "owner"}),
            422,
            "invalid_role",
        ),
        (
            carlos.clone(),
            6,
            json!({"role": "super_admin"}),
            422,
            "invalid_role",
        ),
        (carlos.clone(), 6, json!({}), 422, "validation_failed"),
        (
            carlos.clone(),
            5,
            json!({"role": "agent"}),
            409,
            "last_admin",
        ),
        (
            carlos.clone(),
            424242,
            json!({"role": "agent"}),
            404,
            "member_not_found",
        ),
        (
            demo.ana.access_token.clone(),
            6,
            json!({"role": "admin"}),
            403,
            "forbidden",
        ),
    ] {
        let (got, json) = patch(token, user, body.clone()).await;
        assert_eq!(got.as_u16(), status, "{body} -> {json}");
        assert_eq!(json["code"], code);
    }
    let (_, members) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/members"),
        &carlos,
    )
    .await;
    let roles: Vec<(i64, String)> = members["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user_id"].as_i64().unwrap(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(roles, [(5, "admin".to_owned()), (6, "agent".to_owned())]);

    // With a second admin the first may step down.
    set_role(&app, &demo.carlos, ACCOUNT_A, 6, "admin").await;
    set_role(&app, &demo.carlos, ACCOUNT_A, 5, "supervisor").await;
    let (status, _) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/audit"),
        &demo.carlos.access_token,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a demoted admin loses admin rights at once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_log_is_newest_first_filterable_and_paginated() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    for _ in 0..3 {
        login(&app, &demo.seed.agent.access_token).await;
    }
    let base = format!("/api/v1/accounts/{ACCOUNT_A}/audit");
    let (status, page) = get(
        &app,
        &format!("{base}?action=auth.login&limit=2"),
        &demo.carlos.access_token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let rows = page["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["action"] == "auth.login"));
    assert!(rows[0]["created_at"].as_str() >= rows[1]["created_at"].as_str());
    for key in [
        "id",
        "action",
        "actor",
        "target",
        "metadata",
        "request_id",
        "created_at",
    ] {
        assert!(rows[0].get(key).is_some(), "{key}");
    }
    let mut seen: Vec<String> = rows
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let mut cursor = page["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let (_, next) = get(
            &app,
            &format!("{base}?action=auth.login&limit=2&cursor={c}"),
            &demo.carlos.access_token,
        )
        .await;
        seen.extend(
            next["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_owned()),
        );
        cursor = next["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 5, "2 demo logins + 3 more");
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 5);
    // No secret ever appears in the audit log.
    let (_, all) = get(
        &app,
        &format!("{base}?limit=200"),
        &demo.carlos.access_token,
    )
    .await;
    let text = all.to_string();
    for secret in [
        demo.seed.admin.access_token.as_str(),
        demo.carlos.refresh_token.as_str(),
        demo.carlos.access_token.as_str(),
    ] {
        assert!(!text.contains(secret));
    }
    let (status, body) = get(
        &app,
        &format!("{base}?action=Robert'); DROP TABLE"),
        &demo.carlos.access_token,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn super_admins_list_accounts_and_nobody_else_does() {
    let app = TestApp::builder()
        .var("HUB_SUPER_ADMIN_EMAILS", "Root@Example.com")
        .start()
        .await;
    let demo = demo(&app).await;
    app.chatwoot.add_account(50, "Solo");
    let token = "root-token-xxxxxxxxxxxx";
    app.chatwoot.add_user(whatpro_chatwoot_sim::NewSimUser::new(
        300,
        "Root",
        "root@example.com",
        token,
    ));
    app.chatwoot.add_membership(300, 50, SimRole::Agent);
    let root = login(&app, token).await;
    assert_eq!(root.body["user"]["super_admin"], true);

    let (status, page) = get(&app, "/api/v1/admin/accounts?limit=1", &root.access_token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["data"][0]["id"], 1);
    assert_eq!(page["data"][0]["members"], 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = get(
        &app,
        &format!("/api/v1/admin/accounts?cursor={cursor}"),
        &root.access_token,
    )
    .await;
    assert_eq!(next["data"][0]["id"], 9);

    let (status, body) = get(&app, "/api/v1/admin/accounts", &demo.carlos.access_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "forbidden");
    // super_admin is a platform role: it gives nothing inside accounts the user is not in.
    let (status, _) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/members"),
        &root.access_token,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
