//! [`RoleClients`]: one S3 client per cross-account role (`roleArn` + `externalId`), built
//! lazily from the function's own client with only the credentials replaced. Its credentials
//! come from a provider over the role's slot, asked before every request: the slot holds the
//! credentials from `sts:AssumeRole` and assumes again when they are due (shortly before they
//! expire) or when S3 answered a request signed with them `ExpiredToken` (the client's
//! [`Rejections`] interceptor tells the slot), so a retry after `ExpiredToken`, and every
//! request of a copy that outlives its credentials, the abort included, signs with fresh ones.
//!
//! Each role has its own slot and its own lock: a role whose STS call is slow or refused
//! delays only the records of the orgs that use it. The map of slots is locked only to find
//! or add a slot, never across an STS call. Every STS call is bounded
//! ([`RoleClients::new`]'s timeout), and a refusal is remembered for [`FAILURE_TTL`] so a
//! burst of one org's records (or of one copy's requests) does not queue behind one STS
//! timeout after another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_config::SdkConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::future;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::interceptors::{BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef};
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, ConfigBag, Credentials, IdentityCache, Intercept, ProvideCredentials, RuntimeComponents,
    SharedCredentialsProvider,
};
use aws_sdk_s3::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use aws_smithy_types::error::display::DisplayErrorContext;

/// Assumed credentials are renewed this long before they expire (STS gives an hour), or a
/// quarter of their lifetime before when they were given for less than 20 minutes.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);
/// A failed AssumeRole is answered from memory this long before STS is asked again.
pub const FAILURE_TTL: Duration = Duration::from_secs(10);
/// Longest wait for a connection to STS.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest reason kept from an STS error.
const MAX_REASON: usize = 600;
/// S3's error codes for a request signed with credentials that expired: the credentials
/// must be replaced, and the request can then be sent again.
pub const EXPIRED_CREDENTIALS: [&str; 2] = ["ExpiredToken", "TokenRefreshRequired"];

/// A cross-account role an org's copies are made as (the config's `roleArn` and
/// `externalId`, checked by `config::valid_role_arn`): the key of its slot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AssumedRole {
    /// `arn:<partition>:iam::<account>:role/<path/name>`.
    pub role_arn: String,
    /// Sent as `ExternalId` on `AssumeRole` (the tenant's trust policy may require it).
    pub external_id: Option<String>,
}

impl AssumedRole {
    /// The 12-digit account the role belongs to.
    pub fn account(&self) -> &str {
        self.role_arn.split(':').nth(4).unwrap_or_default()
    }
}

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
    session_length: Option<Duration>,
    slots: Mutex<HashMap<AssumedRole, (Arc<Slot>, Client)>>,
}

