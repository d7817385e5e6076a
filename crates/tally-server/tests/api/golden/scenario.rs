//! One scenario file on its own simulated server: its shape is checked, the customer, metrics, plans
//! and subscription are created, then each step runs in order.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::compare::{compare, summary};
use crate::helpers::{TestApp, spawn_simulated};

/// Keys a scenario file may have at its top level.
const SCENARIO_KEYS: &[&str] = &[
    "description",
    "clock_start",
    "customer",
    "metrics",
    "plan",
    "plans",
    "subscription",
    "steps",
];

/// The actions a step may hold (exactly one per step, plus an optional `note`).
const STEP_KINDS: &[&str] = &[
    "events",
    "event_series",
    "advance",
    "terminate",
    "plan_change",
    "expect_invoices",
    "expect_credit_notes",
];

/// Events per `POST /events/batch` (Lago's limit).
const BATCH: usize = 100;

/// Runs one scenario file and returns its mismatches (empty when it passes).
pub(super) async fn run_file(text: String) -> Vec<String> {
    let scenario: Value = match serde_json::from_str(&text) {
        Ok(value) => value,
        Err(error) => return vec![format!("not valid JSON: {error}")],
    };
    let problems = validate(&scenario);
    if !problems.is_empty() {
        return problems;
    }
    let start = scenario["clock_start"].as_str().unwrap_or_default();
    let app = spawn_simulated(start).await;
    let mut run = Run {
        app: &app,
        subscription: String::new(),
        customer: Value::Null,
        unchecked: None,
        checked_notes: Vec::new(),
        failures: Vec::new(),
    };
    if let Err(error) = run.setup(&scenario).await {
        run.failures.push(format!("setup: {error}"));
    } else {
        for (index, step) in scenario["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Err(error) = run.step(index, step).await {
                run.failures.push(format!("step {index}: {error}"));
                break;
            }
        }
        if let Some((index, ids)) = run.unchecked.as_ref().filter(|(_, ids)| !ids.is_empty()) {
            run.failures.push(format!(
                "step {index}: the advance created {} invoice(s) that no expect_invoices step checks",
                ids.len()
            ));
        }
        match run.new_credit_notes().await {
            Ok(notes) if !notes.is_empty() => run.failures.push(format!(
                "{} credit note(s) that no expect_credit_notes step checks: [{}]",
                notes.len(),
                notes
                    .iter()
                    .map(note_summary)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Ok(_) => {}
            Err(error) => run.failures.push(format!("listing credit notes: {error}")),
        }
    }
    let failures = std::mem::take(&mut run.failures);
    app.shutdown().await;
    failures
}

/// Checks a scenario's shape before anything runs, so a typo is reported rather than ignored.
fn validate(scenario: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(object) = scenario.as_object() else {
        return vec!["a scenario is a JSON object".into()];
    };
    for key in object.keys() {
        if !SCENARIO_KEYS.contains(&key.as_str()) {
            problems.push(format!("unknown top-level key {key:?}"));
        }
    }
    for key in ["clock_start", "customer", "subscription", "steps"] {
        if !object.contains_key(key) {
            problems.push(format!("missing top-level key {key:?}"));
        }
    }
    if !object.get("steps").is_none_or(Value::is_array) {
        problems.push("\"steps\" is a list".into());
    }
    if object.contains_key("plan") == object.contains_key("plans") {
        problems.push("give exactly one of \"plan\" and \"plans\"".into());
    }
    for (index, step) in object
        .get("steps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let kinds: Vec<&String> = step
            .as_object()
            .into_iter()
            .flat_map(|s| s.keys())
            .filter(|k| *k != "note")
            .collect();
        match kinds.as_slice() {
            [kind] if STEP_KINDS.contains(&kind.as_str()) => {}
            _ => problems.push(format!(
                "step {index}: a step holds exactly one of {STEP_KINDS:?} (and maybe a note), found {kinds:?}"
            )),
        }
        for (key, what) in [
            ("expect_invoices", "invoice"),
            ("expect_credit_notes", "credit note"),
        ] {
            for (i, expected) in step
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let note = expected.get("note").and_then(Value::as_str);
                if note.is_none_or(|n| n.trim().is_empty()) {
                    problems.push(format!(
                        "step {index}: expected {what} {i} needs a \"note\" with the hand arithmetic"
                    ));
                }
            }
        }
    }
    problems
}

