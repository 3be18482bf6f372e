//! Atomics and cells, from `core` normally and from `loom` under
//! `--cfg loom`, so the cross-thread protocols are model-checked in the
//! very code that runs.

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{fence, AtomicU32, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, Ordering};

/// Load a little-endian `u32` field of shared memory.
#[inline(always)]
pub(crate) fn load_le(a: &AtomicU32, order: Ordering) -> u32 {
    u32::from_le(a.load(order))
}

/// Store a little-endian `u32` field of shared memory.
#[inline(always)]
pub(crate) fn store_le(a: &AtomicU32, v: u32, order: Ordering) {
    a.store(v.to_le(), order)
}
