//! Paths to a value inside an event's properties.
//!
//! Lago metrics name a top-level key (`field_name: "tokens"`); OpenMeter meters use a JSONPath
//! (`valueProperty: "$.tokens"`, `groupBy: {"model": "$.llm.model"}`). Both become a [`PropertyPath`]:
//! a list of object keys from the top. Supported JSONPath forms are `$.a.b` and `$['a']["b"]`; array
//! indexes and wildcards are refused.

use std::fmt;

use serde_json::{Map, Value};

/// A path of object keys into event properties.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PropertyPath {
    keys: Vec<String>,
}

impl PropertyPath {
    /// A path to one top-level key, as a Lago `field_name` names it.
    pub fn key(name: impl Into<String>) -> Self {
        PropertyPath {
            keys: vec![name.into()],
        }
    }

    /// Parses a JSONPath such as `$.tokens` or `$['llm']['model']`; `None` if it is not a plain key path.
    pub fn parse_json_path(text: &str) -> Option<Self> {
        let rest = text.trim().strip_prefix('$')?;
        let mut keys = Vec::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '.' => {
                    let mut key = String::new();
                    while let Some(&next) = chars.peek() {
                        if next == '.' || next == '[' {
                            break;
                        }
                        key.push(next);
                        chars.next();
                    }
                    if key.is_empty() || key == "*" {
                        return None;
                    }
                    keys.push(key);
                }
                '[' => {
                    let quote = chars.next()?;
                    if quote != '\'' && quote != '"' {
                        return None;
                    }
                    let mut key = String::new();
                    loop {
                        let next = chars.next()?;
                        if next == quote {
                            break;
                        }
                        key.push(next);
                    }
                    if chars.next()? != ']' || key.is_empty() {
                        return None;
                    }
                    keys.push(key);
                }
                _ => return None,
            }
        }
        (!keys.is_empty()).then_some(PropertyPath { keys })
    }

    /// Returns the keys from the top.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Returns the single key when the path is a top-level key, which is what a Lago `field_name` can say.
    pub fn top_level_key(&self) -> Option<&str> {
        match self.keys.as_slice() {
            [key] => Some(key),
            _ => None,
        }
    }

    /// Renders the path as JSONPath (`$.tokens`, or `$['a.b']` for keys that need quoting).
    pub fn to_json_path(&self) -> String {
        let mut out = String::from("$");
        for key in &self.keys {
            if key
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
            {
                out.push('.');
                out.push_str(key);
            } else {
                out.push_str("['");
                out.push_str(key);
                out.push_str("']");
            }
        }
        out
    }

    /// Finds the value at this path, if every key along it exists.
    pub fn resolve<'a>(&self, properties: &'a Map<String, Value>) -> Option<&'a Value> {
        let (first, rest) = self.keys.split_first()?;
        let mut value = properties.get(first)?;
        for key in rest {
            value = value.as_object()?.get(key)?;
        }
        Some(value)
    }

    /// Returns the same path with each key rewritten (used by the case converter).
    pub fn map_keys(&self, mut rewrite: impl FnMut(&str) -> String) -> Self {
        PropertyPath {
            keys: self.keys.iter().map(|key| rewrite(key)).collect(),
        }
    }
}

impl fmt::Display for PropertyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json_path())
    }
}

/// Renders a property value as the string used for grouping, filtering and unique counting: strings as
/// they are, numbers in their original text, booleans as `true`/`false`, anything else as JSON. Null is
/// no value.
pub fn value_as_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_json_paths() {
        assert_eq!(
            PropertyPath::parse_json_path("$.tokens"),
            Some(PropertyPath::key("tokens"))
        );
        let nested = PropertyPath::parse_json_path("$.llm['model name']").expect("path");
        assert_eq!(nested.keys(), ["llm", "model name"]);
        assert_eq!(nested.to_json_path(), "$.llm['model name']");
        for bad in ["tokens", "$", "$.", "$..a", "$[0]", "$.a[*]", "$.*"] {
            assert_eq!(PropertyPath::parse_json_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn resolves_nested_values() {
        let props = json!({"llm": {"model": "m1"}, "tokens": 3});
        let props = props.as_object().expect("object");
        let path = PropertyPath::parse_json_path("$.llm.model").expect("path");
        assert_eq!(path.resolve(props), Some(&json!("m1")));
        assert_eq!(PropertyPath::key("missing").resolve(props), None);
        assert_eq!(
            PropertyPath::parse_json_path("$.tokens.x")
                .expect("path")
                .resolve(props),
            None
        );
    }
}
