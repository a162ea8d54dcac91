use artifact_export::event::parse_event;
use artifact_export::exporter::Exporter;
use artifact_export::handler::handle;
use artifact_export::plan::PluginErrorKind;
use artifact_export::reason::ReasonCode;
use artifact_export::report::{Outcome, Report};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::events::s3_event;
use crate::support::measure::{SmallParent, command_with_python_parent};
use crate::support::paths::{binary, repo};
use crate::support::proxy::{Fault, FaultProxy, Rule};
use crate::support::servers::{Server, garage};
use crate::support::world::World;

fn sha256_hex(path: &str) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

fn record<'a>(report: &'a Report, key: &str) -> &'a artifact_export::report::RecordReport {
    report
        .records
        .iter()
        .find(|r| r.key.as_deref() == Some(key))
        .unwrap()
}

/// Config: org1 plain, then one org per `(org, plugin json)`.
fn config_with(orgs: &[(String, String)], plugins: &[(&str, Value)]) -> String {
    let customers: Vec<Value> = orgs
        .iter()
        .map(|(org, bucket)| {
            let mut c = json!({"org": org, "destinationBucket": bucket});
            if let Some((_, plugin)) = plugins.iter().find(|(o, _)| o == org) {
                c["plugin"] = plugin.clone();
            }
            c
        })
        .collect();
    json!({"customers": customers, "retry": 0}).to_string()
}

async fn rewrite_lands_at_the_new_key(server: &'static Server) {
    let plugin = json!({
        "source": plugin_artifacts::KEY_REWRITER,
        "timeoutMs": 5000,
        "settings": {"replacePrefix": {"from": "org2/", "to": "exports/"}, "datePartition": true}
    });
    let world = World::with_config(server, &["org1", "org2"], |orgs| {
        config_with(orgs, &[("org2", plugin)])
    })
    .await;
    let a = world.put("org2/photos/a.jpg", b"rewritten").await;
    let b = world.put("org1/photos/b.jpg", b"plain").await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&a, &b])).unwrap(),
    )
    .await;
    let r = record(&report, "org2/photos/a.jpg");
    assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    // The event time of the fixture events is 2026-11-25T12:00:00.000Z.
    assert_eq!(
        r.destination_key.as_deref(),
        Some("exports/2026/11/25/photos/a.jpg")
    );
    assert_eq!(
        world.keys(world.bucket_of("org2")).await,
        ["exports/2026/11/25/photos/a.jpg"]
    );
    assert_eq!(
        world
            .get(world.bucket_of("org2"), "exports/2026/11/25/photos/a.jpg")
            .await
            .as_deref(),
        Some(&b"rewritten"[..])
    );
    assert_eq!(world.keys(world.bucket_of("org1")).await, ["org1/photos/b.jpg"]);
}

async fn filter_skips_what_it_excludes(server: &'static Server) {
    let plugin = json!({
        "source": plugin_artifacts::GLOB_FILTER,
        "timeoutMs": 5000,
        "settings": {"include": ["**/*.jpg"], "exclude": ["**/tmp/**"]}
    });
    let world = World::with_config(server, &["org2"], |orgs| config_with(orgs, &[("org2", plugin)])).await;
    let keep = world.put("org2/a.jpg", b"keep").await;
    let tmp = world.put("org2/tmp/b.jpg", b"tmp").await;
    let pdf = world.put("org2/c.pdf", b"pdf").await;
    let report = handle(
        &world.exporter(world.settings("jpg,pdf")),
        parse_event(&s3_event(&[&keep, &tmp, &pdf])).unwrap(),
    )
    .await;
    assert_eq!(record(&report, "org2/a.jpg").outcome, Outcome::Copied);
    for key in ["org2/tmp/b.jpg", "org2/c.pdf"] {
        let r = record(&report, key);
        assert_eq!(r.outcome, Outcome::Skipped, "{r:?}");
        assert!(r.reason.as_deref().unwrap().starts_with("plugin "), "{r:?}");
    }
    assert_eq!(world.keys(world.bucket_of("org2")).await, ["org2/a.jpg"]);
}

on_each_server!(rewrite_lands_at_the_new_key, filter_skips_what_it_excludes);

