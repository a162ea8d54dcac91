//! `plugin.candidate`: a shadow plugin asked the same question as the org's plugin on live
//! events, compared, never acted on. Each org's plugin is glob-filter (copies `*.jpg`);
//! the candidates agree, disagree or fail in each way a plugin can (or sleep), and every
//! record's outcome is the plugin's.

use artifact_export::event::parse_event;
use artifact_export::handler::handle;
use artifact_export::report::{Outcome, Report};
use serde_json::{Value, json};

use super::{config_with, org_line, record};
use crate::support::events::s3_event;
use crate::support::servers::Server;
use crate::support::world::World;

/// glob-filter copying `*.jpg`, with `candidate` beside it.
fn with_candidate(candidate: Value) -> Value {
    json!({
        "source": plugin_artifacts::GLOB_FILTER,
        "timeoutMs": 5000,
        "settings": {"include": ["**/*.jpg"]},
        "candidate": candidate,
    })
}

/// The record's `shadow` as the report's JSON shows it.
fn shadow_of(report: &Report, key: &str) -> Value {
    serde_json::to_value(record(report, key)).unwrap()["shadow"].clone()
}

async fn candidates_agree_disagree_and_fail_without_changing_outcomes(server: &'static Server) {
    let candidates = [
        (
            "oagree",
            json!({"source": plugin_artifacts::GLOB_FILTER, "timeoutMs": 5000,
                   "settings": {"include": ["**/*.jpg"]}}),
        ),
        (
            "odisagree",
            json!({"source": plugin_artifacts::GLOB_FILTER, "timeoutMs": 5000,
                   "settings": {"include": ["**/*.png"]}}),
        ),
        (
            "otrap",
            json!({"source": plugin_artifacts::PANIC, "timeoutMs": 5000}),
        ),
        // Runs past its budgets: of instructions; of time (what a sleep would use up: a
        // plugin's clocks do not wait, so a busy loop stands in); of memory.
        (
            "obudget",
            json!({"source": plugin_artifacts::LOOP_FOREVER, "timeoutMs": 5000, "maxInstructions": 1000000}),
        ),
        (
            "odeadline",
            json!({"source": plugin_artifacts::LOOP_FOREVER, "timeoutMs": 50, "maxInstructions": 10000000000u64}),
        ),
        (
            "omemory",
            json!({"source": plugin_artifacts::GROW_MEMORY, "timeoutMs": 5000, "maxMemoryMiB": 2}),
        ),
        (
            "obad",
            json!({"source": plugin_artifacts::OTHER_BUCKET, "timeoutMs": 5000}),
        ),
        (
            "oerr",
            json!({"source": plugin_artifacts::ERR_ANSWER, "timeoutMs": 5000}),
        ),
        (
            "ogone",
            json!({"source": "/nonexistent/candidate.wasm", "timeoutMs": 5000}),
        ),
        // Sleeps 120 s, then copies what was proposed.
        (
            "osleep",
            json!({"source": plugin_artifacts::SLEEP, "timeoutMs": 5000}),
        ),
    ];
    let orgs: Vec<&str> = candidates.iter().map(|(org, _)| *org).collect();
    let plugins: Vec<(&str, Value)> = candidates
        .iter()
        .map(|(org, candidate)| (*org, with_candidate(candidate.clone())))
        .collect();
    let world = World::with_config(server, &orgs, |names| config_with(names, &plugins)).await;
    let mut uploads = Vec::new();
    for org in &orgs {
        uploads.push(world.put(&format!("{org}/a.jpg"), b"jpg").await);
        uploads.push(world.put(&format!("{org}/b.pdf"), b"pdf").await);
    }
    let refs: Vec<_> = uploads.iter().collect();
    let started = std::time::Instant::now();
    let report = handle(
        &world.exporter(world.settings("jpg,pdf")),
        parse_event(&s3_event(&refs)).unwrap(),
    )
    .await;
    let elapsed = started.elapsed();
    // The plugin decides every record, whatever its candidate did.
    for org in &orgs {
        let jpg = record(&report, &format!("{org}/a.jpg"));
        assert_eq!(jpg.outcome, Outcome::Copied, "{jpg:?}");
        let pdf = record(&report, &format!("{org}/b.pdf"));
        assert_eq!(pdf.outcome, Outcome::Skipped, "{pdf:?}");
        assert!(
            pdf.reason
                .as_deref()
                .unwrap()
                .contains("matches no include pattern"),
            "{pdf:?}"
        );
        assert_eq!(
            world.keys(world.bucket_of(org)).await,
            [format!("{org}/a.jpg")],
            "{org}"
        );
        assert!(jpg.plugin.is_some_and(|run| run.error.is_none()), "{jpg:?}");
    }
    // The same targets agree; a skip agrees with any skip.
    let agree = shadow_of(&report, "oagree/a.jpg");
    assert_eq!(agree["outcome"], "agree", "{agree}");
    assert_eq!(
        agree["candidate"],
        json!({"copy": [{"bucket": world.bucket_of("oagree"), "key": "oagree/a.jpg"}]})
    );
    let skips = shadow_of(&report, "odisagree/b.pdf");
    assert_eq!(skips["outcome"], "agree", "{skips}");
    assert!(
        skips["candidate"]["skip"].as_str().unwrap().contains("**/*.png"),
        "{skips}"
    );
    let disagree = shadow_of(&report, "odisagree/a.jpg");
    assert_eq!(disagree["outcome"], "disagree", "{disagree}");
    assert!(disagree["candidate"]["skip"].is_string(), "{disagree}");
    // Each way a candidate fails.
    for (org, says) in [
        ("otrap", "trap"),
        ("obudget", "used up its budget of 1000000 instructions"),
        ("odeadline", "timed out after 50 ms"),
        ("omemory", "memory limit of 2 MiB"),
        ("obad", "answer rejected"),
        ("oerr", "returned an error"),
        ("ogone", "not loaded"),
    ] {
        let shadow = shadow_of(&report, &format!("{org}/a.jpg"));
        assert_eq!(shadow["outcome"], "candidate_failed", "{org}: {shadow}");
        let error = shadow["candidate"]["error"].as_str().unwrap_or_default();
        assert!(!error.is_empty() && error.len() <= 1024, "{org}: {shadow}");
        assert!(error.contains(says), "{org}: {says:?} in {shadow}");
    }
    // A candidate that sleeps is not waited for: its clock subscriptions are ready at once
    // (as a plugin's are), so it answers at once with its copy of what was proposed. It
    // agrees with the plugin on the jpg (the same copy) and disagrees on the pdf (the plugin
    // skips it); the records are the plugin's, within the invocation's time.
    assert!(elapsed < std::time::Duration::from_secs(60), "{elapsed:?}");
    let slept = shadow_of(&report, "osleep/a.jpg");
    assert_eq!(slept["outcome"], "agree", "{slept}");
    assert_eq!(
        slept["candidate"],
        json!({"copy": [{"bucket": world.bucket_of("osleep"), "key": "osleep/a.jpg"}]})
    );
    let slept = shadow_of(&report, "osleep/b.pdf");
    assert_eq!(slept["outcome"], "disagree", "{slept}");
    assert_eq!(
        slept["candidate"],
        json!({"copy": [{"bucket": world.bucket_of("osleep"), "key": "osleep/b.pdf"}]})
    );
    let line = org_line(&report, "osleep");
    assert_eq!(
        (
            &line["PluginShadowAgree"],
            &line["PluginShadowDisagree"],
            &line["PluginShadowFailed"]
        ),
        (&json!(1), &json!(1), &json!(0)),
        "{line}"
    );
    // EMF per org.
    let line = org_line(&report, "odisagree");
    assert_eq!(
        (
            &line["PluginShadowAgree"],
            &line["PluginShadowDisagree"],
            &line["PluginShadowFailed"]
        ),
        (&json!(1), &json!(1), &json!(0)),
        "{line}"
    );
    let line = org_line(&report, "otrap");
    assert_eq!(line["PluginShadowFailed"], json!(2), "{line}");
}

/// An org without a candidate: no `shadow` in its records, no shadow metrics.
async fn no_candidate_no_shadow(server: &'static Server) {
    let plugin = json!({"source": plugin_artifacts::GLOB_FILTER, "timeoutMs": 5000,
                        "settings": {"include": ["**/*.jpg"]}});
    let world = World::with_config(server, &["org2"], |orgs| config_with(orgs, &[("org2", plugin)])).await;
    let a = world.put("org2/a.jpg", b"a").await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&a])).unwrap(),
    )
    .await;
    assert_eq!(record(&report, "org2/a.jpg").outcome, Outcome::Copied);
    assert_eq!(shadow_of(&report, "org2/a.jpg"), Value::Null);
    assert!(org_line(&report, "org2").get("PluginShadowAgree").is_none());
}

on_each_server!(
    candidates_agree_disagree_and_fail_without_changing_outcomes,
    no_candidate_no_shadow,
);
