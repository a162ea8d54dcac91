use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use artifact_export::event::parse_event;
use artifact_export::handler::handle;
use artifact_export::report::Outcome;
use aws_sdk_s3::Client;
use aws_sdk_s3::types::{ChecksumAlgorithm, StorageClass};
use futures::StreamExt;
use serde_json::json;

use crate::support::paths::binary;
use crate::support::proxy::{Fault, FaultProxy, Rule, Seen};
use crate::support::servers::{Server, garage};
use crate::support::world::{World, bytes};
use crate::write_options::{head, implements_sse, keeps_storage_class, moto_kms_key, put_with};

/// The source objects a backfill test starts from: what should land where.
struct Seeded {
    /// org → keys that should be copied (suffix selected).
    selected: BTreeMap<String, BTreeSet<String>>,
    /// Keys that must not be copied (other suffix, or no org).
    unselected: BTreeSet<String>,
}

impl Seeded {
    fn selected_count(&self) -> usize {
        self.selected.values().map(BTreeSet::len).sum()
    }
    fn total(&self) -> usize {
        self.selected_count() + self.unselected.len()
    }
}

/// `n` objects split over org1 and org2 (every 10th a `.txt` the suffixes don't select)
/// plus `strays` keys no org owns. Keys have spaces, `+`, and non-ASCII letters.
async fn seed(world: &World, n: usize, strays: usize) -> Seeded {
    let mut selected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut unselected = BTreeSet::new();
    let mut keys = Vec::new();
    for i in 0..n {
        let org = if i % 2 == 0 { "org1" } else { "org2" };
        let ext = if i % 10 == 9 {
            "txt"
        } else if i % 3 == 0 {
            "pdf"
        } else {
            "jpg"
        };
        let key = format!("{org}/batch {}/file+{i:03} é.{ext}", i / 50);
        if ext == "txt" {
            unselected.insert(key.clone());
        } else {
            selected.entry(org.to_string()).or_default().insert(key.clone());
        }
        keys.push(key);
    }
    for i in 0..strays {
        let key = format!("nobody/{i}.jpg");
        unselected.insert(key.clone());
        keys.push(key);
    }
    futures::stream::iter(keys)
        .map(|key| async move {
            let body = format!("body of {key}");
            world.put(&key, body.as_bytes()).await;
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    Seeded { selected, unselected }
}

/// Every key of `bucket` with its ETag, over as many pages as it takes.
async fn listing(client: &Client, bucket: &str) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    let mut token = None;
    loop {
        let out = client
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token)
            .send()
            .await
            .expect("list");
        for o in out.contents() {
            all.insert(
                o.key().unwrap().to_string(),
                o.e_tag().unwrap_or_default().to_string(),
            );
        }
        token = out.next_continuation_token().map(str::to_string);
        if token.is_none() {
            return all;
        }
    }
}

/// `artifact-export backfill --bucket <the world's source>` against `endpoint`.
fn backfill_cmd(world: &World, endpoint: &str) -> Command {
    backfill_of(world, endpoint, &world.source)
}

