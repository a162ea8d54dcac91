//! What feeds one org's cursor: pages of a `ListObjectsV2` listing of its destination
//! bucket, or pages made of an S3 Inventory's entries (reconcile's `--destination-inventory`).

use std::sync::Arc;

use aws_sdk_s3::Client;
use tokio::sync::mpsc;

use super::super::inventory::{InventoryEntry, InventoryError};
use super::super::listing::listed_key;
use super::{Entry, Page};
use crate::destination::Existing;
use crate::reason::FailureCode;
use crate::s3::{RetryPolicy, S3Failure, classify, with_retries};

/// An inventory's entries, in key order.
pub type InventoryEntries = mpsc::Receiver<Result<InventoryEntry, InventoryError>>;

/// Turns an inventory's entries under `prefix` into pages, as [`list_destination`] sends a
/// listing's; a read that fails part-way fails the listing (the org's keys then get HEADs).
pub(super) async fn pages_of_inventory(
    mut entries: InventoryEntries,
    prefix: String,
    page_size: i32,
    tx: mpsc::Sender<Result<Page, S3Failure>>,
) {
    let size = usize::try_from(page_size).unwrap_or(1000).max(1);
    let mut page = Vec::with_capacity(size);
    loop {
        match entries.recv().await {
            Some(Ok(entry)) => {
                if entry.key.starts_with(&prefix) {
                    let existing = entry.existing();
                    page.push(Entry {
                        key: entry.key,
                        existing,
                    });
                }
                if page.len() == size {
                    let full = Page {
                        entries: std::mem::replace(&mut page, Vec::with_capacity(size)),
                        last: false,
                    };
                    if tx.send(Ok(full)).await.is_err() {
                        return;
                    }
                }
            }
            Some(Err(error)) => {
                let failure = S3Failure::Fatal {
                    code: FailureCode::s3("InventoryUnreadable"),
                    message: error.to_string(),
                };
                let _ = tx.send(Err(failure)).await;
                return;
            }
            None => {
                let _ = tx
                    .send(Ok(Page {
                        entries: page,
                        last: true,
                    }))
                    .await;
                return;
            }
        }
    }
}

/// Lists `bucket` under `prefix` page by page into `tx` (at most [`PAGES_AHEAD`](super::PAGES_AHEAD) waiting);
/// stops at the last page, at a failure (sent), or when the join is gone.
pub(super) async fn list_destination(
    client: Client,
    bucket: Arc<str>,
    owner: Option<String>,
    prefix: String,
    page_size: i32,
    retry: RetryPolicy,
    tx: mpsc::Sender<Result<Page, S3Failure>>,
) {
    let mut token: Option<String> = None;
    loop {
        let (result, _attempts) = with_retries(&retry, || {
            let request = client
                .list_objects_v2()
                .bucket(&*bucket)
                .prefix(&prefix)
                .max_keys(page_size)
                .encoding_type(aws_sdk_s3::types::EncodingType::Url)
                .set_expected_bucket_owner(owner.clone())
                .set_continuation_token(token.clone());
            async move { request.send().await.map_err(|e| classify(&e)) }
        })
        .await;
        let out = match result {
            Ok(out) => out,
            Err(failure) => {
                let _ = tx.send(Err(failure)).await;
                return;
            }
        };
        token = match out.is_truncated() {
            Some(true) => out.next_continuation_token().map(str::to_string),
            _ => None,
        };
        let encoding = out.encoding_type.clone();
        let mut entries = Vec::with_capacity(out.contents.as_ref().map_or(0, Vec::len));
        for o in out.contents.unwrap_or_default() {
            let Some(key) = o.key else { continue };
            let key = match listed_key(&key, encoding.as_ref()) {
                Ok(key) => key,
                Err(failure) => {
                    let _ = tx.send(Err(failure)).await;
                    return;
                }
            };
            // A listing carries checksum algorithms, not values, and no encryption.
            let existing = Existing::listed(o.size, o.e_tag.as_deref(), o.last_modified);
            entries.push(Entry { key, existing });
        }
        let last = token.is_none();
        if tx.send(Ok(Page { entries, last })).await.is_err() || last {
            return;
        }
    }
}
