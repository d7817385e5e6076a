//! Lago customers: upsert by external id, read, delete, pagination and field validation (COMPAT §1.3–1.5, §2.1).

use serde_json::{Value, json};

use crate::helpers::{assert_json, spawn_app, validation_error};

#[tokio::test]
async fn create_upserts_by_external_id_and_keeps_unsent_fields() {
    let app = spawn_app().await;
    let reply = app
        .post_json(
            "/api/v1/customers",
            &json!({"customer": {
                "external_id": "cus_acme",
                "name": "Acme",
                "email": "billing@acme.test",
                "currency": "EUR",
                "timezone": "Europe/Paris",
                "net_payment_term": 30,
                "country": "FR",
                "customer_type": "company",
                "billing_configuration": {"invoice_grace_period": 3, "document_locale": "fr"},
            }}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(200);
    let created = reply.json()["customer"].clone();
    assert_eq!(created["external_id"], "cus_acme");
    assert_eq!(created["name"], "Acme");
    assert_eq!(created["email"], "billing@acme.test");
    assert_eq!(created["currency"], "EUR");
    assert_eq!(created["timezone"], "Europe/Paris");
    assert_eq!(created["applicable_timezone"], "Europe/Paris");
    assert_eq!(created["net_payment_term"], 30);
    assert_eq!(created["country"], "FR");
    assert_eq!(created["customer_type"], "company");
    assert_eq!(created["billing_configuration"]["invoice_grace_period"], 3);
    assert_eq!(created["billing_configuration"]["document_locale"], "fr");
    assert_eq!(created["sequential_id"], 1);
    assert_eq!(created["metadata"], json!([]));
    let lago_id = created["lago_id"].as_str().expect("lago_id").to_owned();
    assert!(uuid::Uuid::parse_str(&lago_id).is_ok(), "{lago_id}");

    // A second POST with only a new name changes only the name.
    let reply = app
        .post_json(
            "/api/v1/customers",
            &json!({"customer": {"external_id": "cus_acme", "name": "Acme Corp"}}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(200);
    let updated = reply.json()["customer"].clone();
    assert_eq!(updated["name"], "Acme Corp");
    assert_eq!(updated["lago_id"], lago_id.as_str());
    for field in [
        "email",
        "currency",
        "timezone",
        "net_payment_term",
        "country",
        "customer_type",
        "billing_configuration",
        "sequential_id",
        "created_at",
    ] {
        assert_eq!(updated[field], created[field], "{field} changed");
    }

    // An explicit null clears a field.
    let reply = app
        .post_json(
            "/api/v1/customers",
            &json!({"customer": {"external_id": "cus_acme", "email": null}}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(200);
    assert_eq!(reply.json()["customer"]["email"], Value::Null);
    assert_eq!(reply.json()["customer"]["name"], "Acme Corp");

    let reply = app.get("/api/v1/customers/cus_acme", &app.read_key).await;
    reply.assert_status(200);
    let fetched = reply.json()["customer"].clone();
    assert_eq!(fetched["name"], "Acme Corp");
    assert_eq!(fetched["email"], Value::Null);
    assert_eq!(fetched["currency"], "EUR");
    assert_eq!(fetched["lago_id"], lago_id.as_str());

    // Still one customer.
    let reply = app.get("/api/v1/customers", &app.admin_key).await;
    assert_eq!(reply.json()["meta"]["total_count"], 1);
}

#[tokio::test]
async fn unknown_customers_are_not_found() {
    let app = spawn_app().await;
    let not_found = json!({"status": 404, "error": "Not Found", "code": "customer_not_found"});
    let reply = app.get("/api/v1/customers/nobody", &app.admin_key).await;
    reply.assert_status(404);
    assert_json(&reply.json(), &not_found);
    let reply = app.delete("/api/v1/customers/nobody", &app.admin_key).await;
    reply.assert_status(404);
    assert_json(&reply.json(), &not_found);
}

fn meta(current: u64, next: Option<u64>, prev: Option<u64>, pages: u64, count: u64) -> Value {
    json!({"current_page": current, "next_page": next, "prev_page": prev, "total_pages": pages, "total_count": count})
}

fn external_ids(list: &Value) -> Vec<String> {
    list["customers"]
        .as_array()
        .expect("customers array")
        .iter()
        .map(|c| c["external_id"].as_str().expect("external_id").to_owned())
        .collect()
}

#[tokio::test]
async fn lists_paginate_like_lago() {
    let app = spawn_app().await;

    let reply = app.get("/api/v1/customers", &app.admin_key).await;
    reply.assert_status(200);
    assert_json(
        &reply.json(),
        &json!({"customers": [], "meta": meta(0, None, None, 0, 0)}),
    );

    for i in 1..=5 {
        app.create_customer(&format!("cus_{i}")).await;
    }

    let page1 = app
        .get("/api/v1/customers?per_page=2", &app.admin_key)
        .await
        .json();
    assert_eq!(external_ids(&page1), ["cus_1", "cus_2"]);
    assert_json(&page1["meta"], &meta(1, Some(2), None, 3, 5));

    let page2 = app
        .get("/api/v1/customers?page=2&per_page=2", &app.admin_key)
        .await
        .json();
    assert_eq!(external_ids(&page2), ["cus_3", "cus_4"]);
    assert_json(&page2["meta"], &meta(2, Some(3), Some(1), 3, 5));

    let page3 = app
        .get("/api/v1/customers?page=3&per_page=2", &app.admin_key)
        .await
        .json();
    assert_eq!(external_ids(&page3), ["cus_5"]);
    assert_json(&page3["meta"], &meta(3, None, Some(2), 3, 5));

    let all = app.get("/api/v1/customers", &app.admin_key).await.json();
    assert_eq!(
        external_ids(&all),
        ["cus_1", "cus_2", "cus_3", "cus_4", "cus_5"]
    );
    assert_json(&all["meta"], &meta(1, None, None, 1, 5));

    let reply = app
        .get("/api/v1/customers?per_page=abc", &app.admin_key)
        .await;
    reply.assert_status(400);
}

#[tokio::test]
async fn delete_answers_the_customer_and_removes_it() {
    let app = spawn_app().await;
    let created = app.create_customer("cus_gone").await;
    app.create_customer("cus_stays").await;

    let reply = app
        .delete("/api/v1/customers/cus_gone", &app.admin_key)
        .await;
    reply.assert_status(200);
    let deleted = reply.json()["customer"].clone();
    assert_eq!(deleted["external_id"], "cus_gone");
    assert_eq!(deleted["lago_id"], created["lago_id"]);

    app.get("/api/v1/customers/cus_gone", &app.admin_key)
        .await
        .assert_status(404);
    let list = app.get("/api/v1/customers", &app.admin_key).await.json();
    assert_eq!(external_ids(&list), ["cus_stays"]);
    assert_eq!(list["meta"]["total_count"], 1);

    // The external id is free again: a new customer gets a new lago_id.
    let again = app.create_customer("cus_gone").await;
    assert_ne!(again["lago_id"], created["lago_id"]);
}

#[tokio::test]
async fn wrong_types_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let post = |customer: Value| {
        let app = &app;
        async move {
            app.post_json(
                "/api/v1/customers",
                &json!({ "customer": customer }),
                &app.admin_key,
            )
            .await
        }
    };

    let reply = post(json!({"external_id": "cus_1", "net_payment_term": "abc"})).await;
    reply.assert_status(422);
    assert_json(
        &reply.json(),
        &validation_error(json!({"net_payment_term": ["invalid_format"]})),
    );

    let reply = post(json!({"external_id": "cus_1", "timezone": "Mars/Olympus_Mons"})).await;
    reply.assert_status(422);
    assert_json(
        &reply.json(),
        &validation_error(json!({"timezone": ["invalid_timezone"]})),
    );

    let reply = post(json!({"external_id": "cus_1", "name": 42})).await;
    reply.assert_status(422);
    assert_json(
        &reply.json(),
        &validation_error(json!({"name": ["invalid_format"]})),
    );

    let reply = post(json!({"external_id": "cus_1", "currency": "ZZZ"})).await;
    reply.assert_status(422);
    assert_json(
        &reply.json(),
        &validation_error(json!({"currency": ["value_is_invalid"]})),
    );

    let reply = post(json!({"name": "No id"})).await;
    reply.assert_status(422);
    assert_json(
        &reply.json(),
        &validation_error(json!({"external_id": ["value_is_mandatory"]})),
    );

    // Several refused fields are reported together.
    let reply =
        post(json!({"external_id": "cus_1", "net_payment_term": [], "timezone": "Nowhere"})).await;
    reply.assert_status(422);
    assert_json(
        &reply.json(),
        &validation_error(
            json!({"net_payment_term": ["invalid_format"], "timezone": ["invalid_timezone"]}),
        ),
    );

    // Nothing was created by the refused requests.
    app.get("/api/v1/customers/cus_1", &app.admin_key)
        .await
        .assert_status(404);
}

#[tokio::test]
async fn a_missing_root_key_or_bad_json_is_a_bad_request() {
    let app = spawn_app().await;
    for body in [
        r#"{"external_id": "cus_1"}"#,
        r#"{"customers": {"external_id": "cus_1"}}"#,
        r#"{"customer": "cus_1"}"#,
        r#"{"customer": {"external_id": "#,
        "",
    ] {
        let reply = app
            .post_raw("/api/v1/customers", "application/json", body)
            .await;
        reply.assert_status(400);
        let json = reply.json();
        assert_eq!(json["status"], 400, "{body}");
        let error = json["error"].as_str().expect("error string");
        assert!(error.starts_with("BadRequest: "), "{error}");
        assert_eq!(
            json.as_object().expect("object").len(),
            2,
            "only status and error: {json}"
        );
    }
}
