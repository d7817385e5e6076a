//! Lago plans and their charges (COMPAT §2.3).

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

async fn metric(app: &TestApp, code: &str, aggregation: &str, field: Option<&str>) -> String {
    let mut body = json!({"name": code, "code": code, "aggregation_type": aggregation,
        "filters": [{"key": "region", "values": ["eu", "us"]}]});
    if let Some(field) = field {
        body["field_name"] = json!(field);
    }
    let created = app.create_metric(body).await;
    created["lago_id"].as_str().expect("lago_id").to_owned()
}

fn plan_body(calls: &str, storage: &str) -> Value {
    json!({"plan": {
        "name": "Startup", "code": "startup", "interval": "monthly", "amount_cents": 10000,
        "amount_currency": "USD", "pay_in_advance": true, "trial_period": 14,
        "charges": [
            {"billable_metric_id": calls, "charge_model": "graduated", "properties": {"graduated_ranges": [
                {"from_value": 0, "to_value": 1000, "per_unit_amount": "0", "flat_amount": "0"},
                {"from_value": 1001, "to_value": null, "per_unit_amount": "0.002", "flat_amount": "0"}]}},
            {"billable_metric_id": storage, "charge_model": "package",
             "properties": {"amount": "5", "package_size": 100, "free_units": 0},
             "filters": [{"values": {"region": ["eu"]}, "properties": {"amount": "6", "package_size": 100, "free_units": 0},
                          "invoice_display_name": "EU storage"}]}]}})
}

#[tokio::test]
async fn plans_are_created_read_listed_updated_and_deleted() {
    let app = spawn_app().await;
    let calls = metric(&app, "calls", "count_agg", None).await;
    let storage = metric(&app, "storage", "sum_agg", Some("gb")).await;

    let created = app
        .post_json(
            "/api/v1/plans",
            &plan_body(&calls, &storage),
            &app.admin_key,
        )
        .await;
    created.assert_status(200);
    let plan = created.json()["plan"].clone();
    assert_eq!(plan["code"], "startup");
    assert_eq!(plan["interval"], "monthly");
    assert_eq!(plan["amount_cents"], 10000);
    assert_eq!(plan["amount_currency"], "USD");
    assert_eq!(plan["trial_period"], 14);
    let charges = plan["charges"].as_array().expect("charges");
    assert_eq!(charges.len(), 2);
    assert_eq!(
        charges[0]["lago_billable_metric_id"],
        Value::String(calls.clone())
    );
    assert_eq!(charges[0]["billable_metric_code"], "calls");
    assert_eq!(charges[0]["code"], "calls");
    assert_eq!(charges[0]["charge_model"], "graduated");
    assert_eq!(
        charges[0]["properties"]["graduated_ranges"][1]["per_unit_amount"],
        "0.002"
    );
    assert_eq!(
        charges[1]["filters"][0]["values"],
        json!({"region": ["eu"]})
    );
    assert_eq!(
        charges[1]["filters"][0]["invoice_display_name"],
        "EU storage"
    );

    let fetched = app.get("/api/v1/plans/startup", &app.read_key).await;
    fetched.assert_status(200);
    assert_eq!(fetched.json()["plan"], plan);

    // Update: keep the first charge by id, drop the second, add a standard one.
    let first_id = charges[0]["lago_id"].clone();
    let update = json!({"plan": {"name": "Startup v2", "amount_cents": 12000, "charges": [
        {"id": first_id, "billable_metric_id": calls, "charge_model": "standard", "properties": {"amount": "0.01"}},
        {"billable_metric_id": storage, "charge_model": "standard", "properties": {"amount": "1.5"}, "code": "gb"}]}});
    let updated = app
        .put_json("/api/v1/plans/startup", &update, &app.admin_key)
        .await;
    updated.assert_status(200);
    let plan = updated.json()["plan"].clone();
    assert_eq!(plan["name"], "Startup v2");
    assert_eq!(plan["amount_cents"], 12000);
    assert_eq!(plan["interval"], "monthly");
    let charges = plan["charges"].as_array().expect("charges");
    assert_eq!(charges.len(), 2);
    assert_eq!(charges[0]["lago_id"], first_id);
    assert_eq!(charges[0]["charge_model"], "standard");
    assert_eq!(charges[1]["code"], "gb");

    let list = app.get("/api/v1/plans?per_page=10", &app.read_key).await;
    list.assert_status(200);
    assert_eq!(list.json()["meta"]["total_count"], 1);

    app.delete("/api/v1/plans/startup", &app.admin_key)
        .await
        .assert_status(200);
    let gone = app.get("/api/v1/plans/startup", &app.read_key).await;
    gone.assert_status(404);
    assert_eq!(gone.json()["code"], "plan_not_found");
}

