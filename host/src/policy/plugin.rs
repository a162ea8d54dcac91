//! One loaded plugin, and one decision: a fresh instance from the `InstancePre`, an
//! instruction budget, a wall-clock deadline, a memory cap, a cap on the bytes the answer
//! may carry, the call, and the answer translated back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, oneshot};
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, PoolConcurrencyLimitError, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{WitVersion, v0_1, v0_2};
use super::engine::deadline_ticks;
use super::given::{Given, ObjectFacts, Pending, TagReader};
use super::lane::{self, Answer, Decided, Request};
use super::limits::MemoryCap;
use super::loader::LoadError;
use super::sandbox::{CappedOutput, WouldBlock, add_wasi, empty_wasi};
use crate::event::SourceObject;
use crate::route::{Target, TargetOptions};

/// Lines a plugin may log per decision; the rest are counted and reported once.
pub const MAX_LOG_LINES: u32 = 100;
/// Bytes kept of one log line.
pub const MAX_LOG_LINE: usize = 1024;
/// Bytes kept of a skip reason, an `err` message or a trap's description: what reaches the
/// log, the report and the Lambda response. Longer text is cut (on a character boundary).
pub const MAX_REASON_BYTES: usize = 1024;
/// Most bytes the host allocates to take one value from a plugin: the answer of `decide`,
/// or the arguments of one host call (a log line, a write to stdout). wasmtime counts them
/// before it allocates anything ("hostcall fuel": a string costs its length, a list its
/// length times the host's element size), so a larger answer fails without growing the
/// host. The largest valid answer (32 targets with 63-byte buckets and 1,024-byte keys) is
/// about 36 KiB.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What a plugin decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Copy to these targets (unchecked: see `target_check::check_targets`).
    Copy(Vec<Target>),
    /// Do not copy.
    Skip(String),
}

/// Why a decision has no verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// The wall-clock deadline (`timeoutMs`) passed.
    #[error("timed out after {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The instruction budget (`maxInstructions`) was used up.
    #[error("used up its budget of {0} instructions (maxInstructions)")]
    OutOfFuel(u64),
    /// Linear memory growth hit the cap.
    #[error("exceeded its memory limit of {} MiB", .0 >> 20)]
    OutOfMemory(u64),
    /// The answer (or one host call's arguments) was over [`MAX_ANSWER_BYTES`]: a contract
    /// violation, like an invalid answer.
    #[error("answered more than {} KiB (the most one answer or host call may carry)", MAX_ANSWER_BYTES >> 10)]
    AnswerTooLarge,
    /// Any other trap (a panic, `unreachable`, a bad instantiation, a wait).
    #[error("trapped: {0}")]
    Trap(String),
    /// The plugin answered `err(message)`.
    #[error("returned an error: {0}")]
    Refused(String),
    /// The host could not run the decision (instance pool, engine, decision thread): not
    /// the plugin's doing, so it never goes through `onError`; the record is retryable.
    #[error("could not be run by the host: {0} (a host failure, not the plugin's; retryable)")]
    Host(String),
}

/// Who a failed decision is down to, which decides what happens to the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The plugin failed (trap, limit, `err`): the org's `onError` applies.
    Plugin,
    /// The plugin broke the contract (an answer over the size cap): the record fails,
    /// whatever `onError` says.
    Contract,
    /// The host failed: the record fails as retryable, whatever `onError` says.
    Host,
}

impl DecisionError {
    /// Who the failure is down to.
    pub fn blame(&self) -> Blame {
        match self {
            DecisionError::Host(_) => Blame::Host,
            DecisionError::AnswerTooLarge => Blame::Contract,
            _ => Blame::Plugin,
        }
    }
}

/// What one decision used, against the limits in force (`plugin test` prints it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Instructions (fuel) used, instantiation included; `None` without fuel metering.
    pub instructions: Option<u64>,
    /// The largest size any linear memory of the instance reached, in bytes.
    pub peak_memory_bytes: u64,
    /// Wall-clock time of instantiation and call.
    pub elapsed: Duration,
    /// `GetObjectTagging` reads the plugin made through `tags` (0 or 1).
    pub tag_reads: u32,
}

