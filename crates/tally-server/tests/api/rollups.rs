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

/// Unique counts read the kept values (`event_values`) when subjects are named and raw events when
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

/// A percentage charge with per-event terms prices each event on its own; its metric keeps its events'
/// values once a plan needs them, filled from the events already stored when the plan changes to
/// such a charge, and kept at ingest after that.
#[tokio::test]
async fn a_percentage_charge_prices_kept_values_per_event() {
    let app = crate::helpers::spawn_simulated("2026-03-01T00:00:00Z").await;
    let metric = app
        .create_metric(json!({"name": "Payments", "code": "payments",
            "aggregation_type": "sum_agg", "field_name": "amount"}))
        .await;
    app.post_ok(
        "/api/v1/plans",
        json!({"plan": {"name": "Fees", "code": "fees", "interval": "monthly",
            "amount_cents": 0, "amount_currency": "USD", "pay_in_advance": false,
            "charges": [{"billable_metric_id": metric["lago_id"], "charge_model": "standard",
                "properties": {"amount": "0"}}]}}),
    )
    .await;
    app.create_customer("acme").await;
    app.post_ok(
        "/api/v1/subscriptions",
        json!({"subscription": {"external_customer_id": "acme", "external_id": "sub",
            "plan_code": "fees", "subscription_at": "2026-03-01T00:00:00Z"}}),
    )
    .await;
    let pay = |id: &str, amount: &str, day: u32| {
        json!({"transaction_id": id, "external_subscription_id": "sub", "code": "payments",
            "timestamp": format!("2026-03-{day:02}T12:00:00Z"), "properties": {"amount": amount}})
    };
    for (id, amount, day) in [("p1", "10", 2), ("p2", "100", 3), ("p3", "1000", 4)] {
        app.send_event(pay(id, amount, day)).await;
    }
    // Another customer's payments are not acme's.
    app.create_customer("other").await;
    app.send_event(
        json!({"transaction_id": "o1", "external_customer_id": "other",
        "code": "payments", "timestamp": "2026-03-03T00:00:00Z", "properties": {"amount": "500"}}),
    )
    .await;
    let reply = app
        .put_json(
            "/api/v1/plans/fees",
            &json!({"plan": {"charges": [{"billable_metric_id": metric["lago_id"],
                "charge_model": "percentage", "properties": {"rate": "2.9",
                    "per_transaction_min_amount": "0.50", "per_transaction_max_amount": "20"}}]}}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(200);
    app.send_event(pay("p4", "5", 5)).await;
    app.advance("2026-03-10T00:00:00Z").await;
    let usage = app
        .get(
            "/api/v1/customers/acme/current_usage?external_subscription_id=sub",
            &app.read_key,
        )
        .await;
    usage.assert_status(200);
    // 2.9 % of each payment, between 0.50 and 20.00: 10 → 0.29 → 0.50; 100 → 2.90;
    // 1000 → 29.00 → 20.00; 5 → 0.145 → 0.50. 23.90 in all.
    assert_eq!(usage.json()["customer_usage"]["amount_cents"], 2_390);
}
