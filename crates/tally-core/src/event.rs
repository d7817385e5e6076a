//! Events: what a client reports, how its idempotency key and payload are fingerprinted, and why an
//! event may be stored yet not billable.
//!
//! A Lago event's idempotency key is its `transaction_id` within the organization; a CloudEvent's key is
//! its (`source`, `id`). Re-sending an identical event changes nothing; re-sending a key with another
//! payload is refused. Identity and payload are compared through 64-bit fingerprints ([`NewEvent::key_hash`],
//! [`NewEvent::payload_hash`]); the store confirms a key match against the stored key itself.

use std::fmt;

use rust_decimal::Decimal;
use serde_json::{Map, Value};
use xxhash_rust::xxh3::Xxh3;

use crate::case::IdentifierCase;
use crate::id::{Code, ExternalId, OrganizationId};
use crate::metric::Unbillable;
use crate::time::Timestamp;

/// An event as parsed from the wire (Lago or CloudEvents), before the organization's rules apply.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDraft {
    /// CloudEvent `source`; `None` for Lago events.
    pub source: Option<String>,
    /// Lago `transaction_id` or CloudEvent `id`.
    pub transaction_id: ExternalId,
    /// Lago `code` or CloudEvent `type`, as sent.
    pub code: Code,
    /// Who used it: Lago `external_customer_id` or CloudEvent `subject`.
    pub subject: Option<ExternalId>,
    /// Lago `external_subscription_id`.
    pub external_subscription_id: Option<ExternalId>,
    /// When it happened, if the client said so.
    pub timestamp: Option<Timestamp>,
    /// Lago `properties` or CloudEvent `data`.
    pub properties: Map<String, Value>,
    /// Lago `precise_total_amount_cents`.
    pub precise_total_amount_cents: Option<Decimal>,
}

/// An event ready to be stored: normalized, timed and fingerprinted.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Fingerprint of the idempotency key (organization, source, transaction id).
    pub key_hash: i64,
    /// Fingerprint of everything the client sent, to tell a retry from a conflicting reuse of a key.
    pub payload_hash: i64,
    /// CloudEvent `source`, or `None` for Lago events.
    pub source: Option<String>,
    /// The client's transaction id.
    pub transaction_id: ExternalId,
    /// The event code after the case policy.
    pub code: Code,
    /// The subject (customer key) as sent.
    pub subject: Option<ExternalId>,
    /// The subscription the client named.
    pub external_subscription_id: Option<ExternalId>,
    /// Event time: as sent, or the time of receipt.
    pub timestamp: Timestamp,
    /// When tally received it.
    pub received_at: Timestamp,
    /// Properties after the case policy (top-level keys rewritten).
    pub properties: Map<String, Value>,
    /// The properties and code exactly as sent, as JSON, when the case policy changed anything.
    pub original: Option<String>,
    /// Lago `precise_total_amount_cents`.
    pub precise_total_amount_cents: Option<Decimal>,
}

impl EventDraft {
    /// Applies the organization's case policy, fills in the time of receipt and fingerprints the event.
    pub fn prepare(
        self,
        org: OrganizationId,
        case: IdentifierCase,
        received_at: Timestamp,
    ) -> NewEvent {
        let key_hash = key_hash(org, self.source.as_deref(), self.transaction_id.as_str());
        let payload_hash = self.payload_hash();
        let code = Code::parse("code", &case.apply(self.code.as_str()))
            .unwrap_or_else(|_| self.code.clone());
        let (properties, original) = if case.is_none() {
            (self.properties, None)
        } else {
            let mut changed = code != self.code;
            let rewritten: Map<String, Value> = self
                .properties
                .iter()
                .map(|(key, value)| {
                    let new_key = case.apply(key).into_owned();
                    changed |= &new_key != key;
                    (new_key, value.clone())
                })
                .collect();
            let original = changed.then(|| {
                serde_json::json!({"code": self.code.as_str(), "properties": self.properties})
                    .to_string()
            });
            (rewritten, original)
        };
        NewEvent {
            key_hash,
            payload_hash,
            source: self.source,
            transaction_id: self.transaction_id,
            code,
            subject: self.subject,
            external_subscription_id: self.external_subscription_id,
            timestamp: self.timestamp.unwrap_or(received_at),
            received_at,
            properties,
            original,
            precise_total_amount_cents: self.precise_total_amount_cents,
        }
    }

