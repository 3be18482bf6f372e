//! The driver's side of the completion ring: the reader is
//! `dataplane::ring::CqReader` (the one implementation of the protocol,
//! model-checked with the device's writer); this adds the publication of
//! `cq_head` in the queue state block.

use dataplane::ring::{CqReader, SharedQueueState};
use std::sync::atomic::Ordering;

/// Tell the device how far we consumed, if that moved.
#[inline]
pub(crate) fn publish(cq: &mut CqReader, state: &SharedQueueState) {
    if let Some(head) = cq.to_publish() {
        state.cq_head.store(head.get().to_le(), Ordering::Release);
    }
}
