use artifact_export::event::parse_event;
use artifact_export::handler::handle;
use artifact_export::report::Outcome;
use serde_json::json;

use crate::support::events::{fixture, s3_event, sqs_event};
use crate::support::servers::Server;
use crate::support::world::World;

async fn partial_batch_response_names_only_failed_messages(server: &'static Server) {
    let world = World::with_config(server, &["org1"], |orgs| {
        json!({"customers": [
            {"org": "org1", "destinationBucket": orgs[0].1},
            {"org": "org2", "destinationBucket": "no-such-bucket-org2-zz"}
        ], "retry": 0})
        .to_string()
    })
    .await;
    let ok = world.put("org1/ok.jpg", b"ok").await;
    let ok2 = world.put("org1/ok2.jpg", b"ok2").await;
    let broken = world.put("org2/broken.jpg", b"broken").await;
    let event = sqs_event(&[
        ("m-ok", s3_event(&[&ok])),
        ("m-mixed", s3_event(&[&ok2, &broken])),
        ("m-test", fixture("s3-test-event.json")),
    ]);
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&event).unwrap(),
    )
    .await;
    let outcomes: Vec<_> = report.records.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Copied,
            Outcome::Copied,
            Outcome::Failed,
            Outcome::Skipped
        ]
    );
    let body = serde_json::to_value(&report).unwrap();
    assert_eq!(body["batchItemFailures"], json!([{"itemIdentifier": "m-mixed"}]));
    // Under SQS the batch response carries the failure; the invocation itself succeeds.
    assert!(!report.must_fail_invocation());
    assert_eq!(
        world
            .get(world.bucket_of("org1"), "org1/ok2.jpg")
            .await
            .as_deref(),
        Some(&b"ok2"[..])
    );
}

async fn all_good_batch_has_an_empty_failure_list(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let ok = world.put("org1/fine.pdf", b"fine").await;
    let event = sqs_event(&[("m1", s3_event(&[&ok]))]);
    let report = handle(
        &world.exporter(world.settings("pdf")),
        parse_event(&event).unwrap(),
    )
    .await;
    assert_eq!(
        serde_json::to_value(&report).unwrap()["batchItemFailures"],
        json!([])
    );
    // A plain S3 invocation carries no batchItemFailures at all.
    let direct = handle(
        &world.exporter(world.settings("pdf")),
        parse_event(&s3_event(&[&ok])).unwrap(),
    )
    .await;
    assert!(
        serde_json::to_value(&direct)
            .unwrap()
            .get("batchItemFailures")
            .is_none()
    );
}

on_each_server!(
    partial_batch_response_names_only_failed_messages,
    all_good_batch_has_an_empty_failure_list
);
