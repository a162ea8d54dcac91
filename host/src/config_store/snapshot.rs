//! A snapshot of the org documents, one object beside them ([`SNAPSHOT_NAME`]), so a cold
//! start with many orgs reads one object instead of one per org.
//!
//! `artifact-export validate --write-snapshot` writes it: JSON lines, each
//! `{"name", "etag", "text"}` of one document as listed and read. A cold start reads it,
//! then lists the folder as always; a document whose listed ETag equals the snapshot's is
//! taken from the snapshot, any other is read itself. So a stale snapshot only costs reads,
//! never correctness, and a snapshot that cannot be read or parsed is ignored (logged).
//! Its name does not end in `.json`, so it is never taken for an org document.

use std::collections::HashMap;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};

use super::ConfigLoadError;
use super::document::{self, Fetched};
use super::listing::{self, Listed, document_location};
use super::org_documents::READ_CONCURRENCY;
use crate::bounded::MAX_SNAPSHOT_BYTES;
use crate::env::ConfigLocation;
use crate::s3::classify;

/// The snapshot's name in the folder of org documents.
pub const SNAPSHOT_NAME: &str = "_snapshot.jsonl";

/// One document in the snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct Entry {
    pub name: String,
    pub etag: String,
    pub text: String,
}

/// The documents of a snapshot: text by name, with the ETag it was read at.
pub(super) type Snapshot = HashMap<String, (String, String)>;

/// The snapshot in `folder`, or `None` when there is none or it cannot be used.
pub(super) async fn read(client: &Client, folder: &ConfigLocation, owner: Option<&str>) -> Option<Snapshot> {
    let location = document_location(folder, SNAPSHOT_NAME);
    let text = match document::read_to_limit(client, &location, None, owner, MAX_SNAPSHOT_BYTES).await {
        Ok(Fetched::Changed { text, .. }) => text,
        Ok(_) => return None,
        Err(error) => {
            tracing::warn!(%error, "snapshot of the org documents not used; reading each document");
            return None;
        }
    };
    let mut snapshot = Snapshot::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        match serde_json::from_str::<Entry>(line) {
            Ok(entry) => {
                snapshot.insert(entry.name, (entry.etag, entry.text));
            }
            Err(e) => {
                tracing::warn!(snapshot = %location, line = n + 1, error = %e, "snapshot of the org documents not used: a line is not a document entry; reading each document");
                return None;
            }
        }
    }
    Some(snapshot)
}

/// Lists and reads every org document in `folder` (an S3 prefix) and writes the snapshot
/// beside them; returns how many documents it holds.
pub async fn write(
    client: &Client,
    folder: &ConfigLocation,
    owner: Option<&str>,
) -> Result<usize, ConfigLoadError> {
    let ConfigLocation::S3Documents { bucket, prefix } = folder else {
        return Err(ConfigLoadError::Unreadable {
            location: folder.to_string(),
            reason: "a snapshot is written beside org documents in S3 (CONFIGURATION_KEY ending in /)".into(),
            retryable: false,
        });
    };
    let listed = listing::list(client, folder, owner, &[]).await?;
    let reads = stream::iter(listed)
        .map(|listed| async move {
            let location = document_location(folder, &listed.name);
            let fetched = document::read(client, &location, None, owner).await;
            (listed, fetched)
        })
        .buffered(READ_CONCURRENCY);
    let entries: Vec<(Listed, Result<Fetched, ConfigLoadError>)> = reads.collect().await;
    let mut lines = String::new();
    let mut documents = 0;
    for (listed, fetched) in entries {
        let Fetched::Changed { text, etag } = fetched? else {
            continue;
        };
        let entry = Entry {
            name: listed.name,
            etag: etag.unwrap_or(listed.tag),
            text,
        };
        lines.push_str(&serde_json::to_string(&entry).expect("strings serialize"));
        lines.push('\n');
        documents += 1;
    }
    let key = format!("{prefix}{SNAPSHOT_NAME}");
    client
        .put_object()
        .bucket(bucket)
        .key(&key)
        .body(ByteStream::from(lines.into_bytes()))
        .content_type("application/x-ndjson")
        .set_expected_bucket_owner(owner.map(str::to_string))
        .send()
        .await
        .map_err(|e| ConfigLoadError::Unreadable {
            location: format!("s3://{bucket}/{key}"),
            reason: format!("could not be written: {}", classify(&e)),
            retryable: false,
        })?;
    Ok(documents)
}
