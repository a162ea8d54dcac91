use artifact_export::event::parse_event;
use artifact_export::handler::handle;
use artifact_export::report::{Outcome, Report};
use aws_sdk_s3::primitives::ByteStream;

use crate::support::events::s3_event;
use crate::support::servers::Server;
use crate::support::world::{World, bytes};

fn outcome_of<'a>(report: &'a Report, key: &str) -> &'a artifact_export::report::RecordReport {
    report
        .records
        .iter()
        .find(|r| r.key.as_deref() == Some(key))
        .unwrap_or_else(|| panic!("no record for {key}"))
}

async fn copies_selected_suffixes_under_the_same_key(server: &'static Server) {
    let world = World::new(server, &["org1", "org2"]).await;
    let keys = [
        "org1/a.jpg",
        "org1/deep/dir/b.PDF",
        "org1/c.txt",
        "org1/xjpg",
        "org2/d.indd",
        "org9/e.jpg",
        "org1/with space/a+b%c é?.jpg",
    ];
    let mut uploaded = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        uploaded.push(world.put(key, &bytes(1000 + i, i as u64)).await);
    }
    let event = parse_event(&s3_event(&uploaded.iter().collect::<Vec<_>>())).unwrap();
    let exporter = world.exporter(world.settings("jpg, .pdf,indd"));
    let report = handle(&exporter, event).await;

    let expect = [
        ("org1/a.jpg", Outcome::Copied, Some("org1")),
        ("org1/deep/dir/b.PDF", Outcome::Copied, Some("org1")),
        ("org1/c.txt", Outcome::Skipped, Some("org1")),
        ("org1/xjpg", Outcome::Skipped, Some("org1")),
        ("org2/d.indd", Outcome::Copied, Some("org2")),
        ("org9/e.jpg", Outcome::Skipped, None),
        ("org1/with space/a+b%c é?.jpg", Outcome::Copied, Some("org1")),
    ];
    for (i, (key, outcome, org)) in expect.iter().enumerate() {
        let r = outcome_of(&report, key);
        assert_eq!((r.outcome, r.org.as_deref()), (*outcome, *org), "{key}: {r:?}");
        let org_bucket = org.map(|o| world.bucket_of(o));
        if *outcome == Outcome::Copied {
            assert_eq!(r.destination_bucket.as_deref(), org_bucket);
            assert_eq!(r.destination_key.as_deref(), Some(*key));
            assert_eq!(r.attempts, 1);
            let copied = world.get(org_bucket.unwrap(), key).await;
            assert_eq!(copied.as_deref(), Some(&bytes(1000 + i, i as u64)[..]), "{key}");
        } else {
            assert!(r.reason.is_some(), "{key}: skipped without a reason");
        }
    }
    // Tenancy: each destination holds exactly its own org's selected objects.
    let mut org1 = world.keys(world.bucket_of("org1")).await;
    org1.sort();
    assert_eq!(
        org1,
        [
            "org1/a.jpg",
            "org1/deep/dir/b.PDF",
            "org1/with space/a+b%c é?.jpg"
        ]
    );
    assert_eq!(world.keys(world.bucket_of("org2")).await, ["org2/d.indd"]);
    assert_eq!(
        (
            report.totals.records,
            report.totals.copied,
            report.totals.skipped,
            report.totals.failed
        ),
        (7, 4, 3, 0)
    );
    assert!(!report.must_fail_invocation());
}

async fn copy_object_keeps_metadata(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let key = "org1/meta/report.pdf";
    let request = world
        .client
        .put_object()
        .key(key)
        .body(ByteStream::from(b"%PDF-1.7 fake".to_vec()))
        .content_type("application/pdf")
        .cache_control("max-age=60")
        .content_disposition("attachment; filename=\"report.pdf\"")
        .content_encoding("identity")
        .metadata("project", "Apollo 11");
    let uploaded = world.put_object(request, key).await;
    let event = parse_event(&s3_event(&[&uploaded])).unwrap();
    let report = handle(&world.exporter(world.settings("pdf")), event).await;
    assert_eq!(
        report.records[0].outcome,
        Outcome::Copied,
        "{:?}",
        report.records[0]
    );
    let head = world
        .client
        .head_object()
        .bucket(world.bucket_of("org1"))
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/pdf"));
    assert_eq!(head.cache_control(), Some("max-age=60"));
    assert_eq!(
        head.content_disposition(),
        Some("attachment; filename=\"report.pdf\"")
    );
    assert_eq!(
        head.metadata().unwrap().get("project").map(String::as_str),
        Some("Apollo 11")
    );
}

async fn copy_object_keeps_tags(server: &'static Server) {
    require!(server, tagging, "Garage does not implement object tagging");
    let world = World::new(server, &["org1"]).await;
    let key = "org1/tagged.jpg";
    let request = world
        .client
        .put_object()
        .key(key)
        .body(ByteStream::from(b"jpeg".to_vec()))
        .tagging("team=blue%20ocean&tier=gold");
    let uploaded = world.put_object(request, key).await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&uploaded])).unwrap(),
    )
    .await;
    assert_eq!(report.records[0].outcome, Outcome::Copied);
    let tags = world
        .client
        .get_object_tagging()
        .bucket(world.bucket_of("org1"))
        .key(key)
        .send()
        .await
        .unwrap();
    let mut tags: Vec<_> = tags
        .tag_set()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        [
            ("team".to_string(), "blue ocean".to_string()),
            ("tier".into(), "gold".into())
        ]
    );
}

