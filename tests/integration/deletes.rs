//! Deletes that follow the source (issue 28 §2), per org and opt-in: `deletes: "ignore"`
//! (the default) skips removals, `"propagate"` deletes the export in a versioned destination
//! only, `"propagate-unversioned"` anywhere; never what is newer than the removal, never on a
//! lifecycle expiration.

use std::time::{SystemTime, UNIX_EPOCH};

use artifact_export::check::{CheckOptions, check_orgs};
use artifact_export::event::parse_event;
use artifact_export::handler::handle;
use artifact_export::metrics::emf_lines;
use artifact_export::reason::ReasonCode;
use artifact_export::report::{Outcome, RecordReport, Report};
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use serde_json::{Value, json};

use crate::support::events::{encode_key, s3_event, sqs_event};
use crate::support::servers::Server;
use crate::support::world::{Uploaded, World};

/// Milliseconds since the Unix epoch, as an RFC 3339 time (UTC).
fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        ms.rem_euclid(1000)
    )
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// An S3 notification record of `event_name` for `key` in `bucket`, at `at` (ms).
fn removal_record(bucket: &str, key: &str, event_name: &str, version_id: Option<&str>, at: i64) -> Value {
    let mut object = json!({"key": encode_key(key), "sequencer": "0055AED6DCD90281E5"});
    if let Some(version) = version_id {
        object["versionId"] = json!(version);
    }
    json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": rfc3339(at),
        "eventName": event_name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": object,
        }
    })
}

fn removal(world: &World, key: &str, at: i64) -> Value {
    json!({"Records": [removal_record(&world.source, key, "ObjectRemoved:Delete", None, at)]})
}

/// A world whose orgs each say `deletes` (`None`: the field left out).
async fn world_with(server: &'static Server, orgs: &[(&str, Option<&str>)]) -> World {
    let names: Vec<&str> = orgs.iter().map(|(org, _)| *org).collect();
    let deletes: Vec<Option<&str>> = orgs.iter().map(|(_, d)| *d).collect();
    World::with_config(server, &names, |pairs| {
        let customers: Vec<Value> = pairs
            .iter()
            .zip(&deletes)
            .map(|((org, bucket), deletes)| {
                let mut org = json!({"org": org, "destinationBucket": bucket});
                if let Some(deletes) = deletes {
                    org["deletes"] = json!(deletes);
                }
                org
            })
            .collect();
        json!({"customers": customers, "retry": 1}).to_string()
    })
    .await
}

async fn enable_versioning(world: &World, bucket: &str) {
    world
        .client
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("enable versioning on {bucket}: {e:?}"));
}

/// Uploads `key` and exports it with a creation event.
async fn exported(world: &World, key: &str, body: &[u8]) -> Uploaded {
    let uploaded = world.put(key, body).await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&uploaded])).unwrap(),
    )
    .await;
    assert_eq!(
        report.records[0].outcome,
        Outcome::Copied,
        "{:?}",
        report.records[0]
    );
    uploaded
}

async fn delete_source(world: &World, key: &str) -> Option<String> {
    world
        .client
        .delete_object()
        .bucket(&world.source)
        .key(key)
        .send()
        .await
        .unwrap()
        .version_id()
        .map(str::to_string)
}

async fn run(world: &World, event: &Value) -> Report {
    handle(
        &world.exporter(world.settings("jpg")),
        parse_event(event).unwrap(),
    )
    .await
}

fn only(report: &Report) -> &RecordReport {
    assert_eq!(report.records.len(), 1, "{report:?}");
    &report.records[0]
}

/// The default (`ignore`): a removal is skipped, saying so, and the export stays.
async fn a_removal_is_skipped_for_ignore_orgs(server: &'static Server) {
    let world = world_with(server, &[("org1", None), ("org2", Some("ignore"))]).await;
    for org in ["org1", "org2"] {
        let key = format!("{org}/a.jpg");
        exported(&world, &key, b"a").await;
        delete_source(&world, &key).await;
        let report = run(&world, &removal(&world, &key, now_ms())).await;
        let r = only(&report);
        assert_eq!(r.outcome, Outcome::Skipped, "{r:?}");
        assert_eq!(r.org.as_deref(), Some(org));
        assert_eq!(
            r.reason.as_deref(),
            Some("deletes are not propagated for this org")
        );
        assert_eq!(world.keys(world.bucket_of(org)).await, [key.as_str()]);
    }
}

/// Lifecycle expirations are never propagated, in either event shape, whatever the org says.
async fn lifecycle_expirations_are_ignored(server: &'static Server) {
    let world = world_with(server, &[("org1", Some("propagate-unversioned"))]).await;
    exported(&world, "org1/a.jpg", b"a").await;
    delete_source(&world, "org1/a.jpg").await;
    let lifecycle = json!({"Records": [removal_record(
        &world.source, "org1/a.jpg", "LifecycleExpiration:Delete", None, now_ms())]});
    let eventbridge = json!({
        "version": "0", "id": "e", "source": "aws.s3", "detail-type": "Object Deleted",
        "time": rfc3339(now_ms()), "region": "us-east-1", "resources": [],
        "detail": {"version": "0", "bucket": {"name": world.source}, "object": {"key": "org1/a.jpg"},
            "reason": "Lifecycle Expiration", "deletion-type": "Permanently Deleted"}
    });
    for event in [lifecycle, eventbridge] {
        let report = run(&world, &event).await;
        let r = only(&report);
        assert_eq!(r.outcome, Outcome::Skipped, "{r:?}");
        assert!(
            r.reason
                .as_deref()
                .unwrap()
                .contains("lifecycle expirations are never propagated"),
            "{r:?}"
        );
    }
    assert_eq!(world.keys(world.bucket_of("org1")).await, ["org1/a.jpg"]);
}

