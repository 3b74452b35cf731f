//! The Chatwoot connection and the inbox mirror end to end, against the Chatwoot simulator:
//! connecting with an administrator's token (and refusing others), syncs (idempotent, one at a
//! time, over-quota order, failures keeping the last good mirror), the periodic re-sync.

use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use whatpro_chatwoot_sim::{ChatwootSim, Fault, SimRole};
use whatpro_testkit::TestApp;

use crate::api_keys::{audit_rows, call};
use crate::support::{ACCOUNT_A, ACCOUNT_B, Demo, add_user, demo, get, login, set_role};

pub fn connection_path(account: i64) -> String {
    format!("/api/v1/accounts/{account}/chatwoot/connection")
}

pub fn inboxes_path(account: i64) -> String {
    format!("/api/v1/accounts/{account}/inboxes")
}

/// `PUT .../chatwoot/connection` with `token` as the Chatwoot token.
pub async fn connect(
    app: &TestApp,
    bearer: &str,
    account: i64,
    token: &str,
) -> (StatusCode, Value) {
    call(
        app,
        Method::PUT,
        &connection_path(account),
        bearer,
        None,
        Some(&json!({ "api_access_token": token })),
    )
    .await
}

/// `POST .../inboxes/sync`.
pub async fn sync(app: &TestApp, bearer: &str, account: i64) -> (StatusCode, Value) {
    call(
        app,
        Method::POST,
        &format!("{}/sync", inboxes_path(account)),
        bearer,
        None,
        None,
    )
    .await
}

