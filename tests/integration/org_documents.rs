//! The org documents form of the configuration (`CONFIGURATION_KEY` ending in `/`): each
//! org's document is let in or refused on its own, deleted documents drop their org, and a
//! refresh reads only the documents that changed.

use std::time::Duration;

use artifact_export::env::{ConfigLocation, Settings};
use artifact_export::event::parse_event;
use artifact_export::exporter::Exporter;
use artifact_export::handler::handle;
use artifact_export::report::{Outcome, RecordReport};
use futures::StreamExt;
use serde_json::json;

use crate::support::events::s3_event;
use crate::support::proxy::FaultProxy;
use crate::support::servers::Server;
use crate::support::world::World;

const FOLDER: &str = "export/orgs/";

/// Settings reading the org documents under [`FOLDER`], looked at again on every invocation.
fn documents_settings(world: &World) -> Settings {
    let mut settings = world.settings("jpg");
    settings.config_location = ConfigLocation::in_s3(world.config_bucket.clone(), FOLDER.into());
    settings.config_refresh = Duration::ZERO;
    settings
}

async fn write_document(world: &World, name: &str, document: serde_json::Value) {
    world
        .put_config_object(&format!("{FOLDER}{name}"), document.to_string().into_bytes())
        .await;
}

async fn delete_document(world: &World, name: &str) {
    world
        .client
        .delete_object()
        .bucket(&world.config_bucket)
        .key(format!("{FOLDER}{name}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("delete {name}: {e:?}"));
}

/// Each org's document as `World::new` would list it: org and its own bucket.
async fn write_org_documents(world: &World) {
    for (org, bucket) in &world.orgs {
        write_document(
            world,
            &format!("{org}.json"),
            json!({"org": org, "destinationBucket": bucket}),
        )
        .await;
    }
}

async fn export_one(world: &World, exporter: &Exporter, key: &str) -> RecordReport {
    let uploaded = world.put(key, key.as_bytes()).await;
    let report = handle(exporter, parse_event(&s3_event(&[&uploaded])).unwrap()).await;
    report.records.into_iter().next().unwrap()
}

fn refused_orgs(exporter: &Exporter) -> Vec<String> {
    exporter
        .take_config_refusals()
        .into_iter()
        .map(|r| r.org)
        .collect()
}

async fn a_bad_org_document_leaves_every_other_org_working(server: &'static Server) {
    let world = World::new(server, &["org1", "org2", "org3"]).await;
    write_org_documents(&world).await;
    write_document(&world, "_defaults.json", json!({"retry": 3})).await;
    // Not an org document: never read.
    world
        .put_config_object(&format!("{FOLDER}README.md"), b"# orgs".to_vec())
        .await;
    let exporter = world.exporter(documents_settings(&world));
    let config = exporter.config().await.unwrap();
    assert_eq!((config.customers.len(), config.retry), (3, 3));
    for org in ["org1", "org2", "org3"] {
        let r = export_one(&world, &exporter, &format!("{org}/a.jpg")).await;
        assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
        assert!(
            world
                .get(world.bucket_of(org), &format!("{org}/a.jpg"))
                .await
                .is_some()
        );
    }

    // org1's edit is broken: org1 keeps its last good entry, and the refusal names it.
    write_document(
        &world,
        "org1.json",
        json!({"org": "org1", "destinationBuckt": "x"}),
    )
    .await;
    let r = export_one(&world, &exporter, "org1/b.jpg").await;
    assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    assert_eq!(refused_orgs(&exporter), ["org1"]);

    // A later valid edit of another org takes effect while org1's stays broken.
    let (org2, bucket2) = &world.orgs[1];
    write_document(
        &world,
        "org2.json",
        json!({"org": org2, "destinationBucket": bucket2, "suffixes": ["png"]}),
    )
    .await;
    let r = export_one(&world, &exporter, "org2/c.png").await;
    assert_eq!(r.outcome, Outcome::Copied, "org2's edit applies: {r:?}");
    let r = export_one(&world, &exporter, "org2/c.jpg").await;
    assert_eq!(
        r.outcome,
        Outcome::Skipped,
        "org2's suffixes are now png only: {r:?}"
    );
    // A broken document of an org that never had a good one leaves it unconfigured.
    write_document(&world, "org4.json", json!({"org": "org4"})).await;
    let r = export_one(&world, &exporter, "org4/a.jpg").await;
    assert_eq!(r.outcome, Outcome::Skipped, "{r:?}");
    let refused = refused_orgs(&exporter);
    assert!(
        refused.contains(&"org1".to_string()) && refused.contains(&"org4".to_string()),
        "{refused:?}"
    );
}

async fn a_conflict_one_org_introduces_is_refused_for_that_org_only(server: &'static Server) {
    let world = World::new(server, &["org1", "org2"]).await;
    write_org_documents(&world).await;
    let exporter = world.exporter(documents_settings(&world));
    exporter.config().await.unwrap();
    let (org1, bucket1) = &world.orgs[0];
    // org2 claims org1's bucket: refused for org2, which keeps exporting to its own.
    write_document(
        &world,
        "org2.json",
        json!({"org": "org2", "destinationBucket": bucket1}),
    )
    .await;
    let r = export_one(&world, &exporter, "org2/a.jpg").await;
    assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    assert!(world.get(world.bucket_of("org2"), "org2/a.jpg").await.is_some());
    assert!(
        world.get(bucket1, "org2/a.jpg").await.is_none(),
        "org2 never writes org1's bucket"
    );
    let refusals = exporter.take_config_refusals();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert!(
        refusals[0].reason.contains("is already written by org org1"),
        "{refusals:?}"
    );
    // A new org whose prefix lies inside org1's, or which takes org1's name, gets nothing.
    write_document(
        &world,
        "intruder.json",
        json!({"org": "intruder", "destinationBucket": world.bucket_of("org2"), "prefix": "org1/special/"}),
    )
    .await;
    write_document(
        &world,
        "again.json",
        json!({"org": org1, "destinationBucket": "again-bucket", "prefix": "again/"}),
    )
    .await;
    let r = export_one(&world, &exporter, "org1/special/a.jpg").await;
    assert_eq!(r.org.as_deref(), Some("org1"), "{r:?}");
    assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    let r = export_one(&world, &exporter, "again/a.jpg").await;
    assert_eq!(r.outcome, Outcome::Skipped, "{r:?}");
    let reasons: Vec<String> = exporter
        .take_config_refusals()
        .into_iter()
        .map(|r| r.reason)
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("overlaps the prefix of org org1")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("org name \"org1\" is already")),
        "{reasons:?}"
    );
}

