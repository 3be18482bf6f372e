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

#[cfg(all(test, loom))]
mod loom_model;
#[cfg(all(test, not(loom)))]
mod tests;

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
        what: &'static str,
        addr: usize,
        align: usize,
    },
    /// The producer published an `outgoing_tail` more than a ring ahead of
    /// the written-back `head`.
    #[error("outgoing_tail {outgoing_tail} is more than {size} slots past head {head}")]
    OutgoingTailOutOfRange { head: u32, outgoing_tail: u32, size: u32 },
    /// The producer moved `outgoing_tail` backwards.
    #[error("outgoing_tail moved back from {was} to {now}")]
    OutgoingTailRegressed { was: u32, now: u32 },
    /// The consumer wrote back a `head` outside `[head, outgoing_tail]`.
    #[error("head write-back {now} is outside [{was}, {outgoing_tail}]")]
    HeadOutOfRange { was: u32, now: u32, outgoing_tail: u32 },
}

/// Reserved words of the shared block. Atomics, never accessed, because
/// the other side may write them: a `&SharedQueueState` must not claim
/// that any of its bytes are immutable.
type Reserved<const N: usize> = [AtomicU32; N];

fn reserved<const N: usize>() -> Reserved<N> {
    core::array::from_fn(|_| AtomicU32::new(0))
}

/// The atomic view of [`QueueStateBlock`]: same bytes, accessed with atomic
/// loads and stores. Each side writes only its own cache lines.
#[repr(C, align(128))]
#[derive(Debug)]
pub struct SharedQueueState {
    /// Written by the device: head write-back.
    pub head: AtomicU32,
    /// Written by the device: completions written.
    pub cq_tail: AtomicU32,
    rsvd_device_hot: Reserved<14>,
    /// Written by the device: [`FetchFlag::Idle`] or [`FetchFlag::Active`].
    pub fetch_flag: AtomicU32,
    /// Written by the device: 0, or the [`crate::abi::CompStatus`] that
    /// stopped the queue.
    pub qstatus: AtomicU32,
    /// Written by the device: index of the descriptor that stopped the queue.
    pub error_index: AtomicU32,
    rsvd_device_cold: Reserved<13>,
    /// Written by the driver: the published outgoing tail.
    pub outgoing_tail: AtomicU32,
    /// Written by the driver: completions consumed.
    pub cq_head: AtomicU32,
    rsvd_driver_hot: Reserved<14>,
    /// Written by the driver: consumer flag (see [`crate::abi`]).
    pub consumer_flag: AtomicU32,
    rsvd_driver_cold: Reserved<15>,
}

#[cfg(not(loom))]
mod layout_check {
    use super::*;
    use core::mem::{align_of, offset_of, size_of};
    const _: () = assert!(size_of::<SharedQueueState>() == size_of::<QueueStateBlock>());
    const _: () = assert!(align_of::<SharedQueueState>() as u64 == crate::abi::QUEUE_STATE_ALIGN);
    const _: () = assert!(offset_of!(SharedQueueState, head) == offset_of!(QueueStateBlock, head));
    const _: () = assert!(offset_of!(SharedQueueState, fetch_flag) == offset_of!(QueueStateBlock, fetch_flag));
    const _: () = assert!(offset_of!(SharedQueueState, qstatus) == offset_of!(QueueStateBlock, qstatus));
    const _: () = assert!(offset_of!(SharedQueueState, error_index) == offset_of!(QueueStateBlock, error_index));
    const _: () = assert!(offset_of!(SharedQueueState, cq_tail) == offset_of!(QueueStateBlock, cq_tail));
    const _: () = assert!(offset_of!(SharedQueueState, outgoing_tail) == offset_of!(QueueStateBlock, outgoing_tail));
    const _: () = assert!(offset_of!(SharedQueueState, consumer_flag) == offset_of!(QueueStateBlock, consumer_flag));
    const _: () = assert!(offset_of!(SharedQueueState, cq_head) == offset_of!(QueueStateBlock, cq_head));
}

