//! Events that cannot be billed are stored, listed with their reason, and become billable once the
//! cause is fixed (COMPAT §3.6, §4).

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

async fn unbillable(app: &TestApp) -> Vec<(String, String)> {
    let reply = app
        .get("/api/v1/events?billable=false", &app.read_key)
        .await;
    reply.assert_status(200);
    let list = reply.json();
    let events = list["events"].as_array().expect("events");
    assert_eq!(list["meta"]["total_count"], events.len());
    let mut found: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            assert_eq!(e["billable"], false);
            (
                e["transaction_id"].as_str().expect("id").to_owned(),
                e["billing_issue"]["code"]
                    .as_str()
                    .expect("issue code")
                    .to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test]
async fn unbillable_events_are_kept_listed_and_billed_once_fixed() {
    let app = spawn_app().await;
    app.create_customer("cus_known").await;
    app.create_metric(json!({"name": "Tokens", "code": "tokens", "aggregation_type": "sum_agg", "field_name": "n"}))
        .await;
    let send = |id: &'static str, customer: &'static str, code: &'static str, properties: Value| {
        let app = &app;
        async move {
            app.send_event(json!({
                "transaction_id": id, "external_customer_id": customer, "code": code,
                "timestamp": 1767225600, "properties": properties,
            }))
            .await
        }
    };
    let ok = send("ok", "cus_known", "tokens", json!({"n": 1})).await;
    assert_eq!(ok["billable"], true);
    let unknown_code = send("u-code", "cus_known", "gpu_seconds", json!({"s": "2.5"})).await;
    assert_eq!(unknown_code["billable"], false);
    assert_eq!(unknown_code["billing_issue"]["code"], "unknown_code");
    let unknown_customer = send("u-cus", "cus_later", "tokens", json!({"n": 10})).await;
    assert_eq!(
        unknown_customer["billing_issue"]["code"],
        "customer_not_found"
    );
    let bad_property = send("u-prop", "cus_known", "tokens", json!({"n": "lots"})).await;
    assert_eq!(bad_property["billing_issue"]["code"], "invalid_property");
    let detail = bad_property["billing_issue"]["detail"]
        .as_str()
        .expect("detail");
    assert!(detail.contains("$.n"), "{detail}");

    // Each is stored and can be read back.
    for id in ["u-code", "u-cus", "u-prop"] {
        app.get(&format!("/api/v1/events/{id}"), &app.admin_key)
            .await
            .assert_status(200);
    }
    assert_eq!(
        unbillable(&app).await,
        pairs(&[
            ("u-code", "unknown_code"),
            ("u-cus", "customer_not_found"),
            ("u-prop", "invalid_property"),
        ])
    );
    let billable = app
        .get("/api/v1/events?billable=true", &app.admin_key)
        .await
        .json();
    assert_eq!(billable["meta"]["total_count"], 1);
    assert_eq!(billable["events"][0]["transaction_id"], "ok");

    // Metering does not depend on billing: the unknown customer's usage is metered already.
    let answer = app
        .query_meter(
            "tokens",
            "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&groupBy=subject",
        )
        .await;
    assert_eq!(
        answer["data"].as_array().expect("data").len(),
        2,
        "{answer}"
    );
    assert_eq!(answer["data"][0]["subject"], "cus_known");
    assert_eq!(answer["data"][0]["value"], 1);
    assert_eq!(answer["data"][1]["subject"], "cus_later");
    assert_eq!(answer["data"][1]["value"], 10);

    // The customer arrives.
    app.create_customer("cus_later").await;
    assert_eq!(
        unbillable(&app).await,
        pairs(&[("u-code", "unknown_code"), ("u-prop", "invalid_property")])
    );
    let event = app.get("/api/v1/events/u-cus", &app.admin_key).await.json();
    assert_eq!(event["event"]["billable"], true);
    assert_eq!(event["event"]["billing_issue"], Value::Null);

    // The metric arrives, and counts the event stored before it.
    app.create_metric(json!({"name": "GPU", "code": "gpu_seconds", "aggregation_type": "sum_agg", "field_name": "s"}))
        .await;
    assert_eq!(
        unbillable(&app).await,
        pairs(&[("u-prop", "invalid_property")])
    );
    let answer = app
        .query_meter(
            "gpu_seconds",
            "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
        )
        .await;
    assert_eq!(answer["data"][0]["value"], crate::helpers::number("2.5"));
    let event = app
        .get("/api/v1/events/u-code", &app.admin_key)
        .await
        .json();
    assert_eq!(event["event"]["billable"], true);
}

