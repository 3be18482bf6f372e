//! The device's side of a queue: the consumer half of its descriptor ring,
//! the producer of its completion ring, and its share of the queue state
//! block, all in the owning function's DMA memory.
//!
//! A queue keeps a snapshot of the function's DMA space, so the memory its
//! ring, completions and state block live in stays mapped for as long as
//! the queue exists, whatever the client unmaps meanwhile (a queue whose
//! memory the client unmaps is stopped with a DMA fault; see
//! `Device::dma_unmap`).
//!
//! Two backings: memory the client shared (mapped into the device: the
//! ring protocol runs on it directly, atomics and fences as the ABI says),
//! and memory reached by message (`DMA_READ`/`DMA_WRITE`, a client that
//! maps without a file). For the second the device keeps a local copy of
//! the state block, the ring and the completion ring, runs the same
//! protocol on it, and moves what each side owns at the points the
//! protocol needs: it reads the driver's half of the state block and the
//! descriptors between `head` and `outgoing_tail` before fetching, writes
//! its half after changing it, and writes completions bodies first, the
//! first entry's color last (two messages), so the driver never sees a
//! completion before its body.

mod completions;

use crate::clock::Nanos;
use crate::dma::{DmaFault, DmaSpace};
use crate::server::remote::Remote;
use dataplane::abi::{
    comp_flags, CompStatus, Completion, ConsumerFlag, FetchFlag, IntoBytes, QueueCreate, QueueType, QUEUE_STATE_SIZE,
};
use dataplane::ring::{Consumer, CqWriter, RingElem, RingIndex, SharedQueueState};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Why a queue could not be created over the memory the command named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueMemError {
    /// Ring, completion ring or state block outside the function's DMA.
    Dma(DmaFault),
    /// The state block's indices are inconsistent (cannot happen after the
    /// device initialised it; kept for completeness).
    Ring,
}

/// 128 bytes, 128-aligned: the unit of a local copy's allocation (a state
/// block needs 128-byte alignment).
#[derive(Clone, Copy)]
#[repr(C, align(128))]
struct Block([u8; 128]);

/// Where a queue's memory is.
enum Backing {
    /// Mapped into the device (kept alive by `QueueCore::mem`).
    Shared,
    /// Reached by message; the device works on a local copy.
    Remote {
        /// The copy: state block, ring, completion ring, in that order.
        _buf: Vec<Block>,
        remote: Arc<Remote>,
    },
}

/// The parts every queue has: memory, completion writer, interrupt.
pub struct QueueCore {
    /// Keeps the mappings alive; must outlive `state` and `cq`.
    _mem: DmaSpace,
    /// Shared memory, or a local copy of memory reached by message (which
    /// `state`, `cq` and the ring's slots then point into).
    backing: Backing,
    state: NonNull<SharedQueueState>,
    cq: NonNull<u8>,
    /// The ring's slots.
    slots: NonNull<u8>,
    /// Bytes of a descriptor (16; 64 for the admin queue's commands).
    elem: usize,
    order: u8,
    /// The completion ring's writer (`dataplane::ring::completion`): the
    /// tail, the color, the staging by cache line.
    cqw: CqWriter,
    /// `cq_tail` as last stored in the state block (informational there:
    /// the color bit is authoritative, so it is published once per pass,
    /// not per completion, sparing the cache line a write per packet).
    cq_tail_published: RingIndex,
    /// The driver's `cq_head` as last read: room is looked up in the shared
    /// block only when this view says the ring is full.
    cq_head_seen: std::cell::Cell<RingIndex>,
    /// Vector to interrupt on, if the queue asked for interrupts.
    pub intr: Option<u16>,
    /// The cause and descriptor index once the queue is in the error state.
    pub error: Option<(CompStatus, RingIndex)>,
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
    /// A read by message was put off (the client was waiting for the
    /// device): whoever looks clears it and comes back later.
    pub put_off: bool,
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
            .field("cq_tail", &self.cqw.tail())
            .field("error", &self.error)
            .finish()
    }
}

