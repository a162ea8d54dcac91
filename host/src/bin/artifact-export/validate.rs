//! `artifact-export validate`: loads a configuration (a file, or the one in S3), prints
//! which org exports to which bucket, and loads and instantiates every org's plugin as the
//! Lambda loads it (through the library's `Exporter`: `EXPECTED_BUCKET_OWNER`, its retry).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::anyhow;
use artifact_export::config::Config;
use artifact_export::env::{self, ConfigLocation, Lookup, Settings};
use artifact_export::exporter::Exporter;
use artifact_export::suffix::SuffixSet;

use crate::exit::{BAD_INPUT, BadInput};
use crate::input::read_config_file;

/// Exit 0 when the configuration and its plugins work, 2 otherwise.
/// With `source_bucket`, a destination that is the shared source bucket is refused too.
pub async fn validate(
    config_file: Option<PathBuf>,
    source_bucket: Option<String>,
    get: Lookup<'_>,
) -> Result<ExitCode, BadInput> {
    let location = match &config_file {
        Some(path) => ConfigLocation::File(path.clone()),
        None => env::config_in_s3(get).map_err(|e| anyhow!("{e}, or pass --config FILE"))?,
    };
    // validate routes no key: the suffixes decide nothing (SUFFIX_TO_COPY need not be set).
    let suffixes = match env::default_suffixes(get) {
        Ok(suffixes) => suffixes,
        Err(_) => SuffixSet::parse_list("validate").map_err(|e| anyhow!("{e}"))?,
    };
    let mut settings = Settings::for_loading(get, location, suffixes).map_err(|e| anyhow!("{e}"))?;
    settings.source_bucket = source_bucket.clone();
    let exporter = Exporter::from_env(settings).await;
    let config = match config_file {
        Some(path) => {
            let text = read_config_file(&path).await?;
            Arc::new(Config::parse_for_source(
                &text,
                &path.display().to_string(),
                source_bucket.as_deref(),
            )?)
        }
        // The exporter's own read: its owner, its source bucket, its client.
        None => exporter.config().await?,
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
    let plugins = exporter.plugins_for(&config).await;
    let mut broken = 0;
    for c in config.customers.iter().filter(|c| c.plugin.is_some()) {
        let status = match plugins.get(&c.org) {
            Some(Ok(plugin)) => match (plugin.check_instantiates(), plugin.check_candidate()) {
                (Err(e), _) => format!("BROKEN: plugin {} {e}", plugin.name()),
                (Ok(()), Err(e)) => format!("BROKEN: {e}"),
                (Ok(()), Ok(())) => match plugin.candidate() {
                    Some(Ok(candidate)) => format!("ok ({}; candidate {})", plugin.name(), candidate.name()),
                    _ => format!("ok ({})", plugin.name()),
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
    Ok(ExitCode::SUCCESS)
}
