//! The driver's side of the completion ring: the reader is
//! `dataplane::ring::CqReader` (the one implementation of the protocol,
//! model-checked with the device's writer); this adds its construction
//! over the driver's DMA memory and the publication of `cq_head`.

use dataplane::ring::{CqReader, RingError, SharedQueueState};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;

/// A reader of the completion ring at `base`.
///
/// # Safety
/// `base` must be `16 << order` bytes of DMA memory that outlives the
/// reader (the queue keeps it mapped), 16-aligned, whose entries' first two
/// bytes are only accessed atomically (the device's writer does).
pub(crate) unsafe fn reader(base: NonNull<u8>, order: u8) -> Result<CqReader, RingError> {
    // SAFETY: forwarded from this function's contract.
    unsafe { CqReader::new(base, order) }
}

/// Tell the device how far we consumed, if that moved.
#[inline]
pub(crate) fn publish(cq: &mut CqReader, state: &SharedQueueState) {
    if let Some(head) = cq.to_publish() {
        state.cq_head.store(head.get().to_le(), Ordering::Release);
    }
}
