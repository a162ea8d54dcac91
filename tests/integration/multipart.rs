use artifact_export::event::parse_event;
use artifact_export::handler::handle;
use artifact_export::report::Outcome;
use aws_sdk_s3::primitives::ByteStream;

use crate::support::events::s3_event;
use crate::support::proxy::{Fault, FaultProxy, Rule};
use crate::support::servers::Server;
use crate::support::world::{World, bytes};

const MIB: usize = 1024 * 1024;

async fn large_objects_are_copied_in_parts_with_metadata(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let key = "org1/video/big file.indd";
    let body = bytes(12 * MIB + 123, 7);
    let mut request = world
        .client
        .put_object()
        .key(key)
        .body(ByteStream::from(body.clone()))
        .content_type("application/x-indesign")
        .cache_control("no-cache")
        .content_disposition("inline")
        .content_encoding("identity")
        .metadata("camera", "Hasselblad 500C");
    if server.caps.tagging {
        request = request.tagging("retention=long&owner=Ana%20Lima");
    }
    let uploaded = world.put_object(request, key).await;
    let mut settings = world.settings("indd");
    settings.multipart_threshold = 5 * MIB as u64;
    let report = handle(
        &world.exporter(settings),
        parse_event(&s3_event(&[&uploaded])).unwrap(),
    )
    .await;
    let r = &report.records[0];
    assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    assert_eq!(r.bytes, Some(body.len() as u64));

    let dest = world.bucket_of("org1");
    assert!(
        world.get(dest, key).await.unwrap() == body,
        "multipart copy is not byte-identical"
    );
    let head = world
        .client
        .head_object()
        .bucket(dest)
        .key(key)
        .send()
        .await
        .unwrap();
    // 12 MiB + 123 bytes in 5 MiB parts: a multipart ETag of 3 parts.
    assert!(
        head.e_tag().unwrap().trim_matches('"').ends_with("-3"),
        "etag {:?}",
        head.e_tag()
    );
    assert_eq!(head.content_type(), Some("application/x-indesign"));
    assert_eq!(head.cache_control(), Some("no-cache"));
    assert_eq!(head.content_disposition(), Some("inline"));
    assert_eq!(
        head.metadata().unwrap().get("camera").map(String::as_str),
        Some("Hasselblad 500C")
    );
    if server.caps.tagging {
        let tags = world
            .client
            .get_object_tagging()
            .bucket(dest)
            .key(key)
            .send()
            .await
            .unwrap();
        let mut tags: Vec<_> = tags
            .tag_set()
            .iter()
            .map(|t| format!("{}={}", t.key(), t.value()))
            .collect();
        tags.sort();
        assert_eq!(tags, ["owner=Ana Lima", "retention=long"]);
    } else {
        eprintln!(
            "SKIP tag check on {}: Garage does not implement object tagging",
            server.name
        );
    }
}

async fn a_failed_part_aborts_the_upload(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let key = "org1/abort-me.pdf";
    let uploaded = world.put(key, &bytes(11 * MIB, 3)).await;
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            fault: Fault::InternalError,
            path_contains: Some("partNumber=2".into()),
            copies_only: true,
            times: None,
        }],
    )
    .await;
    let mut settings = world.settings("pdf");
    settings.multipart_threshold = 5 * MIB as u64;
    let exporter = artifact_export::exporter::Exporter::new(server.client_via(&proxy.endpoint), settings);
    let report = handle(&exporter, parse_event(&s3_event(&[&uploaded])).unwrap()).await;
    let r = &report.records[0];
    assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    assert_eq!(r.error_code.as_deref(), Some("InternalError"));
    assert_eq!(r.attempts, 2, "config retry is 1");
    let dest = world.bucket_of("org1");
    assert_eq!(world.get(dest, key).await, None);
    let uploads = world
        .client
        .list_multipart_uploads()
        .bucket(dest)
        .send()
        .await
        .unwrap();
    assert!(
        uploads.uploads().is_empty(),
        "upload left behind: {:?}",
        uploads.uploads()
    );
    assert!(
        proxy
            .seen()
            .iter()
            .any(|s| s.method == "DELETE" && s.path.contains("uploadId=")),
        "no abort sent"
    );
}

async fn a_stale_etag_on_a_large_object_is_superseded(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let old = world.put("org1/big.pdf", &bytes(6 * MIB, 1)).await;
    world.put("org1/big.pdf", &bytes(6 * MIB, 2)).await;
    let mut settings = world.settings("pdf");
    settings.multipart_threshold = 5 * MIB as u64;
    let report = handle(
        &world.exporter(settings),
        parse_event(&s3_event(&[&old])).unwrap(),
    )
    .await;
    // HeadObject honours If-Match on both servers, so the stale event stops before any copy.
    assert_eq!(
        report.records[0].outcome,
        Outcome::Superseded,
        "{:?}",
        report.records[0]
    );
    assert_eq!(world.get(world.bucket_of("org1"), "org1/big.pdf").await, None);
}

on_each_server!(
    large_objects_are_copied_in_parts_with_metadata,
    a_failed_part_aborts_the_upload,
    a_stale_etag_on_a_large_object_is_superseded,
);
