//! `make bench`: one invocation with 1,000 records (4 orgs, 10 % skipped) against local
//! Garage, compared in the same run with a minimal loop that issues the same 900
//! `CopyObject` requests at the same concurrency through the same SDK client, completing in
//! any order (the server's ceiling: ceil(N / C) round trips). The orgs of these comparisons
//! have a fixed `storageClass` ("STANDARD"). Until issue 28 the function then sent exactly
//! the baseline's requests; since, every copy reads the source's HEAD first (the website
//! redirect and the Object Lock are only known from it), so the function sends one HEAD
//! more per record than the baseline. Measured:
//!
//! - direct, and through the test proxy with 20 ms added to every request (what S3's real
//!   latency looks like, where concurrency matters most);
//! - at 20 ms with 1 copy in 50 ten times slower (200 ms): a record that is slow must not
//!   hold back the records behind it. For contrast, the same loop completing in order (a
//!   window that moves only when its oldest copy is done) is timed too;
//! - at 20 ms, the default `storageClass` ("source") against the fixed class: both read one
//!   HEAD of the source before each copy since issue 28, so the ratio is about 1;
//! - at 20 ms, every org with a plugin (glob-filter, copying the jpg and pdf) with and
//!   without a `candidate` (glob-filter again, the same settings, so every record agrees):
//!   the wall time with against without, and the decisions per second of each (issue 26);
//! - a 10,000-record invocation (an SQS batch at its maximum) at 20 ms;
//! - the real binary's peak RSS on 1,000 and on 10,000 records, and the cost per record
//!   (the slope between the two). Both events carry only the fields S3 notifications always
//!   have, so 10,000 records fit the 6 MiB event limit (AWS's full shape would not).
//!
//! Targets: function/baseline <= 1.15 direct and <= 1.03 at 20 ms (with and without slow
//! copies, and at 10,000 records), with a candidate/without <= 1.05 at 20 ms, peak RSS under
//! 48 MiB at 1,000 records. This is a report,
//! not a test: a missed target is printed as MISSED and the exit status stays 0. It fails
//! loudly only when the work itself fails (a record not copied), since timing failures
//! would measure nothing.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use artifact_export::env::Settings;
use artifact_export::event::{ParsedEvent, parse_event};
use artifact_export::exporter::Exporter;
use artifact_export::handler::handle;
use artifact_export::plan::ShadowOutcome;
use artifact_export::report::{Outcome, Report};
use artifact_export::s3::keys::copy_source;
use aws_sdk_s3::Client;
use futures::StreamExt;
use serde_json::{Value, json};

/// The integration tests' helpers (servers, worlds, events, the fault proxy), used as they are.
#[allow(dead_code)]
#[path = "../../tests/integration/support/mod.rs"]
mod support;

use support::events::encode_key;
use support::measure::{SmallParent, command_with_small_parent, thousands};
use support::proxy::{Fault, FaultProxy, Rule};
use support::servers::garage;
use support::world::{Uploaded, World, bytes};

const RECORDS: usize = 1_000;
const BIG_BATCH: usize = 10_000;
const ORGS: [&str; 4] = ["org1", "org2", "org3", "org4"];
const OBJECT_SIZE: usize = 4 * 1024;
const UPLOAD_CONCURRENCY: usize = 32;
const SUFFIXES: &str = "jpg,pdf";
/// Timed runs of each side per setting (after one untimed warm-up); the median is reported.
const RUNS: usize = 5;
/// Runs of the 10,000-record case (each takes seconds at 20 ms).
const BIG_RUNS: usize = 3;
const ADDED_LATENCY: Duration = Duration::from_millis(20);
/// One copy in `SLOW_EVERY` takes `SLOW_LATENCY` instead of `ADDED_LATENCY`.
const SLOW_EVERY: usize = 50;
const SLOW_LATENCY: Duration = Duration::from_millis(200);
const DIRECT_TARGET: f64 = 1.15;
const LATENCY_TARGET: f64 = 1.03;
const RSS_TARGET_MIB: f64 = 48.0;
/// The invocation with a candidate plugin against the same without one.
const CANDIDATE_TARGET: f64 = 1.05;
/// glob-filter's settings for the plugin and its candidate: every exported suffix copied.
const PLUGIN_SETTINGS: &str = r#"{"include": ["**/*.jpg", "**/*.pdf"]}"#;

