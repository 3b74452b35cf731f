//! Test hooks: payment status changes, new cycles, faults, request recording.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use time::macros::date;
use whatpro_asaas_sim::{Fault, SimError};

use crate::{
    KEY, assert_same_keys, call, create_customer, create_subscription, http, shared_json, start,
};

async fn first_payment(sim: &whatpro_asaas_sim::AsaasSim, billing_type: &str) -> (String, String) {
    let customer = create_customer(sim, "t").await;
    let subscription = create_subscription(
        sim,
        customer["id"].as_str().unwrap(),
        json!({"billingType": billing_type}),
    )
    .await;
    let id = subscription["id"].as_str().unwrap().to_owned();
    let payment = sim.subscription_payments(&id)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, payment)
}

#[tokio::test]
async fn payment_status_changes_emit_the_matching_event() {
    let sim = start().await;
    let (_, payment) = first_payment(&sim, "PIX").await;
    for (status, event) in [
        ("CONFIRMED", "PAYMENT_CONFIRMED"),
        ("RECEIVED", "PAYMENT_RECEIVED"),
        ("OVERDUE", "PAYMENT_OVERDUE"),
        ("REFUNDED", "PAYMENT_REFUNDED"),
        ("PENDING", "PAYMENT_UPDATED"),
        ("RECEIVED_IN_CASH", "PAYMENT_RECEIVED"),
        ("REFUND_REQUESTED", "PAYMENT_UPDATED"),
        ("REFUND_IN_PROGRESS", "PAYMENT_REFUND_IN_PROGRESS"),
        ("CHARGEBACK_REQUESTED", "PAYMENT_CHARGEBACK_REQUESTED"),
        ("CHARGEBACK_DISPUTE", "PAYMENT_CHARGEBACK_DISPUTE"),
        (
            "AWAITING_CHARGEBACK_REVERSAL",
            "PAYMENT_AWAITING_CHARGEBACK_REVERSAL",
        ),
        ("DUNNING_REQUESTED", "PAYMENT_DUNNING_REQUESTED"),
        ("DUNNING_RECEIVED", "PAYMENT_DUNNING_RECEIVED"),
        ("AWAITING_RISK_ANALYSIS", "PAYMENT_AWAITING_RISK_ANALYSIS"),
        ("AUTHORIZED", "PAYMENT_AUTHORIZED"),
    ] {
        let envelope = sim.set_payment_status(&payment, status).unwrap();
        assert_eq!(envelope["event"], json!(event), "{status}");
        assert_eq!(envelope["payment"]["status"], json!(status));
        assert_eq!(sim.events().last().unwrap(), &envelope);
        assert_eq!(sim.payment(&payment).unwrap()["status"], json!(status));
    }
    assert!(matches!(
        sim.set_payment_status(&payment, "PAID"),
        Err(SimError::UnsupportedStatus(_))
    ));
    assert!(matches!(
        sim.set_payment_status("pay_nope", "RECEIVED"),
        Err(SimError::UnknownPayment(_))
    ));
}

#[tokio::test]
async fn paid_payments_look_like_the_examples() {
    let sim = start().await;
    let (_, pix) = first_payment(&sim, "PIX").await;
    let received = sim.set_payment_status(&pix, "RECEIVED").unwrap();
    assert_same_keys(
        &received,
        &shared_json("webhook-payment-received.json"),
        "received",
    );
    let payment = &received["payment"];
    for key in [
        "paymentDate",
        "confirmedDate",
        "clientPaymentDate",
        "creditDate",
    ] {
        assert!(payment[key].is_string(), "{key}");
    }
    assert!(payment["pixTransaction"].is_string());
    assert!(payment["transactionReceiptUrl"].is_string());

    let refunded = sim.set_payment_status(&pix, "REFUNDED").unwrap();
    assert_same_keys(
        &refunded,
        &shared_json("webhook-payment-refunded.json"),
        "refunded",
    );
    assert_eq!(refunded["payment"]["refunds"][0]["status"], json!("DONE"));
    assert_eq!(refunded["payment"]["refunds"][0]["value"], json!(197.0));

    let (_, card) = first_payment(&sim, "CREDIT_CARD").await;
    let confirmed = sim.set_payment_status(&card, "CONFIRMED").unwrap();
    assert_same_keys(
        &confirmed,
        &shared_json("webhook-payment-confirmed.json"),
        "confirmed",
    );
    assert!(confirmed["payment"]["paymentDate"].is_null());
    assert_ne!(
        confirmed["payment"]["creditDate"], confirmed["payment"]["confirmedDate"],
        "card money is credited later"
    );
    let overdue = sim.set_payment_status(&card, "OVERDUE").unwrap();
    assert_eq!(overdue["event"], json!("PAYMENT_OVERDUE"));
}

