//! Wallets of prepaid credits: top-ups, voids, and spending on finalized invoices.

use std::str::FromStr;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};
use rust_decimal::Decimal;
use tally_core::currency::Currency;
use tally_core::error::{Reason, ValidationErrors};
use tally_core::page::Page;
use tally_core::time::Timestamp;
use tally_core::wallet::{Wallet, cents_to_credits};

use super::listing::Filtered;
use super::now;
use super::orgs::parse_uuid;
use super::{billing, customers};
use crate::error::{StoreError, StoreResult};
use crate::types::{Listed, NewWallet, TopUp, WalletTransaction};

fn corrupt(i: usize, m: impl Into<String>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, m.into().into())
}

const COLUMNS: &str =
    "w.seq, w.id, c.id, c.external_id, w.active, w.currency, w.name, w.code, w.rate_amount,
    w.credits_balance, w.consumed_credits, w.expiration_at, w.created_at, w.terminated_at";
const FROM: &str = "wallets w JOIN customers c ON c.id = w.customer";

fn from_row(row: &Row<'_>) -> rusqlite::Result<(i64, Wallet)> {
    let decimal = |i: usize| -> rusqlite::Result<Decimal> {
        let text: String = row.get(i)?;
        Decimal::from_str(&text).map_err(|e| corrupt(i, e.to_string()))
    };
    let currency: String = row.get(5)?;
    Ok((
        row.get(0)?,
        Wallet {
            id: parse_uuid(&row.get::<_, String>(1)?)?,
            customer_id: parse_uuid(&row.get::<_, String>(2)?)?,
            external_customer_id: row.get(3)?,
            active: row.get(4)?,
            currency: Currency::parse(&currency).ok_or_else(|| corrupt(5, currency.clone()))?,
            name: row.get(6)?,
            code: row.get(7)?,
            rate_amount: decimal(8)?,
            credits_balance: decimal(9)?,
            consumed_credits: decimal(10)?,
            expiration_at: row.get::<_, Option<i64>>(11)?.map(Timestamp::from_micros),
            created_at: Timestamp::from_micros(row.get(12)?),
            terminated_at: row.get::<_, Option<i64>>(13)?.map(Timestamp::from_micros),
        },
    ))
}

fn find(conn: &Connection, org: i64, id: uuid::Uuid) -> StoreResult<(i64, Wallet)> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM {FROM} WHERE w.org = ?1 AND w.id = ?2"),
        params![org, id.to_string()],
        from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound("wallet"))
}

/// Reads a wallet.
pub(super) fn get(conn: &Connection, org: i64, id: uuid::Uuid) -> StoreResult<Wallet> {
    Ok(find(conn, org, id)?.1)
}

/// Lists a customer's wallets, oldest first.
pub(super) fn list(
    conn: &Connection,
    org: i64,
    customer: &str,
    page: Page,
) -> StoreResult<Listed<Wallet>> {
    let mut query = Filtered::new("w.org = ?", SqlValue::Integer(org));
    query.and("c.external_id = ?", [SqlValue::Text(customer.to_owned())]);
    let listed = query.page(conn, FROM, COLUMNS, "w.seq", page, from_row)?;
    Ok(Listed {
        items: listed.items.into_iter().map(|(_, w)| w).collect(),
        total: listed.total,
    })
}

fn invalid(field: &str, reason: Reason) -> StoreError {
    let mut errors = ValidationErrors::new();
    errors.push(field, reason);
    StoreError::Invalid(errors)
}

/// Creates a wallet and adds its first credits.
pub(super) fn create(
    conn: &Connection,
    org: i64,
    request: &NewWallet,
    at: Timestamp,
) -> StoreResult<(Wallet, Vec<WalletTransaction>)> {
    if request.rate_amount <= Decimal::ZERO {
        return Err(invalid("rate_amount", Reason::InvalidRate));
    }
    let customer = customers::get(conn, org, &request.external_customer_id)?;
    let id = uuid::Uuid::now_v7();
    conn.execute(
        "INSERT INTO wallets (id, org, customer, currency, name, code, rate_amount, credits_balance, consumed_credits,
            expiration_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '0', '0', ?8, ?9, ?9)",
        params![
            id.to_string(),
            org,
            customer.id.0.to_string(),
            request.currency.code(),
            request.name,
            request.code,
            request.rate_amount.normalize().to_string(),
            request.expiration_at.map(Timestamp::micros),
            at.micros()
        ],
    )?;
    let transactions = top_up(conn, org, id, &request.top_up, at)?;
    Ok((get(conn, org, id)?, transactions))
}

