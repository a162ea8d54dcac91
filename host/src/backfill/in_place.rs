//! Is the object already at its destination? What makes a backfill idempotent:
//! [`already_copied`], from what a listing or a HEAD says of the source and of its copy
//! (an [`Existing`] each). The destination's HEAD is
//! [`crate::destination::S3Destination::existing`]; the rule is here.
//!
//! Decided by what S3 guarantees, in this order:
//! 1. Sizes differ: not copied.
//! 2. Equal ETags decide when both are plain MD5s (32 hex digits, no `-N` part count) and
//!    neither object is known to be under SSE-KMS (or SSE-C): a single-part object's ETag,
//!    unencrypted or SSE-S3, is the MD5 of its bytes, so an equal ETag names the same
//!    bytes. (An ETag under SSE-KMS is opaque; a multipart upload's, `…-N`, depends on the
//!    part boundaries; a copy made with one `CopyObject` gets a single-part ETag whatever
//!    the source's: so unequal ETags do not mean other bytes.) Two plain MD5s of objects
//!    both known, from HEADs, to be unencrypted or SSE-S3 that differ: not copied.
//! 3. Otherwise full-object checksums (CRC64NVME, CRC32, CRC32C, SHA-1, SHA-256) of the
//!    same algorithm, read by a HEAD with checksum mode, decide: a copy keeps its source's
//!    (S3 computes it again over the bytes it writes, whatever the parts), so equal values
//!    are the same bytes and unequal ones are not.
//! 4. Otherwise the copy is in place when it was written at or after the source was last
//!    modified (same size, rule 1): a source overwritten after the copy is newer, so it is
//!    copied again. The times are compared at the coarser of the two precisions actually
//!    read: milliseconds when both come from listings, whole seconds when either comes from
//!    a HEAD (an HTTP date). Within one second a HEAD cannot tell the order; the copy then
//!    counts as in place.
//!
//! A listing carries neither checksum values nor encryption. Where rule 2 cannot decide
//! from the listings, the answer is [`Copied::ReadHead`]: read the destination with a
//! HEAD, and then, only when the destination has a full-object checksum, the source. So
//! the common case (equal plain ETags) costs no HEAD at all, and an org whose copies are
//! SSE-KMS (the caller marks its listed objects [`Sse::Kms`]) costs one or two per object.

use crate::destination::{Existing, Precision, Sse};

/// What [`already_copied`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copied {
    /// The destination holds the source's bytes: nothing to copy.
    Yes,
    /// It does not, or nothing shows that it does: copy.
    No,
    /// What was read cannot decide: read this side with a HEAD (checksum mode), then ask
    /// again. Never asked for a side already read with a HEAD.
    ReadHead(Side),
}

/// One of the two objects [`already_copied`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The source object.
    Source,
    /// Its copy at the destination.
    Destination,
}

/// Whether `destination` already holds `source` (see the module docs for the rule), or
/// which of the two must be read with a HEAD before that can be said.
pub fn already_copied(source: &Existing, destination: &Existing) -> Copied {
    let Some(size) = source.size else {
        return Copied::No;
    };
    if destination.size != Some(size) {
        return Copied::No;
    }
    if let (Some(src), Some(dst)) = (md5_etag(source), md5_etag(destination)) {
        if src == dst {
            return Copied::Yes;
        }
        if source.sse == Sse::NotKms && destination.sse == Sse::NotKms {
            return Copied::No;
        }
    }
    if !destination.headed {
        return Copied::ReadHead(Side::Destination);
    }
    if let Some(dst) = destination.checksum.as_ref().filter(|c| c.full_object) {
        if !source.headed {
            return Copied::ReadHead(Side::Source);
        }
        if let Some(src) = source
            .checksum
            .as_ref()
            .filter(|c| c.full_object && c.checksum.algorithm == dst.checksum.algorithm)
        {
            return if src.checksum.value == dst.checksum.value {
                Copied::Yes
            } else {
                Copied::No
            };
        }
    }
    match (source.last_modified, destination.last_modified) {
        (Some(src), Some(dst))
            if written_at_or_after((dst, destination.precision), (src, source.precision)) =>
        {
            Copied::Yes
        }
        _ => Copied::No,
    }
}

/// The object's ETag when it is the MD5 of its bytes as far as is known: a plain MD5's
/// shape, and not known to be under SSE-KMS or SSE-C.
fn md5_etag(object: &Existing) -> Option<&str> {
    object
        .etag
        .as_deref()
        .filter(|etag| is_plain_md5(etag) && object.sse != Sse::Kms)
}

