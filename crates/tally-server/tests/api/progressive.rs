//! Progressive billing (docs/billing.md, "Progressive billing"): a plan's usage thresholds invoice
//! usage as soon as lifetime usage passes them, and the invoice closing the period takes off what
//! progressive invoices already billed. Amounts are computed by hand in the comments.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_simulated};

/// A server at 2026-04-01 with customer `acme` (UTC), a calls metric, and plan `metered`: monthly,
/// 5.00 in arrears, calls at 1.00 each, with `thresholds`; `acme` subscribes to it at once.
async fn setup(thresholds: Value) -> TestApp {
    let app = spawn_simulated("2026-04-01T00:00:00Z").await;
    let metric = app
        .create_metric(
            json!({"name": "API calls", "code": "api_calls", "aggregation_type": "count_agg"}),
        )
        .await;
    app.post_ok(
        "/api/v1/plans",
        json!({"plan": {"name": "Metered", "code": "metered", "interval": "monthly",
            "amount_cents": 500, "amount_currency": "USD", "pay_in_advance": false,
            "usage_thresholds": thresholds,
            "charges": [{"billable_metric_id": metric["lago_id"], "charge_model": "standard",
                "properties": {"amount": "1"}}]}}),
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
            "plan_code": "metered", "billing_time": "calendar"}}),
    )
    .await;
    app
}

async fn calls(app: &TestApp, prefix: &str, count: usize, at: &str) {
    for i in 0..count {
        app.send_event(json!({"transaction_id": format!("{prefix}{i}"),
            "external_subscription_id": "sub", "code": "api_calls", "timestamp": at}))
            .await;
    }
}

/// Advances the clock and returns the one invoice it created.
async fn one_invoice(app: &TestApp, now: &str) -> Value {
    let ids = app.advance(now).await;
    assert_eq!(ids.len(), 1, "one invoice at {now}: {ids:?}");
    app.invoice(&ids[0]).await
}

fn passed(invoice: &Value) -> Vec<(i64, bool, i64)> {
    invoice["applied_usage_thresholds"]
        .as_array()
        .expect("applied thresholds")
        .iter()
        .map(|a| {
            (
                a["usage_threshold"]["amount_cents"]
                    .as_i64()
                    .expect("amount"),
                a["usage_threshold"]["recurring"]
                    .as_bool()
                    .expect("recurring"),
                a["lifetime_usage_amount_cents"].as_i64().expect("lifetime"),
            )
        })
        .collect()
}

