//! Backfill: exports objects that already exist in the source bucket, through the same
//! routing, policy (plugins included) and copy as an event would.
//!
//! The listing runs ahead in its own task (page by page); objects are routed, checked
//! against their destinations and copied concurrently. Whether an object is already at its
//! destination is answered from a listing of the destination merge-joined with the source
//! listing ([`destination_listing`]), and with a HEAD only where that listing cannot say or
//! the in-place rule ([`in_place::already_copied`]) cannot decide from it.
//! Every copy is one atomic request (or a completed multipart upload), and an object whose
//! destination already holds it is skipped, so an interrupted backfill loses nothing and a
//! rerun picks up the rest.

pub mod destination_listing;
pub mod in_place;
pub mod listing;
pub mod manifest;
pub mod progress;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::mpsc;

use crate::config::{Config, Encryption, Org};
use crate::config_store::ConfigLoadError;
use crate::destination::{CopyOptions, Existing, S3Destination, Sse, Stop, StopReason, WriteOptions};
use crate::exporter::Exporter;
use crate::plan::{Decision, plan_object};
use crate::policy::OrgPlugins;
use crate::report::{Outcome, TargetReport};
use crate::route::Target;
use crate::s3::{RetryPolicy, S3Failure};
use destination_listing::{DestinationListings, Known};
use in_place::{Copied, Side, already_copied};
use listing::{Listed, list_page};
use progress::{Progress, Snapshot};

/// Keys per listing page (the S3 maximum).
pub const DEFAULT_PAGE_SIZE: i32 = 1000;

/// What to backfill and how.
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// Source bucket.
    pub bucket: String,
    /// Only keys starting with this (may be empty).
    pub prefix: String,
    /// Only this org's objects.
    pub org: Option<String>,
    /// Objects in flight at once.
    pub concurrency: usize,
    /// Keys per listing page (1–1000).
    pub page_size: i32,
    /// Decide and check, but copy nothing.
    pub dry_run: bool,
    /// Copy even when the destination already holds the object.
    pub force: bool,
}

/// What happened to one listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectOutcome {
    /// Copied to every target that needed it.
    Copied {
        /// Bytes copied.
        bytes: u64,
    },
    /// Every target already held the object.
    InPlace,
    /// Dry run: these targets would be copied to.
    WouldCopy(Vec<Target>),
    /// Not selected, with the reason.
    Skipped(String),
    /// Changed or deleted while the backfill ran (its own event exports the new version).
    Superseded(String),
    /// Could not be copied, with the reason.
    Failed(String),
}

/// One listed object and what happened to it.
#[derive(Debug, Clone)]
pub struct ObjectResult {
    /// Listed source object.
    pub listed: Listed,
    /// The org it belongs to, if any.
    pub org: Option<String>,
    /// The outcome.
    pub outcome: ObjectOutcome,
}

/// The end of a backfill.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Final counters.
    pub counts: Snapshot,
    /// Wall time.
    pub elapsed: Duration,
    /// Stopped early on request; unlisted objects were not attempted.
    pub interrupted: bool,
    /// The listing failed part-way (after retries); objects after that point were not
    /// attempted.
    pub listing_error: Option<String>,
}

impl Summary {
    /// Whether every listed object was attempted and none failed.
    pub fn complete_and_clean(&self) -> bool {
        !self.interrupted && self.listing_error.is_none() && self.counts.failed == 0
    }
}

/// Why a backfill could not start.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// The configuration could not be loaded.
    #[error(transparent)]
    Config(#[from] ConfigLoadError),
    /// `--org` names no org of the configuration.
    #[error("--org {org}: no such org in the configuration; expected one of: {known}")]
    UnknownOrg {
        /// The org asked for.
        org: String,
        /// The configured orgs.
        known: String,
    },
    /// `--prefix` and the org's prefix select no key in common.
    #[error("--prefix {prefix:?} selects none of org {org}'s keys (they start with {org_prefix:?})")]
    DisjointPrefix {
        /// The prefix asked for.
        prefix: String,
        /// The org asked for.
        org: String,
        /// That org's prefix.
        org_prefix: String,
    },
    /// A bad option value.
    #[error("{0}")]
    Option(String),
    /// Local mode has no S3 destinations to check or copy into.
    #[error(
        "backfill lists and copies within S3; ENV=local is not supported (unset ENV, or use `invoke` with an event)"
    )]
    LocalMode,
    /// The first listing page failed.
    #[error("listing s3://{bucket}/{prefix}: {failure}")]
    List {
        /// Source bucket.
        bucket: String,
        /// Prefix listed.
        prefix: String,
        /// What S3 answered.
        failure: S3Failure,
    },
}

