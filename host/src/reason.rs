//! Why a record failed, as a stable code from a small set: [`ReasonCode`]. The free-text
//! `reason` of a report says what happened to this record; the code says which *kind* of
//! failure it was, so operators can graph, alarm and search by cause (the EMF `Failed`
//! metric carries it as the `ReasonCode` dimension) and the table in docs/operations.md
//! ("Failure reason codes") says what to do.
//!
//! The set is closed on purpose: a metric dimension with unbounded values (raw S3 error
//! codes, messages) would create a new metric per spelling. S3 error codes outside the set
//! become [`ReasonCode::S3Error`]; the raw code stays in the report's `errorCode`.

use serde::Serialize;

/// Declares [`ReasonCode`] from one list: the variants, [`ReasonCode::ALL`] and
/// [`ReasonCode::as_str`] (the variant's name, which is also serde's spelling) cannot drift.
macro_rules! reason_codes {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// The kind of a record's failure. Spelled in reports, logs and metrics exactly as the
        /// variant name (`AccessDenied`, `PluginTimeout`, …); new variants may be added, existing
        /// spellings never change.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        pub enum ReasonCode {
            $($(#[$doc])* $name,)*
        }

        impl ReasonCode {
            /// Every code, in declaration order (for docs and tests).
            pub const ALL: &[ReasonCode] = &[$(ReasonCode::$name,)*];

            /// The code as spelled in reports and metrics: the variant's name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ReasonCode::$name => stringify!($name),)*
                }
            }
        }
    };
}

reason_codes! {
    /// S3 refused the request (`AccessDenied`, `AllAccessDisabled`, …): the role or a bucket
    /// policy does not allow it.
    AccessDenied,
    /// A bucket named by the config or the event does not exist.
    NoSuchBucket,
    /// A KMS key refused or was unusable (`KMS.*` codes, `KMSAccessDenied`, …).
    KmsDenied,
    /// S3 throttled the request until the retries ran out (`SlowDown`, HTTP 429, …).
    SlowDown,
    /// S3 answered with a server error (5xx) until the retries ran out.
    ServerError,
    /// A request attempt timed out (client side or `RequestTimeout`) on every retry.
    Timeout,
    /// The connection failed or the response could not be read, on every retry.
    Network,
    /// Any other S3 error code; the code itself is in `errorCode`.
    S3Error,
    /// The Lambda invocation's deadline cut the record short (retried with the event).
    Deadline,
    /// A backfill was interrupted while the copy ran.
    Interrupted,
    /// The org's plugin trapped (panic, `unreachable`, out of memory) or answered `err`.
    PluginError,
    /// The org's plugin used up its instruction budget or did not decide within its time
    /// limit.
    PluginTimeout,
    /// The org's plugin answered with targets the org may not write to (or too many, or
    /// invalid keys); refused whatever `onError` says.
    PluginInvalidAnswer,
    /// The org's plugin could not be loaded (unreadable, sha256 mismatch, not a component).
    PluginNotLoaded,
    /// The record could not be understood (not JSON, missing fields, bad key encoding).
    InvalidRecord,
    /// No configuration could be loaded, so no record can be routed.
    ConfigUnavailable,
    /// Local mode could not read or write a file.
    LocalIo,
    /// A destination or source key that cannot be used (local mode: leaves the folder, a
    /// symbolic link).
    InvalidKey,
    /// Local mode refused a key with an empty or `.` segment (`org1//a.jpg`,
    /// `org1/./a.jpg`): another object than the key without it, but one file in a folder.
    UnsafeLocalKey,
    /// Local mode's `DESTINATION_KEY` and an invocation with more than one target (several
    /// objects, or a plugin that fans one out).
    OneFileManyRecords,
    /// The org's `roleArn` could not be assumed (`sts:AssumeRole` refused, unknown role,
    /// wrong `externalId`, STS unreachable or too slow); the reason names the role. Fix the
    /// role's trust policy or the function's `sts:AssumeRole` grant (`TenantRoleArns`).
    AssumeRoleNotPermitted,
    /// The copy's full-object checksum differs from the source's (CopyObject's answer, or S3
    /// refused to complete a multipart copy with the source's value): the destination does
    /// not hold the source's bytes. Not retried within the invocation (the event's retry copies
    /// again); a repeat means a fault on the
    /// storage side, for AWS support.
    ChecksumMismatch,
    /// The record names a bucket other than `SOURCE_BUCKET`: refused, whatever the
    /// function's credentials could read there (IAM is the first line, this the second).
    NotTheSourceBucket,
    /// An org with `deletes: "propagate"` and a removal whose target bucket keeps no versions
    /// (versioning never enabled, or suspended): the delete could not be undone, so it is not
    /// made. Enable versioning on the bucket, or set the org's `deletes` to
    /// `"propagate-unversioned"` to delete permanently. `check` reports it too.
    DstBucketNotVersioned,
    /// `check`: the org's destination bucket does not exist (HeadBucket answered 404).
    DstBucketNotFound,
    /// `check`: the org's destination bucket belongs to another account than its
    /// `expectedBucketOwner`.
    DstBucketOwnerMismatch,
    /// The source object has an Object Lock retention or legal hold, its org's `objectLock` is
    /// `"copy"` (the default) and the destination bucket has no Object Lock enabled: the
    /// copy would lose the lock, so it is not made. Enable Object Lock on the destination
    /// bucket, or set the org's `objectLock` to `"ignore"`.
    DstObjectLockConfigMissing,
    /// `check`: the org's plugin could not be loaded or instantiated (a record's failure
    /// for the same cause is [`ReasonCode::PluginNotLoaded`]).
    PluginNotLoadable,
    /// A failure no other code describes (a record no path of the handler reported on).
    Other,
}

