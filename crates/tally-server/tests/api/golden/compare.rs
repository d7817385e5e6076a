//! How an answer is held against an expectation: partial objects, exact lists, fees matched by their
//! key, numbers by value; every mismatch is reported with its JSON path.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Value, json};

/// Compares an expectation with an answer: objects partially (keys the expectation leaves out, and
/// `note`, are ignored), lists item by item with equal lengths, `fees` by fee key, numbers by value,
/// everything else exactly. Each mismatch is pushed with its JSON path.
pub(super) fn compare(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    match expected {
        Value::Object(map) => {
            let Some(object) = actual.as_object() else {
                out.push(format!("{path}: expected an object, got {actual}"));
                return;
            };
            for (key, want) in map {
                if key == "note" {
                    continue;
                }
                let here = format!("{path}.{key}");
                match object.get(key) {
                    None => out.push(format!("{here}: missing, expected {want}")),
                    Some(got) if key == "fees" && want.is_array() => {
                        compare_fees(want, got, &here, out)
                    }
                    Some(got) => compare(want, got, &here, out),
                }
            }
        }
        Value::Array(list) => {
            let Some(items) = actual.as_array() else {
                out.push(format!("{path}: expected a list, got {actual}"));
                return;
            };
            if list.len() != items.len() {
                out.push(format!(
                    "{path}: expected {} item(s), got {}",
                    list.len(),
                    items.len()
                ));
            }
            for (i, (want, got)) in list.iter().zip(items).enumerate() {
                compare(want, got, &format!("{path}[{i}]"), out);
            }
        }
        Value::Number(want) => {
            let same = match actual {
                Value::Number(got) => decimal(want).is_some_and(|w| decimal(got) == Some(w)),
                _ => false,
            };
            if !same {
                out.push(format!("{path}: expected {expected}, got {actual}"));
            }
        }
        _ => {
            if expected != actual {
                out.push(format!("{path}: expected {expected}, got {actual}"));
            }
        }
    }
}

fn decimal(number: &serde_json::Number) -> Option<Decimal> {
    let text = number.to_string();
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .ok()
        .map(|d| d.normalize())
}

/// What identifies a fee: `item.code`, `item.filter_invoice_display_name` (absent = null) and, when
/// the expectation gives it, `item.type`.
fn fee_key(fee: &Value) -> (&Value, &Value, Option<&Value>) {
    let item = &fee["item"];
    (
        &item["code"],
        item.get("filter_invoice_display_name")
            .unwrap_or(&Value::Null),
        item.get("type"),
    )
}

fn fee_label(fee: &Value) -> String {
    let (code, filter, kind) = fee_key(fee);
    let mut label = code.as_str().unwrap_or("?").to_owned();
    if let Some(filter) = filter.as_str() {
        label.push_str(&format!(" / {filter}"));
    }
    if let Some(kind) = kind.and_then(Value::as_str) {
        label.push_str(&format!(" ({kind})"));
    }
    label
}

/// Matches expected fees with the invoice's fees by key; every fee must be expected exactly once.
fn compare_fees(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    let (Some(wants), Some(gots)) = (expected.as_array(), actual.as_array()) else {
        out.push(format!("{path}: expected a list of fees, got {actual}"));
        return;
    };
    if wants.len() != gots.len() {
        out.push(format!(
            "{path}: expected {} fee(s), got {}",
            wants.len(),
            gots.len()
        ));
    }
    let mut free = vec![true; gots.len()];
    // Expectations naming a type go first, so a true-up line is never taken by its charge's.
    let mut order: Vec<usize> = (0..wants.len()).collect();
    order.sort_by_key(|&i| fee_key(&wants[i]).2.is_none());
    for i in order {
        let want = &wants[i];
        let (code, filter, kind) = fee_key(want);
        let here = format!("{path}[{}]", fee_label(want));
        if !code.is_string() {
            out.push(format!("{path}[{i}]: an expected fee needs item.code"));
            continue;
        }
        let candidates: Vec<usize> = (0..gots.len())
            .filter(|&j| {
                let (c, f, t) = fee_key(&gots[j]);
                free[j] && c == code && f == filter && kind.is_none_or(|k| Some(k) == t)
            })
            .collect();
        match candidates.as_slice() {
            [] => out.push(format!(
                "{here}: no such fee; the invoice has [{}]",
                gots.iter().map(actual_label).collect::<Vec<_>>().join(", ")
            )),
            [j] => {
                free[*j] = false;
                compare(want, &gots[*j], &here, out);
            }
            many => out.push(format!(
                "{here}: {} fees match; give item.type to tell them apart",
                many.len()
            )),
        }
    }
    for (j, fee) in gots.iter().enumerate() {
        if free[j] {
            out.push(format!(
                "{path}: unexpected fee {} with amount_cents {}",
                actual_label(fee),
                fee["amount_cents"]
            ));
        }
    }
}

