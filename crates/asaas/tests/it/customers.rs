//! Customers: create, find by external reference, get; headers and query encoding.

use serde_json::json;
use whatpro_asaas::{AsaasError, NewCustomer};

use crate::{KEY, new_customer, start};

#[tokio::test]
async fn creates_and_reads_a_customer() {
    let (sim, client) = start().await;
    let created = client
        .create_customer(&new_customer("tenant_7f3c2a9e"))
        .await
        .unwrap();
    assert!(created.id.starts_with("cus_"), "{}", created.id);
    assert_eq!(created.name, "Clínica Sorriso Ltda");
    assert_eq!(created.cpf_cnpj.as_deref(), Some("11222333000181"));
    assert_eq!(
        created.email.as_deref(),
        Some("financeiro@clinicasorriso.com.br")
    );
    assert_eq!(
        created.external_reference.as_deref(),
        Some("tenant_7f3c2a9e")
    );
    assert!(!created.deleted);

    let read = client.get_customer(&created.id).await.unwrap();
    assert_eq!(read, created);

    let stored = sim.customers();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["notificationDisabled"], json!(true));
    assert_eq!(stored[0]["personType"], json!("JURIDICA"));

    let post = &sim.requests()[0];
    assert_eq!(post.method, "POST");
    assert_eq!(post.path, "/v3/customers");
    assert_eq!(
        post.body_json().unwrap(),
        json!({
            "name": "Clínica Sorriso Ltda",
            "cpfCnpj": "11222333000181",
            "email": "financeiro@clinicasorriso.com.br",
            "externalReference": "tenant_7f3c2a9e",
            "notificationDisabled": true
        })
    );
}

#[tokio::test]
async fn sends_the_required_headers_and_no_body_on_get() {
    let (sim, client) = start().await;
    let created = client.create_customer(&new_customer("t1")).await.unwrap();
    client.get_customer(&created.id).await.unwrap();
    let requests = sim.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.header("access_token"), Some(KEY));
        assert_eq!(request.header("user-agent"), Some("WhatPro Hub"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header("authorization"), None);
    }
    assert_eq!(requests[1].method, "GET");
    assert!(requests[1].body.is_empty());
    assert_eq!(requests[1].path, format!("/v3/customers/{}", created.id));
}

#[tokio::test]
async fn finds_a_customer_by_external_reference() {
    let (sim, client) = start().await;
    let reference = "tenant 7f3c&x=y";
    assert_eq!(
        client
            .find_customer_by_external_reference(reference)
            .await
            .unwrap(),
        None
    );
    client
        .create_customer(&new_customer("other"))
        .await
        .unwrap();
    let created = client
        .create_customer(&new_customer(reference))
        .await
        .unwrap();
    let found = client
        .find_customer_by_external_reference(reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, created);

    let search = sim.requests().pop().unwrap();
    assert_eq!(search.method, "GET");
    assert_eq!(search.path, "/v3/customers");
    assert!(
        search
            .query_pairs()
            .contains(&("externalReference".to_owned(), reference.to_owned())),
        "{:?}",
        search.query
    );
    assert!(search.body.is_empty());
}

#[tokio::test]
async fn an_empty_reference_is_refused_without_a_call() {
    let (sim, client) = start().await;
    assert!(matches!(
        client.find_customer_by_external_reference("").await,
        Err(AsaasError::Config(_))
    ));
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn unknown_customer_is_not_found() {
    let (sim, client) = start().await;
    assert_eq!(
        client.get_customer("cus_000000000000").await,
        Err(AsaasError::NotFound)
    );
    assert_eq!(client.get_customer("").await, Err(AsaasError::NotFound));
    assert_eq!(sim.requests().len(), 1, "an empty id makes no call");
}

#[tokio::test]
async fn invalid_customer_is_rejected_with_the_error_list() {
    let (_sim, client) = start().await;
    let error = client
        .create_customer(&NewCustomer {
            name: String::new(),
            cpf_cnpj: "123".to_owned(),
            ..NewCustomer::default()
        })
        .await
        .unwrap_err();
    let AsaasError::Rejected { status, errors } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*status, 400);
    let codes: Vec<&str> = errors.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(codes, ["invalid_name", "invalid_cpfCnpj"]);
    assert!(errors.iter().all(|e| !e.description.is_empty()));
    assert!(error.has_code("invalid_cpfCnpj"));
}
