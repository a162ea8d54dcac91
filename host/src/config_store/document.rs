//! Reading one configuration document, an S3 object or a file, bounded by
//! [`MAX_CONFIG_BYTES`], conditional on the ETag last read; S3's answers are worded as the
//! configuration's ([`ConfigLoadError`]).

use aws_sdk_s3::Client;
use aws_sdk_s3::error::SdkError;

use super::ConfigLoadError;
use crate::bounded::{MAX_CONFIG_BYTES, ReadError, collect_body, read_file_to_limit};
use crate::env::ConfigLocation;
use crate::s3::{S3Failure, SourceChange, classify};

/// What a read found.
pub(super) enum Fetched {
    /// The ETag is still the one given: nothing was read.
    Unchanged,
    /// There is no such object or file.
    Gone,
    /// The document, and its ETag.
    Changed { text: String, etag: Option<String> },
}

/// Reads the document at `location` (one document: [`ConfigLocation::S3`] or
/// [`ConfigLocation::File`]) unless its ETag is still `known_etag`; `owner` must own its bucket.
pub(super) async fn read(
    client: &Client,
    location: &ConfigLocation,
    known_etag: Option<&str>,
    owner: Option<&str>,
) -> Result<Fetched, ConfigLoadError> {
    read_to_limit(client, location, known_etag, owner, MAX_CONFIG_BYTES).await
}

/// [`read`], with `limit` bytes at most.
pub(super) async fn read_to_limit(
    client: &Client,
    location: &ConfigLocation,
    known_etag: Option<&str>,
    owner: Option<&str>,
    limit: u64,
) -> Result<Fetched, ConfigLoadError> {
    let unreadable = |reason: String, retryable: bool| ConfigLoadError::Unreadable {
        location: location.to_string(),
        reason,
        retryable,
    };
    let bounded = |e: ReadError| match e {
        ReadError::TooLarge { limit } => ConfigLoadError::TooLarge {
            location: location.to_string(),
            limit,
        },
        // A file that cannot be read, or an S3 body that broke off.
        ReadError::Failed(reason) => unreadable(reason, true),
    };
    let utf8 =
        |bytes: Vec<u8>| String::from_utf8(bytes).map_err(|_| unreadable("not UTF-8 text".into(), false));
    match location {
        ConfigLocation::File(path) | ConfigLocation::Folder(path) => {
            let bytes = read_file_to_limit(path, limit).await.map_err(bounded)?;
            Ok(Fetched::Changed {
                text: utf8(bytes)?,
                etag: None,
            })
        }
        ConfigLocation::S3 { bucket, key } | ConfigLocation::S3Documents { bucket, prefix: key } => {
            let response = client
                .get_object()
                .bucket(bucket)
                .key(key)
                .set_if_none_match(known_etag.map(str::to_string))
                .set_expected_bucket_owner(owner.map(str::to_string))
                .send()
                .await;
            let output = match response {
                Ok(output) => output,
                Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 304 => {
                    return Ok(Fetched::Unchanged);
                }
                Err(e) => return not_read(location, classify(&e)),
            };
            let etag = output.e_tag().map(str::to_string);
            let bytes = collect_body(output.body, output.content_length, limit)
                .await
                .map_err(bounded)?;
            Ok(Fetched::Changed {
                text: utf8(bytes)?,
                etag,
            })
        }
    }
}

/// A read S3 answered with `failure`, in the config's words: S3's "no such key" is
/// [`Fetched::Gone`]; a precondition the read did not set is an unreadable answer, not a
/// source "overwritten since the event".
fn not_read(location: &ConfigLocation, failure: S3Failure) -> Result<Fetched, ConfigLoadError> {
    let location = location.to_string();
    Err(match failure {
        S3Failure::SourceChanged(SourceChange::Deleted) => return Ok(Fetched::Gone),
        S3Failure::SourceChanged(SourceChange::Overwritten) => ConfigLoadError::Unreadable {
            location,
            reason: "S3 answered 412 PreconditionFailed to a read without a precondition".into(),
            retryable: true,
        },
        S3Failure::Retryable { .. } => ConfigLoadError::Unreadable {
            location,
            reason: failure.to_string(),
            retryable: true,
        },
        S3Failure::Fatal { .. } => ConfigLoadError::Unreadable {
            location,
            reason: failure.to_string(),
            retryable: false,
        },
    })
}
