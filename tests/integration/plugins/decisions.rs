use artifact_export::event::parse_event;
use artifact_export::handler::handle;
use artifact_export::plan::PluginErrorKind;
use artifact_export::reason::ReasonCode;
use artifact_export::report::Outcome;
use serde_json::json;

use super::{config_with, record};
use crate::support::events::s3_event;
use crate::support::servers::{Server, garage};
use crate::support::world::World;

async fn rewrite_lands_at_the_new_key(server: &'static Server) {
    let plugin = json!({
        "source": plugin_artifacts::KEY_REWRITER,
        "timeoutMs": 5000,
        "settings": {"replacePrefix": {"from": "org2/", "to": "exports/"}, "datePartition": true}
    });
    let world = World::with_config(server, &["org1", "org2"], |orgs| {
        config_with(orgs, &[("org2", plugin)])
    })
    .await;
    let a = world.put("org2/photos/a.jpg", b"rewritten").await;
    let b = world.put("org1/photos/b.jpg", b"plain").await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&a, &b])).unwrap(),
    )
    .await;
    let r = record(&report, "org2/photos/a.jpg");
    assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    // The event time of the fixture events is 2026-11-25T12:00:00.000Z.
    assert_eq!(
        r.destination_key.as_deref(),
        Some("exports/2026/11/25/photos/a.jpg")
    );
    assert_eq!(
        world.keys(world.bucket_of("org2")).await,
        ["exports/2026/11/25/photos/a.jpg"]
    );
    assert_eq!(
        world
            .get(world.bucket_of("org2"), "exports/2026/11/25/photos/a.jpg")
            .await
            .as_deref(),
        Some(&b"rewritten"[..])
    );
    assert_eq!(world.keys(world.bucket_of("org1")).await, ["org1/photos/b.jpg"]);
}

async fn filter_skips_what_it_excludes(server: &'static Server) {
    let plugin = json!({
        "source": plugin_artifacts::GLOB_FILTER,
        "timeoutMs": 5000,
        "settings": {"include": ["**/*.jpg"], "exclude": ["**/tmp/**"]}
    });
    let world = World::with_config(server, &["org2"], |orgs| config_with(orgs, &[("org2", plugin)])).await;
    let keep = world.put("org2/a.jpg", b"keep").await;
    let tmp = world.put("org2/tmp/b.jpg", b"tmp").await;
    let pdf = world.put("org2/c.pdf", b"pdf").await;
    let report = handle(
        &world.exporter(world.settings("jpg,pdf")),
        parse_event(&s3_event(&[&keep, &tmp, &pdf])).unwrap(),
    )
    .await;
    assert_eq!(record(&report, "org2/a.jpg").outcome, Outcome::Copied);
    for key in ["org2/tmp/b.jpg", "org2/c.pdf"] {
        let r = record(&report, key);
        assert_eq!(r.outcome, Outcome::Skipped, "{r:?}");
        assert!(r.reason.as_deref().unwrap().starts_with("plugin "), "{r:?}");
    }
    assert_eq!(world.keys(world.bucket_of("org2")).await, ["org2/a.jpg"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_error_skip_and_default() {
    let server = garage();
    let plugins = [
        (
            "oskip",
            json!({"source": plugin_artifacts::ERR_ANSWER, "onError": "skip", "timeoutMs": 5000}),
        ),
        (
            "odefault",
            json!({"source": plugin_artifacts::ERR_ANSWER, "onError": "default", "timeoutMs": 5000}),
        ),
        (
            "ofail",
            json!({"source": plugin_artifacts::ERR_ANSWER, "timeoutMs": 5000}),
        ),
        // An invalid answer is a contract violation: the record fails whatever onError says.
        (
            "oforeign",
            json!({"source": plugin_artifacts::OTHER_BUCKET, "onError": "skip", "timeoutMs": 5000}),
        ),
        (
            "oforeignd",
            json!({"source": plugin_artifacts::OTHER_BUCKET, "onError": "default", "timeoutMs": 5000}),
        ),
    ];
    let world = World::with_config(
        server,
        &["oskip", "odefault", "ofail", "oforeign", "oforeignd"],
        |orgs| config_with(orgs, &plugins),
    )
    .await;
    let s = world.put("oskip/a.jpg", b"s").await;
    let d = world.put("odefault/a.jpg", b"d").await;
    let d_txt = world.put("odefault/a.txt", b"t").await;
    let f = world.put("ofail/a.jpg", b"f").await;
    let fs = world.put("oforeign/a.jpg", b"x").await;
    let fd = world.put("oforeignd/a.jpg", b"x").await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&s, &d, &d_txt, &f, &fs, &fd])).unwrap(),
    )
    .await;
    let outcomes: Vec<_> = report.records.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Skipped,
            Outcome::Copied,
            Outcome::Skipped,
            Outcome::Failed,
            Outcome::Failed,
            Outcome::Failed
        ]
    );
    for r in &report.records[4..] {
        assert!(r.reason.as_deref().unwrap().contains("answer rejected"), "{r:?}");
        assert!(!r.retryable, "a contract violation is not retried: {r:?}");
    }
    assert!(
        report.records[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("onError: skip")
    );
    assert_eq!(world.keys(world.bucket_of("odefault")).await, ["odefault/a.jpg"]);
    // skip and default are fallbacks (PluginFallbacks); fail is not, and has its code.
    let runs: Vec<_> = report
        .records
        .iter()
        .map(|r| r.plugin.map(|run| (run.error, run.fallback)))
        .collect();
    let err = Some(PluginErrorKind::ErrAnswer);
    assert_eq!(
        runs,
        [
            Some((err, true)),
            Some((err, true)),
            Some((err, true)),
            Some((err, false)),
            // Answers naming a foreign bucket: invalid, whatever onError says; no fallback.
            Some((Some(PluginErrorKind::InvalidAnswer), false)),
            Some((Some(PluginErrorKind::InvalidAnswer), false)),
        ]
    );
    assert_eq!(report.records[3].reason_code, Some(ReasonCode::PluginError));
    for r in &report.records[4..] {
        assert_eq!(r.reason_code, Some(ReasonCode::PluginInvalidAnswer), "{r:?}");
    }
}

