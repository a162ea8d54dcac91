//! Every event shape the function is invoked with, unwrapped into [`SourceObject`]s: the
//! model of an invocation's records, and the entry points that pick a decoder.
//!
//! Accepted: S3 notifications (`Records[].eventSource == "aws:s3"`), `s3:TestEvent`, the
//! same carried in SQS message bodies, in SNS messages, in SNS inside SQS, and EventBridge
//! "Object Created" events, directly or through SQS. A record that cannot be understood
//! becomes [`RecordBody::Invalid`] with a reason naming where it is, so it is reported as
//! failed instead of vanishing; only an event whose overall shape is unknown is an error.
//!
//! The decoders, one per shape: [`envelope`] (the `Records` list and what SQS and SNS wrap),
//! [`s3`] (S3 notification records, `s3:TestEvent`), [`eventbridge`] and [`batch`] (S3
//! Batch Operations jobs). Reading an event file or stdin is the binary's.

use std::collections::BTreeMap;

use serde_json::Value;
use serde_json::value::RawValue;

pub use crate::bounded::MAX_EVENT_BYTES;
use crate::bounded::human;
use crate::logging::escape_controls;

mod batch;
mod envelope;
mod eventbridge;
mod s3;

pub use batch::{BatchJob, BucketArnError, ResultCode, bucket_from_arn};

/// One object announced as created, or as removed (`event_name` `ObjectRemoved:*`: see
/// [`SourceObject::is_removal`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceObject {
    /// Source bucket name.
    pub bucket: String,
    /// Decoded object key.
    pub key: String,
    /// Size in bytes, when the event carries it.
    pub size: Option<u64>,
    /// The ETag the event announced, without quotes.
    pub etag: Option<String>,
    /// Version id, when the source bucket is versioned.
    pub version_id: Option<String>,
    /// Event time as given (RFC 3339).
    pub event_time: Option<String>,
    /// Event name in S3 notification spelling, e.g. `ObjectCreated:Put`.
    pub event_name: String,
}

impl SourceObject {
    /// Whether the event announced a removal (`ObjectRemoved:Delete` or
    /// `ObjectRemoved:DeleteMarkerCreated`, in any event shape) rather than a creation.
    pub fn is_removal(&self) -> bool {
        self.event_name.starts_with("ObjectRemoved:")
    }
}

#[cfg(test)]
impl SourceObject {
    /// An object of one byte announced as created, without ETag or times (unit tests).
    pub(crate) fn created(bucket: &str, key: &str) -> SourceObject {
        SourceObject {
            bucket: bucket.into(),
            key: key.into(),
            size: Some(1),
            etag: None,
            version_id: None,
            event_time: None,
            event_name: "ObjectCreated:Put".into(),
        }
    }
}

/// What one record of an event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordBody {
    /// An object was created: route and copy it.
    Object(SourceObject),
    /// A well-formed record that is not an object creation (a test event, a deletion, …).
    Ignored {
        /// Bucket named by the record, if any.
        bucket: Option<String>,
        /// Key named by the record, if any.
        key: Option<String>,
        /// Why nothing is done.
        reason: String,
    },
    /// A record that could not be understood; reported as failed.
    Invalid {
        /// What is wrong, naming the field.
        reason: String,
    },
}

/// One record with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// Path of the record inside the event, e.g. `Records[1].body.Records[0]`.
    pub locator: String,
    /// The SQS message that carried the record, for partial batch responses.
    pub message_id: Option<String>,
    /// The S3 Batch Operations task, answered by id.
    pub task_id: Option<String>,
    /// What the record asks for.
    pub body: RecordBody,
}

/// How the function was invoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Trigger {
    /// S3 notifications delivered directly.
    S3,
    /// Through an SQS queue (partial batch responses apply).
    Sqs,
    /// Through an SNS topic.
    Sns,
    /// An EventBridge event.
    EventBridge,
    /// An S3 Batch Operations job (backfills).
    BatchOperations,
}

/// An invocation event reduced to its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEvent {
    /// The outermost event source.
    pub trigger: Trigger,
    /// Every record, in event order.
    pub records: Vec<EventRecord>,
    /// For Batch Operations: what the response must echo.
    pub batch: Option<BatchJob>,
}

