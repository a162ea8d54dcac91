//! What an export keeps, as a matrix: one column per way an object is copied (a single
//! `CopyObject`, a multipart copy, a copy as the org's role, an SSE-KMS source, a key a plugin
//! rewrote, an org with a fixed storage class), one row per property of the object. Each cell compares the destination with the
//! source (or with the org's override) and the matrix is printed whole; a server that lacks
//! a feature prints `SKIP on <server>: <feature>` for the cells it cannot hold.
//!
//! Runs on the three servers ([`on_all_three_servers!`]). Where they disagree, the test
//! follows S3's documentation: moto carries `WebsiteRedirectLocation` and `Expires` on a
//! `CopyObject` with the COPY directive, LocalStack does not (S3's CopyObject reference: the
//! redirect "is not copied when using the x-amz-metadata-directive header"), so LocalStack is
//! the server trusted for those two rows; an SSE-KMS source copied without encryption headers
//! gets the destination bucket's default encryption on LocalStack, as S3 documents ("the
//! encryption setting of the target object is set to the default encryption configuration of
//! the destination bucket"), so the encryption row compares with the org's `encryption` and
//! LocalStack is trusted for it. Object Lock: both keep retention and legal hold and neither
//! carries them on a COPY, as S3. moto refuses Object Lock headers on a `CopyObject` without
//! a `Content-MD5` or `x-amz-sdk-checksum-algorithm` header (S3's CopyObject reference asks
//! for neither; a copy has no body) and drops them on a `CreateMultipartUpload`: LocalStack
//! is trusted for the lock rows, moto's sources are not locked (its lock is tested by
//! `object_lock_needs_a_locked_destination_unless_ignored`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use artifact_export::event::parse_event;
use artifact_export::exporter::Exporter;
use artifact_export::handler::handle;
use artifact_export::reason::ReasonCode;
use artifact_export::report::{Outcome, RecordReport, Report};
use aws_sdk_s3::Client;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, ObjectLockLegalHoldStatus, ObjectLockMode, ServerSideEncryption,
    StorageClass,
};
use serde_json::{Value, json};

use crate::support::events::s3_event;
use crate::support::proxy::FaultProxy;
use crate::support::servers::Server;
use crate::support::world::{Uploaded, World, bytes, unique_bucket};
use crate::write_options::kms_key;

const MIB: usize = 1024 * 1024;
const ROLE: &str = "arn:aws:iam::123456789012:role/tenants/artifact-writer";

/// The ways an object is copied: (column, org, key, body size).
const COLUMNS: &[(&str, &str, &str, usize)] = &[
    ("single", "single", "single/a.pdf", 3000),
    ("multipart", "multi", "multi/big.pdf", 6 * MIB + 17),
    ("role", "role", "role/a.pdf", 3000),
    ("sse-kms", "kms", "kms/a.pdf", 3000),
    ("plugin", "plug", "plug/x/a.pdf", 3000),
    // An org with a fixed storage class (GLACIER_IR): the event gives size and ETag and the
    // class needs no HEAD, yet the copy must still read the source's properties.
    ("fixed", "fixed", "fixed/a.pdf", 3000),
];

/// One object's properties as a HEAD (and GetObjectTagging) reads them, row by row.
type Properties = BTreeMap<&'static str, Option<String>>;

/// The matrix's rows, in order.
const ROWS: &[&str] = &[
    "metadata",
    "Content-Type",
    "Content-Encoding",
    "Content-Disposition",
    "Content-Language",
    "Cache-Control",
    "Expires",
    "WebsiteRedirectLocation",
    "tags",
    "storage class",
    "encryption",
    "checksum",
    "Object Lock retention",
    "Object Lock legal hold",
];

/// A bucket, with Object Lock when `lock` (and the server has it).
async fn bucket(client: &Client, label: &str, lock: bool) -> String {
    let name = unique_bucket(label);
    client
        .create_bucket()
        .bucket(&name)
        .set_object_lock_enabled_for_bucket(lock.then_some(true))
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {name}: {:?}", e.into_service_error()));
    name
}

/// Ten tags, the most an object may have (spaces and non-ASCII letters included).
fn ten_tags() -> String {
    let mut tags: Vec<String> = (0..8).map(|i| format!("k{i}=v{i}")).collect();
    tags.push("owner=Ana%20Lima".into());
    tags.push("stadt=Z%C3%BCrich".into());
    tags.join("&")
}

