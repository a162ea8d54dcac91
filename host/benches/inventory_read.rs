//! How fast `backfill::inventory` reads an S3 Inventory delivery into key order, and in how
//! much memory: 1,000,000 generated objects (URL-encoded keys with spaces, `+` and non-ASCII
//! letters), their rows shuffled across 16 gzip CSV files on local Garage. The reader runs in
//! a process of its own (this binary again, `--read`), started by a small parent so its own
//! peak RSS is what is printed (`support::measure`). A report, not a test: it fails only
//! when the read itself fails or yields the wrong count or order.
//!
//! Then the whole `artifact-export reconcile` (release binary, its own peak RSS) from the
//! source inventory and one destination inventory per org (4 orgs), with 1% of the objects
//! missing from the destinations and 0.1% differing (another size), the rows shuffled:
//! objects per second and peak RSS, against the goal of 200,000 objects/s in under
//! 256 MiB.
//!
//! `INVENTORY_BENCH_OBJECTS=N` reads a smaller delivery.

use std::process::Stdio;
use std::time::{Duration, Instant};

use artifact_export::backfill::inventory;
use artifact_export::s3::RetryPolicy;
use aws_smithy_types::DateTime;

/// The integration tests' helpers (servers, buckets, the inventory generator).
#[allow(dead_code)]
#[path = "../../tests/integration/support/mod.rs"]
mod support;

use support::inventory::{Object, write_inventory};
use support::measure::{SmallParent, command_with_small_parent, thousands};
use support::servers::garage;
use support::world::{create_bucket, unique_bucket};

const OBJECTS: usize = 1_000_000;
/// Orgs of the reconcile (keys `orgN/…`).
const ORGS: usize = 4;
const FILES: usize = 16;

fn main() {
    support::measure::serve_as_small_parent();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--read") {
        runtime.block_on(read(&args[2..]));
    } else {
        runtime.block_on(run());
    }
}

/// The child: `--read ENDPOINT REGION ACCESS_KEY SECRET_KEY URL EXPECTED`.
async fn read(args: &[String]) {
    let [endpoint, region, access, secret, url, expected] = args else {
        panic!("--read ENDPOINT REGION ACCESS_KEY SECRET_KEY URL EXPECTED");
    };
    let client = artifact_export::s3::client::for_endpoint(endpoint, region, access, secret);
    let spill = tempfile::tempdir().expect("spill dir");
    let retry = RetryPolicy::new(3, Duration::from_millis(50));
    let started = Instant::now();
    let sorted = inventory::open(&client, url, "", &retry, None, spill.path())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let sorted_in = started.elapsed();
    let mut rx = sorted.into_receiver();
    let mut count = 0usize;
    let mut last = String::new();
    while let Some(entry) = rx.recv().await {
        let entry = entry.unwrap_or_else(|e| panic!("{e}"));
        assert!(entry.key > last, "out of order: {:?} after {last:?}", entry.key);
        last = entry.key;
        count += 1;
    }
    let total = started.elapsed();
    assert_eq!(count.to_string(), *expected, "entries read");
    println!(
        "{} {:.3} {:.3} {:.3}",
        count,
        sorted_in.as_secs_f64(),
        total.as_secs_f64(),
        cpu_seconds()
    );
}

