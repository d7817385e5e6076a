//! The life of a customer through the billing clock (simulated), with amounts computed by hand.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_simulated};

async fn setup(app: &TestApp) {
    app.create_metric(
        json!({"name": "API calls", "code": "api_calls", "aggregation_type": "count_agg"}),
    )
    .await;
    app.create_metric(json!({"name": "Storage", "code": "storage", "aggregation_type": "sum_agg", "field_name": "gb"}))
        .await;
    let metrics = app
        .get("/api/v1/billable_metrics", &app.read_key)
        .await
        .json();
    let id = |code: &str| {
        metrics["billable_metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .find(|m| m["code"] == code)
            .expect("metric")["lago_id"]
            .clone()
    };
    let plan = json!({"plan": {"name": "Pro", "code": "pro", "interval": "monthly", "amount_cents": 3100,
        "amount_currency": "USD", "pay_in_advance": false, "charges": [
            {"billable_metric_id": id("api_calls"), "charge_model": "graduated", "properties": {"graduated_ranges": [
                {"from_value": 0, "to_value": 100, "per_unit_amount": "0", "flat_amount": "0"},
                {"from_value": 101, "to_value": null, "per_unit_amount": "0.05", "flat_amount": "0"}]}},
            {"billable_metric_id": id("storage"), "charge_model": "standard", "properties": {"amount": "0.5"}}]}});
    app.post_json("/api/v1/plans", &plan, &app.admin_key)
        .await
        .assert_status(200);
    app.post_json(
        "/api/v1/customers",
        &json!({"customer": {"external_id": "acme", "timezone": "UTC"}}),
        &app.admin_key,
    )
    .await
    .assert_status(200);
}

async fn calls(app: &TestApp, prefix: &str, count: usize, first_second: i64) {
    let events: Vec<Value> = (0..count)
        .map(|i| {
            json!({"transaction_id": format!("{prefix}-{i}"), "external_subscription_id": "sub",
            "code": "api_calls", "timestamp": first_second + i as i64})
        })
        .collect();
    for chunk in events.chunks(100) {
        app.post_json(
            "/api/v1/events/batch",
            &json!({"events": chunk}),
            &app.ingest_key,
        )
        .await
        .assert_status(200);
    }
}

async fn storage(app: &TestApp, id: &str, gb: &str, timestamp: &str) {
    app.post_json(
        "/api/v1/events",
        &json!({"event": {"transaction_id": id, "external_customer_id": "acme",
        "code": "storage", "timestamp": timestamp, "properties": {"gb": gb}}}),
        &app.ingest_key,
    )
    .await
    .assert_status(200);
}

fn fee<'a>(invoice: &'a Value, code: &str) -> Option<&'a Value> {
    invoice["fees"]
        .as_array()
        .expect("fees")
        .iter()
        .find(|f| f["item"]["code"] == code)
}

const MAR_10: i64 = 1_773_100_800; // 2026-03-10T00:00:00Z
const MAR_21: i64 = 1_774_051_200; // 2026-03-21T00:00:00Z
const APR_10: i64 = 1_775_779_200; // 2026-04-10T00:00:00Z

