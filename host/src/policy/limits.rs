//! Per-decision resource limits of a plugin instance.

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

/// [`StoreLimits`] that remember whether a memory growth was refused, so a trap that
/// follows can be reported as the memory cap rather than as whatever the guest did next.
pub struct MemoryCap {
    limits: StoreLimits,
    refused: bool,
    peak: usize,
}

impl MemoryCap {
    /// Caps linear memory at `max_memory_bytes`.
    pub fn new(max_memory_bytes: u64) -> Self {
        Self {
            limits: store_limits(max_memory_bytes),
            refused: false,
            peak: 0,
        }
    }

    /// True once a memory growth was refused.
    pub fn was_hit(&self) -> bool {
        self.refused
    }

    /// The largest size (bytes) a linear memory was allowed to reach, its initial size
    /// included (wasmtime asks the limiter for that too).
    pub fn peak(&self) -> usize {
        self.peak
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let result = self.limits.memory_growing(current, desired, maximum);
        let granted = matches!(result, Ok(true));
        self.refused |= !granted;
        if granted {
            self.peak = self.peak.max(desired);
        }
        result
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// The memory a component may hold besides its linear memories: tables and instances are
/// capped at small numbers; a plugin needs a handful of each.
const MAX_INSTANCES: usize = 64;
const MAX_TABLES: usize = 64;
const MAX_MEMORIES: usize = 8;
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Limits for one store: linear memory growth beyond `max_memory_bytes` traps.
pub fn store_limits(max_memory_bytes: u64) -> StoreLimits {
    StoreLimitsBuilder::new()
        .memory_size(usize::try_from(max_memory_bytes).unwrap_or(usize::MAX))
        .table_elements(MAX_TABLE_ELEMENTS)
        .instances(MAX_INSTANCES)
        .tables(MAX_TABLES)
        .memories(MAX_MEMORIES)
        // A failed memory.grow traps instead of returning -1, so the cause is reported as
        // the memory limit rather than whatever the guest does with an allocation failure.
        .trap_on_grow_failure(true)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn memory_growth_is_capped() {
        let mut limits = store_limits(16 << 20);
        assert!(limits.memory_growing(0, 8 << 20, None).unwrap());
        assert!(limits.memory_growing(8 << 20, 16 << 20, None).unwrap());
        assert!(limits.memory_growing(16 << 20, (16 << 20) + 65536, None).is_err());
    }

    #[test]
    fn a_refused_growth_is_remembered() {
        let mut cap = MemoryCap::new(1 << 20);
        assert!(cap.memory_growing(0, 1 << 20, None).unwrap());
        assert!(!cap.was_hit());
        assert!(cap.memory_growing(1 << 20, 2 << 20, None).is_err());
        assert!(cap.was_hit());
        assert_eq!(cap.peak(), 1 << 20, "a refused growth is not the peak");
    }

    #[test]
    fn instance_counts_are_small() {
        let limits = store_limits(1 << 20);
        assert_eq!(limits.instances(), MAX_INSTANCES);
        assert_eq!(limits.memories(), MAX_MEMORIES);
        assert_eq!(limits.tables(), MAX_TABLES);
    }
}
