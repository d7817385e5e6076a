//! OpenMeter meters: creation, conflicts, listing, lookup by slug or id, query validation and range
//! edges finer than a minute (COMPAT §3.2, §3.3).

use serde_json::{Value, json};

use crate::helpers::{assert_json, spawn_app};
use crate::meter_query::{row, setup};

#[tokio::test]
async fn meters_are_created_once_and_listed() {
    let app = setup().await;
    let reply = app
        .post_json(
            "/api/v1/meters",
            &json!({"slug": "tokens_total", "aggregation": "COUNT", "eventType": "other"}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(409);
    assert_eq!(reply.content_type(), "application/problem+json");
    assert_eq!(reply.json()["title"], "Conflict");

    for invalid in [
        json!({"aggregation": "SUM", "eventType": "prompt", "valueProperty": "$.tokens"}),
        json!({"slug": "Bad-Slug", "aggregation": "COUNT", "eventType": "prompt"}),
        json!({"slug": "s1", "aggregation": "MEDIAN", "eventType": "prompt"}),
        json!({"slug": "s2", "aggregation": "SUM", "eventType": "prompt"}),
        json!({"slug": "s3", "aggregation": "COUNT", "eventType": "prompt", "valueProperty": "$.tokens"}),
        json!({"slug": "s4", "aggregation": "SUM", "eventType": "prompt", "valueProperty": "tokens"}),
    ] {
        let reply = app
            .post_json("/api/v1/meters", &invalid, &app.admin_key)
            .await;
        reply.assert_status(400);
        assert_eq!(
            reply.content_type(),
            "application/problem+json",
            "{invalid}"
        );
    }

    let reply = app.get("/api/v1/meters", &app.read_key).await;
    reply.assert_status(200);
    let meters = reply.json();
    let slugs: Vec<&str> = meters
        .as_array()
        .expect("a plain array")
        .iter()
        .map(|m| m["slug"].as_str().expect("slug"))
        .collect();
    assert_eq!(slugs, ["tokens_total"]);

    // By slug and by id.
    let by_slug = app
        .get("/api/v1/meters/tokens_total", &app.read_key)
        .await
        .json();
    let id = by_slug["id"].as_str().expect("id").to_owned();
    let by_id = app
        .get(&format!("/api/v1/meters/{id}"), &app.read_key)
        .await
        .json();
    assert_json(&by_id, &by_slug);
    let by_id_query = app
        .query_meter(&id, "from=2026-01-15T00:00:00Z&to=2026-01-15T12:00:00Z")
        .await;
    assert_eq!(by_id_query["data"][0]["value"], 7);
}

#[tokio::test]
async fn invalid_queries_are_refused() {
    let app = setup().await;
    for query in [
        "from=2026-01-14T00:00:00Z&to=2026-01-15T00:00:00Z&groupBy=region",
        "from=2026-01-15T00:00:00Z&to=2026-01-15T00:00:00Z",
        "from=2026-01-16T00:00:00Z&to=2026-01-15T00:00:00Z",
        "from=yesterday&to=2026-01-15T00:00:00Z",
        "from=2026-01-14T00:00:00Z&to=2026-01-15T00:00:00Z&windowSize=WEEK",
        "from=2026-01-14T00:00:00Z&to=2026-01-15T00:00:00Z&windowSize=DAY&windowTimeZone=Mars/Base",
        "from=2026-01-14T00:00:00Z&to=2026-01-15T00:00:00Z&filterGroupBy[region]=eu",
    ] {
        let reply = app
            .get(
                &format!("/api/v1/meters/tokens_total/query?{query}"),
                &app.admin_key,
            )
            .await;
        reply.assert_status(400);
        assert_eq!(reply.content_type(), "application/problem+json", "{query}");
        assert_eq!(reply.json()["title"], "Bad Request");
    }
    let reply = app
        .get(
            "/api/v1/meters/nothing/query?from=2026-01-14T00:00:00Z",
            &app.admin_key,
        )
        .await;
    reply.assert_status(404);
    assert_eq!(reply.content_type(), "application/problem+json");
}

#[tokio::test]
async fn sub_minute_range_edges_count_only_events_inside() {
    let app = spawn_app().await;
    app.post_json(
        "/api/v1/meters",
        &json!({"slug": "edge", "aggregation": "SUM", "eventType": "edge", "valueProperty": "$.n"}),
        &app.admin_key,
    )
    .await
    .assert_status(201);
    let events: Vec<Value> = [
        ("12:00:10", 1),   // before from
        ("12:00:30", 2),   // at from: inside
        ("12:00:40", 4),   // inside
        ("12:01:20", 8),   // inside
        ("12:05:50", 16),  // inside
        ("12:05:55", 32),  // at to: outside
        ("12:06:10", 64),  // after to
        ("13:00:00", 128), // after to
    ]
    .iter()
    .map(|(time, n)| {
        json!({"specversion": "1.0", "id": time, "source": "s", "type": "edge", "subject": "a",
               "time": format!("2026-01-20T{time}Z"), "data": {"n": n}})
    })
    .collect();
    app.post_raw(
        "/api/v1/events",
        "application/cloudevents-batch+json",
        Value::Array(events).to_string(),
    )
    .await
    .assert_status(204);

    let answer = app
        .query_meter("edge", "from=2026-01-20T12:00:30Z&to=2026-01-20T12:05:55Z")
        .await;
    assert_eq!(answer["data"][0]["value"], 30, "{answer}");

    let answer = app
        .query_meter(
            "edge",
            "from=2026-01-20T12:00:30Z&to=2026-01-20T12:05:55Z&windowSize=MINUTE",
        )
        .await;
    assert_json(
        &answer["data"],
        &json!([
            row(
                6,
                "2026-01-20T12:00:30Z",
                "2026-01-20T12:01:00Z",
                Value::Null,
                json!({})
            ),
            row(
                8,
                "2026-01-20T12:01:00Z",
                "2026-01-20T12:02:00Z",
                Value::Null,
                json!({})
            ),
            row(
                16,
                "2026-01-20T12:05:00Z",
                "2026-01-20T12:05:55Z",
                Value::Null,
                json!({})
            ),
        ]),
    );

    // Whole hours come from hourly rollups; edges from minutes and raw events.
    let answer = app
        .query_meter("edge", "from=2026-01-20T11:59:59Z&to=2026-01-20T13:00:01Z")
        .await;
    assert_eq!(answer["data"][0]["value"], 255, "{answer}");
    let answer = app
        .query_meter(
            "edge",
            "from=2026-01-20T12:00:10.000001Z&to=2026-01-20T13:00:00Z",
        )
        .await;
    assert_eq!(answer["data"][0]["value"], 126, "{answer}");
}