/// The retention date the locked sources get: a day from now, in whole seconds.
fn retain_until() -> DateTime {
    let secs = SystemTime::now()
        .checked_add(Duration::from_secs(86_400))
        .unwrap()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    DateTime::from_secs(secs as i64)
}

/// Uploads `key` to `source` with every property of the matrix (those the server has).
async fn put_full(
    world: &World,
    source: &str,
    key: &str,
    size: usize,
    kms_key: Option<&str>,
    lock: bool,
) -> Uploaded {
    let server = world.server;
    let mut request = world
        .client
        .put_object()
        .bucket(source)
        .key(key)
        .body(ByteStream::from(bytes(size, size as u64)))
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .metadata("camera", "Hasselblad 500C")
        .metadata("title", "Grüße aus Zürich, 東京")
        .content_type("application/x-indesign")
        .content_encoding("identity")
        .content_disposition("attachment; filename=\"a.pdf\"")
        .content_language("de-CH")
        .cache_control("max-age=3600")
        .expires(DateTime::from_secs(1_893_553_445))
        .website_redirect_location("/elsewhere/index.html")
        .storage_class(StorageClass::StandardIa);
    if server.caps.tagging {
        request = request.tagging(ten_tags());
    }
    if let Some(kms_key) = kms_key {
        request = request
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(kms_key);
    }
    if lock {
        request = request
            .object_lock_mode(ObjectLockMode::Governance)
            .object_lock_retain_until_date(retain_until())
            .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On);
    }
    let out = request.send().await.unwrap_or_else(|e| {
        panic!(
            "put s3://{source}/{key} on {}: {:?}",
            server.name,
            e.into_service_error()
        )
    });
    let head = head(&world.client, source, key).await;
    Uploaded {
        bucket: source.to_string(),
        key: key.to_string(),
        size: head.content_length().unwrap() as u64,
        etag: out.e_tag().unwrap().trim_matches('"').to_string(),
    }
}

async fn head(client: &Client, bucket: &str, key: &str) -> HeadObjectOutput {
    client
        .head_object()
        .bucket(bucket)
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap_or_else(|e| panic!("head s3://{bucket}/{key}: {:?}", e.into_service_error()))
}

/// What `bucket`/`key` holds, row by row.
async fn properties(world: &World, bucket: &str, key: &str) -> Properties {
    let h = head(&world.client, bucket, key).await;
    let text = |v: Option<&str>| v.map(str::to_string);
    let tags = if world.server.caps.tagging {
        let out = world
            .client
            .get_object_tagging()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .expect("get tagging");
        let mut tags: Vec<String> = out
            .tag_set()
            .iter()
            .map(|t| format!("{}={}", t.key(), t.value()))
            .collect();
        tags.sort();
        (!tags.is_empty()).then(|| tags.join(", "))
    } else {
        None
    };
    let metadata = h.metadata().filter(|m| !m.is_empty()).map(|m| {
        let sorted: BTreeMap<_, _> = m.iter().collect();
        format!("{sorted:?}")
    });
    let retention = h.object_lock_mode().map(|mode| {
        format!(
            "{} until {}",
            mode.as_str(),
            h.object_lock_retain_until_date()
                .map(|d| d.secs().to_string())
                .unwrap_or_default()
        )
    });
    BTreeMap::from([
        ("metadata", metadata),
        ("Content-Type", text(h.content_type())),
        ("Content-Encoding", text(h.content_encoding())),
        ("Content-Disposition", text(h.content_disposition())),
        ("Content-Language", text(h.content_language())),
        ("Cache-Control", text(h.cache_control())),
        ("Expires", text(h.expires_string())),
        ("WebsiteRedirectLocation", text(h.website_redirect_location())),
        ("tags", tags),
        ("storage class", h.storage_class().map(|c| c.as_str().to_string())),
        (
            "encryption",
            h.server_side_encryption().map(|s| {
                format!("{} {}", s.as_str(), h.ssekms_key_id().unwrap_or_default())
                    .trim()
                    .to_string()
            }),
        ),
        ("checksum", h.checksum_crc32().map(|c| format!("CRC32 {c}"))),
        ("Object Lock retention", retention),
        (
            "Object Lock legal hold",
            h.object_lock_legal_hold_status().map(|s| s.as_str().to_string()),
        ),
    ])
}

