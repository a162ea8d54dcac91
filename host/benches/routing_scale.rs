//! `make bench` (part 5): routing whose cost does not depend on the number of orgs.
//!
//! For configurations of 1,000, 10,000 and 100,000 orgs (each with its own prefix and
//! destination bucket), it prints the time to parse and validate the configuration, the
//! memory the parsed configuration holds per 1,000 orgs (the process's resident set before
//! and after), and the time to route 100,000 keys (`route::propose`: copy-loop check, owning
//! org, suffix), spread over every org and 10% no org owns. The line for 100,000 orgs gives
//! its per-key time as a ratio of the 1,000-org time, in the same run; the target is at most
//! 1.5x. A report, not a test: a missed target prints MISSED and the exit status stays 0.

use std::hint::black_box;
use std::time::{Duration, Instant};

use artifact_export::config::Config;
use artifact_export::event::SourceObject;
use artifact_export::route::propose;
use artifact_export::suffix::SuffixSet;

const KEYS: usize = 100_000;
const TARGET_RATIO: f64 = 1.5;

/// A configuration of `orgs` orgs: `tenant-N` with prefix `tenants/N/` and bucket
/// `tenant-N-export`.
fn config_text(orgs: usize) -> String {
    let customers: Vec<String> = (0..orgs)
        .map(|i| {
            format!(
                r#"{{"org":"tenant-{i}","destinationBucket":"tenant-{i}-export","prefix":"tenants/{i}/"}}"#
            )
        })
        .collect();
    format!(r#"{{"customers":[{}],"retry":1}}"#, customers.join(","))
}

/// Keys over every org (a tenth owned by none), with a few path segments and suffixes.
fn keys(orgs: usize) -> Vec<SourceObject> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..KEYS)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let org = state as usize % orgs;
            let suffix = ["jpg", "pdf", "indd", "xml", "txt"][i % 5];
            let key = if i % 10 == 9 {
                format!("unowned/{i}/file.{suffix}")
            } else {
                format!("tenants/{org}/projects/p{}/asset-{i}.{suffix}", i % 97)
            };
            SourceObject {
                bucket: "shared-source".into(),
                key,
                size: Some(1024),
                etag: Some("0123456789abcdef0123456789abcdef".into()),
                version_id: None,
                event_time: None,
                event_name: "ObjectCreated:Put".into(),
            }
        })
        .collect()
}

/// The process's resident set in KiB (`VmRSS`).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

struct Figures {
    orgs: usize,
    parse: Duration,
    kib_per_1000: f64,
    per_key: Duration,
    /// The baseline: the owner found by testing every org's prefix (how routing worked
    /// before the index), per key, over the first 1,000 keys.
    scan_per_key: Duration,
}

/// The owner as a scan of every org's prefix finds it.
fn scan<'c>(config: &'c Config, key: &str) -> Option<&'c str> {
    config
        .customers
        .iter()
        .filter(|c| key.starts_with(&c.prefix))
        .max_by_key(|c| c.prefix.len())
        .map(|c| c.org.as_str())
}

fn measure(orgs: usize, suffixes: &SuffixSet) -> Figures {
    let text = config_text(orgs);
    let before = rss_kib();
    let started = Instant::now();
    let config = Config::parse(&text, "routing_scale").expect("generated config is valid");
    let parse = started.elapsed();
    let held = rss_kib().saturating_sub(before);
    let objects = keys(orgs);
    // One pass to warm caches, then the best of three.
    let mut best = Duration::MAX;
    for _ in 0..4 {
        let started = Instant::now();
        let mut routed = 0usize;
        for object in &objects {
            routed += black_box(propose(&config, suffixes, object)).proposed.len();
        }
        black_box(routed);
        best = best.min(started.elapsed());
    }
    let sample = &objects[..1000];
    let started = Instant::now();
    for object in sample {
        let found = black_box(scan(&config, &object.key));
        assert_eq!(
            found,
            config.owner(&object.key).map(|o| o.org.as_str()),
            "index and scan agree"
        );
    }
    let scan_per_key = started.elapsed() / sample.len() as u32;
    drop(config);
    Figures {
        orgs,
        parse,
        kib_per_1000: held as f64 / (orgs as f64 / 1000.0),
        per_key: best / KEYS as u32,
        scan_per_key,
    }
}

fn main() {
    let suffixes = SuffixSet::parse_list("jpg,pdf,indd,xml").unwrap();
    println!(
        "routing_scale: route::propose over {KEYS} keys; config parse + validation; memory held per 1,000 orgs"
    );
    let figures: Vec<Figures> = [1_000, 10_000, 100_000]
        .into_iter()
        .map(|orgs| measure(orgs, &suffixes))
        .collect();
    let base = figures[0].per_key.as_secs_f64();
    for f in &figures {
        let ratio = f.per_key.as_secs_f64() / base;
        println!(
            "  {:>7} orgs: parse+validate {:>8.1} ms, {:>7.1} KiB per 1,000 orgs, {:>6.3} µs per key (scan of every prefix: {:>8.2} µs, {:>6.0}x), {:.2}x the 1,000-org time{}",
            f.orgs,
            f.parse.as_secs_f64() * 1e3,
            f.kib_per_1000,
            f.per_key.as_secs_f64() * 1e6,
            f.scan_per_key.as_secs_f64() * 1e6,
            f.scan_per_key.as_secs_f64() / f.per_key.as_secs_f64(),
            ratio,
            if f.orgs == 100_000 {
                if ratio <= TARGET_RATIO {
                    format!(" (target ≤ {TARGET_RATIO}x: met)")
                } else {
                    format!(" (target ≤ {TARGET_RATIO}x: MISSED)")
                }
            } else {
                String::new()
            }
        );
    }
}