/// An event that is not any of the accepted shapes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    /// The input is not JSON.
    #[error("event is not valid JSON at line {line} column {column}: {message}")]
    NotJson {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Parser message.
        message: String,
    },
    /// JSON, but no known event shape.
    #[error("event has an unknown shape: {0}")]
    UnknownShape(String),
    /// More than [`MAX_EVENT_BYTES`]; nothing beyond the limit was read.
    #[error("event {origin}: larger than the {} limit (Lambda's own cap on an invocation's payload); expected a smaller event", human(*limit))]
    TooLarge {
        /// The file, `stdin`, or `text` for text handed over.
        origin: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The file or stdin could not be read.
    #[error("event {origin}: could not be read: {reason}")]
    Unreadable {
        /// The file or `stdin`.
        origin: String,
        /// The I/O error, or "not UTF-8 text".
        reason: String,
    },
}

/// Parses event JSON text of at most [`MAX_EVENT_BYTES`].
pub fn parse_event_text(text: &str) -> Result<ParsedEvent, EventError> {
    if text.len() as u64 > MAX_EVENT_BYTES {
        return Err(EventError::TooLarge {
            origin: "text".into(),
            limit: MAX_EVENT_BYTES,
        });
    }
    // A `Records` list is read one record at a time: a whole JSON tree costs about ten times
    // the event's size, one record's tree a few KiB.
    if let Some(records) = records_list(text) {
        return Ok(envelope::records(
            records.iter().map(|raw| serde_json::from_str::<Value>(raw.get())),
        ));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| EventError::NotJson {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    parse_event(&value)
}

/// The raw entries of the top-level `Records` list, when the event is an object with one
/// that is a list and is not a Batch Operations job (whose shape wins in [`parse_event`]).
/// `None` sends every other text (other shapes, bad JSON) through the whole-tree path.
fn records_list(text: &str) -> Option<Vec<&RawValue>> {
    let top: BTreeMap<String, &RawValue> = serde_json::from_str(text).ok()?;
    if top.contains_key("invocationSchemaVersion") {
        return None;
    }
    serde_json::from_str(top.get("Records")?.get()).ok()
}

/// Parses an already-decoded event.
pub fn parse_event(value: &Value) -> Result<ParsedEvent, EventError> {
    let Value::Object(top) = value else {
        return Err(EventError::UnknownShape(format!(
            "expected a JSON object, got {}",
            short(value)
        )));
    };
    if top.contains_key("invocationSchemaVersion") {
        return batch::parse_batch(top);
    }
    if let Some(records) = top.get("Records") {
        let Value::Array(records) = records else {
            return Err(EventError::UnknownShape("Records: expected a list".into()));
        };
        return Ok(envelope::records(
            records.iter().map(Ok::<_, std::convert::Infallible>),
        ));
    }
    if s3::is_test_event(top) {
        return Ok(ParsedEvent {
            trigger: Trigger::S3,
            records: vec![s3::test_event_record("event".into(), None, top)],
            batch: None,
        });
    }
    if eventbridge::is_eventbridge(top) {
        let body = eventbridge::body("event", top);
        return Ok(ParsedEvent {
            trigger: Trigger::EventBridge,
            records: vec![EventRecord {
                locator: "event".into(),
                message_id: None,
                task_id: None,
                body,
            }],
            batch: None,
        });
    }
    // Field names are outside text: escaped, so the error stays one line.
    let mut fields: Vec<String> = top.keys().take(8).map(|k| escape_controls(k.as_str())).collect();
    fields.sort_unstable();
    Err(EventError::UnknownShape(format!(
        "expected an S3 notification (Records[] from aws:s3), SQS, SNS, EventBridge (source aws.s3) or s3:TestEvent; got an object with fields [{}]",
        fields.join(", ")
    )))
}

// Field readers shared by the decoders.

fn optional_size(value: Option<&Value>) -> Result<Option<u64>, &'static str> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or("expected a whole number of bytes"),
        Some(_) => Err("expected a whole number of bytes"),
    }
}

fn clean_etag(etag: &str) -> Option<String> {
    non_empty(etag.trim_matches('"'))
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty() && s != "null").then(|| s.to_string())
}

fn invalid(locator: &str, field: &str, what: &str) -> RecordBody {
    let at = if field.is_empty() {
        locator.to_string()
    } else {
        format!("{locator}.{field}")
    };
    RecordBody::Invalid {
        reason: format!("{at}: {what}"),
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}
