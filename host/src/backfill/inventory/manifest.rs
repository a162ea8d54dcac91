//! The `manifest.json` of an S3 Inventory delivery: which files hold the rows, and which
//! column of a row is which field (`fileSchema`, in the order written).

use aws_smithy_types::DateTime;
use serde::Deserialize;

use super::InventoryError;

/// A manifest's fields as read (`destinationBucket`, `version` and the rest are not needed).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    source_bucket: String,
    file_format: String,
    file_schema: String,
    creation_timestamp: String,
    files: Vec<RawFile>,
}

#[derive(Debug, Deserialize)]
struct RawFile {
    key: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(rename = "MD5checksum", default)]
    md5: Option<String>,
}

/// One data file of the delivery, in the manifest's bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// Its key.
    pub key: String,
    /// Its size, as the manifest gives it.
    pub size: Option<u64>,
    /// Hex MD5 of its bytes (the gzip file), as the manifest gives it.
    pub md5: Option<String>,
}

/// Where each field the reader uses sits in a row (0-based), from `fileSchema`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    /// Number of columns a row has.
    pub count: usize,
    pub bucket: usize,
    pub key: usize,
    pub size: Option<usize>,
    pub last_modified: Option<usize>,
    pub etag: Option<usize>,
    pub storage_class: Option<usize>,
    pub is_latest: Option<usize>,
    pub is_delete_marker: Option<usize>,
}

/// A parsed manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The bucket the inventory lists.
    pub source_bucket: String,
    /// When S3 began the inventory (`creationTimestamp`).
    pub created: DateTime,
    /// The columns of every row.
    pub columns: Columns,
    /// The data files, in the manifest's order.
    pub files: Vec<DataFile>,
}

/// Parses `text`, the manifest read from `url` (named in every error).
pub fn parse(url: &str, text: &[u8]) -> Result<Manifest, InventoryError> {
    let bad = |message: String| InventoryError::Manifest {
        url: url.to_string(),
        message,
    };
    let raw: RawManifest = serde_json::from_slice(text).map_err(|e| bad(format!("not a manifest: {e}")))?;
    if raw.file_format != "CSV" {
        return Err(bad(format!(
            "fileFormat {:?}: only CSV inventories are read; configure the inventory with \
             the CSV output format",
            raw.file_format
        )));
    }
    let created = raw
        .creation_timestamp
        .trim()
        .parse::<i64>()
        .map(DateTime::from_millis)
        .map_err(|_| {
            bad(format!(
                "creationTimestamp {:?}: expected milliseconds since the epoch",
                raw.creation_timestamp
            ))
        })?;
    let columns = columns(&raw.file_schema).map_err(bad)?;
    let files = raw
        .files
        .into_iter()
        .map(|f| DataFile {
            key: f.key,
            size: f.size,
            md5: f.md5.map(|m| m.to_ascii_lowercase()),
        })
        .collect();
    Ok(Manifest {
        source_bucket: raw.source_bucket,
        created,
        columns,
        files,
    })
}

/// The columns named by `schema` (`"Bucket, Key, Size, …"`).
fn columns(schema: &str) -> Result<Columns, String> {
    let names: Vec<&str> = schema.split(',').map(str::trim).collect();
    let find = |name: &str| names.iter().position(|n| *n == name);
    let required = |name: &str| {
        find(name).ok_or_else(|| {
            format!("fileSchema {schema:?}: no {name} column; an inventory needs Bucket and Key")
        })
    };
    Ok(Columns {
        count: names.len(),
        bucket: required("Bucket")?,
        key: required("Key")?,
        size: find("Size"),
        last_modified: find("LastModifiedDate"),
        etag: find("ETag"),
        storage_class: find("StorageClass"),
        is_latest: find("IsLatest"),
        is_delete_marker: find("IsDeleteMarker"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "s3://inv/m/manifest.json";

    #[test]
    fn schema_order_as_written() {
        let c = columns("Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass, ChecksumAlgorithm").unwrap();
        assert_eq!(
            (c.count, c.bucket, c.key, c.size, c.etag),
            (10, 0, 1, Some(5), Some(7))
        );
        assert_eq!((c.is_latest, c.is_delete_marker), (Some(3), Some(4)));
        assert_eq!(columns("Key,Bucket").unwrap().bucket, 1);
    }

    #[test]
    fn a_manifest_and_its_errors() {
        let text = br#"{"sourceBucket":"src","destinationBucket":"arn:aws:s3:::inv","version":"2016-11-30",
            "creationTimestamp":"1514944800000","fileFormat":"CSV","fileSchema":"Bucket, Key, Size",
            "files":[{"key":"d/a.csv.gz","size":12,"MD5checksum":"ABC"}]}"#;
        let m = parse(URL, text).unwrap();
        assert_eq!(m.created, DateTime::from_millis(1_514_944_800_000));
        assert_eq!(m.files[0].md5.as_deref(), Some("abc"));
        let err = parse(URL, br#"{"sourceBucket":"s","fileFormat":"ORC","fileSchema":"Bucket, Key","creationTimestamp":"1","files":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("s3://inv/m/manifest.json: fileFormat \"ORC\": only CSV"),
            "{err}"
        );
        let err = parse(URL, br#"{"sourceBucket":"s","fileFormat":"CSV","fileSchema":"Bucket, Key","creationTimestamp":"x","files":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("creationTimestamp \"x\""), "{err}");
    }
}
