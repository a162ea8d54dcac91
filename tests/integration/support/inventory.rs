//! S3 Inventory deliveries as S3 writes them: a `manifest.json` and gzip CSV data files
//! without a header, columns in the manifest's `fileSchema` order, every field quoted, keys
//! URL-encoded (a space as `+`), rows shuffled across files.

use artifact_export::s3::keys::encode_notification_key;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use md5::{Digest, Md5};
use std::io::Write;

/// The schema of a versioned inventory with the fields reconcile uses, in the order S3
/// writes them.
pub const SCHEMA: &str = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, \
     LastModifiedDate, ETag, StorageClass, IsMultipartUploaded, ChecksumAlgorithm";

/// `creationTimestamp` of generated manifests: 2024-05-06T07:08:09.123Z.
pub const CREATED_MILLIS: i64 = 1_714_979_289_123;

/// One object as an inventory lists it: key, size, ETag (unquoted), Last-Modified.
pub type Object = (String, u64, String, DateTime);

/// A row of [`SCHEMA`] for `object` of `source`, URL-encoding its key.
pub fn row(source: &str, (key, size, etag, modified): &Object) -> String {
    format!(
        "\"{source}\",\"{}\",\"\",\"true\",\"false\",\"{size}\",\"{}\",\"{etag}\",\"STANDARD\",\"false\",\"\"",
        encode_notification_key(key),
        modified.fmt(Format::DateTime).unwrap(),
    )
}

/// A delete marker and a non-current version of `key` (rows a reader must skip).
pub fn skipped_rows(source: &str, key: &str) -> [String; 2] {
    let key = encode_notification_key(key);
    [
        format!(
            "\"{source}\",\"{key}\",\"v1\",\"true\",\"true\",\"\",\"2024-01-01T00:00:00.000Z\",\"\",\"\",\"\",\"\""
        ),
        format!(
            "\"{source}\",\"{key}\",\"v0\",\"false\",\"false\",\"3\",\"2023-01-01T00:00:00.000Z\",\"e\",\"STANDARD\",\"false\",\"\""
        ),
    ]
}

/// `lines` (each without its newline) as one gzip file.
pub fn gzip(lines: &[String]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for line in lines {
        gz.write_all(line.as_bytes()).unwrap();
        gz.write_all(b"\n").unwrap();
    }
    gz.finish().unwrap()
}

/// Hex MD5 of `bytes`.
pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// `lines` shuffled (seeded) and dealt into `files` gzip files.
pub fn deal(mut lines: Vec<String>, files: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    rng.shuffle(&mut lines);
    let files = files.max(1);
    let mut out = vec![Vec::new(); files];
    for (i, line) in lines.into_iter().enumerate() {
        out[i % files].push(line);
    }
    out.iter().map(|lines| gzip(lines)).collect()
}

/// A manifest listing `files` (key, bytes) of `source`'s inventory, delivered to `bucket`.
pub fn manifest(source: &str, bucket: &str, schema: &str, files: &[(String, Vec<u8>)]) -> String {
    let files: Vec<_> = files
        .iter()
        .map(|(key, body)| serde_json::json!({"key": key, "size": body.len(), "MD5checksum": md5_hex(body)}))
        .collect();
    serde_json::json!({
        "sourceBucket": source,
        "destinationBucket": format!("arn:aws:s3:::{bucket}"),
        "version": "2016-11-30",
        "creationTimestamp": CREATED_MILLIS.to_string(),
        "fileFormat": "CSV",
        "fileSchema": schema,
        "files": files,
    })
    .to_string()
}

pub async fn put(client: &Client, bucket: &str, key: &str, body: Vec<u8>) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put s3://{bucket}/{key}: {e:?}"));
}

/// Writes a delivery of `source`'s inventory into `bucket` under `prefix` (e.g.
/// `inventory/src/daily/2024-05-06T00-00Z/`): data files `prefix` + `data/N.csv.gz` of the
/// `lines` shuffled across `files` files, then `prefix` + `manifest.json`. Its `s3://` URL.
pub async fn write_delivery(
    client: &Client,
    bucket: &str,
    prefix: &str,
    source: &str,
    lines: Vec<String>,
    files: usize,
    seed: u64,
) -> String {
    let mut written = Vec::new();
    for (i, body) in deal(lines, files, seed).into_iter().enumerate() {
        let key = format!("{prefix}data/{i}-{seed:x}.csv.gz");
        put(client, bucket, &key, body.clone()).await;
        written.push((key, body));
    }
    let key = format!("{prefix}manifest.json");
    put(
        client,
        bucket,
        &key,
        manifest(source, bucket, SCHEMA, &written).into_bytes(),
    )
    .await;
    format!("s3://{bucket}/{key}")
}

/// Writes an inventory of `bucket`'s `objects` into `bucket` under `prefix` (as S3 would
/// deliver it with [`SCHEMA`]), the rows shuffled across `files` gzip files: the manifest's
/// `s3://` URL. With [`write_inventory_of`] the listed bucket differs from where it is written.
pub async fn write_inventory(
    client: &Client,
    bucket: &str,
    prefix: &str,
    objects: &[Object],
    files: usize,
    seed: u64,
) -> String {
    write_inventory_of(client, bucket, prefix, bucket, objects, files, seed).await
}

/// [`write_inventory`] of `source`'s objects, delivered into `bucket`.
pub async fn write_inventory_of(
    client: &Client,
    bucket: &str,
    prefix: &str,
    source: &str,
    objects: &[Object],
    files: usize,
    seed: u64,
) -> String {
    let lines = objects.iter().map(|o| row(source, o)).collect();
    write_delivery(client, bucket, prefix, source, lines, files, seed).await
}
