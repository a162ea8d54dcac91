//! Is the object already at its destination? What makes a backfill idempotent. The
//! destination's HEAD is [`crate::destination::S3Destination::existing`]; the rule is here.
//!
//! A destination object counts as in place when its size matches and either
//! - its ETag is the source's ETag (every single-request copy, and any identical upload), or
//! - it is the result of a part-wise copy (a multipart ETag `…-N` that differs from the
//!   source's, since part boundaries change the ETag) written at or after the second the
//!   source was last modified. A source overwritten after the copy is newer, so it is copied
//!   again.

use crate::destination::Existing;

use super::listing::Listed;

/// Whether `existing` already holds `source` (see the module docs for the rule).
pub fn is_in_place(source: &Listed, existing: &Existing) -> bool {
    let object = &source.object;
    if object.size.is_none() || existing.size != object.size {
        return false;
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
fn is_multipart_etag(etag: &str) -> bool {
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
        }
    }

    fn existing(size: u64, etag: &str, secs: i64) -> Existing {
        Existing {
            size: Some(size),
            etag: Some(etag.into()),
            last_modified: Some(DateTime::from_secs(secs)),
        }
    }

    #[test]
    fn same_etag_and_size_is_in_place() {
        assert!(is_in_place(&listed(10, "abc", 100), &existing(10, "abc", 50)));
    }

    #[test]
    fn different_size_or_etag_is_not() {
        assert!(!is_in_place(&listed(10, "abc", 100), &existing(11, "abc", 200)));
        assert!(!is_in_place(&listed(10, "abc", 100), &existing(10, "abd", 200)));
    }

    #[test]
    fn part_wise_copy_written_after_the_source_is_in_place() {
        // Same second as the source (HEAD has whole seconds; the listing has milliseconds).
        assert!(is_in_place(&listed(10, "abc", 100), &existing(10, "def-3", 100)));
        assert!(is_in_place(
            &listed(10, "abc-2", 100),
            &existing(10, "def-3", 101)
        ));
    }

    #[test]
    fn part_wise_copy_older_than_the_source_is_not() {
        assert!(!is_in_place(&listed(10, "abc", 100), &existing(10, "def-3", 99)));
        assert!(!is_in_place(&listed(11, "abc", 100), &existing(10, "def-3", 200)));
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
