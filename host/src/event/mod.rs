//! Every event shape the function is invoked with, unwrapped into [`SourceObject`]s.
//!
//! Accepted: S3 notifications (`Records[].eventSource == "aws:s3"`), `s3:TestEvent`, the
//! same carried in SQS message bodies, in SNS messages, in SNS inside SQS, and EventBridge
//! "Object Created" events, directly or through SQS. A record that cannot be understood
//! becomes [`RecordBody::Invalid`] with a reason naming where it is, so it is reported as
//! failed instead of vanishing; only an event whose overall shape is unknown is an error.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

pub use crate::bounded::MAX_EVENT_BYTES;
use crate::bounded::{ReadError, human, read_to_limit};
use crate::logging::escape_controls;
use crate::s3::keys::decode_notification_key;

mod batch;

pub use batch::{BatchJob, BucketArnError, ResultCode, bucket_from_arn};

/// One object announced as created.
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

/// Reads event text from a file, or from stdin for `-`, never more than [`MAX_EVENT_BYTES`]
/// (plus the one byte that shows it is too large).
pub fn read_event_text(path: &Path) -> Result<String, EventError> {
    let (origin, bytes) = if path == Path::new("-") {
        (
            "stdin".to_string(),
            read_to_limit(std::io::stdin().lock(), MAX_EVENT_BYTES),
        )
    } else {
        let origin = path.display().to_string();
        let bytes = std::fs::File::open(path)
            .map_err(|e| ReadError::Failed(e.to_string()))
            .and_then(|file| read_to_limit(file, MAX_EVENT_BYTES));
        (origin, bytes)
    };
    match bytes {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| EventError::Unreadable {
            origin,
            reason: "not UTF-8 text".into(),
        }),
        Err(ReadError::TooLarge { limit }) => Err(EventError::TooLarge { origin, limit }),
        Err(ReadError::Failed(reason)) => Err(EventError::Unreadable { origin, reason }),
    }
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
        return Ok(parse_raw_records(&records));
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

/// [`parse_event`]'s `Records` branch over raw entries, each parsed, read and dropped in turn.
fn parse_raw_records(records: &[&RawValue]) -> ParsedEvent {
    let mut trigger = Trigger::S3;
    let mut out = Vec::with_capacity(records.len());
    for (i, raw) in records.iter().enumerate() {
        let locator = format!("Records[{i}]");
        // The text was read as JSON already, so this fails only past serde_json's depth limit.
        match serde_json::from_str::<Value>(raw.get()) {
            Ok(record) => {
                if i == 0 {
                    trigger = records_trigger(Some(&record));
                }
                outer_record(&locator, &record, &mut out);
            }
            Err(e) => out.push(EventRecord {
                locator: locator.clone(),
                message_id: None,
                task_id: None,
                body: invalid(&locator, "", &format!("not readable as JSON: {e}")),
            }),
        }
    }
    ParsedEvent {
        trigger,
        records: out,
        batch: None,
    }
}

