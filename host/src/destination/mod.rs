//! Where exported objects go: an S3 bucket ([`S3Destination`], server-side copies) or, in
//! local mode, a folder ([`FolderDestination`]). Both sit behind [`Destination`] and answer
//! with one result type: [`Delivery`], whose outcome is [`Copied`] or a [`CopyError`]
//! (superseded, or a [`Failure`] with its code and whether a retry could help).

pub mod aborts;
pub mod checksum;
pub mod folder;
mod lock_config;
mod multipart;
pub mod one_file;
mod properties;
pub mod removal;
pub mod s3;
pub mod stop;
mod tags;
mod upload;

use crate::config::{CannedAcl, Encryption, ObjectLockPolicy, Org, StorageClass};
use crate::env::Settings;
use crate::event::SourceObject;
use crate::reason::FailureCode;
use crate::route::Target;
use crate::s3::client::Timeouts;
use crate::s3::{RetryPolicy, Retryable, S3Failure, SourceChange};

pub use aborts::Aborts;
pub use checksum::Checksum;
pub use folder::{FolderDestination, KeyRefused};
pub use lock_config::LockConfigs;
pub use one_file::{ManyTargets, OneFile, Ticket};
pub use properties::ObjectLock;
pub use s3::{Existing, Precision, S3Destination, Sse};
pub use stop::{Stop, StopReason};
pub use tags::MAX_OBJECT_TAGS;

/// Tuning that applies to every copy of one invocation or backfill.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Objects larger than this use multipart copy (at most 5 GiB).
    pub multipart_threshold: u64,
    /// Preferred part size; raised as needed to stay within 10,000 parts.
    pub part_size: u64,
    /// Parts in flight at once for one object.
    pub part_concurrency: usize,
    /// Retry behaviour of each request.
    pub retry: RetryPolicy,
    /// How long one attempt of a request may take.
    pub timeouts: Timeouts,
    /// When it fires, multipart copies abort their upload (the Lambda deadline, Ctrl-C).
    pub stop: Stop,
    /// Where multipart copies run their creates and aborts, as tasks that outlive the copy
    /// (the exporter's: the Lambda loop and the CLI wait for them).
    pub aborts: Aborts,
    /// `EXPECTED_BUCKET_OWNER`: the account that must own the source bucket, sent with
    /// every request that reads it (`ExpectedBucketOwner` on its HEAD and tagging,
    /// `ExpectedSourceBucketOwner` on copies).
    pub source_owner: Option<String>,
    /// How the org's copies are written (its storage class, encryption, ACL, owner).
    pub write: WriteOptions,
    /// The source's HEAD, read ahead while the plan was made
    /// ([`Destination::read_source_head`]): a copy that needs it does not send its own.
    pub source_head: Option<SourceHead>,
    /// Which destination buckets have Object Lock, asked once per bucket in this run (only
    /// for copies of a locked source).
    pub lock_configs: LockConfigs,
}

impl CopyOptions {
    /// Copy tuning from the process's `settings`, with the configuration's `retry` count, for
    /// copies that end early when `stop` fires and run their uploads' clean-ups on `aborts`.
    pub fn from_settings(settings: &Settings, retry: u32, stop: Stop, aborts: Aborts) -> Self {
        CopyOptions {
            multipart_threshold: settings.multipart_threshold,
            part_size: settings.multipart_part_size,
            part_concurrency: settings.part_concurrency,
            retry: RetryPolicy::new(retry, settings.retry_base_delay),
            timeouts: settings.timeouts,
            stop,
            aborts,
            source_owner: settings.expected_bucket_owner.clone(),
            write: WriteOptions::default(),
            source_head: None,
            lock_configs: LockConfigs::default(),
        }
    }

    /// These options for one object of `org` (the owning org, if any): the org's write
    /// options. Every copy reads the source's HEAD first (read ahead where it can be:
    /// [`Destination::read_source_head`]): the properties S3 does not carry come from it
    /// ([`properties`]), and no copy is unconditional.
    pub fn for_object(&self, org: Option<&Org>) -> Self {
        CopyOptions {
            write: org.map(WriteOptions::for_org).unwrap_or_default(),
            source_head: None,
            ..self.clone()
        }
    }
}

/// A source HEAD (if-match on the record's ETag, checksum included) read ahead of the copy,
/// shared by every target of the record.
#[derive(Debug, Clone)]
pub struct SourceHead(pub(crate) std::sync::Arc<aws_sdk_s3::operation::head_object::HeadObjectOutput>);

/// How one org's copies are written, from its config: the same on `CopyObject` and on a
/// multipart copy's `CreateMultipartUpload` (and the owner on every request of the copy).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// `storageClass`: `Source` is read from the source's HEAD (the class is not in the
    /// event).
    pub storage_class: StorageClass,
    /// `encryption`; `None` leaves the destination bucket's default.
    pub encryption: Option<Encryption>,
    /// `acl`.
    pub acl: Option<CannedAcl>,
    /// `expectedBucketOwner`, with the bucket it is about (the org's destination bucket).
    pub owner: Option<(String, String)>,
    /// `objectLock`: whether a source's Object Lock is written on the copy.
    pub object_lock: ObjectLockPolicy,
}

impl WriteOptions {
    /// The write options of `org`'s copies.
    pub fn for_org(org: &Org) -> Self {
        WriteOptions {
            storage_class: org.storage_class.clone(),
            encryption: org.encryption.clone(),
            acl: org.acl,
            owner: org
                .expected_bucket_owner
                .clone()
                .map(|owner| (org.destination_bucket.clone(), owner)),
            object_lock: org.object_lock,
        }
    }

