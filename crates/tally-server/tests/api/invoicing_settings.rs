//! The organization's invoicing defaults: grace period and payment term for customers without their
//! own, and numbering per customer or per organization, without gaps.

use serde_json::json;

use crate::helpers::{spawn_simulated, validation_error};

#[tokio::test]
async fn organization_defaults_grace_terms_and_numbering() {
    let app = spawn_simulated("2026-04-01T00:00:00Z").await;

    let refused = app
        .put_json(
            "/api/v1/organizations",
            &json!({"organization": {"document_numbering": "per_planet", "net_payment_term": -1,
                "document_number_prefix": "way too long prefix", "billing_configuration": {"invoice_grace_period": 4000}}}),
            &app.admin_key,
        )
        .await;
    refused.assert_status(422);
    assert_eq!(
        refused.json(),
        validation_error(json!({
            "net_payment_term": ["value_is_out_of_range"],
            "billing_configuration.invoice_grace_period": ["value_is_out_of_range"],
            "document_numbering": ["value_is_invalid"],
            "document_number_prefix": ["invalid_format"],
        }))
    );

    let org = app
        .put_json(
            "/api/v1/organizations",
            &json!({"organization": {"document_numbering": "per_organization", "net_payment_term": 30,
                "document_number_prefix": "acme", "billing_configuration": {"invoice_grace_period": 2}}}),
            &app.admin_key,
        )
        .await;
    org.assert_status(200);
    let org = org.json()["organization"].clone();
    assert_eq!(org["document_numbering"], "per_organization");
    assert_eq!(org["document_number_prefix"], "ACME");
    assert_eq!(org["net_payment_term"], 30);
    assert_eq!(org["billing_configuration"]["invoice_grace_period"], 2);

    app.post_ok(
        "/api/v1/plans",
        json!({"plan": {"name": "Basic", "code": "basic", "interval": "monthly",
        "amount_cents": 1000, "amount_currency": "USD", "pay_in_advance": false}}),
    )
    .await;
    // "now" keeps the organization's defaults; "later" waits no grace period and pays in 5 days.
    app.post_ok(
        "/api/v1/customers",
        json!({"customer": {"external_id": "now"}}),
    )
    .await;
    app.post_ok(
        "/api/v1/customers",
        json!({"customer": {"external_id": "later", "net_payment_term": 5,
        "billing_configuration": {"invoice_grace_period": 0}}}),
    )
    .await;
    for customer in ["now", "later"] {
        app.post_ok(
            "/api/v1/subscriptions",
            json!({"subscription": {"external_customer_id": customer, "plan_code": "basic",
            "external_id": format!("sub_{customer}")}}),
        )
        .await;
    }

    let may = app.advance("2026-05-01T00:00:00Z").await;
    assert_eq!(may.len(), 2);
    let mut drafts = Vec::new();
    for id in &may {
        let found = app.invoice(id).await;
        if found["customer"]["external_id"] == "later" {
            // No grace: finalized at once, the organization's first invoice, due 5 days later.
            assert_eq!(found["status"], "finalized");
            assert_eq!(found["number"], "ACME-202605-001");
            assert_eq!(found["payment_due_date"], "2026-05-06");
        } else {
            assert_eq!(found["status"], "draft");
            assert_eq!(found["number"], "DRAFT");
            assert_eq!(found["payment_due_date"], "2026-05-31");
            drafts.push(id.clone());
        }
    }
    assert_eq!(drafts.len(), 1);
    // One day into the grace period nothing changes; after two days the draft is finalized.
    app.advance("2026-05-02T00:00:00Z").await;
    assert_eq!(app.invoice(&drafts[0]).await["status"], "draft");
    app.advance("2026-05-03T00:00:00Z").await;
    let finalized = app.invoice(&drafts[0]).await;
    assert_eq!(finalized["status"], "finalized");
    assert_eq!(finalized["number"], "ACME-202605-002");

    // Back to numbering per customer: the customer's own sequence, with the same prefix.
    app.put_json(
        "/api/v1/organizations",
        &json!({"organization": {"document_numbering": "per_customer"}}),
        &app.admin_key,
    )
    .await
    .assert_status(200);
    let june = app.advance("2026-06-01T00:00:00Z").await;
    for id in &june {
        let found = app.invoice(id).await;
        if found["customer"]["external_id"] == "later" {
            let sequence = found["customer"]["sequential_id"].as_i64().expect("seq");
            assert_eq!(found["number"], format!("ACME-{sequence:03}-002"));
        }
    }
}
