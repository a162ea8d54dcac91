//! Reading a delivery's objects from S3: the manifest into memory (bounded), each data file
//! streamed to a local file with its MD5 checked. Retries as every S3 read here does.

use std::path::Path;

use aws_sdk_s3::Client;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use md5::{Digest, Md5};
use tokio::io::AsyncWriteExt;

use super::InventoryError;
use crate::bounded::collect_body;
use crate::reason::FailureCode;
use crate::s3::{RetryPolicy, S3Failure, classify, with_retries};

/// Largest manifest read (a manifest lists one line per data file).
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;

/// One object of the delivery: where it is, and its `s3://` address for messages.
#[derive(Debug, Clone)]
pub struct Object<'a> {
    pub client: &'a Client,
    pub bucket: &'a str,
    pub key: &'a str,
    pub owner: Option<&'a str>,
    pub retry: &'a RetryPolicy,
    pub url: &'a str,
}

impl Object<'_> {
    /// The object's GET, naming the bucket's expected owner.
    async fn get(&self) -> Result<GetObjectOutput, S3Failure> {
        self.client
            .get_object()
            .bucket(self.bucket)
            .key(self.key)
            .set_expected_bucket_owner(self.owner.map(str::to_string))
            .send()
            .await
            .map_err(|e| classify(&e))
    }

    /// A read of this object that failed (after its retries).
    fn read_failed(&self, failure: S3Failure) -> InventoryError {
        InventoryError::Read {
            url: self.url.to_string(),
            failure,
        }
    }
}

/// The bucket and key of an `s3://BUCKET/KEY` address.
pub fn parse_url(url: &str) -> Result<(String, String), InventoryError> {
    url.strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .filter(|(bucket, key)| !bucket.is_empty() && !key.is_empty())
        .map(|(bucket, key)| (bucket.to_string(), key.to_string()))
        .ok_or_else(|| InventoryError::BadUrl { url: url.to_string() })
}

/// The whole object, at most [`MAX_MANIFEST_BYTES`].
pub async fn read_manifest(o: &Object<'_>) -> Result<Vec<u8>, InventoryError> {
    let (result, _) = with_retries(o.retry, || async {
        let out = o.get().await?;
        collect_body(out.body, out.content_length, MAX_MANIFEST_BYTES)
            .await
            .map_err(|e| match e {
                crate::bounded::ReadError::Failed(message) => S3Failure::Retryable {
                    code: FailureCode::BodyRead,
                    message,
                },
                other => S3Failure::Fatal {
                    code: FailureCode::InvalidResponse,
                    message: other.to_string(),
                },
            })
    })
    .await;
    result.map_err(|failure| o.read_failed(failure))
}

/// Streams the object to `dest` (replaced), retrying a broken body from the start, and
/// checks its MD5 against `md5` (lowercase hex) when given.
pub async fn download(o: &Object<'_>, dest: &Path, md5: Option<&str>) -> Result<(), InventoryError> {
    let (result, _) = with_retries(o.retry, || async {
        let mut out = o.get().await?;
        let local = |e: std::io::Error| S3Failure::Fatal {
            code: FailureCode::LocalIo,
            message: format!("{}: {e}", dest.display()),
        };
        let mut file = tokio::fs::File::create(dest).await.map_err(local)?;
        let mut hasher = Md5::new();
        while let Some(chunk) = out.body.try_next().await.map_err(|e| S3Failure::Retryable {
            code: FailureCode::BodyRead,
            message: e.to_string(),
        })? {
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(local)?;
        }
        file.flush().await.map_err(local)?;
        Ok(hex::encode(hasher.finalize()))
    })
    .await;
    let actual = result.map_err(|failure| o.read_failed(failure))?;
    match md5 {
        Some(expected) if expected != actual => Err(InventoryError::Data {
            url: o.url.to_string(),
            message: format!(
                "MD5 {actual} differs from the manifest's MD5checksum {expected:?}: the file is \
                 damaged or not the one the manifest lists"
            ),
        }),
        _ => Ok(()),
    }
}