/// The limits one decision runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock deadline (`timeoutMs`).
    pub timeout: Duration,
    /// Linear memory cap (`maxMemoryMiB`), in bytes.
    pub max_memory_bytes: u64,
    /// Instruction budget (`maxInstructions`).
    pub max_instructions: u64,
}

/// The store data of one decision's instance.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: MemoryCap,
    log: LogSink,
    tags: TagSource,
}

/// `tags` of a 0.2 plugin: read on the first call, kept for the later ones.
struct TagSource {
    reader: Option<TagReader>,
    read: Option<Result<Vec<(String, String)>, String>>,
    /// The decision's deadline: a read never waits past it.
    deadline: Instant,
    reads: u32,
}

impl TagSource {
    fn tags(&mut self) -> Result<Vec<(String, String)>, String> {
        if let Some(read) = &self.read {
            return read.clone();
        }
        let read = match &self.reader {
            None => Err(
                "the object's tags cannot be read here (no S3 source: local mode, or a test without tags)"
                    .to_string(),
            ),
            Some(reader) => match self.deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => {
                    self.reads += 1;
                    reader(left).map_err(|why| reason_text(&why))
                }
                _ => Err("no time is left of the decision's deadline to read the tags".to_string()),
            },
        };
        self.read = Some(read.clone());
        read
    }
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

/// A log line's level, whichever version of the contract wrote it.
#[derive(Clone, Copy)]
enum LineLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogSink {
    fn write(&mut self, level: LineLevel, message: &str) {
        self.lines += 1;
        if self.lines > MAX_LOG_LINES {
            return;
        }
        let message = truncate(message, MAX_LOG_LINE);
        let (org, plugin) = (&*self.org, &*self.plugin);
        match level {
            LineLevel::Trace => tracing::trace!(org, plugin, "{message}"),
            LineLevel::Debug => tracing::debug!(org, plugin, "{message}"),
            LineLevel::Info => tracing::info!(org, plugin, "{message}"),
            LineLevel::Warn => tracing::warn!(org, plugin, "{message}"),
            LineLevel::Error => tracing::error!(org, plugin, "{message}"),
        }
    }
}

impl v0_1::artifact_export::policy::types::Host for PluginState {}

impl v0_1::artifact_export::policy::host::Host for PluginState {
    fn log(&mut self, level: v0_1::Level, message: String) {
        use v0_1::Level as L;
        let level = match level {
            L::Trace => LineLevel::Trace,
            L::Debug => LineLevel::Debug,
            L::Info => LineLevel::Info,
            L::Warn => LineLevel::Warn,
            L::Error => LineLevel::Error,
        };
        self.log.write(level, &message);
    }
}

impl v0_2::artifact_export::policy::types::Host for PluginState {}

impl v0_2::artifact_export::policy::host::Host for PluginState {
    fn log(&mut self, level: v0_2::Level, message: String) {
        use v0_2::Level as L;
        let level = match level {
            L::Trace => LineLevel::Trace,
            L::Debug => LineLevel::Debug,
            L::Info => LineLevel::Info,
            L::Warn => LineLevel::Warn,
            L::Error => LineLevel::Error,
        };
        self.log.write(level, &message);
    }

    fn tags(&mut self) -> Result<Vec<v0_2::Pair>, String> {
        let tags = self.tags.tags()?;
        Ok(tags
            .into_iter()
            .map(|(key, value)| v0_2::Pair { key, value })
            .collect())
    }
}

/// `text` cut to at most `max` bytes on a character boundary.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` cut to at most [`MAX_REASON_BYTES`] in all, marking the cut.
fn reason_text(text: &str) -> String {
    if text.len() <= MAX_REASON_BYTES {
        return text.to_string();
    }
    let marker = format!("… ({} bytes, cut)", text.len());
    format!("{}{marker}", truncate(text, MAX_REASON_BYTES - marker.len()))
}

/// Adds WASI (only what a plugin may import, nothing that waits) and the `host` interface
/// of every contract version to a linker for plugins.
pub fn plugin_linker(engine: &Engine) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    add_wasi(&mut linker)?;
    v0_1::CopyPolicy::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
    v0_2::CopyPolicy::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
    Ok(linker)
}

