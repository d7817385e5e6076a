//! What is checked in each run's invoices, and how two runs are compared.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use proptest::prelude::*;
use rust_decimal::Decimal;
use tally_core::billing::{InvoiceTotals, Run, RunReason};
use tally_core::id::InvoiceId;
use tally_core::invoice::InvoiceStatus;
use tally_core::time::Timestamp;
use tally_store::Invoice;

use crate::scenario::{DAY, Scenario, Sub, VAT, World};

/// (subscription, boundary, invoicing reason).
pub type Key = (String, i64, &'static str);

/// A fee line, without what differs between databases (ids, charge ids, creation times).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FeeLine {
    pub kind: &'static str,
    pub item: String,
    pub from: i64,
    pub to: i64,
    pub units: Decimal,
    pub precise: Decimal,
    pub amount_cents: i64,
    pub events: u64,
    pub in_advance: bool,
    pub taxes: Vec<(String, i64)>,
}

/// An invoice, without what differs between databases or with the order of finalization (ids,
/// numbers, creation and finalization times, and the credit notes it spent).
#[derive(Debug, Clone, PartialEq)]
pub struct Billed {
    pub customer: String,
    pub status: InvoiceStatus,
    pub issuing_date: NaiveDate,
    pub grace_until: Option<i64>,
    pub run: Run,
    pub totals: InvoiceTotals,
    pub fees: Vec<FeeLine>,
}

/// Divides, rounding the quotient half to even (a reference independent of `rust_decimal`).
fn round_half_even(numerator: i128, denominator: i128) -> i128 {
    let (q, r) = (
        numerator.div_euclid(denominator),
        numerator.rem_euclid(denominator),
    );
    match (2 * r).cmp(&denominator) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    }
}

/// Returns `value × 10^shift` as a fraction (numerator, denominator).
fn fraction(value: Decimal, shift: u32) -> (i128, i128) {
    (
        value.mantissa() * 10i128.pow(shift),
        10i128.pow(value.scale()),
    )
}

