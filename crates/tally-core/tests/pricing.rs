//! Pricing: charge models against hand-computed tables and naive references, Lago `properties`
//! validation, and the money rule that invoices add rounded fees.
//!
//! The tables are worked by hand (the same examples as `docs/billing.md`). The property tests compare
//! each model with a reference written here in the plainest way: graduated by walking usage a tenth of
//! a unit at a time and looking each tenth's tier up, volume by scanning for the tier, package by
//! counting packages in a loop, percentage event by event from prefix sums. Input spaces are small so
//! the file runs in a few seconds.

use std::collections::BTreeMap;
use std::str::FromStr;

use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use tally_core::charge::{
    ChargeModel, ChargeModelKind, ChargeUsage, PercentageTier, Tier, min_amount_true_up, round_fee,
};
use tally_core::currency::Currency;
use tally_core::money::{Money, RoundingMode, from_minor, to_minor};

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).expect("decimal")
}

fn currency(code: &str) -> Currency {
    Currency::parse(code).expect("currency")
}

fn model(kind: &str, properties: Value) -> ChargeModel {
    let kind = ChargeModelKind::parse(kind).expect("kind");
    ChargeModel::from_properties(kind, properties.as_object()).expect("valid properties")
}

fn errors(kind: &str, properties: Value) -> BTreeMap<String, Vec<&'static str>> {
    let kind = ChargeModelKind::parse(kind).expect("kind");
    ChargeModel::from_properties(kind, properties.as_object())
        .expect_err("invalid properties")
        .by_field()
}

fn price(model: &ChargeModel, units: &str) -> Decimal {
    model.price(&ChargeUsage::new(dec(units), 1)).amount
}

fn price_events(model: &ChargeModel, values: &[&str]) -> Decimal {
    let values = values.iter().map(|v| dec(v)).collect();
    model.price(&ChargeUsage::from_event_values(values)).amount
}

// ---------------------------------------------------------------------------------------------------
// Hand-computed tables
// ---------------------------------------------------------------------------------------------------

#[test]
fn compat_example_plan_prices_by_hand() {
    let graduated = model(
        "graduated",
        json!({"graduated_ranges": [
            {"from_value": 0, "to_value": 1000, "per_unit_amount": "0", "flat_amount": "0"},
            {"from_value": 1001, "to_value": null, "per_unit_amount": "0.002", "flat_amount": "0"}]}),
    );
    let package = model(
        "package",
        json!({"amount": "5", "package_size": 100, "free_units": 0}),
    );
    let usd = currency("USD");
    // (units, graduated exact, graduated cents, package exact, package cents)
    let table = [
        ("0", "0", 0, "0", 0),
        ("1", "0", 0, "5", 500),
        ("100", "0", 0, "5", 500),
        ("101", "0", 0, "10", 1000),
        ("1000", "0", 0, "50", 5000),
        ("1000.5", "0.001", 0, "55", 5500),
        ("1001", "0.002", 0, "55", 5500),
        ("1003", "0.006", 1, "55", 5500),
        ("2500", "3", 300, "125", 12500),
    ];
    for (units, g, g_cents, p, p_cents) in table {
        assert_eq!(price(&graduated, units), dec(g), "graduated at {units}");
        assert_eq!(round_fee(price(&graduated, units), usd), g_cents);
        assert_eq!(price(&package, units), dec(p), "package at {units}");
        assert_eq!(round_fee(price(&package, units), usd), p_cents);
    }
}

#[test]
fn standard_and_package_by_hand() {
    let standard = model("standard", json!({"amount": "0.05"}));
    assert_eq!(price(&standard, "0"), dec("0"));
    assert_eq!(price(&standard, "3"), dec("0.15"));
    assert_eq!(price(&standard, "12.5"), dec("0.625"));
    assert_eq!(price(&standard, "-4"), dec("0"));

    let package = model(
        "package",
        json!({"amount": "2", "package_size": 10, "free_units": 5}),
    );
    for (units, amount) in [
        ("0", "0"),
        ("5", "0"),
        ("5.5", "2"),
        ("6", "2"),
        ("15", "2"),
        ("15.5", "4"),
        ("16", "4"),
        ("-3", "0"),
    ] {
        assert_eq!(price(&package, units), dec(amount), "package at {units}");
    }
    let priced = package.price(&ChargeUsage::new(dec("16"), 4));
    assert_eq!(
        priced.details,
        json!({"free_units": "5", "paid_units": "11", "per_package_size": 10,
               "per_package_unit_amount": "2"})
    );
}