/// One scenario in progress on its server.
struct Run<'a> {
    app: &'a TestApp,
    /// The subscription's external id (events name it unless they say otherwise).
    subscription: String,
    /// The subscription's `external_customer_id`.
    customer: Value,
    /// The invoices of the last advance not checked yet, with the step that made them; an advance
    /// that made some must be followed by `expect_invoices` before the next advance.
    unchecked: Option<(usize, Vec<String>)>,
    /// The credit notes an `expect_credit_notes` step has checked (each is checked once).
    checked_notes: Vec<String>,
    failures: Vec<String>,
}

impl Run<'_> {
    /// Sends a request with the admin key and returns the JSON answer, which must be a 200.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let reply = self
            .app
            .call(method.clone(), path, &self.app.admin_key, body)
            .await;
        if reply.status.as_u16() != 200 {
            return Err(format!(
                "{method} {path} answered {}: {}",
                reply.status, reply.text
            ));
        }
        serde_json::from_str(&reply.text).map_err(|e| format!("{method} {path}: {e}"))
    }

    async fn setup(&mut self, scenario: &Value) -> Result<(), String> {
        let customer = &scenario["customer"];
        self.call(
            Method::POST,
            "/api/v1/customers",
            Some(&json!({ "customer": customer })),
        )
        .await?;
        let mut metric_ids = BTreeMap::new();
        for metric in scenario["metrics"].as_array().into_iter().flatten() {
            let created = self
                .call(
                    Method::POST,
                    "/api/v1/billable_metrics",
                    Some(&json!({ "billable_metric": metric })),
                )
                .await?;
            let code = created["billable_metric"]["code"]
                .as_str()
                .unwrap_or_default();
            metric_ids.insert(
                code.to_owned(),
                created["billable_metric"]["lago_id"].clone(),
            );
        }
        let plans: Vec<Value> = match scenario.get("plans") {
            Some(list) => list.as_array().cloned().unwrap_or_default(),
            None => vec![scenario["plan"].clone()],
        };
        for plan in &plans {
            let plan = resolve_metrics(plan, &metric_ids)?;
            self.call(
                Method::POST,
                "/api/v1/plans",
                Some(&json!({ "plan": plan })),
            )
            .await?;
        }
        let mut subscription = scenario["subscription"]
            .as_object()
            .cloned()
            .ok_or("\"subscription\" must be an object")?;
        subscription
            .entry("external_customer_id")
            .or_insert_with(|| customer["external_id"].clone());
        subscription
            .entry("plan_code")
            .or_insert_with(|| plans[0]["code"].clone());
        self.customer = subscription["external_customer_id"].clone();
        self.subscription = subscription
            .get("external_id")
            .and_then(Value::as_str)
            .ok_or("the subscription needs an external_id")?
            .to_owned();
        self.call(
            Method::POST,
            "/api/v1/subscriptions",
            Some(&json!({ "subscription": subscription })),
        )
        .await?;
        Ok(())
    }

    async fn step(&mut self, index: usize, step: &Value) -> Result<(), String> {
        if let Some(events) = step.get("events") {
            let events = events.as_array().ok_or("\"events\" is a list")?;
            let events: Vec<Value> = events
                .iter()
                .enumerate()
                .map(|(i, e)| self.complete_event(e, &format!("s{index}-e{i}")))
                .collect::<Result<_, _>>()?;
            self.send_events(&events).await
        } else if let Some(series) = step.get("event_series") {
            let events = self.series(index, series)?;
            self.send_events(&events).await
        } else if let Some(now) = step.get("advance") {
            let now = now.as_str().ok_or("\"advance\" is an RFC 3339 string")?;
            if let Some((made, ids)) = self.unchecked.take().filter(|(_, ids)| !ids.is_empty()) {
                self.failures.push(format!(
                    "step {made}: the advance created {} invoice(s) that no expect_invoices step checks",
                    ids.len()
                ));
            }
            let created = self
                .call(Method::POST, "/api/v1/clock", Some(&json!({ "now": now })))
                .await?;
            let ids = created["invoices"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|id| id.as_str().map(str::to_owned))
                .collect::<Vec<_>>();
            self.unchecked = Some((index, ids));
            Ok(())
        } else if step.get("terminate").is_some() {
            let path = format!("/api/v1/subscriptions/{}", self.subscription);
            self.call(Method::DELETE, &path, None).await.map(drop)
        } else if let Some(plan) = step.get("plan_change") {
            let subscription = json!({"subscription": {
                "external_customer_id": self.customer,
                "external_id": self.subscription, "plan_code": plan}});
            self.call(Method::POST, "/api/v1/subscriptions", Some(&subscription))
                .await
                .map(drop)
        } else if let Some(expected) = step.get("expect_invoices") {
            self.expect_invoices(index, expected).await
        } else if let Some(expected) = step.get("expect_credit_notes") {
            self.expect_credit_notes(index, expected).await
        } else {
            Err("unknown step".into())
        }
    }

    /// Fills in what an event may leave out (its transaction id and the subscription) and drops its
    /// `note`.
    fn complete_event(&self, event: &Value, transaction_id: &str) -> Result<Value, String> {
        let mut event = event
            .as_object()
            .cloned()
            .ok_or("each event is an object")?;
        event.remove("note");
        event
            .entry("transaction_id")
            .or_insert_with(|| json!(transaction_id));
        if !event.contains_key("external_customer_id") {
            event
                .entry("external_subscription_id")
                .or_insert_with(|| json!(self.subscription));
        }
        Ok(Value::Object(event))
    }

    /// Expands `{"count", "from", "every_seconds", "event"}` into `count` events, `every_seconds`
    /// apart from `from`.
    fn series(&self, index: usize, series: &Value) -> Result<Vec<Value>, String> {
        let count = series["count"]
            .as_u64()
            .ok_or("event_series needs a \"count\"")?;
        let from = series["from"]
            .as_str()
            .and_then(tally_core::Timestamp::parse_rfc3339)
            .ok_or("event_series needs \"from\" (RFC 3339)")?;
        let every = series["every_seconds"].as_i64().unwrap_or(1);
        let template = series["event"]
            .as_object()
            .ok_or("event_series needs an \"event\" object")?;
        (0..count)
            .map(|i| {
                let mut event = Map::clone(template);
                let at = tally_core::Timestamp::from_micros(
                    from.micros() + i64::try_from(i).unwrap_or(0) * every * 1_000_000,
                );
                event.insert("timestamp".into(), json!(at.to_rfc3339_micros()));
                self.complete_event(&Value::Object(event), &format!("s{index}-n{i}"))
            })
            .collect()
    }

    async fn send_events(&self, events: &[Value]) -> Result<(), String> {
        for chunk in events.chunks(BATCH) {
            self.call(
                Method::POST,
                "/api/v1/events/batch",
                Some(&json!({ "events": chunk })),
            )
            .await?;
        }
        Ok(())
    }

    async fn expect_invoices(&mut self, index: usize, expected: &Value) -> Result<(), String> {
        let expected = expected.as_array().ok_or("\"expect_invoices\" is a list")?;
        let (made, ids) = self
            .unchecked
            .take()
            .ok_or("expect_invoices must follow an advance")?;
        let mut out = Vec::new();
        if ids.len() != expected.len() {
            out.push(format!(
                "the advance at step {made} created {} invoice(s), {} expected",
                ids.len(),
                expected.len()
            ));
        }
        for (i, (want, id)) in expected.iter().zip(&ids).enumerate() {
            let got = self
                .call(Method::GET, &format!("/api/v1/invoices/{id}"), None)
                .await?;
            compare(want, &got["invoice"], &format!("invoice[{i}]"), &mut out);
        }
        for (i, id) in ids.iter().enumerate().skip(expected.len()) {
            let got = self
                .call(Method::GET, &format!("/api/v1/invoices/{id}"), None)
                .await?;
            out.push(format!(
                "invoice[{i}]: unexpected {}",
                summary(&got["invoice"])
            ));
        }
        self.failures.extend(
            out.into_iter()
                .map(|m| format!("step {index} (expect_invoices): {m}")),
        );
        Ok(())
    }

    /// Returns the customer's credit notes that no `expect_credit_notes` step has checked, oldest
    /// first, each as `GET /api/v1/credit_notes/{lago_id}` answers it.
    async fn new_credit_notes(&self) -> Result<Vec<Value>, String> {
        let customer = self.customer.as_str().unwrap_or_default();
        let listed = self
            .call(
                Method::GET,
                &format!("/api/v1/credit_notes?external_customer_id={customer}&per_page=1000"),
                None,
            )
            .await?;
        let mut notes = Vec::new();
        for listed in listed["credit_notes"]
            .as_array()
            .into_iter()
            .flatten()
            .rev()
        {
            let id = listed["lago_id"].as_str().unwrap_or_default();
            if self.checked_notes.iter().any(|seen| seen == id) {
                continue;
            }
            let got = self
                .call(Method::GET, &format!("/api/v1/credit_notes/{id}"), None)
                .await?;
            notes.push(got["credit_note"].clone());
        }
        Ok(notes)
    }

    async fn expect_credit_notes(&mut self, index: usize, expected: &Value) -> Result<(), String> {
        let expected = expected
            .as_array()
            .ok_or("\"expect_credit_notes\" is a list")?;
        let notes = self.new_credit_notes().await?;
        let mut out = Vec::new();
        if notes.len() != expected.len() {
            out.push(format!(
                "{} new credit note(s), {} expected",
                notes.len(),
                expected.len()
            ));
        }
        for (i, (want, got)) in expected.iter().zip(&notes).enumerate() {
            compare(want, got, &format!("credit_note[{i}]"), &mut out);
        }
        for (i, got) in notes.iter().enumerate().skip(expected.len()) {
            out.push(format!(
                "credit_note[{i}]: unexpected {}",
                note_summary(got)
            ));
        }
        self.checked_notes.extend(
            notes
                .iter()
                .filter_map(|n| n["lago_id"].as_str().map(str::to_owned)),
        );
        self.failures.extend(
            out.into_iter()
                .map(|m| format!("step {index} (expect_credit_notes): {m}")),
        );
        Ok(())
    }
}

/// One line about a credit note nobody expected.
fn note_summary(note: &Value) -> String {
    format!(
        "{} {} total_amount_cents {}",
        note["number"].as_str().unwrap_or("?"),
        note["reason"].as_str().unwrap_or("?"),
        note["total_amount_cents"]
    )
}

/// Replaces each charge's `billable_metric_code` with the created metric's `billable_metric_id`.
fn resolve_metrics(plan: &Value, ids: &BTreeMap<String, Value>) -> Result<Value, String> {
    let mut plan = plan.clone();
    for charge in plan
        .get_mut("charges")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let Some(object) = charge.as_object_mut() else {
            continue;
        };
        if let Some(code) = object.remove("billable_metric_code") {
            let id = code
                .as_str()
                .and_then(|c| ids.get(c))
                .ok_or_else(|| format!("no metric with code {code} in \"metrics\""))?;
            object.insert("billable_metric_id".into(), id.clone());
        }
    }
    Ok(plan)
}
