//! Multipart server-side copy for objects above the `CopyObject` threshold.
//!
//! Multipart copy does not carry the source's metadata or tags, so they are read from the
//! source (conditionally on its ETag) and set explicitly on the new upload (the same
//! properties a single copy writes: [`super::properties`]). Parts are copied
//! concurrently; any failure aborts the upload so no orphaned parts keep costing storage.

use std::time::SystemTime;

use aws_sdk_s3::Client;
use aws_sdk_s3::operation::complete_multipart_upload::builders::CompleteMultipartUploadFluentBuilder;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::builders::CompletedPartBuilder;
use aws_sdk_s3::types::{ChecksumType, CompletedMultipartUpload, CompletedPart};
use futures::StreamExt;

use super::checksum::{Checksum, first_checksum};
use super::lock_config::with_allowed_lock;
use super::s3::{
    CopyJob, SourceFacts, acl_header, checksum_mismatch, head_source, single_copy, sse_headers,
    storage_class_to_send,
};
use super::tags::{merged, source_tags, tagging_header};
use super::upload::{self, Expected, UploadAt};
use super::{Copied, CopyOptions, StopReason};
use crate::s3::client::copy_request;
use crate::s3::keys::copy_source;
use crate::s3::limits::{MAX_PARTS, MIN_PART_SIZE};
use crate::s3::{Retryable, S3Failure, classify, if_match, with_retries};

/// Part size for an object of `size` bytes: the preferred size, raised (to whole MiB) as far
/// as needed to stay within [`MAX_PARTS`], and never below S3's 5 MiB minimum.
pub fn part_size_for(size: u64, preferred: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    preferred.max(needed).max(MIN_PART_SIZE)
}

/// The most attempts any one request of a copy took, kept while its steps run.
#[derive(Default)]
struct Attempts(u32);

impl Attempts {
    /// Notes a step's attempts and hands its result on.
    fn note<T>(&mut self, (result, attempts): (Result<T, S3Failure>, u32)) -> Result<T, S3Failure> {
        self.0 = self.0.max(attempts);
        result
    }
}

/// Heads the source (if-match), then copies it whole when it turns out to fit under the
/// threshold, or part by part. Returns the result and the attempts of the most-retried request.
/// `client` reads the source (its HEAD, tags and the copy requests) and writes: the
/// function's, or an org's role.
pub(super) async fn copy(
    client: &Client,
    job: &CopyJob<'_>,
    options: &CopyOptions,
    threshold: u64,
) -> (Result<Copied, S3Failure>, u32) {
    let mut attempts = Attempts::default();
    let result = copy_steps(client, job, options, threshold, &mut attempts).await;
    (result, attempts.0)
}