struct Plan<'a> {
    exporter: &'a Exporter,
    destination: &'a S3Destination,
    config: &'a Config,
    plugins: &'a OrgPlugins,
    copy: CopyOptions,
    options: &'a BackfillOptions,
}

/// Runs a backfill. `progress` is updated as it goes; `on_result` sees every finished
/// object (in completion order); when `stop` completes, no new object is started, the ones
/// in flight finish, and the summary says it was interrupted.
pub async fn run(
    exporter: &Exporter,
    options: &BackfillOptions,
    progress: Arc<Progress>,
    stop: impl Future<Output = ()>,
    mut on_result: impl FnMut(&ObjectResult),
) -> Result<Summary, BackfillError> {
    let started = Instant::now();
    // Listing, in-place checks and copies exist only between buckets.
    let destination = exporter.destination().as_s3().ok_or(BackfillError::LocalMode)?;
    if options.concurrency == 0 {
        return Err(BackfillError::Option("--concurrency must be at least 1".into()));
    }
    if !(1..=1000).contains(&options.page_size) {
        return Err(BackfillError::Option(format!(
            "--page-size {}: expected 1 to 1000",
            options.page_size
        )));
    }
    let config = exporter.config().await?;
    let prefix = listing_prefix(&config, options)?;
    // Fired by an interrupt: multipart copies in flight abort their uploads (single
    // copies are atomic and finish).
    let copy_stop = Stop::new();
    let plugins = exporter.plugins_for(&config).await;
    let plan = Plan {
        exporter,
        destination,
        config: &config,
        plugins: &plugins,
        copy: CopyOptions::from_settings(
            exporter.settings(),
            config.retry,
            copy_stop.clone(),
            exporter.aborts().clone(),
        ),
        options,
    };

    let first = list_page(
        exporter.client(),
        &options.bucket,
        &prefix,
        options.page_size,
        None,
        plan.copy.source_owner.as_deref(),
        &plan.copy.retry,
    )
    .await
    .map_err(|failure| BackfillError::List {
        bucket: options.bucket.clone(),
        prefix: prefix.clone(),
        failure,
    })?;
    // `--force` copies whatever is there: nothing to look up.
    let destinations = (!options.force).then(|| {
        DestinationListings::new(
            destination.client().clone(),
            config.clone(),
            plan.copy.retry,
            options.page_size,
            prefix.clone(),
            options.org.clone(),
        )
    });
    let (tx, rx) = mpsc::channel::<(Listed, Option<Known>)>(2 * options.page_size as usize);
    let lister = tokio::spawn(list_rest(
        exporter.client().clone(),
        options.bucket.clone(),
        prefix.clone(),
        options.page_size,
        first,
        plan.copy.source_owner.clone(),
        plan.copy.retry,
        progress.clone(),
        destinations,
        tx,
    ));

    // The interrupt is watched on its own, not only through the intake: once everything is
    // listed the intake has ended, and an interrupt must still reach the copies in flight.
    let mut interrupt = std::pin::pin!(stop);
    let listed = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|l| (l, rx)) });
    let mut results = std::pin::pin!(
        listed
            .take_until(copy_stop.stopped())
            .map(|(listed, known)| backfill_object(&plan, listed, known))
            .buffer_unordered(options.concurrency)
    );
    loop {
        tokio::select! {
            result = results.next() => match result {
                Some(result) => {
                    progress.finished(result.listed.object.size.unwrap_or(0), &result.outcome);
                    on_result(&result);
                }
                None => break,
            },
            () = &mut interrupt, if copy_stop.reason().is_none() => {
                copy_stop.stop(StopReason::Interrupted);
            }
        }
    }
    let interrupted = copy_stop.reason().is_some();
    let listing_error = if interrupted {
        lister.abort();
        None
    } else {
        match lister.await {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(error),
            Err(join) => Some(format!("listing task ended: {join}")),
        }
    };
    Ok(Summary {
        counts: progress.snapshot(),
        elapsed: started.elapsed(),
        interrupted,
        listing_error,
    })
}

