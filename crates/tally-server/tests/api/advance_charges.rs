//! Pay-in-advance charges: every event billed on its own by the billing clock, exactly once, with
//! amounts computed by hand; and `POST /events/estimate_fees`.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_at, spawn_simulated, spawn_simulated_at};

async fn ok(app: &TestApp, path: &str, body: Value) -> Value {
    let reply = app.post_json(path, &body, &app.admin_key).await;
    reply.assert_status(200);
    reply.json()
}

/// A customer in UTC, the metrics, and a subscription to a plan with these charges, all on
/// 2026-03-01 (the clock's start). `charges` name their metric by code.
async fn setup(app: &TestApp, plan_amount_cents: i64, charges: Vec<Value>) {
    ok(
        app,
        "/api/v1/customers",
        json!({"customer": {"external_id": "acme", "timezone": "UTC"}}),
    )
    .await;
    let metrics = [
        json!({"name": "Tokens", "code": "tokens", "aggregation_type": "sum_agg", "field_name": "tokens"}),
        json!({"name": "Seats", "code": "seats", "aggregation_type": "unique_count_agg", "field_name": "user"}),
        json!({"name": "Transfers", "code": "transfers", "aggregation_type": "sum_agg", "field_name": "amount"}),
        json!({"name": "API calls", "code": "api_calls", "aggregation_type": "count_agg"}),
    ];
    let mut ids = std::collections::BTreeMap::new();
    for metric in metrics {
        let created = app.create_metric(metric).await;
        ids.insert(
            created["code"].as_str().expect("code").to_owned(),
            created["lago_id"].clone(),
        );
    }
    let charges: Vec<Value> = charges
        .into_iter()
        .map(|mut charge| {
            let code = charge["billable_metric_code"]
                .as_str()
                .expect("metric code")
                .to_owned();
            let object = charge.as_object_mut().expect("charge");
            object.remove("billable_metric_code");
            object.insert("billable_metric_id".into(), ids[&code].clone());
            charge
        })
        .collect();
    ok(
        app,
        "/api/v1/plans",
        json!({"plan": {"name": "Pro", "code": "pro", "interval": "monthly",
            "amount_cents": plan_amount_cents, "amount_currency": "USD", "pay_in_advance": false,
            "charges": charges}}),
    )
    .await;
    ok(
        app,
        "/api/v1/subscriptions",
        json!({"subscription": {"external_customer_id": "acme", "plan_code": "pro", "external_id": "sub"}}),
    )
    .await;
}

async fn event(app: &TestApp, transaction_id: &str, code: &str, at: &str, properties: Value) {
    app.send_event(
        json!({"transaction_id": transaction_id, "external_subscription_id": "sub",
        "code": code, "timestamp": at, "properties": properties}),
    )
    .await;
}

async fn invoice(app: &TestApp, id: &str) -> Value {
    let reply = app
        .get(&format!("/api/v1/invoices/{id}"), &app.read_key)
        .await;
    reply.assert_status(200);
    reply.json()["invoice"].clone()
}

async fn fees(app: &TestApp, query: &str) -> Vec<Value> {
    let reply = app
        .get(&format!("/api/v1/fees?{query}"), &app.read_key)
        .await;
    reply.assert_status(200);
    reply.json()["fees"].as_array().expect("fees").clone()
}

fn number(invoice: &Value) -> String {
    invoice["number"].as_str().expect("number").to_owned()
}

