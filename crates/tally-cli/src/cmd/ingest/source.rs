//! Where `tally ingest` reads events: an NDJSON or CSV stream cut into chunks of NDJSON lines, each line
//! remembering the file line it came from so the server's refusals can be pointed back at the file.
//!
//! Reading is streaming: only the chunk being filled is held here. NDJSON lines are passed through as
//! sent (the server is the one judge of an event); CSV rows are turned into Lago event objects, and a
//! row that cannot become one is refused here, with its line, without being sent.

use std::collections::HashSet;
use std::io::{BufRead, Read};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use serde_json::{Map, Value};

/// Chunks are closed at this size even when they hold fewer lines than asked, to stay well below the
/// server's 64 MiB bulk body limit.
pub const MAX_CHUNK_BYTES: usize = 32 * 1024 * 1024;

/// CSV columns that map to the Lago event field of the same name.
pub const EVENT_COLUMNS: [&str; 6] = [
    "transaction_id",
    "external_customer_id",
    "external_subscription_id",
    "code",
    "timestamp",
    "precise_total_amount_cents",
];
/// The CSV column holding a JSON object of properties.
pub const PROPERTIES_COLUMN: &str = "properties";

/// The input's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One Lago event object per line, bare or under `"event"`.
    Ndjson,
    /// A header row, then one event per row.
    Csv,
}

impl Format {
    /// Guesses the format from a file name: `.csv` (any case) is CSV, anything else NDJSON.
    pub fn from_path(path: &str) -> Format {
        let is_csv = std::path::Path::new(path)
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"));
        if is_csv { Format::Csv } else { Format::Ndjson }
    }
}

/// A line refused, with the file line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 1-based line number in the input (the CSV header is line 1).
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// A piece of the input ready to send as one bulk request.
#[derive(Debug, Default)]
pub struct Chunk {
    /// NDJSON body: one event per line.
    pub body: Vec<u8>,
    /// The input line of each body line, in order.
    pub lines: Vec<u64>,
    /// Lines refused before sending, in order.
    pub refused: Vec<Refusal>,
}

impl Chunk {
    /// Returns how many input records the chunk stands for (sent and refused).
    pub fn records(&self) -> u64 {
        (self.lines.len() + self.refused.len()) as u64
    }

    /// Returns the first input line the chunk covers, if any.
    pub fn first_line(&self) -> Option<u64> {
        let sent = self.lines.first().copied();
        let refused = self.refused.first().map(|r| r.line);
        match (sent, refused) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn full(&self, records: usize) -> bool {
        self.lines.len() + self.refused.len() >= records || self.body.len() >= MAX_CHUNK_BYTES
    }
}

/// Cuts an input into chunks of at most `records` records.
pub enum ChunkReader {
    /// Reading NDJSON.
    Ndjson {
        /// The input.
        input: Box<dyn BufRead + Send>,
        /// Lines read so far.
        line: u64,
        /// Records per chunk.
        records: usize,
    },
    /// Reading CSV.
    Csv {
        /// The CSV reader, past the header.
        input: Box<csv::Reader<Box<dyn Read + Send>>>,
        /// What each column becomes.
        columns: Vec<Column>,
        /// Records per chunk.
        records: usize,
    },
}

/// What one CSV column becomes in the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// A Lago event field of this name.
    Field(String),
    /// A JSON object merged into `properties`.
    Properties,
    /// A string property of this name.
    Property(String),
}

impl ChunkReader {
    /// Starts reading; for CSV this reads and checks the header.
    pub fn new(input: Box<dyn BufRead + Send>, format: Format, records: usize) -> Result<Self> {
        Ok(match format {
            Format::Ndjson => ChunkReader::Ndjson {
                input,
                line: 0,
                records,
            },
            Format::Csv => {
                let input: Box<dyn Read + Send> = Box::new(input);
                let mut reader = csv_reader(input);
                let header = reader
                    .byte_headers()
                    .context("cannot read the CSV header row")?
                    .clone();
                ChunkReader::Csv {
                    columns: plan_columns(&header)?,
                    input: Box::new(reader),
                    records,
                }
            }
        })
    }

