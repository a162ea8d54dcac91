//! The handler: a plain async function from a parsed event to a [`Report`].
//!
//! The Lambda runtime loop and the CLI both call [`handle`]; neither adds behaviour.
//! Records run concurrently (bounded by `COPY_CONCURRENCY`) and every record is attempted
//! whatever happens to the others.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use futures::StreamExt;

use crate::config::{Config, Customer, OnError};
use crate::config_store::{ConfigLoadError, ConfigStore};
use crate::copy::retry::{RetryPolicy, S3Failure};
use crate::copy::{CopyJob, CopyOptions, CopyOutcome, copy_object};
use crate::env::Settings;
use crate::event::{EventRecord, ParsedEvent, RecordBody, SourceObject};
use crate::local_copy::copy_to_folder;
use crate::policy::{Blame, Fuel, OrgPlugins, PluginCache, Runtime, Verdict, check_targets};
use crate::report::{Outcome, RecordReport, Report, TargetReport};
use crate::route::{Route, Target, route};

/// Longest single backoff step between retries.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(20);

/// What the handler needs, built once per cold start and shared by every invocation.
pub struct Exporter {
    client: Client,
    settings: Settings,
    config: ConfigStore,
    runtime: OnceLock<Result<Runtime, String>>,
    plugins: PluginCache,
}

impl Exporter {
    /// An exporter over `client` with `settings`; the configuration is loaded on first use.
    pub fn new(client: Client, settings: Settings) -> Self {
        let config = ConfigStore::new(settings.config_location.clone(), settings.config_refresh)
            .with_source_bucket(settings.source_bucket.clone());
        Self {
            client,
            settings,
            config,
            runtime: OnceLock::new(),
            plugins: PluginCache::new(),
        }
    }