#[tokio::test]
async fn a_customer_lives_through_the_billing_clock() {
    let app = spawn_simulated("2026-03-10T00:00:00Z").await;
    setup(&app).await;
    let sub = app
        .post_json(
            "/api/v1/subscriptions",
            &json!({"subscription": {
        "external_customer_id": "acme", "plan_code": "pro", "external_id": "sub"}}),
            &app.admin_key,
        )
        .await;
    sub.assert_status(200);
    assert_eq!(
        sub.json()["subscription"]["started_at"],
        "2026-03-10T00:00:00.000Z"
    );

    // Mid-month: 150 calls and 10.5 GB so far.
    calls(&app, "a", 150, MAR_10 + 3_600).await;
    storage(&app, "s1", "10.5", "2026-03-12T08:00:00Z").await;
    assert!(app.advance("2026-03-20T00:00:00Z").await.is_empty());
    let usage = app
        .get(
            "/api/v1/customers/acme/current_usage?external_subscription_id=sub",
            &app.read_key,
        )
        .await;
    usage.assert_status(200);
    let usage = usage.json()["customer_usage"].clone();
    assert_eq!(usage["from_datetime"], "2026-03-10T00:00:00Z");
    assert_eq!(usage["to_datetime"], "2026-03-31T23:59:59Z");
    assert_eq!(usage["issuing_date"], "2026-04-01");
    // 150 calls: 100 free, 50 × 0.05 = 2.50; 10.5 GB × 0.5 = 5.25.
    assert_eq!(usage["amount_cents"], 775);
    let lines = usage["charges_usage"].as_array().expect("charges");
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["billable_metric"]["code"], "api_calls");
    assert_eq!(lines[0]["units"], "150");
    assert_eq!(lines[0]["events_count"], 150);
    assert_eq!(lines[0]["amount_cents"], 250);
    assert_eq!(lines[1]["units"], "10.5");
    assert_eq!(lines[1]["amount_cents"], 525);

    // The rest of March, then the month ends.
    calls(&app, "b", 100, MAR_21).await;
    storage(&app, "s2", "20", "2026-03-25T10:00:00Z").await;
    let created = app.advance("2026-04-01T00:00:00Z").await;
    assert_eq!(created.len(), 1);
    let march = app.invoice(&created[0]).await;
    // 22 of March's 31 days of 31.00: 22.00; 250 calls: 150 × 0.05 = 7.50; 30.5 GB × 0.5 = 15.25.
    assert_eq!(
        fee(&march, "pro").expect("subscription fee")["amount_cents"],
        2200
    );
    assert_eq!(
        fee(&march, "api_calls").expect("calls")["amount_cents"],
        750
    );
    assert_eq!(fee(&march, "api_calls").expect("calls")["units"], "250");
    assert_eq!(
        fee(&march, "storage").expect("storage")["amount_cents"],
        1525
    );
    assert_eq!(march["fees_amount_cents"], 4475);
    assert_eq!(march["total_amount_cents"], 4475);
    assert_eq!(march["status"], "finalized");
    assert_eq!(march["issuing_date"], "2026-04-01");
    assert_eq!(
        march["billing_periods"][0]["invoicing_reason"],
        "subscription_periodic"
    );
    assert_eq!(
        march["billing_periods"][0]["charges_from_datetime"],
        "2026-03-10T00:00:00Z"
    );
    assert_eq!(
        march["billing_periods"][0]["charges_to_datetime"],
        "2026-03-31T23:59:59Z"
    );
    let number = march["number"].as_str().expect("number").to_owned();
    assert!(
        number.starts_with("DEF-") && number.ends_with("-001-001"),
        "{number}"
    );

    // Exactly once: the same instant, or a second later, bills nothing more.
    assert!(app.advance("2026-04-01T00:00:00Z").await.is_empty());
    assert!(app.advance("2026-04-01T00:00:01Z").await.is_empty());

    // From now on invoices wait three days as drafts.
    app.post_json(
        "/api/v1/customers",
        &json!({"customer": {"external_id": "acme",
        "billing_configuration": {"invoice_grace_period": 3}}}),
        &app.admin_key,
    )
    .await
    .assert_status(200);
    calls(&app, "c", 50, APR_10).await;
    let created = app.advance("2026-05-01T00:00:00Z").await;
    assert_eq!(created.len(), 1);
    let april_id = created[0].clone();
    let april = app.invoice(&april_id).await;
    assert_eq!(april["status"], "draft");
    assert_eq!(april["number"], "DRAFT");
    // A full month (31.00) and 50 free calls.
    assert_eq!(april["total_amount_cents"], 3100);
    assert_eq!(fee(&april, "api_calls").expect("calls")["amount_cents"], 0);
    assert!(fee(&april, "storage").is_none());

    // A late event for April lands on the draft at the clock's next tick: 4 GB × 0.5 = 2.00 more.
    storage(&app, "late", "4", "2026-04-15T00:00:00Z").await;
    assert!(app.advance("2026-05-01T00:01:00Z").await.is_empty());
    let updated = app.invoice(&april_id).await;
    assert_eq!(updated["status"], "draft");
    assert_eq!(updated["total_amount_cents"], 3300);
    assert_eq!(fee(&updated, "storage").expect("storage")["units"], "4");
    // Refreshing by hand recomputes the same amounts.
    let refreshed = app
        .put_json(
            &format!("/api/v1/invoices/{april_id}/refresh"),
            &json!({}),
            &app.admin_key,
        )
        .await;
    refreshed.assert_status(200);
    assert_eq!(refreshed.json()["invoice"]["total_amount_cents"], 3300);
    let finalized = app
        .post_json(
            &format!("/api/v1/invoices/{april_id}/finalize"),
            &json!({}),
            &app.admin_key,
        )
        .await;
    finalized.assert_status(200);
    let april = finalized.json()["invoice"].clone();
    assert_eq!(april["status"], "finalized");
    assert!(
        april["number"]
            .as_str()
            .expect("number")
            .ends_with("-001-002")
    );
    let again = app
        .post_json(
            &format!("/api/v1/invoices/{april_id}/finalize"),
            &json!({}),
            &app.admin_key,
        )
        .await;
    again.assert_status(405);

    // Past usage reads the closed periods back from their invoices, newest first.
    let past = app
        .get(
            "/api/v1/customers/acme/past_usage?external_subscription_id=sub",
            &app.read_key,
        )
        .await;
    past.assert_status(200);
    let past = past.json();
    assert_eq!(past["meta"]["total_count"], 2);
    let periods = past["usage_periods"].as_array().expect("periods");
    // April: 50 free calls and the late 4 GB (2.00); March: 7.50 + 15.25.
    assert_eq!(periods[0]["lago_invoice_id"], april_id.as_str());
    assert_eq!(periods[0]["from_datetime"], "2026-04-01T00:00:00Z");
    assert_eq!(periods[0]["amount_cents"], 200);
    assert_eq!(periods[1]["lago_invoice_id"], march["lago_id"]);
    assert_eq!(periods[1]["from_datetime"], "2026-03-10T00:00:00Z");
    assert_eq!(periods[1]["to_datetime"], "2026-03-31T23:59:59Z");
    assert_eq!(periods[1]["amount_cents"], 2275);
    assert_eq!(periods[1]["charges_usage"][0]["units"], "250");
    let storage_only = app
        .get(
            "/api/v1/customers/acme/past_usage?external_subscription_id=sub&billable_metric_code=storage&periods_count=1",
            &app.read_key,
        )
        .await
        .json();
    assert_eq!(storage_only["meta"]["total_count"], 1);
    let lines = storage_only["usage_periods"][0]["charges_usage"]
        .as_array()
        .expect("lines");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["billable_metric"]["code"], "storage");
    assert_eq!(lines[0]["units"], "4");
    app.get(
        "/api/v1/customers/acme/past_usage?external_subscription_id=nope",
        &app.read_key,
    )
    .await
    .assert_status(404);

    let paid = app
        .put_json(
            &format!("/api/v1/invoices/{april_id}"),
            &json!({"invoice": {"payment_status": "succeeded"}}),
            &app.admin_key,
        )
        .await;
    paid.assert_status(200);
    assert_eq!(paid.json()["invoice"]["total_paid_amount_cents"], 3300);
    assert_eq!(paid.json()["invoice"]["total_due_amount_cents"], 0);

    let march_id = march["lago_id"].as_str().expect("id").to_owned();
    let voided = app
        .post_json(
            &format!("/api/v1/invoices/{march_id}/void"),
            &json!({}),
            &app.admin_key,
        )
        .await;
    voided.assert_status(200);
    assert_eq!(voided.json()["invoice"]["status"], "voided");
    assert_eq!(voided.json()["invoice"]["number"], Value::String(number));
    let twice = app
        .post_json(
            &format!("/api/v1/invoices/{march_id}/void"),
            &json!({}),
            &app.admin_key,
        )
        .await;
    twice.assert_status(405);
    assert_eq!(twice.json()["code"], "not_voidable");

    // Terminated mid-May at noon on the 16th: 15.5 of 31 days of 31.00 = 15.50.
    assert!(app.advance("2026-05-16T12:00:00Z").await.is_empty());
    app.delete("/api/v1/subscriptions/sub", &app.admin_key)
        .await
        .assert_status(200);
    let created = app.advance("2026-05-17T00:00:00Z").await;
    assert_eq!(created.len(), 1);
    let last = app.invoice(&created[0]).await;
    assert_eq!(
        last["billing_periods"][0]["invoicing_reason"],
        "subscription_terminating"
    );
    assert_eq!(last["total_amount_cents"], 1550);
    assert_eq!(last["status"], "draft");
    // Its grace period ends three days after the termination; the clock finalizes it.
    assert!(app.advance("2026-05-20T00:00:00Z").await.is_empty());
    let last = app.invoice(&created[0]).await;
    assert_eq!(last["status"], "finalized");
    assert!(
        last["number"]
            .as_str()
            .expect("number")
            .ends_with("-001-003")
    );

    let list = app
        .get("/api/v1/invoices?external_customer_id=acme", &app.read_key)
        .await;
    assert_eq!(list.json()["meta"]["total_count"], 3);
    // Nothing after the end.
    assert!(app.advance("2026-09-01T00:00:00Z").await.is_empty());
    assert_eq!(
        app.get(
            "/api/v1/customers/acme/current_usage?external_subscription_id=sub",
            &app.read_key
        )
        .await
        .json()["code"],
        "no_active_subscription"
    );
}