/// A linked component of one contract version, ready to be instantiated.
pub enum Linked {
    /// `artifact-export:policy@0.1.0`.
    V0_1(v0_1::CopyPolicyPre<PluginState>),
    /// `artifact-export:policy@0.2.0`.
    V0_2(v0_2::CopyPolicyPre<PluginState>),
}

impl Linked {
    /// The component linked as the version it implements: 0.2 when its `decide` has 0.2's
    /// types, else 0.1; the error names both mismatches when it is neither.
    pub fn link(
        linker: &Linker<PluginState>,
        component: &wasmtime::component::Component,
    ) -> wasmtime::Result<Self> {
        let pre = linker.instantiate_pre(component)?;
        let as_0_2 = match v0_2::CopyPolicyPre::new(pre.clone()) {
            Ok(pre) => return Ok(Linked::V0_2(pre)),
            Err(e) => e,
        };
        match v0_1::CopyPolicyPre::new(pre) {
            Ok(pre) => Ok(Linked::V0_1(pre)),
            Err(as_0_1) => Err(wasmtime::format_err!(
                "implements neither artifact-export:policy@0.2.0 ({}) nor @0.1.0 ({})",
                super::loader::one_line(&as_0_2),
                super::loader::one_line(&as_0_1)
            )),
        }
    }

    /// The version of the contract.
    pub fn version(&self) -> WitVersion {
        match self {
            Linked::V0_1(_) => WitVersion::V0_1,
            Linked::V0_2(_) => WitVersion::V0_2,
        }
    }

    fn engine(&self) -> &Engine {
        match self {
            Linked::V0_1(pre) => pre.engine(),
            Linked::V0_2(pre) => pre.engine(),
        }
    }

    fn instantiate(&self, store: &mut Store<PluginState>) -> wasmtime::Result<()> {
        match self {
            Linked::V0_1(pre) => pre.instantiate(store).map(drop),
            Linked::V0_2(pre) => pre.instantiate(store).map(drop),
        }
    }

    /// One call of `decide`, in a fresh instance, in the version's own types.
    fn decide(
        &self,
        store: &mut Store<PluginState>,
        org: &str,
        object: &SourceObject,
        facts: Option<&ObjectFacts>,
        proposed: &[Target],
        settings: &str,
    ) -> wasmtime::Result<Result<Verdict, String>> {
        match self {
            Linked::V0_1(pre) => {
                let object = v0_1::Object {
                    bucket: object.bucket.clone(),
                    key: object.key.clone(),
                    size: object.size,
                    etag: object.etag.clone().unwrap_or_default(),
                    version_id: object.version_id.clone(),
                    event_time: object.event_time.clone().unwrap_or_default(),
                    event_name: object.event_name.clone(),
                };
                let proposed: Vec<v0_1::Target> = proposed
                    .iter()
                    .map(|t| v0_1::Target {
                        bucket: t.bucket.clone(),
                        key: t.key.clone(),
                    })
                    .collect();
                let instance = pre.instantiate(&mut *store)?;
                let answer = instance.call_decide(store, org, &object, &proposed, settings)?;
                Ok(answer.map(|decision| match decision {
                    v0_1::Decision::Copy(targets) => Verdict::Copy(
                        targets
                            .into_iter()
                            .map(|t| Target::new(t.bucket, t.key))
                            .collect(),
                    ),
                    v0_1::Decision::Skip(reason) => Verdict::Skip(reason),
                }))
            }
            Linked::V0_2(pre) => {
                let facts = facts.cloned().unwrap_or_default();
                let object = v0_2::Object {
                    bucket: object.bucket.clone(),
                    key: object.key.clone(),
                    size: object.size,
                    etag: object.etag.clone().unwrap_or_default(),
                    version_id: object.version_id.clone(),
                    event_time: object.event_time.clone().unwrap_or_default(),
                    event_name: object.event_name.clone(),
                    content_type: facts.content_type,
                    content_length: facts.content_length,
                    last_modified: facts.last_modified,
                    storage_class: facts.storage_class,
                    metadata: facts
                        .metadata
                        .into_iter()
                        .map(|(key, value)| v0_2::Pair { key, value })
                        .collect(),
                    checksum: facts.checksum.map(|c| v0_2::Checksum {
                        algorithm: c.algorithm,
                        value: c.value,
                    }),
                };
                let proposed: Vec<v0_2::Target> = proposed
                    .iter()
                    .map(|t| v0_2::Target {
                        bucket: t.bucket.clone(),
                        key: t.key.clone(),
                        storage_class: t.options.storage_class.clone(),
                        tags: t
                            .options
                            .tags
                            .iter()
                            .map(|(key, value)| v0_2::Pair {
                                key: key.clone(),
                                value: value.clone(),
                            })
                            .collect(),
                    })
                    .collect();
                let instance = pre.instantiate(&mut *store)?;
                let answer = instance.call_decide(store, org, &object, &proposed, settings)?;
                Ok(answer.map(|decision| match decision {
                    v0_2::Decision::Copy(targets) => Verdict::Copy(
                        targets
                            .into_iter()
                            .map(|t| Target {
                                bucket: t.bucket,
                                key: t.key,
                                options: TargetOptions {
                                    storage_class: t.storage_class,
                                    tags: t.tags.into_iter().map(|p| (p.key, p.value)).collect(),
                                },
                            })
                            .collect(),
                    ),
                    v0_2::Decision::Skip(reason) => Verdict::Skip(reason),
                }))
            }
        }
    }
}

