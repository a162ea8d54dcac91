//! [`RoleClients`]: one S3 client per cross-account role (`roleArn` + `externalId`), built
//! lazily from the function's own client with only the credentials replaced. Its credentials
//! come from a provider over the role's slot ([`slot`]), asked before every request: the slot
//! holds the credentials from `sts:AssumeRole` and assumes again when they are due (shortly
//! before they expire) or when S3 answered a request signed with them `ExpiredToken` (the
//! client's interceptor in [`expired`] tells the slot), so a retry after `ExpiredToken`, and
//! every request of a copy that outlives its credentials, the abort included, signs with
//! fresh ones. What STS answered becomes one bounded line in [`sts_answer`].
//!
//! Each role has its own slot and its own lock: a role whose STS call is slow or refused
//! delays only the records of the orgs that use it. The map of slots is locked only to find
//! or add a slot, never across an STS call. Every STS call is bounded
//! ([`RoleClients::new`]'s timeout), and a refusal is remembered for [`FAILURE_TTL`] so a
//! burst of one org's records (or of one copy's requests) does not queue behind one STS
//! timeout after another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, IdentityCache, SharedCredentialsProvider};

mod expired;
mod slot;
mod sts_answer;

pub use expired::EXPIRED_CREDENTIALS;
pub use slot::{FAILURE_TTL, REFRESH_BEFORE};

use expired::Rejections;
use slot::{RoleCredentials, Slot};

/// Longest wait for a connection to STS.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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
                    let slot = Arc::new(Slot::new(
                        role.clone(),
                        session_name(org),
                        self.sts.clone(),
                        self.timeout,
                        self.session_length,
                    ));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_fit_sts() {
        let name = session_name(&"o".repeat(64));
        assert_eq!(name.len(), 64);
        assert!(name.starts_with("artifact-export-o"));
        assert_eq!(session_name("org1"), "artifact-export-org1");
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
