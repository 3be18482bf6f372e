//! Reading a completion ring by its color bits.

use dataplane::abi::{comp_flags, expected_color};
use dataplane::ring::SharedQueueState;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

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
    #[must_use = "a completion taken is gone from the ring"]
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