fn backfill_of(world: &World, endpoint: &str, bucket: &str) -> Command {
    let mut cmd = binary();
    cmd.envs(world.function_env("jpg,pdf"))
        .env("AWS_ENDPOINT_URL", endpoint)
        .args(["backfill", "--bucket", bucket, "--progress-interval", "0"]);
    cmd
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn of(out: Output) -> Run {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The summary line's count before `label` (e.g. "copied", "already in place").
    fn count(&self, label: &str) -> u64 {
        let summary = self
            .stderr
            .lines()
            .find(|l| l.starts_with("backfill of "))
            .unwrap_or_else(|| panic!("no summary line in:\n{}", self.stderr));
        let at = summary
            .find(&format!(" {label}"))
            .unwrap_or_else(|| panic!("no {label:?} in {summary}"));
        let digits: String = summary[..at]
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.chars().rev().collect::<String>().parse().unwrap()
    }
}

fn run(cmd: &mut Command) -> Run {
    Run::of(cmd.output().expect("run artifact-export"))
}

/// Waits for `child` without blocking the runtime (the fault proxy runs on it).
async fn wait_for(mut child: Child) -> Run {
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "backfill did not end within 120 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Run::of(child.wait_with_output().unwrap())
}

/// Polls `bucket` until it holds at least `n` objects, while `child` runs.
async fn wait_until_holds(child: &mut Child, client: &Client, bucket: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while listing(client, bucket).await.len() < n {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            panic!("backfill ended ({status}) before {bucket} held {n} objects:\n{stderr}");
        }
        assert!(Instant::now() < deadline, "{bucket} never reached {n} objects");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The number of objects in `bucket` once it has stopped changing for half a second.
async fn settled_count(client: &Client, bucket: &str) -> usize {
    let mut last = listing(client, bucket).await.len();
    let mut stable_since = Instant::now();
    while stable_since.elapsed() < Duration::from_millis(500) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = listing(client, bucket).await.len();
        if now != last {
            (last, stable_since) = (now, Instant::now());
        }
    }
    last
}

/// Each selected key is in its org's bucket with the source's ETag; nothing else is.
async fn assert_exported(world: &World, seeded: &Seeded) {
    let source = listing(&world.client, &world.source).await;
    for (org, keys) in &seeded.selected {
        let landed = listing(&world.client, world.bucket_of(org)).await;
        let expected: BTreeMap<String, String> =
            keys.iter().map(|k| (k.clone(), source[k].clone())).collect();
        assert_eq!(landed, expected, "destination of {org}");
    }
}

async fn a_rerun_copies_nothing_and_a_change_copies_one(server: &'static Server) {
    let world = World::new(server, &["org1", "org2"]).await;
    let seeded = seed(&world, 300, 10).await;
    let first = run(backfill_cmd(&world, &server.endpoint).args(["--page-size", "37", "--concurrency", "8"]));
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_eq!(first.count("listed"), seeded.total() as u64, "{}", first.stderr);
    assert_eq!(first.count("copied"), seeded.selected_count() as u64);
    assert_eq!(first.count("skipped"), seeded.unselected.len() as u64);
    assert_eq!(first.count("failed"), 0);
    assert_exported(&world, &seeded).await;

    let again = run(backfill_cmd(&world, &server.endpoint).args(["--page-size", "37"]));
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(again.count("copied"), 0, "{}", again.stderr);
    assert_eq!(again.count("already in place"), seeded.selected_count() as u64);

    let changed = seeded.selected["org2"].iter().next().unwrap().clone();
    world.put(&changed, b"a newer version").await;
    let third = run(&mut backfill_cmd(&world, &server.endpoint));
    assert_eq!(third.count("copied"), 1, "{}", third.stderr);
    assert_eq!(
        third.count("already in place"),
        seeded.selected_count() as u64 - 1
    );
    assert_eq!(
        world.get(world.bucket_of("org2"), &changed).await.as_deref(),
        Some(&b"a newer version"[..])
    );

    let forced = run(backfill_cmd(&world, &server.endpoint).args(["--force", "--org", "org1"]));
    assert_eq!(forced.code, Some(0), "{}", forced.stderr);
    assert_eq!(
        forced.count("copied"),
        seeded.selected["org1"].len() as u64,
        "{}",
        forced.stderr
    );
    assert_eq!(forced.count("already in place"), 0);
    assert_eq!(forced.count("listed"), 150, "--org org1 lists only org1/");
}

async fn dry_run_and_manifest_copy_nothing(server: &'static Server) {
    let world = World::new(server, &["org1", "org2"]).await;
    let seeded = seed(&world, 40, 2).await;
    // org1 is exported already; only org2's objects remain to copy.
    let org1 = run(backfill_cmd(&world, &server.endpoint).args(["--org", "org1"]));
    assert_eq!(org1.code, Some(0), "{}", org1.stderr);
    let dest2 = world.bucket_of("org2").to_string();

    let dry = run(backfill_cmd(&world, &server.endpoint).arg("--dry-run"));
    assert_eq!(dry.code, Some(0), "{}", dry.stderr);
    let lines: BTreeSet<&str> = dry.stdout.lines().collect();
    let expected: BTreeSet<String> = seeded.selected["org2"]
        .iter()
        .map(|k| {
            format!(
                "would copy s3://{}/{k} -> s3://{dest2}/{k} (org org2)",
                world.source
            )
        })
        .collect();
    assert_eq!(lines, expected.iter().map(String::as_str).collect());
    assert_eq!(dry.count("to copy"), expected.len() as u64);
    assert_eq!(
        dry.count("already in place"),
        seeded.selected["org1"].len() as u64
    );
    assert!(
        listing(&world.client, &dest2).await.is_empty(),
        "a dry run copied"
    );

    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("manifest.csv");
    let made = run(backfill_cmd(&world, &server.endpoint)
        .arg("--manifest")
        .arg(&manifest));
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    assert!(
        made.stdout.is_empty(),
        "manifest mode prints no plan lines: {}",
        made.stdout
    );
    assert!(
        listing(&world.client, &dest2).await.is_empty(),
        "--manifest copied"
    );
    let text = std::fs::read_to_string(&manifest).unwrap();
    let rows: Vec<(&str, &str)> = text
        .lines()
        .map(|l| l.split_once(',').expect("bucket,key"))
        .collect();
    assert_eq!(rows.len(), expected.len(), "{text}");
    assert!(rows.iter().all(|(bucket, _)| *bucket == world.source));
    assert!(
        rows.iter()
            .all(|(_, key)| !key.contains(' ') && !key.contains('+') && !key.contains('é')),
        "keys are URL-encoded: {text}"
    );
    assert!(!dir.path().join("manifest.csv.partial").exists());

    // The manifest drives a Batch Operations job: its rows, as tasks, export org2.
    let tasks: Vec<_> = rows
        .iter()
        .enumerate()
        .map(|(i, (bucket, key))| json!({"taskId": format!("t{i}"), "s3Key": key, "s3VersionId": null, "s3Bucket": bucket}))
        .collect();
    let job = json!({"invocationSchemaVersion": "2.0", "invocationId": "inv", "job": {"id": "job"}, "tasks": tasks});
    let report = handle(
        &world.exporter(world.settings("jpg,pdf")),
        parse_event(&job).unwrap(),
    )
    .await;
    assert!(
        report.records.iter().all(|r| r.outcome == Outcome::Copied),
        "{:?}",
        report.records
    );
    assert_exported(&world, &seeded).await;
}

async fn an_interrupted_backfill_resumes_where_it_stopped(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let mut seeded = seed(&world, 0, 0).await;
    let keys: Vec<String> = (0..60).map(|i| format!("org1/slow/{i:02}.jpg")).collect();
    for key in &keys {
        world.put(key, key.as_bytes()).await;
    }
    seeded
        .selected
        .insert("org1".into(), keys.iter().cloned().collect());
    let dest = world.bucket_of("org1").to_string();
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule::slow_copies(Duration::from_millis(150))],
    )
    .await;
    let slow = |world: &World| {
        let mut cmd = backfill_cmd(world, &proxy.endpoint);
        cmd.args([
            "--concurrency",
            "2",
            "--page-size",
            "7",
            "--progress-interval",
            "0.3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        cmd
    };

    // Ctrl-C: stops starting objects, lets the ones in flight finish, says so, exits 130.
    let mut child = slow(&world).spawn().unwrap();
    wait_until_holds(&mut child, &world.client, &dest, 10).await;
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let interrupted = wait_for(child).await;
    assert_eq!(interrupted.code, Some(130), "{}", interrupted.stderr);
    assert!(
        interrupted.stderr.contains("interrupted:"),
        "{}",
        interrupted.stderr
    );
    assert!(
        interrupted
            .stderr
            .lines()
            .any(|l| l.starts_with("progress: ") && l.contains("objects/s")),
        "periodic progress lines: {}",
        interrupted.stderr
    );
    let after_sigint = listing(&world.client, &dest).await.len();
    assert_eq!(
        interrupted.count("copied"),
        after_sigint as u64,
        "{}",
        interrupted.stderr
    );
    assert!(
        after_sigint < keys.len(),
        "the interrupt came too late to test anything"
    );

    // SIGKILL: no chance to finish anything; copies are atomic, so nothing is half there.
    let mut child = slow(&world).spawn().unwrap();
    wait_until_holds(&mut child, &world.client, &dest, after_sigint + 5).await;
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGKILL) }, 0);
    let killed = wait_for(child).await;
    assert_eq!(killed.code, None, "killed by a signal");
    // Copy requests already on their way still complete at the server.
    let after_kill = settled_count(&world.client, &dest).await;
    assert!(after_kill < keys.len(), "the kill came too late to test anything");

    let rest = run(&mut backfill_cmd(&world, &server.endpoint));
    assert_eq!(rest.code, Some(0), "{}", rest.stderr);
    assert_eq!(
        rest.count("already in place"),
        after_kill as u64,
        "{}",
        rest.stderr
    );
    assert_eq!(rest.count("copied"), (keys.len() - after_kill) as u64);
    assert_exported(&world, &seeded).await;
    for key in &keys {
        assert_eq!(
            world.get(&dest, key).await.as_deref(),
            Some(key.as_bytes()),
            "{key}"
        );
    }
}

