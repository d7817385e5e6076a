//! Lago subscriptions (COMPAT §2.4): creation, reads, upgrades, downgrades and termination.

use serde_json::json;

use crate::helpers::{TestApp, spawn_app};

async fn plan(app: &TestApp, code: &str, amount_cents: i64, interval: &str) {
    let body = json!({"plan": {"name": code, "code": code, "interval": interval, "amount_cents": amount_cents,
        "amount_currency": "USD", "pay_in_advance": false}});
    app.post_json("/api/v1/plans", &body, &app.admin_key)
        .await
        .assert_status(200);
}

async fn subscribe(app: &TestApp, body: serde_json::Value) -> serde_json::Value {
    let reply = app
        .post_json(
            "/api/v1/subscriptions",
            &json!({"subscription": body}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(200);
    reply.json()["subscription"].clone()
}

#[tokio::test]
async fn a_subscription_creates_its_customer_and_starts_when_asked() {
    let app = spawn_app().await;
    plan(&app, "basic", 1000, "monthly").await;

    let past = subscribe(
        &app,
        json!({"external_customer_id": "cus_1", "plan_code": "basic", "external_id": "sub_1",
        "subscription_at": "2025-03-15T10:30:00Z"}),
    )
    .await;
    assert_eq!(past["status"], "active");
    // started_at is the requested instant, not the time of the request.
    assert_eq!(past["started_at"], "2025-03-15T10:30:00.000Z");
    assert_eq!(past["billing_time"], "calendar");
    assert_eq!(past["plan"]["code"], "basic");
    assert_eq!(past["plan_amount_cents"], 1000);
    // The customer was created and took the plan's currency.
    let customer = app.get("/api/v1/customers/cus_1", &app.read_key).await;
    customer.assert_status(200);
    assert_eq!(customer.json()["customer"]["currency"], "USD");

    let future = subscribe(
        &app,
        json!({"external_customer_id": "cus_1", "plan_code": "basic", "external_id": "sub_2",
        "subscription_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(future["status"], "pending");
    assert_eq!(future["started_at"], serde_json::Value::Null);

    // Same plan again: idempotent.
    let again = subscribe(
        &app,
        json!({"external_customer_id": "cus_1", "plan_code": "basic", "external_id": "sub_1"}),
    )
    .await;
    assert_eq!(again["lago_id"], past["lago_id"]);

    let list = app
        .get(
            "/api/v1/subscriptions?external_customer_id=cus_1",
            &app.read_key,
        )
        .await;
    list.assert_status(200);
    assert_eq!(
        list.json()["meta"]["total_count"],
        1,
        "active only by default"
    );
    let all = app
        .get(
            "/api/v1/subscriptions?external_customer_id=cus_1&status[]=active&status[]=pending",
            &app.read_key,
        )
        .await;
    assert_eq!(all.json()["meta"]["total_count"], 2);

    let missing = app.post_json("/api/v1/subscriptions",
        &json!({"subscription": {"external_customer_id": "cus_1", "plan_code": "nope", "external_id": "sub_3"}}), &app.admin_key).await;
    missing.assert_status(404);
    assert_eq!(missing.json()["code"], "plan_not_found");

    let bad_end = app.post_json("/api/v1/subscriptions",
        &json!({"subscription": {"external_customer_id": "cus_1", "plan_code": "basic", "external_id": "sub_4",
            "ending_at": "2001-01-01T00:00:00Z"}}), &app.admin_key).await;
    bad_end.assert_status(422);
    assert_eq!(
        bad_end.json()["error_details"]["ending_at"],
        json!(["invalid_date"])
    );
}

#[tokio::test]
async fn upgrades_switch_now_and_downgrades_wait_for_the_period_end() {
    let app = spawn_app().await;
    plan(&app, "basic", 1000, "monthly").await;
    plan(&app, "pro", 5000, "monthly").await;
    plan(&app, "yearly_small", 9000, "yearly").await;
    let first = subscribe(
        &app,
        json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "sub",
        "subscription_at": "2025-01-10T00:00:00Z"}),
    )
    .await;

    let upgraded = subscribe(
        &app,
        json!({"external_customer_id": "cus", "plan_code": "pro", "external_id": "sub"}),
    )
    .await;
    assert_eq!(upgraded["status"], "active");
    assert_eq!(upgraded["plan_code"], "pro");
    assert_eq!(upgraded["previous_plan_code"], "basic");
    assert_ne!(upgraded["lago_id"], first["lago_id"]);
    let old = app
        .get("/api/v1/subscriptions/sub?status=terminated", &app.read_key)
        .await;
    old.assert_status(200);
    assert_eq!(old.json()["subscription"]["lago_id"], first["lago_id"]);

    // 9,000 a year is less than 5,000 a month: a downgrade, at the end of the current month.
    let downgraded = subscribe(
        &app,
        json!({"external_customer_id": "cus", "plan_code": "yearly_small", "external_id": "sub"}),
    )
    .await;
    assert_eq!(downgraded["plan_code"], "pro");
    assert_eq!(downgraded["next_plan_code"], "yearly_small");
    let ending = downgraded["current_billing_period_ending_at"]
        .as_str()
        .expect("period end")
        .to_owned();
    let pending = app
        .get("/api/v1/subscriptions/sub?status=pending", &app.read_key)
        .await;
    pending.assert_status(200);
    let pending = pending.json()["subscription"].clone();
    assert_eq!(pending["plan_code"], "yearly_small");
    // The pending plan starts the second after the current period's last second.
    let start =
        tally_core::Timestamp::parse_rfc3339(pending["subscription_at"].as_str().expect("start"))
            .expect("time");
    let last = tally_core::Timestamp::parse_rfc3339(&ending).expect("time");
    assert_eq!(start.seconds(), last.seconds() + 1);
}

#[tokio::test]
async fn termination_ends_active_and_cancels_pending() {
    let app = spawn_app().await;
    plan(&app, "basic", 1000, "monthly").await;
    subscribe(
        &app,
        json!({"external_customer_id": "c", "plan_code": "basic", "external_id": "now"}),
    )
    .await;
    subscribe(
        &app,
        json!({"external_customer_id": "c", "plan_code": "basic", "external_id": "later",
        "subscription_at": "2099-01-01T00:00:00Z"}),
    )
    .await;

    let ended = app
        .delete("/api/v1/subscriptions/now", &app.admin_key)
        .await;
    ended.assert_status(200);
    assert_eq!(ended.json()["subscription"]["status"], "terminated");
    assert!(ended.json()["subscription"]["terminated_at"].is_string());

    let canceled = app
        .delete("/api/v1/subscriptions/later?status=pending", &app.admin_key)
        .await;
    canceled.assert_status(200);
    assert_eq!(canceled.json()["subscription"]["status"], "canceled");

    let gone = app.get("/api/v1/subscriptions/now", &app.read_key).await;
    gone.assert_status(404);
    assert_eq!(gone.json()["code"], "subscription_not_found");

    let renamed = app
        .put_json(
            "/api/v1/subscriptions/now?status=terminated",
            &json!({"subscription": {"name": "Old"}}),
            &app.admin_key,
        )
        .await;
    renamed.assert_status(200);
    assert_eq!(renamed.json()["subscription"]["name"], "Old");
}
