//! The plugins of the configuration in force, loaded once per configuration version, with
//! transient load failures tried again by later invocations instead of remembered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use tokio::sync::Mutex;

use super::{LoadError, OrgPlugins, Runtime};
use crate::config::Config;
use crate::s3::RetryPolicy;

/// Longest wait between two invocations' attempts to load a plugin that failed transiently.
pub const MAX_RELOAD_DELAY: Duration = Duration::from_secs(60);

/// The loaded plugins of one configuration, and when to retry the transient failures.
struct Loaded {
    config: Arc<Config>,
    plugins: Arc<OrgPlugins>,
    /// Reload rounds so far that still left a transient failure (for the backoff).
    failed_rounds: u32,
    /// When a later invocation may try the transient failures again; `None` when there
    /// are none.
    retry_at: Option<Instant>,
}

/// Per-process cache of [`OrgPlugins`] (one per configuration version).
#[derive(Default)]
pub struct PluginCache {
    loaded: Mutex<Option<Loaded>>,
}

impl PluginCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The plugins of `config`: loaded on first use of this configuration; an org whose
    /// load failed transiently (after `retry`'s attempts) is loaded again by the first
    /// call after a backoff (`retry.base_delay` doubled per failed round, at most
    /// [`MAX_RELOAD_DELAY`]); other orgs keep their loaded plugin. `runtime` is the
    /// process's plugin runtime (called only when an org has a plugin: the engine is not
    /// built for a configuration without plugins), or why it could not start.
    pub async fn get<'r>(
        &self,
        runtime: impl FnOnce() -> Result<&'r Runtime, String>,
        client: &Client,
        config: &Arc<Config>,
        retry: &RetryPolicy,
    ) -> Arc<OrgPlugins> {
        if config.customers.iter().all(|c| c.plugin.is_none()) {
            return Arc::default();
        }
        let mut cached = self.loaded.lock().await;
        let (mut plugins, failed_rounds) = match cached.as_ref() {
            Some(loaded) if Arc::ptr_eq(&loaded.config, config) => match loaded.retry_at {
                Some(at) if Instant::now() >= at => ((*loaded.plugins).clone(), loaded.failed_rounds),
                _ => return loaded.plugins.clone(),
            },
            _ => (OrgPlugins::new(), 0),
        };
        match runtime() {
            Ok(runtime) => {
                let wanted = |org: &str| !matches!(plugins.get(org), Some(Ok(_)));
                let reloaded = runtime.load_some(client, config, wanted, retry).await;
                plugins.extend(reloaded);
            }
            Err(error) => {
                for customer in config.customers.iter() {
                    if let Some(spec) = &customer.plugin {
                        let failure = LoadError::Host {
                            plugin: spec.source.to_string(),
                            reason: error.clone(),
                        };
                        plugins.insert(customer.org.clone(), Err(failure));
                    }
                }
            }
        }
        let transient = plugins.values().any(|p| matches!(p, Err(e) if e.is_transient()));
        let (failed_rounds, retry_at) = if transient {
            let rounds = failed_rounds + 1;
            let delay = reload_delay(retry.base_delay, rounds);
            tracing::warn!(
                ?delay,
                "a plugin failed to load transiently; a later invocation tries again"
            );
            (rounds, Some(Instant::now() + delay))
        } else {
            (0, None)
        };
        let plugins = Arc::new(plugins);
        *cached = Some(Loaded {
            config: config.clone(),
            plugins: plugins.clone(),
            failed_rounds,
            retry_at,
        });
        plugins
    }
}

/// The wait before reload round `rounds + 1`: `base` doubled per failed round, capped.
fn reload_delay(base: Duration, rounds: u32) -> Duration {
    base.saturating_mul(1u32 << rounds.saturating_sub(1).min(16))
        .min(MAX_RELOAD_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_backoff_doubles_and_is_capped() {
        let base = Duration::from_millis(200);
        assert_eq!(reload_delay(base, 1), base);
        assert_eq!(reload_delay(base, 3), base * 4);
        assert_eq!(reload_delay(base, 40), MAX_RELOAD_DELAY);
    }
}