    /// The account that must own `bucket`, when the org named one for it.
    pub fn owner_of(&self, bucket: &str) -> Option<&str> {
        self.owner
            .as_ref()
            .filter(|(b, _)| b == bucket)
            .map(|(_, owner)| owner.as_str())
    }
}

/// A finished copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Bytes copied, when known.
    pub bytes: Option<u64>,
    /// Number of parts, for multipart copies.
    pub parts: Option<usize>,
    /// The copy's checksum as S3 answered it (verified against the source's full-object
    /// checksum when the source has one).
    pub checksum: Option<Checksum>,
}

/// Why a copy did not put the object in place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CopyError {
    /// The source changed or vanished since the event; the newer version's event exports it.
    #[error("{0}")]
    Superseded(SourceChange),
    /// The copy failed.
    #[error(transparent)]
    Failed(#[from] Failure),
}

/// A failed copy: what went wrong and whether another attempt could succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", if message.is_empty() { code.to_string() } else { format!("{code}: {message}") })]
pub struct Failure {
    /// S3's error code, or the crate's own failure (`LocalIo`, `InvalidKey`, `Timeout`, …):
    /// the report's `errorCode`, and by [`FailureCode::reason`] its `reasonCode`.
    pub code: FailureCode,
    /// Details.
    pub message: String,
    /// Throttling, 5xx, timeouts, broken streams: worth another attempt later.
    pub retryable: bool,
}

impl From<S3Failure> for CopyError {
    fn from(failure: S3Failure) -> Self {
        match failure {
            S3Failure::SourceChanged(change) => CopyError::Superseded(change),
            S3Failure::Retryable { code, message } => CopyError::Failed(Failure {
                code,
                message,
                retryable: true,
            }),
            S3Failure::Fatal { code, message } => CopyError::Failed(Failure {
                code,
                message,
                retryable: false,
            }),
        }
    }
}

impl Failure {
    /// Work cut short by `reason` (retryable: the next invocation or run does it).
    pub fn stopped(reason: StopReason) -> Self {
        Failure {
            code: reason.code(),
            message: reason.message().into(),
            retryable: true,
        }
    }
}

impl Retryable for CopyError {
    fn is_retryable(&self) -> bool {
        matches!(self, CopyError::Failed(f) if f.retryable)
    }
}

/// One copy of one object to one target, as it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Where the object was (or was to be) written; in local mode with `DESTINATION_KEY`,
    /// under that name instead of the target's key.
    pub target: Target,
    /// Copied, superseded or failed.
    pub result: Result<Copied, CopyError>,
    /// Attempts of the most-retried request (0 when nothing was sent).
    pub attempts: u32,
}

impl Delivery {
    /// A failure of a copy made as an org's role says so: `… (as role arn:…)`, so a refusal
    /// points at the role's permissions rather than the function's.
    pub fn naming_role(mut self, role_arn: &str) -> Delivery {
        if let Err(CopyError::Failed(failure)) = &mut self.result {
            failure.message = if failure.message.is_empty() {
                format!("as role {role_arn}")
            } else {
                format!("{} (as role {role_arn})", failure.message)
            };
        }
        self
    }
}

/// An S3 bucket or, in local mode, a folder: where every target of a configuration goes.
pub enum Destination {
    /// Destination buckets, written by server-side copies.
    S3(S3Destination),
    /// `LOCAL_DEST/<bucket>/<key>`, in local mode.
    Folder(FolderDestination),
}

impl Destination {
    /// Copies `object` to `target`.
    pub async fn copy(&self, object: &SourceObject, target: &Target, options: &CopyOptions) -> Delivery {
        match self {
            Destination::S3(s3) => s3.copy(object, target, options).await,
            Destination::Folder(folder) => folder.copy(object, target, options).await,
        }
    }

    /// In local mode with `DESTINATION_KEY`, the one file name every copy is written under:
    /// an event with more than one object would overwrite its own copies.
    pub fn single_file_name(&self) -> Option<&str> {
        match self {
            Destination::S3(_) => None,
            Destination::Folder(folder) => folder.single_file_name(),
        }
    }

    /// The source's HEAD, read ahead of the copy so the copy does not wait for it; `None`
    /// when it failed (the copy reads it again, and
    /// reports what goes wrong) or in local mode (a file has no HEAD).
    pub async fn read_source_head(&self, object: &SourceObject, options: &CopyOptions) -> Option<SourceHead> {
        match self {
            Destination::S3(s3) => s3.read_source_head(object, options).await,
            Destination::Folder(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_failures_become_one_superseded_and_failures_that_keep_retryability() {
        assert_eq!(
            CopyError::from(S3Failure::SourceChanged(SourceChange::Deleted)),
            CopyError::Superseded(SourceChange::Deleted)
        );
        let retryable = CopyError::from(S3Failure::Retryable {
            code: FailureCode::s3("SlowDown"),
            message: "reduce your rate".into(),
        });
        assert!(retryable.is_retryable());
        assert_eq!(retryable.to_string(), "SlowDown: reduce your rate");
        let fatal = CopyError::from(S3Failure::Fatal {
            code: FailureCode::s3("AccessDenied"),
            message: String::new(),
        });
        assert!(!fatal.is_retryable());
        assert_eq!(fatal.to_string(), "AccessDenied");
    }
}