fn tiered(kind: &str, adjacent: bool) -> ChargeModel {
    let (second, third) = if adjacent { (100, 200) } else { (101, 201) };
    let key = format!("{kind}_ranges");
    let mut properties = Map::new();
    properties.insert(
        key,
        json!([
            {"from_value": 0, "to_value": 100, "per_unit_amount": "1", "flat_amount": "10"},
            {"from_value": second, "to_value": 200, "per_unit_amount": "0.5", "flat_amount": "5"},
            {"from_value": third, "to_value": null, "per_unit_amount": "0.1", "flat_amount": "0"}]),
    );
    model(kind, Value::Object(properties))
}

#[test]
fn graduated_by_hand_in_both_bound_conventions() {
    for adjacent in [false, true] {
        let graduated = tiered("graduated", adjacent);
        for (units, amount) in [
            ("0", "10"), // the first tier's flat amount, as Lago bills it
            ("50", "60"),
            ("100", "110"),
            ("100.5", "115.25"),
            ("101", "115.5"),
            ("200", "165"),
            ("250", "170"),
            ("-1", "10"),
        ] {
            assert_eq!(
                price(&graduated, units),
                dec(amount),
                "graduated at {units}, adjacent {adjacent}"
            );
        }
    }
    let priced = tiered("graduated", false).price(&ChargeUsage::new(dec("250"), 7));
    assert_eq!(priced.units, dec("250"));
    assert_eq!(
        priced.details,
        json!({"graduated_ranges": [
            {"from_value": 0, "to_value": 100, "units": "100", "per_unit_amount": "1",
             "per_unit_total_amount": "100", "flat_unit_amount": "10", "total_with_flat_amount": "110"},
            {"from_value": 101, "to_value": 200, "units": "100", "per_unit_amount": "0.5",
             "per_unit_total_amount": "50", "flat_unit_amount": "5", "total_with_flat_amount": "55"},
            {"from_value": 201, "to_value": null, "units": "50", "per_unit_amount": "0.1",
             "per_unit_total_amount": "5", "flat_unit_amount": "0", "total_with_flat_amount": "5"}]})
    );
}

#[test]
fn volume_by_hand_in_both_bound_conventions() {
    for adjacent in [false, true] {
        let volume = tiered("volume", adjacent);
        for (units, amount) in [
            ("0", "10"), // zero units fall in the first tier: its flat amount, as Lago bills it
            ("50", "60"),
            ("100", "110"),
            ("100.5", "55.25"),
            ("101", "55.5"),
            ("200", "105"),
            ("250", "25"),
        ] {
            assert_eq!(
                price(&volume, units),
                dec(amount),
                "volume at {units}, adjacent {adjacent}"
            );
        }
    }
    let priced = tiered("volume", true).price(&ChargeUsage::new(dec("150"), 2));
    assert_eq!(
        priced.details,
        json!({"flat_unit_amount": "5", "per_unit_amount": "0.5", "per_unit_total_amount": "75"})
    );
}

