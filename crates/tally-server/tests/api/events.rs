//! Lago single events: idempotency, conflicts, timestamp forms and validation (COMPAT §1.7, §2.5, §4).

use serde_json::{Value, json};

use crate::helpers::{assert_json, number, parse, spawn_app, validation_error};

#[tokio::test]
async fn identical_resends_are_accepted_once_and_conflicts_are_refused() {
    let app = spawn_app().await;
    app.create_customer("cus_1").await;
    app.create_metric(json!({"name": "Tokens", "code": "tokens", "aggregation_type": "sum_agg", "field_name": "n"}))
        .await;
    let event = json!({
        "transaction_id": "tx-1", "external_customer_id": "cus_1", "code": "tokens",
        "timestamp": 1767225600, "properties": {"n": "7", "model": "m1"},
    });
    let first = app.send_event(event.clone()).await;
    assert_eq!(first["transaction_id"], "tx-1");
    assert_eq!(first["external_customer_id"], "cus_1");
    assert_eq!(first["code"], "tokens");
    assert_eq!(first["timestamp"], "2026-01-01T00:00:00.000Z");
    assert_eq!(first["properties"], json!({"n": "7", "model": "m1"}));
    assert_eq!(first["billable"], true);
    assert_eq!(first["billing_issue"], Value::Null);
    assert!(uuid::Uuid::parse_str(first["lago_id"].as_str().expect("lago_id")).is_ok());

    // The same event again (property order changed): 200 with the stored event.
    let again = app
        .send_event(json!({
            "transaction_id": "tx-1", "external_customer_id": "cus_1", "code": "tokens",
            "timestamp": 1767225600, "properties": {"model": "m1", "n": "7"},
        }))
        .await;
    assert_json(&again, &first);

    // Same transaction id, another payload: refused, stored event untouched.
    for changed in [
        json!({"transaction_id": "tx-1", "external_customer_id": "cus_1", "code": "tokens",
               "timestamp": 1767225600, "properties": {"n": "8", "model": "m1"}}),
        json!({"transaction_id": "tx-1", "external_customer_id": "cus_1", "code": "tokens",
               "timestamp": 1767225601, "properties": {"n": "7", "model": "m1"}}),
        json!({"transaction_id": "tx-1", "external_customer_id": "cus_2", "code": "tokens",
               "timestamp": 1767225600, "properties": {"n": "7", "model": "m1"}}),
    ] {
        let reply = app
            .post_json(
                "/api/v1/events",
                &json!({ "event": changed }),
                &app.admin_key,
            )
            .await;
        reply.assert_status(422);
        assert_json(
            &reply.json(),
            &validation_error(json!({"transaction_id": ["value_already_exist"]})),
        );
    }
    let reply = app.get("/api/v1/events/tx-1", &app.read_key).await;
    reply.assert_status(200);
    assert_json(&reply.json()["event"], &first);

    // Counted once.
    let answer = app
        .query_meter(
            "tokens",
            "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
        )
        .await;
    assert_json(&answer["data"][0]["value"], &number("7"));
    let list = app.get("/api/v1/events", &app.admin_key).await.json();
    assert_eq!(list["meta"]["total_count"], 1);
}

#[tokio::test]
async fn an_event_without_timestamp_is_a_duplicate_when_resent() {
    let app = spawn_app().await;
    let event =
        json!({"transaction_id": "tx-now", "external_customer_id": "cus_1", "code": "calls"});
    let first = app.send_event(event.clone()).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let again = app.send_event(event).await;
    assert_json(&again, &first);
}

