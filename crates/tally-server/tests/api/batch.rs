//! Lago batches: all or nothing, per-index errors, safe retries and size limits (COMPAT §2.5, §4).

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_json, spawn_app, validation_error};

fn event(id: &str, n: i64) -> Value {
    json!({"transaction_id": id, "external_customer_id": "cus_1", "code": "calls",
           "timestamp": 1767225600 + n, "properties": {"n": n}})
}

async fn batch(app: &TestApp, events: Vec<Value>) -> crate::helpers::Reply {
    app.post_json(
        "/api/v1/events/batch",
        &json!({ "events": events }),
        &app.admin_key,
    )
    .await
}

async fn assert_absent(app: &TestApp, ids: &[&str]) {
    for id in ids {
        app.get(&format!("/api/v1/events/{id}"), &app.admin_key)
            .await
            .assert_status(404);
    }
}

async fn total(app: &TestApp) -> Value {
    app.get("/api/v1/events", &app.admin_key).await.json()["meta"]["total_count"].clone()
}

#[tokio::test]
async fn an_invalid_event_refuses_the_whole_batch() {
    let app = spawn_app().await;
    let mut invalid = event("b-1", 1);
    invalid.as_object_mut().expect("object").remove("code");
    let reply = batch(&app, vec![event("b-0", 0), invalid, event("b-2", 2)]).await;
    reply.assert_status(422);
    assert_json(
        &reply.json(),
        &validation_error(json!({"1": {"code": ["value_is_mandatory"]}})),
    );
    assert_absent(&app, &["b-0", "b-1", "b-2"]).await;

    // Several invalid events are all reported.
    let mut bad_time = event("b-2", 2);
    bad_time["timestamp"] = json!("soon");
    let reply = batch(
        &app,
        vec![json!("not an object"), event("b-1", 1), bad_time],
    )
    .await;
    reply.assert_status(422);
    assert_json(
        &reply.json(),
        &validation_error(
            json!({"0": {"event": ["invalid_format"]}, "2": {"timestamp": ["invalid_format"]}}),
        ),
    );
    assert_absent(&app, &["b-1", "b-2"]).await;
    assert_eq!(total(&app).await, 0);
}

#[tokio::test]
async fn a_conflict_with_a_stored_event_refuses_the_whole_batch() {
    let app = spawn_app().await;
    app.create_metric(json!({"name": "Calls", "code": "calls", "aggregation_type": "count_agg"}))
        .await;
    let stored = app.send_event(event("c-1", 1)).await;

    let reply = batch(
        &app,
        vec![event("c-0", 0), event("c-2", 2), event("c-1", 99)],
    )
    .await;
    reply.assert_status(422);
    assert_json(
        &reply.json(),
        &validation_error(json!({"2": {"transaction_id": ["value_already_exist"]}})),
    );
    assert_absent(&app, &["c-0", "c-2"]).await;
    let reply = app.get("/api/v1/events/c-1", &app.admin_key).await;
    assert_json(&reply.json()["event"], &stored);

    // A conflict inside one batch (same id, two payloads) is refused the same way.
    let reply = batch(&app, vec![event("d-0", 0), event("d-0", 5)]).await;
    reply.assert_status(422);
    assert_json(
        &reply.json(),
        &validation_error(json!({"1": {"transaction_id": ["value_already_exist"]}})),
    );
    assert_absent(&app, &["d-0"]).await;
    assert_eq!(total(&app).await, 1);

    // The refused batches left nothing in the usage either.
    let answer = app
        .query_meter("calls", "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z")
        .await;
    assert_eq!(
        answer["data"],
        json!([{"value": 1, "windowStart": "2026-01-01T00:00:00Z",
        "windowEnd": "2026-01-02T00:00:00Z", "subject": null, "groupBy": {}}])
    );
}

#[tokio::test]
async fn retrying_a_stored_batch_succeeds_and_changes_nothing() {
    let app = spawn_app().await;
    app.create_metric(json!({"name": "Calls", "code": "calls", "aggregation_type": "count_agg"}))
        .await;
    let events = vec![event("r-0", 0), event("r-1", 1), event("r-2", 2)];
    let reply = batch(&app, events.clone()).await;
    reply.assert_status(200);
    let first = reply.json();
    let ids: Vec<&str> = first["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["transaction_id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["r-0", "r-1", "r-2"], "answered in input order");

    let reply = batch(&app, events.clone()).await;
    reply.assert_status(200);
    assert_json(&reply.json(), &first);

    // A retry that adds a new event stores only the new one.
    let mut more = events;
    more.push(event("r-3", 3));
    let reply = batch(&app, more).await;
    reply.assert_status(200);
    assert_eq!(reply.json()["events"].as_array().expect("events").len(), 4);
    assert_json(&reply.json()["events"][0], &first["events"][0]);

    assert_eq!(total(&app).await, 4);
    let answer = app
        .query_meter("calls", "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z")
        .await;
    assert_eq!(answer["data"][0]["value"], 4);
}

#[tokio::test]
async fn batches_hold_one_to_a_hundred_events() {
    let app = spawn_app().await;
    let reply = batch(&app, vec![]).await;
    reply.assert_status(422);
    assert_json(
        &reply.json(),
        &validation_error(json!({"events": ["no_events"]})),
    );

    let many: Vec<Value> = (0..101).map(|i| event(&format!("m-{i}"), i)).collect();
    let reply = batch(&app, many.clone()).await;
    reply.assert_status(422);
    assert_json(
        &reply.json(),
        &validation_error(json!({"events": ["too_many_events"]})),
    );
    assert_eq!(total(&app).await, 0);

    let reply = batch(&app, many[..100].to_vec()).await;
    reply.assert_status(200);
    assert_eq!(total(&app).await, 100);

    // No "events" key at all.
    let reply = app
        .post_json(
            "/api/v1/events/batch",
            &json!({"event": event("x", 0)}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(400);
}

#[tokio::test]
async fn post_events_with_an_events_root_is_a_batch() {
    let app = spawn_app().await;
    let reply = app
        .post_json(
            "/api/v1/events",
            &json!({"events": [event("e-0", 0), event("e-1", 1)]}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(200);
    assert_eq!(reply.json()["events"].as_array().expect("events").len(), 2);
    assert_eq!(total(&app).await, 2);
}
