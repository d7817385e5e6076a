//! Subscriptions: creation (with upgrades and downgrades), reads, changes and termination.
//!
//! Re-creating a subscription with the same external id on another plan follows Lago: a plan at
//! least as expensive per year replaces the current one at once (the old one is terminated now); a
//! cheaper one waits as a pending subscription that starts when the current period ends.

use chrono_tz::Tz;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};
use tally_core::customer::CustomerProfile;
use tally_core::error::{Reason, ValidationErrors};
use tally_core::id::{Code, CustomerId, ExternalId, PlanId, SubscriptionId};
use tally_core::page::Page;
use tally_core::period::{BillingTime, Schedule};
use tally_core::subscription::{PlanChange, Subscription, SubscriptionStatus, plan_change};
use tally_core::time::Timestamp;

use super::listing::Filtered;
use super::now;
use super::orgs::parse_uuid;
use super::{customers, plans, termination_credits};
use crate::CustomerChange;
use crate::error::{StoreError, StoreResult};
use crate::types::{Listed, NewSubscription, SubscriptionFilter, SubscriptionUpdate};

const COLUMNS: &str = "s.seq, s.id, s.external_id, c.id, c.external_id, p.id, p.code, s.name, s.status, s.billing_time,
    s.subscription_at, s.started_at, s.ending_at, s.terminated_at, s.canceled_at,
    (SELECT pp.code FROM subscriptions ps JOIN plans pp ON pp.seq = ps.plan WHERE ps.seq = s.previous),
    (SELECT np.code FROM subscriptions ns JOIN plans np ON np.seq = ns.plan
        WHERE ns.previous = s.seq AND ns.status = 'pending'),
    s.created_at, s.updated_at,
    (SELECT ns.subscription_at FROM subscriptions ns WHERE ns.previous = s.seq AND ns.status = 'pending')";

const FROM: &str =
    "subscriptions s JOIN customers c ON c.id = s.customer JOIN plans p ON p.seq = s.plan";

fn corrupt(index: usize, message: impl Into<String>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        index,
        rusqlite::types::Type::Text,
        message.into().into(),
    )
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<(i64, Subscription)> {
    let text = |index: usize| -> rusqlite::Result<String> { row.get(index) };
    let id = |index: usize, field: &str| -> rusqlite::Result<ExternalId> {
        ExternalId::parse(field, &text(index)?).map_err(|e| corrupt(index, e.field))
    };
    let code = |index: usize| -> rusqlite::Result<Option<Code>> {
        row.get::<_, Option<String>>(index)?
            .map(|c| Code::parse("code", &c).map_err(|e| corrupt(index, e.field)))
            .transpose()
    };
    let time = |index: usize| -> rusqlite::Result<Option<Timestamp>> {
        Ok(row
            .get::<_, Option<i64>>(index)?
            .map(Timestamp::from_micros))
    };
    let status = text(8)?;
    let billing_time = text(9)?;
    Ok((
        row.get(0)?,
        Subscription {
            id: SubscriptionId(parse_uuid(&text(1)?)?),
            external_id: id(2, "external_id")?,
            customer_id: CustomerId(parse_uuid(&text(3)?)?),
            external_customer_id: id(4, "external_customer_id")?,
            plan_id: PlanId(parse_uuid(&text(5)?)?),
            plan_code: code(6)?.ok_or_else(|| corrupt(6, "plan code"))?,
            name: row.get(7)?,
            status: SubscriptionStatus::parse(&status).ok_or_else(|| corrupt(8, status.clone()))?,
            billing_time: BillingTime::parse(&billing_time)
                .ok_or_else(|| corrupt(9, billing_time.clone()))?,
            subscription_at: Timestamp::from_micros(row.get(10)?),
            started_at: time(11)?,
            ending_at: time(12)?,
            terminated_at: time(13)?,
            canceled_at: time(14)?,
            previous_plan_code: code(15)?,
            next_plan_code: code(16)?,
            next_plan_at: time(19)?,
            created_at: Timestamp::from_micros(row.get(17)?),
            updated_at: Timestamp::from_micros(row.get(18)?),
        },
    ))
}

