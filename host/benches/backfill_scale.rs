//! `make bench`: a backfill of 100,000 small objects on local Garage with the release
//! binary (`artifact-export backfill`, a process of its own), against rclone copying the
//! same objects server-side between two buckets of the same remote with the same
//! parallelism (`rclone copy --transfers 16 --checkers 16`), each into its own empty bucket.
//! Measured directly and through the test proxy with 20 ms added to every request (both
//! tools through the same proxy; a smaller count there, printed, so the run stays within
//! minutes). Then both again over what they copied (everything already in place). The
//! backfill keeps each source's storage class (from the listing) and checksum (the server
//! carries it over on `CopyObject`) without a HEAD of the source; rclone keeps neither.
//!
//! Printed for each: seconds, objects per second, the ratio function/rclone (target ≤ 0.8)
//! and each process's own peak RSS (`support::measure`). Without rclone (installed by `make bench` into
//! target/bench-tools/ from Debian's package) the comparison prints a SKIP line with the
//! reason and the function's figures still come. A report, not a test: a missed target is
//! printed as MISSED and the exit status stays 0; it fails loudly only when the work itself
//! fails (an object not copied), since timing failures would measure nothing.
//!
//! After the reruns (direct only): `artifact-export reconcile` over the function's copies
//! against `rclone check --one-way --missing-on-dst` over rclone's, the same parallelism
//! (target: at most 0.5x rclone's time).
//!
//! `BACKFILL_SCALE_OBJECTS=N` runs a smaller workload (a quick look, not the figure).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use futures::StreamExt;

/// The integration tests' helpers (servers, worlds, the fault proxy), used as they are.
#[allow(dead_code)]
#[path = "../../tests/integration/support/mod.rs"]
mod support;

use support::measure::{SmallParent, command_with_small_parent, thousands};
use support::proxy::{Fault, FaultProxy, Rule};
use support::servers::{Server, garage};
use support::world::{World, create_bucket, unique_bucket};

const OBJECTS: usize = 100_000;
/// Objects of the +20 ms runs: 100,000 would take several minutes per tool here.
const DELAYED_OBJECTS: usize = 20_000;
const CONCURRENCY: usize = 16;
const UPLOAD_CONCURRENCY: usize = 128;
const OBJECT_SIZE: usize = 256;
const ADDED_LATENCY: Duration = Duration::from_millis(20);
const RATIO_TARGET: f64 = 0.8;
/// `reconcile` against `rclone check --one-way` (issue: at most half rclone's time).
const RECONCILE_RATIO_TARGET: f64 = 0.5;
const ORG: &str = "org1";
/// Keys of the +20 ms runs; the others are under `org1/b/`.
const DELAYED_PREFIX: &str = "org1/a/";
const CHECK_PREFIX: &str = "rclone-check/";
const CHECK_OBJECTS: usize = 3;

fn main() {
    support::measure::serve_as_small_parent();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

/// One side's run: the tool as a process, timed and measured.
struct Measured {
    wall: Duration,
    objects: usize,
    peak_rss_mib: f64,
}

impl Measured {
    fn per_second(&self) -> f64 {
        self.objects as f64 / self.wall.as_secs_f64()
    }
}

struct Setting<'a> {
    label: &'static str,
    endpoint: &'a str,
    prefix: &'static str,
    objects: usize,
}