    /// Reads the next chunk; `None` at the end of the input.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        let mut chunk = Chunk::default();
        match self {
            ChunkReader::Ndjson {
                input,
                line,
                records,
            } => {
                let mut buffer = Vec::new();
                while !chunk.full(*records) {
                    buffer.clear();
                    if input
                        .read_until(b'\n', &mut buffer)
                        .with_context(|| format!("cannot read line {}", *line + 1))?
                        == 0
                    {
                        break;
                    }
                    *line += 1;
                    if buffer.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let text = buffer.strip_suffix(b"\n").unwrap_or(&buffer);
                    let text = text.strip_suffix(b"\r").unwrap_or(text);
                    chunk.body.extend_from_slice(text);
                    chunk.body.push(b'\n');
                    chunk.lines.push(*line);
                }
            }
            ChunkReader::Csv {
                input,
                columns,
                records,
            } => {
                let mut record = csv::ByteRecord::new();
                while !chunk.full(*records) {
                    match input.read_byte_record(&mut record) {
                        Ok(false) => break,
                        Ok(true) => {
                            let line = record.position().map_or(0, csv::Position::line);
                            match row_to_event(columns, &record) {
                                Ok(event) => {
                                    serde_json::to_writer(&mut chunk.body, &event)?;
                                    chunk.body.push(b'\n');
                                    chunk.lines.push(line);
                                }
                                Err(reason) => chunk.refused.push(Refusal { line, reason }),
                            }
                        }
                        Err(error) => match error.kind() {
                            csv::ErrorKind::UnequalLengths {
                                pos,
                                expected_len,
                                len,
                            } => chunk.refused.push(Refusal {
                                line: pos.as_ref().map_or(0, csv::Position::line),
                                reason: format!(
                                    "the row has {len} field(s) but the header has {expected_len}"
                                ),
                            }),
                            _ => return Err(error).context("cannot read the CSV input"),
                        },
                    }
                }
            }
        }
        Ok((chunk.records() > 0).then_some(chunk))
    }
}

