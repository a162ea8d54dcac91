//! S3 Inventory deliveries read into key order (`backfill::inventory`): shuffled files,
//! URL-encoded keys, delete markers and old versions skipped, the prefix, a sort that spills
//! many runs, and a one-line error naming the file and field for each bad input.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use artifact_export::backfill::inventory::{self, InventoryEntry, InventoryError, SortOptions};
use artifact_export::backfill::listing::BACKFILL_EVENT_NAME;
use artifact_export::destination::Precision;
use artifact_export::s3::RetryPolicy;
use aws_smithy_types::DateTime;

use crate::support::inventory::{
    CREATED_MILLIS, Object, SCHEMA, gzip, manifest, md5_hex, put, row, skipped_rows, write_delivery,
    write_inventory,
};
use crate::support::paths::repo;
use crate::support::proxy::{Fault, FaultProxy, Rule};
use crate::support::servers::Server;
use crate::support::world::{create_bucket, unique_bucket};

on_each_server!(
    shuffled_files_read_in_key_order,
    prefix_keeps_only_its_keys,
    small_runs_spill_and_merge,
    bad_manifests_are_named,
    bad_data_files_are_named,
    failed_reads_are_retried_or_named,
);

fn retry() -> RetryPolicy {
    RetryPolicy::new(1, Duration::from_millis(10))
}

/// Keys S3 must encode in an inventory: spaces, `+`, `%`, non-ASCII, and keys that sort
/// differently as bytes than as characters would.
fn objects(n: usize) -> Vec<Object> {
    let names = [
        "a b",
        "a+b",
        "100%",
        "é",
        "z",
        "Z",
        "日本",
        "x%2By",
        "~",
        "a/b c+d%25",
    ];
    (0..n)
        .map(|i| {
            let org = ["org1", "org2", "org10"][i % 3];
            let key = format!("{org}/{} {i:04}.jpg", names[i % names.len()]);
            let modified = DateTime::from_millis(1_700_000_000_000 + i as i64 * 1_001);
            (key, 100 + i as u64, format!("{:032x}", i * 7919), modified)
        })
        .collect()
}

/// Every entry the inventory at `url` yields under `prefix`, in the order given.
async fn read_all(
    server: &Server,
    url: &str,
    prefix: &str,
    options: SortOptions,
    spill: &Path,
) -> Result<Vec<InventoryEntry>, InventoryError> {
    let client = server.client();
    let sorted = inventory::open_with(&client, url, prefix, &retry(), None, spill, options).await?;
    let mut rx = sorted.into_receiver();
    let mut out = Vec::new();
    while let Some(entry) = rx.recv().await {
        out.push(entry?);
    }
    Ok(out)
}

fn expected(objects: &[Object], prefix: &str) -> Vec<(String, u64, String, DateTime)> {
    let map: BTreeMap<_, _> = objects
        .iter()
        .filter(|o| o.0.starts_with(prefix))
        .map(|o| (o.0.clone(), o.clone()))
        .collect();
    map.into_values().collect()
}

fn facts(entries: &[InventoryEntry]) -> Vec<(String, u64, String, DateTime)> {
    entries
        .iter()
        .map(|e| {
            (
                e.key.clone(),
                e.size.unwrap(),
                e.etag.clone().unwrap(),
                e.last_modified.unwrap(),
            )
        })
        .collect()
}

async fn shuffled_files_read_in_key_order(server: &'static Server) {
    let client = server.client();
    let bucket = unique_bucket("inv");
    create_bucket(&client, &bucket).await;
    let objects = objects(300);
    let url = write_inventory(&client, &bucket, "inv/src/daily/", &objects, 4, 7).await;
    let spill = tempfile::tempdir().unwrap();
    let sorted = inventory::open(&client, &url, "", &retry(), None, spill.path())
        .await
        .unwrap();
    assert_eq!(sorted.bucket(), bucket);
    assert_eq!(sorted.created(), DateTime::from_millis(CREATED_MILLIS));
    assert_eq!(sorted.entries(), 300);
    let mut rx = sorted.into_receiver();
    let mut entries = Vec::new();
    while let Some(entry) = rx.recv().await {
        entries.push(entry.unwrap());
    }
    assert_eq!(facts(&entries), expected(&objects, ""));
    assert!(
        entries
            .iter()
            .all(|e| e.storage_class.as_deref() == Some("STANDARD"))
    );
    // As a listing gives it to the backfill and the in-place rule.
    let e = entries.iter().find(|e| e.key == "org2/a+b 0001.jpg").unwrap();
    let listed = e.listed("src");
    assert_eq!(
        (listed.object.bucket.as_str(), listed.object.key.as_str()),
        ("src", "org2/a+b 0001.jpg")
    );
    assert_eq!(listed.object.event_name, BACKFILL_EVENT_NAME);
    assert_eq!(listed.object.size, Some(101));
    assert_eq!(listed.last_modified, e.last_modified);
    assert_eq!(listed.facts(), e.existing());
    let existing = e.existing();
    assert_eq!(existing.precision, Precision::Millis);
    assert_eq!(
        (existing.size, existing.etag.as_deref()),
        (Some(101), Some(&*e.etag.clone().unwrap()))
    );
    // The spill directory is gone once every entry was read.
    assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 0);
}

