//! Listing the org documents: the `.json` objects directly under the prefix (S3,
//! `ListObjectsV2` with the `/` delimiter, 1,000 per request) or the `.json` files of a
//! folder, each with a tag that changes when its content does (the ETag; for a file, its
//! size and modification time).
//!
//! One listing is a chain of pages, each waiting for the last one's continuation token. When
//! the names are roughly known already (the last refresh's, or a snapshot's), the key space
//! is cut at known names into up to [`RANGES`] ranges listed at once (`StartAfter` the cut,
//! until a key passes the next cut): names added or removed since are found all the same,
//! since the ranges together cover every key.

use aws_sdk_s3::Client;
use futures::future::try_join_all;

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

/// The most ranges listed at once.
pub(super) const RANGES: usize = 16;
/// Names per range at least: fewer are not worth a chain of their own.
const NAMES_PER_RANGE: usize = 1_000;

/// Every document in `folder`, by name; `known`: names believed to be there, in order (cut
/// points for listing ranges at once; any may be gone).
pub(super) async fn list(
    client: &Client,
    folder: &ConfigLocation,
    owner: Option<&str>,
    known: &[&str],
) -> Result<Vec<Listed>, ConfigLoadError> {
    let mut listed = match folder {
        ConfigLocation::S3Documents { bucket, prefix } => list_s3(client, bucket, prefix, owner, known)
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

/// The cut points: up to `RANGES - 1` known names, evenly spread.
fn cuts<'a>(known: &[&'a str]) -> Vec<&'a str> {
    let ranges = (known.len() / NAMES_PER_RANGE).clamp(1, RANGES);
    (1..ranges).map(|i| known[i * known.len() / ranges]).collect()
}

async fn list_s3(
    client: &Client,
    bucket: &str,
    prefix: &str,
    owner: Option<&str>,
    known: &[&str],
) -> Result<Vec<Listed>, S3Failure> {
    let cuts = cuts(known);
    // Range i: keys after cut i-1 (none: from the start) up to and including cut i (none: to
    // the end).
    let bounds: Vec<(Option<String>, Option<String>)> = (0..=cuts.len())
        .map(|i| {
            let after = i.checked_sub(1).map(|j| format!("{prefix}{}", cuts[j]));
            let through = cuts.get(i).map(|c| format!("{prefix}{c}"));
            (after, through)
        })
        .collect();
    let ranges = try_join_all(
        bounds
            .into_iter()
            .map(|(after, through)| list_range(client, bucket, prefix, owner, after, through)),
    )
    .await?;
    Ok(ranges.into_iter().flatten().collect())
}

/// The documents with keys after `after` up to and including `through`.
async fn list_range(
    client: &Client,
    bucket: &str,
    prefix: &str,
    owner: Option<&str>,
    after: Option<String>,
    through: Option<String>,
) -> Result<Vec<Listed>, S3Failure> {
    let mut listed = Vec::new();
    let mut continuation = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .delimiter("/")
            .set_start_after(after.clone())
            .set_continuation_token(continuation.take())
            .set_expected_bucket_owner(owner.map(str::to_string))
            .send()
            .await
            .map_err(|e| classify(&e))?;
        for object in page.contents() {
            let (Some(key), Some(etag)) = (object.key(), object.e_tag()) else {
                continue;
            };
            if through.as_deref().is_some_and(|through| key > through) {
                return Ok(listed);
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_spread_the_known_names_into_ranges_of_at_least_a_thousand() {
        let names: Vec<String> = (0..100_000).map(|i| format!("org{i:06}.json")).collect();
        let known: Vec<&str> = names.iter().map(String::as_str).collect();
        let cut = cuts(&known);
        assert_eq!(cut.len(), RANGES - 1);
        assert_eq!(cut[0], "org006250.json");
        assert!(cut.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(cuts(&known[..1_999]), Vec::<&str>::new());
        assert_eq!(cuts(&known[..2_000]), ["org001000.json"]);
        assert!(cuts(&[]).is_empty());
    }
}