impl SharedQueueState {
    /// A fresh block for a queue starting at free-running index `start`.
    pub fn new(start: u32) -> Self {
        SharedQueueState {
            head: AtomicU32::new(start.to_le()),
            cq_tail: AtomicU32::new(0),
            rsvd_device_hot: reserved(),
            fetch_flag: AtomicU32::new(FetchFlag::Idle.raw().to_le()),
            qstatus: AtomicU32::new(0),
            error_index: AtomicU32::new(0),
            rsvd_device_cold: reserved(),
            outgoing_tail: AtomicU32::new(start.to_le()),
            cq_head: AtomicU32::new(0),
            rsvd_driver_hot: reserved(),
            consumer_flag: AtomicU32::new(0),
            rsvd_driver_cold: reserved(),
        }
    }

    /// Re-initialise a block in place (queue create or reset), with no
    /// producer or consumer attached.
    pub fn reset(&self, start: u32) {
        for a in [
            &self.qstatus,
            &self.error_index,
            &self.cq_tail,
            &self.consumer_flag,
            &self.cq_head,
        ] {
            store_le(a, 0, Ordering::Relaxed);
        }
        store_le(&self.fetch_flag, FetchFlag::Idle.raw(), Ordering::Relaxed);
        store_le(&self.head, start, Ordering::Relaxed);
        store_le(&self.outgoing_tail, start, Ordering::Release);
    }

    /// Set the consumer flag.
    pub fn set_consumer(&self, flag: ConsumerFlag) {
        store_le(&self.consumer_flag, flag.raw(), Ordering::Relaxed);
    }

    /// The driver's half of the consumer-flag protocol: announce the
    /// consumer is about to sleep ([`ConsumerFlag::Armed`]), then
    /// look once more with `ready` (is a completion there?). Returns its
    /// answer: true means work is there, do not sleep.
    ///
    /// With [`SharedQueueState::consumer_after_post`] this is a
    /// store-buffering pair: each side stores (the flag; the completion),
    /// issues a SeqCst fence, then loads the other's store, so at least one
    /// side sees the other: the driver the completion, or the device ARMED
    /// (and it interrupts). No wakeup is lost (`ring::loom_model`).
    pub fn arm_consumer(&self, ready: impl FnOnce() -> bool) -> bool {
        self.set_consumer(ConsumerFlag::Armed);
        fence(Ordering::SeqCst);
        ready()
    }

    /// The device's half: after publishing completions, what the consumer
    /// is doing (decides whether to interrupt).
    pub fn consumer_after_post(&self) -> ConsumerFlag {
        fence(Ordering::SeqCst);
        ConsumerFlag::from_word(load_le(&self.consumer_flag, Ordering::Relaxed))
    }

    ///
    /// # Safety
    /// `ptr` must point to [`crate::abi::QUEUE_STATE_SIZE`] bytes that stay
    /// mapped and writable for `'a`, and that are only ever accessed with
    /// atomic operations meanwhile (by any process).
    #[cfg(not(loom))]
    pub unsafe fn from_ptr<'a>(ptr: NonNull<u8>) -> Result<&'a SharedQueueState, RingError> {
        let addr = ptr.as_ptr() as usize;
        let align = core::mem::align_of::<SharedQueueState>();
        if addr % align != 0 {
            return Err(RingError::Misaligned {
                what: "queue state block",
                addr,
                align,
            });
        }
        // SAFETY: aligned (checked above), valid and atomically accessed for
        // 'a (the caller's contract); every bit pattern is a valid
        // SharedQueueState, and all of it is atomics, so the other side's
        // concurrent writes are allowed behind a shared reference.
        Ok(unsafe { ptr.cast::<SharedQueueState>().as_ref() })
    }

    /// The current indices and flags as plain numbers (for diagnostics).
    pub fn snapshot(&self) -> QueueStateBlock {
        let ld = |a: &AtomicU32| load_le(a, Ordering::Acquire).into();
        QueueStateBlock {
            head: ld(&self.head),
            fetch_flag: ld(&self.fetch_flag),
            qstatus: ld(&self.qstatus),
            error_index: ld(&self.error_index),
            cq_tail: ld(&self.cq_tail),
            outgoing_tail: ld(&self.outgoing_tail),
            consumer_flag: ld(&self.consumer_flag),
            cq_head: ld(&self.cq_head),
            ..zerocopy::FromZeros::new_zeroed()
        }
    }
}

/// The ring's slots: a raw pointer to `size` elements, shared by the two
/// halves. Who may touch which slot is decided by the indices; this type
/// only copies.
#[cfg(not(loom))]
struct Slots<T> {
    base: NonNull<T>,
    mask: u32,
}

