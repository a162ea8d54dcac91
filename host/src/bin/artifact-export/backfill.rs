//! `artifact-export backfill`: the shell around `artifact_export::backfill::run`. It parses
//! options, shows progress (a bar on a terminal, periodic lines otherwise), prints dry-run
//! lines, writes the manifest, turns Ctrl-C into a clean stop, and prints the summary.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use artifact_export::backfill::manifest::ManifestWriter;
use artifact_export::backfill::progress::{Progress, Snapshot};
use artifact_export::backfill::{
    self, BackfillOptions, DEFAULT_PAGE_SIZE, ObjectOutcome, ObjectResult, Summary,
};
use artifact_export::destination::aborts::ABORT_TIMEOUT;
use artifact_export::env::{Lookup, Settings};
use artifact_export::exporter::Exporter;
use clap::Args;
use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::exit::{self, BadInput, INTERRUPTED};

/// The options every run over a listing of the source takes (`backfill`, `reconcile`).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Source bucket to list.
    #[arg(long)]
    pub bucket: String,
    /// Only keys starting with this.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Objects in flight at once [default: COPY_CONCURRENCY].
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Read the configuration from this file instead of CONFIGURATION_BUCKET/KEY.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Keys per listing page.
    #[arg(long, default_value_t = DEFAULT_PAGE_SIZE)]
    pub page_size: i32,
    /// Seconds between progress lines when stderr is not a terminal (0: none).
    #[arg(long, default_value_t = 10.0)]
    pub progress_interval: f64,
}

impl RunArgs {
    /// The settings (the environment, `--config`), once the options are checked.
    pub fn settings(&self, get: Lookup<'_>) -> Result<Settings, BadInput> {
        let settings = Settings::from_lookup_with_config(get, self.config.clone())?;
        if !self.progress_interval.is_finite() || self.progress_interval < 0.0 {
            return Err(BadInput(anyhow!(
                "--progress-interval {}: expected a number of seconds, 0 or more",
                self.progress_interval
            )));
        }
        Ok(settings)
    }
}

/// The manifest at `path` (written as `path.partial` until finished), if one is asked for;
/// `option` names it in the error.
pub fn open_manifest(
    path: Option<&std::path::Path>,
    option: &str,
) -> Result<Option<ManifestWriter>, BadInput> {
    path.map(|path| {
        ManifestWriter::create(path)
            .with_context(|| format!("{option} {}: could not be created", path.display()))
            .map_err(BadInput)
    })
    .transpose()
}

/// Options of `artifact-export backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Only this org's objects (its prefix narrows the listing).
    #[arg(long)]
    org: Option<String>,
    /// Print what would be copied where (one line per target on stdout); copy nothing.
    #[arg(long)]
    dry_run: bool,
    /// Copy even when the destination already holds the object (same ETag and size).
    #[arg(long)]
    force: bool,
    /// Write an S3 Batch Operations CSV manifest (bucket,key) of the objects that would be
    /// copied, for a job that invokes the function; copies nothing.
    #[arg(long, value_name = "OUT.csv")]
    manifest: Option<PathBuf>,
}

/// Exit 0 when every object was handled, 1 when any failed, 2 on bad input, 130 when
/// interrupted.
pub async fn backfill(args: BackfillArgs, get: Lookup<'_>) -> Result<ExitCode, BadInput> {
    let settings = args.run.settings(get)?;
    let options = BackfillOptions {
        bucket: args.run.bucket.clone(),
        prefix: args.run.prefix.clone(),
        orgs: args.org.clone().into_iter().collect(),
        concurrency: args.run.concurrency.unwrap_or(settings.copy_concurrency),
        page_size: args.run.page_size,
        dry_run: args.dry_run || args.manifest.is_some(),
        force: args.force,
        reconcile: None,
    };
    let mut manifest = open_manifest(args.manifest.as_deref(), "manifest")?;
    let exporter = Exporter::from_env(settings).await;
    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    let display = Display::start(progress.clone(), started, args.run.progress_interval);
    let manifest_error: Mutex<Option<std::io::Error>> = Mutex::new(None);

    let on_result = |result: &ObjectResult| {
        let source = format!(
            "s3://{}/{}",
            result.listed.object.bucket, result.listed.object.key
        );
        let org = result.org.as_deref().unwrap_or("-");
        match &result.outcome {
            ObjectOutcome::WouldCopy(targets) => {
                if let Some(writer) = manifest.as_mut() {
                    if let Err(e) = writer.push(&result.listed.object.bucket, &result.listed.object.key) {
                        manifest_error.lock().expect("not poisoned").get_or_insert(e);
                    }
                } else {
                    for t in targets {
                        display.println_stdout(&format!(
                            "would copy {source} -> s3://{}/{} (org {org})",
                            t.bucket, t.key
                        ));
                    }
                }
            }
            ObjectOutcome::Failed(reason) => {
                display.println_stderr(&format!("failed: {source} (org {org}): {reason}"))
            }
            _ => {}
        }
    };
    let outcome = backfill::run(&exporter, &options, progress.clone(), interrupted(), on_result).await;
    // The process ends with this command: multipart aborts still running end first.
    exporter.aborts().settle(ABORT_TIMEOUT).await;
    display.finish();
    let summary = match outcome {
        Ok(summary) => summary,
        Err(error) => {
            if let Some(writer) = manifest {
                writer.discard();
            }
            return Err(error.into());
        }
    };
    eprintln!("{}", summary_line(&options, &summary));
    if let Some(error) = &summary.listing_error {
        eprintln!("error: {error}; rerun the same command to continue");
    }
    if summary.interrupted {
        eprintln!(
            "interrupted: no new objects were started and the ones in flight finished; rerun the same command to pick up the rest (objects already in place are skipped)"
        );
    }
    if let (Some(writer), Some(path)) = (manifest, &args.manifest) {
        if let Some(e) = manifest_error.into_inner().expect("not poisoned") {
            writer.discard();
            return Err(BadInput(anyhow!(
                "manifest {}: could not be written: {e}",
                path.display()
            )));
        }
        if summary.interrupted || summary.listing_error.is_some() {
            writer.discard();
            eprintln!(
                "manifest {} not written: the listing did not finish",
                path.display()
            );
        } else {
            let rows = writer
                .finish()
                .with_context(|| format!("manifest {}: could not be written", path.display()))
                .map_err(BadInput)?;
            eprintln!("manifest {}: {rows} objects", path.display());
            if summary.counts.failed > 0 {
                eprintln!(
                    "the {} failed objects are not in the manifest; see the lines above",
                    summary.counts.failed
                );
            }
        }
    }
    Ok(if summary.interrupted {
        ExitCode::from(INTERRUPTED)
    } else {
        exit::failed_if(!summary.complete_and_clean())
    })
}

