//! Coupons, and the coupons applied to customers with what is left of them.

use std::str::FromStr;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};
use rust_decimal::Decimal;
use tally_core::coupon::{AppliedCoupon, Coupon, CouponKind, CouponTerms, Frequency};
use tally_core::currency::Currency;
use tally_core::error::{Reason, ValidationErrors};
use tally_core::id::{Code, ExternalId};
use tally_core::page::Page;
use tally_core::time::Timestamp;

use super::customers;
use super::listing::Filtered;
use super::now;
use super::orgs::parse_uuid;
use crate::error::{StoreError, StoreResult};
use crate::types::{AppliedCouponFilter, CouponOverrides, Listed};

fn corrupt(i: usize, m: impl Into<String>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, m.into().into())
}

/// Reads kind and frequency from 5 columns starting at `first`: type, amount_cents, currency,
/// percentage_rate, frequency, then frequency_duration at `first + 5`.
fn kind_and_frequency(row: &Row<'_>, first: usize) -> rusqlite::Result<(CouponKind, Frequency)> {
    let kind: String = row.get(first)?;
    let kind = match kind.as_str() {
        "fixed_amount" => {
            let currency: String = row.get(first + 2)?;
            CouponKind::FixedAmount {
                amount_cents: row.get(first + 1)?,
                currency: Currency::parse(&currency)
                    .ok_or_else(|| corrupt(first + 2, currency.clone()))?,
            }
        }
        _ => {
            let rate: String = row.get(first + 3)?;
            CouponKind::Percentage {
                rate: Decimal::from_str(&rate).map_err(|e| corrupt(first + 3, e.to_string()))?,
            }
        }
    };
    let frequency: String = row.get(first + 4)?;
    let duration: Option<i64> = row.get(first + 5)?;
    let frequency = match frequency.as_str() {
        "once" => Frequency::Once,
        "forever" => Frequency::Forever,
        _ => Frequency::Recurring(u32::try_from(duration.unwrap_or(1)).unwrap_or(1)),
    };
    Ok((kind, frequency))
}

fn kind_params(kind: &CouponKind) -> (&'static str, Option<i64>, Option<String>, Option<String>) {
    match kind {
        CouponKind::FixedAmount {
            amount_cents,
            currency,
        } => (
            "fixed_amount",
            Some(*amount_cents),
            Some(currency.code().to_owned()),
            None,
        ),
        CouponKind::Percentage { rate } => {
            ("percentage", None, None, Some(rate.normalize().to_string()))
        }
    }
}

const COLUMNS: &str =
    "seq, id, code, name, description, coupon_type, amount_cents, amount_currency, percentage_rate,
    frequency, frequency_duration, expiration_at, reusable, created_at, terminated_at";

fn coupon_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, Coupon)> {
    let code: String = row.get(2)?;
    let (kind, frequency) = kind_and_frequency(row, 5)?;
    Ok((
        row.get(0)?,
        Coupon {
            id: parse_uuid(&row.get::<_, String>(1)?)?,
            terms: CouponTerms {
                code: Code::parse("code", &code).map_err(|e| corrupt(2, e.field))?,
                name: row.get(3)?,
                description: row.get(4)?,
                kind,
                frequency,
                expiration_at: row.get::<_, Option<i64>>(11)?.map(Timestamp::from_micros),
                reusable: row.get(12)?,
            },
            created_at: Timestamp::from_micros(row.get(13)?),
            terminated_at: row.get::<_, Option<i64>>(14)?.map(Timestamp::from_micros),
        },
    ))
}

fn find(conn: &Connection, org: i64, code: &str) -> StoreResult<Option<(i64, Coupon)>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM coupons WHERE org = ?1 AND code = ?2 AND terminated_at IS NULL"),
            params![org, code],
            coupon_from_row,
        )
        .optional()?)
}

/// Reads a live coupon by code.
pub(super) fn get(conn: &Connection, org: i64, code: &str) -> StoreResult<Coupon> {
    find(conn, org, code)?
        .map(|(_, c)| c)
        .ok_or(StoreError::NotFound("coupon"))
}

/// Lists live coupons, oldest first.
pub(super) fn list(conn: &Connection, org: i64, page: Page) -> StoreResult<Listed<Coupon>> {
    let mut query = Filtered::new("org = ?", SqlValue::Integer(org));
    query.and("terminated_at IS NULL", []);
    let listed = query.page(conn, "coupons", COLUMNS, "seq", page, coupon_from_row)?;
    Ok(Listed {
        items: listed.items.into_iter().map(|(_, c)| c).collect(),
        total: listed.total,
    })
}

