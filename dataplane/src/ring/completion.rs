//! The completion ring: `1 << order` entries of 16 bytes that the device
//! writes and the driver reads, each entry found by its color bit rather
//! than by an index (`docs/device-abi.md`, "Completions").
//!
//! An entry's first two bytes are its status and its flags, whose bit 7 is
//! the color: [`expected_color`]`(i, order)` for the entry at free-running
//! index `i`, flipping every lap. The writer stores the other 14 bytes,
//! issues a `Release` fence, then stores the first two as one 16-bit
//! atomic; the reader loads those two with `Acquire` and reads the body only
//! when the color is the one it waits for, so it never sees a body older
//! than its color. The reader tells the writer how far it has read through
//! `cq_head` in the queue state block; the writer never writes more than a
//! ring past it.
//!
//! [`CqWriter`] stages entries and writes them a cache line (4 entries) at
//! a time: the reader polls the line the next entry goes to, and writing
//! its 4 entries one by one would move the line between the cores up to 4
//! times. [`CqReader`] is the other half. Both are the only implementation
//! of the protocol: the device (`sim`) writes with one, the driver
//! (`host-driver`) reads with the other, and `ring::loom_model` checks the
//! pair.

#[cfg(not(loom))]
use super::RingError;
use super::RingIndex;
use crate::abi::{comp_flags, expected_color};
use crate::sync::{fence, Ordering};
#[cfg(not(loom))]
use core::ptr::NonNull;

/// Bytes per entry.
pub const ENTRY_LEN: usize = 16;
/// Entries per cache line: what [`CqWriter`] writes at once.
pub const ENTRIES_PER_LINE: u32 = 4;

/// An entry's first two bytes (status, then flags with the color) as the
/// 16-bit word both sides access atomically.
fn head_word(e: &[u8; ENTRY_LEN]) -> u16 {
    u16::from_le_bytes([e[0], e[1]])
}

/// The entries, as raw memory the other side also maps.
#[cfg(not(loom))]
struct Entries {
    base: NonNull<u8>,
    mask: u32,
}

#[cfg(not(loom))]
impl Entries {
    fn at(&self, i: RingIndex) -> *mut u8 {
        // SAFETY: (from the constructors' contract) `base` holds
        // `mask + 1` entries; the index is masked.
        unsafe { self.base.as_ptr().add(i.slot(self.mask) * ENTRY_LEN) }
    }

    fn word(&self, i: RingIndex) -> &core::sync::atomic::AtomicU16 {
        // SAFETY: the entry is in bounds and 16-aligned (checked at
        // construction), so its first two bytes are an aligned u16 that
        // both sides only access atomically.
        unsafe { core::sync::atomic::AtomicU16::from_ptr(self.at(i).cast()) }
    }

    fn write_body(&self, i: RingIndex, e: &[u8; ENTRY_LEN]) {
        // SAFETY: bytes 2..16 of an in-bounds entry; the reader reads them
        // only after the Acquire load that sees this entry's color, which
        // the writer stores after these bytes and a Release fence.
        unsafe { core::ptr::copy_nonoverlapping(e.as_ptr().add(2), self.at(i).add(2), ENTRY_LEN - 2) };
    }

    fn store_word(&self, i: RingIndex, w: u16) {
        self.word(i).store(w.to_le(), Ordering::Release);
    }

    fn load_word(&self, i: RingIndex) -> u16 {
        u16::from_le(self.word(i).load(Ordering::Acquire))
    }

    fn read_body(&self, i: RingIndex, e: &mut [u8; ENTRY_LEN]) {
        // SAFETY: bytes 2..16 of an in-bounds entry, ordered after the
        // writer's body stores by the Acquire load of its color.
        unsafe { core::ptr::copy_nonoverlapping(self.at(i).add(2), e.as_mut_ptr().add(2), ENTRY_LEN - 2) };
    }

    fn zero(&self) {
        for i in 0..=self.mask {
            self.word(RingIndex(i)).store(0, Ordering::Relaxed);
            self.write_body(RingIndex(i), &[0; ENTRY_LEN]);
        }
    }
}

/// Under loom: the head words are loom atomics and the bodies loom cells,
/// so the model reports a body read not ordered after its write.
#[cfg(loom)]
struct Entries {
    words: &'static [loom::sync::atomic::AtomicU16],
    bodies: &'static [loom::cell::UnsafeCell<[u8; ENTRY_LEN - 2]>],
    mask: u32,
}

#[cfg(loom)]
impl Entries {
    fn write_body(&self, i: RingIndex, e: &[u8; ENTRY_LEN]) {
        let mut b = [0u8; ENTRY_LEN - 2];
        b.copy_from_slice(&e[2..]);
        // SAFETY: loom checks the access is ordered.
        self.bodies[i.slot(self.mask)].with_mut(|p| unsafe { p.write(b) });
    }
    fn store_word(&self, i: RingIndex, w: u16) {
        self.words[i.slot(self.mask)].store(w, Ordering::Release);
    }
    fn load_word(&self, i: RingIndex) -> u16 {
        self.words[i.slot(self.mask)].load(Ordering::Acquire)
    }
    fn read_body(&self, i: RingIndex, e: &mut [u8; ENTRY_LEN]) {
        // SAFETY: loom checks the access is ordered.
        let b = self.bodies[i.slot(self.mask)].with(|p| unsafe { p.read() });
        e[2..].copy_from_slice(&b);
    }
    fn zero(&self) {
        for i in 0..=self.mask {
            self.store_word(RingIndex(i), 0);
            self.write_body(RingIndex(i), &[0; ENTRY_LEN]);
        }
    }
}

