//! The REST API: auth, shapes (field for field against the examples), validation, filters,
//! pagination, and the subscription life cycle.

use serde_json::{Value, json};
use whatpro_asaas_sim::fixtures;

use crate::{
    KEY, assert_same_keys, call, call_with_key, codes, create_customer, create_subscription, http,
    shared_json, shared_text, start,
};

#[test]
fn embedded_fixtures_are_byte_identical_to_the_shared_examples() {
    let named = [
        ("customer-create-response.json", fixtures::CUSTOMER),
        ("customer-delete-response.json", fixtures::CUSTOMER_DELETED),
        ("subscription-create-response.json", fixtures::SUBSCRIPTION),
        (
            "subscription-delete-response.json",
            fixtures::SUBSCRIPTION_DELETED,
        ),
        (
            "subscription-payments-list-response.json",
            fixtures::PAYMENTS_LIST,
        ),
        ("error-400.json", fixtures::ERROR_400),
        ("error-401.json", fixtures::ERROR_401),
    ];
    for (name, copy) in named {
        assert_eq!(copy, shared_text(name), "{name}");
    }
    for (event, copy) in fixtures::WEBHOOK_EXAMPLES {
        let name = format!(
            "webhook-{}.json",
            event.to_lowercase().replacen('_', "-", 1)
        );
        assert_eq!(*copy, shared_text(&name), "{name}");
        assert_eq!(shared_json(&name)["event"], json!(event));
    }
    assert_eq!(fixtures::WEBHOOK_EXAMPLES.len(), 11);
    assert!(fixtures::webhook_example("PAYMENT_RECEIVED").is_some());
    assert!(fixtures::webhook_example("PAYMENT_RESTORED").is_none());
}

