//! `artifact-export check`: for each org, whether the function can assume its role, reach
//! its destination bucket, load its plugin and (with `--write-probe`) write there. One line
//! per org; the checks themselves are the library's (`artifact_export::check`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;
use artifact_export::check::{CheckOptions, check_orgs};
use artifact_export::env::{Lookup, Settings};
use artifact_export::exporter::Exporter;

use crate::exit::{self, BadInput};

/// Exit 0 when every org passed, 1 when any failed, 2 on bad input (environment, config,
/// an unknown `--org`).
pub async fn check(
    config_file: Option<PathBuf>,
    org: Option<String>,
    write_probe: bool,
    get: Lookup<'_>,
) -> Result<ExitCode, BadInput> {
    // The suffixes decide nothing here; a deployment's environment has them, a laptop may not.
    let lookup = |name: &str| match name {
        "SUFFIX_TO_COPY" => get(name).or_else(|| Some("check".into())),
        _ => get(name),
    };
    let from_s3 = config_file.is_none();
    let settings = Settings::from_lookup_with_config(&lookup, config_file).map_err(|e| {
        if from_s3 {
            anyhow!("{e}, or pass --config FILE")
        } else {
            anyhow!("{e}")
        }
    })?;
    if settings.local.is_some() {
        return Err(anyhow!("check needs destination buckets; unset ENV=local").into());
    }
    let exporter = Exporter::from_env(settings).await;
    let config = exporter.config().await?;
    let results = check_orgs(&exporter, &config, org.as_deref(), CheckOptions { write_probe }).await?;
    for result in &results {
        println!("{}", result.line());
    }
    let failed = results.iter().filter(|r| r.result.is_err()).count();
    if failed > 0 {
        eprintln!("error: {failed} of {} org(s) failed the check", results.len());
    }
    Ok(exit::failed_if(failed > 0))
}
