//! `make bench` (part 2): what a plugin costs.
//!
//! - Per-decision latency (fresh instance + call) of the precompiled `glob-filter` example,
//!   beside native suffix matching of the same keys; with the instruction budget (fuel
//!   metering, as in production) and without it, to put a figure on what metering costs.
//! - The decision as the handler makes it: an invocation's decisions of one org in the org's
//!   lane (`Plugin::decide_ahead`), each decision's own time there and the lane's time per
//!   decision with the answers waiting for their records; a record's wait when records ask
//!   (`PlanAhead`, the plan) back to back with nothing between, one at a time and 16 at
//!   once; the same without `PAGEMAP_SCAN` (kernels before 6.7, such as Lambda's), where
//!   dropped instances' memory is `madvise`d. Beside them, the decision handed to the
//!   blocking pool on its own (`decide_blocking`, what backfill and `plan` do) and that
//!   hand-off alone. The lane again with a candidate (`plugin.candidate`, glob-filter
//!   twice) asked after each decision: the plugin's own time, the lane's wall time against
//!   without.
//! - One policy (passthrough) on WIT 0.1 and on 0.2 (given a HEAD's facts), interleaved:
//!   what the richer contract costs a decision.
//! - Time to load 4 precompiled plugins (`.cwasm`) vs compiling the same 4 from `.wasm`:
//!   what precompiling saves on every cold start.
//! - The same decisions by `plugins/glob-filter-js` (glob-filter in JavaScript) and by
//!   `tests/fixtures/plugins/glob-filter-py` (in Python), beside Rust's: built
//!   with the ComponentizeJS and the componentize-py of `make tools`, each skipped with a
//!   line without its tool.
//!
//! A report, not a test: it prints figures against their targets and exits 0.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use artifact_export::config::{Config, DEFAULT_MAX_INSTRUCTIONS, OnError, PluginSource, PluginSpec};
use artifact_export::event::SourceObject;
use artifact_export::plan::{Ask, PlanAhead, Planned, plan};
use artifact_export::policy::{
    EngineOptions, FactChecksum, Fuel, Given, ObjectFacts, Pending, Plugin, PluginLoad, Request, Runtime,
};
use artifact_export::route::Target;
use artifact_export::route::propose;
use artifact_export::suffix::SuffixSet;

/// The integration tests' helpers; here only the other languages' builds and `thousands`.
#[allow(dead_code)]
#[path = "../../tests/integration/support/mod.rs"]
mod support;

use support::guests;
use support::measure::thousands;

const DECISIONS: usize = 5_000;

/// The limits a JavaScript plugin needs (plugins/README.md, the language table).
const JS_MAX_MEMORY_MIB: u64 = 64;
const JS_MAX_INSTRUCTIONS: u64 = 100_000_000;
/// The limits the Python glob-filter needs (plugins/README.md, the language table): it uses
/// up to ~1.7 million instructions and 12.4 MiB (its initial memory, never grown) a decision.
const PY_MAX_MEMORY_MIB: u64 = 32;
const PY_MAX_INSTRUCTIONS: u64 = 20_000_000;

