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
mod intake;
pub mod inventory;
pub mod listing;
pub mod manifest;
mod object;
pub mod progress;
pub mod queue;
pub mod reconcile;
pub mod scheduled;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::config_store::ConfigLoadError;
use crate::destination::{CopyOptions, Destination, Stop, StopReason};
use crate::exporter::Exporter;
use crate::route::Target;
use crate::s3::S3Failure;
use destination_listing::{DestinationListings, Known, Leftovers};
use listing::{Listed, list_page};
use object::{RunContext, backfill_object};
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
    /// Only these orgs' objects (none: every org's). One org narrows the listing to its
    /// prefix.
    pub orgs: Vec<String>,
    /// Objects in flight at once.
    pub concurrency: usize,
    /// Keys per listing page (1–1000).
    pub page_size: i32,
    /// Decide and check, but copy nothing.
    pub dry_run: bool,
    /// Copy even when the destination already holds the object.
    pub force: bool,
    /// Reconcile: classify every object (and keep the destinations' unmatched objects);
    /// copies only with `dry_run` off (`--repair`).
    pub reconcile: Option<ReconcileOptions>,
}

/// What makes a backfill a reconcile.
#[derive(Debug, Clone, Default)]
pub struct ReconcileOptions {
    /// A source written less than this before now (or before the source inventory's time)
    /// is `pending`, not a gap, when its target is missing or differs: its event may be on
    /// its way.
    pub grace: Duration,
    /// An S3 Inventory manifest (`s3://…/manifest.json`) of the source, read instead of
    /// listing it.
    pub source_inventory: Option<String>,
    /// `(org, manifest)`: an S3 Inventory of the org's destination bucket, read instead of
    /// listing it.
    pub destination_inventories: Vec<(String, String)>,
}

