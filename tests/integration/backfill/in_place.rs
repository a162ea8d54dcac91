use std::collections::BTreeMap;

use aws_sdk_s3::Client;
use serde_json::json;

use super::{assert_exported, backfill_cmd, listing, requests_since, run, run_via_proxy, seed};
use crate::support::proxy::{Fault, FaultProxy, Rule};
use crate::support::servers::Server;
use crate::support::world::{World, bytes};
use crate::write_options::{head, implements_sse, kms_key};

async fn part_wise_copies_count_as_in_place(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let big = vec![7u8; 6 * 1024 * 1024];
    world.put("org1/big.pdf", &big).await;
    let multipart = |world: &World| {
        let mut cmd = backfill_cmd(world, &server.endpoint);
        cmd.env("MULTIPART_COPY_THRESHOLD", (5 * 1024 * 1024).to_string())
            .env("MULTIPART_PART_SIZE", (5 * 1024 * 1024).to_string());
        cmd
    };
    let first = run(&mut multipart(&world));
    assert_eq!(first.count("copied"), 1, "{}", first.stderr);
    let dest = listing(&world.client, world.bucket_of("org1")).await;
    assert!(dest["org1/big.pdf"].contains('-'), "a multipart ETag: {dest:?}");
    let again = run(&mut multipart(&world));
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(again.count("already in place"), 1, "{}", again.stderr);
    assert_eq!(again.count("copied"), 0);
}

/// A part-wise object at the destination, newer than the source and of the same size, but
/// with other bytes: the size-and-time rule would call it in place; the full-object
/// checksums (both sides have CRC32) tell it apart, and the rerun after the copy finds the
/// checksums equal.
async fn a_part_wise_copy_of_other_bytes_is_not_in_place(server: &'static Server) {
    use aws_sdk_s3::types::{
        ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart,
    };
    const MIB: u64 = 1024 * 1024;
    let world = World::new(server, &["org1"]).await;
    let source = vec![7u8; 6 * MIB as usize];
    world.put("org1/big.pdf", &source).await;
    // Not selected by the backfill's suffixes: only the decoy's bytes go to the destination.
    world.put("org1/decoy.txt", &vec![8u8; 6 * MIB as usize]).await;
    let dest = world.bucket_of("org1").to_string();
    let decoy = world
        .client
        .head_object()
        .bucket(&world.source)
        .key("org1/decoy.txt")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    let Some(decoy_crc) = decoy.checksum_crc32().map(str::to_string) else {
        eprintln!("SKIP on {}: the server keeps no CRC32 of the source", server.name);
        return;
    };
    let upload = world
        .client
        .create_multipart_upload()
        .bucket(&dest)
        .key("org1/big.pdf")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .checksum_type(ChecksumType::FullObject)
        .send()
        .await
        .unwrap();
    let id = upload.upload_id().unwrap();
    let mut parts = Vec::new();
    for (n, range) in [
        (1, format!("bytes=0-{}", 5 * MIB - 1)),
        (2, format!("bytes={}-{}", 5 * MIB, 6 * MIB - 1)),
    ] {
        let out = world
            .client
            .upload_part_copy()
            .bucket(&dest)
            .key("org1/big.pdf")
            .upload_id(id)
            .part_number(n)
            .copy_source(format!("{}/org1/decoy.txt", world.source))
            .copy_source_range(range)
            .send()
            .await
            .unwrap();
        let result = out.copy_part_result().unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .set_e_tag(result.e_tag().map(str::to_string))
                .set_checksum_crc32(result.checksum_crc32().map(str::to_string))
                .build(),
        );
    }
    world
        .client
        .complete_multipart_upload()
        .bucket(&dest)
        .key("org1/big.pdf")
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .checksum_type(ChecksumType::FullObject)
        .checksum_crc32(&decoy_crc)
        .send()
        .await
        .unwrap();
    assert!(listing(&world.client, &dest).await["org1/big.pdf"].contains('-'));
    let multipart = |world: &World| {
        let mut cmd = backfill_cmd(world, &server.endpoint);
        cmd.env("MULTIPART_COPY_THRESHOLD", (5 * MIB).to_string())
            .env("MULTIPART_PART_SIZE", (5 * MIB).to_string());
        cmd
    };
    let first = run(&mut multipart(&world));
    assert_eq!(
        first.count("copied"),
        1,
        "other bytes are not in place: {}",
        first.stderr
    );
    assert!(world.get(&dest, "org1/big.pdf").await == Some(source));
    let again = run(&mut multipart(&world));
    assert_eq!(again.count("already in place"), 1, "{}", again.stderr);
    assert_eq!(again.count("copied"), 0);
}

