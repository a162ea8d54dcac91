//! `artifact-export plugin …` (wit, new, test, compile): tools for plugin authors. Nothing
//! here copies anything.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use artifact_export::config::{DEFAULT_MAX_INSTRUCTIONS, DEFAULT_MAX_MEMORY_MIB, DEFAULT_TIMEOUT_MS};
use artifact_export::config::{OnError, PluginSource, PluginSpec};
use artifact_export::plan::Decision;
use artifact_export::plan::cases::{
    Case, CaseOnError, CaseTarget, CasesReport, Expect, case_object, describe, describe_decision,
    describe_usage, parse_cases, run_case_report,
};
use artifact_export::plan::cases::{case_given, given_facts};
use artifact_export::policy::engine::new_engine;
use artifact_export::policy::loader::precompile;
use artifact_export::policy::{ObjectFacts, Plugin, Runtime, Usage, WitVersion};
use artifact_export::route::Target;
use artifact_export::suffix::SuffixSet;
use clap::Subcommand;

use crate::plugin_diff;
use crate::scaffold::{self, Lang};

/// Commands for plugin authors.
// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Print the plugin contract (WIT package `artifact-export:policy`) this binary was built
    /// with: what a plugin must implement to run on this host. The host runs 0.1 and 0.2.
    Wit {
        /// The contract's version: 0.1 or 0.2.
        #[arg(long = "version", value_parser = parse_wit_version, default_value = "0.2")]
        wit: WitVersion,
    },
    /// Write a new plugin project: the WIT, a `decide` that copies `proposed` unchanged, a
    /// `cases.json` with two cases and a README (build, test, compile, attach).
    New {
        /// The plugin's name: lowercase letters, digits and hyphens (also the package name).
        name: String,
        /// The project's language.
        #[arg(long, value_enum, default_value_t = Lang::Rust)]
        lang: Lang,
        /// Where to write it (default: ./NAME); must not exist or be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The contract's version the project implements: 0.2 (HEAD facts, tags, per-target
        /// class and tags) or 0.1.
        #[arg(long, value_parser = parse_wit_version, default_value = "0.2")]
        wit: WitVersion,
    },
    /// Precompile a component for this host's engine (loads without compiling at cold start).
    Compile {
        /// The `.wasm` component.
        input: PathBuf,
        /// Where to write the `.cwasm`.
        #[arg(short = 'o', long)]
        output: PathBuf,
    },
    /// Ask a plugin for one decision, or run a table of cases.
    Test {
        /// The plugin: a `.wasm` component (or a `.cwasm` with --precompiled).
        plugin: PathBuf,
        /// The plugin is a `.cwasm` from `plugin compile` (trusted native code).
        #[arg(long)]
        precompiled: bool,
        /// Instruction budget per decision (the config's maxInstructions).
        #[arg(long, default_value_t = DEFAULT_MAX_INSTRUCTIONS)]
        max_instructions: u64,
        /// Memory cap per decision in MiB (the config's maxMemoryMiB).
        #[arg(long, default_value_t = DEFAULT_MAX_MEMORY_MIB)]
        max_memory_mib: u64,
        /// Wall-clock deadline per decision in ms (the config's timeoutMs).
        #[arg(long, default_value_t = DEFAULT_TIMEOUT_MS)]
        timeout_ms: u64,
        /// Org name passed to the plugin.
        #[arg(long, required_unless_present = "cases")]
        org: Option<String>,
        /// Object key (decoded).
        #[arg(long, required_unless_present = "cases")]
        key: Option<String>,
        /// Object size in bytes.
        #[arg(long)]
        size: Option<u64>,
        /// Event time (RFC 3339).
        #[arg(long)]
        event_time: Option<String>,
        /// 0.2: the source's Content-Type given to the plugin.
        #[arg(long)]
        content_type: Option<String>,
        /// 0.2: the source's storage class given to the plugin (default STANDARD).
        #[arg(long)]
        storage_class: Option<String>,
        /// 0.2: one entry of the source's user metadata, NAME=VALUE (repeatable).
        #[arg(long = "metadata", value_parser = parse_pair)]
        metadata: Vec<(String, String)>,
        /// 0.2: one of the object's tags, KEY=VALUE (repeatable), which the host function
        /// `tags` answers; without any, `tags` answers an error.
        #[arg(long = "tag", value_parser = parse_pair)]
        tags: Vec<(String, String)>,
        /// Settings JSON, or @FILE to read them from a file.
        #[arg(long)]
        settings: Option<String>,
        /// Destination bucket of the proposed target (default: ORG-export).
        #[arg(long)]
        destination: Option<String>,
        /// Only propose a target when the key has one of these suffixes (default: always).
        #[arg(long)]
        suffixes: Option<String>,
        /// A bucket of the org's allowedBuckets (repeatable): the answer is checked against
        /// them as the host checks it.
        #[arg(long = "allowed-bucket")]
        allowed_buckets: Vec<String>,
        /// Run every case of this file instead; exit 1 listing each mismatch.
        #[arg(long)]
        cases: Option<PathBuf>,
        /// With --cases: print one JSON document (every case's decision and use against the
        /// limits, and the totals) instead of text, for an author's CI.
        #[arg(long, requires = "cases")]
        json: bool,
    },
    /// Run two plugins on the same inputs and print the inputs whose decisions differ
    /// (compared as sets of targets; a skip equals a skip with any reason), then
    /// `N of M differ`. Exit 0 when none differ, 1 when some do, 2 on bad input.
    #[command(group(clap::ArgGroup::new("inputs").required(true)))]
    Diff {
        /// The plugin in force: a `.wasm` component or a `.cwasm` from `plugin compile`.
        old: PathBuf,
        /// The plugin to compare with it (`.wasm` or `.cwasm`).
        new: PathBuf,
        /// The inputs: a cases file as `plugin test --cases` reads it.
        #[arg(long, group = "inputs")]
        cases: Option<PathBuf>,
        /// The inputs: one object key per line.
        #[arg(long, group = "inputs")]
        keys: Option<PathBuf>,
        /// The inputs: the object records of an invocation event (S3, SQS, SNS, EventBridge).
        #[arg(long, group = "inputs")]
        events: Option<PathBuf>,
        /// The inputs: past invocations replayed, as the function reported them: `invoke`
        /// reports or Lambda responses (JSON documents with `records`), or the function's
        /// JSON log lines. Each record routed to an org is asked again with the object facts
        /// and proposed targets it recorded; records without a key or an org are left out.
        #[arg(long, group = "inputs")]
        reports: Option<PathBuf>,
        /// Org name passed to both plugins (default: a case's org, or the key's first
        /// segment); with --reports, only that org's records are compared.
        #[arg(long)]
        org: Option<String>,
        /// Settings JSON (or @FILE) for both plugins (default: a case's own, or `{}`).
        #[arg(long)]
        settings: Option<String>,
        /// Settings JSON (or @FILE) for NEW only (default: --settings).
        #[arg(long)]
        new_settings: Option<String>,
        /// Print one JSON document (inputs compared, how many differ, each difference with
        /// both decisions) instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Settings given as JSON or `@FILE`.
fn settings_arg(arg: Option<String>, flag: &str) -> Result<Option<String>> {
    let Some(arg) = arg else { return Ok(None) };
    let text = match arg.strip_prefix('@') {
        Some(file) => {
            std::fs::read_to_string(file).with_context(|| format!("{flag} {file}: could not be read"))?
        }
        None => arg,
    };
    serde_json::from_str::<serde_json::Value>(&text).map_err(|e| anyhow!("{flag}: not JSON: {e}"))?;
    Ok(Some(text))
}

pub async fn plugin(command: PluginCommand) -> Result<ExitCode> {
    match command {
        PluginCommand::Diff {
            old,
            new,
            cases,
            keys,
            events,
            reports,
            org,
            settings,
            new_settings,
            json,
        } => {
            let old_settings = settings_arg(settings, "--settings")?;
            let new_settings = settings_arg(new_settings, "--new-settings")?.or_else(|| old_settings.clone());
            let source = match (cases, keys, events, reports) {
                (Some(cases), _, _, _) => plugin_diff::Source::Cases(cases),
                (_, Some(keys), _, _) => plugin_diff::Source::Keys(keys),
                (_, _, Some(events), _) => plugin_diff::Source::Events(events),
                (_, _, _, Some(reports)) => plugin_diff::Source::Reports(reports),
                _ => {
                    return Err(anyhow!(
                        "one of --cases, --keys, --events or --reports is required"
                    ));
                }
            };
            let load = |path: &Path, settings: &Option<String>| {
                let limits = LocalLimits {
                    precompiled: path.extension().is_some_and(|e| e == "cwasm"),
                    max_instructions: DEFAULT_MAX_INSTRUCTIONS,
                    max_memory_mib: DEFAULT_MAX_MEMORY_MIB,
                    timeout_ms: DEFAULT_TIMEOUT_MS,
                };
                let settings = settings.clone().unwrap_or_else(|| "{}".to_string());
                let path = path.to_path_buf();
                async move { load_local(&path, &settings, &limits).await }
            };
            let old_plugin = load(&old, &old_settings).await?;
            let new_plugin = load(&new, &new_settings).await?;
            let settings = plugin_diff::DiffSettings {
                old: old_settings,
                new: new_settings,
            };
            tokio::task::spawn_blocking(move || {
                plugin_diff::diff(&old_plugin, &new_plugin, &source, org.as_deref(), &settings, json)
            })
            .await?
        }
        PluginCommand::Wit { wit } => {
            print!("{}", wit.wit());
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::New { name, lang, dir, wit } => {
            let dir = scaffold::create(&name, lang, dir, wit)?;
            println!(
                "created {} ({} plugin {name}, WIT {wit}); see {}",
                dir.display(),
                lang.label(),
                dir.join("README.md").display()
            );
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Compile { input, output } => {
            let wasm = std::fs::read(&input)
                .with_context(|| format!("plugin {}: could not be read", input.display()))?;
            let engine = new_engine().map_err(|e| anyhow!("{e:#}"))?;
            let cwasm = precompile(&engine, &wasm)
                .map_err(|e| anyhow!("plugin {}: could not be compiled: {e:#}", input.display()))?;
            std::fs::write(&output, &cwasm)
                .with_context(|| format!("{}: could not be written", output.display()))?;
            println!(
                "compiled {} ({} bytes) -> {} ({} bytes)",
                input.display(),
                wasm.len(),
                output.display(),
                cwasm.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Test {
            plugin,
            precompiled,
            max_instructions,
            max_memory_mib,
            timeout_ms,
            org,
            key,
            size,
            event_time,
            content_type,
            storage_class,
            metadata,
            tags,
            settings,
            destination,
            suffixes,
            allowed_buckets,
            cases,
            json,
        } => {
            let settings = match settings {
                Some(s) => match s.strip_prefix('@') {
                    Some(file) => std::fs::read_to_string(file)
                        .with_context(|| format!("settings {file}: could not be read"))?,
                    None => s,
                },
                None => "{}".to_string(),
            };
            let limits = LocalLimits {
                precompiled,
                max_instructions,
                max_memory_mib,
                timeout_ms,
            };
            let loaded = Arc::new(load_local(&plugin, &settings, &limits).await?);
            match cases {
                Some(cases) => {
                    let loaded = loaded.clone();
                    tokio::task::spawn_blocking(move || run_cases(&loaded, &cases, json)).await?
                }
                None => {
                    let org = org.context("--org is required")?;
                    let key = key.context("--key is required")?;
                    let selected = match suffixes {
                        Some(list) => SuffixSet::parse_list(&list)
                            .map_err(|e| anyhow!("--suffixes: {e}"))?
                            .matching(&key)
                            .is_some(),
                        None => true,
                    };
                    let destination = destination.unwrap_or_else(|| format!("{org}-export"));
                    let proposed: Vec<Target> = selected
                        .then(|| Target::new(destination.clone(), key.clone()))
                        .into_iter()
                        .collect();
                    // The command line's decision as a case: the host's answer check applies.
                    let case = Case {
                        name: "command line".into(),
                        org: org.clone(),
                        key: key.clone(),
                        size,
                        event_time: event_time.clone(),
                        settings: None,
                        proposed: proposed.iter().map(CaseTarget::of).collect(),
                        destination_bucket: Some(destination),
                        allowed_buckets,
                        on_error: CaseOnError::Fail,
                        object: Some(ObjectFacts {
                            content_type,
                            storage_class,
                            metadata: metadata.into_iter().collect(),
                            ..ObjectFacts::default()
                        }),
                        tags: (!tags.is_empty()).then(|| tags.into_iter().collect()),
                        expect: Expect::Skip(String::new()),
                    };
                    let object = case_object(&key, size, event_time.as_deref());
                    let plugin = loaded.clone();
                    let given = case_given(case.object.as_ref(), size, case.tags.as_ref());
                    if let Some(facts) = given_facts(&loaded, &case) {
                        // What a 0.2 plugin was given, beside its answer (on stderr).
                        eprintln!("given: {}", serde_json::to_string(&facts)?);
                    }
                    let (answer, usage) = tokio::task::spawn_blocking(move || {
                        plugin.decide_measured_given(&org, &object, &proposed, &settings, &given)
                    })
                    .await?;
                    let host = case.host_decision(loaded.name(), &answer);
                    println!("{}", describe(&answer));
                    // The host's decision and the budget go to stderr: stdout stays the
                    // one-line answer.
                    eprintln!("host: {}", describe_decision(&host));
                    eprintln!("used: {}", describe_usage(&usage, &loaded.limits()));
                    Ok(if answer.is_ok() && !matches!(host, Decision::Fail(_)) {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    })
                }
            }
        }
    }
}

/// The limits and kind of a plugin tested from the command line.
struct LocalLimits {
    precompiled: bool,
    max_instructions: u64,
    max_memory_mib: u64,
    timeout_ms: u64,
}

async fn load_local(path: &Path, settings: &str, limits: &LocalLimits) -> Result<Plugin> {
    serde_json::from_str::<serde_json::Value>(settings).map_err(|e| anyhow!("--settings: not JSON: {e}"))?;
    let runtime = Runtime::new().map_err(|e| anyhow!("plugin engine: {e:#}"))?;
    let spec = PluginSpec {
        source: PluginSource::File(path.to_path_buf()),
        sha256: None,
        settings: settings.to_string(),
        timeout: std::time::Duration::from_millis(limits.timeout_ms),
        max_memory_bytes: limits.max_memory_mib << 20,
        max_instructions: limits.max_instructions,
        precompiled: limits.precompiled,
        on_error: OnError::Fail,
        candidate: None,
    };
    Ok(runtime.load(None, &spec).await?)
}

fn run_cases(plugin: &Plugin, path: &Path, json: bool) -> Result<ExitCode> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cases {}: could not be read", path.display()))?;
    let cases = parse_cases(&text, &path.display().to_string()).map_err(|e| anyhow!(e))?;
    let reports = cases.iter().map(|case| run_case_report(plugin, case)).collect();
    let report = CasesReport::new(&plugin.limits(), reports);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let limits = plugin.limits();
        for case in &report.cases {
            match &case.mismatch {
                None => println!("ok    {}", case.name),
                Some(mismatch) => println!("FAIL  {}: {mismatch}", case.name),
            }
            if let Some(given) = &case.given {
                println!("      given: {}", serde_json::to_string(given)?);
            }
            println!("      decision: {}", case.decision);
            println!("      host: {}", case.host_decision);
            // What an author needs before deploying: the headroom under each limit.
            let usage = Usage {
                instructions: case.instructions,
                peak_memory_bytes: case.peak_memory_bytes,
                elapsed: std::time::Duration::from_secs_f64(case.time_ms / 1e3),
                tag_reads: 0,
            };
            println!("      used: {}", describe_usage(&usage, &limits));
        }
        println!("{} passed, {} failed", report.passed, report.failed);
    }
    Ok(if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `--version`/`--wit`: `0.1` or `0.2`.
fn parse_wit_version(text: &str) -> Result<WitVersion, String> {
    WitVersion::parse(text).ok_or_else(|| format!("{text:?} is not a contract version; expected 0.1 or 0.2"))
}

/// `NAME=VALUE`.
fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("{text:?}: expected NAME=VALUE")),
    }
}
