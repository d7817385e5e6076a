//! Billable metrics (Lago) and meters (OpenMeter): one definition of what to count in which events.
//!
//! A metric reads events whose code equals its `event_type` (for Lago metrics the event code *is* the
//! metric code; OpenMeter meters name the CloudEvent `type` they read). From each event it takes a value
//! at `field` (not for counts) and the values of its dimensions (Lago filter keys and OpenMeter group-by
//! properties), which partition its rollups.

use std::collections::BTreeMap;
use std::fmt;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value};

use crate::case::IdentifierCase;
use crate::error::{Reason, ValidationErrors};
use crate::id::Code;
use crate::property::{PropertyPath, value_as_text};
use crate::quantity::{NumberError, parse_decimal};
use crate::time::Timestamp;

/// How a metric turns the events of a period into units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregationType {
    /// Number of events (`count_agg`, `COUNT`).
    Count,
    /// Sum of the field's values (`sum_agg`, `SUM`).
    Sum,
    /// Largest value (`max_agg`, `MAX`).
    Max,
    /// Smallest value (`MIN`, meter only).
    Min,
    /// Mean value (`AVG`, meter only).
    Avg,
    /// Number of distinct values (`unique_count_agg`, `UNIQUE_COUNT`).
    UniqueCount,
    /// Value of the last event (`latest_agg`, `LATEST`).
    Latest,
    /// Time-weighted running total (`weighted_sum_agg`, Lago only).
    WeightedSum,
}

/// Every aggregation type with its Lago and OpenMeter names (`None` where that API has no such type).
const NAMES: [(AggregationType, Option<&str>, Option<&str>); 8] = [
    (AggregationType::Count, Some("count_agg"), Some("COUNT")),
    (AggregationType::Sum, Some("sum_agg"), Some("SUM")),
    (AggregationType::Max, Some("max_agg"), Some("MAX")),
    (AggregationType::Min, None, Some("MIN")),
    (AggregationType::Avg, None, Some("AVG")),
    (
        AggregationType::UniqueCount,
        Some("unique_count_agg"),
        Some("UNIQUE_COUNT"),
    ),
    (AggregationType::Latest, Some("latest_agg"), Some("LATEST")),
    (AggregationType::WeightedSum, Some("weighted_sum_agg"), None),
];

impl AggregationType {
    /// Parses a Lago `aggregation_type`.
    pub fn from_lago(name: &str) -> Option<Self> {
        NAMES
            .iter()
            .find(|(_, lago, _)| *lago == Some(name))
            .map(|(t, _, _)| *t)
    }

    /// Parses an OpenMeter `aggregation`.
    pub fn from_openmeter(name: &str) -> Option<Self> {
        NAMES
            .iter()
            .find(|(_, _, om)| *om == Some(name))
            .map(|(t, _, _)| *t)
    }

    /// Returns the Lago name, or `None` for meter-only types.
    pub fn lago_name(self) -> Option<&'static str> {
        NAMES.iter().find(|(t, _, _)| *t == self).and_then(|n| n.1)
    }

    /// Returns the OpenMeter name, or `None` for Lago-only types.
    pub fn openmeter_name(self) -> Option<&'static str> {
        NAMES.iter().find(|(t, _, _)| *t == self).and_then(|n| n.2)
    }

    /// Returns a stable name for storage (the Lago name, else the OpenMeter one).
    pub fn storage_name(self) -> &'static str {
        self.lago_name()
            .or(self.openmeter_name())
            .unwrap_or("count_agg")
    }

    /// Parses a name written by [`AggregationType::storage_name`].
    pub fn from_storage(name: &str) -> Option<Self> {
        Self::from_lago(name).or_else(|| Self::from_openmeter(name))
    }

    /// Tells whether the metric needs a property to read (everything but counts).
    pub fn needs_field(self) -> bool {
        self != AggregationType::Count
    }

    /// Tells whether the field must hold a number (everything but counts and unique counts).
    pub fn needs_number(self) -> bool {
        !matches!(self, AggregationType::Count | AggregationType::UniqueCount)
    }

    /// Tells whether units may carry over from one billing period to the next (Lago `recurring`).
    pub fn can_recur(self) -> bool {
        matches!(
            self,
            AggregationType::Sum | AggregationType::UniqueCount | AggregationType::WeightedSum
        )
    }
}

