//! What an S3 error means for the work at hand: the source changed or vanished, worth
//! another attempt, or final. Every S3 call of the crate goes through [`classify`].

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use super::roles::AssumeRoleFailed;
use crate::reason::FailureCode;

/// What an S3 error means for the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Failure {
    /// The source is no longer the object the event announced (412, or deleted since):
    /// the destination layer reports such a copy as superseded.
    SourceChanged(SourceChange),
    /// Worth another attempt: throttling, 5xx, timeouts, broken connections.
    Retryable {
        /// S3 error code, or the transport failure.
        code: FailureCode,
        /// Details.
        message: String,
    },
    /// Will not succeed by retrying (AccessDenied, NoSuchBucket, InvalidRequest, …).
    Fatal {
        /// S3 error code, or the crate's own failure.
        code: FailureCode,
        /// Details.
        message: String,
    },
}

/// How the source stopped being the object a record announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceChange {
    /// A newer version replaced it (the copy's if-match answered 412); that version's own
    /// event exports it.
    Overwritten,
    /// The key is not there any more (404): deleted since, or never there (a Batch
    /// Operations task for a missing key, which `treatMissingKeysAs` decides).
    Deleted,
}

impl std::fmt::Display for SourceChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SourceChange::Overwritten => "source was overwritten since the event (ETag no longer matches)",
            SourceChange::Deleted => "source object no longer exists (deleted since the event)",
        })
    }
}

impl std::fmt::Display for S3Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            S3Failure::SourceChanged(change) => change.fmt(f),
            S3Failure::Retryable { code, message } | S3Failure::Fatal { code, message } => {
                if message.is_empty() {
                    code.fmt(f)
                } else {
                    write!(f, "{code}: {message}")
                }
            }
        }
    }
}

const THROTTLING_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequests",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
];

/// Codes S3 answers with a 4xx that another attempt can still get past: a conflicting
/// operation on the bucket or key was in progress (`OperationAborted`: "try again"), or the
/// request was signed with credentials that expired (a role's client assumes the role
/// again before the retry: see `s3::roles`).
const RETRY_AFTER_CODES: &[&str] = &["OperationAborted", "ExpiredToken", "TokenRefreshRequired"];

/// Sorts an SDK error into superseded, retryable or fatal.
pub fn classify<E>(err: &SdkError<E, HttpResponse>) -> S3Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let Some(failed) = assume_role_failure(err) {
        // A role's credentials could not be renewed for this request.
        let (code, message) = (FailureCode::AssumeRoleNotPermitted, failed.to_string());
        return if failed.retryable {
            S3Failure::Retryable { code, message }
        } else {
            S3Failure::Fatal { code, message }
        };
    }
    match err {
        SdkError::ServiceError(context) => {
            let code = context.err().code().unwrap_or_default().to_string();
            let message = context.err().message().unwrap_or_default().to_string();
            let status = context.raw().status().as_u16();
            classify_service(status, code, message)
        }
        // The attempt timeout, or the connector's own read timeout (whichever fires first).
        SdkError::TimeoutError(_) => S3Failure::Retryable {
            code: FailureCode::Timeout,
            message: "request timed out".into(),
        },
        SdkError::DispatchFailure(failure) if failure.is_timeout() => S3Failure::Retryable {
            code: FailureCode::Timeout,
            message: format!("request timed out: {}", source_chain(err)),
        },
        SdkError::DispatchFailure(failure) if !failure.is_user() => S3Failure::Retryable {
            code: FailureCode::ConnectionError,
            message: source_chain(err),
        },
        SdkError::ResponseError(_) => S3Failure::Retryable {
            code: FailureCode::ResponseError,
            message: source_chain(err),
        },
        _ => S3Failure::Fatal {
            code: FailureCode::InvalidRequest,
            message: source_chain(err),
        },
    }
}

