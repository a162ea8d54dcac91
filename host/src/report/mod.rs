//! Outcomes of an invocation: one entry per record ([`RecordReport`], with a
//! [`TargetReport`] per copy folded into it) and the totals. This is what the handler returns
//! and what `invoke` prints. What the invocation answers its invoker (SQS partial batch
//! response, Batch Operations results, the invocation error) is [`response`]'s; the RFC 3339
//! reading behind `lagMs` is [`time`]'s. An object record also carries what its plan was
//! given ([`ObjectFacts`], the proposed targets), so `plugin diff --reports` can ask a
//! plugin the same question again; [`replay`] reads those back from a report or log lines.

use serde::{Deserialize, Serialize};

use crate::destination::{Checksum, CopyError, Delivery, StopReason};
use crate::event::{BatchJob, EventRecord, RecordBody, SourceObject, Trigger};
use crate::policy::{self, PluginRun, Shadow};
use crate::reason::{FailureCode, ReasonCode};
use crate::route::Target;
use crate::s3::SourceChange;

pub mod replay;
pub mod response;
pub mod time;

pub use response::{BatchItemFailure, RECORDS_FAILED, TaskResult};
pub use time::{lag_ms, rfc3339_ms};

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
    /// A removal at the source, propagated: the export was deleted (the org's `deletes`).
    Deleted,
}

/// The facts about a record's object that its plan (and the org's plugin) was given, as
/// the event announced them: what a replay (`plugin diff --reports`) needs to ask a plugin
/// the same question again. An absent fact is left out, never written as `null`; a new
/// fact is one more optional field here (a replay of an older report then finds it
/// absent, as the event did not carry it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectFacts {
    /// Size in bytes, when the event carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The ETag the event announced, without quotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Version id, when the source bucket is versioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// The event's time as given (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    /// The event's name in S3 notification spelling, e.g. `ObjectCreated:Put`.
    pub event_name: String,
    /// What the source's HEAD gave a WIT 0.2 plugin (its `object`'s facts); only on records
    /// of an org whose plugin or candidate is 0.2, and only when the HEAD was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<policy::ObjectFacts>,
    /// The tags a 0.2 plugin's `tags` call read (only when it called it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<std::collections::BTreeMap<String, String>>,
    /// Why a 0.2 plugin's `tags` call got no tags (only when it called it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags_error: Option<String>,
}

impl From<&SourceObject> for ObjectFacts {
    fn from(object: &SourceObject) -> Self {
        ObjectFacts {
            size: object.size,
            etag: object.etag.clone(),
            version_id: object.version_id.clone(),
            event_time: object.event_time.clone(),
            event_name: object.event_name.clone(),
            head: None,
            tags: None,
            tags_error: None,
        }
    }
}

impl ObjectFacts {
    /// The object these facts describe, in `bucket` under `key`: what the plugin was given.
    pub fn object(&self, bucket: &str, key: &str) -> SourceObject {
        SourceObject {
            bucket: bucket.to_string(),
            key: key.to_string(),
            size: self.size,
            etag: self.etag.clone(),
            version_id: self.version_id.clone(),
            event_time: self.event_time.clone(),
            event_name: self.event_name.clone(),
        }
    }
}

/// A target plain suffix matching proposed for a record (`{"bucket", "key"}`): what the
/// org's plugin was given as `proposed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposed {
    /// Destination bucket.
    pub bucket: String,
    /// Destination key.
    pub key: String,
}