async fn a_deleted_org_document_removes_the_org(server: &'static Server) {
    let world = World::new(server, &["org1", "org2"]).await;
    write_org_documents(&world).await;
    let exporter = world.exporter(documents_settings(&world));
    let r = export_one(&world, &exporter, "org2/a.jpg").await;
    assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    delete_document(&world, "org2.json").await;
    let r = export_one(&world, &exporter, "org2/b.jpg").await;
    assert_eq!((r.outcome, r.org.as_deref()), (Outcome::Skipped, None), "{r:?}");
    let r = export_one(&world, &exporter, "org1/b.jpg").await;
    assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
}

async fn a_refresh_reads_only_the_documents_that_changed(server: &'static Server) {
    let world = World::new(server, &["org1", "org2", "org3"]).await;
    write_org_documents(&world).await;
    let proxy = FaultProxy::start(&server.endpoint, vec![]).await;
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), documents_settings(&world));
    exporter.config().await.unwrap();
    let (lists, mut gets) = document_reads(&proxy);
    gets.sort();
    assert_eq!(
        (lists, gets),
        (
            1,
            vec![
                "_snapshot.jsonl".to_string(),
                "org1.json".into(),
                "org2.json".into(),
                "org3.json".into()
            ]
        )
    );
    exporter.config().await.unwrap();
    let (lists, gets) = document_reads(&proxy);
    assert_eq!((lists, gets.len()), (2, 4), "nothing changed: a listing, no read");
    let (org2, bucket2) = &world.orgs[1];
    write_document(
        &world,
        "org2.json",
        json!({"org": org2, "destinationBucket": bucket2, "suffixes": ["pdf"]}),
    )
    .await;
    let config = exporter.config().await.unwrap();
    assert_eq!(
        config
            .org_named("org2")
            .unwrap()
            .suffixes
            .as_ref()
            .map(|s| s.to_string())
            .as_deref(),
        Some("pdf")
    );
    let (lists, gets) = document_reads(&proxy);
    assert_eq!(
        (lists, gets.len(), gets.last().map(String::as_str)),
        (3, 5, Some("org2.json"))
    );
}

/// The command line's runs read org documents as the function does: `backfill` exports
/// each org's objects, then `reconcile` finds everything in place.
async fn backfill_and_reconcile_read_org_documents(server: &'static Server) {
    let world = World::new(server, &["org1", "org2"]).await;
    write_org_documents(&world).await;
    world.put("org1/a.jpg", b"a").await;
    world.put("org2/b.jpg", b"b").await;
    world.put("nobody/c.jpg", b"c").await;
    let run = |command: &str| {
        let mut env = world.function_env("jpg");
        env.retain(|(name, _)| name != "CONFIGURATION_KEY");
        crate::support::paths::binary()
            .envs(env)
            .env("CONFIGURATION_KEY", FOLDER)
            .args([command, "--bucket", &world.source, "--progress-interval", "0"])
            .output()
            .unwrap()
    };
    let out = run("backfill");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(world.get(world.bucket_of("org1"), "org1/a.jpg").await.is_some());
    assert!(world.get(world.bucket_of("org2"), "org2/b.jpg").await.is_some());
    let out = run("reconcile");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("org2: 1 in place, 0 missing"), "{stdout}");
}