impl QueueCore {
    /// Translate and initialise the queue's memory: head = outgoing_tail =
    /// `start_index`, flags idle, completion indices 0. `elem` is the size
    /// of one ring entry (the whole ring must lie in the function's
    /// memory, at that size).
    pub fn new(
        dma: &DmaSpace,
        q: &QueueCreate,
        lif: u16,
        qindex: u16,
        elem: usize,
    ) -> Result<QueueCore, QueueMemError> {
        let size = 1u64 << q.ring_order;
        let ring_len = size * elem as u64;
        let cq_len = size * 16;
        let (ring_base, cq_base, state_base) = (q.ring_base.get(), q.cq_base.get(), q.state_base.get());
        let shared = (
            dma.host_range_for_read(ring_base, ring_len),
            dma.host_range(cq_base, cq_len),
            dma.host_range(state_base, QUEUE_STATE_SIZE as u64),
        );
        let (backing, state, cq, slots) = match shared {
            // All three must be mapped (the ring readable, the rest
            // writable), and nothing of the function by message: its
            // writes by message are posted, and a completion written here
            // directly would overtake the frame written by message before
            // it (the driver would recycle the buffer, then the late
            // write land on its next frame).
            (Ok(ring), Ok(cq), Ok(state)) if !dma.has_remote_windows() => (Backing::Shared, state, cq, ring),
            // Some part only by message, or some of the function's memory
            // (the rest may be mapped here: a client that maps by message
            // answers for all it mapped): the whole queue goes by message,
            // its writes in order behind the frames'.
            (ring, cq, state)
                if (ring.is_ok() || dma.is_remote(ring_base, ring_len, false))
                    && (cq.is_ok() || dma.is_remote(cq_base, cq_len, true))
                    && (state.is_ok() || dma.is_remote(state_base, QUEUE_STATE_SIZE as u64, true)) =>
            {
                let remote = dma
                    .remote()
                    .cloned()
                    .ok_or(QueueMemError::Dma(DmaFault::new(ring_base, ring_len)))?;
                let bytes = QUEUE_STATE_SIZE as u64 + ring_len + cq_len;
                let mut buf = vec![Block([0; 128]); bytes.div_ceil(128) as usize];
                let base = NonNull::new(buf.as_mut_ptr().cast::<u8>()).expect("a vector's buffer");
                // SAFETY: offsets inside `buf`, which `bytes` covers.
                let (ring, cq) = unsafe {
                    (
                        base.add(QUEUE_STATE_SIZE),
                        base.add(QUEUE_STATE_SIZE + ring_len as usize),
                    )
                };
                (Backing::Remote { _buf: buf, remote }, base, cq, ring)
            }
            // (All mapped here, some of the function by message, and no
            // connection to send them on: cannot be, and is refused.)
            (ring, cq, state) => {
                let e = ring.and(cq).and(state).err();
                return Err(QueueMemError::Dma(e.unwrap_or(DmaFault::new(ring_base, ring_len))));
            }
        };
        let core = QueueCore {
            _mem: dma.clone(),
            backing,
            state: state.cast(),
            cq,
            slots,
            elem,
            order: q.ring_order,
            // SAFETY: `cq` is `16 << order` bytes of the mapping (or of
            // the local copy) that `_mem` (or `backing`) keeps alive, and
            // the driver accesses the entries' first two bytes atomically.
            cqw: unsafe { CqWriter::new(cq, q.ring_order, RingIndex(0)) }.map_err(|_| QueueMemError::Ring)?,
            cq_tail_published: RingIndex(0),
            cq_head_seen: std::cell::Cell::new(RingIndex(0)),
            intr: (q.flags & dataplane::abi::queue_flags::INTR != 0).then_some(q.intr_vector.get()),
            error: None,
            unsignalled: 0,
            ring_base,
            cq_base,
            state_base,
            lif,
            qtype: QueueType::from_raw(q.qtype).unwrap_or(QueueType::Admin),
            qindex,
            cq_full_stalls: 0,
            detached: false,
            put_off: false,
        };
        core.state().reset(q.start_index.get());
        if let Backing::Remote { remote, .. } = &core.backing {
            // The whole block, as the device initialises it. Posted: an
            // admin command's completion is written behind it (the client
            // applies them in order); a mailbox command's `done` waits
            // for a fence (`Device::devcmd_finish`).
            // SAFETY: the copy's state block is QUEUE_STATE_SIZE bytes.
            let block = unsafe { std::slice::from_raw_parts(core.state.as_ptr().cast::<u8>(), QUEUE_STATE_SIZE) };
            remote.write(state_base, block, false).map_err(QueueMemError::Dma)?;
        }
        Ok(core)
    }

    /// Whether the queue's memory is reached by message.
    pub fn is_remote(&self) -> bool {
        matches!(self.backing, Backing::Remote { .. })
    }

    /// Memory reached by message failed (the client is gone, or refused):
    /// the queue stops, and writes nothing more.
    fn remote_failed(&mut self, e: DmaFault) {
        tracing::debug!(lif = self.lif, "queue memory by message: {e}");
        if self.error.is_none() {
            self.error = Some((CompStatus::DmaFault, self.cqw.tail()));
        }
        self.detached = true;
    }

