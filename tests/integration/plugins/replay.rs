//! `plugin diff --reports`: a real invocation (the CLI's `invoke`) against the server, its
//! report replayed through two plugins. Each routed object record is asked again with the
//! facts and proposed targets the report recorded; records without an org are left out; a
//! record that lacks what a replay needs is bad input naming it.

use std::path::Path;

use serde_json::{Value, json};

use super::{config_with, run};
use crate::support::events::s3_event;
use crate::support::paths::binary;
use crate::support::servers::Server;
use crate::support::world::World;

/// glob-filter's settings for the plugin in force and for the candidate: the candidate
/// also copies `*.png` (and `*.pdf`, for the Lambda test's suffixes).
pub(crate) const OLD: &str = r#"{"include":["**/*.jpg"]}"#;
pub(crate) const NEW: &str = r#"{"include":["**/*.jpg","**/*.png","**/*.pdf"]}"#;

/// `plugin diff GLOB_FILTER GLOB_FILTER --reports FILE` with `settings` for NEW, and `extra`.
pub(crate) fn diff_reports(file: &Path, new_settings: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    run(binary()
        .args([
            "plugin",
            "diff",
            plugin_artifacts::GLOB_FILTER,
            plugin_artifacts::GLOB_FILTER,
            "--settings",
            OLD,
            "--new-settings",
            new_settings,
            "--reports",
        ])
        .arg(file)
        .args(extra))
}

