use artifact_export::event::parse_event;
use artifact_export::exporter::Exporter;
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
            method: None,
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

/// The destination bucket's incomplete multipart uploads, read with a plain client.
async fn uploads_in(world: &World, bucket: &str) -> Vec<String> {
    let uploads = world
        .client
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    uploads
        .uploads()
        .iter()
        .map(|u| format!("{:?} {:?}", u.key(), u.upload_id()))
        .collect()
}

/// A 6 MiB object copied in parts through `proxy`; the report's only record.
async fn copy_in_parts_through(
    world: &World,
    proxy: &FaultProxy,
    key: &str,
    body: &[u8],
) -> artifact_export::report::RecordReport {
    let uploaded = world.put(key, body).await;
    let mut settings = world.settings("pdf");
    settings.multipart_threshold = 5 * MIB as u64;
    let exporter = Exporter::new(world.server.client_via(&proxy.endpoint), settings);
    let report = handle(&exporter, parse_event(&s3_event(&[&uploaded])).unwrap()).await;
    report.records.into_iter().next().unwrap()
}

/// The `method` requests the proxy saw whose path and query contain `needle`.
fn requests(proxy: &FaultProxy, method: &str, needle: &str) -> usize {
    proxy
        .seen()
        .iter()
        .filter(|s| s.method == method && s.path.contains(needle))
        .count()
}

/// A CreateMultipartUpload that the server carried out but whose answer never came: the
/// retry creates a second upload. The copy then fails (every part copy answers 500) and
/// aborts the upload it knows; the one the lost answer named is found (the key's uploads,
/// listed) and aborted too, so no upload outlives the record. (Had the copy succeeded,
/// Garage would drop the older upload by itself when the newer one completes.)
async fn an_upload_created_by_an_unanswered_create_is_aborted(server: &'static Server) {
    require!(
        server,
        dates_uploads,
        "ListMultipartUploads gives every upload the same Initiated time, so the uploads a create began cannot be told from older ones"
    );
    let world = World::new(server, &["org1"]).await;
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![
            Rule::requests("POST", "uploads", Fault::DropAnswer, 1),
            Rule {
                fault: Fault::InternalError,
                path_contains: Some("partNumber=".into()),
                copies_only: true,
                method: None,
                times: None,
            },
        ],
    )
    .await;
    let (key, body) = ("org1/lost-create.pdf", bytes(6 * MIB, 5));
    let r = copy_in_parts_through(&world, &proxy, key, &body).await;
    assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    assert_eq!(r.error_code.as_deref(), Some("InternalError"), "{r:?}");
    assert_eq!(requests(&proxy, "POST", "uploads"), 2, "the create was retried");
    let dest = world.bucket_of("org1");
    let left = uploads_in(&world, dest).await;
    assert!(left.is_empty(), "upload left behind: {left:?}");
}

/// A CompleteMultipartUpload that the server carried out but whose answer never came: the
/// retry finds no upload (NoSuchUpload), and the destination's HEAD shows the object in
/// place, so the record is copied, not failed.
async fn a_completed_upload_whose_answer_was_lost_is_copied(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule::requests("POST", "uploadId=", Fault::DropAnswer, 1)],
    )
    .await;
    let (key, body) = ("org1/lost-complete.pdf", bytes(6 * MIB, 6));
    let r = copy_in_parts_through(&world, &proxy, key, &body).await;
    assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    assert_eq!(r.bytes, Some(body.len() as u64), "{r:?}");
    assert_eq!(
        requests(&proxy, "POST", "uploadId="),
        2,
        "the complete was retried"
    );
    let dest = world.bucket_of("org1");
    assert!(
        world.get(dest, key).await.unwrap() == body,
        "copy is not byte-identical"
    );
    let left = uploads_in(&world, dest).await;
    assert!(left.is_empty(), "upload left behind: {left:?}");
}

/// The same lost answer, and a destination that does not hold the copy's object after all
/// (another writer replaced it before the HEAD, here: it was deleted): the record fails,
/// retryable.
async fn a_lost_complete_is_not_taken_for_a_copy_that_is_not_there(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let (key, body) = ("org1/lost-and-gone.pdf", bytes(6 * MIB, 8));
    let dest = world.bucket_of("org1").to_string();
    // The dropped answer's connection closes; the retry (NoSuchUpload) is held until the
    // object the first attempt completed has been deleted.
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![
            Rule::requests("POST", "uploadId=", Fault::DropAnswer, 1),
            Rule::requests("POST", "uploadId=", Fault::Held, 1),
        ],
    )
    .await;
    let copy = copy_in_parts_through(&world, &proxy, key, &body);
    let delete = async {
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while requests(&proxy, "POST", "uploadId=") < 2 {
            assert!(std::time::Instant::now() < give_up, "no retry of the complete");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        world
            .client
            .delete_object()
            .bucket(&dest)
            .key(key)
            .send()
            .await
            .unwrap();
        proxy.release();
    };
    let (r, ()) = tokio::join!(copy, delete);
    assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    // The record is worth another try: the next copies the object again.
    assert!(r.retryable, "{r:?}");
    assert_eq!(world.get(&dest, key).await, None);
    let left = uploads_in(&world, &dest).await;
    assert!(left.is_empty(), "upload left behind: {left:?}");
}

on_each_server!(
    large_objects_are_copied_in_parts_with_metadata,
    a_failed_part_aborts_the_upload,
    a_stale_etag_on_a_large_object_is_superseded,
    an_upload_created_by_an_unanswered_create_is_aborted,
    a_completed_upload_whose_answer_was_lost_is_copied,
    a_lost_complete_is_not_taken_for_a_copy_that_is_not_there,
);
