//! Values the store hands back and the queries it takes.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use tally_core::aggregation::AggState;
use tally_core::event::BillingIssue;
use tally_core::id::MetricId;
use tally_core::metric::MetricDefinition;
use tally_core::time::Timestamp;
use tally_core::window::WindowSize;

/// A page of a list and the size of the whole list.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed<T> {
    /// The items of the page.
    pub items: Vec<T>,
    /// How many items the whole list holds.
    pub total: u64,
}

/// A stored billable metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Its id (`lago_id`; the meter id is the same bits).
    pub id: MetricId,
    /// What it counts.
    pub definition: MetricDefinition,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// Whether a group of events is stored as a whole or event by event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Atomicity {
    /// Any conflict stores nothing (Lago batches).
    AllOrNothing,
    /// Each event stands alone (bulk ingest, CloudEvent batches).
    EachEvent,
}

/// What happened to one event handed to [`crate::Store::record_events`].
#[derive(Debug, Clone, PartialEq)]
pub enum EventOutcome {
    /// Newly stored.
    Stored(StoredEvent),
    /// The same event was already stored; nothing changed.
    Duplicate(StoredEvent),
    /// Another payload is stored under this idempotency key; nothing changed.
    Conflict(StoredEvent),
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Ingest sequence number.
    pub seq: i64,
    /// The event's `lago_id`.
    pub id: uuid::Uuid,
    /// The `lago_id` of the customer its subject names, when that customer exists.
    pub customer_id: Option<uuid::Uuid>,
    /// CloudEvent source, `None` for Lago events.
    pub source: Option<String>,
    /// The client's transaction id.
    pub transaction_id: String,
    /// Event code after the case policy.
    pub code: String,
    /// Subject (external customer id) as sent.
    pub subject: Option<String>,
    /// Subscription as sent.
    pub external_subscription_id: Option<String>,
    /// Event time.
    pub timestamp: Timestamp,
    /// Receipt time.
    pub received_at: Timestamp,
    /// Properties after the case policy.
    pub properties: Map<String, Value>,
    /// Code and properties as sent, when the case policy changed them.
    pub original: Option<Value>,
    /// Lago `precise_total_amount_cents`.
    pub precise_total_amount_cents: Option<Decimal>,
    /// Why it cannot be billed, if it cannot.
    pub issue: Option<StoredIssue>,
}

/// A billing issue as stored: its code and its human explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredIssue {
    /// Stable code (see [`BillingIssue::code`]).
    pub code: String,
    /// Explanation.
    pub detail: String,
}

impl From<&BillingIssue> for StoredIssue {
    fn from(issue: &BillingIssue) -> Self {
        StoredIssue {
            code: issue.code().to_owned(),
            detail: issue.to_string(),
        }
    }
}

/// Filters for [`crate::Store::list_events`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    /// Only this event code.
    pub code: Option<String>,
    /// Only this subject (external customer id).
    pub subject: Option<String>,
    /// Only this subscription.
    pub external_subscription_id: Option<String>,
    /// Events at or after this time.
    pub from: Option<Timestamp>,
    /// Events at or before this time.
    pub to: Option<Timestamp>,
    /// `Some(false)`: only unbillable events; `Some(true)`: only billable ones.
    pub billable: Option<bool>,
}

/// A usage query over one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageQuery {
    /// The metric's code.
    pub metric: String,
    /// Inclusive start; `None` means the first event (with windows, the start of its window).
    pub from: Option<Timestamp>,
    /// Exclusive end (required: the caller passes "now" when the client sent none).
    pub to: Timestamp,
    /// Windowing, if any, and the zone windows are cut in.
    pub window: Option<(WindowSize, Tz)>,
    /// Only these subjects (empty: all); filtering by subject also groups by it.
    pub subjects: Vec<String>,
    /// Group by subject.
    pub group_by_subject: bool,
    /// Group by these dimensions of the metric.
    pub group_by: Vec<String>,
    /// Only events whose dimension equals the value.
    pub filter_group: BTreeMap<String, String>,
}

/// The most windows one query may produce.
pub const MAX_WINDOWS: usize = 100_000;

/// One row of a usage answer.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    /// Window start (or the query's start).
    pub window_start: Timestamp,
    /// Window end (or the query's end).
    pub window_end: Timestamp,
    /// The subject, when grouped by subject.
    pub subject: Option<String>,
    /// Requested dimension values.
    pub group: BTreeMap<String, Option<String>>,
    /// The aggregated value.
    pub value: Decimal,
}

