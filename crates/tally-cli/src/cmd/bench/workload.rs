//! The benchmark's events: realistic LLM-usage events with fresh transaction ids, written straight into
//! request bodies (NDJSON for the bulk endpoint, `{"events": [...]}` for the batch endpoint) or built as
//! store events for preloading. Values are derived from the event's sequence number, so a run is
//! repeatable while its transaction ids stay unique across runs.

use std::io::Write;
use std::ops::Range;

use anyhow::Result;
use serde_json::{Map, Value};
use tally_core::ValidationErrors;
use tally_core::event::{EventDraft, NewEvent};
use tally_core::id::{Code, ExternalId};
use tally_core::organization::Organization;
use tally_core::time::Timestamp;

/// The prefix of the benchmark customers' external ids (`bench_customer_0`, `bench_customer_1`, …).
pub const CUSTOMER: &str = "bench_customer";
/// The event code, which is also the code of the sum metric the benchmark creates.
pub const CODE: &str = "bench_tokens";
/// The summed property.
pub const FIELD: &str = "tokens";
/// The property the metric groups by.
pub const GROUP: &str = "model";

const MODELS: [&str; 4] = ["gpt-4o", "gpt-4o-mini", "claude-sonnet", "llama-3-70b"];
const REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "ap-south-1"];
const OPERATIONS: [&str; 2] = ["input", "output"];
/// Returns the external id of benchmark customer `index`.
pub fn customer_id(index: u64) -> String {
    format!("{CUSTOMER}_{index}")
}

/// When benchmark events happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Live traffic: each event is timed when its request is written, minus up to a second of jitter.
    Live,
    /// A backfill: events are spread at random over this many days before the run.
    Backfill(u64),
}

/// Generates the events of one benchmark run.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Makes this run's transaction ids differ from any earlier run's.
    run: String,
    /// The run's start, in Unix milliseconds.
    now_millis: i64,
    /// How many customers the events are spread over.
    customers: u64,
    /// How events are timed.
    timing: Timing,
}

/// What one event carries, derived from its sequence number.
struct Shape {
    tokens: u64,
    model: &'static str,
    region: &'static str,
    operation: &'static str,
    millis: i64,
    customer: u64,
}

