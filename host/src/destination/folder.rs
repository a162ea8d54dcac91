//! Local mode (`ENV=local`): destinations are folders, `LOCAL_DEST/<bucket>/<key>`, and the
//! source is S3 or, with `LOCAL_SOURCE`, a folder standing for the source bucket.
//!
//! Every file is streamed into a temporary file next to its final path and renamed into
//! place once complete, so a crash never leaves a partial file under a real name, and a write
//! that fails or is dropped (a timeout, the deadline's cut-off) removes its temporary file.
//! Keys that would leave the folder (`..`, absolute paths, NUL) are refused, and so are keys
//! a folder would merge with another key's file (empty or `.` segments: `UnsafeLocalKey`).

use std::path::{Path, PathBuf};

use aws_sdk_s3::Client;
use tokio::io::AsyncWriteExt;

use super::{Copied, CopyError, CopyOptions, Delivery, Failure};
use crate::env::LocalMode;
use crate::event::SourceObject;
use crate::reason::FailureCode;
use crate::route::Target;
use crate::s3::{SourceChange, classify, if_match, with_retries};

/// Why a key names no file under a local folder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefused {
    /// The key would leave the folder (`..`, an absolute path, NUL), names a folder, or the
    /// bucket is not one folder name.
    #[error("key {key:?} refused: {why}; nothing is written outside {root}")]
    Outside {
        /// The key.
        key: String,
        /// What is wrong with it.
        why: &'static str,
        /// The folder.
        root: String,
    },
    /// The key has an empty or `.` segment (`org1//a.jpg`, `org1/./a.jpg`): S3 keys are
    /// strings, not paths, so it is another object than the key without that segment, but a
    /// folder would name both one file.
    #[error(
        "key {key:?} refused: it has an empty or \".\" segment, so its file would be the file of another key (S3 keys are not paths); nothing is written"
    )]
    Ambiguous {
        /// The key.
        key: String,
    },
}

impl KeyRefused {
    /// The failure code: `UnsafeLocalKey` for an ambiguous key, `InvalidKey` otherwise.
    pub fn code(&self) -> FailureCode {
        match self {
            KeyRefused::Outside { .. } => FailureCode::InvalidKey,
            KeyRefused::Ambiguous { .. } => FailureCode::UnsafeLocalKey,
        }
    }
}

/// `root` joined with `bucket` and `key`, refusing anything that would leave `root`, and
/// keys that would share their file with another key (empty or `.` segments): every key
/// names its own file, or none.
pub fn confined_path(root: &Path, bucket: Option<&str>, key: &str) -> Result<PathBuf, KeyRefused> {
    let outside = |why: &'static str| {
        Err(KeyRefused::Outside {
            key: key.to_string(),
            why,
            root: root.display().to_string(),
        })
    };
    if key.contains('\0') || bucket.is_some_and(|b| b.contains('\0')) {
        return outside("contains NUL");
    }
    if key.starts_with('/') {
        return outside("is an absolute path");
    }
    if key.is_empty() || key.ends_with('/') {
        return outside("names a folder, not a file");
    }
    if key.split('/').any(|segment| segment == "..") {
        return outside("has a '..' segment");
    }
    if key.split('/').any(|segment| segment.is_empty() || segment == ".") {
        return Err(KeyRefused::Ambiguous { key: key.to_string() });
    }
    let mut path = root.to_path_buf();
    if let Some(bucket) = bucket {
        if bucket.is_empty() || bucket.contains('/') || bucket == ".." || bucket == "." {
            return outside("bucket is not a single folder name");
        }
        path.push(bucket);
    }
    path.extend(key.split('/'));
    Ok(path)
}

/// Local mode's destination: files under `LOCAL_DEST`, read from `LOCAL_SOURCE` or from S3.
pub struct FolderDestination {
    mode: LocalMode,
    client: Client,
}

impl FolderDestination {
    /// Writes per `mode`, reading sources through `client` when there is no `LOCAL_SOURCE`.
    pub fn new(mode: LocalMode, client: Client) -> Self {
        FolderDestination { mode, client }
    }

    /// Copies `object` to `LOCAL_DEST/<target bucket>/<target key or DESTINATION_KEY>`.
    pub async fn copy(&self, object: &SourceObject, target: &Target, options: &CopyOptions) -> Delivery {
        let written = Target {
            key: self
                .mode
                .destination_key
                .clone()
                .unwrap_or_else(|| target.key.clone()),
            ..target.clone()
        };
        let (result, attempts) = self.copy_file_of(object, &written, options).await;
        Delivery {
            target: written,
            result: result.map(|bytes| Copied {
                bytes: Some(bytes),
                parts: None,
                checksum: None,
            }),
            attempts,
        }
    }

    /// `DESTINATION_KEY`: the one file name every copy is written under, when set.
    pub fn single_file_name(&self) -> Option<&str> {
        self.mode.destination_key.as_deref()
    }