async fn prefix_keeps_only_its_keys(server: &'static Server) {
    let client = server.client();
    let bucket = unique_bucket("inv");
    create_bucket(&client, &bucket).await;
    let objects = objects(90);
    // A versioned inventory: delete markers and non-current versions are not objects.
    let mut lines: Vec<String> = objects.iter().map(|o| row("src", o)).collect();
    lines.extend(skipped_rows("src", "org1/deleted.jpg"));
    lines.extend(skipped_rows("src", "org1/a b 0000.jpg"));
    let url = write_delivery(&client, &bucket, "i/", "src", lines, 3, 11).await;
    let spill = tempfile::tempdir().unwrap();
    let got = read_all(server, &url, "org1/", SortOptions::default(), spill.path())
        .await
        .unwrap();
    assert_eq!(facts(&got), expected(&objects, "org1/"));
    assert!(
        got.iter().all(|e| e.key.starts_with("org1/")),
        "org10/ is not under org1/"
    );
    assert_eq!(got.len(), 30);
}

async fn small_runs_spill_and_merge(server: &'static Server) {
    let client = server.client();
    let bucket = unique_bucket("inv");
    create_bucket(&client, &bucket).await;
    let objects = objects(500);
    let url = write_inventory(&client, &bucket, "inv/", &objects, 5, 3).await;
    let spill = tempfile::tempdir().unwrap();
    // 72 runs of 7 entries, merged 3 at a time.
    let options = SortOptions {
        run_entries: 7,
        run_bytes: 1 << 20,
        fan_in: 3,
    };
    let got = read_all(server, &url, "", options, spill.path()).await.unwrap();
    assert_eq!(facts(&got), expected(&objects, ""));
    assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 0);
}

/// The error `open` gives for the manifest at `url`, checked to be one line.
async fn open_error(server: &Server, url: &str) -> String {
    let spill = tempfile::tempdir().unwrap();
    let err = read_all(server, url, "", SortOptions::default(), spill.path())
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.contains('\n'), "one line: {err}");
    err
}

async fn bad_manifests_are_named(server: &'static Server) {
    let client = server.client();
    let bucket = unique_bucket("inv");
    create_bucket(&client, &bucket).await;
    let fixture = |name: &str| std::fs::read(repo(&format!("tests/fixtures/inventory/{name}"))).unwrap();
    let mut urls = BTreeMap::new();
    for name in ["not-json.json", "no-files.json", "parquet.json", "no-key.json"] {
        let key = format!("{name}/manifest.json");
        put(&client, &bucket, &key, fixture(name)).await;
        urls.insert(name, format!("s3://{bucket}/{key}"));
    }
    let err = open_error(server, &urls["not-json.json"]).await;
    assert_eq!(
        err,
        format!(
            "{}: not a manifest: expected value at line 1 column 1",
            urls["not-json.json"]
        )
    );
    let err = open_error(server, &urls["no-files.json"]).await;
    assert!(
        err.starts_with(&format!(
            "{}: not a manifest: missing field `files`",
            urls["no-files.json"]
        )),
        "{err}"
    );
    let err = open_error(server, &urls["parquet.json"]).await;
    assert_eq!(
        err,
        format!(
            "{}: fileFormat \"Parquet\": only CSV inventories are read; configure the inventory \
             with the CSV output format",
            urls["parquet.json"]
        )
    );
    let err = open_error(server, &urls["no-key.json"]).await;
    assert_eq!(
        err,
        format!(
            "{}: fileSchema \"Bucket, VersionId, Size, LastModifiedDate, ETag\": no Key column; \
             an inventory needs Bucket and Key",
            urls["no-key.json"]
        )
    );
    let missing = format!("s3://{bucket}/nothing/manifest.json");
    assert_eq!(
        open_error(server, &missing).await,
        format!("{missing}: no such object")
    );
    assert_eq!(
        open_error(server, "s3://only-a-bucket").await,
        "s3://only-a-bucket: not an inventory manifest address: expected s3://BUCKET/KEY/manifest.json"
    );
}