async fn a_failing_org_fails_only_its_objects(server: &'static Server) {
    let world = World::with_config(server, &["org1"], |orgs| {
        json!({"customers": [
            {"org": "org1", "destinationBucket": orgs[0].1},
            {"org": "org2", "destinationBucket": "absent-bucket-zz-backfill"}
        ], "retry": 0})
        .to_string()
    })
    .await;
    let mut seeded = seed(&world, 20, 0).await;
    let org2 = seeded.selected.remove("org2").unwrap();
    let out = run(&mut backfill_cmd(&world, &server.endpoint));
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(out.count("failed"), org2.len() as u64, "{}", out.stderr);
    assert_eq!(out.count("copied"), seeded.selected["org1"].len() as u64);
    for key in &org2 {
        let line = format!(
            "failed: s3://{}/{key} (org org2): s3://absent-bucket-zz-backfill/{key}: ",
            world.source
        );
        assert!(out.stderr.contains(&line), "missing {line:?} in\n{}", out.stderr);
    }
    assert_exported(&world, &seeded).await;
}

async fn part_wise_copies_count_as_in_place(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let big = vec![7u8; 6 * 1024 * 1024];
    world.put("org1/big.pdf", &big).await;
    let multipart = |world: &World| {
        let mut cmd = backfill_cmd(world, &server.endpoint);
        cmd.env("MULTIPART_COPY_THRESHOLD", (5 * 1024 * 1024).to_string())
            .env("MULTIPART_PART_SIZE", (5 * 1024 * 1024).to_string());
        cmd
    };
    let first = run(&mut multipart(&world));
    assert_eq!(first.count("copied"), 1, "{}", first.stderr);
    let dest = listing(&world.client, world.bucket_of("org1")).await;
    assert!(dest["org1/big.pdf"].contains('-'), "a multipart ETag: {dest:?}");
    let again = run(&mut multipart(&world));
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(again.count("already in place"), 1, "{}", again.stderr);
    assert_eq!(again.count("copied"), 0);
}

