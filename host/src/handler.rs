//! The handler: a plain async function from a parsed event to a [`Report`].
//!
//! The Lambda runtime loop and the CLI both call [`handle`]; neither adds behaviour.
//! Records run concurrently (bounded by `COPY_CONCURRENCY`) and every record is attempted
//! whatever happens to the others. Every record is routed once, when the invocation starts
//! (its [`Proposal`]); plugin decisions are asked ahead, one lane per org ([`PlanAhead`]).
//! Per record: the plan over its proposal, then the copy step ([`deliver`]), then the
//! report.
//! Under local mode's `DESTINATION_KEY`, between plan and copies, the invocation's targets
//! are counted ([`OneFile`]): more than one fails every object record.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures::{FutureExt, StreamExt};
use tokio::time::sleep_until;

use crate::config::{Config, Deletes, Org};
use crate::config_store::ConfigLoadError;
use crate::deliver::{TagsSeen, deliver, given_for, read_source_ahead, remove};
use crate::destination::{CopyOptions, LockConfigs, OneFile, Stop, StopReason, Ticket};
use crate::env::Settings;
use crate::event::{EventRecord, ParsedEvent, RecordBody, SourceObject, Trigger};
use crate::exporter::Exporter;
use crate::plan::{Ask, Decision, PlanAhead, Planned, plan};
use crate::policy::Given;
use crate::reason::ReasonCode;
use crate::report::{ObjectFacts, Outcome, Proposed, RecordReport, Report, lag_ms};
use crate::route::{Proposal, propose};

/// Handles one invocation: routes and copies every record, and reports on each.
pub async fn handle(exporter: &Exporter, event: ParsedEvent) -> Report {
    handle_until(exporter, event, None).await
}

