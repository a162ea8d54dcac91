use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::guests;
use crate::support::paths::{binary, repo};

fn run(cmd: &mut Command) -> (Option<i32>, String, String) {
    let out: Output = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Cargo for building a guest outside the host workspace: none of the outer build's flags,
/// and a target directory of its own that outlives the test (registry crates build once).
fn guest_cargo(project: &Path, target: &str) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(project)
        .env(
            "CARGO_TARGET_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(target),
        )
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_MAKEFLAGS");
    cmd
}

#[test]
fn plugin_wit_prints_the_contract_the_host_was_built_with() {
    // 0.2 by default; 0.1 on request: the host runs both.
    let (code, stdout, stderr) = run(binary().args(["plugin", "wit"]));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        std::fs::read_to_string(repo("wit/v0.2/policy.wit")).unwrap()
    );
    assert!(stdout.contains("package artifact-export:policy@0.2.0;"));
    let (code, stdout, stderr) = run(binary().args(["plugin", "wit", "--version", "0.1"]));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, std::fs::read_to_string(repo("wit/policy.wit")).unwrap());
    assert!(stdout.contains("package artifact-export:policy@0.1.0;"));
    let (code, _, stderr) = run(binary().args(["plugin", "wit", "--version", "0.3"]));
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("\"0.3\" is not a contract version; expected 0.1 or 0.2"),
        "{stderr}"
    );
}

/// `plugin new --wit 0.1` writes the 0.1 contract; the default is 0.2.
#[test]
fn plugin_new_writes_the_contract_version_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    for (args, wit) in [
        (vec!["old-one", "--wit", "0.1"], "wit/policy.wit"),
        (vec!["new-one"], "wit/v0.2/policy.wit"),
        (vec!["js-one", "--lang", "js", "--wit", "0.1"], "wit/policy.wit"),
    ] {
        let (code, stdout, stderr) = run(binary()
            .current_dir(dir.path())
            .args(["plugin", "new"])
            .args(&args));
        assert_eq!(code, Some(0), "{args:?}: {stdout}{stderr}");
        let project = dir.path().join(args[0]);
        assert_eq!(
            std::fs::read_to_string(project.join("wit/policy.wit")).unwrap(),
            std::fs::read_to_string(repo(wit)).unwrap(),
            "{args:?}"
        );
    }
    // The JavaScript template imports the host interface of its own version.
    let js = std::fs::read_to_string(dir.path().join("js-one/plugin.js")).unwrap();
    assert!(js.contains("\"artifact-export:policy/host@0.1.0\""), "{js}");
}