/// Every hostile plugin in one invocation beside a plain org: each affects only its own
/// record, and the plain org's object is copied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_affect_only_their_own_records() {
    let server = garage();
    // The bucket the `other-bucket` plugin aims at exists, so only the host's check stops it.
    let _ = server
        .client()
        .create_bucket()
        .bucket("someone-elses-bucket")
        .send()
        .await;
    let cases: &[(&str, &str, Outcome, &str)] = &[
        (
            "hloop",
            plugin_artifacts::LOOP_FOREVER,
            Outcome::Failed,
            "used up its budget of 20000000 instructions",
        ),
        (
            "hmem",
            plugin_artifacts::GROW_MEMORY,
            Outcome::Failed,
            "exceeded its memory limit of 16 MiB",
        ),
        ("hpanic", plugin_artifacts::PANIC, Outcome::Failed, "trapped"),
        (
            "herr",
            plugin_artifacts::ERR_ANSWER,
            Outcome::Failed,
            "returned an error: deliberate failure",
        ),
        (
            "hother",
            plugin_artifacts::OTHER_BUCKET,
            Outcome::Failed,
            "answer rejected: target[0] bucket \"someone-elses-bucket\" is not the org's destinationBucket",
        ),
        (
            "hmany",
            plugin_artifacts::MANY_TARGETS,
            Outcome::Failed,
            "answered more than 64 KiB",
        ),
        (
            "hempty",
            plugin_artifacts::EMPTY_KEY,
            Outcome::Failed,
            "key is 0 bytes",
        ),
        ("hnoisy", plugin_artifacts::NOISY, Outcome::Copied, ""),
        ("hsnoop", plugin_artifacts::SNOOP, Outcome::Copied, ""),
    ];
    let mut orgs = vec!["org1"];
    orgs.extend(cases.iter().map(|c| c.0));
    let plugins: Vec<(&str, Value)> = cases
        .iter()
        .map(|(org, path, ..)| {
            // A generous deadline for every plugin (a debug build of the host on a busy
            // machine): the cap or check under test, not the clock, decides; for the
            // endless loop that is the instruction budget.
            (*org, json!({"source": path, "timeoutMs": 10_000}))
        })
        .collect();
    let world = World::with_config(server, &orgs, |orgs| config_with(orgs, &plugins)).await;
    let mut uploaded = vec![world.put("org1/plain.jpg", b"plain").await];
    for (org, ..) in cases {
        uploaded.push(world.put(&format!("{org}/x.jpg"), org.as_bytes()).await);
    }
    uploaded.push(world.put("org1/plain2.jpg", b"plain2").await);
    let event = parse_event(&s3_event(&uploaded.iter().collect::<Vec<_>>())).unwrap();
    let report = handle(&world.exporter(world.settings("jpg")), event).await;

    for key in ["org1/plain.jpg", "org1/plain2.jpg"] {
        assert_eq!(
            record(&report, key).outcome,
            Outcome::Copied,
            "{:?}",
            record(&report, key)
        );
    }
    for (org, plugin, outcome, reason) in cases {
        let r = record(&report, &format!("{org}/x.jpg"));
        assert_eq!(r.outcome, *outcome, "{org}: {r:?}");
        if *outcome == Outcome::Failed {
            let text = r.reason.as_deref().unwrap();
            assert!(text.contains(reason), "{org}: {text}");
            assert!(
                text.contains(&format!("org {org}")) && text.contains(plugin),
                "names org and plugin: {text}"
            );
            assert!(
                world.keys(world.bucket_of(org)).await.is_empty(),
                "{org} copied something"
            );
        }
    }
    // Each failure kind has its reason code, and the plugin-health counts see it.
    let kinds = [
        ("hloop", ReasonCode::PluginTimeout, PluginErrorKind::TimedOut),
        ("hmem", ReasonCode::PluginError, PluginErrorKind::Trapped),
        ("hpanic", ReasonCode::PluginError, PluginErrorKind::Trapped),
        ("herr", ReasonCode::PluginError, PluginErrorKind::ErrAnswer),
        (
            "hother",
            ReasonCode::PluginInvalidAnswer,
            PluginErrorKind::InvalidAnswer,
        ),
        (
            "hmany",
            ReasonCode::PluginInvalidAnswer,
            PluginErrorKind::InvalidAnswer,
        ),
        (
            "hempty",
            ReasonCode::PluginInvalidAnswer,
            PluginErrorKind::InvalidAnswer,
        ),
    ];
    for (org, code, kind) in kinds {
        let r = record(&report, &format!("{org}/x.jpg"));
        assert_eq!(r.reason_code, Some(code), "{org}: {r:?}");
        let run = r.plugin.unwrap_or_else(|| panic!("{org}: the plugin ran: {r:?}"));
        assert_eq!((run.error, run.fallback), (Some(kind), false), "{org}");
    }
    for org in ["hnoisy", "hsnoop"] {
        let run = record(&report, &format!("{org}/x.jpg")).plugin.unwrap();
        assert_eq!((run.error, run.fallback), (None, false), "{org}");
    }
    assert_eq!(
        record(&report, "org1/plain.jpg").plugin,
        None,
        "no plugin, no run"
    );
    assert!(
        world
            .keys("someone-elses-bucket")
            .await
            .iter()
            .all(|k| !k.starts_with("hother/"))
    );
    // The snooping plugin reports what it could see in the key it chose: nothing.
    let seen = world.keys(world.bucket_of("hsnoop")).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].contains("env=0;args=0"), "{seen:?}");
    assert!(seen[0].starts_with("fs=err"), "{seen:?}");
    assert!(report.must_fail_invocation());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_error_skip_and_default() {
    let server = garage();
    let plugins = [
        (
            "oskip",
            json!({"source": plugin_artifacts::ERR_ANSWER, "onError": "skip", "timeoutMs": 5000}),
        ),
        (
            "odefault",
            json!({"source": plugin_artifacts::ERR_ANSWER, "onError": "default", "timeoutMs": 5000}),
        ),
        (
            "ofail",
            json!({"source": plugin_artifacts::ERR_ANSWER, "timeoutMs": 5000}),
        ),
        // An invalid answer is a contract violation: the record fails whatever onError says.
        (
            "oforeign",
            json!({"source": plugin_artifacts::OTHER_BUCKET, "onError": "skip", "timeoutMs": 5000}),
        ),
        (
            "oforeignd",
            json!({"source": plugin_artifacts::OTHER_BUCKET, "onError": "default", "timeoutMs": 5000}),
        ),
    ];
    let world = World::with_config(
        server,
        &["oskip", "odefault", "ofail", "oforeign", "oforeignd"],
        |orgs| config_with(orgs, &plugins),
    )
    .await;
    let s = world.put("oskip/a.jpg", b"s").await;
    let d = world.put("odefault/a.jpg", b"d").await;
    let d_txt = world.put("odefault/a.txt", b"t").await;
    let f = world.put("ofail/a.jpg", b"f").await;
    let fs = world.put("oforeign/a.jpg", b"x").await;
    let fd = world.put("oforeignd/a.jpg", b"x").await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&s, &d, &d_txt, &f, &fs, &fd])).unwrap(),
    )
    .await;
    let outcomes: Vec<_> = report.records.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Skipped,
            Outcome::Copied,
            Outcome::Skipped,
            Outcome::Failed,
            Outcome::Failed,
            Outcome::Failed
        ]
    );
    for r in &report.records[4..] {
        assert!(r.reason.as_deref().unwrap().contains("answer rejected"), "{r:?}");
        assert!(!r.retryable, "a contract violation is not retried: {r:?}");
    }
    assert!(
        report.records[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("onError: skip")
    );
    assert_eq!(world.keys(world.bucket_of("odefault")).await, ["odefault/a.jpg"]);
    // skip and default are fallbacks (PluginFallbacks); fail is not, and has its code.
    let runs: Vec<_> = report
        .records
        .iter()
        .map(|r| r.plugin.map(|run| (run.error, run.fallback)))
        .collect();
    let err = Some(PluginErrorKind::ErrAnswer);
    assert_eq!(
        runs,
        [
            Some((err, true)),
            Some((err, true)),
            Some((err, true)),
            Some((err, false)),
            // Answers naming a foreign bucket: invalid, whatever onError says; no fallback.
            Some((Some(PluginErrorKind::InvalidAnswer), false)),
            Some((Some(PluginErrorKind::InvalidAnswer), false)),
        ]
    );
    assert_eq!(report.records[3].reason_code, Some(ReasonCode::PluginError));
    for r in &report.records[4..] {
        assert_eq!(r.reason_code, Some(ReasonCode::PluginInvalidAnswer), "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_sha256_fails_only_that_org() {
    let server = garage();
    let plugin =
        json!({"source": plugin_artifacts::PASSTHROUGH, "sha256": "00".repeat(32), "timeoutMs": 5000});
    let world = World::with_config(server, &["org1", "org2"], |orgs| {
        config_with(orgs, &[("org2", plugin)])
    })
    .await;
    let a = world.put("org1/a.jpg", b"a").await;
    let b = world.put("org2/b.jpg", b"b").await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&a, &b])).unwrap(),
    )
    .await;
    assert_eq!(record(&report, "org1/a.jpg").outcome, Outcome::Copied);
    let r = record(&report, "org2/b.jpg");
    assert_eq!(r.outcome, Outcome::Failed);
    let reason = r.reason.as_deref().unwrap();
    assert!(reason.contains("sha256 mismatch: config pins 0000"), "{reason}");
    assert!(
        reason.contains(&sha256_hex(plugin_artifacts::PASSTHROUGH)),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_from_s3_pinned_by_sha256() {
    let server = garage();
    let bytes = std::fs::read(plugin_artifacts::PASSTHROUGH).unwrap();
    let world = World::new(server, &["org1"]).await;
    world
        .put_config_object("export/plugins/passthrough.wasm", bytes)
        .await;
    // A relative source is relative to the config object: export/plugins/passthrough.wasm.
    let config = json!({"customers": [{"org": "org1", "destinationBucket": world.bucket_of("org1"),
        "plugin": {"source": "plugins/passthrough.wasm", "sha256": sha256_hex(plugin_artifacts::PASSTHROUGH), "timeoutMs": 5000}}]});
    world.write_config(&config.to_string()).await;
    let a = world.put("org1/a.jpg", b"a").await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&a])).unwrap(),
    )
    .await;
    assert_eq!(
        report.records[0].outcome,
        Outcome::Copied,
        "{:?}",
        report.records[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cwasm_from_another_engine_is_refused_clearly() {
    let server = garage();
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("foreign.cwasm");
    // Same wasmtime, different configuration (no epoch interruption): not loadable here.
    let engine = wasmtime::Engine::new(&wasmtime::Config::new()).unwrap();
    let wasm = std::fs::read(plugin_artifacts::PASSTHROUGH).unwrap();
    std::fs::write(&foreign, engine.precompile_component(&wasm).unwrap()).unwrap();
    let plugin = json!({"source": foreign.to_str().unwrap(), "precompiled": true});
    let world = World::with_config(server, &["org1", "org2"], |orgs| {
        config_with(orgs, &[("org2", plugin)])
    })
    .await;
    let a = world.put("org1/a.jpg", b"a").await;
    let b = world.put("org2/b.jpg", b"b").await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&a, &b])).unwrap(),
    )
    .await;
    assert_eq!(record(&report, "org1/a.jpg").outcome, Outcome::Copied);
    let reason = record(&report, "org2/b.jpg").reason.clone().unwrap();
    assert!(reason.contains("precompiled for a different engine"), "{reason}");
    assert!(
        reason.contains("recompile it with `artifact-export plugin compile`"),
        "{reason}"
    );
}

