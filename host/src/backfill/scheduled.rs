//! A reconcile the function runs itself, on a schedule: EventBridge Scheduler invokes it with
//! `{"reconcile": {"bucket": …, "repair": "none" | "queue", "queue": URL}}` ([`request_of`]).
//!
//! It runs within the invocation's deadline: when the deadline comes first, the run stops
//! and says so (`ReconcileIncomplete`, a log line and a metric), never a partial
//! "complete". Its account becomes EMF lines ([`ScheduledOutcome::emf_lines`]):
//! `ExportsMissing`, `ExportsDiffering`, `ExportsPending` per org (dimension `Org`) and over
//! all orgs, and `ReconcileIncomplete`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use super::progress::Progress;
use super::queue::Sent;
use super::reconcile::{Reconciled, Reconciliation, reconcile};
use super::{BackfillError, BackfillOptions, DEFAULT_PAGE_SIZE, ReconcileOptions};
use crate::exporter::Exporter;
use crate::metrics::{ORG_DIMENSION, count_line};

/// Minutes of grace when the request names none.
pub const DEFAULT_GRACE_MINUTES: u64 = 15;

/// What a scheduled reconcile does with the gaps it finds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Repair {
    /// Count them only (metrics, alarm).
    #[default]
    None,
    /// Send each to the function's queue (`queue`), as `reconcile --repair-via-queue`.
    Queue,
}

/// A scheduled reconcile's request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScheduledReconcile {
    /// The source bucket.
    pub bucket: String,
    /// Only keys starting with this.
    #[serde(default)]
    pub prefix: String,
    /// An S3 Inventory manifest of the source (not read by the function yet).
    #[serde(default)]
    pub inventory: Option<String>,
    /// What to do with the gaps.
    #[serde(default)]
    pub repair: Repair,
    /// The queue `repair: "queue"` sends to.
    #[serde(default)]
    pub queue: Option<String>,
    /// The grace period in minutes.
    #[serde(default = "default_grace")]
    pub grace_minutes: u64,
}

fn default_grace() -> u64 {
    DEFAULT_GRACE_MINUTES
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    reconcile: ScheduledReconcile,
}

/// The request in `payload` when it is one (its first key is `reconcile`), or why it cannot
/// be read (one line naming the field); `None` for any other payload (an event).
pub fn request_of(payload: &str) -> Option<Result<ScheduledReconcile, String>> {
    let first_key = payload.trim_start().strip_prefix('{')?.trim_start();
    if !first_key.starts_with("\"reconcile\"") {
        return None;
    }
    let parsed = serde_json::from_str::<Envelope>(payload)
        .map_err(|e| format!("reconcile request: {e}"))
        .and_then(|envelope| {
            let request = envelope.reconcile;
            if request.inventory.is_some() {
                return Err(
                    "reconcile request: field `inventory`: the function does not read inventories yet; run `artifact-export reconcile --source-inventory` instead, or leave it out to list the bucket".into(),
                );
            }
            if request.repair == Repair::Queue && request.queue.is_none() {
                return Err("reconcile request: field `queue`: required with \"repair\": \"queue\"".into());
            }
            Ok(request)
        });
    Some(parsed)
}

/// What a scheduled reconcile found.
#[derive(Debug, Clone)]
pub struct ScheduledOutcome {
    /// The account.
    pub reconciled: Reconciled,
    /// Why the account is incomplete (the deadline, a listing that failed), if it is.
    pub incomplete: Option<String>,
    /// `repair: "queue"`: what was sent.
    pub sent: Option<Sent>,
}