#[cfg(not(loom))]
fn entries(base: NonNull<u8>, order: u8) -> Result<Entries, RingError> {
    let mask = super::check_order(order)? - 1;
    let addr = base.as_ptr() as usize;
    if !addr.is_multiple_of(ENTRY_LEN) {
        return Err(RingError::Misaligned {
            what: "completion ring",
            addr,
            align: ENTRY_LEN,
        });
    }
    Ok(Entries { base, mask })
}

/// The writing half (the device).
pub struct CqWriter {
    entries: Entries,
    order: u8,
    /// Entries posted (free-running).
    tail: RingIndex,
    /// Entries written to the ring; `[flushed, tail)` are staged.
    flushed: RingIndex,
    staged: [[u8; ENTRY_LEN]; ENTRIES_PER_LINE as usize],
}

// SAFETY: the writer owns its view of the ring; the memory is shared only
// through the atomics and the ordering described in the module docs.
unsafe impl Send for CqWriter {}

impl core::fmt::Debug for CqWriter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CqWriter")
            .field("order", &self.order)
            .field("tail", &self.tail)
            .field("flushed", &self.flushed)
            .finish()
    }
}

impl CqWriter {
    /// A writer of the ring at `base`, starting at index `start`.
    ///
    /// # Safety
    /// `base` must point to `16 << order` bytes that stay mapped and
    /// writable while the writer lives, whose entries' first two bytes are
    /// only ever accessed atomically (by both sides).
    #[cfg(not(loom))]
    pub unsafe fn new(base: NonNull<u8>, order: u8, start: RingIndex) -> Result<CqWriter, RingError> {
        Ok(Self::over(entries(base, order)?, order, start))
    }

    fn over(entries: Entries, order: u8, start: RingIndex) -> CqWriter {
        CqWriter {
            entries,
            order,
            tail: start,
            flushed: start,
            staged: [[0; ENTRY_LEN]; ENTRIES_PER_LINE as usize],
        }
    }

    /// Entries the ring holds.
    pub fn size(&self) -> u32 {
        1 << self.order
    }

    /// Entries posted so far (free-running).
    pub fn tail(&self) -> RingIndex {
        self.tail
    }

    /// Room left when the reader has read up to `cq_head`.
    pub fn room(&self, cq_head: RingIndex) -> u32 {
        self.size().saturating_sub(self.tail - cq_head)
    }

    /// Stage one entry with the color of its index (whatever bit 7 of its
    /// byte 1 said); written by [`CqWriter::flush`], or at once when it
    /// completes a cache line. The caller checked [`CqWriter::room`].
    /// Returns the range written, if this post wrote one.
    pub fn post(&mut self, entry: [u8; ENTRY_LEN]) -> Option<(RingIndex, u32)> {
        let color = expected_color(self.tail.get(), self.order);
        let mut e = entry;
        e[1] = (e[1] & !comp_flags::COLOR) | if color { comp_flags::COLOR } else { 0 };
        let at = (self.tail - self.flushed) as usize;
        self.staged[at] = e;
        self.tail += 1;
        if self.tail.get().is_multiple_of(ENTRIES_PER_LINE) {
            return self.flush();
        }
        None
    }

    /// Write the staged entries: every body, one `Release` fence, then
    /// every status-and-color word. Returns the range written `(first, n)`
    /// (for a writer that must also send them elsewhere), or `None`.
    pub fn flush(&mut self) -> Option<(RingIndex, u32)> {
        let n = self.tail - self.flushed;
        if n == 0 {
            return None;
        }
        let first = self.flushed;
        for k in 0..n {
            self.entries.write_body(first + k, &self.staged[k as usize]);
        }
        fence(Ordering::Release);
        for k in 0..n {
            self.entries.store_word(first + k, head_word(&self.staged[k as usize]));
        }
        self.flushed = self.tail;
        Some((first, n))
    }

    /// Drop what is staged without writing it (the ring is gone).
    pub fn discard(&mut self) {
        self.flushed = self.tail;
    }

    /// Start over at index `start` (a queue reset; the reader zeroes the
    /// ring).
    pub fn restart(&mut self, start: RingIndex) {
        self.tail = start;
        self.flushed = start;
    }
}

/// The reading half (the driver).
pub struct CqReader {
    entries: Entries,
    order: u8,
    head: RingIndex,
    /// Entries read since `cq_head` was last published.
    unpublished: u32,
}

// SAFETY: as for `CqWriter`.
unsafe impl Send for CqReader {}

impl core::fmt::Debug for CqReader {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CqReader")
            .field("order", &self.order)
            .field("head", &self.head)
            .finish()
    }
}

