//! What the billing benchmarks price: three metrics, one monthly plan with a subscription fee and
//! three metered charges, events derived from a sequence number, and a reference price computed
//! from those events with integer arithmetic. The reference shares no code with `tally_core`'s
//! aggregation or charge models, so a pricing or aggregation fault shows up as a mismatch instead of
//! as a fast wrong answer.
//!
//! The plan, in USD, billed monthly on the calendar:
//! - a subscription fee of 49.00, in arrears;
//! - `bench_llm_tokens` (sum of `tokens`): `standard`, 0.00002 per token;
//! - `bench_api_requests` (count): `graduated`, 0–5 free, 6–1,000 at 0.01 plus 1.00 once reached,
//!   above 1,000 at 0.0005;
//! - `bench_storage_gb` (sum of `gb`, filter key `region`): `package` of 10 GB at 2.00 after 5 free
//!   GB, and, through a charge filter, 10 GB packages at 3.00 with none free for `eu-west-1`.

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};
use tally_core::ValidationErrors;
use tally_core::charge::{ChargeModel, ChargeModelKind};
use tally_core::currency::Currency;
use tally_core::event::{EventDraft, NewEvent};
use tally_core::id::{Code, ExternalId};
use tally_core::metric::{AggregationType, MetricDefinition, MetricFilter};
use tally_core::organization::Organization;
use tally_core::period::Interval;
use tally_core::plan::{
    ChargeDraft, ChargeFilter, ChargeTerms, Plan, PlanDraft, PlanTerms, UsageThreshold,
    validate_charge_codes, validate_terms,
};
use tally_core::property::PropertyPath;
use tally_core::time::Timestamp;
use tally_store::{Metric, Store, StoreError};

use super::workload::mix;

/// The plan's code.
pub const PLAN: &str = "bench_metered";
/// The subscription fee per month, in cents.
pub const SUBSCRIPTION_FEE_CENTS: i64 = 4_900;
/// The code of the summed token metric (standard charge).
pub const TOKENS: &str = "bench_llm_tokens";
/// The code of the counted request metric (graduated charge).
pub const REQUESTS: &str = "bench_api_requests";
/// The code of the summed storage metric (package charge with a filter).
pub const STORAGE: &str = "bench_storage_gb";
/// The regions events come from; the storage metric's filter values.
pub const REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "ap-south-1"];
/// The region the storage charge prices through its filter.
pub const FILTERED_REGION: &str = "eu-west-1";

/// Micro-dollars (10⁻⁶ USD): every price of the plan is a whole number of them.
const MICROS_PER_CENT: u128 = 10_000;
const TOKEN_PRICE_MICROS: u128 = 20;
const FREE_REQUESTS: u128 = 5;
const SECOND_TIER_TOP: u128 = 1_000;
const SECOND_TIER_UNIT_MICROS: u128 = 10_000;
const SECOND_TIER_FLAT_MICROS: u128 = 1_000_000;
const THIRD_TIER_UNIT_MICROS: u128 = 500;
/// Storage packages, in hundredths of a GB (events carry GB with two decimals).
const PACKAGE_HUNDREDTHS: u128 = 1_000;
const PACKAGE_MICROS: u128 = 2_000_000;
const FREE_STORAGE_HUNDREDTHS: u128 = 500;
const FILTERED_PACKAGE_MICROS: u128 = 3_000_000;

/// Which metric an event feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meter {
    /// LLM tokens, summed.
    Tokens,
    /// API requests, counted.
    Requests,
    /// Stored GB, summed.
    Storage,
}

/// One event's content, derived from its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// The metric it feeds (60% tokens, 30% requests, 10% storage).
    pub meter: Meter,
    /// When it happened.
    pub at: Timestamp,
    /// Tokens (1 to 4,000), or GB in hundredths (0.01 to 10.00); 1 for a request.
    pub quantity: u64,
    /// Where it happened.
    pub region: &'static str,
}

