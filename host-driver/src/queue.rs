//! TX and RX queues: the data path, batch-oriented and zero-copy in the
//! manner of DPDK's `tx_burst`/`rx_burst`.
//!
//! A queue is the producer half of a three-index descriptor ring
//! (`dataplane::ring`), the reader of its completion ring (color bits), a
//! doorbell word in the LIF's doorbell page, and the shared consumer flag.
//! Neither call blocks or locks; interrupt mode is built on top
//! ([`crate::irq::Waiter`]) with the consumer-flag protocol.

use crate::backend::BarMapping;
use crate::mem::DmaMemory;
use crate::pool::{Mbuf, Pool};
use dataplane::abi::{
    comp_flags, doorbell_offset_in_page, expected_color, CompStatus, Completion, CompletionInfo, ConsumerFlag,
    Doorbell, QueueType, RxDesc, TxDesc, DOORBELL_STRIDE,
};
use dataplane::ring::{Producer, RingElem, RingError, SharedQueueState};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

/// A queue that stopped: the device reported an error, or broke the ring
/// protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("LIF {lif} {qtype:?} queue {qindex} stopped by the device: {status:?} at descriptor {index}")]
    Device {
        lif: u16,
        qtype: QueueType,
        qindex: u16,
        status: CompStatus,
        index: u32,
    },
    #[error("LIF {lif} {qtype:?} queue {qindex}: {source}")]
    Ring {
        lif: u16,
        qtype: QueueType,
        qindex: u16,
        source: RingError,
    },
    #[error("LIF {lif} {qtype:?} queue {qindex}: the device wrote a malformed completion ({why})")]
    BadCompletion {
        lif: u16,
        qtype: QueueType,
        qindex: u16,
        why: String,
    },
    /// A completion that decodes but names what the queue cannot have: a
    /// descriptor it never posted or already had back, a frame longer
    /// than its buffer. A buggy or hostile device; the queue stops.
    #[error("LIF {lif} {qtype:?} queue {qindex}: the device completed {what} {value}, outside the allowed {allowed}; a buggy or hostile device: the queue is stopped, nothing was read from the buffer (restart the queue: Nic::reset_rxq)")]
    DeviceLied {
        lif: u16,
        qtype: QueueType,
        qindex: u16,
        what: &'static str,
        value: u64,
        allowed: String,
    },
}

/// Reads a completion ring by color.
#[derive(Debug)]
pub(crate) struct CqReader {
    base: NonNull<u8>,
    pub(crate) order: u8,
    head: u32,
    /// Completions consumed since `cq_head` was last published.
    unpublished: u32,
}

impl CqReader {
    pub(crate) fn new(base: NonNull<u8>, order: u8) -> CqReader {
        CqReader {
            base,
            order,
            head: 0,
            unpublished: 0,
        }
    }

    /// Forget every completion and zero the ring, for a queue the device
    /// is about to restart (`QueueReset` expects a zeroed ring: colors
    /// start over).
    pub(crate) fn reset(&mut self) {
        let bytes = 16usize << self.order;
        for i in 0..(bytes / 2) {
            // SAFETY: the completion ring is `bytes` long, ours (kept
            // mapped by the queue), 16-aligned; the device writes nothing
            // to a stopped queue, and writes through 16-bit atomic stores
            // that these atomic stores cannot tear.
            unsafe { AtomicU16::from_ptr(self.base.as_ptr().add(i * 2).cast()).store(0, Ordering::Relaxed) };
        }
        self.head = 0;
        self.unpublished = 0;
    }

    /// Whether a completion is waiting (one acquire load).
    #[inline]
    pub(crate) fn ready(&self) -> bool {
        let (_, color) = self.status_and_color();
        color == expected_color(self.head, self.order)
    }

    #[inline]
    fn entry(&self) -> NonNull<u8> {
        let idx = (self.head & ((1 << self.order) - 1)) as usize;
        // SAFETY: the ring has 1 << order 16-byte entries (allocated so).
        unsafe { NonNull::new_unchecked(self.base.as_ptr().add(idx * 16)) }
    }

