//! The Lambda runtime loop: parse the event, call the handler, turn the report into the
//! invocation's answer. A failed record fails the invocation (after every record was
//! attempted) so Lambda's retries and dead-letter queue take over; under SQS the partial
//! batch response names the failed messages instead.
//!
//! After each invocation its metrics are printed on stdout as CloudWatch Embedded Metric
//! Format lines ([`artifact_export::metrics`]): raw JSON, one object per line, not inside a
//! tracing event (tracing writes to stderr), so CloudWatch Logs extracts them as metrics.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use artifact_export::backfill::scheduled::{ScheduledReconcile, request_of, run_scheduled};
use artifact_export::destination::aborts::ABORT_TIMEOUT;
use artifact_export::env::{self, Settings};
use artifact_export::event::parse_event_text;
use artifact_export::exporter::Exporter;
use artifact_export::handler::handle_until;
use artifact_export::logging::{self, LogFormat};
use artifact_export::metrics;
use artifact_export::report::{RECORDS_FAILED, Report};
use futures::FutureExt;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;
use serde_json::value::RawValue;

pub async fn run() -> ExitCode {
    logging::init(LogFormat::Json, env::process_env("RUST_LOG").as_deref());
    let settings = match Settings::from_process_env() {
        Ok(settings) => settings,
        Err(error) => {
            // Reported as an init error by the runtime: the function cannot work at all.
            tracing::error!(%error, "invalid environment");
            return ExitCode::from(crate::exit::BAD_INPUT);
        }
    };
    // The exporter (the SDK's configuration; the S3 client loads the TLS roots as it is
    // built) is built, and the configuration read (with the
    // plugin engine created if an org has a plugin), while the runtime asks for the first
    // event: a cold start waits for the longer of the two, not for both. The invocation
    // waits for the configuration read in progress, not for a second one.
    let exporter = tokio::spawn(async move {
        let exporter = Arc::new(Exporter::from_env(settings).await);
        tracing::debug!("S3 client ready");
        tokio::spawn(exporter.clone().warm_up());
        exporter
    })
    .map(|built| built.map_err(|e| format!("the exporter could not be built: {e}")))
    .shared();
    // The payload stays text (no JSON tree of the whole event): `parse_event_text` reads a
    // `Records` list one record at a time.
    let result = lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let exporter = exporter.clone();
        let deadline = deadline_instant(event.context.deadline);
        async move {
            tracing::debug!(bytes = event.payload.get().len(), "event received");
            let exporter = exporter.await.map_err(|why| diagnostic(EXPORTER_FAILED, why))?;
            invocation(&exporter, event.payload, deadline).await
        }
    }))
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "runtime loop ended");
            ExitCode::FAILURE
        }
    }
}

/// `errorType` of an event the function cannot read at all.
const UNREADABLE_EVENT: &str = "UnreadableEvent";
/// `errorType` when the exporter could not be built (its task panicked): nothing was tried.
const EXPORTER_FAILED: &str = "ExporterFailed";

/// The invocation's deadline (`Lambda-Runtime-Deadline-Ms`, milliseconds since the epoch)
/// as an `Instant`; `None` when the runtime gave none, or a value that cannot be one.
fn deadline_instant(deadline_ms: u64) -> Option<Instant> {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_millis();
    deadline_after(deadline_ms, now_ms, Instant::now())
}

/// The deadline `deadline_ms` as seen at `now_ms` / `now`. A value more than a minute in the
/// past is no deadline at all (Lambda would have ended the invocation long ago): emulators
/// send constants such as cargo-lambda's `600000`, and reading that as 1970 would fail every
/// record at once.
fn deadline_after(deadline_ms: u64, now_ms: u128, now: Instant) -> Option<Instant> {
    const IMPLAUSIBLY_LATE_MS: u128 = 60_000;
    let deadline_ms = u128::from(deadline_ms);
    if deadline_ms + IMPLAUSIBLY_LATE_MS < now_ms {
        return None;
    }
    let left = deadline_ms.saturating_sub(now_ms);
    Some(now + Duration::from_millis(u64::try_from(left).unwrap_or(u64::MAX)))
}