/// This process's CPU time so far (user and system): what the read cost, whatever else
/// the machine runs meanwhile.
fn cpu_seconds() -> f64 {
    // SAFETY: plain FFI call with a valid out-pointer.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

async fn run() {
    let objects: usize = std::env::var("INVENTORY_BENCH_OBJECTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(OBJECTS);
    let server = garage();
    let client = server.client();
    let bucket = unique_bucket("invbench");
    create_bucket(&client, &bucket).await;
    let generated: Vec<Object> = (0..objects)
        .map(|i| {
            (
                format!("org{}/batch {}/file+{i:07} é.jpg", i % 4, i / 1000),
                1000 + i as u64 % 5000,
                format!("{:032x}", (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                DateTime::from_millis(1_700_000_000_000 + i as i64),
            )
        })
        .collect();
    let started = Instant::now();
    let url = write_inventory(&client, &bucket, "inventory/", &generated, FILES, 42).await;
    // Each org's destination: 1% missing, 0.1% with another size.
    let mut destination_urls = Vec::new();
    for org in 0..ORGS {
        let holds: Vec<Object> = generated
            .iter()
            .enumerate()
            .filter(|(i, _)| i % ORGS == org && i % 100 != 7)
            .map(|(i, (key, size, etag, modified))| {
                let size = if i % 1000 == 3 { size + 1 } else { *size };
                (key.clone(), size, etag.clone(), *modified)
            })
            .collect();
        let prefix = format!("inventory-org{org}/");
        let dest = format!("org{org}-export");
        let url = support::inventory::write_inventory_of(
            &client,
            &bucket,
            &prefix,
            &dest,
            &holds,
            FILES / 4,
            7 + org as u64,
        )
        .await;
        destination_urls.push(format!("org{org}={url}"));
    }
    let expected_missing = (0..objects).filter(|i| i % 100 == 7).count();
    let expected_differs = (0..objects).filter(|i| i % 1000 == 3 && i % 100 != 7).count();
    drop(generated);
    println!(
        "inventory_read: {} objects in {FILES} gzip files written in {:.1}s",
        thousands(objects),
        started.elapsed().as_secs_f64()
    );
    let mut cmd = command_with_small_parent(std::env::current_exe().expect("own path"));
    cmd.args([
        "--read",
        &server.endpoint,
        &server.region,
        &server.access_key,
        &server.secret_key,
        &url,
        &objects.to_string(),
    ])
    .stdout(Stdio::piped());
    let mut child = SmallParent::spawn(&mut cmd).expect("spawn the reader");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout().expect("stdout"), &mut out).unwrap();
    let reaped = child.reap();
    assert!(reaped.exited_ok, "the reader failed (status {})", reaped.status);
    let fields: Vec<f64> = out.split_whitespace().map(|f| f.parse().unwrap()).collect();
    let [count, sorted, total, cpu] = fields[..] else {
        panic!("reader printed {out:?}")
    };
    println!(
        "inventory_read: {} entries in key order in {total:.2}s ({:.0} objects/s; downloaded, \
         parsed and spilled in {sorted:.2}s, merged in {:.2}s), {cpu:.2}s of CPU ({:.0} \
         objects per CPU second), peak RSS {:.1} MiB",
        thousands(count as usize),
        count / total,
        total - sorted,
        count / cpu,
        reaped.peak_rss_mib
    );
    reconcile(
        server,
        &bucket,
        &url,
        &destination_urls,
        objects,
        expected_missing,
        expected_differs,
    );
}

/// `artifact-export reconcile --json` from the inventories, as a child with its own peak RSS.
fn reconcile(
    server: &support::servers::Server,
    bucket: &str,
    source_url: &str,
    destination_urls: &[String],
    objects: usize,
    missing: usize,
    differs: usize,
) {
    let dir = tempfile::tempdir().expect("config dir");
    let config = dir.path().join("config.json");
    let customers: Vec<serde_json::Value> = (0..ORGS)
        .map(|org| serde_json::json!({"org": format!("org{org}"), "destinationBucket": format!("org{org}-export")}))
        .collect();
    std::fs::write(
        &config,
        serde_json::json!({"customers": customers, "retry": 3}).to_string(),
    )
    .unwrap();
    let mut cmd = command_with_small_parent(env!("CARGO_BIN_EXE_artifact-export"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(server.child_env())
        .env("SUFFIX_TO_COPY", "jpg")
        .args([
            "reconcile",
            "--bucket",
            bucket,
            "--json",
            "--progress-interval",
            "0",
        ])
        .args([
            "--config",
            config.to_str().unwrap(),
            "--source-inventory",
            source_url,
        ])
        .args(
            destination_urls
                .iter()
                .flat_map(|d| ["--destination-inventory", d.as_str()]),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = SmallParent::spawn(&mut cmd).expect("spawn reconcile");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout().expect("stdout"), &mut out).unwrap();
    let reaped = child.reap();
    let elapsed = started.elapsed();
    let document: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("reconcile printed no JSON ({e}): {out}"));
    let sum = |class: &str| -> u64 {
        document["orgs"]
            .as_array()
            .map(|orgs| orgs.iter().map(|o| o[class].as_u64().unwrap_or(0)).sum())
            .unwrap_or(0)
    };
    assert_eq!(
        (sum("missing") as usize, sum("differs") as usize),
        (missing, differs),
        "reconcile found other gaps (status {}): {document}",
        reaped.status
    );
    let rate = objects as f64 / elapsed.as_secs_f64();
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    println!(
        "reconcile from inventories: {} objects ({} missing, {} differ) in {:.2}s: {:.0} objects/s \
         (goal ≥ 200,000: {}), peak RSS {:.1} MiB (goal < 256 MiB: {})",
        thousands(objects),
        thousands(missing),
        thousands(differs),
        elapsed.as_secs_f64(),
        rate,
        verdict(rate >= 200_000.0),
        reaped.peak_rss_mib,
        verdict(reaped.peak_rss_mib < 256.0)
    );
}