/// A Python plugin (glob-filter's behaviour, tests/fixtures/plugins/glob-filter-py, built
/// with the componentize-py of `make tools`) runs in the host as built, under the default
/// limits of memory and instructions: it copies what it includes and skips the rest.
async fn a_python_plugin_copies_and_skips_as_it_decides(server: &'static Server) {
    let wasm = crate::support::guests::glob_filter_py();
    let plugin = json!({
        "source": wasm.to_str().unwrap(),
        "timeoutMs": 5000,
        "settings": {"include": ["**/*.jpg"], "exclude": ["**/tmp/**"]}
    });
    let world = World::with_config(server, &["org2"], |orgs| config_with(orgs, &[("org2", plugin)])).await;
    let keep = world.put("org2/a.jpg", b"keep").await;
    let tmp = world.put("org2/tmp/b.jpg", b"tmp").await;
    let pdf = world.put("org2/c.pdf", b"pdf").await;
    let report = handle(
        &world.exporter(world.settings("jpg,pdf")),
        parse_event(&s3_event(&[&keep, &tmp, &pdf])).unwrap(),
    )
    .await;
    let r = record(&report, "org2/a.jpg");
    assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    let r = record(&report, "org2/tmp/b.jpg");
    assert_eq!(r.outcome, Outcome::Skipped, "{r:?}");
    assert!(
        r.reason.as_deref().unwrap().contains("excluded by exclude[0]"),
        "{r:?}"
    );
    let r = record(&report, "org2/c.pdf");
    assert_eq!(r.outcome, Outcome::Skipped, "{r:?}");
    assert!(
        r.reason
            .as_deref()
            .unwrap()
            .contains("matches no include pattern"),
        "{r:?}"
    );
    assert_eq!(world.keys(world.bucket_of("org2")).await, ["org2/a.jpg"]);
}

/// A skip reason over 1 KiB (but within the answer cap) is cut to 1 KiB in the report.
async fn long_reasons_are_cut_to_1_kib(server: &'static Server) {
    let plugin =
        json!({"source": plugin_artifacts::HUGE_ANSWER, "timeoutMs": 5000, "settings": {"mode": "medium"}});
    let world = World::with_config(server, &["org1"], |orgs| config_with(orgs, &[("org1", plugin)])).await;
    let a = world.put("org1/a.jpg", b"a").await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&a])).unwrap(),
    )
    .await;
    let r = &report.records[0];
    assert_eq!(r.outcome, Outcome::Skipped, "{r:?}");
    let reason = r.reason.as_deref().unwrap();
    let (_, plugin_part) = reason.split_once(": ").unwrap();
    assert!(plugin_part.len() <= 1024, "{} bytes", plugin_part.len());
    assert!(plugin_part.ends_with("(8192 bytes, cut)"), "{plugin_part}");
}

on_each_server!(
    rewrite_lands_at_the_new_key,
    filter_skips_what_it_excludes,
    a_python_plugin_copies_and_skips_as_it_decides,
    long_reasons_are_cut_to_1_kib,
);
