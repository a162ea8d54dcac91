//! `artifact-export check`: for each org, what the function can actually do with its
//! settings, asked of the real services in the order a copy needs them:
//!
//! 1. the org's `roleArn` can be assumed ([`ReasonCode::AssumeRoleNotPermitted`]);
//! 2. the destination bucket exists ([`ReasonCode::DstBucketNotFound`]) and may be reached
//!    ([`ReasonCode::AccessDenied`]), as the owner the org expects
//!    ([`ReasonCode::DstBucketOwnerMismatch`], [`bucket_reachable`]);
//! 3. the org's KMS key is usable ([`ReasonCode::KmsDenied`], [`kms_key_usable`]), and, for
//!    an org with `deletes: "propagate"`, the destination bucket keeps versions
//!    ([`ReasonCode::DstBucketNotVersioned`], [`keeps_versions`]);
//! 4. the org's plugin loads and instantiates, sha256 pin included, through the exporter's
//!    own plugin loading ([`ReasonCode::PluginNotLoadable`]);
//! 5. with `write_probe`: a zero-byte probe key is put into the bucket and deleted again.
//!
//! Every request to the org's bucket names the owner the org expects (`expectedBucketOwner`),
//! as the copies do: a bucket of another account refuses it.
//!
//! The first failure ends an org's check; every org is checked whatever happens to others.
//! The result is typed ([`OrgCheck`]); [`OrgCheck::line`] is the one line the CLI prints.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, ServerSideEncryption};
use futures::StreamExt;

use crate::config::{Config, Deletes, Encryption, Org};
use crate::destination::removal::says_enabled;
use crate::exporter::Exporter;
use crate::policy::OrgPlugins;
use crate::reason::ReasonCode;
use crate::s3::classify;

/// Key prefix of the write probe's objects.
pub const PROBE_PREFIX: &str = ".artifact-export-probe/";

/// Orgs checked at once.
const CONCURRENCY: usize = 8;

/// A failed check: why, and what was asked and answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct CheckFailure {
    /// The kind of failure (one of the codes `check` answers with, spelled like S3
    /// Replication's failure reasons: `AssumeRoleNotPermitted`, `DstBucketNotFound`,
    /// `DstBucketOwnerMismatch`, `AccessDenied`, `KmsDenied`, `PluginNotLoadable`, `S3Error`).
    pub reason: ReasonCode,
    /// One line naming the bucket, role, key or plugin.
    pub message: String,
}

impl CheckFailure {
    fn new(reason: ReasonCode, message: impl Into<String>) -> Self {
        CheckFailure {
            reason,
            message: message.into(),
        }
    }
}

/// What passed for one org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passed {
    /// The role assumed, when the org has one.
    pub role: Option<String>,
    /// The destination bucket.
    pub bucket: String,
    /// The plugin's name, when the org has one.
    pub plugin: Option<String>,
    /// The probe key written and deleted, with `write_probe`.
    pub probe: Option<String>,
}

/// One org's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgCheck {
    /// The org.
    pub org: String,
    /// Everything passed, or the first failure.
    pub result: Result<Passed, CheckFailure>,
}

impl OrgCheck {
    /// `ok  org1  (role …, bucket …, plugin …)` or `FAIL org2  DstBucketNotFound: …`.
    pub fn line(&self) -> String {
        match &self.result {
            Ok(passed) => {
                let mut details = vec![
                    format!("role {}", passed.role.as_deref().unwrap_or("none")),
                    format!("bucket {}", passed.bucket),
                    format!("plugin {}", passed.plugin.as_deref().unwrap_or("none")),
                ];
                if let Some(key) = &passed.probe {
                    details.push(format!("write probe {key} put and deleted"));
                }
                format!("ok  {}  ({})", self.org, details.join(", "))
            }
            Err(failure) => format!("FAIL {}  {failure}", self.org),
        }
    }
}

