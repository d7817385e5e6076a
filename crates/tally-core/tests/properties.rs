//! Property tests of tally's pure domain, each against a naive reference written here.
//!
//! Nothing below computes an expected value by calling the code under test: aggregates are redone in
//! exact integer arithmetic (micro-units and microseconds in `i128`), windows are found by scanning
//! every minute with chrono-tz, range decompositions by classifying every minute of the range, case
//! conversions by joining word lists by hand. Input spaces are kept small so the file runs in seconds.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::OnceLock;

use chrono::{NaiveDateTime, NaiveTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use uuid::Uuid;

use tally_core::Timestamp;
use tally_core::aggregation::{AggState, DistinctEvent, divide, unique_count};
use tally_core::case::IdentifierCase;
use tally_core::event::EventDraft;
use tally_core::id::{Code, ExternalId, OrganizationId};
use tally_core::metric::{AggregationType, Operation, Rounding, RoundingFunction};
use tally_core::window::{self, Source, Span, WindowSize};

const SECOND: i64 = 1_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// A small deterministic generator (SplitMix64) for shuffles and merge orders drawn from one seed.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

fn ts(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros)
}

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).expect("decimal")
}

/// `num / den` rounded to an integer, half to even (the reference for 12-place divisions).
fn div_half_even(num: i128, den: i128) -> i128 {
    assert!(den > 0);
    let (q, r) = (num.div_euclid(den), num.rem_euclid(den));
    match (2 * r).cmp(&den) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal if q.rem_euclid(2) == 0 => q,
        std::cmp::Ordering::Equal => q + 1,
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Aggregation states
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Ev {
    /// Event time, microseconds.
    at: i64,
    /// Ingest sequence (the index).
    seq: i64,
    value: Decimal,
    /// The value × 10^6, exactly.
    micro: i128,
}

/// A decimal with up to 6 places, possibly negative, |v| ≤ 10^7.
fn small_decimal() -> impl Strategy<Value = Decimal> {
    (-10_000_000i64..=10_000_000, 0u32..=6).prop_map(|(m, s)| Decimal::new(m, s))
}

fn micro_units(value: Decimal) -> i128 {
    assert!(value.scale() <= 6);
    value.mantissa() * 10i128.pow(6 - value.scale())
}

fn agg_events() -> impl Strategy<Value = Vec<Ev>> {
    let one = (
        // Mostly spread over 100 000 s, sometimes crowded into a few seconds so times tie.
        prop_oneof![3 => 0i64..100_000, 1 => 0i64..3],
        prop_oneof![Just(0i64), 0i64..SECOND],
        small_decimal(),
    );
    prop::collection::vec(one, 0..40).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (s, us, value))| Ev {
                at: s * SECOND + us,
                seq: i as i64,
                value,
                micro: micro_units(value),
            })
            .collect()
    })
}