impl CqReader {
    /// A reader of the ring at `base`, from index 0.
    ///
    /// # Safety
    /// As [`CqWriter::new`].
    #[cfg(not(loom))]
    pub unsafe fn new(base: NonNull<u8>, order: u8) -> Result<CqReader, RingError> {
        Ok(Self::over(entries(base, order)?, order))
    }

    fn over(entries: Entries, order: u8) -> CqReader {
        CqReader {
            entries,
            order,
            head: RingIndex(0),
            unpublished: 0,
        }
    }

    /// The ring's order.
    pub fn order(&self) -> u8 {
        self.order
    }

    /// Entries read so far (free-running): what `cq_head` says once
    /// published.
    pub fn head(&self) -> RingIndex {
        self.head
    }

    /// Whether an entry is waiting (one `Acquire` load).
    #[inline]
    pub fn ready(&self) -> bool {
        let w = self.entries.load_word(self.head);
        ((w >> 8) as u8 & comp_flags::COLOR != 0) == expected_color(self.head.get(), self.order)
    }

    /// The next entry, if the writer has written it.
    #[inline]
    #[must_use = "an entry taken is gone from the ring"]
    pub fn next_entry(&mut self) -> Option<[u8; ENTRY_LEN]> {
        let w = self.entries.load_word(self.head);
        if ((w >> 8) as u8 & comp_flags::COLOR != 0) != expected_color(self.head.get(), self.order) {
            return None;
        }
        let mut e = [0u8; ENTRY_LEN];
        self.entries.read_body(self.head, &mut e);
        e[..2].copy_from_slice(&w.to_le_bytes());
        self.head += 1;
        self.unpublished += 1;
        Some(e)
    }

    /// The `cq_head` to publish, if anything was read since the last
    /// call; the caller stores it (`Release`) in the queue state block.
    #[inline]
    pub fn to_publish(&mut self) -> Option<RingIndex> {
        if self.unpublished == 0 {
            return None;
        }
        self.unpublished = 0;
        Some(self.head)
    }

    /// Forget every entry and zero the ring, for a queue the device is
    /// about to restart (it starts over at index 0, color 1).
    pub fn reset(&mut self) {
        self.entries.zero();
        self.head = RingIndex(0);
        self.unpublished = 0;
    }
}

/// A writer and a reader of one ring in memory this process owns (tests,
/// loom).
#[cfg(loom)]
pub(super) fn pair(order: u8) -> (CqWriter, CqReader) {
    let size = 1usize << order;
    let words: &'static [loom::sync::atomic::AtomicU16] =
        Box::leak((0..size).map(|_| loom::sync::atomic::AtomicU16::new(0)).collect());
    let bodies: &'static [loom::cell::UnsafeCell<[u8; ENTRY_LEN - 2]>] = Box::leak(
        (0..size)
            .map(|_| loom::cell::UnsafeCell::new([0; ENTRY_LEN - 2]))
            .collect(),
    );
    let mask = (size - 1) as u32;
    let w = CqWriter::over(Entries { words, bodies, mask }, order, RingIndex(0));
    let r = CqReader::over(Entries { words, bodies, mask }, order);
    (w, r)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Entries cross a ring of 4 over several laps in order, each with its
    /// lap's color; a partial line waits for `flush`.
    #[test]
    fn entries_cross_laps_in_order() {
        let mut mem = vec![0u128; 4];
        let base = NonNull::new(mem.as_mut_ptr().cast::<u8>()).unwrap();
        // SAFETY: 64 bytes, 16-aligned, alive for the test.
        let (mut w, mut r) = unsafe {
            (
                CqWriter::new(base, 2, RingIndex(0)).unwrap(),
                CqReader::new(base, 2).unwrap(),
            )
        };
        let mut next = 0u8;
        for lap in 0..5u8 {
            for k in 0..3u8 {
                assert!(w.room(r.head()) > 0);
                let mut e = [0u8; ENTRY_LEN];
                e[2] = lap * 3 + k;
                let _ = w.post(e);
            }
            if lap == 0 {
                assert_eq!(r.next_entry(), None, "a partial line waits for flush");
            }
            let _ = w.flush();
            while let Some(e) = r.next_entry() {
                assert_eq!(e[2], next);
                assert_eq!(e[1] & comp_flags::COLOR != 0, expected_color(u32::from(next), 2));
                next += 1;
            }
            assert_eq!(r.to_publish(), Some(r.head()));
        }
        assert_eq!(next, 15);
        r.reset();
        assert!(!r.ready());
    }

    #[test]
    fn bad_memory_is_refused() {
        let mut mem = vec![0u128; 4];
        let base = NonNull::new(mem.as_mut_ptr().cast::<u8>()).unwrap();
        // SAFETY: never written: construction fails.
        assert_eq!(unsafe { CqReader::new(base, 0) }.unwrap_err(), RingError::BadOrder(0));
        let odd = NonNull::new(base.as_ptr().wrapping_add(8)).unwrap();
        // SAFETY: as above.
        let w = unsafe { CqWriter::new(odd, 1, RingIndex(0)) };
        assert!(matches!(w, Err(RingError::Misaligned { .. })));
    }
}
