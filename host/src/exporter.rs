//! [`Exporter`]: what every invocation shares, built once per cold start: the S3 client,
//! the settings, the destination, the configuration in force and the plugins loaded for it.

use std::sync::{Arc, OnceLock};

use aws_sdk_s3::Client;
use tokio::sync::Mutex;

use crate::config::Config;
use crate::config_store::{ConfigLoadError, ConfigStore};
use crate::destination::{Destination, FolderDestination, S3Destination};
use crate::env::Settings;
use crate::policy::{LoadError, OrgPlugins, Runtime};
use crate::s3;

/// What the handler needs, built once per cold start and shared by every invocation.
pub struct Exporter {
    client: Client,
    settings: Settings,
    destination: Destination,
    config: ConfigStore,
    runtime: OnceLock<Result<Runtime, String>>,
    plugins: Mutex<Option<(Arc<Config>, Arc<OrgPlugins>)>>,
}

impl Exporter {
    /// An exporter over `client` with `settings`; the configuration is loaded on first use.
    /// Copies go to destination buckets, or to folders in local mode (`settings.local`).
    pub fn new(client: Client, settings: Settings) -> Self {
        // Every request of the function is bounded by the settings' timeouts.
        let client = s3::client::with_timeouts(&client, settings.timeouts);
        let config = ConfigStore::new(settings.config_location.clone(), settings.config_refresh);
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
            plugins: Mutex::new(None),
        }
    }

    /// The plugin runtime, created on first use (an org without a plugin never pays for it).
    pub fn runtime(&self) -> Result<&Runtime, String> {
        self.runtime
            .get_or_init(|| Runtime::new().map_err(|e| format!("plugin engine could not start: {e:#}")))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The plugins of `config`'s orgs, loaded once per configuration version.
    pub async fn plugins_for(&self, config: &Arc<Config>) -> Arc<OrgPlugins> {
        if config.customers.iter().all(|c| c.plugin.is_none()) {
            return Arc::default();
        }
        let mut cached = self.plugins.lock().await;
        if let Some((loaded_for, plugins)) = cached.as_ref()
            && Arc::ptr_eq(loaded_for, config)
        {
            return plugins.clone();
        }
        let plugins = match self.runtime() {
            Ok(runtime) => runtime.load_all(&self.client, config).await,
            Err(error) => config
                .customers
                .iter()
                .filter_map(|c| {
                    let failure = LoadError::Invalid {
                        plugin: c.plugin.as_ref()?.source.to_string(),
                        reason: error.clone(),
                    };
                    Some((c.org.clone(), Err(failure)))
                })
                .collect(),
        };
        let plugins = Arc::new(plugins);
        *cached = Some((config.clone(), plugins.clone()));
        plugins
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
