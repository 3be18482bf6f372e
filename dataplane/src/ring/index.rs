//! The ring's free-running index.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// A free-running ring index: it counts entries since the ring began and
/// wraps at 2^32; masked by the ring's size it names a slot. Distances
/// between two indices (`later - earlier`) wrap too, so they stay right
/// across the wrap as long as the two are less than 2^32 apart (a ring is
/// at most 2^24 entries).
///
/// Every index both ends exchange (`head`, `outgoing_tail`,
/// `buffer_tail`, `cq_head`, a completion's `index`) is one of these on
/// the Rust side, and a little-endian `u32` in memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct RingIndex(pub u32);

impl RingIndex {
    /// The raw value.
    #[inline]
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The slot it names in a ring of `mask + 1` entries.
    #[inline]
    pub const fn slot(self, mask: u32) -> usize {
        (self.0 & mask) as usize
    }
}

impl From<u32> for RingIndex {
    fn from(v: u32) -> Self {
        RingIndex(v)
    }
}

impl From<RingIndex> for u32 {
    fn from(i: RingIndex) -> Self {
        i.0
    }
}

/// `n` entries further.
impl Add<u32> for RingIndex {
    type Output = RingIndex;
    #[inline]
    fn add(self, n: u32) -> RingIndex {
        RingIndex(self.0.wrapping_add(n))
    }
}

impl AddAssign<u32> for RingIndex {
    #[inline]
    fn add_assign(&mut self, n: u32) {
        self.0 = self.0.wrapping_add(n);
    }
}

/// `n` entries back.
impl Sub<u32> for RingIndex {
    type Output = RingIndex;
    #[inline]
    fn sub(self, n: u32) -> RingIndex {
        RingIndex(self.0.wrapping_sub(n))
    }
}

/// Entries from `earlier` up to `self`.
impl Sub for RingIndex {
    type Output = u32;
    #[inline]
    fn sub(self, earlier: RingIndex) -> u32 {
        self.0.wrapping_sub(earlier.0)
    }
}

impl fmt::Display for RingIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn distances_hold_across_the_wrap() {
        let a = RingIndex(u32::MAX - 1);
        let b = a + 3;
        assert_eq!(b, RingIndex(1));
        assert_eq!(b - a, 3);
        assert_eq!(b - 3, a);
        assert_eq!(b.slot(7), 1);
        assert_eq!(a.slot(7), 6);
    }
}
