//! Process environment → typed [`Settings`], read once at start.
//!
//! Every variable is read through a lookup function so tests (and the CLI's `--config`)
//! never have to mutate the real process environment.

use std::path::PathBuf;
use std::time::Duration;

use crate::s3::client::Timeouts;
use crate::s3::limits::{COPY_OBJECT_LIMIT, MIN_PART_SIZE};
use crate::suffix::SuffixSet;

/// The least `DEADLINE_MARGIN_MS`: records stop this long before the deadline and the
/// cut-off comes a third of it before, so a multipart copy stopped at the margin has at
/// least 1.3 s to abort its upload before the invocation answers.
pub const MIN_DEADLINE_MARGIN_MS: u64 = 2_000;

/// Reads one variable by name; `None` when unset. [`process_env`] reads the real one.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Whether the process is a Lambda function (`AWS_LAMBDA_RUNTIME_API` is set).
pub fn runs_in_lambda(get: Lookup) -> bool {
    get("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// The real process environment, as a [`Lookup`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Where the configuration lives: one document, or a folder of org documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigLocation {
    /// `CONFIGURATION_BUCKET` / `CONFIGURATION_KEY`: one document.
    S3 {
        /// Bucket holding the config object.
        bucket: String,
        /// Key of the config object.
        key: String,
    },
    /// `CONFIGURATION_KEY` ending in `/`: one document per org under this prefix.
    S3Documents {
        /// Bucket holding the org documents.
        bucket: String,
        /// Their key prefix, ending in `/`.
        prefix: String,
    },
    /// A local file (`--config`).
    File(PathBuf),
    /// A local folder of org documents (`--config DIR/`).
    Folder(PathBuf),
}

impl ConfigLocation {
    /// A local configuration: a folder of org documents when `path` ends in `/` or is a
    /// folder, else one document.
    pub fn local(path: PathBuf) -> ConfigLocation {
        if path.as_os_str().to_string_lossy().ends_with('/') || path.is_dir() {
            ConfigLocation::Folder(path)
        } else {
            ConfigLocation::File(path)
        }
    }

    /// An S3 configuration: org documents when `key` ends in `/`.
    pub fn in_s3(bucket: String, key: String) -> ConfigLocation {
        if key.ends_with('/') {
            ConfigLocation::S3Documents { bucket, prefix: key }
        } else {
            ConfigLocation::S3 { bucket, key }
        }
    }

    /// Whether this is the org documents form.
    pub fn is_documents(&self) -> bool {
        matches!(
            self,
            ConfigLocation::S3Documents { .. } | ConfigLocation::Folder(_)
        )
    }
}

impl std::fmt::Display for ConfigLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigLocation::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
            ConfigLocation::S3Documents { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            ConfigLocation::File(path) => write!(f, "{}", path.display()),
            ConfigLocation::Folder(path) => {
                let shown = path.display().to_string();
                if shown.ends_with('/') {
                    f.write_str(&shown)
                } else {
                    write!(f, "{shown}/")
                }
            }
        }
    }
}

/// Everything the handler takes from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `SUFFIX_TO_COPY`: suffixes exported for orgs without their own list.
    pub suffixes: SuffixSet,
    /// `CONFIGURATION_BUCKET` + `CONFIGURATION_KEY`, or a file.
    pub config_location: ConfigLocation,
    /// `CONFIG_REFRESH_SECONDS` (default 60): how stale the cached config may get.
    pub config_refresh: Duration,
    /// `MULTIPART_COPY_THRESHOLD` (bytes, default and maximum 5 GiB): above it, multipart copy.
    pub multipart_threshold: u64,
    /// `MULTIPART_PART_SIZE` (bytes, default 256 MiB, at least 5 MiB): preferred part size.
    pub multipart_part_size: u64,
    /// `COPY_CONCURRENCY` (default 16): records copied at once.
    pub copy_concurrency: usize,
    /// `PART_CONCURRENCY` (default 8): parts of one multipart copy in flight at once.
    pub part_concurrency: usize,
    /// `RETRY_BASE_DELAY_MS` (default 200): first backoff step; doubles per attempt.
    pub retry_base_delay: Duration,
    /// `ENV=local`: folders instead of destination buckets (and maybe the source bucket).
    pub local: Option<LocalMode>,
    /// `S3_REQUEST_TIMEOUT_MS` (default 10 s) and `COPY_REQUEST_TIMEOUT_MS` (default 10 min):
    /// how long one attempt of an ordinary request and of a copy request may take.
    pub timeouts: Timeouts,
    /// `DEADLINE_MARGIN_MS` (default 5 s, at least [`MIN_DEADLINE_MARGIN_MS`]): in Lambda,
    /// how long before the invocation's deadline records stop starting and multipart
    /// uploads in flight are aborted.
    pub deadline_margin: Duration,
    /// `SOURCE_BUCKET` (optional; the template sets it): the shared source bucket, so a
    /// configuration that would export into it is refused.
    pub source_bucket: Option<String>,
    /// `PLUGIN_INSTANCES` (default 128): plugin decisions that run at once (the instance
    /// pool's size); more wait for a free instance.
    pub plugin_instances: u32,
    /// `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL` (a local server; unset in AWS): where
    /// orgs' `roleArn`s are assumed. `None`: the region's STS endpoint.
    pub sts_endpoint: Option<String>,
    /// `EXPECTED_BUCKET_OWNER` (optional, 12 digits): the account that must own the source
    /// bucket, the config's bucket and the plugin buckets; sent as `ExpectedBucketOwner`
    /// (`ExpectedSourceBucketOwner` on copies) with every request to them.
    pub expected_bucket_owner: Option<String>,
}