fn spec(path: &std::path::Path) -> PluginSpec {
    PluginSpec {
        source: PluginSource::File(path.to_path_buf()),
        sha256: None,
        settings: r#"{"include":["**/*.jpg","**/*.pdf"],"exclude":["**/tmp/**"],"minSize":1}"#.into(),
        timeout: Duration::from_millis(20),
        max_memory_bytes: 16 << 20,
        max_instructions: DEFAULT_MAX_INSTRUCTIONS,
        precompiled: path.extension().is_some_and(|e| e == "cwasm"),
        on_error: OnError::Fail,
        candidate: None,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // built by `cargo test --all-targets`; only `cargo bench` runs it
    }
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new().unwrap();
    let wasm_paths = [
        plugin_artifacts::GLOB_FILTER,
        plugin_artifacts::KEY_REWRITER,
        plugin_artifacts::PASSTHROUGH,
        plugin_artifacts::ERR_ANSWER,
    ];
    let mut cwasm_paths = Vec::new();
    for (i, wasm) in wasm_paths.iter().enumerate() {
        let bytes = std::fs::read(wasm).unwrap();
        let out = dir.path().join(format!("p{i}.cwasm"));
        std::fs::write(&out, runtime.engine().precompile_component(&bytes).unwrap()).unwrap();
        cwasm_paths.push(out);
    }

    // Loading: a fresh runtime each time so nothing is served from the compile cache. The
    // engine itself (and its instance pool) is created once per cold start whatever the
    // plugins are, so it is timed apart.
    let started = Instant::now();
    let fresh = Runtime::new().unwrap();
    let engine_start = started.elapsed();
    let started = Instant::now();
    for wasm in wasm_paths {
        fresh.load(None, &spec(std::path::Path::new(wasm))).await.unwrap();
    }
    let compile = started.elapsed();
    let fresh = Runtime::new().unwrap();
    let started = Instant::now();
    for cwasm in &cwasm_paths {
        fresh.load(None, &spec(cwasm)).await.unwrap();
    }
    let precompiled = started.elapsed();

    // Decisions with the precompiled glob-filter.
    let plugin = fresh.load(None, &spec(&cwasm_paths[0])).await.unwrap();
    let settings = spec(&cwasm_paths[0]).settings;
    let keys: Vec<String> = (0..DECISIONS)
        .map(|i| match i % 4 {
            0 => format!("org2/photos/{i}.jpg"),
            1 => format!("org2/docs/{i}.pdf"),
            2 => format!("org2/tmp/{i}.jpg"),
            _ => format!("org2/notes/{i}.txt"),
        })
        .collect();
    let objects: Vec<SourceObject> = keys
        .iter()
        .map(|key| SourceObject {
            bucket: "source".into(),
            key: key.clone(),
            size: Some(4096),
            etag: Some("0123456789abcdef0123456789abcdef".into()),
            version_id: None,
            event_time: Some("2026-11-25T12:00:00Z".into()),
            event_name: "ObjectCreated:Put".into(),
        })
        .collect();
    let suffixes = SuffixSet::parse_list("jpg,pdf,indd,xml").unwrap();
    for object in objects.iter().take(200) {
        let proposed = [Target::new("org2-export", object.key.clone())];
        plugin.decide("org2", object, &proposed, &settings).unwrap();
    }
    let mut wasm_times = Vec::with_capacity(DECISIONS);
    let mut native_times = Vec::with_capacity(DECISIONS);
    for object in &objects {
        let started = Instant::now();
        let selected = suffixes.matching(&object.key).is_some();
        native_times.push(started.elapsed());
        let proposed: Vec<Target> = selected
            .then(|| Target::new("org2-export", object.key.clone()))
            .into_iter()
            .collect();
        let started = Instant::now();
        plugin.decide("org2", object, &proposed, &settings).unwrap();
        wasm_times.push(started.elapsed());
    }
    wasm_times.sort();
    // The smallest possible plugin (returns `proposed`), for the cost of instance + call alone.
    let passthrough = fresh.load(None, &spec(&cwasm_paths[2])).await.unwrap();
    // The same decisions on an engine without fuel metering (its own .cwasm: the compiled
    // code differs), interleaved with metered ones so both see the same machine state.
    let unmetered_runtime = Runtime::with_fuel(Fuel::Unmetered).unwrap();
    let unmetered_cwasm = dir.path().join("glob-unmetered.cwasm");
    std::fs::write(
        &unmetered_cwasm,
        unmetered_runtime
            .engine()
            .precompile_component(&std::fs::read(plugin_artifacts::GLOB_FILTER).unwrap())
            .unwrap(),
    )
    .unwrap();
    let unmetered = unmetered_runtime
        .load(None, &spec(&unmetered_cwasm))
        .await
        .unwrap();
    for object in objects.iter().take(200) {
        unmetered.decide("org2", object, &[], &settings).unwrap();
    }
    let (metered_times, unmetered_times) = interleaved(&plugin, &unmetered, &objects, &suffixes, &settings);
    let mut bare_times = Vec::with_capacity(DECISIONS);
    for object in &objects {
        let proposed = [Target::new("org2-export", object.key.clone())];
        let started = Instant::now();
        passthrough.decide("org2", object, &proposed, "{}").unwrap();
        bare_times.push(started.elapsed());
    }
    bare_times.sort();
    // The same policy (passthrough) on the 0.2 contract, given a HEAD's facts (type, length,
    // time, class, three metadata entries, a checksum), interleaved with 0.1's decisions.
    let passthrough_0_2 = fresh
        .load(None, &spec(Path::new(plugin_artifacts::PASSTHROUGH_0_2)))
        .await
        .unwrap();
    let given = Given {
        facts: Some(Arc::new(ObjectFacts {
            content_type: Some("image/jpeg".into()),
            content_length: Some(4096),
            last_modified: Some("2026-11-25T12:00:00Z".into()),
            storage_class: Some("STANDARD".into()),
            metadata: [
                ("camera".into(), "Hasselblad 500C".into()),
                ("project".into(), "spring-catalogue".into()),
                ("team".into(), "photo".into()),
            ]
            .into_iter()
            .collect(),
            checksum: Some(FactChecksum {
                algorithm: "CRC64NVME".into(),
                value: "AAAAAAAAAAA=".into(),
            }),
        })),
        tags: None,
    };
    let (mut v0_1_times, mut v0_2_times) = (Vec::with_capacity(DECISIONS), Vec::with_capacity(DECISIONS));
    for object in &objects {
        let proposed = [Target::new("org2-export", object.key.clone())];
        let started = Instant::now();
        passthrough.decide("org2", object, &proposed, "{}").unwrap();
        v0_1_times.push(started.elapsed());
        let started = Instant::now();
        passthrough_0_2
            .decide_measured_given("org2", object, &proposed, "{}", &given)
            .0
            .unwrap();
        v0_2_times.push(started.elapsed());
    }
    v0_1_times.sort();
    v0_2_times.sort();
    // The path the handler takes: each record's plan, its plugin's answer asked ahead in the
    // org's lane; records asking in event order one at a time, then 16 at once (a handler's
    // default COPY_CONCURRENCY). Beside it, each decision handed to the blocking pool on
    // its own, as backfill and `plan` do.
    let shared = Arc::new(fresh.load(None, &spec(&cwasm_paths[0])).await.unwrap());
    let lane_times = through_handler_path(&shared, &cwasm_paths[0], &objects, 1).await;
    let concurrent_times = through_handler_path(&shared, &cwasm_paths[0], &objects, 16).await;
    let pooled_times = one_by_one(&shared, &objects, &settings).await;
    let lane = in_the_lane(&shared, &objects, &settings).await;
    // The same lane with a candidate (glob-filter again) asked after each decision.
    let shadowed = fresh
        .load(None, &spec(&cwasm_paths[0]))
        .await
        .unwrap()
        .with_candidate(fresh.load(None, &spec(&cwasm_paths[0])).await, &settings);
    let candidate_lane = in_the_lane(&Arc::new(shadowed), &objects, &settings).await;
    // The hand-off alone: an empty closure on tokio's blocking pool.
    let mut spawn_blocking_times = Vec::with_capacity(DECISIONS);
    for _ in 0..DECISIONS {
        let started = Instant::now();
        tokio::task::spawn_blocking(|| ()).await.unwrap();
        spawn_blocking_times.push(started.elapsed());
    }
    spawn_blocking_times.sort();
    // Kernels without PAGEMAP_SCAN (before 6.7, Lambda's today): dropped instances' memory
    // is reset with madvise, and the next instance faults its pages in again.
    let no_scan_runtime = Runtime::with_engine(EngineOptions {
        pagemap_scan: false,
        ..EngineOptions::default()
    })
    .unwrap();
    let no_scan = Arc::new(no_scan_runtime.load(None, &spec(&cwasm_paths[0])).await.unwrap());
    let mut no_scan_times = Vec::with_capacity(DECISIONS);
    for object in objects.iter().take(200) {
        no_scan.decide("org2", object, &[], &settings).unwrap();
    }
    for object in &objects {
        let started = Instant::now();
        no_scan.decide("org2", object, &[], &settings).unwrap();
        no_scan_times.push(started.elapsed());
    }
    no_scan_times.sort();
    let no_scan_lane = through_handler_path(&no_scan, &cwasm_paths[0], &objects, 1).await;
    let no_scan_in_lane = in_the_lane(&no_scan, &objects, &settings).await;
    native_times.sort();
    let p50 = percentile(&wasm_times, 0.5);
    let used = plugin
        .decide_measured("org2", &objects[0], &[], &settings)
        .1
        .instructions
        .unwrap_or_default();
    println!(
        "plugin_decisions: glob-filter precompiled, {DECISIONS} decisions, each a fresh instance + call"
    );
    println!(
        "decision   p50 {:>7.1} µs   p99 {:>7.1} µs   (target p50 <= 20 µs) {}",
        p50.as_secs_f64() * 1e6,
        percentile(&wasm_times, 0.99).as_secs_f64() * 1e6,
        verdict(p50 <= Duration::from_micros(20))
    );
    println!(
        "fuel on    p50 {:>7.1} µs   p99 {:>7.1} µs   fuel off p50 {:>7.1} µs   p99 {:>7.1} µs   (interleaved; metering costs {:+.0}% at p50; a decision uses ~{used} instructions)",
        percentile(&metered_times, 0.5).as_secs_f64() * 1e6,
        percentile(&metered_times, 0.99).as_secs_f64() * 1e6,
        percentile(&unmetered_times, 0.5).as_secs_f64() * 1e6,
        percentile(&unmetered_times, 0.99).as_secs_f64() * 1e6,
        (percentile(&metered_times, 0.5).as_secs_f64() / percentile(&unmetered_times, 0.5).as_secs_f64()
            - 1.0)
            * 100.0,
    );
    println!(
        "passthrough p50 {:>6.1} µs   p99 {:>7.1} µs   (the smallest plugin: instance + call, no work)",
        percentile(&bare_times, 0.5).as_secs_f64() * 1e6,
        percentile(&bare_times, 0.99).as_secs_f64() * 1e6
    );
    println!(
        "wit 0.2    p50 {:>6.1} µs   p99 {:>7.1} µs   wit 0.1 p50 {:>6.1} µs   p99 {:>7.1} µs   (the same policy, passthrough, on each contract, interleaved; 0.2 given a HEAD's facts: {:.2}x 0.1 at p50)",
        percentile(&v0_2_times, 0.5).as_secs_f64() * 1e6,
        percentile(&v0_2_times, 0.99).as_secs_f64() * 1e6,
        percentile(&v0_1_times, 0.5).as_secs_f64() * 1e6,
        percentile(&v0_1_times, 0.99).as_secs_f64() * 1e6,
        percentile(&v0_2_times, 0.5).as_secs_f64() / percentile(&v0_1_times, 0.5).as_secs_f64(),
    );
    let handler_ok = |t: &[Duration]| {
        percentile(t, 0.5) <= Duration::from_micros(20) && percentile(t, 0.99) <= Duration::from_micros(60)
    };
    println!(
        "handler    p50 {:>7.1} µs   p99 {:>7.1} µs   (glob-filter as the handler makes it: in the org's lane, each decision's own time there; {} decisions in {:.1} ms, {:.1} µs each, the answers waiting for their records; target p50 <= 20, p99 <= 60) {}",
        percentile(&lane.each, 0.5).as_secs_f64() * 1e6,
        percentile(&lane.each, 0.99).as_secs_f64() * 1e6,
        lane.each.len(),
        lane.wall.as_secs_f64() * 1e3,
        lane.wall.as_secs_f64() * 1e6 / lane.each.len() as f64,
        verdict(handler_ok(&lane.each))
    );
    println!(
        "candidate  p50 {:>7.1} µs   (the plugin's own time with a candidate asked after it in the lane; {:.1} µs without); the lane: {:.1} ms for {} decisions, {:.2}x without (decisions per second {:.0} with, {:.0} without)",
        percentile(&candidate_lane.each, 0.5).as_secs_f64() * 1e6,
        percentile(&lane.each, 0.5).as_secs_f64() * 1e6,
        candidate_lane.wall.as_secs_f64() * 1e3,
        candidate_lane.each.len(),
        candidate_lane.wall.as_secs_f64() / lane.wall.as_secs_f64(),
        candidate_lane.each.len() as f64 / candidate_lane.wall.as_secs_f64(),
        lane.each.len() as f64 / lane.wall.as_secs_f64(),
    );
    println!(
        "asking     p50 {:>7.1} µs   p99 {:>7.1} µs   (a record's wait from asking its plan to its decision, records asking one at a time with nothing between: when they catch up with the lane, each answer wakes its record)",
        percentile(&lane_times, 0.5).as_secs_f64() * 1e6,
        percentile(&lane_times, 0.99).as_secs_f64() * 1e6,
    );
    println!(
        "16 at once p50 {:>7.1} µs   p99 {:>7.1} µs   (16 records asking at once with no copy between them, the worst case: the org's one lane bounds them; each from asking to its answer)",
        percentile(&concurrent_times, 0.5).as_secs_f64() * 1e6,
        percentile(&concurrent_times, 0.99).as_secs_f64() * 1e6,
    );
    println!(
        "one by one p50 {:>7.1} µs   p99 {:>7.1} µs   hand-off alone p50 {:>5.1} µs   p99 {:>6.1} µs   (each decision handed to the blocking pool on its own, as backfill and `plan` do: {:.1}x the lane)",
        percentile(&pooled_times, 0.5).as_secs_f64() * 1e6,
        percentile(&pooled_times, 0.99).as_secs_f64() * 1e6,
        percentile(&spawn_blocking_times, 0.5).as_secs_f64() * 1e6,
        percentile(&spawn_blocking_times, 0.99).as_secs_f64() * 1e6,
        percentile(&pooled_times, 0.5).as_secs_f64() / percentile(&lane.each, 0.5).as_secs_f64(),
    );
    println!(
        "no scan    p50 {:>7.1} µs   p99 {:>7.1} µs   handler p50 {:>7.1} µs   p99 {:>7.1} µs   ({} decisions in {:.1} ms, {:.1} µs each)   asking p50 {:>7.1} µs   (no PAGEMAP_SCAN, as on kernels before 6.7; target handler p50 <= 20 µs) {}",
        percentile(&no_scan_times, 0.5).as_secs_f64() * 1e6,
        percentile(&no_scan_times, 0.99).as_secs_f64() * 1e6,
        percentile(&no_scan_in_lane.each, 0.5).as_secs_f64() * 1e6,
        percentile(&no_scan_in_lane.each, 0.99).as_secs_f64() * 1e6,
        no_scan_in_lane.each.len(),
        no_scan_in_lane.wall.as_secs_f64() * 1e3,
        no_scan_in_lane.wall.as_secs_f64() * 1e6 / no_scan_in_lane.each.len() as f64,
        percentile(&no_scan_lane, 0.5).as_secs_f64() * 1e6,
        verdict(percentile(&no_scan_in_lane.each, 0.5) <= Duration::from_micros(20))
    );
    println!(
        "native     p50 {:>7.3} µs   p99 {:>7.3} µs   (plain suffix matching of the same keys)",
        percentile(&native_times, 0.5).as_secs_f64() * 1e6,
        percentile(&native_times, 0.99).as_secs_f64() * 1e6
    );
    println!(
        "load 4     precompiled {:>6.1} ms   compiled from .wasm {:>7.1} ms   (target precompiled <= 5 ms) {}",
        precompiled.as_secs_f64() * 1e3,
        compile.as_secs_f64() * 1e3,
        verdict(precompiled <= Duration::from_millis(5))
    );
    println!(
        "engine     created in {:>6.1} ms (once per cold start: engine, instance pool, linker, epoch ticker)",
        engine_start.as_secs_f64() * 1e3
    );
    javascript(dir.path(), &objects, &settings, p50).await;
    python(dir.path(), &objects, &settings, p50).await;
}

