//! Rollups kept live at ingest equal rollups rebuilt from raw events.

use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn rebuilt_rollups_equal_live_rollups() {
    let app = spawn_app().await;
    for customer in ["cus_a", "cus_b"] {
        app.create_customer(customer).await;
    }
    for metric in [
        json!({"name": "Calls", "code": "calls", "aggregation_type": "count_agg",
               "filters": [{"key": "region", "values": ["eu", "us"]}]}),
        json!({"name": "Tokens", "code": "tokens", "aggregation_type": "sum_agg", "field_name": "n"}),
        json!({"name": "Peak", "code": "peak", "aggregation_type": "max_agg", "field_name": "n"}),
        json!({"name": "Last", "code": "last", "aggregation_type": "latest_agg", "field_name": "n"}),
        json!({"name": "Seats", "code": "seats", "aggregation_type": "weighted_sum_agg",
               "field_name": "n", "weighted_interval": "seconds"}),
        json!({"name": "Users", "code": "users", "aggregation_type": "unique_count_agg", "field_name": "user"}),
    ] {
        app.create_metric(metric).await;
    }
    // A meter reading the same events as "tokens", grouped by model, and one created after the events.
    app.post_json(
        "/api/v1/meters",
        &json!({"slug": "tokens_by_model", "aggregation": "AVG", "eventType": "tokens",
                "valueProperty": "$.n", "groupBy": {"model": "$.model"}}),
        &app.admin_key,
    )
    .await
    .assert_status(201);

    let codes = [
        "calls", "tokens", "peak", "last", "seats", "users", "unknown",
    ];
    let subjects = ["cus_a", "cus_b", "cus_unknown"];
    let mut events = Vec::new();
    for i in 0..240i64 {
        let code = codes[(i % 7) as usize];
        let subject = subjects[(i % 3) as usize];
        // Spread over three days, at odd seconds and some microseconds.
        let timestamp = format!(
            "{}.{:06}",
            1_767_225_600 + i * 1_087,
            (i * 7_919) % 1_000_000
        );
        let n = if i % 11 == 0 {
            json!("not a number")
        } else {
            json!(format!("{}.{}", i % 13, i % 10))
        };
        events.push(json!({
            "transaction_id": format!("r-{i}"), "external_customer_id": subject, "code": code,
            "timestamp": timestamp,
            "properties": {"n": n, "region": (["eu", "us", "apac"][(i % 3) as usize]),
                           "model": (["m1", "m2"][(i % 2) as usize]), "user": format!("u{}", i % 5)},
        }));
    }
    for chunk in events.chunks(60) {
        app.post_json(
            "/api/v1/events/batch",
            &json!({ "events": chunk }),
            &app.admin_key,
        )
        .await
        .assert_status(200);
    }
    // CloudEvents too, and a meter created after its events.
    let cloud: Vec<Value> = (0..30)
        .map(|i| {
            json!({"specversion": "1.0", "id": format!("c-{i}"), "source": "svc", "type": "gpu",
                   "subject": subjects[i % 3], "time": format!("2026-01-02T10:{:02}:{:02}.5Z", i, (i * 7) % 60),
                   "data": {"seconds": i, "kind": (["a100", "h100"][i % 2])}})
        })
        .collect();
    app.post_raw(
        "/api/v1/events",
        "application/cloudevents-batch+json",
        Value::Array(cloud).to_string(),
    )
    .await
    .assert_status(204);
    app.post_json(
        "/api/v1/meters",
        &json!({"slug": "gpu_seconds", "aggregation": "SUM", "eventType": "gpu",
                "valueProperty": "$.seconds", "groupBy": {"kind": "$.kind"}}),
        &app.admin_key,
    )
    .await
    .assert_status(201);
    // A metric changed after ingest, and one deleted.
    app.put_json(
        "/api/v1/billable_metrics/peak",
        &json!({"billable_metric": {"field_name": "user_count"}}),
        &app.admin_key,
    )
    .await
    .assert_status(200);
    app.delete("/api/v1/billable_metrics/last", &app.admin_key)
        .await
        .assert_status(200);

    let live = app.store.rollup_rows(app.org).await.expect("rollup rows");
    assert!(live.len() > 100, "a real mix of rows: {}", live.len());
    let metrics: std::collections::BTreeSet<&str> =
        live.iter().map(|r| r.metric.as_str()).collect();
    assert_eq!(
        metrics.into_iter().collect::<Vec<_>>(),
        [
            "calls",
            "gpu_seconds",
            "seats",
            "tokens",
            "tokens_by_model",
            "users"
        ],
        "peak reads a property no event has; last is deleted"
    );

    let report = app.store.rebuild_rollups(app.org).await.expect("rebuild");
    assert_eq!(report.rows_changed, 0, "{report:?}");
    assert_eq!(report.rows, live.len() as u64);
    assert_eq!(report.events, 270);
    let rebuilt = app.store.rollup_rows(app.org).await.expect("rollup rows");
    assert_eq!(rebuilt, live);
}

/// Unique counts read the kept values (`distinct_events`) when subjects are named and raw events when
/// all are asked for: both must count the same, window by window, with removals, events before and
/// after a metric change, and subjects with and without events.
#[tokio::test]
async fn kept_unique_values_count_as_raw_events_do() {
    let app = spawn_app().await;
    for customer in ["cus_a", "cus_b", "cus_c"] {
        app.create_customer(customer).await;
    }
    app.create_metric(json!({"name": "Users", "code": "users",
        "aggregation_type": "unique_count_agg", "field_name": "user"}))
        .await;
    let mut events = Vec::new();
    for i in 0..300i64 {
        let subject = ["cus_a", "cus_b", "cus_unknown"][(i % 3) as usize];
        let mut properties = json!({"user": format!("u{}", (i * 7) % 11)});
        if i % 9 == 0 {
            properties["operation_type"] = json!("remove");
        }
        events.push(
            json!({"transaction_id": format!("u-{i}"), "external_customer_id": subject,
            "code": "users", "timestamp": 1_767_225_600 + i * 997, "properties": properties}),
        );
    }
    for chunk in events.chunks(100) {
        app.post_json(
            "/api/v1/events/batch",
            &json!({ "events": chunk }),
            &app.admin_key,
        )
        .await
        .assert_status(200);
    }
    let range = "from=2026-01-01T00:00:00Z&to=2026-01-05T00:00:00Z&windowSize=HOUR";
    let by_subject = |answer: &Value, subject: &str| -> Vec<(String, Value)> {
        answer["data"]
            .as_array()
            .expect("rows")
            .iter()
            .filter(|row| row["subject"] == subject)
            .map(|row| {
                (
                    row["windowStart"].as_str().expect("window").to_owned(),
                    row["value"].clone(),
                )
            })
            .collect()
    };
    let all = app
        .query_meter("users", &format!("{range}&groupBy=subject"))
        .await;
    let mut compared = 0;
    for subject in ["cus_a", "cus_b", "cus_unknown", "cus_c"] {
        let one = app
            .query_meter("users", &format!("{range}&subject={subject}"))
            .await;
        let want = by_subject(&all, subject);
        assert_eq!(by_subject(&one, subject), want, "{subject}");
        compared += want.len();
    }
    assert!(compared > 50, "a real comparison: {compared} windows");
}
