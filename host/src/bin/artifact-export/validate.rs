//! `artifact-export validate`: loads a configuration (a file, or the one in S3), prints
//! which org exports to which bucket, and loads and instantiates every org's plugin as the
//! Lambda loads it (through the library's `Exporter`: `EXPECTED_BUCKET_OWNER`, its retry).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::anyhow;
use artifact_export::config::Config;
use artifact_export::config_store;
use artifact_export::env::{self, ConfigLocation, Lookup, Settings};
use artifact_export::exporter::Exporter;
use artifact_export::suffix::SuffixSet;

use crate::exit::{BAD_INPUT, BadInput};
use crate::input::read_config_file;

/// Exit 0 when the configuration and its plugins work, 2 otherwise.
/// With `source_bucket`, a destination that is the shared source bucket is refused too.
/// With `split`, a valid single document is then written as org documents into that folder;
/// with `write_snapshot`, valid org documents in S3 get their snapshot written beside them.
pub async fn validate(
    config_file: Option<PathBuf>,
    source_bucket: Option<String>,
    split: Option<PathBuf>,
    write_snapshot: bool,
    get: Lookup<'_>,
) -> Result<ExitCode, BadInput> {
    let location = match &config_file {
        Some(path) => ConfigLocation::local(path.clone()),
        None => env::config_in_s3(get).map_err(|e| anyhow!("{e}, or pass --config FILE"))?,
    };
    // validate routes no key: the suffixes decide nothing (SUFFIX_TO_COPY need not be set).
    let suffixes = match env::default_suffixes(get) {
        Ok(suffixes) => suffixes,
        Err(_) => SuffixSet::parse_list("validate").map_err(|e| anyhow!("{e}"))?,
    };
    let mut settings = Settings::for_loading(get, location.clone(), suffixes).map_err(|e| anyhow!("{e}"))?;
    settings.source_bucket = source_bucket.clone();
    let exporter = Exporter::from_env(settings).await;
    let mut text = None;
    let config = match config_file.filter(|_| !location.is_documents()) {
        Some(path) => {
            let read = read_config_file(&path).await?;
            let config =
                Config::parse_for_source(&read, &path.display().to_string(), source_bucket.as_deref())?;
            text = Some(read);
            Arc::new(config)
        }
        // The exporter's own read: its owner, its source bucket, its client.
        None => exporter.config().await?,
    };
    if split.is_some() && text.is_none() {
        return Err(anyhow!("--split takes a single document: pass --config FILE").into());
    }
    // Org documents the function would refuse (each org's alone) fail validation.
    let refused = exporter.take_config_refusals();
    for refusal in &refused {
        eprintln!("error: {}: refused: {}", refusal.document, refusal.reason);
    }
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
    let plugins = exporter.plugins_for(&config).await;
    let mut broken = 0;
    for c in config.customers.iter().filter(|c| c.plugin.is_some()) {
        let status = match plugins.get(&c.org) {
            Some(Ok(plugin)) => match (plugin.check_instantiates(), plugin.check_candidate()) {
                (Err(e), _) => format!("BROKEN: plugin {} {e}", plugin.name()),
                (Ok(()), Err(e)) => format!("BROKEN: {e}"),
                (Ok(()), Ok(())) => match plugin.candidate() {
                    Some(Ok(candidate)) => format!(
                        "ok ({}, WIT {}; candidate {}, WIT {})",
                        plugin.name(),
                        plugin.wit_version(),
                        candidate.name(),
                        candidate.wit_version()
                    ),
                    _ => format!("ok ({}, WIT {})", plugin.name(), plugin.wit_version()),
                },
            },
            Some(Err(e)) => format!("BROKEN: {e}"),
            None => "BROKEN: not loaded".to_string(),
        };
        broken += usize::from(status.starts_with("BROKEN"));
        println!("  plugin of {}: {status}", c.org);
    }
    if broken > 0 {
        eprintln!("error: {broken} plugin(s) do not work; see above");
        return Ok(ExitCode::from(BAD_INPUT));
    }
    if !refused.is_empty() {
        eprintln!(
            "error: {} org document(s) refused; see above (the function keeps those orgs' last good entries)",
            refused.len()
        );
        return Ok(ExitCode::from(BAD_INPUT));
    }
    if write_snapshot {
        if !matches!(location, ConfigLocation::S3Documents { .. }) {
            return Err(anyhow!(
                "--write-snapshot writes beside org documents in S3: set CONFIGURATION_KEY to their prefix (ending in /)"
            )
            .into());
        }
        let owner = exporter.settings().expected_bucket_owner.clone();
        let written = config_store::write_snapshot(exporter.client(), &location, owner.as_deref())
            .await
            .map_err(|e| anyhow!("{e}"))?;
        println!(
            "wrote a snapshot of {written} documents to {location}{}",
            config_store::SNAPSHOT_NAME
        );
    }
    if let (Some(dir), Some(text)) = (split, text) {
        let written = crate::split::split(&text, &config, &dir)?;
        println!("wrote {written} org documents to {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}