fn find(
    conn: &Connection,
    org: i64,
    external_id: &str,
    status: SubscriptionStatus,
) -> StoreResult<Option<(i64, Subscription)>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM {FROM} WHERE s.org = ?1 AND s.external_id = ?2 AND s.status = ?3
                 ORDER BY s.seq DESC LIMIT 1"
            ),
            params![org, external_id, status.name()],
            from_row,
        )
        .optional()?)
}

pub(super) fn by_seq(conn: &Connection, seq: i64) -> StoreResult<Subscription> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM {FROM} WHERE s.seq = ?1"),
            [seq],
            from_row,
        )?
        .1)
}

/// Returns the compact id of the active subscription with this external id.
pub(super) fn seq_of_active(conn: &Connection, org: i64, external_id: &str) -> StoreResult<i64> {
    find(conn, org, external_id, SubscriptionStatus::Active)?
        .map(|(seq, _)| seq)
        .ok_or(StoreError::NotFound("subscription"))
}

/// Reads the latest subscription with this external id and status.
pub(super) fn get(
    conn: &Connection,
    org: i64,
    external_id: &str,
    status: SubscriptionStatus,
) -> StoreResult<Subscription> {
    find(conn, org, external_id, status)?
        .map(|(_, s)| s)
        .ok_or(StoreError::NotFound("subscription"))
}

/// Lists subscriptions, oldest first.
pub(super) fn list(
    conn: &Connection,
    org: i64,
    filter: &SubscriptionFilter,
    page: Page,
) -> StoreResult<Listed<Subscription>> {
    let mut query = Filtered::new("s.org = ?", SqlValue::Integer(org));
    if let Some(customer) = &filter.external_customer_id {
        query.and("c.external_id = ?", [SqlValue::Text(customer.clone())]);
    }
    if let Some(plan) = &filter.plan_code {
        query.and("p.code = ?", [SqlValue::Text(plan.clone())]);
    }
    let statuses = if filter.statuses.is_empty() {
        vec![SubscriptionStatus::Active]
    } else {
        filter.statuses.clone()
    };
    query.and(
        format!("s.status IN ({})", vec!["?"; statuses.len()].join(", ")),
        statuses.iter().map(|s| SqlValue::Text(s.name().to_owned())),
    );
    let listed = query.page(conn, FROM, COLUMNS, "s.seq", page, from_row)?;
    Ok(Listed {
        items: listed.items.into_iter().map(|(_, s)| s).collect(),
        total: listed.total,
    })
}

fn invalid(field: &str, reason: Reason) -> StoreError {
    let mut errors = ValidationErrors::new();
    errors.push(field, reason);
    StoreError::Invalid(errors)
}

/// The time zone billing periods of a customer are cut in: the customer's, else the organization's.
pub(super) fn billing_zone(
    conn: &Connection,
    org: i64,
    profile: &CustomerProfile,
) -> StoreResult<Tz> {
    if let Some(tz) = profile.timezone {
        return Ok(tz);
    }
    let name: String = conn.query_row(
        "SELECT timezone FROM organizations WHERE seq = ?1",
        [org],
        |row| row.get(0),
    )?;
    Ok(name.parse().unwrap_or(chrono_tz::UTC))
}

