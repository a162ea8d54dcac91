use std::path::Path;
use std::time::Duration;

use artifact_export::env::{ConfigLocation, LocalMode, Settings};
use artifact_export::event::parse_event;
use artifact_export::exporter::Exporter;
use artifact_export::handler::handle;
use artifact_export::report::Outcome;
use artifact_export::suffix::SuffixSet;
use serde_json::json;

use crate::support::events::s3_event;
use crate::support::paths::repo;
use crate::support::servers::garage;
use crate::support::world::{Uploaded, World, bytes};

/// Every file under `dir`, relative, sorted (hidden temp files included).
fn files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn local_settings(
    config: &Path,
    dest: &Path,
    source: Option<&Path>,
    destination_key: Option<&str>,
) -> Settings {
    Settings {
        suffixes: SuffixSet::parse_list("jpg,pdf").unwrap(),
        config_location: ConfigLocation::File(config.to_path_buf()),
        config_refresh: Duration::from_secs(60),
        multipart_threshold: artifact_export::s3::limits::COPY_OBJECT_LIMIT,
        multipart_part_size: artifact_export::s3::limits::MIN_PART_SIZE,
        copy_concurrency: 4,
        part_concurrency: 2,
        retry_base_delay: Duration::from_millis(1),
        local: Some(LocalMode {
            dest_dir: dest.to_path_buf(),
            source_dir: source.map(Path::to_path_buf),
            destination_key: destination_key.map(str::to_string),
        }),
        timeouts: artifact_export::s3::client::Timeouts::default(),
        deadline_margin: Duration::from_secs(5),
        source_bucket: None,
        plugin_instances: 128,
        sts_endpoint: None,
        expected_bucket_owner: None,
    }
}

fn object_event(bucket: &str, keys: &[(&str, usize)]) -> serde_json::Value {
    let uploaded: Vec<Uploaded> = keys
        .iter()
        .map(|(key, size)| Uploaded {
            bucket: bucket.into(),
            key: key.to_string(),
            size: *size as u64,
            etag: String::new(),
        })
        .collect();
    let mut event = s3_event(&uploaded.iter().collect::<Vec<_>>());
    for record in event["Records"].as_array_mut().unwrap() {
        record["s3"]["object"].as_object_mut().unwrap().remove("eTag");
    }
    event
}