/// One `CopyObject` exactly as the function sends it for a record.
struct CopyRequest {
    destination_bucket: String,
    key: String,
    copy_source: String,
    if_match: String,
}

/// Everything both sides work on.
struct Workload {
    records: usize,
    event_json: Value,
    event: ParsedEvent,
    copies: Vec<CopyRequest>,
    /// The orgs with `storageClass: "STANDARD"`: a HEAD, then one CopyObject per record.
    settings: Settings,
    /// The same orgs with the default `storageClass` (`"source"`): a HEAD, then the copy.
    source_class_settings: Settings,
}

struct Comparison {
    label: String,
    target: f64,
    function: Vec<Duration>,
    baseline: Vec<Duration>,
}

fn main() {
    support::measure::serve_as_small_parent();
    // The same runtime the binary gets from #[tokio::main] on this machine.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

/// A proxy adding `ADDED_LATENCY` to every request, and `SLOW_LATENCY` instead to the copies
/// of the keys in `slow`.
async fn latency_proxy(endpoint: &str, slow: &[String]) -> FaultProxy {
    let mut rules: Vec<Rule> = slow
        .iter()
        .map(|key| Rule {
            fault: Fault::Delay(SLOW_LATENCY),
            path_contains: Some(key.clone()),
            copies_only: true,
            method: None,
            times: None,
        })
        .collect();
    rules.push(Rule {
        fault: Fault::Delay(ADDED_LATENCY),
        path_contains: None,
        copies_only: false,
        method: None,
        times: None,
    });
    FaultProxy::start(endpoint, rules).await
}

async fn run() {
    // The function logs one line per record in Lambda; format them (JSON, as in Lambda) but
    // throw them away so the bench output stays readable.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::io::sink)
        .with_target(false)
        .json()
        .flatten_event(true)
        .init();

    let server = garage();
    let setup = Instant::now();
    let world = World::new(server, &ORGS).await;
    let workload = prepare(&world, RECORDS).await;
    println!(
        "copy_throughput on {} ({}): {} records in one event, {} copies to {} orgs, {} skipped; \
         {} KiB objects; copy concurrency {}; median of {RUNS} runs after a warm-up (setup {} ms)",
        server.name,
        server.endpoint,
        thousands(RECORDS),
        workload.copies.len(),
        ORGS.len(),
        RECORDS - workload.copies.len(),
        OBJECT_SIZE / 1024,
        workload.settings.copy_concurrency,
        setup.elapsed().as_millis(),
    );

    let direct = compare("direct", DIRECT_TARGET, server.client(), &workload, RUNS).await;
    print_comparison(&direct);

    let proxy = latency_proxy(&server.endpoint, &[]).await;
    let delayed = compare(
        "+20 ms",
        LATENCY_TARGET,
        server.client_via(&proxy.endpoint),
        &workload,
        RUNS,
    )
    .await;
    print_comparison(&delayed);
    println!(
        "           (proxy saw at most {} copies in flight)",
        proxy.max_copies_in_flight()
    );
    let (source_class, fixed_class) =
        compare_storage_class(server.client_via(&proxy.endpoint), &workload).await;
    let (source_class, fixed_class) = (median(&source_class), median(&fixed_class));
    println!(
        "+20 ms     storageClass \"source\" (default: HEAD + copy) {:>5} ms   fixed class (HEAD + copy) {:>5} ms   \
         ratio {:.2}: keeping the source's class costs {:.1} ms per record at 20 ms per request",
        source_class.as_millis(),
        fixed_class.as_millis(),
        source_class.as_secs_f64() / fixed_class.as_secs_f64(),
        (source_class.as_secs_f64() - fixed_class.as_secs_f64())
            * 1000.0
            * workload.settings.copy_concurrency as f64
            / workload.copies.len() as f64,
    );
    let (with_candidate, without_candidate) =
        compare_candidate(server.client_via(&proxy.endpoint), &world, &workload).await;
    print_candidate(&with_candidate, &without_candidate, workload.records);
    drop(proxy);

    // Every SLOW_EVERY-th copy is slow; its path names it uniquely (`/bench/0042.`).
    let slow: Vec<String> = workload
        .copies
        .iter()
        .step_by(SLOW_EVERY)
        .map(|c| {
            let rest = c.key.split_once('/').map_or(c.key.as_str(), |(_, rest)| rest);
            let stem = rest.rsplit_once('.').map_or(rest, |(stem, _)| stem);
            format!("/{stem}.")
        })
        .collect();
    let proxy = latency_proxy(&server.endpoint, &slow).await;
    let client = server.client_via(&proxy.endpoint);
    let label = format!("+20 ms, 1 in {SLOW_EVERY} copies {} ms", SLOW_LATENCY.as_millis());
    let with_slow = compare(&label, LATENCY_TARGET, client.clone(), &workload, RUNS).await;
    print_comparison(&with_slow);
    let concurrency = workload.settings.copy_concurrency;
    let in_order = run_baseline_in_order(&client, &workload.copies, concurrency).await;
    println!(
        "           (the same copies completing in order: {} ms, {:.2} x the baseline; ideal at 20 ms: {} ms)",
        in_order.as_millis(),
        in_order.as_secs_f64() / median(&with_slow.baseline).as_secs_f64(),
        ideal(workload.copies.len(), concurrency).as_millis(),
    );
    drop(proxy);

    let small_rss = peak_rss(&world, &workload).await;
    drop(workload);

    let big = prepare(&world, BIG_BATCH).await;
    let proxy = latency_proxy(&server.endpoint, &[]).await;
    let label = format!("{} records, +20 ms", thousands(BIG_BATCH));
    let big_batch = compare(
        &label,
        LATENCY_TARGET,
        server.client_via(&proxy.endpoint),
        &big,
        BIG_RUNS,
    )
    .await;
    print_comparison(&big_batch);
    println!(
        "           (ideal at 20 ms: {} ms)",
        ideal(big.copies.len(), concurrency).as_millis()
    );
    drop(proxy);
    let big_rss = peak_rss(&world, &big).await;

    for (records, rss) in [(RECORDS, &small_rss), (BIG_BATCH, &big_rss)] {
        let verdict = match records {
            RECORDS if rss.peak_rss_mib >= RSS_TARGET_MIB => {
                format!("(target < {RSS_TARGET_MIB:.0} MiB) MISSED")
            }
            RECORDS => format!("(target < {RSS_TARGET_MIB:.0} MiB) ok"),
            _ => String::new(),
        };
        println!(
            "peak RSS of `artifact-export invoke` on {} records: {:.1} MiB {verdict}; wall {} ms including \
             start-up and config load",
            thousands(records),
            rss.peak_rss_mib,
            rss.wall.as_millis(),
        );
    }
    let per_record_kib =
        (big_rss.peak_rss_mib - small_rss.peak_rss_mib) * 1024.0 / (BIG_BATCH - RECORDS) as f64;
    println!(
        "           per record: {per_record_kib:.2} KiB ((RSS at {} - RSS at {}) / {} records)",
        thousands(BIG_BATCH),
        thousands(RECORDS),
        thousands(BIG_BATCH - RECORDS),
    );
}

/// ceil(copies / concurrency) round trips of a request and its answer at `ADDED_LATENCY`.
fn ideal(copies: usize, concurrency: usize) -> Duration {
    ADDED_LATENCY * copies.div_ceil(concurrency) as u32
}

/// The binary's peak RSS on the workload's event.
async fn peak_rss(world: &World, workload: &Workload) -> ChildRun {
    let env = world.function_env(SUFFIXES);
    let event = workload.event_json.to_string();
    let copies = workload.copies.len();
    tokio::task::spawn_blocking(move || invoke_binary(&event, copies, &env))
        .await
        .expect("binary run")
}

/// The fields of an S3 notification record that S3 always sends and the function reads.
fn lean_record(object: &Uploaded) -> Value {
    json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-25T12:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": object.bucket},
            "object": {"key": encode_key(&object.key), "size": object.size, "eTag": object.etag},
        },
    })
}