async fn copy_steps(
    client: &Client,
    job: &CopyJob<'_>,
    options: &CopyOptions,
    threshold: u64,
    attempts: &mut Attempts,
) -> Result<Copied, S3Failure> {
    let policy = &options.retry;
    let fetched;
    let head = match &options.source_head {
        Some(read_ahead) => &*read_ahead.0,
        None => {
            fetched = attempts
                .note(head_source(client, job.source_bucket, job.source_key, job.etag, options).await)?;
            &fetched
        }
    };
    let size = head.content_length().unwrap_or(0).max(0) as u64;
    let etag = head
        .e_tag()
        .map(|e| e.trim_matches('"').to_string())
        .or_else(|| job.etag.map(str::to_string));
    let job = CopyJob {
        size: Some(size),
        etag: etag.as_deref(),
        ..*job
    };
    let facts = SourceFacts::from_head(head);
    if size <= threshold {
        return attempts.note(single_copy(client, &job, &facts, options).await);
    }
    if let Some(reason) = options.stop.reason() {
        // Told to stop before the upload exists: nothing to abort, nothing started.
        return Err(stopped(reason));
    }
    let properties =
        with_allowed_lock(client, facts.properties.clone(), job.destination_bucket, options).await?;
    let tagging = attempts.note(with_retries(policy, || read_tagging(client, &job, options)).await)?;
    let write = &options.write;
    let class = storage_class_to_send(write, &facts, job.options);
    let (sse, kms_key, bucket_key) = sse_headers(write.encryption.as_ref());
    let owner = write.owner_of(job.destination_bucket).map(str::to_string);
    // A full-object CRC carries over: S3 combines the parts' CRCs and refuses to complete
    // an upload whose result differs from the source's value.
    let full_object = facts
        .checksum
        .as_ref()
        .filter(|c| c.fits_multipart())
        .map(|c| &c.checksum);
    let at = UploadAt {
        client: client.clone(),
        bucket: job.destination_bucket.to_string(),
        key: job.destination_key.to_string(),
        owner: owner.clone(),
        policy: *policy,
    };
    let began = SystemTime::now();
    let request = properties
        .on_create(client.create_multipart_upload())
        .bucket(job.destination_bucket)
        .key(job.destination_key)
        .set_tagging(tagging)
        .set_storage_class(class)
        .set_server_side_encryption(sse)
        .set_ssekms_key_id(kms_key)
        .set_bucket_key_enabled(bucket_key)
        .set_acl(acl_header(write.acl))
        .set_checksum_algorithm(full_object.map(Checksum::sdk_algorithm))
        .set_checksum_type(full_object.map(|_| ChecksumType::FullObject))
        .set_expected_bucket_owner(owner.clone());
    // From here on the upload is aborted unless it is completed, whatever ends the copy.
    let upload = attempts.note(upload::create(&at, request, &options.aborts).await)?;
    let upload_id = upload.id().to_string();
    let parts_and_complete = async {
        let parts = attempts.note(copy_parts(client, &job, head, size, &upload_id, options).await)?;
        let count = parts.len();
        let (completed, tries) = with_retries(policy, || async {
            let request = client
                .complete_multipart_upload()
                .bucket(job.destination_bucket)
                .key(job.destination_key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts.clone()))
                        .build(),
                )
                .set_expected_bucket_owner(owner.clone());
            with_full_object_checksum(request, full_object)
                .customize()
                .config_override(copy_request(options.timeouts))
                .send()
                .await
                .map_err(|e| classify(&e))
        })
        .await;
        let lost_answer =
            completed.is_err() && (tries > 1 || completed.as_ref().is_err_and(|f| f.is_retryable()));
        let completed = match attempts.note((completed, tries)) {
            Ok(completed) => completed,
            // An attempt whose answer was lost may have completed the upload (its retry
            // then finds none): the destination tells. The upload is aborted either way, and
            // a copy not in place is worth another try of the record (NoSuchUpload included).
            Err(failure) if lost_answer => {
                let expected = Expected {
                    size,
                    parts: count,
                    checksum: full_object,
                    began,
                };
                return match upload::found_in_place(&at, &expected).await {
                    Some(copied) => Ok((copied, false)),
                    None => Err(upload::not_in_place(failure)),
                };
            }
            Err(failure) => return Err(failure),
        };
        // Servers that do not echo it: the value S3 was given to check at completion.
        let checksum = first_checksum!(&completed).or_else(|| full_object.cloned());
        if let (Some(expected), Some(got)) = (full_object, &checksum)
            && got.algorithm == expected.algorithm
            && got.value != expected.value
        {
            return Err(checksum_mismatch(expected, got));
        }
        let copied = Copied {
            bytes: Some(size),
            parts: Some(count),
            checksum,
        };
        Ok((copied, true))
    };
    // The deadline or an interrupt ends the copy here, not by dropping it: the upload is
    // aborted below either way, so no incomplete upload keeps costing storage.
    let completed = tokio::select! {
        completed = parts_and_complete => completed,
        reason = options.stop.stopped() => Err(stopped(reason)),
    };
    match completed {
        Ok((copied, true)) => {
            upload.completed();
            Ok(copied)
        }
        Ok((copied, false)) => {
            upload.abort().await;
            Ok(copied)
        }
        Err(failure) => {
            upload.abort().await;
            Err(failure)
        }
    }
}

/// The failure of a copy cut short by `reason` (retryable: it is done next time).
fn stopped(reason: StopReason) -> S3Failure {
    S3Failure::Retryable {
        code: reason.code(),
        message: reason.message().into(),
    }
}

