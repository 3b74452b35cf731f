//! The webhook dispatcher: header, order, shapes, retries, interruption, redelivery.

use std::time::Duration;

use serde_json::{Value, json};
use whatpro_asaas_sim::{
    AsaasSim, MAX_CONSECUTIVE_FAILURES, SimConfig, TOKEN_HEADER, WebhookTarget,
};

use crate::{
    KEY, Receiver, assert_same_keys, call, create_customer, create_subscription, flush, shared_json,
};

const TOKEN: &str = "wh_9Zk2Lq7Xv4Rt8Pm3Nc6Bd1Fg5Hj0Ks2Wy";

async fn sim_for(receiver: &Receiver) -> AsaasSim {
    let config = SimConfig {
        webhook_retry_step: Duration::from_millis(5),
        ..SimConfig::new(KEY).with_webhook(WebhookTarget::new(receiver.url.clone(), TOKEN))
    };
    AsaasSim::start(config).await.unwrap()
}

fn is_event_id(id: &str) -> bool {
    let Some((hex, n)) = id.strip_prefix("evt_").and_then(|r| r.split_once('&')) else {
        return false;
    };
    hex.len() == 32
        && hex.chars().all(|c| c.is_ascii_hexdigit())
        && !n.is_empty()
        && n.chars().all(|c| c.is_ascii_digit())
}

fn is_timestamp(text: &str) -> bool {
    time::PrimitiveDateTime::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
    .is_ok()
}

#[tokio::test]
async fn delivers_in_order_with_the_token_and_the_example_shapes() {
    let receiver = Receiver::start(&[]).await;
    let sim = sim_for(&receiver).await;
    let customer = create_customer(&sim, "t").await;
    let subscription = create_subscription(&sim, customer["id"].as_str().unwrap(), json!({})).await;
    let id = subscription["id"].as_str().unwrap();
    let payment = sim.subscription_payments(id)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.set_payment_status(&payment, "RECEIVED").unwrap();
    call(&sim, "DELETE", &format!("/subscriptions/{id}"), None).await;
    flush(&sim).await;

    assert_eq!(
        receiver.events(),
        [
            "SUBSCRIPTION_CREATED",
            "PAYMENT_CREATED",
            "PAYMENT_RECEIVED",
            "SUBSCRIPTION_DELETED"
        ]
    );
    let hits = receiver.hits();
    for hit in &hits {
        assert_eq!(hit.header(TOKEN_HEADER), Some(TOKEN));
        assert_eq!(hit.header("content-type"), Some("application/json"));
        let body = hit.json();
        assert!(is_event_id(body["id"].as_str().unwrap()), "{}", body["id"]);
        assert!(is_timestamp(body["dateCreated"].as_str().unwrap()));
    }
    let bodies: Vec<Value> = hits.iter().map(|h| h.json()).collect();
    assert_eq!(bodies, sim.events(), "delivered exactly what was queued");
    let ids: std::collections::BTreeSet<&str> =
        bodies.iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 4, "distinct event ids");
    for (body, example) in bodies.iter().zip([
        "webhook-subscription-created.json",
        "webhook-payment-created.json",
        "webhook-payment-received.json",
        "webhook-subscription-deleted.json",
    ]) {
        assert_same_keys(body, &shared_json(example), example);
    }
    // SUBSCRIPTION_* carry dd/MM/yyyy dates, as the examples.
    assert_eq!(
        bodies[0]["subscription"]["nextDueDate"],
        json!("15/03/2025")
    );
    assert_eq!(bodies[3]["subscription"]["deleted"], json!(true));
    assert_eq!(bodies[1]["payment"]["dueDate"], json!("2025-03-15"));

    let deliveries = sim.deliveries();
    assert_eq!(deliveries.len(), 4);
    assert!(
        deliveries
            .iter()
            .all(|d| d.succeeded() && d.error.is_none())
    );
    assert_eq!(deliveries[0].event, "SUBSCRIPTION_CREATED");
    assert_eq!(deliveries[0].event_id, bodies[0]["id"].as_str().unwrap());
    assert_eq!(sim.pending_webhooks(), 0);
}

#[tokio::test]
async fn anything_but_200_is_retried_and_blocks_the_queue() {
    let receiver = Receiver::start(&[500, 201, 204, 401]).await;
    let sim = sim_for(&receiver).await;
    sim.emit(json!({"id": "evt_a&1", "event": "PAYMENT_CREATED"}));
    sim.emit(json!({"id": "evt_a&2", "event": "PAYMENT_RECEIVED"}));
    flush(&sim).await;
    let ids: Vec<Value> = receiver
        .hits()
        .iter()
        .map(|h| h.json()["id"].clone())
        .collect();
    assert_eq!(
        ids,
        [
            json!("evt_a&1"),
            json!("evt_a&1"),
            json!("evt_a&1"),
            json!("evt_a&1"),
            json!("evt_a&1"),
            json!("evt_a&2")
        ]
    );
    let statuses: Vec<Option<u16>> = sim.deliveries().iter().map(|d| d.status).collect();
    assert_eq!(
        statuses,
        [
            Some(500),
            Some(201),
            Some(204),
            Some(401),
            Some(200),
            Some(200)
        ]
    );
    assert!(!sim.is_interrupted());
}