#[tokio::test]
async fn a_local_source_folder_needs_no_s3_at_all() {
    let source = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    for (key, seed) in [
        ("org1/a b/photo.jpg", 1),
        ("org2/doc.pdf", 2),
        ("org1/notes.txt", 3),
    ] {
        let path = source.path().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes(3000, seed)).unwrap();
    }
    let settings = local_settings(
        &repo("config/sample.json"),
        dest.path(),
        Some(source.path()),
        None,
    );
    // A client that points nowhere: local mode with LOCAL_SOURCE must not need it.
    let client = artifact_export::s3::client::for_endpoint("http://127.0.0.1:9", "us-east-1", "x", "y");
    let exporter = Exporter::new(client, settings);
    let event = object_event(
        "shared-source",
        &[
            ("org1/a b/photo.jpg", 3000),
            ("org2/doc.pdf", 3000),
            ("org1/notes.txt", 3000),
            ("org1/../../escape.jpg", 1),
            ("org1/missing.jpg", 1),
        ],
    );
    let report = handle(&exporter, parse_event(&event).unwrap()).await;
    let outcomes: Vec<_> = report.records.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Copied,
            Outcome::Copied,
            Outcome::Skipped,
            Outcome::Failed,
            Outcome::Superseded
        ],
        "{report:#?}"
    );
    let refused = report.records[3].reason.as_deref().unwrap();
    assert!(
        refused.contains("has a '..' segment") && refused.contains("nothing is written outside"),
        "{refused}"
    );
    assert_eq!(
        files(dest.path()),
        ["org1-export/org1/a b/photo.jpg", "org2-export/org2/doc.pdf"]
    );
    assert_eq!(
        std::fs::read(dest.path().join("org1-export/org1/a b/photo.jpg")).unwrap(),
        bytes(3000, 1)
    );
    assert!(
        files(dest.path().parent().unwrap())
            .iter()
            .all(|f| !f.contains("escape.jpg"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_s3_source_streams_into_the_folder() {
    let server = garage();
    let world = World::new(server, &["org1"]).await;
    let dest = tempfile::tempdir().unwrap();
    let config = dest.path().join("config.json");
    std::fs::write(
        &config,
        json!({"customers": [{"org": "org1", "destinationBucket": world.bucket_of("org1")}], "retry": 0})
            .to_string(),
    )
    .unwrap();
    let out = dest.path().join("out");
    let big = world.put("org1/big.pdf", &bytes(3 << 20, 9)).await;
    let old = world.put("org1/changed.jpg", b"old").await;
    world.put("org1/changed.jpg", b"new").await;
    let exporter = Exporter::new(world.client.clone(), local_settings(&config, &out, None, None));
    let report = handle(&exporter, parse_event(&s3_event(&[&big, &old])).unwrap()).await;
    assert_eq!(
        report.records[0].outcome,
        Outcome::Copied,
        "{:?}",
        report.records[0]
    );
    assert_eq!(report.records[0].bytes, Some(3 << 20));
    assert_eq!(
        report.records[1].outcome,
        Outcome::Superseded,
        "stale ETag: {:?}",
        report.records[1]
    );
    let bucket = world.bucket_of("org1");
    assert_eq!(files(&out), [format!("{bucket}/org1/big.pdf")]);
    assert_eq!(
        std::fs::read(out.join(bucket).join("org1/big.pdf")).unwrap(),
        bytes(3 << 20, 9)
    );

    // DESTINATION_KEY replaces the file name.
    let renamed = Exporter::new(
        world.client.clone(),
        local_settings(&config, &out, None, Some("latest.pdf")),
    );
    let report = handle(&renamed, parse_event(&s3_event(&[&big])).unwrap()).await;
    assert_eq!(report.records[0].destination_key.as_deref(), Some("latest.pdf"));
    assert!(out.join(bucket).join("latest.pdf").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_download_leaves_no_file() {
    use crate::support::proxy::{Fault, FaultProxy, Rule};
    let server = garage();
    let world = World::new(server, &["org1"]).await;
    let dest = tempfile::tempdir().unwrap();
    let config = dest.path().join("config.json");
    std::fs::write(
        &config,
        json!({"customers": [{"org": "org1", "destinationBucket": world.bucket_of("org1")}], "retry": 1})
            .to_string(),
    )
    .unwrap();
    let a = world.put("org1/a.jpg", b"a").await;
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            fault: Fault::Drop,
            path_contains: Some("a.jpg".into()),
            copies_only: false,
            method: None,
            times: None,
        }],
    )
    .await;
    let out = dest.path().join("out");
    let exporter = Exporter::new(
        server.client_via(&proxy.endpoint),
        local_settings(&config, &out, None, None),
    );
    let report = handle(&exporter, parse_event(&s3_event(&[&a])).unwrap()).await;
    assert_eq!(
        (report.records[0].outcome, report.records[0].attempts),
        (Outcome::Failed, 2)
    );
    assert!(files(&out).is_empty(), "{:?}", files(&out));
}

#[test]
fn invoke_follows_env_local_and_a_killed_copy_leaves_no_partial_file() {
    let source = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let size = 256 << 20;
    let big = source.path().join("org1/huge.jpg");
    std::fs::create_dir_all(big.parent().unwrap()).unwrap();
    std::fs::File::create(&big).unwrap().set_len(size).unwrap();
    let event = dest.path().join("event.json");
    std::fs::write(
        &event,
        object_event("shared-source", &[("org1/huge.jpg", size as usize)]).to_string(),
    )
    .unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_artifact-export"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ENV", "local")
        .env("SUFFIX_TO_COPY", "jpg")
        .env("LOCAL_CONFIGURATION", repo("config/sample.json"))
        .env("LOCAL_SOURCE", source.path())
        .env("LOCAL_DEST", dest.path().join("out"))
        .args(["invoke", "--event"])
        .arg(&event)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let final_path = dest.path().join("out/org1-export/org1/huge.jpg");

    // Killed mid-copy: the final name either does not exist or holds the whole file.
    let mut child = cmd.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(150));
    child.kill().unwrap();
    child.wait().unwrap();
    match std::fs::metadata(&final_path) {
        Ok(meta) => assert_eq!(meta.len(), size, "a partial file under the final name"),
        Err(_) => eprintln!("killed mid-copy: no file under the final name"),
    }

    // A full run replaces whatever is there with the complete file and exits 0.
    let status = cmd.status().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(std::fs::metadata(&final_path).unwrap().len(), size);
    let leftovers: Vec<_> = files(&dest.path().join("out"))
        .into_iter()
        .filter(|f| !f.ends_with("huge.jpg"))
        .collect();
    assert!(leftovers.iter().all(|f| f.contains(".partial-")), "{leftovers:?}");
}