#[tokio::test]
async fn each_event_gets_its_own_invoice_and_the_period_end_does_not_bill_it_again() {
    let app = spawn_simulated("2026-03-01T00:00:00Z").await;
    setup(
        &app,
        1000,
        vec![
            json!({"billable_metric_code": "tokens", "charge_model": "standard",
            "pay_in_advance": true, "properties": {"amount": "0.01"}}),
        ],
    )
    .await;
    event(
        &app,
        "t1",
        "tokens",
        "2026-03-02T10:00:00Z",
        json!({"tokens": 100}),
    )
    .await;
    event(
        &app,
        "t2",
        "tokens",
        "2026-03-05T10:00:00Z",
        json!({"tokens": 250}),
    )
    .await;
    event(
        &app,
        "t3",
        "tokens",
        "2026-03-09T10:00:00Z",
        json!({"tokens": 40}),
    )
    .await;

    let created = app.advance("2026-03-20T00:00:00Z").await;
    assert_eq!(created.len(), 3);
    // 100 × 0.01 = 1.00; 250 × 0.01 = 2.50; 40 × 0.01 = 0.40.
    let expected = [("t1", "100", 100), ("t2", "250", 250), ("t3", "40", 40)];
    for (index, (id, (transaction, units, cents))) in created.iter().zip(expected).enumerate() {
        let invoice = invoice(&app, id).await;
        assert_eq!(invoice["status"], "finalized");
        assert_eq!(invoice["invoice_type"], "subscription");
        assert_eq!(invoice["issuing_date"], "2026-03-20");
        let period = &invoice["billing_periods"][0];
        assert_eq!(period["invoicing_reason"], "in_advance_charge");
        assert_eq!(period["charges_from_datetime"], "2026-03-01T00:00:00Z");
        assert_eq!(period["charges_to_datetime"], "2026-03-31T23:59:59Z");
        let lines = invoice["fees"].as_array().expect("fees");
        assert_eq!(lines.len(), 1);
        let fee = &lines[0];
        assert_eq!(fee["item"]["code"], "tokens");
        assert_eq!(fee["pay_in_advance"], true);
        assert_eq!(fee["event_transaction_id"], transaction);
        assert_eq!(fee["units"], units);
        assert_eq!(fee["events_count"], 1);
        assert_eq!(fee["amount_cents"], cents);
        assert_eq!(invoice["total_amount_cents"], cents);
        // Numbered in the order of the events, without gaps: the customer's 1st, 2nd, 3rd invoice.
        let suffix = format!("-001-{:03}", index + 1);
        assert!(number(&invoice).ends_with(&suffix), "{}", number(&invoice));
    }

    // Current usage shows the charge priced on the period's usage so far, as Lago does:
    // 390 × 0.01 = 3.90.
    let usage = app
        .get(
            "/api/v1/customers/acme/current_usage?external_subscription_id=sub",
            &app.read_key,
        )
        .await
        .json();
    let line = &usage["customer_usage"]["charges_usage"][0];
    assert_eq!(line["units"], "390");
    assert_eq!(line["amount_cents"], 390);

    // Exactly once: the clock again, the same event sent again, the clock again.
    assert!(app.advance("2026-03-20T00:00:00Z").await.is_empty());
    event(
        &app,
        "t1",
        "tokens",
        "2026-03-02T10:00:00Z",
        json!({"tokens": 100}),
    )
    .await;
    assert!(app.advance("2026-03-21T00:00:00Z").await.is_empty());
    assert_eq!(fees(&app, "fee_type=charge").await.len(), 3);

    // March ends: the period's invoice bills the subscription fee (March whole, 10.00) and not the
    // tokens again.
    let created = app.advance("2026-04-01T00:00:00Z").await;
    assert_eq!(created.len(), 1);
    let march = invoice(&app, &created[0]).await;
    let lines = march["fees"].as_array().expect("fees");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["item"]["code"], "pro");
    assert_eq!(march["total_amount_cents"], 1000);
    assert!(number(&march).ends_with("-001-004"));
    let listed = app
        .get("/api/v1/invoices?external_customer_id=acme", &app.read_key)
        .await
        .json();
    assert_eq!(listed["meta"]["total_count"], 4);
    // Past usage lists March once, from its period invoice.
    let past = app
        .get(
            "/api/v1/customers/acme/past_usage?external_subscription_id=sub",
            &app.read_key,
        )
        .await
        .json();
    assert_eq!(past["meta"]["total_count"], 1);
    assert_eq!(
        past["usage_periods"][0]["lago_invoice_id"],
        march["lago_id"]
    );
}

