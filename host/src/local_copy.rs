//! Local mode (`ENV=local`): destinations are folders, `LOCAL_DEST/<bucket>/<key>`, and the
//! source is S3 or, with `LOCAL_SOURCE`, a folder standing for the source bucket.
//!
//! Every file is streamed into a temporary file next to its final path and renamed into
//! place once complete, so a crash never leaves a partial file under a real name. Keys that
//! would leave the folder (`..`, absolute paths, NUL) are refused.

use std::path::{Path, PathBuf};

use aws_sdk_s3::Client;
use tokio::io::AsyncWriteExt;

use crate::copy::if_match;
use crate::copy::retry::{RetryPolicy, S3Failure, classify, with_retries};
use crate::event::SourceObject;
use crate::route::Target;

/// Where local mode reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMode {
    /// `LOCAL_DEST`: replaces the destination buckets.
    pub dest_dir: PathBuf,
    /// `LOCAL_SOURCE`: replaces the source bucket (no S3 at all).
    pub source_dir: Option<PathBuf>,
    /// `DESTINATION_KEY`: the file name to write instead of the target key.
    pub destination_key: Option<String>,
}

/// `root` joined with `bucket` and `key`, refusing anything that would leave `root`.
pub fn confined_path(root: &Path, bucket: Option<&str>, key: &str) -> Result<PathBuf, String> {
    let mut path = root.to_path_buf();
    let refuse = |why: &str| {
        Err(format!(
            "key {key:?} refused: {why}; nothing is written outside {}",
            root.display()
        ))
    };
    if key.contains('\0') || bucket.is_some_and(|b| b.contains('\0')) {
        return refuse("contains NUL");
    }
    if key.starts_with('/') {
        return refuse("is an absolute path");
    }
    if key.is_empty() || key.ends_with('/') {
        return refuse("names a folder, not a file");
    }
    if let Some(bucket) = bucket {
        if bucket.is_empty() || bucket.contains('/') || bucket == ".." || bucket == "." {
            return refuse("bucket is not a single folder name");
        }
        path.push(bucket);
    }
    for segment in key.split('/') {
        match segment {
            "" | "." => continue,
            ".." => return refuse("has a '..' segment"),
            s => path.push(s),
        }
    }
    Ok(path)
}

/// Copies `object` to `LOCAL_DEST/<target bucket>/<target key or DESTINATION_KEY>`.
/// Returns the bytes written.
pub async fn copy_to_folder(
    client: &Client,
    mode: &LocalMode,
    object: &SourceObject,
    target: &Target,
    policy: &RetryPolicy,
) -> (Result<u64, S3Failure>, u32) {
    let refused = |message: String| S3Failure::Fatal {
        code: "InvalidKey".into(),
        message,
    };
    let key = mode.destination_key.as_deref().unwrap_or(&target.key);
    let destination = match confined_path(&mode.dest_dir, Some(&target.bucket), key) {
        Ok(path) => path,
        Err(why) => return (Err(refused(why)), 0),
    };
    match &mode.source_dir {
        Some(source_dir) => {
            let source = match confined_path(source_dir, None, &object.key) {
                Ok(path) => path,
                Err(why) => return (Err(refused(why)), 0),
            };
            (copy_file(&source, &destination).await, 1)
        }
        None => {
            with_retries(policy, || async {
                let response = client
                    .get_object()
                    .bucket(&object.bucket)
                    .key(&object.key)
                    .set_if_match(object.etag.as_deref().map(if_match))
                    .send()
                    .await
                    .map_err(|e| classify(&e))?;
                let mut body = response.body.into_async_read();
                write_atomically(&destination, &mut body).await
            })
            .await
        }
    }
}

async fn copy_file(source: &Path, destination: &Path) -> Result<u64, S3Failure> {
    let mut file = match tokio::fs::File::open(source).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(S3Failure::Superseded(
                "source object no longer exists (deleted since the event)".into(),
            ));
        }
        Err(e) => return Err(io_failure(source, &e)),
    };
    write_atomically(destination, &mut file).await
}

/// Streams `reader` into a temporary file beside `destination`, then renames it into place.
async fn write_atomically(
    destination: &Path,
    reader: &mut (impl tokio::io::AsyncRead + Unpin),
) -> Result<u64, S3Failure> {
    let dir = destination.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| io_failure(dir, &e))?;
    let name = destination
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(
        ".{name}.partial-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    let result = async {
        let mut file = tokio::fs::File::create(&temp).await?;
        let bytes = tokio::io::copy(reader, &mut file).await?;
        file.flush().await?;
        file.sync_all().await?;
        tokio::fs::rename(&temp, destination).await?;
        Ok::<u64, std::io::Error>(bytes)
    }
    .await;
    result.map_err(|e| {
        // Best effort: a crash instead of an error leaves only this hidden temp file.
        let _ = std::fs::remove_file(&temp);
        io_failure(destination, &e)
    })
}

fn io_failure(path: &Path, error: &std::io::Error) -> S3Failure {
    // A broken stream from S3 is worth another attempt; local disk errors are not.
    let retryable = matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::Other
    );
    let code = "LocalIo".to_string();
    let message = format!("{}: {error}", path.display());
    if retryable {
        S3Failure::Retryable { code, message }
    } else {
        S3Failure::Fatal { code, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_inside_the_folder() {
        let root = Path::new("/dest");
        assert_eq!(
            confined_path(root, Some("b"), "org1/a b/c.jpg").unwrap(),
            Path::new("/dest/b/org1/a b/c.jpg")
        );
        assert_eq!(
            confined_path(root, Some("b"), "org1//./c.jpg").unwrap(),
            Path::new("/dest/b/org1/c.jpg")
        );
        for bad in [
            "org1/../../etc/passwd",
            "../x",
            "/etc/passwd",
            "a\0b",
            "org1/dir/",
            "",
            "a/..",
        ] {
            let err = confined_path(root, Some("b"), bad).unwrap_err();
            assert!(
                err.contains("refused") && err.contains("nothing is written outside /dest"),
                "{bad:?}: {err}"
            );
        }
        assert!(confined_path(root, Some(".."), "a").is_err());
        assert!(confined_path(root, Some("a/b"), "a").is_err());
        assert_eq!(confined_path(root, None, "x/y").unwrap(), Path::new("/dest/x/y"));
    }
}