/// A part-wise object at the destination, newer than the source and of the same size, but
/// with other bytes: the size-and-time rule would call it in place; the full-object
/// checksums (both sides have CRC32) tell it apart, and the rerun after the copy finds the
/// checksums equal.
async fn a_part_wise_copy_of_other_bytes_is_not_in_place(server: &'static Server) {
    use aws_sdk_s3::types::{
        ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart,
    };
    const MIB: u64 = 1024 * 1024;
    let world = World::new(server, &["org1"]).await;
    let source = vec![7u8; 6 * MIB as usize];
    world.put("org1/big.pdf", &source).await;
    // Not selected by the backfill's suffixes: only the decoy's bytes go to the destination.
    world.put("org1/decoy.txt", &vec![8u8; 6 * MIB as usize]).await;
    let dest = world.bucket_of("org1").to_string();
    let decoy = world
        .client
        .head_object()
        .bucket(&world.source)
        .key("org1/decoy.txt")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    let Some(decoy_crc) = decoy.checksum_crc32().map(str::to_string) else {
        eprintln!("SKIP on {}: the server keeps no CRC32 of the source", server.name);
        return;
    };
    let upload = world
        .client
        .create_multipart_upload()
        .bucket(&dest)
        .key("org1/big.pdf")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .checksum_type(ChecksumType::FullObject)
        .send()
        .await
        .unwrap();
    let id = upload.upload_id().unwrap();
    let mut parts = Vec::new();
    for (n, range) in [
        (1, format!("bytes=0-{}", 5 * MIB - 1)),
        (2, format!("bytes={}-{}", 5 * MIB, 6 * MIB - 1)),
    ] {
        let out = world
            .client
            .upload_part_copy()
            .bucket(&dest)
            .key("org1/big.pdf")
            .upload_id(id)
            .part_number(n)
            .copy_source(format!("{}/org1/decoy.txt", world.source))
            .copy_source_range(range)
            .send()
            .await
            .unwrap();
        let result = out.copy_part_result().unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .set_e_tag(result.e_tag().map(str::to_string))
                .set_checksum_crc32(result.checksum_crc32().map(str::to_string))
                .build(),
        );
    }
    world
        .client
        .complete_multipart_upload()
        .bucket(&dest)
        .key("org1/big.pdf")
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .checksum_type(ChecksumType::FullObject)
        .checksum_crc32(&decoy_crc)
        .send()
        .await
        .unwrap();
    assert!(listing(&world.client, &dest).await["org1/big.pdf"].contains('-'));
    let multipart = |world: &World| {
        let mut cmd = backfill_cmd(world, &server.endpoint);
        cmd.env("MULTIPART_COPY_THRESHOLD", (5 * MIB).to_string())
            .env("MULTIPART_PART_SIZE", (5 * MIB).to_string());
        cmd
    };
    let first = run(&mut multipart(&world));
    assert_eq!(
        first.count("copied"),
        1,
        "other bytes are not in place: {}",
        first.stderr
    );
    assert!(world.get(&dest, "org1/big.pdf").await == Some(source));
    let again = run(&mut multipart(&world));
    assert_eq!(again.count("already in place"), 1, "{}", again.stderr);
    assert_eq!(again.count("copied"), 0);
}

/// Ctrl-C while a multipart copy is in flight aborts its upload: no incomplete upload is
/// left to cost storage, and the object is reported failed (`Interrupted`) for the rerun.
async fn an_interrupt_aborts_multipart_uploads_in_flight(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    world.put("org1/big.jpg", &vec![3u8; 6 * 1024 * 1024]).await;
    let dest = world.bucket_of("org1").to_string();
    // Every part copy is held far longer than the test waits.
    let proxy = FaultProxy::start(&server.endpoint, vec![Rule::slow_copies(Duration::from_secs(60))]).await;
    let mut cmd = backfill_cmd(&world, &proxy.endpoint);
    cmd.env("MULTIPART_COPY_THRESHOLD", (5 * 1024 * 1024).to_string())
        .env("MULTIPART_PART_SIZE", (5 * 1024 * 1024).to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !proxy.seen().iter().any(|s| s.copy && s.path.contains("uploadId")) {
        assert!(
            Instant::now() < deadline,
            "no part copy started: {:?}",
            proxy.seen()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let interrupted = wait_for(child).await;
    assert_eq!(interrupted.code, Some(130), "{}", interrupted.stderr);
    assert!(
        interrupted
            .stderr
            .lines()
            .any(|l| l.starts_with("failed: ") && l.contains("big.jpg") && l.contains("Interrupted")),
        "{}",
        interrupted.stderr
    );
    let uploads = world
        .client
        .list_multipart_uploads()
        .bucket(&dest)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "{:?}", uploads.uploads());
    assert!(listing(&world.client, &dest).await.is_empty());
}

/// Runs `cmd` (pointed at a fault proxy) without blocking the runtime the proxy runs on.
async fn run_via_proxy(cmd: &mut Command) -> Run {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    wait_for(cmd.spawn().expect("run artifact-export")).await
}

/// What one run sent through the proxy: HEADs, and listings of `bucket`.
struct Requests {
    heads: Vec<Seen>,
    listings_of: BTreeMap<String, usize>,
}

fn requests_since(proxy: &FaultProxy, from: usize, buckets: &[&str]) -> Requests {
    let seen = proxy.seen()[from..].to_vec();
    let listings_of = buckets
        .iter()
        .map(|b| {
            let listing = format!("/{b}/?");
            let n = seen
                .iter()
                .filter(|s| {
                    s.method == "GET" && s.path.starts_with(&listing) && s.path.contains("list-type=2")
                })
                .count();
            (b.to_string(), n)
        })
        .collect();
    // HEADs of the destinations: the in-place checks (a copy's HEAD of its source, for
    // the source's storage class and checksum, is not one).
    let in_destinations = |s: &Seen| buckets.iter().any(|b| s.path.starts_with(&format!("/{b}/")));
    Requests {
        heads: seen
            .into_iter()
            .filter(|s| s.method == "HEAD" && in_destinations(s))
            .collect(),
        listings_of,
    }
}

/// A first fill keeps each source's storage class and checksum without a HEAD of the
/// source: the listing gives the class, and the server carries the checksum over on
/// `CopyObject`.
async fn a_backfill_keeps_class_and_checksum_without_heading_the_source(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let sources = [
        (
            "org1/ia.pdf",
            Some(StorageClass::StandardIa),
            ChecksumAlgorithm::Sha256,
        ),
        ("org1/std.jpg", None, ChecksumAlgorithm::Crc32),
    ];
    for (i, (key, class, checksum)) in sources.iter().enumerate() {
        put_with(
            &world,
            key,
            bytes(3000, i as u64),
            class.clone(),
            checksum.clone(),
        )
        .await;
    }
    let proxy = FaultProxy::start(&server.endpoint, vec![]).await;
    let run = run_via_proxy(&mut backfill_cmd(&world, &proxy.endpoint)).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.count("copied"), 2, "{}", run.stderr);
    let source_heads: Vec<Seen> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "HEAD" && s.path.starts_with(&format!("/{}/", world.source)))
        .collect();
    assert!(source_heads.is_empty(), "no HEAD of the source: {source_heads:?}");
    let dest = world.bucket_of("org1");
    for (key, _, _) in &sources {
        let (source, copy) = (
            head(&world, &world.source, key).await,
            head(&world, dest, key).await,
        );
        assert!(
            source.checksum_sha256().is_some() || source.checksum_crc32().is_some(),
            "{key}: the source has a checksum"
        );
        assert_eq!(
            (copy.checksum_sha256(), copy.checksum_crc32()),
            (source.checksum_sha256(), source.checksum_crc32()),
            "{key}: the copy keeps the source's checksum"
        );
    }
    if !keeps_storage_class(server) {
        eprintln!(
            "SKIP the class half on {}: Garage keeps no storage class (it lists every object STANDARD)",
            server.name
        );
        return;
    }
    assert_eq!(
        head(&world, dest, "org1/ia.pdf").await.storage_class(),
        Some(&StorageClass::StandardIa)
    );
    assert_eq!(head(&world, dest, "org1/std.jpg").await.storage_class(), None);
}