impl fmt::Display for AggregationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.storage_name())
    }
}

/// How aggregated units are rounded before pricing (Lago `rounding_function`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundingFunction {
    /// Half away from zero.
    Round,
    /// Towards positive infinity.
    Ceil,
    /// Towards negative infinity.
    Floor,
}

impl RoundingFunction {
    /// Parses `round`, `ceil` or `floor`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "round" => Some(RoundingFunction::Round),
            "ceil" => Some(RoundingFunction::Ceil),
            "floor" => Some(RoundingFunction::Floor),
            _ => None,
        }
    }

    /// Returns the wire name.
    pub fn name(self) -> &'static str {
        match self {
            RoundingFunction::Round => "round",
            RoundingFunction::Ceil => "ceil",
            RoundingFunction::Floor => "floor",
        }
    }
}

/// A rounding step on aggregated units: a function and a number of decimal places, which may be
/// negative (`-2` rounds to hundreds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rounding {
    /// Which way to round.
    pub function: RoundingFunction,
    /// Decimal places kept; negative rounds to tens, hundreds…
    pub precision: i32,
}

/// The accepted range of `rounding_precision`.
pub const ROUNDING_PRECISION_RANGE: std::ops::RangeInclusive<i32> = -15..=15;

impl Rounding {
    /// Rounds aggregated units.
    pub fn apply(self, units: Decimal) -> Decimal {
        let strategy = match self.function {
            RoundingFunction::Round => RoundingStrategy::MidpointAwayFromZero,
            RoundingFunction::Ceil => RoundingStrategy::ToPositiveInfinity,
            RoundingFunction::Floor => RoundingStrategy::ToNegativeInfinity,
        };
        if self.precision >= 0 {
            units
                .round_dp_with_strategy(self.precision.unsigned_abs(), strategy)
                .normalize()
        } else {
            // Drop the fraction first, in a direction that cannot change the result, so that the
            // division by 10^k stays exact even for units with 28 decimal places.
            let whole = match self.function {
                RoundingFunction::Round => RoundingStrategy::ToZero,
                _ => strategy,
            };
            let scale = Decimal::from(10_i64.pow(self.precision.unsigned_abs()));
            ((units.round_dp_with_strategy(0, whole) / scale).round_dp_with_strategy(0, strategy)
                * scale)
                .normalize()
        }
    }
}

/// A Lago metric filter: a property key and the values charges may price separately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricFilter {
    /// The event property key.
    pub key: String,
    /// The values allowed for it.
    pub values: Vec<String>,
}

/// What a metric counts; the shared definition behind a Lago billable metric and an OpenMeter meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricDefinition {
    /// The metric code (Lago `code`, OpenMeter `slug`), unique among live metrics of an organization.
    pub code: Code,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// How events become units.
    pub aggregation: AggregationType,
    /// The event code (CloudEvent `type`) this metric reads; defaults to the metric code.
    pub event_type: Code,
    /// Where the value is read; `None` for counts.
    pub field: Option<PropertyPath>,
    /// Whether units carry over between billing periods.
    pub recurring: bool,
    /// Rounding of aggregated units, if any.
    pub rounding: Option<Rounding>,
    /// Lago filters.
    pub filters: Vec<MetricFilter>,
    /// OpenMeter group-by dimensions: name → path.
    pub group_by: BTreeMap<String, PropertyPath>,
    /// Events before this instant are ignored (OpenMeter `eventFrom`).
    pub event_from: Option<Timestamp>,
}

/// The longest metric name or description accepted, in characters.
pub const MAX_TEXT_LEN: usize = 1_000;

