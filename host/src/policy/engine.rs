//! The one wasmtime [`Engine`] of the process, and the epoch ticker that enforces deadlines.
//!
//! Every knob that affects compiled code lives here, because a precompiled `.cwasm` only
//! loads into an engine configured the same way: `plugin compile` and the loader both call
//! [`engine_config`].

use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

/// How often the epoch advances; plugin deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Bytes of each table slot reset with `memset` when an instance is dropped, instead of
/// `madvise` (a syscall, then a page fault on the next use). A Rust component's tables
/// (tens of entries) fit in one page.
const TABLE_KEEP_RESIDENT: usize = 4096;

/// Upper bound, per linear-memory slot, of the pages a dropped instance dirtied that are
/// reset in place (copied back from the image or zeroed) instead of being `madvise`d away.
/// Only used with `PAGEMAP_SCAN` (Linux >= 6.7), which finds exactly the dirty pages; a
/// decision dirties a handful, and a slot keeps at most this much resident.
const MEMORY_KEEP_RESIDENT: usize = 1 << 20;

/// Default number of component instances the pool holds (`PLUGIN_INSTANCES`): the most
/// decisions that can run at once in one process. Decisions beyond it wait for a free slot
/// ([`super::Runtime`] hands out one permit per slot), so a high `COPY_CONCURRENCY` or
/// backfill `--concurrency` queues decisions instead of failing them.
pub const POOL_INSTANCES: u32 = 128;

/// Whether `Config::consume_fuel` is on: the deterministic CPU budget (`maxInstructions`).
/// Only the plugin bench turns it off, to put a figure on what it costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fuel {
    /// Every decision runs on an instruction budget (production, `plugin compile`).
    Metered,
    /// No instruction budget: only the wall-clock deadline (bench comparison only; a
    /// `.cwasm` compiled for one does not load into the other).
    Unmetered,
}

/// What may differ between engines of this host. Only `fuel` changes compiled code: a
/// `.cwasm` loads whatever the instance count or the way memory is reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    pub fuel: Fuel,
    /// Component instances the pool holds (`PLUGIN_INSTANCES`).
    pub instances: u32,
    /// Reset dropped instances' memory with `PAGEMAP_SCAN` where the kernel has it (6.7+).
    /// Off only in the bench, to measure the kernels that lack it (Lambda's, today).
    pub pagemap_scan: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            fuel: Fuel::Metered,
            instances: POOL_INSTANCES,
            pagemap_scan: true,
        }
    }
}

/// The engine configuration shared by the host and `plugin compile`.
pub fn engine_config() -> Config {
    engine_config_with(EngineOptions::default())
}

/// [`engine_config`] with the [`EngineOptions`] chosen explicitly.
pub fn engine_config_with(options: EngineOptions) -> Config {
    let EngineOptions {
        fuel,
        instances,
        pagemap_scan,
    } = options;
    let mut config = Config::new();
    // Components are the only kind of plugin.
    config.wasm_component_model(true);
    // Deadlines: every call gets an epoch deadline; a ticker thread advances the epoch.
    config.epoch_interruption(true);
    // The CPU budget that decides: fuel counts (roughly) wasm instructions, so the same
    // plugin and input pass or fail the same way on a laptop, a loaded CI machine and a
    // 0.3-vCPU Lambda. The epoch deadline above stays as the wall-clock backstop.
    config.consume_fuel(fuel == Fuel::Metered);
    // Decisions are short; optimise the compiled code for speed, not compile time.
    config.cranelift_opt_level(OptLevel::Speed);
    // Fresh instances map linear memory copy-on-write from the compiled image instead of
    // copying data segments: this is what makes one instance per decision cheap.
    config.memory_init_cow(true);
    // A small guest stack: a runaway recursion traps quickly instead of eating memory.
    config.max_wasm_stack(512 * 1024);
    // One instance per decision: take instances, memories and tables from pre-reserved
    // pools instead of mapping fresh ones each time. POOL_INSTANCES components at once,
    // each with up to its per-component maximum of everything, so the pool can never run
    // out while at most `instances` decisions run (the Runtime's permits ensure that).
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        .total_core_instances(instances * MAX_CORE_INSTANCES)
        .total_memories(instances * MAX_MEMORIES)
        .total_tables(instances * MAX_TABLES)
        .max_core_instances_per_component(MAX_CORE_INSTANCES)
        .max_memories_per_component(MAX_MEMORIES)
        .max_tables_per_component(MAX_TABLES)
        // The largest maxMemoryMiB a config may set; StoreLimits enforce each org's own cap.
        .max_memory_size(1024 << 20)
        .table_keep_resident(TABLE_KEEP_RESIDENT)
        // No fiber stacks: plugins run synchronously (async support is off), and the
        // default pool of 1,000 stacks costs a cold start 1,000 `mprotect` calls.
        .total_stacks(0);
    // Dropping an instance resets its memory slot to the image: by default with `madvise`,
    // after which every page the next instance touches faults in again (~5 faults and 3
    // syscalls per decision, a third of its time). With PAGEMAP_SCAN the pool resets only
    // the dirtied pages in place and the slot stays mapped: one ioctl, no faults. Without
    // it keep_resident would `memset` the first MiB on every drop (slower than `madvise`),
    // so it is only set when the scan is available. Either way the next instance sees the
    // pristine image: nothing survives from one decision to the next.
    if pagemap_scan && PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT);
    }
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // Plugins are synchronous, short and CPU-bound: no async support needed.
    config
}

/// Per-component maxima of the pool. A Rust wasip2 component has a handful of core instances
/// and tables and one memory; a JavaScript one (ComponentizeJS) a few more core instances; a
/// Python one (componentize-py: CPython, libc and their WASI stubs) 38 core instances, one
/// memory and a few tables. Core instances are only counted by the pool (wasmtime
/// allocates each on the heap when it is instantiated; nothing is reserved per slot), so
/// allowing 64 costs a cold start nothing: `Engine::new` took the same time (0.3-0.4 ms)
/// and the same reservation (1,057,120 MiB of address space, +0-28 KiB resident) with 16
/// as with 64. Memories and tables are reserved per slot and stay as they were: every
/// language fits in them, so one pool serves all, with no second pool for large components.
const MAX_CORE_INSTANCES: u32 = 64;
const MAX_MEMORIES: u32 = 2;
const MAX_TABLES: u32 = 16;

/// Builds the process's engine.
pub fn new_engine() -> wasmtime::Result<Engine> {
    Engine::new(&engine_config())
}

/// Builds an engine with the [`EngineOptions`] chosen explicitly.
pub fn new_engine_with(options: EngineOptions) -> wasmtime::Result<Engine> {
    Engine::new(&engine_config_with(options))
}

/// Starts the thread that advances `engine`'s epoch every [`EPOCH_TICK`]. It holds only a
/// weak reference, so it ends by itself once the engine is dropped.
pub fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawn the epoch ticker thread");
}

/// Ticks for a deadline of `timeout` (at least one, plus one for the partial tick in progress).
pub fn deadline_ticks(timeout: Duration) -> u64 {
    let per_tick = EPOCH_TICK.as_micros().max(1);
    (timeout.as_micros().div_ceil(per_tick) as u64).max(1) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up() {
        assert_eq!(deadline_ticks(Duration::from_millis(20)), 21);
        assert_eq!(deadline_ticks(Duration::from_micros(1)), 2);
    }
}