/// glob-filter in JavaScript on the same keys, beside Rust's p50.
async fn javascript(dir: &Path, objects: &[SourceObject], settings: &str, rust_p50: Duration) {
    let Some(tool) = guests::componentize_js() else {
        println!("javascript SKIP: ComponentizeJS is not in target/node-tools (`make tools` installs it)");
        return;
    };
    let wasm = dir.join("glob_filter_js.wasm");
    let started = Instant::now();
    guests::build_glob_filter_js(&tool, &wasm);
    let guest = Guest {
        line: "javascript",
        name: "glob-filter-js",
        build: started.elapsed(),
        max_memory_mib: JS_MAX_MEMORY_MIB,
        max_instructions: JS_MAX_INSTRUCTIONS,
        engine: EngineOptions::default(),
    };
    measure_guest(&guest, &wasm, objects, settings, rust_p50).await;
}

/// glob-filter in Python on the same keys, beside Rust's p50.
async fn python(dir: &Path, objects: &[SourceObject], settings: &str, rust_p50: Duration) {
    let Some(tool) = guests::componentize_py() else {
        println!("python SKIP: componentize-py is not in target/tools-venv (`make tools` installs it)");
        return;
    };
    let wasm = dir.join("glob_filter_py.wasm");
    let started = Instant::now();
    guests::build_glob_filter_py(&tool, &wasm);
    let guest = Guest {
        line: "python",
        name: "glob-filter-py",
        build: started.elapsed(),
        max_memory_mib: PY_MAX_MEMORY_MIB,
        max_instructions: PY_MAX_INSTRUCTIONS,
        engine: EngineOptions::default(),
    };
    measure_guest(&guest, &wasm, objects, settings, rust_p50).await;
}