/// Every mirrored inbox of `account`, by Chatwoot id.
pub async fn mirror(app: &TestApp, bearer: &str, account: i64) -> Vec<Value> {
    let (status, body) = get(app, &format!("{}?limit=200", inboxes_path(account)), bearer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut items = body["data"].as_array().unwrap().clone();
    items.sort_by_key(|i| i["chatwoot_inbox_id"].as_i64());
    items
}

fn chatwoot_ids(items: &[Value]) -> Vec<i64> {
    items
        .iter()
        .map(|i| i["chatwoot_inbox_id"].as_i64().unwrap())
        .collect()
}

/// The demo with Carlos's connection stored for account A.
async fn connected() -> (TestApp, Demo) {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let (status, body) = connect(
        &app,
        &demo.carlos.access_token,
        ACCOUNT_A,
        &demo.seed.admin.access_token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (app, demo)
}

#[derive(QueryableByName)]
struct SealedRow {
    #[diesel(sql_type = Text)]
    sealed_token: String,
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_connects_with_an_administrators_token_that_is_never_shown() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let token = demo.seed.admin.access_token.clone();
    let (status, body) = get(&app, &connection_path(ACCOUNT_A), &demo.ana.access_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["connected"], false);

    // Agents may read the state but not connect.
    let (status, body) = connect(&app, &demo.ana.access_token, ACCOUNT_A, &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (status, body) = connect(&app, &demo.carlos.access_token, ACCOUNT_A, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["connected"], true);
    assert_eq!(body["chatwoot_user_id"], 5);
    assert_eq!(body["chatwoot_user_name"], "Carlos Lima");
    assert!(body["verified_at"].is_string());
    assert!(!body.to_string().contains(&token));
    let (status, body) = get(&app, &connection_path(ACCOUNT_A), &demo.ana.access_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["connected"], true);
    assert!(!body.to_string().contains(&token));

    // Stored encrypted, bound to its account.
    let mut conn = app.db.pool().get().await.unwrap();
    let rows: Vec<SealedRow> = diesel::sql_query("SELECT sealed_token FROM chatwoot_connections")
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].sealed_token.starts_with("v4.local."));
    assert!(!rows[0].sealed_token.contains(&token));

    // Audited, without the token.
    let rows = audit_rows(
        &app,
        &demo.carlos.access_token,
        ACCOUNT_A,
        "chatwoot_connection.saved",
    )
    .await;
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].to_string().contains(&token));

    // Removing it: 204, idempotent, audited; the state says so.
    for _ in 0..2 {
        let (status, _) = call(
            &app,
            Method::DELETE,
            &connection_path(ACCOUNT_A),
            &demo.carlos.access_token,
            None,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let (_, body) = get(&app, &connection_path(ACCOUNT_A), &demo.carlos.access_token).await;
    assert_eq!(body["connected"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_that_are_not_an_administrators_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    // An administrator of account B who tries to connect it with Carlos's token (Carlos is only
    // an agent of B).
    let b_admin = add_user(&app, 40, &[(ACCOUNT_B, SimRole::Administrator)]);
    let b_admin = login(&app, &b_admin).await;
    let cases = [
        (demo.seed.admin.access_token.clone(), "chatwoot_not_admin"),
        (demo.seed.agent.access_token.clone(), "chatwoot_not_admin"),
        ("not-a-real-token".to_owned(), "chatwoot_token_invalid"),
        ("has spaces in it".to_owned(), "validation_failed"),
        (String::new(), "validation_failed"),
    ];
    for (token, code) in cases {
        let (status, body) = connect(&app, &b_admin.access_token, ACCOUNT_B, &token).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{token}: {body}");
        assert_eq!(body["code"], code, "{token}: {body}");
    }
    // A suspended account's administrator is not accepted either.
    app.chatwoot
        .add_membership(6, ACCOUNT_B, SimRole::Administrator);
    app.chatwoot
        .set_account_status(ACCOUNT_B, whatpro_chatwoot_sim::AccountStatus::Suspended);
    let (status, body) = connect(
        &app,
        &b_admin.access_token,
        ACCOUNT_B,
        &demo.seed.agent.access_token,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "chatwoot_not_admin");
    app.chatwoot
        .set_account_status(ACCOUNT_B, whatpro_chatwoot_sim::AccountStatus::Active);

    // Chatwoot failing: 502, nothing stored.
    app.chatwoot
        .set_route_fault("/api/v1/profile", Some(Fault::Status(500)));
    let (status, body) = connect(
        &app,
        &demo.carlos.access_token,
        ACCOUNT_A,
        &demo.seed.admin.access_token,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["code"], "chatwoot_unavailable");
    app.chatwoot.set_route_fault("/api/v1/profile", None);
    // A body without the field is a validation failure.
    let (status, body) = call(
        &app,
        Method::PUT,
        &connection_path(ACCOUNT_A),
        &demo.carlos.access_token,
        None,
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    for (account, bearer) in [
        (ACCOUNT_A, &demo.carlos.access_token),
        (ACCOUNT_B, &b_admin.access_token),
    ] {
        let (_, body) = get(&app, &connection_path(account), bearer).await;
        assert_eq!(body["connected"], false, "{account}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn syncing_without_a_connection_is_a_conflict_and_records_nothing() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let (status, body) = sync(&app, &demo.carlos.access_token, ACCOUNT_A).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "chatwoot_not_connected");
    let (_, runs) = get(
        &app,
        &format!("{}/sync-runs", inboxes_path(ACCOUNT_A)),
        &demo.carlos.access_token,
    )
    .await;
    assert_eq!(runs["data"], json!([]));
    assert!(
        mirror(&app, &demo.carlos.access_token, ACCOUNT_A)
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_mirrors_chatwoot_idempotently_and_keeps_removed_inboxes() {
    let (app, demo) = connected().await;
    let admin = &demo.carlos.access_token;
    let (status, run) = sync(&app, admin, ACCOUNT_A).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["trigger"], "manual");
    assert_eq!(run["counts"]["fetched"], 3);
    assert_eq!(run["counts"]["added"], 3);
    let first = mirror(&app, admin, ACCOUNT_A).await;
    let mut expected = app.chatwoot.inbox_ids(ACCOUNT_A);
    expected.sort_unstable();
    assert_eq!(chatwoot_ids(&first), expected);
    let whatsapp = first
        .iter()
        .find(|i| i["channel_type"] == "Channel::Whatsapp")
        .unwrap();
    for key in [
        "id",
        "chatwoot_inbox_id",
        "name",
        "channel_type",
        "provider_instance_id",
        "over_quota",
        "removed",
        "last_synced_at",
    ] {
        assert!(whatsapp.get(key).is_some(), "{key} missing: {whatsapp}");
    }
    assert_eq!(whatsapp["name"], "WhatsApp Vendas");
    assert_eq!(whatsapp["removed"], false);
    assert_eq!(whatsapp["over_quota"], false);
    assert_eq!(whatsapp["provider_instance_id"], Value::Null);

    // Again: nothing changes, the same ids.
    let (_, again) = sync(&app, admin, ACCOUNT_A).await;
    assert_eq!(again["counts"]["unchanged"], 3);
    assert_eq!(again["counts"]["added"], 0);
    let second = mirror(&app, admin, ACCOUNT_A).await;
    assert_eq!(
        second.iter().map(|i| &i["id"]).collect::<Vec<_>>(),
        first.iter().map(|i| &i["id"]).collect::<Vec<_>>()
    );

    // Chatwoot gains one, loses one, renames one.
    let gone = expected[0];
    app.chatwoot
        .add_inbox(ACCOUNT_A, ChatwootSim::api_inbox(777, "Atendimento Norte"));
    assert!(app.chatwoot.remove_inbox(ACCOUNT_A, gone));
    app.chatwoot
        .add_inbox(ACCOUNT_A, ChatwootSim::api_inbox(expected[1], "Renomeado"));
    let (_, third) = sync(&app, admin, ACCOUNT_A).await;
    assert_eq!(third["counts"]["added"], 1);
    assert_eq!(third["counts"]["removed"], 1);
    assert_eq!(third["counts"]["updated"], 1);
    let after = mirror(&app, admin, ACCOUNT_A).await;
    assert_eq!(after.len(), 4, "removed inboxes are kept");
    let removed = after
        .iter()
        .find(|i| i["chatwoot_inbox_id"] == gone)
        .unwrap();
    assert_eq!(removed["removed"], true);
    let renamed = after
        .iter()
        .find(|i| i["chatwoot_inbox_id"] == expected[1])
        .unwrap();
    assert_eq!(renamed["name"], "Renomeado");
    assert_eq!(renamed["channel_type"], "Channel::Api");

    // Pages follow the cursor.
    let (_, page) = get(&app, &format!("{}?limit=3", inboxes_path(ACCOUNT_A)), admin).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 3);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = get(
        &app,
        &format!("{}?limit=3&cursor={cursor}", inboxes_path(ACCOUNT_A)),
        admin,
    )
    .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest["next_cursor"], Value::Null);
    let (status, body) = get(
        &app,
        &format!("{}?cursor=zz", inboxes_path(ACCOUNT_A)),
        admin,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_cursor");

    // Runs are listed newest first; the connection shows the last one.
    let (_, runs) = get(
        &app,
        &format!("{}/sync-runs", inboxes_path(ACCOUNT_A)),
        admin,
    )
    .await;
    let runs = runs["data"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[0]["id"], third["id"]);
    let (_, state) = get(&app, &connection_path(ACCOUNT_A), admin).await;
    assert_eq!(state["last_run"]["id"], third["id"]);
    assert!(state["last_sync_at"].is_string());

    // Roles: a viewer reads, an agent may not sync, a supervisor may.
    let agent = &demo.ana.access_token;
    let (status, _) = get(&app, &inboxes_path(ACCOUNT_A), agent).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = sync(&app, agent, ACCOUNT_A).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    set_role(
        &app,
        &demo.carlos,
        ACCOUNT_A,
        demo.ana.user_id,
        "supervisor",
    )
    .await;
    let (status, body) = sync(&app, agent, ACCOUNT_A).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Tenant B sees none of it.
    let b_admin = add_user(&app, 41, &[(ACCOUNT_B, SimRole::Administrator)]);
    let b_admin = login(&app, &b_admin).await;
    assert!(
        mirror(&app, &b_admin.access_token, ACCOUNT_B)
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_inboxes_first_seen_keep_service_over_the_plans_limit() {
    let (app, demo) = connected().await;
    let admin = &demo.carlos.access_token;
    // The trial plan allows 3 inboxes; Chatwoot has 3.
    sync(&app, admin, ACCOUNT_A).await;
    let original: Vec<i64> = app.chatwoot.inbox_ids(ACCOUNT_A);
    // Two newer inboxes with lower Chatwoot ids than the first three.
    app.chatwoot
        .add_inbox(ACCOUNT_A, ChatwootSim::api_inbox(1, "Nova A"));
    app.chatwoot
        .add_inbox(ACCOUNT_A, ChatwootSim::api_inbox(2, "Nova B"));
    let (_, run) = sync(&app, admin, ACCOUNT_A).await;
    assert_eq!(run["counts"]["over_quota"], 2);
    let items = mirror(&app, admin, ACCOUNT_A).await;
    let flagged: Vec<i64> = items
        .iter()
        .filter(|i| i["over_quota"] == true)
        .map(|i| i["chatwoot_inbox_id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        flagged,
        [1, 2],
        "the newest are flagged, not the lowest ids"
    );

    // One of the originals goes away: the older of the two new ones (same first-seen time:
    // the lower Chatwoot id) takes the free slot.
    app.chatwoot.remove_inbox(ACCOUNT_A, original[0]);
    let (_, run) = sync(&app, admin, ACCOUNT_A).await;
    assert_eq!(run["counts"]["over_quota"], 1);
    let items = mirror(&app, admin, ACCOUNT_A).await;
    let flagged: Vec<i64> = items
        .iter()
        .filter(|i| i["over_quota"] == true)
        .map(|i| i["chatwoot_inbox_id"].as_i64().unwrap())
        .collect();
    assert_eq!(flagged, [2]);
    // Usage shows the inboxes in service.
    let (_, entitlements) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/entitlements"),
        admin,
    )
    .await;
    assert_eq!(entitlements["usage"]["inboxes"], 4, "{entitlements}");
}

#[tokio::test(flavor = "multi_thread")]
async fn chatwoot_failing_during_a_sync_keeps_the_last_good_mirror() {
    let (app, demo) = connected().await;
    let admin = &demo.carlos.access_token;
    sync(&app, admin, ACCOUNT_A).await;
    let good = mirror(&app, admin, ACCOUNT_A).await;
    // Chatwoot's list changes, but every attempt to read it fails.
    app.chatwoot
        .remove_inbox(ACCOUNT_A, app.chatwoot.inbox_ids(ACCOUNT_A)[0]);
    for (fault, expected) in [
        (Fault::Status(401), "401"),
        (Fault::Status(404), "404"),
        (Fault::Status(500), "500"),
        (Fault::Garbage, "unreadable"),
        (Fault::Close, "unreachable"),
    ] {
        app.chatwoot.set_route_fault("/inboxes", Some(fault));
        let (status, body) = sync(&app, admin, ACCOUNT_A).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{fault:?}: {body}");
        assert_eq!(body["code"], "chatwoot_unavailable", "{fault:?}");
        assert_eq!(mirror(&app, admin, ACCOUNT_A).await, good, "{fault:?}");
        let (_, runs) = get(
            &app,
            &format!("{}/sync-runs?limit=1", inboxes_path(ACCOUNT_A)),
            admin,
        )
        .await;
        let run = &runs["data"][0];
        assert_eq!(run["status"], "failed", "{fault:?}");
        let error = run["error"].as_str().unwrap();
        assert!(error.contains(expected), "{fault:?}: {error}");
        assert!(!error.contains(&demo.seed.admin.access_token));
    }
    // Slow: each attempt times out (5 s), the GET is retried once, then it fails.
    app.chatwoot
        .set_route_fault("/inboxes", Some(Fault::Delay(Duration::from_secs(6))));
    let started = Instant::now();
    let (status, body) = sync(&app, admin, ACCOUNT_A).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(mirror(&app, admin, ACCOUNT_A).await, good);
    let (_, runs) = get(
        &app,
        &format!("{}/sync-runs?limit=1", inboxes_path(ACCOUNT_A)),
        admin,
    )
    .await;
    assert!(
        runs["data"][0]["error"]
            .as_str()
            .unwrap()
            .contains("timed out")
    );

    // Chatwoot back: the change lands.
    app.chatwoot.set_route_fault("/inboxes", None);
    let (status, run) = sync(&app, admin, ACCOUNT_A).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["counts"]["removed"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_syncs_of_one_account_at_once_do_not_both_run() {
    let (app, demo) = connected().await;
    let admin = demo.carlos.access_token.clone();
    app.chatwoot
        .set_route_fault("/inboxes", Some(Fault::Delay(Duration::from_millis(1500))));
    let (a, b) = tokio::join!(sync(&app, &admin, ACCOUNT_A), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sync(&app, &admin, ACCOUNT_A).await
    });
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{a:?} {b:?}"
    );
    let conflict = if a.0 == StatusCode::CONFLICT {
        &a.1
    } else {
        &b.1
    };
    assert_eq!(conflict["code"], "sync_in_progress");
    // One run recorded, the mirror written once.
    let (_, runs) = get(
        &app,
        &format!("{}/sync-runs", inboxes_path(ACCOUNT_A)),
        &admin,
    )
    .await;
    assert_eq!(runs["data"].as_array().unwrap().len(), 1);
    assert_eq!(mirror(&app, &admin, ACCOUNT_A).await.len(), 3);
    // After it, the next one runs.
    app.chatwoot.set_route_fault("/inboxes", None);
    assert_eq!(sync(&app, &admin, ACCOUNT_A).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disconnected_account_keeps_its_mirror_but_cannot_sync() {
    let (app, demo) = connected().await;
    let admin = &demo.carlos.access_token;
    sync(&app, admin, ACCOUNT_A).await;
    let (status, _) = call(
        &app,
        Method::DELETE,
        &connection_path(ACCOUNT_A),
        admin,
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = sync(&app, admin, ACCOUNT_A).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "chatwoot_not_connected");
    assert_eq!(mirror(&app, admin, ACCOUNT_A).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_periodic_job_resyncs_connected_accounts() {
    let app = TestApp::builder()
        .var("HUB_INBOX_SYNC_INTERVAL_SECS", "1")
        .start()
        .await;
    let demo = demo(&app).await;
    let (status, _) = connect(
        &app,
        &demo.carlos.access_token,
        ACCOUNT_A,
        &demo.seed.admin.access_token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, runs) = get(
            &app,
            &format!("{}/sync-runs", inboxes_path(ACCOUNT_A)),
            &demo.carlos.access_token,
        )
        .await;
        let scheduled = runs["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["trigger"] == "scheduled" && r["status"] == "succeeded");
        if scheduled {
            break;
        }
        assert!(Instant::now() < deadline, "no scheduled sync ran: {runs}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        mirror(&app, &demo.carlos.access_token, ACCOUNT_A)
            .await
            .len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_app_is_registered_with_the_stored_connection() {
    let (app, demo) = connected().await;
    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/api/v1/accounts/{ACCOUNT_A}/chatwoot/dashboard-app"),
        &demo.carlos.access_token,
        None,
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(app.chatwoot.dashboard_apps(ACCOUNT_A).len(), 1);
}