/// Uploads `records` objects and builds the event, the settings and the baseline's requests.
async fn prepare(world: &World, records: usize) -> Workload {
    let uploaded: Vec<Uploaded> = futures::stream::iter(0..records)
        .map(|i| {
            let org = ORGS[i % ORGS.len()];
            // Every tenth object of each org has a suffix that is not exported.
            let suffix = match (i / ORGS.len()) % 10 {
                9 => "txt",
                n if n % 2 == 0 => "jpg",
                _ => "pdf",
            };
            let key = format!("{org}/bench{records}/{i:05}.{suffix}");
            async move { world.put(&key, &bytes(OBJECT_SIZE, i as u64)).await }
        })
        .buffered(UPLOAD_CONCURRENCY)
        .collect()
        .await;
    let event_json = json!({"Records": uploaded.iter().map(lean_record).collect::<Vec<_>>()});
    let event = parse_event(&event_json).expect("the generated event parses");
    assert_eq!(event.records.len(), records);
    let copies: Vec<CopyRequest> = uploaded
        .iter()
        .filter(|o| !o.key.ends_with(".txt"))
        .map(|o| {
            let org = o.key.split('/').next().unwrap();
            CopyRequest {
                destination_bucket: world.bucket_of(org).to_string(),
                key: o.key.clone(),
                copy_source: copy_source(&o.bucket, &o.key),
                if_match: format!("\"{}\"", o.etag),
            }
        })
        .collect();
    // The function's defaults, read the way the function reads its environment.
    let env: HashMap<&str, String> = HashMap::from([
        ("SUFFIX_TO_COPY", SUFFIXES.to_string()),
        ("CONFIGURATION_BUCKET", world.config_bucket.clone()),
        ("CONFIGURATION_KEY", world.config_key.clone()),
    ]);
    let source_class_settings = Settings::from_lookup(|name| env.get(name).cloned()).expect("settings");
    // The same orgs with a fixed class, next to the default config.
    let fixed_key = "export/config-fixed-class.json";
    let customers: Vec<_> = world
        .orgs
        .iter()
        .map(|(org, bucket)| serde_json::json!({"org": org, "destinationBucket": bucket, "storageClass": "STANDARD"}))
        .collect();
    world
        .put_config_object(
            fixed_key,
            serde_json::json!({"customers": customers, "retry": 1})
                .to_string()
                .into_bytes(),
        )
        .await;
    let mut settings = source_class_settings.clone();
    settings.config_location = artifact_export::env::ConfigLocation::S3 {
        bucket: world.config_bucket.clone(),
        key: fixed_key.into(),
    };
    Workload {
        records,
        event_json,
        event,
        copies,
        settings,
        source_class_settings,
    }
}