/// Classification of an S3 error response by HTTP status and error code.
pub fn classify_service(status: u16, code: String, message: String) -> S3Failure {
    if status == 412 || code == "PreconditionFailed" {
        return S3Failure::SourceChanged(SourceChange::Overwritten);
    }
    if code == "NoSuchKey" || (status == 404 && (code.is_empty() || code == "NotFound")) {
        return S3Failure::SourceChanged(SourceChange::Deleted);
    }
    let code = FailureCode::S3(if code.is_empty() {
        format!("HTTP{status}")
    } else {
        code
    });
    if status >= 500
        || status == 429
        || THROTTLING_CODES.contains(&code.as_str())
        || RETRY_AFTER_CODES.contains(&code.as_str())
    {
        S3Failure::Retryable { code, message }
    } else {
        S3Failure::Fatal { code, message }
    }
}

/// The role's failure to renew credentials, when that is why the request was not sent.
fn assume_role_failure<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a AssumeRoleFailed> {
    std::iter::successors(Some(err), |e| e.source()).find_map(|e| e.downcast_ref::<AssumeRoleFailed>())
}

fn source_chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut current = err.source();
    while let Some(e) = current {
        parts.push(e.to_string());
        current = e.source();
    }
    parts.dedup();
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        let c = |status, code: &str| classify_service(status, code.into(), String::new());
        assert_eq!(
            c(412, "PreconditionFailed"),
            S3Failure::SourceChanged(SourceChange::Overwritten)
        );
        assert_eq!(
            c(404, "NoSuchKey"),
            S3Failure::SourceChanged(SourceChange::Deleted)
        );
        assert_eq!(c(404, ""), S3Failure::SourceChanged(SourceChange::Deleted));
        assert!(
            matches!(c(404, "NoSuchBucket"), S3Failure::Fatal { code, .. } if code.is_s3("NoSuchBucket"))
        );
        assert!(matches!(c(403, "AccessDenied"), S3Failure::Fatal { .. }));
        assert!(matches!(c(400, "InvalidRequest"), S3Failure::Fatal { .. }));
        assert!(matches!(c(503, "SlowDown"), S3Failure::Retryable { .. }));
        assert!(matches!(c(500, ""), S3Failure::Retryable { code, .. } if code.is_s3("HTTP500")));
        assert!(matches!(c(400, "RequestTimeout"), S3Failure::Retryable { .. }));
        assert!(matches!(c(200, "InternalError"), S3Failure::Retryable { .. }));
    }

    #[test]
    fn conflicts_and_expired_credentials_are_worth_another_attempt() {
        let c = |status, code: &str| classify_service(status, code.into(), String::new());
        assert!(
            matches!(c(409, "OperationAborted"), S3Failure::Retryable { code, .. } if code.is_s3("OperationAborted"))
        );
        assert!(
            matches!(c(400, "ExpiredToken"), S3Failure::Retryable { code, .. } if code.is_s3("ExpiredToken"))
        );
        assert!(matches!(
            c(400, "TokenRefreshRequired"),
            S3Failure::Retryable { .. }
        ));
        assert!(matches!(c(400, "InvalidToken"), S3Failure::Fatal { .. }));
        assert!(matches!(c(409, "BucketAlreadyExists"), S3Failure::Fatal { .. }));
    }

    #[test]
    fn a_role_that_cannot_be_renewed_is_named() {
        use aws_sdk_s3::error::ConnectorError;
        let failed = |retryable| AssumeRoleFailed {
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            reason: "STS answered HTTP 403 AccessDenied".into(),
            retryable,
        };
        let sdk = |retryable| {
            let source =
                aws_credential_types::provider::error::CredentialsError::provider_error(failed(retryable));
            SdkError::<aws_sdk_s3::operation::copy_object::CopyObjectError, HttpResponse>::dispatch_failure(
                ConnectorError::other(Box::new(source), None),
            )
        };
        let fatal = classify(&sdk(false));
        assert!(
            matches!(
                &fatal,
                S3Failure::Fatal {
                    code: FailureCode::AssumeRoleNotPermitted,
                    ..
                }
            ),
            "{fatal:?}"
        );
        assert!(
            fatal
                .to_string()
                .contains("could not assume role arn:aws:iam::123456789012:role/r")
        );
        assert!(matches!(
            classify(&sdk(true)),
            S3Failure::Retryable {
                code: FailureCode::AssumeRoleNotPermitted,
                ..
            }
        ));
    }
}