/// Why a target needs a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Gap {
    /// No object under the target's key.
    Missing,
    /// An object is there, but not this version of the source.
    Differs,
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
    /// Reconcile: a target is missing or differs, but the source was written within the
    /// grace period (its event may be on its way).
    Pending,
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
    /// Why it needed a copy (missing or differing targets; the worse of its targets), if it
    /// did; with `Copied`, `Failed` or `Superseded` the outcome is the repair's.
    pub gap: Option<Gap>,
    /// The targets the org's policy named (in place or not): a reconcile's rewritten keys.
    pub targets: Vec<Target>,
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
    /// Reconcile: the destinations' objects no source key matched.
    pub leftovers: Leftovers,
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
    /// The repair queue cannot be used.
    #[error(transparent)]
    Queue(#[from] queue::QueueError),
    /// An inventory could not be read.
    #[error(transparent)]
    Inventory(#[from] inventory::InventoryError),
    /// The source inventory is of another bucket than `--bucket`.
    #[error("--source-inventory {url}: an inventory of bucket {found}, not of --bucket {bucket}")]
    InventoryOfAnotherBucket {
        /// The manifest.
        url: String,
        /// Its source bucket.
        found: String,
        /// `--bucket`.
        bucket: String,
    },
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
    let Destination::S3(destination) = exporter.destination() else {
        return Err(BackfillError::LocalMode);
    };
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
    let mut run = RunContext {
        exporter,
        destination,
        config: &config,
        pending_after: None,
        copy: CopyOptions::from_settings(
            exporter.settings(),
            config.retry,
            copy_stop.clone(),
            exporter.aborts().clone(),
        ),
        options,
    };

    // A reconcile's inventories are read (and sorted) before anything is looked at: a bad
    // one is bad input, not a failure half-way.
    let reconcile = options.reconcile.clone().unwrap_or_default();
    let spill = std::env::temp_dir();
    let source_inventory = match &reconcile.source_inventory {
        Some(url) => {
            let owner = run.copy.source_owner.as_deref();
            let opened =
                inventory::open(exporter.client(), url, &prefix, &run.copy.retry, owner, &spill).await?;
            if opened.bucket() != options.bucket {
                return Err(BackfillError::InventoryOfAnotherBucket {
                    url: url.clone(),
                    found: opened.bucket().to_string(),
                    bucket: options.bucket.clone(),
                });
            }
            Some(opened)
        }
        None => None,
    };
    // A gap written within the grace period of now (or of the inventory's time) is pending.
    let seen_at = source_inventory.as_ref().map_or_else(
        || aws_smithy_types::DateTime::from(std::time::SystemTime::now()),
        |inventory| inventory.created(),
    );
    run.pending_after = options.reconcile.as_ref().map(|_| {
        let seen_ms = seen_at.secs() * 1000 + i64::from(seen_at.subsec_nanos() / 1_000_000);
        let grace_ms = i64::try_from(reconcile.grace.as_millis()).unwrap_or(i64::MAX);
        aws_smithy_types::DateTime::from_millis(seen_ms.saturating_sub(grace_ms))
    });
    let mut destination_inventories = std::collections::HashMap::new();
    for (org, url) in &reconcile.destination_inventories {
        let Some(owner) = config.org_named(org) else {
            let known: Vec<&str> = config.customers.iter().map(|c| c.org.as_str()).collect();
            return Err(BackfillError::UnknownOrg {
                org: org.clone(),
                known: known.join(", "),
            });
        };
        let within = if owner.prefix.starts_with(&prefix) {
            &owner.prefix
        } else {
            &prefix
        };
        let bucket_owner = owner.expected_bucket_owner.as_deref();
        let opened = inventory::open(
            exporter.client(),
            url,
            within,
            &run.copy.retry,
            bucket_owner,
            &spill,
        )
        .await?;
        destination_inventories.insert(org.clone(), opened.into_receiver());
    }
    let first = match &source_inventory {
        Some(_) => None,
        None => Some(
            list_page(
                exporter.client(),
                &options.bucket,
                &prefix,
                options.page_size,
                None,
                run.copy.source_owner.as_deref(),
                &run.copy.retry,
            )
            .await
            .map_err(|failure| BackfillError::List {
                bucket: options.bucket.clone(),
                prefix: prefix.clone(),
                failure,
            })?,
        ),
    };
    // `--force` copies whatever is there: nothing to look up.
    let mut destinations = (!options.force).then(|| {
        DestinationListings::new(
            destination.client().clone(),
            config.clone(),
            run.copy.retry,
            options.page_size,
            prefix.clone(),
            options.orgs.clone(),
        )
    });
    if let Some(listings) = destinations.take_if(|_| options.reconcile.is_some()) {
        // A reconcile lists every org's bucket, an org with a role as the role.
        let mut role_clients = std::collections::HashMap::new();
        for org in config.customers.iter().filter(|o| o.role.is_some()) {
            if let Ok(Some(as_role)) = exporter.role_destination(org).await {
                role_clients.insert(org.org.clone(), as_role.client().clone());
            }
        }
        destinations = Some(
            listings
                .keeping_leftovers(role_clients)
                .with_inventories(destination_inventories),
        );
    }
    let (tx, rx) = mpsc::channel::<(Listed, Option<Known>)>(2 * options.page_size as usize);
    let lister = match (source_inventory, first) {
        (Some(inventory), _) => tokio::spawn(intake::inventory_rest(
            inventory.into_receiver(),
            options.bucket.clone(),
            progress.clone(),
            destinations,
            tx,
        )),
        (None, first) => tokio::spawn(intake::list_rest(
            exporter.client().clone(),
            options.bucket.clone(),
            prefix.clone(),
            options.page_size,
            first.unwrap_or_default(),
            run.copy.source_owner.clone(),
            run.copy.retry,
            progress.clone(),
            destinations,
            tx,
        )),
    };

    // The interrupt is watched on its own, not only through the intake: once everything is
    // listed the intake has ended, and an interrupt must still reach the copies in flight.
    let mut interrupt = std::pin::pin!(stop);
    let listed = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|l| (l, rx)) });
    let mut results = std::pin::pin!(
        listed
            .take_until(copy_stop.stopped())
            .map(|(listed, known)| backfill_object(&run, listed, known))
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
    let (listing_error, leftovers) = if interrupted {
        lister.abort();
        (None, Leftovers::default())
    } else {
        match lister.await {
            Ok(Ok(leftovers)) => (None, leftovers),
            Ok(Err(error)) => (Some(error), Leftovers::default()),
            Err(join) => (Some(format!("listing task ended: {join}")), Leftovers::default()),
        }
    };
    Ok(Summary {
        counts: progress.snapshot(),
        elapsed: started.elapsed(),
        interrupted,
        listing_error,
        leftovers,
    })
}

/// The prefix to list: `--prefix`, narrowed to the org's prefix when one `--org` is given.
/// Every `--org` must be an org of the configuration whose keys `--prefix` can select.
fn listing_prefix(config: &Config, options: &BackfillOptions) -> Result<String, BackfillError> {
    let ours = &options.prefix;
    let mut narrowed = None;
    for org in &options.orgs {
        let Some(customer) = config.org_named(org) else {
            let known: Vec<&str> = config.customers.iter().map(|c| c.org.as_str()).collect();
            return Err(BackfillError::UnknownOrg {
                org: org.clone(),
                known: known.join(", "),
            });
        };
        let theirs = &customer.prefix;
        narrowed = if ours.starts_with(theirs.as_str()) {
            Some(ours.clone())
        } else if theirs.starts_with(ours.as_str()) {
            Some(theirs.clone())
        } else {
            return Err(BackfillError::DisjointPrefix {
                prefix: ours.clone(),
                org: org.clone(),
                org_prefix: theirs.clone(),
            });
        };
    }
    match (options.orgs.len(), narrowed) {
        (1, Some(prefix)) => Ok(prefix),
        _ => Ok(ours.clone()),
    }
}