/// A compiled, linked plugin, ready to be instantiated for each decision.
pub struct Plugin {
    name: Arc<str>,
    pre: Linked,
    limits: Limits,
    /// One permit per instance-pool slot, shared by every plugin of the runtime: a decision
    /// holds one while its instance exists, so the pool is never exhausted.
    slots: Arc<Semaphore>,
    /// The org's `plugin.candidate` as loaded (or why it did not load): asked after this
    /// plugin in its lane, never acted on. `None` without a candidate.
    candidate: Option<Result<Arc<Plugin>, LoadError>>,
    /// The candidate's own `settings` (JSON text), handed to it instead of the plugin's.
    candidate_settings: Arc<str>,
}

impl Plugin {
    /// Wraps a linked component; `slots` are the runtime's instance-pool permits.
    pub fn new(name: &str, pre: Linked, limits: Limits, slots: Arc<Semaphore>) -> Self {
        Self {
            name: name.into(),
            pre,
            limits,
            slots,
            candidate: None,
            candidate_settings: "{}".into(),
        }
    }

    /// This plugin with its candidate as loaded (or why it did not load), which is handed
    /// `settings` (its own) with every request.
    pub fn with_candidate(mut self, candidate: Result<Plugin, LoadError>, settings: &str) -> Self {
        self.candidate = Some(candidate.map(Arc::new));
        self.candidate_settings = settings.into();
        self
    }

    /// The candidate as loaded, or why it did not load; `None` without one.
    pub fn candidate(&self) -> Option<Result<&Arc<Plugin>, &LoadError>> {
        self.candidate.as_ref().map(Result::as_ref)
    }

    /// The plugin's name (its source), for reports and logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version of the contract the component implements.
    pub fn wit_version(&self) -> WitVersion {
        self.pre.version()
    }

    /// Whether a decision is given the source's HEAD facts and tags: the plugin, or its
    /// loaded candidate, is a 0.2 component. A 0.1 org pays for neither.
    pub fn wants_facts(&self) -> bool {
        self.wit_version() >= WitVersion::V0_2
            || matches!(self.candidate(), Some(Ok(c)) if c.wit_version() >= WitVersion::V0_2)
    }

    /// The limits each decision runs under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Instantiates the plugin once without calling it: proves it links and starts within
    /// its limits (used by `validate`).
    pub fn check_instantiates(&self) -> Result<(), DecisionError> {
        let (stdout, stderr) = (CappedOutput::default(), CappedOutput::default());
        let mut store = self.new_store("validate", &stdout, &stderr, None);
        let result = self.pre.instantiate(&mut store);
        result.map_err(|e| self.classify_trap(e, store.data().limits.was_hit(), &stderr))
    }

