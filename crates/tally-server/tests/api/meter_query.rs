//! OpenMeter meters and queries: windows in a time zone, daylight-saving changes, groups, subjects and
//! range edges (COMPAT §3.2, §3.3).

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_json, spawn_app};

fn cloud(id: &str, time: &str, subject: &str, model: &str, tokens: i64) -> Value {
    json!({"specversion": "1.0", "id": id, "source": "gw", "type": "prompt", "subject": subject,
           "time": time, "data": {"tokens": tokens, "model": model}})
}

/// Starts a server with the `tokens_total` meter (SUM of `$.tokens` by `model`) and its events.
pub async fn setup() -> TestApp {
    let app = spawn_app().await;
    let reply = app
        .post_json(
            "/api/v1/meters",
            &json!({"slug": "tokens_total", "aggregation": "SUM", "eventType": "prompt",
                    "valueProperty": "$.tokens", "groupBy": {"model": "$.model"},
                    "description": "Tokens by model"}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(201);
    let meter = reply.json();
    assert_eq!(meter["slug"], "tokens_total");
    assert_eq!(meter["name"], "tokens_total");
    assert_eq!(meter["aggregation"], "SUM");
    assert_eq!(meter["eventType"], "prompt");
    assert_eq!(meter["valueProperty"], "$.tokens");
    assert_eq!(meter["groupBy"], json!({"model": "$.model"}));
    assert_eq!(meter["description"], "Tokens by model");
    assert_eq!(meter["id"].as_str().expect("id").len(), 26, "a ULID");

    let events = json!([
        // Around Paris midnight (UTC+1 in January).
        cloud("p1", "2026-01-14T22:30:00Z", "a", "m1", 10), // 14th, 23:30 Paris
        cloud("p2", "2026-01-14T23:30:00Z", "b", "m1", 5),  // 15th, 00:30 Paris
        cloud("p3", "2026-01-15T10:00:00Z", "a", "m2", 7),  // 15th
        cloud("p4", "2026-01-15T22:59:59Z", "c", "m1", 1),  // 15th, 23:59:59 Paris
        cloud("p5", "2026-01-15T23:00:00Z", "b", "m2", 2),  // 16th, 00:00 Paris
        // Around the end of summer time (2026-10-25, 03:00 +02:00 → 02:00 +01:00).
        cloud("d1", "2026-10-24T22:30:00Z", "a", "m1", 100), // 25th, 00:30 +02:00
        cloud("d2", "2026-10-25T00:30:00Z", "a", "m1", 200), // 25th, 02:30 +02:00
        cloud("d3", "2026-10-25T01:30:00Z", "a", "m1", 400), // 25th, 02:30 +01:00
        cloud("d4", "2026-10-25T22:30:00Z", "a", "m1", 800), // 25th, 23:30 +01:00
        cloud("d5", "2026-10-25T23:30:00Z", "a", "m1", 1600), // 26th, 00:30 +01:00
        // Without a model.
        json!({"specversion": "1.0", "id": "n1", "source": "gw", "type": "prompt", "subject": "a",
               "time": "2026-03-01T00:00:00Z", "data": {"tokens": 3}}),
    ]);
    app.post_raw(
        "/api/v1/events",
        "application/cloudevents-batch+json",
        events.to_string(),
    )
    .await
    .assert_status(204);
    app
}

/// One row of a query answer.
pub fn row(value: i64, start: &str, end: &str, subject: Value, group: Value) -> Value {
    json!({"value": value, "windowStart": start, "windowEnd": end, "subject": subject, "groupBy": group})
}

#[tokio::test]
async fn day_windows_follow_the_time_zone_and_group_by() {
    let app = setup().await;
    let answer = app
        .query_meter(
            "tokens_total",
            "from=2026-01-13T23:00:00Z&to=2026-01-16T23:00:00Z&windowSize=DAY&windowTimeZone=Europe/Paris&groupBy=model",
        )
        .await;
    assert_json(
        &answer,
        &json!({
            "from": "2026-01-13T23:00:00Z",
            "to": "2026-01-16T23:00:00Z",
            "windowSize": "DAY",
            "data": [
                row(10, "2026-01-14T00:00:00+01:00", "2026-01-15T00:00:00+01:00", Value::Null, json!({"model": "m1"})),
                row(6, "2026-01-15T00:00:00+01:00", "2026-01-16T00:00:00+01:00", Value::Null, json!({"model": "m1"})),
                row(7, "2026-01-15T00:00:00+01:00", "2026-01-16T00:00:00+01:00", Value::Null, json!({"model": "m2"})),
                row(2, "2026-01-16T00:00:00+01:00", "2026-01-17T00:00:00+01:00", Value::Null, json!({"model": "m2"})),
            ],
        }),
    );

    // The same days in UTC cut elsewhere: p1 and p2 fall on the 14th, p5 on the 15th.
    let answer = app
        .query_meter(
            "tokens_total",
            "from=2026-01-14T00:00:00Z&to=2026-01-17T00:00:00Z&windowSize=DAY",
        )
        .await;
    assert_json(
        &answer["data"],
        &json!([
            row(
                15,
                "2026-01-14T00:00:00Z",
                "2026-01-15T00:00:00Z",
                Value::Null,
                json!({})
            ),
            row(
                10,
                "2026-01-15T00:00:00Z",
                "2026-01-16T00:00:00Z",
                Value::Null,
                json!({})
            ),
        ]),
    );

    // The day summer time ends lasts 25 hours.
    let answer = app
        .query_meter(
            "tokens_total",
            "from=2026-10-24T22:00:00Z&to=2026-10-26T23:00:00Z&windowSize=DAY&windowTimeZone=Europe/Paris",
        )
        .await;
    assert_json(
        &answer["data"],
        &json!([
            row(
                1500,
                "2026-10-25T00:00:00+02:00",
                "2026-10-26T00:00:00+01:00",
                Value::Null,
                json!({})
            ),
            row(
                1600,
                "2026-10-26T00:00:00+01:00",
                "2026-10-27T00:00:00+01:00",
                Value::Null,
                json!({})
            ),
        ]),
    );
}

#[tokio::test]
async fn hour_windows_follow_the_time_zone() {
    let app = setup().await;
    let answer = app
        .query_meter(
            "tokens_total",
            "from=2026-01-14T22:00:00Z&to=2026-01-15T00:00:00Z&windowSize=HOUR&windowTimeZone=Europe/Paris",
        )
        .await;
    assert_json(
        &answer,
        &json!({
            "from": "2026-01-14T22:00:00Z",
            "to": "2026-01-15T00:00:00Z",
            "windowSize": "HOUR",
            "data": [
                row(10, "2026-01-14T23:00:00+01:00", "2026-01-15T00:00:00+01:00", Value::Null, json!({})),
                row(5, "2026-01-15T00:00:00+01:00", "2026-01-15T01:00:00+01:00", Value::Null, json!({})),
            ],
        }),
    );

    // 02:00–03:00 happens twice on 2026-10-25 in Paris: once at +02:00, once at +01:00.
    let answer = app
        .query_meter(
            "tokens_total",
            "from=2026-10-24T23:00:00Z&to=2026-10-25T03:00:00Z&windowSize=HOUR&windowTimeZone=Europe/Paris",
        )
        .await;
    assert_json(
        &answer["data"],
        &json!([
            row(
                200,
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T02:00:00+01:00",
                Value::Null,
                json!({})
            ),
            row(
                400,
                "2026-10-25T02:00:00+01:00",
                "2026-10-25T03:00:00+01:00",
                Value::Null,
                json!({})
            ),
        ]),
    );

    // Minute windows in UTC, grouped by model and subject.
    let answer = app
        .query_meter(
            "tokens_total",
            "from=2026-01-14T23:29:00Z&to=2026-01-14T23:32:00Z&windowSize=MINUTE&groupBy=model&groupBy=subject",
        )
        .await;
    assert_json(
        &answer["data"],
        &json!([row(
            5,
            "2026-01-14T23:30:00Z",
            "2026-01-14T23:31:00Z",
            json!("b"),
            json!({"model": "m1"})
        )]),
    );
}

#[tokio::test]
async fn windows_without_a_start_begin_on_a_window_boundary() {
    let app = setup().await;
    // No from: the range starts with the first event (2026-01-14T22:30:00Z, 23:30 in Paris), and
    // DAY windows still start at local midnight.
    let answer = app
        .query_meter(
            "tokens_total",
            "windowSize=DAY&windowTimeZone=Europe/Paris&subject=a&subject=b&to=2026-01-16T23:00:00Z",
        )
        .await;
    assert_json(
        &answer,
        &json!({
            "to": "2026-01-16T23:00:00Z",
            "windowSize": "DAY",
            "data": [
                row(10, "2026-01-14T00:00:00+01:00", "2026-01-15T00:00:00+01:00", json!("a"), json!({})),
                row(7, "2026-01-15T00:00:00+01:00", "2026-01-16T00:00:00+01:00", json!("a"), json!({})),
                row(5, "2026-01-15T00:00:00+01:00", "2026-01-16T00:00:00+01:00", json!("b"), json!({})),
                row(2, "2026-01-16T00:00:00+01:00", "2026-01-17T00:00:00+01:00", json!("b"), json!({})),
            ],
        }),
    );
    let hours = app
        .query_meter("tokens_total", "windowSize=HOUR&to=2026-01-15T00:00:00Z")
        .await;
    assert_json(
        &hours["data"],
        &json!([
            row(
                10,
                "2026-01-14T22:00:00Z",
                "2026-01-14T23:00:00Z",
                Value::Null,
                json!({})
            ),
            row(
                5,
                "2026-01-14T23:00:00Z",
                "2026-01-15T00:00:00Z",
                Value::Null,
                json!({})
            ),
        ]),
    );
}

#[tokio::test]
async fn a_missing_group_value_is_null() {
    let app = setup().await;
    let answer = app
        .query_meter(
            "tokens_total",
            "from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z&groupBy=model",
        )
        .await;
    assert_json(
        &answer["data"],
        &json!([row(
            3,
            "2026-03-01T00:00:00Z",
            "2026-03-02T00:00:00Z",
            Value::Null,
            json!({"model": null})
        )]),
    );
}

#[tokio::test]
async fn subjects_filter_and_group() {
    let app = setup().await;
    let answer = app
        .query_meter(
            "tokens_total",
            "from=2026-01-13T23:00:00Z&to=2026-01-16T23:00:00Z&subject=a&subject=b",
        )
        .await;
    assert_json(
        &answer,
        &json!({
            "from": "2026-01-13T23:00:00Z",
            "to": "2026-01-16T23:00:00Z",
            "data": [
                row(17, "2026-01-13T23:00:00Z", "2026-01-16T23:00:00Z", json!("a"), json!({})),
                row(7, "2026-01-13T23:00:00Z", "2026-01-16T23:00:00Z", json!("b"), json!({})),
            ],
        }),
    );

    // groupBy=subject without a filter shows every subject; filterGroupBy narrows to one model.
    let answer = app
        .query_meter(
            "tokens_total",
            "from=2026-01-13T23:00:00Z&to=2026-01-16T23:00:00Z&groupBy=subject&filterGroupBy[model]=m1",
        )
        .await;
    assert_json(
        &answer["data"],
        &json!([
            row(
                10,
                "2026-01-13T23:00:00Z",
                "2026-01-16T23:00:00Z",
                json!("a"),
                json!({})
            ),
            row(
                5,
                "2026-01-13T23:00:00Z",
                "2026-01-16T23:00:00Z",
                json!("b"),
                json!({})
            ),
            row(
                1,
                "2026-01-13T23:00:00Z",
                "2026-01-16T23:00:00Z",
                json!("c"),
                json!({})
            ),
        ]),
    );

    // Nothing matches: an empty list.
    let answer = app
        .query_meter(
            "tokens_total",
            "from=2026-01-13T23:00:00Z&to=2026-01-16T23:00:00Z&subject=nobody",
        )
        .await;
    assert_eq!(answer["data"], json!([]));
}