/// The outcome of a rollup rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RebuildReport {
    /// Metrics rebuilt.
    pub metrics: u64,
    /// Events read.
    pub events: u64,
    /// Rollup rows after the rebuild.
    pub rows: u64,
    /// Rows that were missing, extra or different before the rebuild.
    pub rows_changed: u64,
}

/// One stored rollup row.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupRow {
    /// The metric's code.
    pub metric: String,
    /// Bucket width in seconds.
    pub width: i64,
    /// Subject ('' when none).
    pub subject: String,
    /// Bucket start in seconds.
    pub bucket: i64,
    /// Subscription ('' when none).
    pub subscription: String,
    /// Canonical group key.
    pub group_key: String,
    /// The aggregate.
    pub state: AggState,
}

/// A request to create a subscription (or change the plan of an existing one).
#[derive(Debug, Clone, PartialEq)]
pub struct NewSubscription {
    /// The customer; created when it does not exist.
    pub external_customer_id: tally_core::id::ExternalId,
    /// The plan.
    pub plan_code: String,
    /// The subscription's own external id.
    pub external_id: tally_core::id::ExternalId,
    /// Display name.
    pub name: Option<String>,
    /// Calendar or anniversary periods.
    pub billing_time: tally_core::period::BillingTime,
    /// When it starts; `None` means now.
    pub subscription_at: Option<Timestamp>,
    /// When it ends by itself.
    pub ending_at: Option<Timestamp>,
}

/// Filters for listing subscriptions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubscriptionFilter {
    /// Only this customer's.
    pub external_customer_id: Option<String>,
    /// Only on this plan.
    pub plan_code: Option<String>,
    /// Only in these states (empty: active only, as Lago).
    pub statuses: Vec<tally_core::subscription::SubscriptionStatus>,
}

/// A change to a subscription; `None` keeps a field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubscriptionUpdate {
    /// New name.
    pub name: Option<Option<String>>,
    /// New end (`Some(None)` removes it).
    pub ending_at: Option<Option<Timestamp>>,
    /// New start, for a pending subscription.
    pub subscription_at: Option<Timestamp>,
}

/// A fee as stored, with the labels an invoice shows.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFee {
    /// Its id.
    pub id: tally_core::id::FeeId,
    /// The priced line.
    pub fee: tally_core::billing::Fee,
    /// The item's code (plan code for the subscription fee, metric code for charges).
    pub item_code: String,
    /// The item's display name.
    pub item_name: String,
    /// The charge's invoice display name, when set.
    pub invoice_display_name: Option<String>,
    /// The filter's display name, when the fee bills a filter.
    pub filter_name: Option<String>,
    /// The filter's values, when the fee bills a filter.
    pub filter_values: Option<Value>,
    /// Whether the fee was billed in advance.
    pub pay_in_advance: bool,
    /// The add-on a one-off fee bills (its id, kept when the add-on is deleted).
    pub add_on_id: Option<uuid::Uuid>,
    /// The fee's own description (one-off fees: the one sent, else the add-on's).
    pub description: Option<String>,
    /// The part of the invoice's coupons spread onto this fee, in minor units.
    pub coupons_amount_cents: i64,
    /// The fee's taxes, each rounded once.
    pub taxes: Vec<FeeTax>,
    /// The event a pay-in-advance charge fee bills (its `transaction_id`); `None` for other fees.
    pub event_transaction_id: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A fee with what it belongs to, outside an invoice: an answer of `GET /fees` and of fee estimates.
/// Pay-in-advance charges that are not invoiceable make fees that belong to no invoice.
#[derive(Debug, Clone, PartialEq)]
pub struct FeeRecord {
    /// The fee (its taxes and coupons as its invoice, if any, applied them).
    pub fee: StoredFee,
    /// Its invoice, if it is on one.
    pub invoice_id: Option<tally_core::id::InvoiceId>,
    /// Whether its charge puts its fees on invoices.
    pub invoiceable: bool,
    /// The customer billed.
    pub customer: tally_core::customer::Customer,
    /// The subscription billed, if any.
    pub subscription: Option<tally_core::subscription::Subscription>,
    /// The currency of its amounts.
    pub currency: tally_core::currency::Currency,
    /// Its invoice's payment status (`pending` without an invoice).
    pub payment_status: tally_core::invoice::PaymentStatus,
}