async fn run() {
    let objects: usize = std::env::var("BACKFILL_SCALE_OBJECTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(OBJECTS);
    let delayed = objects.min(DELAYED_OBJECTS);
    let server = garage();
    let world = World::new(server, &[ORG]).await;
    let setup = Instant::now();
    upload(&world, objects, delayed).await;
    println!(
        "backfill_scale on {} ({}): {} objects of {OBJECT_SIZE} B in one org, concurrency {CONCURRENCY} \
         for both tools, each run into its own empty bucket (setup: uploaded in {:.1} s, {UPLOAD_CONCURRENCY} in flight)",
        server.name,
        server.endpoint,
        thousands(objects),
        setup.elapsed().as_secs_f64(),
    );
    let rclone = match find_rclone() {
        Ok(rclone) => match check_server_side(&world, &rclone).await {
            Ok(line) => {
                println!("{line}");
                Some(rclone)
            }
            Err(why) => {
                println!("SKIP rclone comparison: {why}");
                None
            }
        },
        Err(why) => {
            println!("SKIP rclone comparison: {why}");
            None
        }
    };

    let direct = Setting {
        label: "direct",
        endpoint: &server.endpoint,
        prefix: "org1/",
        objects,
    };
    compare(&world, &direct, rclone.as_deref(), true).await;

    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            fault: Fault::Delay(ADDED_LATENCY),
            path_contains: None,
            copies_only: false,
            method: None,
            times: None,
        }],
    )
    .await;
    let slow = Setting {
        label: "+20 ms",
        endpoint: &proxy.endpoint,
        prefix: DELAYED_PREFIX,
        objects: delayed,
    };
    compare(&world, &slow, rclone.as_deref(), false).await;
}

/// `objects` objects under `org1/`, the first `delayed` of them under [`DELAYED_PREFIX`].
async fn upload(world: &World, objects: usize, delayed: usize) {
    let client = &world.client;
    let source = &world.source;
    let failures: Vec<String> = futures::stream::iter(0..objects)
        .map(|i| async move {
            let part = if i < delayed { "a" } else { "b" };
            let key = format!("{ORG}/{part}/{:03}/{i:06}.jpg", i / 1000);
            let mut body = format!("object {i} ").into_bytes();
            body.resize(OBJECT_SIZE, b'.');
            put(client, source, &key, body).await.err()
        })
        .buffer_unordered(UPLOAD_CONCURRENCY)
        .filter_map(|failure| async move { failure })
        .collect()
        .await;
    assert!(
        failures.is_empty(),
        "{} uploads failed, first: {}",
        failures.len(),
        failures[0]
    );
}

async fn put(client: &Client, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), String> {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("put {key}: {:?}", e.into_service_error()))
}

/// First fills (function, then rclone), each into a fresh bucket; with `reruns`, both again
/// over what they copied.
async fn compare(world: &World, setting: &Setting<'_>, rclone: Option<&Path>, reruns: bool) {
    let function_bucket = fresh_bucket(world, "fn").await;
    let first = backfill(world, setting, &function_bucket, setting.objects, 0).await;
    let rclone_bucket = fresh_bucket(world, "rc").await;
    let theirs = match rclone {
        Some(rclone) => Some(rclone_copy(world, setting, rclone, &rclone_bucket).await),
        None => None,
    };
    print_line(
        setting,
        "first fill (class from the listing, no source HEAD)",
        &first,
        theirs.as_ref(),
    );
    if reruns {
        let again = backfill(world, setting, &function_bucket, 0, setting.objects).await;
        let theirs = match rclone {
            Some(rclone) => Some(rclone_copy(world, setting, rclone, &rclone_bucket).await),
            None => None,
        };
        print_line(setting, "rerun, all in place", &again, theirs.as_ref());
        // Is every object there? `reconcile` against `rclone check --one-way
        // --missing-on-dst` over the same copies, the same parallelism.
        let ours = reconcile(world, setting).await;
        let theirs = match rclone {
            Some(rclone) => Some(rclone_check(world, setting, rclone, &rclone_bucket).await),
            None => None,
        };
        print_compared(
            setting,
            "reconcile (listing) vs rclone check --one-way",
            &ours,
            theirs.as_ref(),
            RECONCILE_RATIO_TARGET,
        );
    }
}

