//! Destination buckets: server-side copy of one object, `CopyObject` up to the threshold,
//! multipart `UploadPartCopy` above it. Object bytes never pass through this process.
//!
//! Every request is conditional on the ETag the event announced
//! (`x-amz-copy-source-if-match`), so a late or duplicated event can never put an older
//! version over a newer one: a 412 becomes [`CopyError::Superseded`].

use aws_sdk_s3::Client;
use aws_sdk_s3::error::SdkError;
use aws_smithy_types::DateTime;

use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::{
    ChecksumMode, ObjectCannedAcl, ServerSideEncryption, StorageClass as SdkStorageClass, TaggingDirective,
};

use super::checksum::{Checksum, ObjectChecksum};
use super::lock_config::with_allowed_lock;
use super::properties::SourceProperties;
use super::tags::{merged, source_tags, tagging_header};
use super::{Copied, CopyError, CopyOptions, Delivery, SourceHead, WriteOptions, multipart};
use crate::config::{CannedAcl, Encryption, StorageClass};
use crate::event::SourceObject;
use crate::reason::FailureCode;
use crate::route::{Target, TargetOptions};
use crate::s3::client::copy_request;
use crate::s3::keys::copy_source;
use crate::s3::limits::{COPY_OBJECT_LIMIT, MIN_PART_SIZE};
use crate::s3::{RetryPolicy, S3Failure, SourceChange, classify, if_match, with_retries};

/// The destination buckets, written through one client (the function's, or an org's role)
/// that also reads the source (HEAD, tags, the copies' own reads): whoever copies reads
/// what it copies, never with another principal's rights.
#[derive(Clone)]
pub struct S3Destination {
    client: Client,
}

/// What a HEAD or a listing found of one object: a destination key, or the source as the
/// in-place rule ([`crate::backfill::in_place::already_copied`]) compares it.
#[derive(Debug, Clone, PartialEq)]
pub struct Existing {
    /// Size in bytes.
    pub size: Option<u64>,
    /// ETag without quotes.
    pub etag: Option<String>,
    /// Last-Modified.
    pub last_modified: Option<DateTime>,
    /// What `last_modified` resolves: milliseconds from a listing, whole seconds from a
    /// HEAD (an HTTP date).
    pub precision: Precision,
    /// Read by a HEAD with checksum mode: only then are `checksum` and `sse` what S3 keeps
    /// (a listing shows neither).
    pub headed: bool,
    /// Its checksum, when S3 keeps one (and a HEAD read it).
    pub checksum: Option<ObjectChecksum>,
    /// Its server-side encryption, as far as known.
    pub sse: Sse,
}

/// The precision of a Last-Modified as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Whole seconds: a HEAD's `Last-Modified` header (an HTTP date).
    Seconds,
    /// Milliseconds: a listing's `LastModified`.
    Millis,
}

/// An object's server-side encryption, as far as it decides what its ETag is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sse {
    /// Not known: a listing does not show it.
    Unknown,
    /// Unencrypted or SSE-S3 (`AES256`): a single-part object's ETag is the MD5 of its bytes.
    NotKms,
    /// SSE-KMS, DSSE-KMS or SSE-C (from a HEAD; or, for a listed copy, what its org writes):
    /// its ETag is not the MD5 of its bytes.
    Kms,
}

impl Existing {
    /// What a HEAD made with `ChecksumMode::Enabled` says.
    pub fn from_head(head: &HeadObjectOutput) -> Self {
        let kms = head.sse_customer_algorithm().is_some()
            || matches!(
                head.server_side_encryption(),
                Some(ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse)
            );
        Existing {
            size: head.content_length().and_then(|s| u64::try_from(s).ok()),
            etag: head.e_tag().map(|e| e.trim_matches('"').to_string()),
            last_modified: head.last_modified().copied(),
            precision: Precision::Seconds,
            headed: true,
            checksum: ObjectChecksum::from_head(head),
            sse: if kms { Sse::Kms } else { Sse::NotKms },
        }
    }

    /// What a listing says: size, ETag and Last-Modified (milliseconds).
    pub fn listed(size: Option<i64>, etag: Option<&str>, last_modified: Option<DateTime>) -> Self {
        Existing {
            size: size.and_then(|s| u64::try_from(s).ok()),
            etag: etag.map(|e| e.trim_matches('"').to_string()),
            last_modified,
            precision: Precision::Millis,
            headed: false,
            checksum: None,
            sse: Sse::Unknown,
        }
    }

