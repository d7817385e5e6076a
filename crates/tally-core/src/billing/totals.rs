//! Invoice totals, in Lago's chain: fees − progressive billing credit − coupons = subtotal excluding taxes; + taxes = subtotal
//! including taxes; − credit notes − prepaid credits = total.

use super::fees::Fee;

/// The totals of an invoice, in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InvoiceTotals {
    /// Sum of the rounded fees.
    pub fees_amount_cents: i64,
    /// What the period's earlier progressive invoices billed (see `billing::progressive`).
    pub progressive_billing_credit_amount_cents: i64,
    /// Coupons applied.
    pub coupons_amount_cents: i64,
    /// Fees minus the progressive billing credit and coupons.
    pub sub_total_excluding_taxes_amount_cents: i64,
    /// Taxes.
    pub taxes_amount_cents: i64,
    /// Subtotal plus taxes.
    pub sub_total_including_taxes_amount_cents: i64,
    /// Credit notes applied.
    pub credit_notes_amount_cents: i64,
    /// Prepaid (wallet) credits applied.
    pub prepaid_credit_amount_cents: i64,
    /// What the customer owes.
    pub total_amount_cents: i64,
}

impl InvoiceTotals {
    /// Adds up fees (each already rounded); coupons, taxes and credits are zero until they exist.
    pub fn of(fees: &[Fee]) -> Self {
        let fees_amount_cents: i64 = fees.iter().map(|f| f.amount_cents).sum();
        InvoiceTotals {
            fees_amount_cents,
            progressive_billing_credit_amount_cents: 0,
            coupons_amount_cents: 0,
            sub_total_excluding_taxes_amount_cents: fees_amount_cents,
            taxes_amount_cents: 0,
            sub_total_including_taxes_amount_cents: fees_amount_cents,
            credit_notes_amount_cents: 0,
            prepaid_credit_amount_cents: 0,
            total_amount_cents: fees_amount_cents,
        }
    }
}