/// Declares [`FailureCode`] from one list: each of the crate's own failures, spelled as its
/// variant name in a report's `errorCode`, beside the [`ReasonCode`] it is of.
macro_rules! failure_codes {
    ($($(#[$doc:meta])* $name:ident => $reason:ident,)*) => {
        /// What a failed request or copy ran into: S3's own error code, or one of the crate's
        /// own failures. [`FailureCode::reason`] says which [`ReasonCode`] it is of;
        /// [`FailureCode::as_str`] is the report's `errorCode`.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum FailureCode {
            /// An error code as S3 answered it (`AccessDenied`, `KMS.DisabledException`, …),
            /// or `HTTP<status>` when S3 gave none. Only these go through S3's code table.
            S3(String),
            $($(#[$doc])* $name,)*
        }

        impl FailureCode {
            /// The code as spelled in a report's `errorCode`: S3's own, or the variant's name.
            pub fn as_str(&self) -> &str {
                match self {
                    FailureCode::S3(code) => code,
                    $(FailureCode::$name => stringify!($name),)*
                }
            }

            /// The kind of failure this is, for the report's `reasonCode` and the metrics.
            pub fn reason(&self) -> ReasonCode {
                match self {
                    FailureCode::S3(code) => ReasonCode::from_s3_code(code),
                    $(FailureCode::$name => ReasonCode::$reason,)*
                }
            }
        }
    };
}

failure_codes! {
    /// A request attempt, or a download's whole body, did not finish in time.
    Timeout => Timeout,
    /// The connection to S3 failed.
    ConnectionError => Network,
    /// S3's response could not be read.
    ResponseError => Network,
    /// S3 answered without what the request needs (an upload without its id, a part
    /// without its ETag).
    InvalidResponse => Network,
    /// The SDK refused to build or send the request.
    InvalidRequest => S3Error,
    /// The org's `roleArn` could not be assumed for the request.
    AssumeRoleNotPermitted => AssumeRoleNotPermitted,
    /// The Lambda invocation's deadline cut the work short.
    Deadline => Deadline,
    /// The backfill was interrupted.
    Interrupted => Interrupted,
    /// The copy's full-object checksum differs from the source's.
    ChecksumMismatch => ChecksumMismatch,
    /// A removal's target bucket keeps no versions, and the org's `deletes` is `propagate`.
    DstBucketNotVersioned => DstBucketNotVersioned,
    /// The source's HEAD failed in a way a copy cannot go on from.
    HeadFailed => S3Error,
    /// A listing named a key that could not be decoded.
    InvalidListedKey => S3Error,
    /// An object's body broke off while it was read.
    BodyRead => Network,
    /// Local mode could not read or write a file.
    LocalIo => LocalIo,
    /// Local mode refused a key that would leave the folder or pass a symbolic link.
    InvalidKey => InvalidKey,
    /// Local mode refused a key with an empty or `.` segment.
    UnsafeLocalKey => UnsafeLocalKey,
    /// A locked source, an org whose `objectLock` is `"copy"`, and a destination bucket
    /// without Object Lock.
    DstObjectLockConfigMissing => DstObjectLockConfigMissing,
}

impl FailureCode {
    /// S3's own error `code`.
    pub fn s3(code: impl Into<String>) -> Self {
        FailureCode::S3(code.into())
    }

    /// Whether this is S3's own error `code`.
    pub fn is_s3(&self, code: &str) -> bool {
        matches!(self, FailureCode::S3(c) if c == code)
    }
}

impl std::fmt::Display for FailureCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// S3 error codes that mean S3 throttled the request.
const THROTTLING: [&str; 6] = [
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequests",
    "HTTP429",
];

impl ReasonCode {
    /// The code of a failure S3 answered with its own error `code` (`HTTP<status>` when S3
    /// gave none). KMS is checked before access: a KMS refusal is an `AccessDenied`-like code
    /// whose fix is a key grant, not the role's S3 policy.
    pub fn from_s3_code(code: &str) -> ReasonCode {
        let lower = code.to_ascii_lowercase();
        if lower.starts_with("kms") {
            return ReasonCode::KmsDenied;
        }
        match code {
            "AccessDenied"
            | "AllAccessDisabled"
            | "AccountProblem"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "TokenRefreshRequired"
            | "InvalidToken"
            | "HTTP403" => ReasonCode::AccessDenied,
            "NoSuchBucket" => ReasonCode::NoSuchBucket,
            "RequestTimeout" => ReasonCode::Timeout,
            // S3's answer to a CompleteMultipartUpload whose full-object checksum differs.
            "BadDigest" | "InvalidDigest" | "InvalidChecksum" => ReasonCode::ChecksumMismatch,
            "InternalError" | "ServiceUnavailable" => ReasonCode::ServerError,
            _ if THROTTLING.contains(&code) => ReasonCode::SlowDown,
            _ if code.strip_prefix("HTTP5").is_some_and(|rest| rest.len() == 2) => ReasonCode::ServerError,
            _ => ReasonCode::S3Error,
        }
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spelling_is_the_variant_name_and_serde_agrees() {
        for code in ReasonCode::ALL {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::String(code.as_str().into())
            );
            assert_eq!(code.to_string(), code.as_str());
        }
    }

    #[test]
    fn s3_codes_map_into_the_set() {
        let cases = [
            ("AccessDenied", ReasonCode::AccessDenied),
            ("HTTP403", ReasonCode::AccessDenied),
            ("NoSuchBucket", ReasonCode::NoSuchBucket),
            ("KMS.DisabledException", ReasonCode::KmsDenied),
            ("KMSAccessDenied", ReasonCode::KmsDenied),
            ("SlowDown", ReasonCode::SlowDown),
            ("ThrottlingException", ReasonCode::SlowDown),
            ("HTTP429", ReasonCode::SlowDown),
            ("InternalError", ReasonCode::ServerError),
            ("HTTP503", ReasonCode::ServerError),
            ("RequestTimeout", ReasonCode::Timeout),
            ("BadDigest", ReasonCode::ChecksumMismatch),
            ("InvalidObjectState", ReasonCode::S3Error),
            // Retried (a role assumed again in between), and still refused or in conflict.
            ("ExpiredToken", ReasonCode::AccessDenied),
            ("TokenRefreshRequired", ReasonCode::AccessDenied),
            ("OperationAborted", ReasonCode::S3Error),
            ("HTTP400", ReasonCode::S3Error),
            ("HTTP5000", ReasonCode::S3Error),
            ("", ReasonCode::S3Error),
            // The crate's own names are not S3's: S3 never answers with them.
            ("Deadline", ReasonCode::S3Error),
            ("LocalIo", ReasonCode::S3Error),
        ];
        for (code, expected) in cases {
            assert_eq!(FailureCode::s3(code).reason(), expected, "{code:?}");
            assert_eq!(FailureCode::s3(code).as_str(), code);
        }
    }

    #[test]
    fn the_crates_own_failures_are_spelled_as_their_names() {
        let cases = [
            (FailureCode::Timeout, "Timeout", ReasonCode::Timeout),
            (
                FailureCode::ConnectionError,
                "ConnectionError",
                ReasonCode::Network,
            ),
            (FailureCode::Deadline, "Deadline", ReasonCode::Deadline),
            (FailureCode::Interrupted, "Interrupted", ReasonCode::Interrupted),
            (FailureCode::LocalIo, "LocalIo", ReasonCode::LocalIo),
            (FailureCode::InvalidKey, "InvalidKey", ReasonCode::InvalidKey),
            (
                FailureCode::UnsafeLocalKey,
                "UnsafeLocalKey",
                ReasonCode::UnsafeLocalKey,
            ),
            (
                FailureCode::AssumeRoleNotPermitted,
                "AssumeRoleNotPermitted",
                ReasonCode::AssumeRoleNotPermitted,
            ),
            (
                FailureCode::ChecksumMismatch,
                "ChecksumMismatch",
                ReasonCode::ChecksumMismatch,
            ),
        ];
        for (code, spelled, reason) in cases {
            assert_eq!(code.as_str(), spelled);
            assert_eq!(code.to_string(), spelled);
            assert_eq!(code.reason(), reason, "{code:?}");
        }
    }
}