#[cfg(not(loom))]
impl<T: RingElem> Slots<T> {
    /// Copy `src` into the slots starting at free-running index `at`.
    ///
    /// # Safety
    /// The caller owns slots `[at, at + src.len())` (per the indices) and
    /// `src.len() <= size`.
    #[inline(always)]
    unsafe fn write(&self, at: u32, src: &[T]) {
        let size = self.mask as usize + 1;
        let idx = (at & self.mask) as usize;
        if idx + src.len() <= size {
            // The common case, one contiguous copy: with the batch size known
            // at the call site, it compiles to straight vector moves.
            // SAFETY: `idx + len <= size`: inside the slots; `src` is a
            // separate Rust slice, so no overlap; the slots are ours per the
            // caller's contract.
            unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), self.base.as_ptr().add(idx), src.len()) };
            return;
        }
        let first = size - idx;
        // SAFETY: `idx + first == size` and `src.len() - first <= idx` (as
        // `src.len() <= size`), so both ranges are inside the slots; no
        // overlap and ownership as above.
        unsafe {
            core::ptr::copy_nonoverlapping(src.as_ptr(), self.base.as_ptr().add(idx), first);
            core::ptr::copy_nonoverlapping(src.as_ptr().add(first), self.base.as_ptr(), src.len() - first);
        }
    }

    /// Copy the slots starting at free-running index `at` into `dst`.
    ///
    /// # Safety
    /// The caller owns slots `[at, at + dst.len())` and `dst.len() <= size`.
    #[inline(always)]
    unsafe fn read(&self, at: u32, dst: &mut [T]) {
        let size = self.mask as usize + 1;
        let idx = (at & self.mask) as usize;
        if idx + dst.len() <= size {
            // SAFETY: as in `write`, with source and destination swapped.
            unsafe { core::ptr::copy_nonoverlapping(self.base.as_ptr().add(idx), dst.as_mut_ptr(), dst.len()) };
            return;
        }
        let first = size - idx;
        // SAFETY: as in `write`, with source and destination swapped.
        unsafe {
            core::ptr::copy_nonoverlapping(self.base.as_ptr().add(idx), dst.as_mut_ptr(), first);
            core::ptr::copy_nonoverlapping(self.base.as_ptr(), dst.as_mut_ptr().add(first), dst.len() - first);
        }
    }
}

#[cfg(loom)]
struct Slots<T> {
    base: NonNull<::loom::cell::UnsafeCell<T>>,
    mask: u32,
}

#[cfg(loom)]
impl<T: RingElem> Slots<T> {
    unsafe fn write(&self, at: u32, src: &[T]) {
        for (i, v) in src.iter().enumerate() {
            let idx = (at.wrapping_add(i as u32) & self.mask) as usize;
            // SAFETY: in bounds (masked); loom checks the exclusivity.
            unsafe { (*self.base.as_ptr().add(idx)).with_mut(|p| p.write(*v)) };
        }
    }

    unsafe fn read(&self, at: u32, dst: &mut [T]) {
        for (i, v) in dst.iter_mut().enumerate() {
            let idx = (at.wrapping_add(i as u32) & self.mask) as usize;
            // SAFETY: in bounds (masked); loom checks the exclusivity.
            *v = unsafe { (*self.base.as_ptr().add(idx)).with(|p| p.read()) };
        }
    }
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
    pub head: u32,
    pub outgoing_tail: u32,
    pub buffer_tail: u32,
    pub size: u32,
}

impl Indices {
    /// `head <= outgoing_tail <= buffer_tail <= head + size`, wrapping.
    pub fn holds(&self) -> bool {
        let published = self.outgoing_tail.wrapping_sub(self.head);
        let filled = self.buffer_tail.wrapping_sub(self.head);
        published <= filled && filled <= self.size
    }
}

/// Counters the producer keeps (no atomics: one owner).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProducerStats {
    /// Doorbells the caller was told to ring.
    pub doorbells: u64,
    /// Doorbells skipped because the consumer was fetching.
    pub doorbells_suppressed: u64,
}

/// Whether `outgoing_tail` follows `buffer_tail` at once or on `commit()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every fill is published at once.
    Normal,
    /// Fills are staged until [`Producer::commit`]; [`Producer::rollback`]
    /// discards them. For output commit in a primary/secondary setup.
    Commit,
}