/// Like [`handle`], for an invocation that must answer before `deadline` (Lambda's).
///
/// `DEADLINE_MARGIN_MS` before it, records stop starting (each is reported failed with
/// `Deadline`, so Lambda's retry or the SQS batch response brings it back) and multipart
/// copies in flight abort their uploads; a third of the margin before it, whatever is still
/// running is cut off and reported the same way. So the answer always leaves in time, with
/// every record in it. The cut-off drops a record's work, never an upload's abort: aborts
/// run as tasks of their own ([`Exporter::aborts`]), which the caller may wait for.
pub async fn handle_until(exporter: &Exporter, event: ParsedEvent, deadline: Option<Instant>) -> Report {
    let stop = Stop::new();
    let margin = exporter.settings().deadline_margin;
    let stop_at = deadline.map(|d| d.checked_sub(margin).unwrap_or_else(Instant::now));
    let cut_at = deadline.map(|d| d.checked_sub(margin / 3).unwrap_or_else(Instant::now));
    // Reading the config (a cold start) counts against the deadline like the records do.
    let config = match cut_at {
        None => exporter.config().await,
        Some(at) => tokio::select! {
            config = exporter.config() => config,
            _ = sleep_until(at.into()) => Err(ConfigLoadError::Deadline {
                location: exporter.settings().config_location.to_string(),
            }),
        },
    };
    let config = config.as_ref();
    let timer = stop_at.map(|at| {
        let stop = stop.clone();
        tokio::spawn(async move {
            sleep_until(at.into()).await;
            stop.stop(StopReason::Deadline);
        })
    });
    // Local mode's DESTINATION_KEY: at most one target in the whole invocation, counted
    // once every object record is planned, so they all run at once.
    let one_file = exporter.destination().single_file_name().map(|name| {
        let objects = event
            .records
            .iter()
            .filter(|r| matches!(r.body, RecordBody::Object(_)))
            .count();
        OneFile::new(name, objects)
    });
    let one_file = one_file.as_ref();
    let concurrency = match one_file {
        Some(_) => event.records.len().max(exporter.settings().copy_concurrency),
        None => exporter.settings().copy_concurrency,
    };
    // Every object record routed once; every plugin decision asked ahead, one lane per org.
    let routed: Vec<Routed> = event
        .records
        .iter()
        .map(|record| match (&record.body, config) {
            (RecordBody::Object(object), Ok(config)) => route_record(exporter.settings(), config, object),
            _ => Routed::Unrouted,
        })
        .collect();
    let ahead = PlanAhead::new(event.records.iter().zip(&routed).enumerate().filter_map(
        |(index, (record, routed))| match (&record.body, routed) {
            (RecordBody::Object(object), Routed::Proposed(proposal)) => Some((index, object, proposal)),
            _ => None,
        },
    ));
    let lock_configs = LockConfigs::default();
    let shared = Shared {
        exporter,
        config,
        ahead: &ahead,
        lock_configs: &lock_configs,
        // Batch Operations tasks name objects that exist, not uploads: no event time to lag from.
        upload_events: event.trigger != Trigger::BatchOperations,
    };
    // Records finish in any order (one slow copy never holds back the window behind it);
    // at most `copy_concurrency` run at once, and the report keeps the event's order.
    let mut records: Vec<(usize, RecordReport)> =
        futures::stream::iter(event.records.into_iter().zip(routed).enumerate())
            .map(|(index, (record, routed))| {
                let stop = stop.clone();
                // Dropped with the record's future (cut off, stopped): it then counts no target.
                let ticket = match (one_file, &record.body) {
                    (Some(gate), RecordBody::Object(_)) => Some(gate.ticket()),
                    _ => None,
                };
                let report = async move {
                    // The clock decides, not only the timer task (which a busy runtime may run late).
                    if stop_at.is_some_and(|at| Instant::now() >= at) {
                        stop.stop(StopReason::Deadline);
                    }
                    if stop.reason().is_some() {
                        return RecordReport::cut_short(&record, StopReason::Deadline).logged();
                    }
                    let Some(at) = cut_at else {
                        return process_record(shared, index, record, routed, stop, ticket).await;
                    };
                    // Built before the record is handed over, in case it must be reported cut off.
                    let cut_short = RecordReport::cut_short(&record, StopReason::Deadline);
                    tokio::select! {
                        report = process_record(shared, index, record, routed, stop, ticket) => report,
                        _ = sleep_until(at.into()) => cut_short.logged(),
                    }
                };
                async move { (index, report.await) }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
    if let Some(timer) = timer {
        timer.abort();
    }
    records.sort_unstable_by_key(|(index, _)| *index);
    let records = records.into_iter().map(|(_, report)| report).collect();
    Report::new(event.trigger, records).with_batch(event.batch)
}

/// What an invocation's records share.
#[derive(Clone, Copy)]
struct Shared<'a> {
    exporter: &'a Exporter,
    /// The configuration in force, or why there is none (every object record fails with it).
    config: Result<&'a Arc<Config>, &'a ConfigLoadError>,
    /// The plugin decisions asked ahead.
    ahead: &'a PlanAhead,
    /// Whether records are uploads (their lag is measured), not Batch Operations tasks.
    upload_events: bool,
    /// Which destination buckets have Object Lock, asked once per bucket in this invocation.
    lock_configs: &'a LockConfigs,
}

/// What routing made of one record when the invocation started.
enum Routed<'c> {
    /// Not an object record, or no configuration to route it by.
    Unrouted,
    /// Names a bucket other than `SOURCE_BUCKET`: refused, with the reason.
    NotTheSourceBucket(String),
    /// The owning org and what plain matching proposes.
    Proposed(Proposal<'c>),
    /// A removal whose org does not propagate deletes (`deletes: "ignore"`): skipped, its
    /// plugin never asked.
    DeletesIgnored(&'c Org),
}

/// The reason of a removal skipped for an org whose `deletes` is `"ignore"`.
pub const DELETES_IGNORED: &str = "deletes are not propagated for this org";

/// Routes one object record: refused when it names a bucket other than `SOURCE_BUCKET`
/// (a destination bucket's own events are left to routing's copy-loop protection, which
/// skips them), else its [`Proposal`].
fn route_record<'c>(settings: &Settings, config: &'c Config, object: &SourceObject) -> Routed<'c> {
    match settings.source_bucket.as_deref() {
        Some(source) if object.bucket != source && !config.is_destination_bucket(&object.bucket) => {
            // Refused, not copied as far as the signer can read.
            Routed::NotTheSourceBucket(format!(
                "bucket {} is not the source bucket {source} (SOURCE_BUCKET); not exported",
                object.bucket
            ))
        }
        _ => {
            let proposal = propose(config, &settings.suffixes, object);
            match proposal.org {
                Some(org) if object.is_removal() && org.deletes == Deletes::Ignore => {
                    Routed::DeletesIgnored(org)
                }
                _ => Routed::Proposed(proposal),
            }
        }
    }
}

