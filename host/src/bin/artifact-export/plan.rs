//! `artifact-export plan`: for each key, the owning org and the decision (plugins
//! included, loaded as the Lambda loads them: through the library's `Exporter`). Touches no
//! S3 object.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use artifact_export::config::Config;
use artifact_export::env::{self, ConfigLocation, Lookup, Settings};
use artifact_export::exporter::Exporter;
use artifact_export::plan::cases::case_object;
use artifact_export::plan::{self as planning, Ask, Decision, Planned};
use artifact_export::route::propose;
use artifact_export::suffix::SuffixSet;

use crate::input::{read_config_file, read_text};

/// `plan --config FILE --keys FILE|-`: the decision for each key, plugins included.
pub async fn plan(
    config_path: &Path,
    keys: &Path,
    suffixes: Option<String>,
    get: Lookup<'_>,
) -> Result<ExitCode> {
    let suffixes = match suffixes {
        Some(list) => SuffixSet::parse_list(&list).with_context(|| format!("--suffixes {list:?}"))?,
        None => env::default_suffixes(get).map_err(|e| anyhow!("{e}, or pass --suffixes LIST"))?,
    };
    let location = ConfigLocation::local(config_path.to_path_buf());
    let settings = Settings::for_loading(get, location.clone(), suffixes.clone())?;
    let exporter = Exporter::from_env(settings).await;
    let config = match location {
        ConfigLocation::File(_) => {
            let text = read_config_file(config_path).await?;
            Arc::new(Config::parse(&text, &config_path.display().to_string())?)
        }
        // A folder of org documents, read as the function reads it.
        _ => exporter.config().await?,
    };
    let keys_text = read_text(keys, "keys")?;
    let mut failed = false;
    for key in keys_text.lines().map(str::trim).filter(|k| !k.is_empty()) {
        let object = case_object(key, None, None);
        let proposal = propose(&config, &suffixes, &object);
        let owner = proposal.org;
        let plugin = match owner {
            Some(owner) => exporter.plugin_of(&config, owner).await,
            None => None,
        };
        let Planned { decision, .. } = planning::plan(proposal, plugin.as_ref(), Ask::Now(&object)).await;
        let org = owner.map(|c| c.org.as_str()).unwrap_or("-");
        let decision = match decision {
            Decision::Copy(targets) => {
                let to: Vec<String> = targets
                    .iter()
                    .map(|t| format!("s3://{}/{}", t.bucket, t.key))
                    .collect();
                format!("copy -> {}", to.join(", "))
            }
            Decision::Skip(reason) => format!("skip: {reason}"),
            Decision::Fail(reason) => {
                failed = true;
                format!("FAIL: {reason}")
            }
        };
        println!("{key}\t{org}\t{decision}");
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