/// Warm-up, then `RUNS` rounds of baseline and function, alternating which goes first.
/// Both use one client, so they share its connection pool.
async fn compare(label: &str, target: f64, client: Client, workload: &Workload, runs: usize) -> Comparison {
    let exporter = Exporter::new(client.clone(), workload.settings.clone());
    let concurrency = workload.settings.copy_concurrency;
    // The warm-up also loads the configuration, which a warm Lambda has cached.
    run_function(&exporter, workload).await;
    run_baseline(&client, &workload.copies, concurrency).await;
    let mut result = Comparison {
        label: label.to_string(),
        target,
        function: Vec::new(),
        baseline: Vec::new(),
    };
    for round in 0..runs {
        if round % 2 == 0 {
            result
                .baseline
                .push(run_baseline(&client, &workload.copies, concurrency).await);
            result.function.push(run_function(&exporter, workload).await);
        } else {
            result.function.push(run_function(&exporter, workload).await);
            result
                .baseline
                .push(run_baseline(&client, &workload.copies, concurrency).await);
        }
    }
    result
}

/// The function with the default `storageClass` ("source") and with a fixed one, after a
/// warm-up each, `RUNS` rounds alternating which goes first: (source, fixed) durations.
async fn compare_storage_class(client: Client, workload: &Workload) -> (Vec<Duration>, Vec<Duration>) {
    let fixed = Exporter::new(client.clone(), workload.settings.clone());
    let source = Exporter::new(client, workload.source_class_settings.clone());
    run_function(&fixed, workload).await;
    run_function(&source, workload).await;
    let (mut with_head, mut without) = (Vec::new(), Vec::new());
    for round in 0..RUNS {
        if round % 2 == 0 {
            with_head.push(run_function(&source, workload).await);
            without.push(run_function(&fixed, workload).await);
        } else {
            without.push(run_function(&fixed, workload).await);
            with_head.push(run_function(&source, workload).await);
        }
    }
    (with_head, without)
}