#[tokio::test]
async fn a_graduated_charge_bills_the_tiers_an_event_reaches() {
    let app = spawn_simulated("2026-03-01T00:00:00Z").await;
    setup(
        &app,
        0,
        vec![json!({"billable_metric_code": "tokens", "charge_model": "graduated",
            "pay_in_advance": true, "properties": {"graduated_ranges": [
                {"from_value": 0, "to_value": 100, "per_unit_amount": "0", "flat_amount": "0"},
                {"from_value": 101, "to_value": null, "per_unit_amount": "0.02", "flat_amount": "1"}]}})],
    )
    .await;
    event(
        &app,
        "g1",
        "tokens",
        "2026-03-02T10:00:00Z",
        json!({"tokens": 60}),
    )
    .await;
    event(
        &app,
        "g2",
        "tokens",
        "2026-03-03T10:00:00Z",
        json!({"tokens": 70}),
    )
    .await;
    event(
        &app,
        "g3",
        "tokens",
        "2026-03-04T10:00:00Z",
        json!({"tokens": 10}),
    )
    .await;
    let created = app.advance("2026-03-10T00:00:00Z").await;
    // 60 tokens stay in the free tier: 0, no invoice. 130 tokens: 30 × 0.02 + 1 (tier 2's flat
    // amount) = 1.60, all of it new. 140 tokens: 1.80, of which 1.60 is billed: 0.20.
    assert_eq!(created.len(), 2);
    let second = invoice(&app, &created[0]).await;
    assert_eq!(second["fees"][0]["event_transaction_id"], "g2");
    assert_eq!(second["fees"][0]["units"], "70");
    assert_eq!(second["fees"][0]["precise_amount"], "1.6");
    assert_eq!(second["total_amount_cents"], 160);
    let third = invoice(&app, &created[1]).await;
    assert_eq!(third["fees"][0]["event_transaction_id"], "g3");
    assert_eq!(third["total_amount_cents"], 20);
    // The fee of the first event is kept, on no invoice.
    let listed = fees(&app, "external_subscription_id=sub&fee_type=charge").await;
    assert_eq!(listed.len(), 3);
    let first = listed
        .iter()
        .find(|f| f["event_transaction_id"] == "g1")
        .expect("fee of g1");
    assert_eq!(first["amount_cents"], 0);
    assert_eq!(first["lago_invoice_id"], Value::Null);
    assert_eq!(first["units"], "60");

    // An estimate for 50 more tokens: 190 tokens price 90 × 0.02 + 1 = 2.80, of which 1.80 is
    // billed: 1.00. It writes nothing.
    let estimate = app
        .post_json(
            "/api/v1/events/estimate_fees",
            &json!({"event": {"external_subscription_id": "sub", "code": "tokens", "properties": {"tokens": 50}}}),
            &app.admin_key,
        )
        .await;
    estimate.assert_status(200);
    let estimated = estimate.json()["fees"].as_array().expect("fees").clone();
    assert_eq!(estimated.len(), 1);
    assert_eq!(estimated[0]["amount_cents"], 100);
    assert_eq!(estimated[0]["units"], "50");
    assert_eq!(estimated[0]["lago_id"], Value::Null);
    assert_eq!(estimated[0]["lago_invoice_id"], Value::Null);
    assert_eq!(estimated[0]["pay_in_advance"], true);
    assert_eq!(estimated[0]["from_date"], "2026-03-01T00:00:00Z");
    assert!(app.advance("2026-03-11T00:00:00Z").await.is_empty());
    assert_eq!(fees(&app, "external_subscription_id=sub").await.len(), 3);
}

