//! Helpers shared by the end-to-end tests: users in the Chatwoot simulator, sign-in, calls.

use reqwest::StatusCode;
use serde_json::{Value, json};
use whatpro_chatwoot_sim::{NewSimUser, SimRole};
use whatpro_testkit::TestApp;

/// Tenant A and tenant B of the seeded demo.
pub const ACCOUNT_A: i64 = 1;
/// See [`ACCOUNT_A`].
pub const ACCOUNT_B: i64 = 9;

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Login {
    pub user_id: i64,
    pub access_token: String,
    pub refresh_token: String,
    pub session_id: String,
    pub body: Value,
}

/// Adds a Chatwoot user with a personal token `tok-<id>` and the given memberships.
pub fn add_user(app: &TestApp, id: i64, memberships: &[(i64, SimRole)]) -> String {
    let token = format!("tok-{id}-xxxxxxxxxxxxxxxx");
    app.chatwoot.add_user(NewSimUser::new(
        id,
        format!("User {id}"),
        format!("user{id}@example.com"),
        token.clone(),
    ));
    for (account, role) in memberships {
        app.chatwoot.add_membership(id, *account, *role);
    }
    token
}

/// `POST /api/v1/auth/sso` with a personal token, refresh token in the body.
pub async fn sso(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/sso"))
        .json(&json!({"chatwoot_access_token": token, "token_delivery": "body"}))
        .send()
        .await
        .unwrap()
}

/// Signs in and returns the login; panics on failure.
pub async fn login(app: &TestApp, token: &str) -> Login {
    let response = sso(app, token).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{:?}",
        response.text().await
    );
    let body: Value = response.json().await.unwrap();
    Login {
        user_id: body["user"]["id"].as_i64().unwrap(),
        access_token: body["access_token"].as_str().unwrap().to_owned(),
        refresh_token: body["refresh_token"].as_str().unwrap().to_owned(),
        session_id: body["session_id"].as_str().unwrap().to_owned(),
        body,
    }
}

/// A request with the login's Bearer token.
pub fn authed(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    app.client.request(method, app.url(path)).bearer_auth(token)
}

/// `GET` with a Bearer token: status and JSON body (`Null` when there is none).
pub async fn get(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    let response = authed(app, reqwest::Method::GET, path, token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `POST /api/v1/auth/refresh` in body mode.
pub async fn refresh(app: &TestApp, refresh_token: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": refresh_token}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Sets a member's role as `admin`; panics unless it answers 200.
pub async fn set_role(app: &TestApp, admin: &Login, account: i64, user: i64, role: &str) {
    let response = authed(
        app,
        reqwest::Method::PATCH,
        &format!("/api/v1/accounts/{account}/members/{user}"),
        &admin.access_token,
    )
    .json(&json!({"role": role}))
    .send()
    .await
    .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{:?}",
        response.text().await
    );
}

/// The demo (accounts 1 and 9, Carlos admin of 1 / agent of 9, Ana agent of 1), signed in.
pub struct Demo {
    pub carlos: Login,
    pub ana: Login,
    pub seed: whatpro_chatwoot_sim::DemoSeed,
}

/// Seeds the demo and signs both users in.
pub async fn demo(app: &TestApp) -> Demo {
    let seed = app.chatwoot.seed_demo();
    let carlos = login(app, &seed.admin.access_token).await;
    let ana = login(app, &seed.agent.access_token).await;
    Demo { carlos, ana, seed }
}
