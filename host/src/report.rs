//! Outcomes of an invocation: one entry per record, totals, and the SQS partial batch
//! response. This is what the handler returns and what `invoke` prints.

use serde::Serialize;

use serde_json::{Value, json};

use crate::destination::{CopyError, Delivery, StopReason};
use crate::event::{BatchJob, EventRecord, RecordBody, ResultCode, Trigger};

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// The object is in the destination.
    Copied,
    /// Nothing to do (no org, suffix not selected, not a creation, test event, loop).
    Skipped,
    /// The source changed or vanished since the event; its newer version's event exports it.
    Superseded,
    /// Could not be copied; the invocation fails so Lambda retries or dead-letters it.
    Failed,
}

/// One record's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordReport {
    /// Where the record sits in the event.
    pub record: String,
    /// Source bucket, when the record named one.
    pub source_bucket: Option<String>,
    /// Decoded source key, when the record named one.
    pub key: Option<String>,
    /// The org that owns the key.
    pub org: Option<String>,
    /// What happened.
    pub outcome: Outcome,
    /// Destination bucket, for copies (attempted or done).
    pub destination_bucket: Option<String>,
    /// Destination key, for copies (attempted or done).
    pub destination_key: Option<String>,
    /// Why it was skipped, superseded or failed.
    pub reason: Option<String>,
    /// The S3 error code of a failure.
    pub error_code: Option<String>,
    /// Bytes copied.
    pub bytes: Option<u64>,
    /// Attempts of the most-retried S3 request.
    pub attempts: u32,
    /// Wall time spent on the record.
    pub ms: u64,
    /// Every copy, when a plugin fanned the object out to more than one target.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetReport>,
    /// The SQS message that carried the record.
    #[serde(skip)]
    pub message_id: Option<String>,
    /// The Batch Operations task of the record.
    #[serde(skip)]
    pub task_id: Option<String>,
    /// Whether a failure was retryable (throttling, 5xx, timeouts): for Batch Operations,
    /// TemporaryFailure rather than PermanentFailure.
    #[serde(skip)]
    pub retryable: bool,
}

impl Outcome {
    /// The outcome as it is spelled in reports and logs.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Copied => "copied",
            Outcome::Skipped => "skipped",
            Outcome::Superseded => "superseded",
            Outcome::Failed => "failed",
        }
    }
}

/// One copy of a record to one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetReport {
    /// Destination bucket.
    pub destination_bucket: String,
    /// Destination key.
    pub destination_key: String,
    /// What happened to this copy.
    pub outcome: Outcome,
    /// Why it was superseded or failed.
    pub reason: Option<String>,
    /// The S3 error code of a failure.
    pub error_code: Option<String>,
    /// Bytes copied.
    pub bytes: Option<u64>,
    /// Attempts of the most-retried S3 request.
    pub attempts: u32,
    /// Whether a failure was retryable.
    #[serde(skip)]
    pub retryable: bool,
}

impl RecordReport {
    /// A record that failed until something says otherwise: every path through the handler
    /// must set its outcome, so a record it forgets is reported failed, never lost.
    pub fn failed(record: String, message_id: Option<String>, task_id: Option<String>) -> Self {
        RecordReport {
            record,
            source_bucket: None,
            key: None,
            org: None,
            outcome: Outcome::Failed,
            destination_bucket: None,
            destination_key: None,
            reason: None,
            error_code: None,
            bytes: None,
            attempts: 0,
            ms: 0,
            targets: Vec::new(),
            message_id,
            task_id,
            retryable: false,
        }
    }

    /// A record whose work was cut short by `reason` before it could finish (or start):
    /// failed and retryable, so it comes back.
    pub fn cut_short(record: &EventRecord, reason: StopReason) -> Self {
        Self::refused(
            record,
            reason.code(),
            format!("{}: {}", reason.code(), reason.message()),
            true,
        )
    }

    /// A record failed before any work, with its `code` and `reason`.
    pub fn refused(record: &EventRecord, code: &str, reason: String, retryable: bool) -> Self {
        let mut report = RecordReport::failed(
            record.locator.clone(),
            record.message_id.clone(),
            record.task_id.clone(),
        );
        if let RecordBody::Object(object) = &record.body {
            report.source_bucket = Some(object.bucket.clone());
            report.key = Some(object.key.clone());
        }
        report.reason = Some(reason);
        report.error_code = Some(code.to_string());
        report.retryable = retryable;
        report
    }

    /// The record after its log line was written.
    pub fn logged(self) -> Self {
        self.log();
        self
    }

