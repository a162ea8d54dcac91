use std::time::{Duration, Instant};

use artifact_export::event::parse_event;
use artifact_export::exporter::Exporter;
use artifact_export::handler::handle;
use artifact_export::reason::ReasonCode;
use artifact_export::report::{Outcome, RecordReport, Report};
use serde_json::json;

use crate::support::events::s3_event;
use crate::support::proxy::{Fault, FaultProxy, Rule, Seen};
use crate::support::servers::{Server, moto};
use crate::support::world::{World, bytes};

const ROLE: &str = "arn:aws:iam::123456789012:role/tenants/artifact-writer";
const MIB: usize = 1024 * 1024;

fn record<'a>(report: &'a Report, key: &str) -> &'a RecordReport {
    report
        .records
        .iter()
        .find(|r| r.key.as_deref() == Some(key))
        .unwrap_or_else(|| panic!("no record for {key}"))
}

/// org1 and org3 name the same role, org2 none; no retries.
async fn role_world(server: &'static Server) -> World {
    role_world_with_retry(server, 0).await
}

/// [`role_world`] with the config's `retry`.
async fn role_world_with_retry(server: &'static Server, retry: u32) -> World {
    World::with_config(server, &["org1", "org2", "org3"], |orgs| {
        json!({"customers": [
            {"org": "org1", "destinationBucket": orgs[0].1, "roleArn": ROLE, "externalId": "tenant-1"},
            {"org": "org2", "destinationBucket": orgs[1].1},
            {"org": "org3", "destinationBucket": orgs[2].1, "roleArn": ROLE, "externalId": "tenant-1"},
        ], "retry": retry})
        .to_string()
    })
    .await
}

/// The requests the proxy saw to `bucket`.
fn seen_in(proxy: &FaultProxy, bucket: &str) -> Vec<Seen> {
    let prefix = format!("/{bucket}/");
    proxy
        .seen()
        .into_iter()
        .filter(|s| s.path.starts_with(&prefix))
        .collect()
}

/// The AssumeRole calls an STS proxy saw.
fn assume_calls(sts: &FaultProxy) -> usize {
    sts.seen().iter().filter(|s| s.method == "POST").count()
}

/// The multipart uploads left in `bucket`.
async fn uploads_left(world: &World, bucket: &str) -> Vec<String> {
    let listed = world
        .client
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    listed
        .uploads()
        .iter()
        .map(|u| format!("{:?} {:?}", u.key(), u.upload_id()))
        .collect()
}

