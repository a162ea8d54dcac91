//! [`RoleClients`]: one S3 client per cross-account role (`roleArn` + `externalId`), built
//! lazily from the function's own client with only the credentials replaced: credentials
//! from `sts:AssumeRole`, kept until shortly before they expire and then assumed again.
//!
//! Each role has its own slot and its own lock: a role whose STS call is slow or refused
//! delays only the records of the orgs that use it. The map of slots is locked only to find
//! or add a slot, never across an STS call. Every STS call is bounded
//! ([`RoleClients::new`]'s timeout), and a refusal is remembered for [`FAILURE_TTL`] so a
//! burst of one org's records does not queue behind one STS timeout after another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_config::SdkConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, IdentityCache, ProvideCredentials, SharedCredentialsProvider,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::config::AssumedRole;

/// Assumed credentials are renewed this long before they expire (STS gives an hour).
pub const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);
/// A failed AssumeRole is answered from memory this long before STS is asked again.
pub const FAILURE_TTL: Duration = Duration::from_secs(10);
/// Longest wait for a connection to STS.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest reason kept from an STS error.
const MAX_REASON: usize = 600;

/// The role could not be assumed: the org's records fail with `AssumeRoleNotPermitted`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not assume role {role_arn}: {reason}")]
pub struct AssumeRoleFailed {
    /// The role's ARN.
    pub role_arn: String,
    /// What STS (or the connection to it) answered, on one line.
    pub reason: String,
    /// A timeout or connection failure (worth another attempt later), not a refusal.
    pub retryable: bool,
}

/// The S3 clients of the orgs' roles, shared by every record and every org that names the
/// same role.
pub struct RoleClients {
    base: Client,
    /// `None` when no credentials to call STS with were given.
    sts: Option<SdkConfig>,
    timeout: Duration,
    slots: Mutex<HashMap<AssumedRole, Arc<Slot>>>,
}

struct Slot {
    session_name: String,
    state: tokio::sync::Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    provider: Option<AssumeRoleProvider>,
    /// The client with the current credentials, and when they expire.
    current: Option<(Client, Option<SystemTime>)>,
    /// The last failure, and when it happened.
    failed: Option<(AssumeRoleFailed, Instant)>,
}

impl RoleClients {
    /// Role clients derived from `base` (its endpoint, region, timeouts, HTTP connector, no
    /// SDK retries). AssumeRole is signed with `credentials` (those of `base`: the SDK cannot
    /// read them back from a client; `None` fails every role), sent to `sts_endpoint` (a
    /// local server) or the region's STS, and given at most `timeout` per role.
    pub fn new(
        base: &Client,
        credentials: Option<SharedCredentialsProvider>,
        sts_endpoint: Option<&str>,
        timeout: Duration,
    ) -> Self {
        let conf = base.config();
        let mut sts = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT.min(timeout))
                    .read_timeout(timeout)
                    .operation_attempt_timeout(timeout)
                    .operation_timeout(timeout)
                    .build(),
            );
        sts.set_region(conf.region().cloned());
        sts.set_credentials_provider(credentials.clone());
        // The S3 client's own (the SDK's default, proxy settings included). Beside a
        // plain-http S3 endpoint it trusts no TLS root: an `https` STS is then refused by
        // the certificate check, as it would refuse a local server's keys anyway.
        sts.set_http_client(conf.http_client());
        sts.set_sleep_impl(conf.sleep_impl());
        sts.set_time_source(Some(conf.time_source().unwrap_or_default()));
        sts.set_endpoint_url(sts_endpoint.map(str::to_string));
        RoleClients {
            base: base.clone(),
            sts: credentials.map(|_| sts.build()),
            timeout,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The client whose requests are signed as `role`, assuming it first when there are no
    /// credentials yet or they expire within [`REFRESH_BEFORE`]. `org` names the STS session
    /// (`artifact-export-<org>`) when this is the role's first use.
    pub async fn client(&self, role: &AssumedRole, org: &str) -> Result<Client, AssumeRoleFailed> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            slots
                .entry(role.clone())
                .or_insert_with(|| Arc::new(Slot::new(org)))
                .clone()
        };
        let mut state = slot.state.lock().await;
        let now = SystemTime::now();
        let fresh = |expiry: &Option<SystemTime>| {
            expiry.is_none_or(|at| at.duration_since(now).is_ok_and(|left| left > REFRESH_BEFORE))
        };
        if let Some((client, expiry)) = &state.current
            && fresh(expiry)
        {
            return Ok(client.clone());
        }
        if let Some((failure, at)) = &state.failed
            && at.elapsed() < FAILURE_TTL
        {
            return Err(failure.clone());
        }
        let Some(sts) = &self.sts else {
            return Err(AssumeRoleFailed {
                role_arn: role.role_arn.clone(),
                reason: "the function has no credentials to call sts:AssumeRole with".into(),
                retryable: false,
            });
        };
        if state.provider.is_none() {
            let mut builder =
                AssumeRoleProvider::builder(&role.role_arn).session_name(slot.session_name.clone());
            if let Some(id) = &role.external_id {
                builder = builder.external_id(id.clone());
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
                let expiry = credentials.expiry();
                let client = self.client_with(credentials);
                state.current = Some((client.clone(), expiry));
                state.failed = None;
                tracing::debug!(role = %role.role_arn, "assumed role");
                return Ok(client);
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
        // Credentials that are about to expire still work until they do.
        if let Some((client, Some(expiry))) = &state.current
            && *expiry > now
        {
            tracing::warn!(role = %role.role_arn, reason = %failed.reason, "could not renew the role's credentials; using the current ones until they expire");
            return Ok(client.clone());
        }
        tracing::warn!(role = %role.role_arn, reason = %failed.reason, "could not assume role");
        state.failed = Some((failed.clone(), Instant::now()));
        Err(failed)
    }

    fn client_with(&self, credentials: Credentials) -> Client {
        let config = self
            .base
            .config()
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            // Static credentials: nothing to cache (a new client replaces this one at renewal).
            .identity_cache(IdentityCache::no_cache())
            .build();
        Client::from_conf(config)
    }
}

