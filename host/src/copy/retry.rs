//! Classifying S3 errors and retrying the retryable ones with jittered exponential backoff.

use std::future::Future;
use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first (the config's `retry`).
    pub extra_attempts: u32,
    /// First backoff step; doubled per attempt, with full jitter.
    pub base_delay: Duration,
    /// Upper bound of one backoff step.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// Backoff before attempt `attempt + 1` (attempt counts from 1): uniform in `[0, min(max, base·2^(attempt-1))]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.max_delay);
        cap.mul_f64(fastrand::f64())
    }
}

/// What an S3 error means for the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Failure {
    /// The source is no longer the object the event announced (412, or deleted since).
    Superseded(String),
    /// Worth another attempt: throttling, 5xx, timeouts, broken connections.
    Retryable {
        /// S3 error code, or a name for the transport failure.
        code: String,
        /// Details.
        message: String,
    },
    /// Will not succeed by retrying (AccessDenied, NoSuchBucket, InvalidRequest, …).
    Fatal {
        /// S3 error code.
        code: String,
        /// Details.
        message: String,
    },
}

impl S3Failure {
    /// The error code, for reports.
    pub fn code(&self) -> &str {
        match self {
            S3Failure::Superseded(_) => "Superseded",
            S3Failure::Retryable { code, .. } | S3Failure::Fatal { code, .. } => code,
        }
    }
}

impl std::fmt::Display for S3Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            S3Failure::Superseded(why) => f.write_str(why),
            S3Failure::Retryable { code, message } | S3Failure::Fatal { code, message } => {
                if message.is_empty() {
                    f.write_str(code)
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

/// Sorts an SDK error into superseded, retryable or fatal.
pub fn classify<E>(err: &SdkError<E, HttpResponse>) -> S3Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(context) => {
            let code = context.err().code().unwrap_or_default().to_string();
            let message = context.err().message().unwrap_or_default().to_string();
            let status = context.raw().status().as_u16();
            classify_service(status, code, message)
        }
        SdkError::TimeoutError(_) => S3Failure::Retryable {
            code: "Timeout".into(),
            message: "request timed out".into(),
        },
        SdkError::DispatchFailure(failure) if !failure.is_user() => S3Failure::Retryable {
            code: "ConnectionError".into(),
            message: source_chain(err),
        },
        SdkError::ResponseError(_) => S3Failure::Retryable {
            code: "ResponseError".into(),
            message: source_chain(err),
        },
        _ => S3Failure::Fatal {
            code: "InvalidRequest".into(),
            message: source_chain(err),
        },
    }
}

/// Classification of an S3 error response by HTTP status and error code.
pub fn classify_service(status: u16, code: String, message: String) -> S3Failure {
    if status == 412 || code == "PreconditionFailed" {
        return S3Failure::Superseded(
            "source was overwritten since the event (ETag no longer matches)".into(),
        );
    }
    if code == "NoSuchKey" || (status == 404 && (code.is_empty() || code == "NotFound")) {
        return S3Failure::Superseded("source object no longer exists (deleted since the event)".into());
    }
    let code = if code.is_empty() {
        format!("HTTP{status}")
    } else {
        code
    };
    if status >= 500 || status == 429 || THROTTLING_CODES.contains(&code.as_str()) {
        S3Failure::Retryable { code, message }
    } else {
        S3Failure::Fatal { code, message }
    }
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

/// Runs `operation` until it succeeds, fails for good, or the attempts are used up.
/// Returns the result and the number of attempts made.
pub async fn with_retries<T, F, Fut>(policy: &RetryPolicy, mut operation: F) -> (Result<T, S3Failure>, u32)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, S3Failure>>,
{
    let mut attempt = 1;
    loop {
        match operation().await {
            Ok(value) => return (Ok(value), attempt),
            Err(S3Failure::Retryable { code, message }) if attempt <= policy.extra_attempts => {
                let delay = policy.delay(attempt);
                tracing::debug!(attempt, %code, %message, ?delay, "retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(failure) => return (Err(failure), attempt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn policy(extra: u32) -> RetryPolicy {
        RetryPolicy {
            extra_attempts: extra,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    #[test]
    fn statuses_and_codes() {
        let c = |status, code: &str| classify_service(status, code.into(), String::new());
        assert!(matches!(c(412, "PreconditionFailed"), S3Failure::Superseded(_)));
        assert!(matches!(c(404, "NoSuchKey"), S3Failure::Superseded(_)));
        assert!(matches!(c(404, ""), S3Failure::Superseded(_)));
        assert!(matches!(c(404, "NoSuchBucket"), S3Failure::Fatal { code, .. } if code == "NoSuchBucket"));
        assert!(matches!(c(403, "AccessDenied"), S3Failure::Fatal { .. }));
        assert!(matches!(c(400, "InvalidRequest"), S3Failure::Fatal { .. }));
        assert!(matches!(c(503, "SlowDown"), S3Failure::Retryable { .. }));
        assert!(matches!(c(500, ""), S3Failure::Retryable { code, .. } if code == "HTTP500"));
        assert!(matches!(c(400, "RequestTimeout"), S3Failure::Retryable { .. }));
        assert!(matches!(c(200, "InternalError"), S3Failure::Retryable { .. }));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            extra_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
        };
        for _ in 0..100 {
            assert!(p.delay(1) <= Duration::from_millis(100));
            assert!(p.delay(2) <= Duration::from_millis(200));
            assert!(p.delay(9) <= Duration::from_millis(300));
        }
    }

    #[tokio::test]
    async fn retries_exactly_the_configured_count() {
        let calls = AtomicU32::new(0);
        let (result, attempts) = with_retries(&policy(2), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(S3Failure::Retryable {
                code: "SlowDown".into(),
                message: String::new(),
            })
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(attempts, 3);
        assert!(matches!(result, Err(S3Failure::Retryable { .. })));
    }

    #[tokio::test]
    async fn fatal_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let (_, attempts) = with_retries(&policy(5), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(S3Failure::Fatal {
                code: "AccessDenied".into(),
                message: String::new(),
            })
        })
        .await;
        assert_eq!((calls.load(Ordering::SeqCst), attempts), (1, 1));
    }

    #[tokio::test]
    async fn success_after_a_retry() {
        let calls = AtomicU32::new(0);
        let (result, attempts) = with_retries(&policy(1), || async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(S3Failure::Retryable {
                    code: "HTTP500".into(),
                    message: String::new(),
                })
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!((result, attempts), (Ok(7), 2));
    }
}
