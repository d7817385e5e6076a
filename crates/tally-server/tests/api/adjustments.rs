//! Coupons and taxes on invoices (COMPAT §2.7 totals chain), with amounts computed by hand.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_simulated};

fn totals(invoice: &Value) -> [i64; 6] {
    [
        "fees_amount_cents",
        "coupons_amount_cents",
        "sub_total_excluding_taxes_amount_cents",
        "taxes_amount_cents",
        "sub_total_including_taxes_amount_cents",
        "total_amount_cents",
    ]
    .map(|k| {
        invoice[k]
            .as_i64()
            .unwrap_or_else(|| panic!("{k} in {invoice}"))
    })
}

#[tokio::test]
async fn coupons_then_taxes_then_the_total() {
    let app = spawn_simulated("2026-03-01T00:00:00Z").await;
    app.post_ok("/api/v1/taxes", json!({"tax": {"name": "VAT", "code": "vat", "rate": "20", "applied_to_organization": true}})).await;
    app.post_ok(
        "/api/v1/taxes",
        json!({"tax": {"name": "Swiss VAT", "code": "ch_vat", "rate": "8.1"}}),
    )
    .await;
    app.post_ok(
        "/api/v1/plans",
        json!({"plan": {"name": "Basic", "code": "basic", "interval": "monthly",
        "amount_cents": 10000, "amount_currency": "USD", "pay_in_advance": false}}),
    )
    .await;
    app.post_ok(
        "/api/v1/customers",
        json!({"customer": {"external_id": "acme"}}),
    )
    .await;
    let beta = app
        .post_ok(
            "/api/v1/customers",
            json!({"customer": {"external_id": "beta", "tax_codes": ["ch_vat"]}}),
        )
        .await;
    assert_eq!(beta["customer"]["taxes"][0]["code"], "ch_vat");
    assert_eq!(beta["customer"]["taxes"][0]["rate"], json!(8.1));
    let unknown = app
        .post_json(
            "/api/v1/customers",
            &json!({"customer": {"external_id": "gamma", "tax_codes": ["nope"]}}),
            &app.admin_key,
        )
        .await;
    unknown.assert_status(404);
    assert_eq!(unknown.json()["code"], "tax_not_found");
    assert_eq!(
        app.get("/api/v1/customers/gamma", &app.read_key)
            .await
            .status,
        404,
        "nothing half-written"
    );

    app.post_ok("/api/v1/coupons", json!({"coupon": {"name": "Welcome", "code": "welcome", "coupon_type": "fixed_amount",
        "amount_cents": 2500, "amount_currency": "USD", "frequency": "once", "expiration": "no_expiration"}})).await;
    app.post_ok("/api/v1/coupons", json!({"coupon": {"name": "Ten off", "code": "ten", "coupon_type": "percentage",
        "percentage_rate": "10", "frequency": "recurring", "frequency_duration": 2, "expiration": "no_expiration"}})).await;
    for code in ["welcome", "ten"] {
        app.post_ok(
            "/api/v1/applied_coupons",
            json!({"applied_coupon": {"external_customer_id": "acme", "coupon_code": code}}),
        )
        .await;
    }
    for customer in ["acme", "beta"] {
        app.post_ok(
            "/api/v1/subscriptions",
            json!({"subscription": {"external_customer_id": customer, "plan_code": "basic",
            "external_id": format!("sub_{customer}")}}),
        )
        .await;
    }

    let created = app.advance("2026-04-01T00:00:00Z").await;
    assert_eq!(created.len(), 2);
    let invoices: Vec<Value> = futures_all(&app, &created).await;
    let acme = invoices
        .iter()
        .find(|i| i["customer"]["external_id"] == "acme")
        .expect("acme");
    let beta = invoices
        .iter()
        .find(|i| i["customer"]["external_id"] == "beta")
        .expect("beta");
    // acme: 100.00; 25.00 off, then 10 % of 75.00 = 7.50 off; 20 % VAT on 67.50 = 13.50; 81.00.
    assert_eq!(totals(acme), [10_000, 3_250, 6_750, 1_350, 8_100, 8_100]);
    assert_eq!(acme["credits"].as_array().expect("credits").len(), 2);
    assert_eq!(acme["applied_taxes"][0]["tax_code"], "vat");
    assert_eq!(acme["applied_taxes"][0]["amount_cents"], 1_350);
    assert_eq!(acme["fees"][0]["taxes_amount_cents"], 1_350);
    // beta carries its own tax: 8.1 % of 100.00 = 8.10.
    assert_eq!(totals(beta), [10_000, 0, 10_000, 810, 10_810, 10_810]);

    // The fixed coupon is spent; the percentage has one period left.
    let applied = app
        .get(
            "/api/v1/applied_coupons?external_customer_id=acme",
            &app.read_key,
        )
        .await
        .json();
    let by_code = |code: &str| -> Value {
        applied["applied_coupons"]
            .as_array()
            .expect("list")
            .iter()
            .find(|a| a["coupon_code"] == code)
            .expect("applied")
            .clone()
    };
    assert_eq!(by_code("welcome")["status"], "terminated");
    assert_eq!(by_code("welcome")["amount_cents_remaining"], 0);
    assert_eq!(by_code("ten")["status"], "active");
    assert_eq!(by_code("ten")["frequency_duration_remaining"], 1);

    // May: 10 % off 100.00, VAT on 90.00 = 18.00: 108.00; then the coupon is over.
    let may = app.advance("2026-05-01T00:00:00Z").await;
    let acme_may = futures_all(&app, &may)
        .await
        .into_iter()
        .find(|i| i["customer"]["external_id"] == "acme")
        .expect("acme");
    assert_eq!(
        totals(&acme_may),
        [10_000, 1_000, 9_000, 1_800, 10_800, 10_800]
    );
    let june = app.advance("2026-06-01T00:00:00Z").await;
    let acme_june = futures_all(&app, &june)
        .await
        .into_iter()
        .find(|i| i["customer"]["external_id"] == "acme")
        .expect("acme");
    assert_eq!(
        totals(&acme_june),
        [10_000, 0, 10_000, 2_000, 12_000, 12_000]
    );

    // A plan's taxes win over the customer's and the organization's.
    app.post_ok(
        "/api/v1/taxes",
        json!({"tax": {"name": "Reduced", "code": "reduced", "rate": "5.5"}}),
    )
    .await;
    let plan = app
        .put_json(
            "/api/v1/plans/basic",
            &json!({"plan": {"tax_codes": ["reduced"]}}),
            &app.admin_key,
        )
        .await;
    plan.assert_status(200);
    assert_eq!(plan.json()["plan"]["taxes"][0]["code"], "reduced");
    let july = app.advance("2026-07-01T00:00:00Z").await;
    for invoice in futures_all(&app, &july).await {
        // 5.5 % of 100.00 = 5.50 for both customers.
        assert_eq!(totals(&invoice), [10_000, 0, 10_000, 550, 10_550, 10_550]);
    }
}

