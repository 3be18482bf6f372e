//! The three-index descriptor ring.
//!
//! One producer (software: the driver filling TX or RX descriptors) and one
//! consumer (hardware: the device's fetch engine) share a ring of `size =
//! 1 << order` slots and a [`SharedQueueState`]. Three free-running `u32`
//! indices, masked by `size - 1`, describe it:
//!
//! ```text
//!            head            outgoing_tail         buffer_tail
//!   ..........|=================|=====================|...........
//!              published:         staged (commit mode):
//!              the consumer       written, not yet
//!              may fetch these    visible to the consumer
//! ```
//!
//! - `buffer_tail`: the producer writes the slot here and advances it, never
//!   past `head + size`. Private to the producer.
//! - `outgoing_tail`: how far the consumer may fetch. The producer publishes
//!   it in the shared block (and, unless suppressed, with a doorbell). In
//!   normal mode it follows `buffer_tail` at once; in commit mode only on
//!   [`Producer::commit`], and [`Producer::rollback`] discards the staged
//!   `[outgoing_tail, buffer_tail)`.
//! - `head`: the consumer fetches from here, never past `outgoing_tail`, and
//!   writes it back so the producer can reclaim the slots.
//!
//! Invariant, in wrapping arithmetic: `head <= outgoing_tail <= buffer_tail
//! <= head + size`. [`Indices::holds`] checks it; the property tests check
//! it after every operation of random sequences that cross the `u32` wrap.
//!
//! ## Memory ordering
//! Slot contents are plain memory; the indices carry the happens-before
//! edges. The producer writes slots, then stores `outgoing_tail` with
//! `Release`; the consumer loads it with `Acquire`, then reads the slots.
//! The consumer reads slots, then stores `head` with `Release`; the producer
//! loads it with `Acquire` before it reuses them. Each side caches the other
//! side's index and reloads it only when the cached value says "full" or
//! "empty", so in steady state each side touches the other's cache line once
//! per batch, not once per call.
//!
//! ## Doorbell suppression
//! While the consumer's fetch engine works the queue it sets the fetch flag
//! to [`FetchFlag::Active`] and the producer skips the doorbell. The race that
//! could lose a doorbell (the consumer decides to go idle just as the
//! producer publishes) is closed Dekker-style: the producer stores
//! `outgoing_tail`, issues a `SeqCst` fence, then loads the flag; the
//! consumer stores [`FetchFlag::Idle`], issues a `SeqCst` fence, then loads
//! `outgoing_tail` once more ([`Consumer::try_idle`]). The fences order the
//! two pairs, so at least one side sees the other's store: either the
//! producer rings, or the consumer keeps fetching. `src/ring/loom_model.rs`
//! model-checks this, and shows the check fails without the re-check.
//!
//! ## Untrusted peers
//! The two halves may live in different processes (the driver and the
//! simulator) over shared memory, and each side treats the other's index as
//! untrusted: the consumer refuses an `outgoing_tail` more than a ring ahead
//! of `head` or moving backwards, the producer refuses a `head` outside
//! `[head, outgoing_tail]`. Slots are copied out once and then validated by
//! the caller (elements are [`zerocopy::FromBytes`]: any bit pattern is a
//! value, so even a torn read is a defined value, never undefined behaviour
//! in the consumer).
//!
//! This module never blocks, sleeps, reads a clock or performs I/O: the
//! caller rings doorbells ([`Producer::doorbell`] says when) and decides
//! when to poll.

pub mod completion;
mod consumer;
mod index;
#[cfg(all(test, loom))]
mod loom_model;
mod memory;
mod producer;
mod slots;
mod state;
#[cfg(all(test, not(loom)))]
mod tests;

pub use completion::{CqReader, CqWriter};
pub use consumer::Consumer;
pub use index::RingIndex;
pub use memory::RingMemory;
pub use producer::{Mode, Producer, ProducerStats};
use slots::*;
pub use state::SharedQueueState;

use crate::abi::{ConsumerFlag, FetchFlag, QueueStateBlock};
use crate::sync::{fence, load_le, store_le, AtomicU32, Ordering};
use core::marker::PhantomData;
use core::ptr::NonNull;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Largest ring order this module accepts (the ABI allows less).
pub const MAX_ORDER: u8 = 24;