/// "Already in place" comes from listing the destination, not from a HEAD per object: a
/// first fill into empty buckets, a rerun and a rerun after a change send no HEAD, keys with
/// spaces, `+` and non-ASCII letters match, and `--force` lists no destination at all.
async fn in_place_is_answered_by_listing_the_destination(server: &'static Server) {
    let world = World::new(server, &["org1", "org2"]).await;
    let seeded = seed(&world, 120, 4).await;
    let dests = [world.bucket_of("org1"), world.bucket_of("org2")];
    let proxy = FaultProxy::start(&server.endpoint, vec![]).await;
    let backfill = |args: &[&str]| {
        let mut cmd = backfill_cmd(&world, &proxy.endpoint);
        cmd.args(["--page-size", "17"]).args(args);
        cmd
    };

    let first = run_via_proxy(&mut backfill(&[])).await;
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_eq!(
        first.count("copied"),
        seeded.selected_count() as u64,
        "{}",
        first.stderr
    );
    let sent = requests_since(&proxy, 0, &dests);
    assert!(
        sent.heads.is_empty(),
        "a first fill sends no HEAD: {:?}",
        sent.heads
    );
    for dest in dests {
        assert!(
            sent.listings_of[dest] >= 1,
            "{dest} is listed: {:?}",
            sent.listings_of
        );
    }
    assert_exported(&world, &seeded).await;

    let mark = proxy.seen().len();
    let again = run_via_proxy(&mut backfill(&[])).await;
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(again.count("copied"), 0, "{}", again.stderr);
    assert_eq!(again.count("already in place"), seeded.selected_count() as u64);
    let sent = requests_since(&proxy, mark, &dests);
    assert!(sent.heads.is_empty(), "a rerun sends no HEAD: {:?}", sent.heads);
    // 17 keys per page: every page of each destination is read.
    for org in ["org1", "org2"] {
        let dest = world.bucket_of(org);
        let pages = seeded.selected[org].len().div_ceil(17);
        assert!(sent.listings_of[dest] >= pages, "{dest}: {:?}", sent.listings_of);
    }

    // A changed object (its key has a space, `+` and `é`) is copied again, the rest not.
    let changed = seeded.selected["org1"].iter().nth(7).unwrap().clone();
    assert!(changed.contains(' ') && changed.contains('+') && changed.contains('é'));
    world.put(&changed, b"a newer version").await;
    let mark = proxy.seen().len();
    let third = run_via_proxy(&mut backfill(&[])).await;
    assert_eq!(third.count("copied"), 1, "{}", third.stderr);
    assert_eq!(
        third.count("already in place"),
        seeded.selected_count() as u64 - 1
    );
    assert!(requests_since(&proxy, mark, &dests).heads.is_empty());
    assert_eq!(
        world.get(world.bucket_of("org1"), &changed).await.as_deref(),
        Some(&b"a newer version"[..])
    );

    let mark = proxy.seen().len();
    let forced = run_via_proxy(&mut backfill(&["--force"])).await;
    assert_eq!(
        forced.count("copied"),
        seeded.selected_count() as u64,
        "{}",
        forced.stderr
    );
    let sent = requests_since(&proxy, mark, &dests);
    assert!(sent.heads.is_empty(), "{:?}", sent.heads);
    assert!(
        sent.listings_of.values().all(|n| *n == 0),
        "--force checks nothing: {:?}",
        sent.listings_of
    );
}

/// When an org's destination cannot be listed, its objects are checked one by one (HEAD)
/// and still found in place; the other org keeps its listing and sends no HEAD.
async fn a_failed_destination_listing_falls_back_to_head(server: &'static Server) {
    let world = World::new(server, &["org1", "org2"]).await;
    let seeded = seed(&world, 40, 0).await;
    let first = run(&mut backfill_cmd(&world, &server.endpoint));
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let (dest1, dest2) = (world.bucket_of("org1"), world.bucket_of("org2"));
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            fault: Fault::InternalError,
            path_contains: Some(format!("/{dest2}/?list-type=2")),
            copies_only: false,
            method: None,
            times: None,
        }],
    )
    .await;
    let again = run_via_proxy(&mut backfill_cmd(&world, &proxy.endpoint)).await;
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(again.count("copied"), 0, "{}", again.stderr);
    assert_eq!(again.count("already in place"), seeded.selected_count() as u64);
    let sent = requests_since(&proxy, 0, &[dest1, dest2]);
    assert!(sent.listings_of[dest2] >= 1, "{:?}", sent.listings_of);
    let heads_of = |dest: &str| {
        sent.heads
            .iter()
            .filter(|s| s.path.starts_with(&format!("/{dest}/")))
            .count()
    };
    assert_eq!(heads_of(dest2), seeded.selected["org2"].len(), "{:?}", sent.heads);
    assert_eq!(heads_of(dest1), 0, "org1 is unaffected: {:?}", sent.heads);
}