/// What invoked the function, from the first record of a `Records` list.
fn records_trigger(first: Option<&Value>) -> Trigger {
    match first.and_then(record_source) {
        Some("aws:sqs") => Trigger::Sqs,
        Some("aws:sns") => Trigger::Sns,
        _ => Trigger::S3,
    }
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
        let trigger = records_trigger(records.first());
        let mut out = Vec::new();
        for (i, record) in records.iter().enumerate() {
            outer_record(&format!("Records[{i}]"), record, &mut out);
        }
        return Ok(ParsedEvent {
            trigger,
            records: out,
            batch: None,
        });
    }
    if is_test_event(top) {
        return Ok(ParsedEvent {
            trigger: Trigger::S3,
            records: vec![test_event_record("event".into(), None, top)],
            batch: None,
        });
    }
    if is_eventbridge(top) {
        let body = eventbridge_body("event", top);
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

fn record_source(record: &Value) -> Option<&str> {
    record
        .get("eventSource")
        .or_else(|| record.get("EventSource"))
        .and_then(Value::as_str)
}

/// A record of the outermost `Records` list: S3 itself, an SQS message or an SNS delivery.
fn outer_record(locator: &str, record: &Value, out: &mut Vec<EventRecord>) {
    let push_one = |out: &mut Vec<EventRecord>, message_id: Option<String>, body| {
        out.push(EventRecord {
            locator: locator.to_string(),
            message_id,
            task_id: None,
            body,
        })
    };
    match record_source(record) {
        Some("aws:s3") => push_one(out, None, s3_record(locator, record)),
        Some("aws:sqs") => {
            let message_id = record
                .get("messageId")
                .and_then(Value::as_str)
                .map(str::to_string);
            let Some(message) = &message_id else {
                return push_one(
                    out,
                    None,
                    invalid(locator, "messageId", "missing; expected a string"),
                );
            };
            let locator = format!("{locator} (SQS message {message})");
            match record.get("body").and_then(Value::as_str) {
                Some(body) => nested_message(&locator, "body", body, Some(message), out),
                None => push_one(
                    out,
                    message_id.clone(),
                    invalid(&locator, "body", "missing; expected a string"),
                ),
            }
        }
        Some("aws:sns") => match record.pointer("/Sns/Message").and_then(Value::as_str) {
            Some(message) => nested_message(locator, "Sns.Message", message, None, out),
            None => push_one(
                out,
                None,
                invalid(locator, "Sns.Message", "missing; expected a string"),
            ),
        },
        Some(other) => push_one(
            out,
            None,
            invalid(
                locator,
                "eventSource",
                &format!("{other:?} is not supported; expected aws:s3, aws:sqs or aws:sns"),
            ),
        ),
        None => push_one(
            out,
            None,
            invalid(
                locator,
                "eventSource",
                "missing; expected aws:s3, aws:sqs or aws:sns",
            ),
        ),
    }
}

/// A JSON document carried as a string (SQS body, SNS message): S3 notification, test
/// event, SNS envelope (SNS → SQS without raw delivery) or EventBridge event.
fn nested_message(
    parent: &str,
    field: &str,
    text: &str,
    message_id: Option<&str>,
    out: &mut Vec<EventRecord>,
) {
    let locator = format!("{parent}.{field}");
    let record = |locator: String, body| EventRecord {
        locator,
        message_id: message_id.map(str::to_string),
        task_id: None,
        body,
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return out.push(record(
                locator.clone(),
                RecordBody::Invalid {
                    reason: format!(
                        "{locator}: not JSON (line {} column {}): {e}",
                        e.line(),
                        e.column()
                    ),
                },
            ));
        }
    };
    let Value::Object(fields) = &value else {
        return out.push(record(
            locator.clone(),
            invalid(&locator, "", "expected a JSON object"),
        ));
    };
    if let Some(Value::Array(records)) = fields.get("Records") {
        for (i, inner) in records.iter().enumerate() {
            let inner_locator = format!("{locator}.Records[{i}]");
            let body = match record_source(inner) {
                Some("aws:s3") => s3_record(&inner_locator, inner),
                _ => invalid(&inner_locator, "eventSource", "expected aws:s3"),
            };
            out.push(record(inner_locator, body));
        }
    } else if is_test_event(fields) {
        out.push(test_event_record(locator, message_id, fields));
    } else if fields.get("Type").and_then(Value::as_str) == Some("Notification") {
        match fields.get("Message").and_then(Value::as_str) {
            Some(inner) => nested_message(&locator, "Message", inner, message_id, out),
            None => out.push(record(
                locator.clone(),
                invalid(&locator, "Message", "missing; expected a string"),
            )),
        }
    } else if is_eventbridge(fields) {
        out.push(record(locator.clone(), eventbridge_body(&locator, fields)));
    } else {
        out.push(record(
            locator.clone(),
            invalid(
                &locator,
                "",
                "expected an S3 notification, s3:TestEvent, SNS notification or EventBridge event",
            ),
        ));
    }
}

fn is_test_event(fields: &Map<String, Value>) -> bool {
    fields.get("Event").and_then(Value::as_str) == Some("s3:TestEvent")
}

fn is_eventbridge(fields: &Map<String, Value>) -> bool {
    fields.get("source").and_then(Value::as_str) == Some("aws.s3") && fields.contains_key("detail-type")
}