/// Counts the records of an input, for the progress bar: non-blank NDJSON lines, or CSV rows after
/// the header.
pub fn count_records(input: Box<dyn BufRead + Send>, format: Format) -> Result<u64> {
    let mut count = 0u64;
    match format {
        Format::Ndjson => {
            let mut input = input;
            let mut buffer = Vec::new();
            loop {
                buffer.clear();
                if input.read_until(b'\n', &mut buffer)? == 0 {
                    break;
                }
                if !buffer.iter().all(u8::is_ascii_whitespace) {
                    count += 1;
                }
            }
        }
        Format::Csv => {
            let input: Box<dyn Read + Send> = Box::new(input);
            let mut reader = csv_reader(input);
            let mut record = csv::ByteRecord::new();
            loop {
                match reader.read_byte_record(&mut record) {
                    Ok(false) => break,
                    Ok(true) => count += 1,
                    Err(error) if matches!(error.kind(), csv::ErrorKind::UnequalLengths { .. }) => {
                        count += 1;
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        }
    }
    Ok(count)
}

fn csv_reader(input: Box<dyn Read + Send>) -> csv::Reader<Box<dyn Read + Send>> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::Headers)
        .from_reader(input)
}

/// Decides what each CSV column becomes; the header must name `transaction_id` and `code`.
pub fn plan_columns(header: &csv::ByteRecord) -> Result<Vec<Column>> {
    let mut seen = HashSet::new();
    let mut columns = Vec::with_capacity(header.len());
    for (index, raw) in header.iter().enumerate() {
        let name = std::str::from_utf8(raw)
            .with_context(|| format!("CSV header column {} is not valid UTF-8", index + 1))?
            .trim_start_matches('\u{feff}')
            .trim();
        if name.is_empty() {
            bail!("CSV header column {} has no name", index + 1);
        }
        if !seen.insert(name.to_owned()) {
            bail!("CSV header names the column {name:?} twice");
        }
        columns.push(if EVENT_COLUMNS.contains(&name) {
            Column::Field(name.to_owned())
        } else if name == PROPERTIES_COLUMN {
            Column::Properties
        } else {
            Column::Property(name.to_owned())
        });
    }
    for required in ["transaction_id", "code"] {
        if !seen.contains(required) {
            bail!(
                "the CSV header has no {required} column (the first row must name the columns: {}, optionally properties, and any property columns)",
                EVENT_COLUMNS.join(", ")
            );
        }
    }
    Ok(columns)
}

/// Turns one CSV row into a Lago event object. Empty cells are left out; a `properties` cell must hold
/// a JSON object, and property columns override its keys of the same name.
pub fn row_to_event(columns: &[Column], row: &csv::ByteRecord) -> Result<Value, String> {
    let mut event = Map::new();
    let mut properties = Map::new();
    let mut extra = Map::new();
    for (column, raw) in columns.iter().zip(row.iter()) {
        if raw.is_empty() {
            continue;
        }
        let name = match column {
            Column::Field(name) | Column::Property(name) => name.as_str(),
            Column::Properties => PROPERTIES_COLUMN,
        };
        let cell = std::str::from_utf8(raw).map_err(|_| format!("{name} is not valid UTF-8"))?;
        match column {
            Column::Field(name) => {
                event.insert(name.clone(), Value::String(cell.to_owned()));
            }
            Column::Property(name) => {
                extra.insert(name.clone(), Value::String(cell.to_owned()));
            }
            Column::Properties => match serde_json::from_str::<Value>(cell) {
                Ok(Value::Object(object)) => properties = object,
                Ok(_) => return Err("properties must hold a JSON object".to_owned()),
                Err(error) => return Err(format!("properties is not valid JSON: {error}")),
            },
        }
    }
    properties.extend(extra);
    if !properties.is_empty() {
        event.insert(PROPERTIES_COLUMN.to_owned(), Value::Object(properties));
    }
    Ok(Value::Object(event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read_all(text: &str, format: Format, records: usize) -> Vec<Chunk> {
        let input: Box<dyn BufRead + Send> = Box::new(std::io::Cursor::new(text.to_owned()));
        let mut reader = ChunkReader::new(input, format, records).expect("reader");
        let mut chunks = Vec::new();
        while let Some(chunk) = reader.next_chunk().expect("chunk") {
            chunks.push(chunk);
        }
        chunks
    }

    #[test]
    fn ndjson_lines_keep_their_file_line_numbers() {
        let text = "{\"a\":1}\n\n{\"a\":2}\r\n  \nnot json\n{\"a\":3}";
        let chunks = read_all(text, Format::Ndjson, 2);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].lines, vec![1, 3]);
        assert_eq!(chunks[0].body, b"{\"a\":1}\n{\"a\":2}\n");
        assert_eq!(chunks[1].lines, vec![5, 6]);
        assert_eq!(chunks[1].body, b"not json\n{\"a\":3}\n");
        let input: Box<dyn BufRead + Send> = Box::new(std::io::Cursor::new(text.to_owned()));
        assert_eq!(count_records(input, Format::Ndjson).expect("count"), 4);
    }

    #[test]
    fn csv_rows_become_events_and_extra_columns_properties() {
        let text = "transaction_id,code,timestamp,tokens,model,properties\n\
                    t1,tokens,1767225600,120,gpt,\"{\"\"region\"\":\"\"eu\"\",\"\"model\"\":\"\"x\"\"}\"\n\
                    t2,tokens,,80,,\n\
                    t3,tokens,1767225600,5,gpt,[1]\n\
                    t4,tokens\n\
                    \"t5\nsplit\",tokens,,1,,\n\
                    t6,tokens,,2,,\n";
        let chunks = read_all(text, Format::Csv, 100);
        assert_eq!(chunks.len(), 1);
        let chunk = &chunks[0];
        assert_eq!(chunk.lines, vec![2, 3, 6, 8]);
        assert_eq!(
            chunk.refused,
            vec![
                Refusal {
                    line: 4,
                    reason: "properties must hold a JSON object".into()
                },
                Refusal {
                    line: 5,
                    reason: "the row has 2 field(s) but the header has 6".into()
                },
            ]
        );
        let events: Vec<Value> = chunk
            .body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("json"))
            .collect();
        assert_eq!(
            events[0],
            json!({"transaction_id": "t1", "code": "tokens", "timestamp": "1767225600",
                   "properties": {"region": "eu", "model": "gpt", "tokens": "120"}})
        );
        assert_eq!(
            events[1],
            json!({"transaction_id": "t2", "code": "tokens", "properties": {"tokens": "80"}})
        );
        assert_eq!(events[2]["transaction_id"], json!("t5\nsplit"));
        let input: Box<dyn BufRead + Send> = Box::new(std::io::Cursor::new(text.to_owned()));
        assert_eq!(count_records(input, Format::Csv).expect("count"), 6);
    }

    #[test]
    fn a_csv_without_a_header_is_refused_at_once() {
        let input: Box<dyn BufRead + Send> =
            Box::new(std::io::Cursor::new("t1,tokens,5\n".to_owned()));
        let error = ChunkReader::new(input, Format::Csv, 10)
            .err()
            .expect("refused");
        assert!(error.to_string().contains("no transaction_id column"));
    }

    #[test]
    fn the_format_follows_the_extension() {
        assert_eq!(Format::from_path("usage.CSV"), Format::Csv);
        assert_eq!(Format::from_path("usage.ndjson"), Format::Ndjson);
        assert_eq!(Format::from_path("usage"), Format::Ndjson);
    }
}
