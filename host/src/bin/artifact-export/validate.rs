//! `artifact-export validate`: loads a configuration (a file, or the one in S3), prints
//! which org exports to which bucket, and loads and instantiates every org's plugin.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;
use artifact_export::config::Config;
use artifact_export::config_store::ConfigStore;
use artifact_export::env::{self, Lookup};
use artifact_export::s3;

use crate::exit::{BAD_INPUT, BadInput};
use crate::input::read_config_file;
use crate::plugin::load_plugins;

/// Exit 0 when the configuration and its plugins work, 2 otherwise.
/// With `source_bucket`, a destination that is the shared source bucket is refused too.
pub async fn validate(
    config_file: Option<PathBuf>,
    source_bucket: Option<String>,
    get: Lookup<'_>,
) -> Result<ExitCode, BadInput> {
    let config = match config_file {
        Some(path) => {
            let text = read_config_file(&path).await?;
            Config::parse_for_source(&text, &path.display().to_string(), source_bucket.as_deref())?
        }
        None => {
            let location = env::config_in_s3(get).map_err(|e| anyhow!("{e}, or pass --config FILE"))?;
            let owner = env::expected_bucket_owner(get).map_err(|e| anyhow!("{e}"))?;
            let store = ConfigStore::new(location, std::time::Duration::ZERO)
                .with_source_bucket(source_bucket)
                .with_bucket_owner(owner);
            let client = s3::client::from_env(&env::process_env).await;
            (*store.current(&client).await?).clone()
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
    let plugins = load_plugins(&config).await?;
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
        return Ok(ExitCode::from(BAD_INPUT));
    }
    Ok(ExitCode::SUCCESS)
}
