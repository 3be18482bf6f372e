//! The device's side of a queue: the consumer half of its descriptor ring,
//! the producer of its completion ring, and its share of the queue state
//! block, all in the owning function's DMA memory.
//!
//! A queue keeps a snapshot of the function's DMA space, so the memory its
//! ring, completions and state block live in stays mapped for as long as
//! the queue exists, whatever the client unmaps meanwhile (a queue whose
//! memory the client unmaps is stopped with a DMA fault; see
//! `Device::dma_unmap`).

use crate::clock::Nanos;
use crate::dma::{DmaFault, DmaSpace};
use dataplane::abi::{
    comp_flags, expected_color, CompStatus, Completion, IntoBytes, QueueCreate, QueueType, DESC_SIZE, FETCH_ACTIVE,
    QUEUE_STATE_SIZE,
};
use dataplane::ring::{Consumer, RingElem, SharedQueueState};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU16, Ordering};

/// Why a queue could not be created over the memory the command named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueMemError {
    /// Ring, completion ring or state block outside the function's DMA.
    Dma(DmaFault),
    /// The state block's indices are inconsistent (cannot happen after the
    /// device initialised it; kept for completeness).
    Ring,
}

/// Completion entries in a 64-byte cache line.
const CQ_ENTRIES_PER_LINE: u32 = 4;

/// The parts every queue has: memory, completion writer, interrupt.
pub struct QueueCore {
    /// Keeps the mappings alive; must outlive `state` and `cq`.
    mem: DmaSpace,
    state: NonNull<SharedQueueState>,
    cq: NonNull<u8>,
    order: u8,
    /// Completions written (free-running; the color derives from it).
    cq_tail: u32,
    /// Completions written to the ring (those after it are staged).
    cq_flushed: u32,
    /// Staged completions, `cq_flushed..cq_tail`, at most a cache line.
    staged: [[u8; 16]; CQ_ENTRIES_PER_LINE as usize],
    /// `cq_tail` as last stored in the state block (informational there:
    /// the color bit is authoritative, so it is published once per pass,
    /// not per completion, sparing the cache line a write per packet).
    cq_tail_published: u32,
    /// The driver's `cq_head` as last read: room is looked up in the shared
    /// block only when this view says the ring is full.
    cq_head_seen: std::cell::Cell<u32>,
    /// Vector to interrupt on, if the queue asked for interrupts.
    pub intr: Option<u16>,
    /// The cause and descriptor index once the queue is in the error state.
    pub error: Option<(CompStatus, u32)>,
    /// Completions written since the last interrupt decision.
    pub unsignalled: u32,
    /// IOVAs of the three areas (to find queues hit by an unmap).
    pub ring_base: u64,
    pub cq_base: u64,
    pub state_base: u64,
    /// The queue's LIF and type and index (for completions and logs).
    pub lif: u16,
    pub qtype: QueueType,
    pub qindex: u16,
    /// Completions the device could not write because the driver had not
    /// consumed the ring (the queue stalls meanwhile).
    pub cq_full_stalls: u64,
    /// The client unmapped the queue's memory: the device writes nothing
    /// there any more (the snapshot keeps it mapped in the device only so
    /// that no stale pointer can fault; it goes with the queue).
    pub detached: bool,
}

// SAFETY: the raw pointers point into `mem`'s mappings, which the struct
// owns (reference-counted); the device accesses them only under its lock.
unsafe impl Send for QueueCore {}

impl std::fmt::Debug for QueueCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueCore")
            .field("lif", &self.lif)
            .field("qtype", &self.qtype)
            .field("qindex", &self.qindex)
            .field("order", &self.order)
            .field("cq_tail", &self.cq_tail)
            .field("error", &self.error)
            .finish()
    }
}