#[tokio::test]
async fn a_unique_value_seen_before_bills_nothing() {
    let app = spawn_simulated("2026-03-01T00:00:00Z").await;
    setup(
        &app,
        0,
        vec![
            json!({"billable_metric_code": "seats", "charge_model": "standard",
            "pay_in_advance": true, "properties": {"amount": "5"}}),
        ],
    )
    .await;
    event(
        &app,
        "s1",
        "seats",
        "2026-03-02T10:00:00Z",
        json!({"user": "ann"}),
    )
    .await;
    event(
        &app,
        "s2",
        "seats",
        "2026-03-03T10:00:00Z",
        json!({"user": "bob"}),
    )
    .await;
    event(
        &app,
        "s3",
        "seats",
        "2026-03-04T10:00:00Z",
        json!({"user": "ann"}),
    )
    .await;
    // ann: 5.00; bob: 5.00; ann again adds no seat: 0, no invoice.
    let created = app.advance("2026-03-10T00:00:00Z").await;
    assert_eq!(created.len(), 2);
    for id in &created {
        assert_eq!(invoice(&app, id).await["total_amount_cents"], 500);
    }
    let listed = fees(&app, "billable_metric_code=seats").await;
    assert_eq!(listed.len(), 3);
    let repeat = listed
        .iter()
        .find(|f| f["event_transaction_id"] == "s3")
        .expect("fee of s3");
    assert_eq!(repeat["units"], "0");
    assert_eq!(repeat["amount_cents"], 0);
    // An estimate for a seat already counted: 0.
    let estimate = app
        .post_json(
            "/api/v1/events/estimate_fees",
            &json!({"event": {"external_customer_id": "acme", "code": "seats", "properties": {"user": "bob"}}}),
            &app.admin_key,
        )
        .await;
    estimate.assert_status(200);
    assert_eq!(estimate.json()["fees"][0]["amount_cents"], 0);
    // A new seat in April is billed again: the count starts over with the period.
    event(
        &app,
        "s4",
        "seats",
        "2026-04-02T10:00:00Z",
        json!({"user": "ann"}),
    )
    .await;
    let created = app.advance("2026-04-03T00:00:00Z").await;
    // The March period invoice (no subscription fee, nothing in arrears: 0) and ann in April (5.00).
    let totals: Vec<i64> = futures::future::join_all(created.iter().map(|id| invoice(&app, id)))
        .await
        .iter()
        .map(|i| i["total_amount_cents"].as_i64().expect("total"))
        .collect();
    assert_eq!(totals.iter().sum::<i64>(), 500);
    assert!(totals.contains(&500));
}

#[tokio::test]
async fn a_charge_that_is_not_invoiceable_keeps_its_fees_off_invoices() {
    let app = spawn_simulated("2026-03-01T00:00:00Z").await;
    setup(
        &app,
        0,
        vec![
            json!({"billable_metric_code": "transfers", "charge_model": "percentage",
            "pay_in_advance": true, "invoiceable": false,
            "properties": {"rate": "1", "fixed_amount": "0.25"}}),
        ],
    )
    .await;
    event(
        &app,
        "x1",
        "transfers",
        "2026-03-02T10:00:00Z",
        json!({"amount": 100}),
    )
    .await;
    event(
        &app,
        "x2",
        "transfers",
        "2026-03-03T10:00:00Z",
        json!({"amount": 40}),
    )
    .await;
    assert!(app.advance("2026-03-10T00:00:00Z").await.is_empty());
    // 1 % of 100 + 0.25 = 1.25; 1 % of 40 + 0.25 = 0.65.
    let listed = fees(&app, "external_customer_id=acme").await;
    assert_eq!(listed.len(), 2);
    // Newest first.
    assert_eq!(listed[0]["event_transaction_id"], "x2");
    assert_eq!(listed[0]["amount_cents"], 65);
    assert_eq!(listed[1]["event_transaction_id"], "x1");
    assert_eq!(listed[1]["amount_cents"], 125);
    for fee in &listed {
        assert_eq!(fee["invoiceable"], false);
        assert_eq!(fee["lago_invoice_id"], Value::Null);
        assert_eq!(fee["pay_in_advance"], true);
        assert_eq!(fee["external_subscription_id"], "sub");
        assert_eq!(fee["amount_details"]["rate"], "1");
    }
    let id = listed[1]["lago_id"].as_str().expect("id");
    let one = app.get(&format!("/api/v1/fees/{id}"), &app.read_key).await;
    one.assert_status(200);
    assert_eq!(one.json()["fee"]["amount_cents"], 125);
    let missing = app
        .get(
            &format!("/api/v1/fees/{}", uuid::Uuid::new_v4()),
            &app.read_key,
        )
        .await;
    missing.assert_status(404);
    assert_eq!(missing.json()["code"], "fee_not_found");
    // The period ends: its invoice bills nothing of the transfers.
    let created = app.advance("2026-04-01T00:00:00Z").await;
    for id in &created {
        let invoice = invoice(&app, id).await;
        assert_eq!(invoice["total_amount_cents"], 0);
        assert!(invoice["fees"].as_array().expect("fees").is_empty());
    }
}