async fn futures_all(app: &TestApp, ids: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for id in ids {
        out.push(app.invoice(id).await);
    }
    out
}

#[tokio::test]
async fn wallets_pay_what_they_can_and_never_go_negative() {
    let app = spawn_simulated("2026-03-01T00:00:00Z").await;
    app.post_ok(
        "/api/v1/plans",
        json!({"plan": {"name": "Basic", "code": "basic", "interval": "monthly",
        "amount_cents": 10000, "amount_currency": "USD", "pay_in_advance": false}}),
    )
    .await;
    app.post_ok(
        "/api/v1/customers",
        json!({"customer": {"external_id": "acme"}}),
    )
    .await;
    // 20 paid and 50 granted credits at 1.50 each: 70 credits, worth 105.00.
    let wallet = app
        .post_ok(
            "/api/v1/wallets",
            json!({"wallet": {"external_customer_id": "acme", "currency": "USD",
        "rate_amount": "1.5", "paid_credits": "20", "granted_credits": "50", "name": "Prepaid"}}),
        )
        .await["wallet"]
        .clone();
    assert_eq!(wallet["credits_balance"], "70");
    assert_eq!(wallet["balance_cents"], 10_500);
    let id = wallet["lago_id"].as_str().expect("id").to_owned();
    // The paid credits were billed: 20 × 1.50 = 30.00 on a credit invoice.
    let invoices = app
        .get("/api/v1/invoices?external_customer_id=acme", &app.read_key)
        .await
        .json();
    let credit = &invoices["invoices"][0];
    assert_eq!(credit["invoice_type"], "credit");
    assert_eq!(credit["total_amount_cents"], 3_000);
    assert_eq!(credit["status"], "finalized");

    app.post_ok(
        "/api/v1/subscriptions",
        json!({"subscription": {"external_customer_id": "acme", "plan_code": "basic",
        "external_id": "sub"}}),
    )
    .await;
    let april = app.advance("2026-04-01T00:00:00Z").await;
    let april = app.invoice(&april[0]).await;
    // 100.00 due, all of it paid from the wallet.
    assert_eq!(april["prepaid_credit_amount_cents"], 10_000);
    assert_eq!(april["total_amount_cents"], 0);
    let wallet = app
        .get(&format!("/api/v1/wallets/{id}"), &app.read_key)
        .await
        .json()["wallet"]
        .clone();
    // 70 − 100.00 / 1.50 = 3.333333333333 credits, worth 5.00.
    assert_eq!(wallet["credits_balance"], "3.333333333333");
    assert_eq!(wallet["balance_cents"], 500);
    assert_eq!(wallet["consumed_credits"], "66.666666666667");

    let may = app.advance("2026-05-01T00:00:00Z").await;
    let may = app.invoice(&may[0]).await;
    assert_eq!(may["prepaid_credit_amount_cents"], 500);
    assert_eq!(may["total_amount_cents"], 9_500);
    let wallet = app
        .get(&format!("/api/v1/wallets/{id}"), &app.read_key)
        .await
        .json()["wallet"]
        .clone();
    assert_eq!(wallet["balance_cents"], 0);

    // Voiding more than is left leaves zero, not a debt.
    let voided = app.post_ok("/api/v1/wallet_transactions", json!({"wallet_transaction": {"wallet_id": id, "granted_credits": "10", "voided_credits": "100"}})).await;
    let kinds: Vec<&str> = voided["wallet_transactions"]
        .as_array()
        .expect("list")
        .iter()
        .map(|t| t["transaction_status"].as_str().expect("status"))
        .collect();
    assert_eq!(kinds, vec!["granted", "voided"]);
    let wallet = app
        .get(&format!("/api/v1/wallets/{id}"), &app.read_key)
        .await
        .json()["wallet"]
        .clone();
    assert_eq!(wallet["credits_balance"], "0");
    let history = app
        .get(
            &format!("/api/v1/wallets/{id}/wallet_transactions"),
            &app.read_key,
        )
        .await
        .json();
    assert_eq!(history["meta"]["total_count"], 6);
}