/// Settings reading a config (`key` in the world's config bucket) whose orgs have a fixed
/// class and glob-filter as their plugin, with glob-filter again as its candidate when
/// `candidate`.
async fn plugin_settings(world: &World, workload: &Workload, key: &str, candidate: bool) -> Settings {
    let settings: Value = serde_json::from_str(PLUGIN_SETTINGS).expect("settings are JSON");
    let glob_filter =
        json!({"source": plugin_artifacts::GLOB_FILTER, "timeoutMs": 5000, "settings": settings});
    let customers: Vec<Value> = world
        .orgs
        .iter()
        .map(|(org, bucket)| {
            let mut plugin = glob_filter.clone();
            if candidate {
                plugin["candidate"] = glob_filter.clone();
            }
            json!({"org": org, "destinationBucket": bucket, "storageClass": "STANDARD", "plugin": plugin})
        })
        .collect();
    world
        .put_config_object(
            key,
            json!({"customers": customers, "retry": 1})
                .to_string()
                .into_bytes(),
        )
        .await;
    let mut settings = workload.settings.clone();
    settings.config_location = artifact_export::env::ConfigLocation::S3 {
        bucket: world.config_bucket.clone(),
        key: key.into(),
    };
    settings
}

/// Every org with a plugin, with a candidate and without, after a warm-up each (the plugins'
/// load and compilation), `RUNS` rounds alternating which goes first: (with, without).
/// Panics unless the candidate was asked for every record and agreed.
async fn compare_candidate(
    client: Client,
    world: &World,
    workload: &Workload,
) -> (Vec<Duration>, Vec<Duration>) {
    let without = Exporter::new(
        client.clone(),
        plugin_settings(world, workload, "export/config-plugin.json", false).await,
    );
    let with = Exporter::new(
        client,
        plugin_settings(world, workload, "export/config-candidate.json", true).await,
    );
    let shadows = |report: &Report| {
        report
            .records
            .iter()
            .filter(|r| {
                r.shadow
                    .as_ref()
                    .is_some_and(|s| s.outcome == ShadowOutcome::Agree)
            })
            .count()
    };
    let (warm, report) = run_function_report(&with, workload).await;
    assert_eq!(
        shadows(&report),
        workload.records,
        "the candidate did not agree on every record ({} ms)",
        warm.as_millis()
    );
    run_function(&without, workload).await;
    let (mut with_times, mut without_times) = (Vec::new(), Vec::new());
    for round in 0..RUNS {
        if round % 2 == 0 {
            without_times.push(run_function(&without, workload).await);
            with_times.push(run_function(&with, workload).await);
        } else {
            with_times.push(run_function(&with, workload).await);
            without_times.push(run_function(&without, workload).await);
        }
    }
    (with_times, without_times)
}

fn print_candidate(with: &[Duration], without: &[Duration], records: usize) {
    let (with_median, without_median) = (median(with), median(without));
    let ratio = with_median.as_secs_f64() / without_median.as_secs_f64();
    let verdict = if ratio <= CANDIDATE_TARGET { "ok" } else { "MISSED" };
    let runs = |times: &[Duration]| {
        times
            .iter()
            .map(|t| t.as_millis().to_string())
            .collect::<Vec<_>>()
            .join("/")
    };
    println!(
        "+20 ms     plugin with candidate {:>5} ms   without {:>5} ms   ratio {ratio:.3} (target <= {CANDIDATE_TARGET}) \
         {verdict}   [runs: with {}, without {}]",
        with_median.as_millis(),
        without_median.as_millis(),
        runs(with),
        runs(without),
    );
    let per_second = |decisions: usize, wall: Duration| decisions as f64 / wall.as_secs_f64();
    println!(
        "           decisions per second of the invocation's wall time (copies included): without \
         candidate {:.0} ({} plugin decisions); with candidate {:.0} ({} plugin + {} candidate \
         decisions), {:.0} records decided per second",
        per_second(records, without_median),
        thousands(records),
        per_second(2 * records, with_median),
        thousands(records),
        thousands(records),
        per_second(records, with_median),
    );
}

/// One invocation of the handler; panics unless every exported record was copied.
async fn run_function(exporter: &Exporter, workload: &Workload) -> Duration {
    run_function_report(exporter, workload).await.0
}

/// [`run_function`], with the report.
async fn run_function_report(exporter: &Exporter, workload: &Workload) -> (Duration, Report) {
    let event = workload.event.clone();
    let started = Instant::now();
    let report = handle(exporter, event).await;
    let elapsed = started.elapsed();
    check_report(&report, workload.records, workload.copies.len());
    (elapsed, report)
}

fn check_report(report: &Report, records: usize, copies: usize) {
    let totals = &report.totals;
    if totals.copied != copies || totals.skipped != records - copies || totals.records != records {
        let first_bad = report
            .records
            .iter()
            .find(|r| r.outcome != Outcome::Copied && r.outcome != Outcome::Skipped);
        panic!(
            "the function did not do the work: expected {copies} copied and {} skipped, got {totals:?}; \
             first record not copied: {first_bad:?}",
            records - copies
        );
    }
}