/// Element of a ring: plain bytes that any bit pattern makes valid, so it
/// can be read from memory another process writes.
pub trait RingElem: Copy + FromBytes + IntoBytes + KnownLayout + Immutable + Send + 'static {}
impl<T: Copy + FromBytes + IntoBytes + KnownLayout + Immutable + Send + 'static> RingElem for T {}

/// Why a ring operation failed: the other side broke the protocol, or the
/// memory handed in is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// The ring order is outside `1..=MAX_ORDER`.
    #[error("ring order {0} outside 1..=24")]
    BadOrder(u8),
    /// The memory for the ring is not aligned as required.
    #[error("{what} at {addr:#x} is not {align}-byte aligned")]
    Misaligned {
        /// Which memory: `ring slots` or `queue state block`.
        what: &'static str,
        /// Its address.
        addr: usize,
        /// The alignment it needs, bytes.
        align: usize,
    },
    /// The producer published an `outgoing_tail` more than a ring ahead of
    /// the written-back `head`.
    #[error("outgoing_tail {outgoing_tail} is more than {size} slots past head {head}")]
    OutgoingTailOutOfRange {
        /// The written-back `head`.
        head: u32,
        /// The `outgoing_tail` read.
        outgoing_tail: u32,
        /// Ring size in slots.
        size: u32,
    },
    /// The producer moved `outgoing_tail` backwards.
    #[error("outgoing_tail moved back from {was} to {now}")]
    OutgoingTailRegressed {
        /// The `outgoing_tail` read before.
        was: u32,
        /// The `outgoing_tail` read now, behind it.
        now: u32,
    },
    /// The consumer wrote back a `head` outside `[head, outgoing_tail]`.
    #[error("head write-back {now} is outside [{was}, {outgoing_tail}]")]
    HeadOutOfRange {
        /// The `head` read before.
        was: u32,
        /// The `head` write-back read now.
        now: u32,
        /// The producer's published `outgoing_tail`.
        outgoing_tail: u32,
    },
}

fn check_order(order: u8) -> Result<u32, RingError> {
    if order == 0 || order > MAX_ORDER {
        return Err(RingError::BadOrder(order));
    }
    Ok(1u32 << order)
}

/// A snapshot of the three indices as one side knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Indices {
    /// Free-running `head`: the consumer is done with the slots before it
    /// (as this side last saw it).
    pub head: RingIndex,
    /// Free-running `outgoing_tail`: how far the consumer may fetch.
    pub outgoing_tail: RingIndex,
    /// Free-running `buffer_tail`: how far the producer has written slots.
    pub buffer_tail: RingIndex,
    /// Ring size in slots, a power of two.
    pub size: u32,
}

impl Indices {
    /// `head <= outgoing_tail <= buffer_tail <= head + size`, wrapping.
    pub fn holds(&self) -> bool {
        let published = self.outgoing_tail - self.head;
        let filled = self.buffer_tail - self.head;
        published <= filled && filled <= self.size
    }
}

/// Load a free-running index of the shared block.
#[inline(always)]
pub(super) fn load_index(a: &AtomicU32, order: Ordering) -> RingIndex {
    RingIndex(load_le(a, order))
}

/// Store a free-running index in the shared block.
#[inline(always)]
pub(super) fn store_index(a: &AtomicU32, i: RingIndex, order: Ordering) {
    store_le(a, i.get(), order)
}

/// Check and wrap the pieces of a ring in shared memory.
///
/// # Safety
/// As [`Producer::attach`].
#[cfg(not(loom))]
unsafe fn shared_parts<'a, T: RingElem>(
    state: NonNull<u8>,
    slots: NonNull<T>,
    order: u8,
) -> Result<(&'a SharedQueueState, Slots<T>, u32), RingError> {
    let size = check_order(order)?;
    check_align("ring slots", slots)?;
    // SAFETY: forwarded from this function's contract.
    let state = unsafe { SharedQueueState::from_ptr(state)? };
    Ok((
        state,
        Slots {
            base: slots,
            mask: size - 1,
        },
        size,
    ))
}

#[cfg(not(loom))]
fn check_align<T>(what: &'static str, p: NonNull<T>) -> Result<(), RingError> {
    let addr = p.as_ptr() as usize;
    let align = core::mem::align_of::<T>();
    if !addr.is_multiple_of(align) {
        return Err(RingError::Misaligned { what, addr, align });
    }
    Ok(())
}