/// Bills a subscription from January to July by moving the clock in the given steps and returns the
/// invoices' (reason, from, total) in order.
async fn bill_in_steps(steps: &[&str]) -> Vec<(String, String, i64)> {
    let app = spawn_simulated("2026-01-15T12:00:00Z").await;
    setup(&app).await;
    app.post_json(
        "/api/v1/subscriptions",
        &json!({"subscription": {
        "external_customer_id": "acme", "plan_code": "pro", "external_id": "sub"}}),
        &app.admin_key,
    )
    .await
    .assert_status(200);
    calls(&app, "jan", 120, 1_768_500_000).await;
    let mut ids = Vec::new();
    for step in steps {
        ids.extend(app.advance(step).await);
    }
    let mut out = Vec::new();
    for id in ids {
        let invoice = app.invoice(&id).await;
        out.push((
            invoice["billing_periods"][0]["invoicing_reason"]
                .as_str()
                .expect("reason")
                .to_owned(),
            invoice["billing_periods"][0]["charges_from_datetime"]
                .as_str()
                .expect("from")
                .to_owned(),
            invoice["total_amount_cents"].as_i64().expect("total"),
        ));
    }
    out
}

#[tokio::test]
async fn every_period_is_billed_once_however_the_clock_moves() {
    let one_jump = bill_in_steps(&["2026-07-01T00:00:00Z"]).await;
    let many = bill_in_steps(&[
        "2026-01-31T23:59:59Z",
        "2026-02-01T00:00:00Z",
        "2026-02-01T00:00:00Z",
        "2026-02-14T00:00:00Z",
        "2026-03-01T00:00:01Z",
        "2026-04-30T00:00:00Z",
        "2026-05-01T00:00:00Z",
        "2026-06-15T00:00:00Z",
        "2026-07-01T00:00:00Z",
    ])
    .await;
    // January from the 15th at noon: 16.5 of 31 days of 31.00 = 16.50, and 120 calls: 20 × 0.05 = 1.00.
    let expected: Vec<(String, String, i64)> = vec![
        (
            "subscription_periodic".into(),
            "2026-01-15T12:00:00Z".into(),
            1650 + 100,
        ),
        (
            "subscription_periodic".into(),
            "2026-02-01T00:00:00Z".into(),
            3100,
        ),
        (
            "subscription_periodic".into(),
            "2026-03-01T00:00:00Z".into(),
            3100,
        ),
        (
            "subscription_periodic".into(),
            "2026-04-01T00:00:00Z".into(),
            3100,
        ),
        (
            "subscription_periodic".into(),
            "2026-05-01T00:00:00Z".into(),
            3100,
        ),
        (
            "subscription_periodic".into(),
            "2026-06-01T00:00:00Z".into(),
            3100,
        ),
    ];
    assert_eq!(one_jump, expected);
    assert_eq!(many, expected);
}

