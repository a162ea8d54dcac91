//! Destination buckets: server-side copy of one object, `CopyObject` up to the threshold,
//! multipart `UploadPartCopy` above it. Object bytes never pass through this process.
//!
//! Every request is conditional on the ETag the event announced
//! (`x-amz-copy-source-if-match`), so a late or duplicated event can never put an older
//! version over a newer one: a 412 becomes [`CopyError::Superseded`].

use aws_sdk_s3::Client;
use aws_sdk_s3::error::SdkError;
use aws_smithy_types::DateTime;

use super::{Copied, CopyError, CopyOptions, Delivery, multipart};
use crate::event::SourceObject;
use crate::route::Target;
use crate::s3::client::copy_request;
use crate::s3::keys::copy_source;
use crate::s3::limits::COPY_OBJECT_LIMIT;
use crate::s3::{RetryPolicy, S3Failure, classify, if_match, with_retries};

/// The destination buckets, reached through one client.
pub struct S3Destination {
    client: Client,
}

/// What a HEAD (or a listing) of a destination key found.
#[derive(Debug, Clone, PartialEq)]
pub struct Existing {
    /// Size in bytes.
    pub size: Option<u64>,
    /// ETag without quotes.
    pub etag: Option<String>,
    /// Last-Modified (whole seconds from a HEAD, milliseconds from a listing).
    pub last_modified: Option<DateTime>,
}

/// What to copy where.
#[derive(Debug, Clone, Copy)]
pub(super) struct CopyJob<'a> {
    /// Source bucket.
    pub source_bucket: &'a str,
    /// Source key (decoded).
    pub source_key: &'a str,
    /// Size from the event, when known.
    pub size: Option<u64>,
    /// ETag from the event (unquoted), when known.
    pub etag: Option<&'a str>,
    /// Destination bucket.
    pub destination_bucket: &'a str,
    /// Destination key.
    pub destination_key: &'a str,
}

impl S3Destination {
    /// Copies with `client`.
    pub fn new(client: Client) -> Self {
        S3Destination { client }
    }

    /// The client the copies go through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Copies `object` to `target` server-side, choosing single or multipart copy by size.
    pub async fn copy(&self, object: &SourceObject, target: &Target, options: &CopyOptions) -> Delivery {
        let job = CopyJob {
            source_bucket: &object.bucket,
            source_key: &object.key,
            size: object.size,
            etag: object.etag.as_deref(),
            destination_bucket: &target.bucket,
            destination_key: &target.key,
        };
        let threshold = options.multipart_threshold.min(COPY_OBJECT_LIMIT);
        let (result, attempts) = match job.size {
            Some(size) if size <= threshold => single_copy(&self.client, &job, options).await,
            // Unknown size: multipart planning heads the object first and picks either way.
            _ => multipart::copy(&self.client, &job, options, threshold).await,
        };
        Delivery {
            target: target.clone(),
            result: result.map_err(CopyError::from),
            attempts,
        }
    }

    /// Looks up `target`: `Ok(None)` when there is no such object.
    pub async fn existing(
        &self,
        target: &Target,
        retry: &RetryPolicy,
    ) -> Result<Option<Existing>, S3Failure> {
        let (result, _attempts) = with_retries(retry, || async {
            match self
                .client
                .head_object()
                .bucket(&target.bucket)
                .key(&target.key)
                .send()
                .await
            {
                Ok(out) => Ok(Some(Existing {
                    size: out.content_length().and_then(|s| u64::try_from(s).ok()),
                    etag: out.e_tag().map(|e| e.trim_matches('"').to_string()),
                    last_modified: out.last_modified().copied(),
                })),
                Err(SdkError::ServiceError(context)) if context.raw().status().as_u16() == 404 => Ok(None),
                Err(e) => Err(match classify(&e) {
                    // classify reads a 404 as a vanished *source*; here any other failure is
                    // just a failed check.
                    S3Failure::SourceChanged(why) => S3Failure::Fatal {
                        code: "HeadFailed".into(),
                        message: why,
                    },
                    other => other,
                }),
            }
        })
        .await;
        result
    }
}

pub(super) async fn single_copy(
    client: &Client,
    job: &CopyJob<'_>,
    options: &CopyOptions,
) -> (Result<Copied, S3Failure>, u32) {
    let source = copy_source(job.source_bucket, job.source_key);
    let (outcome, attempts) = with_retries(&options.retry, || async {
        client
            .copy_object()
            .bucket(job.destination_bucket)
            .key(job.destination_key)
            .copy_source(&source)
            .set_copy_source_if_match(job.etag.map(if_match))
            .customize()
            .config_override(copy_request(options.timeouts))
            .send()
            .await
            .map_err(|e| classify(&e))
    })
    .await;
    let copied = Copied {
        bytes: job.size,
        parts: None,
    };
    (outcome.map(|_| copied), attempts)
}