impl Usage {
    /// Derives event `seq`, timed at random in `[from, to)`.
    pub fn of(seq: u64, from: Timestamp, to: Timestamp) -> Usage {
        let h = mix(seq);
        let span = u64::try_from(to.micros() - from.micros())
            .unwrap_or(0)
            .max(1);
        let offset = i64::try_from(mix(h) % span).unwrap_or(0);
        let (meter, quantity) = match h % 10 {
            0..=5 => (Meter::Tokens, 1 + (h >> 8) % 4_000),
            6..=8 => (Meter::Requests, 1),
            _ => (Meter::Storage, 1 + (h >> 8) % 1_000),
        };
        Usage {
            meter,
            at: Timestamp::from_micros(from.micros() + offset),
            quantity,
            region: REGIONS[((h >> 32) % REGIONS.len() as u64) as usize],
        }
    }

    /// Builds the event as the store receives it from the server, naming only the customer.
    pub fn new_event(
        &self,
        org: &Organization,
        transaction_id: &str,
        customer: &str,
        received_at: Timestamp,
    ) -> Result<NewEvent> {
        let mut properties = Map::new();
        let code = match self.meter {
            Meter::Tokens => {
                properties.insert("tokens".into(), Value::from(self.quantity));
                properties.insert("model".into(), Value::from("gpt-4o-mini"));
                TOKENS
            }
            Meter::Requests => {
                properties.insert("route".into(), Value::from("/v1/chat/completions"));
                REQUESTS
            }
            Meter::Storage => {
                let gb = format!("{}.{:02}", self.quantity / 100, self.quantity % 100);
                properties.insert("gb".into(), Value::from(gb));
                STORAGE
            }
        };
        properties.insert("region".into(), Value::from(self.region));
        let draft = EventDraft {
            source: None,
            transaction_id: ExternalId::parse("transaction_id", transaction_id)
                .map_err(ValidationErrors::from)?,
            code: Code::parse("code", code).map_err(ValidationErrors::from)?,
            subject: Some(
                ExternalId::parse("external_customer_id", customer)
                    .map_err(ValidationErrors::from)?,
            ),
            external_subscription_id: None,
            timestamp: Some(self.at),
            properties,
            precise_total_amount_cents: None,
        };
        Ok(draft.prepare(org.id, org.identifier_case, received_at))
    }
}

/// What a set of events adds up to, per charge bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Events seen.
    pub events: u64,
    /// Tokens summed.
    pub tokens: u64,
    /// Requests counted.
    pub requests: u64,
    /// GB in hundredths from the filtered region.
    pub storage_filtered: u64,
    /// GB in hundredths from the other regions.
    pub storage_other: u64,
}

/// The reference price of each charge, in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChargeCents {
    /// The standard charge on tokens.
    pub tokens: i64,
    /// The graduated charge on requests.
    pub requests: i64,
    /// The package charge on storage: its filter's fee plus its own, each rounded.
    pub storage: i64,
}

impl ChargeCents {
    /// Returns the usage amount: the charges' sum, without the subscription fee.
    pub fn total(&self) -> i64 {
        self.tokens + self.requests + self.storage
    }

    /// Returns the reference amount of the charge on `metric`, if it is one of the plan's.
    pub fn of_metric(&self, metric: &str) -> Option<i64> {
        match metric {
            TOKENS => Some(self.tokens),
            REQUESTS => Some(self.requests),
            STORAGE => Some(self.storage),
            _ => None,
        }
    }
}

impl Totals {
    /// Counts one event.
    pub fn add(&mut self, usage: &Usage) {
        self.events += 1;
        match usage.meter {
            Meter::Tokens => self.tokens += usage.quantity,
            Meter::Requests => self.requests += 1,
            Meter::Storage if usage.region == FILTERED_REGION => {
                self.storage_filtered += usage.quantity
            }
            Meter::Storage => self.storage_other += usage.quantity,
        }
    }

    /// Prices the totals by the plan's rules, one fee per charge bucket rounded half to even.
    pub fn charge_cents(&self) -> ChargeCents {
        let tokens = u128::from(self.tokens) * TOKEN_PRICE_MICROS;
        let n = u128::from(self.requests);
        let mut requests = 0;
        if n > FREE_REQUESTS {
            requests += SECOND_TIER_FLAT_MICROS
                + (n.min(SECOND_TIER_TOP) - FREE_REQUESTS) * SECOND_TIER_UNIT_MICROS;
        }
        if n > SECOND_TIER_TOP {
            requests += (n - SECOND_TIER_TOP) * THIRD_TIER_UNIT_MICROS;
        }
        let packages = |hundredths: u128| hundredths.div_ceil(PACKAGE_HUNDREDTHS);
        let filtered = packages(u128::from(self.storage_filtered)) * FILTERED_PACKAGE_MICROS;
        let other =
            packages(u128::from(self.storage_other).saturating_sub(FREE_STORAGE_HUNDREDTHS))
                * PACKAGE_MICROS;
        ChargeCents {
            tokens: cents(tokens),
            requests: cents(requests),
            storage: cents(filtered) + cents(other),
        }
    }
}