/// The prefix to list: `--prefix`, narrowed to `--org`'s prefix when one is given.
fn listing_prefix(config: &Config, options: &BackfillOptions) -> Result<String, BackfillError> {
    let Some(org) = &options.org else {
        return Ok(options.prefix.clone());
    };
    let Some(customer) = config.customers.iter().find(|c| &c.org == org) else {
        let known: Vec<&str> = config.customers.iter().map(|c| c.org.as_str()).collect();
        return Err(BackfillError::UnknownOrg {
            org: org.clone(),
            known: known.join(", "),
        });
    };
    let (ours, theirs) = (&options.prefix, &customer.prefix);
    if ours.starts_with(theirs.as_str()) {
        Ok(ours.clone())
    } else if theirs.starts_with(ours.as_str()) {
        Ok(theirs.clone())
    } else {
        Err(BackfillError::DisjointPrefix {
            prefix: ours.clone(),
            org: org.clone(),
            org_prefix: theirs.clone(),
        })
    }
}

/// Sends the objects of `first` and of every following page into `tx`, each with what
/// `destinations` knows of it; stops quietly when the receiver is gone (interrupted), and
/// returns the failure when a page cannot be listed.
#[allow(clippy::too_many_arguments)]
async fn list_rest(
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    page_size: i32,
    first: listing::Page,
    owner: Option<String>,
    retry: RetryPolicy,
    progress: Arc<Progress>,
    mut destinations: Option<DestinationListings>,
    tx: mpsc::Sender<(Listed, Option<Known>)>,
) -> Result<(), String> {
    let mut page = first;
    loop {
        for listed in page.objects {
            progress.listed(listed.object.size.unwrap_or(0));
            let known = match destinations.as_mut() {
                Some(destinations) => destinations.lookup(&listed.object.key).await,
                None => None,
            };
            if tx.send((listed, known)).await.is_err() {
                return Ok(());
            }
        }
        let Some(token) = page.next else {
            progress.listing_finished();
            return Ok(());
        };
        page = list_page(
            &client,
            &bucket,
            &prefix,
            page_size,
            Some(token),
            owner.as_deref(),
            &retry,
        )
        .await
        .map_err(|failure| {
            format!(
                "listing s3://{bucket}/{prefix} stopped after {} objects: {failure}",
                progress.snapshot().listed
            )
        })?;
    }
}

async fn backfill_object(plan: &Plan<'_>, listed: Listed, known: Option<Known>) -> ObjectResult {
    let settings = plan.exporter.settings();
    let (customer, decision) =
        plan_object(plan.config, &settings.suffixes, plan.plugins, &listed.object).await;
    let org = customer.map(|c| c.org.clone());
    let outcome = match (&plan.options.org, decision) {
        (Some(wanted), _) if org.as_deref() != Some(wanted.as_str()) => ObjectOutcome::Skipped(format!(
            "belongs to {}, not --org {wanted}",
            org.as_deref()
                .map_or("no org".to_string(), |o| format!("org {o}"))
        )),
        (_, Decision::Skip(reason)) => ObjectOutcome::Skipped(reason),
        (_, Decision::Fail(failed)) => ObjectOutcome::Failed(failed.reason),
        (_, Decision::Copy(targets)) => {
            let copy = CopyOptions {
                write: customer.map(WriteOptions::for_org).unwrap_or_default(),
                // The listing's class: no source HEAD per object to keep it.
                listed_storage_class: listed.storage_class.clone(),
                ..plan.copy.clone()
            };
            export_to(plan, customer, &copy, &listed, known, targets).await
        }
    };
    ObjectResult { listed, org, outcome }
}

fn could_not_check(target: &Target, failure: &S3Failure) -> ObjectOutcome {
    ObjectOutcome::Failed(format!(
        "could not check s3://{}/{}: {failure}",
        target.bucket, target.key
    ))
}

