use serde_json::json;

use super::{run, sha256_hex};
use crate::support::paths::{binary, repo};

#[test]
fn the_example_plugins_pass_their_own_cases() {
    for (plugin, cases) in [
        (plugin_artifacts::KEY_REWRITER, "plugins/key-rewriter/cases.json"),
        (plugin_artifacts::GLOB_FILTER, "plugins/glob-filter/cases.json"),
    ] {
        let (code, stdout, stderr) = run(binary()
            .args(["plugin", "test", plugin, "--cases"])
            .arg(repo(cases)));
        assert_eq!(code, Some(0), "{cases}: {stdout}{stderr}");
        assert!(stdout.trim_end().ends_with(" passed, 0 failed"), "{stdout}");
        assert!(!stdout.contains("FAIL"), "{stdout}");
        // Every case shows its budget: instructions, memory and time against the limits.
        let cases_run = stdout.lines().filter(|l| l.starts_with("ok ")).count();
        let used: Vec<&str> = stdout
            .lines()
            .filter(|l| l.trim_start().starts_with("used: "))
            .collect();
        assert_eq!(used.len(), cases_run, "{stdout}");
        for line in used {
            assert!(
                line.contains("instructions ")
                    && line.contains(" of 20000000 (")
                    && line.contains("MiB")
                    && line.contains(" of 16.0 MiB (")
                    && line.contains(" of 1000 ms ("),
                "{line}"
            );
        }
    }
}

#[test]
fn a_wrong_expectation_is_listed_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases.json");
    std::fs::write(
        &cases,
        r#"[{"name":"right","org":"o","key":"o/a.jpg","proposed":[{"bucket":"o-out","key":"o/a.jpg"}],
             "expect":{"copy":[{"bucket":"o-out","key":"o/a.jpg"}]}},
            {"name":"wrong","org":"o","key":"o/b.jpg","proposed":[{"bucket":"o-out","key":"o/b.jpg"}],
             "expect":{"skip":"nope"}}]"#,
    )
    .unwrap();
    let (code, stdout, _) = run(binary()
        .args(["plugin", "test", plugin_artifacts::PASSTHROUGH, "--cases"])
        .arg(&cases));
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("ok    right"), "{stdout}");
    assert!(
        stdout.contains(
            r#"FAIL  wrong: expected skip containing "nope", got copy [{"bucket":"o-out","key":"o/b.jpg"}]"#
        ),
        "{stdout}"
    );
    assert!(stdout.contains("1 passed, 1 failed"), "{stdout}");
}

#[test]
fn one_decision_from_the_command_line() {
    let (code, stdout, stderr) = run(binary().args([
        "plugin",
        "test",
        plugin_artifacts::GLOB_FILTER,
        "--org",
        "org2",
        "--key",
        "org2/a.jpg",
        "--settings",
        r#"{"include":["**/*.pdf"]}"#,
    ]));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("skip "), "{stdout}");
    let (code, stdout, _) = run(binary().args([
        "plugin",
        "test",
        plugin_artifacts::KEY_REWRITER,
        "--org",
        "org2",
        "--key",
        "org2/a.jpg",
        "--event-time",
        "2026-03-04T05:06:07Z",
        "--settings",
        r#"{"datePartition":true}"#,
    ]));
    assert_eq!(code, Some(0));
    assert_eq!(
        stdout.trim(),
        r#"copy [{"bucket":"org2-export","key":"2026/03/04/org2/a.jpg"}]"#
    );
}