fn run(cmd: &mut std::process::Command) -> (Option<i32>, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

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

/// Every way a plugin can wait returns at once: a 120 s sleep, a poll (and a block) on a
/// clock subscription 584 years out, a blocking read of stdin. Each plugin then answers
/// `copy(proposed)`, so its object is copied; a busy loop ends at its instruction budget.
/// Without the non-blocking WASI they would hold their decisions for 120 s or forever
/// (the wall-clock deadline cannot fire inside a host call).
async fn plugins_that_wait_are_not_waited_for(server: &'static Server) {
    let cases = [
        ("wsleep", plugin_artifacts::SLEEP),
        ("wpoll", plugin_artifacts::POLL_FOREVER),
        ("wstdin", plugin_artifacts::READ_STDIN),
        ("wloop", plugin_artifacts::LOOP_FOREVER),
    ];
    let plugins: Vec<(&str, Value)> = cases
        .iter()
        .map(|(org, path)| (*org, json!({"source": path, "timeoutMs": 10_000})))
        .collect();
    let orgs: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let world = World::with_config(server, &orgs, |orgs| config_with(orgs, &plugins)).await;
    let mut uploaded = Vec::new();
    for (org, _) in cases {
        uploaded.push(world.put(&format!("{org}/x.jpg"), org.as_bytes()).await);
    }
    let event = parse_event(&s3_event(&uploaded.iter().collect::<Vec<_>>())).unwrap();
    let report = handle(&world.exporter(world.settings("jpg")), event).await;
    for org in ["wsleep", "wpoll"] {
        let r = record(&report, &format!("{org}/x.jpg"));
        assert_eq!(r.outcome, Outcome::Copied, "{org}: {r:?}");
        assert_eq!(world.keys(world.bucket_of(org)).await, [format!("{org}/x.jpg")]);
    }
    // The stdin reader names what it read in its key: nothing, at once.
    let r = record(&report, "wstdin/x.jpg");
    assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    assert_eq!(world.keys(world.bucket_of("wstdin")).await, ["stdin=0"]);
    let r = record(&report, "wloop/x.jpg");
    assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    let reason = r.reason.as_deref().unwrap();
    assert!(
        reason.contains("used up its budget of 20000000 instructions (maxInstructions)"),
        "the instruction budget, not the 10 s clock, stops the loop: {reason}"
    );
}

/// `maxInstructions` decides, the same way everywhere: the same plugin and input fail
/// under a budget below what they need and pass above it, whatever the clock says.
async fn the_instruction_budget_decides(server: &'static Server) {
    // 1,000,000 iterations take several million instructions.
    let spin = |budget: u64| {
        json!({"source": plugin_artifacts::SPIN, "timeoutMs": 10_000, "maxInstructions": budget,
               "settings": {"spin": 1_000_000}})
    };
    let plugins = [("tight", spin(1_000_000)), ("roomy", spin(1_000_000_000))];
    let world = World::with_config(server, &["tight", "roomy"], |orgs| config_with(orgs, &plugins)).await;
    let a = world.put("tight/a.jpg", b"a").await;
    let b = world.put("roomy/b.jpg", b"b").await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&a, &b])).unwrap(),
    )
    .await;
    let tight = record(&report, "tight/a.jpg");
    assert_eq!(tight.outcome, Outcome::Failed, "{tight:?}");
    assert!(
        tight
            .reason
            .as_deref()
            .unwrap()
            .contains("used up its budget of 1000000 instructions"),
        "{tight:?}"
    );
    assert_eq!(record(&report, "roomy/b.jpg").outcome, Outcome::Copied);
}