/// `propagate` into a bucket that keeps no versions fails `DstBucketNotVersioned` (and the
/// SQS message is named for a retry); `propagate-unversioned` deletes there.
async fn an_unversioned_destination_gets_dst_bucket_not_versioned(server: &'static Server) {
    let world = world_with(
        server,
        &[
            ("org1", Some("propagate")),
            ("org2", Some("propagate-unversioned")),
        ],
    )
    .await;
    for org in ["org1", "org2"] {
        exported(&world, &format!("{org}/a.jpg"), b"a").await;
        delete_source(&world, &format!("{org}/a.jpg")).await;
    }
    let at = now_ms();
    let event = sqs_event(&[
        ("m1", removal(&world, "org1/a.jpg", at)),
        ("m2", removal(&world, "org2/a.jpg", at)),
    ]);
    let report = run(&world, &event).await;
    let (r1, r2) = (&report.records[0], &report.records[1]);
    assert_eq!(r1.outcome, Outcome::Failed, "{r1:?}");
    assert_eq!(r1.reason_code, Some(ReasonCode::DstBucketNotVersioned), "{r1:?}");
    assert!(
        r1.reason.as_deref().unwrap().contains("propagate-unversioned"),
        "{r1:?}"
    );
    assert_eq!(world.keys(world.bucket_of("org1")).await, ["org1/a.jpg"]);
    assert_eq!(r2.outcome, Outcome::Deleted, "{r2:?}");
    assert_eq!(r2.destination_key.as_deref(), Some("org2/a.jpg"));
    assert!(world.keys(world.bucket_of("org2")).await.is_empty());
    let failures: Vec<&str> = report
        .batch_item_failures
        .iter()
        .flatten()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failures, ["m1"]);
    assert_eq!((report.totals.deleted, report.totals.failed), (1, 1));
    let lines = emf_lines(&report, 0);
    let org2 = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["Org"] == "org2" && l.get("Deleted").is_some())
        .unwrap_or_else(|| panic!("no Deleted metric for org2: {lines:?}"));
    assert_eq!(org2["Deleted"], 1);
}

/// A delete, then a re-upload, whose events arrive out of order: the late removal finds the
/// source there again (`superseded`) and the new export stays. A removal older than the
/// target's write (the target overwritten by a later version) deletes nothing; the removal
/// that follows it does.
async fn a_late_removal_never_undoes_a_newer_export(server: &'static Server) {
    let world = world_with(server, &[("org1", Some("propagate-unversioned"))]).await;
    let bucket = world.bucket_of("org1").to_string();
    exported(&world, "org1/a.jpg", b"old").await;
    delete_source(&world, "org1/a.jpg").await;
    let first_removal = removal(&world, "org1/a.jpg", now_ms() - 10_000);
    exported(&world, "org1/a.jpg", b"new").await;
    // The re-upload is there: superseded.
    let report = run(&world, &first_removal).await;
    let r = only(&report);
    assert_eq!(r.outcome, Outcome::Superseded, "{r:?}");
    assert_eq!(
        world.get(&bucket, "org1/a.jpg").await.as_deref(),
        Some(&b"new"[..])
    );
    // Gone again: the first removal is older than the target's write.
    delete_source(&world, "org1/a.jpg").await;
    let report = run(&world, &first_removal).await;
    let r = only(&report);
    assert_eq!(r.outcome, Outcome::Skipped, "{r:?}");
    assert!(
        r.reason.as_deref().unwrap().contains("written after the removal"),
        "{r:?}"
    );
    assert_eq!(
        world.get(&bucket, "org1/a.jpg").await.as_deref(),
        Some(&b"new"[..])
    );
    // The second removal's own event deletes it.
    let report = run(&world, &removal(&world, "org1/a.jpg", now_ms() + 1_000)).await;
    assert_eq!(only(&report).outcome, Outcome::Deleted, "{:?}", report.records);
    assert_eq!(world.get(&bucket, "org1/a.jpg").await, None);
}

