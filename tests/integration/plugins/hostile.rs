use artifact_export::event::parse_event;
use artifact_export::handler::handle;
use artifact_export::plan::PluginErrorKind;
use artifact_export::reason::ReasonCode;
use artifact_export::report::Outcome;
use serde_json::{Value, json};

use super::{config_with, record};
use crate::support::events::s3_event;
use crate::support::measure::{SmallParent, command_with_python_parent};
use crate::support::paths::binary;
use crate::support::servers::{Server, garage};
use crate::support::world::World;

/// Every hostile plugin in one invocation beside a plain org: each affects only its own
/// record, and the plain org's object is copied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_affect_only_their_own_records() {
    let server = garage();
    // The bucket the `other-bucket` plugin aims at exists, so only the host's check stops it.
    let _ = server
        .client()
        .create_bucket()
        .bucket("someone-elses-bucket")
        .send()
        .await;
    let cases: &[(&str, &str, Outcome, &str)] = &[
        (
            "hloop",
            plugin_artifacts::LOOP_FOREVER,
            Outcome::Failed,
            "used up its budget of 20000000 instructions",
        ),
        (
            "hmem",
            plugin_artifacts::GROW_MEMORY,
            Outcome::Failed,
            "exceeded its memory limit of 16 MiB",
        ),
        ("hpanic", plugin_artifacts::PANIC, Outcome::Failed, "trapped"),
        (
            "herr",
            plugin_artifacts::ERR_ANSWER,
            Outcome::Failed,
            "returned an error: deliberate failure",
        ),
        (
            "hother",
            plugin_artifacts::OTHER_BUCKET,
            Outcome::Failed,
            "answer rejected: target[0] bucket \"someone-elses-bucket\" is not the org's destinationBucket",
        ),
        (
            "hmany",
            plugin_artifacts::MANY_TARGETS,
            Outcome::Failed,
            "answered more than 64 KiB",
        ),
        (
            "hempty",
            plugin_artifacts::EMPTY_KEY,
            Outcome::Failed,
            "key is 0 bytes",
        ),
        ("hnoisy", plugin_artifacts::NOISY, Outcome::Copied, ""),
        ("hsnoop", plugin_artifacts::SNOOP, Outcome::Copied, ""),
    ];
    let mut orgs = vec!["org1"];
    orgs.extend(cases.iter().map(|c| c.0));
    let plugins: Vec<(&str, Value)> = cases
        .iter()
        .map(|(org, path, ..)| {
            // A generous deadline for every plugin (a debug build of the host on a busy
            // machine): the cap or check under test, not the clock, decides; for the
            // endless loop that is the instruction budget.
            (*org, json!({"source": path, "timeoutMs": 10_000}))
        })
        .collect();
    let world = World::with_config(server, &orgs, |orgs| config_with(orgs, &plugins)).await;
    let mut uploaded = vec![world.put("org1/plain.jpg", b"plain").await];
    for (org, ..) in cases {
        uploaded.push(world.put(&format!("{org}/x.jpg"), org.as_bytes()).await);
    }
    uploaded.push(world.put("org1/plain2.jpg", b"plain2").await);
    let event = parse_event(&s3_event(&uploaded.iter().collect::<Vec<_>>())).unwrap();
    let report = handle(&world.exporter(world.settings("jpg")), event).await;

    for key in ["org1/plain.jpg", "org1/plain2.jpg"] {
        assert_eq!(
            record(&report, key).outcome,
            Outcome::Copied,
            "{:?}",
            record(&report, key)
        );
    }
    for (org, plugin, outcome, reason) in cases {
        let r = record(&report, &format!("{org}/x.jpg"));
        assert_eq!(r.outcome, *outcome, "{org}: {r:?}");
        if *outcome == Outcome::Failed {
            let text = r.reason.as_deref().unwrap();
            assert!(text.contains(reason), "{org}: {text}");
            assert!(
                text.contains(&format!("org {org}")) && text.contains(plugin),
                "names org and plugin: {text}"
            );
            assert!(
                world.keys(world.bucket_of(org)).await.is_empty(),
                "{org} copied something"
            );
        }
    }
    // Each failure kind has its reason code, and the plugin-health counts see it.
    let kinds = [
        ("hloop", ReasonCode::PluginTimeout, PluginErrorKind::TimedOut),
        ("hmem", ReasonCode::PluginError, PluginErrorKind::Trapped),
        ("hpanic", ReasonCode::PluginError, PluginErrorKind::Trapped),
        ("herr", ReasonCode::PluginError, PluginErrorKind::ErrAnswer),
        (
            "hother",
            ReasonCode::PluginInvalidAnswer,
            PluginErrorKind::InvalidAnswer,
        ),
        (
            "hmany",
            ReasonCode::PluginInvalidAnswer,
            PluginErrorKind::InvalidAnswer,
        ),
        (
            "hempty",
            ReasonCode::PluginInvalidAnswer,
            PluginErrorKind::InvalidAnswer,
        ),
    ];
    for (org, code, kind) in kinds {
        let r = record(&report, &format!("{org}/x.jpg"));
        assert_eq!(r.reason_code, Some(code), "{org}: {r:?}");
        let run = r.plugin.unwrap_or_else(|| panic!("{org}: the plugin ran: {r:?}"));
        assert_eq!((run.error, run.fallback), (Some(kind), false), "{org}");
    }
    for org in ["hnoisy", "hsnoop"] {
        let run = record(&report, &format!("{org}/x.jpg")).plugin.unwrap();
        assert_eq!((run.error, run.fallback), (None, false), "{org}");
    }
    assert_eq!(
        record(&report, "org1/plain.jpg").plugin,
        None,
        "no plugin, no run"
    );
    assert!(
        world
            .keys("someone-elses-bucket")
            .await
            .iter()
            .all(|k| !k.starts_with("hother/"))
    );
    // The snooping plugin reports what it could see in the key it chose: nothing.
    let seen = world.keys(world.bucket_of("hsnoop")).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].contains("env=0;args=0"), "{seen:?}");
    assert!(seen[0].starts_with("fs=err"), "{seen:?}");
    assert!(report.must_fail_invocation());
}

