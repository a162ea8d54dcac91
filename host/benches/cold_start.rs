//! `make bench` (part 3): cold start. The time from the function process's start to the
//! answer of its first event, as Lambda runs it: cargo-lambda's Runtime API emulator
//! (`cargo lambda watch --only-lambda-apis`), an invoke already queued (it waits until a
//! runtime polls), then the release binary spawned as the function process at t0; the
//! invoke's answer arrives at t1. The event has one record per org (4 copies), so t1 - t0
//! covers process start, runtime init, reading the config from local Garage, loading the
//! plugins if any, and the 4 `CopyObject`s.
//!
//! Two configurations: `config/sample.json` as it is (4 orgs, no plugins; only the
//! destination buckets renamed to this run's), and the same with a precompiled `.cwasm`
//! plugin per org (glob-filter, key-rewriter, passthrough, err-answer with `onError:
//! default`), read from the config bucket next to the config and pinned by sha256.
//!
//! Baselines in the same run, so the figures compare across machines: the same process
//! handling a second (warm) event, and `artifact-export --version` from exec to exit.
//! Peak RSS is the function process's own (`VmHWM`, read after both events, before it is
//! killed; `wait4`'s `ru_maxrss` would include the bench's own peak).
//!
//! A third baseline: the server's own share (the config GET, with plugins the 4 `.cwasm`
//! GETs, and the 4 copies, from a warm client), since a slow or loaded server (a test Garage
//! whose metadata has grown over many runs; Garage serving a 0.4 MB object in 5–20 ms) moves
//! every figure here. Each configuration prints its cold start beyond that share; with
//! plugins, the 4 `.cwasm` GETs alone are printed too (the floor under the plugin reads). Its plugin
//! GETs each take a connection of their own: Garage writes a response's headers and body
//! separately without `TCP_NODELAY`, so on a reused connection a body of a few tens of KB
//! waits ~40 ms for the client's delayed ACK (the function's cold start meets that stall on
//! the one plugin GET that reuses the config GET's connection, now and then).
//!
//! `COLD_START_LOG=1` prints each cold start's function log (debug: plugin reads and loads,
//! engine creation, records, timestamped), to profile one.
//!
//! Targets: cold start ≤ 50 ms with the sample config and ≤ 30 ms with 4 precompiled
//! plugins, peak RSS < 64 MiB. A report, not a
//! test: a missed target prints MISSED and the exit status stays 0; it fails only when the
//! work itself fails (an event not handled), since such timings would measure nothing.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use artifact_export::policy::Runtime;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The integration tests' helpers (servers, worlds, events, the Lambda emulator), used as they are.
#[allow(dead_code)]
#[path = "../../tests/integration/support/mod.rs"]
mod support;

use support::events::s3_event;
use support::lambda::{Emulator, clean_command};
use support::measure::kill_and_reap;
use support::servers::{Server, garage};
use support::world::{Uploaded, World};

/// Cold starts per configuration (each a fresh emulator and process); median reported.
const RUNS: usize = 10;
const ORGS: [&str; 4] = ["org1", "org2", "org3", "org4"];
const SUFFIXES: &str = "jpg,pdf,indd,xml";
/// How long the queued invoke is given to reach the emulator before the process starts.
const QUEUE_DELAY: Duration = Duration::from_millis(300);
const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);
const COLD_TARGET: Duration = Duration::from_millis(50);
/// With four precompiled plugins read from S3 (issue: "at most 30 ms to the first answered
/// event").
const COLD_PLUGINS_TARGET: Duration = Duration::from_millis(30);
const RSS_TARGET_MIB: f64 = 64.0;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // built by `cargo test --all-targets`; only `cargo bench` runs it
    }
    // The same runtime the binary gets from #[tokio::main] on this machine.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

/// One cold start.
struct Run {
    cold: Duration,
    warm: Duration,
    peak_rss_mib: f64,
}

