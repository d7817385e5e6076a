//! The case converter: the organization's policy for how identifiers are written.
//!
//! Clients of one organization rarely agree on `inputTokens`, `input-tokens` or `input_tokens`. When an
//! organization sets `identifier_case`, tally rewrites event codes, event property keys, metric codes,
//! field names, filter keys and group-by names into that one style on write, so all spellings meet in
//! one metric. `none` (the default) keeps identifiers exactly as sent.
//!
//! Word boundaries follow `heck`: a lower-to-upper change (`inputTokens`), an acronym end (`HTTPRequest`),
//! and any run of characters other than letters and digits (`-`, `_`, `.`, spaces) split words; those
//! separators are dropped. `lower` and `upper` only change letters' case and keep separators.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use heck::{ToKebabCase, ToLowerCamelCase, ToSnakeCase};

/// One identifier style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IdentifierCase {
    /// Identifiers are kept as sent.
    #[default]
    None,
    /// `input_tokens`
    Snake,
    /// `inputTokens`
    Camel,
    /// `input-tokens`
    Kebab,
    /// `input_tokens` stays `input_tokens`, `Input-Tokens` becomes `input-tokens`.
    Lower,
    /// `Input-Tokens` becomes `INPUT-TOKENS`.
    Upper,
}

/// Every style with its configuration name, in the order documented.
pub const ALL_CASES: [(IdentifierCase, &str); 6] = [
    (IdentifierCase::None, "none"),
    (IdentifierCase::Snake, "snake_case"),
    (IdentifierCase::Camel, "camelCase"),
    (IdentifierCase::Kebab, "kebab-case"),
    (IdentifierCase::Lower, "lower"),
    (IdentifierCase::Upper, "upper"),
];

impl IdentifierCase {
    /// Rewrites one identifier into this style; borrows when nothing changes.
    pub fn apply<'a>(self, text: &'a str) -> Cow<'a, str> {
        let converted = match self {
            IdentifierCase::None => return Cow::Borrowed(text),
            IdentifierCase::Snake => text.to_snake_case(),
            // heck does not always read its own camelCase back as the same words (`point_x_y`
            // gives `pointXY`, read as `point`, `xy`); a second pass reaches the spelling that
            // converts to itself, so an identifier already in camelCase is kept as sent.
            IdentifierCase::Camel => text.to_lower_camel_case().to_lower_camel_case(),
            IdentifierCase::Kebab => text.to_kebab_case(),
            IdentifierCase::Lower => text.to_lowercase(),
            IdentifierCase::Upper => text.to_uppercase(),
        };
        if converted == text {
            Cow::Borrowed(text)
        } else {
            Cow::Owned(converted)
        }
    }

    /// Returns the configuration name (`snake_case`, `camelCase`, …).
    pub fn name(self) -> &'static str {
        ALL_CASES
            .iter()
            .find(|(case, _)| *case == self)
            .map_or("none", |(_, name)| name)
    }

    /// Tells whether identifiers are rewritten at all.
    pub fn is_none(self) -> bool {
        self == IdentifierCase::None
    }
}

impl FromStr for IdentifierCase {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ALL_CASES
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(text))
            .map(|(case, _)| *case)
            .ok_or_else(|| {
                let names: Vec<&str> = ALL_CASES.iter().map(|(_, name)| *name).collect();
                format!(
                    "unknown identifier case {text:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

impl fmt::Display for IdentifierCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-written table: input, then the expected output for snake, camel, kebab, lower, upper.
    const TABLE: &[(&str, [&str; 5])] = &[
        (
            "inputTokens",
            [
                "input_tokens",
                "inputTokens",
                "input-tokens",
                "inputtokens",
                "INPUTTOKENS",
            ],
        ),
        (
            "Input-Tokens",
            [
                "input_tokens",
                "inputTokens",
                "input-tokens",
                "input-tokens",
                "INPUT-TOKENS",
            ],
        ),
        (
            "input_tokens",
            [
                "input_tokens",
                "inputTokens",
                "input-tokens",
                "input_tokens",
                "INPUT_TOKENS",
            ],
        ),
        (
            "HTTPRequests",
            [
                "http_requests",
                "httpRequests",
                "http-requests",
                "httprequests",
                "HTTPREQUESTS",
            ],
        ),
        (
            "gpu.seconds v2",
            [
                "gpu_seconds_v2",
                "gpuSecondsV2",
                "gpu-seconds-v2",
                "gpu.seconds v2",
                "GPU.SECONDS V2",
            ],
        ),
    ];

    #[test]
    fn converts_as_documented() {
        let cases = [
            IdentifierCase::Snake,
            IdentifierCase::Camel,
            IdentifierCase::Kebab,
            IdentifierCase::Lower,
            IdentifierCase::Upper,
        ];
        for (input, expected) in TABLE {
            for (case, want) in cases.iter().zip(expected) {
                assert_eq!(case.apply(input), *want, "{input} as {case}");
            }
            assert_eq!(IdentifierCase::None.apply(input), *input);
        }
    }

    #[test]
    fn spellings_meet() {
        for case in [
            IdentifierCase::Snake,
            IdentifierCase::Camel,
            IdentifierCase::Kebab,
        ] {
            let a = case.apply("inputTokens");
            assert_eq!(a, case.apply("Input-Tokens"));
            assert_eq!(a, case.apply("input_tokens"));
        }
    }

    #[test]
    fn parses_names() {
        for (case, name) in ALL_CASES {
            assert_eq!(name.parse::<IdentifierCase>(), Ok(case));
            assert_eq!(case.name(), name);
        }
        assert!("shouting".parse::<IdentifierCase>().is_err());
    }
}