/// `artifact-export reconcile` of `setting.prefix` against the destination the last
/// backfill wrote (the config in force); panics unless it finds everything in place.
async fn reconcile(world: &World, setting: &Setting<'_>) -> Measured {
    let mut env = world.function_env("jpg");
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL".into(), setting.endpoint.to_string()));
    let mut cmd = command_with_small_parent(env!("CARGO_BIN_EXE_artifact-export"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .args(["reconcile", "--bucket", &world.source, "--prefix", setting.prefix])
        .args([
            "--concurrency",
            &CONCURRENCY.to_string(),
            "--progress-interval",
            "0",
        ]);
    let (run, stderr) = measure(cmd).await;
    assert!(
        run.status_ok,
        "reconcile did not find everything in place:\n{}",
        tail(&stderr, 20)
    );
    Measured {
        wall: run.wall,
        objects: setting.objects,
        peak_rss_mib: run.peak_rss_mib,
    }
}

/// `rclone check --one-way --missing-on-dst` of `setting.prefix` against `bucket`.
async fn rclone_check(world: &World, setting: &Setting<'_>, rclone: &Path, bucket: &str) -> Measured {
    let missing = tempfile::NamedTempFile::new().expect("missing list");
    let mut cmd = rclone_command(world.server, setting.endpoint, rclone);
    cmd.args([
        "check",
        &format!("bench:{}/{}", world.source, setting.prefix),
        &format!("bench:{bucket}/{}", setting.prefix),
        "--one-way",
        "--missing-on-dst",
        missing.path().to_str().expect("utf-8 path"),
        "--checkers",
        &CONCURRENCY.to_string(),
    ]);
    let (run, stderr) = measure(cmd).await;
    assert!(
        run.status_ok,
        "rclone check found differences:\n{}",
        tail(&stderr, 20)
    );
    Measured {
        wall: run.wall,
        objects: setting.objects,
        peak_rss_mib: run.peak_rss_mib,
    }
}

fn print_line(setting: &Setting<'_>, what: &str, ours: &Measured, theirs: Option<&Measured>) {
    print_compared(setting, what, ours, theirs, RATIO_TARGET);
}

fn print_compared(
    setting: &Setting<'_>,
    what: &str,
    ours: &Measured,
    theirs: Option<&Measured>,
    target: f64,
) {
    let comparison = match theirs {
        Some(theirs) => {
            let ratio = ours.wall.as_secs_f64() / theirs.wall.as_secs_f64();
            let verdict = if ratio <= target { "ok" } else { "MISSED" };
            format!(
                "rclone {:.1} s ({:.0} objects/s, peak RSS {:.1} MiB)   ratio {ratio:.2} (target <= {target}) {verdict}",
                theirs.wall.as_secs_f64(),
                theirs.per_second(),
                theirs.peak_rss_mib,
            )
        }
        None => "rclone: skipped (see above)".to_string(),
    };
    println!(
        "{:<7} {} objects, {what}: function {:.1} s ({:.0} objects/s, peak RSS {:.1} MiB)   {comparison}",
        setting.label,
        thousands(setting.objects),
        ours.wall.as_secs_f64(),
        ours.per_second(),
        ours.peak_rss_mib,
    );
}

/// An empty bucket for one run.
async fn fresh_bucket(world: &World, label: &str) -> String {
    let bucket = unique_bucket(label);
    create_bucket(&world.client, &bucket).await;
    bucket
}

/// `artifact-export backfill` of `setting.prefix` into `bucket` (the org's destination in a
/// config written for this run, storage class the default: the source's); panics unless it
/// copied `copied` and found `in_place`.
async fn backfill(
    world: &World,
    setting: &Setting<'_>,
    bucket: &str,
    copied: usize,
    in_place: usize,
) -> Measured {
    let org = serde_json::json!({"org": ORG, "destinationBucket": bucket});
    world
        .write_config(&serde_json::json!({"customers": [org], "retry": 3}).to_string())
        .await;
    let mut env = world.function_env("jpg");
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL".into(), setting.endpoint.to_string()));
    let mut cmd = command_with_small_parent(env!("CARGO_BIN_EXE_artifact-export"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .args([
            "backfill",
            "--bucket",
            &world.source,
            "--prefix",
            setting.prefix,
            "--concurrency",
            &CONCURRENCY.to_string(),
            "--progress-interval",
            "0",
        ]);
    let (run, stderr) = measure(cmd).await;
    let count = |label: &str| summary_count(&stderr, label);
    assert!(
        run.status_ok && count("copied") == copied as u64 && count("already in place") == in_place as u64,
        "the backfill did not do the work (expected {copied} copied, {in_place} already in place):\n{}",
        tail(&stderr, 20)
    );
    Measured {
        wall: run.wall,
        objects: setting.objects,
        peak_rss_mib: run.peak_rss_mib,
    }
}

/// `rclone copy` of `setting.prefix` from the source into `bucket` (same prefix), server-side
/// on one remote; panics unless the bucket then holds every object.
async fn rclone_copy(world: &World, setting: &Setting<'_>, rclone: &Path, bucket: &str) -> Measured {
    let mut cmd = rclone_command(world.server, setting.endpoint, rclone);
    cmd.args([
        "copy",
        &format!("bench:{}/{}", world.source, setting.prefix),
        &format!("bench:{bucket}/{}", setting.prefix),
        "--transfers",
        &CONCURRENCY.to_string(),
        "--checkers",
        &CONCURRENCY.to_string(),
        "--s3-no-check-bucket",
    ]);
    let (run, stderr) = measure(cmd).await;
    assert!(run.status_ok, "rclone copy failed:\n{}", tail(&stderr, 20));
    let landed = count_keys(&world.client, bucket).await;
    assert_eq!(landed, setting.objects, "rclone did not copy everything");
    Measured {
        wall: run.wall,
        objects: setting.objects,
        peak_rss_mib: run.peak_rss_mib,
    }
}

/// rclone with one S3 remote `bench:` for `server` at `endpoint`, defined by environment
/// variables only (no config file of this machine's).
fn rclone_command(server: &Server, endpoint: &str, rclone: &Path) -> Command {
    let mut cmd = command_with_small_parent(rclone);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RCLONE_CONFIG", "/dev/null")
        .env("RCLONE_CONFIG_BENCH_TYPE", "s3")
        .env("RCLONE_CONFIG_BENCH_PROVIDER", "Other")
        .env("RCLONE_CONFIG_BENCH_ENDPOINT", endpoint)
        .env("RCLONE_CONFIG_BENCH_ACCESS_KEY_ID", &server.access_key)
        .env("RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY", &server.secret_key)
        .env("RCLONE_CONFIG_BENCH_REGION", &server.region);
    cmd
}

/// rclone from `RCLONE`, target/bench-tools/ (`make bench` installs it there) or `PATH`.
fn find_rclone() -> Result<PathBuf, String> {
    let installed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-tools/usr/bin/rclone");
    let candidates = std::env::var_os("RCLONE")
        .map(PathBuf::from)
        .into_iter()
        .chain([installed, PathBuf::from("rclone")]);
    for candidate in candidates {
        if let Ok(out) = Command::new(&candidate).arg("version").output()
            && out.status.success()
        {
            return Ok(candidate);
        }
    }
    Err(
        "rclone not found (not in $RCLONE, target/bench-tools/usr/bin/ or PATH; `make bench-tools` installs it)"
            .into(),
    )
}

/// Copies a few objects with `rclone copy -vv` through a recording proxy: every object must
/// go as a server-side copy (a `CopyObject`), none downloaded and uploaded.
async fn check_server_side(world: &World, rclone: &Path) -> Result<String, String> {
    for i in 0..CHECK_OBJECTS {
        put(
            &world.client,
            &world.source,
            &format!("{CHECK_PREFIX}{i}.jpg"),
            vec![b'x'; OBJECT_SIZE],
        )
        .await?;
    }
    let bucket = fresh_bucket(world, "rc-check").await;
    let proxy = FaultProxy::start(&world.server.endpoint, vec![]).await;
    let mut cmd = rclone_command(world.server, &proxy.endpoint, rclone);
    cmd.args([
        "copy",
        "-vv",
        &format!("bench:{}/{CHECK_PREFIX}", world.source),
        &format!("bench:{bucket}/{CHECK_PREFIX}"),
        "--s3-no-check-bucket",
    ]);
    let (run, log) = measure(cmd).await;
    if !run.status_ok {
        return Err(format!("rclone copy -vv failed:\n{}", tail(&log, 20)));
    }
    let seen = proxy.seen();
    let copies = seen.iter().filter(|s| s.copy).count();
    let object = |s: &&support::proxy::Seen| !s.path.contains('?') || s.path.contains("x-id=");
    let downloads = seen
        .iter()
        .filter(|s| s.method == "GET" && object(s) && s.path.contains(CHECK_PREFIX))
        .count();
    let uploads = seen.iter().filter(|s| s.method == "PUT" && !s.copy).count();
    let logged = log.matches("server-side copy").count();
    let version = Command::new(rclone)
        .arg("version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| v.lines().next().map(str::to_string))
        .unwrap_or_default();
    if copies != CHECK_OBJECTS || downloads != 0 || uploads != 0 || logged < CHECK_OBJECTS {
        return Err(format!(
            "{version} did not copy server-side: {copies} copy requests, {downloads} downloads, {uploads} uploads, \
             {logged} \"server-side copy\" log lines for {CHECK_OBJECTS} objects"
        ));
    }
    Ok(format!(
        "{version} ({}): `rclone copy -vv` of {CHECK_OBJECTS} objects sent {copies} CopyObject, {downloads} GET and \
         {uploads} PUT of object bodies (log: \"Copied (server-side copy)\"): server-side, ok",
        rclone.display()
    ))
}

struct ChildRun {
    status_ok: bool,
    wall: Duration,
    peak_rss_mib: f64,
}

/// Runs `cmd` (from `command_with_small_parent`) to the end, stdout to nowhere, stderr kept,
/// and reads its own peak RSS; on the blocking pool, so a proxy on this runtime keeps serving it.
async fn measure(cmd: Command) -> (ChildRun, String) {
    tokio::task::spawn_blocking(move || measure_blocking(cmd))
        .await
        .expect("measured run")
}

fn measure_blocking(mut cmd: Command) -> (ChildRun, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let log_path = dir.path().join("stderr.txt");
    let started = Instant::now();
    let child = SmallParent::spawn(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).expect("log file")),
    )
    .unwrap_or_else(|e| panic!("run {:?}: {e}", cmd.get_args().nth(1)));
    let reaped = child.reap();
    let wall = started.elapsed();
    let stderr = std::fs::read_to_string(&log_path).unwrap_or_default();
    let run = ChildRun {
        status_ok: reaped.exited_ok,
        wall,
        peak_rss_mib: reaped.peak_rss_mib,
    };
    (run, stderr)
}

/// The count before `label` in the backfill's summary line (`… 12 copied (…), 0 already in
/// place, …`); 0 when absent.
fn summary_count(stderr: &str, label: &str) -> u64 {
    let Some(summary) = stderr.lines().find(|l| l.starts_with("backfill of ")) else {
        return 0;
    };
    let Some(at) = summary.find(&format!(" {label}")) else {
        return 0;
    };
    let digits: String = summary[..at]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.chars().rev().collect::<String>().parse().unwrap_or(0)
}

async fn count_keys(client: &Client, bucket: &str) -> usize {
    let mut pages = client.list_objects_v2().bucket(bucket).into_paginator().send();
    let mut n = 0;
    while let Some(page) = pages.next().await {
        n += page.expect("list").contents().len();
    }
    n
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
