//! tally's storage: the [`Store`] trait in domain terms, and its embedded SQLite implementation.
//!
//! The store owns every transaction and every invariant that money depends on: idempotency keys are
//! enforced by the database, rollups are written in the same transaction as the events they count, and
//! every write is all-or-nothing. Callers never see SQL; a PostgreSQL implementation slots in behind the
//! same trait.
#![warn(missing_docs)]

mod error;
pub mod sqlite;
mod types;

pub use error::{StoreError, StoreResult};
pub use types::*;

use async_trait::async_trait;
use tally_core::add_on::{AddOn, AddOnDraft};
use tally_core::apikey::{ApiKey, Scope};
use tally_core::coupon::{AppliedCoupon, Coupon, CouponTerms};
use tally_core::customer::{Customer, CustomerProfile};
use tally_core::event::NewEvent;
use tally_core::id::{ApiKeyId, CustomerId, ExternalId, FeeId, InvoiceId, OrganizationId, PlanId};
use tally_core::invoice::PaymentStatus;
use tally_core::metric::MetricDefinition;
use tally_core::organization::{Organization, OrganizationPatch};
use tally_core::page::Page;
use tally_core::plan::{Plan, PlanDraft};
use tally_core::subscription::{Subscription, SubscriptionStatus};
use tally_core::tax::{Tax, TaxTerms};
use tally_core::time::Timestamp;
use tally_core::wallet::Wallet;

