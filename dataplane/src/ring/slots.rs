//! The ring's slots: copies in and out of memory the other side may
//! write at any time.

use super::*;

/// The ring's slots: a raw pointer to `size` elements, shared by the two
/// halves. Who may touch which slot is decided by the indices; this type
/// only copies.
#[cfg(not(loom))]
pub(super) struct Slots<T> {
    pub(super) base: NonNull<T>,
    pub(super) mask: u32,
}

#[cfg(not(loom))]
impl<T: RingElem> Slots<T> {
    /// Copy `src` into the slots starting at free-running index `at`.
    ///
    /// # Safety
    /// The caller owns slots `[at, at + src.len())` (per the indices) and
    /// `src.len() <= size`.
    #[inline(always)]
    pub(super) unsafe fn write(&self, at: RingIndex, src: &[T]) {
        let size = self.mask as usize + 1;
        let idx = at.slot(self.mask);
        if idx + src.len() <= size {
            // The common case, one contiguous copy: with the batch size known
            // at the call site, it compiles to straight vector moves.
            // SAFETY: `idx + len <= size`: inside the slots; `src` is a
            // separate Rust slice, so no overlap; the slots are ours per the
            // caller's contract.
            unsafe { copy_elems(src.as_ptr(), self.base.as_ptr().add(idx), src.len()) };
            return;
        }
        let first = size - idx;
        // SAFETY: `idx + first == size` and `src.len() - first <= idx` (as
        // `src.len() <= size`), so both ranges are inside the slots; no
        // overlap and ownership as above.
        unsafe {
            core::ptr::copy_nonoverlapping(src.as_ptr(), self.base.as_ptr().add(idx), first);
            core::ptr::copy_nonoverlapping(src.as_ptr().add(first), self.base.as_ptr(), src.len() - first);
        }
    }

    /// Copy the slots starting at free-running index `at` into `dst`.
    ///
    /// # Safety
    /// The caller owns slots `[at, at + dst.len())` and `dst.len() <= size`.
    #[inline(always)]
    pub(super) unsafe fn read(&self, at: RingIndex, dst: &mut [T]) {
        let size = self.mask as usize + 1;
        let idx = at.slot(self.mask);
        if idx + dst.len() <= size {
            // SAFETY: as in `write`, with source and destination swapped.
            unsafe { copy_elems(self.base.as_ptr().add(idx), dst.as_mut_ptr(), dst.len()) };
            return;
        }
        let first = size - idx;
        // SAFETY: as in `write`, with source and destination swapped.
        unsafe {
            core::ptr::copy_nonoverlapping(self.base.as_ptr().add(idx), dst.as_mut_ptr(), first);
            core::ptr::copy_nonoverlapping(self.base.as_ptr(), dst.as_mut_ptr().add(first), dst.len() - first);
        }
    }
}

/// Copy `n` elements from `src` to `dst`: a batch of descriptors (up to
/// [`INLINE_COPY_MAX`] bytes) as an inline loop of 32-byte moves, anything
/// larger through `memcpy`.
///
/// Why not always `copy_nonoverlapping`: a batch's size is known only at
/// run time or is too large for LLVM to expand inline, so it becomes a call
/// to libc's `memcpy`, whose size dispatch costs more than the copy at
/// these sizes (ring bench, one thread, 32 x 16 B: 2.65-2.81 TSC cycles an
/// element through `memcpy` against rte_ring's 2.26-2.43 with its inline
/// loop). The compiler fence in the loop (no instruction is emitted for it)
/// keeps LLVM from turning the loop back into that `memcpy` call.
///
/// # Safety
/// As `copy_nonoverlapping`: both ranges valid for `n` elements, no overlap.
#[cfg(not(loom))]
#[inline(always)]
unsafe fn copy_elems<T: Copy>(src: *const T, dst: *mut T, n: usize) {
    const CHUNK: usize = 32;
    let bytes = n * core::mem::size_of::<T>();
    let (s, d) = (src.cast::<u8>(), dst.cast::<u8>());
    if bytes > INLINE_COPY_MAX {
        // SAFETY: the caller's contract, in bytes.
        unsafe { core::ptr::copy_nonoverlapping(s, d, bytes) };
        return;
    }
    let whole = bytes - bytes % CHUNK;
    let mut at = 0;
    while at < whole {
        // SAFETY: `at + CHUNK <= bytes`: inside both ranges.
        unsafe { core::ptr::copy_nonoverlapping(s.add(at), d.add(at), CHUNK) };
        core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::Acquire);
        at += CHUNK;
    }
    // SAFETY: `whole..bytes` is inside both ranges.
    unsafe { core::ptr::copy_nonoverlapping(s.add(whole), d.add(whole), bytes - whole) };
}

/// Largest copy [`copy_elems`] does inline: 64 descriptors of 16 bytes.
#[cfg(not(loom))]
const INLINE_COPY_MAX: usize = 1024;

#[cfg(loom)]
pub(super) struct Slots<T> {
    pub(super) base: NonNull<::loom::cell::UnsafeCell<T>>,
    pub(super) mask: u32,
}

#[cfg(loom)]
impl<T: RingElem> Slots<T> {
    pub(super) unsafe fn write(&self, at: RingIndex, src: &[T]) {
        for (i, v) in src.iter().enumerate() {
            let idx = (at + i as u32).slot(self.mask);
            // SAFETY: in bounds (masked); loom checks the exclusivity.
            unsafe { (*self.base.as_ptr().add(idx)).with_mut(|p| p.write(*v)) };
        }
    }

    pub(super) unsafe fn read(&self, at: RingIndex, dst: &mut [T]) {
        for (i, v) in dst.iter_mut().enumerate() {
            let idx = (at + i as u32).slot(self.mask);
            // SAFETY: in bounds (masked); loom checks the exclusivity.
            *v = unsafe { (*self.base.as_ptr().add(idx)).with(|p| p.read()) };
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::copy_elems;

    /// Lengths from empty to past a few chunks, and around the inline
    /// limit, for element sizes that divide the 32-byte chunk and ones that
    /// leave a remainder.
    fn copies_exactly<T: Copy + PartialEq + core::fmt::Debug>(make: impl Fn(usize) -> T, zero: T) {
        let limit = super::INLINE_COPY_MAX / core::mem::size_of::<T>();
        let max = limit + 2;
        let src: Vec<T> = (0..max).map(&make).collect();
        for n in (0..=40).chain(limit - 1..=max) {
            let mut dst = vec![zero; max + 1];
            // SAFETY: `n <= max` elements in both; separate allocations.
            unsafe { copy_elems(src.as_ptr(), dst.as_mut_ptr(), n) };
            assert_eq!(&dst[..n], &src[..n], "n = {n}");
            assert!(dst[n..].iter().all(|v| *v == zero), "wrote past n = {n}");
        }
    }

    #[test]
    fn copies_every_length_and_nothing_more() {
        copies_exactly(|i| i as u8 | 1, 0u8);
        copies_exactly(|i| [i as u8 | 1, 2, 3], [0u8; 3]);
        copies_exactly(|i| i as u64 + 1, 0u64);
        copies_exactly(|i| [i as u64 + 1, !(i as u64)], [0u64; 2]);
    }
}