/// Where local mode (`ENV=local`) reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMode {
    /// `LOCAL_DEST`: replaces the destination buckets.
    pub dest_dir: PathBuf,
    /// `LOCAL_SOURCE`: replaces the source bucket (no S3 at all).
    pub source_dir: Option<PathBuf>,
    /// `DESTINATION_KEY`: the file name to write instead of the target key.
    pub destination_key: Option<String>,
}

/// A missing or malformed environment variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    /// Required and absent (or empty).
    #[error("environment variable {name} is missing or empty; expected {expected}")]
    Missing {
        /// Variable name.
        name: &'static str,
        /// What it should hold.
        expected: &'static str,
    },
    /// Present but not usable.
    #[error("environment variable {name}={value:?} is invalid; expected {expected}")]
    Invalid {
        /// Variable name.
        name: &'static str,
        /// The value found.
        value: String,
        /// What it should hold.
        expected: String,
    },
}

impl Settings {
    /// Reads settings from the real process environment.
    pub fn from_process_env() -> Result<Self, EnvError> {
        Self::from_lookup(process_env)
    }

    /// Reads settings through `get`; `None` and blank values count as absent.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        Self::from_lookup_with_config(&get, None)
    }

    /// Like [`Settings::from_lookup`], but a given config file replaces
    /// `CONFIGURATION_BUCKET`/`CONFIGURATION_KEY`, which are then not required.
    pub fn from_lookup_with_config(get: Lookup, config_file: Option<PathBuf>) -> Result<Self, EnvError> {
        let present = |name: &str| present(get, name);
        let required = |name: &'static str, expected: &'static str| required(get, name, expected);
        let suffixes = default_suffixes(get)?;
        let local_mode = present("ENV").is_some_and(|v| v.trim().eq_ignore_ascii_case("local"));
        let local = if local_mode {
            Some(LocalMode {
                dest_dir: required(
                    "LOCAL_DEST",
                    "with ENV=local, the folder that replaces the destination buckets",
                )?
                .into(),
                source_dir: present("LOCAL_SOURCE").map(PathBuf::from),
                destination_key: present("DESTINATION_KEY"),
            })
        } else {
            None
        };
        let config_file = match (config_file, local_mode) {
            (Some(path), _) => Some(path),
            (None, true) => Some(PathBuf::from(required(
                "LOCAL_CONFIGURATION",
                "with ENV=local, the path of the config JSON file",
            )?)),
            (None, false) => None,
        };
        let config_location = match config_file {
            Some(path) => ConfigLocation::local(path),
            None => config_in_s3(get)?,
        };
        Self::with_tuning(get, suffixes, config_location, local)
    }

    /// The settings of a command that reads a configuration and loads its plugins but copies
    /// nothing (`validate`, `plan`): what loading takes from the environment
    /// (`EXPECTED_BUCKET_OWNER`, `RETRY_BASE_DELAY_MS`, `S3_REQUEST_TIMEOUT_MS`,
    /// `PLUGIN_INSTANCES`, …) is read as [`Settings::from_lookup`] reads it, so the command
    /// loads plugins as the Lambda does. Where the configuration is and the suffixes are the
    /// command's; `ENV=local` is ignored (nothing is written).
    pub fn for_loading(
        get: Lookup,
        config_location: ConfigLocation,
        suffixes: SuffixSet,
    ) -> Result<Self, EnvError> {
        Self::with_tuning(get, suffixes, config_location, None)
    }

    /// `suffixes`, `config_location` and `local`, with everything else read through `get`.
    fn with_tuning(
        get: Lookup,
        suffixes: SuffixSet,
        config_location: ConfigLocation,
        local: Option<LocalMode>,
    ) -> Result<Self, EnvError> {
        let present = |name: &str| present(get, name);
        let number = |name: &'static str, default: u64, min: u64, max: u64| -> Result<u64, EnvError> {
            let Some(raw) = present(name) else {
                return Ok(default);
            };
            match raw.trim().parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(EnvError::Invalid {
                    name,
                    value: raw,
                    expected: format!("a whole number from {min} to {max}"),
                }),
            }
        };
        Ok(Settings {
            suffixes,
            config_location,
            config_refresh: Duration::from_secs(number("CONFIG_REFRESH_SECONDS", 60, 0, 86_400)?),
            // Not below one part: a range copy (UploadPartCopy) needs a source over 5 MiB, so
            // S3 would refuse every object between a lower threshold and 5 MiB for good.
            multipart_threshold: number(
                "MULTIPART_COPY_THRESHOLD",
                COPY_OBJECT_LIMIT,
                MIN_PART_SIZE,
                COPY_OBJECT_LIMIT,
            )?,
            multipart_part_size: number(
                "MULTIPART_PART_SIZE",
                256 * 1024 * 1024,
                MIN_PART_SIZE,
                COPY_OBJECT_LIMIT,
            )?,
            copy_concurrency: number("COPY_CONCURRENCY", 16, 1, 1024)? as usize,
            part_concurrency: number("PART_CONCURRENCY", 8, 1, 64)? as usize,
            retry_base_delay: Duration::from_millis(number("RETRY_BASE_DELAY_MS", 200, 0, 60_000)?),
            local,
            timeouts: Timeouts {
                request: Duration::from_millis(number("S3_REQUEST_TIMEOUT_MS", 10_000, 100, 900_000)?),
                copy: Duration::from_millis(number("COPY_REQUEST_TIMEOUT_MS", 600_000, 100, 900_000)?),
            },
            deadline_margin: Duration::from_millis(number(
                "DEADLINE_MARGIN_MS",
                5_000,
                MIN_DEADLINE_MARGIN_MS,
                60_000,
            )?),
            source_bucket: present("SOURCE_BUCKET").map(|b| b.trim().to_string()),
            plugin_instances: number("PLUGIN_INSTANCES", 128, 1, 1024)? as u32,
            sts_endpoint: present("AWS_ENDPOINT_URL_STS").or_else(|| present("AWS_ENDPOINT_URL")),
            expected_bucket_owner: expected_bucket_owner(get)?,
        })
    }
}

