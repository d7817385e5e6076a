//! The mergeable state behind count, sum, min, max, average, latest and weighted-sum aggregations.

use rust_decimal::Decimal;

use crate::metric::AggregationType;
use crate::time::Timestamp;

use super::divide;

/// The arithmetic left the range of exact decimals (about 7.9 × 10^28).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("aggregate overflow: the exact sum no longer fits in 28 digits")]
pub struct Overflow;

/// The last event seen: its time, its ingest sequence (the tie-break for equal times) and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latest {
    /// Event time.
    pub at: Timestamp,
    /// Ingest sequence; a later-ingested event wins a tie on time.
    pub seq: i64,
    /// The value.
    pub value: Decimal,
}

/// A partial aggregate over a set of events.
///
/// `weighted` is Σ value × (time − origin) in seconds, relative to `origin` so the products stay small;
/// merging shifts the other state to this state's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggState {
    /// Number of events.
    pub count: i64,
    /// Exact sum of values (zero for counts).
    pub sum: Decimal,
    /// Smallest value.
    pub min: Option<Decimal>,
    /// Largest value.
    pub max: Option<Decimal>,
    /// The last event by time.
    pub latest: Option<Latest>,
    /// Σ value × (time − origin), seconds.
    pub weighted: Decimal,
    /// The instant `weighted` is measured from.
    pub origin: Timestamp,
}

impl AggState {
    /// An empty state measuring time from `origin`.
    pub fn new(origin: Timestamp) -> Self {
        AggState {
            count: 0,
            sum: Decimal::ZERO,
            min: None,
            max: None,
            latest: None,
            weighted: Decimal::ZERO,
            origin,
        }
    }

    /// Tells whether no event was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds one event: its time, ingest sequence and value (`None` for counts).
    pub fn add(&mut self, at: Timestamp, seq: i64, value: Option<Decimal>) -> Result<(), Overflow> {
        self.count = self.count.checked_add(1).ok_or(Overflow)?;
        let Some(value) = value else {
            return Ok(());
        };
        self.sum = self.sum.checked_add(value).ok_or(Overflow)?;
        self.min = Some(self.min.map_or(value, |m| m.min(value)));
        self.max = Some(self.max.map_or(value, |m| m.max(value)));
        let candidate = Latest { at, seq, value };
        if self.latest.is_none_or(|l| (at, seq) > (l.at, l.seq)) {
            self.latest = Some(candidate);
        }
        let offset = seconds_between(self.origin, at);
        let product = value.checked_mul(offset).ok_or(Overflow)?;
        self.weighted = self.weighted.checked_add(product).ok_or(Overflow)?;
        Ok(())
    }

    /// Merges the state of a disjoint set of events into this one.
    pub fn merge(&mut self, other: &AggState) -> Result<(), Overflow> {
        if other.is_empty() {
            return Ok(());
        }
        self.count = self.count.checked_add(other.count).ok_or(Overflow)?;
        self.sum = self.sum.checked_add(other.sum).ok_or(Overflow)?;
        self.min = merge_option(self.min, other.min, Decimal::min);
        self.max = merge_option(self.max, other.max, Decimal::max);
        self.latest = match (self.latest, other.latest) {
            (Some(a), Some(b)) => Some(if (b.at, b.seq) > (a.at, a.seq) { b } else { a }),
            (a, b) => a.or(b),
        };
        let shift = seconds_between(self.origin, other.origin)
            .checked_mul(other.sum)
            .ok_or(Overflow)?;
        self.weighted = self
            .weighted
            .checked_add(other.weighted)
            .and_then(|w| w.checked_add(shift))
            .ok_or(Overflow)?;
        Ok(())
    }

