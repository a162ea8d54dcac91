//! The configuration as currently in force: read once per cold start, re-read only when
//! it changed (conditional GET on its ETag), at most every `CONFIG_REFRESH_SECONDS`.
//!
//! A refresh that fails (unreachable, or the new document is invalid) keeps the last good
//! configuration in force and logs why: one org's typo must not stop every org's exports.
//! Without any good configuration (a cold start), loading fails and so does every record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::SdkError;
use tokio::sync::Mutex;

use crate::bounded::{MAX_CONFIG_BYTES, ReadError, collect_body, human, read_file_to_limit};
use crate::config::{Config, ConfigError};
use crate::env::ConfigLocation;
use crate::s3::{S3Failure, SourceChange, classify};

/// Why no configuration could be loaded.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ConfigLoadError {
    /// The document could not be read.
    #[error("config {location}: could not be read: {reason}")]
    Unreadable {
        /// Where it was looked for.
        location: String,
        /// The S3 error code or I/O error.
        reason: String,
        /// Whether another attempt could read it (throttling, 5xx, a timeout, a broken
        /// stream), not a refusal or a missing object.
        retryable: bool,
    },
    /// There is no object at the configured location (S3 answered 404 / `NoSuchKey`).
    #[error(
        "config {location}: could not be read: there is no such object; expected the configuration document there (CONFIGURATION_BUCKET / CONFIGURATION_KEY)"
    )]
    Missing {
        /// Where it was looked for.
        location: String,
    },
    /// The invocation's deadline came before the document (a cold start's read): the
    /// records are cut short like any other the deadline stops.
    #[error("config {location}: not read before the invocation's deadline")]
    Deadline {
        /// Where it was being read from.
        location: String,
    },
    /// The document is larger than [`MAX_CONFIG_BYTES`]; nothing beyond the limit was read.
    #[error("config {location}: larger than the {} limit for a configuration; expected a smaller document", human(*limit))]
    TooLarge {
        /// Where it was read from.
        location: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The document is not a valid configuration.
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

impl ConfigLoadError {
    /// Whether the same read could succeed later without anyone changing anything: a Batch
    /// Operations task then answers `TemporaryFailure`, so S3 retries it.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ConfigLoadError::Unreadable { retryable: true, .. } | ConfigLoadError::Deadline { .. }
        )
    }
}

struct Loaded {
    config: Arc<Config>,
    etag: Option<String>,
    checked_at: Instant,
}

/// Caches the configuration and decides when to look at it again.
pub struct ConfigStore {
    location: ConfigLocation,
    refresh: Duration,
    source_bucket: Option<String>,
    bucket_owner: Option<String>,
    loaded: Mutex<Option<Loaded>>,
}

enum Fetched {
    Unchanged,
    Changed { text: String, etag: Option<String> },
}

impl ConfigStore {
    /// A store that has loaded nothing yet.
    pub fn new(location: ConfigLocation, refresh: Duration) -> Self {
        Self {
            location,
            refresh,
            source_bucket: None,
            bucket_owner: None,
            loaded: Mutex::new(None),
        }
    }

    /// Reads the config object only from a bucket `owner` owns (`EXPECTED_BUCKET_OWNER`).
    pub fn with_bucket_owner(mut self, owner: Option<String>) -> Self {
        self.bucket_owner = owner;
        self
    }

    /// Also refuses configurations that export into `source_bucket` (see
    /// `Config::parse_for_source`); a refresh that would is kept out like any invalid one.
    pub fn with_source_bucket(mut self, source_bucket: Option<String>) -> Self {
        self.source_bucket = source_bucket;
        self
    }

    /// Where the configuration is read from.
    pub fn location(&self) -> &ConfigLocation {
        &self.location
    }

