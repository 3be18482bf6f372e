//! The consumer half: fetch what the producer published, write `head` back.

use super::*;

/// The consumer half: fetches published slots and writes `head` back.
pub struct Consumer<'a, T: RingElem> {
    pub(super) state: &'a SharedQueueState,
    pub(super) slots: Slots<T>,
    pub(super) size: u32,
    /// Fetch cursor.
    pub(super) head: RingIndex,
    /// Last head written back to the shared block.
    pub(super) written_back: RingIndex,
    /// Last validated outgoing_tail.
    pub(super) tail: RingIndex,
    pub(super) _slots: PhantomData<&'a [T]>,
}

// SAFETY: a Consumer only reads slots in [head, outgoing_tail), which the
// producer does not write until the consumer has released them through the
// head write-back (Release/Acquire); see the Producer's Send impl.
unsafe impl<T: RingElem> Send for Consumer<'_, T> {}

impl<T: RingElem> core::fmt::Debug for Consumer<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Consumer")
            .field("head", &self.head)
            .field("written_back", &self.written_back)
            .field("outgoing_tail", &self.tail)
            .field("size", &self.size)
            .finish()
    }
}

impl<'a, T: RingElem> Consumer<'a, T> {
    pub(super) fn from_parts(state: &'a SharedQueueState, slots: Slots<T>, size: u32) -> Result<Self, RingError> {
        let head = load_index(&state.head, Ordering::Relaxed);
        let mut c = Consumer {
            state,
            slots,
            size,
            head,
            written_back: head,
            tail: head,
            _slots: PhantomData,
        };
        c.refresh()?;
        Ok(c)
    }

    /// Attach a consumer to a ring in shared memory (another process may
    /// hold the producer). Starts at the written-back `head`.
    ///
    /// # Safety
    /// As [`Producer::attach`], with "consumer" for "producer".
    #[cfg(not(loom))]
    pub unsafe fn attach(state: NonNull<u8>, slots: NonNull<T>, order: u8) -> Result<Self, RingError> {
        // SAFETY: forwarded from this function's contract.
        let (state, slots, size) = unsafe { shared_parts(state, slots, order)? };
        Self::from_parts(state, slots, size)
    }

    /// Reload and validate `outgoing_tail`.
    #[inline]
    pub(super) fn refresh(&mut self) -> Result<(), RingError> {
        // Acquire: the producer's slot writes happen-before our reads.
        let now = load_index(&self.state.outgoing_tail, Ordering::Acquire);
        let ahead = now - self.written_back;
        if ahead > self.size {
            return Err(RingError::OutgoingTailOutOfRange {
                head: self.written_back.get(),
                outgoing_tail: now.get(),
                size: self.size,
            });
        }
        if ahead < self.tail - self.written_back {
            return Err(RingError::OutgoingTailRegressed {
                was: self.tail.get(),
                now: now.get(),
            });
        }
        self.tail = now;
        Ok(())
    }

    /// Published entries not yet fetched (reloads `outgoing_tail`).
    pub fn available(&mut self) -> Result<u32, RingError> {
        self.refresh()?;
        Ok(self.tail - self.head)
    }

    /// Ring size in slots.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The fetch cursor (free-running index of the next slot to fetch).
    pub fn head(&self) -> RingIndex {
        self.head
    }

    /// The shared state block (for the device's other fields: error state,
    /// completion indices, consumer flag).
    pub fn state(&self) -> &'a SharedQueueState {
        self.state
    }

    /// Fetch exactly `out.len()` entries or none. `Ok(false)` when fewer
    /// are published.
    #[inline]
    #[must_use = "the descriptors fetched are lost if this is ignored"]
    pub fn fetch_bulk(&mut self, out: &mut [T]) -> Result<bool, RingError> {
        let want = out.len();
        if ((self.tail - self.head) as usize) < want {
            self.refresh()?;
            if ((self.tail - self.head) as usize) < want {
                return Ok(false);
            }
        }
        // SAFETY: [head, head + want) lies within [head, outgoing_tail),
        // published by the producer (Acquire in refresh) and not yet written
        // back, so the producer does not write these slots.
        unsafe { self.slots.read(self.head, out) };
        self.head += want as u32;
        Ok(true)
    }

    /// Fetch up to `out.len()` entries; returns how many.
    #[inline]
    #[must_use = "the count says how many slots of `out` were fetched"]
    pub fn fetch_burst(&mut self, out: &mut [T]) -> Result<usize, RingError> {
        let mut avail = (self.tail - self.head) as usize;
        if avail < out.len() {
            self.refresh()?;
            avail = (self.tail - self.head) as usize;
        }
        let n = avail.min(out.len());
        // SAFETY: as in fetch_bulk, for n <= available entries.
        unsafe { self.slots.read(self.head, &mut out[..n]) };
        self.head += n as u32;
        Ok(n)
    }

    /// Write `head` back: every slot fetched so far may be reused by the
    /// producer.
    #[inline]
    pub fn write_back(&mut self) {
        if self.written_back != self.head {
            self.written_back = self.head;
            // Release: our slot reads happen-before the producer's reuse.
            store_index(&self.state.head, self.head, Ordering::Release);
        }
    }

    /// Write back `head = index`, for a consumer that fetched further than
    /// it has finished (a device that stopped mid-batch). `index` must lie
    /// in `[written-back head, fetch cursor]`; anything else is ignored and
    /// returns false.
    pub fn write_back_to(&mut self, index: RingIndex) -> bool {
        let done = index - self.written_back;
        if done > self.head - self.written_back {
            return false;
        }
        if done != 0 {
            self.written_back = index;
            store_index(&self.state.head, index, Ordering::Release);
        }
        true
    }

    /// Mark the fetch engine active: the producer may stop ringing. The
    /// consumer must then keep fetching until [`Consumer::try_idle`]
    /// returns `true`.
    #[inline]
    pub fn set_fetching(&self) {
        store_le(&self.state.fetch_flag, FetchFlag::Active.raw(), Ordering::Relaxed);
    }

    /// Try to go idle: clear the fetch flag, then look at `outgoing_tail`
    /// once more. `Ok(true)`: idle, the next publish will come with a
    /// doorbell. `Ok(false)`: entries arrived meanwhile; the flag is set
    /// again and the caller keeps fetching.
    pub fn try_idle(&mut self) -> Result<bool, RingError> {
        store_le(&self.state.fetch_flag, FetchFlag::Idle.raw(), Ordering::Relaxed);
        // Pairs with the fence in Producer::doorbell (see the module docs).
        fence(Ordering::SeqCst);
        self.refresh()?;
        if self.tail != self.head {
            self.set_fetching();
            return Ok(false);
        }
        Ok(true)
    }
}