/// A glob-filter built from another language, and what it needs to run.
struct Guest {
    /// The name its lines start with.
    line: &'static str,
    name: &'static str,
    /// How long its toolchain took to build the `.wasm`.
    build: Duration,
    max_memory_mib: u64,
    max_instructions: u64,
    engine: EngineOptions,
}

/// A built `.wasm` on the same keys as Rust's: build, compile and precompiled load times,
/// sizes, decision latency (a fifth of the decisions: each costs far more), and the most
/// instructions and memory a decision used.
async fn measure_guest(
    guest: &Guest,
    wasm: &Path,
    objects: &[SourceObject],
    settings: &str,
    rust_p50: Duration,
) {
    let line = guest.line;
    let bytes = std::fs::read(wasm).unwrap();
    let compiler = Runtime::with_engine(guest.engine).unwrap();
    let started = Instant::now();
    let cwasm_bytes = compiler.engine().precompile_component(&bytes).unwrap();
    let compile = started.elapsed();
    let cwasm = wasm.with_extension("cwasm");
    std::fs::write(&cwasm, &cwasm_bytes).unwrap();
    let guest_spec = PluginSpec {
        max_memory_bytes: guest.max_memory_mib << 20,
        max_instructions: guest.max_instructions,
        timeout: Duration::from_millis(1000),
        ..spec(&cwasm)
    };
    // A fresh runtime, so nothing is served from the compile cache.
    let fresh = Runtime::with_engine(guest.engine).unwrap();
    let started = Instant::now();
    let plugin = fresh.load(None, &guest_spec).await.unwrap();
    let load = started.elapsed();
    let decisions = objects.len() / 5;
    let mut times = Vec::with_capacity(decisions);
    let mut most = (0, 0);
    for object in objects.iter().take(decisions) {
        let proposed = [Target::new("org2-export", object.key.clone())];
        let started = Instant::now();
        let (answer, usage) = plugin.decide_measured("org2", object, &proposed, settings);
        times.push(started.elapsed());
        if let Err(e) = answer {
            panic!(
                "{line}: {e} (limits: {} MiB, {} instructions)",
                guest.max_memory_mib, guest.max_instructions
            );
        }
        most = (
            most.0.max(usage.instructions.unwrap_or_default()),
            most.1.max(usage.peak_memory_bytes),
        );
    }
    times.sort();
    let p50 = percentile(&times, 0.5);
    println!(
        "{line:<10} p50 {:>7.1} µs   p99 {:>7.1} µs   ({:.0}x Rust's p50; {}, {decisions} decisions, up to {} instructions and {:.1} MiB each; limits {} instructions, {} MiB)",
        p50.as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6,
        p50.as_secs_f64() / rust_p50.as_secs_f64(),
        guest.name,
        thousands(most.0 as usize),
        most.1 as f64 / f64::from(1u32 << 20),
        thousands(guest.max_instructions as usize),
        guest.max_memory_mib,
    );
    println!(
        "{line:<10} {:.1} MB component built in {:.1} s, compiled in {:>6.0} ms ({:.1} MB .cwasm), precompiled loaded in {:>6.1} ms",
        bytes.len() as f64 / 1e6,
        guest.build.as_secs_f64(),
        compile.as_secs_f64() * 1e3,
        cwasm_bytes.len() as f64 / 1e6,
        load.as_secs_f64() * 1e3,
    );
}