#[tokio::test]
async fn fifteen_consecutive_failures_interrupt_the_queue_until_resumed() {
    let receiver = Receiver::start(&[]).await;
    receiver.answer(503);
    let sim = sim_for(&receiver).await;
    sim.emit(json!({"id": "evt_b&1", "event": "PAYMENT_CREATED"}));
    sim.emit(json!({"id": "evt_b&2", "event": "PAYMENT_CONFIRMED"}));
    flush(&sim).await;
    assert!(sim.is_interrupted());
    let deliveries = sim.deliveries();
    assert_eq!(deliveries.len(), MAX_CONSECUTIVE_FAILURES as usize);
    assert!(
        deliveries
            .iter()
            .all(|d| d.event_id == "evt_b&1" && d.status == Some(503))
    );
    assert_eq!(sim.pending_webhooks(), 2);

    // New events are stored but not delivered while interrupted.
    sim.emit(json!({"id": "evt_b&3", "event": "PAYMENT_RECEIVED"}));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sim.deliveries().len(), MAX_CONSECUTIVE_FAILURES as usize);
    assert_eq!(sim.pending_webhooks(), 3);

    receiver.answer(200);
    sim.resume();
    flush(&sim).await;
    assert!(!sim.is_interrupted());
    let hits = receiver.hits();
    let tail: Vec<Value> = hits[hits.len() - 3..]
        .iter()
        .map(|h| h.json()["id"].clone())
        .collect();
    assert_eq!(tail, [json!("evt_b&1"), json!("evt_b&2"), json!("evt_b&3")]);
    assert_eq!(sim.pending_webhooks(), 0);
}

#[tokio::test]
async fn an_event_can_be_redelivered_with_the_same_id() {
    let receiver = Receiver::start(&[]).await;
    let sim = sim_for(&receiver).await;
    let customer = create_customer(&sim, "t").await;
    create_subscription(&sim, customer["id"].as_str().unwrap(), json!({})).await;
    flush(&sim).await;
    let first = receiver.hits()[1].json();
    assert_eq!(first["event"], json!("PAYMENT_CREATED"));
    assert!(sim.redeliver(first["id"].as_str().unwrap()));
    flush(&sim).await;
    let hits = receiver.hits();
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[2].json(), first, "same id, same body");
    assert_eq!(sim.events().len(), 2, "a redelivery is not a new event");
    assert!(!sim.redeliver("evt_unknown&1"));
}

#[tokio::test]
async fn the_target_can_be_set_after_the_start() {
    let sim = AsaasSim::start(SimConfig::new(KEY)).await.unwrap();
    let customer = create_customer(&sim, "t").await;
    create_subscription(&sim, customer["id"].as_str().unwrap(), json!({})).await;
    // Without a target, events wait and flushing returns at once.
    tokio::time::timeout(Duration::from_millis(200), sim.flush_webhooks())
        .await
        .unwrap();
    assert_eq!(sim.pending_webhooks(), 2);
    assert!(sim.deliveries().is_empty());

    let receiver = Receiver::start(&[]).await;
    sim.set_webhook_target(Some(WebhookTarget {
        url: receiver.url.clone(),
        auth_token: None,
    }));
    flush(&sim).await;
    assert_eq!(
        receiver.events(),
        ["SUBSCRIPTION_CREATED", "PAYMENT_CREATED"]
    );
    assert!(
        receiver
            .hits()
            .iter()
            .all(|h| h.header(TOKEN_HEADER).is_none())
    );

    sim.set_webhook_target(None);
    sim.emit(json!({"id": "evt_c&1", "event": "X"}));
    flush(&sim).await;
    assert_eq!(sim.pending_webhooks(), 1);
}

#[tokio::test]
async fn an_unreachable_receiver_counts_as_a_failure() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = SimConfig {
        webhook_retry_step: Duration::from_millis(5),
        ..SimConfig::new(KEY).with_webhook(WebhookTarget::new(
            format!("http://127.0.0.1:{port}/hook"),
            TOKEN,
        ))
    };
    let sim = AsaasSim::start(config).await.unwrap();
    sim.emit(json!({"id": "evt_d&1", "event": "PAYMENT_CREATED", "payment": {"id": "pay_1"}}));
    for _ in 0..100 {
        if sim.deliveries().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let deliveries = sim.deliveries();
    assert!(deliveries.len() >= 2);
    assert!(
        deliveries
            .iter()
            .all(|d| d.status.is_none() && d.error.is_some())
    );

    let receiver = Receiver::start(&[]).await;
    sim.set_webhook_target(Some(WebhookTarget::new(receiver.url.clone(), TOKEN)));
    flush(&sim).await;
    assert_eq!(
        receiver.hits()[0].json(),
        json!({"id": "evt_d&1", "event": "PAYMENT_CREATED", "payment": {"id": "pay_1"}}),
        "emitted envelopes are sent verbatim"
    );
}

#[tokio::test]
async fn a_slow_receiver_times_out() {
    let receiver = Receiver::start(&[]).await;
    let config = SimConfig {
        webhook_retry_step: Duration::from_millis(5),
        webhook_timeout: Duration::from_millis(100),
        ..SimConfig::new(KEY)
    };
    let sim = AsaasSim::start(config).await.unwrap();
    // A listener that accepts but never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}/", silent.local_addr().unwrap());
    let holder = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    sim.set_webhook_target(Some(WebhookTarget::new(silent_url, TOKEN)));
    sim.emit(json!({"id": "evt_e&1", "event": "X"}));
    for _ in 0..100 {
        if !sim.deliveries().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let first = sim.deliveries()[0].clone();
    assert_eq!(first.status, None);
    assert!(first.error.unwrap().contains("timed out"));
    sim.set_webhook_target(Some(WebhookTarget::new(receiver.url.clone(), TOKEN)));
    flush(&sim).await;
    assert_eq!(receiver.events(), ["X"]);
    holder.abort();
}