    /// The configuration in force, fetching or refreshing it when due.
    pub async fn current(&self, client: &Client) -> Result<Arc<Config>, ConfigLoadError> {
        let mut loaded = self.loaded.lock().await;
        if let Some(current) = loaded.as_ref()
            && current.checked_at.elapsed() < self.refresh
        {
            return Ok(current.config.clone());
        }
        let known_etag = loaded.as_ref().and_then(|l| l.etag.clone());
        let fetched = self.fetch(client, known_etag.as_deref()).await;
        let parsed = fetched.and_then(|fetched| match fetched {
            Fetched::Unchanged => Ok(None),
            Fetched::Changed { text, etag } => {
                let config = Config::parse_for_source(
                    &text,
                    &self.location.to_string(),
                    self.source_bucket.as_deref(),
                )?;
                Ok(Some((config, etag)))
            }
        });
        match (parsed, loaded.as_mut()) {
            (Ok(Some((config, etag))), _) => {
                tracing::info!(location = %self.location, orgs = config.customers.len(), "configuration loaded");
                let config = Arc::new(config);
                *loaded = Some(Loaded {
                    config: config.clone(),
                    etag,
                    checked_at: Instant::now(),
                });
                Ok(config)
            }
            (Ok(None), Some(current)) => {
                current.checked_at = Instant::now();
                Ok(current.config.clone())
            }
            (Ok(None), None) => Err(ConfigLoadError::Unreadable {
                location: self.location.to_string(),
                reason: "304 Not Modified answered to an unconditional GET".into(),
                retryable: true,
            }),
            (Err(error), Some(current)) => {
                tracing::error!(%error, "configuration refresh failed; keeping the last good configuration");
                current.checked_at = Instant::now();
                Ok(current.config.clone())
            }
            (Err(error), None) => Err(error),
        }
    }

    /// The load error of a config read S3 answered with `failure`, in the config's words:
    /// S3's "no such key" is [`ConfigLoadError::Missing`]; a precondition the read did not
    /// set is an unreadable answer, not a source "overwritten since the event".
    fn not_read(&self, failure: S3Failure) -> ConfigLoadError {
        let location = self.location.to_string();
        match failure {
            S3Failure::SourceChanged(SourceChange::Deleted) => ConfigLoadError::Missing { location },
            S3Failure::SourceChanged(SourceChange::Overwritten) => ConfigLoadError::Unreadable {
                location,
                reason: "S3 answered 412 PreconditionFailed to a read without a precondition".into(),
                retryable: true,
            },
            S3Failure::Retryable { .. } => ConfigLoadError::Unreadable {
                location,
                reason: failure.to_string(),
                retryable: true,
            },
            S3Failure::Fatal { .. } => ConfigLoadError::Unreadable {
                location,
                reason: failure.to_string(),
                retryable: false,
            },
        }
    }

    async fn fetch(&self, client: &Client, known_etag: Option<&str>) -> Result<Fetched, ConfigLoadError> {
        let unreadable = |reason: String, retryable: bool| ConfigLoadError::Unreadable {
            location: self.location.to_string(),
            reason,
            retryable,
        };
        let bounded = |e: ReadError| match e {
            ReadError::TooLarge { limit } => ConfigLoadError::TooLarge {
                location: self.location.to_string(),
                limit,
            },
            // A file that cannot be read, or an S3 body that broke off.
            ReadError::Failed(reason) => unreadable(reason, true),
        };
        let utf8 =
            |bytes: Vec<u8>| String::from_utf8(bytes).map_err(|_| unreadable("not UTF-8 text".into(), false));
        match &self.location {
            ConfigLocation::File(path) => {
                let bytes = read_file_to_limit(path, MAX_CONFIG_BYTES)
                    .await
                    .map_err(bounded)?;
                Ok(Fetched::Changed {
                    text: utf8(bytes)?,
                    etag: None,
                })
            }
            ConfigLocation::S3 { bucket, key } => {
                let response = client
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .set_if_none_match(known_etag.map(str::to_string))
                    .set_expected_bucket_owner(self.bucket_owner.clone())
                    .send()
                    .await;
                let output = match response {
                    Ok(output) => output,
                    Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 304 => {
                        return Ok(Fetched::Unchanged);
                    }
                    Err(e) => return Err(self.not_read(classify(&e))),
                };
                let etag = output.e_tag().map(str::to_string);
                let bytes = collect_body(output.body, output.content_length, MAX_CONFIG_BYTES)
                    .await
                    .map_err(bounded)?;
                Ok(Fetched::Changed {
                    text: utf8(bytes)?,
                    etag,
                })
            }
        }
    }
}
