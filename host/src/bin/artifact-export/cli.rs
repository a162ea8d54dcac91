//! The command line: parses it (clap) and hands each subcommand to its own module:
//! `invoke` runs the Lambda handler once on an event file, `validate` checks a
//! configuration, `check` asks the services what each org can do, `backfill` exports
//! existing objects, `plugin` and `plan` serve plugin authors. Exit codes are in [`crate::exit`].

use std::path::PathBuf;
use std::process::ExitCode;

use artifact_export::env::{self, Lookup};
use artifact_export::logging::{self, LogFormat};
use clap::{Parser, Subcommand};

use crate::backfill::{self, BackfillArgs};
use crate::check::check;
use crate::exit::{self, BadInput};
use crate::invoke::{InvokeOutput, invoke};
use crate::plan::plan;
use crate::plugin::{self, PluginCommand};
use crate::reconcile::{self, ReconcileArgs};
use crate::validate::validate;

/// Exports objects from a shared source bucket to each organization's bucket.
#[derive(Debug, Parser)]
#[command(name = "artifact-export", version, about, args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Lambda handler once on an event, with the same environment as in Lambda.
    ///
    /// Prints the report as JSON on stdout (logs go to stderr). Exit 0 when no record
    /// failed, 1 when any did, 2 on bad input.
    Invoke {
        /// Event JSON file (at most 6 MiB, Lambda's payload cap); `-` reads stdin.
        #[arg(long)]
        event: PathBuf,
        /// Read the configuration from this file instead of CONFIGURATION_BUCKET/KEY.
        #[arg(long)]
        config: Option<PathBuf>,
        /// What to print: the per-record `report`; the `response` Lambda would return (the
        /// Batch Operations answer, the SQS `batchItemFailures`, or the invocation error
        /// `{errorType, errorMessage}`); or `both` as `{"report": …, "response": …}`.
        #[arg(long, value_enum, default_value_t = InvokeOutput::Report)]
        output: InvokeOutput,
    },
    /// Load and validate a configuration, and print which org exports to which bucket.
    /// Every org's plugin is loaded and instantiated.
    Validate {
        /// Configuration file, or a folder of org documents (`DIR/`); without it,
        /// CONFIGURATION_BUCKET/CONFIGURATION_KEY are read (a key ending in `/`: org documents).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The source bucket: a destination or allowedBuckets entry equal to it is refused.
        #[arg(long, env = "SOURCE_BUCKET")]
        source_bucket: Option<String>,
        /// Then write the single document given by --config as org documents into this
        /// folder (`<org>.json` each, `_defaults.json`): a migration aid.
        #[arg(long, value_name = "OUT_DIR")]
        split: Option<PathBuf>,
        /// Then write the snapshot of the org documents in S3 (`_snapshot.jsonl` beside
        /// them), which a cold start reads instead of one GET per org. Run again after edits:
        /// a stale snapshot only costs the function a GET per changed document.
        #[arg(long)]
        write_snapshot: bool,
    },
    /// For each org, what the function can actually do: assume its roleArn, reach its
    /// destination bucket, load its plugin, and with --write-probe put and delete a
    /// zero-byte key there. One line per org: `ok  ORG  (…)` or `FAIL ORG  REASON: …`.
    ///
    /// Exit 0 when every org passed, 1 when any failed, 2 on bad input.
    Check {
        /// Configuration file; without it, CONFIGURATION_BUCKET/CONFIGURATION_KEY are read.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Check only this org.
        #[arg(long)]
        org: Option<String>,
        /// Also put and delete a zero-byte key under `.artifact-export-probe/` in each
        /// destination bucket (as the org's role).
        #[arg(long)]
        write_probe: bool,
    },
    /// Tools for plugin authors: precompile, test a decision or a table of cases.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Export objects that already exist in the source bucket: list them (paginated) and run
    /// each through the same routing, plugins and copy as an event. Objects whose destination
    /// already holds them are skipped, so a rerun picks up where an interrupted run stopped.
    ///
    /// Exit 0 when every object was handled, 1 when any failed, 2 on bad input, 130 when
    /// interrupted (Ctrl-C or SIGTERM: objects in flight finish first).
    Backfill(Box<BackfillArgs>),
    /// Is every object exported? Compare what each org's policy selects from the source
    /// with what its destination holds: one line per org (`in place`, `missing`, `differs`,
    /// `pending`, `skipped`, `extra`), then a total. `--repair` copies the gaps.
    ///
    /// Exit 0 when no org has a missing or differing object (with `--repair`: when every gap
    /// was repaired), 1 otherwise, 2 on bad input, 130 when interrupted.
    Reconcile(Box<ReconcileArgs>),
    /// Print, for each key, the owning org and the decision (plugins included); touches no S3
    /// object.
    Plan {
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
        /// File with one key per line; `-` reads stdin.
        #[arg(long)]
        keys: PathBuf,
        /// Suffixes to export (default: SUFFIX_TO_COPY).
        #[arg(long)]
        suffixes: Option<String>,
    },
}

/// Parses the command line and runs the command.
pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    logging::init(LogFormat::Text, env::process_env("RUST_LOG").as_deref());
    let get: Lookup = &env::process_env;
    let result = match cli.command {
        Command::Invoke {
            event,
            config,
            output,
        } => invoke(&event, config, output, get).await,
        Command::Validate {
            config,
            source_bucket,
            split,
            write_snapshot,
        } => validate(config, source_bucket, split, write_snapshot, get).await,
        Command::Check {
            config,
            org,
            write_probe,
        } => check(config, org, write_probe, get).await,
        Command::Plugin { command } => plugin::plugin(command).await.map_err(BadInput),
        Command::Backfill(args) => backfill::backfill(*args, get).await,
        Command::Reconcile(args) => reconcile::reconcile(*args, get).await,
        Command::Plan {
            config,
            keys,
            suffixes,
        } => plan(&config, &keys, suffixes, get).await.map_err(BadInput),
    };
    result.unwrap_or_else(exit::bad_input)
}