impl QueueCore {
    /// Translate and initialise the queue's memory: head = outgoing_tail =
    /// `start_index`, flags idle, completion indices 0.
    pub fn new(dma: &DmaSpace, q: &QueueCreate, lif: u16, qindex: u16) -> Result<QueueCore, QueueMemError> {
        let size = 1u64 << q.ring_order;
        let ring_len = size * DESC_SIZE as u64;
        // All three must be mapped and writable; the ring too, although the
        // device only reads it, so that a later remap cannot surprise us.
        dma.host_range_for_read(q.ring_base.get(), ring_len)
            .map_err(QueueMemError::Dma)?;
        let cq = dma.host_range(q.cq_base.get(), size * 16).map_err(QueueMemError::Dma)?;
        let state = dma
            .host_range(q.state_base.get(), QUEUE_STATE_SIZE as u64)
            .map_err(QueueMemError::Dma)?;
        let core = QueueCore {
            mem: dma.clone(),
            state: state.cast(),
            cq,
            order: q.ring_order,
            cq_tail: 0,
            cq_flushed: 0,
            staged: [[0; 16]; CQ_ENTRIES_PER_LINE as usize],
            cq_tail_published: 0,
            cq_head_seen: std::cell::Cell::new(0),
            intr: (q.flags & dataplane::abi::queue_flags::INTR != 0).then_some(q.intr_vector.get()),
            error: None,
            unsignalled: 0,
            ring_base: q.ring_base.get(),
            cq_base: q.cq_base.get(),
            state_base: q.state_base.get(),
            lif,
            qtype: QueueType::from_raw(q.qtype).unwrap_or(QueueType::Admin),
            qindex,
            cq_full_stalls: 0,
            detached: false,
        };
        core.state().reset(q.start_index.get());
        Ok(core)
    }

    /// The shared state block.
    pub fn state(&self) -> &SharedQueueState {
        // SAFETY: `state` points to QUEUE_STATE_SIZE bytes of a mapping held
        // by `self.mem` (checked by host_range, 128-byte aligned because
        // the IOVA is and mappings are page aligned); every field is atomic.
        unsafe { self.state.as_ref() }
    }

