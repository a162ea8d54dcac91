use std::collections::BTreeSet;

use artifact_export::event::parse_event;
use artifact_export::handler::handle;
use artifact_export::report::Outcome;
use serde_json::json;

use super::{assert_exported, backfill_cmd, listing, run, seed};
use crate::support::servers::Server;
use crate::support::world::World;

async fn dry_run_and_manifest_copy_nothing(server: &'static Server) {
    let world = World::new(server, &["org1", "org2"]).await;
    let seeded = seed(&world, 40, 2).await;
    // org1 is exported already; only org2's objects remain to copy.
    let org1 = run(backfill_cmd(&world, &server.endpoint).args(["--org", "org1"]));
    assert_eq!(org1.code, Some(0), "{}", org1.stderr);
    let dest2 = world.bucket_of("org2").to_string();

    let dry = run(backfill_cmd(&world, &server.endpoint).arg("--dry-run"));
    assert_eq!(dry.code, Some(0), "{}", dry.stderr);
    let lines: BTreeSet<&str> = dry.stdout.lines().collect();
    let expected: BTreeSet<String> = seeded.selected["org2"]
        .iter()
        .map(|k| {
            format!(
                "would copy s3://{}/{k} -> s3://{dest2}/{k} (org org2)",
                world.source
            )
        })
        .collect();
    assert_eq!(lines, expected.iter().map(String::as_str).collect());
    assert_eq!(dry.count("to copy"), expected.len() as u64);
    assert_eq!(
        dry.count("already in place"),
        seeded.selected["org1"].len() as u64
    );
    assert!(
        listing(&world.client, &dest2).await.is_empty(),
        "a dry run copied"
    );

    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("manifest.csv");
    let made = run(backfill_cmd(&world, &server.endpoint)
        .arg("--manifest")
        .arg(&manifest));
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    assert!(
        made.stdout.is_empty(),
        "manifest mode prints no plan lines: {}",
        made.stdout
    );
    assert!(
        listing(&world.client, &dest2).await.is_empty(),
        "--manifest copied"
    );
    let text = std::fs::read_to_string(&manifest).unwrap();
    let rows: Vec<(&str, &str)> = text
        .lines()
        .map(|l| l.split_once(',').expect("bucket,key"))
        .collect();
    assert_eq!(rows.len(), expected.len(), "{text}");
    assert!(rows.iter().all(|(bucket, _)| *bucket == world.source));
    assert!(
        rows.iter()
            .all(|(_, key)| !key.contains(' ') && !key.contains('+') && !key.contains('é')),
        "keys are URL-encoded: {text}"
    );
    assert!(!dir.path().join("manifest.csv.partial").exists());

    // The manifest drives a Batch Operations job: its rows, as tasks, export org2.
    let tasks: Vec<_> = rows
        .iter()
        .enumerate()
        .map(|(i, (bucket, key))| json!({"taskId": format!("t{i}"), "s3Key": key, "s3VersionId": null, "s3Bucket": bucket}))
        .collect();
    let job = json!({"invocationSchemaVersion": "2.0", "invocationId": "inv", "job": {"id": "job"}, "tasks": tasks});
    let report = handle(
        &world.exporter(world.settings("jpg,pdf")),
        parse_event(&job).unwrap(),
    )
    .await;
    assert!(
        report.records.iter().all(|r| r.outcome == Outcome::Copied),
        "{:?}",
        report.records
    );
    assert_exported(&world, &seeded).await;
}

on_each_server!(dry_run_and_manifest_copy_nothing);
