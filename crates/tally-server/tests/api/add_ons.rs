//! Add-ons (`/add_ons`) and one-off invoices (`POST /invoices`), with amounts computed by hand.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_json, spawn_app, spawn_simulated, validation_error};
use crate::invoice_pdf::{fetch, pdf_text};

/// An add-on answer without its generated `lago_id` and `created_at` (checked to be present).
fn without_ids(add_on: &Value) -> Value {
    let mut add_on = add_on.clone();
    let map = add_on.as_object_mut().expect("an object");
    assert!(map.remove("lago_id").is_some_and(|v| v.is_string()));
    assert!(map.remove("created_at").is_some_and(|v| v.is_string()));
    for tax in map["taxes"].as_array_mut().expect("taxes") {
        let tax = tax.as_object_mut().expect("tax");
        tax.remove("lago_id");
        tax.remove("created_at");
    }
    add_on
}

#[tokio::test]
async fn add_ons_are_created_listed_changed_and_deleted() {
    let app = spawn_app().await;
    app.post_ok(
        "/api/v1/taxes",
        json!({"tax": {"name": "VAT", "code": "vat", "rate": "20"}}),
    )
    .await;

    let created = app
        .post_ok(
            "/api/v1/add_ons",
            json!({"add_on": {"name": "Setup", "code": "setup",
        "invoice_display_name": "Setup fee", "amount_cents": 50000, "amount_currency": "USD",
        "description": "Implementation for new customers.", "tax_codes": ["vat"]}}),
        )
        .await;
    assert_json(
        &without_ids(&created["add_on"]),
        &json!({"name": "Setup", "invoice_display_name": "Setup fee", "code": "setup",
            "amount_cents": 50000, "amount_currency": "USD",
            "description": "Implementation for new customers.",
            "taxes": [{"name": "VAT", "code": "vat", "rate": 20, "description": null,
                "applied_to_organization": false, "add_ons_count": 0, "customers_count": 0,
                "plans_count": 0, "charges_count": 0}]}),
    );
    for (code, amount) in [("support", 2500), ("workshop", 120_000)] {
        app.post_ok(
            "/api/v1/add_ons",
            json!({"add_on": {"name": code, "code": code,
            "amount_cents": amount, "amount_currency": "EUR"}}),
        )
        .await;
    }

    // A code in use, missing or mistyped fields, a price of 0, and an unknown tax.
    let taken = app
        .post_json(
            "/api/v1/add_ons",
            &json!({"add_on": {"name": "Again", "code": "setup", "amount_cents": 1, "amount_currency": "USD"}}),
            &app.admin_key,
        )
        .await;
    taken.assert_status(422);
    assert_json(
        &taken.json(),
        &validation_error(json!({"code": ["value_already_exist"]})),
    );
    let refused = app
        .post_json(
            "/api/v1/add_ons",
            &json!({"add_on": {"code": "x", "amount_cents": "ten", "amount_currency": "ZZZ", "tax_codes": "vat"}}),
            &app.admin_key,
        )
        .await;
    refused.assert_status(422);
    assert_json(
        &refused.json(),
        &validation_error(json!({"name": ["value_is_mandatory"],
            "amount_cents": ["invalid_format"], "amount_currency": ["value_is_invalid"],
            "tax_codes": ["invalid_format"]})),
    );
    let missing = app
        .post_json(
            "/api/v1/add_ons",
            &json!({"add_on": {"name": "X", "code": "x"}}),
            &app.admin_key,
        )
        .await;
    missing.assert_status(422);
    assert_json(
        &missing.json(),
        &validation_error(
            json!({"amount_cents": ["value_is_mandatory"], "amount_currency": ["value_is_mandatory"]}),
        ),
    );
    let free = app
        .post_json(
            "/api/v1/add_ons",
            &json!({"add_on": {"name": "Free", "code": "free", "amount_cents": 0, "amount_currency": "USD"}}),
            &app.admin_key,
        )
        .await;
    free.assert_status(422);
    assert_json(
        &free.json(),
        &validation_error(json!({"amount_cents": ["value_is_out_of_range"]})),
    );
    let unknown_tax = app
        .post_json(
            "/api/v1/add_ons",
            &json!({"add_on": {"name": "Taxed", "code": "taxed", "amount_cents": 100,
                "amount_currency": "USD", "tax_codes": ["nope"]}}),
            &app.admin_key,
        )
        .await;
    unknown_tax.assert_status(404);
    assert_eq!(unknown_tax.json()["code"], "tax_not_found");
    let absent = app.get("/api/v1/add_ons/taxed", &app.read_key).await;
    absent.assert_status(404);
    assert_eq!(
        absent.json(),
        json!({"status": 404, "error": "Not Found", "code": "add_on_not_found"}),
        "nothing half-written"
    );
    app.post_json(
        "/api/v1/add_ons",
        &json!({"name": "no root key"}),
        &app.admin_key,
    )
    .await
    .assert_status(400);

    // Pages of two, oldest first.
    let first = app
        .get("/api/v1/add_ons?page=1&per_page=2", &app.read_key)
        .await
        .json();
    let codes = |list: &Value| -> Vec<String> {
        list["add_ons"]
            .as_array()
            .expect("add_ons")
            .iter()
            .map(|a| a["code"].as_str().expect("code").to_owned())
            .collect()
    };
    assert_eq!(codes(&first), ["setup", "support"]);
    assert_eq!(
        first["meta"],
        json!({"current_page": 1, "next_page": 2, "prev_page": null, "total_pages": 2, "total_count": 3})
    );
    let second = app
        .get("/api/v1/add_ons?page=2&per_page=2", &app.read_key)
        .await
        .json();
    assert_eq!(codes(&second), ["workshop"]);
    assert_eq!(
        second["meta"],
        json!({"current_page": 2, "next_page": null, "prev_page": 1, "total_pages": 2, "total_count": 3})
    );

    // Only the keys sent change; `tax_codes: []` removes the taxes; `null` clears a text.
    let changed = app
        .put_json(
            "/api/v1/add_ons/setup",
            &json!({"add_on": {"name": "Onboarding", "code": "onboarding", "description": null, "tax_codes": []}}),
            &app.admin_key,
        )
        .await;
    changed.assert_status(200);
    assert_json(
        &without_ids(&changed.json()["add_on"]),
        &json!({"name": "Onboarding", "invoice_display_name": "Setup fee", "code": "onboarding",
            "amount_cents": 50000, "amount_currency": "USD", "description": null, "taxes": []}),
    );
    assert_eq!(
        changed.json()["add_on"]["lago_id"],
        created["add_on"]["lago_id"]
    );
    app.get("/api/v1/add_ons/setup", &app.read_key)
        .await
        .assert_status(404);
    let collision = app
        .put_json(
            "/api/v1/add_ons/onboarding",
            &json!({"add_on": {"code": "support"}}),
            &app.admin_key,
        )
        .await;
    collision.assert_status(422);
    assert_json(
        &collision.json(),
        &validation_error(json!({"code": ["value_already_exist"]})),
    );
    app.put_json(
        "/api/v1/add_ons/nope",
        &json!({"add_on": {"name": "x"}}),
        &app.admin_key,
    )
    .await
    .assert_status(404);

    // A deleted add-on answers as it was, its code is free again, and lists leave it out.
    let deleted = app.delete("/api/v1/add_ons/support", &app.admin_key).await;
    deleted.assert_status(200);
    assert_eq!(deleted.json()["add_on"]["code"], "support");
    app.get("/api/v1/add_ons/support", &app.read_key)
        .await
        .assert_status(404);
    app.delete("/api/v1/add_ons/support", &app.admin_key)
        .await
        .assert_status(404);
    let listed = app.get("/api/v1/add_ons", &app.read_key).await.json();
    assert_eq!(codes(&listed), ["onboarding", "workshop"]);
    assert_eq!(listed["meta"]["total_count"], 2);
    let again = app
        .post_ok(
            "/api/v1/add_ons",
            json!({"add_on": {"name": "Support", "code": "support",
        "amount_cents": 3000, "amount_currency": "EUR"}}),
        )
        .await;
    assert_ne!(
        again["add_on"]["lago_id"],
        deleted.json()["add_on"]["lago_id"]
    );
}

