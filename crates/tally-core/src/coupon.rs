//! Coupons: fixed amounts or percentages off invoices, once, for some periods, or forever; and the
//! coupons applied to customers, which invoices consume when they are finalized.

use rust_decimal::Decimal;

use crate::billing::adjustments::CouponValue;
use crate::currency::Currency;
use crate::error::{Reason, ValidationErrors};
use crate::id::Code;
use crate::time::Timestamp;

/// How a coupon takes money off.
#[derive(Debug, Clone, PartialEq)]
pub enum CouponKind {
    /// A fixed amount in minor units of a currency.
    FixedAmount {
        /// Minor units.
        amount_cents: i64,
        /// Currency.
        currency: Currency,
    },
    /// A percentage of the fees.
    Percentage {
        /// Percent.
        rate: Decimal,
    },
}

/// How often a coupon applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    /// On one invoice (a fixed amount may spread over several until used up).
    Once,
    /// On the next N invoices.
    Recurring(u32),
    /// On every invoice.
    Forever,
}

impl Frequency {
    /// Returns the Lago name.
    pub fn name(self) -> &'static str {
        match self {
            Frequency::Once => "once",
            Frequency::Recurring(_) => "recurring",
            Frequency::Forever => "forever",
        }
    }

    /// Returns the number of periods for recurring coupons.
    pub fn duration(self) -> Option<u32> {
        match self {
            Frequency::Recurring(n) => Some(n),
            _ => None,
        }
    }
}

/// A coupon's own fields.
#[derive(Debug, Clone, PartialEq)]
pub struct CouponTerms {
    /// Unique among live coupons of the organization.
    pub code: Code,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Fixed amount or percentage.
    pub kind: CouponKind,
    /// How often it applies.
    pub frequency: Frequency,
    /// After this instant it can no longer be applied to customers.
    pub expiration_at: Option<Timestamp>,
    /// Whether one customer may have it applied more than once.
    pub reusable: bool,
}

impl CouponTerms {
    /// Checks the fields.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if self.name.trim().is_empty() {
            errors.push("name", Reason::ValueIsMandatory);
        }
        match &self.kind {
            CouponKind::FixedAmount { amount_cents, .. } if *amount_cents <= 0 => {
                errors.push("amount_cents", Reason::InvalidAmount)
            }
            CouponKind::Percentage { rate }
                if *rate <= Decimal::ZERO || *rate > Decimal::ONE_HUNDRED =>
            {
                errors.push("percentage_rate", Reason::ValueIsOutOfRange)
            }
            _ => {}
        }
        if matches!(self.frequency, Frequency::Recurring(0)) {
            errors.push("frequency_duration", Reason::ValueIsOutOfRange);
        }
        errors.into_result(())
    }
}

/// A coupon as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Coupon {
    /// Its id (`lago_id`).
    pub id: uuid::Uuid,
    /// What it says.
    pub terms: CouponTerms,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was terminated (no longer applicable).
    pub terminated_at: Option<Timestamp>,
}

/// A coupon applied to a customer, with what is left of it.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedCoupon {
    /// Its id (`lago_id`).
    pub id: uuid::Uuid,
    /// The coupon.
    pub coupon: Coupon,
    /// The customer's id.
    pub customer_id: uuid::Uuid,
    /// The customer's external id.
    pub external_customer_id: String,
    /// The value for this customer (may override the coupon's).
    pub kind: CouponKind,
    /// How often (may override the coupon's).
    pub frequency: Frequency,
    /// Periods left, for recurring coupons.
    pub frequency_duration_remaining: Option<u32>,
    /// Minor units left, for fixed amounts applied once.
    pub amount_cents_remaining: Option<i64>,
    /// Still applying.
    pub active: bool,
    /// When it was applied.
    pub created_at: Timestamp,
    /// When it stopped applying.
    pub terminated_at: Option<Timestamp>,
}

impl AppliedCoupon {
    /// What the coupon can take off the next invoice in `currency` (`None` when it does not apply:
    /// inactive, or a fixed amount in another currency).
    pub fn value(&self, currency: Currency) -> Option<CouponValue> {
        if !self.active {
            return None;
        }
        match &self.kind {
            CouponKind::FixedAmount {
                amount_cents,
                currency: c,
            } if *c == currency => Some(CouponValue::Fixed(
                self.amount_cents_remaining.unwrap_or(*amount_cents),
            )),
            CouponKind::FixedAmount { .. } => None,
            CouponKind::Percentage { rate } => Some(CouponValue::Percentage(*rate)),
        }
    }

    /// The state after an invoice used `used` minor units of it: fixed "once" coupons keep what is
    /// left until spent; recurring ones count down periods; "once" percentages end after one use.
    pub fn after_use(&self, used: i64) -> (Option<u32>, Option<i64>, bool) {
        let remaining_amount = match (&self.kind, self.frequency) {
            (CouponKind::FixedAmount { amount_cents, .. }, Frequency::Once) => {
                Some((self.amount_cents_remaining.unwrap_or(*amount_cents) - used).max(0))
            }
            _ => self.amount_cents_remaining,
        };
        let remaining_periods = self
            .frequency_duration_remaining
            .map(|n| n.saturating_sub(1));
        let still_active = match (&self.kind, self.frequency) {
            (CouponKind::FixedAmount { .. }, Frequency::Once) => {
                remaining_amount.is_some_and(|r| r > 0)
            }
            (CouponKind::Percentage { .. }, Frequency::Once) => false,
            (_, Frequency::Recurring(_)) => remaining_periods.is_some_and(|n| n > 0),
            (_, Frequency::Forever) => true,
        };
        (remaining_periods, remaining_amount, still_active)
    }
}
