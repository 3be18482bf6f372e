//! TX and RX queues: the data path, batch-oriented and zero-copy in the
//! manner of DPDK's `tx_burst`/`rx_burst`.
//!
//! A queue is the producer half of a three-index descriptor ring
//! (`dataplane::ring`), the reader of its completion ring (color bits), a
//! doorbell word in the LIF's doorbell page, and the shared consumer flag.
//! Neither call blocks or locks; interrupt mode is built on top
//! ([`crate::irq::Waiter`]) with the consumer-flag protocol.
//!
//! - `cq`: the completion ring reader (color bits);
//! - `parts`: what every queue has besides its ring: the doorbell word,
//!   the state block, the consumer flag;
//! - `tx`: [`TxQueue`], `tx_burst` and reclaiming what the device sent;
//! - `rx`: [`RxQueue`], `rx_burst`, refilling, and checking each
//!   completion against what was posted.

mod cq;
mod parts;
mod rx;
mod tx;

pub(crate) use cq::publish as publish_cq_head;
pub(crate) use dataplane::ring::CqReader;
pub(crate) use parts::{DoorbellWord, QueueParts};
pub use rx::{RxQueue, RxStats};
pub use tx::{Recovery, TxQueue, TxStats};

use dataplane::abi::{CompStatus, QueueType};
use dataplane::ring::{Producer, RingElem, RingError};
use std::ptr::NonNull;

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