    /// This HEAD's facts, with `listed`'s Last-Modified in milliseconds when both read the
    /// same object: same ETag and size, and the HEAD's second is the listing's.
    pub fn sharpened_by(mut self, listed: &Existing) -> Self {
        let same_second = match (self.last_modified, listed.last_modified) {
            (Some(head), Some(listing)) => head.secs() == listing.secs(),
            _ => false,
        };
        if listed.precision == Precision::Millis
            && same_second
            && self.etag.is_some()
            && self.etag == listed.etag
            && self.size == listed.size
        {
            self.last_modified = listed.last_modified;
            self.precision = Precision::Millis;
        }
        self
    }
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
    /// The target's own storage class and added tags (a 0.2 plugin's).
    pub options: &'a TargetOptions,
}

impl S3Destination {
    /// Copies with `client`.
    pub fn new(client: Client) -> Self {
        S3Destination { client }
    }

    /// The same destination with every request made by `client` (an org's role): copies,
    /// destination HEADs, and every read of the source (`CopyObject` and `UploadPartCopy`,
    /// the source's HEAD and tags, [`S3Destination::read_source_head`],
    /// [`S3Destination::source_head`]).
    pub fn as_role(&self, client: Client) -> Self {
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
            options: &target.options,
        };
        let threshold = copy_threshold(options);
        // Heads the source first (unless read ahead), then picks single or multipart.
        let (result, attempts) = multipart::copy(&self.client, &job, options, threshold).await;
        Delivery {
            target: target.clone(),
            result: result.map_err(CopyError::from),
            attempts,
        }
    }

    /// The source object's tags as this destination's principal reads them, for a 0.2
    /// plugin's `tags`: an error names why there are none to give (no tagging on the
    /// server, access denied, gone).
    pub async fn read_source_tags(
        &self,
        object: &SourceObject,
        owner: Option<&str>,
    ) -> Result<Vec<(String, String)>, String> {
        match source_tags(&self.client, &object.bucket, &object.key, owner).await {
            Ok(Some(mut tags)) => {
                // In key order: the same object gives a plugin the same list, whatever order
                // the server keeps.
                tags.sort();
                Ok(tags)
            }
            Ok(None) => Err("the source server does not implement object tagging (GetObjectTagging answered NotImplemented)".into()),
            Err(failure) => Err(format!("GetObjectTagging failed: {failure}")),
        }
    }

    /// The source's HEAD as a copy takes it (if-match on the object's ETag, checksum
    /// included), read ahead so the copy need not wait for it; `None` when it failed (the
    /// copy then reads it itself, and reports what goes wrong).
    pub async fn read_source_head(&self, object: &SourceObject, options: &CopyOptions) -> Option<SourceHead> {
        let (result, _attempts) = head_source(
            &self.client,
            &object.bucket,
            &object.key,
            object.etag.as_deref(),
            options,
        )
        .await;
        result.ok().map(|head| SourceHead(std::sync::Arc::new(head)))
    }

    /// The source as a HEAD conditional on the object's ETag reads it (checksum and
    /// encryption included): what the in-place rule compares when the listings cannot
    /// decide. Read with the copies' client (an org's role, see [`S3Destination::as_role`]):
    /// what counts as in place is what the copier can read. A source changed since it was
    /// listed fails with `SourceChanged`. With the HEAD itself, for the copy that may follow
    /// (`CopyOptions::source_head`: no second HEAD of the same source).
    pub async fn source_head(
        &self,
        object: &SourceObject,
        options: &CopyOptions,
    ) -> Result<(Existing, SourceHead), S3Failure> {
        let (result, _attempts) = head_source(
            &self.client,
            &object.bucket,
            &object.key,
            object.etag.as_deref(),
            options,
        )
        .await;
        result.map(|head| (Existing::from_head(&head), SourceHead(std::sync::Arc::new(head))))
    }

    /// Looks up `target` (with its checksum; `owner`: the account that must own the
    /// bucket): `Ok(None)` when there is no such object.
    pub async fn existing(
        &self,
        target: &Target,
        owner: Option<&str>,
        retry: &RetryPolicy,
    ) -> Result<Option<Existing>, S3Failure> {
        let (result, _attempts) = with_retries(retry, || async {
            match self
                .client
                .head_object()
                .bucket(&target.bucket)
                .key(&target.key)
                .checksum_mode(ChecksumMode::Enabled)
                .set_expected_bucket_owner(owner.map(str::to_string))
                .send()
                .await
            {
                Ok(out) => Ok(Some(Existing::from_head(&out))),
                Err(SdkError::ServiceError(context)) if context.raw().status().as_u16() == 404 => Ok(None),
                Err(e) => Err(match classify(&e) {
                    // classify reads a 404 as a vanished *source*; here any other failure is
                    // just a failed check.
                    S3Failure::SourceChanged(why) => S3Failure::Fatal {
                        code: FailureCode::HeadFailed,
                        message: why.to_string(),
                    },
                    other => other,
                }),
            }
        })
        .await;
        result
    }
}