impl Slot {
    fn new(org: &str) -> Slot {
        // STS session names: 2 to 64 of [\w+=,.@-]; org names are 1-64 of [A-Za-z0-9._-].
        let mut session_name = format!("artifact-export-{org}");
        session_name.truncate(64);
        Slot {
            session_name,
            state: tokio::sync::Mutex::new(SlotState::default()),
        }
    }
}

/// The text of the first `<tag>…</tag>` in `xml`.
fn xml_element(xml: &str, tag: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..end].to_string()).filter(|t| !t.is_empty())
}

/// `text` on one line, at most [`MAX_REASON`] bytes.
fn one_line(text: &str) -> String {
    let mut line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push('…');
    }
    line
}

/// What STS answered, as `STS answered <status> <code>: <message>` (or why it could not be
/// reached), and whether another attempt could succeed (no answer, throttling, 5xx).
fn describe(error: &(dyn std::error::Error + 'static)) -> (String, bool) {
    let sdk = std::iter::successors(Some(error), |e| e.source())
        .find_map(|e| e.downcast_ref::<SdkError<AssumeRoleError, HttpResponse>>());
    match sdk {
        Some(SdkError::ServiceError(context)) => {
            let status = context.raw().status().as_u16();
            // A server that is not STS may answer in S3's error format, which the STS parser
            // does not read: take the code and message from the body then.
            let body = context.raw().body().bytes().map(String::from_utf8_lossy);
            let from_body = |tag: &str| body.as_deref().and_then(|b| xml_element(b, tag));
            let code = context
                .err()
                .code()
                .map(str::to_string)
                .or_else(|| from_body("Code"))
                .unwrap_or_else(|| "(no error code)".into());
            let message = context
                .err()
                .message()
                .map(str::to_string)
                .or_else(|| from_body("Message"))
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            let retryable = status == 429 || status >= 500 || code.to_ascii_lowercase().contains("throttl");
            (format!("STS answered HTTP {status} {code}{message}"), retryable)
        }
        Some(SdkError::TimeoutError(_)) => ("STS did not answer in time".into(), true),
        Some(failure @ SdkError::DispatchFailure(_)) => (
            format!("could not reach STS: {}", DisplayErrorContext(failure)),
            true,
        ),
        Some(other) => (DisplayErrorContext(other).to_string(), true),
        None => (DisplayErrorContext(error).to_string(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_one_bounded_line() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
        let long = "é".repeat(MAX_REASON);
        let line = one_line(&long);
        assert!(line.len() <= MAX_REASON + '…'.len_utf8());
        assert!(line.ends_with('…'));
    }

    #[test]
    fn error_elements_are_read_from_s3_style_bodies() {
        let body = "<?xml version=\"1.0\"?><Error><Code>InvalidRequest</Code><Message>no</Message></Error>";
        assert_eq!(xml_element(body, "Code").as_deref(), Some("InvalidRequest"));
        assert_eq!(xml_element(body, "Message").as_deref(), Some("no"));
        assert_eq!(xml_element(body, "RequestId"), None);
        assert_eq!(xml_element("<Code></Code>", "Code"), None);
    }

    #[test]
    fn session_names_fit_sts() {
        let slot = Slot::new(&"o".repeat(64));
        assert_eq!(slot.session_name.len(), 64);
        assert!(slot.session_name.starts_with("artifact-export-o"));
        assert_eq!(Slot::new("org1").session_name, "artifact-export-org1");
    }
}
