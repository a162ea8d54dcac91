//! A report read back for a replay (`plugin diff --reports`): every object record of past
//! invocations becomes the question its org's plugin was asked (org, source bucket, key, the
//! object facts and the targets plain matching proposed), as the report wrote them. Nothing
//! is guessed: a record that lacks one of these is an error naming it and the field.
//!
//! Two forms are read, told apart by their content:
//! - reports: JSON documents with `records` (`invoke`'s report, the Lambda response,
//!   `invoke --output both`'s `{"report": …}`), one or several one after the other;
//! - log lines: one JSON object per line, as the function logs in Lambda; the record lines
//!   (`"message": "record"`) are read, every other line (other messages, text, the runtime's
//!   `START`/`END` lines) is ignored. Their `object` and `proposed` fields hold the report's
//!   JSON as text.
//!
//! Records without a key or an org (test events, records no org owns, records refused before
//! routing) were never a plugin's question: they are counted as left out, not replayed.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{ObjectFacts, Proposed};
use crate::event::SourceObject;

/// One question asked again: the record's org, object and proposed targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayInput {
    /// How the record is named in output: its key and where it was read (`(Records[0])`,
    /// `(line 12)`).
    pub label: String,
    /// The org that owned the key.
    pub org: String,
    /// Source bucket.
    pub bucket: String,
    /// Decoded source key.
    pub key: String,
    /// What the plugin was told about the object.
    pub facts: ObjectFacts,
    /// The targets plain matching proposed.
    pub proposed: Vec<Proposed>,
}

impl ReplayInput {
    /// The object the plugin was given.
    pub fn object(&self) -> SourceObject {
        self.facts.object(&self.bucket, &self.key)
    }
}

/// What a file of reports or log lines holds for a replay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replay {
    /// The records to ask again, in file order.
    pub inputs: Vec<ReplayInput>,
    /// Records read that are not questions: no key or no org.
    pub left_out: usize,
}

/// Why a file cannot be replayed: where (a record, a line) and what is wrong. One line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {problem}")]
pub struct ReplayError {
    /// The record or line, e.g. `line 3 (Records[0], key org1/a.jpg)`.
    pub at: String,
    /// What is missing or wrong, naming the field.
    pub problem: String,
}

impl ReplayError {
    fn new(at: impl Into<String>, problem: impl Into<String>) -> Self {
        ReplayError {
            at: at.into(),
            problem: problem.into(),
        }
    }
}

/// Reads `text`: JSON reports (one or several documents with `records`), or JSON log lines.
pub fn parse_reports(text: &str) -> Result<Replay, ReplayError> {
    let documents: Result<Vec<(usize, Value)>, _> = {
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        let mut documents = Vec::new();
        loop {
            let start = stream.byte_offset();
            match stream.next() {
                None => break Ok(documents),
                Some(Ok(value)) => documents.push((start, value)),
                Some(Err(error)) => break Err(error),
            }
        }
    };
    let mut replay = Replay::default();
    // Report documents and record lines found: none means the file is neither form.
    let mut found = 0usize;
    match documents {
        // One or more JSON values: reports, or log lines that all parse.
        Ok(documents) => {
            let reports = documents
                .iter()
                .filter(|(_, d)| report_records(d).is_some())
                .count();
            let mut report_number = 0;
            for (offset, document) in &documents {
                if let Some(list) = report_records(document) {
                    found += 1;
                    report_number += 1;
                    for (i, record) in list.iter().enumerate() {
                        let at = match reports {
                            1 => format!("records[{i}]"),
                            _ => format!("report {report_number} records[{i}]"),
                        };
                        let form = Form::Report { single: reports == 1 };
                        let record = record
                            .as_object()
                            .ok_or_else(|| ReplayError::new(at.clone(), "not a JSON object"))?;
                        read_record(&mut replay, form, &at, record)?;
                    }
                } else if let Some(fields) = log_record(document) {
                    let at = format!("line {}", line_of(text, *offset));
                    found += 1;
                    read_record(&mut replay, Form::LogLine, &at, fields)?;
                }
            }
        }
        // Not all JSON: log lines among others (text, the runtime's lines), one per line.
        Err(_) => {
            for (n, line) in text.lines().enumerate() {
                let Ok(value) = serde_json::from_str::<Value>(line.trim()) else {
                    continue;
                };
                if let Some(fields) = log_record(&value) {
                    found += 1;
                    let at = format!("line {}", n + 1);
                    read_record(&mut replay, Form::LogLine, &at, fields)?;
                }
            }
        }
    }
    if found == 0 {
        return Err(ReplayError::new(
            "the file",
            "holds no report record: neither a report (a JSON document with \"records\") nor \
             JSON log lines with \"message\": \"record\"",
        ));
    }
    Ok(replay)
}