/// Sets up a customer `acme` on a 10.00 USD monthly plan in arrears from 2026-03-10, billed once on
/// April 1st (its invoice 1), then two add-ons and two taxes. Returns the March invoice's number.
async fn acme_with_add_ons(app: &TestApp) -> String {
    app.post_ok(
        "/api/v1/plans",
        json!({"plan": {"name": "Basic", "code": "basic", "interval": "monthly",
        "amount_cents": 1000, "amount_currency": "USD", "pay_in_advance": false}}),
    )
    .await;
    app.post_ok(
        "/api/v1/customers",
        json!({"customer": {"external_id": "acme", "name": "Acme", "timezone": "UTC"}}),
    )
    .await;
    app.post_ok(
        "/api/v1/subscriptions",
        json!({"subscription": {"external_customer_id": "acme",
        "plan_code": "basic", "external_id": "sub_acme"}}),
    )
    .await;
    let created = app.advance("2026-04-01T00:00:00Z").await;
    assert_eq!(created.len(), 1);
    let march = app
        .get(&format!("/api/v1/invoices/{}", created[0]), &app.read_key)
        .await
        .json()["invoice"]
        .clone();
    assert_eq!(march["status"], "finalized");
    assert_eq!(march["sequential_id"], 1);

    app.post_ok(
        "/api/v1/taxes",
        json!({"tax": {"name": "VAT", "code": "vat", "rate": "20"}}),
    )
    .await;
    app.post_ok(
        "/api/v1/taxes",
        json!({"tax": {"name": "Reduced VAT", "code": "reduced", "rate": "5.5"}}),
    )
    .await;
    app.post_ok(
        "/api/v1/add_ons",
        json!({"add_on": {"name": "Setup", "code": "setup",
        "invoice_display_name": "Setup fee", "amount_cents": 10000, "amount_currency": "USD",
        "description": "One-time setup", "tax_codes": ["vat"]}}),
    )
    .await;
    app.post_ok(
        "/api/v1/add_ons",
        json!({"add_on": {"name": "Hours", "code": "hours",
        "amount_cents": 5000, "amount_currency": "USD"}}),
    )
    .await;
    march["number"].as_str().expect("number").to_owned()
}