/// Every way a plugin can wait returns at once: a 120 s sleep, a poll (and a block) on a
/// clock subscription 584 years out, a blocking read of stdin. Each plugin then answers
/// `copy(proposed)`, so its object is copied; a busy loop ends at its instruction budget.
/// Without the non-blocking WASI they would hold their decisions for 120 s or forever
/// (the wall-clock deadline cannot fire inside a host call).
async fn plugins_that_wait_are_not_waited_for(server: &'static Server) {
    let cases = [
        ("wsleep", plugin_artifacts::SLEEP),
        ("wpoll", plugin_artifacts::POLL_FOREVER),
        ("wstdin", plugin_artifacts::READ_STDIN),
        ("wloop", plugin_artifacts::LOOP_FOREVER),
    ];
    let plugins: Vec<(&str, Value)> = cases
        .iter()
        .map(|(org, path)| (*org, json!({"source": path, "timeoutMs": 10_000})))
        .collect();
    let orgs: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let world = World::with_config(server, &orgs, |orgs| config_with(orgs, &plugins)).await;
    let mut uploaded = Vec::new();
    for (org, _) in cases {
        uploaded.push(world.put(&format!("{org}/x.jpg"), org.as_bytes()).await);
    }
    let event = parse_event(&s3_event(&uploaded.iter().collect::<Vec<_>>())).unwrap();
    let report = handle(&world.exporter(world.settings("jpg")), event).await;
    for org in ["wsleep", "wpoll"] {
        let r = record(&report, &format!("{org}/x.jpg"));
        assert_eq!(r.outcome, Outcome::Copied, "{org}: {r:?}");
        assert_eq!(world.keys(world.bucket_of(org)).await, [format!("{org}/x.jpg")]);
    }
    // The stdin reader names what it read in its key: nothing, at once.
    let r = record(&report, "wstdin/x.jpg");
    assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    assert_eq!(world.keys(world.bucket_of("wstdin")).await, ["stdin=0"]);
    let r = record(&report, "wloop/x.jpg");
    assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    let reason = r.reason.as_deref().unwrap();
    assert!(
        reason.contains("used up its budget of 20000000 instructions (maxInstructions)"),
        "the instruction budget, not the 10 s clock, stops the loop: {reason}"
    );
}

/// `maxInstructions` decides, the same way everywhere: the same plugin and input fail
/// under a budget below what they need and pass above it, whatever the clock says.
async fn the_instruction_budget_decides(server: &'static Server) {
    // 1,000,000 iterations take several million instructions.
    let spin = |budget: u64| {
        json!({"source": plugin_artifacts::SPIN, "timeoutMs": 10_000, "maxInstructions": budget,
               "settings": {"spin": 1_000_000}})
    };
    let plugins = [("tight", spin(1_000_000)), ("roomy", spin(1_000_000_000))];
    let world = World::with_config(server, &["tight", "roomy"], |orgs| config_with(orgs, &plugins)).await;
    let a = world.put("tight/a.jpg", b"a").await;
    let b = world.put("roomy/b.jpg", b"b").await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&a, &b])).unwrap(),
    )
    .await;
    let tight = record(&report, "tight/a.jpg");
    assert_eq!(tight.outcome, Outcome::Failed, "{tight:?}");
    assert!(
        tight
            .reason
            .as_deref()
            .unwrap()
            .contains("used up its budget of 1000000 instructions"),
        "{tight:?}"
    );
    assert_eq!(record(&report, "roomy/b.jpg").outcome, Outcome::Copied);
}