#[tokio::test]
async fn plans_are_validated_field_by_field() {
    let app = spawn_app().await;
    let calls = metric(&app, "calls", "count_agg", None).await;
    let latest = metric(&app, "seats", "latest_agg", Some("seats")).await;

    let missing = app
        .post_json(
            "/api/v1/plans",
            &json!({"plan": {"name": "x"}}),
            &app.admin_key,
        )
        .await;
    missing.assert_status(422);
    let details = &missing.json()["error_details"];
    for field in [
        "code",
        "interval",
        "amount_cents",
        "amount_currency",
        "pay_in_advance",
    ] {
        assert_eq!(details[field], json!(["value_is_mandatory"]), "{field}");
    }

    let bad_ranges = json!({"plan": {"name": "x", "code": "x", "interval": "monthly", "amount_cents": 0,
        "amount_currency": "USD", "pay_in_advance": false, "charges": [
            {"billable_metric_id": calls, "charge_model": "graduated", "properties": {"graduated_ranges": [
                {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "0"},
                {"from_value": 20, "to_value": null, "per_unit_amount": "1", "flat_amount": "0"}]}}]}});
    let refused = app
        .post_json("/api/v1/plans", &bad_ranges, &app.admin_key)
        .await;
    refused.assert_status(422);
    assert_eq!(
        refused.json()["error_details"]["charges.0.properties.graduated_ranges"],
        json!(["invalid_graduated_ranges"])
    );

    let in_advance_latest = json!({"plan": {"name": "x", "code": "x", "interval": "monthly", "amount_cents": 0,
        "amount_currency": "USD", "pay_in_advance": false, "charges": [
            {"billable_metric_id": latest, "charge_model": "standard", "pay_in_advance": true, "properties": {"amount": "1"}}]}});
    let refused = app
        .post_json("/api/v1/plans", &in_advance_latest, &app.admin_key)
        .await;
    refused.assert_status(422);
    assert_eq!(
        refused.json()["error_details"]["charges.0.pay_in_advance"],
        json!(["invalid_aggregation_type_or_charge_model"])
    );

    let unknown_metric = json!({"plan": {"name": "x", "code": "x", "interval": "monthly", "amount_cents": 0,
        "amount_currency": "USD", "pay_in_advance": false, "charges": [
            {"billable_metric_id": "0b4d4a3c-27d3-4f5e-9a8e-000000000000", "charge_model": "standard", "properties": {"amount": "1"}}]}});
    let missing_metric = app
        .post_json("/api/v1/plans", &unknown_metric, &app.admin_key)
        .await;
    missing_metric.assert_status(404);
    assert_eq!(missing_metric.json()["code"], "billable_metric_not_found");

    let ok = json!({"plan": {"name": "x", "code": "x", "interval": "weekly", "amount_cents": 500,
        "amount_currency": "EUR", "pay_in_advance": false}});
    app.post_json("/api/v1/plans", &ok, &app.admin_key)
        .await
        .assert_status(200);
    let again = app.post_json("/api/v1/plans", &ok, &app.admin_key).await;
    again.assert_status(422);
    assert_eq!(
        again.json()["error_details"]["code"],
        json!(["value_already_exist"])
    );
}

