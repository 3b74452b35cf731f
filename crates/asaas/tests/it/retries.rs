//! Which calls are tried again, and when.

use std::time::{Duration, Instant};

use time::macros::date;
use tokio::net::TcpListener;
use whatpro_asaas::{AsaasError, AsaasSettings, RETRY_BACKOFF, SubscriptionUpdate};
use whatpro_asaas_sim::Fault;

use crate::{KEY, client_for, fast_settings, new_customer, start};

#[tokio::test]
async fn a_get_is_retried_after_a_503() {
    let (sim, client) = start().await;
    let created = client.create_customer(&new_customer("t")).await.unwrap();
    sim.clear_requests();
    sim.set_fault_times(Fault::Status(503), 1);
    let read = client.get_customer(&created.id).await.unwrap();
    assert_eq!(read.id, created.id);
    assert_eq!(sim.requests().len(), 2);
}

#[tokio::test]
async fn retries_are_bounded() {
    let (sim, client) = start().await;
    sim.set_fault(Fault::Status(503));
    let error = client.get_customer("cus_1").await.unwrap_err();
    assert!(matches!(error, AsaasError::Upstream { status: 503, .. }));
    assert_eq!(sim.requests().len(), 2, "one try plus one retry");

    sim.clear_requests();
    let no_retry = client_for(
        &sim.url(),
        KEY,
        AsaasSettings {
            retries: 0,
            ..fast_settings()
        },
    );
    assert!(no_retry.get_customer("cus_1").await.is_err());
    assert_eq!(sim.requests().len(), 1);
}

#[tokio::test]
async fn a_put_is_retried_after_a_timeout() {
    let (sim, client) = start().await;
    let customer = client.create_customer(&new_customer("t")).await.unwrap();
    let subscription = client
        .create_subscription(&whatpro_asaas::NewSubscription {
            customer: customer.id,
            billing_type: whatpro_asaas::BillingType::Pix,
            value_cents: 19_700,
            next_due_date: date!(2025 - 03 - 15),
            cycle: whatpro_asaas::Cycle::Monthly,
            description: None,
            external_reference: None,
        })
        .await
        .unwrap();
    sim.clear_requests();
    sim.set_fault_times(Fault::Delay(Duration::from_secs(2)), 1);
    let updated = client
        .update_subscription(
            &subscription.id,
            &SubscriptionUpdate {
                value_cents: Some(29_700),
                ..SubscriptionUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.value_cents, 29_700);
    let puts = sim.requests();
    assert_eq!(puts.len(), 2);
    assert_eq!(puts[0].body, puts[1].body, "the same request is sent again");
}

#[tokio::test]
async fn a_post_is_not_retried_once_sent() {
    let (sim, client) = start().await;
    sim.set_fault_times(Fault::Status(503), 1);
    let error = client
        .create_customer(&new_customer("t"))
        .await
        .unwrap_err();
    assert!(matches!(error, AsaasError::Upstream { status: 503, .. }));
    assert_eq!(sim.requests().len(), 1);

    sim.clear_requests();
    sim.set_fault_times(Fault::Delay(Duration::from_secs(2)), 1);
    let error = client
        .create_customer(&new_customer("t"))
        .await
        .unwrap_err();
    assert!(matches!(error, AsaasError::Unavailable(_)), "{error:?}");
    assert_eq!(
        sim.requests().len(),
        1,
        "a timed-out POST may have been applied"
    );
}

/// The first connection attempt is refused (nothing listens yet); the retry reaches a
/// forwarder to the simulator that starts listening meanwhile.
#[tokio::test]
async fn a_post_is_retried_when_the_connection_failed() {
    let (sim, _client) = start().await;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let target = sim.addr();
    let forwarder = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        loop {
            let (mut inbound, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut outbound = tokio::net::TcpStream::connect(target).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    let client = client_for(&format!("http://127.0.0.1:{port}/v3"), KEY, fast_settings());
    let started = Instant::now();
    let created = client.create_customer(&new_customer("t")).await.unwrap();
    assert!(created.id.starts_with("cus_"));
    assert!(
        started.elapsed() >= RETRY_BACKOFF,
        "the first attempt failed and the retry waited"
    );
    assert_eq!(sim.requests().len(), 1);
    assert_eq!(sim.customers().len(), 1);
    forwarder.abort();
}
