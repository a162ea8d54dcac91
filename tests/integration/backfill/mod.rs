use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use futures::StreamExt;

use crate::support::paths::binary;
use crate::support::proxy::{FaultProxy, Seen};
use crate::support::world::World;

/// `--dry-run` and `--manifest`: the plan printed or written, nothing copied.
mod dry_runs;
/// The in-place rule: destination listings, HEAD fallbacks, part-wise copies, checksums, ETags.
mod in_place;
/// Ctrl-C and SIGKILL: in-flight uploads aborted, a rerun resumes where the run stopped.
mod interrupts;
/// Plugins during a backfill: rewritten keys land, and are checked with a HEAD on a rerun.
mod plugins;
/// Runs end to end: reruns copy nothing, org selection, options, failures, progress.
mod runs;

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
