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

/// Why an `s3BucketArn` names no bucket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{arn:?} is not an S3 bucket ARN ({why}); expected arn:PARTITION:s3:::BUCKET, e.g. arn:aws:s3:::bucket or arn:aws-cn:s3:::bucket"
)]
pub struct BucketArnError {
    /// The ARN as received.
    pub arn: String,
    /// Which part is wrong.
    pub why: &'static str,
}

/// The bucket of an S3 bucket ARN, `arn:PARTITION:s3:::BUCKET`, in any AWS partition: `aws`,
/// `aws-cn`, `aws-us-gov`, `aws-iso`, `aws-iso-b`, `aws-eusc`, … (`aws` or `aws-` followed by
/// lowercase letters, digits and dashes, so partitions AWS adds later are accepted too).
/// Region and account are empty in bucket ARNs; an object ARN (`bucket/key`) is refused.
pub fn bucket_from_arn(arn: &str) -> Result<&str, BucketArnError> {
    let fail = |why| BucketArnError {
        arn: arn.to_string(),
        why,
    };
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(service), Some(region), Some(account), Some(bucket)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(fail("not six colon-separated fields"));
    };
    if !is_partition(partition) {
        return Err(fail("unknown partition"));
    }
    if service != "s3" {
        return Err(fail("service is not s3"));
    }
    if !region.is_empty() || !account.is_empty() {
        return Err(fail("region and account must be empty"));
    }
    if bucket.is_empty() {
        return Err(fail("no bucket name"));
    }
    if bucket.contains('/') {
        return Err(fail("an object ARN, not a bucket ARN"));
    }
    if bucket
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == ':')
    {
        return Err(fail("the bucket name has characters no bucket name has"));
    }
    Ok(bucket)
}

/// `aws`, or `aws-` and dash-separated groups of lowercase letters and digits.
fn is_partition(partition: &str) -> bool {
    match partition.strip_prefix("aws") {
        Some("") => true,
        Some(rest) => rest.strip_prefix('-').is_some_and(|rest| {
            rest.split('-').all(|group| {
                !group.is_empty()
                    && group
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
        }),
        None => false,
    }
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
        let locator = format!("{locator} (task {task_id})");
        let body = task_body(&locator, task);
        records.push(EventRecord {
            locator,
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
        (_, Some(Value::String(arn))) => match bucket_from_arn(arn) {
            Ok(b) => b.to_string(),
            Err(e) => return invalid("s3BucketArn", &e.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_partition_is_accepted() {
        for p in [
            "aws",
            "aws-cn",
            "aws-us-gov",
            "aws-iso",
            "aws-iso-b",
            "aws-iso-e",
            "aws-iso-f",
            "aws-eusc",
        ] {
            assert_eq!(
                bucket_from_arn(&format!("arn:{p}:s3:::my-bucket")),
                Ok("my-bucket"),
                "{p}"
            );
        }
    }

    #[test]
    fn what_names_no_bucket_says_why() {
        for (arn, why) in [
            ("my-bucket", "not six colon-separated fields"),
            ("arn:aws:s3:::", "no bucket name"),
            ("arn:aws:s3:::b/key.jpg", "an object ARN, not a bucket ARN"),
            (
                "arn:aws:s3:us-east-1:123456789012:b",
                "region and account must be empty",
            ),
            ("arn:aws:sqs:::b", "service is not s3"),
            ("arn:azure:s3:::b", "unknown partition"),
            ("arn:aws-:s3:::b", "unknown partition"),
            ("arn:aws--cn:s3:::b", "unknown partition"),
            ("arn:AWS:s3:::b", "unknown partition"),
            (
                "arn:aws:s3:::b\nINFO forged",
                "the bucket name has characters no bucket name has",
            ),
            (
                "arn:aws:s3:::a:b",
                "the bucket name has characters no bucket name has",
            ),
        ] {
            let e = bucket_from_arn(arn).unwrap_err();
            assert_eq!(e.why, why, "{arn:?}");
            assert!(!e.to_string().contains('\n'), "one line: {e}");
        }
    }
}