async fn destination_bucket_events_are_not_exported_again(server: &'static Server) {
    let world = World::new(server, &["org1", "org2"]).await;
    // An object in org1's destination whose key even matches org1's prefix.
    let dest = world.bucket_of("org1").to_string();
    world
        .client
        .put_object()
        .bucket(&dest)
        .key("org1/a.jpg")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let mut uploaded = world.put("org1/a.jpg", b"x").await;
    uploaded.bucket = dest;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&uploaded])).unwrap(),
    )
    .await;
    let r = &report.records[0];
    assert_eq!(r.outcome, Outcome::Skipped);
    assert!(
        r.reason.as_deref().unwrap().contains("copy-loop protection"),
        "{r:?}"
    );
    assert!(world.keys(world.bucket_of("org2")).await.is_empty());
}

async fn a_failing_org_does_not_stop_the_others(server: &'static Server) {
    // org2's destination bucket does not exist: NoSuchBucket is not retryable.
    let world = World::with_config(server, &["org1"], |orgs| {
        serde_json::json!({"customers": [
            {"org": "org1", "destinationBucket": orgs[0].1},
            {"org": "org2", "destinationBucket": "missing-bucket-for-org2-zz"}
        ], "retry": 3})
        .to_string()
    })
    .await;
    let a = world.put("org1/a.jpg", b"a").await;
    let b = world.put("org2/b.jpg", b"b").await;
    let c = world.put("org1/c.jpg", b"c").await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&a, &b, &c])).unwrap(),
    )
    .await;
    let outcomes: Vec<_> = report.records.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [Outcome::Copied, Outcome::Failed, Outcome::Copied]);
    let failed = &report.records[1];
    assert_eq!(failed.error_code.as_deref(), Some("NoSuchBucket"), "{failed:?}");
    assert_eq!(failed.attempts, 1, "non-retryable errors are not retried");
    assert!(report.must_fail_invocation());
    assert_eq!(
        report.failure_summary(),
        "1 of 3 records failed: org2/b.jpg (NoSuchBucket)"
    );
    assert_eq!(
        world.get(world.bucket_of("org1"), "org1/c.jpg").await.as_deref(),
        Some(&b"c"[..])
    );
}

async fn non_creation_and_test_events_copy_nothing(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let uploaded = world.put("org1/a.jpg", b"a").await;
    let mut event = s3_event(&[&uploaded]);
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete".into();
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&event).unwrap(),
    )
    .await;
    assert_eq!(report.records[0].outcome, Outcome::Skipped);
    assert!(world.keys(world.bucket_of("org1")).await.is_empty());
}

on_each_server!(
    copies_selected_suffixes_under_the_same_key,
    copy_object_keeps_metadata,
    copy_object_keeps_tags,
    destination_bucket_events_are_not_exported_again,
    a_failing_org_does_not_stop_the_others,
    non_creation_and_test_events_copy_nothing,
);

/// With `SOURCE_BUCKET` set, a record from any other bucket is refused
/// (`NotTheSourceBucket`), not copied as far as the function's credentials can read; without
/// it, the record is copied as before.
async fn a_record_from_another_bucket_is_refused_when_the_source_is_known(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let other = crate::support::world::unique_bucket("other-src");
    crate::support::world::create_bucket(&world.client, &other).await;
    world
        .client
        .put_object()
        .bucket(&other)
        .key("org1/a.jpg")
        .body(ByteStream::from_static(b"elsewhere"))
        .send()
        .await
        .unwrap();
    let mut uploaded = world.put("org1/a.jpg", b"elsewhere").await;
    uploaded.bucket = other.clone();
    let event = || parse_event(&s3_event(&[&uploaded])).unwrap();

    let report = handle(&world.exporter(world.settings("jpg")), event()).await;
    let r = &report.records[0];
    assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    assert_eq!(r.reason_code.map(|c| c.as_str()), Some("NotTheSourceBucket"));
    assert!(r.reason.as_deref().unwrap().contains(&other), "{r:?}");
    assert!(report.must_fail_invocation());
    assert_eq!(world.keys(world.bucket_of("org1")).await, Vec::<String>::new());

    let mut settings = world.settings("jpg");
    settings.source_bucket = None;
    let report = handle(&world.exporter(settings), event()).await;
    assert_eq!(
        report.records[0].outcome,
        Outcome::Copied,
        "{:?}",
        report.records[0]
    );
}

/// A record whose source bucket does not exist fails with `NoSuchBucket` (a configuration
/// problem), though a HEAD's 404 has no body to say so; a missing key in an existing bucket
/// is superseded (deleted since the event).
async fn a_missing_source_bucket_is_a_failure_not_superseded(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let mut gone_bucket = world.put("org1/a.jpg", b"a").await;
    gone_bucket.bucket = crate::support::world::unique_bucket("never-made");
    let mut gone_key = world.put("org1/b.jpg", b"b").await;
    gone_key.key = "org1/never-uploaded.jpg".into();
    let mut settings = world.settings("jpg");
    settings.source_bucket = None;
    let report = handle(
        &world.exporter(settings),
        parse_event(&s3_event(&[&gone_bucket, &gone_key])).unwrap(),
    )
    .await;
    let r = &report.records[0];
    assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    assert_eq!(
        r.reason_code,
        Some(artifact_export::reason::ReasonCode::NoSuchBucket),
        "{r:?}"
    );
    assert!(
        r.reason.as_deref().unwrap().contains(&gone_bucket.bucket),
        "{r:?}"
    );
    let r = &report.records[1];
    assert_eq!(r.outcome, Outcome::Superseded, "{r:?}");
}

on_each_server!(
    a_record_from_another_bucket_is_refused_when_the_source_is_known,
    a_missing_source_bucket_is_a_failure_not_superseded
);
