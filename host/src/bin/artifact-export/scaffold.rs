//! `artifact-export plugin new NAME`: writes a plugin project that builds on its own, outside
//! this repository: the contract (`wit/policy.wit`, the text this binary was built with), a
//! `decide` that copies `proposed` unchanged, a `cases.json` with two cases, and a README
//! (build, `plugin test --cases`, `plugin compile`, attach to the config).
//!
//! The templates are files under `templates/`, embedded at build time; `{{name}}` and
//! `{{file}}` (the built component's file stem) are filled in.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use artifact_export::policy::{WIT_FILE, WitVersion};
use clap::ValueEnum;

/// The languages `plugin new` writes a project for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// Rust (cargo, target wasm32-wasip2): the smallest and fastest plugins.
    Rust,
    /// JavaScript (ComponentizeJS, npm): a ~12 MB component that needs more memory and
    /// instructions per decision (see plugins/README.md).
    Js,
    /// Python (componentize-py): an ~18 MB component, slower still per decision, but within
    /// the default limits (see plugins/README.md).
    Python,
}

impl Lang {
    /// The language's name in messages.
    pub fn label(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Js => "JavaScript",
            Lang::Python => "Python",
        }
    }
}

/// One file of a template: its path in the project and its text.
type Template = (&'static str, &'static str);

const RUST: &[Template] = &[
    ("Cargo.toml", include_str!("templates/rust/Cargo.toml")),
    ("src/lib.rs", include_str!("templates/rust/src/lib.rs")),
    ("cases.json", include_str!("templates/cases.json")),
    ("README.md", include_str!("templates/rust/README.md")),
    (".gitignore", include_str!("templates/rust/gitignore")),
];

const JS: &[Template] = &[
    ("package.json", include_str!("templates/js/package.json")),
    ("plugin.js", include_str!("templates/js/plugin.js")),
    ("cases.json", include_str!("templates/cases.json")),
    ("README.md", include_str!("templates/js/README.md")),
    (".gitignore", include_str!("templates/js/gitignore")),
];

const PYTHON: &[Template] = &[
    ("app.py", include_str!("templates/python/app.py")),
    ("build.sh", include_str!("templates/python/build.sh")),
    (
        "requirements.txt",
        include_str!("templates/python/requirements.txt"),
    ),
    ("cases.json", include_str!("templates/cases.json")),
    ("README.md", include_str!("templates/python/README.md")),
    (".gitignore", include_str!("templates/python/gitignore")),
];

/// The lock file of the Rust template without its root package, which is added under the
/// project's name: exactly the crate versions of the example plugins, so the project builds
/// `--offline --locked` wherever those are in cargo's cache.
const RUST_LOCK: &str = include_str!("templates/rust/Cargo.lock");

/// The longest accepted project name.
const MAX_NAME: usize = 64;

/// Creates the project against the contract version `wit` and returns its directory.
pub fn create(name: &str, lang: Lang, dir: Option<PathBuf>, wit: WitVersion) -> Result<PathBuf> {
    check_name(name)?;
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    check_dir(&dir)?;
    let mut files: Vec<(String, String)> = Vec::new();
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{file}}", &name.replace('-', "_"))
            .replace("{{wit_version}}", &format!("{wit}.0"))
    };
    match lang {
        Lang::Rust => {
            if lock_packages(RUST_LOCK).iter().any(|p| p.0 == name) {
                bail!(
                    "plugin name {name:?}: is the name of one of the project's dependencies; choose another"
                );
            }
            for (path, text) in RUST {
                files.push((path.to_string(), fill(text)));
            }
            files.push(("Cargo.lock".into(), rust_lock(name)));
        }
        Lang::Js => {
            for (path, text) in JS {
                files.push((path.to_string(), fill(text)));
            }
        }
        Lang::Python => {
            for (path, text) in PYTHON {
                files.push((path.to_string(), fill(text)));
            }
        }
    }
    files.push((format!("wit/{WIT_FILE}"), wit.wit().to_string()));
    for (path, text) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("{}: could not be created", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("{}: could not be written", path.display()))?;
    }
    Ok(dir)
}

/// A name that is a valid crate, package and file name everywhere: lowercase letters,
/// digits and single hyphens, starting with a letter.
fn check_name(name: &str) -> Result<()> {
    let ok = name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        bail!(
            "plugin name {name:?}: expected lowercase letters, digits and single hyphens, starting with a letter, at most {MAX_NAME} characters (e.g. my-filter)"
        );
    }
    Ok(())
}

/// Refuses a directory that exists and is not empty (or is not a directory).
fn check_dir(dir: &Path) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{}: already exists and is not empty; choose another --dir",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if dir.exists() && !dir.is_dir() => {
            bail!("{}: exists and is not a directory ({e})", dir.display())
        }
        Err(e) => bail!("{}: could not be read: {e}", dir.display()),
    }
}

/// The `[[package]]` blocks of a lock file as (name, block), and its header.
fn lock_packages(lock: &str) -> Vec<(String, String)> {
    lock.split("\n[[package]]\n")
        .skip(1)
        .map(|block| {
            let name = block
                .lines()
                .find_map(|l| l.strip_prefix("name = \""))
                .and_then(|rest| rest.strip_suffix('"'))
                .unwrap_or_default()
                .to_string();
            (name, format!("[[package]]\n{}", block.trim_end()))
        })
        .collect()
}

/// [`RUST_LOCK`] with the project's own package in its place (cargo sorts packages by name).
fn rust_lock(name: &str) -> String {
    let header = RUST_LOCK.split("\n[[package]]\n").next().unwrap_or_default();
    let mut packages = lock_packages(RUST_LOCK);
    packages.push((
        name.to_string(),
        format!(
            "[[package]]\nname = \"{name}\"\nversion = \"0.1.0\"\ndependencies = [\n \"wit-bindgen\",\n]"
        ),
    ));
    packages.sort_by(|a, b| a.0.cmp(&b.0));
    let blocks: Vec<String> = packages.into_iter().map(|(_, block)| block).collect();
    format!("{}\n{}\n", header.trim_end(), blocks.join("\n\n")).replacen(
        "\n[[package]]",
        "\n\n[[package]]",
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_crate_and_file_names() {
        for good in ["my-filter", "a", "filter2", "a-b-c"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "My-filter",
            "2filter",
            "my_filter",
            "my--filter",
            "filter-",
            "a b",
            "../x",
            "é",
        ] {
            let err = check_name(bad).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("plugin name {bad:?}: expected")),
                "{err}"
            );
        }
        assert!(check_name(&"a".repeat(MAX_NAME + 1)).is_err());
    }

    #[test]
    fn the_lock_holds_the_project_in_sorted_place() {
        let lock = rust_lock("my-filter");
        let names: Vec<String> = lock_packages(&lock).into_iter().map(|p| p.0).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(names.contains(&"my-filter".to_string()));
        assert!(names.contains(&"wit-bindgen".to_string()));
        assert!(!names.contains(&"{{name}}".to_string()));
        assert!(
            lock.starts_with("# This file is automatically @generated by Cargo."),
            "{lock}"
        );
        assert!(lock.contains("version = 4\n\n[[package]]\n"), "{lock}");
        // One newline at the end, as cargo writes it (the last package ends with its
        // checksum or its dependency list).
        assert!(lock.ends_with('\n') && !lock.ends_with("\n\n"), "{lock}");
    }
}
