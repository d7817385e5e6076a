//! `tally usage`: one customer's usage of one metric, from a running server's OpenMeter meter query
//! (`GET /api/v1/meters/{code}/query`), printed as a table or as the server's JSON.

use anyhow::{Context, Result};
use clap::Args;
use reqwest::Method;
use serde_json::Value;
use tally_core::window::WindowSize;

use crate::client::{ApiClient, Backoff};
use crate::config::{ClientArgs, ClientConfig, DatabaseArgs};

/// Retries of a usage query that failed for a transient reason.
const RETRIES: u32 = 3;

/// Arguments of `tally usage`.
#[derive(Debug, Args)]
pub struct UsageArgs {
    /// The customer (the events' `external_customer_id`, the meter's subject).
    #[arg(long)]
    pub customer: String,

    /// The metric's code (the meter's slug).
    #[arg(long)]
    pub metric: String,

    /// Start of the range, inclusive (RFC 3339) [default: the first event].
    #[arg(long, value_parser = rfc3339)]
    pub from: Option<String>,

    /// End of the range, exclusive (RFC 3339) [default: now].
    #[arg(long, value_parser = rfc3339)]
    pub to: Option<String>,

    /// One row per MINUTE, HOUR or DAY [default: one row for the whole range].
    #[arg(long, value_parser = window_size)]
    pub window: Option<WindowSize>,

    /// IANA time zone the windows are cut in, e.g. Europe/Paris [default: UTC].
    #[arg(long, value_parser = time_zone)]
    pub tz: Option<chrono_tz::Tz>,

    /// Split the usage by this group-by key of the metric (repeatable).
    #[arg(long = "group-by")]
    pub group_by: Vec<String>,

    /// Print the server's JSON answer instead of a table.
    #[arg(long)]
    pub json: bool,

    /// The server and the API key.
    #[command(flatten)]
    pub client: ClientArgs,
}

fn rfc3339(text: &str) -> Result<String, String> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|_| text.trim().to_owned())
        .map_err(|e| format!("not an RFC 3339 time such as 2026-01-31T00:00:00Z ({e})"))
}

fn window_size(text: &str) -> Result<WindowSize, String> {
    WindowSize::parse(&text.to_ascii_uppercase())
        .ok_or_else(|| "the window is MINUTE, HOUR or DAY".to_owned())
}

fn time_zone(text: &str) -> Result<chrono_tz::Tz, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not an IANA time zone such as Europe/Paris"))
}

/// Runs the query and prints the answer.
pub async fn run(args: &UsageArgs, db: &DatabaseArgs) -> Result<()> {
    let config = ClientConfig::resolve(&args.client, db)?;
    let client = ApiClient::new(&config, Backoff::standard(RETRIES), 1)?;
    let mut url = client.url(&["api", "v1", "meters", &args.metric, "query"])?;
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("subject", &args.customer);
        if let Some(from) = &args.from {
            query.append_pair("from", from);
        }
        if let Some(to) = &args.to {
            query.append_pair("to", to);
        }
        if let Some(window) = args.window {
            query.append_pair("windowSize", window.name());
        }
        if let Some(tz) = args.tz {
            query.append_pair("windowTimeZone", tz.name());
        }
        for key in &args.group_by {
            query.append_pair("groupBy", key);
        }
    }
    let answer = client
        .send(Method::GET, url, None, None, |notice| {
            eprintln!(
                "retrying the query ({}; retry {} of {} in {:.1} s)",
                notice.cause,
                notice.attempt,
                notice.retries,
                notice.wait.as_secs_f64()
            );
        })
        .await
        .with_context(|| {
            format!(
                "cannot read the usage of {:?} by {:?}",
                args.metric, args.customer
            )
        })?;
    if args.json {
        println!("{}", String::from_utf8_lossy(&answer).trim_end());
        return Ok(());
    }
    let value: Value = serde_json::from_slice(&answer)
        .context("the server's answer to a meter query is not JSON")?;
    let rows = value
        .get("data")
        .and_then(Value::as_array)
        .context("the server's answer to a meter query has no data")?;
    if rows.is_empty() {
        println!(
            "no usage of {} by {} in this range",
            args.metric, args.customer
        );
        return Ok(());
    }
    print!("{}", render_table(rows, &args.group_by));
    Ok(())
}

/// Renders meter query rows as an aligned table: window start, window end, one column per group-by
/// key (`subject` included when asked for), then the value.
pub fn render_table(rows: &[Value], group_by: &[String]) -> String {
    let mut keys: Vec<String> = Vec::new();
    for key in group_by {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    for row in rows {
        if let Some(groups) = row.get("groupBy").and_then(Value::as_object) {
            for key in groups.keys() {
                if !keys.contains(key) {
                    keys.push(key.clone());
                }
            }
        }
    }
    let mut header = vec!["WINDOW START".to_owned(), "WINDOW END".to_owned()];
    header.extend(keys.iter().map(|k| k.to_uppercase()));
    header.push("VALUE".to_owned());
    let mut table = vec![header];
    for row in rows {
        let mut cells = vec![cell(row.get("windowStart")), cell(row.get("windowEnd"))];
        for key in &keys {
            let value = if key == "subject" {
                row.get("subject")
            } else {
                row.get("groupBy").and_then(|g| g.get(key))
            };
            cells.push(cell(value));
        }
        cells.push(cell(row.get("value")));
        table.push(cells);
    }
    let columns = table[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            table
                .iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for cells in &table {
        let mut line = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == columns {
                line.push_str(&format!("{cell:>width$}"));
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_and_show_missing_groups_as_dashes() {
        let rows = vec![
            json!({"value": 1234, "windowStart": "2026-01-01T00:00:00Z", "windowEnd": "2026-01-02T00:00:00Z",
                   "subject": "c1", "groupBy": {"model": "gpt-4"}}),
            json!({"value": 5.5, "windowStart": "2026-01-02T00:00:00Z", "windowEnd": "2026-01-03T00:00:00Z",
                   "subject": "c1", "groupBy": {"model": null}}),
        ];
        assert_eq!(
            render_table(&rows, &["model".to_owned()]),
            "WINDOW START          WINDOW END            MODEL  VALUE\n\
             2026-01-01T00:00:00Z  2026-01-02T00:00:00Z  gpt-4   1234\n\
             2026-01-02T00:00:00Z  2026-01-03T00:00:00Z  -        5.5\n"
        );
    }

    #[test]
    fn flags_are_checked_before_anything_is_sent() {
        assert!(rfc3339("2026-01-01T00:00:00Z").is_ok());
        assert!(rfc3339("2026-01-01").is_err());
        assert_eq!(window_size("hour"), Ok(WindowSize::Hour));
        assert!(window_size("WEEK").is_err());
        assert!(time_zone("Europe/Paris").is_ok());
        assert!(time_zone("Mars/Base").is_err());
    }
}
