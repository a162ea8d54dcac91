//! Builds the guest plugins for wasm32-wasip2 and exposes their paths as constants, so
//! `cargo test` alone builds what the tests load: always the examples of `plugins/`, and the
//! hostile fixtures of `tests/fixtures/plugins/` with the `hostile-fixtures` feature (tests
//! and benches), which the demo leaves off.
//!
//! The guests are built with their own `CARGO_TARGET_DIR` under `OUT_DIR`: the outer build
//! holds the lock on the workspace's target directory, and sharing it would deadlock.

use std::path::{Path, PathBuf};
use std::process::Command;

/// (workspace, crates, needs the `hostile-fixtures` feature)
const WORKSPACES: &[(&str, &[&str], bool)] = &[
    ("plugins", &["key_rewriter", "glob_filter", "tiering"], false),
    (
        "tests/fixtures/plugins",
        &[
            "passthrough",
            "loop_forever",
            "grow_memory",
            "panic",
            "err_answer",
            "other_bucket",
            "many_targets",
            "empty_key",
            "snoop",
            "noisy",
            "sleep",
            "poll_forever",
            "read_stdin",
            "huge_answer",
            "spin",
            "echo_facts",
            "passthrough_0_2",
        ],
        true,
    ),
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.join("../..");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let target_dir = out_dir.join("guests");
    let hostile = std::env::var_os("CARGO_FEATURE_HOSTILE_FIXTURES").is_some();
    let mut constants = String::new();
    for (workspace, crates, needs_hostile) in WORKSPACES {
        if *needs_hostile && !hostile {
            continue;
        }
        let dir = root.join(workspace);
        for entry in ["Cargo.toml", "Cargo.lock"] {
            println!("cargo:rerun-if-changed={}", dir.join(entry).display());
        }
        for krate in std::fs::read_dir(&dir).unwrap().flatten() {
            if krate.path().join("Cargo.toml").exists() {
                println!("cargo:rerun-if-changed={}", krate.path().display());
            }
        }
        build(&dir, &target_dir);
        for name in *crates {
            let wasm = target_dir
                .join("wasm32-wasip2/release")
                .join(format!("{name}.wasm"));
            assert!(wasm.exists(), "guest build did not produce {}", wasm.display());
            constants.push_str(&format!(
                "/// `{name}.wasm`, built from `{workspace}/`.\npub const {}: &str = {:?};\n",
                name.to_uppercase(),
                wasm.display().to_string()
            ));
        }
    }
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    std::fs::write(out_dir.join("artifacts.rs"), constants).unwrap();
}

fn build(workspace: &Path, target_dir: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--release", "--locked", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", target_dir)
        // Flags meant for the host build (coverage, sanitizers) must not reach the guests.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_MAKEFLAGS");
    let status = cmd.status().expect("run cargo for the guest plugins");
    assert!(
        status.success(),
        "building the guest plugins in {} failed; is the wasm32-wasip2 target installed? (`make setup` adds it: rustup target add wasm32-wasip2)",
        workspace.display()
    );
}