/// Whether `copy` was written at or after `source`, each a time with the precision it was
/// read at, compared at the coarser of the two.
pub fn written_at_or_after(
    copy: (aws_smithy_types::DateTime, Precision),
    source: (aws_smithy_types::DateTime, Precision),
) -> bool {
    match (copy.1, source.1) {
        (Precision::Millis, Precision::Millis) => millis(copy.0) >= millis(source.0),
        _ => copy.0.secs() >= source.0.secs(),
    }
}

fn millis(time: aws_smithy_types::DateTime) -> i128 {
    time.as_nanos().div_euclid(1_000_000)
}

/// 32 hex digits: the shape of a single-part object's ETag (an MD5, unless SSE-KMS).
pub fn is_plain_md5(etag: &str) -> bool {
    etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::checksum::{Checksum, ObjectChecksum};
    use aws_smithy_types::DateTime;

    const MD5_A: &str = "0cc175b9c0f1b6a831c399e269772661";
    const MD5_B: &str = "92eb5ffee6ae2fec3ad71c777531578f";

    /// As a listing shows it: `millis` since the epoch.
    fn listed(size: u64, etag: &str, millis: i64) -> Existing {
        Existing::listed(Some(size as i64), Some(etag), Some(DateTime::from_millis(millis)))
    }

    /// As a HEAD shows it: whole seconds, the checksum and encryption known.
    fn headed(size: u64, etag: &str, secs: i64, checksum: Option<&str>, sse: Sse) -> Existing {
        Existing {
            size: Some(size),
            etag: Some(etag.into()),
            last_modified: Some(DateTime::from_secs(secs)),
            precision: Precision::Seconds,
            headed: true,
            checksum: checksum.map(crc),
            sse,
        }
    }

    fn crc(value: &str) -> ObjectChecksum {
        ObjectChecksum {
            checksum: Checksum {
                algorithm: "CRC64NVME".into(),
                value: value.into(),
            },
            full_object: true,
        }
    }

    fn kms(mut existing: Existing) -> Existing {
        existing.sse = Sse::Kms;
        existing
    }

    #[test]
    fn equal_plain_md5s_decide_without_a_head() {
        assert_eq!(
            already_copied(&listed(10, MD5_A, 100_750), &listed(10, MD5_A, 50_000)),
            Copied::Yes
        );
        // Not the same size: not copied, whatever else.
        assert_eq!(
            already_copied(&listed(10, MD5_A, 100_750), &listed(11, MD5_A, 200_000)),
            Copied::No
        );
    }

    #[test]
    fn what_a_listing_cannot_decide_asks_for_the_destination_s_head() {
        let source = listed(10, MD5_A, 100_750);
        // A multipart source copied with one CopyObject: another ETag, same bytes.
        let multipart = listed(10, &format!("{MD5_B}-2"), 100_750);
        assert_eq!(
            already_copied(&multipart, &listed(10, MD5_A, 200_000)),
            Copied::ReadHead(Side::Destination)
        );
        // Equal multipart ETags, a part-wise copy, a differing plain one: a HEAD each.
        assert_eq!(
            already_copied(&multipart, &multipart),
            Copied::ReadHead(Side::Destination)
        );
        assert_eq!(
            already_copied(&source, &listed(10, &format!("{MD5_B}-3"), 200_000)),
            Copied::ReadHead(Side::Destination)
        );
        assert_eq!(
            already_copied(&source, &listed(10, MD5_B, 200_000)),
            Copied::ReadHead(Side::Destination)
        );
        // A copy of an org that writes SSE-KMS: even an equal ETag is no MD5.
        assert_eq!(
            already_copied(&source, &kms(listed(10, MD5_A, 200_000))),
            Copied::ReadHead(Side::Destination)
        );
    }

    #[test]
    fn a_destination_checksum_asks_for_the_source_s_then_decides() {
        let source = listed(10, &format!("{MD5_A}-2"), 100_750);
        let copy = headed(10, MD5_B, 50, Some("AAA="), Sse::NotKms);
        assert_eq!(already_copied(&source, &copy), Copied::ReadHead(Side::Source));
        // Older than the source by the clock, but the same bytes.
        let read = headed(10, &format!("{MD5_A}-2"), 100, Some("AAA="), Sse::NotKms);
        assert_eq!(already_copied(&read, &copy), Copied::Yes);
        // Newer than the source by the clock, but other bytes.
        let newer = kms(headed(10, MD5_B, 200, Some("BBB="), Sse::Kms));
        assert_eq!(already_copied(&read, &newer), Copied::No);
        // The source has no checksum: the time rule.
        let bare = headed(10, &format!("{MD5_A}-2"), 100, None, Sse::NotKms);
        assert_eq!(already_copied(&bare, &newer), Copied::Yes);
        assert_eq!(already_copied(&bare, &copy), Copied::No);
    }

    #[test]
    fn kms_copies_are_decided_by_checksum_or_time() {
        let source = listed(10, MD5_A, 100_750);
        // The copy has no checksum: no source HEAD, the time rule.
        let copy = headed(10, MD5_B, 101, None, Sse::Kms);
        assert_eq!(already_copied(&source, &copy), Copied::Yes);
        let older = headed(10, MD5_B, 99, None, Sse::Kms);
        assert_eq!(already_copied(&source, &older), Copied::No);
        // An equal ETag of a KMS object is not trusted either: the time rule.
        let equal_but_older = headed(10, MD5_A, 99, None, Sse::Kms);
        assert_eq!(already_copied(&source, &equal_but_older), Copied::No);
    }

    #[test]
    fn differing_md5s_of_objects_known_unencrypted_are_other_bytes() {
        let source = headed(10, MD5_A, 100, None, Sse::NotKms);
        let copy = headed(10, MD5_B, 200, None, Sse::NotKms);
        assert_eq!(already_copied(&source, &copy), Copied::No);
        // Only the copy is known: the source's ETag may be a KMS one, so the time rule.
        assert_eq!(already_copied(&listed(10, MD5_A, 100_750), &copy), Copied::Yes);
    }

    #[test]
    fn milliseconds_decide_when_both_sides_have_them() {
        let source = listed(10, &format!("{MD5_A}-2"), 100_750);
        // Both listed, no checksum anywhere: the copy at 100.200 came before the source.
        let mut copy = headed(10, MD5_B, 100, None, Sse::NotKms).sharpened_by(&listed(10, MD5_B, 100_200));
        assert_eq!(copy.precision, Precision::Millis);
        assert_eq!(already_copied(&source, &copy), Copied::No);
        copy.last_modified = Some(DateTime::from_millis(100_750));
        assert_eq!(already_copied(&source, &copy), Copied::Yes);
    }

    #[test]
    fn whole_seconds_decide_when_either_side_has_only_them() {
        let source = listed(10, &format!("{MD5_A}-2"), 100_750);
        // A HEAD's 100 is anywhere in 100.000–100.999: the same second counts as after.
        let copy = headed(10, MD5_B, 100, None, Sse::NotKms);
        assert_eq!(already_copied(&source, &copy), Copied::Yes);
        assert_eq!(
            already_copied(&source, &headed(10, MD5_B, 99, None, Sse::NotKms)),
            Copied::No
        );
        assert!(written_at_or_after(
            (DateTime::from_millis(100_200), Precision::Millis),
            (DateTime::from_secs(100), Precision::Seconds)
        ));
        assert!(!written_at_or_after(
            (DateTime::from_millis(99_999), Precision::Millis),
            (DateTime::from_secs(100), Precision::Seconds)
        ));
    }

    #[test]
    fn a_head_keeps_the_listing_s_milliseconds_only_for_the_same_object() {
        let listing = listed(10, MD5_B, 100_200);
        let same = headed(10, MD5_B, 100, None, Sse::NotKms).sharpened_by(&listing);
        assert_eq!(same.last_modified, Some(DateTime::from_millis(100_200)));
        assert_eq!(same.precision, Precision::Millis);
        assert!(same.headed);
        // Rewritten since the listing: the HEAD's own time.
        let other = headed(10, MD5_A, 101, None, Sse::NotKms).sharpened_by(&listing);
        assert_eq!(other.last_modified, Some(DateTime::from_secs(101)));
        assert_eq!(other.precision, Precision::Seconds);
    }

    #[test]
    fn plain_md5_shape() {
        assert!(is_plain_md5(MD5_A));
        assert!(!is_plain_md5(&format!("{MD5_A}-12")));
        assert!(!is_plain_md5("abc"));
        assert!(!is_plain_md5("0cc175b9c0f1b6a831c399e26977266z"));
    }
}
