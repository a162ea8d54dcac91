//! The delete step: an object removed at the source, removed from the targets its org's
//! policy names ([`remove`]), when the org's `deletes` asks for it. Beside the copy step
//! ([`super::deliver`]) and through the same client: the org's role when it has one.
//!
//! Three rules keep a delete from undoing anything newer or anything it cannot undo:
//! 1. the source must still be gone: a HEAD of the source key that finds it (a later
//!    upload) makes the removal `superseded`, and nothing is deleted;
//! 2. the target must be the export of what was removed: where the removed version is
//!    known (a delete marker's event on a versioned source: the version below the marker),
//!    the target's ETag or full-object checksum must be that version's; otherwise the
//!    target must have been written no later than the removal (second precision, as a HEAD
//!    reads it). A target that is not is `skipped`, and so is one that is already gone;
//! 3. `propagate` deletes only in buckets that keep versions (the delete leaves a marker
//!    that can be undone): another bucket fails the target with `DstBucketNotVersioned`;
//!    `propagate-unversioned` deletes there too.

use crate::config::{Deletes, Org};
use crate::destination::{CopyOptions, Destination, Existing, S3Destination};
use crate::event::SourceObject;
use crate::exporter::Exporter;
use crate::reason::{FailureCode, ReasonCode};
use crate::report::{Outcome, TargetReport, rfc3339_ms};
use crate::route::Target;
use crate::s3::S3Failure;
use crate::s3::roles::AssumeRoleFailed;

use super::{OrgDestination, org_destination};

/// What the removal removed, as far as it can be known: what a target must match.
#[derive(Debug, Clone, PartialEq)]
pub enum Removed {
    /// The version a delete marker hid (its ETag and checksum).
    Version(Existing),
    /// Only when: the event's time, in milliseconds since the Unix epoch.
    At(i64),
    /// Neither (an event without a readable time).
    Unknown,
}

/// Whether `target` is the export of what was `removed` (rule 2): `Ok` to delete it, or why
/// not.
pub fn is_export_of(target: &Existing, removed: &Removed) -> Result<(), String> {
    match removed {
        Removed::Version(version) => {
            if target.etag.is_some() && target.etag == version.etag {
                return Ok(());
            }
            let full = |e: &Existing| e.checksum.clone().filter(|c| c.full_object).map(|c| c.checksum);
            if let (Some(ours), Some(theirs)) = (full(target), full(version))
                && ours == theirs
            {
                return Ok(());
            }
            Err(format!(
                "the target is not the export of the removed version (its ETag {}, the removed version's {}); not deleted",
                target.etag.as_deref().unwrap_or("-"),
                version.etag.as_deref().unwrap_or("-"),
            ))
        }
        Removed::At(event_ms) => {
            let Some(written) = target.last_modified else {
                return Err(
                    "the target has no Last-Modified to compare with the removal's time; not deleted".into(),
                );
            };
            // A HEAD reads whole seconds: compare at that precision.
            if written.secs() <= event_ms.div_euclid(1000) {
                Ok(())
            } else {
                Err(format!(
                    "the target was written after the removal (at {written}); not deleted"
                ))
            }
        }
        Removed::Unknown => {
            Err("the removal has no event time to compare the target with; not deleted".into())
        }
    }
}

/// One target's report: `outcome`, with `reason`.
fn target_report(target: &Target, outcome: Outcome, reason: Option<String>, attempts: u32) -> TargetReport {
    TargetReport {
        destination_bucket: target.bucket.clone(),
        destination_key: target.key.clone(),
        outcome,
        reason,
        error_code: None,
        reason_code: None,
        bytes: None,
        attempts,
        checksum: None,
        retryable: false,
        change: None,
    }
}

/// The same report for every target.
fn each(targets: &[Target], report: impl Fn(&Target) -> TargetReport) -> Vec<TargetReport> {
    targets.iter().map(report).collect()
}

/// A target's failure: `code` (of `reason`), retryable or not.
fn failed(
    target: &Target,
    code: FailureCode,
    message: String,
    retryable: bool,
    role: Option<&str>,
) -> TargetReport {
    let mut report = target_report(target, Outcome::Failed, None, 0);
    report.reason_code = Some(code.reason());
    report.error_code = Some(code.to_string());
    report.retryable = retryable;
    report.reason = Some(match role {
        Some(arn) => format!("{code}: {message} (as role {arn})"),
        None => format!("{code}: {message}"),
    });
    report
}

fn from_s3(target: &Target, failure: S3Failure, role: Option<&str>) -> TargetReport {
    match failure {
        S3Failure::Retryable { code, message } => failed(target, code, message, true, role),
        S3Failure::Fatal { code, message } => failed(target, code, message, false, role),
        S3Failure::SourceChanged(change) => {
            failed(target, FailureCode::HeadFailed, change.to_string(), false, role)
        }
    }
}