/// Everything tally persists, in domain terms.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks that the database answers and is migrated (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    /// Returns the organization that owns the database's first API key, creating a default
    /// organization when there is none.
    async fn default_organization(&self) -> StoreResult<Organization>;

    /// Reads an organization.
    async fn organization(&self, org: OrganizationId) -> StoreResult<Organization>;

    /// Changes an organization's settings.
    async fn update_organization(
        &self,
        org: OrganizationId,
        patch: OrganizationPatch,
    ) -> StoreResult<Organization>;

    /// Stores a new API key by the digest of its secret.
    async fn create_api_key(
        &self,
        org: OrganizationId,
        name: &str,
        scope: Scope,
        prefix: &str,
        secret_hash: [u8; 32],
    ) -> StoreResult<ApiKey>;

    /// Finds a live (not revoked) key by the digest of its secret.
    async fn api_key_by_hash(&self, secret_hash: [u8; 32]) -> StoreResult<Option<ApiKey>>;

    /// Lists every key, revoked ones included.
    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>>;

    /// Revokes a key; revoking twice is harmless.
    async fn revoke_api_key(&self, id: ApiKeyId) -> StoreResult<ApiKey>;

    /// Creates a customer, or changes the live customer with that external id.
    async fn upsert_customer(
        &self,
        org: OrganizationId,
        external_id: ExternalId,
        change: CustomerChange,
    ) -> StoreResult<Customer>;

    /// Reads a live customer.
    async fn customer(
        &self,
        org: OrganizationId,
        external_id: &ExternalId,
    ) -> StoreResult<Customer>;

    /// Lists live customers, oldest first.
    async fn list_customers(
        &self,
        org: OrganizationId,
        filter: &CustomerFilter,
        page: Page,
    ) -> StoreResult<Listed<Customer>>;

    /// Returns the time zone a customer's billing periods are cut in: the customer's, else the
    /// organization's, else UTC.
    async fn customer_timezone(
        &self,
        org: OrganizationId,
        customer: CustomerId,
    ) -> StoreResult<chrono_tz::Tz>;

    /// Deletes a customer (its row is kept for history; the external id becomes free).
    async fn delete_customer(
        &self,
        org: OrganizationId,
        external_id: &ExternalId,
    ) -> StoreResult<Customer>;

    /// Creates a billable metric and counts the events already stored for it.
    async fn create_metric(
        &self,
        org: OrganizationId,
        definition: MetricDefinition,
    ) -> StoreResult<Metric>;

    /// Replaces a metric's definition; rollups are recomputed when what it counts changes.
    async fn update_metric(
        &self,
        org: OrganizationId,
        code: &str,
        definition: MetricDefinition,
    ) -> StoreResult<Metric>;

    /// Reads a live metric by code.
    async fn metric(&self, org: OrganizationId, code: &str) -> StoreResult<Metric>;

    /// Reads a live metric by id.
    async fn metric_by_id(&self, org: OrganizationId, id: uuid::Uuid) -> StoreResult<Metric>;

    /// Lists live metrics, oldest first.
    async fn list_metrics(&self, org: OrganizationId, page: Page) -> StoreResult<Listed<Metric>>;

    /// Deletes a metric and its rollups.
    async fn delete_metric(&self, org: OrganizationId, code: &str) -> StoreResult<Metric>;

    /// Creates a plan with its charges.
    async fn create_plan(&self, org: OrganizationId, draft: PlanDraft) -> StoreResult<Plan>;

    /// Replaces a plan's fields and charges (charges keep their id when the draft names it).
    async fn update_plan(
        &self,
        org: OrganizationId,
        code: &str,
        draft: PlanDraft,
    ) -> StoreResult<Plan>;

    /// Reads a live plan by code.
    async fn plan(&self, org: OrganizationId, code: &str) -> StoreResult<Plan>;

    /// Reads a plan by id, deleted or not (subscriptions keep their plan).
    async fn plan_by_id(&self, org: OrganizationId, id: PlanId) -> StoreResult<Plan>;

    /// Lists live plans, oldest first.
    async fn list_plans(&self, org: OrganizationId, page: Page) -> StoreResult<Listed<Plan>>;

    /// Deletes a plan; subscriptions on it keep it.
    async fn delete_plan(&self, org: OrganizationId, code: &str) -> StoreResult<Plan>;

    /// Creates a subscription, or upgrades or downgrades the active one with the same external id;
    /// `now` is the billing clock's time.
    async fn create_subscription(
        &self,
        org: OrganizationId,
        request: NewSubscription,
        now: Timestamp,
    ) -> StoreResult<Subscription>;

    /// Reads the latest subscription with this external id and status.
    async fn subscription(
        &self,
        org: OrganizationId,
        external_id: &str,
        status: SubscriptionStatus,
    ) -> StoreResult<Subscription>;

    /// Lists subscriptions, oldest first.
    async fn list_subscriptions(
        &self,
        org: OrganizationId,
        filter: &SubscriptionFilter,
        page: Page,
    ) -> StoreResult<Listed<Subscription>>;

    /// Changes a subscription's name, end or (while pending) start.
    async fn update_subscription(
        &self,
        org: OrganizationId,
        external_id: &str,
        status: SubscriptionStatus,
        change: SubscriptionUpdate,
        now: Timestamp,
    ) -> StoreResult<Subscription>;

    /// Reads the lifetime usage of the active subscription with this external id at `now`.
    async fn lifetime_usage(
        &self,
        org: OrganizationId,
        external_id: &str,
        now: Timestamp,
    ) -> StoreResult<LifetimeUsage>;

    /// Sets the usage the active subscription with this external id had before tally (minor units,
    /// at least 0), counted in its lifetime usage; returns the lifetime usage at `now`.
    async fn set_historical_usage(
        &self,
        org: OrganizationId,
        external_id: &str,
        amount_cents: i64,
        now: Timestamp,
    ) -> StoreResult<LifetimeUsage>;

    /// Terminates an active subscription, or cancels a pending one, at `now`.
    async fn terminate_subscription(
        &self,
        org: OrganizationId,
        external_id: &str,
        status: SubscriptionStatus,
        now: Timestamp,
    ) -> StoreResult<Subscription>;

    /// Runs the billing clock up to `now`: starts and ends subscriptions on time, bills the events
    /// stored since the last run to their pay-in-advance charges (each (charge, event) exactly once),
    /// bills every run due exactly once, and finalizes drafts whose grace period ended. Returns the
    /// invoices created.
    async fn run_billing(&self, now: Timestamp) -> StoreResult<Vec<InvoiceId>>;

    /// Reads an invoice.
    async fn invoice(&self, org: OrganizationId, id: InvoiceId) -> StoreResult<Invoice>;

    /// Lists invoices, newest first.
    async fn list_invoices(
        &self,
        org: OrganizationId,
        filter: &InvoiceFilter,
        page: Page,
    ) -> StoreResult<Listed<Invoice>>;

    /// Recomputes a draft from current usage.
    async fn refresh_invoice(&self, org: OrganizationId, id: InvoiceId) -> StoreResult<Invoice>;

    /// Finalizes a draft now (recomputed first), giving it its number.
    async fn finalize_invoice(
        &self,
        org: OrganizationId,
        id: InvoiceId,
        now: Timestamp,
    ) -> StoreResult<Invoice>;

    /// Voids a finalized invoice.
    async fn void_invoice(
        &self,
        org: OrganizationId,
        id: InvoiceId,
        now: Timestamp,
    ) -> StoreResult<Invoice>;

    /// Records an invoice's payment status.
    async fn set_invoice_payment_status(
        &self,
        org: OrganizationId,
        id: InvoiceId,
        status: PaymentStatus,
    ) -> StoreResult<Invoice>;

    /// Works out what one event would bill now on the pay-in-advance charges of its subscription
    /// (named, or the customer's only active one), against what was billed so far; writes nothing.
    async fn estimate_fees(
        &self,
        org: OrganizationId,
        event: NewEvent,
        now: Timestamp,
    ) -> StoreResult<Vec<FeeRecord>>;

    /// Reads a fee: an invoice line, or a pay-in-advance fee on no invoice.
    async fn fee(&self, org: OrganizationId, id: FeeId) -> StoreResult<FeeRecord>;

    /// Lists fees, newest first.
    async fn list_fees(
        &self,
        org: OrganizationId,
        filter: &FeeFilter,
        page: Page,
    ) -> StoreResult<Listed<FeeRecord>>;

    /// Prices the open period of a customer's active subscription.
    async fn current_usage(
        &self,
        org: OrganizationId,
        customer: &str,
        subscription: &str,
        now: Timestamp,
    ) -> StoreResult<CurrentUsage>;

    /// Creates a tax.
    async fn create_tax(&self, org: OrganizationId, terms: TaxTerms) -> StoreResult<Tax>;

    /// Changes a tax.
    async fn update_tax(
        &self,
        org: OrganizationId,
        code: &str,
        terms: TaxTerms,
    ) -> StoreResult<Tax>;

    /// Reads a live tax by code.
    async fn tax(&self, org: OrganizationId, code: &str) -> StoreResult<Tax>;

    /// Lists live taxes.
    async fn list_taxes(&self, org: OrganizationId, page: Page) -> StoreResult<Listed<Tax>>;

    /// Deletes a tax.
    async fn delete_tax(&self, org: OrganizationId, code: &str) -> StoreResult<Tax>;

    /// Replaces the taxes a customer (`owner_kind` `customer`), plan (`plan`) or add-on (`add_on`)
    /// carries, by code.
    async fn set_taxes(
        &self,
        org: OrganizationId,
        owner_kind: &'static str,
        owner: uuid::Uuid,
        codes: Vec<String>,
    ) -> StoreResult<()>;

    /// Returns the taxes a customer or plan carries.
    async fn taxes_of(
        &self,
        org: OrganizationId,
        owner_kind: &'static str,
        owner: uuid::Uuid,
    ) -> StoreResult<Vec<Tax>>;

    /// Creates an add-on with its taxes.
    async fn create_add_on(&self, org: OrganizationId, draft: AddOnDraft) -> StoreResult<AddOn>;

    /// Replaces an add-on's fields (and its taxes, when the draft names them).
    async fn update_add_on(
        &self,
        org: OrganizationId,
        code: &str,
        draft: AddOnDraft,
    ) -> StoreResult<AddOn>;

    /// Reads a live add-on by code.
    async fn add_on(&self, org: OrganizationId, code: &str) -> StoreResult<AddOn>;

    /// Lists live add-ons, oldest first.
    async fn list_add_ons(&self, org: OrganizationId, page: Page) -> StoreResult<Listed<AddOn>>;

    /// Deletes an add-on; invoices that billed it keep their fees.
    async fn delete_add_on(&self, org: OrganizationId, code: &str) -> StoreResult<AddOn>;

    /// Bills add-ons to a customer on a one-off invoice, finalized and numbered at `at` (the
    /// billing clock's time), in one transaction.
    async fn create_one_off_invoice(
        &self,
        org: OrganizationId,
        request: NewOneOffInvoice,
        at: Timestamp,
    ) -> StoreResult<Invoice>;

    /// Creates a coupon.
    async fn create_coupon(&self, org: OrganizationId, terms: CouponTerms) -> StoreResult<Coupon>;

    /// Reads a live coupon by code.
    async fn coupon(&self, org: OrganizationId, code: &str) -> StoreResult<Coupon>;

    /// Lists live coupons.
    async fn list_coupons(&self, org: OrganizationId, page: Page) -> StoreResult<Listed<Coupon>>;

    /// Terminates a coupon (no new applications).
    async fn terminate_coupon(
        &self,
        org: OrganizationId,
        code: &str,
        at: Timestamp,
    ) -> StoreResult<Coupon>;

    /// Applies a coupon to a customer.
    async fn apply_coupon(
        &self,
        org: OrganizationId,
        code: &str,
        customer: &ExternalId,
        overrides: CouponOverrides,
        at: Timestamp,
    ) -> StoreResult<AppliedCoupon>;

    /// Lists applied coupons.
    async fn list_applied_coupons(
        &self,
        org: OrganizationId,
        filter: &AppliedCouponFilter,
        page: Page,
    ) -> StoreResult<Listed<AppliedCoupon>>;

    /// Stops a coupon applied to a customer.
    async fn remove_applied_coupon(
        &self,
        org: OrganizationId,
        customer: &str,
        id: uuid::Uuid,
        at: Timestamp,
    ) -> StoreResult<AppliedCoupon>;

    /// Creates a wallet and adds its first credits.
    async fn create_wallet(
        &self,
        org: OrganizationId,
        request: NewWallet,
        at: Timestamp,
    ) -> StoreResult<(Wallet, Vec<WalletTransaction>)>;

    /// Reads a wallet.
    async fn wallet(&self, org: OrganizationId, id: uuid::Uuid) -> StoreResult<Wallet>;

    /// Lists a customer's wallets.
    async fn list_wallets(
        &self,
        org: OrganizationId,
        customer: &str,
        page: Page,
    ) -> StoreResult<Listed<Wallet>>;

    /// Terminates a wallet.
    async fn terminate_wallet(
        &self,
        org: OrganizationId,
        id: uuid::Uuid,
        at: Timestamp,
    ) -> StoreResult<Wallet>;

    /// Adds or takes away credits.
    async fn top_up_wallet(
        &self,
        org: OrganizationId,
        id: uuid::Uuid,
        top_up: TopUp,
        at: Timestamp,
    ) -> StoreResult<Vec<WalletTransaction>>;

    /// Lists a wallet's transactions, newest first.
    async fn wallet_transactions(
        &self,
        org: OrganizationId,
        wallet: uuid::Uuid,
        page: Page,
    ) -> StoreResult<Listed<WalletTransaction>>;

    /// Reads one wallet transaction.
    async fn wallet_transaction(
        &self,
        org: OrganizationId,
        id: uuid::Uuid,
    ) -> StoreResult<WalletTransaction>;

    /// The usage of closed periods of a customer's subscription as finalized invoices billed it,
    /// newest first, at most `periods`; `metric` keeps one metric's charges.
    async fn past_usage(
        &self,
        org: OrganizationId,
        customer: &str,
        subscription: &str,
        metric: Option<&str>,
        periods: usize,
    ) -> StoreResult<Vec<PastUsage>>;

    /// Issues a credit note on a finalized invoice.
    async fn create_credit_note(
        &self,
        org: OrganizationId,
        request: NewCreditNote,
        at: Timestamp,
    ) -> StoreResult<CreditNote>;

    /// Works out a credit note's amounts without issuing it.
    async fn estimate_credit_note(
        &self,
        org: OrganizationId,
        request: NewCreditNote,
    ) -> StoreResult<CreditNoteEstimate>;

    /// Reads a credit note.
    async fn credit_note(&self, org: OrganizationId, id: uuid::Uuid) -> StoreResult<CreditNote>;

    /// Lists credit notes, newest first, optionally of one customer (external id).
    async fn list_credit_notes(
        &self,
        org: OrganizationId,
        customer: Option<&str>,
        page: Page,
    ) -> StoreResult<Listed<CreditNote>>;

    /// Voids what is left of a credit note's credit.
    async fn void_credit_note(
        &self,
        org: OrganizationId,
        id: uuid::Uuid,
        at: Timestamp,
    ) -> StoreResult<CreditNote>;

    /// Records events durably. Returns one outcome per event, in order, once committed. With
    /// [`Atomicity::AllOrNothing`], a conflict anywhere stores nothing.
    async fn record_events(
        &self,
        org: OrganizationId,
        events: Vec<NewEvent>,
        atomicity: Atomicity,
    ) -> StoreResult<Vec<EventOutcome>>;

    /// Finds a Lago event by transaction id, or a CloudEvent by (source, id).
    async fn event(
        &self,
        org: OrganizationId,
        source: Option<&str>,
        transaction_id: &str,
    ) -> StoreResult<StoredEvent>;

    /// Lists events, newest first.
    async fn list_events(
        &self,
        org: OrganizationId,
        filter: &EventFilter,
        page: Page,
    ) -> StoreResult<Listed<StoredEvent>>;

    /// Aggregates a metric over a range, by window, subject and group.
    async fn query_usage(
        &self,
        org: OrganizationId,
        query: &UsageQuery,
    ) -> StoreResult<Vec<UsageRow>>;

    /// Recomputes every rollup of the organization from raw events and reports what differed.
    async fn rebuild_rollups(&self, org: OrganizationId) -> StoreResult<RebuildReport>;

    /// Returns every rollup row of the organization, in key order (for verification and tests).
    async fn rollup_rows(&self, org: OrganizationId) -> StoreResult<Vec<RollupRow>>;

    /// Finishes queued writes and stops the writer.
    async fn close(&self);
}

/// What to change on a customer: the new descriptive fields (the caller merges the patch).
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerChange {
    /// The complete profile to store.
    pub profile: CustomerProfile,
    /// The taxes it carries, by code, when they change.
    pub tax_codes: Option<Vec<String>>,
}

impl CustomerChange {
    /// Wraps a profile.
    pub fn new(profile: CustomerProfile) -> Self {
        CustomerChange {
            profile,
            tax_codes: None,
        }
    }
}

/// Filters for [`Store::list_customers`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerFilter {
    /// Substring of name, email or external id.
    pub search_term: Option<String>,
    /// Any of these currencies.
    pub currencies: Vec<String>,
    /// Any of these countries.
    pub countries: Vec<String>,
}