/// Rounds micro-dollars to cents, half to even.
fn cents(micros: u128) -> i64 {
    let (whole, rest) = (micros / MICROS_PER_CENT, micros % MICROS_PER_CENT);
    let up = rest * 2 > MICROS_PER_CENT || (rest * 2 == MICROS_PER_CENT && whole % 2 == 1);
    i64::try_from(whole + u128::from(up)).unwrap_or(i64::MAX)
}

/// Returns the benchmark plan, creating it and its metrics when the database has none, with
/// `thresholds` as its usage thresholds (progressive billing).
pub async fn ensure_plan(
    store: &dyn Store,
    org: &Organization,
    thresholds: Vec<UsageThreshold>,
) -> Result<Plan> {
    match store.plan(org.id, PLAN).await {
        Ok(plan) => return Ok(plan),
        Err(StoreError::NotFound(_)) => {}
        Err(error) => return Err(error.into()),
    }
    let region = MetricFilter {
        key: "region".into(),
        values: REGIONS.iter().map(|r| (*r).to_owned()).collect(),
    };
    let tokens = metric(TOKENS, AggregationType::Sum, Some("tokens"), None)?;
    let tokens = ensure_metric(store, org, tokens).await?;
    let requests = metric(REQUESTS, AggregationType::Count, None, None)?;
    let requests = ensure_metric(store, org, requests).await?;
    let storage = metric(STORAGE, AggregationType::Sum, Some("gb"), Some(region))?;
    let storage = ensure_metric(store, org, storage).await?;
    let model = |kind: ChargeModelKind, properties: Value| {
        ChargeModel::from_properties(kind, properties.as_object())
    };
    let terms = |code: &str, model: ChargeModel| ChargeTerms {
        code: code.to_owned(),
        invoice_display_name: None,
        model,
        pay_in_advance: false,
        invoiceable: true,
        prorated: false,
        min_amount_cents: 0,
    };
    let charges = vec![
        ChargeDraft {
            id: None,
            metric_id: tokens.id,
            terms: terms(
                "llm_tokens",
                model(ChargeModelKind::Standard, json!({"amount": "0.00002"}))?,
            ),
            filters: Vec::new(),
            tax_codes: None,
        },
        ChargeDraft {
            id: None,
            metric_id: requests.id,
            terms: terms(
                "api_requests",
                model(
                    ChargeModelKind::Graduated,
                    json!({"graduated_ranges": [
                        {"from_value": 0, "to_value": 5, "per_unit_amount": "0", "flat_amount": "0"},
                        {"from_value": 6, "to_value": 1000, "per_unit_amount": "0.01", "flat_amount": "1"},
                        {"from_value": 1001, "to_value": null, "per_unit_amount": "0.0005", "flat_amount": "0"}
                    ]}),
                )?,
            ),
            filters: Vec::new(),
            tax_codes: None,
        },
        ChargeDraft {
            id: None,
            metric_id: storage.id,
            terms: terms(
                "storage",
                model(
                    ChargeModelKind::Package,
                    json!({"amount": "2", "package_size": 10, "free_units": 5}),
                )?,
            ),
            filters: vec![ChargeFilter {
                values: [("region".to_owned(), vec![FILTERED_REGION.to_owned()])]
                    .into_iter()
                    .collect(),
                model: model(
                    ChargeModelKind::Package,
                    json!({"amount": "3", "package_size": 10, "free_units": 0}),
                )?,
                invoice_display_name: Some(format!("Storage in {FILTERED_REGION}")),
            }],
            tax_codes: None,
        },
    ];
    let draft = PlanDraft {
        terms: PlanTerms {
            code: Code::parse("code", PLAN).map_err(ValidationErrors::from)?,
            name: "Benchmark metered".into(),
            description: Some("Created by tally bench".into()),
            invoice_display_name: None,
            interval: Interval::Monthly,
            amount_cents: SUBSCRIPTION_FEE_CENTS,
            currency: Currency::parse("USD").context("USD is not a known currency")?,
            pay_in_advance: false,
            trial_period_days: 0,
            bill_charges_monthly: false,
            minimum_commitment: None,
        },
        charges,
        tax_codes: None,
        usage_thresholds: thresholds.into_iter().map(|t| (None, t)).collect(),
    };
    let mut errors = ValidationErrors::new();
    validate_terms(&draft.terms, &mut errors);
    validate_charge_codes(&draft.charges, &mut errors);
    for (index, (charge, metric)) in draft
        .charges
        .iter()
        .zip([&tokens, &requests, &storage])
        .enumerate()
    {
        charge.validate(&metric.definition, index, &mut errors);
    }
    errors.into_result(())?;
    Ok(store.create_plan(org.id, draft).await?)
}

