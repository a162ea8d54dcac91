//! The S3 requests of a removal that follows the source (an org's `deletes`), each answer
//! classified as a copy's are ([`classify`]): whether the source key is there again, whether
//! a destination bucket keeps versions, what the version a delete marker hid was, and the
//! `DeleteObject` itself. Every request goes through the copies' client (the org's role when
//! it has one), with its request timeout and the config's `retry`, and names the bucket's
//! expected owner as the copies do. Deciding what to delete is the caller's
//! ([`crate::deliver::remove`]).

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::types::{BucketVersioningStatus, ChecksumMode};

use super::s3::head_source;
use super::{CopyOptions, Existing, S3Destination};
use crate::reason::FailureCode;
use crate::route::Target;
use crate::s3::{RetryPolicy, S3Failure, SourceChange, classify, with_retries};

/// How many entries of the source's version listing are read to find the version a delete
/// marker hid (the key's own versions come first, newest first).
const VERSIONS_READ: i32 = 100;

/// Whether a `GetBucketVersioning` answer's body says `Enabled`: read by hand only when the
/// SDK could not read a 200 answer (moto names its root element `GetBucketVersioningResponse`
/// instead of `VersioningConfiguration`). Anything else is "not versioned", the side on which
/// nothing is deleted.
pub fn says_enabled(body: &[u8]) -> bool {
    body.windows(b"<Status>Enabled</Status>".len())
        .any(|w| w == b"<Status>Enabled</Status>")
}

/// A 404 read as a failed check (`classify` reads a 404 as a vanished source).
fn not_source(failure: S3Failure, what: String) -> S3Failure {
    match failure {
        S3Failure::SourceChanged(why) => S3Failure::Fatal {
            code: FailureCode::HeadFailed,
            message: format!("{what}: {why}"),
        },
        S3Failure::Fatal { code, message } if message.is_empty() => S3Failure::Fatal { code, message: what },
        other => other,
    }
}

impl S3Destination {
    /// Whether the source key exists now (a HEAD with no condition, as the copies' client
    /// reads the source): `Ok(false)` when the key is gone and its bucket is there; a missing
    /// source bucket is a failure (`NoSuchBucket`), never "gone".
    pub async fn source_exists(
        &self,
        bucket: &str,
        key: &str,
        options: &CopyOptions,
    ) -> Result<bool, S3Failure> {
        let (result, _attempts) = head_source(self.client(), bucket, key, None, options).await;
        match result {
            Ok(_) => Ok(true),
            Err(S3Failure::SourceChanged(SourceChange::Deleted)) => Ok(false),
            Err(S3Failure::SourceChanged(SourceChange::Overwritten)) => Ok(true),
            Err(other) => Err(other),
        }
    }

    /// Whether `bucket` keeps versions (`GetBucketVersioning` answers `Enabled`): a delete
    /// there leaves a delete marker, so it can be undone. Suspended or never enabled: no.
    pub async fn keeps_versions(
        &self,
        bucket: &str,
        owner: Option<&str>,
        retry: &RetryPolicy,
    ) -> Result<bool, S3Failure> {
        let (result, _attempts) = with_retries(retry, || async {
            match self
                .client()
                .get_bucket_versioning()
                .bucket(bucket)
                .set_expected_bucket_owner(owner.map(str::to_string))
                .send()
                .await
            {
                Ok(out) => Ok(out.status() == Some(&BucketVersioningStatus::Enabled)),
                Err(SdkError::ServiceError(context)) if context.raw().status().as_u16() == 200 => {
                    Ok(context.raw().body().bytes().is_some_and(says_enabled))
                }
                Err(e) => Err(not_source(
                    classify(&e),
                    format!("GetBucketVersioning of {bucket}"),
                )),
            }
        })
        .await;
        result
    }

    /// The version of `key` that the delete marker `marker` hid: the newest version listed
    /// no later than the marker, read by a HEAD of that version (ETag and checksum).
    /// `Ok(None)` when the listing does not show the marker or any version below it.
    pub async fn version_below_marker(
        &self,
        bucket: &str,
        key: &str,
        marker: &str,
        options: &CopyOptions,
    ) -> Result<Option<Existing>, S3Failure> {
        let (listing, _attempts) = with_retries(&options.retry, || async {
            self.client()
                .list_object_versions()
                .bucket(bucket)
                .prefix(key)
                .max_keys(VERSIONS_READ)
                .set_expected_bucket_owner(options.source_owner.clone())
                .send()
                .await
                .map_err(|e| not_source(classify(&e), format!("ListObjectVersions of s3://{bucket}/{key}")))
        })
        .await;
        let listing = listing?;
        let Some(marker_time) = listing
            .delete_markers()
            .iter()
            .find(|m| m.key() == Some(key) && m.version_id() == Some(marker))
            .and_then(|m| m.last_modified().copied())
        else {
            return Ok(None);
        };
        // Listed newest first: the first version of the key no later than the marker.
        let Some(version) = listing
            .versions()
            .iter()
            .filter(|v| v.key() == Some(key))
            .find(|v| v.last_modified().is_some_and(|at| *at <= marker_time))
            .and_then(|v| v.version_id())
            .map(str::to_string)
        else {
            return Ok(None);
        };
        let (head, _attempts) = with_retries(&options.retry, || async {
            self.client()
                .head_object()
                .bucket(bucket)
                .key(key)
                .version_id(&version)
                .checksum_mode(ChecksumMode::Enabled)
                .set_expected_bucket_owner(options.source_owner.clone())
                .send()
                .await
                .map_err(|e| {
                    not_source(
                        classify(&e),
                        format!("HEAD of s3://{bucket}/{key} version {version}"),
                    )
                })
        })
        .await;
        head.map(|head| Some(Existing::from_head(&head)))
    }

    /// Deletes `target` (`DeleteObject`, naming `owner` as the bucket's expected owner).
    pub async fn delete(
        &self,
        target: &Target,
        owner: Option<&str>,
        retry: &RetryPolicy,
    ) -> (Result<(), S3Failure>, u32) {
        with_retries(retry, || async {
            // S3 answers 204 for a key that is not there; a 404 is the bucket's.
            self.client()
                .delete_object()
                .bucket(&target.bucket)
                .key(&target.key)
                .set_expected_bucket_owner(owner.map(str::to_string))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    not_source(
                        classify(&e),
                        format!("DeleteObject of s3://{}/{}", target.bucket, target.key),
                    )
                })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::says_enabled;

    #[test]
    fn only_an_enabled_status_reads_as_versioned() {
        let moto = br#"<?xml version="1.0" encoding="utf-8"?>
<GetBucketVersioningResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></GetBucketVersioningResponse>"#;
        assert!(says_enabled(moto));
        for other in [
            &br#"<GetBucketVersioningResponse xmlns="x"/>"#[..],
            br#"<GetBucketVersioningResponse><Status>Suspended</Status></GetBucketVersioningResponse>"#,
            b"",
        ] {
            assert!(!says_enabled(other));
        }
    }
}
