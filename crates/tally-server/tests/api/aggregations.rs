//! Every aggregation type through the HTTP API, on exact decimals, compared with hand-computed values.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_json, number, spawn_app};

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600;

/// (seconds after T0, value as JSON text). Values cross minute and hour buckets; the latest by time
/// (0.25) is sent first, so ingest order differs from time order.
const VALUES: [(i64, &str); 5] = [
    (7400, "0.25"),
    (10, "0.1"),
    (70, "\"0.2\""),
    (3700, "1e-3"),
    (7300, "\"123456789.123456789\""),
];

async fn send_values(app: &TestApp, code: &str, extra: &[(i64, &str)]) {
    let events: Vec<String> = VALUES
        .iter()
        .chain(extra)
        .enumerate()
        .map(|(i, (offset, value))| {
            format!(
                r#"{{"transaction_id": "{code}-{i}", "external_customer_id": "cus_1", "code": "{code}",
                    "timestamp": {}, "properties": {{"v": {value}}}}}"#,
                T0 + offset
            )
        })
        .collect();
    let body = format!(r#"{{"events": [{}]}}"#, events.join(","));
    app.post_text("/api/v1/events/batch", &body)
        .await
        .assert_status(200);
}

/// The single value of a query without windows or groups.
fn only_value(answer: &Value) -> Value {
    let data = answer["data"].as_array().expect("data array");
    assert_eq!(data.len(), 1, "one row expected: {answer}");
    assert_eq!(data[0]["subject"], Value::Null);
    assert_eq!(data[0]["groupBy"], json!({}));
    data[0]["value"].clone()
}

/// Whole range (hour rollups), the first two minutes (minute rollups) and a sub-minute range (raw
/// events), each with its expected value.
const RANGES: [(&str, &str); 3] = [
    ("2026-01-01T00:00:00Z", "2026-01-01T03:00:00Z"),
    ("2026-01-01T00:00:00Z", "2026-01-01T00:02:00Z"),
    ("2026-01-01T00:00:05Z", "2026-01-01T00:01:15Z"),
];

async fn assert_ranges(app: &TestApp, meter: &str, expected: [&str; 3]) {
    for ((from, to), want) in RANGES.iter().zip(expected) {
        let answer = app
            .query_meter(meter, &format!("from={from}&to={to}"))
            .await;
        assert_json(&only_value(&answer), &number(want));
        assert_eq!(answer["from"], *from);
        assert_eq!(answer["to"], *to);
        assert_eq!(answer["data"][0]["windowStart"], *from);
        assert_eq!(answer["data"][0]["windowEnd"], *to);
    }
}

#[tokio::test]
async fn lago_aggregations_are_exact() {
    let app = spawn_app().await;
    app.create_customer("cus_1").await;
    for (code, aggregation) in [
        ("calls", "count_agg"),
        ("total", "sum_agg"),
        ("peak", "max_agg"),
        ("distinct", "unique_count_agg"),
        ("last", "latest_agg"),
    ] {
        app.create_metric(
            json!({"name": code, "code": code, "aggregation_type": aggregation, "field_name": "v"}),
        )
        .await;
    }
    for code in ["calls", "total", "peak", "last"] {
        send_values(&app, code, &[]).await;
    }
    // A repeated value (string this time) does not add a distinct value.
    send_values(&app, "distinct", &[(20, "\"0.1\"")]).await;

    // 5 events; 2 in the first two minutes; 2 between 00:00:05 and 00:01:15.
    assert_ranges(&app, "calls", ["5", "2", "2"]).await;
    // 0.25 + 0.1 + 0.2 + 0.001 + 123456789.123456789; then 0.1 + 0.2 exactly.
    assert_ranges(&app, "total", ["123456789.674456789", "0.3", "0.3"]).await;
    assert_ranges(&app, "peak", ["123456789.123456789", "0.2", "0.2"]).await;
    // "0.1" (twice), "0.2", "1e-3", "123456789.123456789", "0.25"; then "0.1" (twice) and "0.2".
    assert_ranges(&app, "distinct", ["5", "2", "2"]).await;
    // The latest by time is 0.25 at 02:03:20, though it was sent first.
    assert_ranges(&app, "last", ["0.25", "0.2", "0.2"]).await;
}

