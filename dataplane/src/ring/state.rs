//! The queue state block both ends share, as atomics: who writes which
//! word, and the doorbell and consumer-flag halves of the protocols.

use super::*;

/// Reserved words of the shared block. Atomics, never accessed, because
/// the other side may write them: a `&SharedQueueState` must not claim
/// that any of its bytes are immutable.
pub(super) type Reserved<const N: usize> = [AtomicU32; N];

pub(super) fn reserved<const N: usize>() -> Reserved<N> {
    core::array::from_fn(|_| AtomicU32::new(0))
}

/// The atomic view of [`QueueStateBlock`]: same bytes, accessed with atomic
/// loads and stores. Each side writes only its own cache lines.
#[repr(C, align(128))]
#[derive(Debug)]
pub struct SharedQueueState {
    /// Written by the device: head write-back.
    pub head: AtomicU32,
    /// Written by the device: completions written.
    pub cq_tail: AtomicU32,
    pub(super) rsvd_device_hot: Reserved<14>,
    /// Written by the device: [`FetchFlag::Idle`] or [`FetchFlag::Active`].
    pub fetch_flag: AtomicU32,
    /// Written by the device: 0, or the [`crate::abi::CompStatus`] that
    /// stopped the queue.
    pub qstatus: AtomicU32,
    /// Written by the device: index of the descriptor that stopped the queue.
    pub error_index: AtomicU32,
    pub(super) rsvd_device_cold: Reserved<13>,
    /// Written by the driver: the published outgoing tail.
    pub outgoing_tail: AtomicU32,
    /// Written by the driver: completions consumed.
    pub cq_head: AtomicU32,
    pub(super) rsvd_driver_hot: Reserved<14>,
    /// Written by the driver: consumer flag (see [`crate::abi`]).
    pub consumer_flag: AtomicU32,
    pub(super) rsvd_driver_cold: Reserved<15>,
}

#[cfg(not(loom))]
mod layout_check {
    use super::*;
    use core::mem::{align_of, offset_of, size_of};
    const _: () = assert!(size_of::<SharedQueueState>() == size_of::<QueueStateBlock>());
    const _: () = assert!(align_of::<SharedQueueState>() as u64 == crate::abi::QUEUE_STATE_ALIGN);
    const _: () = assert!(offset_of!(SharedQueueState, head) == offset_of!(QueueStateBlock, head));
    const _: () = assert!(offset_of!(SharedQueueState, fetch_flag) == offset_of!(QueueStateBlock, fetch_flag));
    const _: () = assert!(offset_of!(SharedQueueState, qstatus) == offset_of!(QueueStateBlock, qstatus));
    const _: () = assert!(offset_of!(SharedQueueState, error_index) == offset_of!(QueueStateBlock, error_index));
    const _: () = assert!(offset_of!(SharedQueueState, cq_tail) == offset_of!(QueueStateBlock, cq_tail));
    const _: () = assert!(offset_of!(SharedQueueState, outgoing_tail) == offset_of!(QueueStateBlock, outgoing_tail));
    const _: () = assert!(offset_of!(SharedQueueState, consumer_flag) == offset_of!(QueueStateBlock, consumer_flag));
    const _: () = assert!(offset_of!(SharedQueueState, cq_head) == offset_of!(QueueStateBlock, cq_head));
}

impl SharedQueueState {
    /// A fresh block for a queue starting at free-running index `start`.
    pub fn new(start: u32) -> Self {
        SharedQueueState {
            head: AtomicU32::new(start.to_le()),
            cq_tail: AtomicU32::new(0),
            rsvd_device_hot: reserved(),
            fetch_flag: AtomicU32::new(FetchFlag::Idle.raw().to_le()),
            qstatus: AtomicU32::new(0),
            error_index: AtomicU32::new(0),
            rsvd_device_cold: reserved(),
            outgoing_tail: AtomicU32::new(start.to_le()),
            cq_head: AtomicU32::new(0),
            rsvd_driver_hot: reserved(),
            consumer_flag: AtomicU32::new(0),
            rsvd_driver_cold: reserved(),
        }
    }