/// 300 records in flight at once through one plugin, far more than the instance pool holds
/// (`PLUGIN_INSTANCES` 4 here; 128 by default, but two cores cannot keep 128 CPU-bound
/// decisions in flight, so the pool is shrunk to make the overlap certain): decisions wait
/// for a free instance instead of failing, so with `onError: skip` nothing is silently
/// dropped: all 300 are copied. Each decision spins for a while so decisions overlap.
async fn more_decisions_than_instances_all_copy(server: &'static Server) {
    let plugin = json!({"source": plugin_artifacts::SPIN, "onError": "skip", "timeoutMs": 10_000,
        "maxInstructions": 10_000_000_000u64, "settings": {"spin": 5_000_000}});
    let world = World::with_config(server, &["busy"], |orgs| config_with(orgs, &[("busy", plugin)])).await;
    let mut uploaded = Vec::new();
    for i in 0..300 {
        uploaded.push(world.put(&format!("busy/{i:03}.jpg"), b"x").await);
    }
    let mut settings = world.settings("jpg");
    settings.copy_concurrency = 300;
    settings.plugin_instances = 4;
    let event = parse_event(&s3_event(&uploaded.iter().collect::<Vec<_>>())).unwrap();
    let report = handle(&world.exporter(settings), event).await;
    let not_copied: Vec<_> = report
        .records
        .iter()
        .filter(|r| r.outcome != Outcome::Copied)
        .collect();
    assert!(
        not_copied.is_empty(),
        "{} not copied, e.g. {:?}",
        not_copied.len(),
        not_copied.first()
    );
    assert_eq!(world.keys(world.bucket_of("busy")).await.len(), 300);
}