impl MetricDefinition {
    /// Checks the rules between fields, naming fields as the Lago API does.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if self.name.trim().is_empty() {
            errors.push("name", Reason::ValueIsMandatory);
        }
        if self.name.chars().count() > MAX_TEXT_LEN {
            errors.push("name", Reason::ValueIsTooLong);
        }
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_TEXT_LEN)
        {
            errors.push("description", Reason::ValueIsTooLong);
        }
        if self.aggregation.needs_field() && self.field.is_none() {
            errors.push("field_name", Reason::ValueIsMandatory);
        }
        if self.recurring && !self.aggregation.can_recur() {
            errors.push("recurring", Reason::NotCompatibleWithAggregationType);
        }
        if let Some(rounding) = self.rounding
            && !ROUNDING_PRECISION_RANGE.contains(&rounding.precision)
        {
            errors.push("rounding_precision", Reason::ValueIsOutOfRange);
        }
        for (index, filter) in self.filters.iter().enumerate() {
            if filter.key.trim().is_empty() {
                errors.push(format!("filters.{index}.key"), Reason::ValueIsMandatory);
            }
            if filter.values.is_empty() || filter.values.iter().any(|v| v.is_empty()) {
                errors.push(format!("filters.{index}.values"), Reason::ValueIsMandatory);
            }
            if self.filters[..index].iter().any(|f| f.key == filter.key) {
                errors.push(format!("filters.{index}.key"), Reason::ValueAlreadyExist);
            }
        }
        for (name, path) in &self.group_by {
            let valid_name =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid_name {
                errors.push(format!("groupBy.{name}"), Reason::InvalidFormat);
            }
            if Some(path) == self.field.as_ref() {
                errors.push(format!("groupBy.{name}"), Reason::ValueIsInvalid);
            }
        }
        errors.into_result(())
    }

    /// Applies the organization's identifier case to the code, event type, field and dimension keys.
    pub fn normalized(mut self, case: IdentifierCase) -> Self {
        if case.is_none() {
            return self;
        }
        let rewrite = |text: &str| case.apply(text).into_owned();
        self.code = Code::parse("code", &rewrite(self.code.as_str())).unwrap_or(self.code);
        self.event_type = Code::parse("event_type", &rewrite(self.event_type.as_str()))
            .unwrap_or(self.event_type);
        self.field = self.field.map(|path| path.map_keys(rewrite));
        for filter in &mut self.filters {
            filter.key = rewrite(&filter.key);
        }
        self.group_by = self
            .group_by
            .into_iter()
            .map(|(name, path)| (name, path.map_keys(rewrite)))
            .collect();
        self
    }

    /// Returns the dimensions rollups are partitioned by: every group-by name, and every filter key
    /// (read from the top-level property of that name). A group-by entry wins on a name clash.
    pub fn dimensions(&self) -> BTreeMap<String, PropertyPath> {
        let mut dims: BTreeMap<String, PropertyPath> = self
            .filters
            .iter()
            .map(|f| (f.key.clone(), PropertyPath::key(f.key.clone())))
            .collect();
        dims.extend(self.group_by.iter().map(|(k, v)| (k.clone(), v.clone())));
        dims
    }

    /// Reads one event: `Ok(None)` when the metric ignores it (before `event_from`), `Ok(Some(reading))`
    /// when it counts, and `Err` when the event cannot be billed by this metric.
    pub fn read(
        &self,
        properties: &Map<String, Value>,
        at: Timestamp,
    ) -> Result<Option<Reading>, Unbillable> {
        if self.event_from.is_some_and(|from| at < from) {
            return Ok(None);
        }
        let mut reading = Reading {
            value: None,
            distinct: None,
            group: GroupKey::from_properties(&self.dimensions(), properties),
        };
        if let Some(path) = self
            .field
            .as_ref()
            .filter(|_| self.aggregation.needs_field())
        {
            let raw = path.resolve(properties).filter(|v| !v.is_null());
            let raw = raw.ok_or_else(|| Unbillable::MissingProperty(path.to_json_path()))?;
            if self.aggregation == AggregationType::UniqueCount {
                let text = value_as_text(raw)
                    .ok_or_else(|| Unbillable::MissingProperty(path.to_json_path()))?;
                let operation = match properties.get("operation_type").and_then(Value::as_str) {
                    Some("remove") => Operation::Remove,
                    _ => Operation::Add,
                };
                reading.distinct = Some((text, operation));
            } else {
                let value = parse_decimal(raw).map_err(|error| match error {
                    NumberError::NotANumber => Unbillable::NotANumber(path.to_json_path()),
                    NumberError::OutOfRange => Unbillable::OutOfRange(path.to_json_path()),
                })?;
                reading.value = Some(value);
            }
        }
        Ok(Some(reading))
    }
}

