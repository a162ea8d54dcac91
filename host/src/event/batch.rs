//! S3 Batch Operations invocations (schema 1.0 with `s3BucketArn`, 2.0 with `s3Bucket` and
//! `userArguments`): one task per object of a job's manifest.

use serde_json::{Map, Value};

use super::{EventError, EventRecord, ParsedEvent, RecordBody, SourceObject, Trigger};
use crate::s3::keys::decode_notification_key;

/// The result code S3 Batch Operations understands for one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ResultCode {
    /// Done (or nothing to do).
    Succeeded,
    /// Worth retrying: S3 retries the task.
    TemporaryFailure,
    /// Will not succeed: reported in the job's completion report.
    PermanentFailure,
}

/// What the response to a Batch Operations invocation must echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchJob {
    /// `invocationSchemaVersion` as received ("1.0" or "2.0").
    pub schema_version: String,
    /// `invocationId` as received.
    pub invocation_id: String,
    /// Result code for tasks whose source object no longer exists, and for tasks the
    /// response leaves out: `job.userArguments.treatMissingKeysAs` (default PermanentFailure).
    pub treat_missing_keys_as: ResultCode,
}

/// Parses a Batch Operations invocation; `top` has `invocationSchemaVersion`.
pub(super) fn parse_batch(top: &Map<String, Value>) -> Result<ParsedEvent, EventError> {
    let bad = |what: String| EventError::UnknownShape(format!("S3 Batch Operations invocation: {what}"));
    let schema_version = match top.get("invocationSchemaVersion").and_then(Value::as_str) {
        Some(v @ ("1.0" | "2.0")) => v.to_string(),
        other => {
            return Err(bad(format!(
                "invocationSchemaVersion {other:?} is not supported; expected \"1.0\" or \"2.0\""
            )));
        }
    };
    let invocation_id = top
        .get("invocationId")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("invocationId: missing; expected a string".into()))?
        .to_string();
    let treat_missing_keys_as = match top
        .get("job")
        .and_then(|job| job.pointer("/userArguments/treatMissingKeysAs"))
    {
        None => ResultCode::PermanentFailure,
        Some(Value::String(s)) => match s.as_str() {
            "Succeeded" => ResultCode::Succeeded,
            "TemporaryFailure" => ResultCode::TemporaryFailure,
            "PermanentFailure" => ResultCode::PermanentFailure,
            other => {
                return Err(bad(format!(
                    "job.userArguments.treatMissingKeysAs {other:?} is not valid; expected Succeeded, TemporaryFailure or PermanentFailure"
                )));
            }
        },
        Some(_) => {
            return Err(bad(
                "job.userArguments.treatMissingKeysAs: expected a string".into()
            ));
        }
    };
    let tasks = top
        .get("tasks")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("tasks: missing; expected a list".into()))?;
    let mut records = Vec::new();
    for (i, task) in tasks.iter().enumerate() {
        let locator = format!("tasks[{i}]");
        let task_id = task
            .get("taskId")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                bad(format!(
                    "{locator}.taskId: missing; every task must be answered by id"
                ))
            })?
            .to_string();
        let body = task_body(&locator, task);
        records.push(EventRecord {
            locator: format!("{locator} (task {task_id})"),
            message_id: None,
            task_id: Some(task_id),
            body,
        });
    }
    Ok(ParsedEvent {
        trigger: Trigger::BatchOperations,
        records,
        batch: Some(BatchJob {
            schema_version,
            invocation_id,
            treat_missing_keys_as,
        }),
    })
}

fn task_body(locator: &str, task: &Value) -> RecordBody {
    let invalid = |field: &str, what: &str| RecordBody::Invalid {
        reason: format!("{locator}.{field}: {what}"),
    };
    let bucket = match (task.get("s3Bucket"), task.get("s3BucketArn")) {
        (Some(Value::String(b)), _) if !b.is_empty() => b.clone(),
        (_, Some(Value::String(arn))) => match arn.strip_prefix("arn:aws:s3:::").filter(|b| !b.is_empty()) {
            Some(b) => b.to_string(),
            None => {
                return invalid(
                    "s3BucketArn",
                    &format!("{arn:?} is not a bucket ARN (arn:aws:s3:::bucket)"),
                );
            }
        },
        _ => {
            return invalid(
                "s3Bucket",
                "missing; expected s3Bucket (schema 2.0) or s3BucketArn (1.0)",
            );
        }
    };
    let key = match task.get("s3Key").and_then(Value::as_str) {
        // Batch Operations URL-encodes keys the way notifications do.
        Some(raw) => match decode_notification_key(raw) {
            Ok(k) => k,
            Err(e) => return invalid("s3Key", &e.to_string()),
        },
        None => return invalid("s3Key", "missing; expected the URL-encoded object key"),
    };
    RecordBody::Object(SourceObject {
        bucket,
        key,
        // Unknown: the copy heads the object and picks single or multipart by its size.
        size: None,
        // No ETag: a backfill copies whatever is current.
        etag: None,
        version_id: task
            .get("s3VersionId")
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_string),
        event_time: None,
        event_name: "BatchOperations:Copy".into(),
    })
}