/// Uploads `parts` to `bucket/key` as one multipart upload; returns its ETag (`…-N`).
async fn upload_in_parts(client: &Client, bucket: &str, key: &str, parts: &[Vec<u8>]) -> String {
    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let upload = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("create multipart upload");
    let id = upload.upload_id().unwrap();
    let mut done = Vec::new();
    for (i, body) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let out = client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .expect("upload part");
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .set_e_tag(out.e_tag().map(str::to_string))
                .build(),
        );
    }
    let out = client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done)).build())
        .send()
        .await
        .expect("complete multipart upload");
    out.e_tag().unwrap().trim_matches('"').to_string()
}

/// The rows of the manifest a `--manifest` run writes.
fn manifest_rows(world: &World, endpoint: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("manifest.csv");
    let made = run(backfill_cmd(world, endpoint).arg("--manifest").arg(&manifest));
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    std::fs::read_to_string(&manifest)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A source uploaded in two parts (ETag `…-2`) but small enough for one `CopyObject`: the
/// copy gets a single-part ETag (on S3 and moto), so the ETags never match. A rerun still
/// finds it in place (by checksum, or by size and time) instead of copying it on every run,
/// and a manifest does not list it.
async fn a_multipart_upload_copied_whole_is_in_place_on_a_rerun(server: &'static Server) {
    const MIB: usize = 1024 * 1024;
    let world = World::new(server, &["org1"]).await;
    let etag = upload_in_parts(
        &world.client,
        &world.source,
        "org1/parts.pdf",
        &[bytes(5 * MIB, 1), bytes(1000, 2)],
    )
    .await;
    assert!(etag.ends_with("-2"), "a multipart ETag: {etag}");
    world.put("org1/whole.pdf", &bytes(2000, 3)).await;
    let dest = world.bucket_of("org1").to_string();

    let first = run(&mut backfill_cmd(&world, &server.endpoint));
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_eq!(first.count("copied"), 2, "{}", first.stderr);
    let copied = listing(&world.client, &dest).await;
    eprintln!(
        "{}: source ETag {etag}, the copy's {}",
        server.name, copied["org1/parts.pdf"]
    );

    let again = run(&mut backfill_cmd(&world, &server.endpoint));
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(again.count("copied"), 0, "{}", again.stderr);
    assert_eq!(again.count("already in place"), 2, "{}", again.stderr);
    let rows = manifest_rows(&world, &server.endpoint);
    assert!(rows.is_empty(), "nothing to copy: {rows:?}");

    // A newer version of the source is still copied again.
    world.put("org1/parts.pdf", b"a newer version").await;
    let third = run(&mut backfill_cmd(&world, &server.endpoint));
    assert_eq!(third.count("copied"), 1, "{}", third.stderr);
    assert_eq!(
        world.get(&dest, "org1/parts.pdf").await.as_deref(),
        Some(&b"a newer version"[..])
    );
}

/// An org whose copies are written with SSE-KMS: S3 gives such objects ETags that are not
/// the MD5 of their bytes, so a copy's ETag never equals its source's. Its rerun copies
/// nothing. moto encrypts with a real KMS key but keeps MD5 ETags, so the fault proxy
/// answers for the destination bucket with non-MD5 ETags, as S3 does.
async fn a_kms_org_is_in_place_on_a_rerun(server: &'static Server) {
    if !implements_sse(server) {
        eprintln!(
            "SKIP on {}: Garage has no KMS (it ignores the SSE headers, its copies keep MD5 ETags)",
            server.name
        );
        return;
    }
    let key_id = kms_key(server);
    let world = World::with_config(server, &["org1"], |orgs| {
        json!({"customers": [{
            "org": "org1",
            "destinationBucket": orgs[0].1,
            "encryption": {"type": "aws:kms", "kmsKeyId": key_id}
        }], "retry": 1})
        .to_string()
    })
    .await;
    let mut sources = BTreeMap::new();
    for (i, key) in ["org1/a.pdf", "org1/b.jpg", "org1/c d+é.pdf"]
        .into_iter()
        .enumerate()
    {
        sources.insert(key, world.put(key, &bytes(3000 + i, i as u64)).await.etag);
    }
    let dest = world.bucket_of("org1").to_string();
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            method: None,
            fault: Fault::NotMd5Etags,
            path_contains: Some(format!("/{dest}")),
            copies_only: false,
            times: None,
        }],
    )
    .await;
    let first = run_via_proxy(&mut backfill_cmd(&world, &proxy.endpoint)).await;
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_eq!(first.count("copied"), 3, "{}", first.stderr);
    let via_proxy = server.client_via(&proxy.endpoint);
    for (key, etag) in &sources {
        let copy = head(&world, &dest, key).await;
        assert_eq!(
            copy.server_side_encryption(),
            Some(&aws_sdk_s3::types::ServerSideEncryption::AwsKms)
        );
        let seen = via_proxy
            .head_object()
            .bucket(&dest)
            .key(*key)
            .send()
            .await
            .unwrap();
        assert_ne!(
            seen.e_tag().map(|e| e.trim_matches('"')),
            Some(etag.as_str()),
            "{key}"
        );
    }

    let mark = proxy.seen().len();
    let again = run_via_proxy(&mut backfill_cmd(&world, &proxy.endpoint)).await;
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(again.count("copied"), 0, "{}", again.stderr);
    assert_eq!(again.count("already in place"), 3, "{}", again.stderr);
    // A listing shows no encryption: one HEAD of each copy, and at most one of its source
    // (when the copy has a checksum to compare).
    let sent = requests_since(&proxy, mark, &[&dest, &world.source]);
    let heads_of = |bucket: &str| {
        let prefix = format!("/{bucket}/");
        sent.heads.iter().filter(|s| s.path.starts_with(&prefix)).count()
    };
    assert_eq!(heads_of(&dest), 3, "{:?}", sent.heads);
    assert!(heads_of(&world.source) <= 3, "{:?}", sent.heads);
    eprintln!(
        "{}: {} HEADs of the sources",
        server.name,
        heads_of(&world.source)
    );
}