/// Every object planned as the handler plans an invocation's records: one config whose org
/// `org2` has `plugin` (loaded from `source`), a `PlanAhead` over all the objects, then
/// `at_once` tasks each planning its share in event order, each plan timed from asking to
/// its decision; sorted.
async fn through_handler_path(
    plugin: &Arc<Plugin>,
    source: &Path,
    objects: &[SourceObject],
    at_once: usize,
) -> Vec<Duration> {
    let mut config = Config::parse(
        r#"{"customers":[{"org":"org2","destinationBucket":"org2-export"}]}"#,
        "plugin_decisions",
    )
    .unwrap();
    config.customers[0].plugin = Some(spec(source));
    let config = Arc::new(config);
    let suffixes = Arc::new(SuffixSet::parse_list("jpg,pdf,indd,xml").unwrap());
    let plugin: PluginLoad = Ok(plugin.clone());
    let proposals: Vec<_> = objects.iter().map(|o| propose(&config, &suffixes, o)).collect();
    let ahead = Arc::new(PlanAhead::new(
        objects
            .iter()
            .zip(&proposals)
            .enumerate()
            .map(|(index, (object, proposal))| (index, object, proposal)),
    ));
    let tasks = (0..at_once).map(|task| {
        let mine: Vec<(usize, SourceObject)> = objects
            .iter()
            .cloned()
            .enumerate()
            .skip(task)
            .step_by(at_once)
            .collect();
        let (config, suffixes, plugin, ahead) =
            (config.clone(), suffixes.clone(), plugin.clone(), ahead.clone());
        tokio::spawn(async move {
            let mut times = Vec::with_capacity(mine.len());
            for (index, object) in mine {
                let started = Instant::now();
                // As the handler does per record: its proposal, then the plan.
                let proposal = propose(&config, &suffixes, &object);
                let ask = Ask::Ahead {
                    ahead: &ahead,
                    index,
                    object: &object,
                    given: &Given::default(),
                };
                let Planned { decision, run, .. } = plan(proposal, Some(&plugin), ask).await;
                times.push(started.elapsed());
                assert!(run.is_some_and(|r| r.error.is_none()), "{decision:?}");
            }
            times
        })
    });
    let mut times: Vec<Duration> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .flat_map(|t| t.expect("decision task"))
        .collect();
    times.sort();
    times
}