/// The one-off invoice of the tests: 2.5 hours at a custom 10.01 USD with the reduced rate, and the
/// setup add-on at its own price and tax.
fn two_fees() -> Value {
    json!({"invoice": {"external_customer_id": "acme", "currency": "USD", "fees": [
        {"add_on_code": "hours", "units": "2.5", "unit_amount_cents": 1001,
         "invoice_display_name": "Consulting hours", "description": "Architecture review",
         "tax_codes": ["reduced"]},
        {"add_on_code": "setup"}]}})
}

#[tokio::test]
async fn a_one_off_invoice_bills_add_ons_at_once_in_the_customers_sequence() {
    let app = spawn_simulated("2026-03-10T00:00:00Z").await;
    let march_number = acme_with_add_ons(&app).await;
    let prefix = march_number
        .strip_suffix("-001-001")
        .expect("acme's first invoice")
        .to_owned();
    // A coupon and prepaid credits wait for the next subscription invoice: one-off invoices take
    // neither, as in Lago.
    app.post_ok(
        "/api/v1/coupons",
        json!({"coupon": {"name": "Welcome", "code": "welcome",
        "coupon_type": "fixed_amount", "amount_cents": 500, "amount_currency": "USD",
        "frequency": "once", "expiration": "no_expiration"}}),
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
            json!({"wallet": {"external_customer_id": "acme",
        "currency": "USD", "rate_amount": "1", "granted_credits": "10"}}),
        )
        .await;
    let wallet_id = wallet["wallet"]["lago_id"]
        .as_str()
        .expect("wallet")
        .to_owned();
    app.advance("2026-04-15T09:30:00Z").await;

    let reply = app
        .post_json("/api/v1/invoices", &two_fees(), &app.admin_key)
        .await;
    reply.assert_status(200);
    let invoice = reply.json()["invoice"].clone();
    assert_eq!(invoice["invoice_type"], "one_off");
    assert_eq!(invoice["status"], "finalized");
    assert_eq!(invoice["payment_status"], "pending");
    assert_eq!(invoice["currency"], "USD");
    assert_eq!(invoice["issuing_date"], "2026-04-15");
    // The next number of acme's one sequence: no gap after the March invoice.
    assert_eq!(invoice["number"], format!("{prefix}-001-002"));
    assert_eq!(invoice["sequential_id"], 2);
    assert!(invoice["file_url"].is_string());
    assert_eq!(invoice["subscriptions"], json!([]));
    assert_eq!(invoice["billing_periods"], json!([]));

    let fees = invoice["fees"].as_array().expect("fees");
    assert_eq!(fees.len(), 2);
    let hours = &fees[0];
    assert_eq!(hours["item"]["type"], "add_on");
    assert_eq!(hours["item"]["item_type"], "AddOn");
    assert_eq!(hours["item"]["code"], "hours");
    assert_eq!(hours["item"]["name"], "Hours");
    assert_eq!(hours["item"]["invoice_display_name"], "Consulting hours");
    let hours_add_on = app.get("/api/v1/add_ons/hours", &app.read_key).await.json();
    assert_eq!(
        hours["item"]["lago_item_id"],
        hours_add_on["add_on"]["lago_id"]
    );
    assert_eq!(hours["description"], "Architecture review");
    assert_eq!(hours["units"], "2.5");
    assert_eq!(hours["precise_unit_amount"], "10.01");
    // 10.01 × 2.5 = 25.025 USD: a tie, rounded to the even 2502 cents (Lago rounds up to 2503).
    assert_eq!(hours["precise_amount"], "25.025");
    assert_eq!(hours["amount_cents"], 2502);
    // 5.5 % of 25.02 = 1.3761 → 138 cents.
    assert_eq!(hours["taxes_amount_cents"], 138);
    assert_eq!(hours["applied_taxes"][0]["tax_code"], "reduced");
    assert_eq!(hours["total_amount_cents"], 2502 + 138);
    assert_eq!(hours["from_date"], "2026-04-15T09:30:00Z");
    assert_eq!(hours["to_date"], "2026-04-15T09:30:00Z");
    let setup = &fees[1];
    assert_eq!(setup["item"]["code"], "setup");
    assert_eq!(setup["item"]["invoice_display_name"], "Setup fee");
    assert_eq!(setup["description"], "One-time setup");
    // No units sent: 1 × the add-on's 100.00 = 10000 cents; its own tax, 20 % → 2000.
    assert_eq!(setup["units"], "1");
    assert_eq!(setup["amount_cents"], 10_000);
    assert_eq!(setup["taxes_amount_cents"], 2000);
    assert_eq!(setup["applied_taxes"][0]["tax_code"], "vat");

    // 2502 + 10000 = 12502; taxes 138 + 2000 = 2138; 12502 + 2138 = 14640; nothing taken off.
    for (key, expected) in [
        ("fees_amount_cents", 12_502),
        ("coupons_amount_cents", 0),
        ("sub_total_excluding_taxes_amount_cents", 12_502),
        ("taxes_amount_cents", 2138),
        ("sub_total_including_taxes_amount_cents", 14_640),
        ("credit_notes_amount_cents", 0),
        ("prepaid_credit_amount_cents", 0),
        ("total_amount_cents", 14_640),
        ("total_due_amount_cents", 14_640),
    ] {
        assert_eq!(invoice[key], expected, "{key}");
    }
    let applied: Vec<(String, i64)> = invoice["applied_taxes"]
        .as_array()
        .expect("applied taxes")
        .iter()
        .map(|t| {
            (
                t["tax_code"].as_str().expect("code").to_owned(),
                t["amount_cents"].as_i64().expect("amount"),
            )
        })
        .collect();
    assert_eq!(
        applied,
        [("reduced".to_owned(), 138), ("vat".to_owned(), 2000)]
    );
    let wallet = app
        .get(&format!("/api/v1/wallets/{wallet_id}"), &app.read_key)
        .await
        .json();
    assert_eq!(wallet["wallet"]["balance_cents"], 1000, "credits untouched");

    // The invoice reads back the same, and keeps its fees when the add-on goes away.
    app.delete("/api/v1/add_ons/hours", &app.admin_key)
        .await
        .assert_status(200);
    let id = invoice["lago_id"].as_str().expect("id").to_owned();
    let read = app
        .get(&format!("/api/v1/invoices/{id}"), &app.read_key)
        .await
        .json()["invoice"]
        .clone();
    assert_eq!(read["fees"], invoice["fees"]);
    assert_eq!(read["total_amount_cents"], 14_640);

    // April's subscription invoice follows without a gap, and it is the one that takes the coupon
    // and the credits: 10.00 − 5.00 coupon = 5.00, paid by 5.00 of the 10.00 of credits.
    let created = app.advance("2026-05-01T00:00:00Z").await;
    assert_eq!(created.len(), 1);
    let april = app
        .get(&format!("/api/v1/invoices/{}", created[0]), &app.read_key)
        .await
        .json()["invoice"]
        .clone();
    assert_eq!(april["invoice_type"], "subscription");
    assert_eq!(april["number"], format!("{prefix}-001-003"));
    assert_eq!(april["fees_amount_cents"], 1000);
    assert_eq!(april["coupons_amount_cents"], 500);
    assert_eq!(april["prepaid_credit_amount_cents"], 500);
    assert_eq!(april["total_amount_cents"], 0);

    let listed = app
        .get("/api/v1/invoices?external_customer_id=acme", &app.read_key)
        .await
        .json();
    assert_eq!(listed["meta"]["total_count"], 3);
}