    /// Read the driver's half of the state block (outgoing tail, cq head,
    /// consumer flag) into the local copy. Nothing for shared memory.
    pub fn pull_state(&mut self) {
        let Backing::Remote { remote, .. } = &self.backing else {
            return;
        };
        if self.detached {
            return;
        }
        let mut half = [0u8; 128];
        match remote.read(self.state_base + 128, &mut half) {
            Ok(()) => {
                let word = |at: usize| u32::from_ne_bytes(half[at..at + 4].try_into().expect("4 bytes"));
                let st = self.state();
                st.outgoing_tail.store(word(0), Ordering::Release);
                st.cq_head.store(word(4), Ordering::Release);
                st.consumer_flag.store(word(64), Ordering::Release);
            }
            // Put off: the last look stands (the driver only moves on).
            Err(e) if e.busy => self.put_off = true,
            Err(e) => self.remote_failed(e),
        }
    }

    /// Write the device's half of the state block (head, cq tail, fetch
    /// flag, status) from the local copy. Nothing for shared memory.
    pub fn push_state(&mut self) {
        let Backing::Remote { remote, .. } = &self.backing else {
            return;
        };
        if self.detached {
            return;
        }
        // SAFETY: the first 128 bytes of the copy's state block; the
        // device half is written only by this thread, under the lock.
        let half = unsafe { std::slice::from_raw_parts(self.state.as_ptr().cast::<u8>(), 128) }.to_vec();
        // Waited for: the driver's completions and this state took effect
        // before an interrupt says to look.
        if let Err(e) = remote.write(self.state_base, &half, true) {
            self.remote_failed(e);
        }
    }

    /// Read ring slots `[from, from + n)` (free-running indices) into the
    /// local copy. Nothing for shared memory. False if the read was put
    /// off (`put_off` is set; the copy does not hold them, nothing may be
    /// fetched this time).
    pub fn pull_slots(&mut self, from: RingIndex, n: u32) -> bool {
        let Backing::Remote { remote, .. } = &self.backing else {
            return true;
        };
        if self.detached || n == 0 {
            return true;
        }
        let size = self.size();
        let n = n.min(size);
        let first = from.slot(size - 1) as u32;
        // At most two runs: to the end of the ring, and from its start.
        let run1 = n.min(size - first);
        let runs = [(first, run1), (0, n - run1)];
        let remote = remote.clone();
        for (at, len) in runs {
            if len == 0 {
                continue;
            }
            let off = at as usize * self.elem;
            let bytes = len as usize * self.elem;
            // SAFETY: slots `at..at+len` lie inside the copy's ring
            // (at + len <= size); only this thread touches the copy.
            let dst = unsafe { std::slice::from_raw_parts_mut(self.slots.as_ptr().add(off), bytes) };
            match remote.read(self.ring_base + off as u64, dst) {
                Ok(()) => {}
                Err(e) if e.busy => {
                    // Put off. (Not by moving the copy's tail back to
                    // `from`: the ring takes a tail that moves back for
                    // a driver's error, and the queue stopped.)
                    self.put_off = true;
                    return false;
                }
                Err(e) => {
                    self.remote_failed(e);
                    return true;
                }
            }
        }
        true
    }

    /// The shared state block.
    pub fn state(&self) -> &SharedQueueState {
        // SAFETY: `state` points to QUEUE_STATE_SIZE bytes of a mapping held
        // by `self._mem` (checked by host_range, 128-byte aligned because
        // the IOVA is and mappings are page aligned); every field is atomic.
        unsafe { self.state.as_ref() }
    }

    /// Attach the consumer half of the descriptor ring.
    pub fn consumer<T: RingElem>(&self) -> Result<Consumer<'static, T>, QueueMemError> {
        if std::mem::size_of::<T>() != self.elem {
            return Err(QueueMemError::Ring);
        }
        // SAFETY: the state block and slots (size * elem bytes, checked at
        // creation) lie in mappings `self._mem` keeps alive or in the local
        // copy `self.backing` owns; the owner of this QueueCore stores the
        // consumer next to it and drops the consumer first (field order),
        // so 'static never outlives the memory. The device is the only
        // consumer of this ring.
        unsafe { Consumer::attach(self.state.cast(), self.slots.cast(), self.order) }.map_err(|_| QueueMemError::Ring)
    }

    /// Ring size.
    pub fn size(&self) -> u32 {
        1 << self.order
    }

    /// The consumer flag the driver set, read after a full fence that
    /// orders it after the completions just written (by message: read
    /// after they were written).
    pub fn consumer_flag(&mut self) -> ConsumerFlag {
        self.pull_state();
        self.state().consumer_after_post()
    }

    /// Mark the ring's fetch engine permanently active (RX rings: the
    /// device reads `outgoing_tail` whenever it needs a buffer, so the
    /// driver never needs to ring).
    pub fn set_always_fetching(&mut self) {
        self.state()
            .fetch_flag
            .store(FetchFlag::Active.raw().to_le(), Ordering::Release);
        self.push_state();
    }

    /// Whether the queue's memory intersects `[iova, iova + len)`.
    pub fn uses(&self, iova: u64, len: u64) -> bool {
        let size = u64::from(self.size());
        let overlaps = |base: u64, n: u64| base < iova.saturating_add(len) && iova < base.saturating_add(n);
        overlaps(self.ring_base, size * self.elem as u64)
            || overlaps(self.cq_base, size * 16)
            || overlaps(self.state_base, QUEUE_STATE_SIZE as u64)
    }
}

