//! Is the object already at its destination? What makes a backfill idempotent. The
//! destination's HEAD is [`crate::destination::S3Destination::existing`]; the rule is here.
//!
//! A destination object counts as in place when its size matches and either
//! - its ETag is the source's ETag (every single-request copy, and any identical upload), or
//! - both have a full-object checksum of the same algorithm and the values are equal (S3
//!   keeps the source's full-object CRC through a multipart copy, so this decides where the
//!   ETags differ, whatever the part boundaries; unequal values are not in place), or
//! - failing that, it is the result of a part-wise copy (a multipart ETag `…-N` that differs
//!   from the source's, since part boundaries change the ETag) written at or after the
//!   second the source was last modified. A source overwritten after the copy is newer, so
//!   it is copied again.
//!
//! The listing has no checksum values, so the source's comes from a HEAD, made only when it
//! can decide ([`needs_source_checksum`]).

use crate::destination::Existing;
use crate::destination::checksum::ObjectChecksum;

use super::listing::Listed;

/// Whether the source's checksum could decide: same size, different ETags, and the
/// destination has a full-object checksum.
pub fn needs_source_checksum(source: &Listed, existing: &Existing) -> bool {
    let object = &source.object;
    object.size.is_some()
        && existing.size == object.size
        && !(object.etag.is_some() && object.etag == existing.etag)
        && existing.checksum.as_ref().is_some_and(|c| c.full_object)
}

/// Whether `existing` already holds `source`, given the source's checksum when it was read
/// (see the module docs for the rule).
pub fn is_in_place(source: &Listed, existing: &Existing, source_checksum: Option<&ObjectChecksum>) -> bool {
    let object = &source.object;
    if object.size.is_none() || existing.size != object.size {
        return false;
    }
    if let (Some(src), Some(dst)) = (source_checksum, &existing.checksum)
        && src.full_object
        && dst.full_object
        && src.checksum.algorithm == dst.checksum.algorithm
        && object.etag != existing.etag
    {
        return src.checksum.value == dst.checksum.value;
    }
    match (&object.etag, &existing.etag) {
        (Some(src), Some(dst)) if src == dst => true,
        (_, Some(dst)) if is_multipart_etag(dst) => match (source.last_modified, existing.last_modified) {
            (Some(src), Some(dst)) => dst.secs() >= src.secs(),
            _ => false,
        },
        _ => false,
    }
}

/// `"<hex>-<parts>"`, the shape of a multipart upload's ETag.
pub fn is_multipart_etag(etag: &str) -> bool {
    etag.rsplit_once('-').is_some_and(|(hex, parts)| {
        !hex.is_empty() && !parts.is_empty() && parts.bytes().all(|b| b.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::SourceObject;
    use aws_smithy_types::DateTime;

    fn listed(size: u64, etag: &str, secs: i64) -> Listed {
        Listed {
            object: SourceObject {
                bucket: "src".into(),
                key: "org1/a.jpg".into(),
                size: Some(size),
                etag: Some(etag.into()),
                version_id: None,
                event_time: None,
                event_name: "Backfill:Copy".into(),
            },
            last_modified: Some(DateTime::from_millis(secs * 1000 + 750)),
            storage_class: None,
        }
    }

    fn existing(size: u64, etag: &str, secs: i64) -> Existing {
        Existing {
            size: Some(size),
            etag: Some(etag.into()),
            last_modified: Some(DateTime::from_secs(secs)),
            checksum: None,
        }
    }

    fn is_in_place_(source: &Listed, existing: &Existing) -> bool {
        is_in_place(source, existing, None)
    }

    fn crc(value: &str) -> ObjectChecksum {
        ObjectChecksum {
            checksum: crate::destination::Checksum {
                algorithm: "CRC64NVME".into(),
                value: value.into(),
            },
            full_object: true,
        }
    }

    #[test]
    fn full_object_checksums_decide_before_the_time_rule() {
        let source = listed(10, "abc", 100);
        let mut copy = existing(10, "def-3", 50);
        copy.checksum = Some(crc("AAA="));
        assert!(needs_source_checksum(&source, &copy));
        // Older than the source by the clock, but the same bytes.
        assert!(is_in_place(&source, &copy, Some(&crc("AAA="))));
        // Newer than the source by the clock, but other bytes.
        let mut newer = existing(10, "def-3", 200);
        newer.checksum = Some(crc("AAA="));
        assert!(!is_in_place(&source, &newer, Some(&crc("BBB="))));
        // Without the source's value, the time rule.
        assert!(is_in_place(&source, &newer, None));
        // Same ETag: no HEAD needed.
        let mut same = existing(10, "abc", 50);
        same.checksum = Some(crc("AAA="));
        assert!(!needs_source_checksum(&source, &same));
        assert!(!needs_source_checksum(&source, &existing(10, "def-3", 50)));
    }

    #[test]
    fn same_etag_and_size_is_in_place() {
        assert!(is_in_place_(&listed(10, "abc", 100), &existing(10, "abc", 50)));
    }

    #[test]
    fn different_size_or_etag_is_not() {
        assert!(!is_in_place_(&listed(10, "abc", 100), &existing(11, "abc", 200)));
        assert!(!is_in_place_(&listed(10, "abc", 100), &existing(10, "abd", 200)));
    }

    #[test]
    fn part_wise_copy_written_after_the_source_is_in_place() {
        // Same second as the source (HEAD has whole seconds; the listing has milliseconds).
        assert!(is_in_place_(&listed(10, "abc", 100), &existing(10, "def-3", 100)));
        assert!(is_in_place_(
            &listed(10, "abc-2", 100),
            &existing(10, "def-3", 101)
        ));
    }

    #[test]
    fn part_wise_copy_older_than_the_source_is_not() {
        assert!(!is_in_place_(&listed(10, "abc", 100), &existing(10, "def-3", 99)));
        assert!(!is_in_place_(
            &listed(11, "abc", 100),
            &existing(10, "def-3", 200)
        ));
    }

    #[test]
    fn multipart_etag_shape() {
        assert!(is_multipart_etag("d41d8cd98f00b204e9800998ecf8427e-12"));
        assert!(!is_multipart_etag("d41d8cd98f00b204e9800998ecf8427e"));
        assert!(!is_multipart_etag("abc-"));
        assert!(!is_multipart_etag("-3"));
        assert!(!is_multipart_etag("abc-x1"));
    }
}
