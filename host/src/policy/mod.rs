//! Per-org copy policies: sandboxed WebAssembly components implementing the
//! `copy-policy` world of `wit/policy.wit`.
//!
//! One [`Engine`] and [`Linker`] per process; each plugin compiled (or deserialized) once
//! per cold start and cached by content digest; a fresh instance per decision.

mod bindings;
mod cache;
pub mod engine;
mod given;
mod health;
mod lane;
mod limits;
pub mod loader;
mod plugin;
mod sandbox;
mod target_check;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::Client;
use tokio::sync::Semaphore;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

pub use bindings::{WIT_FILE, WitVersion};
pub use cache::{MAX_RELOAD_DELAY, PluginCache};
pub use engine::{EngineOptions, Fuel};
pub use given::{FactChecksum, Given, ObjectFacts, Pending, TagReader};
pub use health::{PluginErrorKind, PluginRun, Shadow, ShadowOutcome};
pub use lane::{Answer, Decided, Request, WATCHDOG_MARGIN};
pub use loader::LoadError;
pub use plugin::{
    Blame, DecisionError, Limits, Linked, MAX_ANSWER_BYTES, MAX_REASON_BYTES, Plugin, PluginState, Usage,
    Verdict, truncate,
};
pub use sandbox::RANDOM_SEQUENCE;
pub use target_check::{MAX_TARGETS, check_targets};

use crate::config::PluginSpec;
use crate::s3::RetryPolicy;

/// The plugin runtime of the process.
pub struct Runtime {
    engine: Engine,
    linker: Linker<PluginState>,
    /// Compiled components by (digest, declared `precompiled`): the flag is part of the key,
    /// so a `.cwasm` loaded by an org that declares it never serves an org that does not
    /// (which must be refused, whatever order the loads finish in).
    compiled: Mutex<HashMap<([u8; 32], bool), Component>>,
    /// One permit per instance-pool slot, shared by all plugins: decisions beyond the pool
    /// wait for a slot instead of failing.
    slots: Arc<Semaphore>,
    /// `EXPECTED_BUCKET_OWNER`: plugins are read only from buckets this account owns.
    bucket_owner: Option<String>,
}

/// One org's plugin as loaded, or why it could not be: its records fail with the error,
/// other orgs are unaffected.
pub type PluginLoad = Result<Arc<Plugin>, LoadError>;

/// The plugins of one configuration, by org (`validate` and `check`, which load them all).
pub type OrgPlugins = HashMap<String, PluginLoad>;

impl Runtime {
    /// Creates the engine (with its epoch ticker) and the linker.
    pub fn new() -> wasmtime::Result<Self> {
        Self::with_options(Fuel::Metered, engine::POOL_INSTANCES)
    }

    /// [`Runtime::new`] with fuel metering chosen explicitly; production always meters
    /// (this exists so the bench can put a figure on what metering costs).
    pub fn with_fuel(fuel: Fuel) -> wasmtime::Result<Self> {
        Self::with_options(fuel, engine::POOL_INSTANCES)
    }

    /// A runtime whose instance pool holds `instances` decisions at once (at least 1);
    /// further decisions wait for a slot.
    pub fn with_options(fuel: Fuel, instances: u32) -> wasmtime::Result<Self> {
        Self::with_engine(EngineOptions {
            fuel,
            instances,
            ..EngineOptions::default()
        })
    }

