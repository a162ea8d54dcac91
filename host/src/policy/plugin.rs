//! One loaded plugin, and one decision: a fresh instance from the `InstancePre`, a
//! deadline and a memory cap, the call, and the answer translated back.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{self, CopyPolicy, CopyPolicyPre, Decision, Level};
use super::engine::deadline_ticks;
use super::limits::MemoryCap;
use super::sandbox::{CappedOutput, empty_wasi};
use crate::event::SourceObject;
use crate::route::Target;

/// Lines a plugin may log per decision; the rest are counted and reported once.
pub const MAX_LOG_LINES: u32 = 100;
/// Bytes kept of one log line.
pub const MAX_LOG_LINE: usize = 1024;

/// What a plugin decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Copy to these targets (unchecked: see `answer::check_targets`).
    Copy(Vec<Target>),
    /// Do not copy.
    Skip(String),
}

/// Why a decision has no verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// The deadline passed.
    #[error("timed out after {} ms", .0.as_millis())]
    Timeout(Duration),
    /// Linear memory growth hit the cap.
    #[error("exceeded its memory limit of {} MiB", .0 >> 20)]
    OutOfMemory(u64),
    /// Any other trap (a panic, `unreachable`, a bad instantiation).
    #[error("trapped: {0}")]
    Trap(String),
    /// The plugin answered `err(message)`.
    #[error("returned an error: {0}")]
    Refused(String),
}

/// The store data of one decision's instance.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: MemoryCap,
    log: LogSink,
}

struct LogSink {
    org: Arc<str>,
    plugin: Arc<str>,
    lines: u32,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::artifact_export::policy::types::Host for PluginState {}

impl bindings::artifact_export::policy::host::Host for PluginState {
    fn log(&mut self, level: Level, message: String) {
        let sink = &mut self.log;
        sink.lines += 1;
        if sink.lines > MAX_LOG_LINES {
            return;
        }
        let message = truncate(&message, MAX_LOG_LINE);
        let (org, plugin) = (&*sink.org, &*sink.plugin);
        match level {
            Level::Trace => tracing::trace!(org, plugin, "{message}"),
            Level::Debug => tracing::debug!(org, plugin, "{message}"),
            Level::Info => tracing::info!(org, plugin, "{message}"),
            Level::Warn => tracing::warn!(org, plugin, "{message}"),
            Level::Error => tracing::error!(org, plugin, "{message}"),
        }
    }
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Adds WASI (sync) and the `host` interface to a linker for plugins.
pub fn plugin_linker(engine: &Engine) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    CopyPolicy::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
    Ok(linker)
}

/// A compiled, linked plugin, ready to be instantiated for each decision.
pub struct Plugin {
    name: Arc<str>,
    pre: CopyPolicyPre<PluginState>,
    timeout: Duration,
    max_memory_bytes: u64,
}

impl Plugin {
    /// Wraps a linked component.
    pub fn new(
        name: &str,
        pre: CopyPolicyPre<PluginState>,
        timeout: Duration,
        max_memory_bytes: u64,
    ) -> Self {
        Self {
            name: name.into(),
            pre,
            timeout,
            max_memory_bytes,
        }
    }

    /// The plugin's name (its source), for reports and logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Instantiates the plugin once without calling it: proves it links and starts within
    /// its limits (used by `validate`).
    pub fn check_instantiates(&self) -> Result<(), DecisionError> {
        let (stdout, stderr) = (CappedOutput::default(), CappedOutput::default());
        let mut store = self.new_store("validate", &stdout, &stderr);
        let result = self.pre.instantiate(&mut store).map(drop);
        result.map_err(|e| self.classify_trap(e, store.data().limits.was_hit(), &stderr))
    }