/// "Already in place" comes from listing the destination, not from a HEAD per object: a
/// first fill into empty buckets, a rerun and a rerun after a change send no HEAD, keys with
/// spaces, `+` and non-ASCII letters match, and `--force` lists no destination at all.
async fn in_place_is_answered_by_listing_the_destination(server: &'static Server) {
    let world = World::new(server, &["org1", "org2"]).await;
    let seeded = seed(&world, 120, 4).await;
    let dests = [world.bucket_of("org1"), world.bucket_of("org2")];
    let proxy = FaultProxy::start(&server.endpoint, vec![]).await;
    let backfill = |args: &[&str]| {
        let mut cmd = backfill_cmd(&world, &proxy.endpoint);
        cmd.args(["--page-size", "17"]).args(args);
        cmd
    };

    let first = run_via_proxy(&mut backfill(&[])).await;
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_eq!(
        first.count("copied"),
        seeded.selected_count() as u64,
        "{}",
        first.stderr
    );
    let sent = requests_since(&proxy, 0, &dests);
    assert!(
        sent.heads.is_empty(),
        "a first fill sends no HEAD: {:?}",
        sent.heads
    );
    for dest in dests {
        assert!(
            sent.listings_of[dest] >= 1,
            "{dest} is listed: {:?}",
            sent.listings_of
        );
    }
    assert_exported(&world, &seeded).await;

    let mark = proxy.seen().len();
    let again = run_via_proxy(&mut backfill(&[])).await;
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(again.count("copied"), 0, "{}", again.stderr);
    assert_eq!(again.count("already in place"), seeded.selected_count() as u64);
    let sent = requests_since(&proxy, mark, &dests);
    assert!(sent.heads.is_empty(), "a rerun sends no HEAD: {:?}", sent.heads);
    // 17 keys per page: every page of each destination is read.
    for org in ["org1", "org2"] {
        let dest = world.bucket_of(org);
        let pages = seeded.selected[org].len().div_ceil(17);
        assert!(sent.listings_of[dest] >= pages, "{dest}: {:?}", sent.listings_of);
    }

    // A changed object (its key has a space, `+` and `é`) is copied again, the rest not.
    let changed = seeded.selected["org1"].iter().nth(7).unwrap().clone();
    assert!(changed.contains(' ') && changed.contains('+') && changed.contains('é'));
    world.put(&changed, b"a newer version").await;
    let mark = proxy.seen().len();
    let third = run_via_proxy(&mut backfill(&[])).await;
    assert_eq!(third.count("copied"), 1, "{}", third.stderr);
    assert_eq!(
        third.count("already in place"),
        seeded.selected_count() as u64 - 1
    );
    assert!(requests_since(&proxy, mark, &dests).heads.is_empty());
    assert_eq!(
        world.get(world.bucket_of("org1"), &changed).await.as_deref(),
        Some(&b"a newer version"[..])
    );

    let mark = proxy.seen().len();
    let forced = run_via_proxy(&mut backfill(&["--force"])).await;
    assert_eq!(
        forced.count("copied"),
        seeded.selected_count() as u64,
        "{}",
        forced.stderr
    );
    let sent = requests_since(&proxy, mark, &dests);
    assert!(sent.heads.is_empty(), "{:?}", sent.heads);
    assert!(
        sent.listings_of.values().all(|n| *n == 0),
        "--force checks nothing: {:?}",
        sent.listings_of
    );
}