async fn run() {
    let server = garage();
    let binary = env!("CARGO_BIN_EXE_artifact-export");
    println!(
        "cold_start on {} ({}): process start -> first event answered, through cargo-lambda's Runtime API \
         emulator; event of {} records (one copy per org); {RUNS} runs per config; binary {binary}",
        server.name,
        server.endpoint,
        ORGS.len(),
    );

    let version = version_baseline(binary);
    println!(
        "baseline   `artifact-export --version` exec to exit: median {:.1} ms  [{}]",
        ms(median(&version)),
        runs(&version)
    );

    let sample = World::with_config(server, &ORGS, sample_config).await;
    let (event, objects) = objects_event(&sample).await;
    let results = cold_starts(&sample, &event).await;
    // After the cold starts: a server still settling what the setup just wrote (Garage, right
    // after the plugins' upload) would make the share look larger than the function saw it.
    let server_time = server_baseline(&sample, &[], &objects).await;
    println!(
        "baseline   the server's share: config GET, then 4 concurrent CopyObjects, from a warm client: median {:.1} ms  [{}]",
        ms(median(&server_time)),
        runs(&server_time)
    );
    report("sample config", &results, &version, &server_time);

    let plugins = plugin_world(server).await;
    let (event, objects) = objects_event(&plugins).await;
    let plugin_keys: Vec<String> = ORGS.iter().map(|org| plugin_key(&plugins, org)).collect();
    let results = cold_starts(&plugins, &event).await;
    let server_time = server_baseline(&plugins, &plugin_keys, &objects).await;
    println!(
        "baseline   the server's share with plugins: config GET, then the 4 .cwasm GETs, then 4 CopyObjects \
         (each step concurrent), from a warm client: median {:.1} ms  [{}]",
        ms(median(&server_time)),
        runs(&server_time)
    );
    report("+4 plugins", &results, &version, &server_time);
    let gets = plugin_gets_baseline(&plugins, &plugin_keys).await;
    println!(
        "baseline   of that share, the 4 .cwasm GETs alone (concurrent, each on a new connection): median {:.1} ms  [{}]",
        ms(median(&gets)),
        runs(&gets)
    );
}

/// The 4 plugin GETs alone, each from a client of its own (a new connection, as the
/// function's cold start opens): the floor under a cold start's plugin reads.
async fn plugin_gets_baseline(world: &World, plugin_keys: &[String]) -> Vec<Duration> {
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..=RUNS {
        let clients: Vec<_> = plugin_keys.iter().map(|_| world.server.client()).collect();
        let started = Instant::now();
        let gets = plugin_keys
            .iter()
            .zip(&clients)
            .map(|(key, client)| read_whole(client, &world.config_bucket, key));
        futures::future::join_all(gets).await;
        times.push(started.elapsed());
    }
    times.remove(0);
    times
}

/// `config/sample.json` as it is, with its destination buckets replaced by the world's.
fn sample_config(orgs: &[(String, String)]) -> String {
    let path = support::paths::repo("config/sample.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut config: Value = serde_json::from_str(&text).expect("config/sample.json is JSON");
    let customers = config["customers"].as_array_mut().expect("customers[]");
    assert_eq!(customers.len(), orgs.len(), "the sample config has 4 orgs");
    for customer in customers {
        let org = customer["org"].as_str().expect("org").to_string();
        let (_, bucket) = orgs
            .iter()
            .find(|(o, _)| *o == org)
            .unwrap_or_else(|| panic!("sample org {org} is not one of {ORGS:?}"));
        customer["destinationBucket"] = json!(bucket);
    }
    config.to_string()
}

/// The sample config with a precompiled plugin per org, uploaded next to the config.
async fn plugin_world(server: &'static Server) -> World {
    let engine = Runtime::new().expect("plugin engine");
    let guests = [
        (
            plugin_artifacts::GLOB_FILTER,
            json!({"include": ["**/*.jpg", "**/*.pdf"]}),
            "fail",
        ),
        (
            plugin_artifacts::KEY_REWRITER,
            json!({"replacePrefix": {"from": "org2/", "to": "exports/"}}),
            "fail",
        ),
        (plugin_artifacts::PASSTHROUGH, json!({}), "fail"),
        // Answers `err` on every call; `default` falls back to suffix matching.
        (plugin_artifacts::ERR_ANSWER, json!({}), "default"),
    ];
    let mut compiled = Vec::new();
    for (wasm, settings, on_error) in guests {
        let bytes = std::fs::read(wasm).unwrap_or_else(|e| panic!("{wasm}: {e}"));
        let cwasm = engine
            .engine()
            .precompile_component(&bytes)
            .unwrap_or_else(|e| panic!("precompile {wasm}: {e}"));
        let sha = hex::encode(Sha256::digest(&cwasm));
        compiled.push((cwasm, sha, settings, on_error));
    }
    let specs: Vec<(String, Value, &str)> = compiled
        .iter()
        .map(|(_, sha, settings, on_error)| (sha.clone(), settings.clone(), *on_error))
        .collect();
    let world = World::with_config(server, &ORGS, |orgs| {
        let mut config: Value = serde_json::from_str(&sample_config(orgs)).expect("sample config");
        let customers = config["customers"].as_array_mut().expect("customers[]");
        for (customer, (sha, settings, on_error)) in customers.iter_mut().zip(&specs) {
            let org = customer["org"].as_str().expect("org").to_string();
            customer["plugin"] = json!({
                "source": format!("plugins/{org}.cwasm"),
                "precompiled": true,
                "sha256": sha,
                "settings": settings,
                "onError": on_error,
            });
        }
        config.to_string()
    })
    .await;
    for (org, (cwasm, ..)) in ORGS.iter().zip(compiled) {
        world.put_config_object(&plugin_key(&world, org), cwasm).await;
    }
    world
}

/// Where `org`'s `.cwasm` lies: `plugins/{org}.cwasm` next to the config object.
fn plugin_key(world: &World, org: &str) -> String {
    match world.config_key.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/plugins/{org}.cwasm"),
        None => format!("plugins/{org}.cwasm"),
    }
}

