//! The credit note a termination or an upgrade issues for the unused part of a period paid in advance
//! (docs/billing.md, "Termination, upgrades and downgrades"): its amount, reason and taxes, when it is
//! issued, and how the next invoices spend it. Amounts are computed by hand in the comments.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_simulated};

/// The customer's credit notes, oldest first.
async fn credit_notes(app: &TestApp) -> Vec<Value> {
    let reply = app
        .get(
            "/api/v1/credit_notes?external_customer_id=acme",
            &app.read_key,
        )
        .await;
    reply.assert_status(200);
    let mut notes = reply.json()["credit_notes"]
        .as_array()
        .expect("list")
        .clone();
    notes.reverse();
    notes
}

async fn terminate(app: &TestApp, external_id: &str) {
    app.delete(
        &format!("/api/v1/subscriptions/{external_id}"),
        &app.admin_key,
    )
    .await
    .assert_status(200);
}

async fn subscribe(app: &TestApp, external_id: &str, plan: &str) {
    app.post_ok(
        "/api/v1/subscriptions",
        json!({"subscription": {"external_customer_id": "acme", "external_id": external_id,
            "plan_code": plan, "billing_time": "calendar"}}),
    )
    .await;
}

/// A server with customer `acme` (with `customer` merged in), a calls metric and plans paid in
/// advance: `basic` at 30.00 and `premium` at 60.00 a month, calls at 0.10, `trial` at 30.00 with
/// 10 days of trial.
async fn setup(customer: Value) -> TestApp {
    let app = spawn_simulated("2026-04-01T00:00:00Z").await;
    let metric = app
        .create_metric(
            json!({"name": "API calls", "code": "api_calls", "aggregation_type": "count_agg"}),
        )
        .await;
    for (code, amount, trial) in [
        ("basic", 3000, 0),
        ("premium", 6000, 0),
        ("trial", 3000, 10),
    ] {
        app.post_ok("/api/v1/plans", json!({"plan": {"name": code, "code": code, "interval": "monthly",
            "amount_cents": amount, "amount_currency": "USD", "pay_in_advance": true, "trial_period": trial,
            "charges": [{"billable_metric_id": metric["lago_id"], "charge_model": "standard",
                "properties": {"amount": "0.1"}}]}}))
        .await;
    }
    let mut body = json!({"external_id": "acme", "timezone": "UTC"});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), customer.as_object()) {
        body.extend(extra.clone());
    }
    app.post_ok("/api/v1/customers", json!({ "customer": body }))
        .await;
    app
}

async fn calls(app: &TestApp, subscription: &str, prefix: &str, count: usize, at: &str) {
    for i in 0..count {
        app.send_event(json!({"transaction_id": format!("{prefix}{i}"),
            "external_subscription_id": subscription, "code": "api_calls", "timestamp": at}))
            .await;
    }
}