    async fn copy_file_of(
        &self,
        object: &SourceObject,
        written: &Target,
        options: &CopyOptions,
    ) -> (Result<u64, CopyError>, u32) {
        let dest_root = &self.mode.dest_dir;
        let destination = match local_path(dest_root, Some(&written.bucket), &written.key) {
            Ok(path) => path,
            Err(refused) => return (Err(refused), 0),
        };
        match &self.mode.source_dir {
            Some(source_dir) => {
                let source = match local_path(source_dir, None, &object.key) {
                    Ok(path) => path,
                    Err(refused) => return (Err(refused), 0),
                };
                (copy_file(&source, dest_root, &destination).await, 1)
            }
            None => {
                with_retries(&options.retry, || async {
                    let download = async {
                        let response = self
                            .client
                            .get_object()
                            .bucket(&object.bucket)
                            .key(&object.key)
                            .set_if_match(object.etag.as_deref().map(if_match))
                            .set_expected_bucket_owner(options.source_owner.clone())
                            .send()
                            .await
                            .map_err(|e| CopyError::from(classify(&e)))?;
                        let mut body = response.body.into_async_read();
                        write_atomically(dest_root, &destination, &mut body).await
                    };
                    // The body streams outside the request's own timeout: bound it all.
                    tokio::time::timeout(options.timeouts.copy, download)
                        .await
                        .unwrap_or_else(|_| {
                            Err(CopyError::Failed(Failure {
                                code: FailureCode::Timeout,
                                message: format!(
                                    "download did not finish within {:?}",
                                    options.timeouts.copy
                                ),
                                retryable: true,
                            }))
                        })
                })
                .await
            }
        }
    }
}

/// [`confined_path`], through no symbolic link ([`no_links_below`]), or the record's failure.
fn local_path(root: &Path, bucket: Option<&str>, key: &str) -> Result<PathBuf, CopyError> {
    let refused = |code: FailureCode, message: String| {
        CopyError::Failed(Failure {
            code,
            message,
            retryable: false,
        })
    };
    let path = confined_path(root, bucket, key).map_err(|e| refused(e.code(), e.to_string()))?;
    no_links_below(root, &path).map_err(|why| refused(FailureCode::InvalidKey, why))?;
    Ok(path)
}

async fn copy_file(source: &Path, dest_root: &Path, destination: &Path) -> Result<u64, CopyError> {
    // O_NOFOLLOW: a link put in place of the file after the check is not followed either.
    let opened = tokio::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(source)
        .await;
    let mut file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CopyError::Superseded(SourceChange::Deleted));
        }
        Err(e) => return Err(io_failure(source, &e)),
    };
    write_atomically(dest_root, destination, &mut file).await
}

/// Streams `reader` into a temporary file beside `destination`, then renames it into place.
async fn write_atomically(
    root: &Path,
    destination: &Path,
    reader: &mut (impl tokio::io::AsyncRead + Unpin),
) -> Result<u64, CopyError> {
    let dir = destination.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| io_failure(dir, &e))?;
    // Again now that the folders exist: a link made meanwhile must not carry the write out.
    no_links_below(root, dir).map_err(|why| {
        CopyError::Failed(Failure {
            code: FailureCode::InvalidKey,
            message: why,
            retryable: false,
        })
    })?;
    let name = destination
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(
        ".{name}.partial-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    let (partial, mut file) = PartialFile::create(temp).map_err(|e| io_failure(destination, &e))?;
    let written = async move {
        let bytes = tokio::io::copy(reader, &mut file).await?;
        file.flush().await?;
        file.sync_all().await?;
        partial.commit(destination).await?;
        Ok::<u64, std::io::Error>(bytes)
    }
    .await;
    written.map_err(|e| io_failure(destination, &e))
}

/// A temporary file being written: removed when dropped, unless [`PartialFile::commit`]
/// renamed it into place. So a write that fails, times out or is cut off (its future
/// dropped in the middle) leaves no `.partial-*` file; only a killed process can.
struct PartialFile {
    path: PathBuf,
    committed: bool,
}

impl PartialFile {
    /// Creates the file at `path`: never through a link or over a file someone else placed
    /// there (`create_new`). Created before the guard exists, synchronously: a creation
    /// still running on the blocking pool when the write is dropped would outlive the guard.
    fn create(path: PathBuf) -> std::io::Result<(PartialFile, tokio::fs::File)> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok((
            PartialFile {
                path,
                committed: false,
            },
            tokio::fs::File::from_std(file),
        ))
    }

    /// Renames the file to `destination`: from now on it is not the guard's to remove.
    async fn commit(mut self, destination: &Path) -> std::io::Result<()> {
        tokio::fs::rename(&self.path, destination).await?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: gone already, or a disk error the record reports anyway.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Refuses `path` when a component of it below `root` is a symbolic link: a link inside
/// `LOCAL_DEST` or `LOCAL_SOURCE` could carry a read or a write anywhere. Components that
/// do not exist yet are fine (they are created as folders, not followed).
pub fn no_links_below(root: &Path, path: &Path) -> Result<(), String> {
    let Ok(below) = path.strip_prefix(root) else {
        return Err(format!("{} is not inside {}", path.display(), root.display()));
    };
    let mut at = root.to_path_buf();
    for component in below.components() {
        at.push(component);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(format!(
                    "{} is a symbolic link; local mode follows no link below {}",
                    at.display(),
                    root.display()
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("{}: {e}", at.display())),
        }
    }
    Ok(())
}

fn io_failure(path: &Path, error: &std::io::Error) -> CopyError {
    // A broken stream from S3 is worth another attempt; local disk errors are not.
    let retryable = matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::Other
    );
    CopyError::Failed(Failure {
        code: FailureCode::LocalIo,
        message: format!("{}: {error}", path.display()),
        retryable,
    })
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
        // Keys that a folder would merge with another key's file: refused, not normalised.
        for ambiguous in ["org1//c.jpg", "org1/./c.jpg", "./c.jpg", "org1/c.jpg/."] {
            let err = confined_path(root, Some("b"), ambiguous).unwrap_err();
            assert_eq!(err.code(), FailureCode::UnsafeLocalKey, "{ambiguous:?}");
            assert!(err.to_string().contains("nothing is written"), "{err}");
        }
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
            assert_eq!(err.code(), FailureCode::InvalidKey, "{bad:?}");
            let err = err.to_string();
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
