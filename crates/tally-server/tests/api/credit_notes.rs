//! Credit notes on finalized invoices: limits, taxes, refunds, credit spent by the next invoice and
//! voiding, with amounts computed by hand.

use serde_json::{Value, json};

use crate::helpers::spawn_simulated;

fn note(invoice_id: &str, items: Value, amounts: Value) -> Value {
    let mut body = json!({"invoice_id": invoice_id, "reason": "duplicated_charge", "items": items});
    if let (Some(body), Some(amounts)) = (body.as_object_mut(), amounts.as_object()) {
        body.extend(amounts.clone());
    }
    json!({ "credit_note": body })
}

fn fee_id(invoice: &Value, code: &str) -> String {
    invoice["fees"]
        .as_array()
        .expect("fees")
        .iter()
        .find(|f| f["item"]["code"] == code)
        .unwrap_or_else(|| panic!("fee {code} in {invoice}"))["lago_id"]
        .as_str()
        .expect("fee id")
        .to_owned()
}

#[tokio::test]
async fn credit_notes_credit_refund_and_are_spent_by_the_next_invoice() {
    let app = spawn_simulated("2026-04-01T00:00:00Z").await;
    app.post_ok("/api/v1/taxes", json!({"tax": {"name": "VAT", "code": "vat", "rate": "20", "applied_to_organization": true}})).await;
    let metric = app
        .create_metric(
            json!({"name": "API calls", "code": "api_calls", "aggregation_type": "count_agg"}),
        )
        .await;
    app.post_ok("/api/v1/plans", json!({"plan": {"name": "Basic", "code": "basic", "interval": "monthly",
        "amount_cents": 10000, "amount_currency": "USD", "pay_in_advance": false, "charges": [
            {"billable_metric_id": metric["lago_id"], "charge_model": "standard", "properties": {"amount": "0.5"}}]}}))
    .await;
    app.create_customer("acme").await;
    app.post_ok(
        "/api/v1/subscriptions",
        json!({"subscription": {"external_customer_id": "acme",
        "plan_code": "basic", "external_id": "sub"}}),
    )
    .await;
    for i in 0..10 {
        app.send_event(
            json!({"transaction_id": format!("c{i}"), "external_subscription_id": "sub",
            "code": "api_calls", "timestamp": "2026-04-10T00:00:00Z"}),
        )
        .await;
    }

    // April: 100.00 + 10 × 0.50 = 105.00; VAT 20 % = 21.00; 126.00.
    let created = app.advance("2026-05-01T00:00:00Z").await;
    assert_eq!(created.len(), 1);
    let april = app.invoice(&created[0]).await;
    assert_eq!(april["total_amount_cents"], 12_600);
    let april_id = april["lago_id"].as_str().expect("id").to_owned();
    let plan_fee = fee_id(&april, "basic");
    let usage_fee = fee_id(&april, "api_calls");

    // Refused requests write nothing.
    let unknown_fee = app
        .post_json(
            "/api/v1/credit_notes",
            &note(
                &april_id,
                json!([{"fee_id": uuid_zero(), "amount_cents": 100}]),
                json!({}),
            ),
            &app.admin_key,
        )
        .await;
    unknown_fee.assert_status(404);
    assert_eq!(unknown_fee.json()["code"], "fee_not_found");
    let too_much = app
        .post_json(
            "/api/v1/credit_notes",
            &note(
                &april_id,
                json!([{"fee_id": plan_fee, "amount_cents": 10_001}]),
                json!({}),
            ),
            &app.admin_key,
        )
        .await;
    too_much.assert_status(422);
    assert_eq!(
        too_much.json()["error_details"]["items.0.amount_cents"][0],
        "value_is_out_of_range"
    );
    let refund_unpaid = app
        .post_json(
            "/api/v1/credit_notes",
            &note(
                &april_id,
                json!([{"fee_id": plan_fee, "amount_cents": 1_000}]),
                json!({"credit_amount_cents": 0, "refund_amount_cents": 1_200}),
            ),
            &app.admin_key,
        )
        .await;
    refund_unpaid.assert_status(422);
    assert!(
        refund_unpaid.json()["error_details"]
            .get("refund_amount_cents")
            .is_some()
    );
    let listed = app.get("/api/v1/credit_notes", &app.read_key).await.json();
    assert_eq!(listed["credit_notes"], json!([]));

    // The estimate: 50.00 of the plan fee plus its 20 % VAT = 60.00, nothing refundable while unpaid.
    let estimate = app
        .post_ok(
            "/api/v1/credit_notes/estimate",
            note(
                &april_id,
                json!([{"fee_id": plan_fee, "amount_cents": 5_000}]),
                json!({}),
            ),
        )
        .await["estimated_credit_note"]
        .clone();
    assert_eq!(estimate["sub_total_excluding_taxes_amount_cents"], 5_000);
    assert_eq!(estimate["taxes_amount_cents"], 1_000);
    assert_eq!(estimate["max_creditable_amount_cents"], 6_000);
    assert_eq!(estimate["max_refundable_amount_cents"], 0);

    // First note: 50.00 of the plan fee, all kept as credit.
    let first = app
        .post_ok(
            "/api/v1/credit_notes",
            note(
                &april_id,
                json!([{"fee_id": plan_fee, "amount_cents": 5_000}]),
                json!({}),
            ),
        )
        .await["credit_note"]
        .clone();
    let april_number = april["number"].as_str().expect("number");
    assert_eq!(first["number"], format!("{april_number}-CN001"));
    assert_eq!(first["total_amount_cents"], 6_000);
    assert_eq!(first["credit_amount_cents"], 6_000);
    assert_eq!(first["balance_amount_cents"], 6_000);
    assert_eq!(first["refund_amount_cents"], 0);
    assert_eq!(first["credit_status"], "available");
    assert_eq!(first["items"][0]["fee"]["lago_id"], plan_fee.as_str());

    // Once paid, part can be refunded: 5.00 of usage + 1.00 VAT = 6.00, half refunded.
    app.put_json(
        &format!("/api/v1/invoices/{april_id}"),
        &json!({"invoice": {"payment_status": "succeeded"}}),
        &app.admin_key,
    )
    .await
    .assert_status(200);
    let mismatched = app
        .post_json(
            "/api/v1/credit_notes",
            &note(
                &april_id,
                json!([{"fee_id": usage_fee, "amount_cents": 500}]),
                json!({"credit_amount_cents": 300, "refund_amount_cents": 200}),
            ),
            &app.admin_key,
        )
        .await;
    mismatched.assert_status(422);
    let second = app
        .post_ok(
            "/api/v1/credit_notes",
            note(
                &april_id,
                json!([{"fee_id": usage_fee, "amount_cents": 500}]),
                json!({"credit_amount_cents": 300, "refund_amount_cents": 300}),
            ),
        )
        .await["credit_note"]
        .clone();
    assert_eq!(second["number"], format!("{april_number}-CN002"));
    assert_eq!(second["taxes_amount_cents"], 100);
    assert_eq!(second["refund_status"], "pending");
    // 50.00 of the plan fee is already credited; 50.01 more is refused.
    let beyond = app
        .post_json(
            "/api/v1/credit_notes",
            &note(
                &april_id,
                json!([{"fee_id": plan_fee, "amount_cents": 5_001}]),
                json!({}),
            ),
            &app.admin_key,
        )
        .await;
    beyond.assert_status(422);

    // May: 100.00 + VAT 20.00 = 120.00, less 60.00 + 3.00 of credit = 57.00.
    let may = app.advance("2026-06-01T00:00:00Z").await;
    let may = app.invoice(&may[0]).await;
    assert_eq!(may["sub_total_including_taxes_amount_cents"], 12_000);
    assert_eq!(may["credit_notes_amount_cents"], 6_300);
    assert_eq!(may["total_amount_cents"], 5_700);
    let credits = may["credits"].as_array().expect("credits");
    assert_eq!(credits.len(), 2);
    assert!(credits.iter().all(|c| c["item"]["type"] == "credit_note"));
    let first_after = app
        .get(
            &format!(
                "/api/v1/credit_notes/{}",
                first["lago_id"].as_str().expect("id")
            ),
            &app.read_key,
        )
        .await
        .json()["credit_note"]
        .clone();
    assert_eq!(first_after["balance_amount_cents"], 0);
    assert_eq!(first_after["credit_status"], "consumed");
    let consumed_void = app
        .put_json(
            &format!(
                "/api/v1/credit_notes/{}/void",
                first["lago_id"].as_str().expect("id")
            ),
            &json!({}),
            &app.admin_key,
        )
        .await;
    consumed_void.assert_status(405);

    // A third note on what is left of the plan fee, voided before any invoice spends it.
    let third = app
        .post_ok(
            "/api/v1/credit_notes",
            note(
                &april_id,
                json!([{"fee_id": plan_fee, "amount_cents": 5_000}]),
                json!({}),
            ),
        )
        .await["credit_note"]
        .clone();
    assert_eq!(third["number"], format!("{april_number}-CN003"));
    let third_id = third["lago_id"].as_str().expect("id").to_owned();
    let voided = app
        .put_json(
            &format!("/api/v1/credit_notes/{third_id}/void"),
            &json!({}),
            &app.admin_key,
        )
        .await;
    voided.assert_status(200);
    assert_eq!(voided.json()["credit_note"]["credit_status"], "voided");
    assert_eq!(voided.json()["credit_note"]["balance_amount_cents"], 0);
    let june = app.advance("2026-07-01T00:00:00Z").await;
    let june = app.invoice(&june[0]).await;
    assert_eq!(june["credit_notes_amount_cents"], 0);
    assert_eq!(june["total_amount_cents"], 12_000);

    // Only finalized invoices take credit notes.
    let june_id = june["lago_id"].as_str().expect("id").to_owned();
    app.post_json(
        &format!("/api/v1/invoices/{june_id}/void"),
        &json!({}),
        &app.admin_key,
    )
    .await
    .assert_status(200);
    let on_voided = app
        .post_json(
            "/api/v1/credit_notes",
            &note(
                &june_id,
                json!([{"fee_id": fee_id(&june, "basic"), "amount_cents": 100}]),
                json!({}),
            ),
            &app.admin_key,
        )
        .await;
    on_voided.assert_status(405);
    assert_eq!(on_voided.json()["code"], "invoice_not_finalized");

    let listed = app
        .get(
            "/api/v1/credit_notes?external_customer_id=acme",
            &app.read_key,
        )
        .await
        .json();
    let numbers: Vec<&str> = listed["credit_notes"]
        .as_array()
        .expect("list")
        .iter()
        .map(|n| n["number"].as_str().expect("number"))
        .collect();
    let expected: Vec<String> = (1..=3)
        .rev()
        .map(|n| format!("{april_number}-CN00{n}"))
        .collect();
    assert_eq!(numbers, expected);
    assert_eq!(listed["meta"]["total_count"], 3);
}

fn uuid_zero() -> &'static str {
    "00000000-0000-0000-0000-000000000000"
}