fn origin() -> impl Strategy<Value = i64> {
    (0i64..200_000, 0i64..SECOND).prop_map(|(s, us)| s * SECOND + us)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Folding events into states split over buckets with random origins, added and merged in random
    /// orders, gives exactly the naive count, sum, min, max, average, latest and weighted sum.
    #[test]
    fn aggregation_states_match_naive_references(
        events in agg_events(),
        origins in prop::collection::vec(origin(), 1..6),
        final_origin in origin(),
        seed in any::<u64>(),
        from_pad in 0i64..1_000 * SECOND,
        to_pad in 1i64..1_000 * SECOND,
        initial in small_decimal(),
    ) {
        let mut rng = Mix(seed);
        let mut states: Vec<AggState> = origins.iter().map(|o| AggState::new(ts(*o))).collect();
        states.push(AggState::new(ts(final_origin)));
        let mut order: Vec<usize> = (0..events.len()).collect();
        rng.shuffle(&mut order);
        for i in order {
            let e = &events[i];
            let bucket = rng.below(states.len());
            states[bucket].add(ts(e.at), e.seq, Some(e.value)).expect("no overflow");
        }
        // Merge in a random tree: any state into any other.
        while states.len() > 1 {
            let taken = states.swap_remove(rng.below(states.len()));
            let into = rng.below(states.len());
            states[into].merge(&taken).expect("no overflow");
        }
        let state = states.pop().expect("one state");

        let min_at = events.iter().map(|e| e.at).min().unwrap_or(50_000 * SECOND);
        let max_at = events.iter().map(|e| e.at).max().unwrap_or(50_000 * SECOND);
        let (from, to) = (min_at - from_pad, max_at + to_pad);
        let span = (ts(from), ts(to));
        let units = |agg| state.units(agg, span, initial);

        // Naive time-weighted sum: walk the events by time, integrating the running total.
        let mut sorted = events.clone();
        sorted.sort_by_key(|e| e.at);
        let mut running = micro_units(initial);
        let mut previous = from;
        let mut area: i128 = 0; // micro-units × microseconds
        for e in &sorted {
            area += running * i128::from(e.at - previous);
            running += e.micro;
            previous = e.at;
        }
        area += running * i128::from(to - previous);
        let weighted = div_half_even(area * 1_000_000, i128::from(to - from));
        prop_assert_eq!(
            units(AggregationType::WeightedSum),
            Some(Decimal::from_i128_with_scale(weighted, 12))
        );

        prop_assert_eq!(state.count, events.len() as i64);
        if events.is_empty() {
            prop_assert!(state.is_empty());
            for agg in [AggregationType::Count, AggregationType::Sum, AggregationType::Min,
                        AggregationType::Max, AggregationType::Avg, AggregationType::Latest] {
                prop_assert_eq!(units(agg), None);
            }
            return Ok(());
        }
        let sum: i128 = events.iter().map(|e| e.micro).sum();
        let min = events.iter().map(|e| e.micro).min().expect("events");
        let max = events.iter().map(|e| e.micro).max().expect("events");
        let latest = events.iter().max_by_key(|e| (e.at, e.seq)).expect("events");
        let avg = div_half_even(sum * 1_000_000, events.len() as i128);
        let micro = |v: i128| Some(Decimal::from_i128_with_scale(v, 6));

        prop_assert_eq!(units(AggregationType::Count), Some(Decimal::from(events.len())));
        prop_assert_eq!(units(AggregationType::Sum), micro(sum));
        prop_assert_eq!(units(AggregationType::Min), micro(min));
        prop_assert_eq!(units(AggregationType::Max), micro(max));
        prop_assert_eq!(units(AggregationType::Avg), Some(Decimal::from_i128_with_scale(avg, 12)));
        prop_assert_eq!(units(AggregationType::Latest), Some(latest.value));
        let got = state.latest.expect("latest");
        prop_assert_eq!((got.at, got.seq), (ts(latest.at), latest.seq));
        prop_assert_eq!(units(AggregationType::UniqueCount), None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `divide` rounds the exact quotient once, to 12 places, half to even, also when the quotient
    /// has more digits than a decimal holds. Quotients are drawn at, just below and just above a
    /// 12-place midpoint, where rounding twice goes wrong.
    #[test]
    fn divide_rounds_the_exact_quotient_once(
        divisor in prop_oneof![1i128..1_000, 1i128..700_000_000],
        divisor_scale in 0u32..=6,
        // Up to 10^20, so that the quotient (up to 10^8, with 12 places) fills a decimal.
        quotient in prop_oneof![0i128..1_000, 0i128..100_000_000_000_000_000_000],
        near in 0u8..4,
        random_remainder in any::<u64>(),
        negative in any::<bool>(),
    ) {
        // numerator / divisor = (quotient + remainder / divisor) / 10^12
        let remainder = match near {
            0 => divisor / 2,
            1 => divisor / 2 + 1,
            2 => (divisor - 1) / 2,
            _ => i128::from(random_remainder) % divisor,
        }
        .min(divisor - 1);
        let sign = if negative { -1 } else { 1 };
        let numerator = sign * (quotient * divisor + remainder);
        let want = sign * div_half_even(quotient * divisor + remainder, divisor);
        let got = divide(
            Decimal::from_i128_with_scale(numerator, 12 + divisor_scale),
            Decimal::from_i128_with_scale(divisor, divisor_scale),
        );
        prop_assert_eq!(got, Some(Decimal::from_i128_with_scale(want, 12)));
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Unique counts
// ---------------------------------------------------------------------------------------------

fn distinct_events() -> impl Strategy<Value = Vec<DistinctEvent>> {
    let one = (
        0i64..20,
        prop::sample::select(vec!["a", "b", "c", "d", "e"]),
        prop_oneof![2 => Just(Operation::Add), 1 => Just(Operation::Remove)],
    );
    prop::collection::vec(one, 0..30).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (s, value, operation))| DistinctEvent {
                at: Timestamp::from_seconds(s),
                seq: i as i64,
                value: value.to_string(),
                operation,
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Non-recurring counts every value added at least once; recurring counts the values whose last
    /// operation by (time, seq) is an add; neither depends on the order events arrive in.
    #[test]
    fn unique_counts_match_naive_references(events in distinct_events(), seed in any::<u64>()) {
        let added: BTreeSet<&str> = events
            .iter()
            .filter(|e| e.operation == Operation::Add)
            .map(|e| e.value.as_str())
            .collect();
        let values: BTreeSet<&str> = events.iter().map(|e| e.value.as_str()).collect();
        let still_added = values
            .iter()
            .filter(|v| {
                let last = events
                    .iter()
                    .filter(|e| e.value == **v)
                    .max_by_key(|e| (e.at, e.seq))
                    .expect("value seen");
                last.operation == Operation::Add
            })
            .count();

        let mut shuffled = events.clone();
        Mix(seed).shuffle(&mut shuffled);
        let reversed: Vec<DistinctEvent> = events.iter().rev().cloned().collect();
        for input in [&events, &shuffled, &reversed] {
            prop_assert_eq!(unique_count(input.iter(), false), added.len() as u64);
            prop_assert_eq!(unique_count(input.iter(), true), still_added as u64);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Windows
// ---------------------------------------------------------------------------------------------

const ZONES: [&str; 5] = [
    "UTC",
    "Europe/Paris",
    "Asia/Kolkata",
    "America/St_Johns",
    "Australia/Lord_Howe",
];

/// 2012-01-01 and 2037-01-01 (UTC), in microseconds. Since 2012 none of these zones changes its
/// clocks at midnight, so a day boundary is simply local midnight.
const FROM_2012: i64 = 1_325_376_000 * SECOND;
const TO_2037: i64 = 2_114_380_800 * SECOND;

fn zone(index: usize) -> Tz {
    ZONES[index].parse().expect("zone")
}

fn offset_seconds(tz: Tz, micros: i64) -> i32 {
    let utc = Utc.timestamp_micros(micros).single().expect("instant");
    tz.offset_from_utc_datetime(&utc.naive_utc())
        .fix()
        .local_minus_utc()
}

fn local(tz: Tz, micros: i64) -> NaiveDateTime {
    Utc.timestamp_micros(micros)
        .single()
        .expect("instant")
        .with_timezone(&tz)
        .naive_local()
}

/// Every instant from 2012 to 2037 at which each zone's UTC offset changes (found by sampling days,
/// then bisecting minutes), so that ranges can be drawn around them.
fn transitions() -> &'static Vec<Vec<i64>> {
    static TRANSITIONS: OnceLock<Vec<Vec<i64>>> = OnceLock::new();
    TRANSITIONS.get_or_init(|| {
        (0..ZONES.len())
            .map(|index| {
                let tz = zone(index);
                let mut found = Vec::new();
                let mut day = FROM_2012;
                while day < TO_2037 {
                    if offset_seconds(tz, day) != offset_seconds(tz, day + DAY) {
                        let (mut lo, mut hi) = (day / MINUTE, (day + DAY) / MINUTE);
                        let before = offset_seconds(tz, day);
                        while hi - lo > 1 {
                            let mid = (lo + hi) / 2;
                            if offset_seconds(tz, mid * MINUTE) == before {
                                lo = mid;
                            } else {
                                hi = mid;
                            }
                        }
                        found.push(hi * MINUTE);
                    }
                    day += DAY;
                }
                found
            })
            .collect()
    })
}

/// Tells whether a window of `size` starts at `at` in `tz`: when the local clock reads a whole
/// minute / hour / midnight, or when it jumps into a later minute / hour / date without reading it.
fn is_boundary(size: WindowSize, tz: Tz, at: i64) -> bool {
    let now = local(tz, at);
    let before = local(tz, at - 1);
    let whole_second = now.nanosecond() == 0;
    match size {
        WindowSize::Minute => {
            (now.second() == 0 && whole_second)
                || (now.date(), now.hour(), now.minute())
                    > (before.date(), before.hour(), before.minute())
        }
        WindowSize::Hour => {
            (now.minute() == 0 && now.second() == 0 && whole_second)
                || (now.date(), now.hour()) > (before.date(), before.hour())
        }
        WindowSize::Day => now.time() == NaiveTime::MIN || now.date() > before.date(),
    }
}

/// The naive windows: cut `[from, to)` at every minute that starts a window. Every offset of these
/// zones is a whole number of minutes, so no boundary falls between two UTC minutes.
fn naive_windows(from: i64, to: i64, size: WindowSize, tz: Tz) -> Vec<(i64, i64)> {
    if from >= to {
        return vec![];
    }
    let mut cuts = vec![from];
    let mut minute = (from.div_euclid(MINUTE) + 1) * MINUTE;
    while minute < to {
        if is_boundary(size, tz, minute) {
            cuts.push(minute);
        }
        minute += MINUTE;
    }
    cuts.push(to);
    cuts.windows(2).map(|w| (w[0], w[1])).collect()
}

#[derive(Debug, Clone)]
struct WindowCase {
    zone: usize,
    size: WindowSize,
    from: i64,
    to: i64,
    probes: Vec<i64>,
}

fn window_case() -> impl Strategy<Value = WindowCase> {
    (
        0..ZONES.len(),
        prop_oneof![
            Just(WindowSize::Minute),
            Just(WindowSize::Hour),
            Just(WindowSize::Day)
        ],
        any::<bool>(),
        any::<prop::sample::Index>(),
        FROM_2012..TO_2037,
        any::<u64>(),
        any::<u64>(),
        0u8..3,
        prop::collection::vec(any::<u64>(), 8),
    )
        .prop_map(
            |(zone, size, near_transition, pick, uniform, lead, length, align, raw_probes)| {
                let changes = &transitions()[zone];
                let anchor = if near_transition && !changes.is_empty() {
                    changes[pick.index(changes.len())]
                } else {
                    uniform
                };
                let longest = match size {
                    WindowSize::Minute => 6 * HOUR,
                    WindowSize::Hour => 3 * DAY,
                    WindowSize::Day => 5 * DAY,
                } as u64;
                let mut from = anchor - (lead % longest) as i64;
                from -= match align {
                    1 => from.rem_euclid(MINUTE),
                    2 => from.rem_euclid(HOUR),
                    _ => 0,
                };
                let to = from + (length % longest) as i64;
                let reach = (to - from + 2 * MINUTE) as u64;
                let probes = raw_probes
                    .iter()
                    .map(|p| from - MINUTE + (p % reach) as i64)
                    .collect();
                WindowCase {
                    zone,
                    size,
                    from,
                    to,
                    probes,
                }
            },
        )
}

fn render(windows: &[(i64, i64)]) -> Vec<String> {
    windows
        .iter()
        .map(|(a, b)| format!("{} .. {}", ts(*a), ts(*b)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `windows` cuts a range into contiguous windows covering it exactly, cut exactly where the
    /// local clock starts a minute, hour or day; `window_index` finds the window of any instant.
    #[test]
    fn windows_follow_local_boundaries(case in window_case()) {
        let tz = zone(case.zone);
        let got: Vec<(i64, i64)> = window::windows(ts(case.from), ts(case.to), case.size, tz)
            .iter()
            .map(|(a, b)| (a.micros(), b.micros()))
            .collect();
        if case.from < case.to {
            prop_assert_eq!(got.first().map(|w| w.0), Some(case.from));
            prop_assert_eq!(got.last().map(|w| w.1), Some(case.to));
        }
        for pair in got.windows(2) {
            prop_assert_eq!(pair[0].1, pair[1].0, "windows are contiguous");
        }
        for (a, b) in &got {
            prop_assert!(a < b, "windows are not empty");
        }
        let want = naive_windows(case.from, case.to, case.size, tz);
        prop_assert_eq!(render(&got), render(&want), "{} {:?}", ZONES[case.zone], case.size);

        let stamps: Vec<(Timestamp, Timestamp)> =
            got.iter().map(|(a, b)| (ts(*a), ts(*b))).collect();
        let mut probes = case.probes.clone();
        probes.extend(got.iter().flat_map(|(a, b)| [*a, *b - 1, *b]));
        for at in probes {
            let naive = got.iter().position(|(a, b)| *a <= at && at < *b);
            prop_assert_eq!(window::window_index(&stamps, ts(at)), naive, "at {}", ts(at));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Range decomposition
// ---------------------------------------------------------------------------------------------

/// 2026-01-01T00:00:00Z.
const BASE: i64 = 1_767_225_600 * SECOND;

/// An instant, often on a whole minute or hour.
fn instant() -> impl Strategy<Value = i64> {
    (
        0i64..72,
        prop_oneof![Just(0i64), 0i64..60],
        prop_oneof![Just(0i64), 0i64..MINUTE],
    )
        .prop_map(|(h, m, us)| BASE + h * HOUR + m * MINUTE + us)
}

/// A length, often whole minutes or hours, from nothing to two days.
fn length() -> impl Strategy<Value = i64> {
    (
        prop_oneof![Just(0i64), 0i64..4, 0i64..50],
        prop_oneof![Just(0i64), 0i64..60],
        prop_oneof![Just(0i64), 0i64..MINUTE],
    )
        .prop_map(|(h, m, us)| h * HOUR + m * MINUTE + us)
}

/// The naive decomposition: every instant is read from the hour rollup when its whole UTC hour lies
/// in its window, else from the minute rollup when its whole minute does, else from raw events;
/// maximal runs of one source form the spans.
fn naive_spans(windows: &[(i64, i64)]) -> Vec<(Source, i64, i64)> {
    let mut spans: Vec<(Source, i64, i64)> = Vec::new();
    for &(from, to) in windows {
        let mut at = from;
        while at < to {
            let next = ((at.div_euclid(MINUTE) + 1) * MINUTE).min(to);
            let hour = at.div_euclid(HOUR) * HOUR;
            let minute = at.div_euclid(MINUTE) * MINUTE;
            let source = if from <= hour && hour + HOUR <= to {
                Source::Hour
            } else if from <= minute && minute + MINUTE <= to {
                Source::Minute
            } else {
                Source::Raw
            };
            match spans.last_mut() {
                Some(last) if last.0 == source && last.2 == at => last.2 = next,
                _ => spans.push((source, at, next)),
            }
            at = next;
        }
    }
    spans
}

fn plain(spans: &[Span]) -> Vec<(Source, i64, i64)> {
    spans
        .iter()
        .map(|s| (s.source, s.from.micros(), s.to.micros()))
        .collect()
}

/// Checks what every decomposition of contiguous `windows` promises: contiguous spans covering
/// them, rollup spans aligned to their buckets, and raw reads only where no whole minute of a window
/// fits: each raw piece of a window touches the window's edge and holds no whole minute (so it is
/// under a minute, or under two when the window holds no whole minute at all).
fn check_spans(spans: &[(Source, i64, i64)], windows: &[(i64, i64)]) -> Result<(), TestCaseError> {
    let from = windows.first().map_or(0, |w| w.0);
    let to = windows.last().map_or(0, |w| w.1);
    if from >= to {
        prop_assert!(spans.is_empty());
        return Ok(());
    }
    prop_assert_eq!(spans.first().map(|s| s.1), Some(from));
    prop_assert_eq!(spans.last().map(|s| s.2), Some(to));
    for pair in spans.windows(2) {
        prop_assert_eq!(pair[0].2, pair[1].1, "spans are contiguous");
        prop_assert_ne!(
            pair[0].0,
            pair[1].0,
            "adjacent spans of one source are merged"
        );
    }
    for &(source, a, b) in spans {
        prop_assert!(a < b);
        match source {
            Source::Hour => prop_assert!(a % HOUR == 0 && b % HOUR == 0, "hour span aligned"),
            Source::Minute => {
                prop_assert!(a % MINUTE == 0 && b % MINUTE == 0, "minute span aligned")
            }
            Source::Raw => {
                for &(wa, wb) in windows {
                    let (pa, pb) = (a.max(wa), b.min(wb));
                    if pa >= pb {
                        continue;
                    }
                    let first_minute = (pa + MINUTE - 1).div_euclid(MINUTE) * MINUTE;
                    prop_assert!(
                        first_minute + MINUTE > pb,
                        "raw piece holds no whole minute"
                    );
                    prop_assert!(pb - pa < 2 * MINUTE);
                    prop_assert!(pa == wa || pb == wb, "raw piece at a window edge");
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `decompose` reads whole UTC hours from hour rollups, whole minutes around them from minute
    /// rollups, and only sub-minute edges from raw events.
    #[test]
    fn decompose_matches_naive_classification(from in instant(), len in length()) {
        let to = from + len;
        let spans = plain(&window::decompose(ts(from), ts(to)));
        let whole = if from < to { vec![(from, to)] } else { vec![] };
        check_spans(&spans, &whole)?;
        for (i, span) in spans.iter().enumerate() {
            if span.0 == Source::Raw {
                prop_assert!(i == 0 || i == spans.len() - 1, "raw spans only at the ends");
            }
        }
        prop_assert_eq!(spans, naive_spans(&[(from, to)]));
    }

    /// `decompose_windows` never lets an hour or minute bucket straddle a window boundary.
    #[test]
    fn decompose_windows_keeps_buckets_inside_windows(
        start in instant(),
        lengths in prop::collection::vec(length().prop_map(|l| l.max(1)), 1..6),
        zone_index in 0..ZONES.len(),
        day in any::<bool>(),
    ) {
        let mut cuts = vec![start];
        for l in &lengths {
            cuts.push(cuts.last().expect("start") + l);
        }
        let generated: Vec<(i64, i64)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
        let (from, to) = (start, *cuts.last().expect("end"));
        let size = if day { WindowSize::Day } else { WindowSize::Hour };
        let zoned: Vec<(i64, i64)> = window::windows(ts(from), ts(to), size, zone(zone_index))
            .iter()
            .map(|(a, b)| (a.micros(), b.micros()))
            .collect();
        for windows in [generated, zoned] {
            let stamps: Vec<(Timestamp, Timestamp)> =
                windows.iter().map(|(a, b)| (ts(*a), ts(*b))).collect();
            let spans = plain(&window::decompose_windows(&stamps));
            check_spans(&spans, &windows)?;
            for &(source, a, b) in &spans {
                let width = source.bucket_seconds() * SECOND;
                if width == 0 {
                    continue;
                }
                let mut bucket = a;
                while bucket < b {
                    prop_assert!(
                        windows.iter().any(|(wa, wb)| *wa <= bucket && bucket + width <= *wb),
                        "{:?} bucket at {} straddles a window boundary", source, ts(bucket)
                    );
                    bucket += width;
                }
            }
            prop_assert_eq!(spans, naive_spans(&windows));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Case conversion
// ---------------------------------------------------------------------------------------------

const STYLES: [IdentifierCase; 6] = [
    IdentifierCase::None,
    IdentifierCase::Snake,
    IdentifierCase::Camel,
    IdentifierCase::Kebab,
    IdentifierCase::Lower,
    IdentifierCase::Upper,
];

/// Identifiers as clients write them: arbitrary runs of letters, digits and separators, or words
/// in mixed styles joined by mixed separators.
fn identifier() -> impl Strategy<Value = String> {
    let word = (
        "[a-z]{1,5}[0-9]?",
        0u8..3,
        prop::sample::select(vec!["", "_", "-", ".", " ", "__"]),
    );
    prop_oneof![
        "[a-zA-Z0-9_. éÉ-]{0,16}",
        prop::collection::vec(word, 1..5).prop_map(|words| {
            words
                .into_iter()
                .map(|(w, style, separator)| {
                    let w = match style {
                        0 => w,
                        1 => capitalized(&w),
                        _ => w.to_uppercase(),
                    };
                    format!("{w}{separator}")
                })
                .collect()
        }),
    ]
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Converting an identifier a second time changes nothing, in every style.
    #[test]
    fn case_conversion_is_idempotent(text in identifier()) {
        for style in STYLES {
            let once = style.apply(&text).into_owned();
            let twice = style.apply(&once).into_owned();
            prop_assert_eq!(&twice, &once, "{} of {:?}", style, text);
        }
    }

    /// One list of words spelt in snake, camel, Pascal, kebab, Title-Kebab or SCREAMING_SNAKE case
    /// meets in one spelling in each style: the words joined by hand.
    #[test]
    fn spellings_of_one_word_list_meet(words in prop::collection::vec("[a-z]{2,6}[0-9]?", 1..5)) {
        let capitals: Vec<String> = words.iter().map(|w| capitalized(w)).collect();
        let snake = words.join("_");
        let kebab = words.join("-");
        let camel = format!("{}{}", words[0], capitals[1..].concat());
        let spellings = [
            snake.clone(),
            kebab.clone(),
            camel.clone(),
            capitals.concat(),
            capitals.join("-"),
            snake.to_uppercase(),
        ];
        for (style, want) in [
            (IdentifierCase::Snake, &snake),
            (IdentifierCase::Kebab, &kebab),
            (IdentifierCase::Camel, &camel),
        ] {
            for spelling in &spellings {
                prop_assert_eq!(&style.apply(spelling), want, "{} of {}", style, spelling);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Event fingerprints
// ---------------------------------------------------------------------------------------------

/// A JSON number written as `mantissa × 10^-scale` (serde_json keeps the text exactly).
fn number(mantissa: i64, scale: u32) -> Value {
    serde_json::from_str(&Decimal::new(mantissa, scale).to_string()).expect("number")
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1_000i64..1_000, 0u32..4).prop_map(|(m, s)| number(m, s)),
        "[a-c]{0,3}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-d]{1,2}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn properties() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-eA-E_]{1,3}", json(), 0..5)
        .prop_map(|m| m.into_iter().collect())
}

fn external(text: &str) -> ExternalId {
    ExternalId::parse("id", text).expect("id")
}

fn draft() -> impl Strategy<Value = EventDraft> {
    (
        prop::option::of("[a-c]{0,2}"),
        "[a-c0-9]{1,3}",
        "[a-zA-Z_-]{1,6}",
        prop::option::of("[a-c]{1,2}"),
        prop::option::of("[a-c]{1,2}"),
        prop::option::of(0i64..10 * SECOND),
        properties(),
        prop::option::of(small_decimal()),
    )
        .prop_map(
            |(source, transaction_id, code, subject, subscription, at, properties, amount)| {
                EventDraft {
                    source,
                    transaction_id: external(&transaction_id),
                    code: Code::parse("code", &code).expect("code"),
                    subject: subject.as_deref().map(external),
                    external_subscription_id: subscription.as_deref().map(external),
                    timestamp: at.map(ts),
                    properties,
                    precise_total_amount_cents: amount,
                }
            },
        )
}

/// Rebuilds a JSON value with the keys of every object, at every level, in a shuffled order.
fn reorder(value: &Value, rng: &mut Mix) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            rng.shuffle(&mut entries);
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), reorder(v, rng)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| reorder(v, rng)).collect()),
        other => other.clone(),
    }
}

fn count_scalars(value: &Value) -> usize {
    match value {
        Value::Object(map) => map.values().map(count_scalars).sum(),
        Value::Array(items) => items.iter().map(count_scalars).sum(),
        _ => 1,
    }
}

/// Changes the `n`-th scalar (depth first): to another value of its type, or to another type.
fn change_scalar(value: &mut Value, n: &mut usize, retype: bool) -> bool {
    match value {
        Value::Object(map) => map.values_mut().any(|v| change_scalar(v, n, retype)),
        Value::Array(items) => items.iter_mut().any(|v| change_scalar(v, n, retype)),
        _ if *n > 0 => {
            *n -= 1;
            false
        }
        scalar => {
            *scalar = match (&*scalar, retype) {
                (Value::Null, false) => Value::Bool(false),
                (Value::Bool(b), false) => Value::Bool(!b),
                (Value::Number(x), false) => {
                    let d = dec(&x.to_string());
                    let bumped = d + Decimal::new(1, d.scale());
                    serde_json::from_str(&bumped.to_string()).expect("number")
                }
                (Value::String(s), false) => Value::String(format!("{s}x")),
                (Value::String(s), true) => serde_json::from_str(s).unwrap_or(Value::Null),
                (other, true) => Value::String(other.to_string()),
                (container, false) => container.clone(),
            };
            true
        }
    }
}

const ORG: OrganizationId = OrganizationId(Uuid::nil());

fn hashes(draft: &EventDraft, case: IdentifierCase) -> (i64, i64) {
    let event = draft.clone().prepare(ORG, case, ts(42 * SECOND));
    (event.key_hash, event.payload_hash)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The payload fingerprint ignores the order of object keys at every level (and the case
    /// policy), and changes when any scalar, or any other field the client sent, changes.
    #[test]
    fn payload_hash_is_canonical_and_sensitive(
        draft in draft(),
        seed in any::<u64>(),
        pick in any::<prop::sample::Index>(),
        retype in any::<bool>(),
    ) {
        let (key, payload) = hashes(&draft, IdentifierCase::None);
        for case in STYLES {
            prop_assert_eq!(hashes(&draft, case), (key, payload));
        }
        let later = draft.clone().prepare(ORG, IdentifierCase::None, ts(99 * SECOND));
        prop_assert_eq!(later.payload_hash, payload);

        let mut rng = Mix(seed);
        let mut shuffled = draft.clone();
        let Value::Object(map) = reorder(&Value::Object(draft.properties.clone()), &mut rng) else {
            unreachable!("an object stays an object");
        };
        shuffled.properties = map;
        prop_assert_eq!(hashes(&shuffled, IdentifierCase::None), (key, payload));

        let scalars = count_scalars(&Value::Object(draft.properties.clone()));
        if scalars > 0 {
            let mut changed = draft.clone();
            let mut root = Value::Object(changed.properties);
            let mut n = pick.index(scalars);
            prop_assert!(change_scalar(&mut root, &mut n, retype));
            let Value::Object(map) = root else { unreachable!("an object stays an object") };
            prop_assert_ne!(&map, &draft.properties);
            changed.properties = map;
            let (changed_key, changed_payload) = hashes(&changed, IdentifierCase::None);
            prop_assert_eq!(changed_key, key);
            prop_assert_ne!(changed_payload, payload);
        }

        let mut variants = Vec::new();
        let mut v = draft.clone();
        v.code = Code::parse("code", &format!("{}x", draft.code)).expect("code");
        variants.push(v);
        let mut v = draft.clone();
        v.subject = match &draft.subject {
            Some(s) => Some(external(&format!("{s}x"))),
            None => Some(external("x")),
        };
        variants.push(v);
        let mut v = draft.clone();
        v.external_subscription_id = match &draft.external_subscription_id {
            Some(_) => None,
            None => Some(external("x")),
        };
        variants.push(v);
        let mut v = draft.clone();
        v.timestamp = Some(ts(draft.timestamp.map_or(0, |t| t.micros() + 1)));
        variants.push(v);
        let mut v = draft.clone();
        v.precise_total_amount_cents = Some(draft.precise_total_amount_cents.map_or(Decimal::ONE, |d| d + Decimal::ONE));
        variants.push(v);
        for variant in variants {
            let (variant_key, variant_payload) = hashes(&variant, IdentifierCase::None);
            prop_assert_eq!(variant_key, key);
            prop_assert_ne!(variant_payload, payload);
        }

        // The amount is compared as a number: 1.5 and 1.50 are the same payload.
        if let Some(amount) = draft.precise_total_amount_cents {
            let mut rescaled = draft.clone();
            let mut wider = amount;
            wider.rescale(amount.scale() + 2);
            rescaled.precise_total_amount_cents = Some(wider);
            prop_assert_eq!(hashes(&rescaled, IdentifierCase::None), (key, payload));
        }
    }

    /// The key fingerprint depends on (organization, source, transaction id) and nothing else.
    #[test]
    fn key_hash_depends_only_on_the_idempotency_key(
        a in draft(),
        b in draft(),
        orgs in (0u128..2, 0u128..2),
        sources in (0usize..4, 0usize..4),
        ids in (0usize..4, 0usize..4),
    ) {
        const SOURCES: [Option<&str>; 4] = [None, Some(""), Some("a"), Some("ab")];
        const IDS: [&str; 4] = ["b", "bc", "c", "ab"];
        let mut a = a;
        let mut b = b;
        a.source = SOURCES[sources.0].map(str::to_string);
        b.source = SOURCES[sources.1].map(str::to_string);
        a.transaction_id = external(IDS[ids.0]);
        b.transaction_id = external(IDS[ids.1]);
        let key_a = a.prepare(OrganizationId(Uuid::from_u128(orgs.0)), IdentifierCase::None, ts(0)).key_hash;
        let key_b = b.prepare(OrganizationId(Uuid::from_u128(orgs.1)), IdentifierCase::None, ts(0)).key_hash;
        let same_key = orgs.0 == orgs.1 && sources.0 == sources.1 && ids.0 == ids.1;
        prop_assert_eq!(key_a == key_b, same_key);
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Pay-in-advance fees
// ---------------------------------------------------------------------------------------------

/// Three graduated tiers, `[0,10]`, `[11,30]`, `[31,…)`, with prices and flat amounts in mills
/// (thousandths of a dollar), and the charge that prices with them in advance.
fn graduated_in_advance(mills: [i64; 6]) -> tally_core::plan::Charge {
    use tally_core::charge::{ChargeModel, Tier};
    let price = |m: i64| Decimal::new(m, 3);
    let tier = |from: i64, to: Option<i64>, unit: i64, flat: i64| Tier {
        from_value: Decimal::from(from),
        to_value: to.map(Decimal::from),
        per_unit_amount: price(unit),
        flat_amount: price(flat),
    };
    tally_core::plan::Charge {
        id: tally_core::id::ChargeId(Uuid::nil()),
        metric_id: tally_core::id::MetricId(Uuid::nil()),
        metric_code: Code::parse("code", "calls").expect("code"),
        terms: tally_core::plan::ChargeTerms {
            code: "calls".into(),
            invoice_display_name: None,
            model: ChargeModel::Graduated {
                ranges: vec![
                    tier(0, Some(10), mills[0], mills[1]),
                    tier(11, Some(30), mills[2], mills[3]),
                    tier(31, None, mills[4], mills[5]),
                ],
            },
            pay_in_advance: true,
            invoiceable: true,
            prorated: false,
            min_amount_cents: 0,
        },
        filters: Vec::new(),
        taxes: Vec::new(),
    }
}

/// The price in mills of `units` whole units, unit by unit: each unit at its tier's price, each
/// tier's flat amount once reached (the first tier always).
fn naive_graduated_mills(mills: [i64; 6], units: i64) -> i128 {
    let mut total = i128::from(mills[1]);
    for unit in 1..=units {
        total += i128::from(match unit {
            1..=10 => mills[0],
            11..=30 => mills[2],
            _ => mills[4],
        });
    }
    if units > 10 {
        total += i128::from(mills[3]);
    }
    if units > 30 {
        total += i128::from(mills[5]);
    }
    total
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Events billed one by one in advance add up to the price of the period's usage, exactly, and
    /// in cents to that price rounded once: nothing is lost to per-event rounding.
    #[test]
    fn advance_fees_add_up_to_the_period_price(
        mills in proptest::array::uniform6(0i64..=2_000),
        added in proptest::collection::vec(0i64..=15, 1..25),
    ) {
        use tally_core::billing::advance::{Running, advance_fee};
        let charge = graduated_in_advance(mills);
        let usd = tally_core::currency::Currency::parse("USD").expect("USD");
        let period = tally_core::period::Period { from: ts(0), to: ts(DAY) };
        let mut running = Running::default();
        let (mut precise, mut cents) = (Decimal::ZERO, 0i64);
        for units in &added {
            let (fee, after) =
                advance_fee(&charge, None, None, &running, Decimal::from(*units), usd, period);
            prop_assert!(fee.amount_cents >= 0 && fee.precise_amount >= Decimal::ZERO);
            precise += fee.precise_amount;
            cents += fee.amount_cents;
            running = after;
        }
        let total: i64 = added.iter().sum();
        let expected = naive_graduated_mills(mills, total);
        prop_assert_eq!(precise * Decimal::from(1000), Decimal::from_i128_with_scale(expected, 0));
        prop_assert_eq!(i128::from(cents), div_half_even(expected, 10));
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-computed tables and regressions
// ---------------------------------------------------------------------------------------------

#[test]
fn rounding_matches_hand_computed_table() {
    use RoundingFunction::{Ceil, Floor, Round};
    let table: &[(RoundingFunction, i32, &str, &str)] = &[
        // Half away from zero.
        (Round, 0, "2.5", "3"),
        (Round, 0, "-2.5", "-3"),
        (Round, 0, "2.4999", "2"),
        (Round, 2, "1.005", "1.01"),
        (Round, 2, "-1.005", "-1.01"),
        (Round, 2, "1.500", "1.5"),
        (Round, 15, "0.1234567890123456", "0.123456789012346"),
        (Round, -1, "15", "20"),
        (Round, -1, "-15", "-20"),
        (Round, -1, "14.99", "10"),
        (Round, -2, "1249.9999", "1200"),
        (Round, -2, "1250", "1300"),
        (Round, -15, "500000000000000", "1000000000000000"),
        (Round, -15, "499999999999999.99", "0"),
        // Towards positive infinity; zero is never written "-0".
        (Ceil, 0, "-1.5", "-1"),
        (Ceil, 0, "-0.4", "0"),
        (Ceil, 1, "1.01", "1.1"),
        (Ceil, 2, "3", "3"),
        (Ceil, -2, "101", "200"),
        (Ceil, -2, "-199", "-100"),
        (Ceil, -3, "-999", "0"),
        // Towards negative infinity.
        (Floor, 0, "-1.5", "-2"),
        (Floor, 0, "0.999", "0"),
        (Floor, 1, "-0.01", "-0.1"),
        (Floor, 4, "1.5", "1.5"),
        (Floor, -2, "-101", "-200"),
        (Floor, -1, "9.99", "0"),
        // Units with 28 decimal places: dividing them by 10^k must not round them away first.
        (Ceil, -1, "0.0000000000000000000000000001", "10"),
        (Ceil, -1, "-0.0000000000000000000000000001", "0"),
        (Floor, -1, "-0.0000000000000000000000000001", "-10"),
        (Floor, -1, "0.0000000000000000000000000001", "0"),
        (Round, -1, "4.9999999999999999999999999999", "0"),
        (Round, -1, "-4.9999999999999999999999999999", "0"),
    ];
    for &(function, precision, input, want) in table {
        let got = Rounding {
            function,
            precision,
        }
        .apply(dec(input));
        assert_eq!(
            got.to_string(),
            want,
            "{} to {precision} places of {input}",
            function.name()
        );
    }
}

#[test]
fn lord_howe_hours_around_its_half_hour_shifts() {
    // Lord Howe moves its clocks by 30 minutes at 02:00 local: back (+11:00 → +10:30) on
    // 2026-04-05, forward (+10:30 → +11:00) on 2026-10-04.
    let tz: Tz = "Australia/Lord_Howe".parse().expect("zone");
    let at = |text: &str| Timestamp::parse_rfc3339(text).expect("time");
    let hours = |from: &str, to: &str| -> Vec<String> {
        window::windows(at(from), at(to), WindowSize::Hour, tz)
            .iter()
            .map(|(a, b)| format!("{}..{}", a.to_rfc3339_seconds(), b.to_rfc3339_seconds()))
            .collect()
    };
    // Back: 01:00 (+11) lasts until 02:00 (+10:30), 90 minutes later.
    assert_eq!(
        hours("2026-04-04T13:00:00Z", "2026-04-04T16:30:00Z"),
        vec![
            "2026-04-04T13:00:00Z..2026-04-04T14:00:00Z",
            "2026-04-04T14:00:00Z..2026-04-04T15:30:00Z",
            "2026-04-04T15:30:00Z..2026-04-04T16:30:00Z",
        ]
    );
    // Forward: 01:00 (+10:30) ends when the clock jumps to 02:30 (+11), a half hour before 03:00.
    assert_eq!(
        hours("2026-10-03T13:30:00Z", "2026-10-03T17:00:00Z"),
        vec![
            "2026-10-03T13:30:00Z..2026-10-03T14:30:00Z",
            "2026-10-03T14:30:00Z..2026-10-03T15:30:00Z",
            "2026-10-03T15:30:00Z..2026-10-03T16:00:00Z",
            "2026-10-03T16:00:00Z..2026-10-03T17:00:00Z",
        ]
    );
}

#[test]
fn camel_case_spellings_are_their_own_conversion() {
    // heck reads `pointXY` as the words `point`, `xy`: converting once must already give the
    // spelling that converting again keeps, or a metric created as `point_x_y` is not found as
    // the `pointXY` it was stored under.
    for (input, camel) in [
        ("point_x_y", "pointXy"),
        ("pointXY", "pointXy"),
        ("gpu_v2_x", "gpuV2x"),
        ("inputTokens", "inputTokens"),
    ] {
        assert_eq!(IdentifierCase::Camel.apply(input), camel, "{input}");
        assert_eq!(IdentifierCase::Camel.apply(camel), camel, "{camel}");
    }
}

#[test]
fn transitions_were_found() {
    // The window property draws ranges around these; make sure the search finds them all.
    let per_zone: BTreeMap<&str, usize> = ZONES
        .iter()
        .zip(transitions())
        .map(|(name, found)| (*name, found.len()))
        .collect();
    assert_eq!(per_zone["UTC"], 0);
    assert_eq!(per_zone["Asia/Kolkata"], 0);
    for zone in ["Europe/Paris", "America/St_Johns", "Australia/Lord_Howe"] {
        assert_eq!(
            per_zone[zone], 50,
            "{zone}: two changes a year for 25 years"
        );
    }
}

#[test]
fn weighted_sums_round_once() {
    // A running total of 10^8 over one day and 3 µs, plus one event 1 µs before the end: the exact
    // averages lie just above and just below a 12-place midpoint, 21 digits in.
    let period = 86_400_000_003;
    for (micro_units, want) in [
        (57_599_985_602, "100000000.000000666667"),
        (28_800_014_401, "100000000.000000333333"),
    ] {
        let mut state = AggState::new(ts(0));
        state
            .add(ts(period - 1), 0, Some(Decimal::new(micro_units, 6)))
            .expect("add");
        let span = (ts(0), ts(period));
        let got = state.units(AggregationType::WeightedSum, span, dec("100000000"));
        assert_eq!(got, Some(dec(want)));
    }
}