    /// What `validate` and `check` verify of the candidate, beside
    /// [`Plugin::check_instantiates`] of the plugin: it loaded and instantiates. The error
    /// names the candidate and why.
    pub fn check_candidate(&self) -> Result<(), String> {
        match self.candidate() {
            None => Ok(()),
            Some(Err(error)) => Err(format!("candidate {error}")),
            Some(Ok(candidate)) => candidate
                .check_instantiates()
                .map_err(|e| format!("candidate plugin {} does not instantiate: {e}", candidate.name)),
        }
    }

    fn new_store(
        &self,
        org: &str,
        stdout: &CappedOutput,
        stderr: &CappedOutput,
        tags: Option<TagReader>,
    ) -> Store<PluginState> {
        let state = PluginState {
            wasi: empty_wasi(stdout, stderr),
            table: ResourceTable::new(),
            limits: MemoryCap::new(self.limits.max_memory_bytes),
            log: LogSink {
                org: org.into(),
                plugin: self.name.clone(),
                lines: 0,
            },
            tags: TagSource {
                reader: tags,
                read: None,
                deadline: Instant::now() + self.limits.timeout,
                reads: 0,
            },
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.limits);
        // Fails only on an engine without fuel metering (the bench's comparison engine).
        let _ = store.set_fuel(self.limits.max_instructions);
        store.set_epoch_deadline(deadline_ticks(self.limits.timeout));
        store.epoch_deadline_trap();
        // Bounds what the host allocates to lift the answer (and each host call's
        // arguments) before it allocates: see MAX_ANSWER_BYTES.
        store.set_hostcall_fuel(MAX_ANSWER_BYTES);
        store
    }

    /// [`Plugin::decide`] on a blocking thread (WASI's synchronous host calls must not run
    /// on an async worker), once an instance-pool slot is free: a lane of one request
    /// ([`Plugin::decide_ahead`]), so its watchdog answers the record no later than the
    /// deadline plus [`WATCHDOG_MARGIN`](lane::WATCHDOG_MARGIN).
    pub async fn decide_blocking(
        self: Arc<Self>,
        org: String,
        object: SourceObject,
        proposed: Vec<Target>,
        settings: String,
        given: Given,
    ) -> Result<Verdict, DecisionError> {
        let request = Request {
            org,
            object,
            proposed,
            settings,
            given: Pending::ready(given),
        };
        let (name, timeout, slots) = (self.name.clone(), self.limits.timeout, self.slots.clone());
        let receiver = lane::start(name, timeout, slots, vec![request], move |r| {
            let (result, usage) =
                self.decide_measured_given(&r.org, &r.object, &r.proposed, &r.settings, &r.given.wait());
            Decided {
                result,
                tag_reads: usage.tag_reads,
                shadow: None,
            }
        })
        .pop();
        match receiver.expect("one receiver per request").await {
            Ok(answer) => answer.result,
            // The lane answers every request it was given, however its thread ends.
            Err(_) => Err(DecisionError::Host(
                "the decision thread ended without an answer".into(),
            )),
        }
    }

