//! TX and RX queues on the device: their memory, `QueueCreate`,
//! `QueueReset` after the device stopped one, and `QueueDestroy`.

use super::{Lif, Nic};
use crate::error::{DriverError, ErrorKind, OnDevice};
use crate::mem::{DmaBuf, DmaMemory, MemError};
use crate::pool::Pool;
use crate::queue::{attach, CqReader, DoorbellWord, QueueError, QueueParts, Recovery, RxQueue, TxQueue};
use dataplane::abi::{
    queue_flags, AdminCommand, QueueCreate, QueueRef, QueueType, QUEUE_STATE_ALIGN, QUEUE_STATE_SIZE,
};
use dataplane::ring::{Producer, RingElem, RingIndex};

impl Nic {
    /// A queue's memory, made and given to the device (`QueueCreate`),
    /// and its doorbell word.
    fn queue_parts(
        &mut self,
        lif: &Lif,
        qtype: QueueType,
        order: u8,
        vector: Option<u16>,
    ) -> Result<(QueueParts, QMem), DriverError> {
        if let Some(v) = vector {
            if usize::from(v) >= self.eventfds.len() {
                return Err(self.other(format!("vector {v}: the function has {}", self.eventfds.len())));
            }
        }
        let (ring, cq, state) = queue_memory(&self.mem, order, 16).on(&self.device)?;
        let q = QueueCreate {
            qtype: qtype.raw(),
            ring_order: order,
            flags: if vector.is_some() { queue_flags::INTR } else { 0 },
            intr_vector: vector.unwrap_or(0).into(),
            ring_base: ring.iova.into(),
            cq_base: cq.iova.into(),
            state_base: state.iova.into(),
            ..Default::default()
        };
        let c = self.admin(AdminCommand::QueueCreate(q), lif.id)?;
        // The index picks the doorbell word: checked before use (the
        // identity page's nqueues is at most 256, the doorbell slots a
        // page has per type).
        let qindex = self.below(
            "QueueCreate",
            "queue index",
            c.value.get(),
            self.identity.nqueues,
            "identity.nqueues",
        )?;
        let doorbell = DoorbellWord::new(self.doorbells.clone(), lif.slot, qtype, qindex).ok_or_else(|| {
            self.other(format!(
                "LIF {} (doorbell slot {}) {qtype:?} queue {qindex} has no doorbell in the {}-byte doorbell mapping (identity.nlifs {})",
                lif.id,
                lif.slot,
                self.doorbells.len(),
                self.identity.nlifs
            ))
        })?;
        let parts = QueueParts {
            // SAFETY: the completion ring lies in `mem`, which the parts
            // keep mapped (`_mem`), 16-aligned by `queue_memory`; its
            // entries' status words are accessed only atomically (this
            // reader and the device's writer).
            cq: unsafe { CqReader::new(cq.ptr, order) }.map_err(DriverError::ring(&self.device, "completion ring"))?,
            state: state.ptr.cast(),
            slots: ring.ptr,
            doorbell,
            lif: lif.id,
            qindex,
            qtype,
            vector,
            pool: None,
            _mem: self.mem.clone(),
        };
        Ok((parts, QMem { ring, state }))
    }

    /// Restart a TX queue the device stopped (an error completion, or a
    /// watchdog's verdict): what it sent is reclaimed, what it never sent
    /// goes back to `pool` and is reported as dropped, and the queue
    /// restarts empty through `QueueReset`, ready for `tx_burst`.
    pub fn reset_txq(&mut self, q: &mut TxQueue, pool: &mut Pool) -> Result<Recovery, DriverError> {
        let status = match q.error() {
            Some(QueueError::Device { status, .. }) => Some(*status),
            _ => None,
        };
        let (completed, dropped, start) = q.drain_for_reset(pool);
        let ring = self.restart_queue(&q.parts, start, "TX queue after reset")?;
        q.restarted(ring, dropped);
        Ok(Recovery {
            status,
            completed,
            dropped,
        })
    }