#[tokio::test]
async fn one_off_invoices_refuse_bad_input_and_write_nothing() {
    let app = spawn_simulated("2026-03-10T00:00:00Z").await;
    acme_with_add_ons(&app).await;
    app.post_ok(
        "/api/v1/add_ons",
        json!({"add_on": {"name": "Audit", "code": "audit",
        "amount_cents": 70000, "amount_currency": "EUR"}}),
    )
    .await;
    let post = |body: Value| {
        let app = &app;
        async move {
            app.post_json("/api/v1/invoices", &body, &app.admin_key)
                .await
        }
    };

    let unknown_customer = post(json!({"invoice": {"external_customer_id": "nobody",
        "fees": [{"add_on_code": "setup"}]}}))
    .await;
    unknown_customer.assert_status(404);
    assert_eq!(unknown_customer.json()["code"], "customer_not_found");
    let unknown_add_on = post(json!({"invoice": {"external_customer_id": "acme",
        "fees": [{"add_on_code": "setup"}, {"add_on_code": "nope"}]}}))
    .await;
    unknown_add_on.assert_status(404);
    assert_eq!(unknown_add_on.json()["code"], "add_on_not_found");
    let unknown_tax = post(json!({"invoice": {"external_customer_id": "acme",
        "fees": [{"add_on_code": "setup", "tax_codes": ["nope"]}]}}))
    .await;
    unknown_tax.assert_status(404);
    assert_eq!(unknown_tax.json()["code"], "tax_not_found");

    // acme pays in USD since its subscription.
    let other_currency = post(
        json!({"invoice": {"external_customer_id": "acme", "currency": "EUR",
        "fees": [{"add_on_code": "audit"}]}}),
    )
    .await;
    other_currency.assert_status(422);
    assert_json(
        &other_currency.json(),
        &validation_error(json!({"currency": ["currencies_does_not_match"]})),
    );
    // The audit add-on is priced in EUR: on a USD invoice it needs a price of its own.
    let foreign_price = post(json!({"invoice": {"external_customer_id": "acme",
        "fees": [{"add_on_code": "audit"}]}}))
    .await;
    foreign_price.assert_status(422);
    assert_json(
        &foreign_price.json(),
        &validation_error(json!({"fees.0.add_on_code": ["currencies_does_not_match"]})),
    );

    let no_fees = post(json!({"invoice": {"external_customer_id": "acme", "fees": []}})).await;
    no_fees.assert_status(422);
    assert_json(
        &no_fees.json(),
        &validation_error(json!({"fees": ["value_is_mandatory"]})),
    );
    let bad_fields = post(json!({"invoice": {"currency": "ZZZ", "fees": [
        {"add_on_code": "setup", "units": "-1", "unit_amount_cents": "abc"},
        {"units": "two", "tax_codes": [1]},
        "setup",
        {"add_on_code": "setup", "unit_amount_cents": -5, "from_datetime": "2026-04-02T00:00:00Z"},
        {"add_on_code": "setup", "from_datetime": "2026-04-02T00:00:00Z", "to_datetime": "2026-04-01T00:00:00Z"},
        {"add_on_code": "setup", "from_datetime": "yesterday", "to_datetime": "2026-04-01T00:00:00Z"}]}}))
    .await;
    bad_fields.assert_status(422);
    assert_json(
        &bad_fields.json(),
        &validation_error(json!({
            "external_customer_id": ["value_is_mandatory"],
            "currency": ["value_is_invalid"],
            "fees.0.units": ["value_is_out_of_range"],
            "fees.0.unit_amount_cents": ["invalid_format"],
            "fees.1.add_on_code": ["value_is_mandatory"],
            "fees.1.units": ["invalid_format"],
            "fees.1.tax_codes": ["invalid_format"],
            "fees.2": ["invalid_format"],
            "fees.3.unit_amount_cents": ["value_is_out_of_range"],
            "fees.3.to_datetime": ["value_is_mandatory"],
            "fees.4.to_datetime": ["invalid_date"],
            "fees.5.from_datetime": ["invalid_date"],
        })),
    );
    app.post_json("/api/v1/invoices", &json!({"fees": []}), &app.admin_key)
        .await
        .assert_status(400);

    // None of these left an invoice behind: acme still has its March invoice only, and a new one
    // takes number 2.
    let listed = app
        .get("/api/v1/invoices?external_customer_id=acme", &app.read_key)
        .await
        .json();
    assert_eq!(listed["meta"]["total_count"], 1);
    let made = post(two_fees()).await;
    made.assert_status(200);
    let made = made.json()["invoice"].clone();
    assert_eq!(made["sequential_id"], 2);

    // Like any finalized invoice, it can be credited: 50.00 of the setup fee + its 20 % VAT = 60.00.
    let setup_fee = made["fees"][1]["lago_id"].clone();
    let note = app
        .post_ok(
            "/api/v1/credit_notes",
            json!({"credit_note": {"invoice_id": made["lago_id"],
        "reason": "other", "items": [{"fee_id": setup_fee, "amount_cents": 5000}]}}),
        )
        .await;
    assert_eq!(note["credit_note"]["total_amount_cents"], 6000);
    assert_eq!(note["credit_note"]["credit_amount_cents"], 6000);
}

