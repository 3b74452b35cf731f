//! Sign-in through Chatwoot, tokens, refresh rotation, sessions and logout.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use whatpro_chatwoot_sim::{Fault, SimRole};
use whatpro_iam::{AccessTokens, SessionId};
use whatpro_testkit::TestApp;

use crate::support::{self, ACCOUNT_A, ACCOUNT_B, authed, demo, get, login, refresh};

#[tokio::test(flavor = "multi_thread")]
async fn sso_with_a_personal_token_returns_tokens_user_accounts_and_a_refresh_cookie() {
    let app = TestApp::spawn().await;
    let seed = app.chatwoot.seed_demo();
    let response = app
        .client
        .post(app.url("/api/v1/auth/sso"))
        .json(&json!({"chatwoot_access_token": seed.admin.access_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in [
        "whatpro_refresh=",
        "HttpOnly",
        "Secure",
        "SameSite=None",
        "Partitioned",
        "Path=/api/v1/auth",
    ] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert!(
        body.get("refresh_token").is_none(),
        "cookie delivery keeps the token out of the body"
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(
        body["access_token"]
            .as_str()
            .unwrap()
            .starts_with("v4.local.")
    );
    assert_eq!(body["user"]["id"], 5);
    assert_eq!(body["user"]["email"], "carlos@whatpro.example");
    let accounts = body["accounts"].as_array().unwrap();
    assert!(
        accounts.contains(&json!({"id": 1, "name": "WhatPro Demo", "role": "admin"})),
        "{accounts:?}"
    );
    assert!(
        accounts.contains(&json!({"id": 9, "name": "Cliente Beta", "role": "agent"})),
        "{accounts:?}"
    );

    let (status, me) = get(&app, "/api/v1/me", body["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["user"]["id"], 5);
    assert_eq!(me["session_id"], body["session_id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn sso_with_the_dashboard_session_headers_works_too() {
    let app = TestApp::spawn().await;
    app.chatwoot.seed_demo();
    let session = app.chatwoot.sign_in(6);
    let response = app
        .client
        .post(app.url("/api/v1/auth/sso"))
        .json(&json!({"chatwoot_session": {"access-token": session.access_token, "client": session.client, "uid": session.uid}, "token_delivery": "body"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["id"], 6);
    assert_eq!(
        body["accounts"],
        json!([{"id": 1, "name": "WhatPro Demo", "role": "agent"}])
    );
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|t| t.len() == 64)
    );

    let forged = app
        .client
        .post(app.url("/api/v1/auth/sso"))
        .json(&json!({"chatwoot_session": {"access-token": "nope", "client": session.client, "uid": session.uid}}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_chatwoot_credentials_answer_401_and_are_audited_for_known_users() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let response = support::sso(&app, "not-a-real-token").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "chatwoot_credentials_invalid");

    // Asking for an account the user is not in is refused and audited to the user's accounts.
    let response = app
        .client
        .post(app.url("/api/v1/auth/sso"))
        .json(&json!({"chatwoot_access_token": demo.seed.agent.access_token, "account_id": ACCOUNT_B}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "not_a_member"
    );
    let (_, audit) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/audit?action=auth.login_failed"),
        &demo.carlos.access_token,
    )
    .await;
    let rows = audit["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{audit}");
    assert_eq!(rows[0]["metadata"]["reason"], "not_a_member");
    assert_eq!(rows[0]["actor"], json!({"type": "user", "id": 6}));
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_sso_bodies_get_clear_4xx() {
    let app = TestApp::spawn().await;
    let send = |body: String| {
        let request = app
            .client
            .post(app.url("/api/v1/auth/sso"))
            .header("content-type", "application/json")
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    for (body, status, code) in [
        ("{}".to_owned(), 422, "validation_failed"),
        (json!({"chatwoot_access_token": ""}).to_string(), 422, "validation_failed"),
        (json!({"chatwoot_access_token": "a".repeat(600)}).to_string(), 422, "validation_failed"),
        (json!({"chatwoot_access_token": "x", "chatwoot_session": {"access-token": "a", "client": "b", "uid": "c"}}).to_string(), 422, "validation_failed"),
        (json!({"chatwoot_session": {"client": "b", "uid": "c"}}).to_string(), 422, "validation_failed"),
        (json!({"chatwoot_access_token": 5}).to_string(), 422, "validation_failed"),
        (json!({"chatwoot_access_token": "x", "token_delivery": "pigeon"}).to_string(), 422, "validation_failed"),
        ("{\"chatwoot_access_token\":".to_owned(), 400, "invalid_json"),
        (format!("{{\"chatwoot_access_token\":\"{}\"}}", "a".repeat(2 * 1024 * 1024)), 413, "payload_too_large"),
    ] {
        let (got, json) = send(body.clone()).await;
        assert_eq!(got.as_u16(), status, "{} -> {json}", &body[..body.len().min(80)]);
        assert_eq!(json["code"], code);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn chatwoot_failures_answer_502_or_503_quickly() {
    let app = TestApp::spawn().await;
    let seed = app.chatwoot.seed_demo();
    app.chatwoot.set_fault(Some(Fault::Status(500)));
    let response = support::sso(&app, &seed.admin.access_token).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "chatwoot_bad_gateway"
    );

    app.chatwoot.set_fault(Some(Fault::Close));
    let started = std::time::Instant::now();
    let response = support::sso(&app, &seed.admin.access_token).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "chatwoot_unavailable"
    );
    assert!(started.elapsed() < Duration::from_secs(12));
    app.chatwoot.set_fault(None);
    assert_eq!(
        support::sso(&app, &seed.admin.access_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_rotates_repeats_in_the_grace_window_and_revokes_on_later_reuse() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let first = demo.carlos.refresh_token.clone();

    let (status, rotated) = refresh(&app, &first).await;
    assert_eq!(status, StatusCode::OK);
    let second = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(rotated["session_id"], demo.carlos.body["session_id"]);

    // A repeat inside the 5 s grace window gets the same successor.
    let (status, again) = refresh(&app, &first).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["refresh_token"], second.as_str());

    // After the window, reusing the old token revokes the whole session.
    tokio::time::sleep(Duration::from_millis(5_300)).await;
    let (status, body) = refresh(&app, &first).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "refresh_token_reused");
    let (status, body) = refresh(&app, &second).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = get(
        &app,
        "/api/v1/me",
        rotated["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "session_revoked");

    let (_, audit) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/audit?action=auth.refresh_reused"),
        &demo.ana.access_token,
    )
    .await;
    assert_eq!(
        audit["code"], "forbidden",
        "agents cannot read the audit log"
    );
    let other_admin = login(&app, &demo.seed.admin.access_token).await;
    let (_, audit) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/audit?action=auth.refresh_reused"),
        &other_admin.access_token,
    )
    .await;
    assert_eq!(audit["data"].as_array().map(Vec::len), Some(1), "{audit}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_parallel_refreshes_of_one_token_never_fork_the_session() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let token = demo.carlos.refresh_token.clone();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let client = app.client.clone();
        let url = app.url("/api/v1/auth/refresh");
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .json(&json!({"refresh_token": token}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }));
    }
    let mut successors = std::collections::HashSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::OK => {
                successors.insert(body["refresh_token"].as_str().unwrap().to_owned());
            }
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(successors.len(), 1, "the session forked: {successors:?}");
    let successor = successors.into_iter().next().unwrap();
    let (status, _) = refresh(&app, &successor).await;
    assert_eq!(status, StatusCode::OK, "the one successor works");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_expired_and_foreign_refresh_tokens_are_refused() {
    let app = TestApp::spawn().await;
    demo(&app).await;
    for (token, code) in [
        ("short".to_owned(), "refresh_token_invalid"),
        ("0".repeat(64), "refresh_token_invalid"),
        ("Z".repeat(64), "refresh_token_invalid"),
    ] {
        let (status, body) = refresh(&app, &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token}");
        assert_eq!(body["code"], code);
    }
    let response = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "no cookie and no body"
    );
    let response = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header("content-type", "application/json")
        .body("{\"refresh_token\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn cookie_mode_refresh_and_logout_need_an_allowed_origin_and_consume_nothing_otherwise() {
    let app = TestApp::spawn().await;
    let seed = app.chatwoot.seed_demo();
    let response = app
        .client
        .post(app.url("/api/v1/auth/sso"))
        .json(&json!({"chatwoot_access_token": seed.admin.access_token}))
        .send()
        .await
        .unwrap();
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    for origin in [None, Some("https://evil.example"), Some("null")] {
        let mut request = app
            .client
            .post(app.url("/api/v1/auth/refresh"))
            .header("cookie", &cookie);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{origin:?}");
        assert_eq!(
            response.json::<Value>().await.unwrap()["code"],
            "origin_not_allowed"
        );
    }
    // Nothing was consumed: the same cookie still refreshes from the Chatwoot origin.
    let response = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header("cookie", &cookie)
        .header("origin", app.chatwoot.url())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let new_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(new_cookie, cookie);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("refresh_token").is_none());

    // Logout with the cookie alone.
    let blocked = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .header("cookie", &new_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(blocked.status(), StatusCode::FORBIDDEN);
    let response = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .header("cookie", &new_cookie)
        .header("origin", app.address.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (status, _) = get(&app, "/api/v1/me", body["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_ends_the_session_at_once() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let response = authed(
        &app,
        Method::POST,
        "/api/v1/auth/logout",
        &demo.ana.access_token,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, body) = get(&app, "/api/v1/me", &demo.ana.access_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "session_revoked");
    let (status, _) = refresh(&app, &demo.ana.refresh_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Other users are unaffected.
    assert_eq!(
        get(&app, "/api/v1/me", &demo.carlos.access_token).await.0,
        StatusCode::OK
    );
    let (_, audit) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/audit?action=auth.logout"),
        &demo.carlos.access_token,
    )
    .await;
    assert_eq!(
        audit["data"][0]["actor"],
        json!({"type": "user", "id": 6}),
        "{audit}"
    );
    assert!(audit["data"][0]["request_id"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_listed_and_revoked_only_by_their_owner() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let seed = demo.seed.clone();
    let laptop = demo.carlos.clone();
    let phone = login(&app, &seed.admin.access_token).await;
    let tablet = login(&app, &seed.admin.access_token).await;

    let (status, list) = get(&app, "/api/v1/me/sessions", &laptop.access_token).await;
    assert_eq!(status, StatusCode::OK);
    let sessions = list["data"].as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], laptop.session_id.as_str());
    for key in [
        "id",
        "current",
        "user_agent",
        "ip",
        "created_at",
        "last_seen_at",
        "expires_at",
    ] {
        assert!(sessions[0].get(key).is_some(), "{key} missing");
    }

    // Someone else's session is not found, and stays alive.
    let response = authed(
        &app,
        Method::DELETE,
        &format!("/api/v1/me/sessions/{}", demo.ana.session_id),
        &laptop.access_token,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        get(&app, "/api/v1/me", &demo.ana.access_token).await.0,
        StatusCode::OK
    );
    let response = authed(
        &app,
        Method::DELETE,
        "/api/v1/me/sessions/not-a-uuid",
        &laptop.access_token,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let response = authed(
        &app,
        Method::DELETE,
        &format!("/api/v1/me/sessions/{}", phone.session_id),
        &laptop.access_token,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        get(&app, "/api/v1/me", &phone.access_token).await.0,
        StatusCode::UNAUTHORIZED
    );

    let response = authed(
        &app,
        Method::POST,
        "/api/v1/me/sessions/revoke-others",
        &laptop.access_token,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["revoked"], 1);
    assert_eq!(
        get(&app, "/api/v1/me", &tablet.access_token).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&app, "/api/v1/me", &laptop.access_token).await.0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_expired_foreign_and_wrong_type_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let token = demo.carlos.access_token.clone();
    let keys = app.state.config.token_keys.clone().unwrap();
    let issuer = whatpro_crypto::PasetoAccessTokens::new(keys);
    let session = SessionId::from_uuid(demo.carlos.session_id.parse().unwrap());
    let user = whatpro_kernel::UserId::new(5);
    let now = time::OffsetDateTime::now_utc();
    let expired = issuer
        .issue(user, session, now - time::Duration::minutes(16))
        .unwrap()
        .token;
    let future = issuer
        .issue(user, session, now + time::Duration::minutes(5))
        .unwrap()
        .token;
    let foreign =
        whatpro_crypto::PasetoAccessTokens::new(whatpro_crypto::KeyRing::generate().unwrap())
            .issue(user, session, now)
            .unwrap()
            .token;
    let mut tampered = token.clone().into_bytes();
    tampered[30] = if tampered[30] == b'a' { b'b' } else { b'a' };
    let tampered = String::from_utf8(tampered).unwrap();
    for (bad, code) in [
        (expired, "token_expired"),
        (future, "token_invalid"),
        (foreign, "token_invalid"),
        (tampered, "token_invalid"),
        (token[..token.len() - 10].to_owned(), "token_invalid"),
        (token.replacen("v4.", "v2.", 1), "token_invalid"),
        (demo.carlos.refresh_token.clone(), "token_invalid"),
    ] {
        let (status, body) = get(&app, "/api/v1/me", &bad).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{code}");
        assert_eq!(body["code"], code);
    }
    let response = app.client.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "unauthenticated"
    );
    let response = app
        .client
        .get(app.url("/api/v1/me"))
        .header("authorization", format!("Basic {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn leaving_an_account_or_its_suspension_removes_access_at_the_next_refresh() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let (status, _) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_B}/members"),
        &demo.carlos.access_token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    app.chatwoot.remove_membership(5, ACCOUNT_B);
    app.chatwoot
        .set_account_status(ACCOUNT_A, whatpro_chatwoot_sim::AccountStatus::Suspended);
    let (status, body) = refresh(&app, &demo.carlos.refresh_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["accounts"], json!([]), "{body}");
    let token = body["access_token"].as_str().unwrap();
    for account in [ACCOUNT_A, ACCOUNT_B] {
        let (status, body) = get(&app, &format!("/api/v1/accounts/{account}/members"), token).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["code"], "not_a_member");
    }
    // The old access token sees the change at once too (memberships are not in the token).
    let (status, _) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_B}/members"),
        &demo.carlos.access_token,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A user whose Chatwoot token was revoked loses the session at the next refresh.
    app.chatwoot.remove_user(6);
    let (status, body) = refresh(&app, &demo.ana.refresh_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        get(&app, "/api/v1/me", &demo.ana.access_token).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sso_is_rate_limited_per_ip() {
    let app = TestApp::spawn().await;
    let mut limited = None;
    for attempt in 1..=12 {
        let response = support::sso(&app, "wrong-token").await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap();
            assert!((1..=60).contains(&retry));
            assert_eq!(
                response.json::<Value>().await.unwrap()["code"],
                "rate_limited"
            );
            limited = Some(attempt);
            break;
        }
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        limited,
        Some(11),
        "the 11th attempt within a minute is refused"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn new_users_and_accounts_are_created_from_the_profile() {
    let app = TestApp::spawn().await;
    app.chatwoot.add_account(42, "Nova");
    let token = support::add_user(&app, 77, &[(42, SimRole::Administrator)]);
    let login = login(&app, &token).await;
    assert_eq!(
        login.body["accounts"],
        json!([{"id": 42, "name": "Nova", "role": "admin"}])
    );
    assert_eq!(login.user_id, 77);
}
