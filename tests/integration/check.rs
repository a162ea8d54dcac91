use std::path::Path;
use std::process::Output;

use artifact_export::check::{CheckOptions, PROBE_PREFIX, bucket_reachable, check_orgs, kms_key_usable};
use artifact_export::exporter::Exporter;
use artifact_export::reason::ReasonCode;
use serde_json::json;

use crate::support::paths::binary;
use crate::support::proxy::{Fault, FaultProxy, Rule};
use crate::support::servers::{Server, garage, moto};
use crate::support::world::{World, unique_bucket};

const ROLE: &str = "arn:aws:iam::123456789012:role/tenants/artifact-writer";

fn stdout_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `artifact-export check --config FILE ARGS` against `server`, with STS at `sts`.
fn run_check(server: &Server, sts: &str, config: &Path, args: &[&str]) -> Output {
    let mut cmd = binary();
    cmd.envs(server.child_env())
        .env("AWS_ENDPOINT_URL_STS", sts)
        .arg("check")
        .arg("--config")
        .arg(config)
        .args(args);
    cmd.output().unwrap()
}

fn line_of<'a>(lines: &'a [String], org: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.split_whitespace().nth(1) == Some(org))
        .unwrap_or_else(|| panic!("no line for {org} in {lines:#?}"))
}

/// One good org and one org per failure the servers can produce; SKIP lines for the others.
async fn check_gives_each_org_one_line_with_its_first_failure(server: &'static Server) {
    let missing = unique_bucket("absent");
    let world = World::with_config(server, &["good", "badplugin", "tenant", "badcandidate"], |orgs| {
        json!({"customers": [
            {"org": "good", "destinationBucket": orgs[0].1,
             "plugin": {"source": plugin_artifacts::KEY_REWRITER}},
            {"org": "nobucket", "destinationBucket": missing},
            {"org": "badplugin", "destinationBucket": orgs[1].1,
             "plugin": {"source": plugin_artifacts::KEY_REWRITER, "sha256": "0".repeat(64)}},
            {"org": "tenant", "destinationBucket": orgs[2].1, "roleArn": ROLE},
            {"org": "badcandidate", "destinationBucket": orgs[3].1,
             "plugin": {"source": plugin_artifacts::KEY_REWRITER,
                        "candidate": {"source": plugin_artifacts::GLOB_FILTER, "sha256": "0".repeat(64)}}},
        ], "retry": 0})
        .to_string()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    let text = world.get(&world.config_bucket, &world.config_key).await.unwrap();
    std::fs::write(&config, text).unwrap();

    // STS is moto's for both servers (Garage has none).
    let out = run_check(server, &moto().endpoint, &config, &[]);
    let lines = stdout_lines(&out);
    assert_eq!(out.status.code(), Some(1), "{lines:#?}\n{}", stderr_of(&out));
    assert_eq!(lines.len(), 5, "one line per org: {lines:#?}");
    let good = line_of(&lines, "good");
    assert!(
        good == format!(
            "ok  good  (role none, bucket {}, plugin {})",
            world.bucket_of("good"),
            plugin_artifacts::KEY_REWRITER
        ),
        "{good}"
    );
    assert_eq!(
        line_of(&lines, "nobucket"),
        format!("FAIL nobucket  DstBucketNotFound: bucket {missing:?} does not exist")
    );
    let plugin = line_of(&lines, "badplugin");
    assert!(
        plugin.starts_with("FAIL badplugin  PluginNotLoadable: "),
        "{plugin}"
    );
    assert!(plugin.contains("sha256"), "{plugin}");
    // The candidate is loaded and checked like the plugin.
    let candidate = line_of(&lines, "badcandidate");
    assert!(
        candidate.starts_with(&format!(
            "FAIL badcandidate  PluginNotLoadable: candidate plugin {}",
            plugin_artifacts::GLOB_FILTER
        )),
        "{candidate}"
    );
    assert!(candidate.contains("sha256"), "{candidate}");
    let tenant = line_of(&lines, "tenant");
    if server.caps.checks_credentials {
        // The role's credentials (moto's) mean nothing to this server: HeadBucket is refused.
        assert!(
            tenant.starts_with("FAIL tenant  AccessDenied: HeadBucket on "),
            "{tenant}"
        );
    } else {
        eprintln!(
            "SKIP on {}: AccessDenied: the server accepts any credentials",
            server.name
        );
        assert_eq!(
            tenant,
            format!(
                "ok  tenant  (role {ROLE}, bucket {}, plugin none)",
                world.bucket_of("tenant")
            )
        );
    }

    // An STS that refuses AssumeRole: Garage has none and answers it with an error.
    let out = run_check(server, &garage().endpoint, &config, &["--org", "tenant"]);
    let lines = stdout_lines(&out);
    assert_eq!(out.status.code(), Some(1), "{lines:#?}\n{}", stderr_of(&out));
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].starts_with(&format!(
            "FAIL tenant  AssumeRoleNotPermitted: could not assume role {ROLE}: STS answered HTTP 4"
        )),
        "{lines:#?}"
    );

    // The write probe puts and deletes its key; all passing is exit 0.
    let out = run_check(
        server,
        &moto().endpoint,
        &config,
        &["--org", "good", "--write-probe"],
    );
    let lines = stdout_lines(&out);
    assert_eq!(out.status.code(), Some(0), "{lines:#?}\n{}", stderr_of(&out));
    assert!(
        lines[0].contains(", write probe .artifact-export-probe/") && lines[0].ends_with(" put and deleted)"),
        "{lines:#?}"
    );
    assert_eq!(world.keys(world.bucket_of("good")).await, Vec::<String>::new());

    // Bad input: exit 2 and one line.
    let out = run_check(server, &moto().endpoint, &config, &["--org", "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--org nosuch: no such org"), "{err}");

    for (cap, reason, why) in [
        (
            server.caps.enforces_expected_bucket_owner,
            "DstBucketOwnerMismatch",
            "does not check ExpectedBucketOwner",
        ),
        (
            server.caps.checks_kms_keys,
            "KmsDenied",
            "does not check SSE-KMS keys",
        ),
    ] {
        if !cap {
            eprintln!("SKIP on {}: {reason}: the server {why}", server.name);
        }
    }
}

