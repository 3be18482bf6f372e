//! The producer half: fill, publish (or stage and commit), ring, reclaim.

use super::*;

/// Counters the producer keeps (no atomics: one owner).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProducerStats {
    /// Doorbells the caller was told to ring.
    pub doorbells: u64,
    /// Doorbells skipped because the consumer was fetching.
    pub doorbells_suppressed: u64,
}

/// Whether `outgoing_tail` follows `buffer_tail` at once or on `commit()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every fill is published at once.
    Normal,
    /// Fills are staged until [`Producer::commit`]; [`Producer::rollback`]
    /// discards them. For output commit in a primary/secondary setup.
    Commit,
}

/// The producer half: fills slots, publishes, reclaims.
pub struct Producer<'a, T: RingElem> {
    pub(super) state: &'a SharedQueueState,
    pub(super) slots: Slots<T>,
    pub(super) size: u32,
    pub(super) mode: Mode,
    /// Head as last written back by the consumer and reclaimed here.
    pub(super) head: RingIndex,
    pub(super) outgoing_tail: RingIndex,
    pub(super) buffer_tail: RingIndex,
    /// `outgoing_tail` as of the last doorbell (rung or suppressed).
    pub(super) announced: RingIndex,
    pub(super) stats: ProducerStats,
    pub(super) _slots: PhantomData<&'a mut [T]>,
}

// SAFETY: a Producer is the only writer of the slots in [head + size) beyond
// buffer_tail and reads none; everything it shares with the Consumer goes
// through atomics with Release/Acquire edges. Moving it to another thread is
// therefore as safe as moving a `&mut [T]` when T: Send.
unsafe impl<T: RingElem> Send for Producer<'_, T> {}

impl<T: RingElem> core::fmt::Debug for Producer<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Producer")
            .field("indices", &self.indices())
            .field("mode", &self.mode)
            .field("stats", &self.stats)
            .finish()
    }
}

impl<'a, T: RingElem> Producer<'a, T> {
    pub(super) fn from_parts(state: &'a SharedQueueState, slots: Slots<T>, size: u32) -> Result<Self, RingError> {
        let head = load_index(&state.head, Ordering::Acquire);
        let outgoing_tail = load_index(&state.outgoing_tail, Ordering::Relaxed);
        if outgoing_tail - head > size {
            return Err(RingError::OutgoingTailOutOfRange {
                head: head.get(),
                outgoing_tail: outgoing_tail.get(),
                size,
            });
        }
        Ok(Producer {
            state,
            slots,
            size,
            mode: Mode::Normal,
            head,
            outgoing_tail,
            buffer_tail: outgoing_tail,
            announced: outgoing_tail,
            stats: ProducerStats::default(),
            _slots: PhantomData,
        })
    }

    /// Attach a producer to a ring in shared memory (another process may
    /// hold the consumer). Starts from the indices in the state block.
    ///
    /// # Safety
    /// - `state` satisfies [`SharedQueueState::from_ptr`];
    /// - `slots` points to `1 << order` elements of `T`, aligned for `T`,
    ///   mapped readable and writable for `'a`;
    /// - no other producer is attached to this ring while this one lives
    ///   (in any process), and the memory is only accessed through a
    ///   [`Producer`] and a [`Consumer`].
    #[cfg(not(loom))]
    pub unsafe fn attach(state: NonNull<u8>, slots: NonNull<T>, order: u8) -> Result<Self, RingError> {
        // SAFETY: forwarded from this function's contract.
        let (state, slots, size) = unsafe { shared_parts(state, slots, order)? };
        Self::from_parts(state, slots, size)
    }

    /// Slots the producer may fill now (based on the last reclaim).
    #[inline]
    pub fn free(&self) -> u32 {
        self.size - (self.buffer_tail - self.head)
    }

    /// Entries written but not yet published (commit mode).
    #[inline]
    pub fn staged(&self) -> u32 {
        self.buffer_tail - self.outgoing_tail
    }

    /// Entries published and not yet reclaimed.
    #[inline]
    pub fn in_flight(&self) -> u32 {
        self.outgoing_tail - self.head
    }

