//! The life of one multipart upload, around its two steps that are not idempotent:
//!
//! - **Create.** An attempt whose answer is lost (a timeout, a dropped connection) may have
//!   created an upload all the same, and its retry creates another. So after a retried or
//!   failed create, the key's uploads are listed and every one begun since the create began,
//!   other than the one the copy goes on with, is aborted.
//! - **Complete.** An attempt whose answer is lost may have completed the upload, and its
//!   retry then finds no upload (`NoSuchUpload`). So after a retried or failed complete, the
//!   destination's HEAD tells whether it holds this copy's object ([`found_in_place`]).
//!
//! And no upload outlives its copy: once created, an [`Upload`] is aborted unless it was
//! completed, also when the copy's future is dropped (the deadline's cut-off). The create,
//! the clean-up of what it left and every abort run as [`Aborts`] tasks, which nothing that
//! ends a record ends.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::operation::create_multipart_upload::builders::CreateMultipartUploadFluentBuilder;
use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::ChecksumMode;
use tokio::sync::oneshot;

use super::Copied;
use super::aborts::{Aborts, bounded};
use super::checksum::{Checksum, first_checksum};
use crate::reason::FailureCode;
use crate::s3::{RetryPolicy, Retryable, S3Failure, classify, with_retries};

/// How far back of the local clock an upload's `Initiated` (or an object's `Last-Modified`,
/// to the second) may read and still be this copy's.
const CLOCK_SLACK: Duration = Duration::from_secs(1);

/// Listing pages read when looking for the uploads a create left behind.
const MAX_LISTING_PAGES: usize = 10;

/// Where the uploads of one copy go; owned, so a clean-up task can outlive the copy.
#[derive(Debug, Clone)]
pub(super) struct UploadAt {
    pub client: Client,
    pub bucket: String,
    pub key: String,
    /// `ExpectedBucketOwner` of every request.
    pub owner: Option<String>,
    pub policy: RetryPolicy,
}

/// Whether a failed or retried step may have been carried out by an attempt whose answer
/// was lost: only a first attempt refused outright (4xx) certainly was not.
fn maybe_done(result: &Result<impl Sized, S3Failure>, attempts: u32) -> bool {
    attempts > 1 || result.as_ref().is_err_and(|f| f.is_retryable())
}

/// Sends `request` (with retries) in a task of its own, and hands the upload over as an
/// [`Upload`] that aborts itself unless completed. Returns the attempts the create took.
pub(super) async fn create(
    at: &UploadAt,
    request: CreateMultipartUploadFluentBuilder,
    aborts: &Aborts,
) -> (Result<Upload, S3Failure>, u32) {
    let (hand_over, handed) = oneshot::channel();
    let task_at = at.clone();
    // The create itself is bounded by its attempts' timeouts; what it leaves, by ABORT_TIMEOUT.
    aborts.spawn(async move {
        let at = task_at;
        let began = SystemTime::now();
        let (result, attempts) = with_retries(&at.policy, || async {
            let out = request.clone().send().await.map_err(|e| classify(&e))?;
            out.upload_id()
                .map(str::to_string)
                .ok_or_else(|| S3Failure::Fatal {
                    code: FailureCode::InvalidResponse,
                    message: "CreateMultipartUpload returned no upload id".into(),
                })
        })
        .await;
        if maybe_done(&result, attempts) {
            let strays = abort_strays(&at, began, result.as_ref().ok());
            bounded("uploads left by a retried CreateMultipartUpload", strays).await;
        }
        if let Err((Ok(upload_id), _)) = hand_over.send((result, attempts)) {
            // The copy was dropped while its upload was being created.
            bounded("AbortMultipartUpload", abort_upload(&at, &upload_id)).await;
        }
    });
    match handed.await {
        Ok((result, attempts)) => (
            result.map(|id| Upload {
                at: at.clone(),
                id,
                aborts: aborts.clone(),
                settled: false,
            }),
            attempts,
        ),
        Err(_) => (
            Err(S3Failure::Retryable {
                code: FailureCode::s3("InternalError"),
                message: "the CreateMultipartUpload task ended without an answer".into(),
            }),
            1,
        ),
    }
}

/// Aborts every upload of `at.key` begun since `began`, except `keep`: those a create's
/// attempts made whose answers were lost.
async fn abort_strays(at: &UploadAt, began: SystemTime, keep: Option<&String>) {
    let since = DateTime::from(began.checked_sub(CLOCK_SLACK).unwrap_or(began));
    let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
    for _ in 0..MAX_LISTING_PAGES {
        let (page, _) = with_retries(&at.policy, || async {
            at.client
                .list_multipart_uploads()
                .bucket(&at.bucket)
                .prefix(&at.key)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(id_marker.clone())
                .set_expected_bucket_owner(at.owner.clone())
                .send()
                .await
                .map_err(|e| classify(&e))
        })
        .await;
        let page = match page {
            Ok(page) => page,
            Err(failure) => {
                tracing::warn!(bucket = %at.bucket, key = %at.key, %failure, "could not list the uploads a retried CreateMultipartUpload may have left; a lifecycle rule for incomplete uploads will remove them");
                return;
            }
        };
        let strays = page.uploads().iter().filter(|u| {
            u.key() == Some(at.key.as_str())
                && u.upload_id()
                    .is_some_and(|id| Some(id) != keep.map(String::as_str))
                && u.initiated().is_some_and(|t| t.as_nanos() >= since.as_nanos())
        });
        for stray in strays.filter_map(|u| u.upload_id()) {
            tracing::info!(bucket = %at.bucket, key = %at.key, upload_id = stray, "aborting an upload a lost CreateMultipartUpload answer left");
            abort_upload(at, stray).await;
        }
        if page.is_truncated() != Some(true) {
            return;
        }
        key_marker = page.next_key_marker().map(str::to_string);
        id_marker = page.next_upload_id_marker().map(str::to_string);
    }
}