/// A symbolic link inside `LOCAL_DEST` (a folder on the way to the file) or inside
/// `LOCAL_SOURCE` (a folder or the file itself) carries no read or write outside its folder:
/// the record fails and nothing is written elsewhere.
#[tokio::test]
async fn symbolic_links_never_carry_a_read_or_write_outside_the_folders() {
    let source = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("secret.jpg"), b"not the org's").unwrap();
    std::fs::create_dir_all(elsewhere.path().join("dir")).unwrap();
    std::fs::write(elsewhere.path().join("dir/inside.jpg"), b"not the org's either").unwrap();
    for (key, body) in [("org1/sub/a.jpg", &b"a"[..]), ("org1/plain.jpg", b"p")] {
        let path = source.path().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    // Destination: org1/sub leads elsewhere. Source: a file link and a folder link.
    std::fs::create_dir_all(dest.path().join("org1-export/org1")).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), dest.path().join("org1-export/org1/sub")).unwrap();
    std::os::unix::fs::symlink(
        elsewhere.path().join("secret.jpg"),
        source.path().join("org1/linked.jpg"),
    )
    .unwrap();
    std::os::unix::fs::symlink(elsewhere.path().join("dir"), source.path().join("org1/dir")).unwrap();
    let settings = local_settings(
        &repo("config/sample.json"),
        dest.path(),
        Some(source.path()),
        None,
    );
    let client = artifact_export::s3::client::for_endpoint("http://127.0.0.1:9", "us-east-1", "x", "y");
    let exporter = Exporter::new(client, settings);
    let event = object_event(
        "shared-source",
        &[
            ("org1/sub/a.jpg", 1),
            ("org1/linked.jpg", 1),
            ("org1/dir/inside.jpg", 1),
            ("org1/plain.jpg", 1),
        ],
    );
    let report = handle(&exporter, parse_event(&event).unwrap()).await;
    let outcomes: Vec<_> = report.records.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::Failed, Outcome::Failed, Outcome::Failed, Outcome::Copied],
        "{report:#?}"
    );
    for refused in &report.records[..3] {
        let reason = refused.reason.as_deref().unwrap();
        assert!(reason.contains("is a symbolic link"), "{reason}");
    }
    // Nothing was written through the link, and no linked file was copied in.
    let mut outside = files(elsewhere.path());
    outside.sort();
    assert_eq!(outside, ["dir/inside.jpg", "secret.jpg"]);
    // (Without the link, which `files` would follow into `elsewhere`.)
    std::fs::remove_file(dest.path().join("org1-export/org1/sub")).unwrap();
    assert_eq!(files(dest.path()), ["org1-export/org1/plain.jpg"]);
}