    /// Attach the consumer half of the descriptor ring.
    pub fn consumer<T: RingElem>(&self) -> Result<Consumer<'static, T>, QueueMemError> {
        let slots = self
            .mem
            .host_range_for_read(self.ring_base, (1u64 << self.order) * DESC_SIZE as u64)
            .map_err(QueueMemError::Dma)?;
        // SAFETY: the state block and slots lie in mappings `self.mem` keeps
        // alive; the owner of this QueueCore stores the consumer next to it
        // and drops the consumer first (field order), so 'static never
        // outlives the memory. The device is the only consumer of this ring.
        unsafe { Consumer::attach(self.state.cast(), slots.cast(), self.order) }.map_err(|_| QueueMemError::Ring)
    }

    /// Ring size.
    pub fn size(&self) -> u32 {
        1 << self.order
    }

    /// Whether the completion ring has room (the driver's `cq_head` is
    /// within a ring of what we wrote).
    pub fn cq_has_room(&self) -> bool {
        if self.cq_tail.wrapping_sub(self.cq_head_seen.get()) < self.size() {
            return true;
        }
        let head = u32::from_le(self.state().cq_head.load(Ordering::Acquire));
        self.cq_head_seen.set(head);
        self.cq_tail.wrapping_sub(head) < self.size()
    }

    /// Completions the ring has room for now.
    pub fn cq_room(&self) -> u32 {
        let head = u32::from_le(self.state().cq_head.load(Ordering::Acquire));
        self.cq_head_seen.set(head);
        self.size().saturating_sub(self.cq_tail.wrapping_sub(head))
    }

    /// Store `cq_tail` in the state block if it moved (once per pass).
    pub fn publish_cq_tail(&mut self) {
        if self.detached {
            return;
        }
        self.flush_completions();
        if self.cq_tail_published != self.cq_tail {
            self.cq_tail_published = self.cq_tail;
            self.state().cq_tail.store(self.cq_tail.to_le(), Ordering::Release);
        }
    }

    /// Write one 16-byte completion (a [`Completion`] or an admin
    /// completion: both keep the color in bit 7 of byte 1), color last.
    /// Returns false (and counts a stall) when the driver has not made room.
    ///
    /// Completions are staged and written a cache line (4 entries) at a
    /// time: the driver polls the line the next completion goes to, and
    /// writing its 4 entries one by one as packets come would move the
    /// line between the cores up to 4 times. A partial line is written by
    /// [`QueueCore::flush_completions`], which the engine calls before it
    /// decides interrupts at the end of every pass (and `fail` at once).
    pub fn post(&mut self, entry: [u8; 16]) -> bool {
        if self.detached {
            return false;
        }
        if !self.cq_has_room() {
            self.cq_full_stalls += 1;
            return false;
        }
        let color = expected_color(self.cq_tail, self.order);
        let mut e = entry;
        e[1] = (entry[1] & !comp_flags::COLOR) | if color { comp_flags::COLOR } else { 0 };
        let staged = self.cq_tail.wrapping_sub(self.cq_flushed) as usize;
        self.staged[staged] = e;
        self.cq_tail = self.cq_tail.wrapping_add(1);
        self.unsignalled += 1;
        if self.cq_tail % CQ_ENTRIES_PER_LINE == 0 {
            self.flush_completions();
        }
        true
    }

    /// Write the staged completions: every body, one Release fence, then
    /// every status-and-color word.
    pub fn flush_completions(&mut self) {
        let n = self.cq_tail.wrapping_sub(self.cq_flushed);
        if n == 0 {
            return;
        }
        if self.detached {
            self.cq_flushed = self.cq_tail;
            return;
        }
        let mask = self.size() - 1;
        let first = self.cq_flushed;
        // SAFETY: each entry index (masked) is 16 bytes inside the
        // completion ring (size * 16 bytes, checked at creation, kept
        // mapped by `mem`); the ring is 64-byte aligned, so the first two
        // bytes of an entry are 2-aligned for the atomic store. The driver
        // only reads entries whose color it awaits, so bodies written before
        // the Release fence are complete when it sees the status and color.
        unsafe {
            for k in 0..n {
                let idx = (first.wrapping_add(k) & mask) as usize;
                let p = self.cq.as_ptr().add(idx * 16);
                std::ptr::copy_nonoverlapping(self.staged[k as usize].as_ptr().add(2), p.add(2), 14);
            }
            fence(Ordering::Release);
            for k in 0..n {
                let idx = (first.wrapping_add(k) & mask) as usize;
                let p = self.cq.as_ptr().add(idx * 16);
                let e = &self.staged[k as usize];
                AtomicU16::from_ptr(p.cast()).store(u16::from_le_bytes([e[0], e[1]]), Ordering::Release);
            }
        }
        self.cq_flushed = self.cq_tail;
    }

    /// Post a TX/RX completion.
    pub fn post_completion(&mut self, c: Completion) -> bool {
        let mut e = [0u8; 16];
        e.copy_from_slice(c.as_bytes());
        self.post(e)
    }

    /// Put the queue in the error state: a completion naming the cause at
    /// `index`, and `qstatus`/`error_index` in the state block.
    pub fn fail(&mut self, status: CompStatus, index: u32, now: Nanos) {
        if self.error.is_some() {
            return;
        }
        self.error = Some((status, index));
        let st = self.state();
        st.error_index.store(index.to_le(), Ordering::Relaxed);
        st.qstatus.store(u32::from(status.raw()).to_le(), Ordering::Release);
        let c = completion(status, self.lif, index, 0, 0, now);
        // If the completion ring is full the state block still says why.
        self.post_completion(c);
        self.flush_completions();
    }

    /// Put the queue in the error state without touching its memory (the
    /// client unmapped it: the device may no longer write there, and
    /// never does again; see `detached`).
    pub fn fail_silently(&mut self, status: CompStatus, index: u32) {
        if self.error.is_none() {
            self.error = Some((status, index));
        }
        self.detached = true;
    }

    /// Put the queue in the error state with `status` in its state block,
    /// writing no completion (after an internal error, when the queue's
    /// own bookkeeping cannot be trusted). Cannot panic.
    pub fn stop_quietly(&mut self, status: CompStatus) {
        if self.error.is_some() {
            return;
        }
        self.error = Some((status, 0));
        if !self.detached {
            self.state()
                .qstatus
                .store(u32::from(status.raw()).to_le(), Ordering::Release);
        }
    }

    /// The consumer flag the driver set, read after a full fence that
    /// orders it after the completions just written.
    pub fn consumer_flag(&self) -> u32 {
        self.state().consumer_after_post()
    }

    /// Mark the ring's fetch engine permanently active (RX rings: the
    /// device reads `outgoing_tail` whenever it needs a buffer, so the
    /// driver never needs to ring).
    pub fn set_always_fetching(&self) {
        self.state().fetch_flag.store(FETCH_ACTIVE.to_le(), Ordering::Release);
    }

    /// Whether the queue's memory intersects `[iova, iova + len)`.
    pub fn uses(&self, iova: u64, len: u64) -> bool {
        let size = u64::from(self.size());
        let overlaps = |base: u64, n: u64| base < iova.saturating_add(len) && iova < base.saturating_add(n);
        overlaps(self.ring_base, size * DESC_SIZE as u64)
            || overlaps(self.cq_base, size * 16)
            || overlaps(self.state_base, QUEUE_STATE_SIZE as u64)
    }
}

