//! CloudEvents ingest on `POST /api/v1/events` (COMPAT §3.1, §3.6, §4).

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

fn cloud(id: &str, subject: &str, tokens: i64) -> Value {
    json!({"specversion": "1.0", "id": id, "source": "llm-gateway", "type": "prompt",
           "subject": subject, "time": "2026-01-01T01:01:01.001Z",
           "data": {"tokens": tokens, "model": "gpt-4"}})
}

async fn setup() -> TestApp {
    let app = spawn_app().await;
    for (slug, aggregation, value) in [
        ("prompts", "COUNT", None),
        ("prompt_tokens", "SUM", Some("$.tokens")),
    ] {
        let mut meter = json!({"slug": slug, "aggregation": aggregation, "eventType": "prompt"});
        if let Some(value) = value {
            meter["valueProperty"] = json!(value);
        }
        app.post_json("/api/v1/meters", &meter, &app.admin_key)
            .await
            .assert_status(201);
    }
    app
}

async fn totals(app: &TestApp) -> (Value, Value) {
    let query = "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z";
    let value = |answer: Value| {
        answer["data"]
            .as_array()
            .expect("data")
            .first()
            .map_or(json!(0), |row| row["value"].clone())
    };
    (
        value(app.query_meter("prompts", query).await),
        value(app.query_meter("prompt_tokens", query).await),
    )
}

async fn post(app: &TestApp, content_type: &str, body: &Value) -> crate::helpers::Reply {
    app.post_raw("/api/v1/events", content_type, body.to_string())
        .await
}

#[tokio::test]
async fn every_content_type_form_is_accepted() {
    let app = setup().await;
    let reply = post(
        &app,
        "application/cloudevents+json",
        &cloud("e1", "cus_a", 1),
    )
    .await;
    reply.assert_status(204);
    assert_eq!(reply.text, "");

    let reply = post(
        &app,
        "application/cloudevents-batch+json",
        &json!([cloud("e2", "cus_a", 2), cloud("e3", "cus_b", 4)]),
    )
    .await;
    reply.assert_status(204);
    assert_eq!(reply.text, "");

    post(
        &app,
        "application/cloudevents+json; charset=utf-8",
        &cloud("e4", "cus_a", 8),
    )
    .await
    .assert_status(204);
    post(
        &app,
        "application/cloudevents-batch+json; charset=utf-8",
        &json!([cloud("e5", "cus_a", 16)]),
    )
    .await
    .assert_status(204);
    // A plain JSON array is CloudEvents too, and so is a plain JSON object with specversion.
    post(&app, "application/json", &json!([cloud("e6", "cus_a", 32)]))
        .await
        .assert_status(204);
    post(&app, "application/json", &cloud("e7", "cus_a", 64))
        .await
        .assert_status(204);

    assert_eq!(totals(&app).await, (json!(7), json!(127)));

    // Stored under (source, id), with type → code, subject → customer, data → properties.
    let reply = app
        .get("/api/v1/events/e3?source=llm-gateway", &app.admin_key)
        .await;
    reply.assert_status(200);
    let event = reply.json()["event"].clone();
    assert_eq!(event["transaction_id"], "e3");
    assert_eq!(event["source"], "llm-gateway");
    assert_eq!(event["code"], "prompt");
    assert_eq!(event["external_customer_id"], "cus_b");
    assert_eq!(event["timestamp"], "2026-01-01T01:01:01.001Z");
    assert_eq!(event["properties"], json!({"tokens": 4, "model": "gpt-4"}));
    // Without the source, a CloudEvent id is not a Lago transaction id.
    app.get("/api/v1/events/e3", &app.admin_key)
        .await
        .assert_status(404);
}

#[tokio::test]
async fn malformed_cloudevents_are_problems() {
    let app = setup().await;
    let mut no_subject = cloud("m1", "x", 1);
    no_subject
        .as_object_mut()
        .expect("object")
        .remove("subject");
    for (content_type, body) in [
        ("application/cloudevents+json", no_subject.clone()),
        (
            "application/cloudevents-batch+json",
            json!([cloud("m0", "cus_a", 1), no_subject]),
        ),
    ] {
        let reply = post(&app, content_type, &body).await;
        reply.assert_status(400);
        assert_eq!(reply.content_type(), "application/problem+json");
        let problem = reply.json();
        assert_eq!(problem["title"], "Bad Request");
        assert_eq!(problem["status"], 400);
        assert_eq!(problem["type"], "about:blank");
        let detail = problem["detail"].as_str().expect("detail");
        assert!(detail.contains("subject"), "{detail}");
    }
    let mut bad_version = cloud("m2", "cus_a", 1);
    bad_version["specversion"] = json!("0.3");
    let mut bad_time = cloud("m3", "cus_a", 1);
    bad_time["time"] = json!("yesterday");
    for (content_type, body) in [
        ("application/cloudevents+json", bad_version),
        ("application/cloudevents+json", bad_time),
        ("application/cloudevents-batch+json", json!([])),
    ] {
        let reply = post(&app, content_type, &body).await;
        reply.assert_status(400);
        assert_eq!(reply.content_type(), "application/problem+json");
    }
    let reply = app
        .post_raw(
            "/api/v1/events",
            "application/cloudevents+json",
            "{not json",
        )
        .await;
    reply.assert_status(400);
    assert_eq!(reply.content_type(), "application/problem+json");

    // Nothing of the refused requests was stored (m0 came with an invalid event).
    app.get("/api/v1/events/m0?source=llm-gateway", &app.admin_key)
        .await
        .assert_status(404);
    assert_eq!(totals(&app).await, (json!(0), json!(0)));
}

#[tokio::test]
async fn conflicts_refuse_the_batch_and_identical_resends_count_once() {
    let app = setup().await;
    post(
        &app,
        "application/cloudevents-batch+json",
        &json!([cloud("c1", "cus_a", 10)]),
    )
    .await
    .assert_status(204);

    // c1 with other data, next to a new event: 409, and the new event is not stored.
    let reply = post(
        &app,
        "application/cloudevents-batch+json",
        &json!([cloud("c2", "cus_a", 20), cloud("c1", "cus_a", 11)]),
    )
    .await;
    reply.assert_status(409);
    assert_eq!(reply.content_type(), "application/problem+json");
    let problem = reply.json();
    assert_eq!(problem["title"], "Conflict");
    assert_eq!(problem["status"], 409);
    app.get("/api/v1/events/c2?source=llm-gateway", &app.admin_key)
        .await
        .assert_status(404);
    let stored = app
        .get("/api/v1/events/c1?source=llm-gateway", &app.admin_key)
        .await
        .json();
    assert_eq!(stored["event"]["properties"]["tokens"], 10);

    // The same id from another source is another event.
    let mut other_source = cloud("c1", "cus_a", 100);
    other_source["source"] = json!("other-service");
    post(&app, "application/cloudevents+json", &other_source)
        .await
        .assert_status(204);

    // Identical resends: 204, counted once.
    for _ in 0..2 {
        post(
            &app,
            "application/cloudevents-batch+json",
            &json!([cloud("c1", "cus_a", 10)]),
        )
        .await
        .assert_status(204);
        post(
            &app,
            "application/cloudevents+json",
            &cloud("c1", "cus_a", 10),
        )
        .await
        .assert_status(204);
    }
    assert_eq!(totals(&app).await, (json!(2), json!(110)));
}