/// What one lane did with every object: each decision's own time in the lane (sorted) and
/// the wall time from starting the lane to its last answer.
struct Lane {
    each: Vec<Duration>,
    wall: Duration,
}

/// Every object decided in one lane (`decide_ahead`), as in an invocation: the answers wait
/// for their records (here: only the last is awaited, so no answer wakes a waiting task
/// until then), and each decision's own time is what the lane measured.
async fn in_the_lane(plugin: &Arc<Plugin>, objects: &[SourceObject], settings: &str) -> Lane {
    let requests: Vec<Request> = objects
        .iter()
        .map(|object| Request {
            org: "org2".into(),
            object: object.clone(),
            proposed: vec![Target::new("org2-export", object.key.clone())],
            settings: settings.to_string(),
            given: Pending::default(),
        })
        .collect();
    let started = Instant::now();
    let mut receivers = plugin.clone().decide_ahead(requests);
    let last = receivers.pop().expect("at least one object");
    let last = last.await.expect("every request is answered");
    let wall = started.elapsed();
    let mut each = Vec::with_capacity(receivers.len() + 1);
    for receiver in receivers {
        let answer = receiver.await.expect("every request is answered");
        answer.result.expect("glob-filter decides");
        each.push(answer.elapsed);
    }
    last.result.expect("glob-filter decides");
    each.push(last.elapsed);
    each.sort();
    Lane { each, wall }
}

