//! Error mapping: wrong key, error lists, 5xx, 429, garbage bodies, slow and absent servers.

use std::time::{Duration, Instant};

use whatpro_asaas::{AsaasError, AsaasSettings};
use whatpro_asaas_sim::Fault;
use whatpro_kernel::{Classify, ErrorKind};

use crate::{KEY, client_for, fast_settings, new_customer, start};

#[tokio::test]
async fn a_wrong_key_is_unauthorized_and_never_echoed() {
    let (sim, _client) = start().await;
    let wrong = "$aact_hmlg_wrong_key_0123456789";
    let client = client_for(&sim.url(), wrong, fast_settings());
    let error = client.get_customer("cus_1").await.unwrap_err();
    assert_eq!(error, AsaasError::Unauthorized);
    assert_eq!(error.kind(), ErrorKind::Upstream);
    assert_eq!(error.code(), "asaas_unauthorized");
    assert!(!error.to_string().contains(wrong));
    assert!(!format!("{error:?}").contains(wrong));
    assert!(!format!("{client:?}").contains(wrong));
    // A 401 is final: no retry.
    assert_eq!(sim.requests().len(), 1);
    assert_eq!(sim.requests()[0].header("access_token"), Some(wrong));
}

#[tokio::test]
async fn an_error_list_is_parsed() {
    let (sim, client) = start().await;
    sim.set_fault(Fault::Status(422));
    let error = client.get_customer("cus_1").await.unwrap_err();
    let AsaasError::Rejected { status, errors } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*status, 422);
    assert_eq!(errors[0].code, "sim_fault");
    assert_eq!(error.kind(), ErrorKind::Invalid);
    assert_eq!(error.code(), "asaas_rejected");
}

#[tokio::test]
async fn a_server_error_is_upstream() {
    let (sim, client) = start().await;
    sim.set_fault(Fault::Status(500));
    let error = client
        .create_customer(&new_customer("t"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, AsaasError::Upstream { status: 500, .. }),
        "{error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::Upstream);
    assert_eq!(error.code(), "asaas_error");
    assert_eq!(sim.requests().len(), 1, "a 500 is not retried");
}

#[tokio::test]
async fn rate_limit_and_not_found() {
    let (sim, client) = start().await;
    sim.set_fault_times(Fault::Status(429), 1);
    let error = client.get_customer("cus_1").await.unwrap_err();
    assert_eq!(error, AsaasError::RateLimited);
    assert_eq!(error.kind(), ErrorKind::Upstream);
    let error = client.get_subscription("sub_none").await.unwrap_err();
    assert_eq!(error, AsaasError::NotFound);
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert_eq!(error.code(), "asaas_not_found");
}

#[tokio::test]
async fn a_garbage_body_is_upstream() {
    let (sim, client) = start().await;
    sim.set_fault(Fault::Garbage);
    let error = client.get_customer("cus_1").await.unwrap_err();
    let AsaasError::Upstream { status, message } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*status, 200);
    assert!(message.contains("not JSON"), "{message}");
    assert!(!message.contains("html"), "{message}");
}

#[tokio::test]
async fn a_slow_server_is_unavailable_within_the_timeout() {
    let (sim, _client) = start().await;
    let client = client_for(
        &sim.url(),
        KEY,
        AsaasSettings {
            request_timeout: Duration::from_millis(200),
            retries: 0,
            ..AsaasSettings::default()
        },
    );
    sim.set_fault(Fault::Delay(Duration::from_secs(3)));
    let started = Instant::now();
    let error = client.get_customer("cus_1").await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(error, AsaasError::Unavailable(_)), "{error:?}");
    assert!(error.to_string().contains("timed out"), "{error}");
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(error.code(), "asaas_unavailable");
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
}

#[tokio::test]
async fn an_absent_server_is_unavailable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = client_for(&format!("http://127.0.0.1:{port}/v3"), KEY, fast_settings());
    let error = client.get_customer("cus_1").await.unwrap_err();
    assert!(matches!(error, AsaasError::Unavailable(_)), "{error:?}");
    assert!(!error.to_string().contains("127.0.0.1"), "{error}");
}