#[test]
fn compile_then_plan_and_validate_with_relative_plugins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    let cwasm = dir.path().join("plugins/rewriter.cwasm");
    let (code, stdout, stderr) = run(binary()
        .args(["plugin", "compile", plugin_artifacts::KEY_REWRITER, "-o"])
        .arg(&cwasm));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("compiled "), "{stdout}");
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        json!({"customers": [
            {"org": "org1", "destinationBucket": "org1-export"},
            {"org": "org2", "destinationBucket": "org2-export", "plugin": {
                "source": "plugins/rewriter.cwasm", "precompiled": true, "sha256": sha256_hex(cwasm.to_str().unwrap()),
                "settings": {"replacePrefix": {"from": "org2/", "to": "out/"}}}}
        ]})
        .to_string(),
    )
    .unwrap();
    let mut plan = binary();
    plan.args(["plan", "--suffixes", "jpg", "--keys", "-", "--config"])
        .arg(&config);
    plan.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = plan.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"org1/a.jpg\norg2/b.jpg\norg2/c.txt\norg9/d.jpg\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "org1/a.jpg\torg1\tcopy -> s3://org1-export/org1/a.jpg");
    assert_eq!(lines[1], "org2/b.jpg\torg2\tcopy -> s3://org2-export/out/b.jpg");
    assert!(
        lines[2].starts_with("org2/c.txt\torg2\tskip: plugin "),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3], "org9/d.jpg\t-\tskip: no org's prefix matches the key");

    let (code, stdout, _) = run(binary().args(["validate", "--config"]).arg(&config));
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("plugin of org2: ok"), "{stdout}");

    // The same config with a wrong pin: validate names the org and exits 2.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&sha256_hex(cwasm.to_str().unwrap()), &"11".repeat(32));
    std::fs::write(&config, text).unwrap();
    let (code, stdout, stderr) = run(binary().args(["validate", "--config"]).arg(&config));
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(
        stdout.contains("plugin of org2: BROKEN: plugin ") && stdout.contains("sha256 mismatch"),
        "{stdout}"
    );
}

/// `validate` loads and instantiates an org's `plugin.candidate` beside its plugin: a
/// candidate that does not load (here a wrong sha256 pin) is BROKEN, naming the candidate.
#[test]
fn validate_loads_and_checks_the_candidate_too() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    let write = |candidate_sha: &str| {
        std::fs::write(
            &config,
            json!({"customers": [
                {"org": "org2", "destinationBucket": "org2-export", "plugin": {
                    "source": plugin_artifacts::GLOB_FILTER,
                    "candidate": {"source": plugin_artifacts::KEY_REWRITER, "sha256": candidate_sha}}}
            ]})
            .to_string(),
        )
        .unwrap();
    };
    write(&sha256_hex(plugin_artifacts::KEY_REWRITER));
    let (code, stdout, stderr) = run(binary().args(["validate", "--config"]).arg(&config));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "plugin of org2: ok ({}, WIT 0.1; candidate {}, WIT 0.1)",
            plugin_artifacts::GLOB_FILTER,
            plugin_artifacts::KEY_REWRITER
        )),
        "{stdout}"
    );
    write(&"11".repeat(32));
    let (code, stdout, stderr) = run(binary().args(["validate", "--config"]).arg(&config));
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(
        stdout.contains("plugin of org2: BROKEN: candidate plugin ") && stdout.contains("sha256 mismatch"),
        "{stdout}"
    );
}

/// `validate` refuses a config whose buckets cross tenancy lines, naming both orgs or the
/// bucket: another org's destination in allowedBuckets, an allowedBuckets entry of two orgs,
/// the source bucket, the config's own
/// bucket is checked by unit tests (a local file has none).
#[test]
fn validate_refuses_buckets_of_other_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        json!({"customers": [
            {"org": "org1", "destinationBucket": "org1-export", "allowedBuckets": ["org2-export"]},
            {"org": "org2", "destinationBucket": "org2-export"},
            {"org": "org3", "destinationBucket": "shared-source"},
            {"org": "org4", "destinationBucket": "org4-export", "allowedBuckets": ["shared-archive"]},
            {"org": "org5", "destinationBucket": "org5-export", "allowedBuckets": ["shared-archive"]}
        ]})
        .to_string(),
    )
    .unwrap();
    let (code, stdout, stderr) = run(binary()
        .args(["validate", "--source-bucket", "shared-source", "--config"])
        .arg(&config));
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains(
            "customers[0] (org1): allowedBuckets[0] \"org2-export\" is the destinationBucket of org org2"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("customers[2] (org3): destinationBucket \"shared-source\" is the source bucket"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "customers[4] (org5): allowedBuckets[0] \"shared-archive\" is the allowedBuckets[0] of org org4 (customers[3])"
        ),
        "{stderr}"
    );
}
