//! The organization's identifier case: every spelling of a code or property key meets in one metric.

use serde_json::{Value, json};

use crate::helpers::{assert_json, spawn_app};

#[tokio::test]
async fn snake_case_brings_spellings_together() {
    let app = spawn_app().await;
    let reply = app
        .put_json(
            "/api/v1/organizations",
            &json!({"organization": {"identifier_case": "snake_case"}}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(200);
    assert_eq!(
        reply.json()["organization"]["identifier_case"],
        "snake_case"
    );
    let org = app.get("/api/v1/organizations", &app.read_key).await.json();
    assert_eq!(org["organization"]["identifier_case"], "snake_case");

    let reply = app
        .put_json(
            "/api/v1/organizations",
            &json!({"organization": {"identifier_case": "SpOnGeBoB"}}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(422);
    assert_json(
        &reply.json()["error_details"],
        &json!({"identifier_case": ["value_is_invalid"]}),
    );

    app.create_customer("cus_1").await;
    let metric = app
        .create_metric(json!({"name": "Input tokens", "code": "inputTokens", "aggregation_type": "sum_agg", "field_name": "inputTokens"}))
        .await;
    assert_eq!(metric["code"], "input_tokens");
    assert_eq!(metric["field_name"], "input_tokens");
    // Any spelling finds it.
    for spelling in ["inputTokens", "Input-Tokens", "input_tokens"] {
        let reply = app
            .get(
                &format!("/api/v1/billable_metrics/{spelling}"),
                &app.admin_key,
            )
            .await;
        reply.assert_status(200);
        assert_eq!(reply.json()["billable_metric"]["code"], "input_tokens");
    }

    let sent = [
        (
            "t1",
            "inputTokens",
            json!({"inputTokens": 1, "modelName": "m"}),
        ),
        ("t2", "Input-Tokens", json!({"Input-Tokens": "2"})),
        ("t3", "input_tokens", json!({"input_tokens": 4})),
    ];
    for (id, code, properties) in &sent {
        let event = app
            .send_event(
                json!({"transaction_id": id, "external_customer_id": "cus_1", "code": code,
                               "timestamp": 1767225600, "properties": properties}),
            )
            .await;
        assert_eq!(event["code"], "input_tokens", "{id}");
        assert_eq!(event["billable"], true, "{id}: {event}");
    }

    let answer = app
        .query_meter(
            "inputTokens",
            "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
        )
        .await;
    assert_eq!(answer["data"][0]["value"], 7, "{answer}");

    let t1 = app.get("/api/v1/events/t1", &app.admin_key).await.json()["event"].clone();
    assert_eq!(t1["code"], "input_tokens");
    assert_eq!(
        t1["properties"],
        json!({"input_tokens": 1, "model_name": "m"})
    );
    assert_json(
        &t1["original"],
        &json!({"code": "inputTokens", "properties": {"inputTokens": 1, "modelName": "m"}}),
    );
    let t2 = app.get("/api/v1/events/t2", &app.admin_key).await.json()["event"].clone();
    assert_json(
        &t2["original"],
        &json!({"code": "Input-Tokens", "properties": {"Input-Tokens": "2"}}),
    );
    let t3 = app.get("/api/v1/events/t3", &app.admin_key).await.json()["event"].clone();
    assert_eq!(t3["original"], Value::Null, "nothing was rewritten");

    // Listing by code accepts any spelling too.
    let list = app
        .get("/api/v1/events?code=inputTokens", &app.admin_key)
        .await
        .json();
    assert_eq!(list["meta"]["total_count"], 3);
}