/// When an org's destination cannot be listed, its objects are checked one by one (HEAD)
/// and still found in place; the other org keeps its listing and sends no HEAD.
async fn a_failed_destination_listing_falls_back_to_head(server: &'static Server) {
    let world = World::new(server, &["org1", "org2"]).await;
    let seeded = seed(&world, 40, 0).await;
    let first = run(&mut backfill_cmd(&world, &server.endpoint));
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let (dest1, dest2) = (world.bucket_of("org1"), world.bucket_of("org2"));
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            fault: Fault::InternalError,
            path_contains: Some(format!("/{dest2}/?list-type=2")),
            copies_only: false,
            method: None,
            times: None,
        }],
    )
    .await;
    let again = run_via_proxy(&mut backfill_cmd(&world, &proxy.endpoint)).await;
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(again.count("copied"), 0, "{}", again.stderr);
    assert_eq!(again.count("already in place"), seeded.selected_count() as u64);
    let sent = requests_since(&proxy, 0, &[dest1, dest2]);
    assert!(sent.listings_of[dest2] >= 1, "{:?}", sent.listings_of);
    let heads_of = |dest: &str| {
        sent.heads
            .iter()
            .filter(|s| s.path.starts_with(&format!("/{dest}/")))
            .count()
    };
    assert_eq!(heads_of(dest2), seeded.selected["org2"].len(), "{:?}", sent.heads);
    assert_eq!(heads_of(dest1), 0, "org1 is unaffected: {:?}", sent.heads);
}

/// Uploads `parts` to `bucket/key` as one multipart upload; returns its ETag (`…-N`).
async fn upload_in_parts(client: &Client, bucket: &str, key: &str, parts: &[Vec<u8>]) -> String {
    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let upload = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("create multipart upload");
    let id = upload.upload_id().unwrap();
    let mut done = Vec::new();
    for (i, body) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let out = client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .expect("upload part");
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .set_e_tag(out.e_tag().map(str::to_string))
                .build(),
        );
    }
    let out = client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done)).build())
        .send()
        .await
        .expect("complete multipart upload");
    out.e_tag().unwrap().trim_matches('"').to_string()
}

/// The rows of the manifest a `--manifest` run writes.
fn manifest_rows(world: &World, endpoint: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("manifest.csv");
    let made = run(backfill_cmd(world, endpoint).arg("--manifest").arg(&manifest));
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    std::fs::read_to_string(&manifest)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A source uploaded in two parts (ETag `…-2`) but small enough for one `CopyObject`: the
/// copy gets a single-part ETag (on S3 and moto), so the ETags never match. A rerun still
/// finds it in place (by checksum, or by size and time) instead of copying it on every run,
/// and a manifest does not list it.
async fn a_multipart_upload_copied_whole_is_in_place_on_a_rerun(server: &'static Server) {
    const MIB: usize = 1024 * 1024;
    let world = World::new(server, &["org1"]).await;
    let etag = upload_in_parts(
        &world.client,
        &world.source,
        "org1/parts.pdf",
        &[bytes(5 * MIB, 1), bytes(1000, 2)],
    )
    .await;
    assert!(etag.ends_with("-2"), "a multipart ETag: {etag}");
    world.put("org1/whole.pdf", &bytes(2000, 3)).await;
    let dest = world.bucket_of("org1").to_string();

    let first = run(&mut backfill_cmd(&world, &server.endpoint));
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_eq!(first.count("copied"), 2, "{}", first.stderr);
    let copied = listing(&world.client, &dest).await;
    eprintln!(
        "{}: source ETag {etag}, the copy's {}",
        server.name, copied["org1/parts.pdf"]
    );

    let again = run(&mut backfill_cmd(&world, &server.endpoint));
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(again.count("copied"), 0, "{}", again.stderr);
    assert_eq!(again.count("already in place"), 2, "{}", again.stderr);
    let rows = manifest_rows(&world, &server.endpoint);
    assert!(rows.is_empty(), "nothing to copy: {rows:?}");

    // A newer version of the source is still copied again.
    world.put("org1/parts.pdf", b"a newer version").await;
    let third = run(&mut backfill_cmd(&world, &server.endpoint));
    assert_eq!(third.count("copied"), 1, "{}", third.stderr);
    assert_eq!(
        world.get(&dest, "org1/parts.pdf").await.as_deref(),
        Some(&b"a newer version"[..])
    );
}

/// An org whose copies are written with SSE-KMS: S3 gives such objects ETags that are not
/// the MD5 of their bytes, so a copy's ETag never equals its source's. Its rerun copies
/// nothing. moto encrypts with a real KMS key but keeps MD5 ETags, so the fault proxy
/// answers for the destination bucket with non-MD5 ETags, as S3 does.
async fn a_kms_org_is_in_place_on_a_rerun(server: &'static Server) {
    if !implements_sse(server) {
        eprintln!(
            "SKIP on {}: Garage has no KMS (it ignores the SSE headers, its copies keep MD5 ETags)",
            server.name
        );
        return;
    }
    let key_id = moto_kms_key(server);
    let world = World::with_config(server, &["org1"], |orgs| {
        json!({"customers": [{
            "org": "org1",
            "destinationBucket": orgs[0].1,
            "encryption": {"type": "aws:kms", "kmsKeyId": key_id}
        }], "retry": 1})
        .to_string()
    })
    .await;
    let mut sources = BTreeMap::new();
    for (i, key) in ["org1/a.pdf", "org1/b.jpg", "org1/c d+é.pdf"]
        .into_iter()
        .enumerate()
    {
        sources.insert(key, world.put(key, &bytes(3000 + i, i as u64)).await.etag);
    }
    let dest = world.bucket_of("org1").to_string();
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            method: None,
            fault: Fault::NotMd5Etags,
            path_contains: Some(format!("/{dest}")),
            copies_only: false,
            times: None,
        }],
    )
    .await;
    let first = run_via_proxy(&mut backfill_cmd(&world, &proxy.endpoint)).await;
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_eq!(first.count("copied"), 3, "{}", first.stderr);
    let via_proxy = server.client_via(&proxy.endpoint);
    for (key, etag) in &sources {
        let copy = head(&world, &dest, key).await;
        assert_eq!(
            copy.server_side_encryption(),
            Some(&aws_sdk_s3::types::ServerSideEncryption::AwsKms)
        );
        let seen = via_proxy
            .head_object()
            .bucket(&dest)
            .key(*key)
            .send()
            .await
            .unwrap();
        assert_ne!(
            seen.e_tag().map(|e| e.trim_matches('"')),
            Some(etag.as_str()),
            "{key}"
        );
    }

    let mark = proxy.seen().len();
    let again = run_via_proxy(&mut backfill_cmd(&world, &proxy.endpoint)).await;
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(again.count("copied"), 0, "{}", again.stderr);
    assert_eq!(again.count("already in place"), 3, "{}", again.stderr);
    // A listing shows no encryption: one HEAD of each copy, and at most one of its source
    // (when the copy has a checksum to compare).
    let sent = requests_since(&proxy, mark, &[&dest, &world.source]);
    let heads_of = |bucket: &str| {
        let prefix = format!("/{bucket}/");
        sent.heads.iter().filter(|s| s.path.starts_with(&prefix)).count()
    };
    assert_eq!(heads_of(&dest), 3, "{:?}", sent.heads);
    assert!(heads_of(&world.source) <= 3, "{:?}", sent.heads);
    eprintln!(
        "{}: {} HEADs of the sources",
        server.name,
        heads_of(&world.source)
    );
}