#[tokio::test]
async fn meter_only_aggregations_are_exact() {
    let app = spawn_app().await;
    for (slug, aggregation) in [
        ("v_avg", "AVG"),
        ("v_min", "MIN"),
        ("v_sum", "SUM"),
        ("v_max", "MAX"),
    ] {
        let reply = app
            .post_json(
                "/api/v1/meters",
                &json!({"slug": slug, "aggregation": aggregation, "eventType": "values", "valueProperty": "$.v"}),
                &app.admin_key,
            )
            .await;
        reply.assert_status(201);
        assert_eq!(reply.json()["aggregation"], aggregation);
    }
    // The same values as CloudEvents of type "values".
    let events: Vec<String> = VALUES
        .iter()
        .enumerate()
        .map(|(i, (offset, value))| {
            let time = chrono::DateTime::from_timestamp(T0 + offset, 0)
                .expect("time")
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            format!(
                r#"{{"specversion": "1.0", "id": "v-{i}", "source": "test", "type": "values",
                    "subject": "cus_1", "time": "{time}", "data": {{"v": {value}}}}}"#
            )
        })
        .collect();
    app.post_raw(
        "/api/v1/events",
        "application/cloudevents-batch+json",
        format!("[{}]", events.join(",")),
    )
    .await
    .assert_status(204);

    // 123456789.674456789 / 5 = 24691357.9348913578; (0.1 + 0.2) / 2 = 0.15.
    assert_ranges(&app, "v_avg", ["24691357.9348913578", "0.15", "0.15"]).await;
    assert_ranges(&app, "v_min", ["0.001", "0.1", "0.1"]).await;
    assert_ranges(&app, "v_sum", ["123456789.674456789", "0.3", "0.3"]).await;
    assert_ranges(&app, "v_max", ["123456789.123456789", "0.2", "0.2"]).await;
}

#[tokio::test]
async fn weighted_sum_is_the_time_weighted_running_total() {
    let app = spawn_app().await;
    app.create_customer("cus_1").await;
    let metric = app
        .create_metric(json!({
            "name": "Seats", "code": "seats", "aggregation_type": "weighted_sum_agg",
            "field_name": "seats", "weighted_interval": "seconds",
        }))
        .await;
    assert_eq!(metric["aggregation_type"], "weighted_sum_agg");
    assert_eq!(metric["weighted_interval"], "seconds");

    // 2026-02-01T00:00:00Z = 1769904000. +0.1 at 00:01:00, +0.2 at 00:02:00, +0.001 at 00:03:00.
    let body = r#"{"events": [
        {"transaction_id": "s1", "external_customer_id": "cus_1", "code": "seats", "timestamp": 1769904060, "properties": {"seats": 0.1}},
        {"transaction_id": "s2", "external_customer_id": "cus_1", "code": "seats", "timestamp": 1769904120, "properties": {"seats": "0.2"}},
        {"transaction_id": "s3", "external_customer_id": "cus_1", "code": "seats", "timestamp": 1769904180, "properties": {"seats": 1e-3}}
    ]}"#;
    app.post_text("/api/v1/events/batch", body)
        .await
        .assert_status(200);

    // [00:00, 00:04) = 240 s. Running total: 0 for 60 s, 0.1 for 60 s, 0.3 for 60 s, 0.301 for 60 s.
    // (0 + 6 + 18 + 18.06) / 240 = 42.06 / 240 = 0.17525.
    let answer = app
        .query_meter("seats", "from=2026-02-01T00:00:00Z&to=2026-02-01T00:04:00Z")
        .await;
    assert_json(&only_value(&answer), &number("0.17525"));

    // [00:00:30, 00:04:30) = 240 s, sub-minute edges: 0 for 30 s, 0.1 for 60 s, 0.3 for 60 s,
    // 0.301 for 90 s: (6 + 18 + 27.09) / 240 = 51.09 / 240 = 0.212875.
    let answer = app
        .query_meter("seats", "from=2026-02-01T00:00:30Z&to=2026-02-01T00:04:30Z")
        .await;
    assert_json(&only_value(&answer), &number("0.212875"));

    // [00:00, 00:10) = 600 s: (6 + 18 + 0.301 × 420) / 600 = (24 + 126.42) / 600 = 0.2507.
    let answer = app
        .query_meter("seats", "from=2026-02-01T00:00:00Z&to=2026-02-01T00:10:00Z")
        .await;
    assert_json(&only_value(&answer), &number("0.2507"));
}