#[tokio::test]
async fn thresholds_invoice_usage_early_and_the_period_end_takes_it_off() {
    // Threshold points on lifetime usage: 10.00, 25.00, then every 20.00: 45.00, 65.00…
    let app = setup(json!([
        {"amount_cents": 1000, "threshold_display_name": "First"},
        {"amount_cents": 2500},
        {"amount_cents": 2000, "recurring": true}
    ]))
    .await;

    // 9 calls = 9.00: below every threshold.
    calls(&app, "a", 9, "2026-04-02T00:00:00Z").await;
    assert!(app.advance("2026-04-03T00:00:00Z").await.is_empty());

    // 12 calls = 12.00 passes 10.00: usage to date is invoiced at once, finalized.
    calls(&app, "b", 3, "2026-04-04T00:00:00Z").await;
    let first = one_invoice(&app, "2026-04-05T00:00:00Z").await;
    assert_eq!(first["invoice_type"], "progressive_billing");
    assert_eq!(first["status"], "finalized");
    assert_eq!(
        first["billing_periods"][0]["invoicing_reason"],
        "progressive_billing"
    );
    assert_eq!(
        first["billing_periods"][0]["charges_from_datetime"],
        "2026-04-01T00:00:00Z"
    );
    assert_eq!(first["fees_amount_cents"], 1_200);
    assert_eq!(first["progressive_billing_credit_amount_cents"], 0);
    assert_eq!(first["total_amount_cents"], 1_200);
    assert_eq!(first["fees"].as_array().expect("fees").len(), 1);
    assert_eq!(first["fees"][0]["units"], "12");
    assert_eq!(passed(&first), vec![(1_000, false, 1_200)]);
    assert_eq!(
        first["applied_usage_thresholds"][0]["usage_threshold"]["threshold_display_name"],
        "First"
    );
    // Nothing more to bill until the next threshold.
    assert!(app.advance("2026-04-06T00:00:00Z").await.is_empty());

    // 27 calls = 27.00 passes 25.00: 27.00 less the 12.00 already invoiced = 15.00.
    calls(&app, "c", 15, "2026-04-10T00:00:00Z").await;
    let second = one_invoice(&app, "2026-04-11T00:00:00Z").await;
    assert_eq!(second["fees_amount_cents"], 2_700);
    assert_eq!(second["progressive_billing_credit_amount_cents"], 1_200);
    assert_eq!(second["sub_total_excluding_taxes_amount_cents"], 1_500);
    assert_eq!(second["total_amount_cents"], 1_500);
    assert_eq!(passed(&second), vec![(2_500, false, 2_700)]);

    // 47 calls = 47.00 passes the recurring 45.00 (25.00 + 20.00): 47.00 − 27.00 = 20.00.
    calls(&app, "d", 20, "2026-04-20T00:00:00Z").await;
    let third = one_invoice(&app, "2026-04-21T00:00:00Z").await;
    assert_eq!(third["progressive_billing_credit_amount_cents"], 2_700);
    assert_eq!(third["total_amount_cents"], 2_000);
    assert_eq!(passed(&third), vec![(2_000, true, 4_700)]);

    // The period closes at 50 calls: subscription fee 5.00 + calls 50.00 = 55.00, less the 47.00
    // invoiced progressively = 8.00.
    calls(&app, "e", 3, "2026-04-25T00:00:00Z").await;
    let closing = one_invoice(&app, "2026-05-01T00:00:00Z").await;
    assert_eq!(closing["invoice_type"], "subscription");
    assert_eq!(closing["fees_amount_cents"], 5_500);
    assert_eq!(closing["progressive_billing_credit_amount_cents"], 4_700);
    assert_eq!(closing["sub_total_excluding_taxes_amount_cents"], 800);
    assert_eq!(closing["total_amount_cents"], 800);
    assert!(passed(&closing).is_empty());

    // Lifetime usage carries over: 50.00 so far, and the next point is 65.00. 10 calls in May make
    // 60.00: nothing; 16 make 66.00: the recurring threshold again, billing May's 16.00 with no
    // credit (April's progressive invoices belong to April).
    calls(&app, "f", 10, "2026-05-03T00:00:00Z").await;
    assert!(app.advance("2026-05-04T00:00:00Z").await.is_empty());
    calls(&app, "g", 6, "2026-05-05T00:00:00Z").await;
    let may = one_invoice(&app, "2026-05-06T00:00:00Z").await;
    assert_eq!(may["fees_amount_cents"], 1_600);
    assert_eq!(may["progressive_billing_credit_amount_cents"], 0);
    assert_eq!(may["total_amount_cents"], 1_600);
    assert_eq!(passed(&may), vec![(2_000, true, 6_600)]);
    assert_eq!(
        may["billing_periods"][0]["charges_from_datetime"],
        "2026-05-01T00:00:00Z"
    );

    // What the customer was invoiced for April adds up to April's usage and fee: 12 + 15 + 20 + 8.
    let total: i64 = [&first, &second, &third, &closing]
        .iter()
        .map(|i| i["total_amount_cents"].as_i64().expect("total"))
        .sum();
    assert_eq!(total, 5_500);
}

#[tokio::test]
async fn taxes_follow_the_net_usage() {
    let app = setup(json!([{"amount_cents": 1000}])).await;
    app.post_ok(
        "/api/v1/taxes",
        json!({"tax": {"name": "VAT", "code": "vat", "rate": "20",
            "applied_to_organization": true}}),
    )
    .await;

    // 12.00 passes 10.00: VAT 20 % of 12.00 = 2.40; 14.40 in all.
    calls(&app, "a", 12, "2026-04-02T00:00:00Z").await;
    let early = one_invoice(&app, "2026-04-03T00:00:00Z").await;
    assert_eq!(early["fees_amount_cents"], 1_200);
    assert_eq!(early["taxes_amount_cents"], 240);
    assert_eq!(early["total_amount_cents"], 1_440);

    // 15 calls by the end of April: 5.00 + 15.00 = 20.00 − 12.00 = 8.00, VAT 1.60, 9.60. The VAT of
    // both invoices, 2.40 + 1.60 = 4.00, is 20 % of the 20.00 billed for April.
    calls(&app, "b", 3, "2026-04-20T00:00:00Z").await;
    let closing = one_invoice(&app, "2026-05-01T00:00:00Z").await;
    assert_eq!(closing["fees_amount_cents"], 2_000);
    assert_eq!(closing["progressive_billing_credit_amount_cents"], 1_200);
    assert_eq!(closing["sub_total_excluding_taxes_amount_cents"], 800);
    assert_eq!(closing["taxes_amount_cents"], 160);
    assert_eq!(closing["total_amount_cents"], 960);
    // The credit comes off the usage fee, not the subscription fee: 15.00 − 12.00 = 3.00 taxed.
    let usage_fee = closing["fees"]
        .as_array()
        .expect("fees")
        .iter()
        .find(|f| f["item"]["type"] == "charge")
        .expect("usage fee")
        .clone();
    assert_eq!(usage_fee["amount_cents"], 1_500);
    assert_eq!(usage_fee["taxes_amount_cents"], 60);

    // In May, 11 calls pass nothing: lifetime usage is 15.00 + 11.00, and 10.00 was passed in April.
    calls(&app, "c", 11, "2026-05-02T00:00:00Z").await;
    assert!(app.advance("2026-05-03T00:00:00Z").await.is_empty());
}