    #[inline]
    fn status_and_color(&self) -> (u8, bool) {
        // SAFETY: the entry is in the completion ring, 16-aligned; the
        // device stores status and flags last, as one 16-bit store.
        let sf = unsafe { AtomicU16::from_ptr(self.entry().as_ptr().cast()).load(Ordering::Acquire) };
        (sf as u8, (sf >> 8) as u8 & comp_flags::COLOR != 0)
    }

    /// The next completion's raw bytes, if there is one.
    #[inline]
    pub(crate) fn next(&mut self) -> Option<[u8; 16]> {
        let (status, color) = self.status_and_color();
        if color != expected_color(self.head, self.order) {
            return None;
        }
        let mut e = [0u8; 16];
        // SAFETY: 16 bytes of the entry; the Acquire load above ordered the
        // body (written before the color) before this read.
        unsafe { std::ptr::copy_nonoverlapping(self.entry().as_ptr(), e.as_mut_ptr(), 16) };
        e[0] = status;
        self.head = self.head.wrapping_add(1);
        self.unpublished += 1;
        Some(e)
    }

    /// Tell the device how far we consumed.
    #[inline]
    pub(crate) fn publish(&mut self, state: &SharedQueueState) {
        if self.unpublished > 0 {
            state.cq_head.store(self.head.to_le(), Ordering::Release);
            self.unpublished = 0;
        }
    }
}

/// A doorbell word in a LIF's doorbell page.
#[derive(Debug, Clone)]
pub(crate) struct DoorbellWord {
    page: Arc<BarMapping>,
    offset: usize,
    qtype: QueueType,
    qindex: u16,
}

impl DoorbellWord {
    /// The doorbell of queue `(qtype, qindex)` of the LIF in doorbell slot
    /// `slot`, if `page` (the function's doorbell pages) has it: `None`
    /// for the admin queue, a queue index without a doorbell slot (256 or
    /// more), or a LIF slot past the mapping. Checked here, once, so that
    /// ringing never writes outside the mapping.
    pub(crate) fn new(page: Arc<BarMapping>, slot: u16, qtype: QueueType, qindex: u16) -> Option<DoorbellWord> {
        let offset = u64::from(slot)
            .checked_mul(DOORBELL_STRIDE)?
            .checked_add(doorbell_offset_in_page(qtype, qindex)?)?;
        let offset = usize::try_from(offset).ok()?;
        if offset.checked_add(8)? > page.len() {
            return None;
        }
        Some(DoorbellWord {
            page,
            offset,
            qtype,
            qindex,
        })
    }

    #[inline]
    pub(crate) fn ring(&self, outgoing_tail: u32) {
        let v = Doorbell {
            qtype: self.qtype,
            qindex: self.qindex,
            outgoing_tail,
        }
        .encode();
        self.page.write64(self.offset, v);
    }
}

/// What every queue has besides its ring.
#[derive(Debug)]
pub(crate) struct QueueParts {
    pub(crate) cq: CqReader,
    pub(crate) state: NonNull<SharedQueueState>,
    /// The descriptor ring's slots (to attach again after a reset).
    pub(crate) slots: NonNull<u8>,
    pub(crate) doorbell: DoorbellWord,
    pub(crate) lif: u16,
    pub(crate) qindex: u16,
    pub(crate) qtype: QueueType,
    pub(crate) vector: Option<u16>,
    /// The pool whose buffers this queue carries (set on first use).
    pub(crate) pool: Option<u16>,
    /// Keeps the ring, completion ring and state block mapped.
    pub(crate) _mem: Arc<DmaMemory>,
}

impl QueueParts {
    #[inline]
    pub(crate) fn state(&self) -> &SharedQueueState {
        // SAFETY: the state block is in `_mem` (kept alive), 128-aligned,
        // all atomics.
        unsafe { self.state.as_ref() }
    }

    /// The state block, ring slots and order (to attach again after a
    /// reset).
    pub(crate) fn memory(&self) -> (NonNull<u8>, NonNull<u8>, u8) {
        (self.state.cast(), self.slots, self.cq.order)
    }

