//! An S3 Inventory delivery (`manifest.json` and its gzip CSV files) read into one stream
//! of entries in key order, for buckets too big to list.
//!
//! [`open`] reads the manifest ([`manifest`]), downloads each data file to the spill
//! directory (its MD5 checked against the manifest's), parses its rows ([`row`]: keys
//! URL-decoded, delete markers and non-current versions dropped, only keys under the
//! prefix) and feeds them to an external merge sort ([`runs`]): the files need not be
//! sorted, nor in any order among themselves. [`SortedInventory::into_receiver`] then
//! merges the sorted runs on a blocking thread and hands the entries over in key order
//! (UTF-8 byte order, Rust's `str` order, as S3 lists).
//!
//! Memory is bounded whatever the object count: one in-memory run of at most
//! [`SortOptions::run_bytes`] (32 MiB) of encoded records plus 4 bytes per entry (at most
//! [`SortOptions::run_entries`], 256 Ki), one 64 KiB buffer per run merged at once (at most
//! [`SortOptions::fan_in`], 64: 4 MiB), one row and the channel's 1024 entries: under 40 MiB
//! per inventory read at the defaults. Disk: one downloaded data file or two at a time, and
//! the spilled runs (about the keys' length plus 30 bytes per entry), removed when the
//! inventory is dropped or fully read.

pub mod fetch;
pub mod manifest;
pub mod row;
pub mod runs;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use aws_sdk_s3::Client;
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::backfill::listing::{BACKFILL_EVENT_NAME, Listed};
use crate::destination::Existing;
use crate::event::SourceObject;
use crate::logging::escape_controls;
use crate::s3::{RetryPolicy, S3Failure, SourceChange};
use fetch::Object;
use manifest::{Columns, Manifest};
pub use runs::SortOptions;
use runs::{Merge, Runs, SpillError};

/// Entries the receiver of [`SortedInventory::into_receiver`] may hold unread.
pub const CHANNEL_ENTRIES: usize = 1024;

/// Data files downloaded ahead of the one being parsed.
const DOWNLOADS_AHEAD: usize = 1;

/// One current object as the inventory lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryEntry {
    /// The key, decoded.
    pub key: String,
    /// Size in bytes (`Size`).
    pub size: Option<u64>,
    /// ETag without quotes (`ETag`).
    pub etag: Option<String>,
    /// Last-Modified, to the millisecond (`LastModifiedDate`).
    pub last_modified: Option<DateTime>,
    /// Storage class (`StorageClass`).
    pub storage_class: Option<String>,
}

impl InventoryEntry {
    /// The object as a listing of `bucket` gives it to a backfill.
    pub fn listed(&self, bucket: &str) -> Listed {
        Listed {
            object: SourceObject {
                bucket: bucket.to_string(),
                key: self.key.clone(),
                size: self.size,
                etag: self.etag.clone(),
                version_id: None,
                event_time: self.last_modified.and_then(|t| t.fmt(Format::DateTime).ok()),
                event_name: BACKFILL_EVENT_NAME.into(),
            },
            last_modified: self.last_modified,
            storage_class: self.storage_class.clone(),
        }
    }

    /// What a listing would say of the object (Last-Modified in milliseconds).
    pub fn existing(&self) -> Existing {
        Existing {
            size: self.size,
            ..Existing::listed(None, self.etag.as_deref(), self.last_modified)
        }
    }
}

/// Why an inventory could not be read. Every message is one line naming the manifest or
/// data file (`s3://…`), and the row and column where one is at fault.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The manifest's address is not `s3://BUCKET/KEY`.
    #[error("{url}: not an inventory manifest address: expected s3://BUCKET/KEY/manifest.json")]
    BadUrl { url: String },
    /// S3 would not give the object (after retries), or it could not be stored locally.
    #[error("{url}: {}", read_failure(failure))]
    Read { url: String, failure: S3Failure },
    /// The manifest is not JSON, lacks a field, or names what cannot be read.
    #[error("{url}: {message}")]
    Manifest { url: String, message: String },
    /// A data file is not gzip, or not the file the manifest lists (MD5).
    #[error("{url}: {message}")]
    Data { url: String, message: String },
    /// A row of a data file (rows count from 1).
    #[error("{url}: row {row}: {message}")]
    Row { url: String, row: u64, message: String },
    /// A spill file could not be written or read.
    #[error("spill file {}: {error}", path.display())]
    Spill { path: PathBuf, error: std::io::Error },
    /// The thread that sorted or merged stopped.
    #[error("inventory sort stopped: {0}")]
    Stopped(String),
}

fn read_failure(failure: &S3Failure) -> String {
    match failure {
        S3Failure::SourceChanged(SourceChange::Deleted) => "no such object".into(),
        other => escape_controls(&other.to_string()),
    }
}

impl From<SpillError> for InventoryError {
    fn from(e: SpillError) -> Self {
        InventoryError::Spill {
            path: e.path,
            error: e.error,
        }
    }
}