/// What to check besides the defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Put and delete a zero-byte probe key in each destination bucket.
    pub write_probe: bool,
}

/// `--org` names no org of the config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--org {org}: no such org in the configuration; known orgs: {known}")]
pub struct UnknownOrg {
    /// The org asked for.
    pub org: String,
    /// The config's orgs, comma-separated.
    pub known: String,
}

/// Checks every org of `config` (or only `only`), concurrently, in config order.
pub async fn check_orgs(
    exporter: &Exporter,
    config: &std::sync::Arc<Config>,
    only: Option<&str>,
    options: CheckOptions,
) -> Result<Vec<OrgCheck>, UnknownOrg> {
    let orgs: Vec<&Org> = config
        .customers
        .iter()
        .filter(|c| only.is_none_or(|o| o == c.org))
        .collect();
    if let (Some(org), true) = (only, orgs.is_empty()) {
        return Err(UnknownOrg {
            org: org.to_string(),
            known: config
                .customers
                .iter()
                .map(|c| c.org.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let plugins = exporter.plugins_for(config).await;
    let plugins = &plugins;
    Ok(futures::stream::iter(orgs)
        .map(|org| check_org(exporter, org, plugins, options))
        .buffered(CONCURRENCY)
        .collect()
        .await)
}

/// Checks one org: role, bucket, owner, KMS key, plugin, and the write probe if asked.
pub async fn check_org(
    exporter: &Exporter,
    org: &Org,
    plugins: &OrgPlugins,
    options: CheckOptions,
) -> OrgCheck {
    OrgCheck {
        org: org.org.clone(),
        result: check_steps(exporter, org, plugins, options).await,
    }
}

async fn check_steps(
    exporter: &Exporter,
    org: &Org,
    plugins: &OrgPlugins,
    options: CheckOptions,
) -> Result<Passed, CheckFailure> {
    let client = match exporter.role_destination(org).await {
        Ok(Some(as_role)) => as_role.client().clone(),
        Ok(None) => exporter.client().clone(),
        Err(failed) => {
            return Err(CheckFailure::new(
                ReasonCode::AssumeRoleNotPermitted,
                failed.to_string(),
            ));
        }
    };
    let bucket = &org.destination_bucket;
    bucket_reachable(&client, bucket, org.expected_bucket_owner.as_deref()).await?;
    let kms_key_id = match &org.encryption {
        Some(Encryption::Kms {
            key_id: Some(key), ..
        }) => Some(key.as_str()),
        _ => None,
    };
    let owner = org.expected_bucket_owner.as_deref();
    kms_key_usable(&client, bucket, owner, kms_key_id).await?;
    if org.deletes == Deletes::Propagate {
        keeps_versions(&client, bucket, owner).await?;
    }
    let plugin = match (&org.plugin, plugins.get(&org.org)) {
        (None, _) => None,
        (Some(_), Some(Ok(plugin))) => match plugin.check_instantiates() {
            Ok(()) => {
                plugin
                    .check_candidate()
                    .map_err(|e| CheckFailure::new(ReasonCode::PluginNotLoadable, e))?;
                Some(plugin.name().to_string())
            }
            Err(e) => {
                return Err(CheckFailure::new(
                    ReasonCode::PluginNotLoadable,
                    format!("plugin {} does not instantiate: {e}", plugin.name()),
                ));
            }
        },
        (Some(_), Some(Err(e))) => {
            return Err(CheckFailure::new(ReasonCode::PluginNotLoadable, e.to_string()));
        }
        (Some(spec), None) => {
            return Err(CheckFailure::new(
                ReasonCode::PluginNotLoadable,
                format!("plugin {} was not loaded", spec.source),
            ));
        }
    };
    let probe = if options.write_probe {
        Some(write_probe(&client, bucket, owner, None).await?)
    } else {
        None
    };
    Ok(Passed {
        role: org.role.as_ref().map(|r| r.role_arn.clone()),
        bucket: bucket.clone(),
        plugin,
        probe,
    })
}

/// `HeadBucket` on `bucket` (with `ExpectedBucketOwner` when `expected_owner` is given): a
/// 404 is [`ReasonCode::DstBucketNotFound`]; a 403 is
/// [`ReasonCode::DstBucketOwnerMismatch`] when an owner was expected (S3 answers 403 when
/// the owner differs) and [`ReasonCode::AccessDenied`] otherwise.
pub async fn bucket_reachable(
    client: &Client,
    bucket: &str,
    expected_owner: Option<&str>,
) -> Result<(), CheckFailure> {
    let answer = client
        .head_bucket()
        .bucket(bucket)
        .set_expected_bucket_owner(expected_owner.map(str::to_string))
        .send()
        .await;
    let Err(error) = answer else {
        return Ok(());
    };
    let (status, code) = status_and_code(&error);
    Err(match (status, expected_owner) {
        (Some(404), _) => CheckFailure::new(
            ReasonCode::DstBucketNotFound,
            format!("bucket {bucket:?} does not exist"),
        ),
        (Some(403), Some(owner)) => CheckFailure::new(
            ReasonCode::DstBucketOwnerMismatch,
            format!(
                "bucket {bucket:?} is not owned by account {owner} (HeadBucket with ExpectedBucketOwner answered 403)"
            ),
        ),
        (Some(403), None) => CheckFailure::new(
            ReasonCode::AccessDenied,
            format!(
                "HeadBucket on {bucket:?} was refused (403{}): the bucket policy or the role does not allow s3:ListBucket",
                code_suffix(&code)
            ),
        ),
        _ => CheckFailure::new(
            ReasonCode::S3Error,
            format!("HeadBucket on {bucket:?}: {}", classify(&error)),
        ),
    })
}

/// `GetBucketVersioning` on `bucket`: anything but `Enabled` is
/// [`ReasonCode::DstBucketNotVersioned`] (an org whose `deletes` is `"propagate"` deletes
/// only where a delete can be undone).
pub async fn keeps_versions(
    client: &Client,
    bucket: &str,
    expected_owner: Option<&str>,
) -> Result<(), CheckFailure> {
    let answer = client
        .get_bucket_versioning()
        .bucket(bucket)
        .set_expected_bucket_owner(expected_owner.map(str::to_string))
        .send()
        .await;
    match answer {
        Ok(out) if out.status() == Some(&BucketVersioningStatus::Enabled) => Ok(()),
        Ok(out) => Err(not_versioned(
            bucket,
            out.status().map_or("never enabled", |s| s.as_str()),
        )),
        // A 200 the SDK could not read (moto's root element): only an explicit Enabled passes.
        Err(SdkError::ServiceError(context)) if context.raw().status().as_u16() == 200 => {
            if context.raw().body().bytes().is_some_and(says_enabled) {
                Ok(())
            } else {
                Err(not_versioned(bucket, "not enabled"))
            }
        }
        Err(error) => Err(refusal("GetBucketVersioning", bucket, "", &error)),
    }
}

fn not_versioned(bucket: &str, status: &str) -> CheckFailure {
    CheckFailure::new(
        ReasonCode::DstBucketNotVersioned,
        format!(
            "bucket {bucket:?} does not keep versions (versioning {status}), and the org's deletes is \"propagate\": enable versioning, or set deletes to \"propagate-unversioned\""
        ),
    )
}

/// With `kms_key_id`, writes a zero-byte probe encrypted with that key (SSE-KMS) and deletes
/// it: the only way to learn whether S3 may use the key for this bucket on the writer's
/// behalf. Without one, nothing to check. The probe names `expected_owner` like
/// [`write_probe`]'s.
pub async fn kms_key_usable(
    client: &Client,
    bucket: &str,
    expected_owner: Option<&str>,
    kms_key_id: Option<&str>,
) -> Result<(), CheckFailure> {
    match kms_key_id {
        None => Ok(()),
        Some(key) => write_probe(client, bucket, expected_owner, Some(key))
            .await
            .map(drop),
    }
}

/// Puts a zero-byte key under [`PROBE_PREFIX`] (SSE-KMS with `kms_key_id` when given) and
/// deletes it; returns the key. Both requests carry `ExpectedBucketOwner` when
/// `expected_owner` is given (the org's `expectedBucketOwner`), so a bucket of another
/// account refuses them.
pub async fn write_probe(
    client: &Client,
    bucket: &str,
    expected_owner: Option<&str>,
    kms_key_id: Option<&str>,
) -> Result<String, CheckFailure> {
    let owner = expected_owner.map(str::to_string);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let key = format!("{PROBE_PREFIX}{nanos:x}-{:08x}", fastrand::u32(..));
    let put = client
        .put_object()
        .bucket(bucket)
        .key(&key)
        .body(ByteStream::from_static(b""))
        .set_server_side_encryption(kms_key_id.map(|_| ServerSideEncryption::AwsKms))
        .set_ssekms_key_id(kms_key_id.map(str::to_string))
        .set_expected_bucket_owner(owner.clone())
        .send()
        .await;
    if let Err(error) = put {
        return Err(refusal("PutObject", bucket, &key, &error));
    }
    let delete = client
        .delete_object()
        .bucket(bucket)
        .key(&key)
        .set_expected_bucket_owner(owner)
        .send()
        .await;
    if let Err(error) = delete {
        return Err(refusal("DeleteObject", bucket, &key, &error));
    }
    Ok(key)
}

fn refusal<E>(operation: &str, bucket: &str, key: &str, error: &SdkError<E, HttpResponse>) -> CheckFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (status, code) = status_and_code(error);
    let reason = match code.as_deref().map(ReasonCode::from_s3_code) {
        Some(ReasonCode::KmsDenied) => ReasonCode::KmsDenied,
        // `check` says which bucket: the org's destination.
        Some(ReasonCode::NoSuchBucket) => ReasonCode::DstBucketNotFound,
        Some(ReasonCode::AccessDenied) => ReasonCode::AccessDenied,
        _ if status == Some(403) => ReasonCode::AccessDenied,
        _ => ReasonCode::S3Error,
    };
    CheckFailure::new(
        reason,
        format!("{operation} of s3://{bucket}/{key}: {}", classify(error)),
    )
}

fn status_and_code<E>(error: &SdkError<E, HttpResponse>) -> (Option<u16>, Option<String>)
where
    E: ProvideErrorMetadata,
{
    match error {
        SdkError::ServiceError(context) => (
            Some(context.raw().status().as_u16()),
            context.err().code().map(str::to_string),
        ),
        _ => (None, None),
    }
}

fn code_suffix(code: &Option<String>) -> String {
    code.as_deref().map(|c| format!(" {c}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_like_the_cli_prints_them() {
        let ok = OrgCheck {
            org: "org1".into(),
            result: Ok(Passed {
                role: Some("arn:aws:iam::123456789012:role/w".into()),
                bucket: "org1-export".into(),
                plugin: None,
                probe: Some(".artifact-export-probe/1".into()),
            }),
        };
        assert_eq!(
            ok.line(),
            "ok  org1  (role arn:aws:iam::123456789012:role/w, bucket org1-export, plugin none, write probe .artifact-export-probe/1 put and deleted)"
        );
        let failed = OrgCheck {
            org: "org2".into(),
            result: Err(CheckFailure::new(
                ReasonCode::DstBucketNotFound,
                "bucket \"x\" does not exist",
            )),
        };
        assert_eq!(
            failed.line(),
            "FAIL org2  DstBucketNotFound: bucket \"x\" does not exist"
        );
    }
}