/// The producer half: fills slots, publishes, reclaims.
pub struct Producer<'a, T: RingElem> {
    state: &'a SharedQueueState,
    slots: Slots<T>,
    size: u32,
    mode: Mode,
    /// Head as last written back by the consumer and reclaimed here.
    head: u32,
    outgoing_tail: u32,
    buffer_tail: u32,
    /// `outgoing_tail` as of the last doorbell (rung or suppressed).
    announced: u32,
    stats: ProducerStats,
    _slots: PhantomData<&'a mut [T]>,
}

// SAFETY: a Producer is the only writer of the slots in [head + size) beyond
// buffer_tail and reads none; everything it shares with the Consumer goes
// through atomics with Release/Acquire edges. Moving it to another thread is
// therefore as safe as moving a `&mut [T]` when T: Send.
unsafe impl<T: RingElem> Send for Producer<'_, T> {}

impl<T: RingElem> core::fmt::Debug for Producer<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Producer")
            .field("indices", &self.indices())
            .field("mode", &self.mode)
            .field("stats", &self.stats)
            .finish()
    }
}

impl<'a, T: RingElem> Producer<'a, T> {
    fn from_parts(state: &'a SharedQueueState, slots: Slots<T>, size: u32) -> Result<Self, RingError> {
        let head = load_le(&state.head, Ordering::Acquire);
        let outgoing_tail = load_le(&state.outgoing_tail, Ordering::Relaxed);
        if outgoing_tail.wrapping_sub(head) > size {
            return Err(RingError::OutgoingTailOutOfRange {
                head,
                outgoing_tail,
                size,
            });
        }
        Ok(Producer {
            state,
            slots,
            size,
            mode: Mode::Normal,
            head,
            outgoing_tail,
            buffer_tail: outgoing_tail,
            announced: outgoing_tail,
            stats: ProducerStats::default(),
            _slots: PhantomData,
        })
    }

    /// Attach a producer to a ring in shared memory (another process may
    /// hold the consumer). Starts from the indices in the state block.
    ///
    /// # Safety
    /// - `state` satisfies [`SharedQueueState::from_ptr`];
    /// - `slots` points to `1 << order` elements of `T`, aligned for `T`,
    ///   mapped readable and writable for `'a`;
    /// - no other producer is attached to this ring while this one lives
    ///   (in any process), and the memory is only accessed through a
    ///   [`Producer`] and a [`Consumer`].
    #[cfg(not(loom))]
    pub unsafe fn attach(state: NonNull<u8>, slots: NonNull<T>, order: u8) -> Result<Self, RingError> {
        // SAFETY: forwarded from this function's contract.
        let (state, slots, size) = unsafe { shared_parts(state, slots, order)? };
        Self::from_parts(state, slots, size)
    }

    /// Slots the producer may fill now (based on the last reclaim).
    #[inline]
    pub fn free(&self) -> u32 {
        self.size - self.buffer_tail.wrapping_sub(self.head)
    }

    /// Entries written but not yet published (commit mode).
    #[inline]
    pub fn staged(&self) -> u32 {
        self.buffer_tail.wrapping_sub(self.outgoing_tail)
    }

    /// Entries published and not yet reclaimed.
    #[inline]
    pub fn in_flight(&self) -> u32 {
        self.outgoing_tail.wrapping_sub(self.head)
    }

    /// Ring size in slots.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The indices as the producer knows them.
    pub fn indices(&self) -> Indices {
        Indices {
            head: self.head,
            outgoing_tail: self.outgoing_tail,
            buffer_tail: self.buffer_tail,
            size: self.size,
        }
    }

    /// Doorbell counters.
    pub fn stats(&self) -> ProducerStats {
        self.stats
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Switch modes. Leaving commit mode publishes what is staged, since
    /// in normal mode `outgoing_tail` always equals `buffer_tail`.
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
        if mode == Mode::Normal {
            self.publish();
        }
    }

    /// Fill all of `items` or nothing (like `rte_ring_*_bulk`). Returns
    /// whether they fit. In normal mode they are published at once.
    #[inline]
    pub fn fill_bulk(&mut self, items: &[T]) -> bool {
        if items.len() > self.free() as usize {
            return false;
        }
        // SAFETY: the slots [buffer_tail, buffer_tail + len) are free: len <=
        // free() means they lie within head + size, past everything the
        // consumer may still read (it never reads past outgoing_tail <=
        // buffer_tail, and it has written back everything before head).
        unsafe { self.slots.write(self.buffer_tail, items) };
        self.buffer_tail = self.buffer_tail.wrapping_add(items.len() as u32);
        if self.mode == Mode::Normal {
            self.publish();
        }
        true
    }