#[tokio::test]
async fn advance_fees_are_taxed_and_wait_out_the_grace_period() {
    let app = spawn_simulated("2026-03-01T00:00:00Z").await;
    ok(
        &app,
        "/api/v1/taxes",
        json!({"tax": {"name": "VAT", "code": "vat", "rate": "20", "applied_to_organization": true}}),
    )
    .await;
    setup(
        &app,
        0,
        vec![
            json!({"billable_metric_code": "api_calls", "charge_model": "standard",
            "pay_in_advance": true, "properties": {"amount": "0.75"}}),
        ],
    )
    .await;
    // An event naming only the customer belongs to its one subscription.
    app.send_event(
        json!({"transaction_id": "c1", "external_customer_id": "acme",
        "code": "api_calls", "timestamp": "2026-03-02T10:00:00Z"}),
    )
    .await;
    let created = app.advance("2026-03-03T00:00:00Z").await;
    assert_eq!(created.len(), 1);
    let taxed = invoice(&app, &created[0]).await;
    // 1 call × 0.75 = 0.75; VAT 20 % of 0.75 = 0.15; 0.90.
    assert_eq!(taxed["fees_amount_cents"], 75);
    assert_eq!(taxed["taxes_amount_cents"], 15);
    assert_eq!(taxed["total_amount_cents"], 90);
    assert_eq!(taxed["fees"][0]["taxes_amount_cents"], 15);
    assert_eq!(taxed["applied_taxes"][0]["tax_code"], "vat");

    // With a grace period of 2 days, the invoice waits as a draft and is numbered when it ends.
    ok(
        &app,
        "/api/v1/customers",
        json!({"customer": {"external_id": "acme", "billing_configuration": {"invoice_grace_period": 2}}}),
    )
    .await;
    app.send_event(
        json!({"transaction_id": "c2", "external_customer_id": "acme",
        "code": "api_calls", "timestamp": "2026-03-03T10:00:00Z"}),
    )
    .await;
    let created = app.advance("2026-03-04T00:00:00Z").await;
    assert_eq!(created.len(), 1);
    let draft = invoice(&app, &created[0]).await;
    assert_eq!(draft["status"], "draft");
    assert_eq!(draft["number"], "DRAFT");
    assert_eq!(draft["total_amount_cents"], 90);
    // Grace ends on 2026-03-06 00:00 (2 × 24 h after the invoice was made).
    assert!(app.advance("2026-03-06T00:00:00Z").await.is_empty());
    let finalized = invoice(&app, &created[0]).await;
    assert_eq!(finalized["status"], "finalized");
    assert_eq!(finalized["total_amount_cents"], 90);
    assert_eq!(finalized["fees"][0]["event_transaction_id"], "c2");
    assert!(number(&finalized).ends_with("-001-002"));
}

#[tokio::test]
async fn estimates_answer_lago_errors() {
    let app = spawn_simulated("2026-03-01T00:00:00Z").await;
    setup(
        &app,
        0,
        vec![
            json!({"billable_metric_code": "tokens", "charge_model": "standard",
            "pay_in_advance": true, "properties": {"amount": "0.01"}}),
            json!({"billable_metric_code": "api_calls", "charge_model": "standard",
            "properties": {"amount": "0.01"}}),
        ],
    )
    .await;
    let estimate = |body: Value| {
        let app = &app;
        async move {
            app.post_json(
                "/api/v1/events/estimate_fees",
                &json!({ "event": body }),
                &app.admin_key,
            )
            .await
        }
    };
    let reply = estimate(json!({"external_customer_id": "nobody", "code": "tokens"})).await;
    reply.assert_status(404);
    assert_eq!(reply.json()["code"], "customer_not_found");
    let reply = estimate(json!({"external_subscription_id": "nope", "code": "tokens"})).await;
    reply.assert_status(404);
    assert_eq!(reply.json()["code"], "subscription_not_found");
    let reply = estimate(json!({"external_subscription_id": "sub", "code": "unknown"})).await;
    reply.assert_status(404);
    assert_eq!(reply.json()["code"], "billable_metric_not_found");
    let reply = estimate(json!({"external_subscription_id": "sub", "code": "api_calls"})).await;
    reply.assert_status(422);
    assert_eq!(
        reply.json()["error_details"],
        json!({"code": ["does_not_match_an_instant_charge"]})
    );
    let reply = estimate(json!({"external_subscription_id": "sub", "code": "tokens",
        "properties": {"tokens": "many"}}))
    .await;
    reply.assert_status(422);
    assert_eq!(
        reply.json()["error_details"],
        json!({"properties": ["value_is_not_valid_number"]})
    );
    // 12 tokens × 0.01 = 0.12.
    let reply = estimate(json!({"external_subscription_id": "sub", "code": "tokens",
        "properties": {"tokens": 12}}))
    .await;
    reply.assert_status(200);
    assert_eq!(reply.json()["fees"][0]["amount_cents"], 12);
    assert_eq!(reply.json()["fees"][0]["item"]["code"], "tokens");
}