/// `EXPECTED_BUCKET_OWNER`: an AWS account id (12 digits), when set.
pub fn expected_bucket_owner(get: Lookup) -> Result<Option<String>, EnvError> {
    match present(get, "EXPECTED_BUCKET_OWNER") {
        None => Ok(None),
        Some(id) if crate::config::is_account_id(id.trim()) => Ok(Some(id.trim().to_string())),
        Some(value) => Err(EnvError::Invalid {
            name: "EXPECTED_BUCKET_OWNER",
            value,
            expected: "a 12-digit AWS account id (the owner of the source, config and plugin buckets)".into(),
        }),
    }
}

/// A variable's value; unset and blank count as absent.
fn present(get: Lookup, name: &str) -> Option<String> {
    get(name).filter(|v| !v.trim().is_empty())
}

fn required(get: Lookup, name: &'static str, expected: &'static str) -> Result<String, EnvError> {
    present(get, name).ok_or(EnvError::Missing { name, expected })
}

/// `SUFFIX_TO_COPY`: the suffixes exported for orgs without their own list.
pub fn default_suffixes(get: Lookup) -> Result<SuffixSet, EnvError> {
    let list = required(
        get,
        "SUFFIX_TO_COPY",
        "comma-separated suffixes such as \"jpg,pdf,indd\"",
    )?;
    SuffixSet::parse_list(&list).map_err(|e| EnvError::Invalid {
        name: "SUFFIX_TO_COPY",
        value: list.clone(),
        expected: e.to_string(),
    })
}

/// `CONFIGURATION_BUCKET` + `CONFIGURATION_KEY`: the config document in S3, or the prefix
/// of the org documents when the key ends in `/`.
pub fn config_in_s3(get: Lookup) -> Result<ConfigLocation, EnvError> {
    Ok(ConfigLocation::in_s3(
        required(get, "CONFIGURATION_BUCKET", "the bucket holding the config JSON")?,
        required(
            get,
            "CONFIGURATION_KEY",
            "the key of the config JSON, or the prefix (ending in /) of the org documents",
        )?,
    ))
}

#[cfg(test)]
mod tests;
