//! glob-filter in the other languages, built with the pinned tools from `target/` (the
//! integration tests and the plugin bench share these builds): JavaScript
//! (`plugins/glob-filter-js`, ComponentizeJS from `make tools`) and Python
//! (`tests/fixtures/plugins/glob-filter-py`, componentize-py from `make tools`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::paths::repo;

/// The `componentize-js` that `make tools` installs, if it is there.
pub fn componentize_js() -> Option<PathBuf> {
    Some(repo("target/node-tools/node_modules/.bin/componentize-js")).filter(|p| p.exists())
}

/// The `componentize-py` that `make tools` installs into the tools venv, if it is there.
pub fn componentize_py() -> Option<PathBuf> {
    Some(repo("target/tools-venv/bin/componentize-py")).filter(|p| p.exists())
}

/// How a missing componentize-py is reported: `make tools` (which `make test` runs) installs
/// it, so a test that needs it fails without it, never skips.
pub const PY_INSTALL_HINT: &str = "componentize-py is installed (pinned, from PyPI, into target/tools-venv) by \
                                   `make tools`, which `make test` and .ci/run run";

/// [`componentize_py`], or a panic with [`PY_INSTALL_HINT`].
pub fn require_componentize_py() -> PathBuf {
    componentize_py().unwrap_or_else(|| {
        panic!(
            "{} not found: {PY_INSTALL_HINT}",
            repo("target/tools-venv/bin/componentize-py").display()
        )
    })
}

/// The Python glob-filter built once per test process (a build takes seconds), into a
/// folder that lives as long as the process.
pub fn glob_filter_py() -> &'static Path {
    static BUILT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, wasm) = BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("glob_filter_py.wasm");
        build_glob_filter_py(&require_componentize_py(), &wasm);
        (dir, wasm)
    });
    wasm
}

/// Builds `plugins/glob-filter-js` into `out` as its `npm run build` does; panics with the
/// tool's output if the build fails.
pub fn build_glob_filter_js(tool: &Path, out: &Path) {
    run(Command::new(tool)
        .current_dir(repo("plugins/glob-filter-js"))
        .args(["--wit", "../../wit", "--world-name", "copy-policy"])
        .args([
            "--disable",
            "stdio",
            "random",
            "clocks",
            "http",
            "fetch-event",
            "-o",
        ])
        .arg(out)
        .arg("glob-filter.js"));
}

/// Builds `tests/fixtures/plugins/glob-filter-py` into `out` with `--stub-wasi` (CPython
/// imports `wasi:sockets`, which the host never links). Built from a copy next to `out`, so
/// CPython's `__pycache__` is not written into the repository.
pub fn build_glob_filter_py(tool: &Path, out: &Path) {
    let app = out.with_extension("py.d");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::copy(
        repo("tests/fixtures/plugins/glob-filter-py/app.py"),
        app.join("app.py"),
    )
    .unwrap();
    run(Command::new(tool)
        .arg("--quiet")
        .arg("--wit-path")
        .arg(repo("wit"))
        .args(["--world", "copy-policy", "componentize", "--stub-wasi"])
        .arg("--python-path")
        .arg(&app)
        .arg("app")
        .arg("--output")
        .arg(out));
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
