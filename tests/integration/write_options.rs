use artifact_export::event::parse_event;
use artifact_export::exporter::Exporter;
use artifact_export::handler::handle;
use artifact_export::reason::ReasonCode;
use artifact_export::report::{Outcome, RecordReport, Report};
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ServerSideEncryption, StorageClass};
use serde_json::json;

use crate::support::events::s3_event;
use crate::support::paths::repo;
use crate::support::proxy::{Fault, FaultProxy, Rule, Seen};
use crate::support::servers::Server;
use crate::support::world::{Uploaded, World, bytes};

const MIB: usize = 1024 * 1024;

/// A world whose orgs each get the extra config fields `fields(org)`.
async fn world_with(
    server: &'static Server,
    orgs: &[&str],
    fields: impl Fn(&str) -> serde_json::Value,
) -> World {
    World::with_config(server, orgs, |pairs| {
        let customers: Vec<_> = pairs
            .iter()
            .map(|(org, bucket)| {
                let mut c = json!({"org": org, "destinationBucket": bucket});
                if let serde_json::Value::Object(extra) = fields(org) {
                    c.as_object_mut().unwrap().extend(extra);
                }
                c
            })
            .collect();
        json!({"customers": customers, "retry": 1}).to_string()
    })
    .await
}

fn record<'a>(report: &'a Report, key: &str) -> &'a RecordReport {
    report
        .records
        .iter()
        .find(|r| r.key.as_deref() == Some(key))
        .unwrap_or_else(|| panic!("no record for {key}"))
}

pub(crate) async fn head(world: &World, bucket: &str, key: &str) -> HeadObjectOutput {
    world
        .client
        .head_object()
        .bucket(bucket)
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap_or_else(|e| panic!("head s3://{bucket}/{key}: {:?}", e.into_service_error()))
}

/// Uploads `body` with a storage class and a checksum algorithm.
pub(crate) async fn put_with(
    world: &World,
    key: &str,
    body: Vec<u8>,
    class: Option<StorageClass>,
    checksum: ChecksumAlgorithm,
) -> Uploaded {
    world
        .put_object(
            world
                .client
                .put_object()
                .key(key)
                .body(ByteStream::from(body))
                .set_storage_class(class)
                .checksum_algorithm(checksum),
            key,
        )
        .await
}

async fn run(exporter: &Exporter, objects: &[&Uploaded]) -> Report {
    handle(exporter, parse_event(&s3_event(objects)).unwrap()).await
}

/// The requests the proxy saw to `bucket` (path-style: `/bucket/…`).
fn to_bucket(seen: &[Seen], bucket: &str) -> Vec<Seen> {
    let prefix = format!("/{bucket}/");
    seen.iter()
        .filter(|s| s.path.starts_with(&prefix))
        .cloned()
        .collect()
}

/// Whether the server keeps storage classes (moto does; Garage accepts the header and
/// reads every object back without a class).
pub(crate) fn keeps_storage_class(server: &Server) -> bool {
    server.name == "moto"
}

/// Whether the server implements SSE-S3 / SSE-KMS (moto does; Garage ignores the headers).
pub(crate) fn implements_sse(server: &Server) -> bool {
    server.name == "moto"
}

async fn the_source_storage_class_is_kept(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let ia = put_with(
        &world,
        "org1/ia.pdf",
        bytes(3000, 1),
        Some(StorageClass::StandardIa),
        ChecksumAlgorithm::Crc32,
    )
    .await;
    let standard = put_with(
        &world,
        "org1/std.pdf",
        bytes(3000, 2),
        None,
        ChecksumAlgorithm::Crc32,
    )
    .await;
    let proxy = FaultProxy::start(&server.endpoint, vec![]).await;
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), world.settings("pdf"));
    let report = run(&exporter, &[&ia, &standard]).await;
    for key in ["org1/ia.pdf", "org1/std.pdf"] {
        assert_eq!(
            record(&report, key).outcome,
            Outcome::Copied,
            "{:?}",
            record(&report, key)
        );
    }
    // One HEAD of the source per record (the class and checksum), then the copy.
    let heads: Vec<_> = to_bucket(&proxy.seen(), &world.source)
        .into_iter()
        .filter(|s| s.method == "HEAD")
        .collect();
    assert_eq!(heads.len(), 2, "{heads:?}");
    assert!(
        heads
            .iter()
            .all(|h| h.header("x-amz-checksum-mode") == Some("ENABLED")),
        "{heads:?}"
    );
    let dest = world.bucket_of("org1");
    let copies = proxy.copies_to(dest);
    // A STANDARD source is copied without the header (S3 treats them alike).
    let std_copy = copies.iter().find(|s| s.path.contains("std.pdf")).unwrap();
    assert_eq!(std_copy.header("x-amz-storage-class"), None);
    if !keeps_storage_class(server) {
        eprintln!(
            "SKIP on {}: Garage keeps no storage class (the source reads back without one, so none is sent)",
            server.name
        );
        return;
    }
    let ia_copy = copies.iter().find(|s| s.path.contains("ia.pdf")).unwrap();
    assert_eq!(ia_copy.header("x-amz-storage-class"), Some("STANDARD_IA"));
    assert_eq!(
        head(&world, dest, "org1/ia.pdf").await.storage_class(),
        Some(&StorageClass::StandardIa)
    );
    assert_eq!(head(&world, dest, "org1/std.pdf").await.storage_class(), None);
}