/// A world whose org1 has the passthrough plugin in S3 (`export/plugins/{name}`, pinned by
/// sha256; the config's `retry`), and an exporter reaching the server through a proxy that
/// gives the plugin's first GET `fault`.
async fn passthrough_in_s3(
    server: &'static Server,
    name: &str,
    retry: u32,
    fault: Fault,
) -> (World, FaultProxy, Exporter) {
    let world = World::new(server, &["org1"]).await;
    let bytes = std::fs::read(plugin_artifacts::PASSTHROUGH).unwrap();
    world
        .put_config_object(&format!("export/plugins/{name}"), bytes)
        .await;
    let config = json!({"retry": retry, "customers": [{"org": "org1", "destinationBucket": world.bucket_of("org1"),
        "plugin": {"source": format!("plugins/{name}"), "sha256": sha256_hex(plugin_artifacts::PASSTHROUGH), "timeoutMs": 5000}}]});
    world.write_config(&config.to_string()).await;
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            fault,
            path_contains: Some(format!("plugins/{name}")),
            copies_only: false,
            method: None,
            times: Some(1),
        }],
    )
    .await;
    let exporter = Exporter::new(world.server.client_via(&proxy.endpoint), world.settings("jpg"));
    (world, proxy, exporter)
}

/// A cold start's warm-up (run by the Lambda loop beside its first poll) reads the
/// configuration and creates the plugin engine when an org has a plugin, but reads no
/// plugin: the invocation then reads the configuration no second time, and reads the
/// plugin of its record's org. Without a plugin in the configuration, no engine.
async fn a_warm_up_reads_the_config_and_creates_the_engine_before_the_first_event(server: &'static Server) {
    let config_gets = |proxy: &FaultProxy| {
        proxy
            .seen()
            .iter()
            .filter(|s| s.method == "GET" && s.path.contains("config.json"))
            .count()
    };
    let plugin_gets = |proxy: &FaultProxy| {
        proxy
            .seen()
            .iter()
            .filter(|s| s.method == "GET" && s.path.contains("plugins/"))
            .count()
    };
    // `retry: 1`: the plugin's first GET answers 503 and is tried again.
    let (world, proxy, exporter) = passthrough_in_s3(server, "warm.wasm", 1, Fault::SlowDown).await;
    let exporter = std::sync::Arc::new(exporter);
    exporter.clone().warm_up().await;
    assert_eq!(config_gets(&proxy), 1, "the warm-up read the configuration");
    assert!(
        exporter.plugin_engine_created(),
        "an org has a plugin: the engine is ready"
    );
    assert_eq!(plugin_gets(&proxy), 0, "the warm-up reads no plugin");
    let a = world.put("org1/a.jpg", b"a").await;
    let report = handle(&exporter, parse_event(&s3_event(&[&a])).unwrap()).await;
    assert_eq!(
        report.records[0].outcome,
        Outcome::Copied,
        "{:?}",
        report.records[0]
    );
    assert_eq!(
        config_gets(&proxy),
        1,
        "the invocation used the configuration read ahead"
    );
    assert!(plugin_gets(&proxy) >= 1, "the invocation read its org's plugin");

    let plain = World::new(server, &["org1"]).await;
    let exporter = std::sync::Arc::new(Exporter::new(server.client(), plain.settings("jpg")));
    exporter.clone().warm_up().await;
    assert!(
        !exporter.plugin_engine_created(),
        "no org has a plugin: no engine"
    );
}

