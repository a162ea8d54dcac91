//! The import direction of host/src (`tests/layers.py`, run by `make lint`): every module
//! uses only modules of lower layers, and only `env` reads the process environment. Here
//! the check runs on the library (clean) and on a tree with every kind of problem
//! (tests/fixtures/layers/src), so a checker that stopped finding them would fail too.

use std::process::Command;

use crate::support::paths::repo;

/// `python3 tests/layers.py [src]` from the repository's root: (exit code, stdout).
fn layers(src: Option<&str>) -> (Option<i32>, String) {
    let mut cmd = Command::new("python3");
    cmd.current_dir(repo("")).arg("tests/layers.py");
    cmd.args(src);
    let out = cmd.output().expect("python3 runs tests/layers.py");
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn the_library_imports_only_downwards_and_reads_the_environment_only_in_env() {
    let (code, stdout) = layers(None);
    assert_eq!((code, stdout.as_str()), (Some(0), ""), "{stdout}");
}

#[test]
fn every_backwards_path_and_environment_read_is_named_with_its_line() {
    let (code, stdout) = layers(Some("tests/fixtures/layers/src"));
    assert_eq!(code, Some(1), "{stdout}");
    let lines: Vec<&str> = stdout
        .lines()
        .map(|line| line.split(" (layers: ").next().unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            // `use crate::a::X` and a grouped `use crate::{a::X, b}`; not a comment or a string.
            "tests/fixtures/layers/src/env.rs:2: module env imports module destination, which sits above it",
            "tests/fixtures/layers/src/env.rs:3: module env imports module plan, which sits above it",
            // Peers in one layer do not know each other.
            "tests/fixtures/layers/src/report.rs:1: module report imports module plan, which is its peer in the same layer",
            "tests/fixtures/layers/src/route.rs:1: module route imports module config_store, which is its peer in the same layer",
            "tests/fixtures/layers/src/route.rs:5: module route reads the process environment itself; only env does (pass the value in)",
            // `super::super::super::` out of a test module of config/role.rs is the crate root.
            "tests/fixtures/layers/src/config/role.rs:6: module config imports module exporter, which sits above it",
        ],
        "{stdout}"
    );
    // The binary (bin/) may use anything.
    assert!(!stdout.contains("bin/"), "{stdout}");
    assert!(
        stdout.contains("(layers: bounded, suffix, reason, logging < s3 < config < "),
        "{stdout}"
    );
}