    fn device_error(&self, status: CompStatus, index: u32) -> QueueError {
        QueueError::Device {
            lif: self.lif,
            qtype: self.qtype,
            qindex: self.qindex,
            status,
            index,
        }
    }

    fn ring_error(&self, e: RingError) -> QueueError {
        QueueError::Ring {
            lif: self.lif,
            qtype: self.qtype,
            qindex: self.qindex,
            source: e,
        }
    }

    fn lied(&self, what: &'static str, value: impl Into<u64>, allowed: String) -> QueueError {
        QueueError::DeviceLied {
            lif: self.lif,
            qtype: self.qtype,
            qindex: self.qindex,
            what,
            value: value.into(),
            allowed,
        }
    }

    fn bad_completion(&self, why: impl ToString) -> QueueError {
        QueueError::BadCompletion {
            lif: self.lif,
            qtype: self.qtype,
            qindex: self.qindex,
            why: why.to_string(),
        }
    }

    /// A queue carries buffers of one pool only: slots remember buffer
    /// indices, which mean nothing in another pool.
    #[inline]
    pub(crate) fn bind_pool(&mut self, pool: &Pool) {
        match self.pool {
            None => self.pool = Some(pool.id()),
            Some(id) => assert_eq!(id, pool.id(), "a queue is used with the pool it started with"),
        }
    }

    /// Set the consumer flag.
    #[inline]
    pub(crate) fn set_consumer_flag(&self, flag: ConsumerFlag) {
        self.state().set_consumer(flag);
    }

    /// The interrupt-mode half of the consumer-flag protocol: mark ARMED,
    /// fence, and look at the completion ring once more. Returns true if a
    /// completion is already there (do not sleep). The device writes a
    /// completion, fences, and reads the flag, so one side always sees the
    /// other: no wakeup is lost.
    pub(crate) fn arm(&self) -> bool {
        self.state().arm_consumer(|| self.cq.ready())
    }

    /// Back to polling after a wakeup.
    pub(crate) fn disarm(&self) {
        self.set_consumer_flag(ConsumerFlag::Polling);
    }
}

// SAFETY: a queue's raw pointers refer to DMA memory it keeps alive; a
// queue is used by one thread at a time (it is not Sync).
unsafe impl Send for QueueParts {}

/// Counters a TX queue keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxStats {
    pub packets: u64,
    pub bytes: u64,
    /// Doorbells rung and doorbells the fetch flag made unnecessary.
    pub doorbells: u64,
    pub doorbells_suppressed: u64,
    /// Bursts that found the ring full (backpressure, not loss).
    pub ring_full: u64,
    /// Times the queue was reset after the device stopped it, and frames
    /// it held that the device never sent (dropped, the reason being the
    /// error that stopped the queue).
    pub recoveries: u64,
    pub dropped_by_reset: u64,
}

/// What recovering a stopped queue did with the frames it held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// Why the device stopped the queue.
    pub status: Option<CompStatus>,
    /// Frames the device had sent before it stopped.
    pub completed: u32,
    /// Frames it never sent: their buffers went back to the pool.
    pub dropped: u32,
}

/// A transmit queue.
#[derive(Debug)]
pub struct TxQueue {
    ring: Producer<'static, TxDesc>,
    pub(crate) parts: QueueParts,
    /// The buffer in each slot, returned to the pool on reclaim.
    shadow: Vec<u32>,
    descs: Vec<TxDesc>,
    flags: u16,
    stats: TxStats,
    error: Option<QueueError>,
}

impl TxQueue {
    pub(crate) fn new(ring: Producer<'static, TxDesc>, parts: QueueParts) -> TxQueue {
        let size = ring.size() as usize;
        TxQueue {
            ring,
            parts,
            shadow: vec![u32::MAX; size],
            descs: Vec::with_capacity(64),
            flags: 0,
            stats: TxStats::default(),
            error: None,
        }
    }