/// A plugin in S3 whose first GET answers 503: with `retry: 0` that invocation's record
/// fails as retryable (naming the read), and the next invocation of the same process loads
/// the plugin again and copies; with `retry: 1` the GET is retried at once and the first
/// invocation copies.
async fn a_plugin_get_that_fails_once_is_tried_again(server: &'static Server) {
    for retry in [0, 1] {
        let (world, proxy, exporter) =
            passthrough_in_s3(server, "passthrough.wasm", retry, Fault::SlowDown).await;
        let a = world.put("org1/a.jpg", b"a").await;
        let first = handle(&exporter, parse_event(&s3_event(&[&a])).unwrap()).await;
        let r = &first.records[0];
        if retry == 0 {
            assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
            assert!(r.retryable, "a transient load failure is retryable: {r:?}");
            let reason = r.reason.as_deref().unwrap();
            assert!(
                reason.contains("could not be read") && reason.contains("SlowDown"),
                "{reason}"
            );
            // The next invocation comes after the reload backoff (5 ms here: the world's
            // RETRY_BASE_DELAY); waiting past it is not a timing assertion.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let b = world.put("org1/b.jpg", b"b").await;
            let second = handle(&exporter, parse_event(&s3_event(&[&b])).unwrap()).await;
            assert_eq!(
                second.records[0].outcome,
                Outcome::Copied,
                "{:?}",
                second.records[0]
            );
        } else {
            assert_eq!(r.outcome, Outcome::Copied, "retry {retry}: {r:?}");
        }
        let gets = proxy
            .seen()
            .iter()
            .filter(|s| s.method == "GET" && s.path.contains("plugins/passthrough.wasm"))
            .count();
        assert_eq!(gets, 2, "one faulted GET, one that loaded");
    }
}