#[tokio::test]
async fn a_voided_progressive_invoice_is_billed_by_the_period_end() {
    let app = setup(json!([{"amount_cents": 1000}])).await;
    calls(&app, "a", 12, "2026-04-02T00:00:00Z").await;
    let early = one_invoice(&app, "2026-04-03T00:00:00Z").await;
    let id = early["lago_id"].as_str().expect("id");
    app.post_ok(&format!("/api/v1/invoices/{id}/void"), json!({}))
        .await;
    // Lifetime usage is now 12.00 with nothing invoiced: the threshold is passed again.
    let again = one_invoice(&app, "2026-04-04T00:00:00Z").await;
    assert_eq!(again["fees_amount_cents"], 1_200);
    assert_eq!(again["progressive_billing_credit_amount_cents"], 0);
    let id = again["lago_id"].as_str().expect("id");
    app.post_ok(&format!("/api/v1/invoices/{id}/void"), json!({}))
        .await;
    // Voided again, the usage is billed by the invoice closing April, which takes no credit off.
    let closing = app.advance("2026-05-01T00:00:00Z").await;
    let closing = app.invoice(closing.last().expect("closing invoice")).await;
    assert_eq!(closing["invoice_type"], "subscription");
    assert_eq!(closing["fees_amount_cents"], 1_700);
    assert_eq!(closing["progressive_billing_credit_amount_cents"], 0);
    assert_eq!(closing["total_amount_cents"], 1_700);
}