/// Aborts one upload; one that is already gone (completed, or aborted) is fine.
async fn abort_upload(at: &UploadAt, upload_id: &str) {
    let (result, _) = with_retries(&at.policy, || async {
        at.client
            .abort_multipart_upload()
            .bucket(&at.bucket)
            .key(&at.key)
            .upload_id(upload_id)
            .set_expected_bucket_owner(at.owner.clone())
            .send()
            .await
            .map_err(|e| classify(&e))
    })
    .await;
    match result {
        Ok(_) => {}
        Err(S3Failure::Fatal { code, .. }) if code.is_s3("NoSuchUpload") => {
            tracing::debug!(upload_id, "upload already gone");
        }
        Err(failure) => {
            tracing::warn!(upload_id, %failure, "could not abort multipart upload; a lifecycle rule for incomplete uploads will clean it up");
        }
    }
}

/// One created upload. Dropped without [`Upload::completed`] or [`Upload::abort`] (the
/// copy's future was dropped), it is aborted in a task of its own.
pub(super) struct Upload {
    at: UploadAt,
    id: String,
    aborts: Aborts,
    settled: bool,
}

impl Upload {
    /// The upload id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The upload was completed: nothing to abort.
    pub fn completed(mut self) {
        self.settled = true;
    }

    /// Aborts the upload (in a task of its own, so it finishes even if this wait is dropped)
    /// and waits for it.
    pub async fn abort(mut self) {
        self.settled = true;
        let _ = self.spawn_abort().await;
    }

    fn spawn_abort(&self) -> tokio::task::JoinHandle<()> {
        let (at, id) = (self.at.clone(), self.id.clone());
        self.aborts.spawn(async move {
            bounded("AbortMultipartUpload", abort_upload(&at, &id)).await;
        })
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            self.spawn_abort();
        } else {
            tracing::warn!(upload_id = %self.id, "no runtime left to abort multipart upload; a lifecycle rule for incomplete uploads will clean it up");
        }
    }
}

/// What a completed upload of this copy looks like.
pub(super) struct Expected<'a> {
    pub size: u64,
    pub parts: usize,
    /// The source's full-object checksum the upload carried.
    pub checksum: Option<&'a Checksum>,
    /// When the copy's create began (its upload's `Initiated`, which S3 also gives the
    /// object as `Last-Modified`, is later).
    pub began: SystemTime,
}

/// Whether a complete that failed (retried, its first answer lost) completed the upload
/// after all: the destination holds an object of the expected size whose full-object
/// checksum is the source's, or, without a checksum to compare, whose ETag is a multipart
/// ETag of the expected part count written since the copy began.
pub(super) async fn found_in_place(at: &UploadAt, expected: &Expected<'_>) -> Option<Copied> {
    let (head, _) = with_retries(&at.policy, || async {
        at.client
            .head_object()
            .bucket(&at.bucket)
            .key(&at.key)
            .checksum_mode(ChecksumMode::Enabled)
            .set_expected_bucket_owner(at.owner.clone())
            .send()
            .await
            .map_err(|e| classify(&e))
    })
    .await;
    let head = match head {
        Ok(head) => head,
        Err(failure) => {
            tracing::debug!(bucket = %at.bucket, key = %at.key, %failure, "destination HEAD after a failed complete");
            return None;
        }
    };
    if head.content_length().map(|n| n.max(0) as u64) != Some(expected.size) {
        return None;
    }
    let found = first_checksum!(&head);
    let same = match (expected.checksum, &found) {
        (Some(want), Some(got)) if want.algorithm == got.algorithm => want.value == got.value,
        _ => {
            let etag = head.e_tag().unwrap_or_default().trim_matches('"');
            let since = DateTime::from(expected.began.checked_sub(CLOCK_SLACK).unwrap_or(expected.began));
            etag.ends_with(&format!("-{}", expected.parts))
                && head.last_modified().is_some_and(|t| t.secs() >= since.secs())
        }
    };
    same.then(|| Copied {
        bytes: Some(expected.size),
        parts: Some(expected.parts),
        checksum: found.or_else(|| expected.checksum.cloned()),
    })
}

/// The failure of a complete retried after a lost answer whose copy is not in place: the
/// upload is gone or unusable, and the record worth another try.
pub(super) fn not_in_place(failure: S3Failure) -> S3Failure {
    match failure {
        S3Failure::Retryable { code, message } | S3Failure::Fatal { code, message } => S3Failure::Retryable {
            code,
            message: format!(
                "{message} (after a retried CompleteMultipartUpload; the destination does not hold the copy)"
            ),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_first_refusal_certainly_did_nothing() {
        let fatal = || -> Result<(), S3Failure> {
            Err(S3Failure::Fatal {
                code: FailureCode::s3("AccessDenied"),
                message: String::new(),
            })
        };
        let timeout = || -> Result<(), S3Failure> {
            Err(S3Failure::Retryable {
                code: FailureCode::Timeout,
                message: String::new(),
            })
        };
        assert!(!maybe_done(&fatal(), 1));
        assert!(!maybe_done(&Ok::<_, S3Failure>(()), 1));
        assert!(maybe_done(&timeout(), 1));
        assert!(maybe_done(&fatal(), 2), "NoSuchUpload after a lost answer");
        assert!(maybe_done(&Ok::<_, S3Failure>(()), 2));
    }
}