/// Filters for listing fees.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeeFilter {
    /// Only this customer's (external id).
    pub external_customer_id: Option<String>,
    /// Only this subscription's (external id).
    pub external_subscription_id: Option<String>,
    /// Only this kind (`subscription`, `charge`, `commitment`, `credit`).
    pub fee_type: Option<tally_core::billing::FeeKind>,
    /// Only the charges of this metric.
    pub billable_metric_code: Option<String>,
}

/// A tax on a fee (or, summed, on an invoice).
#[derive(Debug, Clone, PartialEq)]
pub struct FeeTax {
    /// The tax's id.
    pub tax_id: uuid::Uuid,
    /// Its code.
    pub code: String,
    /// Its name.
    pub name: String,
    /// Percent.
    pub rate: Decimal,
    /// Minor units.
    pub amount_cents: i64,
}

/// A coupon as an invoice used it.
#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceCoupon {
    /// The applied coupon's id.
    pub applied_coupon_id: uuid::Uuid,
    /// The coupon's code.
    pub code: String,
    /// The coupon's name.
    pub name: String,
    /// Minor units taken off.
    pub amount_cents: i64,
}

/// A usage threshold a progressive invoice passed.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedUsageThreshold {
    /// The threshold's id.
    pub id: tally_core::id::UsageThresholdId,
    /// The threshold as it was (thresholds removed from the plan later are still named).
    pub threshold: tally_core::plan::UsageThreshold,
    /// The subscription's lifetime usage when the invoice passed it, in minor units.
    pub lifetime_usage_amount_cents: i64,
    /// When the threshold was created.
    pub created_at: Timestamp,
    /// When the threshold last changed.
    pub updated_at: Timestamp,
}

/// An invoice as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Invoice {
    /// Its id (`lago_id`).
    pub id: tally_core::id::InvoiceId,
    /// Its number, once finalized.
    pub number: Option<String>,
    /// The customer's n-th finalized invoice.
    pub sequential_id: Option<i64>,
    /// The customer.
    pub customer: tally_core::customer::Customer,
    /// The zone its dates are in.
    pub timezone: Tz,
    /// The subscription billed, for subscription invoices.
    pub subscription: Option<tally_core::subscription::Subscription>,
    /// `subscription`, `credit` (wallet top-ups) or `one_off` (add-ons).
    pub invoice_type: String,
    /// Draft, finalized or voided.
    pub status: tally_core::invoice::InvoiceStatus,
    /// Paid or not.
    pub payment_status: tally_core::invoice::PaymentStatus,
    /// The currency of every amount.
    pub currency: tally_core::currency::Currency,
    /// Issuing date in the customer's zone.
    pub issuing_date: chrono::NaiveDate,
    /// Days to pay.
    pub net_payment_term: i64,
    /// Totals in minor units.
    pub totals: tally_core::billing::InvoiceTotals,
    /// The billing run it comes from (`None` for invoices outside the billing clock, such as credits).
    pub run: Option<tally_core::billing::Run>,
    /// Its lines.
    pub fees: Vec<StoredFee>,
    /// Taxes summed per tax over the fees.
    pub applied_taxes: Vec<FeeTax>,
    /// Coupons used (recorded at finalization).
    pub coupons: Vec<InvoiceCoupon>,
    /// Credit notes whose credit this invoice spent (recorded at finalization; `code` is the note's
    /// number).
    pub credit_notes: Vec<InvoiceCoupon>,
    /// The usage thresholds a progressive invoice passed (empty on other invoices).
    pub applied_usage_thresholds: Vec<AppliedUsageThreshold>,
    /// A draft is finalized at this instant.
    pub grace_until: Option<Timestamp>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// When it was finalized.
    pub finalized_at: Option<Timestamp>,
    /// When it was voided.
    pub voided_at: Option<Timestamp>,
}

/// A request for a one-off invoice: add-ons billed to a customer at once (Lago `POST /invoices`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewOneOffInvoice {
    /// The customer, who must exist.
    pub external_customer_id: tally_core::id::ExternalId,
    /// The invoice's currency; `None` takes the customer's. It must be the customer's when the
    /// customer has one, and becomes the customer's when not.
    pub currency: Option<tally_core::currency::Currency>,
    /// The fees, in order; at least one.
    pub fees: Vec<OneOffFee>,
}