fn test_event_record(locator: String, message_id: Option<&str>, fields: &Map<String, Value>) -> EventRecord {
    EventRecord {
        locator,
        message_id: message_id.map(str::to_string),
        task_id: None,
        body: RecordBody::Ignored {
            bucket: fields.get("Bucket").and_then(Value::as_str).map(str::to_string),
            key: None,
            reason: "s3:TestEvent acknowledged".into(),
        },
    }
}

fn s3_record(locator: &str, record: &Value) -> RecordBody {
    let event_name = match record.get("eventName").and_then(Value::as_str) {
        Some(name) => name,
        None => {
            return invalid(
                locator,
                "eventName",
                "missing; expected a string such as ObjectCreated:Put",
            );
        }
    };
    let bucket = match record.pointer("/s3/bucket/name").and_then(Value::as_str) {
        Some(b) if !b.is_empty() => b.to_string(),
        _ => {
            return invalid(
                locator,
                "s3.bucket.name",
                "missing; expected the source bucket name",
            );
        }
    };
    let raw_key = match record.pointer("/s3/object/key").and_then(Value::as_str) {
        Some(k) => k,
        None => {
            return invalid(
                locator,
                "s3.object.key",
                "missing; expected the URL-encoded object key",
            );
        }
    };
    let key = match decode_notification_key(raw_key) {
        Ok(k) => k,
        Err(e) => return invalid(locator, "s3.object.key", &e.to_string()),
    };
    if !event_name.starts_with("ObjectCreated:") {
        return RecordBody::Ignored {
            bucket: Some(bucket),
            key: Some(key),
            reason: format!("event {event_name} is not an object creation"),
        };
    }
    let object = record.pointer("/s3/object").unwrap_or(&Value::Null);
    let size = match optional_size(object.get("size")) {
        Ok(size) => size,
        Err(why) => return invalid(locator, "s3.object.size", why),
    };
    RecordBody::Object(SourceObject {
        bucket,
        key,
        size,
        etag: object.get("eTag").and_then(Value::as_str).and_then(clean_etag),
        version_id: object
            .get("versionId")
            .and_then(Value::as_str)
            .and_then(non_empty),
        event_time: record
            .get("eventTime")
            .and_then(Value::as_str)
            .map(str::to_string),
        event_name: event_name.to_string(),
    })
}

fn eventbridge_body(locator: &str, fields: &Map<String, Value>) -> RecordBody {
    let detail_type = fields
        .get("detail-type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let detail = fields.get("detail").unwrap_or(&Value::Null);
    let bucket = detail
        .pointer("/bucket/name")
        .and_then(Value::as_str)
        .map(str::to_string);
    let raw_key = detail.pointer("/object/key").and_then(Value::as_str);
    if detail_type != "Object Created" {
        return RecordBody::Ignored {
            bucket,
            key: raw_key.and_then(|k| decode_notification_key(k).ok()),
            reason: format!("EventBridge event {detail_type:?} is not an object creation"),
        };
    }
    let Some(bucket) = bucket.filter(|b| !b.is_empty()) else {
        return invalid(
            locator,
            "detail.bucket.name",
            "missing; expected the source bucket name",
        );
    };
    let Some(raw_key) = raw_key else {
        return invalid(locator, "detail.object.key", "missing; expected the object key");
    };
    let key = match decode_notification_key(raw_key) {
        Ok(k) => k,
        Err(e) => return invalid(locator, "detail.object.key", &e.to_string()),
    };
    let size = match optional_size(detail.pointer("/object/size")) {
        Ok(size) => size,
        Err(why) => return invalid(locator, "detail.object.size", why),
    };
    let reason = detail
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("PutObject");
    let event_name = match reason {
        "PutObject" => "ObjectCreated:Put",
        "POST Object" => "ObjectCreated:Post",
        "CopyObject" => "ObjectCreated:Copy",
        "CompleteMultipartUpload" => "ObjectCreated:CompleteMultipartUpload",
        _ => "ObjectCreated:Put",
    };
    RecordBody::Object(SourceObject {
        bucket,
        key,
        size,
        etag: detail
            .pointer("/object/etag")
            .and_then(Value::as_str)
            .and_then(clean_etag),
        version_id: detail
            .pointer("/object/version-id")
            .and_then(Value::as_str)
            .and_then(non_empty),
        event_time: fields.get("time").and_then(Value::as_str).map(str::to_string),
        event_name: event_name.to_string(),
    })
}

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
