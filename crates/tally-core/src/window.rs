//! Time windows for usage queries and how a range is read from rollups.
//!
//! Windows (`MINUTE`, `HOUR`, `DAY`) are cut in the caller's IANA time zone: a day window starts at
//! local midnight and may last 23 or 25 hours across a daylight-saving change; hour and minute windows
//! start on the local hour or minute, so in a zone offset by 5:30 an hour window starts at :30 UTC.
//! Where a daylight-saving shift is not a whole hour (Lord Howe moves its clocks by 30 minutes), the
//! hour it lands in lasts 90 minutes when the clock goes back, and is cut when the clock jumps into
//! the next local hour.
//!
//! Rollups hold per-hour and per-minute states in UTC. [`decompose`] splits any range into the hours it
//! covers whole, the minutes around them, and the sub-minute edges that only raw events can answer.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::time::{MICROS_PER_SECOND, Timestamp};

/// The size of a query window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WindowSize {
    /// One minute.
    Minute,
    /// One hour.
    Hour,
    /// One calendar day in the query's time zone.
    Day,
}

impl WindowSize {
    /// Parses `MINUTE`, `HOUR` or `DAY`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "MINUTE" => Some(WindowSize::Minute),
            "HOUR" => Some(WindowSize::Hour),
            "DAY" => Some(WindowSize::Day),
            _ => None,
        }
    }

    /// Returns the wire name.
    pub fn name(self) -> &'static str {
        match self {
            WindowSize::Minute => "MINUTE",
            WindowSize::Hour => "HOUR",
            WindowSize::Day => "DAY",
        }
    }
}

/// Returns the start of the window containing `at`.
pub fn window_start(at: Timestamp, size: WindowSize, tz: Tz) -> Timestamp {
    let local = at.to_datetime().with_timezone(&tz);
    match size {
        WindowSize::Minute | WindowSize::Hour => {
            // Truncate the local wall time, keeping the offset in force at `at`, so repeated and
            // skipped hours around a daylight-saving change are handled as the instants they are.
            let naive = local.naive_local();
            let truncated = match size {
                WindowSize::Minute => naive.with_second(0).and_then(|t| t.with_nanosecond(0)),
                _ => naive
                    .with_minute(0)
                    .and_then(|t| t.with_second(0))
                    .and_then(|t| t.with_nanosecond(0)),
            }
            .unwrap_or(naive);
            let offset = local.naive_local() - local.naive_utc();
            let start = truncated - offset;
            if tz.offset_from_utc_datetime(&start).fix() == local.offset().fix() {
                return Timestamp::from_datetime(DateTime::<Utc>::from_naive_utc_and_offset(
                    start, Utc,
                ));
            }
            // A shift of less than an hour (Lord Howe's 30 minutes) happened since the local hour
            // began: the window starts at that hour's first instant, or when the clock resumed.
            local_start(truncated, tz, at)
        }
        WindowSize::Day => local_midnight(local.date_naive().and_hms_opt(0, 0, 0), tz, at),
    }
}

/// Returns the start of the window after the one starting at `start`.
pub fn next_window(start: Timestamp, size: WindowSize, tz: Tz) -> Timestamp {
    match size {
        WindowSize::Minute => Timestamp::from_micros(start.micros() + 60 * MICROS_PER_SECOND),
        WindowSize::Hour => {
            // Step an hour, then realign: zones with :30 offsets stay on :30. An hour lengthened by a
            // 30-minute daylight-saving shift realigns to its own start, so step on by quarters.
            let hour = Timestamp::from_micros(start.micros() + 3600 * MICROS_PER_SECOND);
            (0..8)
                .map(|quarter| {
                    let probe = hour.micros() + quarter * 900 * MICROS_PER_SECOND;
                    window_start(Timestamp::from_micros(probe), size, tz)
                })
                .find(|next| *next > start)
                .unwrap_or(hour)
        }
        WindowSize::Day => {
            let local = start.to_datetime().with_timezone(&tz);
            let next_day = local
                .date_naive()
                .succ_opt()
                .and_then(|d| d.and_hms_opt(0, 0, 0));
            local_midnight(
                next_day,
                tz,
                Timestamp::from_micros(start.micros() + 86_400 * MICROS_PER_SECOND),
            )
        }
    }
}