/// The document names a proxy saw read (GET, not a listing), and the listings.
fn document_reads(proxy: &FaultProxy) -> (usize, Vec<String>) {
    let seen = proxy.seen();
    let lists = seen.iter().filter(|s| s.path.contains("list-type=2")).count();
    let gets = seen
        .iter()
        .filter(|s| s.method == "GET" && s.path.contains(FOLDER) && !s.path.contains("list-type"))
        .map(|s| {
            let name = s.path.rsplit('/').next().unwrap();
            name.split('?').next().unwrap().to_string()
        })
        .collect();
    (lists, gets)
}

/// `validate --write-snapshot` writes the snapshot; a cold start then reads it instead of
/// each document, except those changed since (a stale snapshot costs reads, never a stale
/// org), and a snapshot that is not one is ignored.
async fn a_cold_start_reads_the_snapshot_and_only_documents_changed_since(server: &'static Server) {
    let world = World::new(server, &["org1", "org2", "org3"]).await;
    write_org_documents(&world).await;
    let mut env = world.function_env("jpg");
    env.retain(|(name, _)| name != "CONFIGURATION_KEY");
    let out = crate::support::paths::binary()
        .envs(env)
        .env("CONFIGURATION_KEY", FOLDER)
        .args(["validate", "--write-snapshot"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("wrote a snapshot of 3 documents"), "{stdout}");
    let cold = || async {
        let proxy = FaultProxy::start(&server.endpoint, vec![]).await;
        let exporter = Exporter::new(server.client_via(&proxy.endpoint), documents_settings(&world));
        let config = exporter.config().await.unwrap();
        let (_, mut gets) = document_reads(&proxy);
        gets.sort();
        (config, gets)
    };
    let (config, gets) = cold().await;
    assert_eq!(config.customers.len(), 3);
    assert_eq!(gets, ["_snapshot.jsonl"]);
    let (org2, bucket2) = &world.orgs[1];
    write_document(
        &world,
        "org2.json",
        json!({"org": org2, "destinationBucket": bucket2, "suffixes": ["pdf"]}),
    )
    .await;
    let (config, gets) = cold().await;
    assert_eq!(gets, ["_snapshot.jsonl", "org2.json"]);
    let suffixes = config
        .org_named("org2")
        .unwrap()
        .suffixes
        .as_ref()
        .map(|s| s.to_string());
    assert_eq!(suffixes.as_deref(), Some("pdf"));
    world
        .put_config_object(&format!("{FOLDER}_snapshot.jsonl"), b"not a snapshot\n".to_vec())
        .await;
    let (config, gets) = cold().await;
    assert_eq!(config.customers.len(), 3);
    assert_eq!(gets, ["_snapshot.jsonl", "org1.json", "org2.json", "org3.json"]);
}

/// With enough orgs, a refresh lists ranges cut at the names it knows at once; documents
/// added inside a range, at either end, and removed ones are all seen.
async fn a_ranged_listing_sees_every_document_added_or_removed(server: &'static Server) {
    const ORGS: usize = 2_500;
    let world = World::new(server, &[]).await;
    futures::stream::iter(0..ORGS)
        .map(|i| {
            let world = &world;
            async move {
                let org = format!("o{i:05}");
                write_document(
                    world,
                    &format!("{org}.json"),
                    json!({"org": org, "destinationBucket": format!("{org}-out")}),
                )
                .await
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    let proxy = FaultProxy::start(&server.endpoint, vec![]).await;
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), documents_settings(&world));
    assert_eq!(exporter.config().await.unwrap().customers.len(), ORGS);
    let (first_lists, _) = document_reads(&proxy);
    for (name, org) in [
        ("a-first.json", "a-first"),
        ("o02000x.json", "o02000x"),
        ("z-last.json", "z-last"),
    ] {
        write_document(
            &world,
            name,
            json!({"org": org, "destinationBucket": format!("{org}-out")}),
        )
        .await;
    }
    for gone in ["o00000.json", "o02000.json", "o02499.json"] {
        delete_document(&world, gone).await;
    }
    let config = exporter.config().await.unwrap();
    assert_eq!(config.customers.len(), ORGS);
    for org in ["a-first", "o02000x", "z-last", "o00001", "o02001", "o02498"] {
        assert!(config.org_named(org).is_some(), "{org}");
    }
    for org in ["o00000", "o02000", "o02499"] {
        assert!(config.org_named(org).is_none(), "{org}");
    }
    let (lists, _) = document_reads(&proxy);
    assert_eq!(
        first_lists, 3,
        "a cold start without a snapshot lists in one chain"
    );
    assert_eq!(
        lists - first_lists,
        2 + 2,
        "two ranges cut at o01250, 2 pages each, at once"
    );
}

on_each_server!(
    a_cold_start_reads_the_snapshot_and_only_documents_changed_since,
    a_ranged_listing_sees_every_document_added_or_removed,
    backfill_and_reconcile_read_org_documents,
    a_bad_org_document_leaves_every_other_org_working,
    a_conflict_one_org_introduces_is_refused_for_that_org_only,
    a_deleted_org_document_removes_the_org,
    a_refresh_reads_only_the_documents_that_changed,
);