/// Runs `request` until done or until `stop_at` (the invocation's deadline less its margin).
pub async fn run_scheduled(
    exporter: &Exporter,
    request: &ScheduledReconcile,
    stop_at: Option<Instant>,
) -> Result<ScheduledOutcome, BackfillError> {
    let grace = Duration::from_secs(request.grace_minutes.saturating_mul(60));
    let options = BackfillOptions {
        bucket: request.bucket.clone(),
        prefix: request.prefix.clone(),
        orgs: Vec::new(),
        concurrency: exporter.settings().copy_concurrency,
        page_size: DEFAULT_PAGE_SIZE,
        dry_run: true,
        force: false,
        reconcile: Some(ReconcileOptions {
            grace,
            ..ReconcileOptions::default()
        }),
    };
    let repair_queue = match request.repair {
        Repair::Queue => request.queue.as_deref(),
        Repair::None => None,
    };
    let stop = async {
        match stop_at {
            Some(at) => tokio::time::sleep_until(at.into()).await,
            None => std::future::pending().await,
        }
    };
    let progress = Arc::new(Progress::default());
    let Reconciliation {
        reconciled,
        summary,
        sent,
    } = reconcile(exporter, &options, repair_queue, progress, stop, |_| {}).await?;
    let incomplete = match (&summary.listing_error, summary.interrupted) {
        (Some(error), _) => Some(error.clone()),
        (None, true) => Some(format!(
            "the invocation's deadline came after {} of {} listed objects",
            summary.counts.done, summary.counts.listed
        )),
        (None, false) => None,
    };
    Ok(ScheduledOutcome {
        reconciled,
        incomplete,
        sent,
    })
}

impl ScheduledOutcome {
    /// Whether every object was accounted for and none is missing or differs.
    pub fn complete(&self) -> bool {
        self.incomplete.is_none() && self.reconciled.complete()
    }

    /// The invocation's answer: the `--json` document, with why it is incomplete and what
    /// was sent.
    pub fn answer(&self) -> Value {
        let mut answer = self.reconciled.to_json();
        answer["complete"] = self.complete().into();
        if let Some(why) = &self.incomplete {
            answer["incomplete"] = why.clone().into();
        }
        if let Some(sent) = &self.sent {
            answer["sent"] = json!({"sent": sent.sent, "failed": sent.failed});
        }
        answer
    }

    /// EMF lines: `ExportsMissing`, `ExportsDiffering`, `ExportsPending` and
    /// `ReconcileIncomplete` over all orgs (no dimension), then the first three per org.
    pub fn emf_lines(&self, timestamp_ms: u64) -> Vec<String> {
        let counts = |missing, differs, pending| {
            [
                ("ExportsMissing", missing),
                ("ExportsDiffering", differs),
                ("ExportsPending", pending),
            ]
        };
        let total = self.reconciled.total();
        let mut all = counts(total.missing, total.differs, total.pending).to_vec();
        all.push(("ReconcileIncomplete", u64::from(self.incomplete.is_some())));
        let mut lines = vec![count_line(&all, &[], timestamp_ms)];
        for org in &self.reconciled.orgs {
            let dims = [(ORG_DIMENSION, org.org.as_str())];
            lines.push(count_line(
                &counts(org.missing, org.differs, org.pending),
                &dims,
                timestamp_ms,
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_reconcile_payload_is_a_request_and_its_errors_name_the_field() {
        assert_eq!(request_of(r#"{"Records": []}"#), None);
        assert_eq!(request_of("[]"), None);
        let request = request_of(r#" { "reconcile": {"bucket": "src"}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(request.bucket, "src");
        assert_eq!(
            (request.repair, request.grace_minutes),
            (Repair::None, DEFAULT_GRACE_MINUTES)
        );
        let queued = request_of(r#"{"reconcile": {"bucket": "src", "repair": "queue", "queue": "https://q/1/x", "graceMinutes": 5}}"#)
            .unwrap()
            .unwrap();
        assert_eq!((queued.repair, queued.grace_minutes), (Repair::Queue, 5));
        for (payload, names) in [
            (r#"{"reconcile": {}}"#, "`bucket`"),
            (r#"{"reconcile": {"bucket": "b", "repair": "all"}}"#, "`all`"),
            (r#"{"reconcile": {"bucket": "b", "repair": "queue"}}"#, "`queue`"),
            (r#"{"reconcile": {"bucket": "b", "bucketz": 1}}"#, "`bucketz`"),
            (
                r#"{"reconcile": {"bucket": "b", "inventory": "s3://i/m.json"}}"#,
                "`inventory`",
            ),
        ] {
            let error = request_of(payload).unwrap().unwrap_err();
            assert!(error.starts_with("reconcile request: "), "{error}");
            assert!(error.contains(names), "{payload}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }
}