/// The server's ceiling: the same requests, same client, same concurrency, nothing else
/// (a copy the server answers 5xx, such as Garage's "database is locked" under load, is sent
/// again up to 3 times, as the function's own retries do).
async fn run_baseline(client: &Client, copies: &[CopyRequest], concurrency: usize) -> Duration {
    let started = Instant::now();
    let failures: Vec<String> = futures::stream::iter(copies)
        .map(|c| copy_with_retries(client, c))
        .buffer_unordered(concurrency)
        .filter_map(|r| async move { r.err() })
        .collect()
        .await;
    let elapsed = started.elapsed();
    assert!(
        failures.is_empty(),
        "the baseline's copies failed ({} of {}), first: {}",
        failures.len(),
        copies.len(),
        failures[0]
    );
    elapsed
}

/// One baseline copy, sent again up to 3 times on an error.
async fn copy_with_retries(client: &Client, c: &CopyRequest) -> Result<(), String> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let sent = client
            .copy_object()
            .bucket(&c.destination_bucket)
            .key(&c.key)
            .copy_source(&c.copy_source)
            .copy_source_if_match(&c.if_match)
            .send()
            .await;
        match sent {
            Ok(_) => return Ok(()),
            Err(e) if attempt >= 3 => return Err(format!("{}: {:?}", c.key, e.into_service_error())),
            Err(_) => {}
        }
    }
}

/// The baseline's requests completing in order: the window of `concurrency` moves on only
/// when its oldest copy is done (what `buffered` does), for contrast with the function.
async fn run_baseline_in_order(client: &Client, copies: &[CopyRequest], concurrency: usize) -> Duration {
    let started = Instant::now();
    let failed = futures::stream::iter(copies)
        .map(|c| copy_with_retries(client, c))
        .buffered(concurrency)
        .filter(|r| std::future::ready(r.is_err()))
        .count()
        .await;
    assert_eq!(failed, 0, "the in-order loop's copies failed");
    started.elapsed()
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn print_comparison(c: &Comparison) {
    let function = median(&c.function);
    let baseline = median(&c.baseline);
    let ratio = function.as_secs_f64() / baseline.as_secs_f64();
    let verdict = if ratio <= c.target { "ok" } else { "MISSED" };
    let runs = |times: &[Duration]| {
        times
            .iter()
            .map(|t| t.as_millis().to_string())
            .collect::<Vec<_>>()
            .join("/")
    };
    println!(
        "{:<10} function {:>5} ms   baseline {:>5} ms   ratio {ratio:.2} (target <= {}) {verdict}   \
         [runs: function {}, baseline {}]",
        c.label,
        function.as_millis(),
        baseline.as_millis(),
        c.target,
        runs(&c.function),
        runs(&c.baseline),
    );
}

struct ChildRun {
    peak_rss_mib: f64,
    wall: Duration,
}

/// Runs `artifact-export invoke --event FILE` once (under a small parent) and reads its own peak RSS.
fn invoke_binary(event: &str, copies: usize, env: &[(String, String)]) -> ChildRun {
    let dir = tempfile::tempdir().expect("temp dir");
    let event_path = dir.path().join("event.json");
    std::fs::write(&event_path, event).expect("write event");
    let report_path = dir.path().join("report.json");
    let log_path = dir.path().join("log.txt");
    let binary = env!("CARGO_BIN_EXE_artifact-export");
    let started = Instant::now();
    let child = SmallParent::spawn(
        command_with_small_parent(binary)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(["invoke", "--event"])
            .arg(&event_path)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&report_path).expect("report file"))
            .stderr(std::fs::File::create(&log_path).expect("log file")),
    )
    .unwrap_or_else(|e| panic!("run {binary}: {e}"));
    let reaped = child.reap();
    let wall = started.elapsed();
    assert!(
        reaped.exited_ok,
        "artifact-export invoke failed (wait status {}); last log lines:\n{}",
        reaped.status,
        tail(&log_path, 20)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).expect("read report")).expect("report is JSON");
    let copied = report["totals"]["copied"].as_u64().unwrap_or(0) as usize;
    assert_eq!(
        copied, copies,
        "the binary did not copy everything: {}",
        report["totals"]
    );
    ChildRun {
        peak_rss_mib: reaped.peak_rss_mib,
        wall,
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