    /// The record's log line: `error` for a failure, `info` otherwise.
    pub fn log(&self) {
        let fields = (
            self.source_bucket.as_deref().unwrap_or("-"),
            self.key.as_deref().unwrap_or("-"),
            self.org.as_deref().unwrap_or("-"),
            self.destination_bucket.as_deref().unwrap_or("-"),
            self.reason.as_deref().unwrap_or(""),
        );
        let outcome = self.outcome.name();
        if self.outcome == Outcome::Failed {
            tracing::error!(outcome, bucket = fields.0, key = fields.1, org = fields.2, destination = fields.3, reason = fields.4, attempts = self.attempts, ms = self.ms, record = %self.record, "record");
        } else {
            tracing::info!(
                outcome,
                bucket = fields.0,
                key = fields.1,
                org = fields.2,
                destination = fields.3,
                reason = fields.4,
                attempts = self.attempts,
                ms = self.ms,
                "record"
            );
        }
    }

    /// Folds the copies of this record into it: the first target's destination, the worst
    /// outcome (failed, then superseded, then copied), and every target listed when there
    /// is more than one.
    pub fn merge_targets(&mut self, targets: Vec<TargetReport>) {
        let rank = |o: Outcome| match o {
            Outcome::Failed => 3,
            Outcome::Superseded => 2,
            Outcome::Copied => 1,
            Outcome::Skipped => 0,
        };
        let Some(first) = targets.first() else { return };
        self.destination_bucket = Some(first.destination_bucket.clone());
        self.destination_key = Some(first.destination_key.clone());
        let worst = targets.iter().max_by_key(|t| rank(t.outcome)).unwrap_or(first);
        self.outcome = worst.outcome;
        self.reason = worst.reason.clone();
        self.error_code = worst.error_code.clone();
        self.retryable = worst.retryable;
        self.attempts = targets.iter().map(|t| t.attempts).max().unwrap_or(0);
        let copied: Vec<u64> = targets
            .iter()
            .filter(|t| t.outcome == Outcome::Copied)
            .filter_map(|t| t.bytes)
            .collect();
        self.bytes = (!copied.is_empty()).then(|| copied.iter().sum());
        if targets.len() > 1 {
            self.targets = targets;
        }
    }
}

impl From<Delivery> for TargetReport {
    fn from(delivery: Delivery) -> Self {
        let mut report = TargetReport {
            destination_bucket: delivery.target.bucket,
            destination_key: delivery.target.key,
            outcome: Outcome::Failed,
            reason: None,
            error_code: None,
            bytes: None,
            attempts: delivery.attempts,
            retryable: false,
        };
        match delivery.result {
            Ok(copied) => {
                report.outcome = Outcome::Copied;
                report.bytes = copied.bytes;
            }
            Err(CopyError::Superseded(why)) => {
                report.outcome = Outcome::Superseded;
                report.reason = Some(why);
            }
            Err(CopyError::Failed(failure)) => {
                report.retryable = failure.retryable;
                report.error_code = Some(failure.code.clone());
                report.reason = Some(if failure.retryable {
                    format!("{failure} (gave up after {} attempts)", delivery.attempts)
                } else {
                    failure.to_string()
                });
            }
        }
        report
    }
}

/// Counts per outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Records seen.
    pub records: usize,
    /// Records copied.
    pub copied: usize,
    /// Records skipped.
    pub skipped: usize,
    /// Records superseded.
    pub superseded: usize,
    /// Records failed.
    pub failed: usize,
    /// Bytes copied in all.
    pub bytes_copied: u64,
}

/// The `errorType` of an invocation failed because records failed.
pub const RECORDS_FAILED: &str = "RecordsFailed";

/// An SQS message to be retried (partial batch response).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemFailure {
    /// The SQS message id.
    pub item_identifier: String,
}

/// The result of one invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// How the function was invoked.
    pub trigger: Trigger,
    /// One entry per record, in event order.
    pub records: Vec<RecordReport>,
    /// Counts per outcome.
    pub totals: Totals,
    /// For SQS: the messages with a failed record (and only those).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_item_failures: Option<Vec<BatchItemFailure>>,
    /// For S3 Batch Operations: the job to answer.
    #[serde(skip)]
    pub batch: Option<BatchJob>,
}

/// One task's answer to S3 Batch Operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    /// The task id, as received.
    pub task_id: String,
    /// Succeeded, TemporaryFailure or PermanentFailure.
    pub result_code: ResultCode,
    /// What happened, for the job's completion report.
    pub result_string: String,
}