#[tokio::test]
async fn two_billing_clocks_on_one_database_bill_each_event_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tally.db");
    let app = spawn_app_at(&path).await;
    setup(
        &app,
        0,
        vec![
            json!({"billable_metric_code": "api_calls", "charge_model": "standard",
            "pay_in_advance": true, "properties": {"amount": "1"}}),
        ],
    )
    .await;
    let events: Vec<Value> = (0..40)
        .map(|i| {
            json!({"transaction_id": format!("p{i}"), "external_subscription_id": "sub",
            "code": "api_calls"})
        })
        .collect();
    app.post_json(
        "/api/v1/events/batch",
        &json!({ "events": events }),
        &app.ingest_key,
    )
    .await
    .assert_status(200);
    // A second process on the same file (it does not ingest) runs the clock at the same time.
    let mut options = tally_store::sqlite::SqliteOptions::new(&path);
    options.ingest = false;
    let other = tally_store::sqlite::SqliteStore::open(&options).expect("second store");
    use tally_store::Store;
    let at = tally_core::Timestamp::from_datetime(chrono::Utc::now());
    let (first, second) = tokio::join!(app.store.run_billing(at), other.run_billing(at));
    let made = first.expect("first clock").len() + second.expect("second clock").len();
    other.close().await;
    // The server's own clock may have billed some of them in between: count what exists.
    let listed = app
        .get(
            "/api/v1/invoices?external_customer_id=acme&per_page=1000",
            &app.read_key,
        )
        .await
        .json();
    // 40 calls at 1.00 each: 40 invoices of 100 cents, never more.
    assert_eq!(listed["meta"]["total_count"], 40);
    assert!(made <= 40);
    let numbers: std::collections::BTreeSet<String> = listed["invoices"]
        .as_array()
        .expect("invoices")
        .iter()
        .map(|i| {
            assert_eq!(i["total_amount_cents"], 100);
            number(i)
        })
        .collect();
    assert_eq!(numbers.len(), 40);
    assert_eq!(fees(&app, "fee_type=charge&per_page=1000").await.len(), 40);
    app.shutdown().await;
}

#[tokio::test]
async fn a_late_event_is_billed_when_it_arrives_in_the_period_it_belongs_to() {
    let app = spawn_simulated("2026-03-01T00:00:00Z").await;
    setup(
        &app,
        0,
        vec![json!({"billable_metric_code": "tokens", "charge_model": "graduated",
            "pay_in_advance": true, "properties": {"graduated_ranges": [
                {"from_value": 0, "to_value": 100, "per_unit_amount": "0.01", "flat_amount": "0"},
                {"from_value": 101, "to_value": null, "per_unit_amount": "0.005", "flat_amount": "0"}]}})],
    )
    .await;
    event(
        &app,
        "m1",
        "tokens",
        "2026-03-10T10:00:00Z",
        json!({"tokens": 80}),
    )
    .await;
    // 80 × 0.01 = 0.80, then March closes (its period invoice bills nothing in arrears).
    assert_eq!(app.advance("2026-04-02T00:00:00Z").await.len(), 2);
    // On April 2nd an event of March 30th arrives: March's tokens go from 80 to 120, so it bills
    // 20 × 0.01 + 20 × 0.005 = 0.30, on an invoice of its own issued now, for March.
    event(
        &app,
        "late",
        "tokens",
        "2026-03-30T10:00:00Z",
        json!({"tokens": 40}),
    )
    .await;
    // April's tokens start from zero: 10 × 0.01 = 0.10.
    event(
        &app,
        "a1",
        "tokens",
        "2026-04-02T10:00:00Z",
        json!({"tokens": 10}),
    )
    .await;
    let created = app.advance("2026-04-03T00:00:00Z").await;
    assert_eq!(created.len(), 2);
    let late = invoice(&app, &created[0]).await;
    assert_eq!(late["issuing_date"], "2026-04-03");
    assert_eq!(late["status"], "finalized");
    assert_eq!(
        late["billing_periods"][0]["charges_from_datetime"],
        "2026-03-01T00:00:00Z"
    );
    assert_eq!(late["fees"][0]["event_transaction_id"], "late");
    assert_eq!(late["fees"][0]["from_date"], "2026-03-01T00:00:00Z");
    assert_eq!(late["total_amount_cents"], 30);
    let april = invoice(&app, &created[1]).await;
    assert_eq!(
        april["billing_periods"][0]["charges_from_datetime"],
        "2026-04-01T00:00:00Z"
    );
    assert_eq!(april["total_amount_cents"], 10);
}