/// A fixed storage class is sent instead of the source's; the source's HEAD is still read,
/// once: what S3 does not carry on a copy (the website redirect, the Object Lock) comes from
/// it (the fidelity matrix's `fixed` column).
async fn a_fixed_storage_class_is_sent_and_the_source_headed_once(server: &'static Server) {
    let world = world_with(server, &["org1"], |_| json!({"storageClass": "GLACIER_IR"})).await;
    let src = put_with(
        &world,
        "org1/a.pdf",
        bytes(2000, 3),
        Some(StorageClass::StandardIa),
        ChecksumAlgorithm::Crc32,
    )
    .await;
    let proxy = FaultProxy::start(&server.endpoint, vec![]).await;
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), world.settings("pdf"));
    let report = run(&exporter, &[&src]).await;
    let r = record(&report, "org1/a.pdf");
    assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    let seen = proxy.seen();
    let heads = to_bucket(&seen, &world.source)
        .into_iter()
        .filter(|s| s.method == "HEAD")
        .count();
    assert_eq!(heads, 1, "one HEAD of the source: {seen:?}");
    let dest = world.bucket_of("org1");
    let copy = &proxy.copies_to(dest)[0];
    assert_eq!(copy.header("x-amz-storage-class"), Some("GLACIER_IR"));
    assert!(r.checksum.is_some(), "{r:?}");
    if !keeps_storage_class(server) {
        eprintln!(
            "SKIP on {}: Garage keeps no storage class (the header was sent, see above)",
            server.name
        );
        return;
    }
    assert_eq!(
        head(&world, dest, "org1/a.pdf").await.storage_class(),
        Some(&StorageClass::GlacierIr)
    );
}

/// A proxy in front of `server` that answers every request on the world's source bucket
/// with a checksum the object does not have.
async fn wrong_source_checksums(server: &'static Server, world: &World) -> FaultProxy {
    FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            fault: Fault::WrongChecksum,
            path_contains: Some(format!("/{}/", world.source)),
            copies_only: false,
            method: None,
            times: None,
        }],
    )
    .await
}

