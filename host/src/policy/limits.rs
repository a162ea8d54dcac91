//! Per-decision resource limits of a plugin instance.

use wasmtime::{StoreLimits, StoreLimitsBuilder};

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
    fn instance_counts_are_small() {
        let limits = store_limits(1 << 20);
        assert_eq!(limits.instances(), MAX_INSTANCES);
        assert_eq!(limits.memories(), MAX_MEMORIES);
        assert_eq!(limits.tables(), MAX_TABLES);
    }
}