    /// Give the device's reclaimed slots' buffers back to `pool`.
    fn reclaim(&mut self, pool: &mut Pool) -> Result<u32, QueueError> {
        let n = self.ring.reclaim().map_err(|e| self.parts.ring_error(e))?;
        let head = self.ring.indices().head;
        let mask = self.ring.size() - 1;
        for i in 0..n {
            // The ring checked the head write-back (within what was
            // published), so these slots hold buffers; an empty one is
            // skipped rather than trusted.
            let slot = (head.wrapping_sub(n).wrapping_add(i) & mask) as usize;
            let idx = std::mem::replace(&mut self.shadow[slot], u32::MAX);
            if let Some(m) = pool.reclaim_index(idx, 0) {
                pool.free(m);
            }
        }
        Ok(n)
    }

    /// The device stopped this queue: take back what it sent (head write-
    /// back), return what it never sent to the pool, and forget the
    /// completions. The caller then restarts it ([`crate::nic::Nic::reset_txq`]).
    pub(crate) fn drain_for_reset(&mut self, pool: &mut Pool) -> (u32, u32, u32) {
        let completed = self.reclaim(pool).unwrap_or(0);
        let idx = self.ring.indices();
        let mask = self.ring.size() - 1;
        let mut dropped = 0;
        let mut slot = idx.head;
        while slot != idx.buffer_tail {
            let i = std::mem::replace(&mut self.shadow[(slot & mask) as usize], u32::MAX);
            if let Some(m) = pool.reclaim_index(i, 0) {
                pool.free(m);
                dropped += 1;
            }
            slot = slot.wrapping_add(1);
        }
        self.parts.cq.reset();
        (completed, dropped, idx.buffer_tail)
    }

    /// The device is gone or reset: frames it wrote back as sent are
    /// reclaimed; every other frame goes back to `pool`. Returns how many (frames whose fate is unknown:
    /// the caller counts them as dropped, the reason being why it gave
    /// up). The queue must not be used afterwards.
    pub fn abandon(&mut self, pool: &mut Pool) -> u32 {
        // What the device wrote back as done was sent: take it back first.
        let _ = self.reclaim(pool);
        let mut n = 0;
        for s in self.shadow.iter_mut() {
            if let Some(m) = pool.reclaim_index(std::mem::replace(s, u32::MAX), 0) {
                pool.free(m);
                n += 1;
            }
        }
        n
    }

    /// Attach again to the restarted ring and clear the error.
    pub(crate) fn restarted(&mut self, ring: Producer<'static, TxDesc>, dropped: u32) {
        self.ring = ring;
        self.error = None;
        self.stats.recoveries += 1;
        self.stats.dropped_by_reset += u64::from(dropped);
    }

    /// The error that stopped the queue, if one did.
    pub fn error(&self) -> Option<&QueueError> {
        self.error.as_ref()
    }

    /// Frames handed to the device and not yet taken back, and the head the
    /// device last wrote back (for a watchdog: in flight and not moving is
    /// a stall).
    pub fn progress(&self) -> (u32, u32) {
        let st = self.parts.state();
        let head = u32::from_le(st.head.load(Ordering::Acquire));
        (self.ring.indices().outgoing_tail.wrapping_sub(head), head)
    }

    /// Ring the doorbell again with the published tail (a watchdog's first
    /// remedy for a stall: harmless if the device was only slow).
    pub fn kick(&mut self) {
        let tail = self.ring.indices().outgoing_tail;
        self.parts.doorbell.ring(tail);
        self.stats.doorbells += 1;
    }

    /// Read TX completions: only errors (and requested ones) come here.
    fn check_completions(&mut self) -> Result<(), QueueError> {
        while let Some(e) = self.parts.cq.next() {
            let c = Completion::parse(&e).map_err(|why| self.parts.bad_completion(why))?;
            if c.status != CompStatus::Ok {
                let err = self.parts.device_error(c.status, c.index);
                self.error = Some(err.clone());
                return Err(err);
            }
        }
        let state = self.parts.state;
        // SAFETY: see QueueParts::state.
        self.parts.cq.publish(unsafe { state.as_ref() });
        Ok(())
    }

