//! One customer's whole life through the HTTP API on the simulated clock, in one story: subscribe
//! mid-month, send usage, read current usage, cross the period end into a draft in its grace period,
//! a late event updates the draft, finalize, download the PDF, a coupon and a wallet pay part of it,
//! a credit note is spent by the next invoice, an upgrade, a downgrade, and a termination with
//! proration. Every amount is computed by hand in the comments; invoice numbers have no gaps.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_simulated};
use crate::invoice_pdf::{fetch, pdf_text};

async fn calls(app: &TestApp, prefix: &str, count: usize, at: &str) {
    let events: Vec<Value> = (0..count)
        .map(|i| {
            json!({"transaction_id": format!("{prefix}-{i}"), "external_subscription_id": "sub",
                "code": "api_calls", "timestamp": at})
        })
        .collect();
    app.post_json(
        "/api/v1/events/batch",
        &json!({ "events": events }),
        &app.ingest_key,
    )
    .await
    .assert_status(200);
}

fn fee_amount(invoice: &Value, item_type: &str) -> i64 {
    invoice["fees"]
        .as_array()
        .expect("fees")
        .iter()
        .find(|f| f["item"]["type"] == item_type)
        .unwrap_or_else(|| panic!("a {item_type} fee on {invoice}"))["amount_cents"]
        .as_i64()
        .expect("amount")
}

async fn subscription(app: &TestApp) -> Value {
    let reply = app.get("/api/v1/subscriptions/sub", &app.read_key).await;
    reply.assert_status(200);
    reply.json()["subscription"].clone()
}

