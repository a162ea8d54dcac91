//! The configuration as currently in force: read once per cold start, looked at again at
//! most every `CONFIG_REFRESH_SECONDS`, and re-read only where it changed (ETags).
//!
//! Two forms ([`ConfigLocation`]): one document ([`document`]), where a refresh that fails
//! (unreachable, or invalid) keeps the whole last good configuration; or a folder of org
//! documents ([`org_documents`]), where each org's document is refused or let in on its own,
//! so one org's bad edit never holds back another org's. Without any good configuration
//! (a cold start), loading fails and so does every record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use tokio::sync::Mutex;

use crate::bounded::human;
use crate::config::{Config, ConfigError, Refusal};
use crate::env::ConfigLocation;

mod document;
mod listing;
mod org_documents;
mod snapshot;

pub use snapshot::{SNAPSHOT_NAME, write as write_snapshot};

use document::Fetched;
use org_documents::OrgDocuments;

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

impl crate::s3::Retryable for ConfigLoadError {
    fn is_retryable(&self) -> bool {
        ConfigLoadError::is_retryable(self)
    }
}

struct Loaded {
    config: Arc<Config>,
    checked_at: Instant,
}

/// What a refresh remembers of what it read, per form.
enum Seen {
    /// The single document's ETag.
    Document(Option<String>),
    /// Every org document's state.
    Documents(OrgDocuments),
}

struct State {
    loaded: Option<Loaded>,
    seen: Seen,
}

/// Caches the configuration and decides when to look at it again.
pub struct ConfigStore {
    location: ConfigLocation,
    refresh: Duration,
    source_bucket: Option<String>,
    bucket_owner: Option<String>,
    state: Mutex<State>,
    /// Org documents refused since they were last taken ([`ConfigStore::take_refusals`]).
    refusals: std::sync::Mutex<Vec<Refusal>>,
}

impl ConfigStore {
    /// A store that has loaded nothing yet.
    pub fn new(location: ConfigLocation, refresh: Duration) -> Self {
        let seen = match location.is_documents() {
            true => Seen::Documents(OrgDocuments::default()),
            false => Seen::Document(None),
        };
        Self {
            location,
            refresh,
            source_bucket: None,
            bucket_owner: None,
            state: Mutex::new(State { loaded: None, seen }),
            refusals: std::sync::Mutex::new(Vec::new()),
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

    /// The org documents refused since the last call, each logged when it was refused: the
    /// caller publishes them (the `ConfigRejected` metric). Always empty for one document.
    pub fn take_refusals(&self) -> Vec<Refusal> {
        std::mem::take(&mut *self.refusals.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The configuration in force, fetching or refreshing it when due.
    pub async fn current(&self, client: &Client) -> Result<Arc<Config>, ConfigLoadError> {
        let mut state = self.state.lock().await;
        let State { loaded, seen } = &mut *state;
        if let Some(current) = loaded.as_ref()
            && current.checked_at.elapsed() < self.refresh
        {
            return Ok(current.config.clone());
        }
        let read = match seen {
            Seen::Document(etag) => self.refresh_document(client, etag).await,
            Seen::Documents(documents) => {
                let reader = org_documents::Reader {
                    client,
                    location: &self.location,
                    bucket_owner: self.bucket_owner.as_deref(),
                    source_bucket: self.source_bucket.as_deref(),
                    cold: loaded.is_none(),
                };
                let read = documents.refresh(&reader).await;
                if let Ok((_, refusals)) = &read {
                    self.refused(refusals);
                }
                read.map(|(config, _)| config)
            }
        };
        match (read, loaded.as_mut()) {
            (Ok(Some(config)), _) => {
                tracing::info!(location = %self.location, orgs = config.customers.len(), "configuration loaded");
                let config = Arc::new(config);
                *loaded = Some(Loaded {
                    config: config.clone(),
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

    /// Logs each refusal and keeps it for [`ConfigStore::take_refusals`].
    fn refused(&self, refusals: &[Refusal]) {
        for refusal in refusals {
            tracing::error!(
                org = %refusal.org,
                document = %refusal.document,
                reason = %refusal.reason,
                "org document refused; the org keeps its last good entry (or stays unconfigured)"
            );
        }
        self.refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(refusals);
    }

    /// The single document, parsed when it changed since `etag` (which it then updates).
    async fn refresh_document(
        &self,
        client: &Client,
        etag: &mut Option<String>,
    ) -> Result<Option<Config>, ConfigLoadError> {
        let fetched = document::read(
            client,
            &self.location,
            etag.as_deref(),
            self.bucket_owner.as_deref(),
        )
        .await?;
        match fetched {
            Fetched::Unchanged => Ok(None),
            Fetched::Gone => Err(ConfigLoadError::Missing {
                location: self.location.to_string(),
            }),
            Fetched::Changed { text, etag: new } => {
                let config = Config::parse_for_source(
                    &text,
                    &self.location.to_string(),
                    self.source_bucket.as_deref(),
                )?;
                *etag = new;
                Ok(Some(config))
            }
        }
    }
}