/// A KMS key on `server` (moto or LocalStack), made by boto3 in the test venv (the crate has
/// no KMS client).
pub(crate) fn kms_key(server: &Server) -> String {
    let python = repo("target/test-venv/bin/python");
    let script = "import boto3,sys; k=boto3.client('kms',endpoint_url=sys.argv[1],region_name=sys.argv[2],\
                  aws_access_key_id=sys.argv[3],aws_secret_access_key=sys.argv[4]); print(k.create_key()['KeyMetadata']['Arn'])";
    let out = std::process::Command::new(&python)
        .args([
            "-c",
            script,
            &server.endpoint,
            &server.region,
            &server.access_key,
            &server.secret_key,
        ])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
    assert!(
        out.status.success(),
        "create KMS key: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn encryption_reaches_the_copy(server: &'static Server) {
    let key_id = if implements_sse(server) {
        kms_key(server)
    } else {
        "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab".to_string()
    };
    let world = world_with(server, &["org1", "org2", "org3"], |org| match org {
        "org1" => json!({"encryption": {"type": "AES256"}}),
        "org2" => json!({"encryption": {"type": "aws:kms", "kmsKeyId": key_id, "bucketKey": true}}),
        _ => json!({}),
    })
    .await;
    let a = world.put("org1/a.pdf", &bytes(1500, 4)).await;
    let b = world.put("org2/b.pdf", &bytes(1500, 5)).await;
    let c = world.put("org3/c.pdf", &bytes(1500, 6)).await;
    let proxy = FaultProxy::start(&server.endpoint, vec![]).await;
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), world.settings("pdf"));
    let report = run(&exporter, &[&a, &b, &c]).await;
    for r in &report.records {
        assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    }
    let sent = |org: &str| proxy.copies_to(world.bucket_of(org)).remove(0);
    assert_eq!(
        sent("org1").header("x-amz-server-side-encryption"),
        Some("AES256")
    );
    let kms = sent("org2");
    assert_eq!(kms.header("x-amz-server-side-encryption"), Some("aws:kms"));
    assert_eq!(
        kms.header("x-amz-server-side-encryption-aws-kms-key-id"),
        Some(key_id.as_str())
    );
    assert_eq!(
        kms.header("x-amz-server-side-encryption-bucket-key-enabled"),
        Some("true")
    );
    // No encryption field: the destination bucket's default, no header.
    assert_eq!(sent("org3").header("x-amz-server-side-encryption"), None);
    if !implements_sse(server) {
        eprintln!(
            "SKIP on {}: Garage implements neither SSE-S3 nor SSE-KMS (the headers were sent, see above)",
            server.name
        );
        return;
    }
    let h = head(&world, world.bucket_of("org1"), "org1/a.pdf").await;
    assert_eq!(h.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    let h = head(&world, world.bucket_of("org2"), "org2/b.pdf").await;
    assert_eq!(h.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
    assert_eq!(h.ssekms_key_id(), Some(key_id.as_str()));
    assert_eq!(h.bucket_key_enabled(), Some(true));
    let h = head(&world, world.bucket_of("org3"), "org3/c.pdf").await;
    assert_eq!(h.server_side_encryption(), None);
}

async fn the_acl_header_reaches_the_server(server: &'static Server) {
    // Neither server shows a difference: moto's GetObjectAcl reads FULL_CONTROL for the owner
    // either way (one account), Garage has no ACLs. So the header is observed on the wire.
    let world = world_with(server, &["org1", "org2"], |org| match org {
        "org1" => json!({"acl": "bucket-owner-full-control"}),
        _ => json!({}),
    })
    .await;
    let a = world.put("org1/a.pdf", &bytes(100, 7)).await;
    let b = world.put("org2/b.pdf", &bytes(100, 8)).await;
    let proxy = FaultProxy::start(&server.endpoint, vec![]).await;
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), world.settings("pdf"));
    let report = run(&exporter, &[&a, &b]).await;
    for r in &report.records {
        assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    }
    assert_eq!(
        proxy.copies_to(world.bucket_of("org1"))[0].header("x-amz-acl"),
        Some("bucket-owner-full-control")
    );
    assert_eq!(
        proxy.copies_to(world.bucket_of("org2"))[0].header("x-amz-acl"),
        None
    );
}

async fn a_wrong_bucket_owner_fails_only_that_org(server: &'static Server) {
    // Neither server checks x-amz-expected-bucket-owner (both accept any value), so the
    // proxy plays S3's check: org1's bucket is owned by 111111111111, and a request that
    // expects another owner gets S3's 403 AccessDenied.
    let world = world_with(server, &["org1", "org2"], |org| match org {
        "org1" => json!({"expectedBucketOwner": "999999999999"}),
        _ => json!({"expectedBucketOwner": "222222222222"}),
    })
    .await;
    let org1_bucket = world.bucket_of("org1").to_string();
    let a = world.put("org1/a.pdf", &bytes(100, 9)).await;
    let b = world.put("org2/b.pdf", &bytes(100, 10)).await;
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            fault: Fault::OwnedBy("111111111111"),
            path_contains: Some(format!("/{org1_bucket}/")),
            copies_only: false,
            method: None,
            times: None,
        }],
    )
    .await;
    let mut settings = world.settings("pdf");
    settings.expected_bucket_owner = Some("333333333333".into());
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), settings);
    let report = run(&exporter, &[&a, &b]).await;
    let r1 = record(&report, "org1/a.pdf");
    assert_eq!(r1.outcome, Outcome::Failed, "{r1:?}");
    assert_eq!(r1.reason_code, Some(ReasonCode::AccessDenied));
    assert_eq!(record(&report, "org2/b.pdf").outcome, Outcome::Copied);
    assert_eq!(world.get(&org1_bucket, "org1/a.pdf").await, None);
    let seen = proxy.seen();
    let org2_copy = &proxy.copies_to(world.bucket_of("org2"))[0];
    assert_eq!(
        org2_copy.header("x-amz-expected-bucket-owner"),
        Some("222222222222")
    );
    assert_eq!(
        org2_copy.header("x-amz-source-expected-bucket-owner"),
        Some("333333333333")
    );
    // The global owner on every request to the source and config buckets.
    for bucket in [&world.source, &world.config_bucket] {
        let requests = to_bucket(&seen, bucket);
        assert!(!requests.is_empty(), "no request to {bucket}");
        for s in requests {
            assert_eq!(
                s.header("x-amz-expected-bucket-owner"),
                Some("333333333333"),
                "{s:?}"
            );
        }
    }
}