/// Checks one store's invoices on their own, and returns them by key.
pub fn check(
    s: &Scenario,
    world: &World,
    name: &str,
    invoices: &[Invoice],
) -> Result<BTreeMap<Key, Billed>, TestCaseError> {
    let unit_price: Decimal = s.unit_price.parse().expect("price");
    let mut by_key = BTreeMap::new();
    let mut numbers: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for invoice in invoices {
        let sub = invoice
            .subscription
            .as_ref()
            .expect("a subscription invoice");
        let run = invoice.run.clone().expect("a billing run");
        let key: Key = (
            sub.external_id.as_str().to_owned(),
            run.boundary.micros(),
            run.reason.name(),
        );
        let customer = world
            .customers
            .iter()
            .find(|c| c.external_id == invoice.customer.external_id.as_str())
            .expect("a known customer");
        // Totals: fees add up, each tax is the fee's amount × rate rounded once, and the chain holds.
        let t = invoice.totals;
        let fees_sum: i64 = invoice.fees.iter().map(|f| f.fee.amount_cents).sum();
        prop_assert_eq!(fees_sum, t.fees_amount_cents, "{}: fees of {:?}", name, key);
        let mut taxes_sum = 0;
        let rates: Vec<(&str, i64)> = if customer.taxes.is_empty() {
            vec![VAT]
        } else {
            customer.taxes.clone()
        };
        for fee in &invoice.fees {
            let got: Vec<(&str, i64)> = fee
                .taxes
                .iter()
                .map(|tax| (tax.code.as_str(), tax.amount_cents))
                .collect();
            let want: Vec<(&str, i64)> = rates
                .iter()
                .map(|(code, bp)| {
                    let amount =
                        round_half_even(i128::from(fee.fee.amount_cents) * i128::from(*bp), 10_000);
                    (*code, i64::try_from(amount).expect("tax fits"))
                })
                .collect();
            prop_assert_eq!(&got, &want, "{}: taxes of a fee of {:?}", name, key);
            taxes_sum += got.iter().map(|(_, a)| a).sum::<i64>();
            // Each fee is its exact amount rounded once, half to even.
            let exact = match fee.fee.kind.name() {
                "charge" => fee.fee.units * unit_price,
                "subscription" => fee.fee.units * Decimal::new(s.fee_cents, 2),
                other => {
                    return Err(TestCaseError::fail(format!(
                        "{name}: unexpected {other} fee"
                    )));
                }
            };
            let (n, d) = fraction(exact, 2);
            prop_assert_eq!(
                i128::from(fee.fee.amount_cents),
                round_half_even(n, d),
                "{}: rounding of a fee of {:?}",
                name,
                key
            );
        }
        prop_assert_eq!(t.coupons_amount_cents, 0);
        prop_assert_eq!(
            t.taxes_amount_cents,
            taxes_sum,
            "{}: taxes of {:?}",
            name,
            key
        );
        prop_assert_eq!(
            t.sub_total_excluding_taxes_amount_cents,
            t.fees_amount_cents
        );
        prop_assert_eq!(
            t.sub_total_including_taxes_amount_cents,
            t.fees_amount_cents + t.taxes_amount_cents
        );
        // Credit notes (a termination credits what was paid in advance) come off last, never below
        // zero. Which invoice spends a credit depends on the order invoices are finalized, so runs
        // are compared without it (see `billed`).
        prop_assert_eq!(t.prepaid_credit_amount_cents, 0);
        prop_assert_eq!(
            t.total_amount_cents,
            t.sub_total_including_taxes_amount_cents - t.credit_notes_amount_cents
        );
        prop_assert!(t.total_amount_cents >= 0);
        prop_assert!(t.credit_notes_amount_cents >= 0);
        // A draft is finalized once its grace period has passed, and only then numbered.
        let finalized = run.boundary.micros() + customer.grace_days * DAY <= world.end;
        let want = if finalized {
            InvoiceStatus::Finalized
        } else {
            InvoiceStatus::Draft
        };
        prop_assert_eq!(invoice.status, want, "{}: status of {:?}", name, key);
        if let Some(n) = invoice.sequential_id {
            numbers
                .entry(customer.external_id.clone())
                .or_default()
                .push(n);
        }
        prop_assert_eq!(invoice.sequential_id.is_some(), finalized);
        let mut fees: Vec<FeeLine> = invoice
            .fees
            .iter()
            .map(|f| FeeLine {
                kind: f.fee.kind.name(),
                item: f.item_code.clone(),
                from: f.fee.period.from.micros(),
                to: f.fee.period.to.micros(),
                units: f.fee.units.normalize(),
                precise: f.fee.precise_amount.normalize(),
                amount_cents: f.fee.amount_cents,
                events: f.fee.events_count,
                in_advance: f.pay_in_advance,
                taxes: f
                    .taxes
                    .iter()
                    .map(|t| (t.code.clone(), t.amount_cents))
                    .collect(),
            })
            .collect();
        fees.sort();
        let billed = Billed {
            customer: customer.external_id.clone(),
            status: invoice.status,
            issuing_date: invoice.issuing_date,
            grace_until: invoice.grace_until.map(Timestamp::micros),
            run,
            totals: InvoiceTotals {
                credit_notes_amount_cents: 0,
                total_amount_cents: t.sub_total_including_taxes_amount_cents,
                ..t
            },
            fees,
        };
        if let Some(twice) = by_key.insert(key.clone(), billed) {
            return Err(TestCaseError::fail(format!(
                "{name}: {key:?} was invoiced twice (also {twice:?})"
            )));
        }
    }
    // Numbers run from 1 without gaps for each customer.
    for (customer, mut got) in numbers {
        got.sort_unstable();
        let want: Vec<i64> = (1..=got.len() as i64).collect();
        prop_assert_eq!(got, want, "{}: invoice numbers of {}", name, customer);
    }
    // The naive reference: which boundaries are billed, and all the usage in between, once.
    for (index, sub) in world.subs.iter().enumerate() {
        let ends = sub.ends().filter(|t| *t <= world.end);
        let until = ends.unwrap_or(world.end);
        let want_periodic: Vec<i64> = sub
            .boundaries
            .iter()
            .copied()
            .filter(|b| *b <= until)
            .collect();
        let mine = |reason: RunReason| -> Vec<i64> {
            by_key
                .keys()
                .filter(|(id, _, r)| *id == sub.external_id && *r == reason.name())
                .map(|(_, b, _)| *b)
                .collect()
        };
        prop_assert_eq!(
            mine(RunReason::Periodic),
            want_periodic.clone(),
            "{}: periodic invoices of {}",
            name,
            sub.external_id
        );
        let want_terminating: Vec<i64> = ends
            .filter(|t| *t > sub.start && !sub.boundaries.contains(t))
            .into_iter()
            .collect();
        prop_assert_eq!(
            mine(RunReason::Terminating),
            want_terminating,
            "{}: termination invoice of {}",
            name,
            sub.external_id
        );
        let starting = mine(RunReason::Starting);
        if !s.pay_in_advance || sub.start > world.end {
            prop_assert!(starting.is_empty(), "{}: {} opened", name, sub.external_id);
        } else if s.trial_days == 0 {
            prop_assert_eq!(
                starting,
                vec![sub.start],
                "{}: opening of {}",
                name,
                sub.external_id
            );
        } else {
            // Where a trial puts the opening invoice is being changed; it is made once at most.
            prop_assert!(
                starting.len() <= 1,
                "{}: {} opened twice",
                name,
                sub.external_id
            );
        }
        // Usage: every event from the start to the last billed instant, once. A subscription that
        // ended bills the events up to and including its end (COMPAT §2.5); otherwise a period ends
        // just before its boundary.
        let billed = |at: i64| match ends {
            Some(end) => at <= end,
            None => at < want_periodic.last().copied().unwrap_or(sub.start),
        };
        let want_units: Decimal = world
            .events
            .iter()
            .filter(|e| e.subscription == index && e.at >= sub.start && billed(e.at))
            .map(|e| e.value)
            .sum();
        let got_units: Decimal = by_key
            .iter()
            .filter(|((id, _, _), _)| *id == sub.external_id)
            .flat_map(|(_, b)| &b.fees)
            .filter(|f| f.kind == "charge")
            .map(|f| f.units)
            .sum();
        prop_assert_eq!(
            got_units,
            want_units,
            "{}: usage billed to {}",
            name,
            sub.external_id
        );
    }
    Ok(by_key)
}