    /// A runtime on an engine built with `options`.
    pub fn with_engine(options: EngineOptions) -> wasmtime::Result<Self> {
        let instances = options.instances.max(1);
        let engine = engine::new_engine_with(EngineOptions { instances, ..options })?;
        engine::start_epoch_ticker(&engine);
        let linker = plugin::plugin_linker(&engine)?;
        Ok(Self {
            engine,
            linker,
            compiled: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(instances as usize)),
            bucket_owner: None,
        })
    }

    /// Reads S3 plugins only from buckets `owner` owns (`EXPECTED_BUCKET_OWNER`).
    pub fn with_bucket_owner(mut self, owner: Option<String>) -> Self {
        self.bucket_owner = owner;
        self
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Loads one plugin: bytes, digest check, compile-or-deserialize (cached), link. An S3
    /// GET is tried once; see [`Runtime::load_with_retry`].
    pub async fn load(&self, client: Option<&Client>, spec: &PluginSpec) -> Result<Plugin, LoadError> {
        let once = RetryPolicy {
            extra_attempts: 0,
            base_delay: std::time::Duration::ZERO,
            max_delay: std::time::Duration::ZERO,
        };
        self.load_with_retry(client, spec, &once).await
    }

    /// [`Runtime::load`] with the S3 GET retried per `retry`.
    pub async fn load_with_retry(
        &self,
        client: Option<&Client>,
        spec: &PluginSpec,
        retry: &RetryPolicy,
    ) -> Result<Plugin, LoadError> {
        let started = std::time::Instant::now();
        let (bytes, digest) =
            loader::read_plugin_bytes(client, spec, retry, self.bucket_owner.as_deref()).await?;
        let plugin = self.load_bytes(spec, bytes, digest, started).await?;
        Ok(self.with_candidate(client, spec, retry, plugin).await)
    }

    /// `plugin` (loaded from `spec`) with `spec`'s candidate loaded beside it, when it has
    /// one. A candidate that does not load is kept as its error (logged): it never fails
    /// the plugin's load nor a record.
    pub async fn with_candidate(
        &self,
        client: Option<&Client>,
        spec: &PluginSpec,
        retry: &RetryPolicy,
        plugin: Plugin,
    ) -> Plugin {
        let Some(candidate) = spec.candidate.as_deref() else {
            return plugin;
        };
        let started = std::time::Instant::now();
        let loaded =
            match loader::read_plugin_bytes(client, candidate, retry, self.bucket_owner.as_deref()).await {
                Ok((bytes, digest)) => self.load_bytes(candidate, bytes, digest, started).await,
                Err(error) => Err(error),
            };
        if let Err(error) = &loaded {
            tracing::error!(plugin = plugin.name(), %error, "candidate plugin failed to load; its shadow decisions count as failed");
        }
        plugin.with_candidate(loaded, &candidate.settings)
    }

    /// The second half of a load, once the bytes are read (and their `digest` taken):
    /// compile-or-deserialize (cached), link. `started`: when the read began, for the log.
    pub async fn load_bytes(
        &self,
        spec: &PluginSpec,
        bytes: Vec<u8>,
        digest: [u8; 32],
        started: std::time::Instant,
    ) -> Result<Plugin, LoadError> {
        let source = spec.source.to_string();
        let read = started.elapsed();
        let cached = self
            .compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(digest, spec.precompiled))
            .cloned();
        let component = match cached {
            Some(component) => component,
            None => {
                let engine = self.engine.clone();
                let name = source.clone();
                let precompiled = spec.precompiled;
                // Compiling is CPU-heavy: keep it off the async workers.
                let component = tokio::task::spawn_blocking(move || {
                    loader::component_from_bytes(&engine, &bytes, &name, precompiled)
                })
                .await
                .map_err(|e| LoadError::Host {
                    plugin: source.clone(),
                    reason: e.to_string(),
                })??;
                self.compiled
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert((digest, spec.precompiled), component.clone());
                component
            }
        };
        let wrong_world = |e: wasmtime::Error| LoadError::WrongWorld {
            plugin: source.clone(),
            reason: loader::one_line(&e),
        };
        let pre = Linked::link(&self.linker, &component).map_err(wrong_world)?;
        let limits = Limits {
            timeout: spec.timeout,
            max_memory_bytes: spec.max_memory_bytes,
            max_instructions: spec.max_instructions,
        };
        tracing::debug!(
            plugin = %source,
            read_ms = read.as_secs_f64() * 1e3,
            ready_ms = started.elapsed().as_secs_f64() * 1e3,
            wit = %pre.version(),
            "plugin loaded"
        );
        Ok(Plugin::new(&source, pre, limits, self.slots.clone()))
    }
}