/// The 1-based line at which byte `offset` of `text` starts (the first non-blank character
/// from there, as a stream of JSON values skips whitespace before each).
fn line_of(text: &str, offset: usize) -> usize {
    let rest = &text[offset.min(text.len())..];
    let skipped = rest.len() - rest.trim_start().len();
    let start = offset + skipped;
    text[..start.min(text.len())].matches('\n').count() + 1
}

/// A report's records: `records`, or `report.records` (`invoke --output both`).
fn report_records(document: &Value) -> Option<&Vec<Value>> {
    document["records"]
        .as_array()
        .or_else(|| document["report"]["records"].as_array())
}

/// A record log line's fields (flattened, or under `fields`), when `value` is one.
fn log_record(value: &Value) -> Option<&Map<String, Value>> {
    let object = value.as_object()?;
    if object.get("message").and_then(Value::as_str) == Some("record") {
        return Some(object);
    }
    let fields = object.get("fields")?.as_object()?;
    (fields.get("message").and_then(Value::as_str) == Some("record")).then_some(fields)
}

/// Where a record was read: a report (`single`: the only one in the file, so its records'
/// own locators name them), or a log line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Report { single: bool },
    LogLine,
}

/// A string field; a log line writes `-` for an absent bucket, key or org.
fn text_field(record: &Map<String, Value>, name: &str, form: Form) -> Option<String> {
    let value = record.get(name)?.as_str()?;
    match (form, value) {
        (Form::LogLine, "-") => None,
        _ => Some(value.to_string()),
    }
}

/// A structured field: JSON in a report, JSON text in a log line (either is accepted in
/// both). `Ok(None)` when absent.
fn structured<T: DeserializeOwned>(record: &Map<String, Value>, name: &str) -> Result<Option<T>, String> {
    let value = match record.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) => {
            serde_json::from_str::<Value>(text).map_err(|e| format!("\"{name}\" is not JSON: {e}"))?
        }
        Some(value) => value.clone(),
    };
    T::deserialize(value)
        .map(Some)
        .map_err(|e| format!("\"{name}\" is not what a report writes: {e}"))
}

/// Reads one record found `place` (`records[3]`, `line 12`) into `replay`.
fn read_record(
    replay: &mut Replay,
    form: Form,
    place: &str,
    record: &Map<String, Value>,
) -> Result<(), ReplayError> {
    let key = text_field(record, "key", form);
    let org = text_field(record, "org", form);
    let (Some(key), Some(org)) = (key, org) else {
        replay.left_out += 1;
        return Ok(());
    };
    let locator = record.get("record").and_then(Value::as_str);
    let at = match locator {
        Some(locator) => format!("{place} ({locator}, key {key:?})"),
        None => format!("{place} (key {key:?})"),
    };
    let bucket_field = match form {
        Form::Report { .. } => "sourceBucket",
        Form::LogLine => "bucket",
    };
    let missing = |field: &str, what: &str| {
        ReplayError::new(
            at.clone(),
            format!(
                "no \"{field}\" ({what}, which a replay needs; reports written before it was added lack it)"
            ),
        )
    };
    let bucket = text_field(record, bucket_field, form).ok_or_else(|| {
        ReplayError::new(
            at.clone(),
            format!("no \"{bucket_field}\" (the source bucket, which a replay needs)"),
        )
    })?;
    let facts: ObjectFacts = structured(record, "object")
        .map_err(|problem| ReplayError::new(at.clone(), problem))?
        .ok_or_else(|| missing("object", "the object facts the plugin was given"))?;
    let proposed: Vec<Proposed> = structured(record, "proposed")
        .map_err(|problem| ReplayError::new(at.clone(), problem))?
        .ok_or_else(|| missing("proposed", "the targets plain matching proposed"))?;
    let label = match (form, locator) {
        (Form::Report { single: true }, Some(locator)) => format!("{key} ({locator})"),
        _ => format!("{key} ({place})"),
    };
    replay.inputs.push(ReplayInput {
        label,
        org,
        bucket,
        key,
        facts,
        proposed,
    });
    Ok(())
}

#[cfg(test)]
mod tests;