#[tokio::test]
async fn a_new_metric_on_an_unknown_customer_reports_the_customer() {
    let app = spawn_app().await;
    let event = app
        .send_event(
            json!({"transaction_id": "x", "external_customer_id": "nobody", "code": "calls"}),
        )
        .await;
    assert_eq!(event["billing_issue"]["code"], "unknown_code");
    app.create_metric(json!({"name": "Calls", "code": "calls", "aggregation_type": "count_agg"}))
        .await;
    assert_eq!(
        unbillable(&app).await,
        pairs(&[("x", "customer_not_found")])
    );
    // A bad filter value is refused.
    app.get("/api/v1/events?billable=maybe", &app.admin_key)
        .await
        .assert_status(400);
}

#[tokio::test]
async fn events_name_their_customer_once_it_exists() {
    let app = spawn_app().await;
    let event = |id: &str| json!({"event": {"transaction_id": id, "external_customer_id": "cus_42", "code": "calls"}});
    let before = app
        .post_json("/api/v1/events", &event("e1"), &app.admin_key)
        .await;
    before.assert_status(200);
    assert_eq!(before.json()["event"]["lago_customer_id"], Value::Null);

    let customer = app
        .post_json(
            "/api/v1/customers",
            &json!({"customer": {"external_id": "cus_42"}}),
            &app.admin_key,
        )
        .await;
    customer.assert_status(200);
    let lago_id = customer.json()["customer"]["lago_id"].clone();
    assert!(lago_id.is_string());

    let after = app
        .post_json("/api/v1/events", &event("e2"), &app.admin_key)
        .await;
    after.assert_status(200);
    assert_eq!(after.json()["event"]["lago_customer_id"], lago_id);
    // Events stored before the customer existed name it too when read back.
    let first = app.get("/api/v1/events/e1", &app.read_key).await;
    first.assert_status(200);
    assert_eq!(first.json()["event"]["lago_customer_id"], lago_id);
}

#[tokio::test]
async fn events_naming_a_subscription_belong_to_its_customer() {
    let app = spawn_app().await;
    app.create_metric(json!({"name": "Calls", "code": "calls", "aggregation_type": "count_agg"}))
        .await;
    let early = app
        .post_json("/api/v1/events", &json!({"event": {"transaction_id": "e1", "external_subscription_id": "sub_9", "code": "calls"}}), &app.admin_key)
        .await;
    early.assert_status(200);
    assert_eq!(
        early.json()["event"]["billing_issue"]["code"],
        "subscription_not_found"
    );

    let plan = json!({"plan": {"name": "p", "code": "p", "interval": "monthly", "amount_cents": 0, "amount_currency": "USD", "pay_in_advance": false}});
    app.post_json("/api/v1/plans", &plan, &app.admin_key)
        .await
        .assert_status(200);
    app.post_json("/api/v1/subscriptions", &json!({"subscription": {"external_customer_id": "cus_9", "plan_code": "p", "external_id": "sub_9"}}), &app.admin_key)
        .await
        .assert_status(200);

    // The early event is billable now and names the customer.
    let fixed = app.get("/api/v1/events/e1", &app.read_key).await.json()["event"].clone();
    assert_eq!(fixed["billable"], true);
    assert_eq!(fixed["external_customer_id"], "cus_9");
    let later = app
        .post_json("/api/v1/events", &json!({"event": {"transaction_id": "e2", "external_subscription_id": "sub_9", "code": "calls"}}), &app.admin_key)
        .await;
    later.assert_status(200);
    assert_eq!(later.json()["event"]["billable"], true);
    assert_eq!(later.json()["event"]["external_customer_id"], "cus_9");
    assert!(later.json()["event"]["lago_customer_id"].is_string());
}
