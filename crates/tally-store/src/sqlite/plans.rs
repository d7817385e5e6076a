//! Plans, their charges and charge filters. A plan is written whole: its charges are replaced by the
//! list sent (kept by id, added, or removed), in one transaction.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, params};
use tally_core::charge::{ChargeModel, ChargeModelKind};
use tally_core::currency::Currency;
use tally_core::error::{Reason, ValidationErrors};
use tally_core::id::{ChargeFilterId, ChargeId, Code, MetricId, PlanId, UsageThresholdId};
use tally_core::page::Page;
use tally_core::period::Interval;
use tally_core::plan::{
    Charge, ChargeDraft, ChargeFilter, ChargeTerms, MinimumCommitment, Plan, PlanDraft, PlanTerms,
    UsageThreshold, validate_charge_codes, validate_terms, validate_usage_thresholds,
};
use tally_core::time::Timestamp;

use super::billable_metrics;
use super::listing::Filtered;
use super::now;
use super::orgs::parse_uuid;
use crate::error::{StoreError, StoreResult};
use crate::types::Listed;

const COLUMNS: &str = "seq, id, code, name, description, invoice_display_name, interval, amount_cents,
    amount_currency, pay_in_advance, trial_period_days, bill_charges_monthly, created_at, updated_at,
    commitment_amount_cents, commitment_invoice_display_name";

fn corrupt(index: usize, message: impl Into<String>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        index,
        rusqlite::types::Type::Text,
        message.into().into(),
    )
}

fn plan_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, Plan)> {
    let id: String = row.get(1)?;
    let code: String = row.get(2)?;
    let interval: String = row.get(6)?;
    let currency: String = row.get(8)?;
    let trial: i64 = row.get(10)?;
    Ok((
        row.get(0)?,
        Plan {
            id: PlanId(parse_uuid(&id)?),
            terms: PlanTerms {
                code: Code::parse("code", &code).map_err(|e| corrupt(2, e.field))?,
                name: row.get(3)?,
                description: row.get(4)?,
                invoice_display_name: row.get(5)?,
                interval: Interval::parse(&interval).ok_or_else(|| corrupt(6, interval.clone()))?,
                amount_cents: row.get(7)?,
                currency: Currency::parse(&currency).ok_or_else(|| corrupt(8, currency.clone()))?,
                pay_in_advance: row.get(9)?,
                trial_period_days: u32::try_from(trial).unwrap_or(0),
                bill_charges_monthly: row.get(11)?,
                minimum_commitment: row.get::<_, Option<i64>>(14)?.map(|amount_cents| {
                    MinimumCommitment {
                        amount_cents,
                        invoice_display_name: row.get(15).ok().flatten(),
                    }
                }),
            },
            charges: Vec::new(),
            usage_thresholds: Vec::new(),
            created_at: Timestamp::from_micros(row.get(12)?),
            updated_at: Timestamp::from_micros(row.get(13)?),
        },
    ))
}

fn model_from(kind: &str, properties: &str, index: usize) -> rusqlite::Result<ChargeModel> {
    let kind = ChargeModelKind::parse(kind)
        .ok_or_else(|| corrupt(index, format!("charge model {kind}")))?;
    let properties: serde_json::Value =
        serde_json::from_str(properties).map_err(|e| corrupt(index, e.to_string()))?;
    ChargeModel::from_properties(kind, properties.as_object())
        .map_err(|e| corrupt(index, e.to_string()))
}