/// Removes what `org`'s policy named for the removed `object` (`targets`) where the org's
/// copies go (as its role when it has one), by the rules above. One report per target, in
/// `targets`' order. Fails only when the org's role cannot be assumed (then nothing was
/// sent).
pub async fn remove(
    exporter: &Exporter,
    org: &Org,
    object: &SourceObject,
    targets: &[Target],
    options: &CopyOptions,
) -> Result<Vec<TargetReport>, AssumeRoleFailed> {
    let destination = org_destination(exporter, Some(org)).await?;
    let (s3, role): (&S3Destination, Option<&str>) = match &destination {
        OrgDestination::Role(s3, arn) => (s3, Some(*arn)),
        OrgDestination::Shared(Destination::S3(s3)) => (s3, None),
        OrgDestination::Shared(Destination::Folder(_)) => {
            let why = "deletes are not propagated in local mode";
            return Ok(each(targets, |t| {
                target_report(t, Outcome::Skipped, Some(why.into()), 0)
            }));
        }
    };
    // Rule 1: an older removal never undoes a newer upload.
    match s3.source_exists(&object.bucket, &object.key, options).await {
        Ok(false) => {}
        Ok(true) => {
            let why = "the source exists again (a later upload); nothing deleted";
            return Ok(each(targets, |t| {
                target_report(t, Outcome::Superseded, Some(why.into()), 1)
            }));
        }
        Err(failure) => return Ok(each(targets, |t| from_s3(t, failure.clone(), role))),
    }
    // Rule 2: what was removed, once for every target.
    let marker = object
        .version_id
        .as_deref()
        .filter(|_| object.event_name == "ObjectRemoved:DeleteMarkerCreated");
    let version = match marker {
        Some(marker) => match s3
            .version_below_marker(&object.bucket, &object.key, marker, options)
            .await
        {
            Ok(version) => version,
            Err(failure) => return Ok(each(targets, |t| from_s3(t, failure.clone(), role))),
        },
        None => None,
    };
    let removed = match (version, object.event_time.as_deref().and_then(rfc3339_ms)) {
        (Some(version), _) => Removed::Version(version),
        (None, Some(at)) => Removed::At(at),
        (None, None) => Removed::Unknown,
    };
    let reports = futures::future::join_all(
        targets
            .iter()
            .map(|target| remove_target(s3, org.deletes, target, &removed, options, role)),
    )
    .await;
    Ok(reports)
}

/// Rules 3 and 2 for one target, then its `DeleteObject`.
async fn remove_target(
    s3: &S3Destination,
    deletes: Deletes,
    target: &Target,
    removed: &Removed,
    options: &CopyOptions,
    role: Option<&str>,
) -> TargetReport {
    let owner = options.write.owner_of(&target.bucket);
    if deletes == Deletes::Propagate {
        match s3.keeps_versions(&target.bucket, owner, &options.retry).await {
            Ok(true) => {}
            Ok(false) => {
                let mut report = target_report(target, Outcome::Failed, None, 1);
                report.reason_code = Some(ReasonCode::DstBucketNotVersioned);
                report.error_code = Some(FailureCode::DstBucketNotVersioned.to_string());
                report.reason = Some(format!(
                    "DstBucketNotVersioned: destination bucket {} does not keep versions, so a delete there could not be undone; enable versioning on it, or set the org's deletes to \"propagate-unversioned\"",
                    target.bucket
                ));
                return report;
            }
            Err(failure) => return from_s3(target, failure, role),
        }
    }
    let existing = match s3.existing(target, owner, &options.retry).await {
        Ok(Some(existing)) => existing,
        Ok(None) => {
            let why = format!(
                "nothing to delete: s3://{}/{} does not exist",
                target.bucket, target.key
            );
            return target_report(target, Outcome::Skipped, Some(why), 1);
        }
        Err(failure) => return from_s3(target, failure, role),
    };
    if let Err(why) = is_export_of(&existing, removed) {
        return target_report(target, Outcome::Skipped, Some(why), 1);
    }
    match s3.delete(target, owner, &options.retry).await {
        (Ok(()), attempts) => target_report(target, Outcome::Deleted, None, attempts),
        (Err(failure), attempts) => TargetReport {
            attempts,
            ..from_s3(target, failure, role)
        },
    }
}

#[cfg(test)]
mod tests {
    use aws_smithy_types::DateTime;

    use super::*;
    use crate::destination::checksum::{Checksum, ObjectChecksum};
    use crate::destination::{Precision, Sse};

    fn existing(etag: &str, checksum: Option<(&str, bool)>, secs: i64) -> Existing {
        Existing {
            size: Some(1),
            etag: Some(etag.into()),
            last_modified: Some(DateTime::from_secs(secs)),
            precision: Precision::Seconds,
            headed: true,
            checksum: checksum.map(|(value, full_object)| ObjectChecksum {
                checksum: Checksum {
                    algorithm: "CRC64NVME".into(),
                    value: value.into(),
                },
                full_object,
            }),
            sse: Sse::NotKms,
        }
    }

    #[test]
    fn a_known_version_is_matched_by_etag_or_full_object_checksum() {
        let removed = Removed::Version(existing("a", Some(("crc", true)), 0));
        assert_eq!(is_export_of(&existing("a", None, 9), &removed), Ok(()));
        assert_eq!(
            is_export_of(&existing("multipart-2", Some(("crc", true)), 9), &removed),
            Ok(())
        );
        let other = is_export_of(&existing("b", Some(("other", true)), 9), &removed).unwrap_err();
        assert!(other.contains("its ETag b, the removed version's a"), "{other}");
        // A composite checksum says nothing about the bytes.
        let composite = Removed::Version(existing("a", Some(("crc", false)), 0));
        assert!(is_export_of(&existing("b", Some(("crc", false)), 9), &composite).is_err());
    }

    #[test]
    fn otherwise_the_target_must_be_no_newer_than_the_removal() {
        let removal = Removed::At(100_500);
        assert_eq!(is_export_of(&existing("a", None, 99), &removal), Ok(()));
        assert_eq!(is_export_of(&existing("a", None, 100), &removal), Ok(()));
        let newer = is_export_of(&existing("a", None, 101), &removal).unwrap_err();
        assert!(newer.contains("written after the removal"), "{newer}");
        assert!(is_export_of(&existing("a", None, 1), &Removed::Unknown).is_err());
    }
}