/// Each org's records wait for their own plugin only: while org1's plugin GET is held at the
/// proxy, the records of org2 (no plugin) and org3 (its own plugin) are copied; org1's record
/// is copied once its GET goes on. Loading every org's plugin before any record moved would
/// leave org2 and org3 waiting, and the watch below would give up.
async fn a_plugin_that_is_slow_to_load_delays_only_its_own_org(server: &'static Server) {
    let world = World::new(server, &["org1", "org2", "org3"]).await;
    let bytes = std::fs::read(plugin_artifacts::PASSTHROUGH).unwrap();
    for key in ["export/plugins/held.wasm", "export/plugins/free.wasm"] {
        world.put_config_object(key, bytes.clone()).await;
    }
    let sha = sha256_hex(plugin_artifacts::PASSTHROUGH);
    let plugin = |source: &str| json!({"source": source, "sha256": sha, "timeoutMs": 5000});
    let config = json!({"retry": 0, "customers": [
        {"org": "org1", "destinationBucket": world.bucket_of("org1"), "plugin": plugin("plugins/held.wasm")},
        {"org": "org2", "destinationBucket": world.bucket_of("org2")},
        {"org": "org3", "destinationBucket": world.bucket_of("org3"), "plugin": plugin("plugins/free.wasm")},
    ]});
    world.write_config(&config.to_string()).await;
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            fault: Fault::Held,
            path_contains: Some("plugins/held.wasm".into()),
            copies_only: false,
            method: None,
            times: Some(1),
        }],
    )
    .await;
    let exporter = Exporter::new(world.server.client_via(&proxy.endpoint), world.settings("jpg"));
    let objects = [
        world.put("org1/a.jpg", b"a").await,
        world.put("org2/b.jpg", b"b").await,
        world.put("org3/c.jpg", b"c").await,
    ];
    let event = parse_event(&s3_event(&objects.iter().collect::<Vec<_>>())).unwrap();
    let watch = async {
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while proxy.copies_to("org2/b.jpg").is_empty() || proxy.copies_to("org3/c.jpg").is_empty() {
            assert!(
                std::time::Instant::now() < give_up,
                "org2's and org3's records waited for org1's plugin load"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(
            proxy.copies_to("org1/a.jpg").is_empty(),
            "org1's record was copied before its plugin was read"
        );
        proxy.release();
    };
    let (report, ()) = tokio::join!(handle(&exporter, event), watch);
    assert_eq!(report.totals.copied, 3, "{report:?}");
    assert_eq!(world.keys(world.bucket_of("org1")).await, ["org1/a.jpg"]);
}

/// The source's HEAD (for its storage class and checksum) is read while the org's plugin
/// loads, not after: with the plugin GET held at the proxy, the HEAD still reaches the
/// server; then the record is copied with that one HEAD (the copy sends none of its own).
async fn the_source_head_is_read_while_the_plugin_loads(server: &'static Server) {
    let (world, proxy, exporter) = passthrough_in_s3(server, "held.wasm", 0, Fault::Held).await;
    let object = world.put("org1/a.jpg", b"a").await;
    let event = parse_event(&s3_event(&[&object])).unwrap();
    let source_heads = || {
        proxy
            .seen()
            .into_iter()
            .filter(|s| s.method == "HEAD" && s.path.contains("org1/a.jpg"))
            .count()
    };
    let watch = async {
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while source_heads() == 0 {
            assert!(
                std::time::Instant::now() < give_up,
                "the source HEAD waited for the plugin load"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        proxy.release();
    };
    let (report, ()) = tokio::join!(handle(&exporter, event), watch);
    assert_eq!(report.totals.copied, 1, "{report:?}");
    assert_eq!(source_heads(), 1, "one HEAD of the source: {:?}", proxy.seen());
}

/// A `.cwasm` is native code: it loads only where the config says `precompiled: true`; as
/// an ordinary source it is refused with one clear line, and a `.wasm` declared
/// precompiled is refused too.
async fn a_cwasm_loads_only_when_declared_precompiled(server: &'static Server) {
    let dir = tempfile::tempdir().unwrap();
    let cwasm = dir.path().join("passthrough.cwasm");
    let (code, _, stderr) = run(binary()
        .args(["plugin", "compile", plugin_artifacts::PASSTHROUGH, "-o"])
        .arg(&cwasm));
    assert_eq!(code, Some(0), "{stderr}");
    let cwasm = cwasm.to_str().unwrap();
    let plugins = [
        (
            "declared",
            json!({"source": cwasm, "precompiled": true, "timeoutMs": 5000}),
        ),
        ("undeclared", json!({"source": cwasm, "timeoutMs": 5000})),
        (
            "wasmdeclared",
            json!({"source": plugin_artifacts::PASSTHROUGH, "precompiled": true, "timeoutMs": 5000}),
        ),
    ];
    let world = World::with_config(server, &["declared", "undeclared", "wasmdeclared"], |orgs| {
        config_with(orgs, &plugins)
    })
    .await;
    let a = world.put("declared/a.jpg", b"a").await;
    let b = world.put("undeclared/b.jpg", b"b").await;
    let c = world.put("wasmdeclared/c.jpg", b"c").await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&a, &b, &c])).unwrap(),
    )
    .await;
    let r = record(&report, "declared/a.jpg");
    assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    let r = record(&report, "undeclared/b.jpg");
    assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    let reason = r.reason.as_deref().unwrap();
    assert!(
        reason.contains("is a precompiled .cwasm (native code), refused as an ordinary source")
            && reason.contains("\"precompiled\": true")
            && !reason.contains('\n'),
        "{reason}"
    );
    let r = record(&report, "wasmdeclared/c.jpg");
    assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    assert!(
        r.reason
            .as_deref()
            .unwrap()
            .contains("is declared \"precompiled\": true but is not a .cwasm"),
        "{r:?}"
    );
}

/// A skip reason over 1 KiB (but within the answer cap) is cut to 1 KiB in the report.
async fn long_reasons_are_cut_to_1_kib(server: &'static Server) {
    let plugin =
        json!({"source": plugin_artifacts::HUGE_ANSWER, "timeoutMs": 5000, "settings": {"mode": "medium"}});
    let world = World::with_config(server, &["org1"], |orgs| config_with(orgs, &[("org1", plugin)])).await;
    let a = world.put("org1/a.jpg", b"a").await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&a])).unwrap(),
    )
    .await;
    let r = &report.records[0];
    assert_eq!(r.outcome, Outcome::Skipped, "{r:?}");
    let reason = r.reason.as_deref().unwrap();
    let (_, plugin_part) = reason.split_once(": ").unwrap();
    assert!(plugin_part.len() <= 1024, "{} bytes", plugin_part.len());
    assert!(plugin_part.ends_with("(8192 bytes, cut)"), "{plugin_part}");
}