    /// Re-initialise a block in place (queue create or reset), with no
    /// producer or consumer attached.
    pub fn reset(&self, start: u32) {
        for a in [
            &self.qstatus,
            &self.error_index,
            &self.cq_tail,
            &self.consumer_flag,
            &self.cq_head,
        ] {
            store_le(a, 0, Ordering::Relaxed);
        }
        store_le(&self.fetch_flag, FetchFlag::Idle.raw(), Ordering::Relaxed);
        store_le(&self.head, start, Ordering::Relaxed);
        store_le(&self.outgoing_tail, start, Ordering::Release);
    }

    /// Set the consumer flag.
    pub fn set_consumer(&self, flag: ConsumerFlag) {
        store_le(&self.consumer_flag, flag.raw(), Ordering::Relaxed);
    }

    /// The driver's half of the consumer-flag protocol: announce the
    /// consumer is about to sleep ([`ConsumerFlag::Armed`]), then
    /// look once more with `ready` (is a completion there?). Returns its
    /// answer: true means work is there, do not sleep.
    ///
    /// With [`SharedQueueState::consumer_after_post`] this is a
    /// store-buffering pair: each side stores (the flag; the completion),
    /// issues a SeqCst fence, then loads the other's store, so at least one
    /// side sees the other: the driver the completion, or the device ARMED
    /// (and it interrupts). No wakeup is lost (`ring::loom_model`).
    pub fn arm_consumer(&self, ready: impl FnOnce() -> bool) -> bool {
        self.set_consumer(ConsumerFlag::Armed);
        fence(Ordering::SeqCst);
        ready()
    }

    /// The device's half: after publishing completions, what the consumer
    /// is doing (decides whether to interrupt).
    pub fn consumer_after_post(&self) -> ConsumerFlag {
        fence(Ordering::SeqCst);
        ConsumerFlag::from_word(load_le(&self.consumer_flag, Ordering::Relaxed))
    }

    ///
    /// # Safety
    /// `ptr` must point to [`crate::abi::QUEUE_STATE_SIZE`] bytes that stay
    /// mapped and writable for `'a`, and that are only ever accessed with
    /// atomic operations meanwhile (by any process).
    #[cfg(not(loom))]
    pub unsafe fn from_ptr<'a>(ptr: NonNull<u8>) -> Result<&'a SharedQueueState, RingError> {
        let addr = ptr.as_ptr() as usize;
        let align = core::mem::align_of::<SharedQueueState>();
        if !addr.is_multiple_of(align) {
            return Err(RingError::Misaligned {
                what: "queue state block",
                addr,
                align,
            });
        }
        // SAFETY: aligned (checked above), valid and atomically accessed for
        // 'a (the caller's contract); every bit pattern is a valid
        // SharedQueueState, and all of it is atomics, so the other side's
        // concurrent writes are allowed behind a shared reference.
        Ok(unsafe { ptr.cast::<SharedQueueState>().as_ref() })
    }

    /// The current indices and flags as plain numbers (for diagnostics).
    pub fn snapshot(&self) -> QueueStateBlock {
        let ld = |a: &AtomicU32| load_le(a, Ordering::Acquire).into();
        QueueStateBlock {
            head: ld(&self.head),
            fetch_flag: ld(&self.fetch_flag),
            qstatus: ld(&self.qstatus),
            error_index: ld(&self.error_index),
            cq_tail: ld(&self.cq_tail),
            outgoing_tail: ld(&self.outgoing_tail),
            consumer_flag: ld(&self.consumer_flag),
            cq_head: ld(&self.cq_head),
            ..zerocopy::FromZeros::new_zeroed()
        }
    }
}