    fn payload_hash(&self) -> i64 {
        let mut hasher = Xxh3::new();
        write_str(&mut hasher, self.code.as_str());
        write_opt(&mut hasher, self.subject.as_ref().map(ExternalId::as_str));
        write_opt(
            &mut hasher,
            self.external_subscription_id
                .as_ref()
                .map(ExternalId::as_str),
        );
        match self.timestamp {
            Some(at) => {
                hasher.update(&[1]);
                hasher.update(&at.micros().to_le_bytes());
            }
            None => hasher.update(&[0]),
        }
        write_opt(
            &mut hasher,
            self.precise_total_amount_cents
                .map(|d| d.normalize().to_string())
                .as_deref(),
        );
        write_object(&mut hasher, &self.properties);
        hasher.digest() as i64
    }
}

/// Fingerprints an idempotency key: (organization, CloudEvent source or none, transaction id).
pub fn key_hash(org: OrganizationId, source: Option<&str>, transaction_id: &str) -> i64 {
    let mut hasher = Xxh3::new();
    hasher.update(org.0.as_bytes());
    write_opt(&mut hasher, source);
    write_str(&mut hasher, transaction_id);
    hasher.digest() as i64
}

fn write_str(hasher: &mut Xxh3, text: &str) {
    hasher.update(&(text.len() as u64).to_le_bytes());
    hasher.update(text.as_bytes());
}

fn write_opt(hasher: &mut Xxh3, text: Option<&str>) {
    match text {
        Some(text) => {
            hasher.update(&[1]);
            write_str(hasher, text);
        }
        None => hasher.update(&[0]),
    }
}

/// Feeds a JSON value with object keys in sorted order, so key order does not change the fingerprint.
fn write_canonical(hasher: &mut Xxh3, value: &Value) {
    match value {
        Value::Null => hasher.update(b"n"),
        Value::Bool(flag) => hasher.update(if *flag { b"t" } else { b"f" }),
        Value::Number(number) => {
            hasher.update(b"#");
            write_str(hasher, &number.to_string());
        }
        Value::String(text) => {
            hasher.update(b"s");
            write_str(hasher, text);
        }
        Value::Array(items) => {
            hasher.update(b"[");
            hasher.update(&(items.len() as u64).to_le_bytes());
            for item in items {
                write_canonical(hasher, item);
            }
        }
        Value::Object(map) => write_object(hasher, map),
    }
}

fn write_object(hasher: &mut Xxh3, map: &Map<String, Value>) {
    hasher.update(b"{");
    hasher.update(&(map.len() as u64).to_le_bytes());
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (key, item) in entries {
        write_str(hasher, key);
        write_canonical(hasher, item);
    }
}

/// Why a stored event cannot (yet) be billed. Stored with the event, counted in `/metrics`, and listed
/// by `GET /api/v1/events?billable=false`; fixing the cause (creating the metric or the customer) and
/// rebuilding rollups bills it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillingIssue {
    /// No live billable metric reads this event code.
    UnknownCode,
    /// The subject names no customer of the organization.
    CustomerNotFound,
    /// The event names a subscription that does not exist, and no customer.
    SubscriptionNotFound,
    /// A metric cannot read the event.
    InvalidProperty {
        /// The metric that failed.
        metric: Code,
        /// What went wrong.
        problem: Unbillable,
    },
}