/// One role's credentials: what its client's requests are signed with.
#[derive(Debug)]
struct Slot {
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

impl RoleClients {
    /// Role clients derived from `base` (its endpoint, region, timeouts, HTTP connector, no
    /// SDK retries). AssumeRole is signed with `credentials` (those of `base`: the SDK cannot
    /// read them back from a client; `None` fails every role), sent to `sts_endpoint` (a
    /// local server) or the region's STS, and given at most `timeout` per role. Sessions last
    /// `session_length` (`None`: STS's default, an hour).
    pub fn new(
        base: &Client,
        credentials: Option<SharedCredentialsProvider>,
        sts_endpoint: Option<&str>,
        timeout: Duration,
        session_length: Option<Duration>,
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
            session_length,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The client whose requests are signed as `role`, once the role's credentials are at
    /// hand (assumed first when there are none yet or they are due). The client asks the
    /// role's slot again before each request. `org` names the STS session
    /// (`artifact-export-<org>`) when this is the role's first use.
    pub async fn client(&self, role: &AssumedRole, org: &str) -> Result<Client, AssumeRoleFailed> {
        let (slot, client) = {
            let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            slots
                .entry(role.clone())
                .or_insert_with(|| {
                    let slot = Arc::new(Slot {
                        role: role.clone(),
                        session_name: session_name(org),
                        sts: self.sts.clone(),
                        timeout: self.timeout,
                        session_length: self.session_length,
                        state: tokio::sync::Mutex::new(SlotState::default()),
                        rejected: Mutex::new(None),
                    });
                    let client = self.client_for(&slot);
                    (slot, client)
                })
                .clone()
        };
        slot.credentials().await?;
        Ok(client)
    }

    /// The base client's configuration with the slot's credentials, asked per request (no
    /// cache: the slot is the cache), and the interceptor that tells the slot of `ExpiredToken`.
    fn client_for(&self, slot: &Arc<Slot>) -> Client {
        let config = self
            .base
            .config()
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(RoleCredentials(slot.clone())))
            .identity_cache(IdentityCache::no_cache())
            .interceptor(Rejections(slot.clone()))
            .build();
        Client::from_conf(config)
    }
}

/// STS session names: 2 to 64 of [\w+=,.@-]; org names are 1-64 of [A-Za-z0-9._-].
fn session_name(org: &str) -> String {
    let mut session_name = format!("artifact-export-{org}");
    session_name.truncate(64);
    session_name
}

/// When credentials assumed at `now` that expire at `expiry` are due for renewal:
/// [`REFRESH_BEFORE`] before they expire, or a quarter of their lifetime when that is less.
fn renewal_time(now: SystemTime, expiry: Option<SystemTime>) -> Option<SystemTime> {
    let expiry = expiry?;
    let lifetime = expiry.duration_since(now).unwrap_or_default();
    Some(expiry - REFRESH_BEFORE.min(lifetime / 4))
}

impl Slot {
    /// The role's credentials: the current ones while they are not due and S3 has not
    /// refused them, else newly assumed ones (bounded by the timeout; a failure is
    /// remembered for [`FAILURE_TTL`], and meanwhile credentials that have not expired yet
    /// are still used).
    async fn credentials(&self) -> Result<Credentials, AssumeRoleFailed> {
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
    fn reject(&self, access_key_id: &str) {
        tracing::debug!(role = %self.role.role_arn, "S3 refused the role's credentials as expired; assuming it again");
        *self
            .rejected
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(access_key_id.to_string());
    }
}

/// The credentials provider of a role's client: its slot.
#[derive(Debug)]
struct RoleCredentials(Arc<Slot>);

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

/// Tells a role's slot when S3 answers one of [`EXPIRED_CREDENTIALS`] to a request signed
/// with its credentials, so the next request (the retry) is signed with new ones.
#[derive(Debug)]
struct Rejections(Arc<Slot>);

/// The access key id an attempt was signed with (the request is gone once it is sent).
#[derive(Debug, Clone)]
struct SignedWith(String);

impl Storable for SignedWith {
    type Storer = StoreReplace<Self>;
}

impl Intercept for Rejections {
    fn name(&self) -> &'static str {
        "RoleCredentialRejections"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(key) = signing_key(context.request().headers().get("authorization")) {
            cfg.interceptor_state().store_put(SignedWith(key.to_string()));
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (Some(response), Some(SignedWith(key))) = (context.response(), cfg.load::<SignedWith>()) else {
            return Ok(());
        };
        if is_expired_credentials(response.status().as_u16(), response.body().bytes()) {
            self.0.reject(key);
        }
        Ok(())
    }
}

/// Whether an answer (`status`, `body`) is an S3 error with one of [`EXPIRED_CREDENTIALS`]'s
/// codes.
fn is_expired_credentials(status: u16, body: Option<&[u8]>) -> bool {
    status >= 400
        && body
            .and_then(|body| xml_element(&String::from_utf8_lossy(body), "Code"))
            .is_some_and(|code| EXPIRED_CREDENTIALS.contains(&code.as_str()))
}

/// The access key id of a SigV4 `authorization` header (`… Credential=KEY/date/…`).
fn signing_key(authorization: Option<&str>) -> Option<&str> {
    let (_, rest) = authorization?.split_once("Credential=")?;
    rest.split('/').next().filter(|key| !key.is_empty())
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
        let name = session_name(&"o".repeat(64));
        assert_eq!(name.len(), 64);
        assert!(name.starts_with("artifact-export-o"));
        assert_eq!(session_name("org1"), "artifact-export-org1");
    }

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

    #[test]
    fn expired_token_answers_and_the_refused_key() {
        let body = |code: &str| {
            format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>m</Message></Error>")
        };
        for code in EXPIRED_CREDENTIALS {
            assert!(is_expired_credentials(400, Some(body(code).as_bytes())), "{code}");
        }
        assert!(!is_expired_credentials(
            403,
            Some(body("AccessDenied").as_bytes())
        ));
        assert!(!is_expired_credentials(
            200,
            Some(body("ExpiredToken").as_bytes())
        ));
        assert!(!is_expired_credentials(400, None));
        let auth = "AWS4-HMAC-SHA256 Credential=ASIAKEY1/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00";
        assert_eq!(signing_key(Some(auth)), Some("ASIAKEY1"));
        assert_eq!(signing_key(Some("Bearer x")), None);
        assert_eq!(signing_key(None), None);
    }

    /// A request of a role's client whose credentials cannot be assumed (STS refuses the
    /// connection) is not sent, and is classified as the role's failure, not a network one.
    #[tokio::test]
    async fn a_request_whose_role_cannot_be_assumed_names_the_role() {
        let closed = "http://127.0.0.1:9";
        let base = crate::s3::client::for_endpoint(closed, "us-east-1", "k", "s");
        let credentials = crate::s3::client::static_credentials("k", "s");
        let roles = RoleClients::new(
            &base,
            Some(credentials),
            Some(closed),
            Duration::from_secs(2),
            None,
        );
        let role = AssumedRole {
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            external_id: None,
        };
        let refused = roles.client(&role, "org1").await.unwrap_err();
        assert!(refused.retryable, "{refused:?}");
        // The role's client, as a copy already under way holds it.
        let client = roles.slots.lock().unwrap()[&role].1.clone();
        let error = client
            .head_object()
            .bucket("b")
            .key("k")
            .send()
            .await
            .unwrap_err();
        let failure = crate::s3::classify(&error);
        assert!(
            matches!(
                &failure,
                crate::s3::S3Failure::Retryable {
                    code: crate::reason::FailureCode::AssumeRoleNotPermitted,
                    ..
                }
            ),
            "{failure:?}"
        );
        assert!(
            failure
                .to_string()
                .contains("could not assume role arn:aws:iam::123456789012:role/r")
        );
    }
}
