//! The completion ring, written by the device: room, posting (batched per
//! cache line), publishing, and the error state.

use super::*;

impl QueueCore {
    /// Whether the completion ring has room (the driver's `cq_head` is
    /// within a ring of what we wrote).
    pub fn cq_has_room(&mut self) -> bool {
        if self.cqw.room(self.cq_head_seen.get()) > 0 {
            return true;
        }
        self.pull_state();
        let head = RingIndex(u32::from_le(self.state().cq_head.load(Ordering::Acquire)));
        self.cq_head_seen.set(head);
        self.cqw.room(head) > 0
    }

    /// Completions the ring has room for now.
    pub fn cq_room(&mut self) -> u32 {
        let seen = self.cqw.room(self.cq_head_seen.get());
        if self.is_remote() && seen > 0 {
            // By message, the last look is good enough while it shows room
            // (the driver only ever makes more).
            return seen;
        }
        self.pull_state();
        let head = RingIndex(u32::from_le(self.state().cq_head.load(Ordering::Acquire)));
        self.cq_head_seen.set(head);
        self.cqw.room(head)
    }

    /// Store `cq_tail` in the state block if it moved (once per pass).
    pub fn publish_cq_tail(&mut self) {
        if self.detached {
            return;
        }
        self.flush_completions();
        let tail = self.cqw.tail();
        if self.cq_tail_published != tail {
            self.cq_tail_published = tail;
            self.state().cq_tail.store(tail.get().to_le(), Ordering::Release);
            self.push_state();
        }
    }

    /// Write one 16-byte completion (a [`Completion`] or an admin
    /// completion: both keep the color in bit 7 of byte 1), color last.
    /// Returns false (and counts a stall) when the driver has not made room.
    ///
    /// Completions are staged and written a cache line (4 entries) at a
    /// time: the driver polls the line the next completion goes to, and
    /// writing its 4 entries one by one as packets come would move the
    /// line between the cores up to 4 times. A partial line is written by
    /// [`QueueCore::flush_completions`], which the engine calls before it
    /// decides interrupts at the end of every pass (and `fail` at once).
    pub fn post(&mut self, entry: [u8; 16]) -> bool {
        if self.detached {
            return false;
        }
        if !self.cq_has_room() {
            self.cq_full_stalls += 1;
            return false;
        }
        self.unsignalled += 1;
        if let Some((first, n)) = self.cqw.post(entry) {
            self.push_completions(first, n);
        }
        true
    }

    /// Write the staged completions (`CqWriter::flush`: every body, one
    /// Release fence, then every status-and-color word), and send them
    /// when the ring is reached by message.
    pub fn flush_completions(&mut self) {
        if self.detached {
            self.cqw.discard();
            return;
        }
        if let Some((first, n)) = self.cqw.flush() {
            self.push_completions(first, n);
        }
    }

    /// By message: write completions `[first, first + n)` from the local
    /// copy, the first one's status and color last, so the driver (which
    /// stops at the first entry whose color it does not expect) never reads
    /// an entry before its body has arrived.
    pub(super) fn push_completions(&mut self, first: RingIndex, n: u32) {
        let Backing::Remote { remote, .. } = &self.backing else {
            return;
        };
        let remote = remote.clone();
        let size = self.size();
        let at = first.slot(size - 1) as u32;
        let run1 = n.min(size - at);
        let runs = [(at, run1), (0, n - run1)];
        let whole = |k: u32, len: u32| {
            // SAFETY: entries k..k+len lie inside the copy's completion
            // ring (k + len <= size).
            unsafe { std::slice::from_raw_parts(self.cq.as_ptr().add(k as usize * 16), len as usize * 16) }.to_vec()
        };
        for (i, (k, len)) in runs.into_iter().enumerate() {
            if len == 0 {
                continue;
            }
            let mut bytes = whole(k, len);
            if i == 0 {
                // The first entry goes with the color of the lap before.
                bytes[1] ^= comp_flags::COLOR;
            }
            if let Err(e) = remote.write(self.cq_base + u64::from(k) * 16, &bytes, false) {
                return self.remote_failed(e);
            }
        }
        let head = whole(at, 1);
        if let Err(e) = remote.write(self.cq_base + u64::from(at) * 16, &head[..2], false) {
            self.remote_failed(e);
        }
    }

    /// Post a TX/RX completion.
    pub fn post_completion(&mut self, c: Completion) -> bool {
        let mut e = [0u8; 16];
        e.copy_from_slice(c.as_bytes());
        self.post(e)
    }

    /// Put the queue in the error state: a completion naming the cause at
    /// `index`, and `qstatus`/`error_index` in the state block.
    pub fn fail(&mut self, status: CompStatus, index: RingIndex, now: Nanos) {
        if !self.enter_error(status, index) {
            return;
        }
        let c = completion(status, self.lif, index, 0, 0, now);
        // If the completion ring is full the state block still says why.
        self.post_completion(c);
        self.flush_completions();
    }

    /// Put the queue in the error state, `status` and `index` in its
    /// state block, writing no completion: the admin queue's way (its
    /// completion ring holds `AdminComp`s, which have no word for a broken
    /// ring protocol). False if the queue was already stopped.
    pub fn enter_error(&mut self, status: CompStatus, index: RingIndex) -> bool {
        if self.error.is_some() {
            return false;
        }
        self.error = Some((status, index));
        let st = self.state();
        st.error_index.store(index.get().to_le(), Ordering::Relaxed);
        st.qstatus.store(u32::from(status.raw()).to_le(), Ordering::Release);
        self.push_state();
        true
    }

    /// Put the queue in the error state without touching its memory (the
    /// client unmapped it: the device may no longer write there, and
    /// never does again; see `detached`).
    pub fn fail_silently(&mut self, status: CompStatus, index: RingIndex) {
        if self.error.is_none() {
            self.error = Some((status, index));
        }
        self.detached = true;
    }

    /// Put the queue in the error state with `status` in its state block,
    /// writing no completion (after an internal error, when the queue's
    /// own bookkeeping cannot be trusted). Cannot panic.
    pub fn stop_quietly(&mut self, status: CompStatus) {
        if self.error.is_some() {
            return;
        }
        self.error = Some((status, RingIndex(0)));
        if !self.detached && !self.is_remote() {
            // (By message, nothing is sent: this runs after an internal
            // error, where waiting on the client is the last thing to do.)
            self.state()
                .qstatus
                .store(u32::from(status.raw()).to_le(), Ordering::Release);
        }
    }
}