/// A completion with the given fields (color set by `post`).
pub fn completion(status: CompStatus, lif: u16, index: RingIndex, len: u16, pkt_flags: u16, now: Nanos) -> Completion {
    Completion {
        status: status.raw(),
        flags: 0,
        lif: lif.into(),
        index: index.get().into(),
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
    pub cache_index: RingIndex,
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
    pub write_back_pending: Option<RingIndex>,
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
        let core = QueueCore::new(dma, q, lif, qindex, std::mem::size_of::<T>())?;
        let ring = core.consumer::<T>()?;
        Ok(DeviceQueue {
            ring,
            core,
            doorbell_seen: 0,
            active: false,
            cache: std::collections::VecDeque::new(),
            cache_index: RingIndex(0),
            pre: std::collections::VecDeque::new(),
            inject_bad: false,
            stalled_until: 0,
            write_back_pending: None,
        })
    }

    /// Fetch up to `out.len()` descriptors (by message: the driver's tail
    /// and those descriptors are read first).
    pub fn fetch(&mut self, out: &mut [T]) -> Result<usize, dataplane::ring::RingError> {
        if self.core.is_remote() {
            self.core.pull_state();
            let head = self.ring.head();
            let tail = RingIndex(u32::from_le(self.core.state().outgoing_tail.load(Ordering::Acquire)));
            let avail = (tail - head).min(self.core.size()).min(out.len() as u32);
            if !self.core.pull_slots(head, avail) || self.core.detached {
                return Ok(0);
            }
        }
        self.ring.fetch_burst(out)
    }

    /// Give the driver back the slots before `index`.
    pub fn write_back_to(&mut self, index: RingIndex) {
        if self.ring.write_back_to(index) {
            self.core.push_state();
        }
    }

    /// The descriptors before `index` are done: their slots go back to
    /// the driver now if nothing fetched is left in the cache, else with
    /// [`DeviceQueue::flush_write_back`] at the end of the pass (not once
    /// a frame: the head shares a line with what the driver polls).
    pub fn done_to(&mut self, index: RingIndex) {
        if self.cache.is_empty() {
            self.write_back_to(index);
            self.write_back_pending = None;
        } else {
            self.write_back_pending = Some(index);
        }
    }

    /// Write back what [`DeviceQueue::done_to`] put off (once a pass).
    pub fn flush_write_back(&mut self) {
        if let Some(i) = self.write_back_pending.take().filter(|_| !self.core.detached) {
            self.write_back_to(i);
        }
    }

    /// Give the driver back every slot fetched.
    pub fn write_back(&mut self) {
        let h = self.ring.head();
        self.write_back_to(h);
    }

    /// Mark the fetch engine active (the driver may skip doorbells).
    pub fn set_fetching(&mut self) {
        self.ring.set_fetching();
        self.core.push_state();
    }

    /// Go idle unless the driver published more meanwhile (the fetch
    /// flag's protocol; by message: the flag is written, then the tail
    /// read, each a message, in that order).
    pub fn try_idle(&mut self) -> Result<bool, dataplane::ring::RingError> {
        if self.core.is_remote() {
            self.core
                .state()
                .fetch_flag
                .store(FetchFlag::Idle.raw().to_le(), Ordering::Release);
            self.core.push_state();
            self.core.put_off = false;
            self.core.pull_state();
            if self.core.put_off {
                // The tail could not be read after the flag: going idle
                // could miss descriptors published meanwhile (the driver
                // rings no doorbell for them). Stay active.
                self.ring.set_fetching();
                self.core.push_state();
                return Ok(false);
            }
        }
        let r = self.ring.try_idle();
        if self.core.is_remote() && matches!(r, Ok(false)) {
            // Active again: say so.
            self.core.push_state();
        }
        r
    }

    /// Descriptors the driver has published and the device not fetched.
    pub fn available(&mut self) -> Result<u32, dataplane::ring::RingError> {
        self.core.pull_state();
        self.ring.available()
    }

    /// Ring index of the next descriptor to process: the first cached one,
    /// or the fetch cursor when nothing is cached.
    pub fn next_index(&self) -> RingIndex {
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
