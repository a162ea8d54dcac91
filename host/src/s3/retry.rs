//! Retrying the retryable with jittered exponential backoff, counting attempts.
//!
//! The SDK's own retries are off ([`super::client`]): this loop owns them, so the config's
//! `retry` count is exact and every report can say how many attempts a request took.

use std::future::Future;
use std::time::Duration;

use super::failure::S3Failure;

/// Longest single backoff step between retries.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(20);

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
    /// `extra_attempts` after the first (the config's `retry`), backoff from `base_delay`
    /// (`RETRY_BASE_DELAY_MS`) up to [`MAX_RETRY_DELAY`].
    pub fn new(extra_attempts: u32, base_delay: Duration) -> Self {
        RetryPolicy {
            extra_attempts,
            base_delay,
            max_delay: MAX_RETRY_DELAY,
        }
    }

    /// Backoff before attempt `attempt + 1` (attempt counts from 1): uniform in `[0, min(max, base·2^(attempt-1))]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.max_delay);
        cap.mul_f64(fastrand::f64())
    }
}

/// Runs `operation` until it succeeds, fails for good, or the attempts are used up.
/// Returns the result and the number of attempts made.
pub async fn with_retries<T, E, F, Fut>(policy: &RetryPolicy, mut operation: F) -> (Result<T, E>, u32)
where
    E: Retryable,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        match operation().await {
            Err(failure) if failure.is_retryable() && attempt <= policy.extra_attempts => {
                let delay = policy.delay(attempt);
                tracing::debug!(attempt, %failure, ?delay, "retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            result => return (result, attempt),
        }
    }
}

/// An error that may be worth another attempt.
pub trait Retryable: std::fmt::Display {
    /// Whether another attempt could succeed (throttling, 5xx, timeouts, broken streams).
    fn is_retryable(&self) -> bool;
}

impl Retryable for S3Failure {
    fn is_retryable(&self) -> bool {
        matches!(self, S3Failure::Retryable { .. })
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
                code: crate::reason::FailureCode::s3("SlowDown"),
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
                code: crate::reason::FailureCode::s3("AccessDenied"),
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
                    code: crate::reason::FailureCode::s3("HTTP500"),
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