    /// Ring size in slots.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The indices as the producer knows them.
    pub fn indices(&self) -> Indices {
        Indices {
            head: self.head,
            outgoing_tail: self.outgoing_tail,
            buffer_tail: self.buffer_tail,
            size: self.size,
        }
    }

    /// Doorbell counters.
    pub fn stats(&self) -> ProducerStats {
        self.stats
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Switch modes. Leaving commit mode publishes what is staged, since
    /// in normal mode `outgoing_tail` always equals `buffer_tail`.
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
        if mode == Mode::Normal {
            self.publish();
        }
    }

    /// Fill all of `items` or nothing (like `rte_ring_*_bulk`). Returns
    /// whether they fit. In normal mode they are published at once.
    #[inline]
    #[must_use = "false means nothing was filled"]
    pub fn fill_bulk(&mut self, items: &[T]) -> bool {
        if items.len() > self.free() as usize {
            return false;
        }
        // SAFETY: the slots [buffer_tail, buffer_tail + len) are free: len <=
        // free() means they lie within head + size, past everything the
        // consumer may still read (it never reads past outgoing_tail <=
        // buffer_tail, and it has written back everything before head).
        unsafe { self.slots.write(self.buffer_tail, items) };
        self.buffer_tail += items.len() as u32;
        if self.mode == Mode::Normal {
            self.publish();
        }
        true
    }

    /// Fill as many of `items` as fit; returns how many.
    #[inline]
    #[must_use = "items past the count were not filled"]
    pub fn fill_burst(&mut self, items: &[T]) -> usize {
        let n = items.len().min(self.free() as usize);
        let filled = self.fill_bulk(&items[..n]);
        debug_assert!(filled, "n fits in the free slots");
        n
    }

    #[inline]
    pub(super) fn publish(&mut self) {
        if self.outgoing_tail != self.buffer_tail {
            self.outgoing_tail = self.buffer_tail;
            // Release: the slot writes above happen-before the consumer's
            // Acquire load that sees this index.
            store_index(&self.state.outgoing_tail, self.outgoing_tail, Ordering::Release);
        }
    }

    /// Publish the staged entries; returns how many. In normal mode
    /// nothing is ever staged and this returns 0.
    pub fn commit(&mut self) -> u32 {
        let n = self.staged();
        self.publish();
        n
    }

    /// Discard the staged entries; returns how many. The consumer never saw
    /// them, so their slots are simply free again.
    pub fn rollback(&mut self) -> u32 {
        let n = self.staged();
        self.buffer_tail = self.outgoing_tail;
        n
    }

    /// Read the consumer's head write-back and free the slots it has
    /// finished with. Returns how many were reclaimed; they are the
    /// free-running indices `[indices().head - n, indices().head)` after the
    /// call (so a driver can release the buffers it attached to them).
    #[inline]
    #[must_use = "the count says how many slots are the producer's again"]
    pub fn reclaim(&mut self) -> Result<u32, RingError> {
        // Acquire: the consumer's reads of these slots happen-before our
        // next writes to them.
        let now = load_index(&self.state.head, Ordering::Acquire);
        let done = now - self.head;
        if done > self.in_flight() {
            return Err(RingError::HeadOutOfRange {
                was: self.head.get(),
                now: now.get(),
                outgoing_tail: self.outgoing_tail.get(),
            });
        }
        self.head = now;
        Ok(done)
    }

    /// Whether the caller must ring the doorbell, and with which
    /// `outgoing_tail`. `None` when nothing was published since the last
    /// doorbell, or when the consumer is fetching and will see the new tail
    /// on its own. Call it once per batch, after the fills.
    #[inline]
    #[must_use = "Some(tail) means the caller must ring the doorbell"]
    pub fn doorbell(&mut self) -> Option<RingIndex> {
        if self.outgoing_tail == self.announced {
            return None;
        }
        self.announced = self.outgoing_tail;
        // Order our outgoing_tail store before the flag load; pairs with the
        // fence in Consumer::try_idle (see the module docs).
        fence(Ordering::SeqCst);
        if load_le(&self.state.fetch_flag, Ordering::Relaxed) == FetchFlag::Active.raw() {
            self.stats.doorbells_suppressed += 1;
            return None;
        }
        self.stats.doorbells += 1;
        Some(self.outgoing_tail)
    }
}
