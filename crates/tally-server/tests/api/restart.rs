//! Every acknowledged event survives a shutdown and restart.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_at};

const TASKS: usize = 20;
const EVENTS_PER_TASK: usize = 50;
const BATCH: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_events_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tally.db");
    let app = spawn_app_at(&path).await;
    app.create_metric(json!({"name": "Calls", "code": "calls", "aggregation_type": "count_agg"}))
        .await;
    let app = std::sync::Arc::new(app);

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for batch in 0..EVENTS_PER_TASK / BATCH {
                let ids: Vec<String> = (0..BATCH)
                    .map(|i| format!("t{task}-e{}", batch * BATCH + i))
                    .collect();
                let events: Vec<Value> = ids
                    .iter()
                    .enumerate()
                    .map(|(i, id)| {
                        json!({"transaction_id": id, "external_customer_id": format!("cus_{}", task % 4),
                               "code": "calls", "timestamp": 1767225600 + (task * 60 + i) as i64})
                    })
                    .collect();
                let reply = app
                    .post_json("/api/v1/events/batch", &json!({ "events": events }), &app.ingest_key)
                    .await;
                reply.assert_status(200);
                acknowledged.extend(ids);
            }
            acknowledged
        }));
    }
    let mut acknowledged = BTreeSet::new();
    for task in tasks {
        acknowledged.extend(task.await.expect("ingest task"));
    }
    assert_eq!(acknowledged.len(), TASKS * EVENTS_PER_TASK);

    let app = std::sync::Arc::into_inner(app).expect("the only reference");
    app.shutdown().await;

    let app = spawn_app_at(&path).await;
    assert_stored(&app, &acknowledged).await;
    app.shutdown().await;
}

async fn assert_stored(app: &TestApp, acknowledged: &BTreeSet<String>) {
    let answer = app
        .query_meter("calls", "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z")
        .await;
    assert_eq!(answer["data"][0]["value"], acknowledged.len(), "{answer}");

    let list = app
        .get("/api/v1/events?per_page=1000", &app.admin_key)
        .await
        .json();
    assert_eq!(list["meta"]["total_count"], acknowledged.len());
    let stored: BTreeSet<String> = list["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["transaction_id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(&stored, acknowledged);
}
