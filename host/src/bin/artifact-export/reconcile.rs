//! `artifact-export reconcile`: the shell around a reconcile run (`backfill::run` with
//! `ReconcileOptions`) and its account (`backfill::reconcile::Tally`). It parses options,
//! shows progress as `backfill` does, writes the missing manifest, and prints one line per
//! org and a total, or the `--json` document.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use artifact_export::backfill::progress::Progress;
use artifact_export::backfill::reconcile::{self, Reconciliation};
use artifact_export::backfill::{self, BackfillOptions, ObjectResult, ReconcileOptions};
use artifact_export::destination::aborts::ABORT_TIMEOUT;
use artifact_export::env::Lookup;
use artifact_export::exporter::Exporter;
use clap::Args;

use crate::backfill::{Display, RunArgs, interrupted, open_manifest};
use crate::exit::{self, BadInput, INTERRUPTED};

/// Options of `artifact-export reconcile`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Only this org (repeat for several); one org narrows the listing to its prefix.
    #[arg(long = "org", value_name = "ORG")]
    orgs: Vec<String>,
    /// A gap whose source was written less than this many minutes ago is `pending`: its
    /// event may be on its way.
    #[arg(long, default_value_t = 15)]
    grace_minutes: u64,
    /// Read the source from this S3 Inventory delivery (`s3://BUCKET/…/manifest.json`, CSV)
    /// instead of listing it; the grace period then counts back from the inventory's time.
    #[arg(long, value_name = "MANIFEST")]
    source_inventory: Option<String>,
    /// Read ORG's destination bucket from this S3 Inventory delivery instead of listing it
    /// (repeat per org; an org without one is listed).
    #[arg(long, value_name = "ORG=MANIFEST", value_parser = org_and_manifest)]
    destination_inventory: Vec<(String, String)>,
    /// Print one JSON document instead of the lines.
    #[arg(long)]
    json: bool,
    /// Write an S3 Batch Operations CSV manifest (bucket,key) of the missing and differing
    /// source objects, for a job that invokes the function.
    #[arg(long, value_name = "OUT.csv")]
    missing_manifest: Option<PathBuf>,
    /// Copy the missing and differing objects (conditional on the listed ETag, as an
    /// event's copy).
    #[arg(long, conflicts_with = "repair_via_queue")]
    repair: bool,
    /// Send each missing and differing object to the function's SQS queue as the S3
    /// notification of its upload (`MessageGroupId` = the org), for big gaps: the function
    /// repairs them on Lambda's fleet.
    #[arg(long, value_name = "QUEUE_URL")]
    repair_via_queue: Option<String>,
}

/// `ORG=s3://…/manifest.json`, for `--destination-inventory`.
fn org_and_manifest(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((org, url)) if !org.is_empty() && !url.is_empty() => Ok((org.to_string(), url.to_string())),
        _ => Err(format!("{value:?}: expected ORG=s3://BUCKET/…/manifest.json")),
    }
}

/// Exit 0 when complete (with `--repair`: every gap repaired), 1 otherwise, 2 on bad
/// input, 130 when interrupted.
pub async fn reconcile(args: ReconcileArgs, get: Lookup<'_>) -> Result<ExitCode, BadInput> {
    let settings = args.run.settings(get)?;
    let grace = Duration::from_secs(args.grace_minutes.saturating_mul(60));
    let options = BackfillOptions {
        bucket: args.run.bucket.clone(),
        prefix: args.run.prefix.clone(),
        orgs: args.orgs.clone(),
        concurrency: args.run.concurrency.unwrap_or(settings.copy_concurrency),
        page_size: args.run.page_size,
        dry_run: !args.repair,
        force: false,
        reconcile: Some(ReconcileOptions {
            grace,
            source_inventory: args.source_inventory.clone(),
            destination_inventories: args.destination_inventory.clone(),
        }),
    };
    let mut manifest = open_manifest(args.missing_manifest.as_deref(), "--missing-manifest")?;
    let exporter = Exporter::from_env(settings).await;
    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    let display = Display::start(progress.clone(), started, args.run.progress_interval);
    let manifest_error: Mutex<Option<std::io::Error>> = Mutex::new(None);
    let on_result = |result: &ObjectResult| {
        let object = &result.listed.object;
        if let (Some(_), Some(writer)) = (result.gap, manifest.as_mut())
            && let Err(e) = writer.push(&object.bucket, &object.key)
        {
            manifest_error.lock().expect("not poisoned").get_or_insert(e);
        }
        if let backfill::ObjectOutcome::Failed(reason) = &result.outcome {
            let org = result.org.as_deref().unwrap_or("-");
            display.println_stderr(&format!(
                "failed: s3://{}/{} (org {org}): {reason}",
                object.bucket, object.key
            ));
        }
    };
    let queue = args.repair_via_queue.as_deref();
    let outcome = reconcile::reconcile(
        &exporter,
        &options,
        queue,
        progress.clone(),
        interrupted(),
        on_result,
    )
    .await;
    exporter.aborts().settle(ABORT_TIMEOUT).await;
    display.finish();
    let Reconciliation {
        reconciled,
        summary,
        sent: queued,
    } = match outcome {
        Ok(reconciliation) => reconciliation,
        Err(error) => {
            if let Some(writer) = manifest {
                writer.discard();
            }
            return Err(error.into());
        }
    };
    let finished = !summary.interrupted && summary.listing_error.is_none();
    if args.json {
        let mut document = reconciled.to_json();
        document["complete"] = (finished && reconciled.complete()).into();
        println!("{document}");
    } else {
        for org in &reconciled.orgs {
            println!("{}", org.line());
        }
        println!("{}", reconciled.total().line());
    }
    for org in &reconciled.extras_unknown {
        eprintln!("org {org}: its destination could not be listed; its extra objects are not known");
    }
    if let Some(error) = &summary.listing_error {
        eprintln!("error: {error}; the account above is incomplete");
    }
    if let Some(queued) = &queued {
        for failed in &queued.failed {
            eprintln!("not sent: {failed}");
        }
        eprintln!(
            "repair queue: {} messages sent, {} not sent",
            queued.sent,
            queued.failed.len()
        );
    }
    if summary.interrupted {
        eprintln!("interrupted: the account above covers only the objects listed so far");
    }
    if let (Some(writer), Some(path)) = (manifest, &args.missing_manifest) {
        if let Some(e) = manifest_error.into_inner().expect("not poisoned") {
            writer.discard();
            return Err(BadInput(anyhow!(
                "--missing-manifest {}: could not be written: {e}",
                path.display()
            )));
        }
        if finished {
            let rows = writer
                .finish()
                .with_context(|| format!("--missing-manifest {}: could not be written", path.display()))
                .map_err(BadInput)?;
            eprintln!("manifest {}: {rows} objects", path.display());
        } else {
            writer.discard();
            eprintln!(
                "manifest {} not written: the listing did not finish",
                path.display()
            );
        }
    }
    Ok(if summary.interrupted {
        ExitCode::from(INTERRUPTED)
    } else if args.repair {
        exit::failed_if(!finished || !reconciled.repaired())
    } else if let Some(queued) = &queued {
        // Every gap handed to the function, every object checked.
        let gaps: u64 = reconciled.orgs.iter().map(|o| o.missing + o.differs).sum();
        let checked = reconciled.orgs.iter().all(|o| o.failed == 0);
        exit::failed_if(!finished || !checked || !queued.failed.is_empty() || queued.sent != gaps)
    } else {
        exit::failed_if(!finished || !reconciled.complete())
    })
}