/// A completion with the given fields (color set by `post`).
pub fn completion(status: CompStatus, lif: u16, index: u32, len: u16, pkt_flags: u16, now: Nanos) -> Completion {
    Completion {
        status: status.raw(),
        flags: 0,
        lif: lif.into(),
        index: index.into(),
        len: len.into(),
        pkt_flags: pkt_flags.into(),
        timestamp: (now as u32).into(),
    }
}

/// A queue whose descriptors are `T`: the ring consumer and its core.
/// Field order matters: `ring` borrows `core`'s memory and drops first.
pub struct DeviceQueue<T: RingElem> {
    pub ring: Consumer<'static, T>,
    pub core: QueueCore,
    /// Last doorbell value seen (TX).
    pub doorbell_seen: u64,
    /// Whether the fetch engine is working this queue (TX).
    pub active: bool,
    /// Descriptors fetched and not yet processed (TX), oldest first; the
    /// first one has ring index `cache_index`.
    pub cache: std::collections::VecDeque<T>,
    pub cache_index: u32,
    /// TX with a loaded program: the first `pre.len()` cached descriptors'
    /// frames, already read and run through the pipeline as one batch,
    /// with its decision.
    pub pre: std::collections::VecDeque<(Vec<u8>, super::switch::Decision)>,
    /// Fault injection: treat the next fetched descriptor as malformed.
    pub inject_bad: bool,
    /// Fault injection: the fetch engine ignores the queue until then.
    pub stalled_until: u64,
    /// Head to write back at the end of the pass (descriptors processed
    /// but not yet returned to the driver); written at once when the cache
    /// empties, so the driver's view lags by at most one burst.
    pub write_back_pending: Option<u32>,
}

impl<T: RingElem> std::fmt::Debug for DeviceQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceQueue")
            .field("core", &self.core)
            .field("ring", &self.ring)
            .field("active", &self.active)
            .finish()
    }
}

impl<T: RingElem> DeviceQueue<T> {
    /// Create over `q`'s memory in `dma`.
    pub fn new(dma: &DmaSpace, q: &QueueCreate, lif: u16, qindex: u16) -> Result<Self, QueueMemError> {
        let core = QueueCore::new(dma, q, lif, qindex)?;
        let ring = core.consumer::<T>()?;
        Ok(DeviceQueue {
            ring,
            core,
            doorbell_seen: 0,
            active: false,
            cache: std::collections::VecDeque::new(),
            cache_index: 0,
            pre: std::collections::VecDeque::new(),
            inject_bad: false,
            stalled_until: 0,
            write_back_pending: None,
        })
    }

    /// Ring index of the next descriptor to process: the first cached one,
    /// or the fetch cursor when nothing is cached.
    pub fn next_index(&self) -> u32 {
        if self.cache.is_empty() {
            self.ring.head()
        } else {
            self.cache_index
        }
    }

    /// Restart empty at `start` over the memory the function maps *now*
    /// (`dma`): the queue is made anew from its creation parameters, so a
    /// ring, completion ring or state block the client has unmapped is a
    /// `Dma` error and nothing is written (the old snapshot of the mappings
    /// is not used). Clears the error state and the completion index (the
    /// driver zeroes its completion ring before asking).
    pub fn reset(&mut self, dma: &DmaSpace, start: u32) -> Result<(), QueueMemError> {
        let c = &self.core;
        let q = QueueCreate {
            qtype: c.qtype.raw(),
            ring_order: c.order,
            flags: if c.intr.is_some() {
                dataplane::abi::queue_flags::INTR
            } else {
                0
            },
            intr_vector: c.intr.unwrap_or(0).into(),
            ring_base: c.ring_base.into(),
            cq_base: c.cq_base.into(),
            state_base: c.state_base.into(),
            start_index: start.into(),
            ..Default::default()
        };
        let mut fresh = DeviceQueue::new(dma, &q, c.lif, c.qindex)?;
        fresh.stalled_until = self.stalled_until;
        fresh.core.cq_full_stalls = self.core.cq_full_stalls;
        *self = fresh;
        Ok(())
    }
}
