//! Invoice states: draft (recomputed until its grace period ends), finalized (frozen, numbered) or
//! voided; and whether it was paid.

/// Where an invoice is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvoiceStatus {
    /// Still recomputed from usage (grace period).
    Draft,
    /// Frozen and numbered.
    Finalized,
    /// Cancelled after finalization; keeps its number.
    Voided,
}

impl InvoiceStatus {
    /// Returns the Lago name.
    pub fn name(self) -> &'static str {
        match self {
            InvoiceStatus::Draft => "draft",
            InvoiceStatus::Finalized => "finalized",
            InvoiceStatus::Voided => "voided",
        }
    }

    /// Parses a Lago name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "draft" => Some(InvoiceStatus::Draft),
            "finalized" => Some(InvoiceStatus::Finalized),
            "voided" => Some(InvoiceStatus::Voided),
            _ => None,
        }
    }
}

/// Whether an invoice was paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// Not yet.
    Pending,
    /// Paid.
    Succeeded,
    /// The payment failed.
    Failed,
}

impl PaymentStatus {
    /// Returns the Lago name.
    pub fn name(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
        }
    }

    /// Parses a Lago name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "pending" => Some(PaymentStatus::Pending),
            "succeeded" => Some(PaymentStatus::Succeeded),
            "failed" => Some(PaymentStatus::Failed),
            _ => None,
        }
    }
}

/// The prefix of an organization's invoice numbers: the first three letters or digits of its name in
/// upper case (padded with `X`), a dash, and the last four hex digits of its id — `ACM-1A2B`.
pub fn number_prefix(org_name: &str, org_id: uuid::Uuid) -> String {
    let mut letters: String = org_name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(3)
        .collect::<String>()
        .to_ascii_uppercase();
    while letters.len() < 3 {
        letters.push('X');
    }
    let hex = org_id.simple().to_string().to_ascii_uppercase();
    format!("{letters}-{}", &hex[hex.len() - 4..])
}

/// An invoice number, numbered per customer as Lago does by default:
/// `<prefix>-<customer sequential id, 3 digits>-<the customer's n-th invoice, 3 digits>`.
pub fn invoice_number(prefix: &str, customer_sequential_id: i64, n: i64) -> String {
    format!("{prefix}-{customer_sequential_id:03}-{n:03}")
}

/// An invoice number, numbered per organization:
/// `<prefix>-<YYYYMM of the issuing date>-<the organization's n-th invoice, 3 digits>`.
pub fn organization_invoice_number(prefix: &str, issuing: chrono::NaiveDate, n: i64) -> String {
    format!("{prefix}-{}-{n:03}", issuing.format("%Y%m"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_look_like_lagos() {
        let id = uuid::Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_1a2b);
        let prefix = number_prefix("acme corp", id);
        assert_eq!(prefix, "ACM-1A2B");
        assert_eq!(invoice_number(&prefix, 7, 12), "ACM-1A2B-007-012");
        assert_eq!(number_prefix("é", id), "XXX-1A2B");
        let may = chrono::NaiveDate::from_ymd_opt(2026, 5, 1).expect("date");
        assert_eq!(
            organization_invoice_number("ACME", may, 1042),
            "ACME-202605-1042"
        );
    }
}