/// Creates a coupon.
pub(super) fn create(conn: &Connection, org: i64, terms: &CouponTerms) -> StoreResult<Coupon> {
    terms.validate()?;
    if find(conn, org, terms.code.as_str())?.is_some() {
        let mut errors = ValidationErrors::new();
        errors.push("code", Reason::ValueAlreadyExist);
        return Err(StoreError::Invalid(errors));
    }
    let (kind, amount, currency, rate) = kind_params(&terms.kind);
    let at = now().micros();
    conn.execute(
        "INSERT INTO coupons (id, org, code, name, description, coupon_type, amount_cents, amount_currency, percentage_rate,
            frequency, frequency_duration, expiration_at, reusable, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)",
        params![
            uuid::Uuid::now_v7().to_string(),
            org,
            terms.code.as_str(),
            terms.name,
            terms.description,
            kind,
            amount,
            currency,
            rate,
            terms.frequency.name(),
            terms.frequency.duration(),
            terms.expiration_at.map(Timestamp::micros),
            terms.reusable,
            at
        ],
    )?;
    get(conn, org, terms.code.as_str())
}

/// Terminates a coupon: it can no longer be applied; applications keep running.
pub(super) fn terminate(
    conn: &Connection,
    org: i64,
    code: &str,
    at: Timestamp,
) -> StoreResult<Coupon> {
    let (seq, mut coupon) = find(conn, org, code)?.ok_or(StoreError::NotFound("coupon"))?;
    conn.execute(
        "UPDATE coupons SET terminated_at = ?2 WHERE seq = ?1",
        params![seq, at.micros()],
    )?;
    coupon.terminated_at = Some(at);
    Ok(coupon)
}

const APPLIED: &str = "a.seq, a.id, c.id, a.active, a.coupon_type, a.amount_cents, a.amount_currency, a.percentage_rate,
    a.frequency, a.frequency_duration, a.frequency_duration_remaining, a.amount_cents_remaining, a.created_at,
    a.terminated_at, a.coupon, cu.external_id";

fn applied_from_row(conn: &Connection, row: &Row<'_>) -> rusqlite::Result<(i64, AppliedCoupon)> {
    let (kind, frequency) = kind_and_frequency(row, 4)?;
    let coupon_seq: i64 = row.get(14)?;
    let coupon = conn.query_row(
        &format!("SELECT {COLUMNS} FROM coupons WHERE seq = ?1"),
        [coupon_seq],
        coupon_from_row,
    )?;
    Ok((
        row.get(0)?,
        AppliedCoupon {
            id: parse_uuid(&row.get::<_, String>(1)?)?,
            customer_id: parse_uuid(&row.get::<_, String>(2)?)?,
            external_customer_id: row.get(15)?,
            coupon: coupon.1,
            active: row.get(3)?,
            kind,
            frequency,
            frequency_duration_remaining: row
                .get::<_, Option<i64>>(10)?
                .and_then(|n| u32::try_from(n).ok()),
            amount_cents_remaining: row.get(11)?,
            created_at: Timestamp::from_micros(row.get(12)?),
            terminated_at: row.get::<_, Option<i64>>(13)?.map(Timestamp::from_micros),
        },
    ))
}

const APPLIED_FROM: &str =
    "applied_coupons a JOIN customers cu ON cu.id = a.customer JOIN coupons c ON c.seq = a.coupon";

/// Applies a coupon to a customer, with optional overrides of its value and frequency.
pub(super) fn apply(
    conn: &Connection,
    org: i64,
    code: &str,
    customer: &ExternalId,
    overrides: &CouponOverrides,
    at: Timestamp,
) -> StoreResult<AppliedCoupon> {
    let (coupon_seq, coupon) = find(conn, org, code)?.ok_or(StoreError::NotFound("coupon"))?;
    let customer = customers::get(conn, org, customer)?;
    let invalid = |field: &str, reason: Reason| {
        let mut errors = ValidationErrors::new();
        errors.push(field, reason);
        StoreError::Invalid(errors)
    };
    if coupon.terms.expiration_at.is_some_and(|e| e <= at) {
        return Err(invalid("coupon_code", Reason::ValueIsInvalid));
    }
    let already: i64 = conn.query_row(
        "SELECT COUNT(*) FROM applied_coupons WHERE coupon = ?1 AND customer = ?2",
        params![coupon_seq, customer.id.0.to_string()],
        |row| row.get(0),
    )?;
    if already > 0 && !coupon.terms.reusable {
        return Err(invalid("coupon_code", Reason::ValueAlreadyExist));
    }
    let kind = match (&coupon.terms.kind, overrides) {
        (
            CouponKind::FixedAmount {
                amount_cents,
                currency,
            },
            o,
        ) => CouponKind::FixedAmount {
            amount_cents: o.amount_cents.unwrap_or(*amount_cents),
            currency: o.currency.unwrap_or(*currency),
        },
        (CouponKind::Percentage { rate }, o) => CouponKind::Percentage {
            rate: o.percentage_rate.unwrap_or(*rate),
        },
    };
    let frequency = overrides.frequency.unwrap_or(coupon.terms.frequency);
    let (kind_name, amount, currency, rate) = kind_params(&kind);
    let remaining_amount = match (&kind, frequency) {
        (CouponKind::FixedAmount { amount_cents, .. }, Frequency::Once) => Some(*amount_cents),
        _ => None,
    };
    let id = uuid::Uuid::now_v7();
    conn.execute(
        "INSERT INTO applied_coupons (id, org, coupon, customer, coupon_type, amount_cents, amount_currency, percentage_rate,
            frequency, frequency_duration, frequency_duration_remaining, amount_cents_remaining, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?12)",
        params![
            id.to_string(),
            org,
            coupon_seq,
            customer.id.0.to_string(),
            kind_name,
            amount,
            currency,
            rate,
            frequency.name(),
            frequency.duration(),
            remaining_amount,
            at.micros()
        ],
    )?;
    applied(conn, org, id)
}