async fn an_invoke_report_replays_through_plugin_diff(server: &'static Server) {
    let plugin = json!({"source": plugin_artifacts::GLOB_FILTER, "timeoutMs": 5000, "settings": {"include": ["**/*.jpg"]}});
    let world = World::with_config(server, &["org2", "org3"], |orgs| {
        config_with(orgs, &[("org2", plugin)])
    })
    .await;
    let uploads = [
        world.put("org2/replay/a.jpg", b"jpg").await,
        world.put("org2/replay/b.png", b"png").await,
        world.put("org2/replay/c.txt", b"txt").await,
        world.put("org3/replay/d.png", b"no plugin").await,
        world.put("nobody/replay/e.jpg", b"no org").await,
    ];
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, s3_event(&uploads.iter().collect::<Vec<_>>()).to_string()).unwrap();
    let (code, stdout, stderr) = run(binary()
        .envs(world.function_env("jpg,png"))
        .args(["invoke", "--event"])
        .arg(&event));
    assert_eq!(code, Some(0), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let outcomes: Vec<&str> = report["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["copied", "skipped", "skipped", "copied", "skipped"],
        "{report}"
    );
    // What the plugin was given is in the report.
    let a = &report["records"][0];
    assert_eq!(
        a["object"],
        json!({"size": 3, "etag": uploads[0].etag, "eventTime": "2026-11-25T12:00:00.000Z",
               "eventName": "ObjectCreated:Put"}),
        "{a}"
    );
    assert_eq!(
        a["proposed"],
        json!([{"bucket": world.bucket_of("org2"), "key": "org2/replay/a.jpg"}])
    );
    // Plain matching proposed nothing for the txt (not a suffix), and its plugin was asked.
    assert_eq!(report["records"][2]["proposed"], json!([]), "{report}");
    assert!(report["records"][4].get("proposed").is_none(), "no org: {report}");
    let file = dir.path().join("report.json");
    std::fs::write(&file, &stdout).unwrap();

    // The candidate also copies *.png: org2's and org3's png differ, nothing else.
    let (code, stdout, stderr) = diff_reports(&file, NEW, &[]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("org2/replay/b.png (Records[1]) (org org2)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("org3/replay/d.png (Records[3]) (org org3)"),
        "{stdout}"
    );
    assert!(!stdout.contains("a.jpg") && !stdout.contains("c.txt"), "{stdout}");
    assert!(
        stdout.contains("1 record left out (1 without a key or an org)"),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("2 of 4 differ"), "{stdout}");
    // --json, one org: the other orgs' records are left out too.
    let (code, stdout, stderr) = diff_reports(&file, NEW, &["--org", "org2", "--json"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (&doc["compared"], &doc["differing"], &doc["leftOut"]),
        (&json!(3), &json!(1), &json!(2)),
        "{doc}"
    );
    assert_eq!(doc["differences"][0]["key"], "org2/replay/b.png");
    assert!(doc["differences"][0]["old"]["skip"].is_string(), "{doc}");
    assert_eq!(
        doc["differences"][0]["new"],
        json!({"copy": [{"bucket": world.bucket_of("org2"), "key": "org2/replay/b.png"}]})
    );
    // The same plugin and settings: none differ.
    let (code, stdout, stderr) = diff_reports(&file, OLD, &[]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.trim_end().ends_with("0 of 4 differ"), "{stdout}");

    // A record without its object facts (a report from before they were written): exit 2,
    // naming the record and the field.
    let mut old = report.clone();
    old["records"][1].as_object_mut().unwrap().remove("object");
    let stale = dir.path().join("stale.json");
    std::fs::write(&stale, old.to_string()).unwrap();
    let (code, stdout, stderr) = diff_reports(&stale, NEW, &[]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(r#"records[1] (Records[1], key "org2/replay/b.png"): no "object""#),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
}

/// A 0.2 plugin's replay is given what the live decision was: the HEAD's facts and the
/// answer of its `tags` call, as the report recorded them. tiering (images to STANDARD_IA,
/// and skipping what is tagged `export=no`) against tiering without rules: only the image
/// differs, which it can only when its content type is replayed; the tags answer is
/// replayed too (the same skip, or the same error on a server without tagging), so the
/// replay of the plugin against itself differs nowhere.
async fn a_0_2_report_replays_with_its_head_facts_and_tags(server: &'static Server) {
    let settings = json!({"rules": [{"contentType": "image/*", "storageClass": "STANDARD_IA"}],
                          "skipTagged": {"key": "export", "value": "no"}});
    let plugin = json!({"source": plugin_artifacts::TIERING, "timeoutMs": 5000, "settings": settings});
    let world = World::with_config(server, &["org2"], |orgs| config_with(orgs, &[("org2", plugin)])).await;
    let put = |key: &'static str, content_type: &'static str| {
        world
            .client
            .put_object()
            .key(key)
            .content_type(content_type)
            .body(aws_sdk_s3::primitives::ByteStream::from(b"x".to_vec()))
    };
    let uploads = [
        world
            .put_object(put("org2/a.png", "image/png"), "org2/a.png")
            .await,
        world
            .put_object(put("org2/b.txt", "text/plain"), "org2/b.txt")
            .await,
    ];
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, s3_event(&uploads.iter().collect::<Vec<_>>()).to_string()).unwrap();
    let (_, stdout, stderr) = run(binary()
        .envs(world.function_env("png,txt"))
        .args(["invoke", "--event"])
        .arg(&event));
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"));
    assert_eq!(
        report["records"][0]["object"]["head"]["contentType"], "image/png",
        "{report}"
    );
    let file = dir.path().join("report.json");
    std::fs::write(&file, &stdout).unwrap();
    let diff = |new_settings: &str| {
        run(binary()
            .args([
                "plugin",
                "diff",
                plugin_artifacts::TIERING,
                plugin_artifacts::TIERING,
                "--settings",
            ])
            .arg(settings.to_string())
            .args(["--new-settings", new_settings, "--reports"])
            .arg(&file)
            .arg("--json"))
    };
    let (code, stdout, stderr) = diff(&settings.to_string());
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    // NEW keeps skipTagged and drops the rule.
    let (code, stdout, stderr) = diff(r#"{"rules": [], "skipTagged": {"key": "export", "value": "no"}}"#);
    if !server.caps.tagging {
        // Both ask for tags and get the recorded error: no decision to compare differs.
        eprintln!(
            "SKIP on {}: no object tagging; the recorded tags error is replayed to both",
            server.name
        );
        assert_eq!(code, Some(0), "{stdout}{stderr}");
        return;
    }
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let out: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(out["differing"], 1, "{out}");
    assert_eq!(out["differences"][0]["key"], "org2/a.png", "{out}");
    assert_eq!(
        out["differences"][0]["old"]["copy"][0]["storageClass"], "STANDARD_IA",
        "{out}"
    );
}

on_each_server!(
    an_invoke_report_replays_through_plugin_diff,
    a_0_2_report_replays_with_its_head_facts_and_tags,
);
