use std::time::Duration;

use artifact_export::event::parse_event;
use artifact_export::exporter::Exporter;
use artifact_export::handler::handle;
use artifact_export::report::Outcome;
use serde_json::json;

use crate::support::events::s3_event;
use crate::support::proxy::{Fault, FaultProxy, Rule};
use crate::support::servers::Server;
use crate::support::world::World;

fn config_for(orgs: &[(String, String)]) -> String {
    let customers: Vec<_> = orgs
        .iter()
        .map(|(o, b)| json!({"org": o, "destinationBucket": b}))
        .collect();
    json!({"customers": customers, "retry": 1}).to_string()
}

async fn the_config_is_read_once_until_it_is_due(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let proxy = FaultProxy::start(&server.endpoint, vec![]).await;
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), world.settings("jpg"));
    for i in 0..3 {
        let a = world.put(&format!("org1/{i}.jpg"), b"x").await;
        let report = handle(&exporter, parse_event(&s3_event(&[&a])).unwrap()).await;
        assert_eq!(report.records[0].outcome, Outcome::Copied);
    }
    let config_gets = proxy
        .seen()
        .iter()
        .filter(|s| s.method == "GET" && s.path.contains("config.json"))
        .count();
    assert_eq!(
        config_gets, 1,
        "CONFIG_REFRESH_SECONDS=60: one read per cold start"
    );
}

async fn changes_are_picked_up_and_bad_edits_keep_the_last_good_config(server: &'static Server) {
    let world = World::new(server, &["org1", "org2"]).await;
    // Start with org1 only.
    world.write_config(&config_for(&world.orgs[..1])).await;
    let mut settings = world.settings("jpg");
    settings.config_refresh = Duration::ZERO;
    let exporter = world.exporter(settings);
    let b1 = world.put("org2/b1.jpg", b"b1").await;
    let report = handle(&exporter, parse_event(&s3_event(&[&b1])).unwrap()).await;
    assert_eq!(
        report.records[0].outcome,
        Outcome::Skipped,
        "org2 is not configured yet"
    );

    // Add org2 in S3: picked up without a restart.
    world.write_config(&config_for(&world.orgs)).await;
    let report = handle(&exporter, parse_event(&s3_event(&[&b1])).unwrap()).await;
    assert_eq!(
        report.records[0].outcome,
        Outcome::Copied,
        "{:?}",
        report.records[0]
    );

    // A broken edit: the last good configuration stays in force.
    world.write_config(r#"{"customers": [{"org": "org1"}]"#).await;
    let b2 = world.put("org2/b2.jpg", b"b2").await;
    let report = handle(&exporter, parse_event(&s3_event(&[&b2])).unwrap()).await;
    assert_eq!(
        report.records[0].outcome,
        Outcome::Copied,
        "{:?}",
        report.records[0]
    );
}

async fn an_invalid_config_at_cold_start_fails_every_object_record(server: &'static Server) {
    let world = World::with_config(server, &["org1"], |orgs| {
        json!({"customers": [{"org": "org1", "destinationBucket": orgs[0].1}], "retry": -1}).to_string()
    })
    .await;
    let a = world.put("org1/a.jpg", b"a").await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&a])).unwrap(),
    )
    .await;
    let r = &report.records[0];
    assert_eq!(r.outcome, Outcome::Failed);
    let reason = r.reason.as_deref().unwrap();
    assert!(
        reason.starts_with(&format!(
            "config s3://{}/export/config.json: retry: -1",
            world.config_bucket
        )),
        "{reason}"
    );
    assert!(report.must_fail_invocation());
}

async fn a_missing_config_object_is_named(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let a = world.put("org1/a.jpg", b"a").await;
    let mut settings = world.settings("jpg");
    settings.config_location = artifact_export::env::ConfigLocation::S3 {
        bucket: world.config_bucket.clone(),
        key: "nope.json".into(),
    };
    let report = handle(&world.exporter(settings), parse_event(&s3_event(&[&a])).unwrap()).await;
    let reason = report.records[0].reason.as_deref().unwrap();
    assert!(reason.contains("nope.json: could not be read"), "{reason}");
    // Said as what it is, not in the words of a source deleted since its event.
    assert!(reason.contains("there is no such object"), "{reason}");
    assert!(!reason.contains("since the event"), "{reason}");
    assert_eq!(report.records[0].outcome, Outcome::Failed);
}