/// Reads an applied coupon.
pub(super) fn applied(conn: &Connection, org: i64, id: uuid::Uuid) -> StoreResult<AppliedCoupon> {
    let seq: Option<i64> = conn
        .query_row(
            "SELECT seq FROM applied_coupons WHERE org = ?1 AND id = ?2",
            params![org, id.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    let seq = seq.ok_or(StoreError::NotFound("applied_coupon"))?;
    Ok(conn
        .query_row(
            &format!("SELECT {APPLIED} FROM {APPLIED_FROM} WHERE a.seq = ?1"),
            [seq],
            |row| applied_from_row(conn, row),
        )?
        .1)
}

/// Lists applied coupons, oldest first.
pub(super) fn list_applied(
    conn: &Connection,
    org: i64,
    filter: &AppliedCouponFilter,
    page: Page,
) -> StoreResult<Listed<AppliedCoupon>> {
    let mut query = Filtered::new("a.org = ?", SqlValue::Integer(org));
    if let Some(customer) = &filter.external_customer_id {
        query.and("cu.external_id = ?", [SqlValue::Text(customer.clone())]);
    }
    if let Some(active) = filter.active {
        query.and("a.active = ?", [SqlValue::Integer(i64::from(active))]);
    }
    let listed = query.page(conn, APPLIED_FROM, APPLIED, "a.seq", page, |row| {
        applied_from_row(conn, row)
    })?;
    Ok(Listed {
        items: listed.items.into_iter().map(|(_, a)| a).collect(),
        total: listed.total,
    })
}

/// Stops an applied coupon.
pub(super) fn remove(
    conn: &Connection,
    org: i64,
    customer: &str,
    id: uuid::Uuid,
    at: Timestamp,
) -> StoreResult<AppliedCoupon> {
    let found = applied(conn, org, id)?;
    if found.external_customer_id != customer {
        return Err(StoreError::NotFound("applied_coupon"));
    }
    conn.execute(
        "UPDATE applied_coupons SET active = 0, terminated_at = ?2 WHERE org = ?1 AND id = ?3",
        params![org, at.micros(), id.to_string()],
    )?;
    applied(conn, org, id)
}

/// The active coupons of a customer, oldest first, with their compact ids.
pub(super) fn active_for(
    conn: &Connection,
    customer: &str,
) -> StoreResult<Vec<(i64, AppliedCoupon)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {APPLIED} FROM {APPLIED_FROM} WHERE a.customer = ?1 AND a.active = 1 ORDER BY a.seq"
    ))?;
    let coupons = stmt
        .query_map([customer], |row| applied_from_row(conn, row))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(coupons)
}

/// Records that a finalized invoice used `used` minor units of an applied coupon.
pub(super) fn consume(
    conn: &Connection,
    invoice: i64,
    seq: i64,
    coupon: &AppliedCoupon,
    used: i64,
    at: Timestamp,
) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO invoice_coupons (invoice, applied_coupon, amount_cents) VALUES (?1, ?2, ?3)",
        params![invoice, seq, used],
    )?;
    let (periods, amount, active) = coupon.after_use(used);
    conn.execute(
        "UPDATE applied_coupons SET frequency_duration_remaining = ?2, amount_cents_remaining = ?3, active = ?4,
            terminated_at = CASE WHEN ?4 THEN NULL ELSE ?5 END
         WHERE seq = ?1",
        params![seq, periods, amount, active, at.micros()],
    )?;
    Ok(())
}