/// Builds the definition of one of the benchmark's metrics.
fn metric(
    code: &str,
    aggregation: AggregationType,
    field: Option<&str>,
    filter: Option<MetricFilter>,
) -> Result<MetricDefinition> {
    let code = Code::parse("code", code).map_err(ValidationErrors::from)?;
    let definition = MetricDefinition {
        code: code.clone(),
        name: format!("Benchmark {code}"),
        description: Some("Created by tally bench".into()),
        aggregation,
        event_type: code,
        field: field.map(PropertyPath::key),
        recurring: false,
        rounding: None,
        filters: filter.into_iter().collect(),
        group_by: Default::default(),
        event_from: None,
    };
    definition.validate()?;
    Ok(definition)
}

/// Returns the metric with the definition's code, creating it when the database has none.
async fn ensure_metric(
    store: &dyn Store,
    org: &Organization,
    definition: MetricDefinition,
) -> Result<Metric> {
    match store.metric(org.id, definition.code.as_str()).await {
        Ok(metric) => return Ok(metric),
        Err(StoreError::NotFound(_)) => {}
        Err(error) => return Err(error.into()),
    }
    Ok(store
        .create_metric(org.id, definition.normalized(org.identifier_case))
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_round_half_to_even() {
        assert_eq!(cents(0), 0);
        assert_eq!(cents(4_999), 0);
        assert_eq!(cents(5_000), 0);
        assert_eq!(cents(5_001), 1);
        assert_eq!(cents(15_000), 2);
        assert_eq!(cents(25_000), 2);
        assert_eq!(cents(1_000_000), 100);
    }

    #[test]
    fn the_reference_follows_the_plan() {
        let zero = Totals::default().charge_cents();
        assert_eq!(zero.total(), 0);
        let totals = Totals {
            events: 0,
            tokens: 1_234_567,
            requests: 2_500,
            storage_filtered: 1_001,
            storage_other: 1_500,
        };
        let priced = totals.charge_cents();
        // 1,234,567 × 0.00002 = 24.69134 → 2,469 cents.
        assert_eq!(priced.tokens, 2_469);
        // 1.00 + 995 × 0.01 + 1,500 × 0.0005 = 11.70.
        assert_eq!(priced.requests, 1_170);
        // 10.01 GB: 2 packages × 3.00; 15.00 GB − 5 free: 1 package × 2.00.
        assert_eq!(priced.storage, 800);
        assert_eq!(
            Totals {
                requests: 5,
                ..Totals::default()
            }
            .charge_cents()
            .requests,
            0
        );
    }

    #[test]
    fn usage_stays_in_its_range() {
        let (from, to) = (
            Timestamp::from_seconds(1_767_225_600),
            Timestamp::from_seconds(1_769_904_000),
        );
        let mut totals = Totals::default();
        for seq in 0..10_000 {
            let usage = Usage::of(seq, from, to);
            assert!(usage.at >= from && usage.at < to);
            totals.add(&usage);
        }
        assert_eq!(totals.events, 10_000);
        assert!(totals.requests > 2_500 && totals.requests < 3_500);
        assert!(totals.storage_filtered > 0 && totals.storage_other > 0);
    }
}