/// The owner and KMS checks, called directly with a value (the config fields that feed them
/// come with the org's `expectedBucketOwner` / `encryption`).
async fn owner_and_kms_checks_ask_the_server(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let bucket = world.bucket_of("org1");
    let missing = unique_bucket("absent");
    // Whatever the owner, a missing bucket is missing.
    assert_eq!(
        bucket_reachable(&world.client, &missing, Some("999999999999"))
            .await
            .unwrap_err()
            .reason,
        ReasonCode::DstBucketNotFound
    );
    assert_eq!(bucket_reachable(&world.client, bucket, None).await, Ok(()));
    let wrong_owner = bucket_reachable(&world.client, bucket, Some("999999999999")).await;
    if server.caps.enforces_expected_bucket_owner {
        let failure = wrong_owner.unwrap_err();
        assert_eq!(failure.reason, ReasonCode::DstBucketOwnerMismatch, "{failure}");
        assert!(failure.message.contains("999999999999"), "{failure}");
    } else {
        eprintln!(
            "SKIP on {}: DstBucketOwnerMismatch: the server ignores ExpectedBucketOwner",
            server.name
        );
        assert_eq!(wrong_owner, Ok(()));
    }
    // No key configured: nothing asked.
    assert_eq!(kms_key_usable(&world.client, &missing, None, None).await, Ok(()));
    let unknown_key = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000";
    let kms = kms_key_usable(&world.client, bucket, None, Some(unknown_key)).await;
    if server.caps.checks_kms_keys {
        assert_eq!(kms.unwrap_err().reason, ReasonCode::KmsDenied);
    } else {
        eprintln!(
            "SKIP on {}: KmsDenied: the server accepts any SSE-KMS key",
            server.name
        );
        assert_eq!(kms, Ok(()));
        // The probe written with the key was deleted again.
        assert_eq!(world.keys(bucket).await, Vec::<String>::new());
    }
    // With a key, the probe goes to the bucket: a missing one says so.
    assert_eq!(
        kms_key_usable(&world.client, &missing, None, Some(unknown_key))
            .await
            .unwrap_err()
            .reason,
        ReasonCode::DstBucketNotFound
    );
}

/// The write probe's PutObject and DeleteObject name the org's `expectedBucketOwner`, like
/// every request to the org's bucket: into a bucket another account owns, the probe is
/// refused. Neither server checks the header, so the proxy plays S3's owner check, on the
/// probe's key only (the HeadBucket before it passes, so the probe is what is refused).
async fn the_write_probe_names_the_bucket_owner(server: &'static Server) {
    for (owner, refused) in [("222222222222", true), ("111111111111", false)] {
        let world = World::with_config(server, &["org1"], |orgs| {
            json!({"customers": [{"org": "org1", "destinationBucket": orgs[0].1,
                "expectedBucketOwner": owner}], "retry": 0})
            .to_string()
        })
        .await;
        let bucket = world.bucket_of("org1");
        let proxy = FaultProxy::start(
            &server.endpoint,
            vec![Rule {
                method: None,
                fault: Fault::OwnedBy("111111111111"),
                path_contains: Some(format!("/{bucket}/{PROBE_PREFIX}")),
                copies_only: false,
                times: None,
            }],
        )
        .await;
        let exporter = Exporter::new(server.client_via(&proxy.endpoint), world.settings("jpg"));
        let config = exporter.config().await.unwrap();
        let checks = check_orgs(&exporter, &config, None, CheckOptions { write_probe: true })
            .await
            .unwrap();
        let probes: Vec<_> = proxy
            .seen()
            .into_iter()
            .filter(|s| s.path.contains(PROBE_PREFIX))
            .collect();
        if refused {
            let failure = checks[0].result.clone().unwrap_err();
            assert_eq!(failure.reason, ReasonCode::AccessDenied, "{failure}");
            assert!(
                failure
                    .message
                    .starts_with(&format!("PutObject of s3://{bucket}/{PROBE_PREFIX}")),
                "{failure}"
            );
            assert_eq!(probes.len(), 1, "{probes:#?}");
        } else {
            let passed = checks[0].result.clone().unwrap();
            assert!(passed.probe.is_some(), "{passed:?}");
            let methods: Vec<_> = probes.iter().map(|s| s.method.as_str()).collect();
            assert_eq!(methods, ["PUT", "DELETE"], "{probes:#?}");
            assert_eq!(world.keys(bucket).await, Vec::<String>::new());
        }
        for request in &probes {
            assert_eq!(
                request.header("x-amz-expected-bucket-owner"),
                Some(owner),
                "{request:?}"
            );
        }
    }
}

on_each_server!(
    check_gives_each_org_one_line_with_its_first_failure,
    owner_and_kms_checks_ask_the_server,
    the_write_probe_names_the_bucket_owner,
);
