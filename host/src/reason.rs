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
    /// A failure no other code describes (a record no path of the handler reported on).
    Other,
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
    /// The code of a failed copy from its failure code: an S3 error code
    /// (`s3::failure::classify` keeps S3's spelling, `HTTP<status>` when S3 gave none) or one
    /// of the crate's own names (`Timeout`, `ConnectionError`, `Deadline`, `LocalIo`, …).
    /// KMS is checked before access: a KMS refusal is an `AccessDenied`-like code whose fix
    /// is a key grant, not the role's S3 policy.
    pub fn from_failure_code(code: &str) -> ReasonCode {
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
            "Timeout" | "RequestTimeout" => ReasonCode::Timeout,
            "ConnectionError" | "ResponseError" | "InvalidResponse" => ReasonCode::Network,
            "Deadline" => ReasonCode::Deadline,
            "Interrupted" => ReasonCode::Interrupted,
            "LocalIo" => ReasonCode::LocalIo,
            "InvalidKey" => ReasonCode::InvalidKey,
            "UnsafeLocalKey" => ReasonCode::UnsafeLocalKey,
            "OneFileManyRecords" => ReasonCode::OneFileManyRecords,
            "AssumeRoleNotPermitted" => ReasonCode::AssumeRoleNotPermitted,
            // S3's answer to a CompleteMultipartUpload whose full-object checksum differs
            // (BadDigest), and the crate's own for a CopyObject answer that differs.
            "ChecksumMismatch" | "BadDigest" | "InvalidDigest" | "InvalidChecksum" => {
                ReasonCode::ChecksumMismatch
            }
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
    fn failure_codes_map_into_the_set() {
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
            ("Timeout", ReasonCode::Timeout),
            ("RequestTimeout", ReasonCode::Timeout),
            ("ConnectionError", ReasonCode::Network),
            ("Deadline", ReasonCode::Deadline),
            ("Interrupted", ReasonCode::Interrupted),
            ("LocalIo", ReasonCode::LocalIo),
            ("InvalidKey", ReasonCode::InvalidKey),
            ("UnsafeLocalKey", ReasonCode::UnsafeLocalKey),
            ("OneFileManyRecords", ReasonCode::OneFileManyRecords),
            ("AssumeRoleNotPermitted", ReasonCode::AssumeRoleNotPermitted),
            ("ChecksumMismatch", ReasonCode::ChecksumMismatch),
            ("BadDigest", ReasonCode::ChecksumMismatch),
            ("InvalidObjectState", ReasonCode::S3Error),
            // Retried (a role assumed again in between), and still refused or in conflict.
            ("ExpiredToken", ReasonCode::AccessDenied),
            ("TokenRefreshRequired", ReasonCode::AccessDenied),
            ("OperationAborted", ReasonCode::S3Error),
            ("HTTP400", ReasonCode::S3Error),
            ("HTTP5000", ReasonCode::S3Error),
            ("", ReasonCode::S3Error),
        ];
        for (code, expected) in cases {
            assert_eq!(ReasonCode::from_failure_code(code), expected, "{code:?}");
        }
    }
}