#[tokio::test]
async fn a_minimum_commitment_is_kept_changed_and_removed() {
    let app = spawn_app().await;
    let body = json!({"plan": {"name": "Committed", "code": "committed", "interval": "monthly",
        "amount_cents": 1000, "amount_currency": "USD", "pay_in_advance": false,
        "minimum_commitment": {"amount_cents": 5000, "invoice_display_name": "Minimum spend"}}});
    let created = app.post_json("/api/v1/plans", &body, &app.admin_key).await;
    created.assert_status(200);
    let commitment = created.json()["plan"]["minimum_commitment"].clone();
    assert_eq!(commitment["amount_cents"], 5000);
    assert_eq!(commitment["invoice_display_name"], "Minimum spend");
    assert_eq!(commitment["interval"], "monthly");

    // A change that does not mention it keeps it; a negative amount is refused; null removes it.
    let renamed = app
        .put_json(
            "/api/v1/plans/committed",
            &json!({"plan": {"name": "Committed 2"}}),
            &app.admin_key,
        )
        .await;
    renamed.assert_status(200);
    assert_eq!(
        renamed.json()["plan"]["minimum_commitment"]["amount_cents"],
        5000
    );
    let negative = app
        .put_json(
            "/api/v1/plans/committed",
            &json!({"plan": {"minimum_commitment": {"amount_cents": -1}}}),
            &app.admin_key,
        )
        .await;
    negative.assert_status(422);
    assert_eq!(
        negative.json()["error_details"]["minimum_commitment.amount_cents"][0],
        "invalid_amount"
    );
    let removed = app
        .put_json(
            "/api/v1/plans/committed",
            &json!({"plan": {"minimum_commitment": null}}),
            &app.admin_key,
        )
        .await;
    removed.assert_status(200);
    assert_eq!(removed.json()["plan"]["minimum_commitment"], Value::Null);
}

/// A charge sent without its id replaces the plan's charges as a new charge, even when it takes the
/// code of the charge it replaces.
#[tokio::test]
async fn a_new_charge_may_take_the_code_of_the_one_it_replaces() {
    let app = spawn_app().await;
    let metric = app
        .create_metric(json!({"name": "Calls", "code": "calls", "aggregation_type": "count_agg"}))
        .await;
    let created = app
        .post_ok(
            "/api/v1/plans",
            json!({"plan": {"name": "P", "code": "p", "interval": "monthly", "amount_cents": 0,
                "amount_currency": "USD", "pay_in_advance": false,
                "charges": [{"billable_metric_id": metric["lago_id"], "charge_model": "standard",
                    "properties": {"amount": "1"}}]}}),
        )
        .await;
    let old = created["plan"]["charges"][0]["lago_id"].clone();
    let reply = app
        .put_json(
            "/api/v1/plans/p",
            &json!({"plan": {"charges": [{"billable_metric_id": metric["lago_id"],
                "charge_model": "standard", "properties": {"amount": "2"}}]}}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(200);
    let charges = reply.json()["plan"]["charges"].clone();
    assert_eq!(charges.as_array().expect("charges").len(), 1);
    assert_eq!(charges[0]["code"], "calls");
    assert_eq!(charges[0]["properties"]["amount"], "2");
    assert_ne!(charges[0]["lago_id"], old);
}

/// Pay-in-advance charges on recurring metrics bill their carried units again at each period start;
/// that is built for standard, package and graduated charges, not for percentage ones, so such a plan
/// is refused with 501 and nothing is written.
#[tokio::test]
async fn pay_in_advance_percentage_on_a_recurring_metric_is_not_built() {
    let app = spawn_app().await;
    let metric = app
        .create_metric(
            json!({"name": "Seats", "code": "seats", "aggregation_type": "sum_agg",
            "field_name": "n", "recurring": true}),
        )
        .await;
    let reply = app
        .post_json(
            "/api/v1/plans",
            &json!({"plan": {"name": "Seats", "code": "seats", "interval": "monthly",
                "amount_cents": 0, "amount_currency": "USD", "pay_in_advance": false,
                "charges": [{"billable_metric_id": metric["lago_id"], "charge_model": "percentage",
                    "pay_in_advance": true, "properties": {"rate": "1"}}]}}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(501);
    assert!(
        reply.text.contains("charges.0") && reply.text.contains("not built yet"),
        "{}",
        reply.text
    );
    app.get("/api/v1/plans/seats", &app.read_key)
        .await
        .assert_status(404);
}