#[test]
fn percentage_by_hand() {
    let values = ["100", "200", "50"];
    let with = |extra: Value| {
        let mut properties = json!({"rate": "1.5", "fixed_amount": "0.1"});
        if let (Some(map), Some(extra)) = (properties.as_object_mut(), extra.as_object()) {
            map.extend(extra.clone());
        }
        model("percentage", properties)
    };
    // 350 × 1.5 % + 3 × 0.1
    assert_eq!(price_events(&with(json!({})), &values), dec("5.55"));
    // first event free: 250 × 1.5 % + 2 × 0.1
    let first_event = with(json!({"free_units_per_events": 1}));
    assert_eq!(price_events(&first_event, &values), dec("3.95"));
    // first 150 of value free: event 1 free, event 2 pays on 150, event 3 pays: 200 × 1.5 % + 2 × 0.1
    let first_value = with(json!({"free_units_per_total_aggregation": "150"}));
    assert_eq!(price_events(&first_value, &values), dec("3.2"));
    // both: an event is free only within both allowances
    let both_one =
        with(json!({"free_units_per_events": 1, "free_units_per_total_aggregation": "150"}));
    assert_eq!(price_events(&both_one, &values), dec("3.95"));
    let both_two =
        with(json!({"free_units_per_events": 2, "free_units_per_total_aggregation": "150"}));
    assert_eq!(price_events(&both_two, &values), dec("3.2"));
    // an event that uses the value allowance up exactly is free; the next one pays
    let exact = with(json!({"free_units_per_total_aggregation": "100"}));
    assert_eq!(price_events(&exact, &["100", "10"]), dec("0.25"));
    assert_eq!(price_events(&exact, &["100", "0"]), dec("0.1"));
    // per-transaction bounds: fees 0.25 → 0.5, 1.6, 3.1 → 2
    let bounded =
        with(json!({"per_transaction_min_amount": "0.5", "per_transaction_max_amount": "2"}));
    assert_eq!(price_events(&bounded, &["10", "100", "200"]), dec("4.1"));
    // free events are not raised to the minimum
    let bounded_free =
        with(json!({"free_units_per_events": 1, "per_transaction_min_amount": "0.5"}));
    assert_eq!(price_events(&bounded_free, &["10", "10"]), dec("0.5"));

    let priced = first_value.price(&ChargeUsage::from_event_values(
        values.iter().map(|v| dec(v)).collect(),
    ));
    assert_eq!(
        priced.details,
        json!({"units": "350", "free_units": "150", "paid_units": "200", "free_events": 1,
               "paid_events": 2, "rate": "1.5", "per_unit_total_amount": "3",
               "fixed_fee_unit_amount": "0.1", "fixed_fee_total_amount": "0.2",
               "min_max_adjustment_total_amount": "0"})
    );
    let priced = bounded.price(&ChargeUsage::from_event_values(vec![
        dec("10"),
        dec("100"),
        dec("200"),
    ]));
    // plain would be 310 × 1.5 % + 0.3 = 4.95; the bounds take 0.85 off
    assert_eq!(
        priced.details["min_max_adjustment_total_amount"],
        json!("-0.85")
    );
}

#[test]
fn percentage_without_event_values_uses_sum_and_count() {
    let plain = model("percentage", json!({"rate": "2", "fixed_amount": "1"}));
    assert!(!plain.needs_event_values());
    assert_eq!(
        plain.price(&ChargeUsage::new(dec("50"), 4)).amount,
        dec("5")
    );
    let value_only = model(
        "percentage",
        json!({"rate": "2", "free_units_per_total_aggregation": "20"}),
    );
    assert!(!value_only.needs_event_values());
    assert_eq!(
        value_only.price(&ChargeUsage::new(dec("50"), 4)).amount,
        dec("0.6")
    );
    for needs in [
        json!({"rate": "2", "free_units_per_events": 1}),
        json!({"rate": "2", "per_transaction_max_amount": "1"}),
        json!({"rate": "2", "fixed_amount": "1", "free_units_per_total_aggregation": "20"}),
    ] {
        assert!(model("percentage", needs).needs_event_values());
    }
    assert!(!tiered("graduated", true).needs_event_values());
}

#[test]
fn graduated_percentage_by_hand() {
    let model = model(
        "graduated_percentage",
        json!({"graduated_percentage_ranges": [
            {"from_value": 0, "to_value": 1000, "rate": "2", "flat_amount": "1"},
            {"from_value": 1001, "to_value": null, "rate": "1", "flat_amount": "0.5"}]}),
    );
    for (units, amount) in [
        ("0", "1"),
        ("500", "11"),
        ("1000", "21"),
        ("1000.5", "21.505"),
        ("1500", "26.5"),
    ] {
        assert_eq!(price(&model, units), dec(amount), "at {units}");
    }
}