fn record<'a>(report: &'a Report, key: &str) -> &'a RecordReport {
    report
        .records
        .iter()
        .find(|r| r.key.as_deref() == Some(key))
        .unwrap_or_else(|| panic!("no record for {key}: {report:?}"))
}

/// The matrix on one server: every column's object copied by one invocation, then every
/// cell compared. Fails listing every cell that differs.
async fn what_an_export_keeps(server: &'static Server) {
    let caps = server.caps;
    let lock = caps.object_lock;
    let client = server.client();
    let source = bucket(&client, "fsrc", lock).await;
    let mut dests = BTreeMap::new();
    for (_, org, _, _) in COLUMNS {
        dests.insert(*org, bucket(&client, org, lock).await);
    }
    let kms_keys = caps.kms.then(|| (kms_key(server), kms_key(server)));
    let plugin = json!({
        "source": plugin_artifacts::KEY_REWRITER,
        "timeoutMs": 5000,
        "settings": {"replacePrefix": {"from": "plug/", "to": "rewritten/"}}
    });
    let dest_kms = kms_keys.as_ref().map(|(_, dest)| dest.clone());
    let world = World::with_config(server, &[], |_| {
        let customers: Vec<Value> = COLUMNS
            .iter()
            .map(|(_, org, _, _)| {
                let mut c = json!({"org": org, "destinationBucket": dests[org], "prefix": format!("{org}/")});
                match *org {
                    "role" => c["roleArn"] = json!(ROLE),
                    "kms" => {
                        if let Some(key) = &dest_kms {
                            c["encryption"] = json!({"type": "aws:kms", "kmsKeyId": key});
                        }
                    }
                    "plug" => c["plugin"] = plugin.clone(),
                    "fixed" => c["storageClass"] = json!("GLACIER_IR"),
                    _ => {}
                }
                c
            })
            .collect();
        json!({"customers": customers, "retry": 1}).to_string()
    })
    .await;

    let mut uploaded = Vec::new();
    for (column, _, key, size) in COLUMNS {
        let kms = if *column == "sse-kms" {
            kms_keys.as_ref().map(|(source_key, _)| source_key.as_str())
        } else {
            None
        };
        let locked = lock && caps.locks_on_copies;
        if lock && !locked {
            eprintln!(
                "SKIP on {}: Object Lock rows ({column}): the server refuses lock headers on CopyObject without a body checksum and drops them on CreateMultipartUpload",
                server.name
            );
        }
        uploaded.push(put_full(&world, &source, key, *size, kms, locked).await);
    }
    let mut settings = world.settings("pdf");
    settings.source_bucket = Some(source.clone());
    settings.multipart_threshold = 5 * MIB as u64;
    settings.sts_endpoint = Some(server.endpoint.clone());
    let exporter = Exporter::new(server.client(), settings).with_role_credentials(server.credentials());
    let to_copy: Vec<&Uploaded> = COLUMNS
        .iter()
        .zip(&uploaded)
        .filter(|((column, ..), _)| *column != "role" || caps.sts)
        .filter(|((column, ..), _)| *column != "sse-kms" || caps.kms)
        .map(|(_, u)| u)
        .collect();
    let report = handle(&exporter, parse_event(&s3_event(&to_copy)).unwrap()).await;

    let mut differ = Vec::new();
    let mut lines = vec![format!("fidelity matrix on {}:", server.name)];
    for ((column, org, key, _), object) in COLUMNS.iter().zip(&uploaded) {
        if *column == "role" && !caps.sts {
            eprintln!("SKIP on {}: column role: no STS", server.name);
            continue;
        }
        if *column == "sse-kms" && !caps.kms {
            eprintln!("SKIP on {}: column sse-kms: no KMS", server.name);
            continue;
        }
        let r = record(&report, &object.key);
        assert_eq!(
            r.outcome,
            Outcome::Copied,
            "column {column} on {}: {r:?}",
            server.name
        );
        let dest_key = if *column == "plugin" {
            key.replacen("plug/", "rewritten/", 1)
        } else {
            key.to_string()
        };
        let from = properties(&world, &source, key).await;
        let to = properties(&world, &dests[org], &dest_key).await;
        for row in ROWS {
            let expected = match (*row, *column) {
                // The org's overrides: its own KMS key (S3 does not carry a source's
                // encryption over; elsewhere source and copy both have their bucket's
                // default), its fixed storage class.
                ("encryption", "sse-kms") => dest_kms.as_ref().map(|k| format!("aws:kms {k}")),
                ("storage class", "fixed") => Some("GLACIER_IR".to_string()),
                _ => from[row].clone(),
            };
            let lock_row = row.starts_with("Object Lock");
            if lock_row && caps.object_lock && !caps.locks_on_copies {
                continue; // said above
            }
            if from[row].is_none() && *row != "encryption" {
                eprintln!(
                    "SKIP on {}: {row} ({column}): the server keeps no {row} on PutObject",
                    server.name
                );
                continue;
            }
            let cell = if to[row] == expected { "same" } else { "DIFFERS" };
            lines.push(format!(
                "  {column:9} | {row:24} | {cell}: source {:?} destination {:?}",
                from[row], to[row]
            ));
            if to[row] != expected {
                differ.push(format!(
                    "{column} / {row}: expected {expected:?}, got {:?}",
                    to[row]
                ));
            }
        }
    }
    eprintln!("{}", lines.join("\n"));
    assert!(
        differ.is_empty(),
        "on {}, cells that differ:\n{}",
        server.name,
        differ.join("\n")
    );
}

