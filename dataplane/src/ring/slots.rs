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
            unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), self.base.as_ptr().add(idx), src.len()) };
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
            unsafe { core::ptr::copy_nonoverlapping(self.base.as_ptr().add(idx), dst.as_mut_ptr(), dst.len()) };
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
