//! [`Exporter`]: what every invocation shares, built once per cold start: the S3 client,
//! the settings, the destination, the configuration in force and the plugins loaded for it.

use std::sync::{Arc, OnceLock};

use aws_sdk_s3::Client;

use crate::config::Config;
use crate::config_store::{ConfigLoadError, ConfigStore};
use crate::destination::{Destination, FolderDestination, S3Destination};
use crate::env::Settings;
use crate::policy::{Fuel, OrgPlugins, PluginCache, Runtime};
use crate::s3::{self, RetryPolicy};

/// What the handler needs, built once per cold start and shared by every invocation.
pub struct Exporter {
    client: Client,
    settings: Settings,
    destination: Destination,
    config: ConfigStore,
    runtime: OnceLock<Result<Runtime, String>>,
    plugins: PluginCache,
}

impl Exporter {
    /// An exporter over `client` with `settings`; the configuration is loaded on first use.
    /// Copies go to destination buckets, or to folders in local mode (`settings.local`).
    pub fn new(client: Client, settings: Settings) -> Self {
        // Every request of the function is bounded by the settings' timeouts.
        let client = s3::client::with_timeouts(&client, settings.timeouts);
        let config = ConfigStore::new(settings.config_location.clone(), settings.config_refresh)
            .with_source_bucket(settings.source_bucket.clone())
            .with_bucket_owner(settings.expected_bucket_owner.clone());
        let destination = match &settings.local {
            Some(mode) => Destination::Folder(FolderDestination::new(mode.clone(), client.clone())),
            None => Destination::S3(S3Destination::new(client.clone())),
        };
        Self {
            client,
            settings,
            destination,
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
                    .map(|runtime| runtime.with_bucket_owner(self.settings.expected_bucket_owner.clone()))
                    .map_err(|e| format!("plugin engine could not start: {e:#}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The plugins of `config`'s orgs, loaded once per configuration version (transient
    /// load failures are tried again by a later invocation: see `PluginCache`).
    pub async fn plugins_for(&self, config: &Arc<Config>) -> Arc<OrgPlugins> {
        let retry = RetryPolicy::new(config.retry, self.settings.retry_base_delay);
        self.plugins
            .get(self.runtime(), &self.client, config, &retry)
            .await
    }

    /// The S3 client (config, plugins, source reads).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Where copies go.
    pub fn destination(&self) -> &Destination {
        &self.destination
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
