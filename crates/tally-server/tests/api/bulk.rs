//! Bulk NDJSON ingest: each line stands alone; counts and refused line numbers come back.

use serde_json::{Value, json};

use crate::helpers::{assert_json, spawn_app};

fn line(id: &str, seconds: i64, n: &str) -> String {
    json!({"transaction_id": id, "external_customer_id": "cus_1", "code": "tokens",
           "timestamp": 1767225600 + seconds, "properties": {"n": n}})
    .to_string()
}

#[tokio::test]
async fn good_lines_are_stored_and_bad_ones_reported() {
    let app = spawn_app().await;
    app.create_customer("cus_1").await;
    app.create_metric(json!({"name": "Tokens", "code": "tokens", "aggregation_type": "sum_agg", "field_name": "n"}))
        .await;
    let lines = [
        line("k1", 1, "1"),                                // 1
        line("k2", 2, "2"),                                // 2
        r#"{"transaction_id": "k3", "code": "#.to_owned(), // 3: not JSON
        line("k4", 4, "4"),                                // 4
        // 5: wrapped in "event", as the single-event route takes it
        json!({"event": {"transaction_id": "k5", "external_customer_id": "cus_1", "code": "tokens",
               "timestamp": 1767225605, "properties": {"n": "8"}}})
        .to_string(),
        r#"{"transaction_id": "k6", "external_customer_id": "cus_1"}"#.to_owned(), // 6: no code
        line("k7", 7, "16"),                                                       // 7
        line("k2", 2, "2"),    // 8: exact duplicate of line 2
        line("k9", 9, "32"),   // 9
        line("k10", 10, "64"), // 10
    ];
    let body = lines.join("\n") + "\n";
    let reply = app
        .post_raw("/api/v1/events/bulk", "application/x-ndjson", body)
        .await;
    reply.assert_status(200);
    let answer = reply.json();
    assert_eq!(answer["accepted"], 7, "{answer}");
    assert_eq!(answer["duplicates"], 1, "{answer}");
    assert_eq!(answer["rejected"], 2, "{answer}");
    let rejected = answer["rejected_lines"].as_array().expect("rejected_lines");
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0]["line"], 3);
    let reason = rejected[0]["reason"].as_str().expect("reason");
    assert!(reason.starts_with("not valid JSON"), "{reason}");
    assert_eq!(rejected[1]["line"], 6);
    let reason = rejected[1]["reason"].as_str().expect("reason");
    assert!(
        reason.contains("code") && reason.contains("value_is_mandatory"),
        "{reason}"
    );

    for id in ["k1", "k2", "k4", "k5", "k7", "k9", "k10"] {
        app.get(&format!("/api/v1/events/{id}"), &app.admin_key)
            .await
            .assert_status(200);
    }
    for id in ["k3", "k6"] {
        app.get(&format!("/api/v1/events/{id}"), &app.admin_key)
            .await
            .assert_status(404);
    }
    // 1 + 2 + 4 + 8 + 16 + 32 + 64: each good line once.
    let answer = app
        .query_meter(
            "tokens",
            "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
        )
        .await;
    assert_eq!(answer["data"][0]["value"], 127);
    let list = app.get("/api/v1/events", &app.admin_key).await.json();
    assert_eq!(list["meta"]["total_count"], 7);

    // A resend reports every line as a duplicate, and conflicts per line.
    let body = [
        line("k1", 1, "1"),
        line("k2", 2, "999"),
        String::new(),
        line("k11", 11, "128"),
    ]
    .join("\r\n");
    let reply = app
        .post_raw("/api/v1/events/bulk", "application/x-ndjson", body)
        .await;
    reply.assert_status(200);
    let answer: Value = reply.json();
    assert_eq!(answer["accepted"], 1, "{answer}");
    assert_eq!(answer["duplicates"], 1, "{answer}");
    assert_eq!(answer["rejected"], 1, "{answer}");
    assert_eq!(answer["rejected_lines"][0]["line"], 2);
    let reason = answer["rejected_lines"][0]["reason"]
        .as_str()
        .expect("reason");
    assert!(reason.contains("value_already_exist"), "{reason}");
    let stored = app.get("/api/v1/events/k2", &app.admin_key).await.json();
    assert_json(&stored["event"]["properties"], &json!({"n": "2"}));
}