impl From<&Target> for Proposed {
    fn from(target: &Target) -> Self {
        Proposed {
            bucket: target.bucket.clone(),
            key: target.key.clone(),
        }
    }
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
    /// What the event said about the object (size, ETag, version, time, event name): on
    /// every object record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectFacts>,
    /// The targets plain suffix matching proposed (empty when it selects nothing): on every
    /// record routed to an org, whether or not a plugin was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposed: Option<Vec<Proposed>>,
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
    /// How the org's candidate plugin answered the same question (`{"outcome", "candidate"}`),
    /// never acted on; only when the org's plugin has a candidate and decided the record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<Shadow>,
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
            Outcome::Deleted => "deleted",
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
    pub fn pending(record: String, message_id: Option<String>, task_id: Option<String>) -> Self {
        RecordReport {
            record,
            source_bucket: None,
            key: None,
            org: None,
            object: None,
            proposed: None,
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
            shadow: None,
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
    pub fn refused(record: &EventRecord, code: FailureCode, reason: String, retryable: bool) -> Self {
        let mut report = RecordReport::pending(
            record.locator.clone(),
            record.message_id.clone(),
            record.task_id.clone(),
        );
        if let RecordBody::Object(object) = &record.body {
            report.source_bucket = Some(object.bucket.clone());
            report.key = Some(object.key.clone());
            report.object = Some(ObjectFacts::from(object));
        }
        report.reason = Some(reason);
        report.reason_code = Some(code.reason());
        report.error_code = Some(code.to_string());
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

    /// The record's log line: `error` for a failure, `info` otherwise. `object` and
    /// `proposed` are the report's fields as JSON text (left out when the report has none), so
    /// `plugin diff --reports` replays a file of these lines as it replays a report.
    pub fn log(&self) {
        let fields = (
            self.source_bucket.as_deref().unwrap_or("-"),
            self.key.as_deref().unwrap_or("-"),
            self.org.as_deref().unwrap_or("-"),
            self.destination_bucket.as_deref().unwrap_or("-"),
            self.reason.as_deref().unwrap_or(""),
        );
        let object = self.object.as_ref().map(json_text);
        let proposed = self.proposed.as_ref().map(json_text);
        let (object, proposed) = (object.as_deref(), proposed.as_deref());
        let outcome = self.outcome.name();
        if self.outcome == Outcome::Failed {
            let code = self.reason_code.unwrap_or(ReasonCode::Other).as_str();
            tracing::error!(outcome, bucket = fields.0, key = fields.1, org = fields.2, destination = fields.3, reason = fields.4, "reasonCode" = code, attempts = self.attempts, ms = self.ms, record = %self.record, object, proposed, "record");
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
                record = %self.record,
                object,
                proposed,
                "record"
            );
        }
    }

    /// Folds the copies of this record into it: the first target's destination, the worst
    /// outcome (failed, then superseded, then copied), and every target listed when there
    /// is more than one.
    pub fn merge_targets(&mut self, targets: Vec<TargetReport>) {
        let (Some(first), Some(worst)) = (targets.first(), TargetReport::worst(&targets)) else {
            return;
        };
        self.destination_bucket = Some(first.destination_bucket.clone());
        self.destination_key = Some(first.destination_key.clone());
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

impl TargetReport {
    /// The target whose outcome is the worst (failed, then superseded, then copied): the
    /// outcome of an object copied to all of `targets`. The first of equals; `None` when
    /// there is no target.
    pub fn worst(targets: &[TargetReport]) -> Option<&TargetReport> {
        let rank = |o: Outcome| match o {
            Outcome::Failed => 3,
            Outcome::Superseded => 2,
            Outcome::Copied | Outcome::Deleted => 1,
            Outcome::Skipped => 0,
        };
        targets.iter().rev().max_by_key(|t| rank(t.outcome))
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
                report.reason_code = Some(failure.code.reason());
                report.error_code = Some(failure.code.to_string());
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
    /// Records whose removal deleted their exports (left out of the report when none).
    #[serde(skip_serializing_if = "is_zero")]
    pub deleted: usize,
    /// Bytes copied in all.
    pub bytes_copied: u64,
}

impl Totals {
    /// Counts `record`'s outcome (and its bytes, when copied): the one place an outcome is
    /// counted, for the report's totals and the metrics' per-org lines alike. `records` is
    /// the caller's.
    pub fn count(&mut self, record: &RecordReport) {
        match record.outcome {
            Outcome::Copied => {
                self.copied += 1;
                self.bytes_copied += record.bytes.unwrap_or(0);
            }
            Outcome::Skipped => self.skipped += 1,
            Outcome::Superseded => self.superseded += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Deleted => self.deleted += 1,
        }
    }
}

/// `value` as one line of JSON (a log field's text).
fn json_text<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn is_zero(n: &usize) -> bool {
    *n == 0
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
            totals.count(r);
        }
        let batch_item_failures = response::batch_item_failures(trigger, &records);
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
}

#[cfg(test)]
mod tests;
