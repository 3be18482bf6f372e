//! The transmit queue: `tx_burst`, reclaiming what the device sent, and
//! what a stopped queue held.

use super::{publish_cq_head, QueueError, QueueParts};
use crate::pool::{Mbuf, Pool};
use dataplane::abi::{CompStatus, Completion, TxDesc};
use dataplane::ring::{Producer, RingIndex};
use std::sync::atomic::Ordering;

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
            let slot = (head - n + i).slot(mask);
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
    #[must_use = "the frames sent and dropped are the recovery's report, the index is where the queue restarts"]
    pub(crate) fn drain_for_reset(&mut self, pool: &mut Pool) -> (u32, u32, RingIndex) {
        let completed = self.reclaim(pool).unwrap_or(0);
        let idx = self.ring.indices();
        let mask = self.ring.size() - 1;
        let mut dropped = 0;
        let mut slot = idx.head;
        while slot != idx.buffer_tail {
            let i = std::mem::replace(&mut self.shadow[slot.slot(mask)], u32::MAX);
            if let Some(m) = pool.reclaim_index(i, 0) {
                pool.free(m);
                dropped += 1;
            }
            slot += 1;
        }
        self.parts.cq.reset();
        (completed, dropped, idx.buffer_tail)
    }

    /// The device is gone or reset: frames it wrote back as sent are
    /// reclaimed; every other frame goes back to `pool`. Returns how many (frames whose fate is unknown:
    /// the caller counts them as dropped, the reason being why it gave
    /// up). The queue must not be used afterwards.
    #[must_use = "the frames given up are lost: count them as dropped"]
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
        let head = RingIndex(u32::from_le(st.head.load(Ordering::Acquire)));
        (self.ring.indices().outgoing_tail - head, head.get())
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
        while let Some(e) = self.parts.cq.next_entry() {
            let c = Completion::parse(&e).map_err(|why| self.parts.bad_completion(why))?;
            if c.status != CompStatus::Ok {
                let err = self.parts.device_error(c.status, c.index);
                self.error = Some(err.clone());
                return Err(err);
            }
        }
        let state = self.parts.state;
        // SAFETY: see QueueParts::state.
        publish_cq_head(&mut self.parts.cq, unsafe { state.as_ref() });
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
        let first = self.ring.indices().buffer_tail;
        self.descs.clear();
        for (k, m) in pkts.drain(..n).enumerate() {
            let len = m.len() as u16;
            self.descs.push(TxDesc::new(pool.iova(&m), len, self.flags));
            self.stats.bytes += u64::from(len);
            self.shadow[(first + k as u32).slot(mask)] = pool.index(m);
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