#[tokio::test]
async fn a_customer_from_first_call_to_termination() {
    let app = spawn_simulated("2026-03-16T00:00:00Z").await;
    let metric = app
        .create_metric(
            json!({"name": "API calls", "code": "api_calls", "aggregation_type": "count_agg"}),
        )
        .await;
    // Starter: 20.00 a month in arrears, calls at 0.10. Pro: 60.00, calls at 0.05.
    for (code, fee, price) in [("starter", 2000, "0.1"), ("pro", 6000, "0.05")] {
        app.post_ok(
            "/api/v1/plans",
            json!({"plan": {"name": code, "code": code, "interval": "monthly",
                "amount_cents": fee, "amount_currency": "USD", "pay_in_advance": false,
                "charges": [{"billable_metric_id": metric["lago_id"], "charge_model": "standard",
                    "properties": {"amount": price}}]}}),
        )
        .await;
    }
    app.post_ok(
        "/api/v1/customers",
        json!({"customer": {"external_id": "acme", "name": "Acme", "timezone": "UTC",
            "currency": "USD", "billing_configuration": {"invoice_grace_period": 2}}}),
    )
    .await;
    // A welcome coupon of 5.00, once, and 10 granted wallet credits worth 1.00 each.
    app.post_ok(
        "/api/v1/coupons",
        json!({"coupon": {"name": "Welcome", "code": "welcome", "coupon_type": "fixed_amount",
            "amount_cents": 500, "amount_currency": "USD", "frequency": "once",
            "expiration": "no_expiration"}}),
    )
    .await;
    app.post_ok(
        "/api/v1/applied_coupons",
        json!({"applied_coupon": {"external_customer_id": "acme", "coupon_code": "welcome"}}),
    )
    .await;
    let wallet = app
        .post_ok(
            "/api/v1/wallets",
            json!({"wallet": {"external_customer_id": "acme", "currency": "USD",
                "rate_amount": "1", "granted_credits": "10", "name": "Welcome credits"}}),
        )
        .await["wallet"]
        .clone();
    assert_eq!(wallet["balance_cents"], 1_000);

    // Subscribed mid-March, on the 16th.
    app.post_ok(
        "/api/v1/subscriptions",
        json!({"subscription": {"external_customer_id": "acme", "external_id": "sub",
            "plan_code": "starter", "billing_time": "calendar"}}),
    )
    .await;
    calls(&app, "mar", 40, "2026-03-20T10:00:00Z").await;
    assert!(app.advance("2026-03-21T00:00:00Z").await.is_empty());

    // Current usage: 40 calls × 0.10 = 4.00.
    let usage = app
        .get(
            "/api/v1/customers/acme/current_usage?external_subscription_id=sub",
            &app.read_key,
        )
        .await;
    usage.assert_status(200);
    let usage = usage.json()["customer_usage"].clone();
    assert_eq!(usage["amount_cents"], 400);
    assert_eq!(usage["charges_usage"][0]["units"], "40");

    // March ends: a draft for 16 of March's 31 days of 20.00 = 10.32258… → 10.32, and 4.00 of calls.
    let created = app.advance("2026-04-01T00:00:00Z").await;
    assert_eq!(created.len(), 1);
    let march_id = created[0].clone();
    let march = app.invoice(&march_id).await;
    assert_eq!(march["status"], "draft");
    assert_eq!(march["number"], "DRAFT");
    assert_eq!(fee_amount(&march, "subscription"), 1_032);
    assert_eq!(march["fees_amount_cents"], 1_432);

    // A late call of March, sent in the grace period, lands on the draft at the next tick: 10 more
    // calls, 5.00 of calls in all.
    calls(&app, "late", 10, "2026-03-31T12:00:00Z").await;
    assert!(app.advance("2026-04-01T00:01:00Z").await.is_empty());
    let march = app.invoice(&march_id).await;
    assert_eq!(fee_amount(&march, "charge"), 500);
    assert_eq!(march["fees_amount_cents"], 1_532);

    // Finalized by hand: 15.32 − the 5.00 coupon = 10.32; the wallet pays 10.00 of it; 0.32 due.
    let reply = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/invoices/{march_id}/finalize"),
            &app.admin_key,
            None,
        )
        .await;
    reply.assert_status(200);
    let march = reply.json()["invoice"].clone();
    assert_eq!(march["status"], "finalized");
    assert_eq!(march["coupons_amount_cents"], 500);
    assert_eq!(march["sub_total_excluding_taxes_amount_cents"], 1_032);
    assert_eq!(march["prepaid_credit_amount_cents"], 1_000);
    assert_eq!(march["total_amount_cents"], 32);
    let number = march["number"].as_str().expect("number").to_owned();
    assert!(number.ends_with("-001"), "{number}");
    let wallet_now = app
        .get(
            &format!(
                "/api/v1/wallets/{}",
                wallet["lago_id"].as_str().expect("id")
            ),
            &app.read_key,
        )
        .await
        .json();
    assert_eq!(wallet_now["wallet"]["balance_cents"], 0);

    // The PDF is there at once and shows the number and every amount.
    let downloaded = app
        .post_ok(&format!("/api/v1/invoices/{march_id}/download"), json!({}))
        .await["invoice"]
        .clone();
    let url = downloaded["file_url"]
        .as_str()
        .expect("file_url")
        .to_owned();
    let (status, content_type, pdf) = fetch(&app, &url).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/pdf");
    let text = pdf_text(&pdf);
    for expected in [number.as_str(), "15.32", "10.32", "5.00", "0.32"] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }

    // A credit note gives back 2.00 of March's calls as credit.
    let calls_fee = march["fees"]
        .as_array()
        .expect("fees")
        .iter()
        .find(|f| f["item"]["type"] == "charge")
        .expect("calls fee")["lago_id"]
        .clone();
    let note = app
        .post_ok(
            "/api/v1/credit_notes",
            json!({"credit_note": {"invoice_id": march_id, "reason": "other",
                "credit_amount_cents": 200, "items": [{"fee_id": calls_fee, "amount_cents": 200}]}}),
        )
        .await["credit_note"]
        .clone();
    assert_eq!(note["credit_amount_cents"], 200);
    assert_eq!(
        app.invoice(&march_id).await["credit_notes_amount_cents"],
        0,
        "the note credits the customer; March's own total is unchanged"
    );

    // April: 20 calls on Starter, then an upgrade to Pro on the 11th, at once.
    calls(&app, "apr", 20, "2026-04-05T00:00:00Z").await;
    assert!(app.advance("2026-04-11T00:00:00Z").await.is_empty());
    let upgraded = app
        .post_ok(
            "/api/v1/subscriptions",
            json!({"subscription": {"external_customer_id": "acme", "external_id": "sub",
                "plan_code": "pro"}}),
        )
        .await["subscription"]
        .clone();
    assert_eq!(upgraded["plan_code"], "pro");
    assert_eq!(upgraded["previous_plan_code"], "starter");
    assert_eq!(upgraded["status"], "active");
    // Starter's last invoice: 10 of April's 30 days of 20.00 = 6.666… → 6.67, and 2.00 of calls.
    let created = app.advance("2026-04-11T00:00:00Z").await;
    assert_eq!(created.len(), 1);
    let starter_end = app.invoice(&created[0]).await;
    assert_eq!(
        starter_end["billing_periods"][0]["invoicing_reason"],
        "subscription_terminating"
    );
    assert_eq!(fee_amount(&starter_end, "subscription"), 667);
    assert_eq!(starter_end["fees_amount_cents"], 867);

    // A downgrade back to Starter waits for the end of Pro's period.
    let downgraded = app
        .post_ok(
            "/api/v1/subscriptions",
            json!({"subscription": {"external_customer_id": "acme", "external_id": "sub",
                "plan_code": "starter"}}),
        )
        .await["subscription"]
        .clone();
    assert_eq!(downgraded["plan_code"], "pro");
    assert_eq!(downgraded["next_plan_code"], "starter");
    assert_eq!(downgraded["downgrade_plan_date"], "2026-05-01");

    // Starter's last invoice is finalized when its grace period ends; the credit note pays 2.00:
    // 8.67 − 2.00 = 6.67.
    assert_eq!(app.advance("2026-04-13T00:00:00Z").await.len(), 0);
    let starter_end = app
        .invoice(starter_end["lago_id"].as_str().expect("id"))
        .await;
    assert_eq!(starter_end["status"], "finalized");
    assert_eq!(starter_end["credit_notes_amount_cents"], 200);
    assert_eq!(starter_end["total_amount_cents"], 667);
    assert!(
        starter_end["number"]
            .as_str()
            .expect("number")
            .ends_with("-002")
    );

    // Pro's calls, then April ends: 20 of 30 days of 60.00 = 40.00, 30 calls × 0.05 = 1.50.
    calls(&app, "pro", 30, "2026-04-25T00:00:00Z").await;
    let created = app.advance("2026-05-01T00:00:00Z").await;
    assert_eq!(created.len(), 1);
    let pro = app.invoice(&created[0]).await;
    assert_eq!(fee_amount(&pro, "subscription"), 4_000);
    assert_eq!(fee_amount(&pro, "charge"), 150);
    assert_eq!(pro["total_amount_cents"], 4_150);
    // The downgrade took effect.
    let current = subscription(&app).await;
    assert_eq!(current["plan_code"], "starter");
    assert_eq!(current["status"], "active");
    assert_eq!(current["previous_plan_code"], "pro");

    // Terminated at noon on May 16th: 15.5 of May's 31 days of 20.00 = 10.00.
    assert!(app.advance("2026-05-16T12:00:00Z").await.is_empty());
    app.delete("/api/v1/subscriptions/sub", &app.admin_key)
        .await
        .assert_status(200);
    let created = app.advance("2026-05-17T00:00:00Z").await;
    assert_eq!(created.len(), 1);
    let last = app.invoice(&created[0]).await;
    assert_eq!(fee_amount(&last, "subscription"), 1_000);
    assert_eq!(last["total_amount_cents"], 1_000);
    assert!(app.advance("2026-05-20T00:00:00Z").await.is_empty());

    // Four invoices, all finalized, numbered 001 to 004 in the order they were finalized.
    let listed = app
        .get("/api/v1/invoices?external_customer_id=acme", &app.read_key)
        .await
        .json();
    let mut numbers: Vec<String> = listed["invoices"]
        .as_array()
        .expect("invoices")
        .iter()
        .map(|i| {
            assert_eq!(i["status"], "finalized");
            i["number"].as_str().expect("number").to_owned()
        })
        .collect();
    numbers.sort();
    let suffixes: Vec<&str> = numbers.iter().map(|n| &n[n.len() - 3..]).collect();
    assert_eq!(suffixes, vec!["001", "002", "003", "004"]);
}
