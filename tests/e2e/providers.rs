//! WhatsApp providers and instances end to end, against the fake provider server: CRUD without
//! ever showing credentials, the bad-input list, quotas (with a 50-way race), health
//! transitions (slow, lying-but-silent, silent, disconnected), the scheduler, and provider
//! webhooks.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{Bytea, Text};
use diesel_async::RunQueryDsl;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use whatpro_chatwoot_sim::SimRole;
use whatpro_entitlements::{Overrides, Resource};
use whatpro_iam::PlatformScope;
use whatpro_inbox::{HealthState, ProviderType};
use whatpro_kernel::AccountId;
use whatpro_providers_sim::{
    Behaviour, EvolutionEvent, EvolutionState, ProvidersSim, SimInstance, SimState,
};
use whatpro_testkit::TestApp;

use crate::api_keys::{audit_rows, call};
use crate::inbox::{connect, mirror, sync};
use crate::support::{ACCOUNT_A, ACCOUNT_B, Demo, add_user, demo, get, login};

/// Evolution's server-wide key in the fake provider server.
pub const GLOBAL_KEY: &str = "evo-global-key-5D3F4C8B";

pub fn providers_path(account: i64) -> String {
    format!("/api/v1/accounts/{account}/providers")
}

pub fn instances_path(account: i64, provider: &str) -> String {
    format!("{}/{provider}/instances", providers_path(account))
}

/// A fake provider server with an Evolution global key.
pub async fn provider_server() -> ProvidersSim {
    let sim = ProvidersSim::start().await.unwrap();
    sim.set_evolution_global_key(Some(GLOBAL_KEY));
    sim
}

pub fn evolution_body(base_url: &str) -> Value {
    json!({
        "type": "evolution",
        "name": "Evolution principal",
        "base_url": base_url,
        "credentials": {"api_key": GLOBAL_KEY}
    })
}

pub async fn post(app: &TestApp, path: &str, bearer: &str, body: &Value) -> (StatusCode, Value) {
    call(app, Method::POST, path, bearer, None, Some(body)).await
}