/// Completes at the first Ctrl-C or SIGTERM; a second Ctrl-C ends the process at once.
pub(crate) async fn interrupted() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let sigterm = async {
        match term.as_mut() {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = sigterm => {}
    }
    eprintln!("stopping: finishing the objects in flight (Ctrl-C again quits at once)");
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(i32::from(INTERRUPTED));
        }
    });
}

/// Objects listed, with a `+` while the listing goes on.
fn total(s: &Snapshot) -> String {
    if s.listing_done {
        s.listed.to_string()
    } else {
        format!("{}+", s.listed)
    }
}

/// One line with every count.
fn counts_line(s: &Snapshot) -> String {
    let total = total(s);
    let mut line = format!(
        "{}/{total} done: {} copied ({})",
        s.done,
        s.copied,
        HumanBytes(s.copied_bytes)
    );
    if s.would_copy > 0 {
        line.push_str(&format!(", {} to copy", s.would_copy));
    }
    if s.pending > 0 {
        line.push_str(&format!(", {} pending", s.pending));
    }
    line.push_str(&format!(
        ", {} already in place, {} skipped, {} superseded, {} failed",
        s.in_place, s.skipped, s.superseded, s.failed
    ));
    line
}

fn summary_line(options: &BackfillOptions, summary: &Summary) -> String {
    let s = &summary.counts;
    format!(
        "backfill of s3://{}/{}{}: {} listed; {} in {} ({:.1} objects/s)",
        options.bucket,
        options.prefix,
        if options.dry_run { " (dry run)" } else { "" },
        s.listed,
        counts_line(s),
        HumanDuration(summary.elapsed),
        s.rate(summary.elapsed)
    )
}

fn status_line(s: &Snapshot, elapsed: Duration) -> String {
    let eta = s
        .eta(elapsed)
        .map(|d| format!(", ETA {}", HumanDuration(d)))
        .unwrap_or_default();
    format!(
        "{}; {:.1} objects/s, {}/s{eta}",
        counts_line(s),
        s.rate(elapsed),
        HumanBytes(s.byte_rate(elapsed) as u64)
    )
}

/// The bar's text, most important first (a narrow terminal cuts the end): position, rates,
/// ETA, then the counts.
fn bar_message(s: &Snapshot, elapsed: Duration) -> String {
    let total = total(s);
    let eta = s
        .eta(elapsed)
        .map(|d| format!(" ETA {}", HumanDuration(d)))
        .unwrap_or_default();
    format!(
        "{}/{total} {:.1} objects/s {}/s{eta} | {} copied, {} in place, {} skipped, {} superseded, {} failed",
        s.done,
        s.rate(elapsed),
        HumanBytes(s.byte_rate(elapsed) as u64),
        s.copied + s.would_copy,
        s.in_place,
        s.skipped,
        s.superseded,
        s.failed
    )
}

/// Progress on stderr: a bar redrawn on a terminal, or a plain line every interval.
pub(crate) struct Display {
    bar: Option<ProgressBar>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Display {
    pub(crate) fn start(progress: Arc<Progress>, started: Instant, interval_secs: f64) -> Display {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed_precise} {bar:20} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let shown = bar.clone();
            let ticker = tokio::spawn(async move {
                loop {
                    let s = progress.snapshot();
                    shown.set_length(s.listed);
                    shown.set_position(s.done);
                    shown.set_message(bar_message(&s, started.elapsed()));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
            return Display {
                bar: Some(bar),
                ticker: Some(ticker),
            };
        }
        let ticker = (interval_secs > 0.0).then(|| {
            let every = Duration::from_secs_f64(interval_secs);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let s = progress.snapshot();
                    eprintln!("progress: {}", status_line(&s, started.elapsed()));
                }
            })
        });
        Display { bar: None, ticker }
    }

    pub(crate) fn println_stderr(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    pub(crate) fn println_stdout(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(ticker) = &self.ticker {
            ticker.abort();
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
