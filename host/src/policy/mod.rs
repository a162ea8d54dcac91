//! Per-org copy policies: sandboxed WebAssembly components implementing the
//! `copy-policy` world of `wit/policy.wit`.
//!
//! One [`Engine`] and [`Linker`] per process; each plugin compiled (or deserialized) once
//! per cold start and cached by content digest; a fresh instance per decision.

mod answer;
mod bindings;
pub mod cases;
pub mod engine;
mod limits;
pub mod loader;
mod plugin;
mod sandbox;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::Client;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

pub use answer::{MAX_KEY_BYTES, MAX_TARGETS, check_targets};
pub use loader::LoadError;
pub use plugin::{DecisionError, Plugin, PluginState, Verdict};

use crate::config::{Config, PluginSpec};
use bindings::CopyPolicyPre;

/// The plugin runtime of the process.
pub struct Runtime {
    engine: Engine,
    linker: Linker<PluginState>,
    compiled: Mutex<HashMap<[u8; 32], Component>>,
}

/// The plugins of one configuration, by org. An org whose plugin failed to load has its
/// load error instead: its records fail with it, other orgs are unaffected.
pub type OrgPlugins = HashMap<String, Result<Arc<Plugin>, LoadError>>;

impl Runtime {
    /// Creates the engine (with its epoch ticker) and the linker.
    pub fn new() -> wasmtime::Result<Self> {
        let engine = engine::new_engine()?;
        engine::start_epoch_ticker(&engine);
        let linker = plugin::plugin_linker(&engine)?;
        Ok(Self {
            engine,
            linker,
            compiled: Mutex::new(HashMap::new()),
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Loads one plugin: bytes, digest check, compile-or-deserialize (cached), link.
    pub async fn load(&self, client: Option<&Client>, spec: &PluginSpec) -> Result<Plugin, LoadError> {
        let source = spec.source.to_string();
        let (bytes, digest) = loader::read_plugin_bytes(client, spec).await?;
        let cached = self
            .compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&digest)
            .cloned();
        let component = match cached {
            Some(component) => component,
            None => {
                let engine = self.engine.clone();
                let name = source.clone();
                // Compiling is CPU-heavy: keep it off the async workers.
                let component =
                    tokio::task::spawn_blocking(move || loader::component_from_bytes(&engine, &bytes, &name))
                        .await
                        .map_err(|e| LoadError::Invalid {
                            plugin: source.clone(),
                            reason: e.to_string(),
                        })??;
                self.compiled
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(digest, component.clone());
                component
            }
        };
        let wrong_world = |e: wasmtime::Error| LoadError::WrongWorld {
            plugin: source.clone(),
            reason: loader::one_line(&e),
        };
        let pre = self.linker.instantiate_pre(&component).map_err(wrong_world)?;
        let pre = CopyPolicyPre::new(pre).map_err(wrong_world)?;
        Ok(Plugin::new(&source, pre, spec.timeout, spec.max_memory_bytes))
    }

    /// Loads the plugin of every org of `config` that has one.
    pub async fn load_all(&self, client: &Client, config: &Config) -> OrgPlugins {
        // Concurrently: on a cold start the plugins' S3 reads overlap instead of queuing.
        let loads = config.customers.iter().filter_map(|customer| {
            let spec = customer.plugin.as_ref()?;
            Some(async move {
                let loaded = self.load(Some(client), spec).await.map(Arc::new);
                if let Err(error) = &loaded {
                    tracing::error!(org = %customer.org, %error, "plugin failed to load; this org's records will fail");
                }
                (customer.org.clone(), loaded)
            })
        });
        futures::future::join_all(loads).await.into_iter().collect()
    }
}
