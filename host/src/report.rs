//! Outcomes of an invocation: one entry per record, totals, and the SQS partial batch
//! response. This is what the handler returns and what `invoke` prints.

use serde::Serialize;

use serde_json::{Value, json};

use crate::destination::{Checksum, CopyError, Delivery, StopReason};
use crate::event::{BatchJob, EventRecord, RecordBody, ResultCode, Trigger};
use crate::plan::PluginRun;
use crate::reason::ReasonCode;
use crate::s3::SourceChange;

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
    /// The kind of failure, from a fixed set: present exactly on failed records (set by
    /// [`Report::new`] to `Other` for a failed record no path gave a code).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<ReasonCode>,
    /// Bytes copied.
    pub bytes: Option<u64>,
    /// Attempts of the most-retried S3 request.
    pub attempts: u32,
    /// The copy's checksum (`{"algorithm", "value"}`), when it has one: verified against
    /// the source's full-object checksum where the source has one. With several targets,
    /// each target's is in `targets`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Checksum>,
    /// Wall time spent on the record.
    pub ms: u64,
    /// Export lag: milliseconds from the event's `eventTime` (the upload) to the copy's
    /// completion. Only for copied records whose event has an upload time: Batch Operations
    /// tasks and backfills have none (their object's age is not a lag), nor does an event
    /// with a missing or unreadable `eventTime`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_ms: Option<u64>,
    /// How the org's plugin fared on this record, for the plugin-health metrics.
    #[serde(skip)]
    pub plugin: Option<PluginRun>,
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
    /// How the source changed, when superseded: for Batch Operations, only a missing key
    /// follows `treatMissingKeysAs`.
    #[serde(skip)]
    pub change: Option<SourceChange>,
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
    /// The kind of failure, on failed copies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<ReasonCode>,
    /// Bytes copied.
    pub bytes: Option<u64>,
    /// Attempts of the most-retried S3 request.
    pub attempts: u32,
    /// The copy's checksum, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Checksum>,
    /// Whether a failure was retryable.
    #[serde(skip)]
    pub retryable: bool,
    /// How the source changed, when superseded.
    #[serde(skip)]
    pub change: Option<SourceChange>,
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
            reason_code: None,
            bytes: None,
            attempts: 0,
            checksum: None,
            ms: 0,
            lag_ms: None,
            plugin: None,
            targets: Vec::new(),
            message_id,
            task_id,
            retryable: false,
            change: None,
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
        report.reason_code = Some(ReasonCode::from_failure_code(code));
        report.retryable = retryable;
        report
    }

    /// Marks the record failed for `reason`, of kind `code`.
    pub fn fail(&mut self, code: ReasonCode, reason: String) {
        self.outcome = Outcome::Failed;
        self.reason_code = Some(code);
        self.reason = Some(reason);
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
            let code = self.reason_code.unwrap_or(ReasonCode::Other).as_str();
            tracing::error!(outcome, bucket = fields.0, key = fields.1, org = fields.2, destination = fields.3, reason = fields.4, "reasonCode" = code, attempts = self.attempts, ms = self.ms, record = %self.record, "record");
        } else {
            // `lagMs` only when there is one (an absent field, not a 0 or a -1), spelled as in the
            // report so one Logs Insights query reads both.
            tracing::info!(
                outcome,
                bucket = fields.0,
                key = fields.1,
                org = fields.2,
                destination = fields.3,
                reason = fields.4,
                attempts = self.attempts,
                ms = self.ms,
                "lagMs" = self.lag_ms,
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
        self.reason_code = worst.reason_code;
        self.retryable = worst.retryable;
        self.change = worst.change;
        self.attempts = targets.iter().map(|t| t.attempts).max().unwrap_or(0);
        let copied: Vec<u64> = targets
            .iter()
            .filter(|t| t.outcome == Outcome::Copied)
            .filter_map(|t| t.bytes)
            .collect();
        self.bytes = (!copied.is_empty()).then(|| copied.iter().sum());
        if targets.len() == 1 {
            self.checksum = first.checksum.clone();
        }
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
            reason_code: None,
            bytes: None,
            attempts: delivery.attempts,
            checksum: None,
            retryable: false,
            change: None,
        };
        match delivery.result {
            Ok(copied) => {
                report.outcome = Outcome::Copied;
                report.bytes = copied.bytes;
                report.checksum = copied.checksum;
            }
            Err(CopyError::Superseded(change)) => {
                report.outcome = Outcome::Superseded;
                report.reason = Some(change.to_string());
                report.change = Some(change);
            }
            Err(CopyError::Failed(failure)) => {
                report.retryable = failure.retryable;
                report.error_code = Some(failure.code.clone());
                report.reason_code = Some(ReasonCode::from_failure_code(&failure.code));
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
    /// Builds totals and, for SQS, the partial batch response. Every failed record leaves
    /// with a reason code (`Other` if no path gave one) and no other record has one.
    pub fn new(trigger: Trigger, mut records: Vec<RecordReport>) -> Self {
        let mut totals = Totals {
            records: records.len(),
            ..Totals::default()
        };
        for r in &mut records {
            r.reason_code = match r.outcome {
                Outcome::Failed => Some(r.reason_code.unwrap_or(ReasonCode::Other)),
                _ => None,
            };
        }
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
                    // A missing key follows the job's choice; an object overwritten while its
                    // task ran is exported by the newer version's own event.
                    Outcome::Superseded if r.change == Some(SourceChange::Deleted) => {
                        (job.treat_missing_keys_as, reason)
                    }
                    Outcome::Superseded => (ResultCode::Succeeded, format!("superseded: {reason}")),
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

/// Export lag in milliseconds: from `event_time` (RFC 3339, as S3 notifications and
/// EventBridge write it) to `completed_ms` (milliseconds since the Unix epoch). `None` when
/// the time cannot be read: a malformed `eventTime` costs the record its lag, never its
/// copy. A completion before the event (clock skew between S3 and the function) is 0.
pub fn lag_ms(event_time: &str, completed_ms: u64) -> Option<u64> {
    let event_ms = rfc3339_ms(event_time)?;
    let completed = i128::from(completed_ms);
    u64::try_from((completed - i128::from(event_ms)).max(0)).ok()
}

/// Milliseconds since the Unix epoch of an RFC 3339 timestamp:
/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (`T`/`Z` in either case, a space for `T`;
/// fraction digits past milliseconds are truncated; a leap second counts as the next second's
/// start). A parser of this one format instead of a date crate: the function reads no other.
pub fn rfc3339_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        part.iter()
            .try_fold(0i64, |n, d| n.checked_mul(10)?.checked_add(i64::from(d - b'0')))
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month) || day < 1 || day > month_days[(month - 1) as usize] {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut at = 19;
    let mut millis = 0;
    if b[at] == b'.' {
        let start = at + 1;
        at = start;
        while at < b.len() && b[at].is_ascii_digit() {
            at += 1;
        }
        if at == start {
            return None;
        }
        let fraction = &text[start..at.min(start + 3)];
        millis = fraction.parse::<i64>().ok()? * 10i64.pow(3 - fraction.len() as u32);
    }
    let offset_minutes = match b.get(at..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (digits(at + 1..at + 3)?, digits(at + 4..at + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if *sign == b'+' { minutes } else { -minutes }
        }
        _ => return None,
    };
    // Days since 1970-01-01 of the civil date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_as_s3_and_eventbridge_write_it() {
        // 2026-11-25T12:00:00Z is 1_795_608_000 s after the epoch.
        const NOON: i64 = 1_795_608_000_000;
        assert_eq!(rfc3339_ms("2026-11-25T12:00:00.000Z"), Some(NOON));
        assert_eq!(rfc3339_ms("2026-11-25T12:00:00Z"), Some(NOON));
        assert_eq!(rfc3339_ms("2026-11-25t12:00:00.250z"), Some(NOON + 250));
        assert_eq!(rfc3339_ms("2026-11-25 12:00:00.5Z"), Some(NOON + 500));
        assert_eq!(rfc3339_ms("2026-11-25T12:00:00.123456789Z"), Some(NOON + 123));
        assert_eq!(rfc3339_ms("2026-11-25T14:00:00+02:00"), Some(NOON));
        assert_eq!(rfc3339_ms("2026-11-25T06:30:00.000-05:30"), Some(NOON));
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_ms("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(rfc3339_ms("1969-12-31T23:59:59Z"), Some(-1000));
    }

    #[test]
    fn malformed_times_are_none() {
        for bad in [
            "",
            "yesterday",
            "2026-11-25",
            "2026-11-25T12:00:00",
            "2026-11-25T12:00:00.Z",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-31T00:00:00Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25T12:60:00Z",
            "2026-11-25T12:00:00+2:00",
            "2026-11-25T12:00:00+24:00",
            "2026-11-25T12:00:00Zjunk",
            "2026-11-25X12:00:00Z",
            "+026-11-25T12:00:00Z",
            "2026-11-25T12:00:00.1é",
            "2026-１1-25T12:00:00Z",
        ] {
            assert_eq!(rfc3339_ms(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lag_is_completion_minus_event_time_and_never_negative() {
        let noon = 1_795_608_000_000u64;
        assert_eq!(lag_ms("2026-11-25T12:00:00.000Z", noon + 1234), Some(1234));
        assert_eq!(lag_ms("2026-11-25T12:00:01.000Z", noon), Some(0), "clock skew");
        assert_eq!(lag_ms("not a time", noon), None);
    }

    fn failed(code: Option<ReasonCode>, outcome: Outcome) -> RecordReport {
        let mut r = RecordReport::failed("Records[0]".into(), None, None);
        r.outcome = outcome;
        r.reason_code = code;
        r
    }

    #[test]
    fn every_failed_record_has_a_reason_code_and_no_other_record_does() {
        let report = Report::new(
            Trigger::S3,
            vec![
                failed(None, Outcome::Failed),
                failed(Some(ReasonCode::SlowDown), Outcome::Failed),
                failed(Some(ReasonCode::SlowDown), Outcome::Copied),
            ],
        );
        let codes: Vec<_> = report.records.iter().map(|r| r.reason_code).collect();
        assert_eq!(codes, [Some(ReasonCode::Other), Some(ReasonCode::SlowDown), None]);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["records"][0]["reasonCode"], "Other");
        assert_eq!(json["records"][1]["reasonCode"], "SlowDown");
        assert!(json["records"][2].get("reasonCode").is_none());
        assert!(json["records"][2].get("lagMs").is_none());
    }

    #[test]
    fn a_copy_failure_keeps_its_s3_code_and_gets_its_reason_code() {
        let delivery = |code: &str| Delivery {
            target: crate::route::Target {
                bucket: "b".into(),
                key: "k".into(),
            },
            result: Err(CopyError::Failed(crate::destination::Failure {
                code: code.into(),
                message: String::new(),
                retryable: false,
            })),
            attempts: 1,
        };
        let target = TargetReport::from(delivery("KMS.DisabledException"));
        assert_eq!(target.error_code.as_deref(), Some("KMS.DisabledException"));
        assert_eq!(target.reason_code, Some(ReasonCode::KmsDenied));
        let mut record = RecordReport::failed("Records[0]".into(), None, None);
        record.merge_targets(vec![TargetReport::from(delivery("NoSuchBucket"))]);
        assert_eq!(record.reason_code, Some(ReasonCode::NoSuchBucket));
    }

    /// The JSON log lines (as Lambda writes them) of `records`' `log()`.
    fn json_log_lines(records: &[RecordReport]) -> Vec<Value> {
        use crate::logging::captured::Captured;
        let out = Captured::default();
        let subscriber = crate::logging::subscriber(
            crate::logging::LogFormat::Json,
            tracing_subscriber::EnvFilter::new("info"),
            out.clone(),
            false,
        );
        tracing::subscriber::with_default(subscriber, || records.iter().for_each(RecordReport::log));
        let text = out.text();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn the_log_line_carries_lag_and_reason_code_as_the_report_spells_them() {
        let mut lagged = failed(None, Outcome::Copied);
        lagged.lag_ms = Some(1234);
        let unlagged = failed(None, Outcome::Copied);
        let mut broken = failed(Some(ReasonCode::KmsDenied), Outcome::Failed);
        broken.reason = Some("KMS.DisabledException".into());
        let lines = json_log_lines(&[lagged, unlagged, broken]);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["lagMs"], 1234);
        assert!(lines[1].get("lagMs").is_none(), "{}", lines[1]);
        assert_eq!(lines[2]["reasonCode"], "KmsDenied");
        assert_eq!(lines[2]["outcome"], "failed");
        assert!(lines[0].get("reasonCode").is_none());
    }
}