#[tokio::test]
async fn a_termination_credits_the_unused_share_with_its_taxes() {
    let app = setup(json!({})).await;
    app.post_ok(
        "/api/v1/taxes",
        json!({"tax": {"name": "VAT", "code": "vat", "rate": "20",
        "applied_to_organization": true}}),
    )
    .await;
    subscribe(&app, "sub", "basic").await;
    // Opening invoice: April in advance, 3000 + 20 % VAT 600 = 3600.
    let opening = app.advance("2026-04-01T00:00:00Z").await;
    let opening = app.invoice(&opening[0]).await;
    assert_eq!(opening["total_amount_cents"], 3_600);
    let paid_fee = opening["fees"][0]["lago_id"].clone();
    calls(&app, "sub", "c", 5, "2026-04-05T00:00:00Z").await;

    app.advance("2026-04-11T00:00:00Z").await;
    terminate(&app, "sub").await;
    // No credit note before the final run is billed.
    assert!(credit_notes(&app).await.is_empty());
    let last = app.advance("2026-04-11T00:00:00Z").await;
    assert_eq!(last.len(), 1);

    // Unused: Apr 11 → May 1, 1 − 10/30 = 1 − 0.333333333333 = 0.666666666667 × 3000 =
    // 2000.000000001 → 2000; its VAT follows the fee: 20 % = 400; 2400 of credit.
    let notes = credit_notes(&app).await;
    assert_eq!(notes.len(), 1);
    let note = &notes[0];
    assert_eq!(note["reason"], "order_cancellation");
    assert_eq!(note["lago_invoice_id"], opening["lago_id"]);
    assert_eq!(note["sub_total_excluding_taxes_amount_cents"], 2_000);
    assert_eq!(note["taxes_amount_cents"], 400);
    assert_eq!(note["total_amount_cents"], 2_400);
    assert_eq!(note["credit_amount_cents"], 2_400);
    assert_eq!(note["refund_amount_cents"], 0);
    assert_eq!(note["items"][0]["fee"]["lago_id"], paid_fee);
    assert_eq!(note["items"][0]["amount_cents"], 2_000);

    // The final invoice bills the calls, 5 × 0.10 = 50 + VAT 10 = 60, and spends 60 of the credit.
    let last = app.invoice(&last[0]).await;
    assert_eq!(
        last["billing_periods"][0]["invoicing_reason"],
        "subscription_terminating"
    );
    assert_eq!(last["sub_total_including_taxes_amount_cents"], 60);
    assert_eq!(last["credit_notes_amount_cents"], 60);
    assert_eq!(last["total_amount_cents"], 0);

    // The customer's next invoice spends the rest: a new subscription opening Apr 11 pays
    // 0.666666666667 × 3000 = 2000 + VAT 400 = 2400, less 2400 − 60 = 2340 of credit: 60.
    subscribe(&app, "sub2", "basic").await;
    let next = app.advance("2026-04-11T00:00:00Z").await;
    let next = app.invoice(&next[0]).await;
    assert_eq!(next["sub_total_including_taxes_amount_cents"], 2_400);
    assert_eq!(next["credit_notes_amount_cents"], 2_340);
    assert_eq!(next["total_amount_cents"], 60);
    let note = &credit_notes(&app).await[0];
    assert_eq!(note["balance_amount_cents"], 0);
    assert_eq!(note["credit_status"], "consumed");

    // Billed again, nothing more is credited.
    app.advance("2026-06-01T00:00:00Z").await;
    assert_eq!(credit_notes(&app).await.len(), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn an_upgrade_credits_the_old_plan_as_an_order_change() {
    let app = setup(json!({})).await;
    subscribe(&app, "sub", "basic").await;
    app.advance("2026-04-01T00:00:00Z").await;
    app.advance("2026-04-16T00:00:00Z").await;
    subscribe(&app, "sub", "premium").await;
    let made = app.advance("2026-04-16T00:00:00Z").await;
    assert_eq!(made.len(), 2);

    // Upgraded Apr 16 00:00: 15 of April's 30 days unused, 0.5 × 3000 = 1500.
    let notes = credit_notes(&app).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["reason"], "order_change");
    assert_eq!(notes[0]["total_amount_cents"], 1_500);
    // The old plan's final invoice has nothing to bill; premium opens with 0.5 × 6000 = 3000,
    // less the 1500 of credit: 1500.
    let last = app.invoice(&made[0]).await;
    assert_eq!(last["subscriptions"][0]["plan_code"], "basic");
    assert_eq!(last["total_amount_cents"], 0);
    let opening = app.invoice(&made[1]).await;
    assert_eq!(opening["subscriptions"][0]["plan_code"], "premium");
    assert_eq!(opening["fees_amount_cents"], 3_000);
    assert_eq!(opening["credit_notes_amount_cents"], 1_500);
    assert_eq!(opening["total_amount_cents"], 1_500);
    app.shutdown().await;
}

#[tokio::test]
async fn a_draft_paying_in_advance_is_credited_once_finalized() {
    let app = setup(json!({"billing_configuration": {"invoice_grace_period": 3}})).await;
    subscribe(&app, "sub", "basic").await;
    let opening = app.advance("2026-04-01T00:00:00Z").await;
    calls(&app, "sub", "c", 3, "2026-04-01T12:00:00Z").await;
    app.advance("2026-04-02T00:00:00Z").await;
    terminate(&app, "sub").await;
    let last = app.advance("2026-04-02T00:00:00Z").await;

    // April's invoice is a draft until Apr 4: nothing is credited while it can still change.
    assert_eq!(app.invoice(&opening[0]).await["status"], "draft");
    assert!(credit_notes(&app).await.is_empty());

    // Finalized on Apr 4, the credit note follows: unused Apr 2 → May 1, 1 − 1/30 =
    // 1 − 0.033333333333 = 0.966666666667 × 3000 = 2900.000000001 → 2900.
    app.advance("2026-04-04T00:00:00Z").await;
    assert_eq!(app.invoice(&opening[0]).await["status"], "finalized");
    let notes = credit_notes(&app).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["total_amount_cents"], 2_900);
    assert_eq!(notes[0]["balance_amount_cents"], 2_900);

    // The final invoice, finalized Apr 5, bills 3 calls × 0.10 = 30 and spends 30 of it.
    app.advance("2026-04-05T00:00:00Z").await;
    let last = app.invoice(&last[0]).await;
    assert_eq!(last["status"], "finalized");
    assert_eq!(last["fees_amount_cents"], 30);
    assert_eq!(last["credit_notes_amount_cents"], 30);
    assert_eq!(last["total_amount_cents"], 0);
    assert_eq!(credit_notes(&app).await[0]["balance_amount_cents"], 2_870);
    app.shutdown().await;
}

