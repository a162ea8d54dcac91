//! Reading the text files a command is given, `-` meaning stdin, with errors that name them.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use artifact_export::bounded::{MAX_CONFIG_BYTES, read_file_to_limit};

/// The text of `path` (or stdin for `-`); `what` names it in errors ("event", "keys").
pub fn read_text(path: &Path, what: &str) -> Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .with_context(|| format!("{what} from stdin: could not be read"))?;
        Ok(text)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("{what} {}: could not be read", path.display()))
    }
}

/// The text of the config file at `path`, refused past the config size limit (1 MiB) like
/// a config read from S3.
pub async fn read_config_file(path: &Path) -> Result<String> {
    let bytes = read_file_to_limit(path, MAX_CONFIG_BYTES)
        .await
        .map_err(|e| anyhow!("config {}: could not be read: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| anyhow!("config {}: not UTF-8 text", path.display()))
}