#[test]
fn fees_round_once_per_currency_half_even_or_half_up() {
    // (currency, price, units, exact, half-even minor, half-up minor)
    let table = [
        ("USD", "0.005", "25", "0.125", 12, 13),
        ("USD", "0.005", "27", "0.135", 14, 14),
        ("USD", "0.05", "12.5", "0.625", 62, 63),
        ("USD", "0.0001", "3", "0.0003", 0, 0),
        ("JPY", "0.5", "5", "2.5", 2, 3),
        ("JPY", "0.5", "7", "3.5", 4, 4),
        ("JPY", "1.2", "10", "12", 12, 12),
        ("KWD", "0.0005", "2001", "1.0005", 1000, 1001),
        ("KWD", "0.0005", "2003", "1.0015", 1002, 1002),
        ("KWD", "0.05", "12.5", "0.625", 625, 625),
    ];
    for (code, amount, units, exact, even, up) in table {
        let cur = currency(code);
        let standard = model("standard", json!({ "amount": amount }));
        let priced = price(&standard, units);
        assert_eq!(priced, dec(exact), "{code} {amount} × {units}");
        assert_eq!(round_fee(priced, cur), even, "{code} half-even {exact}");
        assert_eq!(
            to_minor(priced, cur, RoundingMode::HalfEven),
            Some(even),
            "{code}"
        );
        assert_eq!(
            to_minor(priced, cur, RoundingMode::HalfUp),
            Some(up),
            "{code} half-up {exact}"
        );
    }
    assert_eq!(RoundingMode::default(), RoundingMode::HalfEven);
    // an invoice adds rounded fees: three fees of 0.125 are 36 cents, not round(0.375) = 38
    let usd = currency("USD");
    let fees: i64 = (0..3).map(|_| round_fee(dec("0.125"), usd)).sum();
    assert_eq!(fees, 36);
    assert_eq!(round_fee(dec("0.375"), usd), 38);
    assert_eq!(
        Money::from_minor(1001, currency("KWD")).to_string(),
        "1.001 KWD"
    );
    assert_eq!(from_minor(12, currency("JPY")), dec("12"));
}

#[test]
fn minimum_true_up_by_hand() {
    let usd = currency("USD");
    assert_eq!(min_amount_true_up(700, 1000, Decimal::ONE, usd), 300);
    assert_eq!(min_amount_true_up(1500, 1000, Decimal::ONE, usd), 0);
    assert_eq!(
        min_amount_true_up(0, 3100, dec("10") / dec("31"), usd),
        1000
    );
    assert_eq!(min_amount_true_up(100, 1000, dec("0.5"), usd), 400);
}

// ---------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------

