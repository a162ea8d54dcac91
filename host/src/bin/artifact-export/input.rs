//! Reading the text files a command is given, `-` meaning stdin, with errors that name them.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};

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
