//! Full-object checksums: what the source's HEAD says, what a copy's answer says, and how
//! to ask S3 for the same algorithm on the destination.
//!
//! S3 keeps one checksum per object: a full-object value (CRC64NVME, CRC32, CRC32C are
//! linear, so a multipart upload can carry one) or a composite one (a checksum of part
//! checksums, `…-N`). Only a full-object value means the same bytes whatever the parts, so
//! only that is compared between source and copy.

use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumType, CopyObjectResult, CopyPartResult};
use serde::Serialize;

/// One object's checksum: the algorithm as S3 spells it and the base64 value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checksum {
    /// `CRC64NVME`, `CRC32`, `CRC32C`, `SHA1` or `SHA256`.
    pub algorithm: String,
    /// Base64 value, as S3 returns it.
    pub value: String,
}

/// What the source's HEAD said about its checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectChecksum {
    /// The value.
    pub checksum: Checksum,
    /// Whether it is a full-object checksum (comparable with the copy's).
    pub full_object: bool,
}

/// Reads the five classic checksum fields of one S3 answer, first present wins.
macro_rules! first_checksum_of {
    ($out:expr) => {{
        let out = $out;
        [
            ("CRC64NVME", out.checksum_crc64_nvme()),
            ("CRC32", out.checksum_crc32()),
            ("CRC32C", out.checksum_crc32_c()),
            ("SHA256", out.checksum_sha256()),
            ("SHA1", out.checksum_sha1()),
        ]
        .into_iter()
        .find_map(|(algorithm, value)| {
            value.map(|v| Checksum {
                algorithm: algorithm.to_string(),
                value: v.to_string(),
            })
        })
    }};
}

pub(super) use first_checksum_of as first_checksum;

impl ObjectChecksum {
    /// The checksum of a HEAD made with `ChecksumMode::Enabled`, if S3 gave one.
    pub fn from_head(head: &HeadObjectOutput) -> Option<ObjectChecksum> {
        let checksum = first_checksum!(head)?;
        let full_object = match head.checksum_type() {
            Some(ChecksumType::FullObject) => true,
            Some(_) => false,
            // Servers that do not say: a composite value carries its part count.
            None => !checksum.value.contains('-'),
        };
        Some(ObjectChecksum {
            checksum,
            full_object,
        })
    }

    /// Whether a multipart upload can carry this value as its full-object checksum.
    pub fn fits_multipart(&self) -> bool {
        self.full_object && matches!(self.checksum.algorithm.as_str(), "CRC64NVME" | "CRC32" | "CRC32C")
    }
}

impl Checksum {
    /// The SDK's name of the algorithm.
    pub fn sdk_algorithm(&self) -> ChecksumAlgorithm {
        ChecksumAlgorithm::from(self.algorithm.as_str())
    }

    /// The checksum `CopyObject` answered with.
    pub fn from_copy_result(result: &CopyObjectResult) -> Option<Checksum> {
        first_checksum_of!(result)
    }

    /// The checksum `UploadPartCopy` answered with for one part.
    pub fn from_part_result(result: &CopyPartResult) -> Option<Checksum> {
        first_checksum_of!(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_checksums_and_their_kind() {
        let head = HeadObjectOutput::builder()
            .checksum_crc32("AAAAAA==")
            .checksum_type(ChecksumType::FullObject)
            .build();
        let source = ObjectChecksum::from_head(&head).unwrap();
        assert_eq!(source.checksum.algorithm, "CRC32");
        assert!(source.fits_multipart());
        let composite = HeadObjectOutput::builder().checksum_sha256("abc=-3").build();
        let source = ObjectChecksum::from_head(&composite).unwrap();
        assert!(!source.full_object);
        assert!(!source.fits_multipart());
        let sha = HeadObjectOutput::builder()
            .checksum_sha256("abc=")
            .checksum_type(ChecksumType::FullObject)
            .build();
        assert!(ObjectChecksum::from_head(&sha).unwrap().full_object);
        assert!(!ObjectChecksum::from_head(&sha).unwrap().fits_multipart());
        assert_eq!(
            ObjectChecksum::from_head(&HeadObjectOutput::builder().build()),
            None
        );
        assert_eq!(
            Checksum {
                algorithm: "CRC64NVME".into(),
                value: String::new()
            }
            .sdk_algorithm(),
            ChecksumAlgorithm::Crc64Nvme
        );
    }
}