#[tokio::test]
async fn a_trial_leaves_less_to_credit() {
    let app = setup(json!({})).await;
    subscribe(&app, "sub", "trial").await;
    // The trial ends Apr 11: 0.666666666667 × 3000 = 2000 is billed then.
    let paid = app.advance("2026-04-11T00:00:00Z").await;
    assert_eq!(app.invoice(&paid[0]).await["total_amount_cents"], 2_000);
    app.advance("2026-04-21T00:00:00Z").await;
    terminate(&app, "sub").await;
    app.advance("2026-04-21T00:00:00Z").await;
    // Terminated Apr 21: Apr 21 → May 1 unused, from the position 20/30 = 0.666666666667 to 1:
    // 0.333333333333 × 3000 = 999.999999999 → 1000. Used Apr 11 → Apr 21, 0.333333333334: the
    // two add up to the 0.666666666667 charged.
    let notes = credit_notes(&app).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["total_amount_cents"], 1_000);

    // Terminated during its trial, a subscription has paid nothing and gets nothing back.
    subscribe(&app, "sub2", "trial").await;
    app.advance("2026-04-25T00:00:00Z").await;
    terminate(&app, "sub2").await;
    let last = app.advance("2026-04-25T00:00:00Z").await;
    assert_eq!(app.invoice(&last[0]).await["fees_amount_cents"], 0);
    assert_eq!(credit_notes(&app).await.len(), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn ending_on_a_boundary_already_billed_credits_the_period_paid_for() {
    let app = setup(json!({})).await;
    subscribe(&app, "sub", "basic").await;
    app.advance("2026-04-01T00:00:00Z").await;
    // May 1 bills May in advance; terminated at that same instant, none of May was used: 3000.
    let may = app.advance("2026-05-01T00:00:00Z").await;
    assert_eq!(app.invoice(&may[0]).await["fees_amount_cents"], 3_000);
    terminate(&app, "sub").await;
    let notes = credit_notes(&app).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["lago_invoice_id"].as_str(), Some(may[0].as_str()));
    assert_eq!(notes[0]["total_amount_cents"], 3_000);
    assert!(app.advance("2026-06-01T00:00:00Z").await.is_empty());
    assert_eq!(credit_notes(&app).await.len(), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn a_voided_invoice_is_not_credited() {
    let app = setup(json!({})).await;
    subscribe(&app, "sub", "basic").await;
    let opening = app.advance("2026-04-01T00:00:00Z").await;
    app.post_json(
        &format!("/api/v1/invoices/{}/void", opening[0]),
        &json!({}),
        &app.admin_key,
    )
    .await
    .assert_status(200);
    app.advance("2026-04-11T00:00:00Z").await;
    terminate(&app, "sub").await;
    app.advance("2026-04-11T00:00:00Z").await;
    assert!(credit_notes(&app).await.is_empty());
    app.shutdown().await;
}
