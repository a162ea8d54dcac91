//! Inputs have size limits: the config (1 MiB), plugins (64 MiB) and events (6 MiB). What is
//! exactly at the limit is accepted; one byte more is a clear one-line error naming the
//! limit and the object or file, and fails only what depends on it.

use artifact_export::bounded::{MAX_CONFIG_BYTES, MAX_EVENT_BYTES, MAX_PLUGIN_BYTES};
use artifact_export::event::parse_event;
use artifact_export::handler::handle;
use artifact_export::report::Outcome;
use serde_json::json;

use crate::support::events::{fixture_path, s3_event};
use crate::support::paths::binary;
use crate::support::servers::{Server, garage};
use crate::support::world::World;

/// `text` padded with spaces (still the same JSON) to exactly `len` bytes.
fn padded(text: &str, len: u64) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.resize(usize::try_from(len).unwrap(), b' ');
    bytes
}

async fn an_oversized_config_object_is_refused_naming_the_limit(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let config =
        json!({"customers": [{"org": "org1", "destinationBucket": world.bucket_of("org1")}]}).to_string();
    let a = world.put("org1/a.jpg", b"a").await;

    // Exactly the limit: loads, and the record is copied.
    world
        .write_config(std::str::from_utf8(&padded(&config, MAX_CONFIG_BYTES)).unwrap())
        .await;
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

    // One byte more: every record fails with the reason, on a cold start.
    world
        .write_config(std::str::from_utf8(&padded(&config, MAX_CONFIG_BYTES + 1)).unwrap())
        .await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&a])).unwrap(),
    )
    .await;
    assert_eq!(report.records[0].outcome, Outcome::Failed);
    let reason = report.records[0].reason.clone().unwrap_or_default();
    let expected = format!(
        "config s3://{}/{}: larger than the 1 MiB limit",
        world.config_bucket, world.config_key
    );
    assert!(reason.contains(&expected), "{reason}");

    // `validate` (config from CONFIGURATION_BUCKET/KEY) says the same on one line, exit 2.
    let out = binary()
        .envs(world.function_env("jpg"))
        .arg("validate")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&expected), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

on_each_server!(an_oversized_config_object_is_refused_naming_the_limit);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_plugin_fails_only_its_org_naming_the_limit() {
    let server = garage();
    let world = World::new(server, &["org1", "org2", "org3"]).await;
    // In S3: larger than the limit (zeros; never a component, but the size is checked first).
    let too_big = vec![0u8; usize::try_from(MAX_PLUGIN_BYTES + 1).unwrap()];
    world.put_config_object("export/plugins/huge.wasm", too_big).await;
    // A local file: sparse, so it costs no disk.
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("huge.wasm");
    std::fs::File::create(&local)
        .unwrap()
        .set_len(MAX_PLUGIN_BYTES + 1)
        .unwrap();
    let config = json!({"customers": [
        {"org": "org1", "destinationBucket": world.bucket_of("org1")},
        {"org": "org2", "destinationBucket": world.bucket_of("org2"),
         "plugin": {"source": "plugins/huge.wasm", "sha256": "00".repeat(32)}},
        {"org": "org3", "destinationBucket": world.bucket_of("org3"),
         "plugin": {"source": local.to_str().unwrap()}}
    ], "retry": 0});
    world.write_config(&config.to_string()).await;
    let a = world.put("org1/a.jpg", b"a").await;
    let b = world.put("org2/b.jpg", b"b").await;
    let c = world.put("org3/c.jpg", b"c").await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&a, &b, &c])).unwrap(),
    )
    .await;
    assert_eq!(report.records[0].outcome, Outcome::Copied);
    for (r, source) in [
        (
            &report.records[1],
            format!("s3://{}/export/plugins/huge.wasm", world.config_bucket),
        ),
        (&report.records[2], local.display().to_string()),
    ] {
        assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
        let reason = r.reason.as_deref().unwrap_or_default();
        assert!(
            reason.contains(&format!("plugin {source}: larger than the 64 MiB limit")),
            "{reason}"
        );
    }
}

#[test]
fn an_oversized_event_is_refused_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let test_event = std::fs::read_to_string(fixture_path("s3-test-event.json")).unwrap();
    let invoke = |path: &std::path::Path| {
        binary()
            .env("SUFFIX_TO_COPY", "jpg")
            .args(["invoke", "--config"])
            .arg(crate::support::paths::repo("config/sample.json"))
            .arg("--event")
            .arg(path)
            .output()
            .unwrap()
    };
    // Exactly the limit: an event like any other.
    let at_limit = dir.path().join("at-limit.json");
    std::fs::write(&at_limit, padded(&test_event, MAX_EVENT_BYTES)).unwrap();
    let out = invoke(&at_limit);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // One byte more (a sparse file: the reader stops after limit + 1 bytes anyway).
    let huge = dir.path().join("huge.json");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(MAX_EVENT_BYTES + 1)
        .unwrap();
    let out = invoke(&huge);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("event {}: larger than the 6 MiB limit", huge.display())),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn an_oversized_event_on_stdin_is_refused_too() {
    use std::io::Write;
    let mut child = binary()
        .env("SUFFIX_TO_COPY", "jpg")
        .args(["invoke", "--event", "-", "--config"])
        .arg(crate::support::paths::repo("config/sample.json"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // The binary stops reading after limit + 1 bytes and exits: a broken pipe here is
        // expected, so the write's result is not checked.
        let chunk = vec![b' '; 64 * 1024];
        let mut left = MAX_EVENT_BYTES + 1024 * 1024;
        while left > 0 {
            if stdin.write_all(&chunk).is_err() {
                break;
            }
            left = left.saturating_sub(chunk.len() as u64);
        }
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("event stdin: larger than the 6 MiB limit"),
        "{stderr}"
    );
}

/// `validate --config FILE` and `plan --config FILE` read a local config under the same
/// 1 MiB limit as one in S3.
#[test]
fn an_oversized_config_file_is_refused_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("big.json");
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, "org1/a.jpg\n").unwrap();
    // Valid JSON, padded with whitespace past the limit.
    let mut text = r#"{"customers":[{"org":"org1","destinationBucket":"org1-export"}]}"#.to_string();
    text.push_str(&" ".repeat(1024 * 1024));
    std::fs::write(&config, text).unwrap();
    for args in [
        vec!["validate", "--config"],
        vec![
            "plan",
            "--suffixes",
            "jpg",
            "--keys",
            keys.to_str().unwrap(),
            "--config",
        ],
    ] {
        let out = binary().args(&args).arg(&config).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "config {}: could not be read: larger than the 1 MiB limit",
                config.display()
            )),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}
