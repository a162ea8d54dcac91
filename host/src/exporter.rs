//! [`Exporter`]: what every invocation shares, built once per cold start: the S3 client,
//! the settings, the destination, the configuration in force, the plugins loaded for it and
//! the clients of the orgs' cross-account roles.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::SharedCredentialsProvider;

use crate::config::{Config, Org};
use crate::config_store::{ConfigLoadError, ConfigStore};
use crate::destination::{Aborts, Destination, FolderDestination, S3Destination};
use crate::env::Settings;
use crate::policy::{Fuel, OrgPlugins, PluginCache, PluginLoad, Runtime};
use crate::s3::roles::{AssumeRoleFailed, RoleClients};
use crate::s3::{self, RetryPolicy};

/// What the handler needs, built once per cold start and shared by every invocation.
pub struct Exporter {
    client: Client,
    settings: Settings,
    destination: Destination,
    config: ConfigStore,
    runtime: OnceLock<Result<Runtime, String>>,
    plugins: PluginCache,
    roles: RoleClients,
    /// What the roles are assumed with ([`Exporter::with_role_credentials`]), and for how long
    /// ([`Exporter::with_role_session_length`]).
    role_credentials: Option<SharedCredentialsProvider>,
    role_session_length: Option<Duration>,
    aborts: Aborts,
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
        // An AssumeRole is an ordinary request: bounded like one.
        let roles = RoleClients::new(
            &client,
            None,
            settings.sts_endpoint.as_deref(),
            settings.timeouts.request,
            None,
        );
        Self {
            roles,
            role_credentials: None,
            role_session_length: None,
            client,
            settings,
            destination,
            config,
            runtime: OnceLock::new(),
            plugins: PluginCache::new(),
            aborts: Aborts::default(),
        }
    }

    /// An exporter over the process environment's client ([`s3::client::from_env`]), whose
    /// credentials also assume the orgs' roles: what the Lambda and the CLI run.
    pub async fn from_env(settings: Settings) -> Self {
        let (client, credentials) = s3::client::from_env_with_credentials(&crate::env::process_env).await;
        let exporter = Exporter::new(client, settings);
        match credentials {
            Some(credentials) => exporter.with_role_credentials(credentials),
            None => exporter,
        }
    }

    /// Orgs' `roleArn`s are assumed with `credentials`: those `client` signs with (see
    /// `s3::client::from_env_with_credentials`). Without them, every role fails.
    pub fn with_role_credentials(mut self, credentials: SharedCredentialsProvider) -> Self {
        self.role_credentials = Some(credentials);
        self.with_new_roles()
    }

    /// Roles are assumed for `length` (`DurationSeconds`) instead of STS's default hour:
    /// tests use seconds to see credentials expire (STS itself refuses less than 15 minutes).
    pub fn with_role_session_length(mut self, length: Duration) -> Self {
        self.role_session_length = Some(length);
        self.with_new_roles()
    }

    /// The roles' clients for the current role settings (none assumed yet).
    fn with_new_roles(mut self) -> Self {
        self.roles = RoleClients::new(
            &self.client,
            self.role_credentials.clone(),
            self.settings.sts_endpoint.as_deref(),
            self.settings.timeouts.request,
            self.role_session_length,
        );
        self
    }

    /// The plugin runtime, created on first use (an org without a plugin never pays for it).
    pub fn runtime(&self) -> Result<&Runtime, String> {
        self.runtime
            .get_or_init(|| {
                let started = std::time::Instant::now();
                let runtime = Runtime::with_options(Fuel::Metered, self.settings.plugin_instances);
                tracing::debug!(
                    ms = started.elapsed().as_secs_f64() * 1e3,
                    "plugin engine created"
                );
                runtime
                    .map(|runtime| runtime.with_bucket_owner(self.settings.expected_bucket_owner.clone()))
                    .map_err(|e| format!("plugin engine could not start: {e:#}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// What a cold start can do before its first event is in: read the configuration and,
    /// when an org has a plugin, create the plugin engine on a blocking thread (it is never
    /// created on an async worker, where it would hold up the plugins' reads). The Lambda
    /// loop runs it beside its first poll. Plugins themselves are not read here: an
    /// invocation reads those of its own records' orgs. A failure is only logged; the
    /// invocation reads the configuration again and reports what it finds.
    pub async fn warm_up(self: Arc<Self>) {
        let config = match self.config().await {
            Ok(config) => config,
            Err(error) => {
                tracing::warn!(%error, "the configuration could not be read ahead of the first event; the invocation reads it again");
                return;
            }
        };
        if config.customers.iter().any(|c| c.plugin.is_some()) {
            let exporter = self.clone();
            // A failure stays in the runtime's cell: each record with a plugin reports it.
            let _ = tokio::task::spawn_blocking(move || exporter.runtime().map(drop)).await;
        }
    }

    /// Whether the plugin engine exists (created by a load or by [`Exporter::warm_up`]).
    pub fn plugin_engine_created(&self) -> bool {
        matches!(self.runtime.get(), Some(Ok(_)))
    }

    /// The plugins of all of `config`'s orgs, loaded once per configuration version
    /// (transient load failures are tried again by a later invocation: see `PluginCache`).
    pub async fn plugins_for(&self, config: &Arc<Config>) -> Arc<OrgPlugins> {
        self.plugins
            .get_all(
                || self.runtime(),
                &self.client,
                self.settings.expected_bucket_owner.as_deref(),
                config,
                &self.plugin_retry(config),
            )
            .await
    }

    /// The plugin of `org` alone (`None` when it has none): what one of its records waits
    /// for, never another org's load.
    pub async fn plugin_of(&self, config: &Arc<Config>, org: &Org) -> Option<PluginLoad> {
        self.plugins
            .get(
                || self.runtime(),
                &self.client,
                self.settings.expected_bucket_owner.as_deref(),
                config,
                org,
                &self.plugin_retry(config),
            )
            .await
    }

    /// How a plugin's S3 GET is retried: the config's `retry` count, the copies' backoff.
    fn plugin_retry(&self, config: &Config) -> RetryPolicy {
        RetryPolicy::new(config.retry, self.settings.retry_base_delay)
    }

    /// The S3 client (config, plugins, source reads).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Where copies go.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// Where `org`'s copies go when it has a `roleArn` and the destination is S3: the same
    /// buckets, written (and their keys HEADed) with the role's credentials. `Ok(None)`: the
    /// org uses [`Exporter::destination`]. Local mode ignores roles (folders have none).
    pub async fn role_destination(&self, org: &Org) -> Result<Option<S3Destination>, AssumeRoleFailed> {
        let (Some(role), Destination::S3(s3)) = (&org.role, &self.destination) else {
            return Ok(None);
        };
        let client = self.roles.client(role, &org.org).await?;
        Ok(Some(s3.as_role(client)))
    }

    /// The credentials the function's client signs with, when known (`from_env`): what other
    /// services' clients of the function sign with too (reconcile's repair queue).
    pub fn credentials(&self) -> Option<&SharedCredentialsProvider> {
        self.role_credentials.as_ref()
    }

    /// The clients of the orgs' roles (`check` assumes them too).
    pub fn roles(&self) -> &RoleClients {
        &self.roles
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The multipart uploads' creates and aborts still running as tasks of their own (a
    /// record cut off by the deadline leaves its abort running): wait for them
    /// ([`Aborts::settle`]) before the process answers or exits.
    pub fn aborts(&self) -> &Aborts {
        &self.aborts
    }

    /// The configuration in force (loaded or refreshed when due).
    pub async fn config(&self) -> Result<Arc<Config>, ConfigLoadError> {
        self.config.current(&self.client).await
    }

    /// The org documents refused since the last call (each already logged), for the
    /// `ConfigRejected` metric.
    pub fn take_config_refusals(&self) -> Vec<crate::config::Refusal> {
        self.config.take_refusals()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::from_lookup(|name| match name {
            "CONFIGURATION_BUCKET" => Some("config".into()),
            "CONFIGURATION_KEY" => Some("config.json".into()),
            "SUFFIX_TO_COPY" => Some("jpg".into()),
            _ => None,
        })
        .expect("settings")
    }

    /// A cold start whose configuration has no plugin never builds the plugin engine
    /// (wasmtime's engine and its instance pool cost a cold start tens of milliseconds).
    #[tokio::test]
    async fn no_plugin_engine_without_plugins() {
        let client = s3::client::for_endpoint("http://127.0.0.1:9", "us-east-1", "k", "s");
        let exporter = Exporter::new(client, settings());
        let config = Arc::new(
            Config::parse(
                r#"{"customers":[{"org":"org1","destinationBucket":"org1-export"}]}"#,
                "test",
            )
            .expect("config"),
        );
        let plugins = exporter.plugins_for(&config).await;
        assert!(plugins.is_empty());
        assert!(
            exporter.runtime.get().is_none(),
            "the engine was built for a config without plugins"
        );
    }

    /// A warm-up whose configuration cannot be read returns (the invocation reads it again
    /// and reports it) and builds nothing.
    #[tokio::test]
    async fn a_warm_up_without_a_configuration_builds_nothing() {
        let client = s3::client::for_endpoint("http://127.0.0.1:9", "us-east-1", "k", "s");
        let exporter = Arc::new(Exporter::new(client, settings()));
        exporter.clone().warm_up().await;
        assert!(!exporter.plugin_engine_created());
    }
}