    /// Asks the plugin about each of `requests` in order, back to back on one blocking
    /// thread (a [`lane`](super::lane)): one hand-off for all of them instead of one per
    /// decision. Returns one receiver per request, in order; a request whose receiver is
    /// dropped is not decided. The watchdog gives up a decision (and the lane's records
    /// behind it) at its deadline plus [`WATCHDOG_MARGIN`](lane::WATCHDOG_MARGIN). Must be
    /// called within a tokio runtime.
    ///
    /// With a loaded candidate, each request whose answer is a verdict is then put to the
    /// candidate in the same lane ([`Answer::shadow`]); the watchdog's limit is then both
    /// deadlines. A blocking decision ([`Plugin::decide_blocking`]: backfill, `plan`) never
    /// asks the candidate: shadows are for live events.
    pub fn decide_ahead(self: Arc<Self>, requests: Vec<Request>) -> Vec<oneshot::Receiver<Answer>> {
        let candidate = match self.candidate() {
            Some(Ok(candidate)) => Some(candidate.clone()),
            _ => None,
        };
        let timeout = self.limits.timeout + candidate.as_ref().map_or(Duration::ZERO, |c| c.limits.timeout);
        let (name, slots, settings) = (
            self.name.clone(),
            self.slots.clone(),
            self.candidate_settings.clone(),
        );
        lane::start(name, timeout, slots, requests, move |r| {
            let given = r.given.wait();
            let (result, usage) =
                self.decide_measured_given(&r.org, &r.object, &r.proposed, &r.settings, &given);
            let shadow = match (&candidate, &result) {
                (Some(candidate), Ok(_)) => {
                    let started = Instant::now();
                    let answer = candidate
                        .decide_measured_given(&r.org, &r.object, &r.proposed, &settings, &given)
                        .0;
                    Some((answer, started.elapsed()))
                }
                _ => None,
            };
            Decided {
                result,
                tag_reads: usage.tag_reads,
                shadow,
            }
        })
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
        self.decide_measured(org, object, proposed, settings).0
    }

    /// [`Plugin::decide`], also reporting what the decision used.
    pub fn decide_measured(
        &self,
        org: &str,
        object: &SourceObject,
        proposed: &[Target],
        settings: &str,
    ) -> (Result<Verdict, DecisionError>, Usage) {
        self.decide_measured_given(org, object, proposed, settings, &Given::default())
    }

    /// [`Plugin::decide_measured`] with what a 0.2 plugin is given beyond the event (a 0.1
    /// plugin is given none of it).
    pub fn decide_measured_given(
        &self,
        org: &str,
        object: &SourceObject,
        proposed: &[Target],
        settings: &str,
        given: &Given,
    ) -> (Result<Verdict, DecisionError>, Usage) {
        let started = Instant::now();
        let stdout = CappedOutput::default();
        let stderr = CappedOutput::default();
        let tags = match self.pre {
            Linked::V0_2(_) => given.tags.clone(),
            Linked::V0_1(_) => None,
        };
        let mut store = self.new_store(org, &stdout, &stderr, tags);
        let facts = given.facts.as_deref();
        let result = self
            .pre
            .decide(&mut store, org, object, facts, proposed, settings);
        let usage = Usage {
            instructions: store
                .get_fuel()
                .ok()
                .map(|left| self.limits.max_instructions.saturating_sub(left)),
            peak_memory_bytes: store.data().limits.peak() as u64,
            elapsed: started.elapsed(),
            tag_reads: store.data().tags.reads,
        };
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
        let answer = match result {
            Ok(Ok(Verdict::Copy(targets))) => Ok(Verdict::Copy(targets)),
            Ok(Ok(Verdict::Skip(reason))) => Ok(Verdict::Skip(reason_text(&reason))),
            Ok(Err(message)) => Err(DecisionError::Refused(reason_text(&message))),
            Err(error) => Err(error),
        };
        (answer, usage)
    }

    fn classify_trap(
        &self,
        error: wasmtime::Error,
        memory_hit: bool,
        stderr: &CappedOutput,
    ) -> DecisionError {
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => return DecisionError::Timeout(self.limits.timeout),
            Some(Trap::OutOfFuel) => return DecisionError::OutOfFuel(self.limits.max_instructions),
            _ => {}
        }
        if error.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
            return DecisionError::Host(reason_text(&format!("{error:#}")));
        }
        if memory_hit {
            return DecisionError::OutOfMemory(self.limits.max_memory_bytes);
        }
        let cause = error.root_cause().to_string();
        // wasmtime's error type for exhausted hostcall fuel is private; its message is not.
        if cause.contains("fuel allocated for hostcalls has been exhausted") {
            return DecisionError::AnswerTooLarge;
        }
        if error.downcast_ref::<WouldBlock>().is_some() {
            return DecisionError::Trap(WouldBlock.to_string());
        }
        // A Rust guest prints its panic message to stderr before trapping: name it.
        let said = stderr.peek_line("panicked at");
        DecisionError::Trap(reason_text(&match said {
            Some(line) => format!("{cause} ({})", truncate(&line, 300)),
            None => cause,
        }))
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