/// Returns an invoice without what may differ in form between runs: the subscription fee billed in
/// advance for the period in which a subscription ends. A run that bills that period before the end
/// is known bills the whole period and the termination credits the unused part back; a run that
/// bills it afterwards bills only up to the end. What the customer owes is the same either way
/// (`an_advance_fee_does_not_depend_on_when_the_end_is_known`). Only the fee line, the run's advance
/// part and the totals are set aside; the invoice itself, its usage and every other line must still
/// be the same.
fn settled(s: &Scenario, world: &World, key: &Key, billed: &Billed) -> Billed {
    let mut billed = billed.clone();
    let sub = world.subs.iter().find(|sub| sub.external_id == key.0);
    let Some(end) = sub.and_then(Sub::ends).filter(|end| *end <= world.end) else {
        return billed;
    };
    let straddles = |from: i64, to: i64| from < end && end <= to;
    if let Some(advance) = billed.run.advance
        && s.pay_in_advance
        && straddles(advance.period.from.micros(), advance.period.to.micros())
    {
        billed.run.advance = None;
        billed
            .fees
            .retain(|f| !(f.kind == "subscription" && f.in_advance && straddles(f.from, f.to)));
        billed.totals = InvoiceTotals::default();
    }
    billed
}

/// Names the first difference between two runs' invoices.
pub fn same(
    s: &Scenario,
    world: &World,
    left: (&str, &BTreeMap<Key, Billed>),
    right: (&str, &BTreeMap<Key, Billed>),
) -> Result<(), TestCaseError> {
    for (key, billed) in left.1 {
        let billed = &settled(s, world, key, billed);
        match right
            .1
            .get(key)
            .map(|other| settled(s, world, key, other))
            .as_ref()
        {
            None => {
                return Err(TestCaseError::fail(format!(
                    "{key:?} is invoiced in {} but not in {}: {billed:?}",
                    left.0, right.0
                )));
            }
            Some(other) if other != billed => {
                return Err(TestCaseError::fail(format!(
                    "{key:?} differs:\n{}: {billed:?}\n{}: {other:?}",
                    left.0, right.0
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(key) = right.1.keys().find(|k| !left.1.contains_key(*k)) {
        return Err(TestCaseError::fail(format!(
            "{key:?} is invoiced in {} but not in {}",
            right.0, left.0
        )));
    }
    Ok(())
}

pub fn reported_once(
    name: &str,
    invoices: &[Invoice],
    created: &[InvoiceId],
) -> Result<(), TestCaseError> {
    let reported: BTreeSet<String> = created.iter().map(|id| id.0.to_string()).collect();
    prop_assert_eq!(
        reported.len(),
        created.len(),
        "{}: an invoice reported twice",
        name
    );
    let stored: BTreeSet<String> = invoices.iter().map(|i| i.id.0.to_string()).collect();
    prop_assert_eq!(reported, stored, "{}: invoices made and reported", name);
    Ok(())
}