/// A refresh to a config that crosses tenancy lines is refused like any invalid edit: org2
/// listing org1's destination in its `allowedBuckets`, both listing one archive bucket in
/// their `allowedBuckets`, or org1 exporting into the source
/// bucket (the world passes `SOURCE_BUCKET`). The last good config stays in force.
async fn a_refresh_that_crosses_tenants_keeps_the_last_good_config(server: &'static Server) {
    let world = World::new(server, &["org1", "org2"]).await;
    world.write_config(&config_for(&world.orgs)).await;
    let mut settings = world.settings("jpg");
    settings.config_refresh = Duration::ZERO;
    let exporter = world.exporter(settings);
    let a = world.put("org2/a.jpg", b"a").await;
    let report = handle(&exporter, parse_event(&s3_event(&[&a])).unwrap()).await;
    assert_eq!(report.records[0].outcome, Outcome::Copied);
    let (org1_bucket, org2_bucket) = (world.bucket_of("org1"), world.bucket_of("org2"));
    for crossing in [
        // Were this one in force, org1 would export only .pdf and skip the object.
        json!({"customers": [
            {"org": "org1", "destinationBucket": org1_bucket, "suffixes": ["pdf"]},
            {"org": "org2", "destinationBucket": org2_bucket, "allowedBuckets": [org1_bucket]}]}),
        // Two orgs that may both write one archive bucket: either's plugin could overwrite
        // or plant objects among the other's exports there.
        json!({"customers": [
            {"org": "org1", "destinationBucket": org1_bucket, "suffixes": ["pdf"], "allowedBuckets": ["shared-archive"]},
            {"org": "org2", "destinationBucket": org2_bucket, "allowedBuckets": ["shared-archive"]}]}),
        json!({"customers": [
            {"org": "org1", "destinationBucket": world.source},
            {"org": "org2", "destinationBucket": org2_bucket}]}),
    ] {
        world.write_config(&crossing.to_string()).await;
        let b = world.put("org1/b.jpg", b"b").await;
        let report = handle(&exporter, parse_event(&s3_event(&[&b])).unwrap()).await;
        let r = &report.records[0];
        assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
        assert_eq!(
            r.destination_bucket.as_deref(),
            Some(org1_bucket),
            "the last good config decided"
        );
    }
}

/// S3 answers a missing config object with a 404 whose code is not `NoSuchKey` (a plain
/// `NotFound`, as a HEAD or an S3-compatible store does): still the config's own words,
/// naming the object, never those of a source object deleted since its event. Nor is a 412
/// "overwritten since the event" (the config is read unconditionally the first time).
async fn a_config_read_answered_404_or_412_says_so_in_the_configs_words(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let a = world.put("org1/a.jpg", b"a").await;
    let location = format!("config s3://{}/export/config.json", world.config_bucket);
    for (status, code, says) in [
        (404, "NotFound", "there is no such object"),
        (412, "PreconditionFailed", "PreconditionFailed"),
    ] {
        let proxy = FaultProxy::start(
            &server.endpoint,
            vec![Rule::requests(
                "GET",
                "config.json",
                Fault::Error { status, code },
                usize::MAX,
            )],
        )
        .await;
        let exporter = Exporter::new(server.client_via(&proxy.endpoint), world.settings("jpg"));
        let report = handle(&exporter, parse_event(&s3_event(&[&a])).unwrap()).await;
        let r = &report.records[0];
        assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
        let reason = r.reason.as_deref().unwrap();
        assert!(reason.starts_with(&location), "{status}: {reason}");
        assert!(reason.contains(says), "{status}: {reason}");
        assert!(!reason.contains("source"), "{status}: {reason}");
        assert!(!reason.contains("since the event"), "{status}: {reason}");
    }
}

on_each_server!(
    a_refresh_that_crosses_tenants_keeps_the_last_good_config,
    the_config_is_read_once_until_it_is_due,
    changes_are_picked_up_and_bad_edits_keep_the_last_good_config,
    an_invalid_config_at_cold_start_fails_every_object_record,
    a_missing_config_object_is_named,
    a_config_read_answered_404_or_412_says_so_in_the_configs_words,
);
