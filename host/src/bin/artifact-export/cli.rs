//! The command line: `invoke` runs the Lambda handler once on an event file, `validate`
//! checks a configuration, `backfill` exports existing objects, `plugin` and `plan` serve
//! plugin authors. Exit codes: 0 success, 1 a record failed, 2 bad input, 130 interrupted.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use artifact_export::config::Config;
use artifact_export::env::{ConfigLocation, Settings};
use artifact_export::event::parse_event_text;
use artifact_export::handler::{Exporter, handle};
use artifact_export::logging::{self, LogFormat};
use artifact_export::report::Outcome;
use artifact_export::s3_client;
use clap::{Parser, Subcommand};

use crate::backfill_cmd::{self, BackfillArgs};
use crate::plugin_cmd::{self, PluginCommand};

/// Exports objects from a shared source bucket to each organization's bucket.
#[derive(Debug, Parser)]
#[command(name = "artifact-export", version, about, args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Lambda handler once on an event, with the same environment as in Lambda.
    ///
    /// Prints the report as JSON on stdout (logs go to stderr). Exit 0 when no record
    /// failed, 1 when any did, 2 on bad input.
    Invoke {
        /// Event JSON file; `-` reads stdin.
        #[arg(long)]
        event: PathBuf,
        /// Read the configuration from this file instead of CONFIGURATION_BUCKET/KEY.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Load and validate a configuration, and print which org exports to which bucket.
    /// Every org's plugin is loaded and instantiated.
    Validate {
        /// Configuration file; without it, CONFIGURATION_BUCKET/CONFIGURATION_KEY are read.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The source bucket: a destination or allowedBuckets entry equal to it is refused.
        #[arg(long, env = "SOURCE_BUCKET")]
        source_bucket: Option<String>,
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

/// A bad-input error: printed on one line, exit code 2.
pub struct BadInput(pub anyhow::Error);

pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    logging::init(LogFormat::Text);
    let result = match cli.command {
        Command::Invoke { event, config } => invoke(&event, config).await,
        Command::Validate {
            config,
            source_bucket,
        } => validate(config, source_bucket).await,
        Command::Plugin { command } => plugin_cmd::plugin(command).await.map_err(BadInput),
        Command::Backfill(args) => backfill_cmd::backfill(*args).await,
        Command::Plan {
            config,
            keys,
            suffixes,
        } => plugin_cmd::plan(&config, &keys, suffixes).await.map_err(BadInput),
    };
    match result {
        Ok(code) => code,
        Err(BadInput(error)) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn invoke(event_path: &Path, config_file: Option<PathBuf>) -> Result<ExitCode, BadInput> {
    let text = read_input(event_path).map_err(BadInput)?;
    let event = parse_event_text(&text)
        .with_context(|| format!("event {}", event_path.display()))
        .map_err(BadInput)?;
    let settings = Settings::from_lookup_with_config(&|name| std::env::var(name).ok(), config_file)
        .map_err(|e| BadInput(e.into()))?;
    let exporter = Exporter::new(s3_client::from_env().await, settings);
    exporter.config().await.map_err(|e| BadInput(e.into()))?;
    let report = handle(&exporter, event).await;
    let json = serde_json::to_string_pretty(&report).expect("a report always serializes");
    println!("{json}");
    let failed = report.records.iter().any(|r| r.outcome == Outcome::Failed);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn validate(config_file: Option<PathBuf>, source_bucket: Option<String>) -> Result<ExitCode, BadInput> {
    let config = match config_file {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("config {}: could not be read", path.display()))
                .map_err(BadInput)?;
            Config::parse_for_source(&text, &path.display().to_string(), source_bucket.as_deref())
                .map_err(|e| BadInput(e.into()))?
        }
        None => {
            let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
            let missing = |name: &str| {
                BadInput(anyhow::anyhow!(
                    "environment variable {name} is missing or empty; expected it, or pass --config FILE"
                ))
            };
            let location = ConfigLocation::S3 {
                bucket: get("CONFIGURATION_BUCKET").ok_or_else(|| missing("CONFIGURATION_BUCKET"))?,
                key: get("CONFIGURATION_KEY").ok_or_else(|| missing("CONFIGURATION_KEY"))?,
            };
            let store = artifact_export::config_store::ConfigStore::new(location, std::time::Duration::ZERO)
                .with_source_bucket(source_bucket);
            let client = s3_client::from_env().await;
            (*store.current(&client).await.map_err(|e| BadInput(e.into()))?).clone()
        }
    };
    println!(
        "configuration is valid: {} orgs, retry {}",
        config.customers.len(),
        config.retry
    );
    for c in &config.customers {
        let suffixes = c
            .suffixes
            .as_ref()
            .map(|s| format!(" (suffixes {s})"))
            .unwrap_or_default();
        println!(
            "  {:<20} {:<24} -> s3://{}{}",
            c.org, c.prefix, c.destination_bucket, suffixes
        );
    }
    let plugins = plugin_cmd::load_plugins(&config).await.map_err(BadInput)?;
    let mut broken = 0;
    for c in config.customers.iter().filter(|c| c.plugin.is_some()) {
        let status = match plugins.get(&c.org) {
            Some(Ok(plugin)) => match plugin.check_instantiates() {
                Ok(()) => format!("ok ({})", plugin.name()),
                Err(e) => format!("BROKEN: plugin {} {e}", plugin.name()),
            },
            Some(Err(e)) => format!("BROKEN: {e}"),
            None => "BROKEN: not loaded".to_string(),
        };
        broken += usize::from(status.starts_with("BROKEN"));
        println!("  plugin of {}: {status}", c.org);
    }
    if broken > 0 {
        eprintln!("error: {broken} plugin(s) do not work; see above");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

fn read_input(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("event from stdin: could not be read")?;
        Ok(text)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("event {}: could not be read", path.display()))
    }
}