async fn process_record(
    shared: Shared<'_>,
    index: usize,
    record: EventRecord,
    routed: Routed<'_>,
    stop: Stop,
    ticket: Option<Ticket<'_>>,
) -> RecordReport {
    let started = Instant::now();
    let mut report = RecordReport::pending(record.locator, record.message_id, record.task_id);
    match record.body {
        RecordBody::Invalid { reason } => report.fail(ReasonCode::InvalidRecord, reason),
        RecordBody::Ignored { bucket, key, reason } => {
            report.source_bucket = bucket;
            report.key = key;
            report.outcome = Outcome::Skipped;
            report.reason = Some(reason);
        }
        RecordBody::Object(object) => {
            report.source_bucket = Some(object.bucket.clone());
            report.key = Some(object.key.clone());
            report.object = Some(ObjectFacts::from(&object));
            match (shared.config, routed) {
                (Err(error), _) => {
                    // A 503 or a timeout on a cold start: the record comes back (Batch
                    // Operations: TemporaryFailure), it is not refused for good.
                    report.retryable = error.is_retryable();
                    let code = match error {
                        ConfigLoadError::Deadline { .. } => ReasonCode::Deadline,
                        _ => ReasonCode::ConfigUnavailable,
                    };
                    report.fail(code, error.to_string())
                }
                (Ok(_), Routed::NotTheSourceBucket(reason)) => {
                    report.fail(ReasonCode::NotTheSourceBucket, reason)
                }
                (Ok(config), Routed::Proposed(proposal)) => {
                    export_object(
                        shared,
                        config,
                        index,
                        &object,
                        proposal,
                        stop,
                        ticket,
                        &mut report,
                    )
                    .await
                }
                (Ok(config), Routed::DeletesIgnored(org)) => {
                    let proposal = propose(config, &shared.exporter.settings().suffixes, &object);
                    report.proposed = Some(proposal.proposed.iter().map(Proposed::from).collect());
                    report.org = Some(org.org.clone());
                    report.outcome = Outcome::Skipped;
                    report.reason = Some(DELETES_IGNORED.into());
                }
                (Ok(_), Routed::Unrouted) => report.fail(
                    ReasonCode::Other,
                    "the record was not routed when the invocation started".into(),
                ),
            }
            if shared.upload_events && report.outcome == Outcome::Copied {
                report.lag_ms = object.event_time.as_deref().and_then(|at| lag_ms(at, now_ms()));
            }
        }
    }
    report.ms = started.elapsed().as_millis() as u64;
    report.logged()
}