#[tokio::test]
async fn an_event_at_the_instant_a_subscription_ends_is_billed_once() {
    let app = spawn_simulated("2026-04-01T00:00:00Z").await;
    setup(&app).await;
    let subscribe = json!({"subscription": {"external_customer_id": "acme", "plan_code": "pro",
        "external_id": "sub", "billing_time": "calendar"}});
    app.post_json("/api/v1/subscriptions", &subscribe, &app.admin_key)
        .await
        .assert_status(200);
    app.post_json(
        "/api/v1/events",
        &json!({"event": {"transaction_id": "edge", "external_subscription_id": "sub",
            "code": "storage", "timestamp": "2026-04-11T00:00:00Z", "properties": {"gb": "2"}}}),
        &app.ingest_key,
    )
    .await
    .assert_status(200);
    app.advance("2026-04-11T00:00:00Z").await;
    // Terminated at the event's instant, then subscribed again with the same external id at that
    // same instant (not a plan change): the instant belongs to the subscription that ended.
    app.delete("/api/v1/subscriptions/sub", &app.admin_key)
        .await
        .assert_status(200);
    app.post_json("/api/v1/subscriptions", &subscribe, &app.admin_key)
        .await
        .assert_status(200);
    let last = app.advance("2026-04-11T00:00:00Z").await;
    assert_eq!(last.len(), 1);
    let last = app.invoice(&last[0]).await;
    assert_eq!(
        last["billing_periods"][0]["charges_to_datetime"],
        "2026-04-11T00:00:00Z"
    );
    // 2 GB × 0.50 = 1.00.
    let stored = fee(&last, "storage").expect("storage fee");
    assert_eq!(stored["units"], "2");
    assert_eq!(stored["amount_cents"], 100);
    // The new subscription's April (from Apr 11 00:00) does not bill it again.
    let may = app.advance("2026-05-01T00:00:00Z").await;
    assert_eq!(may.len(), 1);
    let may = app.invoice(&may[0]).await;
    assert_eq!(
        may["billing_periods"][0]["charges_from_datetime"],
        "2026-04-11T00:00:00Z"
    );
    assert!(fee(&may, "storage").is_none(), "{may}");
    app.shutdown().await;
}