impl Report {
    /// Builds totals and, for SQS, the partial batch response.
    pub fn new(trigger: Trigger, records: Vec<RecordReport>) -> Self {
        let mut totals = Totals {
            records: records.len(),
            ..Totals::default()
        };
        for r in &records {
            match r.outcome {
                Outcome::Copied => {
                    totals.copied += 1;
                    totals.bytes_copied += r.bytes.unwrap_or(0);
                }
                Outcome::Skipped => totals.skipped += 1,
                Outcome::Superseded => totals.superseded += 1,
                Outcome::Failed => totals.failed += 1,
            }
        }
        let batch_item_failures = (trigger == Trigger::Sqs).then(|| {
            let mut ids: Vec<&str> = Vec::new();
            for r in records.iter().filter(|r| r.outcome == Outcome::Failed) {
                if let Some(id) = r.message_id.as_deref()
                    && !ids.contains(&id)
                {
                    ids.push(id);
                }
            }
            ids.into_iter()
                .map(|id| BatchItemFailure {
                    item_identifier: id.to_string(),
                })
                .collect()
        });
        Report {
            trigger,
            records,
            totals,
            batch_item_failures,
            batch: None,
        }
    }

    /// Attaches the Batch Operations job the invocation came with.
    pub fn with_batch(mut self, batch: Option<BatchJob>) -> Self {
        self.batch = batch;
        self
    }

    /// What the Lambda returns: the Batch Operations response for a Batch Operations job
    /// (every task answered with a result code), the report itself otherwise.
    pub fn lambda_response(&self) -> Value {
        match &self.batch {
            Some(job) => json!({
                "invocationSchemaVersion": job.schema_version,
                "treatMissingKeysAs": job.treat_missing_keys_as,
                "invocationId": job.invocation_id,
                "results": self.task_results(job),
            }),
            None => serde_json::to_value(self).unwrap_or(Value::Null),
        }
    }

    /// What Lambda answers the invoker, as the runtime loop (`lambda.rs`) returns it: the
    /// [`lambda_response`](Self::lambda_response) when the invocation succeeds, else the
    /// invocation error `{"errorType": "RecordsFailed", "errorMessage": …}` (Lambda retries
    /// the event, then dead-letters it). `invoke --output response` prints this.
    pub fn lambda_answer(&self) -> Value {
        if self.must_fail_invocation() {
            json!({
                "errorType": RECORDS_FAILED,
                "errorMessage": self.failure_summary(),
            })
        } else {
            self.lambda_response()
        }
    }

    /// Each task's result code: copied and ordinary skips succeed; an object no org owns
    /// (or a destination bucket's own object) is a permanent failure, as are non-retryable
    /// errors; throttling and 5xx are temporary (S3 retries the task); a source that no
    /// longer exists follows `treatMissingKeysAs`.
    pub fn task_results(&self, job: &BatchJob) -> Vec<TaskResult> {
        self.records
            .iter()
            .filter_map(|r| {
                let reason = r.reason.clone().unwrap_or_default();
                let (code, text) = match r.outcome {
                    Outcome::Copied => (
                        ResultCode::Succeeded,
                        format!(
                            "copied to s3://{}/{}",
                            r.destination_bucket.as_deref().unwrap_or_default(),
                            r.destination_key.as_deref().unwrap_or_default()
                        ),
                    ),
                    Outcome::Skipped if r.org.is_none() => (ResultCode::PermanentFailure, reason),
                    Outcome::Skipped => (ResultCode::Succeeded, format!("skipped: {reason}")),
                    Outcome::Superseded => (job.treat_missing_keys_as, reason),
                    Outcome::Failed if r.retryable => (ResultCode::TemporaryFailure, reason),
                    Outcome::Failed => (ResultCode::PermanentFailure, reason),
                };
                Some(TaskResult {
                    task_id: r.task_id.clone()?,
                    result_code: code,
                    result_string: text,
                })
            })
            .collect()
    }

    /// Whether Lambda must see this invocation as failed: any failed record, except under
    /// SQS where the partial batch response already names every failed message. A failed
    /// record without a message id cannot be named there, so it fails the whole batch.
    pub fn must_fail_invocation(&self) -> bool {
        let failed = || self.records.iter().filter(|r| r.outcome == Outcome::Failed);
        match self.trigger {
            Trigger::Sqs => failed().any(|r| r.message_id.is_none()),
            // Every task is answered with its own result code.
            Trigger::BatchOperations => false,
            _ => failed().next().is_some(),
        }
    }

    /// One line naming each failed record, for the invocation error.
    pub fn failure_summary(&self) -> String {
        let failed: Vec<String> = self
            .records
            .iter()
            .filter(|r| r.outcome == Outcome::Failed)
            .map(|r| {
                format!(
                    "{} ({})",
                    r.key.as_deref().unwrap_or(&r.record),
                    r.error_code
                        .as_deref()
                        .or(r.reason.as_deref())
                        .unwrap_or("failed")
                )
            })
            .collect();
        format!(
            "{} of {} records failed: {}",
            failed.len(),
            self.records.len(),
            failed.join(", ")
        )
    }
}
