//! A ring in memory this process owns (two threads, tests, benchmarks).

use super::*;

/// A ring in memory this process owns: for two threads, tests and
/// benchmarks. For shared memory use [`Producer::attach`] and
/// [`Consumer::attach`].
pub struct RingMemory<T: RingElem> {
    pub(super) state: Box<SharedQueueState>,
    #[cfg(not(loom))]
    pub(super) slots: SlotAlloc<T>,
    #[cfg(loom)]
    pub(super) slots: Box<[::loom::cell::UnsafeCell<T>]>,
    pub(super) size: u32,
}

impl<T: RingElem> core::fmt::Debug for RingMemory<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RingMemory")
            .field("size", &self.size)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<T: RingElem> RingMemory<T> {
    /// A zeroed ring of `1 << order` slots whose indices start at 0.
    pub fn new(order: u8) -> Result<Self, RingError> {
        Self::with_start(order, 0)
    }

    /// A zeroed ring whose indices start at `start` (tests use starts just
    /// below `u32::MAX` to cross the wrap).
    pub fn with_start(order: u8, start: u32) -> Result<Self, RingError> {
        let size = check_order(order)?;
        Ok(RingMemory {
            state: Box::new(SharedQueueState::new(start)),
            #[cfg(not(loom))]
            slots: SlotAlloc::zeroed(size as usize),
            #[cfg(loom)]
            slots: (0..size)
                .map(|_| ::loom::cell::UnsafeCell::new(T::new_zeroed()))
                .collect(),
            size,
        })
    }

    /// The shared state block.
    pub fn state(&self) -> &SharedQueueState {
        &self.state
    }

    /// Both halves. Borrowing `self` mutably guarantees one pair at a time.
    pub fn split(&mut self) -> (Producer<'_, T>, Consumer<'_, T>) {
        let mask = self.size - 1;
        #[cfg(not(loom))]
        let base = self.slots.ptr;
        #[cfg(loom)]
        let base = NonNull::new(self.slots.as_mut_ptr()).expect("boxed slice pointer is never null");
        let state: &SharedQueueState = &self.state;
        // The block was initialised by with_start (consistent indices), so
        // neither half can find it invalid.
        let p = Producer::from_parts(state, Slots { base, mask }, self.size).expect("fresh ring is consistent");
        let c = Consumer::from_parts(state, Slots { base, mask }, self.size).expect("fresh ring is consistent");
        (p, c)
    }
}

/// Cache-line aligned, zeroed slot storage.
#[cfg(not(loom))]
pub(super) struct SlotAlloc<T> {
    pub(super) ptr: NonNull<T>,
    pub(super) layout: std::alloc::Layout,
}

#[cfg(not(loom))]
impl<T: RingElem> SlotAlloc<T> {
    pub(super) fn zeroed(n: usize) -> Self {
        let layout = std::alloc::Layout::array::<T>(n)
            .and_then(|l| l.align_to(64))
            .expect("ring of at most 2^24 small elements fits in memory")
            .pad_to_align();
        if layout.size() == 0 {
            return SlotAlloc {
                ptr: NonNull::dangling(),
                layout,
            };
        }
        // SAFETY: layout has non-zero size (checked above).
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw.cast::<T>()).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        // All-zero bytes are a valid T: T: FromBytes.
        SlotAlloc { ptr, layout }
    }
}

#[cfg(not(loom))]
impl<T> Drop for SlotAlloc<T> {
    fn drop(&mut self) {
        if self.layout.size() != 0 {
            // SAFETY: allocated in `zeroed` with this very layout; T is Copy,
            // so there is nothing to drop in place.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), self.layout) };
        }
    }
}
