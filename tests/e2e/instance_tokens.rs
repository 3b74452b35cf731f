//! Instance tokens end to end: issued with an access token or the Chatwoot dashboard session,
//! bound to an account and an origin, scoped, revocable; every bad request refused clearly.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use whatpro_chatwoot_sim::SimRole;
use whatpro_crypto::PasetoInstanceTokens;
use whatpro_iam::{InstanceClaims, InstanceTokens, Role, ScopeSet};
use whatpro_kernel::{AccountId, UserId};
use whatpro_testkit::TestApp;

use crate::api_keys::{audit_rows, call, count, new_key};
use crate::support::{ACCOUNT_A, ACCOUNT_B, add_user, authed, demo, get, login, set_role};

const EMBED: &str = "https://embed.example";

/// `POST /api/v1/instance-tokens` with an optional Bearer token.
async fn issue(app: &TestApp, bearer: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(app.url("/api/v1/instance-tokens"))
        .json(&body);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Issues a token for `EMBED`; panics unless 201.
async fn token_for(app: &TestApp, access_token: &str, body: Value) -> Value {
    let (status, answer) = issue(app, Some(access_token), body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer
}

/// `GET /api/v1/instance-tokens/validate` with `token` and an optional `Origin`.
async fn validate(app: &TestApp, token: &str, origin: Option<&str>) -> (StatusCode, Value) {
    call(
        app,
        Method::GET,
        "/api/v1/instance-tokens/validate",
        token,
        origin,
        None,
    )
    .await
}

fn code(answer: &(StatusCode, Value)) -> (StatusCode, Option<&str>) {
    (answer.0, answer.1["code"].as_str())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_gets_a_token_bound_to_its_account_origin_and_scopes() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let carlos = &demo.carlos.access_token;
    let before = OffsetDateTime::now_utc();
    let response = authed(&app, Method::POST, "/api/v1/instance-tokens", carlos)
        .json(&json!({"account_id": 1, "scopes": ["members:read"], "origin": EMBED}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let issued: Value = response.json().await.unwrap();
    let token = issued["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("v4.local."));
    assert_eq!(issued["account_id"], 1);
    assert_eq!(issued["scopes"], json!(["members:read"]));
    let jti = issued["jti"].as_str().unwrap().to_owned();
    let expires = OffsetDateTime::parse(
        issued["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let ttl = expires - before;
    assert!(
        ttl > Duration::minutes(14) && ttl <= Duration::minutes(15) + Duration::seconds(5),
        "{ttl}"
    );

    // Validate: from its origin only.
    let answer = validate(&app, &token, Some(EMBED)).await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    assert_eq!(
        answer.1,
        json!({"valid": true, "account_id": 1, "user_id": 5, "scopes": ["members:read"], "expires_at": issued["expires_at"]})
    );
    for origin in [
        Some("https://evil.example"),
        Some("http://embed.example"),
        Some("null"),
        None,
    ] {
        let answer = validate(&app, &token, origin).await;
        assert_eq!(
            code(&answer),
            (StatusCode::UNAUTHORIZED, Some("token_origin_mismatch")),
            "{origin:?}"
        );
    }

    // On account routes: its account, its scopes, its origin.
    let members = "/api/v1/accounts/1/members";
    let answer = call(&app, Method::GET, members, &token, Some(EMBED), None).await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    let answer = call(
        &app,
        Method::GET,
        members,
        &token,
        Some("https://evil.example"),
        None,
    )
    .await;
    assert_eq!(
        code(&answer),
        (StatusCode::UNAUTHORIZED, Some("token_origin_mismatch"))
    );
    let answer = call(&app, Method::GET, members, &token, None, None).await;
    assert_eq!(
        code(&answer),
        (StatusCode::UNAUTHORIZED, Some("token_origin_mismatch"))
    );
    let answer = call(
        &app,
        Method::GET,
        "/api/v1/accounts/9/members",
        &token,
        Some(EMBED),
        None,
    )
    .await;
    assert_eq!(
        code(&answer),
        (StatusCode::FORBIDDEN, Some("token_account_mismatch"))
    );
    let answer = call(
        &app,
        Method::GET,
        "/api/v1/accounts/1/audit",
        &token,
        Some(EMBED),
        None,
    )
    .await;
    assert_eq!(
        code(&answer),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );
    let answer = call(
        &app,
        Method::PATCH,
        "/api/v1/accounts/1/members/6",
        &token,
        Some(EMBED),
        Some(&json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(
        code(&answer),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );

    // Never an access token, and an access token or API key is never an instance token.
    for path in ["/api/v1/me", "/api/v1/me/sessions"] {
        let answer = call(&app, Method::GET, path, &token, Some(EMBED), None).await;
        assert_eq!(
            code(&answer),
            (StatusCode::UNAUTHORIZED, Some("unsupported_credential")),
            "{path}"
        );
    }
    let answer = validate(&app, carlos, Some(EMBED)).await;
    assert_eq!(
        code(&answer),
        (StatusCode::UNAUTHORIZED, Some("token_invalid"))
    );
    let (_, key) = new_key(&app, carlos, ACCOUNT_A, &["members:read"]).await;
    let answer = validate(&app, &key, Some(EMBED)).await;
    assert_eq!(
        code(&answer),
        (StatusCode::UNAUTHORIZED, Some("token_invalid"))
    );
    let answer = validate(&app, "garbage", Some(EMBED)).await;
    assert_eq!(
        code(&answer),
        (StatusCode::UNAUTHORIZED, Some("token_invalid"))
    );
    let response = app.get("/api/v1/instance-tokens/validate").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // A tampered token does not open.
    let mut tampered = token.clone().into_bytes();
    tampered[20] = if tampered[20] == b'A' { b'B' } else { b'A' };
    let answer = validate(&app, &String::from_utf8(tampered).unwrap(), Some(EMBED)).await;
    assert_eq!(answer.0, StatusCode::UNAUTHORIZED);

    let created = audit_rows(&app, carlos, ACCOUNT_A, "instance_token.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["target"], format!("instance_token:{jti}"));
    assert_eq!(created[0]["actor"], json!({"type": "user", "id": 5}));
    assert_eq!(created[0]["metadata"]["origin"], EMBED);
    assert!(!created[0].to_string().contains(&token));
}

#[tokio::test(flavor = "multi_thread")]
async fn same_origin_requests_without_an_origin_header_use_the_hubs_origin() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let hub = app.address.clone();
    let issued = token_for(
        &app,
        &demo.carlos.access_token,
        json!({"account_id": 1, "origin": hub}),
    )
    .await;
    let token = issued["token"].as_str().unwrap();
    let same_origin =
        |path: &str| authed(&app, Method::GET, path, token).header("sec-fetch-site", "same-origin");
    let response = same_origin("/api/v1/instance-tokens/validate")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = same_origin("/api/v1/accounts/1/members")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // A cross-site request without Origin is not taken for the Hub's.
    let response = authed(&app, Method::GET, "/api/v1/instance-tokens/validate", token)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // And a token bound to another origin does not work same-origin.
    let other = token_for(
        &app,
        &demo.carlos.access_token,
        json!({"account_id": 1, "origin": EMBED}),
    )
    .await;
    let response = authed(
        &app,
        Method::GET,
        "/api/v1/instance-tokens/validate",
        other["token"].as_str().unwrap(),
    )
    .header("sec-fetch-site", "same-origin")
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_takes_effect_at_once_and_only_the_user_or_an_admin_may_revoke() {
    let owned = TestApp::spawn().await;
    let app = &owned;
    let demo = demo(app).await;
    let carlos = &demo.carlos.access_token;
    let ana = &demo.ana.access_token;
    let mine = token_for(app, carlos, json!({"account_id": 1, "origin": EMBED})).await;
    let anas = token_for(app, ana, json!({"account_id": 1, "origin": EMBED})).await;
    let revoke = async |jti: &str, by: &str| {
        let path = format!("/api/v1/instance-tokens/{jti}");
        call(app, Method::DELETE, &path, by, None, None).await
    };
    let token = mine["token"].as_str().unwrap();
    let jti = mine["jti"].as_str().unwrap();
    assert_eq!(validate(app, token, Some(EMBED)).await.0, StatusCode::OK);

    // Ana (an agent) cannot revoke Carlos's token: it does not exist for her.
    let answer = revoke(jti, ana).await;
    assert_eq!(
        code(&answer),
        (StatusCode::NOT_FOUND, Some("instance_token_not_found"))
    );
    let answer = revoke(&Uuid::now_v7().to_string(), carlos).await;
    assert_eq!(
        code(&answer),
        (StatusCode::NOT_FOUND, Some("instance_token_not_found"))
    );
    // Instance tokens and API keys cannot revoke.
    let answer = revoke(jti, token).await;
    assert_eq!(
        code(&answer),
        (StatusCode::UNAUTHORIZED, Some("unsupported_credential"))
    );
    assert_eq!(validate(app, token, Some(EMBED)).await.0, StatusCode::OK);

    // Its user revokes it: dead at once, twice is fine.
    assert_eq!(revoke(jti, carlos).await.0, StatusCode::NO_CONTENT);
    assert_eq!(revoke(jti, carlos).await.0, StatusCode::NO_CONTENT);
    let answer = validate(app, token, Some(EMBED)).await;
    assert_eq!(
        code(&answer),
        (StatusCode::UNAUTHORIZED, Some("token_revoked"))
    );
    let answer = call(
        app,
        Method::GET,
        "/api/v1/accounts/1/members",
        token,
        Some(EMBED),
        None,
    )
    .await;
    assert_eq!(
        code(&answer),
        (StatusCode::UNAUTHORIZED, Some("token_revoked"))
    );

    // An admin of the account revokes a member's token.
    assert_eq!(
        revoke(anas["jti"].as_str().unwrap(), carlos).await.0,
        StatusCode::NO_CONTENT
    );
    let answer = validate(app, anas["token"].as_str().unwrap(), Some(EMBED)).await;
    assert_eq!(
        code(&answer),
        (StatusCode::UNAUTHORIZED, Some("token_revoked"))
    );

    let revoked = audit_rows(app, carlos, ACCOUNT_A, "instance_token.revoked").await;
    assert_eq!(revoked.len(), 2, "{revoked:?}");
    assert!(
        revoked
            .iter()
            .all(|r| r["actor"] == json!({"type": "user", "id": 5}))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_tokens_and_tokens_of_members_who_left_are_refused() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    // A token made with the Hub's own key but already expired.
    let keys = app.state.config.token_keys.clone().unwrap();
    let now = OffsetDateTime::now_utc();
    let expired = PasetoInstanceTokens::new(keys)
        .issue(&InstanceClaims {
            token_id: Uuid::now_v7(),
            user_id: UserId::new(5),
            account_id: AccountId::new(1),
            scopes: ScopeSet::for_role(Role::Admin),
            issued_at: now - Duration::minutes(20),
            expires_at: now - Duration::minutes(5),
            origin: EMBED.to_owned(),
        })
        .unwrap();
    let answer = validate(&app, &expired, Some(EMBED)).await;
    assert_eq!(
        code(&answer),
        (StatusCode::UNAUTHORIZED, Some("token_expired"))
    );

    // Ana leaves account 1 (seen at her next sign-in): her token stops working.
    let anas = token_for(
        &app,
        &demo.ana.access_token,
        json!({"account_id": 1, "origin": EMBED}),
    )
    .await;
    let token = anas["token"].as_str().unwrap();
    assert_eq!(validate(&app, token, Some(EMBED)).await.0, StatusCode::OK);
    app.chatwoot.remove_membership(6, ACCOUNT_A);
    login(&app, &demo.seed.agent.access_token).await;
    let answer = validate(&app, token, Some(EMBED)).await;
    assert_eq!(code(&answer), (StatusCode::FORBIDDEN, Some("not_a_member")));
    let answer = call(
        &app,
        Method::GET,
        "/api/v1/accounts/1/members",
        token,
        Some(EMBED),
        None,
    )
    .await;
    assert_eq!(code(&answer), (StatusCode::FORBIDDEN, Some("not_a_member")));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_session_is_exchanged_without_creating_a_hub_session() {
    let app = TestApp::builder()
        .var("HUB_SSO_RATE_PER_MINUTE", "4")
        .start()
        .await;
    app.chatwoot.seed_demo();
    let session = app.chatwoot.sign_in(6);
    let body = |account: i64| {
        json!({
            "account_id": account,
            "origin": EMBED,
            "chatwoot_session": {"access-token": session.access_token, "client": session.client, "uid": session.uid},
        })
    };
    let (status, issued) = issue(&app, None, body(1)).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    assert_eq!(
        issued["scopes"],
        json!(ScopeSet::for_role(Role::Agent).names()),
        "no scopes asked: every scope an agent may hold"
    );
    let answer = validate(&app, issued["token"].as_str().unwrap(), Some(EMBED)).await;
    assert_eq!(answer.1["user_id"], 6);
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM sessions").await,
        0,
        "no Hub session"
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM account_members WHERE user_id = 6"
        )
        .await,
        1,
        "memberships synced"
    );

    // Not a member of account 9.
    let (status, answer) = issue(&app, None, body(ACCOUNT_B)).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_a_member"))
    );
    // A session Chatwoot does not know.
    let forged = json!({"account_id": 1, "origin": EMBED, "chatwoot_session": {"access-token": "nope", "client": session.client, "uid": session.uid}});
    let (status, answer) = issue(&app, None, forged).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("chatwoot_credentials_invalid")
        )
    );
    // Limited per client IP like SSO (4 per minute here).
    let (status, answer) = issue(&app, None, body(1)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let response = app
        .client
        .post(app.url("/api/v1/instance-tokens"))
        .json(&body(1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM instance_tokens").await,
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_a_clear_4xx_and_issue_nothing() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let carlos = &demo.carlos.access_token;
    let ana = &demo.ana.access_token;
    // A viewer of account 1.
    let viewer_token = add_user(&app, 103, &[(ACCOUNT_A, SimRole::Agent)]);
    let viewer = login(&app, &viewer_token).await;
    set_role(&app, &demo.carlos, ACCOUNT_A, 103, "viewer").await;
    let session = app.chatwoot.sign_in(6);

    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            carlos,
            json!({"account_id": 1, "origin": EMBED, "ttl_minutes": 61}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            carlos,
            json!({"account_id": 1, "origin": EMBED, "ttl_minutes": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            carlos,
            json!({"account_id": 1, "origin": EMBED, "ttl_minutes": -5}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            carlos,
            json!({"account_id": 1, "origin": EMBED, "scopes": ["chat:read", "chat:delete"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_scope",
        ),
        (
            carlos,
            json!({"account_id": 1, "origin": EMBED, "scopes": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            ana,
            json!({"account_id": 1, "origin": EMBED, "scopes": ["members:write"]}),
            StatusCode::FORBIDDEN,
            "insufficient_scope",
        ),
        (
            &viewer.access_token,
            json!({"account_id": 1, "origin": EMBED, "scopes": ["chat:write"]}),
            StatusCode::FORBIDDEN,
            "insufficient_scope",
        ),
        (
            ana,
            json!({"account_id": 9, "origin": EMBED}),
            StatusCode::FORBIDDEN,
            "not_a_member",
        ),
        (
            carlos,
            json!({"account_id": 424242, "origin": EMBED}),
            StatusCode::FORBIDDEN,
            "not_a_member",
        ),
        (
            carlos,
            json!({"account_id": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            carlos,
            json!({"account_id": 1, "origin": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            carlos,
            json!({"account_id": 1, "origin": "not a url"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            carlos,
            json!({"account_id": 1, "origin": "https://embed.example/app"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            carlos,
            json!({"account_id": 1, "origin": "ftp://embed.example"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            carlos,
            json!({"origin": EMBED}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            carlos,
            json!({"account_id": 1, "origin": EMBED, "chatwoot_session": {"access-token": session.access_token, "client": session.client, "uid": session.uid}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
    ];
    for (bearer, body, status, expected) in cases {
        let (got, answer) = issue(&app, Some(bearer), body.clone()).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(expected)),
            "{body}: {answer}"
        );
    }
    // No credential at all; an API key; malformed JSON.
    let (status, answer) = issue(&app, None, json!({"account_id": 1, "origin": EMBED})).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
    let (_, key) = new_key(&app, carlos, ACCOUNT_A, &["members:read"]).await;
    let (status, answer) = issue(&app, Some(&key), json!({"account_id": 1, "origin": EMBED})).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unsupported_credential"))
    );
    let response = authed(&app, Method::POST, "/api/v1/instance-tokens", carlos)
        .header("content-type", "application/json")
        .body("{\"account_id\": 1,")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM instance_tokens").await,
        0
    );
    assert!(
        audit_rows(&app, carlos, ACCOUNT_A, "instance_token.created")
            .await
            .is_empty()
    );

    // What a viewer gets without asking: read scopes only.
    let issued = token_for(
        &app,
        &viewer.access_token,
        json!({"account_id": 1, "origin": EMBED}),
    )
    .await;
    let scopes: Vec<String> = serde_json::from_value(issued["scopes"].clone()).unwrap();
    assert!(
        !scopes.is_empty() && scopes.iter().all(|s| s.ends_with(":read")),
        "{scopes:?}"
    );
    assert_eq!(
        get(&app, "/api/v1/me", &viewer.access_token).await.0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn in_production_mode_origins_must_be_https() {
    let app = TestApp::builder()
        .var("HUB_PUBLIC_URL", "https://hub.example")
        .start()
        .await;
    let demo = demo(&app).await;
    let carlos = &demo.carlos.access_token;
    for origin in ["http://embed.example", "http://localhost:3000"] {
        let (status, answer) = issue(
            &app,
            Some(carlos),
            json!({"account_id": 1, "origin": origin}),
        )
        .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")),
            "{origin}: {answer}"
        );
    }
    let (status, answer) = issue(&app, Some(carlos), json!({"account_id": 1})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM instance_tokens").await,
        0
    );

    let issued = token_for(
        &app,
        carlos,
        json!({"account_id": 1, "origin": "https://embed.example:8443"}),
    )
    .await;
    let token = issued["token"].as_str().unwrap();
    assert_eq!(
        validate(&app, token, Some("https://embed.example:8443"))
            .await
            .0,
        StatusCode::OK
    );
    // Same-origin requests without Origin count as the Hub's own (https) origin.
    let hub = token_for(
        &app,
        carlos,
        json!({"account_id": 1, "origin": "https://hub.example"}),
    )
    .await;
    let response = authed(
        &app,
        Method::GET,
        "/api/v1/instance-tokens/validate",
        hub["token"].as_str().unwrap(),
    )
    .header("sec-fetch-site", "same-origin")
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