/// `DESTINATION_KEY` names one file: an event with several objects would overwrite its own
/// copies and report each as copied, so every object record fails and nothing is written.
#[tokio::test]
async fn destination_key_with_several_records_is_refused() {
    let source = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    for key in ["org1/a.jpg", "org1/b.jpg"] {
        let path = source.path().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, key).unwrap();
    }
    let settings = local_settings(
        &repo("config/sample.json"),
        dest.path(),
        Some(source.path()),
        Some("latest.jpg"),
    );
    let client = artifact_export::s3::client::for_endpoint("http://127.0.0.1:9", "us-east-1", "x", "y");
    let exporter = Exporter::new(client, settings);
    let two = object_event("shared-source", &[("org1/a.jpg", 10), ("org1/b.jpg", 10)]);
    let report = handle(&exporter, parse_event(&two).unwrap()).await;
    for record in &report.records {
        assert_eq!(record.outcome, Outcome::Failed, "{record:?}");
        assert_eq!(record.error_code.as_deref(), Some("OneFileManyRecords"));
        assert!(
            record
                .reason
                .as_deref()
                .unwrap()
                .contains("DESTINATION_KEY=\"latest.jpg\""),
            "{record:?}"
        );
    }
    assert!(files(dest.path()).is_empty());
    // One record: DESTINATION_KEY does what it says.
    let one = object_event("shared-source", &[("org1/b.jpg", 10)]);
    let report = handle(&exporter, parse_event(&one).unwrap()).await;
    assert_eq!(report.records[0].outcome, Outcome::Copied, "{report:#?}");
    assert_eq!(files(dest.path()), ["org1-export/latest.jpg"]);
}

/// A download that stalls (the source answers 200, sends the start of the body, then
/// nothing) is dropped by its timeout, or by the invocation's cut-off: either way its
/// temporary file goes with it, and the record is failed and retryable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_download_leaves_no_partial_file() {
    use crate::support::proxy::{Fault, FaultProxy, Rule};
    let server = garage();
    let world = World::new(server, &["org1"]).await;
    let dest = tempfile::tempdir().unwrap();
    let config = dest.path().join("config.json");
    std::fs::write(
        &config,
        json!({"customers": [{"org": "org1", "destinationBucket": world.bucket_of("org1")}], "retry": 1})
            .to_string(),
    )
    .unwrap();
    let stalled = world.put("org1/stalled.jpg", &bytes(4096, 3)).await;
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            method: None,
            fault: Fault::Stall,
            path_contains: Some("stalled.jpg".into()),
            copies_only: false,
            times: None,
        }],
    )
    .await;
    let out = dest.path().join("out");

    // Timed out: each of the two attempts is dropped by the download's own timeout.
    let mut settings = local_settings(&config, &out, None, None);
    settings.timeouts.copy = Duration::from_millis(500);
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), settings);
    let report = handle(&exporter, parse_event(&s3_event(&[&stalled])).unwrap()).await;
    let record = &report.records[0];
    assert_eq!(
        (record.outcome, record.attempts, record.retryable),
        (Outcome::Failed, 2, true),
        "{record:?}"
    );
    assert_eq!(record.error_code.as_deref(), Some("Timeout"), "{record:?}");
    assert!(
        proxy
            .seen()
            .iter()
            .filter(|s| s.fault == Some(Fault::Stall))
            .count()
            == 2,
        "both attempts reached the stalled source: {:?}",
        proxy.seen()
    );
    assert_eq!(files(&out), Vec::<String>::new(), "nothing under LOCAL_DEST");

    // Cut off: the invocation's deadline drops the download in the middle.
    let mut settings = local_settings(&config, &out, None, None);
    settings.deadline_margin = Duration::from_secs(3);
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), settings);
    let deadline = std::time::Instant::now() + Duration::from_secs(4);
    let report = artifact_export::handler::handle_until(
        &exporter,
        parse_event(&s3_event(&[&stalled])).unwrap(),
        Some(deadline),
    )
    .await;
    let record = &report.records[0];
    assert_eq!(
        (record.outcome, record.error_code.as_deref(), record.retryable),
        (Outcome::Failed, Some("Deadline"), true),
        "{record:?}"
    );
    assert_eq!(files(&out), Vec::<String>::new(), "nothing under LOCAL_DEST");
}