/// Whether a unique-count event adds its value or takes it out (`properties.operation_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// The default.
    Add,
    /// `operation_type: "remove"`.
    Remove,
}

/// What one metric takes from one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The numeric value, for every aggregation that needs one.
    pub value: Option<Decimal>,
    /// The distinct value and operation, for unique counts.
    pub distinct: Option<(String, Operation)>,
    /// The event's dimension values.
    pub group: GroupKey,
}

/// Why a metric cannot bill an event; stored with the event and listed by `GET /events?billable=false`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unbillable {
    /// The property the metric reads is absent or null.
    MissingProperty(String),
    /// The property is not a number or numeric string.
    NotANumber(String),
    /// The number is larger than tally accepts.
    OutOfRange(String),
}

impl fmt::Display for Unbillable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unbillable::MissingProperty(path) => write!(f, "property {path} is missing"),
            Unbillable::NotANumber(path) => write!(f, "property {path} is not a number"),
            Unbillable::OutOfRange(path) => {
                write!(f, "property {path} is out of range (|value| > 10^15)")
            }
        }
    }
}

/// The dimension values of an event, as a canonical JSON object (`{"model":"m1","region":null}`), or
/// the empty string for a metric without dimensions. Rollups are keyed by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct GroupKey(String);

impl GroupKey {
    /// Builds the key for a metric's dimensions from event properties.
    pub fn from_properties(
        dims: &BTreeMap<String, PropertyPath>,
        props: &Map<String, Value>,
    ) -> Self {
        if dims.is_empty() {
            return GroupKey(String::new());
        }
        let values: BTreeMap<&str, Option<String>> = dims
            .iter()
            .map(|(name, path)| (name.as_str(), path.resolve(props).and_then(value_as_text)))
            .collect();
        GroupKey(serde_json::to_string(&values).unwrap_or_default())
    }

    /// Wraps a stored key.
    pub fn from_stored(text: String) -> Self {
        GroupKey(text)
    }