/// Returns the last instant up to `at` whose local time is `naive`, or when the clock resumed after
/// skipping it.
fn local_start(naive: NaiveDateTime, tz: Tz, at: Timestamp) -> Timestamp {
    let instants = match tz.from_local_datetime(&naive) {
        LocalResult::Single(only) => vec![only],
        LocalResult::Ambiguous(first, second) => vec![second, first],
        LocalResult::None => vec![],
    };
    instants
        .into_iter()
        .map(|local| Timestamp::from_datetime(local.with_timezone(&Utc)))
        .find(|start| *start <= at)
        .unwrap_or_else(|| local_midnight(Some(naive), tz, at))
}

fn local_midnight(naive: Option<NaiveDateTime>, tz: Tz, fallback: Timestamp) -> Timestamp {
    let Some(naive) = naive else {
        return fallback;
    };
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(at) => Timestamp::from_datetime(at.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Timestamp::from_datetime(first.with_timezone(&Utc)),
        // Midnight skipped by a daylight-saving jump: the day starts when the clock resumes.
        LocalResult::None => {
            let mut probe = naive;
            for _ in 0..180 {
                probe += Duration::minutes(1);
                if let Some(at) = tz.from_local_datetime(&probe).earliest() {
                    return Timestamp::from_datetime(at.with_timezone(&Utc));
                }
            }
            fallback
        }
    }
}

/// Cuts `[from, to)` into consecutive windows, the first and last clipped to the range.
pub fn windows(
    from: Timestamp,
    to: Timestamp,
    size: WindowSize,
    tz: Tz,
) -> Vec<(Timestamp, Timestamp)> {
    let mut out = Vec::new();
    let mut start = from;
    while start < to {
        let aligned = window_start(start, size, tz);
        let mut end = next_window(aligned, size, tz);
        if end <= start {
            // Defensive: never loop on a zone rule that does not move forward.
            end = Timestamp::from_micros(start.micros() + 60 * MICROS_PER_SECOND);
        }
        let end = end.min(to);
        out.push((start, end));
        start = end;
    }
    out
}

/// Where a part of a range is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Hourly rollups (whole UTC hours).
    Hour,
    /// Minute rollups (whole minutes).
    Minute,
    /// Raw events (less than a minute at an edge).
    Raw,
}

impl Source {
    /// Returns the bucket width in seconds of a rollup source.
    pub fn bucket_seconds(self) -> i64 {
        match self {
            Source::Hour => 3600,
            Source::Minute => 60,
            Source::Raw => 0,
        }
    }
}

/// A part of a query range and the source that answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Where to read.
    pub source: Source,
    /// Inclusive start.
    pub from: Timestamp,
    /// Exclusive end.
    pub to: Timestamp,
}

/// Splits `[from, to)` into spans answered by hourly rollups, minute rollups and raw events, in time
/// order, with adjacent spans of one source merged.
pub fn decompose(from: Timestamp, to: Timestamp) -> Vec<Span> {
    let mut spans = Vec::new();
    split(from, to, 3600, &mut spans);
    spans
}

/// Splits each window and merges adjacent spans of one source, so every rollup bucket in a span lies
/// inside one window.
pub fn decompose_windows(windows: &[(Timestamp, Timestamp)]) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    for &(from, to) in windows {
        for span in decompose(from, to) {
            match spans.last_mut() {
                Some(last) if last.source == span.source && last.to == span.from => {
                    last.to = span.to
                }
                _ => spans.push(span),
            }
        }
    }
    spans
}

