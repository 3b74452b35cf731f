//! Billing with Asaas end to end: subscribe, the webhook-driven status machine (through the
//! Asaas simulator's real deliveries), the 402 gate, plan changes, cancellation, bad input.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use whatpro_asaas_sim::Fault;
use whatpro_entitlements::Resource;
use whatpro_iam::PlatformScope;
use whatpro_kernel::AccountId;
use whatpro_testkit::{ASAAS_WEBHOOK_TOKEN, TestApp};

use crate::api_keys::{call, count, exec};
use crate::support::{ACCOUNT_A, ACCOUNT_B, demo, get};

const CPF: &str = "529.982.247-25";

fn subscribe_body(plan: &str) -> Value {
    json!({
        "plan_id": plan,
        "billing_type": "PIX",
        "customer": {"name": "WhatPro Demo Ltda", "cpf_cnpj": CPF, "email": "billing@example.com"}
    })
}

async fn post(app: &TestApp, path: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
    call(app, Method::POST, path, token, None, body.as_ref()).await
}

fn billing_path(account: i64, rest: &str) -> String {
    format!("/api/v1/accounts/{account}/billing{rest}")
}

/// Polls `GET .../billing` until its status is `expected` (webhooks are processed
/// asynchronously after they are stored).
async fn wait_for_status(app: &TestApp, token: &str, expected: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        let (status, body) = get(app, &billing_path(ACCOUNT_A, ""), token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["status"] == expected {
            return body;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("billing never became {expected}: {last}");
}

/// The id of the subscription's payment with `due` date (or the only one).
fn payment_id(app: &TestApp, subscription: &str, due: Option<&str>) -> String {
    app.asaas
        .subscription_payments(subscription)
        .iter()
        .find(|p| due.is_none_or(|d| p["dueDate"] == d))
        .and_then(|p| p["id"].as_str())
        .unwrap()
        .to_owned()
}

fn subscription_id(app: &TestApp) -> String {
    app.asaas.subscriptions()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribing_creates_the_customer_and_subscription_and_payments_drive_the_status() {
    let app = TestApp::builder()
        .var("HUB_BILLING_GRACE_DAYS", "0")
        .start()
        .await;
    let demo = demo(&app).await;
    let carlos = &demo.carlos.access_token;

    let (status, body) = get(&app, &billing_path(ACCOUNT_A, ""), carlos).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            body["status"].as_str(),
            body["billing_configured"].as_bool()
        ),
        (Some("trialing"), Some(true))
    );

    let (status, body) = post(
        &app,
        &billing_path(ACCOUNT_A, "/subscribe"),
        carlos,
        Some(subscribe_body("starter")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (body["status"].as_str(), body["plan_id"].as_str()),
        (Some("pending"), Some("starter"))
    );
    // The customer carries our reference and the digits of the CPF; the subscription the price.
    let customers = app.asaas.customers();
    assert_eq!(customers.len(), 1);
    assert_eq!(
        customers[0]["externalReference"],
        format!("whatpro-account-{ACCOUNT_A}")
    );
    assert_eq!(customers[0]["cpfCnpj"], "52998224725");
    let subscription = subscription_id(&app);
    assert_eq!(
        app.asaas.subscription(&subscription).unwrap()["value"],
        99.0
    );
    let (_, entitlements) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/entitlements"),
        carlos,
    )
    .await;
    assert_eq!(
        entitlements["plan_id"], "starter",
        "the plan applies at once"
    );

    // Repeating the same subscription changes nothing; another plan must go through change-plan.
    let (status, _) = post(
        &app,
        &billing_path(ACCOUNT_A, "/subscribe"),
        carlos,
        Some(subscribe_body("starter")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = post(
        &app,
        &billing_path(ACCOUNT_A, "/subscribe"),
        carlos,
        Some(subscribe_body("pro")),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_subscribed"))
    );
    assert_eq!(app.asaas.subscriptions().len(), 1);
    assert_eq!(app.asaas.customers().len(), 1, "the customer is reused");

    // The first payment is received: active.
    let first = payment_id(&app, &subscription, None);
    app.asaas.set_payment_status(&first, "RECEIVED").unwrap();
    let body = wait_for_status(&app, carlos, "active").await;
    assert_eq!(body["payments"][0]["status"], "RECEIVED");

    // The next one goes overdue: with a grace period of 0 days the account is restricted.
    let next = app
        .asaas
        .create_next_payment(&subscription, time::macros::date!(2031 - 01 - 10))
        .unwrap();
    let next_id = next["id"].as_str().unwrap().to_owned();
    app.asaas.set_payment_status(&next_id, "OVERDUE").unwrap();
    wait_for_status(&app, carlos, "restricted").await;
    // Writes answer 402; reads, billing and login still work.
    let (status, body) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/accounts/{ACCOUNT_A}/members/6"),
        carlos,
        None,
        Some(&json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::PAYMENT_REQUIRED, Some("payment_required")),
        "{body}"
    );
    assert_eq!(body["details"][0]["billing_status"], "restricted");
    let (status, _) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/members"),
        carlos,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_B}/members"),
        carlos,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "another account is not affected");
    crate::support::login(&app, &demo.seed.admin.access_token).await;

    // Paid: active again, writes work.
    app.asaas.set_payment_status(&next_id, "RECEIVED").unwrap();
    wait_for_status(&app, carlos, "active").await;
    let (status, _) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/accounts/{ACCOUNT_A}/members/6"),
        carlos,
        None,
        Some(&json!({"role": "agent"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // A late OVERDUE notice about the first (older, paid-over) payment does not lock anything.
    app.asaas.set_payment_status(&first, "OVERDUE").unwrap();
    app.asaas.flush_webhooks().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    while app
        .state
        .billing
        .process_next_event(&PlatformScope::for_system_jobs())
        .await
        .unwrap()
        .is_some()
    {}
    let (_, body) = get(&app, &billing_path(ACCOUNT_A, ""), carlos).await;
    assert_eq!(body["status"], "active", "{body}");

    // Every transition was audited, by the system, with its reason.
    let (_, audit) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/audit?action=billing.status_changed"),
        carlos,
    )
    .await;
    let moves: Vec<(String, String)> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| {
            (
                e["metadata"]["from"].as_str().unwrap().to_owned(),
                e["metadata"]["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("trialing", "pending"),
        ("pending", "active"),
        ("active", "past_due"),
        ("past_due", "restricted"),
        ("restricted", "active"),
    ];
    assert_eq!(moves, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    assert_eq!(audit["data"][0]["actor"]["type"], "system");
    assert_eq!(
        audit["data"].as_array().unwrap().last().unwrap()["actor"]["type"],
        "user"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn asaas_webhooks_are_authenticated_deduplicated_and_stored_even_when_unknown() {
    let app = TestApp::spawn().await;
    let url = app.url("/api/v1/webhooks/asaas");
    let body = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/asaas/webhook-payment-received.json"
    ))
    .unwrap();
    let send = |token: Option<&'static str>, body: String| {
        let mut request = app
            .client
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.header("asaas-access-token", token);
        }
        request.send()
    };
    // Missing or wrong token: 401, nothing stored.
    assert_eq!(
        send(None, body.clone()).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(Some("wrong-token-wrong-token-wrong-token"), body.clone())
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM billing_events").await,
        0
    );
    // Malformed: 400.
    let response = send(Some(ASAAS_WEBHOOK_TOKEN), "{not json".to_owned())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["code"], "asaas_webhook_malformed");
    let response = send(
        Some(ASAAS_WEBHOOK_TOKEN),
        json!({"event": "PAYMENT_RECEIVED"}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // The shared example (a payment the Hub does not know): 200, stored once, answered 200
    // again as a duplicate, processed as unknown without touching any account.
    let response = send(Some(ASAAS_WEBHOOK_TOKEN), body.clone()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let ack: Value = response.json().await.unwrap();
    assert_eq!(ack, json!({"received": true, "duplicate": false}));
    let again: Value = send(Some(ASAAS_WEBHOOK_TOKEN), body)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["duplicate"], true);
    // Unknown event types are accepted too.
    let other = json!({"id": "evt_other&1", "event": "TRANSFER_DONE", "dateCreated": "2026-11-30 10:00:00"});
    assert_eq!(
        send(Some(ASAAS_WEBHOOK_TOKEN), other.to_string())
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM billing_events").await,
        2
    );
    for _ in 0..50 {
        if count(
            &app,
            "SELECT count(*) AS n FROM billing_events WHERE processed_at IS NULL",
        )
        .await
            == 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM billing_events WHERE outcome = 'unknown'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM billing_events WHERE outcome = 'ignored'"
        )
        .await,
        1
    );
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM billing_accounts").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_subscriptions_are_refused_before_asaas_is_called() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let carlos = &demo.carlos.access_token;
    let path = billing_path(ACCOUNT_A, "/subscribe");
    let mut bad_cpf = subscribe_body("starter");
    bad_cpf["customer"]["cpf_cnpj"] = json!("529.982.247-24");
    let mut bad_email = subscribe_body("starter");
    bad_email["customer"]["email"] = json!("not-an-email");
    let mut bad_type = subscribe_body("starter");
    bad_type["billing_type"] = json!("BITCOIN");
    for (body, status, code) in [
        (
            bad_cpf,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            bad_email,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            bad_type,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            subscribe_body("gold"),
            StatusCode::NOT_FOUND,
            "plan_not_found",
        ),
        (
            subscribe_body("trial"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "plan_not_billable",
        ),
    ] {
        let (got, answer) = post(&app, &path, carlos, Some(body.clone())).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{body}: {answer}"
        );
    }
    // The account comes from the path and the credential: a body field cannot name another.
    let mut smuggled = subscribe_body("starter");
    smuggled["account_id"] = json!(ACCOUNT_B);
    let (status, body) = post(&app, &path, carlos, Some(smuggled)).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are refused: {body}"
    );
    // Non-admins and other tenants.
    let (status, _) = post(
        &app,
        &path,
        &demo.ana.access_token,
        Some(subscribe_body("starter")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post(
        &app,
        &billing_path(ACCOUNT_B, "/subscribe"),
        carlos,
        Some(subscribe_body("starter")),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "Carlos is only an agent of B"
    );
    assert!(app.asaas.requests().is_empty(), "Asaas was never called");

    // Asaas failing: the error is surfaced and the account keeps its state.
    app.asaas.set_fault(Fault::Status(500));
    let (status, body) = post(&app, &path, carlos, Some(subscribe_body("starter"))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("billing_gateway_error")),
        "{body}"
    );
    app.asaas.set_fault(Fault::Status(401));
    let (status, _) = post(&app, &path, carlos, Some(subscribe_body("starter"))).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    app.asaas.set_fault(Fault::Garbage);
    let (status, _) = post(&app, &path, carlos, Some(subscribe_body("starter"))).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    // Asaas refusing the values (400 with its error list): 422, with its reason.
    app.asaas.set_fault(Fault::Status(400));
    let (status, body) = post(&app, &path, carlos, Some(subscribe_body("starter"))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("billing_rejected")),
        "{body}"
    );
    app.asaas.clear_fault();
    let (_, body) = get(&app, &billing_path(ACCOUNT_A, ""), carlos).await;
    assert_eq!(body["status"], "trialing");
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM billing_accounts").await,
        0
    );
    // Change and cancel need a subscription.
    let (status, body) = post(&app, &billing_path(ACCOUNT_A, "/cancel"), carlos, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_subscribed"))
    );
    let (status, _) = post(
        &app,
        &billing_path(ACCOUNT_A, "/change-plan"),
        carlos,
        Some(json!({"plan_id": "pro"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread")]
async fn billing_is_off_without_an_asaas_key() {
    let app = TestApp::builder().var("ASAAS_API_KEY", "").start().await;
    let demo = demo(&app).await;
    let carlos = &demo.carlos.access_token;
    let (_, body) = get(&app, &billing_path(ACCOUNT_A, ""), carlos).await;
    assert_eq!(body["billing_configured"], false);
    let (status, body) = post(
        &app,
        &billing_path(ACCOUNT_A, "/subscribe"),
        carlos,
        Some(subscribe_body("starter")),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("billing_not_configured")
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrades_apply_now_and_downgrades_wait_and_must_fit() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let carlos = &demo.carlos.access_token;
    let (status, _) = post(
        &app,
        &billing_path(ACCOUNT_A, "/subscribe"),
        carlos,
        Some(subscribe_body("starter")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let subscription = subscription_id(&app);

    // Upgrade: now, and pending payments are re-priced.
    let (status, body) = post(
        &app,
        &billing_path(ACCOUNT_A, "/change-plan"),
        carlos,
        Some(json!({"plan_id": "pro"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["plan_id"].as_str(), body["pending_plan_id"].as_str()),
        (Some("pro"), None)
    );
    assert_eq!(
        app.asaas.subscription(&subscription).unwrap()["value"],
        299.0
    );
    let update = app
        .asaas
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "PUT")
        .unwrap();
    assert_eq!(update.body_json().unwrap()["updatePendingPayments"], true);

    // Usage above starter's limits refuses the downgrade (3 providers in use, starter allows 2).
    let scope = PlatformScope::for_system_jobs().tenant(AccountId::new(ACCOUNT_A));
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(
            app.state
                .entitlements
                .check_and_reserve(&scope, Resource::Providers)
                .await
                .unwrap(),
        );
    }
    let (status, body) = post(
        &app,
        &billing_path(ACCOUNT_A, "/change-plan"),
        carlos,
        Some(json!({"plan_id": "starter"})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("usage_exceeds_plan")),
        "{body}"
    );
    assert_eq!(
        body["details"][0],
        json!({"resource": "max_providers", "limit": 2, "used": 3})
    );
    app.state
        .entitlements
        .release(&scope, held.pop().unwrap())
        .await
        .unwrap();

    // Now it fits: the downgrade waits for the end of the period.
    let (status, body) = post(
        &app,
        &billing_path(ACCOUNT_A, "/change-plan"),
        carlos,
        Some(json!({"plan_id": "starter"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["plan_id"].as_str(), body["pending_plan_id"].as_str()),
        (Some("pro"), Some("starter"))
    );
    let (_, entitlements) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/entitlements"),
        carlos,
    )
    .await;
    assert_eq!(entitlements["plan_id"], "pro");
    // The period ends: the sweep applies it.
    exec(&app, &format!("UPDATE billing_accounts SET next_due_date = current_date - 1 WHERE account_id = {ACCOUNT_A}")).await;
    assert_eq!(
        app.state
            .billing
            .sweep(&PlatformScope::for_system_jobs())
            .await
            .unwrap(),
        1
    );
    let (_, entitlements) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/entitlements"),
        carlos,
    )
    .await;
    assert_eq!(entitlements["plan_id"], "starter");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancellation_ends_the_subscription_at_the_end_of_the_period_and_locks_all_but_billing() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let carlos = &demo.carlos.access_token;
    post(
        &app,
        &billing_path(ACCOUNT_A, "/subscribe"),
        carlos,
        Some(subscribe_body("starter")),
    )
    .await;
    let subscription = subscription_id(&app);
    let first = payment_id(&app, &subscription, None);
    app.asaas.set_payment_status(&first, "CONFIRMED").unwrap();
    wait_for_status(&app, carlos, "active").await;

    let (status, body) = post(&app, &billing_path(ACCOUNT_A, "/cancel"), carlos, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            body["status"].as_str(),
            body["cancel_at_period_end"].as_bool()
        ),
        (Some("active"), Some(true))
    );
    let (status, _) = post(&app, &billing_path(ACCOUNT_A, "/cancel"), carlos, None).await;
    assert_eq!(status, StatusCode::OK, "repeatable");
    // Still inside the paid period: nothing ends.
    exec(&app, &format!("UPDATE billing_accounts SET next_due_date = current_date + 3 WHERE account_id = {ACCOUNT_A}")).await;
    app.state
        .billing
        .sweep(&PlatformScope::for_system_jobs())
        .await
        .unwrap();
    assert_eq!(
        app.asaas.subscription(&subscription).unwrap()["deleted"],
        false
    );

    exec(&app, &format!("UPDATE billing_accounts SET next_due_date = current_date WHERE account_id = {ACCOUNT_A}")).await;
    app.state
        .billing
        .sweep(&PlatformScope::for_system_jobs())
        .await
        .unwrap();
    assert_eq!(
        app.asaas.subscription(&subscription).unwrap()["deleted"],
        true,
        "ended at Asaas"
    );
    wait_for_status(&app, carlos, "canceled").await;
    // Everything but billing answers 402 (reads too); login still works.
    let (status, body) = get(
        &app,
        &format!("/api/v1/accounts/{ACCOUNT_A}/members"),
        carlos,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::PAYMENT_REQUIRED, Some("payment_required"))
    );
    crate::support::login(&app, &demo.seed.admin.access_token).await;
    // The SUBSCRIPTION_DELETED webhook that follows changes nothing more.
    app.asaas.flush_webhooks().await;
    let (_, body) = get(&app, &billing_path(ACCOUNT_A, ""), carlos).await;
    assert_eq!(body["status"], "canceled");
    // A canceled account can subscribe again.
    let (status, body) = post(
        &app,
        &billing_path(ACCOUNT_A, "/subscribe"),
        carlos,
        Some(subscribe_body("pro")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "pending");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscription_deleted_at_asaas_cancels_the_account() {
    let app = TestApp::spawn().await;
    let demo = demo(&app).await;
    let carlos = &demo.carlos.access_token;
    post(
        &app,
        &billing_path(ACCOUNT_A, "/subscribe"),
        carlos,
        Some(subscribe_body("starter")),
    )
    .await;
    let subscription = subscription_id(&app);
    // Someone deletes it in Asaas' own dashboard.
    let response = app
        .client
        .delete(format!("{}/subscriptions/{subscription}", app.asaas.url()))
        .header("access_token", whatpro_testkit::ASAAS_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    wait_for_status(&app, carlos, "canceled").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_asaas_answers_503_within_the_timeout_and_changes_nothing() {
    let app = TestApp::builder()
        .var("ASAAS_TIMEOUT_MS", "300")
        .start()
        .await;
    let demo = demo(&app).await;
    let carlos = &demo.carlos.access_token;
    app.asaas.set_fault(Fault::Delay(Duration::from_secs(3)));
    let started = std::time::Instant::now();
    let (status, body) = post(
        &app,
        &billing_path(ACCOUNT_A, "/subscribe"),
        carlos,
        Some(subscribe_body("starter")),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("billing_unavailable")),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "bounded by the timeout: {:?}",
        started.elapsed()
    );
    app.asaas.clear_fault();
    let (_, body) = get(&app, &billing_path(ACCOUNT_A, ""), carlos).await;
    assert_eq!(body["status"], "trialing");
}