/// The 0.2 example's cases through `plugin test`: each passes, and each case shows the HEAD
/// facts it gave the plugin; the one-decision form prints them on stderr. A 0.1 plugin is
/// given none.
#[test]
fn plugin_test_shows_the_facts_a_0_2_plugin_was_given() {
    let cases_file = repo("plugins/tiering/cases.json");
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&cases_file).unwrap()).unwrap();
    let (code, stdout, stderr) = run(binary()
        .args(["plugin", "test", plugin_artifacts::TIERING, "--cases"])
        .arg(&cases_file)
        .arg("--json"));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["passed"].as_u64(), Some(cases.len() as u64), "{stdout}");
    assert_eq!(
        report["cases"][0]["given"],
        serde_json::json!({"contentType": "image/png", "contentLength": 2097152, "storageClass": "STANDARD"})
    );
    assert_eq!(
        report["cases"][0]["decision"],
        serde_json::json!({"copy": [{"bucket": "org2-export", "key": "org2/photos/a.png",
                                      "storageClass": "STANDARD_IA", "tags": {"tier": "warm"}}]})
    );
    let (code, stdout, stderr) = run(binary().args([
        "plugin",
        "test",
        plugin_artifacts::TIERING,
        "--org",
        "org2",
        "--key",
        "org2/a.pdf",
        "--content-type",
        "application/pdf",
        "--metadata",
        "team=a",
        "--settings",
        r#"{"rules": [{"contentType": "application/pdf", "storageClass": "GLACIER_IR"}]}"#,
    ]));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains(
            r#"given: {"contentType":"application/pdf","storageClass":"STANDARD","metadata":{"team":"a"}}"#
        ),
        "{stderr}"
    );
    assert!(stdout.contains(r#""storageClass":"GLACIER_IR""#), "{stdout}");
    // 0.1: nothing given.
    let (code, stdout, stderr) = run(binary()
        .args(["plugin", "test", plugin_artifacts::GLOB_FILTER, "--cases"])
        .arg(repo("plugins/glob-filter/cases.json"))
        .arg("--json"));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        report["cases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c.get("given").is_none())
    );
}

#[test]
fn plugin_new_refuses_bad_names_and_used_directories_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (
            vec!["My_Filter"],
            "plugin name \"My_Filter\": expected lowercase letters",
        ),
        (
            vec!["../escape"],
            "plugin name \"../escape\": expected lowercase letters",
        ),
        (
            vec!["serde"],
            "plugin name \"serde\": is the name of one of the project's dependencies",
        ),
        (
            vec!["ok", "--lang", "cobol"],
            "invalid value 'cobol' for '--lang <LANG>'",
        ),
    ] {
        let (code, stdout, stderr) = run(binary()
            .current_dir(dir.path())
            .args(["plugin", "new"])
            .args(&args));
        assert_eq!(code, Some(2), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );

    let used = dir.path().join("used");
    std::fs::create_dir(&used).unwrap();
    std::fs::write(used.join("keep.txt"), "mine").unwrap();
    let (code, _, stderr) = run(binary().args(["plugin", "new", "my-filter", "--dir"]).arg(&used));
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: {}: already exists and is not empty; choose another --dir",
            used.display()
        )
    );
    assert_eq!(std::fs::read_dir(&used).unwrap().count(), 1, "nothing added");

    // An existing empty directory is fine.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, stdout, stderr) = run(binary().args(["plugin", "new", "my-filter", "--dir"]).arg(&empty));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("created "), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(empty.join("wit/policy.wit")).unwrap(),
        std::fs::read_to_string(repo("wit/v0.2/policy.wit")).unwrap()
    );
}