/// Keys holding `\r` and U+0001 (not `\n`: moto's server cannot store one). In a
/// listing's XML, `\r` may come back as `\n`, and U+0001 is no XML 1.0 character at all
/// (the SDK refused the whole page). The listings ask for URL-encoded keys, so such a key
/// is copied under its own name (not skipped as superseded) and found in place on a rerun.
async fn keys_with_control_characters_survive_the_listings(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let keys = [
        "org1/carriage\rreturn.jpg",
        "org1/start\u{1}of heading.jpg",
        "org1/both\r\u{1}+ é.jpg",
        "org1/plain.jpg",
    ];
    for key in keys {
        world.put(key, key.as_bytes()).await;
    }
    let encoded = world
        .client
        .list_objects_v2()
        .bucket(&world.source)
        .encoding_type(aws_sdk_s3::types::EncodingType::Url)
        .send()
        .await
        .expect("list with EncodingType=url");
    let answered: Vec<&str> = encoded.contents().iter().filter_map(|o| o.key()).collect();
    if encoded.encoding_type() != Some(&aws_sdk_s3::types::EncodingType::Url)
        || !answered.iter().any(|k| k.contains("%0D"))
    {
        eprintln!(
            "SKIP on {}: no URL-encoded keys for EncodingType=url (answered {answered:?})",
            server.name
        );
        return;
    }
    let dest = world.bucket_of("org1").to_string();
    let first = run(&mut backfill_cmd(&world, &server.endpoint));
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_eq!(first.count("copied"), keys.len() as u64, "{}", first.stderr);
    assert_eq!(first.count("superseded"), 0, "{}", first.stderr);
    for key in keys {
        assert_eq!(
            world.get(&dest, key).await.as_deref(),
            Some(key.as_bytes()),
            "{key:?}"
        );
    }
    let again = run(&mut backfill_cmd(&world, &server.endpoint));
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(again.count("copied"), 0, "{}", again.stderr);
    assert_eq!(
        again.count("already in place"),
        keys.len() as u64,
        "{}",
        again.stderr
    );
}

