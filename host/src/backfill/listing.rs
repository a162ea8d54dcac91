//! Existing objects of the source bucket, page by page (`ListObjectsV2`), as the source
//! objects an event would have announced.
//!
//! Every listing here (the destination's too) asks for URL-encoded keys (`EncodingType=url`)
//! and decodes them ([`listed_key`]): a key may hold characters XML 1.0 cannot carry
//! (U+0001) or that an XML parser normalises (`\r`), and such a key must come back whole,
//! or it would be copied under another name, skipped as superseded, or fail the listing.

use aws_sdk_s3::Client;
use aws_sdk_s3::types::EncodingType;
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

use crate::destination::Existing;
use crate::event::SourceObject;
use crate::s3::keys::decode_listed_key;
use crate::s3::{RetryPolicy, S3Failure, classify, with_retries};

/// Event name a plugin sees for objects found by a backfill.
pub const BACKFILL_EVENT_NAME: &str = "Backfill:Copy";

/// One listed object.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// The object as the routing and copy steps take it.
    pub object: SourceObject,
    /// When the source was last written, from the listing.
    pub last_modified: Option<DateTime>,
    /// The source's storage class, from the listing (S3 and Garage list `STANDARD` too).
    pub storage_class: Option<String>,
}

impl Listed {
    /// What the listing says of the source, as the in-place rule takes it.
    pub fn facts(&self) -> Existing {
        let object = &self.object;
        Existing {
            size: object.size,
            etag: object.etag.clone(),
            ..Existing::listed(None, None, self.last_modified)
        }
    }
}

/// The key of a listed object, decoded when the listing answered URL-encoded keys (asked
/// for with `EncodingType=url`, which every listing here does: XML cannot carry every
/// character a key may hold, and a parser may turn `\r` into `\n`). A server that ignored
/// the request answers plain keys, taken as they are.
pub fn listed_key(key: &str, encoding: Option<&EncodingType>) -> Result<String, S3Failure> {
    if encoding != Some(&EncodingType::Url) {
        return Ok(key.to_string());
    }
    decode_listed_key(key).map_err(|e| S3Failure::Fatal {
        code: crate::reason::FailureCode::InvalidListedKey,
        message: e.to_string(),
    })
}

/// One page of the listing, and where the next one starts.
#[derive(Debug, Default)]
pub struct Page {
    /// Objects of this page, in key order.
    pub objects: Vec<Listed>,
    /// Continuation token of the next page; `None` after the last page.
    pub next: Option<String>,
}

/// Lists one page of `bucket` under `prefix` (at most `page_size` keys), retrying
/// throttling and 5xx answers with `retry`; `owner`: the account that must own `bucket`.
pub async fn list_page(
    client: &Client,
    bucket: &str,
    prefix: &str,
    page_size: i32,
    continuation: Option<String>,
    owner: Option<&str>,
    retry: &RetryPolicy,
) -> Result<Page, S3Failure> {
    let (result, _attempts) = with_retries(retry, || {
        let request = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(page_size)
            .encoding_type(EncodingType::Url)
            .set_continuation_token(continuation.clone())
            .set_expected_bucket_owner(owner.map(str::to_string));
        async move { request.send().await.map_err(|e| classify(&e)) }
    })
    .await;
    let out = result?;
    let encoding = out.encoding_type();
    let mut objects = Vec::with_capacity(out.contents().len());
    for o in out.contents() {
        let Some(key) = o.key() else { continue };
        objects.push(Listed {
            object: SourceObject {
                bucket: bucket.to_string(),
                key: listed_key(key, encoding)?,
                size: o.size().and_then(|s| u64::try_from(s).ok()),
                etag: o.e_tag().map(|e| e.trim_matches('"').to_string()),
                version_id: None,
                event_time: o.last_modified().and_then(|t| t.fmt(Format::DateTime).ok()),
                event_name: BACKFILL_EVENT_NAME.into(),
            },
            last_modified: o.last_modified().copied(),
            storage_class: o.storage_class().map(|c| c.as_str().to_string()),
        });
    }
    let next = if out.is_truncated() == Some(true) {
        out.next_continuation_token().map(str::to_string)
    } else {
        None
    };
    Ok(Page { objects, next })
}
