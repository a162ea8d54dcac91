//! Whether a destination bucket has Object Lock enabled: asked
//! (`GetObjectLockConfiguration`) only for a copy that would carry a source's lock, and once
//! per bucket per invocation or backfill run ([`LockConfigs`] lives in the run's
//! [`super::CopyOptions`]), not once per object.
//!
//! A copy with lock headers into a bucket without Object Lock is refused by S3
//! (`InvalidRequest`), but not by every S3-compatible server (moto and LocalStack accept and
//! drop them): the bucket's own configuration is what tells.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::ObjectLockEnabled;
use tokio::sync::OnceCell;

use super::CopyOptions;
use super::properties::SourceProperties;
use crate::config::ObjectLockPolicy;
use crate::reason::FailureCode;
use crate::s3::{RetryPolicy, S3Failure, classify, with_retries};

/// One run's answers, by bucket: an answer is kept, a failure is asked again.
#[derive(Clone, Default)]
pub struct LockConfigs(Arc<Mutex<HashMap<String, Arc<OnceCell<bool>>>>>);

impl std::fmt::Debug for LockConfigs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockConfigs")
    }
}

impl LockConfigs {
    /// Whether `bucket` has Object Lock enabled (`owner`: the account that must own it),
    /// asked with `client` at most once per run (retried per `retry`).
    pub(super) async fn enabled(
        &self,
        client: &Client,
        bucket: &str,
        owner: Option<&str>,
        retry: &RetryPolicy,
    ) -> Result<bool, S3Failure> {
        let cell = self
            .0
            .lock()
            .expect("lock configs")
            .entry(bucket.to_string())
            .or_default()
            .clone();
        let enabled = cell
            .get_or_try_init(|| async {
                let (answer, _attempts) = with_retries(retry, || ask(client, bucket, owner)).await;
                answer
            })
            .await?;
        Ok(*enabled)
    }
}

/// One `GetObjectLockConfiguration`: no configuration (S3's
/// `ObjectLockConfigurationNotFoundError`, a 404) or a server without Object Lock (501
/// `NotImplemented`) is `false`.
async fn ask(client: &Client, bucket: &str, owner: Option<&str>) -> Result<bool, S3Failure> {
    match client
        .get_object_lock_configuration()
        .bucket(bucket)
        .set_expected_bucket_owner(owner.map(str::to_string))
        .send()
        .await
    {
        Ok(out) => Ok(out
            .object_lock_configuration()
            .and_then(|c| c.object_lock_enabled())
            == Some(&ObjectLockEnabled::Enabled)),
        Err(SdkError::ServiceError(e))
            if e.err().code() == Some("ObjectLockConfigurationNotFoundError")
                || (e.raw().status().as_u16() == 404 && e.err().code() != Some("NoSuchBucket"))
                || e.raw().status().as_u16() == 501
                || e.err().code() == Some("NotImplemented") =>
        {
            Ok(false)
        }
        Err(e) => Err(match classify(&e) {
            // classify reads a 404 as a vanished source; here it is the bucket.
            S3Failure::SourceChanged(_) => S3Failure::Fatal {
                code: FailureCode::s3("NoSuchBucket"),
                message: format!("the destination bucket {bucket} does not exist"),
            },
            other => other,
        }),
    }
}

/// `properties` as a copy to `bucket` may write them: a source without a lock, or an org
/// whose `objectLock` is `"ignore"` (then without the lock), need no question; otherwise the
/// bucket must have Object Lock enabled (asked once per run), or the copy fails with
/// `DstObjectLockConfigMissing` rather than drop the lock.
pub(super) async fn with_allowed_lock(
    client: &Client,
    properties: SourceProperties,
    bucket: &str,
    options: &CopyOptions,
) -> Result<SourceProperties, S3Failure> {
    if !properties.lock.is_set() {
        return Ok(properties);
    }
    match options.write.object_lock {
        ObjectLockPolicy::Ignore => Ok(properties.without_lock()),
        ObjectLockPolicy::Copy => {
            let owner = options.write.owner_of(bucket);
            match options
                .lock_configs
                .enabled(client, bucket, owner, &options.retry)
                .await?
            {
                true => Ok(properties),
                false => Err(lock_config_missing(bucket)),
            }
        }
    }
}

/// The failure of a copy that would drop the source's lock: `bucket` has no Object Lock.
pub(super) fn lock_config_missing(bucket: &str) -> S3Failure {
    S3Failure::Fatal {
        code: FailureCode::DstObjectLockConfigMissing,
        message: format!(
            "the source has an Object Lock (retention or legal hold) and the destination bucket {bucket} has no Object Lock enabled; enable it, or set the org's objectLock to \"ignore\""
        ),
    }
}