    /// Returns the canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the dimension values.
    pub fn values(&self) -> BTreeMap<String, Option<String>> {
        if self.0.is_empty() {
            return BTreeMap::new();
        }
        serde_json::from_str(&self.0).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::str::FromStr;

    fn metric(aggregation: AggregationType, field: Option<&str>) -> MetricDefinition {
        MetricDefinition {
            code: Code::parse("code", "tokens").expect("code"),
            name: "Tokens".into(),
            description: None,
            aggregation,
            event_type: Code::parse("code", "tokens").expect("code"),
            field: field.map(PropertyPath::key),
            recurring: false,
            rounding: None,
            filters: vec![],
            group_by: BTreeMap::new(),
            event_from: None,
        }
    }

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).expect("decimal")
    }

    #[test]
    fn names_map_both_ways() {
        assert_eq!(
            AggregationType::from_lago("sum_agg"),
            Some(AggregationType::Sum)
        );
        assert_eq!(
            AggregationType::from_openmeter("SUM"),
            Some(AggregationType::Sum)
        );
        assert_eq!(AggregationType::from_lago("AVG"), None);
        assert_eq!(AggregationType::Avg.lago_name(), None);
        assert_eq!(AggregationType::WeightedSum.openmeter_name(), None);
        for (t, _, _) in NAMES {
            assert_eq!(AggregationType::from_storage(t.storage_name()), Some(t));
        }
    }

    #[test]
    fn rounding_follows_the_table() {
        let r = |function, precision, input: &str| {
            Rounding {
                function,
                precision,
            }
            .apply(dec(input))
        };
        use RoundingFunction::*;
        assert_eq!(r(Round, 0, "2.5"), dec("3"));
        assert_eq!(r(Round, 0, "-2.5"), dec("-3"));
        assert_eq!(r(Round, 1, "1.25"), dec("1.3"));
        assert_eq!(r(Ceil, 0, "1.01"), dec("2"));
        assert_eq!(r(Floor, 0, "1.99"), dec("1"));
        assert_eq!(r(Round, -2, "1250"), dec("1300"));
        assert_eq!(r(Floor, -1, "19"), dec("10"));
        assert_eq!(r(Ceil, 2, "0.001"), dec("0.01"));
    }

    #[test]
    fn validation_names_fields() {
        let mut m = metric(AggregationType::Sum, None);
        m.recurring = true;
        let errors = metric(AggregationType::Sum, None).validate().unwrap_err();
        assert_eq!(errors.by_field()["field_name"], vec!["value_is_mandatory"]);
        let mut counted = metric(AggregationType::Max, Some("v"));
        counted.recurring = true;
        let errors = counted.validate().unwrap_err();
        assert_eq!(
            errors.by_field()["recurring"],
            vec!["not_compatible_with_aggregation_type"]
        );
        m.field = Some(PropertyPath::key("v"));
        assert!(m.validate().is_ok());
        assert!(metric(AggregationType::Count, None).validate().is_ok());
    }

    #[test]
    fn reads_values_and_dimensions() {
        let mut m = metric(AggregationType::Sum, Some("tokens"));
        m.filters.push(MetricFilter {
            key: "region".into(),
            values: vec!["eu".into()],
        });
        m.group_by.insert(
            "model".into(),
            PropertyPath::parse_json_path("$.llm.model").expect("path"),
        );
        let props = json!({"tokens": "12.5", "region": "eu", "llm": {"model": "m1"}});
        let reading = m
            .read(props.as_object().expect("object"), Timestamp::EPOCH)
            .expect("billable")
            .expect("counted");
        assert_eq!(reading.value, Some(dec("12.5")));
        assert_eq!(reading.group.as_str(), r#"{"model":"m1","region":"eu"}"#);

        let bad = json!({"tokens": "many"});
        assert_eq!(
            m.read(bad.as_object().expect("object"), Timestamp::EPOCH),
            Err(Unbillable::NotANumber("$.tokens".into()))
        );
        let missing = json!({});
        assert_eq!(
            m.read(missing.as_object().expect("object"), Timestamp::EPOCH),
            Err(Unbillable::MissingProperty("$.tokens".into()))
        );
    }

    #[test]
    fn counts_need_no_field_and_event_from_skips() {
        let mut m = metric(AggregationType::Count, None);
        m.event_from = Some(Timestamp::from_seconds(100));
        let props = json!({});
        let props = props.as_object().expect("object");
        assert_eq!(m.read(props, Timestamp::from_seconds(99)), Ok(None));
        let reading = m
            .read(props, Timestamp::from_seconds(100))
            .expect("ok")
            .expect("some");
        assert_eq!(reading.value, None);
        assert_eq!(reading.group, GroupKey::default());
    }

    #[test]
    fn unique_counts_read_text_and_operation() {
        let m = metric(AggregationType::UniqueCount, Some("user"));
        let props = json!({"user": 42, "operation_type": "remove"});
        let reading = m
            .read(props.as_object().expect("object"), Timestamp::EPOCH)
            .expect("ok")
            .expect("some");
        assert_eq!(reading.distinct, Some(("42".into(), Operation::Remove)));
    }

    #[test]
    fn normalization_rewrites_identifiers() {
        let mut m = metric(AggregationType::Sum, Some("inputTokens"));
        m.code = Code::parse("code", "LLM-Tokens").expect("code");
        m.event_type = m.code.clone();
        let m = m.normalized(IdentifierCase::Snake);
        assert_eq!(m.code.as_str(), "llm_tokens");
        assert_eq!(m.event_type.as_str(), "llm_tokens");
        assert_eq!(m.field, Some(PropertyPath::key("input_tokens")));
    }
}