/// When the in-place rule reads the source's HEAD (other bytes of the same size at the
/// destination, with a full-object checksum) and then copies, the copy uses that HEAD: one
/// HEAD of the source per object, not one for the check and one for the copy.
async fn a_source_head_read_for_the_check_serves_the_copy(server: &'static Server) {
    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
    let world = World::new(server, &["org1"]).await;
    world.put("org1/a.jpg", b"source bytes").await;
    let dest = world.bucket_of("org1").to_string();
    world
        .client
        .put_object()
        .bucket(&dest)
        .key("org1/a.jpg")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .body(ByteStream::from_static(b"other  bytes"))
        .send()
        .await
        .unwrap();
    let copy = world
        .client
        .head_object()
        .bucket(&dest)
        .key("org1/a.jpg")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    if copy.checksum_crc32().is_none() {
        eprintln!("SKIP on {}: the server keeps no CRC32 of an object", server.name);
        return;
    }
    let proxy = FaultProxy::start(&server.endpoint, vec![]).await;
    let out = run_via_proxy(&mut backfill_cmd(&world, &proxy.endpoint)).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.count("copied"), 1, "{}", out.stderr);
    let of_source = format!("/{}/org1/a.jpg", world.source);
    let heads: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "HEAD" && s.path.starts_with(&of_source))
        .collect();
    assert_eq!(heads.len(), 1, "one HEAD of the source: {heads:#?}");
    assert_eq!(
        world.get(&dest, "org1/a.jpg").await.as_deref(),
        Some(&b"source bytes"[..])
    );
}

on_each_server!(
    a_source_head_read_for_the_check_serves_the_copy,
    part_wise_copies_count_as_in_place,
    a_part_wise_copy_of_other_bytes_is_not_in_place,
    in_place_is_answered_by_listing_the_destination,
    a_failed_destination_listing_falls_back_to_head,
    a_multipart_upload_copied_whole_is_in_place_on_a_rerun,
    a_kms_org_is_in_place_on_a_rerun,
);