    /// Returns the units of this state for an aggregation, or `None` when it has no events (or the
    /// aggregation is a unique count, which a state cannot answer).
    ///
    /// For the weighted sum, `span` is the period `[from, to)` and `initial` the running total at
    /// `from`: the result is the average of the running total over the period,
    /// (initial × D + Σ value × (to − time)) / D with D = to − from in seconds.
    pub fn units(
        &self,
        aggregation: AggregationType,
        span: (Timestamp, Timestamp),
        initial: Decimal,
    ) -> Option<Decimal> {
        match aggregation {
            AggregationType::WeightedSum => self.weighted_sum(span, initial),
            _ if self.is_empty() => None,
            AggregationType::Count => Some(Decimal::from(self.count)),
            AggregationType::Sum => Some(self.sum.normalize()),
            AggregationType::Max => self.max.map(|m| m.normalize()),
            AggregationType::Min => self.min.map(|m| m.normalize()),
            AggregationType::Avg => divide(self.sum, Decimal::from(self.count)),
            AggregationType::Latest => self.latest.map(|l| l.value.normalize()),
            AggregationType::UniqueCount => None,
        }
    }

    fn weighted_sum(
        &self,
        (from, to): (Timestamp, Timestamp),
        initial: Decimal,
    ) -> Option<Decimal> {
        let duration = seconds_between(from, to);
        if duration <= Decimal::ZERO {
            return None;
        }
        let after = seconds_between(self.origin, to).checked_mul(self.sum)?;
        let total = initial
            .checked_mul(duration)?
            .checked_add(after)?
            .checked_sub(self.weighted)?;
        divide(total, duration)
    }
}

fn merge_option(
    a: Option<Decimal>,
    b: Option<Decimal>,
    pick: fn(Decimal, Decimal) -> Decimal,
) -> Option<Decimal> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
}

/// Exact seconds from `a` to `b` (negative when `b` is earlier).
fn seconds_between(a: Timestamp, b: Timestamp) -> Decimal {
    Decimal::new(b.micros() - a.micros(), 6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).expect("decimal")
    }

    #[test]
    fn hand_computed_states() {
        // Period [0 s, 100 s); events +10 at 20 s, +5 at 60 s, -3 at 60 s (ingested later).
        let mut s = AggState::new(Timestamp::from_seconds(0));
        s.add(Timestamp::from_seconds(20), 1, Some(dec("10")))
            .expect("add");
        s.add(Timestamp::from_seconds(60), 2, Some(dec("5")))
            .expect("add");
        s.add(Timestamp::from_seconds(60), 3, Some(dec("-3")))
            .expect("add");
        let span = (Timestamp::from_seconds(0), Timestamp::from_seconds(100));
        let units = |agg| s.units(agg, span, Decimal::ZERO);
        assert_eq!(units(AggregationType::Count), Some(dec("3")));
        assert_eq!(units(AggregationType::Sum), Some(dec("12")));
        assert_eq!(units(AggregationType::Max), Some(dec("10")));
        assert_eq!(units(AggregationType::Min), Some(dec("-3")));
        assert_eq!(units(AggregationType::Avg), Some(dec("4")));
        assert_eq!(units(AggregationType::Latest), Some(dec("-3")));
        // Running total: 0 for 20 s, 10 for 40 s, 12 for 40 s → (0 + 400 + 480) / 100 = 8.8
        assert_eq!(units(AggregationType::WeightedSum), Some(dec("8.8")));
        // With 4 units already in force at the start: 8.8 + 4 = 12.8
        assert_eq!(
            s.units(AggregationType::WeightedSum, span, dec("4")),
            Some(dec("12.8"))
        );
    }

    #[test]
    fn merging_shifts_origins() {
        let mut a = AggState::new(Timestamp::from_seconds(0));
        a.add(Timestamp::from_seconds(20), 1, Some(dec("10")))
            .expect("add");
        let mut b = AggState::new(Timestamp::from_seconds(50));
        b.add(Timestamp::from_seconds(60), 2, Some(dec("2")))
            .expect("add");
        a.merge(&b).expect("merge");
        // Σ v(t − 0) = 10·20 + 2·60 = 320
        assert_eq!(a.weighted, dec("320"));
        assert_eq!(a.latest.map(|l| l.value), Some(dec("2")));
    }

    #[test]
    fn empty_states_have_no_units() {
        let s = AggState::new(Timestamp::EPOCH);
        let span = (Timestamp::EPOCH, Timestamp::from_seconds(10));
        assert_eq!(s.units(AggregationType::Sum, span, Decimal::ZERO), None);
        assert_eq!(
            s.units(AggregationType::WeightedSum, span, Decimal::ZERO),
            Some(Decimal::ZERO)
        );
    }
}
