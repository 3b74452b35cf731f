//! Black-box tests of the fake Chatwoot against the shared contract in /work/shared/chatwoot.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions"
)]

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use whatpro_chatwoot_sim::{
    AccountStatus, ChatwootSim, DemoSeed, Fault, NewSimUser, SimError, SimRole, WebhookSigning,
    fixtures, rails_json, sign, verify_signature,
};

// ------------------------------------------------------------------ helpers

fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/chatwoot")
}

fn shared_text(rel: &str) -> String {
    std::fs::read_to_string(shared_dir().join(rel)).unwrap()
}

fn shared_json(rel: &str) -> Value {
    serde_json::from_str(&shared_text(rel)).unwrap()
}

/// Asserts that `actual` has exactly the keys of `expected`, recursively for objects. Arrays
/// of objects are compared item by item: paired by `id` when the example has that id,
/// otherwise by position, otherwise against the example's first item.
fn assert_same_keys(actual: &Value, expected: &Value, path: &str) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            let ak: BTreeSet<&String> = a.keys().collect();
            let ek: BTreeSet<&String> = e.keys().collect();
            assert_eq!(ak, ek, "key sets differ at {path}");
            for (k, v) in a {
                assert_same_keys(v, &e[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            let Some(first) = e.first() else { return };
            for (i, item) in a.iter().enumerate() {
                let by_id = item
                    .get("id")
                    .and_then(|id| e.iter().find(|x| x.get("id") == Some(id)));
                let counterpart = by_id
                    .or_else(|| (a.len() == e.len()).then(|| &e[i]))
                    .unwrap_or(first);
                assert_same_keys(item, counterpart, &format!("{path}[{i}]"));
            }
        }
        (Value::Object(_), other) | (other, Value::Object(_)) if !other.is_null() => {
            panic!("type mismatch at {path}: {actual} vs {expected}")
        }
        _ => {}
    }
}

async fn start() -> (ChatwootSim, DemoSeed) {
    let sim = ChatwootSim::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let seed = sim.seed_demo();
    (sim, seed)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn get(sim: &ChatwootSim, path: &str, token: &str) -> (u16, Value) {
    let resp = client()
        .get(format!("{}{path}", sim.url()))
        .header("api_access_token", token)
        .send()
        .await
        .unwrap();
    status_json(resp).await
}

async fn send_json(
    sim: &ChatwootSim,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: &Value,
) -> (u16, Value) {
    let resp = client()
        .request(method, format!("{}{path}", sim.url()))
        .header("api_access_token", token)
        .json(body)
        .send()
        .await
        .unwrap();
    status_json(resp).await
}

async fn status_json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

fn error_case(kind: &str) -> (u16, Value) {
    let errors = shared_json("api/errors.json");
    (
        u16::try_from(errors[kind]["status"].as_u64().unwrap()).unwrap(),
        errors[kind]["body"].clone(),
    )
}

fn ids(items: &Value) -> Vec<i64> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect()
}

// ------------------------------------------------------------------ fixtures