fn expect(field: &str, reason: &'static str) -> BTreeMap<String, Vec<&'static str>> {
    BTreeMap::from([(field.to_owned(), vec![reason])])
}

#[test]
fn validation_names_the_field_with_lago_codes() {
    let amount = || expect("properties.amount", "invalid_amount");
    assert_eq!(errors("standard", json!({"amount": "-1"})), amount());
    assert_eq!(errors("standard", json!({"amount": "abc"})), amount());
    assert_eq!(errors("standard", json!({"amount": null})), amount());
    assert_eq!(errors("standard", json!({"other": "1"})), amount());

    assert_eq!(
        errors(
            "package",
            json!({"amount": "1", "package_size": 0, "free_units": 0})
        ),
        expect("properties.package_size", "invalid_package_size")
    );
    assert_eq!(
        errors(
            "package",
            json!({"amount": "1", "package_size": 2.5, "free_units": 0})
        ),
        expect("properties.package_size", "invalid_package_size")
    );
    assert_eq!(
        errors(
            "package",
            json!({"amount": "1", "package_size": 10, "free_units": -1})
        ),
        expect("properties.free_units", "invalid_free_units")
    );
    assert_eq!(
        errors("package", json!({"amount": "1", "package_size": 10})),
        expect("properties.free_units", "invalid_free_units")
    );

    let graduated = |ranges: Value| errors("graduated", json!({ "graduated_ranges": ranges }));
    let invalid = || expect("properties.graduated_ranges", "invalid_graduated_ranges");
    let r = |from: i64, to: Option<i64>| json!({"from_value": from, "to_value": to, "per_unit_amount": "1", "flat_amount": "0"});
    assert_eq!(graduated(json!([r(0, Some(100)), r(102, None)])), invalid()); // gap
    assert_eq!(graduated(json!([r(0, Some(100)), r(50, None)])), invalid()); // overlap
    assert_eq!(graduated(json!([r(0, Some(100))])), invalid()); // last not open
    assert_eq!(graduated(json!([r(0, None), r(1, None)])), invalid()); // open before last
    assert_eq!(graduated(json!([r(5, None)])), invalid()); // does not start at 0
    assert_eq!(
        graduated(json!([r(0, Some(10)), r(11, Some(11)), r(12, None)])),
        invalid()
    );
    assert_eq!(graduated(json!("ranges")), invalid());
    assert_eq!(
        graduated(json!([r(0, Some(10)), "x", r(11, None)])),
        invalid()
    );
    assert_eq!(
        graduated(json!([])),
        expect("properties.graduated_ranges", "missing_graduated_ranges")
    );
    assert_eq!(
        graduated(Value::Null),
        expect("properties.graduated_ranges", "missing_graduated_ranges")
    );
    assert_eq!(
        graduated(json!([r(0, Some(10)),
            {"from_value": 11, "to_value": null, "per_unit_amount": "1", "flat_amount": "-2"}])),
        expect(
            "properties.graduated_ranges.1.flat_amount",
            "invalid_amount"
        )
    );
    assert_eq!(
        errors(
            "volume",
            json!({"volume_ranges": [r(0, Some(100)), r(102, None)]})
        ),
        expect("properties.volume_ranges", "invalid_volume_ranges")
    );
    assert_eq!(
        errors("volume", json!({"volume_ranges": []})),
        expect("properties.volume_ranges", "missing_volume_ranges")
    );
    assert_eq!(
        errors(
            "graduated_percentage",
            json!({"graduated_percentage_ranges": [
            {"from_value": 0, "to_value": null, "rate": "x", "flat_amount": "0"}]})
        ),
        expect(
            "properties.graduated_percentage_ranges.0.rate",
            "invalid_rate"
        )
    );

    let percentage = |properties: Value| errors("percentage", properties);
    assert_eq!(
        percentage(json!({"fixed_amount": "1"})),
        expect("properties.rate", "invalid_rate")
    );
    assert_eq!(
        percentage(json!({"rate": "-1"})),
        expect("properties.rate", "invalid_rate")
    );
    assert_eq!(
        percentage(json!({"rate": "1", "fixed_amount": "x"})),
        expect("properties.fixed_amount", "invalid_fixed_amount")
    );
    assert_eq!(
        percentage(json!({"rate": "1", "free_units_per_events": 0})),
        expect(
            "properties.free_units_per_events",
            "invalid_free_units_per_events"
        )
    );
    assert_eq!(
        percentage(json!({"rate": "1", "free_units_per_total_aggregation": "-5"})),
        expect(
            "properties.free_units_per_total_aggregation",
            "invalid_free_units_per_total_aggregation"
        )
    );
    assert_eq!(
        percentage(json!({"rate": "1", "per_transaction_min_amount": "x"})),
        expect("properties.per_transaction_min_amount", "invalid_amount")
    );
    assert_eq!(
        percentage(json!({"rate": "1", "per_transaction_min_amount": "5",
                          "per_transaction_max_amount": "2"})),
        expect(
            "properties.per_transaction_max_amount",
            "per_transaction_max_lower_than_per_transaction_min"
        )
    );
}

#[test]
fn validation_accepts_lago_shapes_and_numbers() {
    // unknown keys are ignored, JSON numbers are read as prices, both bound conventions pass
    assert_eq!(
        model(
            "standard",
            json!({"amount": 0.05, "pricing_group_keys": ["region"], "graduated_ranges": "junk"})
        ),
        ChargeModel::Standard {
            amount: dec("0.05")
        }
    );
    assert_eq!(
        model(
            "graduated",
            json!({"graduated_ranges": [
                {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "0"},
                {"from_value": 10, "to_value": 20, "per_unit_amount": "1", "flat_amount": "0"},
                {"from_value": 21, "per_unit_amount": "1", "flat_amount": "0"}]})
        )
        .kind(),
        ChargeModelKind::Graduated
    );
    let percentage = model(
        "percentage",
        json!({"rate": "1", "fixed_amount": null, "free_units_per_events": null,
               "per_transaction_min_amount": ""}),
    );
    assert_eq!(percentage, {
        let mut zero = ChargeModel::zero(ChargeModelKind::Percentage);
        if let ChargeModel::Percentage { rate, .. } = &mut zero {
            *rate = Decimal::ONE;
        }
        zero
    });
    assert_eq!(
        percentage.to_properties(),
        json!({"rate": "1", "fixed_amount": "0"})
    );
    assert_eq!(
        tiered("graduated", false).to_properties(),
        json!({"graduated_ranges": [
            {"from_value": 0, "to_value": 100, "per_unit_amount": "1", "flat_amount": "10"},
            {"from_value": 101, "to_value": 200, "per_unit_amount": "0.5", "flat_amount": "5"},
            {"from_value": 201, "to_value": null, "per_unit_amount": "0.1", "flat_amount": "0"}]})
    );
}

// ---------------------------------------------------------------------------------------------------
// Property tests against naive references
// ---------------------------------------------------------------------------------------------------

/// A price with up to two decimal places, 0 to 3.
fn small_price() -> impl Strategy<Value = Decimal> {
    (0i64..=300).prop_map(|cents| Decimal::new(cents, 2))
}

/// A price with up to four decimal places, for round trips.
fn any_price() -> impl Strategy<Value = Decimal> {
    (0i64..=10_000_000, 0u32..=4).prop_map(|(m, scale)| Decimal::new(m, scale))
}

/// Integer tier bounds, 1 to 4 tiers, each boundary written adjacent or with `+ 1` at random.
fn bounds() -> impl Strategy<Value = Vec<(Decimal, Option<Decimal>)>> {
    (
        any::<bool>(),
        prop::collection::vec((1i64..=12, any::<bool>()), 0..=3),
    )
        .prop_map(|(first_at_one, steps)| {
            let mut out = Vec::new();
            let mut from = if first_at_one { 1 } else { 0 };
            for (width, plus_one) in steps {
                let to = from + width;
                out.push((Decimal::from(from), Some(Decimal::from(to))));
                from = if plus_one { to + 1 } else { to };
            }
            out.push((Decimal::from(from), None));
            out
        })
}

fn tiers() -> impl Strategy<Value = Vec<Tier>> {
    bounds().prop_flat_map(|bounds| {
        let n = bounds.len();
        prop::collection::vec((small_price(), 0i64..=5), n).prop_map(move |prices| {
            bounds
                .iter()
                .zip(prices)
                .map(|((from, to), (per_unit, flat))| Tier {
                    from_value: *from,
                    to_value: *to,
                    per_unit_amount: per_unit,
                    flat_amount: Decimal::from(flat),
                })
                .collect()
        })
    })
}

fn percentage_tiers() -> impl Strategy<Value = Vec<PercentageTier>> {
    bounds().prop_flat_map(|bounds| {
        let n = bounds.len();
        prop::collection::vec((any_price(), any_price()), n).prop_map(move |prices| {
            bounds
                .iter()
                .zip(prices)
                .map(|((from, to), (rate, flat))| PercentageTier {
                    from_value: *from,
                    to_value: *to,
                    rate,
                    flat_amount: flat,
                })
                .collect()
        })
    })
}

/// The index of the first tier whose upper bound is at or above `position`.
fn tier_of(tiers: &[Tier], position: Decimal) -> usize {
    tiers
        .iter()
        .position(|t| t.to_value.is_none_or(|to| position <= to))
        .unwrap_or(tiers.len() - 1)
}

/// Graduated, a tenth of a unit at a time: each tenth is priced by the tier its upper end falls in;
/// every tier that priced a tenth adds its flat amount, and so does the first tier.
fn naive_graduated(tiers: &[Tier], tenths: i64) -> Decimal {
    let mut amount = Decimal::ZERO;
    let mut reached = vec![false; tiers.len()];
    reached[0] = true;
    for j in 1..=tenths {
        let tier = tier_of(tiers, Decimal::new(j, 1));
        amount += tiers[tier].per_unit_amount / Decimal::TEN;
        reached[tier] = true;
    }
    for (tier, hit) in tiers.iter().zip(reached) {
        if hit {
            amount += tier.flat_amount;
        }
    }
    amount
}

/// Volume by scanning for the tier holding the total.
fn naive_volume(tiers: &[Tier], units: Decimal) -> Decimal {
    let tier = &tiers[tier_of(tiers, units)];
    units * tier.per_unit_amount + tier.flat_amount
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn graduated_equals_a_walk_over_every_tenth(tiers in tiers(), tenths in 0i64..=500) {
        let model = ChargeModel::Graduated { ranges: tiers.clone() };
        let priced = model.price(&ChargeUsage::new(Decimal::new(tenths, 1), 1));
        prop_assert_eq!(priced.amount, naive_graduated(&tiers, tenths));
    }

    #[test]
    fn volume_equals_the_scanned_tier(tiers in tiers(), tenths in 0i64..=500) {
        let units = Decimal::new(tenths, 1);
        let model = ChargeModel::Volume { ranges: tiers.clone() };
        prop_assert_eq!(model.price(&ChargeUsage::new(units, 1)).amount, naive_volume(&tiers, units));
    }

    #[test]
    fn graduated_percentage_equals_graduated_at_rate_over_100(
        tiers in percentage_tiers(),
        tenths in 0i64..=500,
    ) {
        let units = Decimal::new(tenths, 1);
        let as_graduated: Vec<Tier> = tiers
            .iter()
            .map(|t| Tier {
                from_value: t.from_value,
                to_value: t.to_value,
                per_unit_amount: t.rate / Decimal::ONE_HUNDRED,
                flat_amount: t.flat_amount,
            })
            .collect();
        let percent = ChargeModel::GraduatedPercentage { ranges: tiers }
            .price(&ChargeUsage::new(units, 1));
        prop_assert_eq!(percent.amount, naive_graduated(&as_graduated, tenths));
    }

    #[test]
    fn package_equals_counting_packages(
        amount in small_price(),
        package_size in 1u64..=12,
        free_units in 0u64..=20,
        tenths in -20i64..=600,
    ) {
        let units = Decimal::new(tenths, 1);
        let mut remaining = units - Decimal::from(free_units);
        let mut packages = 0;
        while remaining > Decimal::ZERO {
            packages += 1;
            remaining -= Decimal::from(package_size);
        }
        let model = ChargeModel::Package { amount, package_size, free_units };
        prop_assert_eq!(
            model.price(&ChargeUsage::new(units, 1)).amount,
            Decimal::from(packages) * amount
        );
    }

    #[test]
    fn no_model_charges_below_its_price_at_zero(model in charge_model(), tenths in -500i64..=0) {
        let negative = model.price(&ChargeUsage::new(Decimal::new(tenths, 1), 0));
        let zero = model.price(&ChargeUsage::new(Decimal::ZERO, 0));
        prop_assert!(negative.amount >= Decimal::ZERO);
        prop_assert_eq!(negative.amount, zero.amount);
        prop_assert_eq!(negative.units, Decimal::ZERO);
    }
}

/// Percentage terms for the property tests.
#[derive(Debug, Clone)]
struct PercentageCase {
    rate: Decimal,
    fixed: Decimal,
    free_events: Option<u64>,
    free_value: Option<Decimal>,
    min: Option<Decimal>,
    max: Option<Decimal>,
    values: Vec<Decimal>,
}

impl PercentageCase {
    fn model(&self) -> ChargeModel {
        ChargeModel::Percentage {
            rate: self.rate,
            fixed_amount: self.fixed,
            free_units_per_events: self.free_events,
            free_units_per_total_aggregation: self.free_value,
            per_transaction_min_amount: self.min,
            per_transaction_max_amount: self.max,
        }
    }

    /// Each event on its own, from prefix sums: event `i` (0-based) is within the event allowance when
    /// `i < N`; its value spans `[before, before + v]` of the period's value, where `before` is the sum
    /// of the earlier events; the part of it below the value allowance is covered; it is free when it
    /// is within the event allowance and (without a value allowance, or) its whole span lies below the
    /// allowance and starts strictly inside it. Returns (amount without bounds, amount with bounds).
    fn per_event(&self) -> (Decimal, Decimal) {
        let hundred = Decimal::ONE_HUNDRED;
        let any_allowance = self.free_events.is_some() || self.free_value.is_some();
        let mut before = Decimal::ZERO;
        let (mut plain, mut bounded) = (Decimal::ZERO, Decimal::ZERO);
        for (i, v) in self.values.iter().enumerate() {
            let in_window = any_allowance && self.free_events.is_none_or(|n| (i as u64) < n);
            let (covered, free) = match (in_window, self.free_value) {
                (false, _) => (Decimal::ZERO, false),
                (true, None) => (*v, true),
                (true, Some(a)) => {
                    let covered = (a - before).max(Decimal::ZERO).min(*v);
                    (covered, before < a && before + v <= a)
                }
            };
            before += v;
            if !free {
                let fee = (v - covered) * self.rate / hundred + self.fixed;
                plain += fee;
                let mut clamped = fee;
                if let Some(min) = self.min
                    && clamped < min
                {
                    clamped = min;
                } else if let Some(max) = self.max
                    && clamped > max
                {
                    clamped = max;
                }
                bounded += clamped;
            }
        }
        (plain, bounded)
    }
}

fn percentage_case() -> impl Strategy<Value = PercentageCase> {
    (
        (0i64..=500).prop_map(|r| Decimal::new(r, 2)),
        (0i64..=100).prop_map(|f| Decimal::new(f, 2)),
        prop::option::of(1u64..=4),
        prop::option::of((0i64..=100).prop_map(Decimal::from)),
        prop::option::of((0i64..=150).prop_map(|c| Decimal::new(c, 2))),
        prop::option::of((0i64..=150).prop_map(|c| Decimal::new(c, 2))),
        prop::collection::vec((0i64..=50).prop_map(Decimal::from), 0..=8),
    )
        .prop_map(|(rate, fixed, free_events, free_value, a, b, values)| {
            let (min, max) = match (a, b) {
                (Some(a), Some(b)) => (Some(a.min(b)), Some(a.max(b))),
                other => other,
            };
            PercentageCase {
                rate,
                fixed,
                free_events,
                free_value,
                min,
                max,
                values,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn percentage_equals_an_event_by_event_loop(case in percentage_case()) {
        let (plain, bounded) = case.per_event();
        let priced = case.model().price(&ChargeUsage::from_event_values(case.values.clone()));
        let expected = if case.min.is_some() || case.max.is_some() { bounded } else { plain };
        prop_assert_eq!(priced.amount, expected);
        prop_assert!(priced.amount >= Decimal::ZERO);
    }
}

// ---------------------------------------------------------------------------------------------------
// Round trip through Lago properties, and invoices that add rounded fees
// ---------------------------------------------------------------------------------------------------

fn charge_model() -> impl Strategy<Value = ChargeModel> {
    prop_oneof![
        any_price().prop_map(|amount| ChargeModel::Standard { amount }),
        (any_price(), 1u64..=1000, 0u64..=1000).prop_map(|(amount, package_size, free_units)| {
            ChargeModel::Package {
                amount,
                package_size,
                free_units,
            }
        }),
        tiers().prop_map(|ranges| ChargeModel::Graduated { ranges }),
        tiers().prop_map(|ranges| ChargeModel::Volume { ranges }),
        (
            any_price(),
            any_price(),
            prop::option::of(1u64..=100),
            prop::option::of(any_price()),
            prop::option::of(any_price()),
            prop::option::of(any_price()),
        )
            .prop_map(|(rate, fixed_amount, events, total, a, b)| {
                let (min, max) = match (a, b) {
                    (Some(a), Some(b)) => (Some(a.min(b)), Some(a.max(b))),
                    other => other,
                };
                ChargeModel::Percentage {
                    rate,
                    fixed_amount,
                    free_units_per_events: events,
                    free_units_per_total_aggregation: total,
                    per_transaction_min_amount: min,
                    per_transaction_max_amount: max,
                }
            }),
        percentage_tiers().prop_map(|ranges| ChargeModel::GraduatedPercentage { ranges }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn properties_round_trip(model in charge_model()) {
        let properties = model.to_properties();
        let text = serde_json::to_string(&properties).expect("serialize");
        let reread: Value = serde_json::from_str(&text).expect("parse");
        let back = ChargeModel::from_properties(model.kind(), reread.as_object());
        prop_assert_eq!(back, Ok(model));
    }

    #[test]
    fn invoices_add_rounded_fees(
        code in prop::sample::select(vec!["USD", "JPY", "KWD"]),
        charges in prop::collection::vec(
            (charge_model(), prop::collection::vec((0i64..=400).prop_map(|v| Decimal::new(v, 1)), 0..=6)),
            1..=6,
        ),
    ) {
        let cur = currency(code);
        let scale = Decimal::from(10_i64.pow(cur.exponent()));
        let half = Decimal::new(5, 1);
        let mut subtotal = Money::zero(cur);
        let mut sum_of_fees: i128 = 0;
        let mut exact_total = Decimal::ZERO;
        for (model, values) in &charges {
            let usage = ChargeUsage::from_event_values(values.clone());
            let exact = model.price(&usage).amount;
            let fee = round_fee(exact, cur);
            // one rounding step: the fee is the exact amount to the nearest minor unit
            prop_assert!(fee >= 0);
            prop_assert!((Decimal::from(fee) - exact * scale).abs() <= half);
            subtotal = subtotal.checked_add(Money::from_minor(fee, cur)).expect("no overflow");
            sum_of_fees += i128::from(fee);
            exact_total += exact;
        }
        // the subtotal is the sum of the rounded fees, never a rounding of the exact total
        prop_assert_eq!(i128::from(subtotal.minor), sum_of_fees);
        let drift = (Decimal::from(subtotal.minor) - exact_total * scale).abs();
        prop_assert!(drift <= half * Decimal::from(charges.len() as u64));
    }
}