/// S3 keys are strings, not paths: `org1//a.jpg` and `org1/./a.jpg` are other objects than
/// `org1/a.jpg`, but a folder would name all three one file. Such keys are refused
/// (`UnsafeLocalKey`), not normalised: nothing is written.
#[tokio::test]
async fn keys_with_empty_or_dot_segments_are_refused() {
    let source = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let path = source.path().join("org1/a.jpg");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"a").unwrap();
    let settings = local_settings(
        &repo("config/sample.json"),
        dest.path(),
        Some(source.path()),
        None,
    );
    let client = artifact_export::s3::client::for_endpoint("http://127.0.0.1:9", "us-east-1", "x", "y");
    let exporter = Exporter::new(client, settings);
    let event = object_event("shared-source", &[("org1//a.jpg", 1), ("org1/./a.jpg", 1)]);
    let report = handle(&exporter, parse_event(&event).unwrap()).await;
    for record in &report.records {
        assert_eq!(record.outcome, Outcome::Failed, "{record:?}");
        assert_eq!(record.error_code.as_deref(), Some("UnsafeLocalKey"), "{record:?}");
        assert_eq!(
            record.reason_code.map(|c| c.as_str()),
            Some("UnsafeLocalKey"),
            "{record:?}"
        );
        assert!(!record.retryable, "{record:?}");
    }
    assert_eq!(files(dest.path()), Vec::<String>::new());
    // The plain key is copied as before.
    let plain = object_event("shared-source", &[("org1/a.jpg", 1)]);
    let report = handle(&exporter, parse_event(&plain).unwrap()).await;
    assert_eq!(report.records[0].outcome, Outcome::Copied, "{report:#?}");
    assert_eq!(files(dest.path()), ["org1-export/org1/a.jpg"]);
}

/// `DESTINATION_KEY` counts targets, not records: one record whose plugin fans out to two
/// targets would write both to the one file and report each copied. Every object record
/// fails (`OneFileManyRecords`) and nothing is written; with one target it copies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destination_key_with_a_plugin_fanning_out_to_two_targets_is_refused() {
    let source = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let path = source.path().join("org1/a.jpg");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, b"a").unwrap();
    let client = artifact_export::s3::client::for_endpoint("http://127.0.0.1:9", "us-east-1", "x", "y");
    let exporter_with = |targets: u32| {
        let config = dest.path().join(format!("config-{targets}.json"));
        std::fs::write(
            &config,
            json!({"customers": [{"org": "org1", "destinationBucket": "org1-export",
                "plugin": {"source": plugin_artifacts::MANY_TARGETS, "timeoutMs": 10_000,
                           "settings": {"targets": targets}}}], "retry": 0})
            .to_string(),
        )
        .unwrap();
        let out = dest.path().join(format!("out-{targets}"));
        let settings = local_settings(&config, &out, Some(source.path()), Some("latest.jpg"));
        (Exporter::new(client.clone(), settings), out)
    };

    let (two, out) = exporter_with(2);
    let one = object_event("shared-source", &[("org1/a.jpg", 10)]);
    let report = handle(&two, parse_event(&one).unwrap()).await;
    let record = &report.records[0];
    assert_eq!(record.outcome, Outcome::Failed, "{record:?}");
    assert_eq!(
        record.error_code.as_deref(),
        Some("OneFileManyRecords"),
        "{record:?}"
    );
    let reason = record.reason.as_deref().unwrap();
    assert!(
        reason.contains("DESTINATION_KEY=\"latest.jpg\"") && reason.contains("2 targets"),
        "{reason}"
    );
    assert_eq!(files(&out), Vec::<String>::new());

    // One target in the whole invocation: a record no org owns has none, so it does not
    // count, and the one target is written.
    let (single, out) = exporter_with(1);
    let mixed = object_event("shared-source", &[("org1/a.jpg", 10), ("nobody/b.jpg", 10)]);
    let report = handle(&single, parse_event(&mixed).unwrap()).await;
    let outcomes: Vec<_> = report.records.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [Outcome::Copied, Outcome::Skipped], "{report:#?}");
    assert_eq!(files(&out), ["org1-export/latest.jpg"]);
}
