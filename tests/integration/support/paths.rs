//! The repository's files and the binary under test.

use std::path::PathBuf;
use std::process::Command;

/// A path inside the repository.
pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// The `artifact-export` binary with a clean environment: none of the machine's AWS or CA
/// variables, warnings-only logs.
pub fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_artifact-export"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn");
    cmd
}
