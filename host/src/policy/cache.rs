//! The plugins of the configuration in force, each org's loaded on first use by its own
//! records, with transient load failures tried again by later invocations instead of
//! remembered.
//!
//! Every org has its own slot: a record waits only for its own org's plugin, never for
//! another org's GET, compile or failure (a cold start with a slow plugin bucket, or a
//! `.wasm` that takes seconds to compile, delays that org alone).

use std::collections::HashMap;
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use tokio::sync::Mutex;

use super::{LoadError, OrgPlugins, PluginLoad, Runtime, loader};
use crate::config::{Config, Org};
use crate::s3::RetryPolicy;

/// Longest wait between two invocations' attempts to load a plugin that failed transiently.
pub const MAX_RELOAD_DELAY: Duration = Duration::from_secs(60);

/// The slots of one configuration version, by org.
struct Generation {
    config: Arc<Config>,
    orgs: HashMap<String, Arc<Slot>>,
}

/// One org's plugin: loaded at most once at a time (its own records wait on this lock,
/// no other org's do).
#[derive(Default)]
struct Slot {
    loaded: Mutex<Option<Loaded>>,
}

/// One org's load, and when to retry it if it failed transiently.
struct Loaded {
    plugin: PluginLoad,
    /// Reload rounds so far that ended in a transient failure (for the backoff).
    failed_rounds: u32,
    /// When a later invocation may try again; `None` unless the load failed transiently.
    retry_at: Option<Instant>,
}

/// Per-process cache of each org's plugin (one set per configuration version).
#[derive(Default)]
pub struct PluginCache {
    generation: SyncMutex<Option<Generation>>,
}

impl PluginCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The plugin of `org` in `config` (`None` when it has none): loaded on the first
    /// call for this configuration version; a load that failed transiently (after `retry`'s
    /// attempts) is tried again by the first call after a backoff (`retry.base_delay`
    /// doubled per failed round, at most [`MAX_RELOAD_DELAY`]). `runtime` is the process's
    /// plugin runtime (called only for an org with a plugin: the engine is not built for a
    /// configuration without plugins), or why it could not start. Plugins are read from S3
    /// only from buckets `bucket_owner` owns, when set.
    pub async fn get<'r>(
        &self,
        runtime: impl FnOnce() -> Result<&'r Runtime, String>,
        client: &Client,
        bucket_owner: Option<&str>,
        config: &Arc<Config>,
        owner: &Org,
        retry: &RetryPolicy,
    ) -> Option<PluginLoad> {
        let spec = owner.plugin.as_ref()?;
        let org = owner.org.as_str();
        let slot = self.slot(config, org);
        let mut loaded = slot.loaded.lock().await;
        let failed_rounds = match loaded.as_ref() {
            Some(done) => match done.retry_at {
                Some(at) if Instant::now() >= at => done.failed_rounds,
                _ => return Some(done.plugin.clone()),
            },
            None => 0,
        };
        // The GET first: a cold start creates the engine (`runtime`) while other orgs'
        // GETs are still in flight, instead of before any of them.
        let started = Instant::now();
        let plugin = match loader::read_plugin_bytes(Some(client), spec, retry, bucket_owner).await {
            Err(error) => Err(error),
            Ok((bytes, digest)) => match runtime() {
                Ok(runtime) => match runtime.load_bytes(spec, bytes, digest, started).await {
                    Ok(plugin) => Ok(Arc::new(
                        runtime.with_candidate(Some(client), spec, retry, plugin).await,
                    )),
                    Err(error) => Err(error),
                },
                Err(reason) => Err(LoadError::Host {
                    plugin: spec.source.to_string(),
                    reason,
                }),
            },
        };
        let (failed_rounds, retry_at) = match &plugin {
            Err(error) if error.is_transient() => {
                let rounds = failed_rounds + 1;
                let delay = reload_delay(retry.base_delay, rounds);
                tracing::warn!(%org, %error, ?delay, "plugin failed to load transiently; this org's records fail, a later invocation tries again");
                (rounds, Some(Instant::now() + delay))
            }
            Err(error) => {
                tracing::error!(%org, %error, "plugin failed to load; this org's records will fail");
                (0, None)
            }
            Ok(_) => (0, None),
        };
        *loaded = Some(Loaded {
            plugin: plugin.clone(),
            failed_rounds,
            retry_at,
        });
        Some(plugin)
    }

    /// The plugins of every org of `config` that has one, loaded concurrently (each through
    /// its own slot, as [`PluginCache::get`]).
    pub async fn get_all<'r>(
        &self,
        runtime: impl Fn() -> Result<&'r Runtime, String>,
        client: &Client,
        bucket_owner: Option<&str>,
        config: &Arc<Config>,
        retry: &RetryPolicy,
    ) -> Arc<OrgPlugins> {
        let loads = config
            .customers
            .iter()
            .filter(|c| c.plugin.is_some())
            .map(|c| async {
                let plugin = self.get(&runtime, client, bucket_owner, config, c, retry).await;
                plugin.map(|plugin| (c.org.clone(), plugin))
            });
        let all = futures::future::join_all(loads).await;
        Arc::new(all.into_iter().flatten().collect())
    }

    /// `org`'s slot in `config`'s generation (a new configuration version starts empty).
    fn slot(&self, config: &Arc<Config>, org: &str) -> Arc<Slot> {
        let mut generation = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        let current = match generation.take() {
            Some(g) if Arc::ptr_eq(&g.config, config) => g,
            _ => Generation {
                config: config.clone(),
                orgs: HashMap::new(),
            },
        };
        generation
            .insert(current)
            .orgs
            .entry(org.to_string())
            .or_default()
            .clone()
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
