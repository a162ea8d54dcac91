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

/// Where the configuration document lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigLocation {
    /// `CONFIGURATION_BUCKET` / `CONFIGURATION_KEY`.
    S3 {
        /// Bucket holding the config object.
        bucket: String,
        /// Key of the config object.
        key: String,
    },
    /// A local file (`--config`).
    File(PathBuf),
}

impl std::fmt::Display for ConfigLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigLocation::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
            ConfigLocation::File(path) => write!(f, "{}", path.display()),
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
            Some(path) => ConfigLocation::File(path),
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

/// `CONFIGURATION_BUCKET` + `CONFIGURATION_KEY`: the config document in S3.
pub fn config_in_s3(get: Lookup) -> Result<ConfigLocation, EnvError> {
    Ok(ConfigLocation::S3 {
        bucket: required(get, "CONFIGURATION_BUCKET", "the bucket holding the config JSON")?,
        key: required(get, "CONFIGURATION_KEY", "the key of the config JSON")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, EnvError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(move |name| map.get(name).cloned())
    }

    const BASE: &[(&str, &str)] = &[
        ("SUFFIX_TO_COPY", "jpg, .PDF,indd"),
        ("CONFIGURATION_BUCKET", "cfg"),
        ("CONFIGURATION_KEY", "export/config.json"),
    ];

    /// `validate` and `plan` load plugins with the Lambda's owner and backoff, without the
    /// variables only copies need.
    #[test]
    fn loading_reads_the_owner_and_the_backoff_alone() {
        let map: HashMap<&str, &str> = [
            ("EXPECTED_BUCKET_OWNER", "111111111111"),
            ("RETRY_BASE_DELAY_MS", "7"),
            ("ENV", "local"),
        ]
        .into();
        let get = |name: &str| map.get(name).map(|v| v.to_string());
        let location = ConfigLocation::File("config.json".into());
        let suffixes = SuffixSet::parse_list("jpg").unwrap();
        let s = Settings::for_loading(&get, location.clone(), suffixes).unwrap();
        assert_eq!(s.expected_bucket_owner.as_deref(), Some("111111111111"));
        assert_eq!(s.retry_base_delay, Duration::from_millis(7));
        assert_eq!(s.config_location, location);
        assert_eq!(s.local, None);
        let bad = |name: &str| (name == "EXPECTED_BUCKET_OWNER").then(|| "nobody".to_string());
        let suffixes = SuffixSet::parse_list("jpg").unwrap();
        assert!(matches!(
            Settings::for_loading(&bad, location, suffixes),
            Err(EnvError::Invalid {
                name: "EXPECTED_BUCKET_OWNER",
                ..
            })
        ));
    }

    #[test]
    fn defaults() {
        let s = settings(BASE).unwrap();
        assert_eq!(s.suffixes.as_slice(), ["jpg", "pdf", "indd"]);
        assert_eq!(s.config_location.to_string(), "s3://cfg/export/config.json");
        assert_eq!(s.config_refresh, Duration::from_secs(60));
        assert_eq!(s.multipart_threshold, COPY_OBJECT_LIMIT);
        assert_eq!(s.copy_concurrency, 16);
        assert_eq!(s.timeouts, Timeouts::default());
        assert_eq!(s.timeouts.request, Duration::from_secs(10));
        assert_eq!(s.timeouts.copy, Duration::from_secs(600));
        assert_eq!(s.deadline_margin, Duration::from_secs(5));
        assert_eq!(s.sts_endpoint, None);
    }

    #[test]
    fn a_multipart_threshold_under_one_part_is_refused() {
        let with = |value: &str| {
            let mut all = BASE.to_vec();
            all.push(("MULTIPART_COPY_THRESHOLD", value));
            settings(&all)
        };
        let err = with("1048576").unwrap_err().to_string();
        assert!(err.contains("MULTIPART_COPY_THRESHOLD"), "{err}");
        assert!(err.contains("from 5242880 to 5368709120"), "{err}");
        assert!(with("5242879").is_err());
        assert_eq!(with("5242880").unwrap().multipart_threshold, MIN_PART_SIZE);
    }

    #[test]
    fn sts_endpoint_prefers_its_own_variable() {
        let with = |vars: &[(&str, &str)]| {
            let mut all = BASE.to_vec();
            all.extend_from_slice(vars);
            settings(&all).unwrap().sts_endpoint
        };
        assert_eq!(
            with(&[("AWS_ENDPOINT_URL", "http://s3:1")]).as_deref(),
            Some("http://s3:1")
        );
        assert_eq!(
            with(&[
                ("AWS_ENDPOINT_URL", "http://s3:1"),
                ("AWS_ENDPOINT_URL_STS", "http://sts:2")
            ])
            .as_deref(),
            Some("http://sts:2")
        );
    }

    #[test]
    fn missing_or_empty_is_named() {
        for missing in ["SUFFIX_TO_COPY", "CONFIGURATION_BUCKET", "CONFIGURATION_KEY"] {
            let vars: Vec<_> = BASE.iter().copied().filter(|(k, _)| *k != missing).collect();
            let err = settings(&vars).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("environment variable {missing} is missing")),
                "{err}"
            );
            let mut blank = vars.clone();
            blank.push((missing, "  "));
            assert!(settings(&blank).unwrap_err().to_string().contains(missing));
        }
    }

    #[test]
    fn config_file_replaces_bucket_and_key() {
        let get = |name: &str| (name == "SUFFIX_TO_COPY").then(|| "jpg".to_string());
        let s = Settings::from_lookup_with_config(&get, Some("c.json".into())).unwrap();
        assert_eq!(s.config_location, ConfigLocation::File("c.json".into()));
    }

    #[test]
    fn local_mode_reads_its_own_variables() {
        let s = settings(&[
            ("ENV", "local"),
            ("SUFFIX_TO_COPY", "jpg"),
            ("LOCAL_CONFIGURATION", "cfg.json"),
            ("LOCAL_DEST", "/tmp/out"),
            ("LOCAL_SOURCE", "/tmp/in"),
            ("DESTINATION_KEY", "renamed.jpg"),
        ])
        .unwrap();
        assert_eq!(s.config_location, ConfigLocation::File("cfg.json".into()));
        let local = s.local.unwrap();
        assert_eq!(local.dest_dir, PathBuf::from("/tmp/out"));
        assert_eq!(local.source_dir, Some(PathBuf::from("/tmp/in")));
        assert_eq!(local.destination_key.as_deref(), Some("renamed.jpg"));
        let err = settings(&[
            ("ENV", "local"),
            ("SUFFIX_TO_COPY", "jpg"),
            ("LOCAL_CONFIGURATION", "c"),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("environment variable LOCAL_DEST is missing"),
            "{err}"
        );
        let err = settings(&[("ENV", "local"), ("SUFFIX_TO_COPY", "jpg"), ("LOCAL_DEST", "d")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("environment variable LOCAL_CONFIGURATION is missing"),
            "{err}"
        );
        assert!(settings(BASE).unwrap().local.is_none());
    }

    #[test]
    fn numbers_are_checked() {
        let mut vars = BASE.to_vec();
        vars.push(("MULTIPART_COPY_THRESHOLD", "6000000000"));
        let err = settings(&vars).unwrap_err().to_string();
        assert_eq!(
            err,
            "environment variable MULTIPART_COPY_THRESHOLD=\"6000000000\" is invalid; expected a whole number from 5242880 to 5368709120"
        );
        let mut vars = BASE.to_vec();
        vars.push(("COPY_CONCURRENCY", "0"));
        assert!(settings(&vars).is_err());
        let mut vars = BASE.to_vec();
        vars.push(("COPY_CONCURRENCY", "4"));
        assert_eq!(settings(&vars).unwrap().copy_concurrency, 4);
    }

    #[test]
    fn timeouts_and_the_deadline_margin_come_from_the_environment() {
        let mut vars = BASE.to_vec();
        vars.extend([
            ("S3_REQUEST_TIMEOUT_MS", "1500"),
            ("COPY_REQUEST_TIMEOUT_MS", "120000"),
            ("DEADLINE_MARGIN_MS", "2000"),
        ]);
        let s = settings(&vars).unwrap();
        assert_eq!(s.timeouts.request, Duration::from_millis(1500));
        assert_eq!(s.timeouts.copy, Duration::from_secs(120));
        assert_eq!(s.deadline_margin, Duration::from_secs(2));
        let mut vars = BASE.to_vec();
        vars.push(("COPY_REQUEST_TIMEOUT_MS", "0"));
        assert_eq!(
            settings(&vars).unwrap_err().to_string(),
            "environment variable COPY_REQUEST_TIMEOUT_MS=\"0\" is invalid; expected a whole number from 100 to 900000"
        );
    }

    #[test]
    fn a_deadline_margin_without_room_for_an_abort_is_refused() {
        for short in ["0", "1999"] {
            let mut vars = BASE.to_vec();
            vars.push(("DEADLINE_MARGIN_MS", short));
            assert_eq!(
                settings(&vars).unwrap_err().to_string(),
                format!(
                    "environment variable DEADLINE_MARGIN_MS=\"{short}\" is invalid; expected a whole number from 2000 to 60000"
                )
            );
        }
    }

    #[test]
    fn expected_bucket_owner_is_an_account_id() {
        assert_eq!(settings(BASE).unwrap().expected_bucket_owner, None);
        let mut vars = BASE.to_vec();
        vars.push(("EXPECTED_BUCKET_OWNER", "011122223333"));
        assert_eq!(
            settings(&vars).unwrap().expected_bucket_owner.as_deref(),
            Some("011122223333")
        );
        let mut vars = BASE.to_vec();
        vars.push(("EXPECTED_BUCKET_OWNER", "1111-2222-3333"));
        assert_eq!(
            settings(&vars).unwrap_err().to_string(),
            "environment variable EXPECTED_BUCKET_OWNER=\"1111-2222-3333\" is invalid; expected a 12-digit AWS account id (the owner of the source, config and plugin buckets)"
        );
    }

    #[test]
    fn bad_suffix_list() {
        let mut vars = BASE.to_vec();
        vars[0] = ("SUFFIX_TO_COPY", ",,");
        assert!(
            settings(&vars)
                .unwrap_err()
                .to_string()
                .contains("SUFFIX_TO_COPY")
        );
    }
}