async fn checksums_are_kept_and_reported(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let mut uploaded = Vec::new();
    for (key, algorithm) in [
        ("org1/nvme.pdf", ChecksumAlgorithm::Crc64Nvme),
        ("org1/crc32.pdf", ChecksumAlgorithm::Crc32),
    ] {
        uploaded.push(put_with(&world, key, bytes(5000, 11), None, algorithm).await);
    }
    let report = run(
        &world.exporter(world.settings("pdf")),
        &uploaded.iter().collect::<Vec<_>>(),
    )
    .await;
    let dest = world.bucket_of("org1");
    for (key, algorithm) in [("org1/nvme.pdf", "CRC64NVME"), ("org1/crc32.pdf", "CRC32")] {
        let r = record(&report, key);
        if server.name == "moto" && algorithm == "CRC64NVME" {
            // moto computes the copy's CRC64NVME itself, wrongly (a 4-byte value): the
            // export catches that as it would on S3.
            assert_eq!(r.reason_code, Some(ReasonCode::ChecksumMismatch), "{r:?}");
            eprintln!(
                "SKIP on moto: moto's CopyObject computes a wrong CRC64NVME (reported as ChecksumMismatch)"
            );
            continue;
        }
        assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
        let source = head(&world, &world.source, key).await;
        let source_value = match algorithm {
            "CRC64NVME" => source.checksum_crc64_nvme(),
            _ => source.checksum_crc32(),
        };
        let Some(source_value) = source_value else {
            eprintln!(
                "SKIP on {}: the server keeps no {algorithm} checksum for {key}",
                server.name
            );
            continue;
        };
        let reported = r
            .checksum
            .as_ref()
            .unwrap_or_else(|| panic!("no checksum reported: {r:?}"));
        assert_eq!(
            (reported.algorithm.as_str(), reported.value.as_str()),
            (algorithm, source_value)
        );
        let copy = head(&world, dest, key).await;
        let copy_value = match algorithm {
            "CRC64NVME" => copy.checksum_crc64_nvme(),
            _ => copy.checksum_crc32(),
        };
        assert_eq!(copy_value, Some(source_value), "{key}");
        let line = serde_json::to_value(r).unwrap();
        assert_eq!(
            line["checksum"],
            json!({"algorithm": algorithm, "value": source_value})
        );
    }
}

async fn a_checksum_that_differs_fails_the_record(server: &'static Server) {
    // The proxy makes the source's HEAD report another checksum than its bytes have: the
    // copy's checksum then differs from what the source claims.
    let world = World::new(server, &["org1"]).await;
    let src = put_with(
        &world,
        "org1/a.pdf",
        bytes(4000, 12),
        None,
        ChecksumAlgorithm::Crc32,
    )
    .await;
    let proxy = wrong_source_checksums(server, &world).await;
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), world.settings("pdf"));
    let report = run(&exporter, &[&src]).await;
    let r = record(&report, "org1/a.pdf");
    assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    assert_eq!(r.reason_code, Some(ReasonCode::ChecksumMismatch), "{r:?}");
    assert!(r.reason.as_deref().unwrap().contains("AAAAAA=="), "{r:?}");
}