/// Returns a well-mixed 64-bit value for `seq` (SplitMix64), so neighbouring events differ.
pub fn mix(seq: u64) -> u64 {
    let mut z = seq.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Workload {
    /// Starts a run with a random run id over `customers` customers, timing events as `timing` says.
    pub fn new(now: Timestamp, customers: u64, timing: Timing) -> Self {
        Workload {
            run: format!("{:016x}", rand::random::<u64>()),
            now_millis: now.micros() / 1_000,
            customers: customers.max(1),
            timing,
        }
    }

    fn shape(&self, seq: u64) -> Shape {
        let h = mix(seq);
        let millis = match self.timing {
            Timing::Live => chrono::Utc::now().timestamp_millis() - ((h >> 32) % 1_000) as i64,
            Timing::Backfill(days) => {
                self.now_millis - ((h >> 32) % (days.max(1) * 86_400_000)) as i64
            }
        };
        Shape {
            customer: (h >> 40) % self.customers,
            tokens: 1 + h % 4_000,
            model: MODELS[((h >> 16) % MODELS.len() as u64) as usize],
            region: REGIONS[((h >> 24) % REGIONS.len() as u64) as usize],
            operation: OPERATIONS[((h >> 28) % OPERATIONS.len() as u64) as usize],
            millis,
        }
    }

    /// Returns the transaction id of event `seq`; `prefix` tells preloaded and sent events apart.
    pub fn transaction_id(&self, prefix: &str, seq: u64) -> String {
        format!("{prefix}-{}-{seq}", self.run)
    }

    fn write_event(&self, seq: u64, out: &mut Vec<u8>) -> std::io::Result<()> {
        let s = self.shape(seq);
        write!(
            out,
            r#"{{"transaction_id":"{}","external_customer_id":"{CUSTOMER}_{}","code":"{CODE}","timestamp":{}.{:03},"properties":{{"{FIELD}":{},"{GROUP}":"{}","region":"{}","operation":"{}"}}}}"#,
            self.transaction_id("http", seq),
            s.customer,
            s.millis.div_euclid(1_000),
            s.millis.rem_euclid(1_000),
            s.tokens,
            s.model,
            s.region,
            s.operation,
        )
    }

    /// Writes events `seqs` as NDJSON, one per line.
    pub fn write_ndjson(&self, seqs: Range<u64>, out: &mut Vec<u8>) -> std::io::Result<()> {
        for seq in seqs {
            self.write_event(seq, out)?;
            out.push(b'\n');
        }
        Ok(())
    }

    /// Writes events `seqs` as a Lago batch body, `{"events": [...]}`.
    pub fn write_batch(&self, seqs: Range<u64>, out: &mut Vec<u8>) -> std::io::Result<()> {
        out.extend_from_slice(br#"{"events":["#);
        let first = seqs.start;
        for seq in seqs {
            if seq != first {
                out.push(b',');
            }
            self.write_event(seq, out)?;
        }
        out.extend_from_slice(b"]}");
        Ok(())
    }

    /// Builds preloaded event `seq` as the store receives it from the server.
    pub fn new_event(
        &self,
        seq: u64,
        org: &Organization,
        received_at: Timestamp,
    ) -> Result<NewEvent> {
        let s = self.shape(seq);
        let mut properties = Map::new();
        properties.insert(FIELD.into(), Value::from(s.tokens));
        properties.insert(GROUP.into(), Value::from(s.model));
        properties.insert("region".into(), Value::from(s.region));
        properties.insert("operation".into(), Value::from(s.operation));
        let draft = EventDraft {
            source: None,
            transaction_id: ExternalId::parse(
                "transaction_id",
                &self.transaction_id("preload", seq),
            )
            .map_err(ValidationErrors::from)?,
            code: Code::parse("code", CODE).map_err(ValidationErrors::from)?,
            subject: Some(
                ExternalId::parse("external_customer_id", &customer_id(s.customer))
                    .map_err(ValidationErrors::from)?,
            ),
            external_subscription_id: None,
            timestamp: Some(Timestamp::from_micros(s.millis * 1_000)),
            properties,
            precise_total_amount_cents: None,
        };
        Ok(draft.prepare(org.id, org.identifier_case, received_at))
    }
}

/// Returns the nearest-rank percentile `per_cent` (1 to 100) of sorted values: the smallest value with
/// at least that share of values at or below it. Exact, no interpolation.
pub fn percentile<T: Copy>(sorted: &[T], per_cent: usize) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (per_cent * sorted.len())
        .div_ceil(100)
        .clamp(1, sorted.len());
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<u32> = (1..=200).collect();
        assert_eq!(percentile(&values, 50), Some(100));
        assert_eq!(percentile(&values, 99), Some(198));
        assert_eq!(percentile(&values, 100), Some(200));
        assert_eq!(percentile(&[7u32], 99), Some(7));
        assert_eq!(percentile::<u32>(&[], 50), None);
    }

    #[test]
    fn bodies_are_valid_json_with_unique_ids() {
        let workload = Workload::new(
            Timestamp::from_seconds(1_767_225_600),
            10,
            Timing::Backfill(30),
        );
        let mut ndjson = Vec::new();
        workload.write_ndjson(0..3, &mut ndjson).expect("write");
        let lines: Vec<serde_json::Value> = ndjson
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("json line"))
            .collect();
        assert_eq!(lines.len(), 3);
        assert_ne!(lines[0]["transaction_id"], lines[1]["transaction_id"]);
        assert!(lines[0]["properties"][FIELD].is_u64());
        let mut batch = Vec::new();
        workload.write_batch(5..8, &mut batch).expect("write");
        let batch: serde_json::Value = serde_json::from_slice(&batch).expect("json batch");
        assert_eq!(batch["events"].as_array().map(Vec::len), Some(3));
        let ts = batch["events"][0]["timestamp"].to_string();
        let seconds: f64 = ts.parse().expect("number");
        assert!(seconds <= 1_767_225_600.0 && seconds > 1_767_225_600.0 - 31.0 * 86_400.0);
    }
}