fn split(from: Timestamp, to: Timestamp, unit_seconds: i64, out: &mut Vec<Span>) {
    if from >= to {
        return;
    }
    let unit = unit_seconds * MICROS_PER_SECOND;
    let inner_from = from.micros().div_euclid(unit) * unit
        + if from.micros().rem_euclid(unit) == 0 {
            0
        } else {
            unit
        };
    let inner_to = to.micros().div_euclid(unit) * unit;
    let (source, smaller) = match unit_seconds {
        3600 => (Source::Hour, Some(60)),
        _ => (Source::Minute, None),
    };
    let edge = |a: Timestamp, b: Timestamp, out: &mut Vec<Span>| match smaller {
        Some(next) => split(a, b, next, out),
        None if a < b => out.push(Span {
            source: Source::Raw,
            from: a,
            to: b,
        }),
        None => {}
    };
    if inner_from < inner_to {
        edge(from, Timestamp::from_micros(inner_from), out);
        out.push(Span {
            source,
            from: Timestamp::from_micros(inner_from),
            to: Timestamp::from_micros(inner_to),
        });
        edge(Timestamp::from_micros(inner_to), to, out);
    } else {
        edge(from, to, out);
    }
}

/// Finds the index of the window containing `at` among sorted, contiguous windows.
pub fn window_index(windows: &[(Timestamp, Timestamp)], at: Timestamp) -> Option<usize> {
    let index = windows
        .partition_point(|(start, _)| *start <= at)
        .checked_sub(1)?;
    (at < windows[index].1).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).expect("time")
    }

    #[test]
    fn day_windows_follow_local_midnight_across_dst() {
        // Europe/Paris leaves summer time on 2026-10-25: that day lasts 25 hours.
        let tz: Tz = "Europe/Paris".parse().expect("zone");
        let ws = windows(
            ts("2026-10-24T22:00:00Z"),
            ts("2026-10-26T23:00:00Z"),
            WindowSize::Day,
            tz,
        );
        assert_eq!(
            ws,
            vec![
                (ts("2026-10-24T22:00:00Z"), ts("2026-10-25T23:00:00Z")),
                (ts("2026-10-25T23:00:00Z"), ts("2026-10-26T23:00:00Z")),
            ]
        );
    }

    #[test]
    fn hour_windows_in_half_hour_zones() {
        let tz: Tz = "Asia/Kolkata".parse().expect("zone");
        assert_eq!(
            window_start(ts("2026-01-01T10:10:00Z"), WindowSize::Hour, tz),
            ts("2026-01-01T09:30:00Z")
        );
        assert_eq!(
            window_start(ts("2026-01-01T10:10:00Z"), WindowSize::Day, tz),
            ts("2025-12-31T18:30:00Z")
        );
    }

    #[test]
    fn decomposes_into_hours_minutes_and_raw_edges() {
        let spans = decompose(ts("2026-01-01T00:59:30Z"), ts("2026-01-01T03:01:10Z"));
        let got: Vec<(Source, String, String)> = spans
            .iter()
            .map(|s| {
                (
                    s.source,
                    s.from.to_rfc3339_seconds(),
                    s.to.to_rfc3339_seconds(),
                )
            })
            .collect();
        let want = vec![
            (Source::Raw, "2026-01-01T00:59:30Z", "2026-01-01T01:00:00Z"),
            (Source::Hour, "2026-01-01T01:00:00Z", "2026-01-01T03:00:00Z"),
            (
                Source::Minute,
                "2026-01-01T03:00:00Z",
                "2026-01-01T03:01:00Z",
            ),
            (Source::Raw, "2026-01-01T03:01:00Z", "2026-01-01T03:01:10Z"),
        ];
        let want: Vec<(Source, String, String)> = want
            .into_iter()
            .map(|(s, a, b)| (s, a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn finds_windows() {
        let ws = vec![
            (Timestamp::from_seconds(0), Timestamp::from_seconds(10)),
            (Timestamp::from_seconds(10), Timestamp::from_seconds(20)),
        ];
        assert_eq!(window_index(&ws, Timestamp::from_seconds(0)), Some(0));
        assert_eq!(window_index(&ws, Timestamp::from_seconds(10)), Some(1));
        assert_eq!(window_index(&ws, Timestamp::from_seconds(20)), None);
    }
}