    /// Fill as many of `items` as fit; returns how many.
    #[inline]
    pub fn fill_burst(&mut self, items: &[T]) -> usize {
        let n = items.len().min(self.free() as usize);
        self.fill_bulk(&items[..n]);
        n
    }

    #[inline]
    fn publish(&mut self) {
        if self.outgoing_tail != self.buffer_tail {
            self.outgoing_tail = self.buffer_tail;
            // Release: the slot writes above happen-before the consumer's
            // Acquire load that sees this index.
            store_le(&self.state.outgoing_tail, self.outgoing_tail, Ordering::Release);
        }
    }

    /// Publish the staged entries; returns how many. In normal mode
    /// nothing is ever staged and this returns 0.
    pub fn commit(&mut self) -> u32 {
        let n = self.staged();
        self.publish();
        n
    }

    /// Discard the staged entries; returns how many. The consumer never saw
    /// them, so their slots are simply free again.
    pub fn rollback(&mut self) -> u32 {
        let n = self.staged();
        self.buffer_tail = self.outgoing_tail;
        n
    }

    /// Read the consumer's head write-back and free the slots it has
    /// finished with. Returns how many were reclaimed; they are the
    /// free-running indices `[indices().head - n, indices().head)` after the
    /// call (so a driver can release the buffers it attached to them).
    #[inline]
    pub fn reclaim(&mut self) -> Result<u32, RingError> {
        // Acquire: the consumer's reads of these slots happen-before our
        // next writes to them.
        let now = load_le(&self.state.head, Ordering::Acquire);
        let done = now.wrapping_sub(self.head);
        if done > self.in_flight() {
            return Err(RingError::HeadOutOfRange {
                was: self.head,
                now,
                outgoing_tail: self.outgoing_tail,
            });
        }
        self.head = now;
        Ok(done)
    }

    /// Whether the caller must ring the doorbell, and with which
    /// `outgoing_tail`. `None` when nothing was published since the last
    /// doorbell, or when the consumer is fetching and will see the new tail
    /// on its own. Call it once per batch, after the fills.
    #[inline]
    pub fn doorbell(&mut self) -> Option<u32> {
        if self.outgoing_tail == self.announced {
            return None;
        }
        self.announced = self.outgoing_tail;
        // Order our outgoing_tail store before the flag load; pairs with the
        // fence in Consumer::try_idle (see the module docs).
        fence(Ordering::SeqCst);
        if load_le(&self.state.fetch_flag, Ordering::Relaxed) == FetchFlag::Active.raw() {
            self.stats.doorbells_suppressed += 1;
            return None;
        }
        self.stats.doorbells += 1;
        Some(self.outgoing_tail)
    }
}

/// The consumer half: fetches published slots and writes `head` back.
pub struct Consumer<'a, T: RingElem> {
    state: &'a SharedQueueState,
    slots: Slots<T>,
    size: u32,
    /// Fetch cursor.
    head: u32,
    /// Last head written back to the shared block.
    written_back: u32,
    /// Last validated outgoing_tail.
    tail: u32,
    _slots: PhantomData<&'a [T]>,
}

// SAFETY: a Consumer only reads slots in [head, outgoing_tail), which the
// producer does not write until the consumer has released them through the
// head write-back (Release/Acquire); see the Producer's Send impl.
unsafe impl<T: RingElem> Send for Consumer<'_, T> {}

impl<T: RingElem> core::fmt::Debug for Consumer<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Consumer")
            .field("head", &self.head)
            .field("written_back", &self.written_back)
            .field("outgoing_tail", &self.tail)
            .field("size", &self.size)
            .finish()
    }
}

impl<'a, T: RingElem> Consumer<'a, T> {
    fn from_parts(state: &'a SharedQueueState, slots: Slots<T>, size: u32) -> Result<Self, RingError> {
        let head = load_le(&state.head, Ordering::Relaxed);
        let mut c = Consumer {
            state,
            slots,
            size,
            head,
            written_back: head,
            tail: head,
            _slots: PhantomData,
        };
        c.refresh()?;
        Ok(c)
    }