/// Loads the live charges of a plan with their filters.
fn charges_of(conn: &Connection, plan: i64) -> StoreResult<Vec<Charge>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.seq, c.id, m.id, m.code, c.code, c.invoice_display_name, c.charge_model, c.properties,
                c.pay_in_advance, c.invoiceable, c.prorated, c.min_amount_cents
         FROM charges c JOIN billable_metrics m ON m.seq = c.metric
         WHERE c.plan = ?1 AND c.deleted_at IS NULL ORDER BY c.position",
    )?;
    let rows = stmt
        .query_map([plan], |row| {
            let id: String = row.get(1)?;
            let metric: String = row.get(2)?;
            let metric_code: String = row.get(3)?;
            let kind: String = row.get(6)?;
            let properties: String = row.get(7)?;
            Ok((
                row.get::<_, i64>(0)?,
                Charge {
                    id: ChargeId(parse_uuid(&id)?),
                    metric_id: MetricId(parse_uuid(&metric)?),
                    metric_code: Code::parse("code", &metric_code)
                        .map_err(|e| corrupt(3, e.field))?,
                    terms: ChargeTerms {
                        code: row.get(4)?,
                        invoice_display_name: row.get(5)?,
                        model: model_from(&kind, &properties, 7)?,
                        pay_in_advance: row.get(8)?,
                        invoiceable: row.get(9)?,
                        prorated: row.get(10)?,
                        min_amount_cents: row.get(11)?,
                    },
                    filters: Vec::new(),
                    taxes: Vec::new(),
                },
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut filters = conn.prepare_cached(
        "SELECT id, filter_values, properties, invoice_display_name FROM charge_filters
         WHERE charge = ?1 AND deleted_at IS NULL ORDER BY position",
    )?;
    let mut charges = Vec::with_capacity(rows.len());
    for (seq, mut charge) in rows {
        let kind = charge.terms.model.kind().name();
        charge.filters = filters
            .query_map([seq], |row| {
                let id: String = row.get(0)?;
                let values: String = row.get(1)?;
                let properties: String = row.get(2)?;
                Ok((
                    ChargeFilterId(parse_uuid(&id)?),
                    ChargeFilter {
                        values: serde_json::from_str::<BTreeMap<String, Vec<String>>>(&values)
                            .map_err(|e| corrupt(1, e.to_string()))?,
                        model: model_from(kind, &properties, 2)?,
                        invoice_display_name: row.get(3)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        charge.taxes = super::taxes::of(conn, "charge", &charge.id.0.to_string())?
            .into_iter()
            .map(|(_, tax)| tax)
            .collect();
        charges.push(charge);
    }
    Ok(charges)
}

/// Loads the live usage thresholds of a plan, by amount (fixed ones first on a tie).
fn thresholds_of(
    conn: &Connection,
    plan: i64,
) -> StoreResult<Vec<(UsageThresholdId, UsageThreshold)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, amount_cents, display_name, recurring FROM usage_thresholds
         WHERE plan = ?1 AND deleted_at IS NULL ORDER BY amount_cents, recurring, seq",
    )?;
    let thresholds = stmt
        .query_map([plan], |row| {
            Ok((
                UsageThresholdId(parse_uuid(&row.get::<_, String>(0)?)?),
                UsageThreshold {
                    amount_cents: row.get(1)?,
                    display_name: row.get(2)?,
                    recurring: row.get(3)?,
                },
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(thresholds)
}

/// Writes the usage thresholds of a plan: updates those sent with an id, adds the others, removes the
/// rest (soft-deleted: invoices keep naming the thresholds they passed).
fn write_thresholds(
    conn: &Connection,
    plan: i64,
    thresholds: &[(Option<UsageThresholdId>, UsageThreshold)],
) -> StoreResult<()> {
    let at = now().micros();
    let existing: Vec<String> = {
        let mut stmt =
            conn.prepare("SELECT id FROM usage_thresholds WHERE plan = ?1 AND deleted_at IS NULL")?;
        stmt.query_map([plan], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    let kept: Vec<String> = thresholds
        .iter()
        .filter_map(|(id, _)| id.map(|id| id.0.to_string()))
        .filter(|id| existing.contains(id))
        .collect();
    // Removals first, so a recurring threshold can move to another row in one update.
    for id in existing.iter().filter(|id| !kept.contains(id)) {
        conn.execute(
            "UPDATE usage_thresholds SET deleted_at = ?2 WHERE id = ?1",
            params![id, at],
        )?;
    }
    for (id, threshold) in thresholds {
        match id.map(|id| id.0.to_string()).filter(|id| kept.contains(id)) {
            Some(id) => conn.execute(
                "UPDATE usage_thresholds SET amount_cents = ?2, display_name = ?3, recurring = ?4,
                    updated_at = ?5 WHERE id = ?1",
                params![
                    id,
                    threshold.amount_cents,
                    threshold.display_name,
                    threshold.recurring,
                    at
                ],
            )?,
            None => conn.execute(
                "INSERT INTO usage_thresholds (id, plan, amount_cents, display_name, recurring,
                    created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![
                    UsageThresholdId::generate().0.to_string(),
                    plan,
                    threshold.amount_cents,
                    threshold.display_name,
                    threshold.recurring,
                    at
                ],
            )?,
        };
    }
    Ok(())
}

fn with_charges(conn: &Connection, found: Option<(i64, Plan)>) -> StoreResult<Plan> {
    let (seq, mut plan) = found.ok_or(StoreError::NotFound("plan"))?;
    plan.charges = charges_of(conn, seq)?;
    plan.usage_thresholds = thresholds_of(conn, seq)?;
    Ok(plan)
}

fn find_by_code(conn: &Connection, org: i64, code: &str) -> StoreResult<Option<(i64, Plan)>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM plans WHERE org = ?1 AND code = ?2 AND deleted_at IS NULL"
            ),
            params![org, code],
            plan_from_row,
        )
        .optional()?)
}

/// Reads a live plan by code.
pub(super) fn by_code(conn: &Connection, org: i64, code: &str) -> StoreResult<Plan> {
    with_charges(conn, find_by_code(conn, org, code)?)
}

/// Reads a plan by id, deleted or not (subscriptions keep their plan).
pub(super) fn by_id(conn: &Connection, org: i64, id: PlanId) -> StoreResult<Plan> {
    let found = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM plans WHERE org = ?1 AND id = ?2"),
            params![org, id.0.to_string()],
            plan_from_row,
        )
        .optional()?;
    with_charges(conn, found)
}

/// Returns the compact id of a plan.
pub(super) fn seq_of(conn: &Connection, id: PlanId) -> StoreResult<i64> {
    conn.query_row(
        "SELECT seq FROM plans WHERE id = ?1",
        [id.0.to_string()],
        |row| row.get(0),
    )
    .optional()?
    .ok_or(StoreError::NotFound("plan"))
}

/// Lists live plans, oldest first.
pub(super) fn list(conn: &Connection, org: i64, page: Page) -> StoreResult<Listed<Plan>> {
    let mut query = Filtered::new("org = ?", rusqlite::types::Value::Integer(org));
    query.and("deleted_at IS NULL", []);
    let listed = query.page(conn, "plans", COLUMNS, "seq", page, plan_from_row)?;
    let mut items = Vec::with_capacity(listed.items.len());
    for found in listed.items {
        items.push(with_charges(conn, Some(found))?);
    }
    Ok(Listed {
        items,
        total: listed.total,
    })
}

/// Checks a draft against the organization's metrics; returns each charge's metric sequence.
fn validate(conn: &Connection, org: i64, draft: &PlanDraft) -> StoreResult<Vec<i64>> {
    let mut errors = ValidationErrors::new();
    validate_terms(&draft.terms, &mut errors);
    validate_charge_codes(&draft.charges, &mut errors);
    let thresholds: Vec<UsageThreshold> = draft
        .usage_thresholds
        .iter()
        .map(|(_, t)| t.clone())
        .collect();
    validate_usage_thresholds(&thresholds, &mut errors);
    let mut metrics = Vec::with_capacity(draft.charges.len());
    for (index, charge) in draft.charges.iter().enumerate() {
        match billable_metrics::by_id_with_seq(conn, org, charge.metric_id.0)? {
            Some((seq, metric)) => {
                charge.validate(&metric.definition, index, &mut errors);
                metrics.push(seq);
            }
            None => return Err(StoreError::NotFound("billable_metric")),
        }
    }
    errors.into_result(metrics).map_err(StoreError::Invalid)
}

fn properties_text(model: &ChargeModel) -> String {
    model.to_properties().to_string()
}

/// Writes the charges of a plan: updates those sent with an id, adds the others, removes the rest.
fn write_charges(
    conn: &Connection,
    org: i64,
    plan: i64,
    charges: &[ChargeDraft],
    metrics: &[i64],
) -> StoreResult<()> {
    let at = now().micros();
    let existing: Vec<(i64, String)> = {
        let mut stmt =
            conn.prepare("SELECT seq, id FROM charges WHERE plan = ?1 AND deleted_at IS NULL")?;
        stmt.query_map([plan], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    // Charges left out go first, so a new charge may take the code of one it replaces.
    let sent: Vec<String> = charges
        .iter()
        .filter_map(|c| c.id.map(|id| id.0.to_string()))
        .collect();
    for (seq, id) in &existing {
        if !sent.contains(id) {
            conn.execute(
                "UPDATE charges SET deleted_at = ?2 WHERE seq = ?1",
                params![seq, at],
            )?;
        }
    }
    for (position, (charge, metric)) in charges.iter().zip(metrics).enumerate() {
        let t = &charge.terms;
        let known = charge.id.and_then(|id| {
            existing
                .iter()
                .find(|(_, e)| *e == id.0.to_string())
                .map(|(seq, _)| *seq)
        });
        let seq = match known {
            Some(seq) => {
                conn.execute(
                    "UPDATE charges SET metric = ?2, position = ?3, code = ?4, invoice_display_name = ?5,
                        charge_model = ?6, properties = ?7, pay_in_advance = ?8, invoiceable = ?9, prorated = ?10,
                        min_amount_cents = ?11, updated_at = ?12 WHERE seq = ?1",
                    params![
                        seq,
                        metric,
                        position as i64,
                        t.code,
                        t.invoice_display_name,
                        t.model.kind().name(),
                        properties_text(&t.model),
                        t.pay_in_advance,
                        t.invoiceable,
                        t.prorated,
                        t.min_amount_cents,
                        at
                    ],
                )?;
                conn.execute(
                    "UPDATE charge_filters SET deleted_at = ?2 WHERE charge = ?1 AND deleted_at IS NULL",
                    params![seq, at],
                )?;
                seq
            }
            None => {
                conn.execute(
                    "INSERT INTO charges (id, plan, metric, position, code, invoice_display_name, charge_model, properties,
                        pay_in_advance, invoiceable, prorated, min_amount_cents, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)",
                    params![
                        ChargeId::generate().0.to_string(),
                        plan,
                        metric,
                        position as i64,
                        t.code,
                        t.invoice_display_name,
                        t.model.kind().name(),
                        properties_text(&t.model),
                        t.pay_in_advance,
                        t.invoiceable,
                        t.prorated,
                        t.min_amount_cents,
                        at
                    ],
                )?;
                conn.last_insert_rowid()
            }
        };
        if let Some(codes) = &charge.tax_codes {
            let id: String =
                conn.query_row("SELECT id FROM charges WHERE seq = ?1", [seq], |row| {
                    row.get(0)
                })?;
            super::taxes::set_links(conn, org, "charge", &id, codes)?;
        }
        for (index, filter) in charge.filters.iter().enumerate() {
            let values = serde_json::to_string(&filter.values)
                .map_err(|e| StoreError::Database(e.to_string()))?;
            conn.execute(
                "INSERT INTO charge_filters (id, charge, position, filter_values, properties, invoice_display_name)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    ChargeFilterId::generate().0.to_string(),
                    seq,
                    index as i64,
                    values,
                    properties_text(&filter.model),
                    filter.invoice_display_name
                ],
            )?;
        }
    }
    Ok(())
}

/// Flags the metrics whose events a plan's charges price one by one (percentage charges with per-event
/// terms, on the charge or a filter) as keeping their values, and fills `event_values` for each metric
/// newly flagged, in the plan write's transaction. Flags are never cleared: a metric that stops
/// needing them keeps costing one row per event, which is safe.
fn keep_event_values(conn: &Connection, org: i64, plan: i64) -> StoreResult<()> {
    let mut codes: Vec<String> = Vec::new();
    for charge in charges_of(conn, plan)? {
        if !charge.needs_event_values() {
            continue;
        }
        let flagged = conn.execute(
            "UPDATE billable_metrics SET keeps_event_values = 1
             WHERE id = ?1 AND keeps_event_values = 0",
            [charge.metric_id.0.to_string()],
        )?;
        if flagged > 0 {
            let code: String = conn.query_row(
                "SELECT event_type FROM billable_metrics WHERE id = ?1",
                [charge.metric_id.0.to_string()],
                |row| row.get(0),
            )?;
            codes.push(code);
        }
    }
    codes.sort();
    codes.dedup();
    for code in codes {
        super::rollups::rebuild_event_type(conn, org, &code)?;
    }
    Ok(())
}

/// Fills `event_values` for what is stored when migration 18 runs: flags the metrics the live plans'
/// charges need values of, and rebuilds the rollups (and values) of every code read by a flagged or
/// unique-count metric.
pub(super) fn backfill_event_values(conn: &Connection) -> StoreResult<()> {
    let plans: Vec<(i64, i64)> = {
        let mut stmt = conn.prepare("SELECT org, seq FROM plans WHERE deleted_at IS NULL")?;
        stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    for (_, plan) in &plans {
        for charge in charges_of(conn, *plan)? {
            if charge.needs_event_values() {
                conn.execute(
                    "UPDATE billable_metrics SET keeps_event_values = 1 WHERE id = ?1",
                    [charge.metric_id.0.to_string()],
                )?;
            }
        }
    }
    let codes: Vec<(i64, String)> = {
        let mut stmt = conn.prepare(
            "SELECT DISTINCT org, event_type FROM billable_metrics
             WHERE deleted_at IS NULL AND (keeps_event_values = 1 OR aggregation = ?1)
             ORDER BY org, event_type",
        )?;
        stmt.query_map(
            [tally_core::metric::AggregationType::UniqueCount.storage_name()],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?
        .collect::<rusqlite::Result<_>>()?
    };
    for (org, code) in codes {
        super::rollups::rebuild_event_type(conn, org, &code)?;
    }
    Ok(())
}

fn code_taken() -> StoreError {
    let mut errors = ValidationErrors::new();
    errors.push("code", Reason::ValueAlreadyExist);
    StoreError::Invalid(errors)
}

/// Creates a plan with its charges.
pub(super) fn create(conn: &Connection, org: i64, draft: &PlanDraft) -> StoreResult<Plan> {
    let metrics = validate(conn, org, draft)?;
    if find_by_code(conn, org, draft.terms.code.as_str())?.is_some() {
        return Err(code_taken());
    }
    let t = &draft.terms;
    let at = now().micros();
    conn.execute(
        "INSERT INTO plans (id, org, code, name, description, invoice_display_name, interval, amount_cents, amount_currency,
            pay_in_advance, trial_period_days, bill_charges_monthly, created_at, updated_at,
            commitment_amount_cents, commitment_invoice_display_name)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13, ?14, ?15)",
        params![
            PlanId::generate().0.to_string(),
            org,
            t.code.as_str(),
            t.name,
            t.description,
            t.invoice_display_name,
            t.interval.name(),
            t.amount_cents,
            t.currency.code(),
            t.pay_in_advance,
            i64::from(t.trial_period_days),
            t.bill_charges_monthly,
            at,
            t.minimum_commitment.as_ref().map(|c| c.amount_cents),
            t.minimum_commitment
                .as_ref()
                .and_then(|c| c.invoice_display_name.clone()),
        ],
    )?;
    let seq = conn.last_insert_rowid();
    write_charges(conn, org, seq, &draft.charges, &metrics)?;
    keep_event_values(conn, org, seq)?;
    write_thresholds(conn, seq, &draft.usage_thresholds)?;
    let plan = by_code(conn, org, t.code.as_str())?;
    if let Some(codes) = &draft.tax_codes {
        super::taxes::set_links(conn, org, "plan", &plan.id.0.to_string(), codes)?;
    }
    Ok(plan)
}

/// Replaces a plan's fields and charges.
pub(super) fn update(
    conn: &Connection,
    org: i64,
    code: &str,
    draft: &PlanDraft,
) -> StoreResult<Plan> {
    let (seq, _) = find_by_code(conn, org, code)?.ok_or(StoreError::NotFound("plan"))?;
    let metrics = validate(conn, org, draft)?;
    if draft.terms.code.as_str() != code
        && find_by_code(conn, org, draft.terms.code.as_str())?.is_some()
    {
        return Err(code_taken());
    }
    let t = &draft.terms;
    conn.execute(
        "UPDATE plans SET code = ?2, name = ?3, description = ?4, invoice_display_name = ?5, interval = ?6,
            amount_cents = ?7, amount_currency = ?8, pay_in_advance = ?9, trial_period_days = ?10,
            bill_charges_monthly = ?11, updated_at = ?12, commitment_amount_cents = ?13,
            commitment_invoice_display_name = ?14 WHERE seq = ?1",
        params![
            seq,
            t.code.as_str(),
            t.name,
            t.description,
            t.invoice_display_name,
            t.interval.name(),
            t.amount_cents,
            t.currency.code(),
            t.pay_in_advance,
            i64::from(t.trial_period_days),
            t.bill_charges_monthly,
            now().micros(),
            t.minimum_commitment.as_ref().map(|c| c.amount_cents),
            t.minimum_commitment
                .as_ref()
                .and_then(|c| c.invoice_display_name.clone()),
        ],
    )?;
    write_charges(conn, org, seq, &draft.charges, &metrics)?;
    keep_event_values(conn, org, seq)?;
    write_thresholds(conn, seq, &draft.usage_thresholds)?;
    let plan = by_code(conn, org, t.code.as_str())?;
    if let Some(codes) = &draft.tax_codes {
        super::taxes::set_links(conn, org, "plan", &plan.id.0.to_string(), codes)?;
    }
    Ok(plan)
}

/// Deletes a plan; subscriptions already on it keep it.
pub(super) fn delete(conn: &Connection, org: i64, code: &str) -> StoreResult<Plan> {
    let (seq, _) = find_by_code(conn, org, code)?.ok_or(StoreError::NotFound("plan"))?;
    let plan = by_code(conn, org, code)?;
    conn.execute(
        "UPDATE plans SET deleted_at = ?2 WHERE seq = ?1",
        params![seq, now().micros()],
    )?;
    Ok(plan)
}
