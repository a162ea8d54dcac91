//! Reading inputs with a size limit: the config, plugins and events come from files, stdin
//! and S3 objects anyone with write access to a bucket can replace. An oversized one must
//! end in a clear error, not in a Lambda killed for memory; so nothing here ever buffers
//! more than the limit plus one byte (the one byte that tells "exactly the limit" from
//! "larger"), whatever size the object claims or really has.

use std::io::Read;
use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use tokio::io::AsyncReadExt;

/// Largest configuration document accepted: 1 MiB holds thousands of orgs.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// Upper bound for a snapshot of org documents (`validate --write-snapshot`): about a
/// million orgs of typical size.
pub const MAX_SNAPSHOT_BYTES: u64 = 512 * 1024 * 1024;
/// Largest plugin file accepted (`.wasm` or `.cwasm`): 64 MiB, well above what a copy
/// policy compiles to, well below the function's memory.
pub const MAX_PLUGIN_BYTES: u64 = 64 * 1024 * 1024;
/// Largest event accepted: 6 MiB, Lambda's own cap on a synchronous invocation's payload.
pub const MAX_EVENT_BYTES: u64 = 6 * 1024 * 1024;

/// Why a bounded read gave nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// More bytes than the limit.
    #[error("larger than the {} limit", human(*limit))]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The read itself failed.
    #[error("{0}")]
    Failed(String),
}

/// `bytes` for messages: whole MiB or KiB when exact, bytes otherwise.
pub fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1024 * 1024 && b % (1024 * 1024) == 0 => format!("{} MiB", b / (1024 * 1024)),
        b if b >= 1024 && b % 1024 == 0 => format!("{} KiB", b / 1024),
        b => format!("{b} bytes"),
    }
}

/// All of `reader`, or [`ReadError::TooLarge`] once it yields more than `limit` bytes.
pub fn read_to_limit(reader: impl Read, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| ReadError::Failed(e.to_string()))?;
    within(out, limit)
}

/// A whole file, or [`ReadError::TooLarge`].
pub async fn read_file_to_limit(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| ReadError::Failed(e.to_string()))?;
    let mut out = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .await
        .map_err(|e| ReadError::Failed(e.to_string()))?;
    within(out, limit)
}

/// An S3 object's body, or [`ReadError::TooLarge`]: refused up front when its
/// `Content-Length` says so, and counted chunk by chunk in any case (a length can be absent,
/// or wrong).
pub async fn collect_body(
    mut body: ByteStream,
    content_length: Option<i64>,
    limit: u64,
) -> Result<Vec<u8>, ReadError> {
    if content_length.is_some_and(|n| u64::try_from(n).is_ok_and(|n| n > limit)) {
        return Err(ReadError::TooLarge { limit });
    }
    let mut out = Vec::new();
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| ReadError::Failed(e.to_string()))?
    {
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(ReadError::TooLarge { limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn within(bytes: Vec<u8>, limit: u64) -> Result<Vec<u8>, ReadError> {
    if bytes.len() as u64 > limit {
        Err(ReadError::TooLarge { limit })
    } else {
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_limit_passes_one_more_byte_does_not() {
        assert_eq!(read_to_limit(&[7u8; 10][..], 10).unwrap().len(), 10);
        assert_eq!(
            read_to_limit(&[7u8; 11][..], 10).unwrap_err(),
            ReadError::TooLarge { limit: 10 }
        );
    }

    #[test]
    fn an_endless_reader_is_cut_at_the_limit() {
        // `repeat` never ends: reading it unbounded would never return.
        assert!(matches!(
            read_to_limit(std::io::repeat(b'x'), 1024),
            Err(ReadError::TooLarge { limit: 1024 })
        ));
    }

    #[tokio::test]
    async fn bodies_are_refused_by_length_and_by_count() {
        let body = || ByteStream::from(vec![1u8; 100]);
        assert_eq!(collect_body(body(), Some(100), 100).await.unwrap().len(), 100);
        assert!(matches!(
            collect_body(body(), None, 99).await,
            Err(ReadError::TooLarge { limit: 99 })
        ));
        // A Content-Length that lies low does not help: the bytes are counted.
        assert!(matches!(
            collect_body(body(), Some(1), 99).await,
            Err(ReadError::TooLarge { limit: 99 })
        ));
        assert!(matches!(
            collect_body(ByteStream::from(vec![0u8; 1]), Some(1 << 40), 99).await,
            Err(ReadError::TooLarge { limit: 99 })
        ));
    }

    #[test]
    fn limits_read_as_people_write_them() {
        assert_eq!(human(MAX_CONFIG_BYTES), "1 MiB");
        assert_eq!(human(MAX_PLUGIN_BYTES), "64 MiB");
        assert_eq!(human(MAX_EVENT_BYTES), "6 MiB");
        assert_eq!(human(2048), "2 KiB");
        assert_eq!(human(1000), "1000 bytes");
    }
}