/// The access keys that signed the proxy's requests matching `filter`.
fn keys_of(proxy: &FaultProxy, filter: impl Fn(&crate::support::proxy::Seen) -> bool) -> Vec<String> {
    let mut keys: Vec<String> = proxy
        .seen()
        .iter()
        .filter(|s| filter(s))
        .map(|s| s.access_key.clone().expect("every request is signed"))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

async fn copies_are_signed_with_the_assumed_roles_credentials(server: &'static Server) {
    require!(
        server,
        sts,
        "no STS; see role_credentials_the_server_does_not_know_fail_only_that_org"
    );
    let world = role_world(server).await;
    let s3 = FaultProxy::start(&server.endpoint, vec![]).await;
    let sts = FaultProxy::start(&server.endpoint, vec![]).await;
    let mut settings = world.settings("jpg");
    settings.sts_endpoint = Some(sts.endpoint.clone());
    settings.multipart_threshold = 5 * MIB as u64;
    let exporter =
        Exporter::new(server.client_via(&s3.endpoint), settings).with_role_credentials(server.credentials());
    let small = world.put("org1/a.jpg", b"one").await;
    let big = world.put("org1/big.jpg", &bytes(6 * MIB, 7)).await;
    let other = world.put("org2/c.jpg", b"two").await;
    let shared = world.put("org3/d.jpg", b"three").await;
    let report = handle(
        &exporter,
        parse_event(&s3_event(&[&small, &big, &other, &shared])).unwrap(),
    )
    .await;
    for r in &report.records {
        assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    }
    assert_eq!(
        world
            .get(world.bucket_of("org1"), "org1/big.jpg")
            .await
            .as_deref(),
        Some(&bytes(6 * MIB, 7)[..])
    );

    let base = server.access_key.clone();
    let (org1, org2, org3) = (
        world.bucket_of("org1"),
        world.bucket_of("org2"),
        world.bucket_of("org3"),
    );
    // Every request to org1's bucket (CopyObject, CreateMultipartUpload, UploadPartCopy,
    // CompleteMultipartUpload) is signed as the role: one key, not the function's.
    let role_keys = keys_of(&s3, |s| s.path.starts_with(&format!("/{org1}/")));
    assert_eq!(role_keys.len(), 1, "{role_keys:?}");
    assert_ne!(role_keys[0], base, "org1's copies are made as the role");
    assert!(
        s3.seen()
            .iter()
            .any(|s| s.copy && s.path.contains("partNumber") && s.path.starts_with(&format!("/{org1}/"))),
        "the big object went part by part"
    );
    // The role's client is shared by the orgs that name it; org2 copies as the function.
    assert_eq!(
        keys_of(&s3, |s| s.path.starts_with(&format!("/{org3}/"))),
        role_keys
    );
    assert_eq!(
        keys_of(&s3, |s| s.path.starts_with(&format!("/{org2}/"))),
        std::slice::from_ref(&base)
    );
    // The source's own HEAD (multipart planning) is read by whoever copies: org1's and
    // org3's as the role, org2's as the function.
    for (org, keys) in [
        ("org1", &role_keys),
        ("org3", &role_keys),
        ("org2", &vec![base.clone()]),
    ] {
        assert_eq!(
            &keys_of(&s3, |s| s.method == "HEAD"
                && s.path.starts_with(&format!("/{}/{org}/", world.source))),
            keys,
            "{org}"
        );
    }
    // One AssumeRole for four records of two orgs: the credentials are cached per role.
    let assumes: Vec<_> = sts.seen().into_iter().filter(|s| s.method == "POST").collect();
    assert_eq!(assumes.len(), 1, "{assumes:?}");
}

async fn role_credentials_the_server_does_not_know_fail_only_that_org(server: &'static Server) {
    require!(
        server,
        checks_credentials,
        "accepts any credentials, so a role's copy cannot be told apart by the server; see copies_are_signed_with_the_assumed_roles_credentials"
    );
    // STS is moto's: its credentials mean nothing to this server.
    let world = role_world(server).await;
    let mut settings = world.settings("jpg");
    settings.sts_endpoint = Some(moto().endpoint.clone());
    let exporter = world
        .exporter(settings)
        .with_role_credentials(server.credentials());
    let mine = world.put("org1/a.jpg", b"one").await;
    let other = world.put("org2/b.jpg", b"two").await;
    let report = handle(&exporter, parse_event(&s3_event(&[&mine, &other])).unwrap()).await;
    let failed = record(&report, "org1/a.jpg");
    assert_eq!(failed.outcome, Outcome::Failed, "{failed:?}");
    assert_eq!(failed.reason_code, Some(ReasonCode::AccessDenied), "{failed:?}");
    let reason = failed.reason.as_deref().unwrap_or_default();
    assert!(reason.contains(&format!("(as role {ROLE})")), "{reason}");
    assert!(!reason.contains('\n'));
    assert_eq!(record(&report, "org2/b.jpg").outcome, Outcome::Copied);
    assert_eq!(world.keys(world.bucket_of("org1")).await, Vec::<String>::new());
    assert_eq!(world.keys(world.bucket_of("org2")).await, ["org2/b.jpg"]);
}

async fn an_sts_that_does_not_answer_fails_only_its_orgs_within_the_bound(server: &'static Server) {
    // Accepts connections (the kernel's backlog) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let world = role_world(server).await;
    let mut settings = world.settings("jpg");
    settings.sts_endpoint = Some(format!("http://{}", silent.local_addr().unwrap()));
    settings.timeouts.request = Duration::from_secs(2);
    let exporter = world
        .exporter(settings)
        .with_role_credentials(server.credentials());
    let mut objects = vec![
        world.put("org1/a.jpg", b"a").await,
        world.put("org3/b.jpg", b"b").await,
    ];
    for i in 0..4 {
        objects.push(world.put(&format!("org2/{i}.jpg"), b"c").await);
    }
    let started = Instant::now();
    let report = handle(
        &exporter,
        parse_event(&s3_event(&objects.iter().collect::<Vec<_>>())).unwrap(),
    )
    .await;
    let elapsed = started.elapsed();
    for key in ["org1/a.jpg", "org3/b.jpg"] {
        let r = record(&report, key);
        assert_eq!(
            (r.outcome, r.reason_code),
            (Outcome::Failed, Some(ReasonCode::AssumeRoleNotPermitted)),
            "{r:?}"
        );
        assert!(r.retryable, "a silent STS is worth another attempt: {r:?}");
        let reason = r.reason.as_deref().unwrap_or_default();
        assert!(
            reason.starts_with(&format!("could not assume role {ROLE}: ")),
            "{reason}"
        );
    }
    // The one STS attempt took its full bound: it was really asked, and really bounded.
    assert!(
        record(&report, "org1/a.jpg")
            .ms
            .max(record(&report, "org3/b.jpg").ms)
            >= 1_900
    );
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
    // org2 has no role: copied, and never waited for the role's STS call.
    for i in 0..4 {
        let r = record(&report, &format!("org2/{i}.jpg"));
        assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
        assert!(r.ms < 1_500, "org2 waited for org1's role: {r:?}");
    }
    drop(silent);
}

on_each_server!(
    copies_are_signed_with_the_assumed_roles_credentials,
    role_credentials_the_server_does_not_know_fail_only_that_org,
    an_sts_that_does_not_answer_fails_only_its_orgs_within_the_bound,
);

async fn backfill_checks_and_copies_as_the_role(server: &'static Server) {
    require!(
        server,
        sts,
        "no STS; a role's failure on this server is in role_credentials_the_server_does_not_know_fail_only_that_org"
    );
    let world = role_world(server).await;
    for key in ["org1/a.jpg", "org2/b.jpg", "org3/c.jpg"] {
        world.put(key, key.as_bytes()).await;
    }
    let s3 = FaultProxy::start(&server.endpoint, vec![]).await;
    let run = || {
        let mut cmd = crate::support::paths::binary();
        cmd.envs(world.function_env("jpg"))
            .env("AWS_ENDPOINT_URL", &s3.endpoint)
            .env("AWS_ENDPOINT_URL_STS", &server.endpoint)
            .args(["backfill", "--bucket", &world.source]);
        cmd.output().unwrap()
    };
    let out = run();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for org in ["org1", "org2", "org3"] {
        assert_eq!(world.keys(world.bucket_of(org)).await.len(), 1, "{org}");
    }
    // Run again: the in-place HEADs find everything there, as the role for org1 and org3.
    let out = run();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = server.access_key.clone();
    let in_org = |org: &str| {
        let prefix = format!("/{}/", world.bucket_of(org));
        move |s: &crate::support::proxy::Seen| s.path.starts_with(&prefix)
    };
    // One assumed key per run (each run is a process of its own), shared by org1 and org3.
    let role_keys = keys_of(&s3, in_org("org1"));
    assert_eq!(role_keys.len(), 2, "{role_keys:?}");
    assert!(!role_keys.contains(&base), "{role_keys:?}");
    assert_eq!(keys_of(&s3, in_org("org3")), role_keys);
    assert_eq!(keys_of(&s3, in_org("org2")), std::slice::from_ref(&base));
    let heads = |org: &str| {
        s3.seen()
            .iter()
            .filter(|s| s.method == "HEAD" && in_org(org)(s))
            .count()
    };
    assert_eq!(
        (heads("org1"), heads("org3")),
        (2, 2),
        "an in-place check per run"
    );
    assert_eq!(
        s3.copies_to(world.bucket_of("org1")).len(),
        1,
        "copied once, then in place"
    );
}

on_each_server!(backfill_checks_and_copies_as_the_role);

/// When backfill's in-place rule must read the source's HEAD (same size, other ETags, a
/// full-object checksum at the destination), it reads it as the org's role: the role is who
/// copies, so an org whose role cannot read the source is never told "in place" on the
/// strength of the function's own rights. (moto enforces no IAM: the test shows whose
/// credentials signed the HEAD.)
async fn backfill_reads_the_source_head_as_the_role(server: &'static Server) {
    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
    require!(
        server,
        sts,
        "no STS; a role's failure on this server is in role_credentials_the_server_does_not_know_fail_only_that_org"
    );
    let world = role_world(server).await;
    world.put("org1/a.jpg", b"source bytes").await;
    // Other bytes of the same size at the destination, with a full-object CRC32.
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
    let s3 = FaultProxy::start(&server.endpoint, vec![]).await;
    let mut cmd = crate::support::paths::binary();
    cmd.envs(world.function_env("jpg"))
        .env("AWS_ENDPOINT_URL", &s3.endpoint)
        .env("AWS_ENDPOINT_URL_STS", &server.endpoint)
        .args([
            "backfill",
            "--dry-run",
            "--org",
            "org1",
            "--bucket",
            &world.source,
        ]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = server.access_key.clone();
    let of_source = format!("/{}/org1/a.jpg", world.source);
    let heads = keys_of(&s3, |s| s.method == "HEAD" && s.path.starts_with(&of_source));
    assert_eq!(heads.len(), 1, "one HEAD of the source: {:#?}", s3.seen());
    assert_ne!(
        heads[0], base,
        "the source's HEAD is read as the role, not the function"
    );
    assert_eq!(
        keys_of(&s3, |s| s.method == "HEAD"
            && s.path.starts_with(&format!("/{dest}/"))),
        heads,
        "the destination's HEAD and the source's are the same role's"
    );
}

on_each_server!(backfill_reads_the_source_head_as_the_role);

/// An org whose role cannot read the source (the source bucket's policy grants the function
/// only; the proxy plays it, moto enforces no IAM): its copy reads the source as the role,
/// HEAD and tags included, never with the function's rights, and fails AccessDenied naming
/// the role at that first read, before any upload is started in its bucket. org2 (no role)
/// copies as the function.
async fn a_role_that_cannot_read_the_source_never_has_it_read_by_the_function(server: &'static Server) {
    require!(
        server,
        sts,
        "no STS; see role_credentials_the_server_does_not_know_fail_only_that_org"
    );
    let world = role_world(server).await;
    let base: &'static str = server.access_key.as_str();
    let org1 = world.bucket_of("org1").to_string();
    let only_the_function = |needle: String, copies_only: bool| Rule {
        method: None,
        fault: Fault::OnlySignedBy(base),
        path_contains: Some(needle),
        copies_only,
        times: None,
    };
    let s3 = FaultProxy::start(
        &server.endpoint,
        vec![
            // Reads of the source bucket (HEAD, tagging, GET)...
            only_the_function(format!("/{}/", world.source), false),
            // ...and copies out of it into org1's bucket (the role's CopyObject and
            // UploadPartCopy read the source too).
            only_the_function(format!("/{org1}/"), true),
        ],
    )
    .await;
    let mut settings = world.settings("jpg");
    settings.sts_endpoint = Some(server.endpoint.clone());
    settings.multipart_threshold = 5 * MIB as u64;
    let exporter =
        Exporter::new(server.client_via(&s3.endpoint), settings).with_role_credentials(server.credentials());
    let big = world.put("org1/big.jpg", &bytes(6 * MIB, 5)).await;
    let other = world.put("org2/c.jpg", b"two").await;
    let report = handle(&exporter, parse_event(&s3_event(&[&big, &other])).unwrap()).await;
    let r = record(&report, "org1/big.jpg");
    assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    assert_eq!(r.reason_code, Some(ReasonCode::AccessDenied), "{r:?}");
    let reason = r.reason.as_deref().unwrap();
    assert!(reason.contains(&format!("as role {ROLE}")), "{reason}");
    assert_eq!(record(&report, "org2/c.jpg").outcome, Outcome::Copied);

    let of_org1_source = format!("/{}/org1/", world.source);
    let reads = keys_of(&s3, |s| s.path.starts_with(&of_org1_source));
    assert!(
        !reads.is_empty(),
        "the copy reads the source's HEAD: {:#?}",
        s3.seen()
    );
    assert!(
        !reads.iter().any(|key| key == base),
        "org1's source was read with the function's key, not the role's: {:#?}",
        s3.seen()
    );
    assert!(
        !s3.seen()
            .iter()
            .any(|s| s.method == "POST" && s.path.starts_with(&format!("/{org1}/"))),
        "no upload is started for a source the role cannot read: {:#?}",
        s3.seen()
    );
}

on_each_server!(a_role_that_cannot_read_the_source_never_has_it_read_by_the_function);

/// S3 answers `ExpiredToken` when a request is signed with credentials that expired (early,
/// or by S3's clock): the role is assumed again and the request retried with the new
/// credentials, for a single copy and for a part of a multipart copy, whose upload is then
/// completed (and none is left behind).
async fn a_copy_refused_as_expired_is_retried_with_renewed_credentials(server: &'static Server) {
    require!(
        server,
        sts,
        "no STS; the classification is in s3::failure's unit tests"
    );
    let world = role_world_with_retry(server, 2).await;
    let expired = Fault::Error {
        status: 400,
        code: "ExpiredToken",
    };
    let once_on = |needle: &str| Rule {
        method: None,
        fault: expired,
        path_contains: Some(needle.into()),
        copies_only: true,
        times: Some(1),
    };
    let s3 = FaultProxy::start(
        &server.endpoint,
        vec![once_on("small.jpg"), once_on("partNumber=1")],
    )
    .await;
    let sts = FaultProxy::start(&server.endpoint, vec![]).await;
    let mut settings = world.settings("jpg");
    settings.sts_endpoint = Some(sts.endpoint.clone());
    settings.multipart_threshold = 5 * MIB as u64;
    let exporter =
        Exporter::new(server.client_via(&s3.endpoint), settings).with_role_credentials(server.credentials());
    let bucket = world.bucket_of("org1");

    let small = world.put("org1/small.jpg", b"small").await;
    let report = handle(&exporter, parse_event(&s3_event(&[&small])).unwrap()).await;
    let r = record(&report, "org1/small.jpg");
    assert_eq!((r.outcome, r.attempts), (Outcome::Copied, 2), "{r:?}");
    let copies = s3.copies_to("small.jpg");
    assert_eq!(copies.len(), 2, "{copies:?}");
    assert_eq!(copies[0].fault, Some(expired));
    assert_ne!(
        copies[0].access_key, copies[1].access_key,
        "the retry was signed with the refused credentials"
    );
    assert_eq!(assume_calls(&sts), 2, "assumed again after ExpiredToken");

    let big = world.put("org1/big.jpg", &bytes(6 * MIB, 11)).await;
    let report = handle(&exporter, parse_event(&s3_event(&[&big])).unwrap()).await;
    let r = record(&report, "org1/big.jpg");
    assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    assert_eq!(
        world.get(bucket, "org1/big.jpg").await.as_deref(),
        Some(&bytes(6 * MIB, 11)[..])
    );
    let first_part: Vec<_> = s3
        .copies_to("big.jpg")
        .into_iter()
        .filter(|s| s.path.contains("partNumber=1"))
        .collect();
    assert_eq!(first_part.len(), 2, "{first_part:?}");
    assert_ne!(first_part[0].access_key, first_part[1].access_key);
    // The completion is signed with the renewed credentials too.
    let complete = seen_in(&s3, bucket)
        .into_iter()
        .find(|s| s.method == "POST" && s.path.contains("big.jpg") && s.path.contains("uploadId="))
        .expect("a CompleteMultipartUpload");
    assert_eq!(complete.access_key, first_part[1].access_key);
    assert_eq!(assume_calls(&sts), 3);
    assert_eq!(uploads_left(&world, bucket).await, Vec::<String>::new());
}

/// Credentials that expire while a copy runs (moto grants any `DurationSeconds`; here 2 s):
/// the requests after they are due are signed with credentials assumed again. S3 would
/// refuse the expired ones with `ExpiredToken`; moto accepts any, so the test reads which
/// key signed what. A later record, after those expired too, assumes again and copies.
async fn credentials_that_expire_during_a_copy_are_renewed(server: &'static Server) {
    require!(server, sts, "no STS to grant short sessions");
    let world = role_world(server).await;
    let session = Duration::from_secs(2);
    // Every part copy is held longer than a session: the completion is sent after the
    // credentials the parts were signed with have expired.
    let s3 = FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            method: None,
            fault: Fault::Delay(session + Duration::from_secs(1)),
            path_contains: Some("partNumber=".into()),
            copies_only: true,
            times: None,
        }],
    )
    .await;
    let sts = FaultProxy::start(&server.endpoint, vec![]).await;
    let mut settings = world.settings("jpg");
    settings.sts_endpoint = Some(sts.endpoint.clone());
    settings.multipart_threshold = 5 * MIB as u64;
    let exporter = Exporter::new(server.client_via(&s3.endpoint), settings)
        .with_role_credentials(server.credentials())
        .with_role_session_length(session);
    let bucket = world.bucket_of("org1");

    let big = world.put("org1/big.jpg", &bytes(6 * MIB, 5)).await;
    let report = handle(&exporter, parse_event(&s3_event(&[&big])).unwrap()).await;
    let r = record(&report, "org1/big.jpg");
    assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    let seen = seen_in(&s3, bucket);
    let part_keys: Vec<_> = seen
        .iter()
        .filter(|s| s.copy && s.path.contains("partNumber="))
        .map(|s| s.access_key.clone())
        .collect();
    let complete = seen
        .iter()
        .find(|s| s.method == "POST" && s.path.contains("uploadId=") && !s.copy)
        .expect("a CompleteMultipartUpload");
    assert!(
        !part_keys.contains(&complete.access_key),
        "the completion was signed with the parts' credentials, expired by then: {:?} {part_keys:?}",
        complete.access_key
    );
    let assumed = assume_calls(&sts);
    assert!(assumed >= 2, "{assumed}");

    // Later, the completion's credentials have expired too.
    tokio::time::sleep(session).await;
    let later = world.put("org1/later.jpg", b"later").await;
    let report = handle(&exporter, parse_event(&s3_event(&[&later])).unwrap()).await;
    assert_eq!(record(&report, "org1/later.jpg").outcome, Outcome::Copied);
    let copy = s3.copies_to("later.jpg").pop().expect("a CopyObject");
    assert!(
        seen.iter().all(|s| s.access_key != copy.access_key),
        "signed with credentials assumed for the first copy"
    );
    assert_eq!(assume_calls(&sts), assumed + 1);
}

on_each_server!(
    a_copy_refused_as_expired_is_retried_with_renewed_credentials,
    credentials_that_expire_during_a_copy_are_renewed,
);