#[tokio::test]
async fn a_new_cycle_creates_a_payment() {
    let sim = start().await;
    let (subscription, _) = first_payment(&sim, "BOLETO").await;
    let payment = sim
        .create_next_payment(&subscription, date!(2025 - 04 - 15))
        .unwrap();
    assert_same_keys(
        &payment,
        &shared_json("subscription-payments-list-response.json")["data"][1],
        "payment",
    );
    assert_eq!(payment["status"], json!("PENDING"));
    assert_eq!(payment["dueDate"], json!("2025-04-15"));
    assert_eq!(payment["subscription"], json!(subscription));
    assert_eq!(
        sim.subscription(&subscription).unwrap()["nextDueDate"],
        json!("2025-05-15")
    );
    let created = sim.events().pop().unwrap();
    assert_eq!(created["event"], json!("PAYMENT_CREATED"));
    assert_eq!(created["payment"], payment);
    assert_eq!(sim.subscription_payments(&subscription).len(), 2);
    assert_eq!(sim.payments().len(), 2);

    assert!(matches!(
        sim.create_next_payment("sub_nope", date!(2025 - 04 - 15)),
        Err(SimError::UnknownSubscription(_))
    ));
    call(
        &sim,
        "DELETE",
        &format!("/subscriptions/{subscription}"),
        None,
    )
    .await;
    assert!(matches!(
        sim.create_next_payment(&subscription, date!(2025 - 06 - 15)),
        Err(SimError::UnknownSubscription(_))
    ));
}

#[tokio::test]
async fn faults_apply_to_api_calls() {
    let sim = start().await;
    sim.set_fault(Fault::Status(500));
    for _ in 0..2 {
        let (status, body) = call(&sim, "GET", "/customers", None).await;
        assert_eq!(status, 500);
        assert_eq!(body["errors"][0]["code"], json!("sim_fault"));
    }
    sim.set_fault(Fault::Status(401));
    assert_eq!(
        call(&sim, "GET", "/customers", None).await,
        (401, shared_json("error-401.json"))
    );
    sim.set_fault(Fault::Status(404));
    assert_eq!(
        call(&sim, "GET", "/customers", None).await,
        (404, Value::Null)
    );
    sim.set_fault(Fault::Garbage);
    let (status, body) = call(&sim, "GET", "/customers", None).await;
    assert_eq!(status, 200);
    assert!(body.is_string(), "not JSON: {body}");
    sim.clear_fault();
    assert_eq!(call(&sim, "GET", "/customers", None).await.0, 200);

    sim.set_fault_times(Fault::Status(503), 2);
    assert_eq!(call(&sim, "GET", "/customers", None).await.0, 503);
    assert_eq!(call(&sim, "GET", "/customers", None).await.0, 503);
    assert_eq!(call(&sim, "GET", "/customers", None).await.0, 200);

    sim.set_fault_times(Fault::Delay(Duration::from_millis(300)), 1);
    let started = Instant::now();
    assert_eq!(call(&sim, "GET", "/customers", None).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let started = Instant::now();
    call(&sim, "GET", "/customers", None).await;
    assert!(started.elapsed() < Duration::from_millis(300));

    // A faulted request changes nothing.
    sim.set_fault(Fault::Status(500));
    call(
        &sim,
        "POST",
        "/customers",
        Some(json!({"name": "A", "cpfCnpj": "12345678909"})),
    )
    .await;
    sim.clear_fault();
    assert!(sim.customers().is_empty());
}

#[tokio::test]
async fn requests_are_recorded() {
    let sim = start().await;
    http()
        .post(format!("{}/customers?dryRun=no%20way", sim.url()))
        .header("access_token", KEY)
        .header("User-Agent", "WhatPro Hub")
        .header("X-Mixed-Case", "v")
        .json(&json!({"name": "A", "cpfCnpj": "12345678909"}))
        .send()
        .await
        .unwrap();
    let requests = sim.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v3/customers");
    assert_eq!(request.query.as_deref(), Some("dryRun=no%20way"));
    assert_eq!(
        request.query_pairs(),
        [("dryRun".to_owned(), "no way".to_owned())]
    );
    assert_eq!(request.header("access_token"), Some(KEY));
    assert_eq!(request.header("user-agent"), Some("WhatPro Hub"));
    assert!(
        request
            .headers
            .iter()
            .any(|(n, v)| n == "x-mixed-case" && v == "v")
    );
    assert_eq!(
        request.body_json().unwrap(),
        json!({"name": "A", "cpfCnpj": "12345678909"})
    );
    sim.clear_requests();
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn clones_share_the_server_and_shutdown_stops_it() {
    let sim = start().await;
    let clone = sim.clone();
    create_customer(&clone, "t").await;
    assert_eq!(sim.customers().len(), 1);
    assert!(sim.url().ends_with("/v3"));
    assert!(format!("{sim:?}").contains("AsaasSim"));
    let url = sim.url();
    drop(clone);
    assert_eq!(call(&sim, "GET", "/customers", None).await.0, 200);
    sim.shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let result = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap()
        .get(format!("{url}/customers"))
        .send()
        .await;
    assert!(result.is_err(), "the server stopped");
}