/// The whole path of the README: `plugin new`, build offline, `plugin test --cases`, green;
/// then the same cases as JSON, and `plugin compile` of the result.
#[test]
fn a_new_rust_plugin_builds_offline_and_passes_its_cases() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) =
        run(binary()
            .current_dir(dir.path())
            .args(["plugin", "new", "first-plugin"]));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let project = dir.path().join("first-plugin");
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        "src/lib.rs",
        "cases.json",
        "README.md",
        "wit/policy.wit",
    ] {
        assert!(project.join(file).is_file(), "{file} written");
    }
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    for step in [
        "cargo build --release --target wasm32-wasip2",
        "plugin test target/wasm32-wasip2/release/first_plugin.wasm --cases cases.json",
        "plugin compile first_plugin.wasm",
        "\"plugin\": {\"source\"",
    ] {
        assert!(readme.contains(step), "README names {step:?}");
    }

    let out = guest_cargo(&project, "plugin-new-rust")
        .args([
            "build",
            "--offline",
            "--locked",
            "--release",
            "--target",
            "wasm32-wasip2",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the new project builds offline: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wasm = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("plugin-new-rust/wasm32-wasip2/release/first_plugin.wasm");

    let (code, stdout, stderr) = run(binary()
        .current_dir(&project)
        .args(["plugin", "test"])
        .arg(&wasm)
        .args(["--cases", "cases.json"]));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.trim_end().ends_with("2 passed, 0 failed"), "{stdout}");

    let (code, stdout, stderr) = run(binary()
        .current_dir(&project)
        .args(["plugin", "test"])
        .arg(&wasm)
        .args(["--cases", "cases.json", "--json"]));
    assert_eq!(code, Some(0), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(
        (report["passed"].as_u64(), report["failed"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(
        report["cases"][0]["decision"],
        serde_json::json!({"copy": [{"bucket": "org1-export", "key": "org1/photos/a.jpg"}]})
    );
    assert_eq!(report["cases"][1]["decision"], serde_json::json!({"copy": []}));

    let cwasm = dir.path().join("first_plugin.cwasm");
    let (code, _, stderr) = run(binary()
        .args(["plugin", "compile"])
        .arg(&wasm)
        .arg("-o")
        .arg(&cwasm));
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stdout, _) = run(binary()
        .current_dir(&project)
        .args(["plugin", "test", "--precompiled"])
        .arg(&cwasm)
        .args(["--cases", "cases.json"]));
    assert_eq!(code, Some(0), "{stdout}");
}

/// A case cannot pass on an answer the host would reject: `plugin test` puts each answer
/// through the host's own check (the case's org: the buckets of `proposed` and its
/// `allowedBuckets`), so a bucket outside the org's or an empty key fails the case, and the
/// one-decision form exits 1.
#[test]
fn plugin_test_fails_a_case_the_host_would_reject() {
    let (code, stdout, stderr) = run(binary()
        .args(["plugin", "test", plugin_artifacts::OTHER_BUCKET, "--cases"])
        .arg(repo("tests/fixtures/cases/other-bucket.json")));
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "FAIL  a bucket outside the org's buckets: the host rejects this answer (PluginInvalidAnswer)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("is not the org's destinationBucket or in its allowedBuckets"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok    the same bucket, listed in allowedBuckets"),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("1 passed, 1 failed"), "{stdout}");

    let (code, stdout, _) = run(binary()
        .args(["plugin", "test", plugin_artifacts::EMPTY_KEY, "--cases"])
        .arg(repo("tests/fixtures/cases/empty-key.json"))
        .arg("--json"));
    assert_eq!(code, Some(1), "{stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let case = &report["cases"][0];
    assert_eq!(case["passed"], false, "{case}");
    assert!(
        case["hostDecision"]
            .as_str()
            .unwrap()
            .starts_with("fail (PluginInvalidAnswer): "),
        "{case}"
    );

    let one = |extra: &[&str]| {
        run(binary()
            .args([
                "plugin",
                "test",
                plugin_artifacts::MANY_TARGETS,
                "--org",
                "org1",
                "--key",
                "org1/a.jpg",
            ])
            .args(extra))
    };
    let (code, stdout, stderr) = one(&[]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("host: fail (PluginInvalidAnswer)"), "{stderr}");
    let (code, _, stderr) = run(binary()
        .args([
            "plugin",
            "test",
            plugin_artifacts::OTHER_BUCKET,
            "--org",
            "org1",
            "--key",
            "org1/a.jpg",
        ])
        .args(["--allowed-bucket", "someone-elses-bucket"]));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("host: copy [{\"bucket\":\"someone-elses-bucket\""),
        "{stderr}"
    );
}

/// Every case: its decision, and instructions, peak memory and time against the limits in
/// force; the totals and the largest use of each limit for CI.
#[test]
fn plugin_test_json_reports_each_case_against_the_limits() {
    let cases_file = repo("plugins/glob-filter/cases.json");
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&cases_file).unwrap()).unwrap();
    let (code, stdout, stderr) = run(binary()
        .args(["plugin", "test", plugin_artifacts::GLOB_FILTER, "--cases"])
        .arg(&cases_file)
        .args([
            "--json",
            "--max-instructions",
            "5000000",
            "--max-memory-mib",
            "8",
            "--timeout-ms",
            "700",
        ]));
    assert_eq!(code, Some(0), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(
        report["limits"],
        serde_json::json!({"maxInstructions": 5_000_000, "maxMemoryMiB": 8, "timeoutMs": 700})
    );
    let reported = report["cases"].as_array().unwrap();
    assert_eq!(reported.len(), cases.len());
    assert_eq!(report["passed"].as_u64(), Some(cases.len() as u64));
    let mut most = 0;
    for (case, got) in cases.iter().zip(reported) {
        assert_eq!(got["name"], case["name"]);
        assert_eq!(got["passed"], true);
        // The decision is written like the expectation it met.
        let expected = case["expect"].as_object().unwrap();
        let (form, _) = expected.iter().next().unwrap();
        assert!(got["decision"].get(form).is_some(), "{got}");
        if form == "copy" {
            assert_eq!(got["decision"], case["expect"]);
        }
        let instructions = got["instructions"].as_u64().unwrap();
        assert!(instructions > 1_000 && instructions < 5_000_000, "{got}");
        most = most.max(instructions);
        let memory = got["peakMemoryBytes"].as_u64().unwrap();
        assert!(memory > 0 && memory <= 8 << 20, "{got}");
        assert!(got["timeMs"].as_f64().unwrap() > 0.0, "{got}");
    }
    assert_eq!(report["maxUsed"]["instructions"].as_u64(), Some(most));
}

#[test]
fn plugin_test_json_names_what_failed_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases.json");
    std::fs::write(
        &cases,
        r#"[{"name":"right","org":"o","key":"o/a.jpg","proposed":[{"bucket":"o-out","key":"o/a.jpg"}],
             "expect":{"copy":[{"bucket":"o-out","key":"o/a.jpg"}]}},
            {"name":"wrong","org":"o","key":"o/b.jpg","proposed":[],"expect":{"skip":"nope"}}]"#,
    )
    .unwrap();
    let (code, stdout, _) = run(binary()
        .args([
            "plugin",
            "test",
            plugin_artifacts::PASSTHROUGH,
            "--json",
            "--cases",
        ])
        .arg(&cases));
    assert_eq!(code, Some(1), "{stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (report["passed"].as_u64(), report["failed"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(report["cases"][1]["passed"], false);
    assert_eq!(
        report["cases"][1]["mismatch"],
        r#"expected skip containing "nope", got copy []"#
    );
    assert_eq!(report["cases"][1]["decision"], serde_json::json!({"copy": []}));

    // An instruction budget too small to start the plugin: the case fails, naming the limit.
    let (code, stdout, _) = run(binary()
        .args([
            "plugin",
            "test",
            plugin_artifacts::PASSTHROUGH,
            "--json",
            "--max-instructions",
            "100",
            "--cases",
        ])
        .arg(&cases));
    assert_eq!(code, Some(1), "{stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["failed"].as_u64(), Some(2));
    let failed = report["cases"][0]["decision"]["failed"].as_str().unwrap();
    assert!(failed.contains("maxInstructions"), "{failed}");

    // --json only goes with --cases.
    let (code, _, stderr) = run(binary().args([
        "plugin",
        "test",
        plugin_artifacts::PASSTHROUGH,
        "--json",
        "--org",
        "o",
        "--key",
        "k",
    ]));
    assert_eq!(code, Some(2), "{stderr}");
}

/// ComponentizeJS as `make tools` installs it, or `None` (the JavaScript tests then skip).
/// Returns its folder (npm's `.bin`), which `npm_build` puts on PATH.
fn componentize_js() -> Option<std::path::PathBuf> {
    if let Some(tool) = guests::componentize_js() {
        Some(tool.parent().unwrap().to_path_buf())
    } else {
        println!(
            "SKIP: ComponentizeJS is not installed in target/node-tools (`make tools` installs it): JavaScript plugins not built"
        );
        None
    }
}

/// A JavaScript project's `npm run build`, with the installed ComponentizeJS on PATH.
fn npm_build(project: &Path, tools: &Path) {
    let package: Value =
        serde_json::from_str(&std::fs::read_to_string(project.join("package.json")).unwrap()).unwrap();
    let script = package["scripts"]["build"]
        .as_str()
        .expect("package.json has a build script");
    let path = format!(
        "{}:{}",
        tools.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .current_dir(project)
        .env("PATH", path)
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The limits a JavaScript plugin needs (stated in the JavaScript README and plugins/README.md).
const JS_LIMITS: [&str; 4] = ["--max-memory-mib", "64", "--max-instructions", "100000000"];

#[test]
fn a_new_javascript_plugin_builds_and_passes_its_cases() {
    let Some(tools) = componentize_js() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(binary()
        .current_dir(dir.path())
        .args(["plugin", "new", "first-js", "--lang", "js"]));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let project = dir.path().join("first-js");
    for file in [
        "package.json",
        "plugin.js",
        "cases.json",
        "README.md",
        "wit/policy.wit",
    ] {
        assert!(project.join(file).is_file(), "{file} written");
    }
    npm_build(&project, &tools);
    let (code, stdout, stderr) = run(binary()
        .current_dir(&project)
        .args(["plugin", "test", "first_js.wasm", "--cases", "cases.json"])
        .args(JS_LIMITS));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.trim_end().ends_with("2 passed, 0 failed"), "{stdout}");
}

/// plugins/glob-filter-js: glob-filter's behaviour in JavaScript, held to glob-filter's own
/// cases.json (a link to it, not a copy), under the limits its README states.
#[test]
fn the_javascript_glob_filter_passes_glob_filters_cases() {
    let Some(tools) = componentize_js() else {
        return;
    };
    let example = repo("plugins/glob-filter-js");
    assert_eq!(
        std::fs::read_link(example.join("cases.json")).unwrap(),
        Path::new("../glob-filter/cases.json")
    );
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("glob_filter_js.wasm");
    guests::build_glob_filter_js(&tools.join("componentize-js"), &wasm);
    let (code, stdout, stderr) = run(binary()
        .args(["plugin", "test"])
        .arg(&wasm)
        .arg("--cases")
        .arg(example.join("cases.json"))
        .args(JS_LIMITS));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

/// `plugin new --lang python` writes a project that builds with its own `build.sh` (the
/// componentize-py of `make tools` on PATH) into a component that passes its cases under
/// the default limits.
#[test]
fn a_new_python_plugin_builds_and_passes_its_cases() {
    let tool = guests::require_componentize_py();
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(binary()
        .current_dir(dir.path())
        .args(["plugin", "new", "first-py", "--lang", "python"]));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("Python plugin first-py"), "{stdout}");
    let project = dir.path().join("first-py");
    for file in [
        "app.py",
        "build.sh",
        "requirements.txt",
        "cases.json",
        "README.md",
        ".gitignore",
        "wit/policy.wit",
    ] {
        assert!(project.join(file).is_file(), "{file} written");
    }
    let makefile = std::fs::read_to_string(repo("Makefile")).unwrap();
    let pin = makefile
        .lines()
        .find_map(|l| l.strip_prefix("COMPONENTIZE_PY_VERSION := "))
        .expect("the Makefile pins componentize-py");
    let requirements = std::fs::read_to_string(project.join("requirements.txt")).unwrap();
    assert!(
        requirements.contains(&format!("componentize-py=={pin}")),
        "the Makefile's pin {pin}: {requirements}"
    );
    let path = format!(
        "{}:{}",
        tool.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .current_dir(&project)
        .env("PATH", path)
        .arg("build.sh")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "build.sh: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, stdout, stderr) = run(binary().current_dir(&project).args([
        "plugin",
        "test",
        "first_py.wasm",
        "--cases",
        "cases.json",
    ]));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.trim_end().ends_with("2 passed, 0 failed"), "{stdout}");
}