/// Object Lock on a destination without it: `objectLock: "copy"` (the default) fails the
/// record with `DstObjectLockConfigMissing`, asking S3 about the bucket once per invocation
/// however many locked objects go there; `"ignore"` copies without the lock; an object
/// without a lock is copied either way.
async fn object_lock_needs_a_locked_destination_unless_ignored(server: &'static Server) {
    require!(server, object_lock, "no Object Lock");

    let client = server.client();
    let source = bucket(&client, "lsrc", true).await;
    let world = World::with_config(server, &["copy", "ignore"], |orgs| {
        json!({"customers": [
            {"org": "copy", "destinationBucket": orgs[0].1},
            {"org": "ignore", "destinationBucket": orgs[1].1, "objectLock": "ignore"},
        ], "retry": 0})
        .to_string()
    })
    .await;
    let locked_a = put_full(&world, &source, "copy/a.pdf", 1000, None, true).await;
    let locked_b = put_full(&world, &source, "copy/b.pdf", 1000, None, true).await;
    let out = world
        .client
        .put_object()
        .bucket(&source)
        .key("copy/plain.pdf")
        .body(ByteStream::from_static(b"p"))
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .expect("put plain");
    let plain = Uploaded {
        bucket: source.clone(),
        key: "copy/plain.pdf".into(),
        size: 1,
        etag: out.e_tag().unwrap().trim_matches('"').to_string(),
    };
    let ignored = put_full(&world, &source, "ignore/a.pdf", 1000, None, true).await;
    let proxy = FaultProxy::start(&server.endpoint, vec![]).await;
    let mut settings = world.settings("pdf");
    settings.source_bucket = Some(source.clone());
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), settings);
    let report = handle(
        &exporter,
        parse_event(&s3_event(&[&locked_a, &locked_b, &plain, &ignored])).unwrap(),
    )
    .await;
    for key in ["copy/a.pdf", "copy/b.pdf"] {
        let r = record(&report, key);
        assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
        assert_eq!(
            r.reason_code,
            Some(ReasonCode::DstObjectLockConfigMissing),
            "{r:?}"
        );
        assert!(
            r.reason
                .as_deref()
                .unwrap_or_default()
                .contains(world.bucket_of("copy")),
            "the reason names the bucket: {r:?}"
        );
    }
    let copy_dest = world.bucket_of("copy");
    assert_eq!(world.get(copy_dest, "copy/a.pdf").await, None);
    let asked: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| {
            s.method == "GET"
                && s.path.starts_with(&format!("/{copy_dest}"))
                && s.path.contains("object-lock")
        })
        .collect();
    assert_eq!(
        asked.len(),
        1,
        "one question per bucket and invocation: {asked:?}"
    );
    let r = record(&report, "copy/plain.pdf");
    assert_eq!(
        r.outcome,
        Outcome::Copied,
        "{r:?} {:#?}",
        proxy
            .seen()
            .iter()
            .filter(|s| s.path.contains("plain"))
            .collect::<Vec<_>>()
    );
    let r = record(&report, "ignore/a.pdf");
    assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    let copied = head(&world.client, world.bucket_of("ignore"), "ignore/a.pdf").await;
    assert_eq!(copied.object_lock_mode(), None);
    assert_eq!(copied.object_lock_legal_hold_status(), None);
}

on_all_three_servers!(
    what_an_export_keeps,
    object_lock_needs_a_locked_destination_unless_ignored
);
