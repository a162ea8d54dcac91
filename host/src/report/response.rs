//! The answers an invocation's [`Report`] gives its invoker: the report itself, the SQS
//! partial batch response (`batchItemFailures`), the S3 Batch Operations response (one
//! [`TaskResult`] per task) and the invocation error Lambda retries on. The counterpart of
//! `event::batch`, which reads what these answers echo.
//!
//! Read-only over a finished report: nothing here changes an outcome or a count.

use serde::Serialize;
use serde_json::{Value, json};

use super::{Outcome, RecordReport, Report};
use crate::event::{BatchJob, ResultCode, Trigger};
use crate::s3::SourceChange;

/// The `errorType` of an invocation failed because records failed.
pub const RECORDS_FAILED: &str = "RecordsFailed";

/// An SQS message to be retried (partial batch response).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemFailure {
    /// The SQS message id.
    pub item_identifier: String,
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

/// For SQS, the partial batch response: each message with a failed record, once, in event
/// order (a message whose every record succeeded is deleted from the queue). `None` for
/// every other trigger.
pub(super) fn batch_item_failures(
    trigger: Trigger,
    records: &[RecordReport],
) -> Option<Vec<BatchItemFailure>> {
    (trigger == Trigger::Sqs).then(|| {
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
    })
}

impl Report {
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
                    // Batch Operations tasks name objects that exist, never removals.
                    Outcome::Deleted => (ResultCode::Succeeded, "deleted".to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of `outcome` from SQS message `message` (and Batch Operations task `task`).
    fn record(outcome: Outcome, message: Option<&str>, task: Option<&str>) -> RecordReport {
        let mut r = RecordReport::pending("Records[0]".into(), message.map(Into::into), task.map(Into::into));
        r.outcome = outcome;
        r.reason = Some("why".into());
        r
    }

    #[test]
    fn sqs_names_each_message_with_a_failed_record_once_in_event_order() {
        let records = [
            record(Outcome::Failed, Some("m2"), None),
            record(Outcome::Copied, Some("m1"), None),
            record(Outcome::Failed, Some("m3"), None),
            record(Outcome::Failed, Some("m2"), None),
            record(Outcome::Failed, None, None),
        ];
        let ids: Vec<_> = batch_item_failures(Trigger::Sqs, &records)
            .unwrap()
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        assert_eq!(ids, ["m2", "m3"]);
        assert_eq!(batch_item_failures(Trigger::S3, &records), None);
        let report = Report::new(Trigger::Sqs, records.to_vec());
        assert!(
            report.must_fail_invocation(),
            "a failed record without a message id"
        );
        let named = Report::new(Trigger::Sqs, records[..4].to_vec());
        assert!(!named.must_fail_invocation());
        assert_eq!(
            serde_json::to_value(&named).unwrap()["batchItemFailures"],
            serde_json::json!([{"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}])
        );
    }

    #[test]
    fn each_task_gets_its_result_code() {
        let job = BatchJob {
            schema_version: "2.0".into(),
            invocation_id: "inv".into(),
            treat_missing_keys_as: ResultCode::TemporaryFailure,
        };
        let mut copied = record(Outcome::Copied, None, Some("t1"));
        copied.destination_bucket = Some("d".into());
        copied.destination_key = Some("k".into());
        let mut owned_skip = record(Outcome::Skipped, None, Some("t2"));
        owned_skip.org = Some("org1".into());
        let unowned_skip = record(Outcome::Skipped, None, Some("t3"));
        let mut deleted = record(Outcome::Superseded, None, Some("t4"));
        deleted.change = Some(SourceChange::Deleted);
        let overwritten = record(Outcome::Superseded, None, Some("t5"));
        let mut retryable = record(Outcome::Failed, None, Some("t6"));
        retryable.retryable = true;
        let permanent = record(Outcome::Failed, None, Some("t7"));
        let no_task = record(Outcome::Failed, None, None);
        let report = Report::new(
            Trigger::BatchOperations,
            vec![
                copied,
                owned_skip,
                unowned_skip,
                deleted,
                overwritten,
                retryable,
                permanent,
                no_task,
            ],
        )
        .with_batch(Some(job.clone()));
        let results: Vec<_> = report
            .task_results(&job)
            .into_iter()
            .map(|t| (t.task_id, t.result_code, t.result_string))
            .collect();
        let expected = [
            ("t1", ResultCode::Succeeded, "copied to s3://d/k"),
            ("t2", ResultCode::Succeeded, "skipped: why"),
            ("t3", ResultCode::PermanentFailure, "why"),
            ("t4", ResultCode::TemporaryFailure, "why"),
            ("t5", ResultCode::Succeeded, "superseded: why"),
            ("t6", ResultCode::TemporaryFailure, "why"),
            ("t7", ResultCode::PermanentFailure, "why"),
        ]
        .map(|(id, code, text)| (id.to_string(), code, text.to_string()));
        assert_eq!(results, expected);
        assert!(
            !report.must_fail_invocation(),
            "every task carries its own result"
        );
        let answer = report.lambda_answer();
        assert_eq!(answer["invocationId"], "inv");
        assert_eq!(answer["treatMissingKeysAs"], "TemporaryFailure");
        assert_eq!(answer["results"].as_array().unwrap().len(), 7);
    }

    #[test]
    fn a_failed_invocation_answers_records_failed_naming_each_record() {
        let mut failed = record(Outcome::Failed, None, None);
        failed.key = Some("org1/a.txt".into());
        failed.error_code = Some("AccessDenied".into());
        let report = Report::new(Trigger::S3, vec![failed, record(Outcome::Copied, None, None)]);
        assert!(report.must_fail_invocation());
        assert_eq!(
            report.lambda_answer(),
            serde_json::json!({
                "errorType": "RecordsFailed",
                "errorMessage": "1 of 2 records failed: org1/a.txt (AccessDenied)",
            })
        );
        let fine = Report::new(Trigger::EventBridge, vec![record(Outcome::Copied, None, None)]);
        assert!(!fine.must_fail_invocation());
        assert_eq!(fine.lambda_answer(), serde_json::to_value(&fine).unwrap());
    }
}