/// 300 records in flight at once through one plugin, far more than the instance pool holds
/// (`PLUGIN_INSTANCES` 4 here; 128 by default, but two cores cannot keep 128 CPU-bound
/// decisions in flight, so the pool is shrunk to make the overlap certain): decisions wait
/// for a free instance instead of failing, so with `onError: skip` nothing is silently
/// dropped: all 300 are copied. Each decision spins for a while so decisions overlap.
async fn more_decisions_than_instances_all_copy(server: &'static Server) {
    let plugin = json!({"source": plugin_artifacts::SPIN, "onError": "skip", "timeoutMs": 10_000,
        "maxInstructions": 10_000_000_000u64, "settings": {"spin": 5_000_000}});
    let world = World::with_config(server, &["busy"], |orgs| config_with(orgs, &[("busy", plugin)])).await;
    let mut uploaded = Vec::new();
    for i in 0..300 {
        uploaded.push(world.put(&format!("busy/{i:03}.jpg"), b"x").await);
    }
    let mut settings = world.settings("jpg");
    settings.copy_concurrency = 300;
    settings.plugin_instances = 4;
    let event = parse_event(&s3_event(&uploaded.iter().collect::<Vec<_>>())).unwrap();
    let report = handle(&world.exporter(settings), event).await;
    let not_copied: Vec<_> = report
        .records
        .iter()
        .filter(|r| r.outcome != Outcome::Copied)
        .collect();
    assert!(
        not_copied.is_empty(),
        "{} not copied, e.g. {:?}",
        not_copied.len(),
        not_copied.first()
    );
    assert_eq!(world.keys(world.bucket_of("busy")).await.len(), 300);
}

on_each_server!(
    plugins_that_wait_are_not_waited_for,
    the_instruction_budget_decides,
    more_decisions_than_instances_all_copy,
);

/// Runs `plugin test` with the huge-answer fixture in `mode`; returns exit code, stdout and
/// the process's own peak RSS in bytes (started by a small parent: `wait4` on a child of
/// this test process would fold this process's own peak into the figure).
fn huge_answer_run(mode: &str) -> (Option<i32>, String, u64) {
    use std::io::Read;
    let plain = binary();
    let mut command = command_with_python_parent(plain.get_program());
    command
        .env_clear()
        .envs(plain.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .args([
            "plugin",
            "test",
            plugin_artifacts::HUGE_ANSWER,
            "--org",
            "o",
            "--key",
            "o/a.jpg",
        ])
        .args([
            "--max-memory-mib",
            "1024",
            "--timeout-ms",
            "10000",
            "--max-instructions",
            "10000000000",
        ])
        .arg("--settings")
        .arg(json!({"mode": mode}).to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = SmallParent::spawn(&mut command).unwrap();
    let mut stdout = String::new();
    child.stdout().unwrap().read_to_string(&mut stdout).unwrap();
    let reaped = child.reap();
    let code = libc::WIFEXITED(reaped.status).then(|| libc::WEXITSTATUS(reaped.status));
    (code, stdout, (reaped.peak_rss_mib * 1024.0 * 1024.0) as u64)
}

/// 2,000,000 targets, a 100 MiB skip reason and a 100 MiB error: each is refused before the
/// host lifts it. The host's peak RSS with the huge answer stays within a few MiB of the
/// same guest answering small (the guest's own memory is the same; its canonical-ABI copy
/// of the list, ~32 MiB, is the guest's): lifting the answer would add 100 MiB or more.
#[test]
fn huge_answers_are_refused_before_they_grow_the_host() {
    for (mode, slack_mib) in [("targets", 48u64), ("string", 16), ("error", 16)] {
        let (code, stdout, big) = huge_answer_run(mode);
        assert_eq!(code, Some(1), "{mode}: {stdout}");
        assert!(
            stdout.starts_with("error: answered more than 64 KiB"),
            "{mode}: {}",
            &stdout[..stdout.len().min(300)]
        );
        assert!(
            stdout.len() < 2048,
            "{mode}: the answer is bounded: {} bytes",
            stdout.len()
        );
        let (code, stdout, small) = huge_answer_run(&format!("{mode} small"));
        assert_eq!(code, Some(0), "{mode} small: {stdout}");
        eprintln!(
            "huge answer {mode}: host peak RSS {} MiB, same guest answering small {} MiB",
            big >> 20,
            small >> 20
        );
        assert!(
            big < small + (slack_mib << 20),
            "{mode}: peak RSS {} MiB vs {} MiB answering small",
            big >> 20,
            small >> 20
        );
    }
}