#[tokio::test]
async fn a_customer_without_currency_takes_the_invoices_and_default_taxes_apply() {
    let app = spawn_simulated("2026-03-10T00:00:00Z").await;
    app.post_ok(
        "/api/v1/taxes",
        json!({"tax": {"name": "Sales tax", "code": "sales",
        "rate": "8.25", "applied_to_organization": true}}),
    )
    .await;
    app.post_ok(
        "/api/v1/taxes",
        json!({"tax": {"name": "Swiss VAT", "code": "ch_vat", "rate": "8.1"}}),
    )
    .await;
    app.post_ok(
        "/api/v1/add_ons",
        json!({"add_on": {"name": "Workshop", "code": "workshop",
        "amount_cents": 33_333, "amount_currency": "JPY"}}),
    )
    .await;
    app.post_ok(
        "/api/v1/customers",
        json!({"customer": {"external_id": "beta"}}),
    )
    .await;
    app.post_ok(
        "/api/v1/customers",
        json!({"customer": {"external_id": "gamma", "tax_codes": ["ch_vat"]}}),
    )
    .await;

    let no_currency = app
        .post_json(
            "/api/v1/invoices",
            &json!({"invoice": {"external_customer_id": "beta", "fees": [{"add_on_code": "workshop"}]}}),
            &app.admin_key,
        )
        .await;
    no_currency.assert_status(422);
    assert_json(
        &no_currency.json(),
        &validation_error(json!({"currency": ["value_is_mandatory"]})),
    );
    let beta = app
        .get("/api/v1/customers/beta", &app.read_key)
        .await
        .json();
    assert_eq!(beta["customer"]["currency"], Value::Null);

    // ¥33,333 × 0.5 = ¥16,666.5: a tie, to the even ¥16,666. The organization's 8.25 % applies, as
    // neither the fee, the add-on nor beta names a tax: 16666 × 0.0825 = 1374.945 → ¥1,375.
    let reply = app
        .post_json(
            "/api/v1/invoices",
            &json!({"invoice": {"external_customer_id": "beta", "currency": "JPY",
                "fees": [{"add_on_code": "workshop", "units": 0.5}]}}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(200);
    let invoice = reply.json()["invoice"].clone();
    assert_eq!(invoice["fees"][0]["amount_cents"], 16_666);
    assert_eq!(invoice["fees"][0]["applied_taxes"][0]["tax_code"], "sales");
    assert_eq!(invoice["taxes_amount_cents"], 1375);
    assert_eq!(invoice["total_amount_cents"], 16_666 + 1375);
    assert!(
        invoice["number"]
            .as_str()
            .expect("number")
            .ends_with("-001-001"),
        "beta's first invoice"
    );
    let beta = app
        .get("/api/v1/customers/beta", &app.read_key)
        .await
        .json();
    assert_eq!(beta["customer"]["currency"], "JPY");

    // gamma's own tax comes before the organization's: ¥33,333 × 8.1 % = 2699.973 → ¥2,700. A price
    // of 0 bills nothing and the invoice is settled at once.
    let reply = app
        .post_json(
            "/api/v1/invoices",
            &json!({"invoice": {"external_customer_id": "gamma", "currency": "JPY",
                "fees": [{"add_on_code": "workshop"}, {"add_on_code": "workshop", "unit_amount_cents": 0}]}}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(200);
    let invoice = reply.json()["invoice"].clone();
    assert_eq!(invoice["fees"][0]["applied_taxes"][0]["tax_code"], "ch_vat");
    assert_eq!(invoice["taxes_amount_cents"], 2700);
    assert_eq!(invoice["total_amount_cents"], 33_333 + 2700);
    let free = app
        .post_json(
            "/api/v1/invoices",
            &json!({"invoice": {"external_customer_id": "gamma",
                "fees": [{"add_on_code": "workshop", "unit_amount_cents": 0}]}}),
            &app.admin_key,
        )
        .await;
    free.assert_status(200);
    let free = free.json()["invoice"].clone();
    assert_eq!(free["total_amount_cents"], 0);
    assert_eq!(free["payment_status"], "succeeded");
    assert_eq!(
        free["currency"], "JPY",
        "gamma's currency, set by its first invoice"
    );
}

#[tokio::test]
async fn a_one_off_invoice_downloads_as_a_pdf() {
    let app = spawn_simulated("2026-03-10T00:00:00Z").await;
    let march_number = acme_with_add_ons(&app).await;
    app.advance("2026-04-15T09:30:00Z").await;
    let invoice = app.post_ok("/api/v1/invoices", two_fees()).await["invoice"].clone();
    let id = invoice["lago_id"].as_str().expect("id");
    let number = invoice["number"].as_str().expect("number");
    assert_ne!(number, march_number);

    let downloaded = app
        .post_ok(&format!("/api/v1/invoices/{id}/download"), json!({}))
        .await["invoice"]
        .clone();
    let file_url = downloaded["file_url"].as_str().expect("file_url");
    let (status, content_type, pdf) = fetch(&app, file_url).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/pdf");
    let text = pdf_text(&pdf);
    for expected in [
        number,
        "Acme",
        "Consulting hours",
        "Add-on",
        "Architecture review",
        "Setup fee",
        "Service period",
        "2026-04-15",
        "2.5",
        "25.02",
        "100.00",
        "125.02",
        "Reduced VAT (5.5%)",
        "1.38",
        "VAT (20%)",
        "20.00",
        "146.40",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} not in the PDF:\n{text}"
        );
    }
    assert!(pdf.windows(8).any(|w| w == b"(146.40)"));
}