#[test]
fn embedded_fixtures_are_byte_identical_to_shared_examples() {
    let named = [
        ("api/profile.json", fixtures::PROFILE),
        ("api/auth_sign_in.json", fixtures::AUTH_SIGN_IN),
        (
            "api/auth_validate_token.json",
            fixtures::AUTH_VALIDATE_TOKEN,
        ),
        ("api/inboxes_index.json", fixtures::INBOXES_INDEX),
        ("api/agents_index.json", fixtures::AGENTS_INDEX),
        ("api/teams_index.json", fixtures::TEAMS_INDEX),
        ("api/webhooks_index.json", fixtures::WEBHOOKS_INDEX),
        (
            "api/dashboard_apps_index.json",
            fixtures::DASHBOARD_APPS_INDEX,
        ),
        ("api/errors.json", fixtures::ERRORS),
    ];
    for (rel, embedded) in named {
        assert_eq!(
            embedded,
            shared_text(rel),
            "{rel} differs from the shared copy"
        );
    }
    assert_eq!(fixtures::WEBHOOK_EXAMPLES.len(), 12);
    for (event, embedded) in fixtures::WEBHOOK_EXAMPLES {
        let rel = format!("webhooks/{event}.json");
        assert_eq!(
            *embedded,
            shared_text(&rel),
            "{rel} differs from the shared copy"
        );
        assert_eq!(fixtures::webhook_example(event).unwrap()["event"], *event);
    }
    // Every file in the crate's fixtures/ directory is a verbatim copy too.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut checked = 0;
    for sub in ["api", "webhooks"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let rel = format!("{sub}/{}", path.file_name().unwrap().to_string_lossy());
            assert_eq!(
                std::fs::read(&path).unwrap(),
                std::fs::read(shared_dir().join(&rel)).unwrap(),
                "{rel}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 21);
}

// ------------------------------------------------------------------ profile and auth

#[tokio::test]
async fn profile_with_api_token_matches_example() {
    let (sim, seed) = start().await;
    let (status, body) = get(&sim, "/api/v1/profile", &seed.admin.access_token).await;
    assert_eq!(status, 200);
    let example = shared_json("api/profile.json");
    assert_same_keys(&body, &example, "profile");
    assert_eq!(body["id"], 5);
    assert_eq!(body["email"], "carlos@whatpro.example");
    assert_eq!(body["uid"], "carlos@whatpro.example");
    assert_eq!(body["access_token"], seed.admin.access_token);
    assert_eq!(body["account_id"], 1);
    assert_eq!(body["role"], "administrator");
    assert_eq!(body["type"], Value::Null);
    assert_eq!(ids(&body["accounts"]), vec![1, 9]);
    // Same roles, permissions and statuses as the example.
    for (ours, theirs) in body["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .zip(example["accounts"].as_array().unwrap())
    {
        for key in ["id", "name", "status", "role", "permissions", "active_at"] {
            assert_eq!(ours[key], theirs[key], "accounts[].{key}");
        }
    }

    // The agent has custom attributes, which the profile then includes.
    let (status, body) = get(&sim, "/api/v1/profile", &seed.agent.access_token).await;
    assert_eq!(status, 200);
    assert_eq!(body["custom_attributes"], json!({"extension": "204"}));
    assert_eq!(body["role"], "agent");
    assert_eq!(ids(&body["accounts"]), vec![1]);
}

#[tokio::test]
async fn api_access_token_header_variants_are_accepted() {
    let (sim, seed) = start().await;
    for name in [
        "api_access_token",
        "Api-Access-Token",
        "API_ACCESS_TOKEN",
        "api-access-token",
    ] {
        let resp = client()
            .get(format!("{}/api/v1/profile", sim.url()))
            .header(name, &seed.admin.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "header {name}");
    }
    let recorded = sim.requests();
    assert_eq!(recorded.len(), 4);
    assert!(
        recorded
            .iter()
            .all(|r| r.headers.iter().all(|(n, _)| *n == n.to_lowercase()))
    );
    assert_eq!(
        recorded[0].header("API_ACCESS_TOKEN"),
        Some(seed.admin.access_token.as_str())
    );
}

#[tokio::test]
async fn authentication_errors_have_chatwoot_shapes() {
    let (sim, _) = start().await;
    let c = client();

    let resp = c
        .get(format!("{}/api/v1/profile", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_json(resp).await,
        error_case("unauthorized_no_credentials")
    );

    assert_eq!(
        get(&sim, "/api/v1/profile", "not-a-token").await,
        error_case("unauthorized_api_token")
    );
    // A blank token counts as absent (Rails `present?`).
    assert_eq!(
        get(&sim, "/api/v1/profile", "  ").await,
        error_case("unauthorized_no_credentials")
    );
    // Bad devise headers on the user API: devise's "sign in" error.
    let resp = c
        .get(format!("{}/api/v1/profile", sim.url()))
        .header("access-token", "x")
        .header("client", "y")
        .header("uid", "carlos@whatpro.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_json(resp).await,
        error_case("unauthorized_no_credentials")
    );
    // Authentication comes before routing of the account.
    assert_eq!(
        get(&sim, "/api/v1/accounts/999/inboxes", "bad").await,
        error_case("unauthorized_api_token")
    );
}

#[tokio::test]
async fn devise_session_validates_and_serves_profile() {
    let (sim, seed) = start().await;
    let session = sim.sign_in(seed.admin.id);
    assert_eq!(session.uid, seed.admin.email);
    assert_eq!(session.token_type, "Bearer");
    assert!(session.expiry > 1_700_000_000);
    let example = shared_json("api/auth_validate_token.json");

    let mut req = client().get(format!("{}/auth/validate_token", sim.url()));
    for (name, value) in session.headers() {
        req = req.header(name, value);
    }
    let (status, body) = status_json(req.send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_same_keys(&body, &example["_response_200"], "validate_token");
    assert_eq!(body["payload"]["success"], true);
    assert_eq!(body["payload"]["data"]["id"], 5);
    assert!(
        body["payload"]["data"]["created_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    // The same headers work on /api/v1/profile, which hands out the personal API token.
    let mut req = client().get(format!("{}/api/v1/profile", sim.url()));
    for (name, value) in session.headers() {
        req = req.header(name, value);
    }
    let (status, body) = status_json(req.send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["access_token"], seed.admin.access_token);
    assert_same_keys(&body, &shared_json("api/profile.json"), "profile");

    // ... and on account endpoints.
    let mut req = client().get(format!("{}/api/v1/accounts/1/inboxes", sim.url()));
    for (name, value) in session.headers() {
        req = req.header(name, value);
    }
    assert_eq!(req.send().await.unwrap().status().as_u16(), 200);

    // A wrong token, or no headers at all: 401 with devise's body.
    for headers in [
        vec![
            ("access-token", "wrong".to_owned()),
            ("client", session.client.clone()),
            ("uid", session.uid.clone()),
        ],
        vec![],
    ] {
        let mut req = client().get(format!("{}/auth/validate_token", sim.url()));
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let (status, body) = status_json(req.send().await.unwrap()).await;
        assert_eq!(status, 401);
        assert_eq!(body, example["_response_401"]);
    }

    // The cookie value and authorization helpers carry the same five values.
    let cookie: Value = serde_json::from_str(&session.cookie_value()).unwrap();
    assert_eq!(cookie["access-token"], session.access_token);
    assert_eq!(cookie["expiry"], session.expiry.to_string());
    assert!(session.authorization().starts_with("Bearer "));

    sim.sign_out_all(seed.admin.id);
    let mut req = client().get(format!("{}/auth/validate_token", sim.url()));
    for (name, value) in session.headers() {
        req = req.header(name, value);
    }
    assert_eq!(req.send().await.unwrap().status().as_u16(), 401);
}

#[tokio::test]
async fn sign_in_returns_devise_headers_and_user_data() {
    let (sim, seed) = start().await;
    let example = shared_json("api/auth_sign_in.json");
    let resp = client()
        .post(format!("{}/auth/sign_in", sim.url()))
        .json(&json!({"email": "Carlos@WhatPro.example", "password": "secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let headers = resp.headers().clone();
    for name in example["_response_headers"].as_object().unwrap().keys() {
        assert!(headers.contains_key(name.as_str()), "missing header {name}");
    }
    assert_eq!(headers["token-type"], "Bearer");
    assert_eq!(headers["uid"], seed.admin.email.as_str());
    assert!(headers["expiry"].to_str().unwrap().parse::<i64>().unwrap() > 1_700_000_000);
    let (_, body) = status_json(resp).await;
    assert_same_keys(&body, &example["_response_200"], "sign_in");
    assert_eq!(body["data"]["email"], seed.admin.email);

    // The returned headers validate.
    let mut req = client().get(format!("{}/auth/validate_token", sim.url()));
    for name in ["access-token", "client", "uid", "token-type", "expiry"] {
        req = req.header(name, headers[name].clone());
    }
    assert_eq!(req.send().await.unwrap().status().as_u16(), 200);

    // Sign-out ends that session.
    let mut req = client().delete(format!("{}/auth/sign_out", sim.url()));
    for name in ["access-token", "client", "uid"] {
        req = req.header(name, headers[name].clone());
    }
    assert_eq!(req.send().await.unwrap().status().as_u16(), 200);
    let mut req = client().get(format!("{}/auth/validate_token", sim.url()));
    for name in ["access-token", "client", "uid"] {
        req = req.header(name, headers[name].clone());
    }
    assert_eq!(req.send().await.unwrap().status().as_u16(), 401);

    // Wrong password, unknown email, user without password.
    sim.add_user(NewSimUser::new(
        40,
        "No Pass",
        "nopass@example.com",
        "tok40",
    ));
    for body in [
        json!({"email": seed.admin.email, "password": "nope"}),
        json!({"email": "ghost@example.com", "password": "secret"}),
        json!({"email": "nopass@example.com", "password": ""}),
        json!({}),
    ] {
        let resp = client()
            .post(format!("{}/auth/sign_in", sim.url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            status_json(resp).await,
            (401, example["_response_401"].clone())
        );
    }
}

// ------------------------------------------------------------------ inboxes, agents, teams

#[tokio::test]
async fn inboxes_match_example_and_respect_agent_membership() {
    let (sim, seed) = start().await;
    let example = shared_json("api/inboxes_index.json");
    let (status, body) = get(&sim, "/api/v1/accounts/1/inboxes", &seed.admin.access_token).await;
    assert_eq!(status, 200);
    assert_same_keys(&body, &example, "inboxes");
    // Ordered by name.
    assert_eq!(ids(&body["payload"]), vec![4, 7, 3]);

    // Account 9 has its own ids.
    let admin_in_9 = NewSimUser::new(50, "Boss Nine", "boss9@example.com", "tok50");
    sim.add_user(admin_in_9);
    sim.add_membership(50, 9, SimRole::Administrator);
    let (_, body9) = get(&sim, "/api/v1/accounts/9/inboxes", "tok50").await;
    let mut nine = ids(&body9["payload"]);
    nine.sort_unstable();
    assert_eq!(nine, vec![803, 804, 807]);

    // Agents see member inboxes only, without admin-only fields.
    sim.set_inbox_members(1, 7, Some(vec![seed.admin.id]));
    let (status, body) = get(&sim, "/api/v1/accounts/1/inboxes", &seed.agent.access_token).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&body["payload"]), vec![4, 3]);
    for inbox in body["payload"].as_array().unwrap() {
        for key in ["hmac_token", "secret", "provider_config"] {
            assert!(inbox.get(key).is_none(), "agent sees {key}");
        }
    }
    // Single inbox: no wrapper; agents refused on inboxes they do not belong to.
    let (status, one) = get(
        &sim,
        "/api/v1/accounts/1/inboxes/3",
        &seed.agent.access_token,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(one["name"], "WhatsApp Vendas");
    assert_eq!(
        get(
            &sim,
            "/api/v1/accounts/1/inboxes/7",
            &seed.agent.access_token
        )
        .await,
        error_case("pundit_forbidden")
    );
    assert_eq!(
        get(
            &sim,
            "/api/v1/accounts/1/inboxes/999",
            &seed.admin.access_token
        )
        .await,
        error_case("not_found")
    );

    // set_inboxes replaces the list.
    let mut custom = example["payload"][2].clone();
    custom["id"] = json!(70);
    custom["name"] = json!("Outro");
    sim.set_inboxes(1, vec![custom]);
    let (_, body) = get(&sim, "/api/v1/accounts/1/inboxes", &seed.admin.access_token).await;
    assert_eq!(ids(&body["payload"]), vec![70]);
}

#[tokio::test]
async fn agents_are_built_from_members_like_the_example() {
    let (sim, seed) = start().await;
    let example = shared_json("api/agents_index.json");
    let (status, body) = get(&sim, "/api/v1/accounts/1/agents", &seed.agent.access_token).await;
    assert_eq!(status, 200);
    assert!(body.is_array());
    assert_same_keys(&body, &example, "agents");
    let mut got = ids(&body);
    got.sort_unstable();
    assert_eq!(got, vec![5, 6]);
    for agent in body.as_array().unwrap() {
        let theirs = example
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == agent["id"])
            .unwrap();
        assert_eq!(
            agent, theirs,
            "agent {} differs from the example",
            agent["id"]
        );
    }

    let (_, body9) = get(&sim, "/api/v1/accounts/9/agents", &seed.admin.access_token).await;
    assert_eq!(ids(&body9), vec![5]);
    assert_eq!(body9[0]["role"], "agent");
    assert_eq!(body9[0]["account_id"], 9);

    sim.set_agents(1, vec![json!({"id": 77})]);
    let (_, body) = get(&sim, "/api/v1/accounts/1/agents", &seed.admin.access_token).await;
    assert_eq!(body, json!([{"id": 77}]));
    sim.reset_agents(1);
    let (_, body) = get(&sim, "/api/v1/accounts/1/agents", &seed.admin.access_token).await;
    assert_eq!(body.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn teams_compute_is_member() {
    let (sim, seed) = start().await;
    let example = shared_json("api/teams_index.json");
    let (status, body) = get(&sim, "/api/v1/accounts/1/teams", &seed.admin.access_token).await;
    assert_eq!(status, 200);
    assert_eq!(body, example);

    sim.set_team_members(1, 2, vec![seed.agent.id]);
    sim.set_team_members(1, 3, vec![seed.admin.id]);
    let (_, admin_view) = get(&sim, "/api/v1/accounts/1/teams", &seed.admin.access_token).await;
    let (_, agent_view) = get(&sim, "/api/v1/accounts/1/teams", &seed.agent.access_token).await;
    assert_same_keys(&admin_view, &example, "teams");
    let flags = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| t["is_member"].as_bool().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(flags(&admin_view), vec![false, true]);
    assert_eq!(flags(&agent_view), vec![true, false]);

    let (_, body9) = get(&sim, "/api/v1/accounts/9/teams", &seed.admin.access_token).await;
    assert_eq!(ids(&body9), vec![802, 803]);
    assert!(
        body9
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["account_id"] == 9)
    );
}

#[tokio::test]
async fn conversations_are_filtered_like_chatwoot() {
    let (sim, seed) = start().await;
    let conv = |id: i64, status: &str, inbox: i64, assignee: Option<i64>, last: i64| {
        json!({
            "id": id, "status": status, "inbox_id": inbox, "last_activity_at": last,
            "meta": {"assignee": assignee.map(|a| json!({"id": a})), "team": null},
        })
    };
    sim.set_conversations(
        1,
        vec![
            conv(1, "open", 3, Some(5), 10),
            conv(2, "open", 7, None, 30),
            conv(3, "resolved", 3, Some(6), 20),
            conv(4, "open", 4, Some(6), 40),
        ],
    );
    let (status, body) = get(
        &sim,
        "/api/v1/accounts/1/conversations",
        &seed.admin.access_token,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["meta"],
        json!({"mine_count": 1, "assigned_count": 2, "unassigned_count": 1, "all_count": 3})
    );
    assert_eq!(ids(&body["data"]["payload"]), vec![4, 2, 1]);

    let (_, body) = get(
        &sim,
        "/api/v1/accounts/1/conversations?status=all&assignee_type=assigned&inbox_id=3",
        &seed.admin.access_token,
    )
    .await;
    assert_eq!(ids(&body["data"]["payload"]), vec![3, 1]);

    sim.set_inbox_members(1, 7, Some(vec![]));
    let (_, body) = get(
        &sim,
        "/api/v1/accounts/1/conversations?assignee_type=me",
        &seed.agent.access_token,
    )
    .await;
    assert_eq!(body["data"]["meta"]["all_count"], 2);
    assert_eq!(ids(&body["data"]["payload"]), vec![4]);
}

// ------------------------------------------------------------------ account errors

#[tokio::test]
async fn account_access_errors() {
    let (sim, seed) = start().await;
    let token = &seed.admin.access_token;
    assert_eq!(
        get(&sim, "/api/v1/accounts/404/inboxes", token).await,
        error_case("not_found")
    );
    assert_eq!(
        get(&sim, "/api/v1/accounts/abc/inboxes", token).await,
        error_case("not_found")
    );
    // The agent is not a member of account 9.
    assert_eq!(
        get(&sim, "/api/v1/accounts/9/inboxes", &seed.agent.access_token).await,
        error_case("not_member_of_account")
    );
    sim.remove_membership(seed.admin.id, 9);
    assert_eq!(
        get(&sim, "/api/v1/accounts/9/agents", token).await,
        error_case("not_member_of_account")
    );
    sim.add_membership(seed.admin.id, 9, SimRole::Agent);
    sim.set_account_status(9, AccountStatus::Suspended);
    assert_eq!(
        get(&sim, "/api/v1/accounts/9/teams", token).await,
        error_case("account_suspended")
    );
    let (_, profile) = get(&sim, "/api/v1/profile", token).await;
    assert_eq!(profile["accounts"][1]["status"], "suspended");
    sim.set_account_status(9, AccountStatus::Active);
    assert_eq!(get(&sim, "/api/v1/accounts/9/teams", token).await.0, 200);

    // Unknown routes, with or without credentials.
    assert_eq!(
        get(&sim, "/api/v1/nothing", token).await,
        error_case("not_found")
    );
    assert_eq!(
        get(&sim, "/api/v1/accounts/1/webhooks/1", token).await,
        error_case("not_found")
    );
    let resp = client()
        .get(format!("{}/", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(resp).await, error_case("not_found"));
}

// ------------------------------------------------------------------ webhooks

#[tokio::test]
async fn webhooks_crud_and_validation() {
    let (sim, seed) = start().await;
    let token = &seed.admin.access_token;
    let request = shared_json("api/webhook_create_request.json");
    let index_example = shared_json("api/webhooks_index.json");
    let path = "/api/v1/accounts/1/webhooks";

    let (status, created) = send_json(&sim, reqwest::Method::POST, path, token, &request).await;
    assert_eq!(status, 200);
    let webhook = &created["payload"]["webhook"];
    assert_same_keys(
        webhook,
        &index_example["payload"]["webhooks"][0],
        "webhook create",
    );
    assert_eq!(webhook["url"], request["webhook"]["url"]);
    assert_eq!(webhook["name"], "WhatPro Hub");
    assert_eq!(webhook["account_id"], 1);
    assert_eq!(
        webhook["subscriptions"],
        request["webhook"]["subscriptions"]
    );
    let secret = webhook["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 24);
    assert!(secret.chars().all(|c| c.is_ascii_alphanumeric()));
    let id = webhook["id"].as_i64().unwrap();

    let (status, list) = get(&sim, path, token).await;
    assert_eq!(status, 200);
    assert_same_keys(&list, &index_example, "webhooks index");
    assert_eq!(
        sim.webhooks(1),
        list["payload"]["webhooks"].as_array().unwrap().clone()
    );

    // Validation failures.
    let (record_invalid_status, record_invalid_body) = error_case("record_invalid");
    assert_eq!(
        send_json(&sim, reqwest::Method::POST, path, token, &request).await,
        (record_invalid_status, record_invalid_body)
    );
    let cases = [
        (
            json!({"webhook": {"url": "ftp://x.example", "subscriptions": ["message_created"]}}),
            json!({"message": "Url is invalid", "attributes": ["url"]}),
        ),
        (
            json!({"webhook": {"url": "https://a.example", "subscriptions": []}}),
            json!({"message": "Subscriptions Invalid events", "attributes": ["subscriptions"]}),
        ),
        (
            json!({"webhook": {"url": "https://a.example", "subscriptions": ["agent_typing"]}}),
            json!({"message": "Subscriptions Invalid events", "attributes": ["subscriptions"]}),
        ),
        (
            json!({"webhook": {"url": "nope", "subscriptions": []}}),
            json!({"message": "Url is invalid, Subscriptions Invalid events",
                   "attributes": ["url", "subscriptions"]}),
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(
            send_json(&sim, reqwest::Method::POST, path, token, &body).await,
            (422, expected),
            "{body}"
        );
    }
    let (missing_status, missing_body) = error_case("parameter_missing");
    for body in [json!({}), json!({"webhook": {}}), json!({"foo": 1})] {
        assert_eq!(
            send_json(&sim, reqwest::Method::POST, path, token, &body).await,
            (missing_status, missing_body.clone()),
            "{body}"
        );
    }

    // Rails wrap_parameters: a JSON body without the root still works; subscriptions default.
    let (status, wrapped) = send_json(
        &sim,
        reqwest::Method::POST,
        path,
        token,
        &json!({"url": "http://hub.local/hook", "inbox_id": 3}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        wrapped["payload"]["webhook"]["subscriptions"]
            .as_array()
            .unwrap()
            .len(),
        8
    );
    assert_eq!(
        wrapped["payload"]["webhook"]["inbox"],
        json!({"id": 3, "name": "WhatsApp Vendas"})
    );

    // Update.
    let member = format!("{path}/{id}");
    let (status, updated) = send_json(
        &sim,
        reqwest::Method::PATCH,
        &member,
        token,
        &json!({"webhook": {"subscriptions": ["message_created"]}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        updated["payload"]["webhook"]["subscriptions"],
        json!(["message_created"])
    );
    assert_eq!(updated["payload"]["webhook"]["secret"], secret);
    assert_eq!(
        send_json(
            &sim,
            reqwest::Method::PATCH,
            &member,
            token,
            &json!({"webhook": {"url": "http://hub.local/hook"}})
        )
        .await,
        (
            422,
            json!({"message": "Url has already been taken", "attributes": ["url"]})
        )
    );
    assert_eq!(
        send_json(
            &sim,
            reqwest::Method::PATCH,
            &format!("{path}/9999"),
            token,
            &request
        )
        .await,
        error_case("not_found")
    );

    // Agents may not touch webhooks at all.
    let agent = &seed.agent.access_token;
    let refused = error_case("pundit_forbidden");
    assert_eq!(get(&sim, path, agent).await, refused);
    assert_eq!(
        send_json(&sim, reqwest::Method::POST, path, agent, &request).await,
        refused
    );
    assert_eq!(
        send_json(&sim, reqwest::Method::DELETE, &member, agent, &json!({})).await,
        refused
    );

    // Delete.
    let resp = client()
        .delete(format!("{}{member}", sim.url()))
        .header("api_access_token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await.unwrap().is_empty());
    let (_, list) = get(&sim, path, token).await;
    assert_eq!(list["payload"]["webhooks"].as_array().unwrap().len(), 1);
    assert_eq!(
        send_json(&sim, reqwest::Method::DELETE, &member, token, &json!({})).await,
        error_case("not_found")
    );
}

// ------------------------------------------------------------------ dashboard apps

#[tokio::test]
async fn dashboard_apps_crud_and_validation() {
    let (sim, seed) = start().await;
    let token = &seed.admin.access_token;
    let request = shared_json("api/dashboard_app_create_request.json");
    let index_example = shared_json("api/dashboard_apps_index.json");
    let path = "/api/v1/accounts/1/dashboard_apps";

    let (status, created) = send_json(&sim, reqwest::Method::POST, path, token, &request).await;
    assert_eq!(status, 200);
    assert_same_keys(&created, &index_example[0], "dashboard app");
    assert_eq!(created["title"], "WhatPro Kanban");
    assert_eq!(created["content"], request["dashboard_app"]["content"]);
    let id = created["id"].as_i64().unwrap();

    let (status, list) = get(&sim, path, &seed.agent.access_token).await;
    assert_eq!(status, 200);
    assert_same_keys(&list, &index_example, "dashboard apps index");
    assert_eq!(list, json!([created.clone()]));
    assert_eq!(sim.dashboard_apps(1), vec![created.clone()]);

    let member = format!("{path}/{id}");
    assert_eq!(get(&sim, &member, token).await, (200, created.clone()));
    assert_eq!(
        get(&sim, &format!("{path}/424242"), token).await,
        error_case("not_found")
    );

    let invalid = json!({"message": "Content : Invalid data", "attributes": ["content"]});
    for content in [
        json!([]),
        json!([{"type": "frame", "url": "ftp://x"}]),
        json!([{"type": "link", "url": "https://x.example"}]),
        json!([{"url": "https://x.example"}]),
        json!({"type": "frame", "url": "https://x.example"}),
        Value::Null,
    ] {
        let body = json!({"dashboard_app": {"title": "T", "content": content}});
        assert_eq!(
            send_json(&sim, reqwest::Method::POST, path, token, &body).await,
            (422, invalid.clone()),
            "{body}"
        );
    }
    assert_eq!(
        send_json(&sim, reqwest::Method::POST, path, token, &json!({})).await,
        (
            422,
            json!({"error": "param is missing or the value is empty: dashboard_app"})
        )
    );

    let (status, updated) = send_json(
        &sim,
        reqwest::Method::PATCH,
        &member,
        token,
        &json!({"dashboard_app": {"title": "Kanban 2"}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(updated["title"], "Kanban 2");
    assert_eq!(updated["content"], created["content"]);

    let refused = error_case("pundit_forbidden");
    let agent = &seed.agent.access_token;
    assert_eq!(
        send_json(&sim, reqwest::Method::POST, path, agent, &request).await,
        refused
    );
    assert_eq!(
        send_json(&sim, reqwest::Method::PATCH, &member, agent, &request).await,
        refused
    );

    let resp = client()
        .delete(format!("{}{member}", sim.url()))
        .header("api_access_token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(get(&sim, &member, token).await, error_case("not_found"));
}

// ------------------------------------------------------------------ faults and recording

#[tokio::test]
async fn fault_injection() {
    let (sim, seed) = start().await;
    let token = &seed.admin.access_token;

    sim.set_fault(Some(Fault::Status(503)));
    for _ in 0..2 {
        let (status, body) = get(&sim, "/api/v1/profile", token).await;
        assert_eq!(status, 503);
        assert_eq!(body, json!({"status": 503, "error": "Service Unavailable"}));
    }
    sim.set_fault(None);
    assert_eq!(get(&sim, "/api/v1/profile", token).await.0, 200);

    sim.set_fault_times(Fault::Status(500), 1);
    assert_eq!(get(&sim, "/api/v1/profile", token).await.0, 500);
    assert_eq!(get(&sim, "/api/v1/profile", token).await.0, 200);

    sim.set_fault_times(Fault::Status(429), 1);
    let resp = client()
        .get(format!("{}/api/v1/profile", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.text().await.unwrap(), "Retry later\n");

    sim.set_fault_times(Fault::Delay(Duration::from_millis(300)), 1);
    let started = Instant::now();
    assert_eq!(get(&sim, "/api/v1/profile", token).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    sim.set_fault_times(Fault::Close, 1);
    let err = client()
        .get(format!("{}/api/v1/profile", sim.url()))
        .header("api_access_token", token)
        .send()
        .await;
    assert!(err.is_err(), "a closed connection must fail the request");
    assert_eq!(get(&sim, "/api/v1/profile", token).await.0, 200);

    // A client-side timeout sees the delay.
    sim.set_fault(Some(Fault::Delay(Duration::from_secs(5))));
    let err = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap()
        .get(format!("{}/api/v1/profile", sim.url()))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    sim.set_fault(None);
}

#[tokio::test]
async fn requests_are_recorded() {
    let (sim, seed) = start().await;
    client()
        .post(format!("{}/api/v1/accounts/1/webhooks?x=1", sim.url()))
        .header("API_ACCESS_TOKEN", &seed.admin.access_token)
        .header("X-Custom", "yes")
        .json(
            &json!({"webhook": {"url": "https://r.example", "subscriptions": ["message_created"]}}),
        )
        .send()
        .await
        .unwrap();
    let _ = client().get(format!("{}/whatever", sim.url())).send().await;
    let recorded = sim.requests();
    assert_eq!(recorded.len(), 2);
    let first = &recorded[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/api/v1/accounts/1/webhooks");
    assert_eq!(first.query.as_deref(), Some("x=1"));
    assert_eq!(first.header("x-custom"), Some("yes"));
    assert!(first.headers.iter().any(|(n, _)| n == "api_access_token"));
    assert_eq!(
        first.body_json().unwrap()["webhook"]["url"],
        "https://r.example"
    );
    assert_eq!(recorded[1].path, "/whatever");
    assert!(recorded[1].body.is_empty());
    sim.clear_requests();
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn server_stops_on_shutdown_and_drop() {
    let (sim, _) = start().await;
    let url = sim.url();
    sim.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        client()
            .get(format!("{url}/api/v1/profile"))
            .send()
            .await
            .is_err()
    );

    let sim = ChatwootSim::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = sim.url();
    let clone = sim.clone();
    drop(sim);
    assert!(client().get(format!("{url}/x")).send().await.is_ok());
    drop(clone);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(client().get(format!("{url}/x")).send().await.is_err());
}

// ------------------------------------------------------------------ outgoing webhooks

#[test]
fn signature_matches_the_shared_test_vector() {
    let vector = shared_json("webhooks/_signature_test_vector.json");
    let secret = vector["secret"].as_str().unwrap();
    let body = vector["body"].as_str().unwrap();
    let headers = &vector["headers"];
    let timestamp: i64 = headers["X-Chatwoot-Timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let expected = headers["X-Chatwoot-Signature"].as_str().unwrap();
    assert_eq!(sign(secret, timestamp, body.as_bytes()), expected);
    assert!(verify_signature(
        secret,
        headers["X-Chatwoot-Timestamp"].as_str().unwrap(),
        body.as_bytes(),
        expected
    ));
    assert!(!verify_signature(
        "other",
        "1768830312",
        body.as_bytes(),
        expected
    ));
    // rails_json keeps the payload's content (key order follows serde_json's sorted maps).
    let parsed: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&rails_json(&parsed)).unwrap(),
        parsed
    );
}

struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A tiny webhook receiver answering `status` (after `delay`) and reporting what it got.
async fn receiver(status: u16, delay: Duration) -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let tx = tx.clone();
                        async move {
                            let headers = req
                                .headers()
                                .iter()
                                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
                                .collect();
                            let body = req.into_body().collect().await.unwrap().to_bytes().to_vec();
                            let _ = tx.send(Received { headers, body });
                            tokio::time::sleep(delay).await;
                            let mut resp =
                                hyper::Response::new(Full::new(Bytes::from_static(b"ok")));
                            *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, Infallible>(resp)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (format!("http://{addr}/chatwoot/webhook"), rx)
}

fn header<'a>(r: &'a Received, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn send_webhook_signs_like_chatwoot() {
    let (sim, _) = start().await;
    let (url, mut rx) = receiver(200, Duration::ZERO).await;
    let mut payload = fixtures::webhook_example("message_created").unwrap();
    payload["content"] = json!("<b>Olá & tchau</b>");
    let secret = "xK3mP9qR7tW2vY5zA8bC1dE4";

    let status = sim
        .send_webhook(&url, &payload, Some(secret))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let got = rx.recv().await.unwrap();
    assert_eq!(header(&got, "content-type"), Some("application/json"));
    assert_eq!(header(&got, "accept"), Some("application/json"));
    let delivery = header(&got, "x-chatwoot-delivery").unwrap();
    assert_eq!(delivery.len(), 36);
    assert_eq!(delivery.matches('-').count(), 4);
    let timestamp = header(&got, "x-chatwoot-timestamp").unwrap();
    let signature = header(&got, "x-chatwoot-signature").unwrap();
    assert!(signature.starts_with("sha256="));
    assert!(verify_signature(secret, timestamp, &got.body, signature));
    let body = String::from_utf8(got.body.clone()).unwrap();
    assert_eq!(body, rails_json(&payload));
    assert!(body.contains("\\u003cb\\u003eOlá \\u0026 tchau\\u003c/b\\u003e"));
    assert!(!body.contains('\n'));
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), payload);

    // Without a secret: delivery and timestamp, no signature.
    let status = sim.send_webhook(&url, &payload, None).await.unwrap();
    assert_eq!(status, 200);
    let got = rx.recv().await.unwrap();
    assert!(header(&got, "x-chatwoot-delivery").is_some());
    assert!(header(&got, "x-chatwoot-timestamp").is_some());
    assert!(header(&got, "x-chatwoot-signature").is_none());

    // Exact bytes of the shared example, as an installation before 4.11.2 sends them.
    let raw = fixtures::WEBHOOK_EXAMPLES[0].1.as_bytes();
    let status = sim
        .send_webhook_body(&url, raw, WebhookSigning::Legacy)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let got = rx.recv().await.unwrap();
    assert_eq!(got.body, raw);
    assert!(
        got.headers
            .iter()
            .all(|(n, _)| !n.starts_with("x-chatwoot"))
    );
}

#[tokio::test]
async fn send_webhook_reports_status_errors_and_timeouts() {
    let (sim, _) = start().await;
    let (url, mut rx) = receiver(500, Duration::ZERO).await;
    assert_eq!(
        sim.send_webhook(&url, &json!({"event": "x"}), None)
            .await
            .unwrap(),
        500
    );
    // No retry: exactly one delivery.
    assert!(rx.recv().await.is_some());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(rx.try_recv().is_err());

    // Nothing listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    assert!(matches!(
        sim.send_webhook(&format!("http://{closed}/"), &json!({}), None)
            .await,
        Err(SimError::Io(_))
    ));
    assert!(matches!(
        sim.send_webhook("https://example.com/", &json!({}), None)
            .await,
        Err(SimError::UnsupportedScheme(_))
    ));

    // A receiver slower than 5 s times out.
    let (slow, _rx) = receiver(200, Duration::from_secs(30)).await;
    let started = Instant::now();
    assert!(matches!(
        sim.send_webhook(&slow, &json!({}), Some("s")).await,
        Err(SimError::Timeout(_))
    ));
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(5) && elapsed < Duration::from_secs(15));
}

#[tokio::test]
async fn sim_can_receive_its_own_webhooks() {
    // The simulator itself records any request, so it doubles as a webhook sink.
    let (sim, _) = start().await;
    let sink = ChatwootSim::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    sink.set_fault(Some(Fault::Status(200)));
    let payload = fixtures::webhook_example("contact_created").unwrap();
    let url = format!("{}/hook", sink.url());
    assert_eq!(
        sim.send_webhook(&url, &payload, Some("k")).await.unwrap(),
        200
    );
    let got = &sink.requests()[0];
    assert_eq!(got.path, "/hook");
    assert!(verify_signature(
        "k",
        got.header("x-chatwoot-timestamp").unwrap(),
        &got.body,
        got.header("x-chatwoot-signature").unwrap()
    ));
}

#[test]
#[should_panic(expected = "key sets differ")]
fn key_comparison_catches_a_missing_nested_key() {
    let example = shared_json("api/profile.json");
    let mut broken = example.clone();
    broken["accounts"][1]
        .as_object_mut()
        .unwrap()
        .remove("custom_role");
    assert_same_keys(&broken, &example, "profile");
}

// ------------------------------------------------------------------ pages

#[tokio::test]
async fn set_page_serves_html_on_the_simulator_origin() {
    let (sim, seed) = start().await;
    sim.set_page("/app/accounts/1/dashboard", "<p>dashboard</p>");
    let http = client();
    let response = http
        .get(format!("{}/app/accounts/1/dashboard?x=1", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    assert_eq!(response.text().await.unwrap(), "<p>dashboard</p>");

    // Other paths and methods keep Chatwoot's behaviour.
    let response = http
        .post(format!("{}/app/accounts/1/dashboard", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = http
        .get(format!("{}/api/v1/profile", sim.url()))
        .header("api_access_token", &seed.admin.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn route_faults_hit_only_their_route_and_garbage_is_html() {
    let (sim, seed) = start().await;
    let token = &seed.admin.access_token;
    sim.set_route_fault("/inboxes", Some(Fault::Status(500)));
    assert_eq!(get(&sim, "/api/v1/accounts/1/inboxes", token).await.0, 500);
    assert_eq!(get(&sim, "/api/v1/accounts/1/inboxes", token).await.0, 500);
    assert_eq!(get(&sim, "/api/v1/profile", token).await.0, 200);
    sim.set_route_fault("/inboxes", Some(Fault::Garbage));
    let (status, body) = get(&sim, "/api/v1/accounts/1/inboxes", token).await;
    assert_eq!(status, 200);
    assert!(body.as_str().unwrap().starts_with("<html>"), "{body}");
    sim.set_route_fault("/inboxes", Some(Fault::Status(401)));
    assert_eq!(get(&sim, "/api/v1/accounts/1/inboxes", token).await.0, 401);
    // A route fault wins over the global one; clearing it restores normal answers.
    sim.set_fault(Some(Fault::Status(503)));
    assert_eq!(get(&sim, "/api/v1/accounts/1/inboxes", token).await.0, 401);
    sim.set_fault(None);
    sim.set_route_fault("/inboxes", None);
    assert_eq!(get(&sim, "/api/v1/accounts/1/inboxes", token).await.0, 200);
}

#[tokio::test]
async fn inboxes_can_be_added_removed_and_seeded_in_bulk() {
    let (sim, seed) = start().await;
    let token = &seed.admin.access_token;
    let fixture = shared_json("api/inboxes_index.json");
    let before = sim.inbox_ids(1);
    assert_eq!(before.len(), 3);

    sim.add_inbox(1, ChatwootSim::api_inbox(501, "Atendimento Norte"));
    let (_, body) = get(&sim, "/api/v1/accounts/1/inboxes", token).await;
    let added = body["payload"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == json!(501))
        .unwrap()
        .clone();
    assert_eq!(added["name"], json!("Atendimento Norte"));
    assert_eq!(added["channel_type"], json!("Channel::Api"));
    let api_example = fixture["payload"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["channel_type"] == json!("Channel::Api"))
        .unwrap();
    assert_same_keys(&added, api_example, "inbox 501");

    // Replacing keeps one entry per id.
    sim.add_inbox(1, ChatwootSim::api_inbox(501, "Atendimento Sul"));
    assert_eq!(sim.inbox_ids(1).len(), 4);
    assert!(sim.remove_inbox(1, 501));
    assert!(!sim.remove_inbox(1, 501));
    assert_eq!(sim.inbox_ids(1), before);

    let seeded = sim.seed_inboxes(1, 10_000, 1000);
    assert_eq!(seeded.len(), 1000);
    assert_eq!(seeded[0], 10_000);
    let (status, body) = get(&sim, "/api/v1/accounts/1/inboxes", token).await;
    assert_eq!(status, 200);
    assert_eq!(body["payload"].as_array().unwrap().len(), 1003);
    // Other accounts are untouched.
    assert_eq!(sim.inbox_ids(9).len(), 3);
}