/// A server whose clock starts at `start`, where customer `acme` (UTC) subscribes then to `basic`,
/// 31.00 a month in arrears.
async fn basic_subscription(start: &str) -> TestApp {
    let app = spawn_simulated(start).await;
    app.post_ok(
        "/api/v1/plans",
        json!({"plan": {"name": "Basic", "code": "basic", "interval": "monthly",
            "amount_cents": 3100, "amount_currency": "USD", "pay_in_advance": false}}),
    )
    .await;
    app.post_ok(
        "/api/v1/customers",
        json!({"customer": {"external_id": "acme", "timezone": "UTC"}}),
    )
    .await;
    app.post_ok(
        "/api/v1/subscriptions",
        json!({"subscription": {"external_customer_id": "acme", "external_id": "sub",
            "plan_code": "basic"}}),
    )
    .await;
    app
}

/// The billing clock visits a subscription again when its next run is due, and at once when what
/// its periods depend on changes: here the customer's time zone moves April 1st in Auckland
/// (UTC+13) to 11:00 UTC on March 31st, before the date the clock had noted.
#[tokio::test]
async fn a_time_zone_change_brings_the_next_run_forward() {
    let app = basic_subscription("2026-03-01T00:00:00Z").await;
    // Billed once (nothing due): the next run is noted for April 1st 00:00 UTC.
    assert!(app.advance("2026-03-02T00:00:00Z").await.is_empty());
    app.post_ok(
        "/api/v1/customers",
        json!({"customer": {"external_id": "acme", "timezone": "Pacific/Auckland"}}),
    )
    .await;
    assert!(app.advance("2026-03-31T10:59:59Z").await.is_empty());
    let created = app.advance("2026-03-31T12:00:00Z").await;
    assert_eq!(created.len(), 1, "the run at April 1st in Auckland");
    let invoice = app.invoice(&created[0]).await;
    assert_eq!(
        invoice["billing_periods"][0]["subscription_to_datetime"],
        "2026-03-31T10:59:59Z"
    );
    // And nothing more until the end of April in Auckland.
    assert!(app.advance("2026-04-30T11:59:59Z").await.is_empty());
    assert_eq!(app.advance("2026-04-30T12:00:00Z").await.len(), 1);
}

/// A plan whose interval changes moves its subscriptions' next run with it.
#[tokio::test]
async fn a_plan_interval_change_brings_the_next_run_forward() {
    let app = basic_subscription("2026-03-04T00:00:00Z").await;
    assert!(app.advance("2026-03-05T00:00:00Z").await.is_empty());
    let reply = app
        .put_json(
            "/api/v1/plans/basic",
            &json!({"plan": {"interval": "weekly"}}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(200);
    // Weeks start on Monday: the week of Wednesday March 4th ends on Monday March 9th.
    assert!(app.advance("2026-03-08T23:59:59Z").await.is_empty());
    let created = app.advance("2026-03-09T00:00:00Z").await;
    assert_eq!(created.len(), 1, "the weekly run of March 9th");
}