/// A delivery of `files` (key suffix, body) with `manifest_md5` overriding the MD5 listed.
async fn delivery(server: &Server, files: Vec<(&str, Vec<u8>)>, wrong_md5: bool) -> (String, String) {
    let client = server.client();
    let bucket = unique_bucket("inv");
    create_bucket(&client, &bucket).await;
    let mut written = Vec::new();
    for (name, body) in files {
        let key = format!("d/data/{name}");
        put(&client, &bucket, &key, body.clone()).await;
        written.push((key, body));
    }
    let mut text = manifest("src", &bucket, SCHEMA, &written);
    if wrong_md5 {
        text = text.replace(&md5_hex(&written[0].1), "00000000000000000000000000000000");
    }
    put(&client, &bucket, "d/manifest.json", text.into_bytes()).await;
    let data_url = format!("s3://{bucket}/{}", written.last().unwrap().0);
    (format!("s3://{bucket}/d/manifest.json"), data_url)
}

async fn bad_data_files_are_named(server: &'static Server) {
    let good: Vec<String> = objects(5).iter().map(|o| row("src", o)).collect();
    let mut bad = good.clone();
    bad.insert(2, bad[2].replace("\"102\"", "\"abc\""));
    let (url, data) = delivery(
        server,
        vec![("ok.csv.gz", gzip(&good)), ("x.csv.gz", gzip(&bad))],
        false,
    )
    .await;
    assert_eq!(
        open_error(server, &url).await,
        format!("{data}: row 3: column Size (\"abc\"): expected a number")
    );
    let mut short = good.clone();
    short.push("\"src\",\"k\"".into());
    let (url, data) = delivery(server, vec![("short.csv.gz", gzip(&short))], false).await;
    assert_eq!(
        open_error(server, &url).await,
        format!("{data}: row 6: 2 columns, the manifest's fileSchema names 11")
    );
    let mut other = good.clone();
    other[0] = other[0].replacen("\"src\"", "\"elsewhere\"", 1);
    let (url, data) = delivery(server, vec![("b.csv.gz", gzip(&other))], false).await;
    assert_eq!(
        open_error(server, &url).await,
        format!("{data}: row 1: column Bucket (\"elsewhere\"): expected the manifest's sourceBucket \"src\"")
    );
    let (url, data) = delivery(
        server,
        vec![("plain.csv.gz", good.join("\n").into_bytes())],
        false,
    )
    .await;
    let err = open_error(server, &url).await;
    assert!(
        err.starts_with(&format!("{data}: not a gzip CSV file: ")),
        "{err}"
    );
    let (url, data) = delivery(server, vec![("m.csv.gz", gzip(&good))], true).await;
    let err = open_error(server, &url).await;
    assert!(
        err.starts_with(&format!("{data}: MD5 "))
            && err.contains("differs from the manifest's MD5checksum \"00000000000000000000000000000000\""),
        "{err}"
    );
}

async fn failed_reads_are_retried_or_named(server: &'static Server) {
    let client = server.client();
    let bucket = unique_bucket("inv");
    create_bucket(&client, &bucket).await;
    let objects = objects(40);
    let url = write_inventory(&client, &bucket, "r/", &objects, 3, 5).await;
    // Throttling, a 5xx and a dropped connection, once each: every read succeeds on retry.
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![
            Rule::requests("GET", "manifest.json", Fault::SlowDown, 1),
            Rule::requests("GET", "/r/data/0-", Fault::InternalError, 1),
            Rule::requests("GET", "/r/data/2-", Fault::Drop, 1),
        ],
    )
    .await;
    let spill = tempfile::tempdir().unwrap();
    let via = server.client_via(&proxy.endpoint);
    let sorted = inventory::open(&via, &url, "", &retry(), None, spill.path())
        .await
        .unwrap();
    let mut rx = sorted.into_receiver();
    let mut got = Vec::new();
    while let Some(entry) = rx.recv().await {
        got.push(entry.unwrap());
    }
    assert_eq!(facts(&got), expected(&objects, ""));
    let faulted = proxy.seen().iter().filter(|s| s.fault.is_some()).count();
    assert_eq!(faulted, 3, "{:?}", proxy.seen());
    // A refusal is not retried, and names the file.
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule::requests(
            "GET",
            "/r/data/1-",
            Fault::Error {
                status: 403,
                code: "AccessDenied",
            },
            5,
        )],
    )
    .await;
    let via = server.client_via(&proxy.endpoint);
    let err = inventory::open(&via, &url, "", &retry(), None, spill.path())
        .await
        .unwrap_err()
        .to_string();
    let data = format!("s3://{bucket}/r/data/1-5.csv.gz");
    assert!(err.starts_with(&format!("{data}: AccessDenied")), "{err}");
    assert!(!err.contains('\n'), "{err}");
    let refused = proxy.seen().iter().filter(|s| s.fault.is_some()).count();
    assert_eq!(refused, 1, "AccessDenied is not retried");
}