/// One object per org and the S3 notification announcing them.
async fn objects_event(world: &World) -> (Value, Vec<Uploaded>) {
    let mut objects: Vec<Uploaded> = Vec::new();
    for org in ORGS {
        objects.push(world.put(&format!("{org}/cold/start.jpg"), b"cold start").await);
    }
    (s3_event(&objects.iter().collect::<Vec<_>>()), objects)
}

/// What the server alone takes for an event's requests (the config GET, then the 4 copies
/// at once) from a client whose connections are open: the part of a cold start that is the
/// server's, so figures from machines (or servers) of different speed compare.
async fn server_baseline(world: &World, plugin_keys: &[String], objects: &[Uploaded]) -> Vec<Duration> {
    let client = &world.client;
    // The plugin GETs each on a connection of its own (a client of its own), as three of
    // the function's four are: on a reused connection Garage's answer of a few tens of KB
    // waits ~40 ms for a delayed ACK (it writes the headers and the body in two writes,
    // Nagle on), which would make this share the stall, not the server's work.
    let get = |key: &str| {
        let fresh = if key == world.config_key {
            client.clone()
        } else {
            world.server.client()
        };
        let key = key.to_string();
        async move { read_whole(&fresh, &world.config_bucket, &key).await }
    };
    let once = || async {
        let started = Instant::now();
        get(&world.config_key).await;
        futures::future::join_all(plugin_keys.iter().map(|key| get(key))).await;
        let copies = objects.iter().map(|o| {
            let org = o.key.split('/').next().unwrap_or_default();
            client
                .copy_object()
                .bucket(world.bucket_of(org))
                .key(&o.key)
                .copy_source(artifact_export::s3::keys::copy_source(&o.bucket, &o.key))
                .copy_source_if_match(format!("\"{}\"", o.etag))
                .send()
        });
        for copied in futures::future::join_all(copies).await {
            copied.expect("baseline copy");
        }
        started.elapsed()
    };
    once().await;
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        times.push(once().await);
    }
    times
}

/// GETs `bucket`/`key` and reads its whole body (the baselines' reads).
async fn read_whole(client: &aws_sdk_s3::Client, bucket: &str, key: &str) {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("baseline GET {key}: {e}"));
    out.body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("baseline GET {key} body: {e}"));
}

async fn cold_starts(world: &World, event: &Value) -> Vec<Run> {
    let http: HttpClient<_, Full<Bytes>> = HttpClient::builder(TokioExecutor::new()).build_http();
    let env = function_env(world);
    let mut results = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        // A fresh emulator each time: a killed process's pending poll must not take the
        // next run's invoke.
        let emulator = tokio::task::spawn_blocking(Emulator::start)
            .await
            .expect("emulator start");
        let url = emulator.invoke_url();
        let cold_invoke = tokio::spawn(invoke(http.clone(), url.clone(), event.to_string()));
        tokio::time::sleep(QUEUE_DELAY).await;

        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("function.log");
        let spawned_at = std::time::SystemTime::now();
        let started = Instant::now();
        // Reaped by `wait4` below, which std's `Child::wait` cannot replace (no rusage).
        #[allow(clippy::zombie_processes)]
        let child = clean_command(Path::new(env!("CARGO_BIN_EXE_artifact-export")))
            .envs(emulator.function_env())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start the function process");
        let (answered, cold_body) = cold_invoke.await.expect("invoke task");
        let cold = answered.duration_since(started);
        check_answer(&cold_body, &log);

        let sent = Instant::now();
        let (answered, warm_body) = invoke(http.clone(), url, event.to_string()).await;
        let warm = answered.duration_since(sent);
        check_answer(&warm_body, &log);

        let peak_rss_mib = kill_and_reap(child.id()).peak_rss_mib;
        if profiling() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            let spawned = spawned_at
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            eprintln!(
                "---- cold start {:.1} ms; spawned at {}.{:06} (Unix seconds); the function's log:\n{log}",
                ms(cold),
                spawned.as_secs(),
                spawned.subsec_micros()
            );
        }
        drop(emulator);
        results.push(Run {
            cold,
            warm,
            peak_rss_mib,
        });
    }
    results
}