#[tokio::test]
async fn plans_keep_validate_and_replace_their_thresholds() {
    let app = setup(json!([
        {"amount_cents": 5000, "threshold_display_name": "High"},
        {"amount_cents": 1000},
        {"amount_cents": 2500, "recurring": true}
    ]))
    .await;
    let plan = app.get("/api/v1/plans/metered", &app.read_key).await;
    plan.assert_status(200);
    let thresholds = plan.json()["plan"]["usage_thresholds"].clone();
    let amounts: Vec<(i64, bool)> = thresholds
        .as_array()
        .expect("list")
        .iter()
        .map(|t| {
            (
                t["amount_cents"].as_i64().expect("amount"),
                t["recurring"].as_bool().expect("recurring"),
            )
        })
        .collect();
    assert_eq!(amounts, vec![(1000, false), (2500, true), (5000, false)]);
    assert_eq!(thresholds[2]["threshold_display_name"], "High");
    let kept = thresholds[2]["lago_id"].clone();

    // An update without `usage_thresholds` keeps them; one with the key replaces the list, keeping
    // the threshold sent with its id.
    let reply = app
        .put_json(
            "/api/v1/plans/metered",
            &json!({"plan": {"name": "Renamed"}}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(200);
    assert_eq!(reply.json()["plan"]["usage_thresholds"], thresholds);
    let reply = app
        .put_json(
            "/api/v1/plans/metered",
            &json!({"plan": {"usage_thresholds": [
                {"id": kept, "amount_cents": 6000, "threshold_display_name": "Higher"}]}}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(200);
    let after = reply.json()["plan"]["usage_thresholds"].clone();
    assert_eq!(after.as_array().expect("list").len(), 1);
    assert_eq!(after[0]["lago_id"], kept);
    assert_eq!(after[0]["amount_cents"], 6000);
    assert_eq!(after[0]["threshold_display_name"], "Higher");

    // Refused, naming each field, and nothing changes.
    let reply = app
        .put_json(
            "/api/v1/plans/metered",
            &json!({"plan": {"usage_thresholds": [
                {"amount_cents": 0},
                {"amount_cents": 100, "recurring": true},
                {"amount_cents": 200, "recurring": true},
                {"amount_cents": 300},
                {"amount_cents": 300}]}}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(422);
    let details = reply.json()["error_details"].clone();
    assert_eq!(
        details,
        json!({"usage_thresholds.0.amount_cents": ["invalid_amount"],
            "usage_thresholds.2.recurring": ["value_already_exist"],
            "usage_thresholds.4.amount_cents": ["value_already_exist"]})
    );
    let reply = app
        .put_json(
            "/api/v1/plans/metered",
            &json!({"plan": {"usage_thresholds": [{"threshold_display_name": "no amount"}, 7]}}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(422);
    assert_eq!(
        reply.json()["error_details"],
        json!({"usage_thresholds.0.amount_cents": ["value_is_mandatory"],
            "usage_thresholds.1": ["invalid_format"]})
    );
    let plan = app.get("/api/v1/plans/metered", &app.read_key).await;
    assert_eq!(plan.json()["plan"]["usage_thresholds"], after);
}

async fn lifetime(app: &TestApp) -> Value {
    let reply = app
        .get("/api/v1/subscriptions/sub/lifetime_usage", &app.read_key)
        .await;
    reply.assert_status(200);
    reply.json()["lifetime_usage"].clone()
}

fn thresholds(usage: &Value) -> Vec<(i64, Value, Value)> {
    usage["usage_thresholds"]
        .as_array()
        .expect("thresholds")
        .iter()
        .map(|t| {
            (
                t["amount_cents"].as_i64().expect("amount"),
                t["completion_ratio"].clone(),
                t["reached_at"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn lifetime_usage_counts_history_and_shows_progress() {
    // Points: 10.00, then every 20.00: 30.00, 50.00…
    let app = setup(json!([
        {"amount_cents": 1000},
        {"amount_cents": 2000, "recurring": true}
    ]))
    .await;
    let usage = lifetime(&app).await;
    assert_eq!(usage["external_subscription_id"], "sub");
    assert_eq!(usage["from_datetime"], "2026-04-01T00:00:00Z");
    assert_eq!(usage["to_datetime"], "2026-04-30T23:59:59Z");
    assert_eq!(usage["current_usage_amount_cents"], 0);
    assert_eq!(
        thresholds(&usage),
        vec![(1000, json!(0), Value::Null), (3000, json!(0), Value::Null)]
    );

    // 6 calls: 6.00 of 10.00; the recurring point is still 20.00 past 10.00.
    calls(&app, "a", 6, "2026-04-02T00:00:00Z").await;
    assert!(app.advance("2026-04-03T00:00:00Z").await.is_empty());
    let usage = lifetime(&app).await;
    assert_eq!(usage["current_usage_amount_cents"], 600);
    assert_eq!(thresholds(&usage)[0].1, json!(0.6));

    // 5.00 of usage from before tally: lifetime 11.00 passes 10.00 at the next tick, which bills
    // the 6.00 used here (the history was billed elsewhere).
    let reply = app
        .put_json(
            "/api/v1/subscriptions/sub/lifetime_usage",
            &json!({"lifetime_usage": {"external_historical_usage_amount_cents": 500}}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(200);
    let usage = reply.json()["lifetime_usage"].clone();
    assert_eq!(usage["external_historical_usage_amount_cents"], 500);
    assert_eq!(
        thresholds(&usage),
        vec![
            (1000, json!(1), Value::Null),
            (3000, json!(0.05), Value::Null)
        ]
    );
    let early = one_invoice(&app, "2026-04-04T00:00:00Z").await;
    assert_eq!(early["invoice_type"], "progressive_billing");
    assert_eq!(early["total_amount_cents"], 600);
    assert_eq!(passed(&early), vec![(1_000, false, 1_100)]);
    let usage = lifetime(&app).await;
    assert_eq!(thresholds(&usage)[0].2, "2026-04-04T00:00:00Z");

    // April closes at 6.00 of usage: 5.00 + 6.00 − 6.00 = 5.00 due. Lifetime: 5.00 history, 6.00
    // invoiced, nothing yet in May.
    let closing = one_invoice(&app, "2026-05-01T00:00:00Z").await;
    assert_eq!(closing["total_amount_cents"], 500);
    let usage = lifetime(&app).await;
    assert_eq!(usage["invoiced_usage_amount_cents"], 600);
    assert_eq!(usage["current_usage_amount_cents"], 0);
    assert_eq!(usage["to_datetime"], "2026-05-31T23:59:59Z");

    // Refused: below zero, missing; unknown subscription.
    for (body, reason) in [
        (
            json!({"external_historical_usage_amount_cents": -1}),
            "invalid_amount",
        ),
        (json!({}), "value_is_mandatory"),
    ] {
        let reply = app
            .put_json(
                "/api/v1/subscriptions/sub/lifetime_usage",
                &json!({ "lifetime_usage": body }),
                &app.admin_key,
            )
            .await;
        reply.assert_status(422);
        assert_eq!(
            reply.json()["error_details"]["external_historical_usage_amount_cents"],
            json!([reason])
        );
    }
    app.get("/api/v1/subscriptions/nope/lifetime_usage", &app.read_key)
        .await
        .assert_status(404);
    assert_eq!(
        lifetime(&app).await["external_historical_usage_amount_cents"],
        500
    );
}
