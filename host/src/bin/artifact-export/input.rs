//! Reading the text files a command is given, `-` meaning stdin, with errors that name them.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use artifact_export::bounded::{MAX_CONFIG_BYTES, ReadError, read_file_to_limit, read_to_limit};
use artifact_export::event::{EventError, MAX_EVENT_BYTES};

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

/// The event text of `path`, or of stdin for `-`, never more than [`MAX_EVENT_BYTES`] (plus
/// the one byte that shows it is too large): Lambda's own cap on a payload.
pub fn read_event_text(path: &Path) -> Result<String, EventError> {
    let (origin, bytes) = if path == Path::new("-") {
        (
            "stdin".to_string(),
            read_to_limit(std::io::stdin().lock(), MAX_EVENT_BYTES),
        )
    } else {
        let origin = path.display().to_string();
        let bytes = std::fs::File::open(path)
            .map_err(|e| ReadError::Failed(e.to_string()))
            .and_then(|file| read_to_limit(file, MAX_EVENT_BYTES));
        (origin, bytes)
    };
    match bytes {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| EventError::Unreadable {
            origin,
            reason: "not UTF-8 text".into(),
        }),
        Err(ReadError::TooLarge { limit }) => Err(EventError::TooLarge { origin, limit }),
        Err(ReadError::Failed(reason)) => Err(EventError::Unreadable { origin, reason }),
    }
}