async fn multipart_copies_carry_class_encryption_owner_and_checksum(server: &'static Server) {
    let world = world_with(
        server,
        &["org1"],
        |_| json!({"encryption": {"type": "AES256"}, "expectedBucketOwner": "222222222222"}),
    )
    .await;
    let body = bytes(11 * MIB + 77, 13);
    let src = put_with(
        &world,
        "org1/big.indd",
        body.clone(),
        Some(StorageClass::StandardIa),
        ChecksumAlgorithm::Crc32,
    )
    .await;
    let proxy = FaultProxy::start(&server.endpoint, vec![]).await;
    let mut settings = world.settings("indd");
    settings.multipart_threshold = 5 * MIB as u64;
    settings.expected_bucket_owner = Some("333333333333".into());
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), settings);
    let report = run(&exporter, &[&src]).await;
    let r = record(&report, "org1/big.indd");
    assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    let dest = world.bucket_of("org1");
    assert!(
        world.get(dest, "org1/big.indd").await == Some(body),
        "not byte-identical"
    );
    let seen = to_bucket(&proxy.seen(), dest);
    let create = seen
        .iter()
        .find(|s| s.method == "POST" && s.path.contains("uploads"))
        .expect("CreateMultipartUpload");
    assert_eq!(create.header("x-amz-server-side-encryption"), Some("AES256"));
    assert_eq!(create.header("x-amz-checksum-algorithm"), Some("CRC32"));
    assert_eq!(create.header("x-amz-checksum-type"), Some("FULL_OBJECT"));
    let complete = seen
        .iter()
        .find(|s| s.method == "POST" && s.path.contains("uploadId="))
        .expect("CompleteMultipartUpload");
    let source = head(&world, &world.source, "org1/big.indd").await;
    assert_eq!(complete.header("x-amz-checksum-crc32"), source.checksum_crc32());
    // Every request of the copy to the destination names its owner; the parts name the source's.
    for s in &seen {
        assert_eq!(
            s.header("x-amz-expected-bucket-owner"),
            Some("222222222222"),
            "{s:?}"
        );
        if s.copy {
            assert_eq!(
                s.header("x-amz-source-expected-bucket-owner"),
                Some("333333333333"),
                "{s:?}"
            );
        }
    }
    let copy = head(&world, dest, "org1/big.indd").await;
    assert_eq!(copy.checksum_crc32(), source.checksum_crc32());
    let reported = r.checksum.as_ref().expect("checksum reported");
    assert_eq!(Some(reported.value.as_str()), source.checksum_crc32());
    if keeps_storage_class(server) {
        assert_eq!(create.header("x-amz-storage-class"), Some("STANDARD_IA"));
        assert_eq!(copy.storage_class(), Some(&StorageClass::StandardIa));
        assert_eq!(copy.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    } else {
        eprintln!(
            "SKIP on {}: Garage keeps no storage class and no SSE-S3 (the SSE header was sent, see above)",
            server.name
        );
    }
}

async fn a_multipart_copy_with_a_wrong_source_checksum_is_refused(server: &'static Server) {
    // S3 checks the full-object value given at CompleteMultipartUpload. moto does not
    // (it completes whatever value it is given), Garage does.
    if server.name == "moto" {
        eprintln!("SKIP on moto: moto does not validate the checksum given at CompleteMultipartUpload");
        return;
    }
    let world = World::new(server, &["org1"]).await;
    let src = put_with(
        &world,
        "org1/big.indd",
        bytes(11 * MIB, 14),
        None,
        ChecksumAlgorithm::Crc32,
    )
    .await;
    let proxy = wrong_source_checksums(server, &world).await;
    let mut settings = world.settings("indd");
    settings.multipart_threshold = 5 * MIB as u64;
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), settings);
    let report = run(&exporter, &[&src]).await;
    let r = record(&report, "org1/big.indd");
    assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    assert_eq!(r.reason_code, Some(ReasonCode::ChecksumMismatch), "{r:?}");
    assert_eq!(world.get(world.bucket_of("org1"), "org1/big.indd").await, None);
}

/// A record without an ETag (an event that left it out) under a fixed storage class still
/// makes a conditional copy: the source's HEAD gives the ETag the copy is conditional on,
/// instead of an unconditional `CopyObject` of whatever is there by then.
async fn a_record_without_an_etag_copies_conditionally(server: &'static Server) {
    let world = world_with(server, &["org1"], |_| json!({"storageClass": "GLACIER_IR"})).await;
    let src = world.put("org1/no-etag.pdf", &bytes(2000, 9)).await;
    let mut event = s3_event(&[&src]);
    event["Records"][0]["s3"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("eTag");
    let proxy = FaultProxy::start(&server.endpoint, vec![]).await;
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), world.settings("pdf"));
    let report = handle(&exporter, parse_event(&event).unwrap()).await;
    let r = record(&report, "org1/no-etag.pdf");
    assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    let seen = proxy.seen();
    assert!(
        to_bucket(&seen, &world.source).iter().any(|s| s.method == "HEAD"),
        "no ETag: the source is headed for one: {seen:?}"
    );
    let copy = &proxy.copies_to(world.bucket_of("org1"))[0];
    assert_eq!(
        copy.header("x-amz-copy-source-if-match"),
        Some(format!("\"{}\"", src.etag).as_str()),
        "{copy:?}"
    );
}

on_each_server!(
    a_record_without_an_etag_copies_conditionally,
    the_source_storage_class_is_kept,
    a_fixed_storage_class_is_sent_and_the_source_headed_once,
    encryption_reaches_the_copy,
    the_acl_header_reaches_the_server,
    a_wrong_bucket_owner_fails_only_that_org,
    checksums_are_kept_and_reported,
    a_checksum_that_differs_fails_the_record,
    multipart_copies_carry_class_encryption_owner_and_checksum,
    a_multipart_copy_with_a_wrong_source_checksum_is_refused,
);
