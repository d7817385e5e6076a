//! Lago billable metrics: CRUD, pagination and validation (COMPAT §2.2).

use serde_json::{Value, json};

use crate::helpers::{assert_json, spawn_app, validation_error};

fn codes(list: &Value) -> Vec<String> {
    list["billable_metrics"]
        .as_array()
        .expect("billable_metrics array")
        .iter()
        .map(|m| m["code"].as_str().expect("code").to_owned())
        .collect()
}

#[tokio::test]
async fn create_read_update_list_and_delete() {
    let app = spawn_app().await;
    let created = app
        .create_metric(json!({
            "name": "Storage", "code": "storage_gb", "aggregation_type": "sum_agg",
            "field_name": "gb", "description": "Stored gigabytes", "recurring": true,
            "filters": [{"key": "region", "values": ["eu", "us"]}],
        }))
        .await;
    assert_eq!(created["name"], "Storage");
    assert_eq!(created["code"], "storage_gb");
    assert_eq!(created["aggregation_type"], "sum_agg");
    assert_eq!(created["field_name"], "gb");
    assert_eq!(created["description"], "Stored gigabytes");
    assert_eq!(created["recurring"], true);
    assert_eq!(
        created["filters"],
        json!([{"key": "region", "values": ["eu", "us"]}])
    );
    let lago_id = created["lago_id"].as_str().expect("lago_id").to_owned();
    assert!(uuid::Uuid::parse_str(&lago_id).is_ok());

    let counted = app
        .create_metric(json!({"name": "Calls", "code": "calls", "aggregation_type": "count_agg", "field_name": "ignored"}))
        .await;
    assert_eq!(
        counted["field_name"],
        Value::Null,
        "count_agg clears field_name"
    );
    assert_eq!(counted["filters"], json!([]));
    app.create_metric(
        json!({"name": "Seats", "code": "seats", "aggregation_type": "max_agg", "field_name": "n"}),
    )
    .await;

    let reply = app
        .get("/api/v1/billable_metrics/storage_gb", &app.read_key)
        .await;
    reply.assert_status(200);
    assert_json(&reply.json()["billable_metric"], &created);

    // PUT is partial: only the name changes.
    let reply = app
        .put_json(
            "/api/v1/billable_metrics/storage_gb",
            &json!({"billable_metric": {"name": "Storage (GB)"}}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(200);
    let updated = reply.json()["billable_metric"].clone();
    assert_eq!(updated["name"], "Storage (GB)");
    for field in [
        "lago_id",
        "code",
        "aggregation_type",
        "field_name",
        "description",
        "recurring",
        "filters",
        "created_at",
    ] {
        assert_eq!(updated[field], created[field], "{field} changed");
    }

    let page1 = app
        .get("/api/v1/billable_metrics?per_page=2", &app.admin_key)
        .await
        .json();
    assert_eq!(codes(&page1), ["storage_gb", "calls"]);
    assert_json(
        &page1["meta"],
        &json!({"current_page": 1, "next_page": 2, "prev_page": null, "total_pages": 2, "total_count": 3}),
    );
    let page2 = app
        .get("/api/v1/billable_metrics?per_page=2&page=2", &app.admin_key)
        .await
        .json();
    assert_eq!(codes(&page2), ["seats"]);
    assert_json(
        &page2["meta"],
        &json!({"current_page": 2, "next_page": null, "prev_page": 1, "total_pages": 2, "total_count": 3}),
    );

    let reply = app
        .delete("/api/v1/billable_metrics/calls", &app.admin_key)
        .await;
    reply.assert_status(200);
    assert_eq!(reply.json()["billable_metric"]["code"], "calls");
    let reply = app
        .get("/api/v1/billable_metrics/calls", &app.admin_key)
        .await;
    reply.assert_status(404);
    assert_json(
        &reply.json(),
        &json!({"status": 404, "error": "Not Found", "code": "billable_metric_not_found"}),
    );
    let list = app
        .get("/api/v1/billable_metrics", &app.admin_key)
        .await
        .json();
    assert_eq!(codes(&list), ["storage_gb", "seats"]);
    assert_eq!(list["meta"]["total_count"], 2);

    // A deleted code may be used again.
    app.create_metric(
        json!({"name": "Calls again", "code": "calls", "aggregation_type": "count_agg"}),
    )
    .await;

    for (method, path) in [
        ("PUT", "/api/v1/billable_metrics/nothing"),
        ("DELETE", "/api/v1/billable_metrics/nothing"),
    ] {
        let reply = match method {
            "PUT" => {
                app.put_json(
                    path,
                    &json!({"billable_metric": {"name": "x"}}),
                    &app.admin_key,
                )
                .await
            }
            _ => app.delete(path, &app.admin_key).await,
        };
        reply.assert_status(404);
        assert_json(
            &reply.json(),
            &json!({"status": 404, "error": "Not Found", "code": "billable_metric_not_found"}),
        );
    }

    let empty = spawn_app().await;
    let list = empty
        .get("/api/v1/billable_metrics", &empty.admin_key)
        .await
        .json();
    assert_json(
        &list,
        &json!({"billable_metrics": [], "meta": {"current_page": 0, "next_page": null, "prev_page": null, "total_pages": 0, "total_count": 0}}),
    );
}

#[tokio::test]
async fn invalid_metrics_are_refused() {
    let app = spawn_app().await;
    app.create_metric(json!({"name": "Calls", "code": "calls", "aggregation_type": "count_agg"}))
        .await;
    let post = |metric: Value| {
        let app = &app;
        async move {
            app.post_json(
                "/api/v1/billable_metrics",
                &json!({ "billable_metric": metric }),
                &app.admin_key,
            )
            .await
        }
    };

    let reply =
        post(json!({"name": "Calls 2", "code": "calls", "aggregation_type": "count_agg"})).await;
    reply.assert_status(422);
    assert_json(
        &reply.json(),
        &validation_error(json!({"code": ["value_already_exist"]})),
    );

    let reply =
        post(json!({"name": "Tokens", "code": "tokens", "aggregation_type": "sum_agg"})).await;
    reply.assert_status(422);
    assert_json(
        &reply.json(),
        &validation_error(json!({"field_name": ["value_is_mandatory"]})),
    );

    for aggregation in ["max_agg", "count_agg", "latest_agg"] {
        let reply = post(json!({
            "name": "Peak", "code": "peak", "aggregation_type": aggregation,
            "field_name": "v", "recurring": true,
        }))
        .await;
        reply.assert_status(422);
        assert_json(
            &reply.json(),
            &validation_error(json!({"recurring": ["not_compatible_with_aggregation_type"]})),
        );
    }

    let reply = post(
        json!({"name": "Odd", "code": "odd", "aggregation_type": "median_agg", "field_name": "v"}),
    )
    .await;
    reply.assert_status(422);
    assert_json(
        &reply.json(),
        &validation_error(json!({"aggregation_type": ["value_is_invalid"]})),
    );

    let reply = post(json!({"name": "Seats", "code": "seats", "aggregation_type": "weighted_sum_agg", "field_name": "n"})).await;
    reply.assert_status(422);
    assert_json(
        &reply.json(),
        &validation_error(json!({"weighted_interval": ["value_is_mandatory"]})),
    );

    let reply = post(json!({"code": "nameless", "aggregation_type": "count_agg"})).await;
    reply.assert_status(422);
    assert_json(
        &reply.json(),
        &validation_error(json!({"name": ["value_is_mandatory"]})),
    );

    let reply = app
        .post_json(
            "/api/v1/billable_metrics",
            &json!({"metric": {"name": "x"}}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(400);

    // Only the first metric exists.
    let list = app
        .get("/api/v1/billable_metrics", &app.admin_key)
        .await
        .json();
    assert_eq!(codes(&list), ["calls"]);
}
