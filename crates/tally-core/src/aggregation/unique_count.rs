//! Unique counts: the number of distinct values a property took.
//!
//! Non-recurring metrics count every value added at least once in the period: a value added then
//! removed was still used. Recurring metrics count the values whose last operation at the end of the
//! period is an add, carrying values from earlier periods.

use std::collections::HashMap;

use crate::metric::Operation;
use crate::time::Timestamp;

/// One event as a unique count sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistinctEvent {
    /// Event time.
    pub at: Timestamp,
    /// Ingest sequence, the tie-break for equal times.
    pub seq: i64,
    /// The property value, as text.
    pub value: String,
    /// Add or remove.
    pub operation: Operation,
}

/// Counts distinct values over the given events (in any order), by the rule for `recurring` metrics
/// or for the others.
pub fn unique_count<'a>(
    events: impl IntoIterator<Item = &'a DistinctEvent>,
    recurring: bool,
) -> u64 {
    if recurring {
        active_values(events).len() as u64
    } else {
        let mut added: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for e in events {
            if e.operation == Operation::Add {
                added.insert(e.value.as_str());
            }
        }
        added.len() as u64
    }
}

/// The values whose last operation (by time, then ingest order) is an add: what a recurring unique
/// count holds after these events, sorted.
pub fn active_values<'a>(events: impl IntoIterator<Item = &'a DistinctEvent>) -> Vec<String> {
    let mut last: HashMap<&str, (Timestamp, i64, Operation)> = HashMap::new();
    for e in events {
        let entry = last
            .entry(e.value.as_str())
            .or_insert((e.at, e.seq, e.operation));
        if (e.at, e.seq) >= (entry.0, entry.1) {
            *entry = (e.at, e.seq, e.operation);
        }
    }
    let mut active: Vec<String> = last
        .into_iter()
        .filter(|(_, (_, _, op))| *op == Operation::Add)
        .map(|(value, _)| value.to_owned())
        .collect();
    active.sort();
    active
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at: i64, seq: i64, value: &str, operation: Operation) -> DistinctEvent {
        DistinctEvent {
            at: Timestamp::from_seconds(at),
            seq,
            value: value.into(),
            operation,
        }
    }

    #[test]
    fn counts_by_the_documented_rules() {
        use Operation::*;
        let events = vec![
            ev(1, 1, "a", Add),
            ev(2, 2, "b", Add),
            ev(3, 3, "a", Add),
            ev(4, 4, "b", Remove),
            ev(5, 5, "c", Remove),
        ];
        assert_eq!(unique_count(&events, false), 2);
        assert_eq!(unique_count(&events, true), 1);
        // Order of arrival does not matter.
        let reversed: Vec<_> = events.iter().rev().cloned().collect();
        assert_eq!(unique_count(&reversed, true), 1);
    }
}