/// Versioned source and destination (`propagate`): the removal of a delete marker deletes the
/// export of the version below it, leaving a delete marker (recoverable); when the target
/// holds another version's export, nothing is deleted.
async fn a_delete_marker_removes_the_export_of_the_version_it_hid(server: &'static Server) {
    require!(server, versioning, "Garage does not implement bucket versioning");
    let world = world_with(server, &[("org1", Some("propagate"))]).await;
    let bucket = world.bucket_of("org1").to_string();
    enable_versioning(&world, &world.source).await;
    enable_versioning(&world, &bucket).await;
    let marker_event = |marker: &str| {
        json!({"Records": [removal_record(
            &world.source, "org1/a.jpg", "ObjectRemoved:DeleteMarkerCreated", Some(marker), now_ms())]})
    };
    // v1 exported; v2 uploaded but not exported yet when the marker hides it.
    exported(&world, "org1/a.jpg", b"v1").await;
    world.put("org1/a.jpg", b"v2 not exported").await;
    let marker = delete_source(&world, "org1/a.jpg")
        .await
        .expect("a delete marker's version");
    let report = run(&world, &marker_event(&marker)).await;
    let r = only(&report);
    assert_eq!(r.outcome, Outcome::Skipped, "{r:?}");
    assert!(
        r.reason
            .as_deref()
            .unwrap()
            .contains("not the export of the removed version"),
        "{r:?}"
    );
    assert_eq!(
        world.get(&bucket, "org1/a.jpg").await.as_deref(),
        Some(&b"v1"[..])
    );
    // v3 exported, then hidden: deleted, as a delete marker over v3's export.
    exported(&world, "org1/a.jpg", b"v3").await;
    let marker = delete_source(&world, "org1/a.jpg").await.unwrap();
    let report = run(&world, &marker_event(&marker)).await;
    let r = only(&report);
    assert_eq!(r.outcome, Outcome::Deleted, "{r:?}");
    assert_eq!(world.get(&bucket, "org1/a.jpg").await, None);
    let versions = world
        .client
        .list_object_versions()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(versions.delete_markers().len(), 1, "{versions:?}");
    assert!(
        !versions.versions().is_empty(),
        "the export can be restored: {versions:?}"
    );
}

/// A removal through the org's plugin: the plugin (asked with the removal's event name) maps
/// it to the key it gave the creation, and that key is deleted.
async fn a_removal_through_a_plugin(server: &'static Server) {
    let plugin = json!({
        "source": plugin_artifacts::KEY_REWRITER,
        "timeoutMs": 5000,
        "settings": {"replacePrefix": {"from": "org2/", "to": "exports/"}}
    });
    let world = World::with_config(server, &["org2"], |orgs| {
        json!({"customers": [{"org": "org2", "destinationBucket": orgs[0].1,
            "deletes": "propagate-unversioned", "plugin": plugin}], "retry": 1})
        .to_string()
    })
    .await;
    let uploaded = world.put("org2/photos/a.jpg", b"a").await;
    let report = run(&world, &s3_event(&[&uploaded])).await;
    assert_eq!(
        only(&report).destination_key.as_deref(),
        Some("exports/photos/a.jpg")
    );
    delete_source(&world, "org2/photos/a.jpg").await;
    let report = run(&world, &removal(&world, "org2/photos/a.jpg", now_ms() + 1_000)).await;
    let r = only(&report);
    assert_eq!(r.outcome, Outcome::Deleted, "{r:?}");
    assert_eq!(r.destination_key.as_deref(), Some("exports/photos/a.jpg"));
    assert!(r.plugin.is_some(), "the plugin was asked: {r:?}");
    assert!(world.keys(world.bucket_of("org2")).await.is_empty());
}

/// `check` reports a `propagate` org whose destination keeps no versions, before any
/// removal; the same org passes once versioning is on (moto), and `propagate-unversioned`
/// and `ignore` orgs are not asked.
async fn check_reports_an_unversioned_destination_of_a_propagate_org(server: &'static Server) {
    let world = world_with(
        server,
        &[
            ("org1", Some("propagate")),
            ("org2", Some("propagate-unversioned")),
            ("org3", None),
        ],
    )
    .await;
    let exporter = world.exporter(world.settings("jpg"));
    let config = exporter.config().await.unwrap();
    let checks = check_orgs(&exporter, &config, None, CheckOptions { write_probe: false })
        .await
        .unwrap();
    let failure = checks[0].result.clone().unwrap_err();
    assert_eq!(failure.reason, ReasonCode::DstBucketNotVersioned, "{failure}");
    assert!(failure.message.contains("propagate-unversioned"), "{failure}");
    assert!(checks[1].result.is_ok(), "{:?}", checks[1]);
    assert!(checks[2].result.is_ok(), "{:?}", checks[2]);
    if !server.caps.versioning {
        eprintln!("SKIP on {}: no bucket versioning to turn on", server.name);
        return;
    }
    enable_versioning(&world, world.bucket_of("org1")).await;
    let checks = check_orgs(
        &exporter,
        &config,
        Some("org1"),
        CheckOptions { write_probe: false },
    )
    .await
    .unwrap();
    assert!(checks[0].result.is_ok(), "{:?}", checks[0]);
}

on_all_three_servers!(
    check_reports_an_unversioned_destination_of_a_propagate_org,
    a_removal_is_skipped_for_ignore_orgs,
    lifecycle_expirations_are_ignored,
    an_unversioned_destination_gets_dst_bucket_not_versioned,
    a_late_removal_never_undoes_a_newer_export,
    a_delete_marker_removes_the_export_of_the_version_it_hid,
    a_removal_through_a_plugin,
);
