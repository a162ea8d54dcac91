//! Building the S3 client: once per cold start, shared by every record.
//!
//! The SDK's own retries are turned off: [`crate::copy::retry`] retries with the config's
//! `retry` count, so attempts are counted and reported per record.

use std::time::Duration;

use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};

/// Applies this service's client settings: no SDK retries, bounded connect time, and
/// path-style addressing when `endpoint` is set (local servers have no bucket DNS).
pub fn tune(builder: aws_sdk_s3::config::Builder, endpoint: Option<&str>) -> aws_sdk_s3::config::Builder {
    let mut builder = builder.retry_config(RetryConfig::disabled()).timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .build(),
    );
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint_url(endpoint).force_path_style(true);
    }
    builder
}

/// The client for the process environment (credentials chain, `AWS_REGION`,
/// `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` for a local server).
pub async fn from_env() -> aws_sdk_s3::Client {
    // Region from the environment or the profile, else us-east-1: never a slow IMDS probe
    // (Lambda always sets AWS_REGION; a laptop without one gets a sane default).
    let region = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(ProfileFileRegionProvider::new())
        .or_else(Region::from_static("us-east-1"));
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .load()
        .await;
    let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .ok()
        .filter(|e| !e.is_empty());
    let builder = aws_sdk_s3::config::Builder::from(&shared);
    aws_sdk_s3::Client::from_conf(tune(builder, endpoint.as_deref()).build())
}

/// A client for an explicit endpoint with static credentials (tests, benchmarks, local runs).
pub fn for_endpoint(endpoint: &str, region: &str, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    let builder = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new(access_key, secret_key, None, None, "static"));
    aws_sdk_s3::Client::from_conf(tune(builder, Some(endpoint)).build())
}