/// One fee of a one-off invoice.
#[derive(Debug, Clone, PartialEq)]
pub struct OneOffFee {
    /// The add-on billed.
    pub add_on_code: String,
    /// Units billed (≥ 0); 1 when `None`.
    pub units: Option<Decimal>,
    /// Price of one unit in minor units (≥ 0); the add-on's price when `None`.
    pub unit_amount_cents: Option<i64>,
    /// Shown with the fee; the add-on's description when `None`.
    pub description: Option<String>,
    /// The name the invoice shows; the add-on's display name when `None`.
    pub invoice_display_name: Option<String>,
    /// The fee's taxes by code; when `None` or empty, the add-on's, else the customer's, else the
    /// organization's.
    pub tax_codes: Option<Vec<String>>,
    /// The period the fee covers, both ends included; the invoice's instant when `None`.
    pub period: Option<(Timestamp, Timestamp)>,
}

/// Filters for listing invoices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InvoiceFilter {
    /// Only this customer's.
    pub external_customer_id: Option<String>,
    /// Only in these states.
    pub statuses: Vec<tally_core::invoice::InvoiceStatus>,
    /// Only with these payment states.
    pub payment_statuses: Vec<tally_core::invoice::PaymentStatus>,
}

/// A charge's usage in the open period, priced (Lago `current_usage`).
#[derive(Debug, Clone, PartialEq)]
pub struct ChargeUsageLine {
    /// The charge.
    pub charge: tally_core::plan::Charge,
    /// The metric it prices.
    pub metric: Metric,
    /// The charge's fees: one per filter, then the charge's own terms.
    pub fees: Vec<StoredFee>,
}

/// The priced usage of a subscription's open period.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentUsage {
    /// The subscription.
    pub subscription: tally_core::subscription::Subscription,
    /// The charges period in progress.
    pub period: tally_core::period::Period,
    /// The date its invoice will carry, in the customer's zone.
    pub issuing_date: chrono::NaiveDate,
    /// The currency.
    pub currency: tally_core::currency::Currency,
    /// One line per charge, even at zero.
    pub charges: Vec<ChargeUsageLine>,
}

/// A subscription's lifetime usage (Lago `lifetime_usage`): what progressive billing compares its
/// plan's usage thresholds with. Amounts are usage charges billed in arrears, in minor units.
#[derive(Debug, Clone, PartialEq)]
pub struct LifetimeUsage {
    /// The subscription.
    pub subscription: tally_core::subscription::Subscription,
    /// Usage it had before tally, as the client set it.
    pub historical_usage_amount_cents: i64,
    /// Usage of its closed periods, as their invoices billed it.
    pub invoiced_usage_amount_cents: i64,
    /// Usage of the open charges period so far.
    pub current_usage_amount_cents: i64,
    /// The open charges period.
    pub period: tally_core::period::Period,
    /// Progress toward each threshold of the plan, with when a progressive invoice reached it.
    pub thresholds: Vec<(tally_core::billing::Progress, Option<Timestamp>)>,
}

/// The billed usage of a closed charges period (Lago `past_usage`), from its finalized invoice.
#[derive(Debug, Clone, PartialEq)]
pub struct PastUsage {
    /// The invoice that billed it.
    pub invoice_id: tally_core::id::InvoiceId,
    /// The period, its charges and their fees as invoiced.
    pub usage: CurrentUsage,
}

/// Overrides of a coupon's value when it is applied to a customer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CouponOverrides {
    /// Another fixed amount.
    pub amount_cents: Option<i64>,
    /// Another currency for the fixed amount.
    pub currency: Option<tally_core::currency::Currency>,
    /// Another percentage.
    pub percentage_rate: Option<Decimal>,
    /// Another frequency.
    pub frequency: Option<tally_core::coupon::Frequency>,
}

/// Filters for listing applied coupons.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppliedCouponFilter {
    /// Only this customer's.
    pub external_customer_id: Option<String>,
    /// Only active (`Some(true)`) or terminated (`Some(false)`) ones.
    pub active: Option<bool>,
}

/// A request to create a wallet.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWallet {
    /// The customer.
    pub external_customer_id: tally_core::id::ExternalId,
    /// Its currency.
    pub currency: tally_core::currency::Currency,
    /// What one credit is worth, in major units.
    pub rate_amount: Decimal,
    /// Display name.
    pub name: Option<String>,
    /// The client's code.
    pub code: Option<String>,
    /// When it expires.
    pub expiration_at: Option<Timestamp>,
    /// Credits to add at once, with their worth.
    pub top_up: TopUp,
}