    fn new_store(&self, org: &str, stdout: &CappedOutput, stderr: &CappedOutput) -> Store<PluginState> {
        let state = PluginState {
            wasi: empty_wasi(stdout, stderr),
            table: ResourceTable::new(),
            limits: MemoryCap::new(self.max_memory_bytes),
            log: LogSink {
                org: org.into(),
                plugin: self.name.clone(),
                lines: 0,
            },
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(deadline_ticks(self.timeout));
        store.epoch_deadline_trap();
        store
    }

    /// [`Plugin::decide`] on a blocking thread: WASI's synchronous host calls (stdio,
    /// filesystem) must not run on an async worker.
    pub async fn decide_blocking(
        self: Arc<Self>,
        org: String,
        object: SourceObject,
        proposed: Vec<Target>,
        settings: String,
    ) -> Result<Verdict, DecisionError> {
        tokio::task::spawn_blocking(move || self.decide(&org, &object, &proposed, &settings))
            .await
            .unwrap_or_else(|e| Err(DecisionError::Trap(format!("decision thread failed: {e}"))))
    }

    /// Asks the plugin about one object (blocking; from async code use
    /// [`Plugin::decide_blocking`]), in a fresh instance that is dropped afterwards:
    /// no state survives from one object (or org) to the next.
    pub fn decide(
        &self,
        org: &str,
        object: &SourceObject,
        proposed: &[Target],
        settings: &str,
    ) -> Result<Verdict, DecisionError> {
        let stdout = CappedOutput::default();
        let stderr = CappedOutput::default();
        let mut store = self.new_store(org, &stdout, &stderr);

        let object = bindings::Object {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            size: object.size,
            etag: object.etag.clone().unwrap_or_default(),
            version_id: object.version_id.clone(),
            event_time: object.event_time.clone().unwrap_or_default(),
            event_name: object.event_name.clone(),
        };
        let proposed: Vec<bindings::Target> = proposed
            .iter()
            .map(|t| bindings::Target {
                bucket: t.bucket.clone(),
                key: t.key.clone(),
            })
            .collect();
        let result = self
            .pre
            .instantiate(&mut store)
            .and_then(|instance| instance.call_decide(&mut store, org, &object, &proposed, settings));
        let memory_hit = store.data().limits.was_hit();
        let result = result.map_err(|e| self.classify_trap(e, memory_hit, &stderr));
        self.flush_output(org, &stdout, "stdout");
        self.flush_output(org, &stderr, "stderr");
        let suppressed = store.data().log.lines.saturating_sub(MAX_LOG_LINES);
        if suppressed > 0 {
            tracing::warn!(
                org,
                plugin = &*self.name,
                suppressed,
                "plugin log lines over the cap were dropped"
            );
        }
        match result {
            Ok(Ok(Decision::Copy(targets))) => Ok(Verdict::Copy(
                targets
                    .into_iter()
                    .map(|t| Target {
                        bucket: t.bucket,
                        key: t.key,
                    })
                    .collect(),
            )),
            Ok(Ok(Decision::Skip(reason))) => Ok(Verdict::Skip(reason)),
            Ok(Err(message)) => Err(DecisionError::Refused(
                truncate(&message, MAX_LOG_LINE).to_string(),
            )),
            Err(error) => Err(error),
        }
    }

    fn classify_trap(
        &self,
        error: wasmtime::Error,
        memory_hit: bool,
        stderr: &CappedOutput,
    ) -> DecisionError {
        if let Some(Trap::Interrupt) = error.downcast_ref::<Trap>() {
            return DecisionError::Timeout(self.timeout);
        }
        if memory_hit {
            return DecisionError::OutOfMemory(self.max_memory_bytes);
        }
        let cause = error.root_cause().to_string();
        // A Rust guest prints its panic message to stderr before trapping: name it.
        let said = stderr.peek_line("panicked at");
        DecisionError::Trap(match said {
            Some(line) => format!("{cause} ({})", truncate(&line, 300)),
            None => cause,
        })
    }

    fn flush_output(&self, org: &str, stream: &CappedOutput, name: &str) {
        let captured = stream.take();
        if captured.kept.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&captured.kept);
        tracing::info!(
            org,
            plugin = &*self.name,
            stream = name,
            dropped_bytes = captured.dropped,
            "{}",
            text.trim_end()
        );
    }
}