impl BillingIssue {
    /// Returns the stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            BillingIssue::UnknownCode => "unknown_code",
            BillingIssue::CustomerNotFound => "customer_not_found",
            BillingIssue::SubscriptionNotFound => "subscription_not_found",
            BillingIssue::InvalidProperty { .. } => "invalid_property",
        }
    }
}

impl fmt::Display for BillingIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BillingIssue::UnknownCode => f.write_str("no billable metric reads this event code"),
            BillingIssue::CustomerNotFound => {
                f.write_str("no customer has this external_customer_id")
            }
            BillingIssue::SubscriptionNotFound => {
                f.write_str("no subscription has this external_subscription_id")
            }
            BillingIssue::InvalidProperty { metric, problem } => {
                write!(f, "metric {metric}: {problem}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    fn draft(properties: Value) -> EventDraft {
        EventDraft {
            source: None,
            transaction_id: ExternalId::parse("transaction_id", "tx-1").expect("id"),
            code: Code::parse("code", "inputTokens").expect("code"),
            subject: Some(ExternalId::parse("external_customer_id", "cus").expect("id")),
            external_subscription_id: None,
            timestamp: None,
            properties: properties.as_object().cloned().unwrap_or_default(),
            precise_total_amount_cents: None,
        }
    }

    const ORG: OrganizationId = OrganizationId(Uuid::nil());

    #[test]
    fn key_order_does_not_change_the_payload() {
        let a = draft(json!({"a": 1, "b": {"x": 1, "y": 2}}));
        let b = draft(json!({"b": {"y": 2, "x": 1}, "a": 1}));
        let at = Timestamp::from_seconds(5);
        assert_eq!(
            a.prepare(ORG, IdentifierCase::None, at).payload_hash,
            b.prepare(ORG, IdentifierCase::None, at).payload_hash
        );
    }

    #[test]
    fn any_change_changes_the_payload_but_not_the_key() {
        let at = Timestamp::from_seconds(5);
        let base = draft(json!({"a": 1})).prepare(ORG, IdentifierCase::None, at);
        let other = draft(json!({"a": 2})).prepare(ORG, IdentifierCase::None, at);
        assert_eq!(base.key_hash, other.key_hash);
        assert_ne!(base.payload_hash, other.payload_hash);
        let mut timed = draft(json!({"a": 1}));
        timed.timestamp = Some(at);
        assert_ne!(
            timed.prepare(ORG, IdentifierCase::None, at).payload_hash,
            base.payload_hash
        );
        // The time of receipt is not part of the payload: a retry without timestamp is the same event.
        let later =
            draft(json!({"a": 1})).prepare(ORG, IdentifierCase::None, Timestamp::from_seconds(9));
        assert_eq!(later.payload_hash, base.payload_hash);
    }

    #[test]
    fn sources_separate_keys() {
        assert_ne!(key_hash(ORG, None, "1"), key_hash(ORG, Some("svc"), "1"));
        assert_ne!(key_hash(ORG, Some("a"), "1"), key_hash(ORG, Some("b"), "1"));
        assert_ne!(
            key_hash(ORG, Some("ab"), "c"),
            key_hash(ORG, Some("a"), "bc")
        );
    }

    #[test]
    fn case_policy_rewrites_code_and_keys_and_keeps_the_original() {
        let event =
            draft(json!({"Input-Tokens": 3})).prepare(ORG, IdentifierCase::Snake, Timestamp::EPOCH);
        assert_eq!(event.code.as_str(), "input_tokens");
        assert_eq!(event.properties.get("input_tokens"), Some(&json!(3)));
        let original: Value =
            serde_json::from_str(event.original.as_deref().expect("original")).expect("json");
        assert_eq!(
            original,
            json!({"code": "inputTokens", "properties": {"Input-Tokens": 3}})
        );
        let untouched = draft(json!({"a": 1})).prepare(ORG, IdentifierCase::None, Timestamp::EPOCH);
        assert_eq!(untouched.original, None);
    }
}