/// `known`: what the destination listing says of the source's key in the org's bucket; a
/// target it does not cover (a rewritten key, another bucket) is checked with a HEAD.
async fn export_to(
    plan: &Plan<'_>,
    org: Option<&Org>,
    copy: &CopyOptions,
    listed: &Listed,
    known: Option<Known>,
    targets: Vec<Target>,
) -> ObjectOutcome {
    // An org with a roleArn is checked and written as its role, like an event's records.
    let as_role = match org {
        Some(org) => match plan.exporter.role_destination(org).await {
            Ok(as_role) => as_role,
            Err(failed) => return ObjectOutcome::Failed(failed.to_string()),
        },
        None => None,
    };
    let destination = as_role.as_ref().unwrap_or(plan.destination);
    let mut missing = Vec::with_capacity(targets.len());
    // The source as the listing shows it; read with a HEAD at most once, and only when the
    // in-place rule asks for it.
    let mut source = listed.facts();
    // A listing shows no encryption: a copy this org wrote is SSE-KMS if the org says so.
    let listed_sse = match copy.write.encryption {
        Some(Encryption::Kms { .. }) => Sse::Kms,
        _ => Sse::Unknown,
    };
    for target in targets {
        if !plan.options.force {
            let listing = known
                .as_ref()
                .filter(|k| *k.bucket == *target.bucket && target.key == listed.object.key);
            let owner = copy.write.owner_of(&target.bucket);
            let head = || destination.existing(&target, owner, &copy.retry);
            let mut existing = match listing.map(|known| &known.existing) {
                Some(found) => found.clone().map(|found| Existing {
                    sse: listed_sse,
                    ..found
                }),
                None => match head().await {
                    Ok(found) => found,
                    Err(failure) => return could_not_check(&target, &failure),
                },
            };
            // Each side is read with a HEAD at most once (already_copied never asks for a
            // side read already): three rounds at most.
            let mut in_place = false;
            for _ in 0..3 {
                let Some(found) = existing.as_ref() else { break };
                match already_copied(&source, found) {
                    Copied::Yes => in_place = true,
                    Copied::No => {}
                    Copied::ReadHead(Side::Destination) => {
                        existing = match head().await {
                            Ok(headed) => headed.map(|headed| headed.sharpened_by(found)),
                            Err(failure) => return could_not_check(&target, &failure),
                        };
                        continue;
                    }
                    Copied::ReadHead(Side::Source) => {
                        // Read as whoever copies (the org's role, when it has one): a role
                        // that cannot read the source is never told "in place" on the
                        // strength of the function's rights.
                        source = match destination.source_head(&listed.object, copy).await {
                            Ok(headed) => headed.sharpened_by(&source),
                            Err(S3Failure::SourceChanged(why)) => {
                                return ObjectOutcome::Superseded(why.to_string());
                            }
                            Err(failure) => {
                                return ObjectOutcome::Failed(format!(
                                    "could not read s3://{}/{}: {failure}",
                                    listed.object.bucket, listed.object.key
                                ));
                            }
                        };
                        continue;
                    }
                }
                break;
            }
            if in_place {
                continue;
            }
        }
        missing.push(target);
    }
    if missing.is_empty() {
        return ObjectOutcome::InPlace;
    }
    if plan.options.dry_run {
        return ObjectOutcome::WouldCopy(missing);
    }
    let reports: Vec<TargetReport> = futures::future::join_all(
        missing
            .iter()
            .map(|target| destination.copy(&listed.object, target, copy)),
    )
    .await
    .into_iter()
    .map(
        |delivery| match org.and_then(|o| o.role.as_ref()).filter(|_| as_role.is_some()) {
            Some(role) => delivery.naming_role(&role.role_arn),
            None => delivery,
        },
    )
    .map(TargetReport::from)
    .collect();
    let described = |t: &TargetReport| {
        format!(
            "s3://{}/{}: {}",
            t.destination_bucket,
            t.destination_key,
            t.reason.as_deref().unwrap_or("")
        )
    };
    if let Some(failed) = reports.iter().find(|t| t.outcome == Outcome::Failed) {
        return ObjectOutcome::Failed(described(failed));
    }
    if let Some(superseded) = reports.iter().find(|t| t.outcome == Outcome::Superseded) {
        return ObjectOutcome::Superseded(described(superseded));
    }
    let bytes = reports.iter().filter_map(|t| t.bytes).sum();
    ObjectOutcome::Copied { bytes }
}