    /// Restart an RX queue the device stopped (a malformed buffer, a DMA
    /// fault): its posted buffers go back to `pool`, it restarts empty
    /// through `QueueReset`, and it is refilled. The frame it could not
    /// deliver is the device's `DropQueueError`.
    pub fn reset_rxq(&mut self, q: &mut RxQueue, pool: &mut Pool) -> Result<(), DriverError> {
        let start = q.drain_for_reset(pool);
        let ring = self.restart_queue(&q.parts, start, "RX queue after reset")?;
        q.restarted(ring);
        q.refill(pool)
            .map_err(|e| self.other(format!("refilling the reset RX queue: {e}")))?;
        Ok(())
    }

    /// `QueueReset` the queue behind `parts` at `start`, and attach a
    /// producer to its re-initialised ring.
    fn restart_queue<T: RingElem>(
        &mut self,
        parts: &QueueParts,
        start: RingIndex,
        what: &'static str,
    ) -> Result<Producer<'static, T>, DriverError> {
        let r = QueueRef {
            qtype: parts.qtype.raw(),
            qindex: parts.qindex.into(),
            start_index: start.get().into(),
            ..Default::default()
        };
        self.admin(AdminCommand::QueueReset(r), parts.lif)?;
        let (state, slots, order) = parts.memory();
        // SAFETY: the queue's own ring and state block, kept mapped by the
        // queue (`parts._mem`); the device re-initialised the block for
        // `start`.
        unsafe { attach(state, slots, order) }.map_err(|source| self.err(ErrorKind::Ring { what, source }))
    }

    /// Create a TX queue of `1 << order` descriptors on `lif`.
    pub fn create_txq(&mut self, lif: &Lif, order: u8, vector: Option<u16>) -> Result<TxQueue, DriverError> {
        let (parts, m) = self.queue_parts(lif, QueueType::Tx, order, vector)?;
        // SAFETY: the ring and state block are in `self.mem`, which the
        // queue keeps (`parts._mem`); the device initialised the block.
        let ring =
            unsafe { attach(m.state.ptr, m.ring.ptr, order) }.map_err(DriverError::ring(&self.device, "TX queue"))?;
        Ok(TxQueue::new(ring, parts))
    }

    /// Create an RX queue of `1 << order` descriptors on `lif` (empty:
    /// post buffers with [`RxQueue::refill`]).
    pub fn create_rxq(&mut self, lif: &Lif, order: u8, vector: Option<u16>) -> Result<RxQueue, DriverError> {
        let (parts, m) = self.queue_parts(lif, QueueType::Rx, order, vector)?;
        // SAFETY: as in create_txq.
        let ring =
            unsafe { attach(m.state.ptr, m.ring.ptr, order) }.map_err(DriverError::ring(&self.device, "RX queue"))?;
        Ok(RxQueue::new(ring, parts))
    }

    /// Destroy a queue on the device (its buffers are the caller's again).
    pub fn destroy_queue(&mut self, lif: u16, qtype: QueueType, qindex: u16) -> Result<(), DriverError> {
        let r = QueueRef {
            qtype: qtype.raw(),
            qindex: qindex.into(),
            ..Default::default()
        };
        self.admin(AdminCommand::QueueDestroy(r), lif).map(|_| ())
    }
}

/// A new queue's descriptor ring and state block (to attach its producer).
struct QMem {
    ring: DmaBuf,
    state: DmaBuf,
}

/// Ring (entries of `entry` bytes), completion ring, and state block.
pub(super) fn queue_memory(mem: &DmaMemory, order: u8, entry: u64) -> Result<(DmaBuf, DmaBuf, DmaBuf), MemError> {
    let size = 1u64 << order;
    let ring = mem.alloc(size * entry, 64)?;
    let cq = mem.alloc(size * 16, 64)?;
    let state = mem.alloc(QUEUE_STATE_SIZE as u64, QUEUE_STATE_ALIGN)?;
    Ok((ring, cq, state))
}
