use artifact_export::event::parse_event;
use artifact_export::handler::handle;
use artifact_export::report::Outcome;

use crate::support::events::s3_event;
use crate::support::servers::Server;
use crate::support::world::World;

async fn an_overwritten_source_is_superseded_and_never_goes_back(server: &'static Server) {
    require!(
        server,
        enforces_copy_if_match,
        "moto ignores x-amz-copy-source-if-match"
    );
    let world = World::new(server, &["org1"]).await;
    let exporter = world.exporter(world.settings("pdf"));
    let dest = world.bucket_of("org1").to_string();
    let v1 = world.put("org1/doc.pdf", b"version one").await;
    let v2 = world.put("org1/doc.pdf", b"version two!").await;
    assert_ne!(v1.etag, v2.etag);

    // v1's event arrives after v2 was written: v1 must not be exported.
    let late = handle(&exporter, parse_event(&s3_event(&[&v1])).unwrap()).await;
    assert_eq!(
        late.records[0].outcome,
        Outcome::Superseded,
        "{:?}",
        late.records[0]
    );
    assert!(late.records[0].reason.as_deref().unwrap().contains("overwritten"));
    assert_eq!(world.get(&dest, "org1/doc.pdf").await, None);
    assert!(!late.must_fail_invocation());

    let current = handle(&exporter, parse_event(&s3_event(&[&v2])).unwrap()).await;
    assert_eq!(current.records[0].outcome, Outcome::Copied);
    // A duplicate of the old event, delivered again later, leaves v2 in place.
    let duplicate = handle(&exporter, parse_event(&s3_event(&[&v1])).unwrap()).await;
    assert_eq!(duplicate.records[0].outcome, Outcome::Superseded);
    assert_eq!(
        world.get(&dest, "org1/doc.pdf").await.as_deref(),
        Some(&b"version two!"[..])
    );
}

async fn a_deleted_source_is_superseded(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let gone = world.put("org1/gone.pdf", b"soon gone").await;
    world
        .client
        .delete_object()
        .bucket(&world.source)
        .key("org1/gone.pdf")
        .send()
        .await
        .unwrap();
    let report = handle(
        &world.exporter(world.settings("pdf")),
        parse_event(&s3_event(&[&gone])).unwrap(),
    )
    .await;
    let r = &report.records[0];
    assert_eq!(r.outcome, Outcome::Superseded, "{r:?}");
    assert!(r.reason.as_deref().unwrap().contains("no longer exists"));
    assert_eq!(report.totals.superseded, 1);
    assert!(!report.must_fail_invocation());
}

async fn duplicate_events_in_one_invocation_copy_once_each(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let a = world.put("org1/twice.jpg", b"same bytes").await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&a, &a])).unwrap(),
    )
    .await;
    assert!(
        report.records.iter().all(|r| r.outcome == Outcome::Copied),
        "{report:?}"
    );
    assert_eq!(
        world
            .get(world.bucket_of("org1"), "org1/twice.jpg")
            .await
            .as_deref(),
        Some(&b"same bytes"[..])
    );
}

on_each_server!(
    an_overwritten_source_is_superseded_and_never_goes_back,
    a_deleted_source_is_superseded,
    duplicate_events_in_one_invocation_copy_once_each,
);

async fn a_versioned_source_never_exports_an_older_version(server: &'static Server) {
    require!(server, versioning, "Garage does not implement bucket versioning");
    let world = World::new(server, &["org1"]).await;
    world
        .client
        .put_bucket_versioning()
        .bucket(&world.source)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let v1 = world.put("org1/v.pdf", b"first").await;
    let v1_version = world
        .client
        .head_object()
        .bucket(&world.source)
        .key("org1/v.pdf")
        .send()
        .await
        .unwrap();
    world.put("org1/v.pdf", b"second").await;
    let mut event = s3_event(&[&v1]);
    event["Records"][0]["s3"]["object"]["versionId"] = v1_version.version_id().unwrap().into();
    let report = handle(
        &world.exporter(world.settings("pdf")),
        parse_event(&event).unwrap(),
    )
    .await;
    assert_ne!(
        report.records[0].outcome,
        Outcome::Failed,
        "{:?}",
        report.records[0]
    );
    // Whatever the server does with If-Match, the old version's bytes must not be exported.
    assert_ne!(
        world.get(world.bucket_of("org1"), "org1/v.pdf").await.as_deref(),
        Some(&b"first"[..])
    );
}

on_each_server!(a_versioned_source_never_exports_an_older_version);
