//! S3's protocol limits that the copy code plans around.

/// Largest object a single `CopyObject` may copy.
pub const COPY_OBJECT_LIMIT: u64 = 5 * 1024 * 1024 * 1024;
/// Smallest part `UploadPartCopy` accepts for all but the last part.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Most parts one multipart upload may have.
pub const MAX_PARTS: u64 = 10_000;
/// Longest object key, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;