async fn invocation(
    exporter: &Exporter,
    payload: Box<RawValue>,
    deadline: Option<Instant>,
) -> Result<Value, Diagnostic> {
    if let Some(request) = request_of(payload.get()) {
        let request = request.map_err(|error| {
            tracing::error!(%error, "rejected reconcile request");
            diagnostic(UNREADABLE_EVENT, error)
        })?;
        return scheduled_reconcile(exporter, &request, deadline).await;
    }
    let event = parse_event_text(payload.get()).map_err(|error| {
        tracing::error!(%error, "rejected event");
        diagnostic(UNREADABLE_EVENT, error.to_string())
    })?;
    // The records hold what they need: the event's text is not kept while they are copied.
    drop(payload);
    let report = handle_until(exporter, event, deadline).await;
    // Aborts the cut-off left running finish before the answer: once it is sent, Lambda may
    // freeze the process. Bounded by the deadline, less time to send the answer.
    let reserve = exporter.settings().deadline_margin / 6;
    let within = deadline.map_or(ABORT_TIMEOUT, |d| {
        d.checked_sub(reserve)
            .map_or(Duration::ZERO, |d| d.saturating_duration_since(Instant::now()))
    });
    exporter.aborts().settle(within).await;
    tracing::info!(totals = ?report.totals, "invocation done");
    print_metrics(&report);
    print_config_refusals(exporter);
    if report.must_fail_invocation() {
        return Err(diagnostic(RECORDS_FAILED, report.failure_summary()));
    }
    Ok(report.lambda_response())
}

/// A scheduled reconcile, stopped the deadline margin before the deadline: its account as
/// the answer, its EMF lines on stdout, and a `ReconcileIncomplete` error line when the
/// deadline (or a listing) cut it short.
async fn scheduled_reconcile(
    exporter: &Exporter,
    request: &ScheduledReconcile,
    deadline: Option<Instant>,
) -> Result<Value, Diagnostic> {
    let margin = exporter.settings().deadline_margin;
    let stop_at = deadline.map(|d| d.checked_sub(margin).unwrap_or_else(Instant::now));
    let outcome = run_scheduled(exporter, request, stop_at)
        .await
        .map_err(|error| diagnostic(RECONCILE_FAILED, error.to_string()))?;
    for line in outcome.emf_lines(now_ms()) {
        println!("{line}");
    }
    print_config_refusals(exporter);
    match &outcome.incomplete {
        Some(why) => tracing::error!(
            error_type = RECONCILE_INCOMPLETE,
            bucket = %request.bucket,
            "ReconcileIncomplete: {why}; the account covers only part of the bucket"
        ),
        None => tracing::info!(complete = outcome.complete(), "reconcile done"),
    }
    Ok(outcome.answer())
}

/// `errorType` of a scheduled reconcile that could not start (no config, bad options).
const RECONCILE_FAILED: &str = "ReconcileFailed";
/// What the log line of a scheduled reconcile cut short says (also its metric's name).
const RECONCILE_INCOMPLETE: &str = "ReconcileIncomplete";

/// The error Lambda records (and shows in the console and the DLQ message attributes).
fn diagnostic(error_type: &str, error_message: String) -> Diagnostic {
    Diagnostic {
        error_type: error_type.to_string(),
        error_message,
    }
}

/// Prints the invocation's EMF lines on stdout, before the answer is sent (also when the
/// invocation fails), so the metrics are in the log whatever Lambda does next.
fn print_metrics(report: &Report) {
    for line in metrics::emf_lines(report, now_ms()) {
        println!("{line}");
    }
}

/// Prints a `ConfigRejected` EMF line per org whose org documents the configuration's
/// refreshes refused since the last invocation (each refusal was logged when made).
fn print_config_refusals(exporter: &Exporter) {
    for line in metrics::config_rejected_lines(&exporter.take_config_refusals(), now_ms()) {
        println!("{line}");
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_are_epoch_milliseconds_and_constants_are_none() {
        let now = Instant::now();
        let now_ms: u128 = 1_795_663_416_163;
        let in_3s = deadline_after(1_795_663_419_163, now_ms, now).unwrap();
        assert_eq!(in_3s - now, Duration::from_secs(3));
        // Just passed (a slow start): a deadline now, so records stop at once.
        assert_eq!(deadline_after(1_795_663_415_163, now_ms, now), Some(now));
        // cargo-lambda's emulator sends the constant 600000, and 0 means none.
        assert_eq!(deadline_after(600_000, now_ms, now), None);
        assert_eq!(deadline_after(0, now_ms, now), None);
    }
}