/// The largest object one `CopyObject` copies under `options`: never less than one part
/// (a range copy needs a source over 5 MiB; `Settings` refuses a lower threshold too).
fn copy_threshold(options: &CopyOptions) -> u64 {
    options
        .multipart_threshold
        .clamp(MIN_PART_SIZE, COPY_OBJECT_LIMIT)
}

/// The source's HEAD as every copy reads it: conditional on `etag` (if-match), checksum
/// included, naming the source bucket's expected owner; retried per `options.retry`. With
/// the attempts of the most-retried try.
///
/// A HEAD's 404 has no body, so it cannot say whether the key or the whole bucket is
/// missing: after a 404 the bucket is asked for, and a missing source bucket is a failure
/// (`NoSuchBucket`, a configuration problem), not a source deleted since the event.
pub(super) async fn head_source(
    client: &Client,
    bucket: &str,
    key: &str,
    etag: Option<&str>,
    options: &CopyOptions,
) -> (Result<HeadObjectOutput, S3Failure>, u32) {
    let (result, attempts) = head_source_object(client, bucket, key, etag, options).await;
    match result {
        Err(S3Failure::SourceChanged(SourceChange::Deleted)) => {
            let (bucket_exists, _) = with_retries(&options.retry, || async {
                match client
                    .head_bucket()
                    .bucket(bucket)
                    .set_expected_bucket_owner(options.source_owner.clone())
                    .send()
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 404 => Ok(false),
                    Err(e) => Err(classify(&e)),
                }
            })
            .await;
            let result = match bucket_exists {
                Ok(false) => Err(S3Failure::Fatal {
                    code: FailureCode::s3("NoSuchBucket"),
                    message: format!("the source bucket {bucket} does not exist"),
                }),
                // The bucket is there (or could not be asked): the key is what is missing.
                Ok(true) | Err(_) => Err(S3Failure::SourceChanged(SourceChange::Deleted)),
            };
            (result, attempts)
        }
        // A HEAD's refusal has no body, so no message: say what was read.
        Err(S3Failure::Fatal { code, message }) if message.is_empty() => (
            Err(S3Failure::Fatal {
                code,
                message: format!("HEAD of the source s3://{bucket}/{key}"),
            }),
            attempts,
        ),
        other => (other, attempts),
    }
}

async fn head_source_object(
    client: &Client,
    bucket: &str,
    key: &str,
    etag: Option<&str>,
    options: &CopyOptions,
) -> (Result<HeadObjectOutput, S3Failure>, u32) {
    with_retries(&options.retry, || async {
        client
            .head_object()
            .bucket(bucket)
            .key(key)
            .set_if_match(etag.map(if_match))
            .checksum_mode(ChecksumMode::Enabled)
            .set_expected_bucket_owner(options.source_owner.clone())
            .send()
            .await
            .map_err(|e| classify(&e))
    })
    .await
}

/// What the source's HEAD told a copy: its storage class, checksum and the properties the
/// copy writes itself.
#[derive(Debug, Clone, Default)]
pub(super) struct SourceFacts {
    /// The source's storage class; `None` for STANDARD (S3 leaves the header out).
    pub storage_class: Option<String>,
    /// The source's checksum.
    pub checksum: Option<ObjectChecksum>,
    /// Headers, metadata, `Expires`, the redirect and the lock, which the copy writes.
    pub properties: SourceProperties,
}

impl SourceFacts {
    /// From a HEAD made with `ChecksumMode::Enabled`.
    pub fn from_head(head: &HeadObjectOutput) -> Self {
        SourceFacts {
            storage_class: head.storage_class().map(|c| c.as_str().to_string()),
            checksum: ObjectChecksum::from_head(head),
            properties: SourceProperties::from_head(head),
        }
    }

    /// The full-object checksum the copy must end with, if the source has one.
    pub fn full_object_checksum(&self) -> Option<&Checksum> {
        self.checksum
            .as_ref()
            .filter(|c| c.full_object)
            .map(|c| &c.checksum)
    }
}

/// The storage class to ask for: the fixed one, or the source's (none for STANDARD, which S3
/// treats as no header).
pub(super) fn storage_class_to_send(
    write: &WriteOptions,
    source: &SourceFacts,
    target: &TargetOptions,
) -> Option<SdkStorageClass> {
    let class = match (&target.storage_class, &write.storage_class) {
        (Some(class), _) => Some(class.as_str()),
        (None, StorageClass::Fixed(class)) => Some(class.as_str()),
        (None, StorageClass::Source) => source.storage_class.as_deref(),
    };
    class.filter(|c| *c != "STANDARD").map(SdkStorageClass::from)
}