on_each_server!(
    a_rerun_copies_nothing_and_a_change_copies_one,
    dry_run_and_manifest_copy_nothing,
    an_interrupted_backfill_resumes_where_it_stopped,
    an_interrupt_aborts_multipart_uploads_in_flight,
    a_failing_org_fails_only_its_objects,
    part_wise_copies_count_as_in_place,
    a_part_wise_copy_of_other_bytes_is_not_in_place,
    in_place_is_answered_by_listing_the_destination,
    a_backfill_keeps_class_and_checksum_without_heading_the_source,
    a_failed_destination_listing_falls_back_to_head,
    a_multipart_upload_copied_whole_is_in_place_on_a_rerun,
    a_kms_org_is_in_place_on_a_rerun,
    keys_with_control_characters_survive_the_listings,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_selection_respects_longer_prefixes_and_bad_options_are_named() {
    let server = garage();
    let world = World::with_config(server, &["org1", "org1sub"], |orgs| {
        json!({"customers": [
            {"org": "org1", "destinationBucket": orgs[0].1},
            {"org": "org1sub", "destinationBucket": orgs[1].1, "prefix": "org1/sub/"}
        ], "retry": 0})
        .to_string()
    })
    .await;
    world.put("org1/a.jpg", b"a").await;
    world.put("org1/sub/b.jpg", b"b").await;
    let out = run(backfill_cmd(&world, &server.endpoint).args(["--org", "org1"]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        (out.count("copied"), out.count("skipped")),
        (1, 1),
        "{}",
        out.stderr
    );
    assert_eq!(listing(&world.client, world.bucket_of("org1")).await.len(), 1);
    assert!(
        listing(&world.client, world.bucket_of("org1sub"))
            .await
            .is_empty()
    );

    let cases: [(&[&str], &str); 4] = [
        (
            &["--org", "org9"],
            "--org org9: no such org in the configuration; expected one of: org1, org1sub",
        ),
        (
            &["--org", "org1", "--prefix", "org2/"],
            "--prefix \"org2/\" selects none of org org1's keys",
        ),
        (&["--page-size", "5000"], "--page-size 5000: expected 1 to 1000"),
        (&["--concurrency", "0"], "--concurrency must be at least 1"),
    ];
    for (args, message) in cases {
        let out = run(backfill_cmd(&world, &server.endpoint).args(args));
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.trim().lines().count(), 1, "one line: {}", out.stderr);
    }
    let missing = run(&mut backfill_of(
        &world,
        &server.endpoint,
        "no-such-source-bucket-zz",
    ));
    assert_eq!(missing.code, Some(2), "{}", missing.stderr);
    assert!(
        missing
            .stderr
            .contains("listing s3://no-such-source-bucket-zz/: NoSuchBucket"),
        "{}",
        missing.stderr
    );
}

/// org1 without a plugin; org2 with key-rewriter moving `org2/` to `exports/`.
async fn rewriting_world(server: &'static Server) -> World {
    let plugin = json!({
        "source": plugin_artifacts::KEY_REWRITER,
        "timeoutMs": 5000,
        "settings": {"replacePrefix": {"from": "org2/", "to": "exports/"}}
    });
    World::with_config(server, &["org1", "org2"], |orgs| {
        json!({"customers": [
            {"org": "org1", "destinationBucket": orgs[0].1},
            {"org": "org2", "destinationBucket": orgs[1].1, "plugin": plugin}
        ], "retry": 0})
        .to_string()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_decide_during_a_backfill() {
    let server = garage();
    let world = rewriting_world(server).await;
    world.put("org2/x/a.jpg", b"rewritten").await;
    let out = run(&mut backfill_cmd(&world, &server.endpoint));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        world
            .get(world.bucket_of("org2"), "exports/x/a.jpg")
            .await
            .as_deref(),
        Some(&b"rewritten"[..])
    );
    let again = run(&mut backfill_cmd(&world, &server.endpoint));
    assert_eq!(
        again.count("already in place"),
        1,
        "the rewritten key is checked: {}",
        again.stderr
    );
}

/// A key a plugin rewrote is not under the source's key, so the destination listing cannot
/// answer for it: it is checked with a HEAD, while the org without a plugin sends none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_key_is_checked_with_head() {
    let server = garage();
    let world = rewriting_world(server).await;
    for key in ["org1/a.jpg", "org1/b.jpg", "org2/x/a.jpg", "org2/x/b.jpg"] {
        world.put(key, key.as_bytes()).await;
    }
    let (dest1, dest2) = (world.bucket_of("org1"), world.bucket_of("org2"));
    let proxy = FaultProxy::start(&server.endpoint, vec![]).await;
    let first = run_via_proxy(&mut backfill_cmd(&world, &proxy.endpoint)).await;
    assert_eq!(first.count("copied"), 4, "{}", first.stderr);
    let mark = proxy.seen().len();
    let again = run_via_proxy(&mut backfill_cmd(&world, &proxy.endpoint)).await;
    assert_eq!(again.count("already in place"), 4, "{}", again.stderr);
    let sent = requests_since(&proxy, mark, &[dest1, dest2]);
    let heads: BTreeSet<&str> = sent
        .heads
        .iter()
        .map(|s| s.path.split('?').next().unwrap_or_default())
        .collect();
    let expected: BTreeSet<String> = ["exports/x/a.jpg", "exports/x/b.jpg"]
        .iter()
        .map(|k| format!("/{dest2}/{k}"))
        .collect();
    assert_eq!(heads, expected.iter().map(String::as_str).collect());
}

#[test]
fn local_mode_is_refused_with_a_clear_error() {
    let dest = tempfile::tempdir().unwrap();
    let out = run(binary()
        .env("ENV", "local")
        .env(
            "LOCAL_CONFIGURATION",
            crate::support::paths::repo("config/sample.json"),
        )
        .env("LOCAL_DEST", dest.path())
        .env("SUFFIX_TO_COPY", "jpg")
        .args(["backfill", "--bucket", "any-source"]));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("backfill lists and copies within S3; ENV=local is not supported"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0);
}

/// On a terminal (here a pseudo-terminal from util-linux `script`) progress is a bar with
/// counts, rate and ETA instead of periodic lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_gets_a_progress_bar() {
    let server = garage();
    let world = World::new(server, &["org1"]).await;
    for i in 0..30 {
        world.put(&format!("org1/{i}.jpg"), b"x").await;
    }
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule::slow_copies(Duration::from_millis(100))],
    )
    .await;
    let inner = backfill_cmd(&world, &proxy.endpoint);
    let mut line = vec![inner.get_program().to_string_lossy().into_owned()];
    line.extend(inner.get_args().map(|a| a.to_string_lossy().into_owned()));
    line.extend([
        "--concurrency".into(),
        "2".into(),
        "--page-size".into(),
        "10".into(),
    ]);
    let mut cmd = Command::new("script");
    cmd.env_clear()
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("TERM", "xterm")
        .args(["-qec", &line.join(" "), "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = wait_for(cmd.spawn().expect("util-linux script")).await;
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let screen = out.stdout;
    assert!(screen.contains('█'), "a bar: {screen}");
    assert!(
        screen.contains("objects/s") && screen.contains("ETA"),
        "rate and ETA: {screen}"
    );
    assert!(
        !screen.contains("progress: "),
        "no periodic lines on a terminal: {screen}"
    );
    assert!(screen.contains("30/30 done: 30 copied"), "the summary: {screen}");
}
