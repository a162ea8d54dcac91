//! One role's credentials ([`Slot`]): assumed with `sts:AssumeRole` (bounded by the
//! timeout), kept until they are due or S3 refused them, a failure remembered for
//! [`FAILURE_TTL`]; and the credentials provider of the role's client, which asks the slot
//! before every request.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_config::SdkConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::future;
use aws_sdk_s3::config::{Credentials, ProvideCredentials};

use super::sts_answer::{describe, one_line};
use super::{AssumeRoleFailed, AssumedRole};

/// Assumed credentials are renewed this long before they expire (STS gives an hour), or a
/// quarter of their lifetime before when they were given for less than 20 minutes.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);
/// A failed AssumeRole is answered from memory this long before STS is asked again.
pub const FAILURE_TTL: Duration = Duration::from_secs(10);

/// One role's credentials: what its client's requests are signed with.
#[derive(Debug)]
pub(super) struct Slot {
    role: AssumedRole,
    session_name: String,
    sts: Option<SdkConfig>,
    timeout: Duration,
    session_length: Option<Duration>,
    state: tokio::sync::Mutex<SlotState>,
    /// The access key id of credentials S3 answered `ExpiredToken` to (set by the client's
    /// interceptor, outside the slot's lock).
    rejected: Mutex<Option<String>>,
}

#[derive(Default, Debug)]
struct SlotState {
    provider: Option<AssumeRoleProvider>,
    current: Option<Assumed>,
    /// The last failure, and when it happened.
    failed: Option<(AssumeRoleFailed, Instant)>,
}

#[derive(Debug)]
struct Assumed {
    credentials: Credentials,
    /// When to assume again (`None`: credentials without an expiry).
    renew_at: Option<SystemTime>,
}

/// When credentials assumed at `now` that expire at `expiry` are due for renewal:
/// [`REFRESH_BEFORE`] before they expire, or a quarter of their lifetime when that is less.
fn renewal_time(now: SystemTime, expiry: Option<SystemTime>) -> Option<SystemTime> {
    let expiry = expiry?;
    let lifetime = expiry.duration_since(now).unwrap_or_default();
    Some(expiry - REFRESH_BEFORE.min(lifetime / 4))
}

impl Slot {
    /// The slot of `role`, with no credentials yet: the first request assumes it, in an STS
    /// session named `session_name`, with `sts` (`None`: every request fails), `timeout` and
    /// `session_length`.
    pub(super) fn new(
        role: AssumedRole,
        session_name: String,
        sts: Option<SdkConfig>,
        timeout: Duration,
        session_length: Option<Duration>,
    ) -> Self {
        Slot {
            role,
            session_name,
            sts,
            timeout,
            session_length,
            state: tokio::sync::Mutex::new(SlotState::default()),
            rejected: Mutex::new(None),
        }
    }

    /// The role's credentials: the current ones while they are not due and S3 has not
    /// refused them, else newly assumed ones (bounded by the timeout; a failure is
    /// remembered for [`FAILURE_TTL`], and meanwhile credentials that have not expired yet
    /// are still used).
    pub(super) async fn credentials(&self) -> Result<Credentials, AssumeRoleFailed> {
        let mut state = self.state.lock().await;
        let now = SystemTime::now();
        let rejected = self
            .rejected
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let refused = |c: &Credentials| rejected.as_deref() == Some(c.access_key_id());
        // Not refused by S3 and not expired: still good to sign with, if not for long.
        let usable =
            |a: &Assumed| !refused(&a.credentials) && a.credentials.expiry().is_none_or(|at| at > now);
        if let Some(current) = &state.current
            && !refused(&current.credentials)
            && current.renew_at.is_none_or(|at| now < at)
        {
            return Ok(current.credentials.clone());
        }
        if let Some((failure, at)) = &state.failed
            && at.elapsed() < FAILURE_TTL
        {
            return match &state.current {
                Some(current) if usable(current) => Ok(current.credentials.clone()),
                _ => Err(failure.clone()),
            };
        }
        let role = &self.role;
        let Some(sts) = &self.sts else {
            return Err(AssumeRoleFailed {
                role_arn: role.role_arn.clone(),
                reason: "the function has no credentials to call sts:AssumeRole with".into(),
                retryable: false,
            });
        };
        if state.provider.is_none() {
            let mut builder =
                AssumeRoleProvider::builder(&role.role_arn).session_name(self.session_name.clone());
            if let Some(id) = &role.external_id {
                builder = builder.external_id(id.clone());
            }
            if let Some(length) = self.session_length {
                builder = builder.session_length(length);
            }
            state.provider = Some(builder.configure(sts).build().await);
        }
        let provider = state.provider.as_ref().expect("set above");
        let answer = tokio::time::timeout(self.timeout, provider.provide_credentials()).await;
        let failure = |reason: String, retryable: bool| AssumeRoleFailed {
            role_arn: role.role_arn.clone(),
            reason: one_line(&reason),
            retryable,
        };
        let failed = match answer {
            Ok(Ok(credentials)) => {
                let renew_at = renewal_time(SystemTime::now(), credentials.expiry());
                state.current = Some(Assumed {
                    credentials: credentials.clone(),
                    renew_at,
                });
                state.failed = None;
                tracing::debug!(role = %role.role_arn, "assumed role");
                return Ok(credentials);
            }
            Ok(Err(error)) => {
                let (text, retryable) = describe(&error);
                failure(text, retryable)
            }
            Err(_) => failure(
                format!("STS did not answer within {} ms", self.timeout.as_millis()),
                true,
            ),
        };
        state.failed = Some((failed.clone(), Instant::now()));
        // Credentials that are about to expire still work until they do.
        if let Some(current) = &state.current
            && usable(current)
        {
            tracing::warn!(role = %role.role_arn, reason = %failed.reason, "could not renew the role's credentials; using the current ones until they expire");
            return Ok(current.credentials.clone());
        }
        tracing::warn!(role = %role.role_arn, reason = %failed.reason, "could not assume role");
        Err(failed)
    }

    /// S3 answered `ExpiredToken` to a request signed with `access_key_id`: those
    /// credentials are not used again.
    pub(super) fn reject(&self, access_key_id: &str) {
        tracing::debug!(role = %self.role.role_arn, "S3 refused the role's credentials as expired; assuming it again");
        *self
            .rejected
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(access_key_id.to_string());
    }
}

/// The credentials provider of a role's client: its slot.
#[derive(Debug)]
pub(super) struct RoleCredentials(pub(super) Arc<Slot>);

impl ProvideCredentials for RoleCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.0
                .credentials()
                .await
                .map_err(CredentialsError::provider_error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_before_expiry() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = now + Duration::from_secs(3600);
        assert_eq!(renewal_time(now, Some(hour)), Some(hour - REFRESH_BEFORE));
        let short = now + Duration::from_secs(8);
        assert_eq!(renewal_time(now, Some(short)), Some(now + Duration::from_secs(6)));
        let past = now - Duration::from_secs(1);
        assert_eq!(renewal_time(now, Some(past)), Some(past));
        assert_eq!(renewal_time(now, None), None);
    }
}