/// Every object decided through `decide_blocking` (one hand-off to the blocking pool per
/// decision, as backfill and `plan` do), one at a time, each timed from call to answer; sorted.
async fn one_by_one(plugin: &Arc<Plugin>, objects: &[SourceObject], settings: &str) -> Vec<Duration> {
    let mut times = Vec::with_capacity(objects.len());
    for object in objects {
        let proposed = vec![Target::new("org2-export", object.key.clone())];
        let started = Instant::now();
        plugin
            .clone()
            .decide_blocking(
                "org2".into(),
                object.clone(),
                proposed,
                settings.to_string(),
                Given::default(),
            )
            .await
            .unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    times
}

/// Metered and unmetered decisions of the same keys, alternating, each list sorted.
fn interleaved(
    metered: &Plugin,
    unmetered: &Plugin,
    objects: &[SourceObject],
    suffixes: &SuffixSet,
    settings: &str,
) -> (Vec<Duration>, Vec<Duration>) {
    let mut on = Vec::with_capacity(objects.len());
    let mut off = Vec::with_capacity(objects.len());
    for object in objects {
        let proposed: Vec<Target> = suffixes
            .matching(&object.key)
            .is_some()
            .then(|| Target::new("org2-export", object.key.clone()))
            .into_iter()
            .collect();
        // Alternate which goes first, so neither always runs on the other's warm caches.
        let unmetered_first = on.len() % 2 == 1;
        let mut pair = [(metered, &mut on), (unmetered, &mut off)];
        if unmetered_first {
            pair.reverse();
        }
        for (plugin, times) in pair {
            let started = Instant::now();
            plugin.decide("org2", object, &proposed, settings).unwrap();
            times.push(started.elapsed());
        }
    }
    on.sort();
    off.sort();
    (on, off)
}