#[tokio::test]
async fn a_charge_with_its_own_taxes_is_taxed_at_them() {
    let app = spawn_simulated("2026-03-01T00:00:00Z").await;
    app.post_ok("/api/v1/taxes", json!({"tax": {"name": "VAT", "code": "vat", "rate": "20", "applied_to_organization": true}})).await;
    app.post_ok(
        "/api/v1/taxes",
        json!({"tax": {"name": "Reduced", "code": "reduced", "rate": "5.5"}}),
    )
    .await;
    let calls = app
        .create_metric(json!({"name": "Calls", "code": "calls", "aggregation_type": "count_agg"}))
        .await;
    let books = app
        .create_metric(json!({"name": "Books", "code": "books", "aggregation_type": "count_agg"}))
        .await;
    let plan = app.post_ok("/api/v1/plans", json!({"plan": {"name": "Mixed", "code": "mixed", "interval": "monthly",
        "amount_cents": 10000, "amount_currency": "USD", "pay_in_advance": false, "charges": [
            {"billable_metric_id": calls["lago_id"], "charge_model": "standard", "properties": {"amount": "0.5"}},
            {"billable_metric_id": books["lago_id"], "charge_model": "standard", "properties": {"amount": "1"},
             "tax_codes": ["reduced"]}]}}))
    .await;
    assert_eq!(plan["plan"]["charges"][0]["taxes"], json!([]));
    assert_eq!(plan["plan"]["charges"][1]["taxes"][0]["code"], "reduced");
    app.create_customer("acme").await;
    app.post_ok(
        "/api/v1/subscriptions",
        json!({"subscription": {"external_customer_id": "acme",
        "plan_code": "mixed", "external_id": "sub"}}),
    )
    .await;
    for (i, code) in ["calls", "books"].iter().cycle().take(20).enumerate() {
        app.send_event(
            json!({"transaction_id": format!("e{i}"), "external_subscription_id": "sub",
            "code": code, "timestamp": "2026-03-10T00:00:00Z"}),
        )
        .await;
    }
    let created = app.advance("2026-04-01T00:00:00Z").await;
    let march = app.invoice(&created[0]).await;
    // Fee 100.00 and 10 calls × 0.50 = 5.00 at VAT 20 %: 20.00 + 1.00; 10 books × 1.00 = 10.00 at
    // the charge's own 5.5 %: 0.55. Fees 115.00, taxes 21.55, total 136.55.
    assert_eq!(totals(&march), [11_500, 0, 11_500, 2_155, 13_655, 13_655]);
    let fee = |code: &str| -> Value {
        march["fees"]
            .as_array()
            .expect("fees")
            .iter()
            .find(|f| f["item"]["code"] == code)
            .expect("fee")
            .clone()
    };
    assert_eq!(fee("books")["taxes_amount_cents"], 55);
    assert_eq!(fee("calls")["taxes_amount_cents"], 100);
    assert_eq!(fee("mixed")["taxes_amount_cents"], 2_000);

    // Updating the plan without the charges keeps the charge's taxes.
    let kept = app
        .put_json(
            "/api/v1/plans/mixed",
            &json!({"plan": {"name": "Mixed 2"}}),
            &app.admin_key,
        )
        .await;
    kept.assert_status(200);
    assert_eq!(
        kept.json()["plan"]["charges"][1]["taxes"][0]["code"],
        "reduced"
    );
}