/// tests/fixtures/plugins/glob-filter-py: glob-filter's behaviour in Python (componentize-py
/// from `make tools`), held to glob-filter's own cases.json by `plugin test` under the
/// default limits (the host's pool allows its 38 core module instances).
#[test]
fn the_python_glob_filter_passes_glob_filters_cases() {
    let wasm = guests::glob_filter_py();
    let (code, stdout, stderr) = run(binary()
        .args(["plugin", "test"])
        .arg(wasm)
        .arg("--cases")
        .arg(repo("plugins/glob-filter/cases.json")));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(repo("plugins/glob-filter/cases.json")).unwrap())
            .unwrap();
    assert!(cases.len() >= 10, "{} cases", cases.len());
    let totals = format!("{} passed, 0 failed", cases.len());
    assert!(stdout.trim_end().ends_with(&totals), "{stdout}");
}

/// `plugin diff`: the same plugin under two settings differs on the keys one more pattern
/// includes (exit 1, `N of M differ`); identical plugins and settings differ on none (exit 0).
#[test]
fn plugin_diff_prints_the_keys_whose_decisions_differ() {
    let keys = repo("tests/fixtures/diff/keys.txt");
    let diff = |extra: &[&str]| {
        run(binary()
            .args([
                "plugin",
                "diff",
                plugin_artifacts::GLOB_FILTER,
                plugin_artifacts::GLOB_FILTER,
                "--keys",
            ])
            .arg(&keys)
            .args(["--settings", r#"{"include":["**/*.jpg"]}"#])
            .args(extra))
    };
    let (code, stdout, stderr) = diff(&["--new-settings", r#"{"include":["**/*.jpg","**/*.png"]}"#]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("org2/b.png (org org2)"), "{stdout}");
    assert!(stdout.contains("old: skip"), "{stdout}");
    assert!(
        stdout.contains(r#"new: copy [{"bucket":"org2-export","key":"org2/b.png"}]"#),
        "{stdout}"
    );
    assert!(
        !stdout.contains("org2/a.jpg"),
        "the same decision is not printed: {stdout}"
    );
    assert!(!stdout.contains("org2/c.txt"), "a skip equals a skip: {stdout}");
    assert!(stdout.trim_end().ends_with("1 of 3 differ"), "{stdout}");

    let (code, stdout, stderr) = diff(&[]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(stdout.trim_end(), "0 of 3 differ");

    // --json: one document, each difference with both decisions.
    let (code, stdout, stderr) = diff(&["--new-settings", r#"{"include":["**/*.png"]}"#, "--json"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(report["compared"], 3);
    assert_eq!(report["differing"], 2);
    let differences = report["differences"].as_array().unwrap();
    assert_eq!(differences[0]["key"], "org2/a.jpg");
    assert_eq!(differences[0]["org"], "org2");
    assert_eq!(
        differences[0]["old"],
        serde_json::json!({"copy": [{"bucket": "org2-export", "key": "org2/a.jpg"}]})
    );
    assert!(differences[0]["new"].get("skip").is_some(), "{report}");
    assert_eq!(differences[1]["key"], "org2/b.png");

    // Counts are written with thousands separators.
    let dir = tempfile::tempdir().unwrap();
    let many = dir.path().join("keys.txt");
    let lines: String = (0..1_200).map(|i| format!("org2/{i}.png\n")).collect();
    std::fs::write(&many, lines).unwrap();
    let (code, stdout, stderr) = run(binary()
        .args([
            "plugin",
            "diff",
            plugin_artifacts::GLOB_FILTER,
            plugin_artifacts::GLOB_FILTER,
            "--keys",
        ])
        .arg(&many)
        .args(["--settings", r#"{"include":["**/*.jpg"]}"#])
        .args(["--new-settings", r#"{"include":["**/1*.png"]}"#]));
    assert_eq!(code, Some(1), "{stderr}");
    // 1, 10-19, 100-199, 1000-1199: 1 + 10 + 100 + 200 keys.
    assert!(
        stdout.trim_end().ends_with("311 of 1,200 differ"),
        "{}",
        stdout.lines().last().unwrap_or("")
    );
}

/// Two different plugins over a cases file (each case's own settings); identical ones over
/// the same file differ on none.
#[test]
fn plugin_diff_over_cases_compares_two_plugins() {
    let cases = repo("plugins/glob-filter/cases.json");
    let count = serde_json::from_str::<Vec<Value>>(&std::fs::read_to_string(&cases).unwrap())
        .unwrap()
        .len();
    let (code, stdout, stderr) = run(binary()
        .args([
            "plugin",
            "diff",
            plugin_artifacts::GLOB_FILTER,
            plugin_artifacts::GLOB_FILTER,
            "--cases",
        ])
        .arg(&cases));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(stdout.trim_end(), format!("0 of {count} differ"));

    // key-rewriter copies what glob-filter skips (or rewrites what it keeps).
    let (code, stdout, stderr) = run(binary()
        .args([
            "plugin",
            "diff",
            plugin_artifacts::GLOB_FILTER,
            plugin_artifacts::KEY_REWRITER,
            "--cases",
        ])
        .arg(&cases)
        .arg("--json"));
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["compared"], count);
    let differing = report["differing"].as_u64().unwrap();
    assert!(differing > 0, "{report}");
    assert_eq!(report["differences"].as_array().unwrap().len() as u64, differing);
}

/// Two 0.2 plugins compared over cases that give HEAD facts: a target moved to another
/// storage class, or given other tags, is a different decision. tiering under the cases' own
/// settings against tiering whose one rule sends images to GLACIER_IR (`--new-settings`):
/// every case differs but the one both skip (its suffix is not selected).
#[test]
fn plugin_diff_compares_0_2_decisions_by_class_and_tags() {
    let cases = repo("plugins/tiering/cases.json");
    let count = serde_json::from_str::<Vec<Value>>(&std::fs::read_to_string(&cases).unwrap())
        .unwrap()
        .len();
    let (code, stdout, stderr) = run(binary()
        .args(["plugin", "diff", plugin_artifacts::TIERING, plugin_artifacts::TIERING, "--cases"])
        .arg(&cases)
        .args([
            "--new-settings",
            r#"{"rules": [{"contentType": "image/*", "storageClass": "GLACIER_IR", "tags": {"tier": "warm"}}]}"#,
            "--json",
        ]));
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["differing"].as_u64(), Some(count as u64 - 1), "{report}");
    let differences = report["differences"].as_array().unwrap();
    assert!(
        !differences
            .iter()
            .any(|d| d["input"].as_str().unwrap().contains("suffix not selected")),
        "{report}"
    );
    let large = differences
        .iter()
        .find(|d| d["input"].as_str().unwrap().contains("a large image"))
        .unwrap();
    assert_eq!(large["old"]["copy"][0]["storageClass"], "STANDARD_IA", "{large}");
    assert_eq!(large["new"]["copy"][0]["storageClass"], "GLACIER_IR", "{large}");
    // The same settings on both sides: nothing differs.
    let (code, stdout, stderr) = run(binary()
        .args([
            "plugin",
            "diff",
            plugin_artifacts::TIERING,
            plugin_artifacts::TIERING,
            "--cases",
        ])
        .arg(&cases));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(stdout.trim_end(), format!("0 of {count} differ"));
}

/// `--events`: the object records of an invocation event, the org from each key's first
/// segment; a test event's records are not objects; bad input exits 2 naming the file.
#[test]
fn plugin_diff_reads_events_and_refuses_bad_input() {
    let diff = |input: &str, path: &str| {
        run(binary()
            .args([
                "plugin",
                "diff",
                plugin_artifacts::GLOB_FILTER,
                plugin_artifacts::GLOB_FILTER,
                input,
            ])
            .arg(repo(path))
            .args(["--settings", r#"{"include":["**/*.pdf"]}"#])
            .args(["--new-settings", r#"{"include":["org1/**"]}"#]))
    };
    let (code, stdout, stderr) = diff("--events", "tests/fixtures/events/s3-multi-record.json");
    assert_eq!(
        code,
        Some(0),
        "org1/a.pdf is copied by both, the rest (the removal too: plugins decide removals) skipped by both: {stdout}{stderr}"
    );
    assert_eq!(stdout.trim_end(), "0 of 4 differ");
    let (code, stdout, stderr) = diff("--events", "tests/fixtures/events/sns-s3.json");
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("(org org1)"),
        "the org is the key's first segment: {stdout}"
    );
    assert!(stdout.trim_end().ends_with("1 of 1 differ"), "{stdout}");

    let (code, stdout, stderr) = diff("--events", "tests/fixtures/events/not-json.txt");
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not-json.txt"), "{stderr}");
    let (code, _, stderr) = diff("--keys", "tests/fixtures/diff/missing.txt");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("keys ") && stderr.contains("missing.txt: could not be read"),
        "{stderr}"
    );
    let (code, _, stderr) = run(binary().args([
        "plugin",
        "diff",
        plugin_artifacts::GLOB_FILTER,
        plugin_artifacts::GLOB_FILTER,
    ]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--cases <CASES>|--keys <KEYS>|--events <EVENTS>"),
        "{stderr}"
    );
    let (code, _, stderr) = diff("--cases", "tests/fixtures/events/s3-put.json");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("s3-put.json"), "{stderr}");
}