    /// Send the frames at the front of `pkts` (as many as fit); they leave
    /// `pkts`, and their buffers return to `pool` once the device is done.
    /// Returns how many were sent. A queue the device stopped returns its
    /// error, and keeps doing so.
    pub fn tx_burst(&mut self, pool: &mut Pool, pkts: &mut Vec<Mbuf>) -> Result<usize, QueueError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.parts.bind_pool(pool);
        if self.parts.cq.ready() {
            self.check_completions()?;
        }
        if (self.ring.free() as usize) < pkts.len() {
            self.reclaim(pool)?;
        }
        let n = pkts.len().min(self.ring.free() as usize);
        if n == 0 {
            if !pkts.is_empty() {
                self.stats.ring_full += 1;
            }
            return Ok(0);
        }
        let mask = self.ring.size() - 1;
        let mut slot = self.ring.indices().buffer_tail;
        self.descs.clear();
        for m in pkts.drain(..n) {
            let len = m.len() as u16;
            self.descs.push(TxDesc::new(pool.iova(&m), len, self.flags));
            self.stats.bytes += u64::from(len);
            self.shadow[(slot & mask) as usize] = pool.index(m);
            slot = slot.wrapping_add(1);
        }
        let filled = self.ring.fill_bulk(&self.descs);
        debug_assert!(filled, "free() said they fit");
        self.stats.packets += n as u64;
        self.doorbell();
        Ok(n)
    }

    #[inline]
    fn doorbell(&mut self) {
        if let Some(tail) = self.ring.doorbell() {
            self.parts.doorbell.ring(tail);
        }
        let s = self.ring.stats();
        self.stats.doorbells = s.doorbells;
        self.stats.doorbells_suppressed = s.doorbells_suppressed;
    }

    /// Reclaim everything the device has finished (call when idle).
    pub fn flush(&mut self, pool: &mut Pool) -> Result<u32, QueueError> {
        self.parts.bind_pool(pool);
        self.check_completions()?;
        self.reclaim(pool)
    }

    /// Reclaim what the device finished and say how many frames the ring
    /// takes now.
    pub fn room(&mut self, pool: &mut Pool) -> Result<u32, QueueError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.parts.bind_pool(pool);
        self.reclaim(pool)?;
        Ok(self.ring.free())
    }

    /// As [`TxQueue::room`], reclaiming only when the ring has room for
    /// fewer than `want` frames (a reclaim reads the head the device
    /// writes: a cache line it owns).
    pub fn room_for(&mut self, pool: &mut Pool, want: u32) -> Result<u32, QueueError> {
        if self.error.is_none() && self.ring.free() >= want {
            return Ok(self.ring.free());
        }
        self.room(pool)
    }

    /// Frames posted and not yet reclaimed.
    pub fn in_flight(&self) -> u32 {
        self.ring.in_flight()
    }

    /// Counters.
    pub fn stats(&self) -> TxStats {
        self.stats
    }

    /// The LIF and queue index.
    pub fn id(&self) -> (u16, u16) {
        (self.parts.lif, self.parts.qindex)
    }

    /// Set TX descriptor flags for every frame (e.g. checksum offload).
    pub fn set_flags(&mut self, flags: u16) {
        self.flags = flags;
    }
}

/// Counters an RX queue keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxStats {
    pub packets: u64,
    pub bytes: u64,
    /// Frames the device truncated to the buffer (counted by the device as
    /// `DropTooLong`; the driver frees them).
    pub truncated: u64,
    /// Refills short of buffers (the pool was empty).
    pub refill_short: u64,
    /// Times the queue was reset after the device stopped it.
    pub recoveries: u64,
}

/// A receive queue.
#[derive(Debug)]
pub struct RxQueue {
    ring: Producer<'static, RxDesc>,
    pub(crate) parts: QueueParts,
    shadow: Vec<u32>,
    descs: Vec<RxDesc>,
    stats: RxStats,
    error: Option<QueueError>,
}