/// The function's environment besides the emulator's `AWS_LAMBDA_*` variables.
fn function_env(world: &World) -> Vec<(String, String)> {
    let mut env = world.function_env(SUFFIXES);
    let level = if profiling() {
        "info,artifact_export=debug"
    } else {
        "info"
    };
    env.push(("RUST_LOG".to_string(), level.to_string()));
    env
}

/// `COLD_START_LOG=1`: each cold start's function log (plugin reads and loads, engine
/// creation, records, with timestamps) is printed on stderr after its run, to profile.
fn profiling() -> bool {
    std::env::var_os("COLD_START_LOG").is_some()
}

/// POSTs the event to the emulator's Invoke API (as `cargo lambda invoke` does); returns
/// when the whole answer is in, with that instant.
async fn invoke(
    http: HttpClient<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    url: String,
    body: String,
) -> (Instant, Result<Value, String>) {
    let request = hyper::Request::post(url.as_str())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("invoke request");
    let answer = tokio::time::timeout(INVOKE_TIMEOUT, async {
        let response = http
            .request(request)
            .await
            .map_err(|e| format!("invoke {url}: {e}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("invoke body: {e}"))?
            .to_bytes();
        let text = String::from_utf8_lossy(&body).into_owned();
        if !status.is_success() {
            return Err(format!("invocation failed ({status}): {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("answer is not JSON ({e}): {text}"))
    })
    .await
    .unwrap_or_else(|_| Err(format!("no answer within {INVOKE_TIMEOUT:?}")));
    (Instant::now(), answer)
}

/// Panics (with the function's log) unless the event's 4 records were copied.
fn check_answer(answer: &Result<Value, String>, log: &Path) {
    let copied = answer.as_ref().ok().and_then(|a| a["totals"]["copied"].as_u64());
    if copied != Some(ORGS.len() as u64) {
        panic!(
            "the function did not handle the event (expected {} copies): {answer:?}\nfunction log:\n{}",
            ORGS.len(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
}

/// `artifact-export --version`, exec to exit, `RUNS` times after one warm-up.
fn version_baseline(binary: &str) -> Vec<Duration> {
    let once = || {
        let started = Instant::now();
        let status = clean_command(Path::new(binary))
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .expect("run artifact-export --version");
        assert!(status.success(), "artifact-export --version: {status}");
        started.elapsed()
    };
    once();
    (0..RUNS).map(|_| once()).collect()
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn runs(times: &[Duration]) -> String {
    times
        .iter()
        .map(|t| format!("{:.0}", ms(*t)))
        .collect::<Vec<_>>()
        .join("/")
}

fn report(label: &str, results: &[Run], version: &[Duration], server_share: &[Duration]) {
    let cold: Vec<Duration> = results.iter().map(|r| r.cold).collect();
    let warm: Vec<Duration> = results.iter().map(|r| r.warm).collect();
    let mut rss: Vec<f64> = results.iter().map(|r| r.peak_rss_mib).collect();
    rss.sort_by(f64::total_cmp);
    let (cold_p50, warm_p50) = (median(&cold), median(&warm));
    let (min, max) = (
        cold.iter().min().copied().unwrap_or_default(),
        cold.iter().max().copied().unwrap_or_default(),
    );
    let rss_max = rss.last().copied().unwrap_or_default();
    let target = if label == "sample config" {
        COLD_TARGET
    } else {
        COLD_PLUGINS_TARGET
    };
    let cold_verdict = format!(
        " (target <= {} ms) {}",
        target.as_millis(),
        if cold_p50 <= target { "ok" } else { "MISSED" }
    );
    println!(
        "{label:<14} cold start median {:>6.1} ms (min {:.1}, max {:.1}){cold_verdict}   warm event {:>5.1} ms   \
         cold/warm {:.1}x   cold/--version {:.1}x   [runs: {}]",
        ms(cold_p50),
        ms(min),
        ms(max),
        ms(warm_p50),
        cold_p50.as_secs_f64() / warm_p50.as_secs_f64(),
        cold_p50.as_secs_f64() / median(version).as_secs_f64(),
        runs(&cold),
    );
    let own = cold_p50.saturating_sub(median(server_share));
    println!(
        "{:<14} beyond the server's share: {:.1} ms (cold start median - the server's share median)",
        "",
        ms(own)
    );
    println!(
        "{:<14} peak RSS median {:.1} MiB, max {rss_max:.1} MiB (target < {RSS_TARGET_MIB:.0} MiB) {}",
        "",
        rss[rss.len() / 2],
        if rss_max < RSS_TARGET_MIB { "ok" } else { "MISSED" }
    );
}