#[tokio::test]
async fn a_restart_neither_loses_nor_repeats_a_fee() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tally.db");
    let app = spawn_simulated_at(&path, "2026-03-01T00:00:00Z").await;
    setup(
        &app,
        0,
        vec![
            json!({"billable_metric_code": "api_calls", "charge_model": "standard",
            "pay_in_advance": true, "properties": {"amount": "2"}}),
        ],
    )
    .await;
    event(&app, "r1", "api_calls", "2026-03-02T10:00:00Z", json!({})).await;
    assert_eq!(app.advance("2026-03-03T00:00:00Z").await.len(), 1);
    // Stored, then the server stops before its clock ticks again.
    event(&app, "r2", "api_calls", "2026-03-03T10:00:00Z", json!({})).await;
    app.shutdown().await;

    let app = spawn_simulated_at(&path, "2026-03-03T00:00:00Z").await;
    // r1 was billed before the restart; r2 is billed once now: 1 call × 2.00.
    let created = app.advance("2026-03-04T00:00:00Z").await;
    assert_eq!(created.len(), 1);
    let second = invoice(&app, &created[0]).await;
    assert_eq!(second["fees"][0]["event_transaction_id"], "r2");
    assert_eq!(second["total_amount_cents"], 200);
    assert!(app.advance("2026-03-05T00:00:00Z").await.is_empty());
    assert_eq!(fees(&app, "fee_type=charge").await.len(), 2);
    app.shutdown().await;
}

/// Seats carried into April are billed on the invoice that closes March, but they are April's: past
/// usage shows March's own usage only.
#[tokio::test]
async fn carried_seats_belong_to_the_period_they_open() {
    let app = spawn_simulated("2026-03-01T00:00:00Z").await;
    let seats = app
        .create_metric(
            json!({"name": "Members", "code": "members", "aggregation_type": "sum_agg",
            "field_name": "n", "recurring": true}),
        )
        .await;
    setup(
        &app,
        0,
        vec![
            json!({"billable_metric_code": "tokens", "charge_model": "standard",
            "properties": {"amount": "0.01"}}),
        ],
    )
    .await;
    app.put_json(
        "/api/v1/plans/pro",
        &json!({"plan": {"charges": [{"billable_metric_id": seats["lago_id"],
            "charge_model": "standard", "pay_in_advance": true, "properties": {"amount": "10"}}]}}),
        &app.admin_key,
    )
    .await
    .assert_status(200);
    event(
        &app,
        "m1",
        "members",
        "2026-03-05T00:00:00Z",
        json!({"n": 4}),
    )
    .await;
    app.advance("2026-03-06T00:00:00Z").await;
    let created = app.advance("2026-04-01T00:00:00Z").await;
    assert_eq!(created.len(), 1);
    // The invoice closing March bills the 4 seats for April: 40 $.
    assert_eq!(invoice(&app, &created[0]).await["fees_amount_cents"], 4_000);
    let past = app
        .get(
            "/api/v1/customers/acme/past_usage?external_subscription_id=sub",
            &app.read_key,
        )
        .await;
    past.assert_status(200);
    let march = &past.json()["usage_periods"][0];
    assert_eq!(march["from_datetime"], "2026-03-01T00:00:00Z");
    assert_eq!(march["amount_cents"], 0, "{march}");
}