impl RxQueue {
    pub(crate) fn new(ring: Producer<'static, RxDesc>, parts: QueueParts) -> RxQueue {
        let size = ring.size() as usize;
        RxQueue {
            ring,
            parts,
            shadow: vec![u32::MAX; size],
            descs: Vec::with_capacity(size),
            stats: RxStats::default(),
            error: None,
        }
    }

    /// Post as many empty buffers as the ring takes.
    pub fn refill(&mut self, pool: &mut Pool) -> Result<u32, QueueError> {
        self.parts.bind_pool(pool);
        self.ring.reclaim().map_err(|e| self.parts.ring_error(e))?;
        let free = self.ring.free();
        if free == 0 {
            return Ok(0);
        }
        let mask = self.ring.size() - 1;
        let mut slot = self.ring.indices().buffer_tail;
        self.descs.clear();
        for _ in 0..free {
            // The head write-back may run ahead of the completions this
            // queue has read: a slot is reused only once its completion
            // has handed the buffer back (its shadow entry is empty).
            if self.shadow[(slot & mask) as usize] != u32::MAX {
                break;
            }
            let Some(m) = pool.alloc() else {
                self.stats.refill_short += 1;
                break;
            };
            self.descs
                .push(RxDesc::new(pool.iova(&m), crate::pool::BUF_SIZE as u16));
            self.shadow[(slot & mask) as usize] = pool.index(m);
            slot = slot.wrapping_add(1);
        }
        let n = self.descs.len() as u32;
        let filled = self.ring.fill_bulk(&self.descs);
        debug_assert!(filled);
        if let Some(tail) = self.ring.doorbell() {
            self.parts.doorbell.ring(tail);
        }
        Ok(n)
    }

    /// Receive up to `max` frames into `out`, then refill the ring from
    /// `pool`. Returns how many arrived.
    pub fn rx_burst(&mut self, pool: &mut Pool, out: &mut Vec<Mbuf>, max: usize) -> Result<usize, QueueError> {
        let got = self.rx_take(pool, out, max)?;
        self.refill(pool)?;
        Ok(got)
    }