/// One line about an invoice nobody expected: why, what it covers, what it bills.
pub(super) fn summary(invoice: &Value) -> String {
    let period = &invoice["billing_periods"][0];
    let fees: Vec<String> = invoice["fees"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| format!("{} {}", actual_label(f), f["amount_cents"]))
        .collect();
    format!(
        "{} invoice issued {} for charges {} → {}, total_amount_cents {}, fees [{}]",
        period["invoicing_reason"].as_str().unwrap_or("?"),
        invoice["issuing_date"].as_str().unwrap_or("?"),
        period["charges_from_datetime"].as_str().unwrap_or("?"),
        period["charges_to_datetime"].as_str().unwrap_or("?"),
        invoice["total_amount_cents"],
        fees.join(", ")
    )
}

fn actual_label(fee: &Value) -> String {
    let item = &fee["item"];
    let mut label = item["code"].as_str().unwrap_or("?").to_owned();
    if let Some(filter) = item["filter_invoice_display_name"].as_str() {
        label.push_str(&format!(" / {filter}"));
    }
    label.push_str(&format!(" ({})", item["type"].as_str().unwrap_or("?")));
    label
}

#[test]
fn the_comparison_names_each_mismatch_by_its_path() {
    let actual = json!({"total_amount_cents": 1050, "status": "finalized",
    "billing_periods": [{"invoicing_reason": "subscription_periodic"}],
    "fees": [
        {"item": {"code": "calls", "type": "charge", "filter_invoice_display_name": null}, "amount_cents": 300, "units": "30"},
        {"item": {"code": "calls", "type": "commitment", "filter_invoice_display_name": null}, "amount_cents": 700},
        {"item": {"code": "calls", "type": "charge", "filter_invoice_display_name": "EU"}, "amount_cents": 50},
    ]});
    let mut out = Vec::new();
    compare(
        &json!({"note": "ignored", "total_amount_cents": 1050.0, "status": "finalized",
            "fees": [
                {"item": {"code": "calls", "type": "commitment"}, "amount_cents": 700},
                {"item": {"code": "calls"}, "amount_cents": 300, "units": "30"},
                {"item": {"code": "calls", "filter_invoice_display_name": "EU"}, "amount_cents": 50}]}),
        &actual,
        "invoice[0]",
        &mut out,
    );
    assert_eq!(out, Vec::<String>::new());

    compare(
        &json!({"total_amount_cents": 1000, "missing": 1,
            "billing_periods": [{"invoicing_reason": "subscription_terminating"}, {}],
            "fees": [{"item": {"code": "calls"}, "units": "31"}, {"item": {"code": "storage"}}]}),
        &actual,
        "invoice[0]",
        &mut out,
    );
    assert_eq!(
        out,
        vec![
            "invoice[0].total_amount_cents: expected 1000, got 1050",
            "invoice[0].missing: missing, expected 1",
            "invoice[0].billing_periods: expected 2 item(s), got 1",
            "invoice[0].billing_periods[0].invoicing_reason: expected \"subscription_terminating\", got \"subscription_periodic\"",
            "invoice[0].fees: expected 2 fee(s), got 3",
            "invoice[0].fees[calls]: 2 fees match; give item.type to tell them apart",
            "invoice[0].fees[storage]: no such fee; the invoice has [calls (charge), calls (commitment), calls / EU (charge)]",
            "invoice[0].fees: unexpected fee calls (charge) with amount_cents 300",
            "invoice[0].fees: unexpected fee calls (commitment) with amount_cents 700",
            "invoice[0].fees: unexpected fee calls / EU (charge) with amount_cents 50",
        ]
    );
}