#[allow(clippy::too_many_arguments)]
fn insert(
    conn: &Connection,
    org: i64,
    customer: CustomerId,
    plan: i64,
    request: &NewSubscription,
    billing_time: BillingTime,
    status: SubscriptionStatus,
    subscription_at: Timestamp,
    previous: Option<i64>,
) -> StoreResult<i64> {
    let at = now().micros();
    let started_at = (status == SubscriptionStatus::Active).then_some(subscription_at.micros());
    conn.execute(
        "INSERT INTO subscriptions (id, org, customer, plan, external_id, name, status, billing_time, subscription_at,
            started_at, ending_at, previous, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)",
        params![
            SubscriptionId::generate().0.to_string(),
            org,
            customer.0.to_string(),
            plan,
            request.external_id.as_str(),
            request.name,
            status.name(),
            billing_time.name(),
            subscription_at.micros(),
            started_at,
            request.ending_at.map(Timestamp::micros),
            previous,
            at
        ],
    )?;
    let seq = conn.last_insert_rowid();
    // Events that named this subscription before it existed become billable, and name its customer.
    conn.execute(
        "UPDATE events SET issue = NULL, issue_detail = NULL, subject = COALESCE(subject, ?3)
         WHERE org = ?1 AND issue = 'subscription_not_found' AND external_subscription_id = ?2",
        params![
            org,
            request.external_id.as_str(),
            request.external_customer_id.as_str()
        ],
    )?;
    Ok(seq)
}

/// Creates a subscription, or upgrades or downgrades the active one with the same external id.
/// Returns the subscription the client should see (for a downgrade, the current one, which now
/// names its next plan).
pub(super) fn create(
    conn: &Connection,
    org: i64,
    request: &NewSubscription,
    now_at: Timestamp,
) -> StoreResult<Subscription> {
    let customer = match customers::get(conn, org, &request.external_customer_id) {
        Ok(customer) => customer,
        Err(StoreError::NotFound(_)) => customers::upsert(
            conn,
            org,
            &request.external_customer_id,
            &CustomerChange::new(CustomerProfile::default()),
        )?,
        Err(error) => return Err(error),
    };
    let plan = plans::by_code(conn, org, &request.plan_code)?;
    let plan_seq = plans::seq_of(conn, plan.id)?;
    match customer.profile.currency {
        Some(currency) if currency != plan.terms.currency => {
            return Err(invalid("plan_code", Reason::CurrenciesDoesNotMatch));
        }
        Some(_) => {}
        None => {
            let mut profile = customer.profile.clone();
            profile.currency = Some(plan.terms.currency);
            customers::upsert(
                conn,
                org,
                &customer.external_id,
                &CustomerChange::new(profile),
            )?;
        }
    }
    let subscription_at = request.subscription_at.unwrap_or(now_at);
    if let Some(ending) = request.ending_at
        && (ending <= now_at || ending <= subscription_at)
    {
        return Err(invalid("ending_at", Reason::InvalidDate));
    }
    let tz = billing_zone(conn, org, &customer.profile)?;
    if let Some((active_seq, active)) = find(
        conn,
        org,
        request.external_id.as_str(),
        SubscriptionStatus::Active,
    )? {
        if active.customer_id != customer.id {
            return Err(invalid("external_id", Reason::ValueAlreadyExist));
        }
        let current = plans::by_id(conn, org, active.plan_id)?;
        return match plan_change(active.plan_id, &current.terms, plan.id, &plan.terms) {
            PlanChange::Same => Ok(active),
            PlanChange::Upgrade => {
                cancel_pending_successor(conn, active_seq, now_at)?;
                conn.execute(
                    "UPDATE subscriptions SET status = 'terminated', terminated_at = ?2, updated_at = ?3 WHERE seq = ?1",
                    params![active_seq, now_at.micros(), now().micros()],
                )?;
                let seq = insert(
                    conn,
                    org,
                    customer.id,
                    plan_seq,
                    request,
                    active.billing_time,
                    SubscriptionStatus::Active,
                    now_at,
                    Some(active_seq),
                )?;
                termination_credits::issue(conn, active_seq, now_at)?;
                by_seq(conn, seq)
            }
            PlanChange::Downgrade => {
                let anchor = active.started_at.unwrap_or(active.subscription_at);
                let schedule = Schedule {
                    interval: current.terms.interval,
                    billing_time: active.billing_time,
                    anchor,
                    tz,
                };
                let period_end = schedule.period_containing(now_at).to;
                cancel_pending_successor(conn, active_seq, now_at)?;
                insert(
                    conn,
                    org,
                    customer.id,
                    plan_seq,
                    request,
                    active.billing_time,
                    SubscriptionStatus::Pending,
                    period_end,
                    Some(active_seq),
                )?;
                by_seq(conn, active_seq)
            }
        };
    }
    if let Some((_, pending)) = find(
        conn,
        org,
        request.external_id.as_str(),
        SubscriptionStatus::Pending,
    )? {
        if pending.plan_id == plan.id && pending.customer_id == customer.id {
            return Ok(pending);
        }
        return Err(invalid("external_id", Reason::ValueAlreadyExist));
    }
    let status = if subscription_at <= now_at {
        SubscriptionStatus::Active
    } else {
        SubscriptionStatus::Pending
    };
    let seq = insert(
        conn,
        org,
        customer.id,
        plan_seq,
        request,
        request.billing_time,
        status,
        subscription_at,
        None,
    )?;
    by_seq(conn, seq)
}