on_each_server!(
    plugins_that_wait_are_not_waited_for,
    the_instruction_budget_decides,
    more_decisions_than_instances_all_copy,
    a_plugin_get_that_fails_once_is_tried_again,
    a_warm_up_reads_the_config_and_creates_the_engine_before_the_first_event,
    a_cwasm_loads_only_when_declared_precompiled,
    long_reasons_are_cut_to_1_kib,
    a_plugin_that_is_slow_to_load_delays_only_its_own_org,
    the_source_head_is_read_while_the_plugin_loads,
);

/// Runs `plugin test` with the huge-answer fixture in `mode`; returns exit code, stdout and
/// the process's own peak RSS in bytes (started by a small parent: `wait4` on a child of
/// this test process would fold this process's own peak into the figure).
fn huge_answer_run(mode: &str) -> (Option<i32>, String, u64) {
    use std::io::Read;
    let plain = binary();
    let mut command = command_with_python_parent(plain.get_program());
    command
        .env_clear()
        .envs(plain.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .args([
            "plugin",
            "test",
            plugin_artifacts::HUGE_ANSWER,
            "--org",
            "o",
            "--key",
            "o/a.jpg",
        ])
        .args([
            "--max-memory-mib",
            "1024",
            "--timeout-ms",
            "10000",
            "--max-instructions",
            "10000000000",
        ])
        .arg("--settings")
        .arg(json!({"mode": mode}).to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = SmallParent::spawn(&mut command).unwrap();
    let mut stdout = String::new();
    child.stdout().unwrap().read_to_string(&mut stdout).unwrap();
    let reaped = child.reap();
    let code = libc::WIFEXITED(reaped.status).then(|| libc::WEXITSTATUS(reaped.status));
    (code, stdout, (reaped.peak_rss_mib * 1024.0 * 1024.0) as u64)
}

/// 2,000,000 targets, a 100 MiB skip reason and a 100 MiB error: each is refused before the
/// host lifts it. The host's peak RSS with the huge answer stays within a few MiB of the
/// same guest answering small (the guest's own memory is the same; its canonical-ABI copy
/// of the list, ~32 MiB, is the guest's): lifting the answer would add 100 MiB or more.
#[test]
fn huge_answers_are_refused_before_they_grow_the_host() {
    for (mode, slack_mib) in [("targets", 48u64), ("string", 16), ("error", 16)] {
        let (code, stdout, big) = huge_answer_run(mode);
        assert_eq!(code, Some(1), "{mode}: {stdout}");
        assert!(
            stdout.starts_with("error: answered more than 64 KiB"),
            "{mode}: {}",
            &stdout[..stdout.len().min(300)]
        );
        assert!(
            stdout.len() < 2048,
            "{mode}: the answer is bounded: {} bytes",
            stdout.len()
        );
        let (code, stdout, small) = huge_answer_run(&format!("{mode} small"));
        assert_eq!(code, Some(0), "{mode} small: {stdout}");
        eprintln!(
            "huge answer {mode}: host peak RSS {} MiB, same guest answering small {} MiB",
            big >> 20,
            small >> 20
        );
        assert!(
            big < small + (slack_mib << 20),
            "{mode}: peak RSS {} MiB vs {} MiB answering small",
            big >> 20,
            small >> 20
        );
    }
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

/// The compile cache never lets a `.cwasm` that one org declares `precompiled` serve another
/// org that names the same bytes without declaring it: that org is refused whatever order
/// the loads finish in (here the declared one is loaded first, which used to fill the cache).
#[tokio::test]
async fn a_cached_cwasm_is_still_refused_where_undeclared() {
    use artifact_export::config::{DEFAULT_MAX_INSTRUCTIONS, OnError, PluginSource, PluginSpec};
    use artifact_export::policy::Runtime;

    let runtime = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cwasm = dir.path().join("passthrough.cwasm");
    let wasm = std::fs::read(plugin_artifacts::PASSTHROUGH).unwrap();
    std::fs::write(&cwasm, runtime.engine().precompile_component(&wasm).unwrap()).unwrap();
    let spec = |precompiled| PluginSpec {
        source: PluginSource::File(cwasm.clone()),
        sha256: None,
        settings: "{}".into(),
        timeout: std::time::Duration::from_secs(5),
        max_memory_bytes: 16 << 20,
        max_instructions: DEFAULT_MAX_INSTRUCTIONS,
        precompiled,
        on_error: OnError::Fail,
    };
    runtime.load(None, &spec(true)).await.expect("declared: loads");
    let refused = runtime
        .load(None, &spec(false))
        .await
        .err()
        .expect("undeclared: refused although the same bytes are in the cache");
    assert!(
        refused
            .to_string()
            .contains("is a precompiled .cwasm (native code), refused as an ordinary source"),
        "{refused}"
    );
}