/// Creates a provider (expecting 201) and returns its id.
pub async fn create_provider(app: &TestApp, bearer: &str, account: i64, body: &Value) -> String {
    let (status, created) = post(app, &providers_path(account), bearer, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

/// Creates an instance (expecting 201) and returns the whole answer.
pub async fn create_instance(
    app: &TestApp,
    bearer: &str,
    account: i64,
    provider: &str,
    body: &Value,
) -> Value {
    let (status, created) = post(app, &instances_path(account, provider), bearer, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

/// Sets account limits directly through the entitlements service (as a super_admin would).
pub async fn set_limits(app: &TestApp, account: i64, limits: &[(Resource, Option<i64>)]) {
    let scope = PlatformScope::for_system_jobs().tenant(AccountId::new(account));
    app.state
        .entitlements
        .set_account(
            &scope,
            None,
            Some(Overrides {
                limits: limits.iter().copied().collect::<BTreeMap<_, _>>(),
                features: BTreeMap::new(),
            }),
        )
        .await
        .unwrap();
}

async fn probe(app: &TestApp, bearer: &str, instance: &Value) -> Value {
    let path = format!(
        "{}/{}/probe",
        instances_path(ACCOUNT_A, instance["provider_id"].as_str().unwrap()),
        instance["id"].as_str().unwrap()
    );
    let (status, body) = post(app, &path, bearer, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = Text)]
    text: String,
}

#[derive(QueryableByName)]
struct StoredHash {
    #[diesel(sql_type = Bytea)]
    hash: Vec<u8>,
}

async fn stored_texts(app: &TestApp, sql: &str) -> Vec<String> {
    let mut conn = app.db.pool().get().await.unwrap();
    let rows: Vec<Stored> = diesel::sql_query(sql).load(&mut conn).await.unwrap();
    rows.into_iter().map(|r| r.text).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn providers_are_managed_by_admins_and_never_show_their_credentials() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let admin = &demo.carlos.access_token;
    let secret = "zapi-client-token-6C1D0E";
    let body = json!({
        "type": "zapi",
        "name": "Z-API",
        "base_url": "http://127.0.0.1:9",
        "credentials": {"client_token": secret}
    });
    // Agents read, but do not create.
    let (status, refused) = post(
        &app,
        &providers_path(ACCOUNT_A),
        &demo.ana.access_token,
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let (status, created) = post(&app, &providers_path(ACCOUNT_A), admin, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["type"], "zapi");
    assert_eq!(created["credential_keys"], json!(["client_token"]));
    assert_eq!(created["instance_count"], 0);
    assert!(!created.to_string().contains(secret));
    let id = created["id"].as_str().unwrap();

    let (status, list) = get(&app, &providers_path(ACCOUNT_A), &demo.ana.access_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(secret));
    let (status, one) = get(&app, &format!("{}/{id}", providers_path(ACCOUNT_A)), admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["name"], "Z-API");

    // Stored encrypted.
    let stored = stored_texts(&app, "SELECT sealed_credentials AS text FROM providers").await;
    assert!(stored[0].starts_with("v4.local.") && !stored[0].contains(secret));

    let (status, patched) = call(
        &app,
        Method::PATCH,
        &format!("{}/{id}", providers_path(ACCOUNT_A)),
        admin,
        None,
        Some(&json!({"name": "Z-API Vendas", "credentials": {}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Z-API Vendas");
    assert_eq!(patched["credential_keys"], json!([]));
    assert_eq!(patched["type"], "zapi");

    for _ in 0..2 {
        let (status, _) = call(
            &app,
            Method::DELETE,
            &format!("{}/{id}", providers_path(ACCOUNT_A)),
            admin,
            None,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let (status, body) = get(&app, &format!("{}/{id}", providers_path(ACCOUNT_A)), admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "provider_not_found");

    let audit = audit_rows(&app, admin, ACCOUNT_A, "provider.created").await;
    assert_eq!(audit.len(), 1);
    assert!(!audit[0].to_string().contains(secret));
    assert_eq!(
        audit_rows(&app, admin, ACCOUNT_A, "provider.deleted")
            .await
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_provider_input_gets_a_clear_4xx_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let admin = &demo.carlos.access_token;
    let good = evolution_body("http://127.0.0.1:9");
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let cases = [
        (with("type", json!("telegram")), "type"),
        (with("type", json!("")), "type"),
        (with("base_url", json!("not a url")), "base_url"),
        (with("base_url", json!("ftp://evo.example")), "base_url"),
        (
            with("base_url", json!("http://169.254.169.254/latest")),
            "base_url",
        ),
        (
            with("base_url", json!("http://user:pw@evo.example")),
            "base_url",
        ),
        (with("base_url", json!("")), "base_url"),
        (with("credentials", json!({})), "credentials"),
        (with("credentials", json!({"api_key": ""})), "credentials"),
        (
            with("credentials", json!({"api_key": "k", "password": "x"})),
            "credentials",
        ),
        (with("name", json!("")), "name"),
    ];
    for (body, field) in cases {
        let (status, answer) = post(&app, &providers_path(ACCOUNT_A), admin, &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["code"], "validation_failed", "{body}");
        assert_eq!(answer["details"][0]["field"], field, "{body}: {answer}");
    }
    // Wrong JSON types and missing fields: 422 from the body parser; not JSON at all: 400.
    for body in [
        with("credentials", json!({"api_key": 5})),
        json!({"type": "evolution", "name": "x"}),
    ] {
        let (status, answer) = post(&app, &providers_path(ACCOUNT_A), admin, &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
    }
    let response = app
        .client
        .post(app.url(&providers_path(ACCOUNT_A)))
        .bearer_auth(admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Nothing was created, no quota slot was taken.
    let (_, list) = get(&app, &providers_path(ACCOUNT_A), admin).await;
    assert_eq!(list["data"], json!([]));
    let (_, ent) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/entitlements"),
        admin,
    )
    .await;
    assert_eq!(ent["usage"]["providers"], 0, "{ent}");
}

#[tokio::test(flavor = "multi_thread")]
async fn private_addresses_are_refused_unless_the_operator_allows_them() {
    let app = TestApp::builder()
        .var("HUB_ALLOW_PRIVATE_UPSTREAMS", "false")
        .start()
        .await;
    let demo = demo(&app).await;
    for url in [
        "http://127.0.0.1:8080",
        "http://10.1.2.3",
        "http://[::1]:80",
        "http://localhost:8080",
    ] {
        let (status, body) = post(
            &app,
            &providers_path(ACCOUNT_A),
            &demo.carlos.access_token,
            &evolution_body(url),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        assert_eq!(body["details"][0]["field"], "base_url", "{url}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_belong_to_their_accounts_provider() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let a_admin = &demo.carlos.access_token;
    let b_admin = add_user(&app, 42, &[(ACCOUNT_B, SimRole::Administrator)]);
    let b_admin = login(&app, &b_admin).await;
    let a_provider = create_provider(
        &app,
        a_admin,
        ACCOUNT_A,
        &evolution_body("http://127.0.0.1:9"),
    )
    .await;
    let b_provider = create_provider(
        &app,
        &b_admin.access_token,
        ACCOUNT_B,
        &evolution_body("http://127.0.0.1:9"),
    )
    .await;
    let instance = create_instance(
        &app,
        a_admin,
        ACCOUNT_A,
        &a_provider,
        &json!({"name": "suporte"}),
    )
    .await;
    let id = instance["id"].as_str().unwrap();

    // An instance of another account's provider: 404, nothing created.
    let (status, body) = post(
        &app,
        &instances_path(ACCOUNT_A, &b_provider),
        a_admin,
        &json!({"name": "intruso"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "provider_not_found");
    let (status, _) = get(&app, &instances_path(ACCOUNT_A, &b_provider), a_admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A's instance through B's provider id, and from B: 404.
    let (status, _) = get(
        &app,
        &format!("{}/{id}", instances_path(ACCOUNT_A, &b_provider)),
        a_admin,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(
        &app,
        &format!("{}/{id}", instances_path(ACCOUNT_B, &a_provider)),
        &b_admin.access_token,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, b_list) = get(
        &app,
        &instances_path(ACCOUNT_B, &b_provider),
        &b_admin.access_token,
    )
    .await;
    assert_eq!(b_list["data"], json!([]));

    // Bad instance input.
    for (body, status, code) in [
        (
            json!({"name": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"name": ".."}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"name": "x", "credentials": {"token": "t"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"name": "x", "inbox_id": uuid::Uuid::now_v7()}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "inbox_not_found",
        ),
    ] {
        let (got, answer) = post(
            &app,
            &instances_path(ACCOUNT_A, &a_provider),
            a_admin,
            &body,
        )
        .await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["code"], code, "{body}: {answer}");
    }
    let (_, list) = get(&app, &instances_path(ACCOUNT_A, &a_provider), a_admin).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_links_a_mirrored_inbox_and_shows_its_webhook_token_once() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let admin = &demo.carlos.access_token;
    connect(&app, admin, ACCOUNT_A, &demo.seed.admin.access_token).await;
    sync(&app, admin, ACCOUNT_A).await;
    let inbox = mirror(&app, admin, ACCOUNT_A).await[0].clone();
    let provider = create_provider(
        &app,
        admin,
        ACCOUNT_A,
        &evolution_body("http://127.0.0.1:9"),
    )
    .await;
    let created = create_instance(
        &app,
        admin,
        ACCOUNT_A,
        &provider,
        &json!({"name": "suporte", "inbox_id": inbox["id"], "credentials": {"instance_api_key": "hash-1"}}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let token = created["webhook_token"].as_str().unwrap();
    assert!(token.starts_with("whpw_"));
    assert_eq!(
        created["webhook_url"],
        app.url(&format!("/api/v1/webhooks/providers/{id}"))
    );
    assert_eq!(created["health"]["state"], "unknown");
    assert_eq!(created["inbox_id"], inbox["id"]);
    assert_eq!(created["credential_keys"], json!(["instance_api_key"]));

    // Never again.
    let (_, one) = get(
        &app,
        &format!("{}/{id}", instances_path(ACCOUNT_A, &provider)),
        admin,
    )
    .await;
    assert!(one.get("webhook_token").is_none());
    assert!(!one.to_string().contains(token));
    let mut conn = app.db.pool().get().await.unwrap();
    let hashes: Vec<StoredHash> =
        diesel::sql_query("SELECT webhook_token_hash AS hash FROM provider_instances")
            .load(&mut conn)
            .await
            .unwrap();
    assert_eq!(hashes[0].hash.len(), 32);
    assert!(!String::from_utf8_lossy(&hashes[0].hash).contains(token));

    // The inbox shows its instance; a second instance cannot take it.
    let linked = mirror(&app, admin, ACCOUNT_A).await;
    let linked = linked.iter().find(|i| i["id"] == inbox["id"]).unwrap();
    assert_eq!(linked["provider_instance_id"], created["id"]);
    let (status, body) = post(
        &app,
        &instances_path(ACCOUNT_A, &provider),
        admin,
        &json!({"name": "vendas", "inbox_id": inbox["id"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "inbox_already_linked");
    // Unlink with null.
    let (status, patched) = call(
        &app,
        Method::PATCH,
        &format!("{}/{id}", instances_path(ACCOUNT_A, &provider)),
        admin,
        None,
        Some(&json!({"inbox_id": null, "name": "suporte-2"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["inbox_id"], Value::Null);
    assert_eq!(patched["name"], "suporte-2");
    assert_eq!(patched["credential_keys"], json!(["instance_api_key"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn quotas_limit_providers_and_instances_and_deletes_give_slots_back() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let admin = &demo.carlos.access_token;
    // Trial: 2 providers, 3 instances.
    let first = create_provider(
        &app,
        admin,
        ACCOUNT_A,
        &evolution_body("http://127.0.0.1:9"),
    )
    .await;
    create_provider(
        &app,
        admin,
        ACCOUNT_A,
        &evolution_body("http://127.0.0.1:9"),
    )
    .await;
    let (status, body) = post(
        &app,
        &providers_path(ACCOUNT_A),
        admin,
        &evolution_body("http://127.0.0.1:9"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "quota_exceeded");
    assert_eq!(
        body["details"],
        json!([{"resource": "max_providers", "limit": 2, "used": 2}])
    );
    for i in 0..3 {
        create_instance(
            &app,
            admin,
            ACCOUNT_A,
            &first,
            &json!({"name": format!("n{i}")}),
        )
        .await;
    }
    let (status, body) = post(
        &app,
        &instances_path(ACCOUNT_A, &first),
        admin,
        &json!({"name": "n4"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["details"][0]["resource"], "max_instances");

    // Deleting the provider frees its slot and its instances' slots.
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("{}/{first}", providers_path(ACCOUNT_A)),
        admin,
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, ent) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/entitlements"),
        admin,
    )
    .await;
    assert_eq!(ent["usage"]["providers"], 1, "{ent}");
    assert_eq!(ent["usage"]["instances"], 0, "{ent}");
    let again = create_provider(
        &app,
        admin,
        ACCOUNT_A,
        &evolution_body("http://127.0.0.1:9"),
    )
    .await;
    create_instance(&app, admin, ACCOUNT_A, &again, &json!({"name": "x"})).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_parallel_creates_for_the_last_provider_slot_give_exactly_one() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let admin = demo.carlos.access_token.clone();
    create_provider(
        &app,
        &admin,
        ACCOUNT_A,
        &evolution_body("http://127.0.0.1:9"),
    )
    .await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let client = app.client.clone();
        let url = app.url(&providers_path(ACCOUNT_A));
        let admin = admin.clone();
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(admin)
                .json(&evolution_body("http://127.0.0.1:9"))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (status, body)
        }));
    }
    let mut created = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::FORBIDDEN => assert_eq!(body["code"], "quota_exceeded"),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(created, 1);
    let (_, list) = get(&app, &providers_path(ACCOUNT_A), &admin).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_parallel_creates_for_the_last_instance_slot_give_exactly_one() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let admin = demo.carlos.access_token.clone();
    let provider = create_provider(
        &app,
        &admin,
        ACCOUNT_A,
        &evolution_body("http://127.0.0.1:9"),
    )
    .await;
    // The trial plan allows 3 instances: 2 exist, one slot is left.
    for name in ["vendas", "suporte"] {
        create_instance(&app, &admin, ACCOUNT_A, &provider, &json!({"name": name})).await;
    }
    let mut tasks = Vec::new();
    for n in 0..50 {
        let client = app.client.clone();
        let url = app.url(&instances_path(ACCOUNT_A, &provider));
        let admin = admin.clone();
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(admin)
                .json(&json!({"name": format!("race-{n}")}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (status, body)
        }));
    }
    let mut created = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::FORBIDDEN => {
                assert_eq!(body["code"], "quota_exceeded");
                assert_eq!(body["details"][0]["resource"], "max_instances");
                assert_eq!(
                    (
                        body["details"][0]["limit"].as_i64(),
                        body["details"][0]["used"].as_i64()
                    ),
                    (Some(3), Some(3))
                );
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(created, 1);
    let (_, list) = get(&app, &instances_path(ACCOUNT_A, &provider), &admin).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 3);
}

/// An app whose health thresholds make every state reachable in a test, with the scheduler
/// out of the way (probes are asked for through the API).
async fn health_app() -> (TestApp, Demo, ProvidersSim) {
    let app = TestApp::builder()
        .var("HUB_HEALTH_SLOW_MS", "300")
        .var("HUB_HEALTH_SILENT_SECS", "2")
        .var("HUB_HEALTH_PROBE_TIMEOUT_MS", "800")
        .var("HUB_HEALTH_INTERVAL_SECS", "86400")
        .start()
        .await;
    let demo = demo(&app).await;
    let sim = provider_server().await;
    (app, demo, sim)
}

#[tokio::test(flavor = "multi_thread")]
async fn health_follows_the_provider_and_the_silence_of_its_events() {
    let (app, demo, sim) = health_app().await;
    let admin = &demo.carlos.access_token;
    let mut events = app.state.health_events.subscribe();
    sim.add_instance(SimInstance::new(
        ProviderType::Evolution,
        "suporte",
        "inst-secret",
    ));
    let provider = create_provider(&app, admin, ACCOUNT_A, &evolution_body(&sim.url())).await;
    let instance = create_instance(
        &app,
        admin,
        ACCOUNT_A,
        &provider,
        &json!({"name": "suporte"}),
    )
    .await;
    assert_eq!(instance["health"]["state"], "unknown");
    assert_eq!(instance["health"]["checked_at"], Value::Null);

    let state = |body: &Value| body["health"]["state"].as_str().unwrap().to_owned();
    let checked = probe(&app, admin, &instance).await;
    assert_eq!(state(&checked), "healthy", "{checked}");
    assert!(checked["health"]["latency_ms"].is_number());
    assert!(checked["health"]["checked_at"].is_string());

    // Slow.
    sim.set_behaviour("suporte", Behaviour::Slow(Duration::from_millis(450)));
    let slow = probe(&app, admin, &instance).await;
    assert_eq!(state(&slow), "degraded", "{slow}");
    assert!(
        slow["health"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("slow")
    );
    sim.set_behaviour("suporte", Behaviour::Normal);
    assert_eq!(state(&probe(&app, admin, &instance).await), "healthy");

    // Lying: it says connected, but no event arrives after it had sent some.
    let url = instance["webhook_url"].as_str().unwrap();
    let token = instance["webhook_token"].as_str().unwrap();
    let status = sim
        .send_evolution_webhook(url, token, EvolutionEvent::MessagesUpsert, "suporte")
        .await
        .unwrap();
    assert_eq!(status, 200);
    sim.set_state("suporte", SimState::Disconnected);
    sim.set_behaviour("suporte", Behaviour::Lie);
    assert_eq!(
        state(&probe(&app, admin, &instance).await),
        "healthy",
        "events are recent"
    );
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let lying = probe(&app, admin, &instance).await;
    assert_eq!(state(&lying), "degraded", "{lying}");
    assert!(
        lying["health"]["reason"]
            .as_str()
            .unwrap()
            .contains("no event arrived")
    );

    // Silent: no answer at all, twice in a row.
    sim.set_behaviour("suporte", Behaviour::Silent);
    let once = probe(&app, admin, &instance).await;
    assert_eq!(state(&once), "degraded", "{once}");
    let twice = probe(&app, admin, &instance).await;
    assert_eq!(state(&twice), "down", "{twice}");
    assert!(
        twice["health"]["reason"]
            .as_str()
            .unwrap()
            .contains("2 probes in a row")
    );

    // Honest again: disconnected is down, connected is healthy.
    sim.set_behaviour("suporte", Behaviour::Normal);
    assert_eq!(state(&probe(&app, admin, &instance).await), "down");
    sim.set_state("suporte", SimState::Connected);
    let status = sim
        .send_evolution_webhook(url, token, EvolutionEvent::MessagesUpsert, "suporte")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(state(&probe(&app, admin, &instance).await), "healthy");

    // Every transition is in the history (newest first), audited as the system, published.
    let history_path = format!(
        "{}/{}/health",
        instances_path(ACCOUNT_A, &provider),
        instance["id"].as_str().unwrap()
    );
    let (status, history) = get(&app, &history_path, &demo.ana.access_token).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let states: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "healthy", "down", "degraded", "healthy", "degraded", "healthy", "unknown"
        ]
    );
    assert_eq!(history["data"][0]["previous_state"], "down");
    assert_eq!(history["data"][0]["source"], "probe");
    assert_eq!(history["data"][6]["source"], "created");
    let (_, page) = get(&app, &format!("{history_path}?limit=2"), admin).await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = get(
        &app,
        &format!("{history_path}?limit=2&cursor={cursor}"),
        admin,
    )
    .await;
    assert_eq!(next["data"][0]["state"], "degraded");

    let audited = audit_rows(&app, admin, ACCOUNT_A, "provider.health_changed").await;
    assert_eq!(audited.len(), 6);
    assert!(audited.iter().all(|a| a["actor"]["type"] == "system"));
    let mut published = Vec::new();
    while let Ok(t) = events.try_recv() {
        published.push(t.to);
    }
    assert_eq!(
        published,
        [
            HealthState::Healthy,
            HealthState::Degraded,
            HealthState::Healthy,
            HealthState::Degraded,
            HealthState::Down,
            HealthState::Healthy
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scheduler_probes_instances_on_its_own() {
    let app = TestApp::builder()
        .var("HUB_HEALTH_INTERVAL_SECS", "1")
        .start()
        .await;
    let demo = demo(&app).await;
    let sim = provider_server().await;
    let admin = &demo.carlos.access_token;
    sim.add_instance(SimInstance::new(ProviderType::Evolution, "vendas", "s"));
    sim.add_instance(
        SimInstance::new(ProviderType::Evolution, "fechada", "s")
            .with_state(SimState::Disconnected),
    );
    let provider = create_provider(&app, admin, ACCOUNT_A, &evolution_body(&sim.url())).await;
    let open = create_instance(
        &app,
        admin,
        ACCOUNT_A,
        &provider,
        &json!({"name": "vendas"}),
    )
    .await;
    let closed = create_instance(
        &app,
        admin,
        ACCOUNT_A,
        &provider,
        &json!({"name": "fechada"}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, list) = get(&app, &instances_path(ACCOUNT_A, &provider), admin).await;
        let states: BTreeMap<String, String> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["id"].as_str().unwrap().to_owned(),
                    i["health"]["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        if states[open["id"].as_str().unwrap()] == "healthy"
            && states[closed["id"].as_str().unwrap()] == "down"
        {
            break;
        }
        assert!(Instant::now() < deadline, "not probed in time: {states:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(sim.probe_count() >= 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_webhooks_need_the_instance_token_and_move_the_health() {
    let (app, demo, sim) = health_app().await;
    let admin = &demo.carlos.access_token;
    sim.add_instance(SimInstance::new(
        ProviderType::Evolution,
        "suporte",
        "inst-secret",
    ));
    let provider = create_provider(&app, admin, ACCOUNT_A, &evolution_body(&sim.url())).await;
    let instance = create_instance(
        &app,
        admin,
        ACCOUNT_A,
        &provider,
        &json!({"name": "suporte"}),
    )
    .await;
    let url = instance["webhook_url"].as_str().unwrap().to_owned();
    let token = instance["webhook_token"].as_str().unwrap().to_owned();
    let instance_path = format!(
        "{}/{}",
        instances_path(ACCOUNT_A, &provider),
        instance["id"].as_str().unwrap()
    );
    let send = |bearer: Option<&str>, body: &str| {
        let mut request = app
            .client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let close = r#"{"event":"connection.update","instance":"suporte","data":{"instance":"suporte","state":"close","statusReason":401}}"#;

    // Wrong, missing or another instance's token: 401, nothing recorded.
    for bearer in [
        None,
        Some("whpw_wrong"),
        Some(token.as_str()).map(|t| &t[..t.len() - 1]),
    ] {
        let (status, body) = send(bearer, close).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bearer:?}: {body}");
        assert_eq!(body["code"], "invalid_webhook_token");
    }
    let unknown = app.url(&format!(
        "/api/v1/webhooks/providers/{}",
        uuid::Uuid::now_v7()
    ));
    let response = app
        .client
        .post(unknown)
        .bearer_auth(&token)
        .body(close)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Not JSON, or a known event without its data: 400.
    let (status, body) = send(Some(&token), "<xml/>").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_json");
    let (status, body) = send(Some(&token), r#"{"event":"connection.update","data":{}}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_event");
    let (_, one) = get(&app, &instance_path, admin).await;
    assert_eq!(one["health"]["state"], "unknown");
    assert_eq!(one["last_event_at"], Value::Null);

    // Unknown events are acknowledged and ignored.
    let (status, body) = send(
        Some(&token),
        r#"{"event":"presence.update","instance":"suporte","data":{}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ignored");
    let (_, one) = get(&app, &instance_path, admin).await;
    assert_eq!(one["last_event_at"], Value::Null);

    // Real Evolution envelopes from the fake provider server.
    for (event, expected) in [
        (
            EvolutionEvent::ConnectionUpdate(EvolutionState::Close),
            Some("down"),
        ),
        (EvolutionEvent::QrcodeUpdated, None),
        (
            EvolutionEvent::ConnectionUpdate(EvolutionState::Connecting),
            Some("degraded"),
        ),
        (
            EvolutionEvent::ConnectionUpdate(EvolutionState::Open),
            Some("healthy"),
        ),
        (EvolutionEvent::MessagesUpsert, None),
        (
            EvolutionEvent::ConnectionUpdate(EvolutionState::Refused),
            Some("down"),
        ),
    ] {
        let status = sim
            .send_evolution_webhook(&url, &token, event, "suporte")
            .await
            .unwrap();
        assert_eq!(status, 200, "{event:?}");
        let (_, one) = get(&app, &instance_path, admin).await;
        assert!(one["last_event_at"].is_string(), "{event:?}");
        if let Some(expected) = expected {
            assert_eq!(one["health"]["state"], expected, "{event:?}: {one}");
        }
    }
    let (_, history) = get(&app, &format!("{instance_path}/health"), admin).await;
    assert!(
        history["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["state"] != "unknown")
            .all(|h| h["source"] == "webhook")
    );
    // An event for another instance name (a server-wide webhook) is ignored.
    let (status, body) = send(
        Some(&token),
        r#"{"event":"connection.update","instance":"vendas","data":{"state":"open"}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ignored");
    let (_, one) = get(&app, &instance_path, admin).await;
    assert_eq!(one["health"]["state"], "down");

    // Deleted: the token stops working.
    let (status, _) = call(&app, Method::DELETE, &instance_path, admin, None, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(Some(&token), close).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_scheduler_pass_probes_every_due_instance_once_with_bounded_concurrency() {
    let (app, demo, sim) = health_app().await;
    let admin = &demo.carlos.access_token;
    let provider = create_provider(&app, admin, ACCOUNT_A, &evolution_body(&sim.url())).await;
    for i in 0..3 {
        sim.add_instance(SimInstance::new(
            ProviderType::Evolution,
            format!("n{i}"),
            "s",
        ));
        create_instance(
            &app,
            admin,
            ACCOUNT_A,
            &provider,
            &json!({"name": format!("n{i}")}),
        )
        .await;
    }
    // Nothing is due yet (first probes fall somewhere in the next day).
    let scheduler =
        whatpro_app::health_scheduler::HealthScheduler::new(app.state.health.clone(), 2);
    let (stats, _) = scheduler.probe_all_due().await;
    assert_eq!(stats.probed, 0);
    let mut conn = app.db.pool().get().await.unwrap();
    diesel::sql_query("UPDATE instance_health SET next_check_at = now() - interval '1 second'")
        .execute(&mut conn)
        .await
        .unwrap();
    let (stats, _) = scheduler.probe_all_due().await;
    assert_eq!((stats.probed, stats.transitions, stats.failed), (3, 3, 0));
    assert_eq!(sim.probe_count(), 3);
    // Claimed instances are not due again within the pass or right after it.
    let (stats, _) = scheduler.probe_all_due().await;
    assert_eq!(stats.probed, 0);
    let (_, list) = get(&app, &instances_path(ACCOUNT_A, &provider), admin).await;
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["health"]["state"] == "healthy")
    );
}
