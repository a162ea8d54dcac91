//! Listing the org documents: the `.json` objects directly under the prefix (S3,
//! `ListObjectsV2` with the `/` delimiter, 1,000 per request) or the `.json` files of a
//! folder, each with a tag that changes when its content does (the ETag; for a file, its
//! size and modification time).

use aws_sdk_s3::Client;

use super::ConfigLoadError;
use crate::env::ConfigLocation;
use crate::s3::{S3Failure, classify};

/// One document found by a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Listed {
    /// Its name in the folder (`org1.json`).
    pub name: String,
    /// Changes when its content does.
    pub tag: String,
}

/// Whether `name` (in the folder) is a document: a `.json` file; anything else there (a
/// plugin, a README) is not read.
fn is_document(name: &str) -> bool {
    name.ends_with(".json") && !name.contains('/')
}

/// The location of document `name` in the folder `folder`.
pub(super) fn document_location(folder: &ConfigLocation, name: &str) -> ConfigLocation {
    match folder {
        ConfigLocation::S3Documents { bucket, prefix } => ConfigLocation::S3 {
            bucket: bucket.clone(),
            key: format!("{prefix}{name}"),
        },
        ConfigLocation::Folder(path) => ConfigLocation::File(path.join(name)),
        single => single.clone(),
    }
}

/// Every document in `folder`, by name.
pub(super) async fn list(
    client: &Client,
    folder: &ConfigLocation,
    owner: Option<&str>,
) -> Result<Vec<Listed>, ConfigLoadError> {
    let mut listed = match folder {
        ConfigLocation::S3Documents { bucket, prefix } => list_s3(client, bucket, prefix, owner)
            .await
            .map_err(|failure| ConfigLoadError::Unreadable {
                location: folder.to_string(),
                reason: format!("could not be listed: {failure}"),
                retryable: matches!(failure, S3Failure::Retryable { .. }),
            })?,
        ConfigLocation::Folder(path) => list_folder(path).await.map_err(|e| ConfigLoadError::Unreadable {
            location: folder.to_string(),
            reason: format!("could not be listed: {e}"),
            retryable: false,
        })?,
        ConfigLocation::S3 { .. } | ConfigLocation::File(_) => Vec::new(),
    };
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(listed)
}

async fn list_s3(
    client: &Client,
    bucket: &str,
    prefix: &str,
    owner: Option<&str>,
) -> Result<Vec<Listed>, S3Failure> {
    let mut listed = Vec::new();
    let mut continuation = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .delimiter("/")
            .set_continuation_token(continuation.take())
            .set_expected_bucket_owner(owner.map(str::to_string))
            .send()
            .await
            .map_err(|e| classify(&e))?;
        for object in page.contents() {
            let (Some(key), Some(etag)) = (object.key(), object.e_tag()) else {
                continue;
            };
            let Some(name) = key.strip_prefix(prefix) else {
                continue;
            };
            if is_document(name) {
                listed.push(Listed {
                    name: name.to_string(),
                    tag: etag.to_string(),
                });
            }
        }
        match page.next_continuation_token() {
            Some(next) if page.is_truncated() == Some(true) => continuation = Some(next.to_string()),
            _ => return Ok(listed),
        }
    }
}

async fn list_folder(path: &std::path::Path) -> std::io::Result<Vec<Listed>> {
    let mut listed = Vec::new();
    let mut entries = tokio::fs::read_dir(path).await?;
    while let Some(entry) = entries.next_entry().await? {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let metadata = entry.metadata().await?;
        if !metadata.is_file() || !is_document(&name) {
            continue;
        }
        let modified = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        listed.push(Listed {
            name,
            tag: format!("{}-{modified}", metadata.len()),
        });
    }
    Ok(listed)
}