#[tokio::test]
async fn a_missing_or_wrong_key_gets_the_401_example() {
    let sim = start().await;
    let expected = shared_json("error-401.json");
    for key in [None, Some("wrong"), Some("")] {
        let (status, body) = call_with_key(&sim, "GET", "/customers", None, key).await;
        assert_eq!(status, 401, "{key:?}");
        assert_eq!(body, expected, "{key:?}");
    }
    let (status, _) = call(&sim, "GET", "/customers", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_get_with_a_body_is_forbidden_and_unknown_paths_are_404() {
    let sim = start().await;
    let response = http()
        .get(format!("{}/customers", sim.url()))
        .header("access_token", KEY)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    for path in ["/nothing", "/customers/cus_1/nothing"] {
        assert_eq!(call(&sim, "GET", path, None).await.0, 404, "{path}");
    }
    let response = http()
        .get(format!("http://{}/customers", sim.addr()))
        .header("access_token", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404, "outside /v3");
    assert_eq!(call(&sim, "PATCH", "/customers", None).await.0, 404);
}

#[tokio::test]
async fn customers_have_the_example_shape() {
    let sim = start().await;
    let request = shared_json("customer-create-request.json");
    let (status, customer) = call(&sim, "POST", "/customers", Some(request)).await;
    assert_eq!(status, 200);
    assert_same_keys(
        &customer,
        &shared_json("customer-create-response.json"),
        "customer",
    );
    let id = customer["id"].as_str().unwrap();
    assert!(id.starts_with("cus_") && id.len() == 16, "{id}");
    assert_eq!(customer["object"], json!("customer"));
    assert_eq!(customer["name"], json!("Clínica Sorriso Ltda"));
    assert_eq!(customer["personType"], json!("JURIDICA"));
    assert_eq!(customer["mobilePhone"], json!("47999376637"));
    assert_eq!(customer["externalReference"], json!("tenant_7f3c2a9e"));
    assert_eq!(customer["notificationDisabled"], json!(true));
    assert_eq!(customer["phone"], Value::Null);
    assert_eq!(customer["deleted"], json!(false));

    let (status, read) = call(&sim, "GET", &format!("/customers/{id}"), None).await;
    assert_eq!((status, &read), (200, &customer));

    let cpf = create_customer(&sim, "r2").await;
    assert_eq!(cpf["personType"], json!("FISICA"));
    assert_eq!(cpf["email"], Value::Null);
    assert_eq!(sim.customers().len(), 2);
}

#[tokio::test]
async fn customer_validation() {
    let sim = start().await;
    for (body, expected) in [
        (json!({}), vec!["invalid_name", "invalid_cpfCnpj"]),
        (
            json!({"name": "A", "cpfCnpj": "1234567890"}),
            vec!["invalid_cpfCnpj"],
        ),
        (
            json!({"name": "A", "cpfCnpj": "123.456.789-09"}),
            vec!["invalid_cpfCnpj"],
        ),
        (
            json!({"name": "A", "cpfCnpj": "123456789012"}),
            vec!["invalid_cpfCnpj"],
        ),
        (
            json!({"name": " ", "cpfCnpj": "12345678909", "email": "nope"}),
            vec!["invalid_name", "invalid_email"],
        ),
        (json!([1]), vec!["invalid_object"]),
    ] {
        let (status, errors) = call(&sim, "POST", "/customers", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(codes(&errors), expected, "{body}");
        assert_same_keys(&errors, &shared_json("error-400.json"), "errors");
    }
    assert!(sim.customers().is_empty());
}

#[tokio::test]
async fn customers_are_filtered_paginated_updated_deleted_and_restored() {
    let sim = start().await;
    let mut ids = Vec::new();
    for (name, cpf, reference) in [
        ("Ana Reis", "12345678909", "t1"),
        ("Bruno Lima", "98765432100", "t2"),
        ("Carla Ana Souza", "11222333000181", "t3"),
    ] {
        let (_, c) = call(
            &sim,
            "POST",
            "/customers",
            Some(
                json!({"name": name, "cpfCnpj": cpf, "externalReference": reference,
                        "email": format!("{reference}@example.com")}),
            ),
        )
        .await;
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    let list = |query: &'static str| {
        let sim = sim.clone();
        async move {
            let (status, page) = call(&sim, "GET", &format!("/customers?{query}"), None).await;
            assert_eq!(status, 200);
            page
        }
    };
    let page = list("externalReference=t2").await;
    let mut expected = shared_json("subscription-payments-list-response.json");
    expected["data"] = json!([shared_json("customer-create-response.json")]);
    assert_same_keys(&page, &expected, "list");
    assert_eq!(page["object"], json!("list"));
    assert_eq!(page["totalCount"], json!(1));
    assert_eq!(page["data"][0]["id"], json!(ids[1]));
    assert_eq!(
        list("cpfCnpj=11222333000181").await["data"][0]["id"],
        json!(ids[2])
    );
    assert_eq!(
        list("email=t1%40example.com").await["data"][0]["id"],
        json!(ids[0])
    );
    assert_eq!(list("name=ana").await["totalCount"], json!(2));
    assert_eq!(list("externalReference=none").await["data"], json!([]));

    let page = list("limit=2").await;
    assert_eq!(
        (
            &page["hasMore"],
            &page["limit"],
            &page["offset"],
            &page["totalCount"]
        ),
        (&json!(true), &json!(2), &json!(0), &json!(3))
    );
    let page = list("limit=2&offset=2").await;
    assert_eq!(page["hasMore"], json!(false));
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(list("").await["limit"], json!(10));
    assert_eq!(list("limit=500").await["limit"], json!(100));

    let (status, updated) = call(
        &sim,
        "PUT",
        &format!("/customers/{}", ids[0]),
        Some(json!({"email": "new@example.com", "cpfCnpj": "11222333000181"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(updated["email"], json!("new@example.com"));
    assert_eq!(updated["personType"], json!("JURIDICA"));
    assert_eq!(updated["name"], json!("Ana Reis"));
    let (status, errors) = call(
        &sim,
        "PUT",
        &format!("/customers/{}", ids[0]),
        Some(json!({"cpfCnpj": "1"})),
    )
    .await;
    assert_eq!(
        (status, codes(&errors)),
        (400, vec!["invalid_cpfCnpj".to_owned()])
    );

    let (status, deleted) = call(&sim, "DELETE", &format!("/customers/{}", ids[1]), None).await;
    assert_eq!(status, 200);
    assert_same_keys(
        &deleted,
        &shared_json("customer-delete-response.json"),
        "deleted",
    );
    assert_eq!(deleted, json!({"deleted": true, "id": ids[1]}));
    assert_eq!(list("externalReference=t2").await["totalCount"], json!(0));
    let (_, read) = call(&sim, "GET", &format!("/customers/{}", ids[1]), None).await;
    assert_eq!(read["deleted"], json!(true));
    assert!(!sim.has_customer(&ids[1]));
    assert_eq!(
        call(&sim, "DELETE", &format!("/customers/{}", ids[1]), None)
            .await
            .0,
        404
    );
    let (status, restored) = call(
        &sim,
        "POST",
        &format!("/customers/{}/restore", ids[1]),
        None,
    )
    .await;
    assert_eq!((status, &restored["deleted"]), (200, &json!(false)));
    assert_eq!(list("externalReference=t2").await["totalCount"], json!(1));
}

#[tokio::test]
async fn creating_a_subscription_creates_its_first_payment() {
    let sim = start().await;
    let customer = create_customer(&sim, "t1").await;
    let customer_id = customer["id"].as_str().unwrap();
    let mut request = shared_json("subscription-create-request.json");
    request["customer"] = json!(customer_id);
    let (status, subscription) = call(&sim, "POST", "/subscriptions", Some(request)).await;
    assert_eq!(status, 200);
    assert_same_keys(
        &subscription,
        &shared_json("subscription-create-response.json"),
        "subscription",
    );
    let id = subscription["id"].as_str().unwrap();
    assert!(id.starts_with("sub_") && id.len() == 20, "{id}");
    for (key, value) in [
        ("object", json!("subscription")),
        ("customer", json!(customer_id)),
        ("billingType", json!("UNDEFINED")),
        ("cycle", json!("MONTHLY")),
        ("value", json!(197.0)),
        ("nextDueDate", json!("2025-03-15")),
        ("status", json!("ACTIVE")),
        ("deleted", json!(false)),
        ("fine", json!({"value": 2, "type": "PERCENTAGE"})),
        ("interest", json!({"value": 1, "type": "PERCENTAGE"})),
        ("externalReference", json!("tenant_7f3c2a9e:plan_pro")),
    ] {
        assert_eq!(subscription[key], value, "{key}");
    }
    // Afterwards the next payment to generate is a cycle later.
    let (_, read) = call(&sim, "GET", &format!("/subscriptions/{id}"), None).await;
    assert_eq!(read["nextDueDate"], json!("2025-04-15"));

    let (status, page) = call(&sim, "GET", &format!("/subscriptions/{id}/payments"), None).await;
    assert_eq!(status, 200);
    let example = shared_json("subscription-payments-list-response.json");
    assert_same_keys(&page, &example, "list");
    assert_eq!(page["totalCount"], json!(1));
    let payment = &page["data"][0];
    assert_same_keys(payment, &example["data"][1], "payment");
    let payment_id = payment["id"].as_str().unwrap();
    assert!(payment_id.starts_with("pay_"));
    for (key, value) in [
        ("object", json!("payment")),
        ("status", json!("PENDING")),
        ("subscription", json!(id)),
        ("customer", json!(customer_id)),
        ("value", json!(197.0)),
        ("netValue", json!(195.01)),
        ("dueDate", json!("2025-03-15")),
        ("originalDueDate", json!("2025-03-15")),
        ("billingType", json!("UNDEFINED")),
        ("paymentDate", Value::Null),
        ("deleted", json!(false)),
        ("externalReference", json!("tenant_7f3c2a9e:plan_pro")),
    ] {
        assert_eq!(payment[key], value, "{key}");
    }
    assert_eq!(
        payment["invoiceUrl"],
        json!(format!(
            "https://sandbox.asaas.com/i/{}",
            payment_id.trim_start_matches("pay_")
        ))
    );
    let (_, by_id) = call(&sim, "GET", &format!("/payments/{payment_id}"), None).await;
    assert_eq!(&by_id, payment);
    let (_, by_query) = call(&sim, "GET", &format!("/payments?subscription={id}"), None).await;
    assert_eq!(&by_query["data"][0], payment);
    assert_eq!(call(&sim, "GET", "/payments/pay_nope", None).await.0, 404);

    let events: Vec<Value> = sim.events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event"], json!("SUBSCRIPTION_CREATED"));
    assert_eq!(
        events[0]["subscription"]["nextDueDate"],
        json!("15/03/2025")
    );
    assert_eq!(events[1]["event"], json!("PAYMENT_CREATED"));
    assert_eq!(&events[1]["payment"], payment);
}

#[tokio::test]
async fn subscription_validation() {
    let sim = start().await;
    let (status, errors) = call(&sim, "POST", "/subscriptions", Some(json!({}))).await;
    assert_eq!(status, 400);
    assert_eq!(
        codes(&errors),
        [
            "invalid_customer",
            "invalid_billingType",
            "invalid_value",
            "invalid_nextDueDate",
            "invalid_cycle"
        ]
    );
    let customer = create_customer(&sim, "t").await;
    let (status, errors) = call(
        &sim,
        "POST",
        "/subscriptions",
        Some(
            json!({"customer": customer["id"], "billingType": "DEBIT_CARD", "value": -1,
                    "nextDueDate": "15/03/2025", "cycle": "DAILY",
                    "description": "x".repeat(501)}),
        ),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        codes(&errors),
        [
            "invalid_billingType",
            "invalid_value",
            "invalid_nextDueDate",
            "invalid_cycle",
            "invalid_description"
        ]
    );
    assert!(sim.subscriptions().is_empty());
    assert!(sim.events().is_empty());
}

#[tokio::test]
async fn subscriptions_are_listed_and_filtered() {
    let sim = start().await;
    let a = create_customer(&sim, "a").await;
    let b = create_customer(&sim, "b").await;
    let s1 = create_subscription(&sim, a["id"].as_str().unwrap(), json!({})).await;
    let s2 = create_subscription(
        &sim,
        b["id"].as_str().unwrap(),
        json!({"billingType": "BOLETO", "externalReference": "b:plan"}),
    )
    .await;
    let ids = |page: &Value| -> Vec<Value> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].clone())
            .collect()
    };
    let (_, page) = call(&sim, "GET", "/subscriptions", None).await;
    assert_eq!(ids(&page), [s1["id"].clone(), s2["id"].clone()]);
    let (_, page) = call(
        &sim,
        "GET",
        &format!("/subscriptions?customer={}", b["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(ids(&page), [s2["id"].clone()]);
    let (_, page) = call(&sim, "GET", "/subscriptions?billingType=BOLETO", None).await;
    assert_eq!(ids(&page), [s2["id"].clone()]);
    let (_, page) = call(
        &sim,
        "GET",
        "/subscriptions?externalReference=b%3Aplan",
        None,
    )
    .await;
    assert_eq!(ids(&page), [s2["id"].clone()]);
    let (_, page) = call(&sim, "GET", "/subscriptions?status=INACTIVE", None).await;
    assert_eq!(ids(&page), Vec::<Value>::new());
    // A boleto payment has a bank slip.
    let boleto = &sim.subscription_payments(s2["id"].as_str().unwrap())[0];
    assert!(boleto["nossoNumero"].is_string());
    assert!(boleto["bankSlipUrl"].as_str().unwrap().contains("/b/pdf/"));

    call(
        &sim,
        "DELETE",
        &format!("/subscriptions/{}", s1["id"].as_str().unwrap()),
        None,
    )
    .await;
    let (_, page) = call(&sim, "GET", "/subscriptions", None).await;
    assert_eq!(ids(&page), [s2["id"].clone()]);
    let (_, page) = call(&sim, "GET", "/subscriptions?includeDeleted=true", None).await;
    assert_eq!(ids(&page).len(), 2);
}

#[tokio::test]
async fn updating_a_subscription() {
    let sim = start().await;
    let customer = create_customer(&sim, "t").await;
    let subscription = create_subscription(&sim, customer["id"].as_str().unwrap(), json!({})).await;
    let id = subscription["id"].as_str().unwrap();
    let path = format!("/subscriptions/{id}");
    let first_payment = sim.subscription_payments(id)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let events_before = sim.events().len();

    // Without updatePendingPayments the existing payment keeps its value.
    let (status, updated) = call(
        &sim,
        "PUT",
        &path,
        Some(json!({"value": 297.0, "description": "Plano Business"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_same_keys(
        &updated,
        &shared_json("subscription-create-response.json"),
        "sub",
    );
    assert_eq!(updated["value"], json!(297.0));
    assert_eq!(updated["description"], json!("Plano Business"));
    assert_eq!(sim.payment(&first_payment).unwrap()["value"], json!(197.0));

    let (_, updated) = call(
        &sim,
        "PUT",
        &path,
        Some(shared_json("subscription-update-request.json")),
    )
    .await;
    assert_eq!(
        updated["externalReference"],
        json!("tenant_7f3c2a9e:plan_business")
    );
    let payment = sim.payment(&first_payment).unwrap();
    assert_eq!(payment["value"], json!(297.0));
    assert_eq!(payment["netValue"], json!(295.01));
    assert_eq!(
        payment["description"],
        json!("WhatPro Hub - Plano Business (mensal)")
    );

    let (_, updated) = call(
        &sim,
        "PUT",
        &path,
        Some(json!({"billingType": "CREDIT_CARD", "nextDueDate": "2025-05-01"})),
    )
    .await;
    assert_eq!(updated["billingType"], json!("CREDIT_CARD"));
    assert_eq!(updated["nextDueDate"], json!("2025-05-01"));

    let (_, paused) = call(
        &sim,
        "PUT",
        &path,
        Some(shared_json("subscription-inactivate-request.json")),
    )
    .await;
    assert_eq!(paused["status"], json!("INACTIVE"));

    let (status, errors) = call(&sim, "PUT", &path, Some(json!({"status": "ACTIVE"}))).await;
    assert_eq!(
        (status, codes(&errors)),
        (400, vec!["invalid_nextDueDate".to_owned()])
    );
    let (status, errors) = call(
        &sim,
        "PUT",
        &path,
        Some(json!({"status": "EXPIRED", "value": "x"})),
    )
    .await;
    assert_eq!(
        (status, codes(&errors)),
        (
            400,
            vec!["invalid_value".to_owned(), "invalid_status".to_owned()]
        )
    );
    let (status, active) = call(
        &sim,
        "PUT",
        &path,
        Some(json!({"status": "ACTIVE", "nextDueDate": "2025-06-15"})),
    )
    .await;
    assert_eq!((status, &active["status"]), (200, &json!("ACTIVE")));

    let names: Vec<String> = sim.events()[events_before..]
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "SUBSCRIPTION_UPDATED",
            "SUBSCRIPTION_UPDATED",
            "PAYMENT_UPDATED",
            "SUBSCRIPTION_UPDATED",
            "SUBSCRIPTION_UPDATED",
            "SUBSCRIPTION_INACTIVATED",
            "SUBSCRIPTION_UPDATED",
        ]
    );
    assert_eq!(
        call(&sim, "PUT", "/subscriptions/sub_nope", Some(json!({})))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn deleting_a_subscription_removes_unpaid_payments() {
    let sim = start().await;
    let customer = create_customer(&sim, "t").await;
    let subscription = create_subscription(&sim, customer["id"].as_str().unwrap(), json!({})).await;
    let id = subscription["id"].as_str().unwrap();
    let paid = sim.subscription_payments(id)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.set_payment_status(&paid, "RECEIVED").unwrap();
    let overdue = sim
        .create_next_payment(id, time::macros::date!(2025 - 04 - 15))
        .unwrap();
    let overdue = overdue["id"].as_str().unwrap().to_owned();
    sim.set_payment_status(&overdue, "OVERDUE").unwrap();
    let pending = sim
        .create_next_payment(id, time::macros::date!(2025 - 05 - 15))
        .unwrap();
    let pending = pending["id"].as_str().unwrap().to_owned();
    let events_before = sim.events().len();

    let (status, answer) = call(&sim, "DELETE", &format!("/subscriptions/{id}"), None).await;
    assert_eq!(status, 200);
    assert_same_keys(
        &answer,
        &shared_json("subscription-delete-response.json"),
        "deleted",
    );
    assert_eq!(answer, json!({"deleted": true, "id": id}));

    assert_eq!(sim.payment(&paid).unwrap()["deleted"], json!(false));
    assert_eq!(sim.payment(&overdue).unwrap()["deleted"], json!(true));
    assert_eq!(sim.payment(&pending).unwrap()["deleted"], json!(true));
    let (_, page) = call(&sim, "GET", &format!("/subscriptions/{id}/payments"), None).await;
    let left: Vec<&Value> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["id"])
        .collect();
    assert_eq!(left, [&json!(paid)]);
    let (_, read) = call(&sim, "GET", &format!("/subscriptions/{id}"), None).await;
    assert_eq!(
        (&read["deleted"], &read["status"]),
        (&json!(true), &json!("INACTIVE"))
    );

    let events = &sim.events()[events_before..];
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["PAYMENT_DELETED", "PAYMENT_DELETED", "SUBSCRIPTION_DELETED"]
    );
    assert_eq!(events[0]["payment"]["id"], json!(overdue));
    assert_eq!(events[0]["payment"]["deleted"], json!(true));
    assert_eq!(events[0]["payment"]["status"], json!("OVERDUE"));
    assert_eq!(events[2]["subscription"]["deleted"], json!(true));
    assert_eq!(
        call(&sim, "DELETE", &format!("/subscriptions/{id}"), None)
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn payments_are_filtered() {
    let sim = start().await;
    let customer = create_customer(&sim, "t").await;
    let subscription = create_subscription(&sim, customer["id"].as_str().unwrap(), json!({})).await;
    let id = subscription["id"].as_str().unwrap();
    let second = sim
        .create_next_payment(id, time::macros::date!(2025 - 04 - 15))
        .unwrap();
    sim.set_payment_status(second["id"].as_str().unwrap(), "CONFIRMED")
        .unwrap();
    let (_, page) = call(
        &sim,
        "GET",
        &format!("/subscriptions/{id}/payments?status=CONFIRMED"),
        None,
    )
    .await;
    assert_eq!(page["totalCount"], json!(1));
    assert_eq!(page["data"][0]["id"], second["id"]);
    let (_, page) = call(&sim, "GET", "/payments?status=PENDING", None).await;
    assert_eq!(page["totalCount"], json!(1));
    let (_, page) = call(
        &sim,
        "GET",
        &format!("/payments?customer={}", customer["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(page["totalCount"], json!(2));
    assert_eq!(
        call(&sim, "GET", "/subscriptions/sub_nope/payments", None)
            .await
            .0,
        404
    );
}