    /// Attach a consumer to a ring in shared memory (another process may
    /// hold the producer). Starts at the written-back `head`.
    ///
    /// # Safety
    /// As [`Producer::attach`], with "consumer" for "producer".
    #[cfg(not(loom))]
    pub unsafe fn attach(state: NonNull<u8>, slots: NonNull<T>, order: u8) -> Result<Self, RingError> {
        // SAFETY: forwarded from this function's contract.
        let (state, slots, size) = unsafe { shared_parts(state, slots, order)? };
        Self::from_parts(state, slots, size)
    }

    /// Reload and validate `outgoing_tail`.
    #[inline]
    fn refresh(&mut self) -> Result<(), RingError> {
        // Acquire: the producer's slot writes happen-before our reads.
        let now = load_le(&self.state.outgoing_tail, Ordering::Acquire);
        let ahead = now.wrapping_sub(self.written_back);
        if ahead > self.size {
            return Err(RingError::OutgoingTailOutOfRange {
                head: self.written_back,
                outgoing_tail: now,
                size: self.size,
            });
        }
        if ahead < self.tail.wrapping_sub(self.written_back) {
            return Err(RingError::OutgoingTailRegressed { was: self.tail, now });
        }
        self.tail = now;
        Ok(())
    }

    /// Published entries not yet fetched (reloads `outgoing_tail`).
    pub fn available(&mut self) -> Result<u32, RingError> {
        self.refresh()?;
        Ok(self.tail.wrapping_sub(self.head))
    }

    /// Ring size in slots.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The fetch cursor (free-running index of the next slot to fetch).
    pub fn head(&self) -> u32 {
        self.head
    }

    /// The shared state block (for the device's other fields: error state,
    /// completion indices, consumer flag).
    pub fn state(&self) -> &'a SharedQueueState {
        self.state
    }

    /// Fetch exactly `out.len()` entries or none. `Ok(false)` when fewer
    /// are published.
    #[inline]
    pub fn fetch_bulk(&mut self, out: &mut [T]) -> Result<bool, RingError> {
        let want = out.len();
        if (self.tail.wrapping_sub(self.head) as usize) < want {
            self.refresh()?;
            if (self.tail.wrapping_sub(self.head) as usize) < want {
                return Ok(false);
            }
        }
        // SAFETY: [head, head + want) lies within [head, outgoing_tail),
        // published by the producer (Acquire in refresh) and not yet written
        // back, so the producer does not write these slots.
        unsafe { self.slots.read(self.head, out) };
        self.head = self.head.wrapping_add(want as u32);
        Ok(true)
    }

    /// Fetch up to `out.len()` entries; returns how many.
    #[inline]
    pub fn fetch_burst(&mut self, out: &mut [T]) -> Result<usize, RingError> {
        let mut avail = self.tail.wrapping_sub(self.head) as usize;
        if avail < out.len() {
            self.refresh()?;
            avail = self.tail.wrapping_sub(self.head) as usize;
        }
        let n = avail.min(out.len());
        // SAFETY: as in fetch_bulk, for n <= available entries.
        unsafe { self.slots.read(self.head, &mut out[..n]) };
        self.head = self.head.wrapping_add(n as u32);
        Ok(n)
    }

    /// Write `head` back: every slot fetched so far may be reused by the
    /// producer.
    #[inline]
    pub fn write_back(&mut self) {
        if self.written_back != self.head {
            self.written_back = self.head;
            // Release: our slot reads happen-before the producer's reuse.
            store_le(&self.state.head, self.head, Ordering::Release);
        }
    }

    /// Write back `head = index`, for a consumer that fetched further than
    /// it has finished (a device that stopped mid-batch). `index` must lie
    /// in `[written-back head, fetch cursor]`; anything else is ignored and
    /// returns false.
    pub fn write_back_to(&mut self, index: u32) -> bool {
        let done = index.wrapping_sub(self.written_back);
        if done > self.head.wrapping_sub(self.written_back) {
            return false;
        }
        if done != 0 {
            self.written_back = index;
            store_le(&self.state.head, index, Ordering::Release);
        }
        true
    }

    /// Mark the fetch engine active: the producer may stop ringing. The
    /// consumer must then keep fetching until [`Consumer::try_idle`]
    /// returns `true`.
    #[inline]
    pub fn set_fetching(&self) {
        store_le(&self.state.fetch_flag, FetchFlag::Active.raw(), Ordering::Relaxed);
    }

    /// Try to go idle: clear the fetch flag, then look at `outgoing_tail`
    /// once more. `Ok(true)`: idle, the next publish will come with a
    /// doorbell. `Ok(false)`: entries arrived meanwhile; the flag is set
    /// again and the caller keeps fetching.
    pub fn try_idle(&mut self) -> Result<bool, RingError> {
        store_le(&self.state.fetch_flag, FetchFlag::Idle.raw(), Ordering::Relaxed);
        // Pairs with the fence in Producer::doorbell (see the module docs).
        fence(Ordering::SeqCst);
        self.refresh()?;
        if self.tail != self.head {
            self.set_fetching();
            return Ok(false);
        }
        Ok(true)
    }
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
    if addr % align != 0 {
        return Err(RingError::Misaligned { what, addr, align });
    }
    Ok(())
}