#[allow(clippy::too_many_arguments)]
async fn export_object(
    shared: Shared<'_>,
    config: &Arc<Config>,
    index: usize,
    object: &SourceObject,
    proposal: Proposal<'_>,
    stop: Stop,
    ticket: Option<Ticket<'_>>,
    report: &mut RecordReport,
) {
    let exporter = shared.exporter;
    let org = proposal.org;
    report.proposed = org.map(|_| proposal.proposed.iter().map(Proposed::from).collect());
    let base = CopyOptions {
        lock_configs: shared.lock_configs.clone(),
        ..CopyOptions::from_settings(exporter.settings(), config.retry, stop, exporter.aborts().clone())
    };
    let options = base.for_object(org);
    // The source's HEAD, when the copy of a proposed target will read one, is read while
    // the plan is made (a cold start's plugin load, a plugin decision) instead of after it.
    // A removal reads none ahead: its first request is whether the source is back.
    let removal = object.is_removal();
    let read_ahead = !proposal.proposed.is_empty() && !removal;
    let ahead_head = async {
        match read_ahead {
            true => read_source_ahead(exporter, org, object, &options).await,
            false => None,
        }
    }
    .shared();
    let ahead_head_for_plugin = ahead_head.clone();
    let planned = async {
        // Only this object's org's plugin: a record never waits for another org's plugin load.
        let plugin = match org {
            Some(org) => exporter.plugin_of(config, org).await,
            None => None,
        };
        // A 0.2 plugin (or candidate) decides by the source's HEAD: it waits for the HEAD
        // (read now if none was read ahead) and is given its facts. A 0.1 plugin's
        // decision runs beside the HEAD, and pays for none of it.
        let wants_facts = matches!(&plugin, Some(Ok(p)) if p.wants_facts()) && !removal;
        let (head, given, tags_seen) = match wants_facts {
            true => {
                let head = match read_ahead {
                    true => ahead_head_for_plugin.await,
                    false => read_source_ahead(exporter, org, object, &options).await,
                };
                let (given, seen) = given_for(exporter, org, object, &options, head.as_ref()).await;
                (Some(head), given, seen)
            }
            false => (None, Given::default(), TagsSeen::default()),
        };
        let ask = Ask::Ahead {
            ahead: shared.ahead,
            index,
            object,
            given: &given,
        };
        (
            plan(proposal, plugin.as_ref(), ask).await,
            head,
            given.facts,
            tags_seen,
        )
    };
    let (
        (
            Planned {
                decision,
                run,
                shadow,
            },
            head_for_plugin,
            given_facts,
            tags_seen,
        ),
        head_ahead,
    ) = tokio::join!(planned, ahead_head);
    let source_head = head_for_plugin.unwrap_or(head_ahead);
    // What a 0.2 plugin was given goes into the report too: a replay asks it again.
    if let Some(reported) = report.object.as_mut() {
        reported.head = given_facts.map(|facts| (*facts).clone());
        match tags_seen.take() {
            Some(Ok(tags)) => reported.tags = Some(tags.into_iter().collect()),
            Some(Err(why)) => reported.tags_error = Some(why),
            None => {}
        }
    }
    let options = CopyOptions {
        source_head,
        ..options
    };
    report.org = org.map(|o| o.org.clone());
    report.plugin = run;
    report.shadow = shadow;
    if let Some(ticket) = ticket {
        let targets = match &decision {
            Decision::Copy(targets) => targets.len(),
            Decision::Skip(_) | Decision::Fail(_) => 0,
        };
        if let Err(clash) = ticket.admit(targets).await {
            report.error_code = Some(ReasonCode::OneFileManyRecords.as_str().to_string());
            report.fail(ReasonCode::OneFileManyRecords, clash.to_string());
            return;
        }
    }
    let targets = match decision {
        Decision::Copy(targets) => targets,
        Decision::Skip(reason) => {
            report.outcome = Outcome::Skipped;
            report.reason = Some(reason);
            return;
        }
        Decision::Fail(failed) => {
            report.retryable = failed.retryable;
            report.fail(failed.code, failed.reason);
            return;
        }
    };
    let delivered = match (removal, org) {
        (true, Some(org)) => remove(exporter, org, object, &targets, &options).await,
        _ => deliver(exporter, org, object, &targets, &options).await,
    };
    match delivered {
        Ok(targets) => report.merge_targets(targets),
        Err(failed) => {
            // Only this org's records: other orgs' records never wait for this role.
            report.retryable = failed.retryable;
            report.fail(ReasonCode::AssumeRoleNotPermitted, failed.to_string());
        }
    }
}

/// The wall clock in milliseconds since the Unix epoch, as event times are written.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
