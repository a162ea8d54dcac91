//! `validate --config FILE --split DIR/`: turns a valid single document into the org
//! documents form, one `<org>.json` per `customers[]` entry (as written) and
//! `_defaults.json` with the global fields, refusing what the org documents form would
//! refuse (overlapping prefixes, which one document may nest).

use std::path::Path;

use anyhow::{Context, anyhow};
use artifact_export::config::{Config, ConfigDir, DEFAULTS_DOCUMENT, DocumentEntries, admit};
use serde_json::{Map, Value};

use crate::exit::BadInput;

/// Writes the org documents of `text` (a configuration `config` parsed from it) into `dir`.
pub fn split(text: &str, config: &Config, dir: &Path) -> Result<usize, BadInput> {
    let entries: Vec<DocumentEntries> = config
        .customers
        .iter()
        .map(|org| DocumentEntries {
            document: dir.join(format!("{}.json", org.org)).display().to_string(),
            in_force: None,
            wanted: Some(org.clone()),
        })
        .collect();
    let (_, refused) = admit(&entries, &ConfigDir::Local(dir.to_path_buf()), None);
    if let Some(first) = refused.first() {
        let all: Vec<String> = refused
            .iter()
            .map(|r| format!("org {}: {}", r.org, r.reason))
            .collect();
        return Err(anyhow!(
            "--split: {} org(s) would be refused as org documents ({}); {}",
            refused.len(),
            first.document,
            all.join("; ")
        )
        .into());
    }
    let Ok(Value::Object(mut top)) = serde_json::from_str::<Value>(text) else {
        return Err(anyhow!("--split: the configuration is not a JSON object").into());
    };
    let Some(Value::Array(customers)) = top.remove("customers") else {
        return Err(anyhow!("--split: the configuration has no customers list").into());
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--split {}: could not create it", dir.display()))?;
    let write = |name: String, value: &Value| -> Result<(), BadInput> {
        let path = dir.join(name);
        let text = serde_json::to_string_pretty(value).map_err(|e| anyhow!("{e}"))?;
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("--split: could not write {}", path.display()))?;
        Ok(())
    };
    for (entry, org) in customers.iter().zip(&config.customers) {
        write(format!("{}.json", org.org), entry)?;
    }
    if !top.is_empty() {
        write(DEFAULTS_DOCUMENT.to_string(), &Value::Object(Map::from_iter(top)))?;
    }
    Ok(customers.len())
}