/// A ring in memory this process owns: for two threads, tests and
/// benchmarks. For shared memory use [`Producer::attach`] and
/// [`Consumer::attach`].
pub struct RingMemory<T: RingElem> {
    state: Box<SharedQueueState>,
    #[cfg(not(loom))]
    slots: SlotAlloc<T>,
    #[cfg(loom)]
    slots: Box<[::loom::cell::UnsafeCell<T>]>,
    size: u32,
}

impl<T: RingElem> core::fmt::Debug for RingMemory<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RingMemory")
            .field("size", &self.size)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<T: RingElem> RingMemory<T> {
    /// A zeroed ring of `1 << order` slots whose indices start at 0.
    pub fn new(order: u8) -> Result<Self, RingError> {
        Self::with_start(order, 0)
    }

    /// A zeroed ring whose indices start at `start` (tests use starts just
    /// below `u32::MAX` to cross the wrap).
    pub fn with_start(order: u8, start: u32) -> Result<Self, RingError> {
        let size = check_order(order)?;
        Ok(RingMemory {
            state: Box::new(SharedQueueState::new(start)),
            #[cfg(not(loom))]
            slots: SlotAlloc::zeroed(size as usize),
            #[cfg(loom)]
            slots: (0..size)
                .map(|_| ::loom::cell::UnsafeCell::new(T::new_zeroed()))
                .collect(),
            size,
        })
    }

    /// The shared state block.
    pub fn state(&self) -> &SharedQueueState {
        &self.state
    }

    /// Both halves. Borrowing `self` mutably guarantees one pair at a time.
    pub fn split(&mut self) -> (Producer<'_, T>, Consumer<'_, T>) {
        let mask = self.size - 1;
        #[cfg(not(loom))]
        let base = self.slots.ptr;
        #[cfg(loom)]
        let base = NonNull::new(self.slots.as_mut_ptr()).expect("boxed slice pointer is never null");
        let state: &SharedQueueState = &self.state;
        // The block was initialised by with_start (consistent indices), so
        // neither half can find it invalid.
        let p = Producer::from_parts(state, Slots { base, mask }, self.size).expect("fresh ring is consistent");
        let c = Consumer::from_parts(state, Slots { base, mask }, self.size).expect("fresh ring is consistent");
        (p, c)
    }
}

/// Cache-line aligned, zeroed slot storage.
#[cfg(not(loom))]
struct SlotAlloc<T> {
    ptr: NonNull<T>,
    layout: std::alloc::Layout,
}

#[cfg(not(loom))]
impl<T: RingElem> SlotAlloc<T> {
    fn zeroed(n: usize) -> Self {
        let layout = std::alloc::Layout::array::<T>(n)
            .and_then(|l| l.align_to(64))
            .expect("ring of at most 2^24 small elements fits in memory")
            .pad_to_align();
        if layout.size() == 0 {
            return SlotAlloc {
                ptr: NonNull::dangling(),
                layout,
            };
        }
        // SAFETY: layout has non-zero size (checked above).
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw.cast::<T>()).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        // All-zero bytes are a valid T: T: FromBytes.
        SlotAlloc { ptr, layout }
    }
}

#[cfg(not(loom))]
impl<T> Drop for SlotAlloc<T> {
    fn drop(&mut self) {
        if self.layout.size() != 0 {
            // SAFETY: allocated in `zeroed` with this very layout; T is Copy,
            // so there is nothing to drop in place.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), self.layout) };
        }
    }
}
