//! What operators see per record, on the real servers: the export lag (`lagMs`) of records
//! that come from an upload event and of no others, and the `reasonCode` of failed records.

use std::time::{SystemTime, UNIX_EPOCH};

use artifact_export::env::ConfigLocation;
use artifact_export::event::parse_event;
use artifact_export::exporter::Exporter;
use artifact_export::handler::handle;
use artifact_export::reason::ReasonCode;
use artifact_export::report::{Outcome, RecordReport, Report};
use serde_json::{Value, json};

use crate::support::events::{encode_key, s3_event, s3_record};
use crate::support::proxy::{Fault, FaultProxy, Rule};
use crate::support::servers::Server;
use crate::support::world::World;

/// 2026-11-25T12:00:00Z in milliseconds since the epoch (computed independently of the
/// parser under test: `date -d 2026-11-25T12:00:00Z +%s`).
const NOON_MS: u64 = 1_795_608_000_000;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn by_key<'a>(report: &'a Report, key: &str) -> &'a RecordReport {
    report
        .records
        .iter()
        .find(|r| r.key.as_deref() == Some(key))
        .unwrap_or_else(|| panic!("no record for {key}"))
}

/// The report as the Lambda answers it, one record by key.
fn json_of(report: &Report, key: &str) -> Value {
    let json = serde_json::to_value(report).unwrap();
    json["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key)
        .cloned()
        .unwrap()
}

async fn s3_events_report_their_export_lag_and_nothing_else_does(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let times = [
        ("org1/utc.jpg", Some("2026-11-25T12:00:00.000Z")),
        ("org1/offset.jpg", Some("2026-11-25T14:00:00+02:00")),
        ("org1/garbled.jpg", Some("the day before yesterday")),
        ("org1/timeless.jpg", None),
    ];
    let mut records = Vec::new();
    for (key, time) in times {
        let uploaded = world.put(key, key.as_bytes()).await;
        let mut record = s3_record(&uploaded);
        match time {
            Some(t) => record["eventTime"] = json!(t),
            None => {
                record.as_object_mut().unwrap().remove("eventTime");
            }
        }
        records.push(record);
    }
    let before = now_ms();
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&json!({ "Records": records })).unwrap(),
    )
    .await;
    let after = now_ms();
    for (key, time) in times {
        let r = by_key(&report, key);
        // A bad or missing eventTime never costs the copy.
        assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
        let json = json_of(&report, key);
        if time.is_some_and(|t| t.starts_with("2026")) {
            // The lag is measured after the copy, against the clock: between the two readings.
            let lag = r.lag_ms.unwrap_or_else(|| panic!("{key}: no lag: {r:?}"));
            assert!(
                (before - NOON_MS..=after - NOON_MS).contains(&lag),
                "{key}: {lag} not in {}..={}",
                before - NOON_MS,
                after - NOON_MS
            );
            assert_eq!(json["lagMs"], lag, "{key}");
        } else {
            assert_eq!(r.lag_ms, None, "{key}");
            assert!(json.get("lagMs").is_none(), "{key}: {json}");
        }
    }
}

async fn batch_operations_tasks_have_no_export_lag(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    world.put("org1/old.jpg", b"existed before").await;
    let event = json!({
        "invocationSchemaVersion": "2.0",
        "invocationId": "inv-1",
        "job": {"id": "job-1"},
        "tasks": [{"taskId": "t1", "s3Key": encode_key("org1/old.jpg"), "s3VersionId": null, "s3Bucket": world.source}],
    });
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&event).unwrap(),
    )
    .await;
    let r = by_key(&report, "org1/old.jpg");
    assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    assert_eq!(r.lag_ms, None, "the object's age is not a lag");
    assert!(json_of(&report, "org1/old.jpg").get("lagMs").is_none());
}

async fn failed_records_carry_a_reason_code(server: &'static Server) {
    let world = World::with_config(server, &["org1"], |orgs| {
        json!({"customers": [
            {"org": "org1", "destinationBucket": orgs[0].1},
            {"org": "org2", "destinationBucket": "no-such-bucket-org2-reasons"},
            // Its own bucket: a config that points two orgs at one bucket is refused.
            {"org": "org3", "destinationBucket": "no-such-bucket-org3-reasons", "prefix": "org3/",
             "plugin": {"source": "/nonexistent/plugins/org3.wasm"}},
        ], "retry": 0})
        .to_string()
    })
    .await;
    let copied = world.put("org1/fine.jpg", b"fine").await;
    let throttled = world.put("org1/throttled.jpg", b"slow").await;
    let no_bucket = world.put("org2/nowhere.jpg", b"lost").await;
    let no_plugin = world.put("org3/unplugged.jpg", b"unplugged").await;
    let mut event = s3_event(&[&copied, &throttled, &no_bucket, &no_plugin]);
    // A record without its `s3` member cannot be understood.
    let mut broken = event["Records"][0].clone();
    broken.as_object_mut().unwrap().remove("s3");
    event["Records"].as_array_mut().unwrap().push(broken);
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            fault: Fault::SlowDown,
            path_contains: Some("throttled.jpg".into()),
            copies_only: true,
            method: None,
            times: None,
        }],
    )
    .await;
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), world.settings("jpg"));
    let report = handle(&exporter, parse_event(&event).unwrap()).await;

    let expect = [
        ("org1/throttled.jpg", ReasonCode::SlowDown, Some("SlowDown")),
        ("org2/nowhere.jpg", ReasonCode::NoSuchBucket, Some("NoSuchBucket")),
        ("org3/unplugged.jpg", ReasonCode::PluginNotLoaded, None),
    ];
    for (key, code, error_code) in expect {
        let r = by_key(&report, key);
        assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
        assert_eq!(r.reason_code, Some(code), "{r:?}");
        assert_eq!(r.error_code.as_deref(), error_code, "the S3 code stays beside it");
        let json = json_of(&report, key);
        assert_eq!(json["reasonCode"], code.as_str(), "{json}");
        assert!(json["reason"].is_string(), "the text stays beside it: {json}");
    }
    let invalid = &report.records[4];
    assert_eq!(invalid.outcome, Outcome::Failed, "{invalid:?}");
    assert_eq!(invalid.reason_code, Some(ReasonCode::InvalidRecord));
    let fine = by_key(&report, "org1/fine.jpg");
    assert_eq!(fine.outcome, Outcome::Copied);
    assert_eq!(fine.reason_code, None, "only failures have a code");
    assert!(json_of(&report, "org1/fine.jpg").get("reasonCode").is_none());

    // No config at all: every object record fails as ConfigUnavailable.
    let mut settings = world.settings("jpg");
    settings.config_location = ConfigLocation::S3 {
        bucket: world.config_bucket.clone(),
        key: "no/such/config.json".into(),
    };
    let report = handle(
        &world.exporter(settings),
        parse_event(&s3_event(&[&copied])).unwrap(),
    )
    .await;
    let r = &report.records[0];
    assert_eq!(
        (r.outcome, r.reason_code),
        (Outcome::Failed, Some(ReasonCode::ConfigUnavailable)),
        "{r:?}"
    );
}

on_each_server!(
    s3_events_report_their_export_lag_and_nothing_else_does,
    batch_operations_tasks_have_no_export_lag,
    failed_records_carry_a_reason_code,
);