/// An inventory, sorted, ready to be read in key order.
pub struct SortedInventory {
    bucket: String,
    created: DateTime,
    entries: u64,
    merge: Merge,
    /// The spill directory, removed when the merge is done or dropped.
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for SortedInventory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SortedInventory")
            .field("bucket", &self.bucket)
            .field("created", &self.created)
            .field("entries", &self.entries)
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl SortedInventory {
    /// When S3 began the inventory (the manifest's `creationTimestamp`).
    pub fn created(&self) -> DateTime {
        self.created
    }

    /// The bucket the inventory lists (the manifest's `sourceBucket`).
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Entries under the prefix (a key listed twice counts twice; it is read once).
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The entries in key order, merged on a blocking thread; the first error ends them.
    pub fn into_receiver(self) -> mpsc::Receiver<Result<InventoryEntry, InventoryError>> {
        let (tx, rx) = mpsc::channel(CHANNEL_ENTRIES);
        let SortedInventory { mut merge, dir, .. } = self;
        tokio::task::spawn_blocking(move || {
            loop {
                let next = match merge.next_entry() {
                    Ok(Some(entry)) => Ok(entry),
                    Ok(None) => break,
                    Err(e) => Err(InventoryError::from(e)),
                };
                let failed = next.is_err();
                if tx.blocking_send(next).is_err() || failed {
                    break;
                }
            }
            drop(merge);
            drop(dir);
        });
        rx
    }
}

/// Reads the inventory whose manifest is at `url` (`s3://BUCKET/…/manifest.json`): the
/// objects under `prefix`, sorted by key, spilling into a new directory under `spill_dir`.
/// `owner`: the account that must own the inventory's bucket.
pub async fn open(
    client: &Client,
    url: &str,
    prefix: &str,
    retry: &RetryPolicy,
    owner: Option<&str>,
    spill_dir: &Path,
) -> Result<SortedInventory, InventoryError> {
    open_with(
        client,
        url,
        prefix,
        retry,
        owner,
        spill_dir,
        SortOptions::default(),
    )
    .await
}

/// [`open`] with the sort's bounds given.
pub async fn open_with(
    client: &Client,
    url: &str,
    prefix: &str,
    retry: &RetryPolicy,
    owner: Option<&str>,
    spill_dir: &Path,
    options: SortOptions,
) -> Result<SortedInventory, InventoryError> {
    let url = escape_controls(url);
    let (bucket, key) = fetch::parse_url(&url)?;
    let manifest_object = Object {
        client,
        bucket: &bucket,
        key: &key,
        owner,
        retry,
        url: &url,
    };
    let text = fetch::read_manifest(&manifest_object).await?;
    let Manifest {
        source_bucket,
        created,
        columns,
        files,
    } = manifest::parse(&url, &text)?;
    let dir = tempfile::Builder::new()
        .prefix("inventory-")
        .tempdir_in(spill_dir)
        .map_err(|error| InventoryError::Spill {
            path: spill_dir.to_path_buf(),
            error,
        })?;
    let spill = dir.path().to_path_buf();
    let bucket: &str = &bucket;
    let downloads = futures::stream::iter(files.iter().enumerate())
        .map(|(i, file)| {
            let url = escape_controls(&format!("s3://{bucket}/{}", file.key));
            let path = spill.join(format!("data-{i}.csv.gz"));
            async move {
                let o = Object {
                    client,
                    bucket,
                    key: &file.key,
                    owner,
                    retry,
                    url: &url,
                };
                fetch::download(&o, &path, file.md5.as_deref()).await?;
                Ok::<_, InventoryError>((url, path))
            }
        })
        .buffered(DOWNLOADS_AHEAD + 1);
    futures::pin_mut!(downloads);
    let mut runs = Runs::new(dir.path(), options);
    let mut entries = 0;
    let prefix: std::sync::Arc<str> = prefix.into();
    let source: std::sync::Arc<str> = source_bucket.as_str().into();
    // The next file downloads while this one is parsed.
    let mut next = downloads.next().await;
    while let Some(downloaded) = next {
        let (url, path) = downloaded?;
        let (prefix, source) = (prefix.clone(), source.clone());
        let parse = tokio::task::spawn_blocking(move || {
            let read = read_file(&url, &path, &columns, &source, &prefix, &mut runs);
            let _ = std::fs::remove_file(&path);
            (runs, read)
        });
        let (parsed, following) = tokio::join!(parse, downloads.next());
        let (back, read) = parsed.map_err(|e| InventoryError::Stopped(e.to_string()))?;
        runs = back;
        entries += read?;
        next = following;
    }
    let merge = tokio::task::spawn_blocking(move || runs.finish())
        .await
        .map_err(|e| InventoryError::Stopped(e.to_string()))??;
    Ok(SortedInventory {
        bucket: source_bucket,
        created,
        entries,
        merge,
        dir,
    })
}

/// Parses the downloaded data file at `path` (from `url`) into `runs`; the entries taken.
fn read_file(
    url: &str,
    path: &Path,
    columns: &Columns,
    bucket: &str,
    prefix: &str,
    runs: &mut Runs,
) -> Result<u64, InventoryError> {
    let data = |message: String| InventoryError::Data {
        url: url.to_string(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|error| InventoryError::Spill {
        path: path.to_path_buf(),
        error,
    })?;
    let mut reader = BufReader::with_capacity(
        64 * 1024,
        flate2::read::MultiGzDecoder::new(BufReader::with_capacity(64 * 1024, file)),
    );
    let mut line = Vec::new();
    let mut taken = 0;
    let mut number = 0;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| data(format!("not a gzip CSV file: {e}")))?;
        if n == 0 {
            return Ok(taken);
        }
        number += 1;
        let row_error = |message: String| InventoryError::Row {
            url: url.to_string(),
            row: number,
            message,
        };
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if line.is_empty() {
            continue;
        }
        let text = std::str::from_utf8(&line).map_err(|e| row_error(format!("not UTF-8: {e}")))?;
        let mut fields = Vec::with_capacity(columns.count);
        row::split_fields(text, &mut fields).map_err(row_error)?;
        match row::parse_row(&fields, columns, bucket, prefix).map_err(row_error)? {
            row::Row::Entry(entry) => {
                runs.push(&entry)?;
                taken += 1;
            }
            row::Row::Skipped => {}
        }
    }
}
