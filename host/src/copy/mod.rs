//! Server-side copy of one object: `CopyObject` up to the threshold, multipart
//! `UploadPartCopy` above it. Object bytes never pass through this process.
//!
//! Every request is conditional on the ETag the event announced
//! (`x-amz-copy-source-if-match`), so a late or duplicated event can never put an older
//! version over a newer one: a 412 becomes [`CopyOutcome::Superseded`].

mod multipart;
pub mod retry;

use aws_sdk_s3::Client;

use crate::env::COPY_OBJECT_LIMIT;
use crate::key_encoding::copy_source;
use retry::{RetryPolicy, S3Failure, classify, with_retries};

/// What to copy where.
#[derive(Debug, Clone, Copy)]
pub struct CopyJob<'a> {
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

/// Tuning that applies to every copy.
#[derive(Debug, Clone, Copy)]
pub struct CopyOptions {
    /// Objects larger than this use multipart copy (at most 5 GiB).
    pub multipart_threshold: u64,
    /// Preferred part size; raised as needed to stay within 10,000 parts.
    pub part_size: u64,
    /// Parts in flight at once for one object.
    pub part_concurrency: usize,
    /// Retry behaviour of each request.
    pub retry: RetryPolicy,
}

/// A finished copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyOutcome {
    /// The destination now holds the object.
    Copied {
        /// Bytes copied, when known.
        bytes: Option<u64>,
        /// Number of parts, for multipart copies.
        parts: Option<usize>,
    },
    /// The source changed or vanished since the event; the newer version's event exports it.
    Superseded(String),
}

/// The result of one copy and how many attempts its most-retried request took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResult {
    /// Copied, superseded, or the failure.
    pub outcome: Result<CopyOutcome, S3Failure>,
    /// Attempts of the most-retried request (1 when nothing was retried).
    pub attempts: u32,
}

/// Copies one object server-side, choosing single or multipart copy by size.
pub async fn copy_object(client: &Client, job: &CopyJob<'_>, options: &CopyOptions) -> CopyResult {
    let threshold = options.multipart_threshold.min(COPY_OBJECT_LIMIT);
    let result = match job.size {
        Some(size) if size <= threshold => single_copy(client, job, &options.retry).await,
        // Unknown size: multipart planning heads the object first and picks either way.
        _ => multipart::copy(client, job, options, threshold).await,
    };
    match result.outcome {
        Err(S3Failure::Superseded(why)) => CopyResult {
            outcome: Ok(CopyOutcome::Superseded(why)),
            attempts: result.attempts,
        },
        _ => result,
    }
}

/// `If-Match` / `x-amz-copy-source-if-match` value for an unquoted ETag.
pub fn if_match(etag: &str) -> String {
    format!("\"{etag}\"")
}

async fn single_copy(client: &Client, job: &CopyJob<'_>, policy: &RetryPolicy) -> CopyResult {
    let source = copy_source(job.source_bucket, job.source_key);
    let (outcome, attempts) = with_retries(policy, || async {
        client
            .copy_object()
            .bucket(job.destination_bucket)
            .key(job.destination_key)
            .copy_source(&source)
            .set_copy_source_if_match(job.etag.map(if_match))
            .send()
            .await
            .map_err(|e| classify(&e))
    })
    .await;
    CopyResult {
        outcome: outcome.map(|_| CopyOutcome::Copied {
            bytes: job.size,
            parts: None,
        }),
        attempts,
    }
}
