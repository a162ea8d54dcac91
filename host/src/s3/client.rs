//! Building the S3 client: once per cold start, shared by every record.
//!
//! The SDK's own retries are turned off: [`super::retry`] retries with the config's
//! `retry` count, so attempts are counted and reported per record.

use std::time::Duration;

use aws_config::environment::credentials::EnvironmentVariableCredentialsProvider;
use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider, SharedHttpClient};
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};

/// Longest wait for a connection to S3.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one attempt of a request may take before it counts as a retryable `Timeout`.
/// Every request has one, so no wait on S3 is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Ordinary requests (HEAD, the config or a plugin, a listing page, multipart
    /// bookkeeping): S3 answers them in milliseconds, so a few seconds mean a stuck server.
    /// The first byte included.
    pub request: Duration,
    /// Requests that do the copying (`CopyObject`, `UploadPartCopy`,
    /// `CompleteMultipartUpload`): S3 may take minutes for gigabytes and keeps the response
    /// alive with whitespace meanwhile, so they get minutes, first byte included (some
    /// S3-compatible servers answer only when the copy is done).
    pub copy: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            request: Duration::from_secs(10),
            copy: Duration::from_secs(600),
        }
    }
}

/// `attempt` for each attempt; the connector's own settings (connect, read) are the same
/// for every request, `read` being the copy timeout. The SDK keeps one HTTP connector per
/// distinct connector settings, and making one costs a TLS set-up at first use: different
/// read timeouts per request would make a cold start pay it twice. The attempt timeout
/// bounds an ordinary request's first byte anyway.
fn timeout_config(attempt: Duration, read: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(read)
        .operation_attempt_timeout(attempt)
        .build()
}

/// `client` with `timeouts.request` on every request (copy requests override it with
/// [`copy_request`]).
pub fn with_timeouts(client: &aws_sdk_s3::Client, timeouts: Timeouts) -> aws_sdk_s3::Client {
    let config = client
        .config()
        .to_builder()
        .timeout_config(timeout_config(timeouts.request, timeouts.copy))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The per-request override of a copy request: `timeouts.copy` instead of the ordinary one.
pub fn copy_request(timeouts: Timeouts) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::new().timeout_config(timeout_config(timeouts.copy, timeouts.copy))
}

/// Applies this service's client settings: no SDK retries, bounded connect and request
/// time ([`Timeouts::default`]), and path-style addressing when `endpoint` is set (local
/// servers have no bucket DNS); a plain-`http://` endpoint gets [`plain_http_client`].
pub fn tune(builder: aws_sdk_s3::config::Builder, endpoint: Option<&str>) -> aws_sdk_s3::config::Builder {
    let mut builder = builder
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeout_config(
            Timeouts::default().request,
            Timeouts::default().copy,
        ));
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint_url(endpoint).force_path_style(true);
        if is_plain_http(endpoint)
            && let Some(http) = plain_http_client()
        {
            builder = builder.http_client(http);
        }
    }
    builder
}

/// Whether `endpoint` is plain `http://`: a local server, reached without TLS.
fn is_plain_http(endpoint: &str) -> bool {
    endpoint
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
}

/// The HTTP client of a plain-`http://` endpoint: TLS that trusts no root at all, so
/// building it reads no certificate (the platform's roots are read and parsed when the
/// SDK's default client is built: 3 ms of a cold start on this project's bench machine,
/// 20 with a cold page cache), and an `https://` URL sent through it by mistake fails
/// verification instead of going out unverified. It is reached directly: no
/// `HTTP_PROXY` for a local server. `None` (the SDK's default client) if it cannot be built.
fn plain_http_client() -> Option<SharedHttpClient> {
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::empty())
        .build()
        .ok()?;
    Some(
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(context)
            .build_https(),
    )
}

/// The client for the process environment (credentials chain, `AWS_REGION`,
/// `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` for a local server). `get` reads a variable of
/// the process environment (`env::process_env`): the endpoint and whether credentials are
/// in the environment are read through it; the SDK's own providers read the rest.
pub async fn from_env(get: &(dyn Fn(&str) -> Option<String> + Sync)) -> aws_sdk_s3::Client {
    from_env_with_credentials(get).await.0
}

/// [`from_env`], and the credentials provider its requests are signed with (the SDK gives no
/// way to read it back from a client): orgs' roles are assumed with it.
pub async fn from_env_with_credentials(
    get: &(dyn Fn(&str) -> Option<String> + Sync),
) -> (aws_sdk_s3::Client, Option<SharedCredentialsProvider>) {
    // Region from the environment or the profile, else us-east-1: never a slow IMDS probe
    // (Lambda always sets AWS_REGION; a laptop without one gets a sane default).
    let region = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(ProfileFileRegionProvider::new())
        .or_else(Region::from_static("us-east-1"));
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region);
    // Credentials in the environment (Lambda's, a local server's): the default chain takes
    // them first anyway; naming them skips building the chain's other providers (SSO, web
    // identity, ECS, IMDS), whose HTTP client reads the platform's TLS roots.
    if env_credentials_present(get) {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    let shared = loader.load().await;
    let endpoint = get("AWS_ENDPOINT_URL_S3")
        .or_else(|| get("AWS_ENDPOINT_URL"))
        .filter(|e| !e.is_empty());
    let builder = aws_sdk_s3::config::Builder::from(&shared);
    let client = aws_sdk_s3::Client::from_conf(tune(builder, endpoint.as_deref()).build());
    (client, shared.credentials_provider())
}

/// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` both set: what the environment provider
/// needs (with one missing, the default chain goes on to the profile and beyond).
fn env_credentials_present(get: &(dyn Fn(&str) -> Option<String> + Sync)) -> bool {
    let set = |name: &str| get(name).is_some_and(|v| !v.is_empty());
    set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY")
}

/// A client for an explicit endpoint with static credentials (tests, benchmarks, local runs).
pub fn for_endpoint(endpoint: &str, region: &str, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    let builder = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new(access_key, secret_key, None, None, "static"));
    aws_sdk_s3::Client::from_conf(tune(builder, Some(endpoint)).build())
}

/// Static credentials as a provider: what [`for_endpoint`] signs with, for
/// `Exporter::with_role_credentials`.
pub fn static_credentials(access_key: &str, secret_key: &str) -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(Credentials::new(access_key, secret_key, None, None, "static"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_are_plain_http() {
        for plain in ["http://127.0.0.1:3900", "HTTP://localhost", "http://"] {
            assert!(is_plain_http(plain), "{plain}");
        }
        for not in [
            "https://s3.amazonaws.com",
            "HTTPS://x",
            "http:/x",
            "http",
            "",
            "ftp://x",
        ] {
            assert!(!is_plain_http(not), "{not}");
        }
    }

    #[test]
    fn the_plain_http_client_builds() {
        assert!(plain_http_client().is_some());
    }
}