/// The encryption headers of `encryption`: (SSE, KMS key id, bucket key).
pub(super) fn sse_headers(
    encryption: Option<&Encryption>,
) -> (Option<ServerSideEncryption>, Option<String>, Option<bool>) {
    match encryption {
        None => (None, None, None),
        Some(Encryption::Aes256) => (Some(ServerSideEncryption::Aes256), None, None),
        Some(Encryption::Kms { key_id, bucket_key }) => {
            (Some(ServerSideEncryption::AwsKms), key_id.clone(), *bucket_key)
        }
    }
}

/// The canned ACL header of `acl`.
pub(super) fn acl_header(acl: Option<CannedAcl>) -> Option<ObjectCannedAcl> {
    acl.map(|a| ObjectCannedAcl::from(a.as_str()))
}

/// The failure of a copy whose checksum differs from the source's.
pub(super) fn checksum_mismatch(expected: &Checksum, got: &Checksum) -> S3Failure {
    S3Failure::Fatal {
        code: FailureCode::ChecksumMismatch,
        message: format!(
            "the copy's {} checksum {} differs from the source's {} {}",
            got.algorithm, got.value, expected.algorithm, expected.value
        ),
    }
}

/// One `CopyObject` with the org's write options and what the source's HEAD told
/// (`source`): the source's class and checksum algorithm are asked for, the source's
/// properties are written (REPLACE: S3's COPY drops the redirect and the lock) and the
/// copy's checksum is compared with the source's.
pub(super) async fn single_copy(
    client: &Client,
    job: &CopyJob<'_>,
    source: &SourceFacts,
    options: &CopyOptions,
) -> (Result<Copied, S3Failure>, u32) {
    let properties =
        match with_allowed_lock(client, source.properties.clone(), job.destination_bucket, options).await {
            Ok(properties) => properties,
            Err(failure) => return (Err(failure), 1),
        };
    let copy_source_path = copy_source(job.source_bucket, job.source_key);
    let write = &options.write;
    let class = storage_class_to_send(write, source, job.options);
    let (sse, kms_key, bucket_key) = sse_headers(write.encryption.as_ref());
    let expected = source.full_object_checksum();
    // Tags a target adds replace the copy's tag set: the source's, merged with them.
    let (tagging_directive, tagging) = match job.options.tags.is_empty() {
        true => (None, None),
        false => {
            let (read, attempts) = with_retries(&options.retry, || {
                source_tags(
                    client,
                    job.source_bucket,
                    job.source_key,
                    options.source_owner.as_deref(),
                )
            })
            .await;
            let merged = read.and_then(|source| merged(source.unwrap_or_default(), &job.options.tags));
            match merged {
                Ok(tags) => (Some(TaggingDirective::Replace), tagging_header(&tags)),
                Err(failure) => return (Err(failure), attempts),
            }
        }
    };
    let (outcome, attempts) = with_retries(&options.retry, || async {
        properties
            .on_copy(client.copy_object())
            .bucket(job.destination_bucket)
            .key(job.destination_key)
            .copy_source(&copy_source_path)
            .set_copy_source_if_match(job.etag.map(if_match))
            .set_storage_class(class.clone())
            .set_tagging_directive(tagging_directive.clone())
            .set_tagging(tagging.clone())
            .set_server_side_encryption(sse.clone())
            .set_ssekms_key_id(kms_key.clone())
            .set_bucket_key_enabled(bucket_key)
            .set_acl(acl_header(write.acl))
            .set_checksum_algorithm(expected.map(Checksum::sdk_algorithm))
            .set_expected_bucket_owner(write.owner_of(job.destination_bucket).map(str::to_string))
            .set_expected_source_bucket_owner(options.source_owner.clone())
            .customize()
            .config_override(copy_request(options.timeouts))
            .send()
            .await
            .map_err(|e| classify(&e))
    })
    .await;
    let outcome = outcome.and_then(|out| {
        let checksum = out.copy_object_result().and_then(Checksum::from_copy_result);
        if let (Some(expected), Some(got)) = (expected, &checksum)
            && got.algorithm == expected.algorithm
            && got.value != expected.value
        {
            return Err(checksum_mismatch(expected, got));
        }
        Ok(Copied {
            bytes: job.size,
            parts: None,
            checksum,
        })
    });
    (outcome, attempts)
}