    /// The plugin runtime, created on first use (an org without a plugin never pays for it).
    pub fn runtime(&self) -> Result<&Runtime, String> {
        self.runtime
            .get_or_init(|| {
                Runtime::with_options(Fuel::Metered, self.settings.plugin_instances)
                    .map_err(|e| format!("plugin engine could not start: {e:#}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The plugins of `config`'s orgs, loaded once per configuration version (transient
    /// load failures are tried again by a later invocation: see `PluginCache`).
    pub async fn plugins_for(&self, config: &Arc<Config>) -> Arc<OrgPlugins> {
        let retry = copy_options(&self.settings, config).retry;
        self.plugins
            .get(self.runtime(), &self.client, config, &retry)
            .await
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
    Report::new(event.trigger, records).with_batch(event.batch)
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
        targets: Vec::new(),
        message_id: record.message_id,
        task_id: record.task_id,
        retryable: false,
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
                Ok(config) => {
                    let plugins = exporter.plugins_for(config).await;
                    export_object(exporter, config, &plugins, &object, &mut report).await
                }
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
    plugins: &OrgPlugins,
    object: &SourceObject,
    report: &mut RecordReport,
) {
    let settings = &exporter.settings;
    let (customer, decided) = plan_object(config, &settings.suffixes, plugins, object).await;
    report.org = customer.map(|c| c.org.clone());
    let targets = match decided {
        Decided::Copy(targets) => targets,
        Decided::Skip(reason) => {
            report.outcome = Outcome::Skipped;
            report.reason = Some(reason);
            return;
        }
        Decided::Fail(reason) => {
            report.reason = Some(reason);
            return;
        }
        Decided::Retry(reason) => {
            report.reason = Some(reason);
            report.retryable = true;
            return;
        }
    };
    let options = copy_options(settings, config);
    let results: Vec<TargetReport> = futures::future::join_all(
        targets
            .iter()
            .map(|target| copy_to_target(exporter, &options, object, target)),
    )
    .await;
    report.merge_targets(results);
}

/// Copy tuning from the settings, with the configuration's retry count.
pub fn copy_options(settings: &Settings, config: &Config) -> CopyOptions {
    CopyOptions {
        multipart_threshold: settings.multipart_threshold,
        part_size: settings.multipart_part_size,
        part_concurrency: settings.part_concurrency,
        retry: RetryPolicy {
            extra_attempts: config.retry,
            base_delay: settings.retry_base_delay,
            max_delay: MAX_RETRY_DELAY,
        },
    }
}

/// What the org's policy (plugin, or plain suffix matching) decided for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    /// Copy to these (checked) targets.
    Copy(Vec<Target>),
    /// Nothing to copy, with the reason.
    Skip(String),
    /// The record fails, with the reason.
    Fail(String),
    /// The record fails for a host-side reason a later attempt may not meet (a plugin GET
    /// that kept failing, the instance pool, the engine): retryable, never `onError`.
    Retry(String),
}

/// Routes `object` and applies its org's policy: the plain decision, or the plugin's
/// answer checked against the org's buckets. Returns the owning org, if any.
pub async fn plan_object<'c>(
    config: &'c Config,
    suffixes: &crate::suffix::SuffixSet,
    plugins: &OrgPlugins,
    object: &SourceObject,
) -> (Option<&'c Customer>, Decided) {
    match route(config, suffixes, object) {
        Route::Skip {
            customer: None,
            reason,
        } => (None, Decided::Skip(reason)),
        Route::Skip {
            customer: Some(customer),
            reason,
        } => (
            Some(customer),
            decide_targets(customer, plugins, object, Vec::new(), reason).await,
        ),
        Route::Copy {
            customer,
            destination_key,
        } => {
            let target = Target {
                bucket: customer.destination_bucket.clone(),
                key: destination_key,
            };
            (
                Some(customer),
                decide_targets(customer, plugins, object, vec![target], String::new()).await,
            )
        }
    }
}

async fn decide_targets(
    customer: &Customer,
    plugins: &OrgPlugins,
    object: &SourceObject,
    proposed: Vec<Target>,
    default_skip: String,
) -> Decided {
    let default = |proposed: Vec<Target>| {
        if proposed.is_empty() {
            Decided::Skip(default_skip.clone())
        } else {
            Decided::Copy(proposed)
        }
    };
    let Some(spec) = &customer.plugin else {
        return default(proposed);
    };
    let org = &customer.org;
    let plugin = match plugins.get(org) {
        Some(Ok(plugin)) => plugin,
        Some(Err(error)) if error.is_transient() => return Decided::Retry(format!("org {org}: {error}")),
        Some(Err(error)) => return Decided::Fail(format!("org {org}: {error}")),
        None => return Decided::Fail(format!("org {org}: plugin {} is not loaded", spec.source)),
    };
    let answer = plugin
        .clone()
        .decide_blocking(
            org.clone(),
            object.clone(),
            proposed.clone(),
            spec.settings.clone(),
        )
        .await;
    match answer {
        Ok(Verdict::Copy(targets)) => match check_targets(customer, &targets) {
            Ok(()) if targets.is_empty() => {
                Decided::Skip(format!("plugin {} chose no targets", plugin.name()))
            }
            Ok(()) => Decided::Copy(targets),
            Err(why) => Decided::Fail(format!(
                "org {org}: plugin {} answer rejected: {why}",
                plugin.name()
            )),
        },
        Ok(Verdict::Skip(reason)) => Decided::Skip(format!("plugin {}: {reason}", plugin.name())),
        Err(error) => {
            let reason = format!("org {org}: plugin {} {error}", plugin.name());
            match error.blame() {
                Blame::Host => return Decided::Retry(reason),
                Blame::Contract => return Decided::Fail(reason),
                Blame::Plugin => {}
            }
            match spec.on_error {
                OnError::Fail => Decided::Fail(reason),
                OnError::Skip => Decided::Skip(format!("{reason} (onError: skip)")),
                OnError::Default => {
                    tracing::warn!(%org, %reason, "plugin failed; plain suffix matching decides (onError: default)");
                    default(proposed)
                }
            }
        }
    }
}

/// Copies `object` to one target (an S3 bucket, or a folder in local mode) and reports it.
pub async fn copy_to_target(
    exporter: &Exporter,
    options: &CopyOptions,
    object: &SourceObject,
    target: &Target,
) -> TargetReport {
    if let Some(local) = &exporter.settings.local {
        let (outcome, attempts) =
            copy_to_folder(&exporter.client, local, object, target, &options.retry).await;
        let destination_key = local
            .destination_key
            .clone()
            .unwrap_or_else(|| target.key.clone());
        return target_report(
            &Target {
                bucket: target.bucket.clone(),
                key: destination_key,
            },
            outcome.map(|bytes| CopyOutcome::Copied {
                bytes: Some(bytes),
                parts: None,
            }),
            attempts,
        );
    }
    let job = CopyJob {
        source_bucket: &object.bucket,
        source_key: &object.key,
        size: object.size,
        etag: object.etag.as_deref(),
        destination_bucket: &target.bucket,
        destination_key: &target.key,
    };
    let result = copy_object(&exporter.client, &job, options).await;
    target_report(target, result.outcome, result.attempts)
}

fn target_report(target: &Target, outcome: Result<CopyOutcome, S3Failure>, attempts: u32) -> TargetReport {
    let mut report = TargetReport {
        destination_bucket: target.bucket.clone(),
        destination_key: target.key.clone(),
        outcome: Outcome::Failed,
        reason: None,
        error_code: None,
        bytes: None,
        attempts,
        retryable: false,
    };
    match outcome {
        Ok(CopyOutcome::Superseded(why)) | Err(S3Failure::Superseded(why)) => {
            report.outcome = Outcome::Superseded;
            report.reason = Some(why);
        }
        Ok(CopyOutcome::Copied { bytes, .. }) => {
            report.outcome = Outcome::Copied;
            report.bytes = bytes;
        }
        Err(failure) => {
            let retried = matches!(failure, S3Failure::Retryable { .. });
            report.retryable = retried;
            report.error_code = Some(failure.code().to_string());
            report.reason = Some(if retried {
                format!("{failure} (gave up after {attempts} attempts)")
            } else {
                failure.to_string()
            });
        }
    }
    report
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