/// Cancels the pending downgrade of a subscription, if it has one.
fn cancel_pending_successor(conn: &Connection, seq: i64, at: Timestamp) -> StoreResult<()> {
    conn.execute(
        "UPDATE subscriptions SET status = 'canceled', canceled_at = ?2, updated_at = ?3
         WHERE previous = ?1 AND status = 'pending'",
        params![seq, at.micros(), now().micros()],
    )?;
    Ok(())
}

/// Changes a subscription's name, end, or (while pending) start.
pub(super) fn update(
    conn: &Connection,
    org: i64,
    external_id: &str,
    status: SubscriptionStatus,
    change: &SubscriptionUpdate,
    now_at: Timestamp,
) -> StoreResult<Subscription> {
    let (seq, current) =
        find(conn, org, external_id, status)?.ok_or(StoreError::NotFound("subscription"))?;
    let name = change.name.clone().unwrap_or(current.name);
    let subscription_at = match change.subscription_at {
        Some(at) if current.status == SubscriptionStatus::Pending => at,
        Some(_) => return Err(invalid("subscription_at", Reason::ValueIsInvalid)),
        None => current.subscription_at,
    };
    let ending_at = match change.ending_at {
        Some(Some(at)) if at <= now_at || at <= subscription_at => {
            return Err(invalid("ending_at", Reason::InvalidDate));
        }
        Some(ending) => ending,
        None => current.ending_at,
    };
    conn.execute(
        "UPDATE subscriptions SET name = ?2, subscription_at = ?3, ending_at = ?4, updated_at = ?5 WHERE seq = ?1",
        params![seq, name, subscription_at.micros(), ending_at.map(Timestamp::micros), now().micros()],
    )?;
    by_seq(conn, seq)
}

/// Terminates an active subscription (or cancels a pending one) at `now`.
pub(super) fn terminate(
    conn: &Connection,
    org: i64,
    external_id: &str,
    status: SubscriptionStatus,
    now_at: Timestamp,
) -> StoreResult<Subscription> {
    let (seq, current) =
        find(conn, org, external_id, status)?.ok_or(StoreError::NotFound("subscription"))?;
    match current.status {
        SubscriptionStatus::Active => {
            cancel_pending_successor(conn, seq, now_at)?;
            conn.execute(
                "UPDATE subscriptions SET status = 'terminated', terminated_at = ?2, updated_at = ?3 WHERE seq = ?1",
                params![seq, now_at.micros(), now().micros()],
            )?;
            // Ended on a boundary already billed (with the next period's fee in advance), no run
            // follows: the credit is due now.
            termination_credits::issue(conn, seq, now_at)?;
        }
        SubscriptionStatus::Pending => {
            conn.execute(
                "UPDATE subscriptions SET status = 'canceled', canceled_at = ?2, updated_at = ?3 WHERE seq = ?1",
                params![seq, now_at.micros(), now().micros()],
            )?;
        }
        SubscriptionStatus::Terminated | SubscriptionStatus::Canceled => {}
    }
    by_seq(conn, seq)
}
