//! What every queue has besides its descriptor ring: the completion
//! reader, the shared state block (and its consumer flag), the doorbell
//! word, and the errors that name the queue.

use super::{CqReader, QueueError};
use crate::backend::BarMapping;
use crate::mem::DmaMemory;
use crate::pool::Pool;
use dataplane::abi::{doorbell_offset_in_page, CompStatus, ConsumerFlag, Doorbell, QueueType, DOORBELL_STRIDE};
use dataplane::ring::{RingError, RingIndex, SharedQueueState};
use std::ptr::NonNull;
use std::sync::Arc;

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
    pub(crate) fn ring(&self, outgoing_tail: RingIndex) {
        let v = Doorbell {
            qtype: self.qtype,
            qindex: self.qindex,
            outgoing_tail: outgoing_tail.get(),
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
        (self.state.cast(), self.slots, self.cq.order())
    }

    pub(super) fn device_error(&self, status: CompStatus, index: u32) -> QueueError {
        QueueError::Device {
            lif: self.lif,
            qtype: self.qtype,
            qindex: self.qindex,
            status,
            index,
        }
    }

    pub(super) fn ring_error(&self, e: RingError) -> QueueError {
        QueueError::Ring {
            lif: self.lif,
            qtype: self.qtype,
            qindex: self.qindex,
            source: e,
        }
    }

    pub(super) fn lied(&self, what: &'static str, value: impl Into<u64>, allowed: String) -> QueueError {
        QueueError::DeviceLied {
            lif: self.lif,
            qtype: self.qtype,
            qindex: self.qindex,
            what,
            value: value.into(),
            allowed,
        }
    }

    pub(super) fn bad_completion(&self, why: impl ToString) -> QueueError {
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
    #[must_use = "true: a completion is already there; do not sleep"]
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