fn set_balance(
    conn: &Connection,
    seq: i64,
    credits: Decimal,
    consumed: Decimal,
) -> StoreResult<()> {
    conn.execute(
        "UPDATE wallets SET credits_balance = ?2, consumed_credits = ?3, updated_at = ?4 WHERE seq = ?1",
        params![seq, credits.normalize().to_string(), consumed.normalize().to_string(), now().micros()],
    )?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn record(
    conn: &Connection,
    wallet: i64,
    inbound: bool,
    kind: &str,
    credits: Decimal,
    amount: Decimal,
    invoice: Option<i64>,
    at: Timestamp,
) -> StoreResult<i64> {
    conn.execute(
        "INSERT INTO wallet_transactions (id, wallet, transaction_type, status, transaction_status, credit_amount, amount,
            invoice, created_at, settled_at)
         VALUES (?1, ?2, ?3, 'settled', ?4, ?5, ?6, ?7, ?8, ?8)",
        params![
            uuid::Uuid::now_v7().to_string(),
            wallet,
            if inbound { "inbound" } else { "outbound" },
            kind,
            credits.normalize().to_string(),
            amount.normalize().to_string(),
            invoice,
            at.micros()
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Adds (paid, granted) or takes away (voided) credits; paid credits are billed on a `credit`
/// invoice. Returns the transactions made.
pub(super) fn top_up(
    conn: &Connection,
    org: i64,
    id: uuid::Uuid,
    top_up: &TopUp,
    at: Timestamp,
) -> StoreResult<Vec<WalletTransaction>> {
    let (seq, wallet) = find(conn, org, id)?;
    if !wallet.active {
        return Err(StoreError::NotAllowed("wallet_not_active"));
    }
    for (field, value) in [
        ("paid_credits", top_up.paid_credits),
        ("granted_credits", top_up.granted_credits),
        ("voided_credits", top_up.voided_credits),
    ] {
        if value < Decimal::ZERO {
            return Err(invalid(field, Reason::InvalidAmount));
        }
    }
    let mut balance = wallet.credits_balance;
    let mut made = Vec::new();
    if top_up.granted_credits > Decimal::ZERO {
        balance += top_up.granted_credits;
        made.push(record(
            conn,
            seq,
            true,
            "granted",
            top_up.granted_credits,
            top_up.granted_credits * wallet.rate_amount,
            None,
            at,
        )?);
    }
    if top_up.paid_credits > Decimal::ZERO {
        balance += top_up.paid_credits;
        let customer = customers::by_id(conn, org, tally_core::id::CustomerId(wallet.customer_id))?;
        let invoice =
            billing::credit_invoice(conn, org, &customer, &wallet, top_up.paid_credits, at)?;
        made.push(record(
            conn,
            seq,
            true,
            "purchased",
            top_up.paid_credits,
            top_up.paid_credits * wallet.rate_amount,
            Some(invoice),
            at,
        )?);
    }
    if top_up.voided_credits > Decimal::ZERO {
        let voided = top_up.voided_credits.min(balance);
        balance -= voided;
        made.push(record(
            conn,
            seq,
            false,
            "voided",
            voided,
            voided * wallet.rate_amount,
            None,
            at,
        )?);
    }
    set_balance(conn, seq, balance, wallet.consumed_credits)?;
    made.iter().map(|t| transaction(conn, *t)).collect()
}

/// Terminates a wallet; its credits are no longer spent.
pub(super) fn terminate(
    conn: &Connection,
    org: i64,
    id: uuid::Uuid,
    at: Timestamp,
) -> StoreResult<Wallet> {
    let (seq, _) = find(conn, org, id)?;
    conn.execute(
        "UPDATE wallets SET active = 0, terminated_at = ?2, updated_at = ?3 WHERE seq = ?1",
        params![seq, at.micros(), now().micros()],
    )?;
    get(conn, org, id)
}

/// The active wallets of a customer in a currency, oldest first, with their compact ids.
pub(super) fn active_for(
    conn: &Connection,
    customer: &str,
    currency: Currency,
    at: Timestamp,
) -> StoreResult<Vec<(i64, Wallet)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE w.customer = ?1 AND w.active = 1 AND w.currency = ?2
            AND (w.expiration_at IS NULL OR w.expiration_at > ?3)
         ORDER BY w.seq"
    ))?;
    let wallets = stmt
        .query_map(params![customer, currency.code(), at.micros()], from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(wallets)
}

/// Spends `cents` of a wallet on a finalized invoice.
pub(super) fn spend(
    conn: &Connection,
    seq: i64,
    wallet: &Wallet,
    cents: i64,
    invoice: i64,
    at: Timestamp,
) -> StoreResult<()> {
    let credits =
        cents_to_credits(cents, wallet.rate_amount, wallet.currency).min(wallet.credits_balance);
    set_balance(
        conn,
        seq,
        wallet.credits_balance - credits,
        wallet.consumed_credits + credits,
    )?;
    let amount = tally_core::money::from_minor(cents, wallet.currency);
    record(
        conn,
        seq,
        false,
        "invoiced",
        credits,
        amount,
        Some(invoice),
        at,
    )?;
    Ok(())
}

const TRANSACTION: &str =
    "t.id, w.id, t.transaction_type, t.status, t.transaction_status, t.credit_amount, t.amount,
    (SELECT i.id FROM invoices i WHERE i.seq = t.invoice), t.created_at, t.settled_at";

fn transaction_from_row(row: &Row<'_>) -> rusqlite::Result<WalletTransaction> {
    let decimal = |i: usize| -> rusqlite::Result<Decimal> {
        let text: String = row.get(i)?;
        Decimal::from_str(&text).map_err(|e| corrupt(i, e.to_string()))
    };
    Ok(WalletTransaction {
        id: parse_uuid(&row.get::<_, String>(0)?)?,
        wallet_id: parse_uuid(&row.get::<_, String>(1)?)?,
        transaction_type: row.get(2)?,
        status: row.get(3)?,
        transaction_status: row.get(4)?,
        credit_amount: decimal(5)?,
        amount: decimal(6)?,
        invoice_id: row
            .get::<_, Option<String>>(7)?
            .map(|i| parse_uuid(&i))
            .transpose()?,
        created_at: Timestamp::from_micros(row.get(8)?),
        settled_at: row.get::<_, Option<i64>>(9)?.map(Timestamp::from_micros),
    })
}

fn transaction(conn: &Connection, seq: i64) -> StoreResult<WalletTransaction> {
    Ok(conn.query_row(
        &format!("SELECT {TRANSACTION} FROM wallet_transactions t JOIN wallets w ON w.seq = t.wallet WHERE t.seq = ?1"),
        [seq],
        transaction_from_row,
    )?)
}

/// Lists a wallet's transactions, newest first.
pub(super) fn transactions(
    conn: &Connection,
    org: i64,
    wallet: uuid::Uuid,
    page: Page,
) -> StoreResult<Listed<WalletTransaction>> {
    let (seq, _) = find(conn, org, wallet)?;
    let query = Filtered::new("t.wallet = ?", SqlValue::Integer(seq));
    query.page(
        conn,
        "wallet_transactions t JOIN wallets w ON w.seq = t.wallet",
        TRANSACTION,
        "t.seq DESC",
        page,
        transaction_from_row,
    )
}

/// Reads one transaction.
pub(super) fn transaction_by_id(
    conn: &Connection,
    org: i64,
    id: uuid::Uuid,
) -> StoreResult<WalletTransaction> {
    conn.query_row(
        &format!(
            "SELECT {TRANSACTION} FROM wallet_transactions t JOIN wallets w ON w.seq = t.wallet WHERE w.org = ?1 AND t.id = ?2"
        ),
        params![org, id.to_string()],
        transaction_from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound("wallet_transaction"))
}
