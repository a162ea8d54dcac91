//! The handler: a plain async function from a parsed event to a [`Report`].
//!
//! The Lambda runtime loop and the CLI both call [`handle`]; neither adds behaviour.
//! Records run concurrently (bounded by `COPY_CONCURRENCY`) and every record is attempted
//! whatever happens to the others.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use futures::StreamExt;

use crate::config::Config;
use crate::config_store::{ConfigLoadError, ConfigStore};
use crate::copy::retry::{RetryPolicy, S3Failure};
use crate::copy::{CopyJob, CopyOptions, CopyOutcome, copy_object};
use crate::env::Settings;
use crate::event::{EventRecord, ParsedEvent, RecordBody, SourceObject};
use crate::report::{Outcome, RecordReport, Report};
use crate::route::{Route, route};

/// Longest single backoff step between retries.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(20);

/// What the handler needs, built once per cold start and shared by every invocation.
pub struct Exporter {
    client: Client,
    settings: Settings,
    config: ConfigStore,
}

impl Exporter {
    /// An exporter over `client` with `settings`; the configuration is loaded on first use.
    pub fn new(client: Client, settings: Settings) -> Self {
        let config = ConfigStore::new(settings.config_location.clone(), settings.config_refresh);
        Self {
            client,
            settings,
            config,
        }
    }

    /// The S3 client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The configuration in force (loaded or refreshed when due).
    pub async fn config(&self) -> Result<Arc<Config>, ConfigLoadError> {
        self.config.current(&self.client).await
    }
}

/// Handles one invocation: routes and copies every record, and reports on each.
pub async fn handle(exporter: &Exporter, event: ParsedEvent) -> Report {
    let config = exporter.config().await;
    let config = config.as_ref();
    let records: Vec<RecordReport> = futures::stream::iter(event.records)
        .map(|record| process_record(exporter, config, record))
        .buffered(exporter.settings.copy_concurrency)
        .collect()
        .await;
    Report::new(event.trigger, records)
}

async fn process_record(
    exporter: &Exporter,
    config: Result<&Arc<Config>, &ConfigLoadError>,
    record: EventRecord,
) -> RecordReport {
    let started = Instant::now();
    let mut report = RecordReport {
        record: record.locator,
        source_bucket: None,
        key: None,
        org: None,
        outcome: Outcome::Failed,
        destination_bucket: None,
        destination_key: None,
        reason: None,
        error_code: None,
        bytes: None,
        attempts: 0,
        ms: 0,
        message_id: record.message_id,
    };
    match record.body {
        RecordBody::Invalid { reason } => report.reason = Some(reason),
        RecordBody::Ignored { bucket, key, reason } => {
            report.source_bucket = bucket;
            report.key = key;
            report.outcome = Outcome::Skipped;
            report.reason = Some(reason);
        }
        RecordBody::Object(object) => {
            report.source_bucket = Some(object.bucket.clone());
            report.key = Some(object.key.clone());
            match config {
                Ok(config) => export_object(exporter, config, &object, &mut report).await,
                Err(error) => report.reason = Some(error.to_string()),
            }
        }
    }
    report.ms = started.elapsed().as_millis() as u64;
    log_record(&report);
    report
}

async fn export_object(
    exporter: &Exporter,
    config: &Config,
    object: &SourceObject,
    report: &mut RecordReport,
) {
    let settings = &exporter.settings;
    let (customer, destination_key) = match route(config, &settings.suffixes, object) {
        Route::Skip { customer, reason } => {
            report.org = customer.map(|c| c.org.clone());
            report.outcome = Outcome::Skipped;
            report.reason = Some(reason);
            return;
        }
        Route::Copy {
            customer,
            destination_key,
        } => (customer, destination_key),
    };
    report.org = Some(customer.org.clone());
    report.destination_bucket = Some(customer.destination_bucket.clone());
    report.destination_key = Some(destination_key.clone());
    let job = CopyJob {
        source_bucket: &object.bucket,
        source_key: &object.key,
        size: object.size,
        etag: object.etag.as_deref(),
        destination_bucket: &customer.destination_bucket,
        destination_key: &destination_key,
    };
    let options = CopyOptions {
        multipart_threshold: settings.multipart_threshold,
        part_size: settings.multipart_part_size,
        part_concurrency: settings.part_concurrency,
        retry: RetryPolicy {
            extra_attempts: config.retry,
            base_delay: settings.retry_base_delay,
            max_delay: MAX_RETRY_DELAY,
        },
    };
    let result = copy_object(&exporter.client, &job, &options).await;
    report.attempts = result.attempts;
    match result.outcome {
        Ok(CopyOutcome::Copied { bytes, .. }) => {
            report.outcome = Outcome::Copied;
            report.bytes = bytes;
        }
        Ok(CopyOutcome::Superseded(why)) => {
            report.outcome = Outcome::Superseded;
            report.reason = Some(why);
        }
        Err(failure) => {
            let retried = matches!(failure, S3Failure::Retryable { .. });
            report.error_code = Some(failure.code().to_string());
            report.reason = Some(if retried {
                format!("{failure} (gave up after {} attempts)", result.attempts)
            } else {
                failure.to_string()
            });
        }
    }
}

fn log_record(r: &RecordReport) {
    let outcome = match r.outcome {
        Outcome::Copied => "copied",
        Outcome::Skipped => "skipped",
        Outcome::Superseded => "superseded",
        Outcome::Failed => "failed",
    };
    let fields = (
        r.source_bucket.as_deref().unwrap_or("-"),
        r.key.as_deref().unwrap_or("-"),
        r.org.as_deref().unwrap_or("-"),
        r.destination_bucket.as_deref().unwrap_or("-"),
        r.reason.as_deref().unwrap_or(""),
    );
    if r.outcome == Outcome::Failed {
        tracing::error!(outcome, bucket = fields.0, key = fields.1, org = fields.2, destination = fields.3, reason = fields.4, attempts = r.attempts, ms = r.ms, record = %r.record, "record");
    } else {
        tracing::info!(
            outcome,
            bucket = fields.0,
            key = fields.1,
            org = fields.2,
            destination = fields.3,
            reason = fields.4,
            attempts = r.attempts,
            ms = r.ms,
            "record"
        );
    }
}