#[tokio::test]
async fn timestamps_in_every_lago_form_are_kept_to_the_microsecond() {
    let app = spawn_app().await;
    app.create_metric(json!({"name": "Calls", "code": "calls", "aggregation_type": "count_agg"}))
        .await;
    // 1651240791 = 2022-04-29T13:59:51Z.
    let cases = [
        ("t-int", "1651240791", "2022-04-29T13:59:51.000Z"),
        ("t-frac", "1651240792.123456", "2022-04-29T13:59:52.123Z"),
        ("t-str", "\"1651240793.5\"", "2022-04-29T13:59:53.500Z"),
        (
            "t-rfc",
            "\"2022-04-29T15:59:54.250001+02:00\"",
            "2022-04-29T13:59:54.250Z",
        ),
    ];
    for (id, timestamp, shown) in cases {
        let body = format!(
            r#"{{"event": {{"transaction_id": "{id}", "external_customer_id": "cus_1", "code": "calls", "timestamp": {timestamp}}}}}"#
        );
        let reply = app.post_text("/api/v1/events", &body).await;
        reply.assert_status(200);
        assert_eq!(reply.json()["event"]["timestamp"], shown, "{id}");
        let reply = app
            .get(&format!("/api/v1/events/{id}"), &app.admin_key)
            .await;
        reply.assert_status(200);
        assert_eq!(reply.json()["event"]["timestamp"], shown, "{id}");
    }

    // The microseconds are stored: a range starting one microsecond after an event excludes it.
    let count = |from: &'static str, to: &'static str| {
        let app = &app;
        async move {
            let answer = app
                .query_meter("calls", &format!("from={from}&to={to}"))
                .await;
            answer["data"]
                .as_array()
                .expect("data")
                .first()
                .map(|row| row["value"].clone())
                .unwrap_or(json!(0))
        }
    };
    assert_json(
        &count("2022-04-29T13:59:52.123456Z", "2022-04-29T13:59:52.123457Z").await,
        &number("1"),
    );
    assert_json(
        &count("2022-04-29T13:59:52.123457Z", "2022-04-29T13:59:53Z").await,
        &json!(0),
    );
    assert_json(
        &count("2022-04-29T13:59:54.250001Z", "2022-04-29T13:59:54.250002Z").await,
        &number("1"),
    );
    assert_json(
        &count("2022-04-29T13:59:54.25Z", "2022-04-29T13:59:54.250001Z").await,
        &json!(0),
    );
    assert_json(
        &count("2022-04-29T13:59:51Z", "2022-04-29T13:59:55Z").await,
        &number("4"),
    );
}

#[tokio::test]
async fn malformed_events_are_refused_by_field() {
    let app = spawn_app().await;
    let cases: [(Value, Value); 7] = [
        (
            json!({"transaction_id": "a", "external_customer_id": "c", "code": "x", "timestamp": "yesterday"}),
            json!({"timestamp": ["invalid_format"]}),
        ),
        (
            json!({"transaction_id": "a", "external_customer_id": "c", "code": "x", "timestamp": true}),
            json!({"timestamp": ["invalid_format"]}),
        ),
        (
            json!({"transaction_id": "a", "external_customer_id": "c", "code": "x", "timestamp": -1}),
            json!({"timestamp": ["invalid_format"]}),
        ),
        (
            json!({"transaction_id": "a", "external_customer_id": "c"}),
            json!({"code": ["value_is_mandatory"]}),
        ),
        (
            json!({"transaction_id": "a", "external_customer_id": "c", "code": ""}),
            json!({"code": ["value_is_mandatory"]}),
        ),
        (
            json!({"external_customer_id": "c", "code": "x"}),
            json!({"transaction_id": ["value_is_mandatory"]}),
        ),
        (
            json!({"transaction_id": "a", "external_customer_id": "c", "code": "x", "properties": [1]}),
            json!({"properties": ["invalid_format"]}),
        ),
    ];
    for (event, details) in cases {
        let reply = app
            .post_json("/api/v1/events", &json!({ "event": event }), &app.admin_key)
            .await;
        reply.assert_status(422);
        assert_json(&reply.json(), &validation_error(details));
    }
    // None was stored.
    let reply = app.get("/api/v1/events/a", &app.admin_key).await;
    reply.assert_status(404);
    assert_json(
        &reply.json(),
        &json!({"status": 404, "error": "Not Found", "code": "event_not_found"}),
    );
    let list = app.get("/api/v1/events", &app.admin_key).await.json();
    assert_eq!(list["meta"]["total_count"], 0);

    // A body that is not a Lago event at all.
    let reply = app.post_text("/api/v1/events", r#"{"evnt": {}}"#).await;
    reply.assert_status(400);
    let reply = app.post_text("/api/v1/events", "not json").await;
    reply.assert_status(400);
    assert_eq!(reply.content_type(), "application/json");
}

#[tokio::test]
async fn numbers_in_properties_keep_their_text() {
    let app = spawn_app().await;
    let reply = app
        .post_text(
            "/api/v1/events",
            r#"{"event": {"transaction_id": "p1", "external_customer_id": "c", "code": "x",
                "properties": {"n": 123456789.123456789123, "small": 1e-3}}}"#,
        )
        .await;
    reply.assert_status(200);
    let stored = app.get("/api/v1/events/p1", &app.admin_key).await.json();
    assert_json(
        &stored["event"]["properties"],
        &parse(r#"{"n": 123456789.123456789123, "small": 1e-3}"#),
    );
}
