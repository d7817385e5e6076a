//! Instants in time, kept to the microsecond, and the ways clients write them.
//!
//! Lago clients send Unix seconds (an integer, a fraction or a numeric string); CloudEvents and most other
//! fields use RFC 3339. Both become a [`Timestamp`]: microseconds since the Unix epoch, in UTC.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::Value;

/// The latest instant accepted: 9999-12-31T23:59:59Z, in seconds.
pub const MAX_UNIX_SECONDS: i64 = 253_402_300_799;

/// Microseconds in one second.
pub const MICROS_PER_SECOND: i64 = 1_000_000;

/// An instant in UTC with microsecond precision, between 1970-01-01 and 9999-12-31.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// Builds a timestamp from microseconds since the epoch.
    pub fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    /// Builds a timestamp from whole seconds since the epoch.
    pub fn from_seconds(seconds: i64) -> Self {
        Timestamp(seconds.saturating_mul(MICROS_PER_SECOND))
    }

    /// Returns microseconds since the epoch.
    pub fn micros(self) -> i64 {
        self.0
    }

    /// Returns whole seconds since the epoch, rounded down.
    pub fn seconds(self) -> i64 {
        self.0.div_euclid(MICROS_PER_SECOND)
    }

    /// Returns the instant as exact decimal seconds since the epoch.
    pub fn decimal_seconds(self) -> Decimal {
        Decimal::new(self.0, 6)
    }

    /// Converts from a chrono instant, truncating below the microsecond.
    pub fn from_datetime(at: DateTime<Utc>) -> Self {
        Timestamp(at.timestamp_micros())
    }

    /// Converts to a chrono instant.
    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_micros(self.0)
            .single()
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }

    /// Renders RFC 3339 in UTC with milliseconds (`2026-01-31T23:59:59.123Z`), as Lago renders event times.
    pub fn to_rfc3339_millis(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// Renders RFC 3339 in UTC with whole seconds (`2026-01-31T23:59:59Z`), as Lago renders most times.
    pub fn to_rfc3339_seconds(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// Renders RFC 3339 in UTC with microseconds, losing nothing.
    pub fn to_rfc3339_micros(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    /// Parses an RFC 3339 string (any offset) into a UTC timestamp in the accepted range.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let at = DateTime::parse_from_rfc3339(text.trim()).ok()?;
        let ts = Timestamp(at.with_timezone(&Utc).timestamp_micros());
        ts.in_range().then_some(ts)
    }

    /// Parses exact decimal Unix seconds, truncating below the microsecond.
    pub fn from_decimal_seconds(seconds: Decimal) -> Option<Self> {
        if seconds.is_sign_negative() || seconds > Decimal::from(MAX_UNIX_SECONDS) {
            return None;
        }
        let micros = (seconds * Decimal::from(MICROS_PER_SECOND)).trunc();
        micros.to_i64().map(Timestamp)
    }

    /// Reads a Lago event `timestamp`: Unix seconds as an integer, a fraction or a numeric string, or an
    /// RFC 3339 string. Returns `None` when the value is none of these or out of range.
    pub fn parse_lago(value: &Value) -> Option<Self> {
        match value {
            Value::Number(number) => Self::parse_unix_text(&number.to_string()),
            Value::String(text) => {
                Self::parse_unix_text(text).or_else(|| Self::parse_rfc3339(text))
            }
            _ => None,
        }
    }

    fn parse_unix_text(text: &str) -> Option<Self> {
        let text = text.trim();
        let seconds = Decimal::from_str(text)
            .or_else(|_| Decimal::from_scientific(text))
            .ok()?;
        Self::from_decimal_seconds(seconds)
    }

    fn in_range(self) -> bool {
        (0..=MAX_UNIX_SECONDS.saturating_mul(MICROS_PER_SECOND) + 999_999).contains(&self.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339_micros())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lago(value: Value) -> Option<i64> {
        Timestamp::parse_lago(&value).map(Timestamp::micros)
    }

    #[test]
    fn reads_every_lago_timestamp_form() {
        assert_eq!(lago(json!(1651240791)), Some(1_651_240_791_000_000));
        assert_eq!(lago(json!("1651240791")), Some(1_651_240_791_000_000));
        let fraction: Value = serde_json::from_str("1651240791.123456").expect("json");
        assert_eq!(lago(fraction), Some(1_651_240_791_123_456));
        assert_eq!(
            lago(json!("1651240791.1234567")),
            Some(1_651_240_791_123_456)
        );
        assert_eq!(
            lago(json!("2022-04-29T14:39:51.5+02:00")),
            Some(1_651_235_991_500_000)
        );
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        assert_eq!(lago(json!("yesterday")), None);
        assert_eq!(lago(json!(-5)), None);
        assert_eq!(lago(json!(true)), None);
        assert_eq!(lago(json!(1e30)), None);
        assert_eq!(lago(json!("10000-01-01T00:00:00Z")), None);
    }

    #[test]
    fn renders_like_lago() {
        let ts = Timestamp::from_micros(1_651_240_791_123_456);
        assert_eq!(ts.to_rfc3339_millis(), "2022-04-29T13:59:51.123Z");
        assert_eq!(ts.to_rfc3339_seconds(), "2022-04-29T13:59:51Z");
        assert_eq!(ts.to_rfc3339_micros(), "2022-04-29T13:59:51.123456Z");
    }
}