async fn copy_parts(
    client: &Client,
    job: &CopyJob<'_>,
    head: &HeadObjectOutput,
    size: u64,
    upload_id: &str,
    options: &CopyOptions,
) -> (Result<Vec<CompletedPart>, S3Failure>, u32) {
    let part_size = part_size_for(size, options.part_size);
    let source = copy_source(job.source_bucket, job.source_key);
    let condition = job.etag.or(head.e_tag()).map(|e| if_match(e.trim_matches('"')));
    let ranges = (0..size.div_ceil(part_size)).map(|i| {
        let start = i * part_size;
        let end = (start + part_size).min(size) - 1;
        (i as i32 + 1, format!("bytes={start}-{end}"))
    });
    let mut in_flight = futures::stream::iter(ranges)
        .map(|(number, range)| {
            let (source, condition) = (&source, &condition);
            async move {
                let (result, attempts) = with_retries(&options.retry, || async {
                    client
                        .upload_part_copy()
                        .bucket(job.destination_bucket)
                        .key(job.destination_key)
                        .upload_id(upload_id)
                        .part_number(number)
                        .copy_source(source)
                        .copy_source_range(&range)
                        .set_copy_source_if_match(condition.clone())
                        .set_expected_bucket_owner(
                            options.write.owner_of(job.destination_bucket).map(str::to_string),
                        )
                        .set_expected_source_bucket_owner(options.source_owner.clone())
                        .customize()
                        .config_override(copy_request(options.timeouts))
                        .send()
                        .await
                        .map_err(|e| classify(&e))
                })
                .await;
                let part = result.map(|out| {
                    let result = out.copy_part_result();
                    let part = CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(result.and_then(|r| r.e_tag()).map(str::to_string));
                    // A part's checksum (S3 computes one when the upload has an algorithm)
                    // goes into the completion, as S3 asks.
                    part_with_checksum(part, result.and_then(Checksum::from_part_result)).build()
                });
                (part, attempts)
            }
        })
        .buffer_unordered(options.part_concurrency);
    let mut parts = Vec::new();
    let mut max_attempts = 1;
    while let Some((part, attempts)) = in_flight.next().await {
        max_attempts = max_attempts.max(attempts);
        match part {
            Ok(part) => parts.push(part),
            // Dropping the stream cancels the parts still in flight.
            Err(failure) => return (Err(failure), max_attempts),
        }
    }
    parts.sort_by_key(|p| p.part_number());
    (Ok(parts), max_attempts)
}

/// The copy's `Tagging` header: the source's tags (none when the server does not implement
/// tagging: Garage answers 501), with what the target adds merged in.
async fn read_tagging(
    client: &Client,
    job: &CopyJob<'_>,
    options: &CopyOptions,
) -> Result<Option<String>, S3Failure> {
    let source = source_tags(
        client,
        job.source_bucket,
        job.source_key,
        options.source_owner.as_deref(),
    )
    .await?
    .unwrap_or_else(|| {
        tracing::debug!("source server does not implement object tagging; copying without its tags");
        Vec::new()
    });
    Ok(tagging_header(&merged(source, &job.options.tags)?))
}

/// `request` carrying the source's full-object checksum, so S3 refuses a different result.
fn with_full_object_checksum(
    request: CompleteMultipartUploadFluentBuilder,
    checksum: Option<&Checksum>,
) -> CompleteMultipartUploadFluentBuilder {
    let Some(checksum) = checksum else {
        return request;
    };
    let value = checksum.value.clone();
    let request = request.checksum_type(ChecksumType::FullObject);
    match checksum.algorithm.as_str() {
        "CRC64NVME" => request.checksum_crc64_nvme(value),
        "CRC32" => request.checksum_crc32(value),
        "CRC32C" => request.checksum_crc32_c(value),
        _ => request,
    }
}

/// `part` with its checksum from `UploadPartCopy`'s answer, when S3 gave one.
fn part_with_checksum(part: CompletedPartBuilder, checksum: Option<Checksum>) -> CompletedPartBuilder {
    let Some(Checksum { algorithm, value }) = checksum else {
        return part;
    };
    match algorithm.as_str() {
        "CRC64NVME" => part.checksum_crc64_nvme(value),
        "CRC32" => part.checksum_crc32(value),
        "CRC32C" => part.checksum_crc32_c(value),
        "SHA256" => part.checksum_sha256(value),
        "SHA1" => part.checksum_sha1(value),
        _ => part,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn part_size_stays_within_ten_thousand_parts() {
        assert_eq!(part_size_for(6 * 1024 * MIB, 256 * MIB), 256 * MIB);
        let five_tib = 5 * 1024 * 1024 * MIB;
        let size = part_size_for(five_tib, 256 * MIB);
        assert!(five_tib.div_ceil(size) <= MAX_PARTS);
        assert_eq!(size % MIB, 0);
        assert_eq!(part_size_for(12 * MIB, MIN_PART_SIZE), MIN_PART_SIZE);
        assert_eq!(part_size_for(12 * MIB, 1), MIN_PART_SIZE);
    }
}