/// Credits added to or taken from a wallet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopUp {
    /// Credits bought: added, and billed on a `credit` invoice.
    pub paid_credits: Decimal,
    /// Credits given: added for free.
    pub granted_credits: Decimal,
    /// Credits taken away.
    pub voided_credits: Decimal,
}

/// A movement of credits.
#[derive(Debug, Clone, PartialEq)]
pub struct WalletTransaction {
    /// Its id.
    pub id: uuid::Uuid,
    /// The wallet's id.
    pub wallet_id: uuid::Uuid,
    /// `inbound` or `outbound`.
    pub transaction_type: String,
    /// `pending`, `settled` or `failed`.
    pub status: String,
    /// `purchased`, `granted`, `voided` or `invoiced`.
    pub transaction_status: String,
    /// Credits moved.
    pub credit_amount: Decimal,
    /// Their worth in major units.
    pub amount: Decimal,
    /// The invoice that bought or spent them.
    pub invoice_id: Option<uuid::Uuid>,
    /// When it happened.
    pub created_at: Timestamp,
    /// When it settled.
    pub settled_at: Option<Timestamp>,
}

/// A request to credit or refund part of a finalized invoice.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCreditNote {
    /// The invoice.
    pub invoice_id: tally_core::id::InvoiceId,
    /// Why (`duplicated_charge`, `product_unsatisfactory`, `order_change`, `order_cancellation`,
    /// `fraudulent_charge`, `other`).
    pub reason: String,
    /// Free text.
    pub description: Option<String>,
    /// Fees credited and by how much (minor units, before taxes).
    pub items: Vec<(uuid::Uuid, i64)>,
    /// Part of the total kept as credit for later invoices.
    pub credit_amount_cents: Option<i64>,
    /// Part of the total paid back.
    pub refund_amount_cents: Option<i64>,
}

/// What a credit note request would credit, worked out without writing anything.
#[derive(Debug, Clone, PartialEq)]
pub struct CreditNoteEstimate {
    /// The invoice.
    pub invoice_id: uuid::Uuid,
    /// Its number.
    pub invoice_number: String,
    /// Its currency.
    pub currency: tally_core::currency::Currency,
    /// Items before taxes.
    pub sub_total_excluding_taxes_amount_cents: i64,
    /// Taxes on the items, at each fee's rates.
    pub taxes_amount_cents: i64,
    /// Items plus taxes.
    pub total_amount_cents: i64,
    /// At most this much may be kept as credit.
    pub max_creditable_amount_cents: i64,
    /// At most this much may be refunded (nothing until the invoice is paid).
    pub max_refundable_amount_cents: i64,
    /// Fees credited: (fee id, minor units).
    pub items: Vec<(uuid::Uuid, i64)>,
}

/// A credit note as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CreditNote {
    /// Its id (`lago_id`).
    pub id: uuid::Uuid,
    /// `<invoice number>-CN<n>`.
    pub number: String,
    /// The n-th credit note of its invoice.
    pub sequential_id: i64,
    /// The invoice credited.
    pub invoice_id: uuid::Uuid,
    /// That invoice's number.
    pub invoice_number: String,
    /// The customer's id.
    pub customer_id: uuid::Uuid,
    /// The customer's external id.
    pub external_customer_id: String,
    /// Why.
    pub reason: String,
    /// Free text.
    pub description: Option<String>,
    /// Currency.
    pub currency: tally_core::currency::Currency,
    /// Items before taxes.
    pub sub_total_excluding_taxes_amount_cents: i64,
    /// Taxes on the items.
    pub taxes_amount_cents: i64,
    /// Items plus taxes.
    pub total_amount_cents: i64,
    /// Kept as credit.
    pub credit_amount_cents: i64,
    /// Paid back.
    pub refund_amount_cents: i64,
    /// Credit not spent yet.
    pub balance_amount_cents: i64,
    /// `available`, `consumed` or `voided` (none without credit).
    pub credit_status: Option<String>,
    /// `pending` (none without refund).
    pub refund_status: Option<String>,
    /// Fees credited: (fee id, minor units).
    pub items: Vec<(uuid::Uuid, i64)>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// When it was voided.
    pub voided_at: Option<Timestamp>,
}