    /// Receive up to `max` frames into `out` without refilling the ring (a
    /// queue about to be abandoned).
    pub fn rx_take(&mut self, pool: &mut Pool, out: &mut Vec<Mbuf>, max: usize) -> Result<usize, QueueError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.parts.bind_pool(pool);
        let mut got = 0;
        while got < max {
            let Some(e) = self.parts.cq.next() else { break };
            let c: CompletionInfo = match Completion::parse(&e) {
                Ok(c) => c,
                Err(why) => return Err(self.fail(self.parts.bad_completion(why))),
            };
            if c.status != CompStatus::Ok {
                return Err(self.fail(self.parts.device_error(c.status, c.index)));
            }
            let mut m = match self.take_completed(pool, &c) {
                Ok(m) => m,
                Err(e) => return Err(self.fail(e)),
            };
            m.set_rx_meta(crate::pool::RxMeta {
                timestamp: c.timestamp,
                src_lif: c.lif,
                meter: c.meter,
            });
            if c.truncated {
                self.stats.truncated += 1;
                pool.free(m);
                continue;
            }
            self.stats.packets += 1;
            self.stats.bytes += u64::from(c.len);
            out.push(m);
            got += 1;
        }
        let state = self.parts.state;
        // SAFETY: see QueueParts::state.
        self.parts.cq.publish(unsafe { state.as_ref() });
        Ok(got)
    }

    /// The buffer an Ok completion hands back, once the completion is
    /// shown to be possible: it names a descriptor this queue handed the
    /// device and has not had back (one of the last `size` before
    /// `outgoing_tail`, whose slot still holds its buffer), with a length
    /// that fits the buffer posted with it.
    ///
    /// Anything else is a buggy or hostile device, and stops the queue
    /// (the caller records the error) rather than being dropped and
    /// counted: a device that names buffers it was never given, or claims
    /// to have written past one, may have written anywhere in this ring's
    /// buffers, so nothing more it completes on the queue can be trusted
    /// until `QueueReset` starts it over (`Nic::reset_rxq`). No byte of a
    /// refused buffer is read. A well-named buffer with a bad length goes
    /// back to the pool; the rest stay posted and come back with the reset.
    fn take_completed(&mut self, pool: &mut Pool, c: &CompletionInfo) -> Result<Mbuf, QueueError> {
        let size = self.ring.size();
        let tail = self.ring.indices().outgoing_tail;
        let back = tail.wrapping_sub(c.index);
        if back == 0 || back > size {
            return Err(self.parts.lied(
                "descriptor index",
                c.index,
                format!("{}..{} (the descriptors posted)", tail.wrapping_sub(size), tail),
            ));
        }
        let slot = (c.index & (size - 1)) as usize;
        let idx = std::mem::replace(&mut self.shadow[slot], u32::MAX);
        if idx == u32::MAX {
            return Err(self.parts.lied(
                "descriptor index",
                c.index,
                "a descriptor not yet completed (this one was already)".into(),
            ));
        }
        let buf = crate::pool::BUF_SIZE;
        if u32::from(c.len) > buf {
            // The device said it is done with the buffer: it goes back.
            if let Some(m) = pool.reclaim_index(idx, 0) {
                pool.free(m);
            }
            return Err(self
                .parts
                .lied("frame length", c.len, format!("0..={buf} (the buffer posted)")));
        }
        // `idx` is what refill stored: a buffer of this pool (bind_pool).
        pool.reclaim_index(idx, c.len).ok_or_else(|| {
            self.parts
                .bad_completion(format!("slot {slot} holds {idx}, not a buffer of the queue's pool"))
        })
    }

    fn fail(&mut self, e: QueueError) -> QueueError {
        self.error = Some(e.clone());
        e
    }

    /// The error that stopped the queue, if one did.
    pub fn error(&self) -> Option<&QueueError> {
        self.error.as_ref()
    }

    /// The device stopped this queue: every posted buffer goes back to the
    /// pool (they hold no frames: the device counted the one it could not
    /// deliver), and the completions are forgotten. Returns the index to
    /// restart at.
    pub(crate) fn drain_for_reset(&mut self, pool: &mut Pool) -> u32 {
        self.release_buffers(pool);
        self.parts.cq.reset();
        self.ring.indices().buffer_tail
    }

    /// Attach again to the restarted ring and clear the error.
    pub(crate) fn restarted(&mut self, ring: Producer<'static, RxDesc>) {
        self.ring = ring;
        self.error = None;
        self.stats.recoveries += 1;
    }

    /// Whether a completion is waiting.
    pub fn ready(&self) -> bool {
        self.parts.cq.ready()
    }

    /// Counters.
    pub fn stats(&self) -> RxStats {
        self.stats
    }

    /// The LIF and queue index.
    pub fn id(&self) -> (u16, u16) {
        (self.parts.lif, self.parts.qindex)
    }

    /// The MSI-X vector this queue interrupts on.
    pub fn vector(&self) -> Option<u16> {
        self.parts.vector
    }

    /// Poll mode: tell the device not to interrupt for this queue.
    pub fn set_polling(&self) {
        self.parts.set_consumer_flag(ConsumerFlag::Polling);
    }

    /// Return every posted buffer to the pool (the queue must be destroyed
    /// or the device reset first: those buffers are no longer the
    /// device's).
    pub fn release_buffers(&mut self, pool: &mut Pool) {
        for s in self.shadow.iter_mut() {
            if let Some(m) = pool.reclaim_index(std::mem::replace(s, u32::MAX), 0) {
                pool.free(m);
            }
        }
    }
}

/// Attach a producer to a ring in DMA memory.
///
/// # Safety
/// `state` and `ring` point into memory kept alive for as long as the
/// producer lives (the queue holds an `Arc` to it), laid out per the ABI,
/// with the device as the only consumer.
pub(crate) unsafe fn attach<T: RingElem>(
    state: NonNull<u8>,
    ring: NonNull<u8>,
    order: u8,
) -> Result<Producer<'static, T>, RingError> {
    // SAFETY: forwarded.
    unsafe { Producer::attach(state, ring.cast(), order) }
}
