//! The receive queue: `rx_burst`, refilling the ring, and checking every
//! completion against what was posted before a byte is read.

use super::{publish_cq_head, QueueError, QueueParts};
use crate::pool::{Mbuf, Pool};
use dataplane::abi::{CompStatus, Completion, CompletionInfo, ConsumerFlag, RxDesc};
use dataplane::ring::{Producer, RingIndex};

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

    /// Buffers posted that the device had not written back at the last
    /// refill or receive (the ring's occupancy as the driver knows it).
    pub fn in_flight(&self) -> u32 {
        self.ring.in_flight()
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
        let first = self.ring.indices().buffer_tail;
        self.descs.clear();
        for k in 0..free {
            let slot = first + k;
            // The head write-back may run ahead of the completions this
            // queue has read: a slot is reused only once its completion
            // has handed the buffer back (its shadow entry is empty).
            if self.shadow[slot.slot(mask)] != u32::MAX {
                break;
            }
            let Some(m) = pool.alloc() else {
                self.stats.refill_short += 1;
                break;
            };
            self.descs
                .push(RxDesc::new(pool.iova(&m), crate::pool::BUF_SIZE as u16));
            self.shadow[slot.slot(mask)] = pool.index(m);
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
            let Some(e) = self.parts.cq.next_entry() else { break };
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
        publish_cq_head(&mut self.parts.cq, unsafe { state.as_ref() });
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
        let back = tail - RingIndex(c.index);
        if back == 0 || back > size {
            return Err(self.parts.lied(
                "descriptor index",
                c.index,
                format!("{}..{} (the descriptors posted)", tail - size, tail),
            ));
        }
        let slot = RingIndex(c.index).slot(size - 1);
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
    #[must_use = "the index the queue restarts at"]
    pub(crate) fn drain_for_reset(&mut self, pool: &mut Pool) -> RingIndex {
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
