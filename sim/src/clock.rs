//! The device's clock: real time, or virtual time that only moves when a
//! test says so. Everything in the device that depends on time (the device
//! clock register, completion timestamps, moderation timers, port arrival
//! times, the traffic generator) reads this clock and nothing else.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Nanoseconds since the device powered on.
pub type Nanos = u64;

/// Which clock the device runs on.
#[derive(Debug, Clone)]
pub enum SimClock {
    /// Wall time since start (monotonic).
    Real(Instant),
    /// Time that advances only through [`SimClock::advance`] /
    /// [`SimClock::advance_to`].
    Virtual(Arc<AtomicU64>),
}

impl SimClock {
    /// A real clock starting now.
    pub fn real() -> SimClock {
        SimClock::Real(Instant::now())
    }

    /// A virtual clock at 0.
    pub fn virtual_at_zero() -> SimClock {
        SimClock::Virtual(Arc::new(AtomicU64::new(0)))
    }

    /// Current time.
    pub fn now(&self) -> Nanos {
        match self {
            SimClock::Real(t0) => t0.elapsed().as_nanos() as Nanos,
            SimClock::Virtual(t) => t.load(Ordering::Acquire),
        }
    }

    /// Whether this is a virtual clock.
    pub fn is_virtual(&self) -> bool {
        matches!(self, SimClock::Virtual(_))
    }

    /// Move a virtual clock forward by `dt`; a real clock ignores it.
    pub fn advance(&self, dt: Nanos) {
        if let SimClock::Virtual(t) = self {
            t.fetch_add(dt, Ordering::AcqRel);
        }
    }

    /// Move a virtual clock to `at` if that is later than now.
    pub fn advance_to(&self, at: Nanos) {
        if let SimClock::Virtual(t) = self {
            t.fetch_max(at, Ordering::AcqRel);
        }
    }
}

/// A small, fast, seedable PRNG (SplitMix64): the device's only source of
/// randomness, so a seeded virtual-time run replays exactly.
pub use dataplane::rng::SplitMix64 as SimRng;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_clock_moves_only_when_told() {
        let c = SimClock::virtual_at_zero();
        assert_eq!(c.now(), 0);
        c.advance(10);
        c.advance_to(5);
        assert_eq!(c.now(), 10);
        c.advance_to(50);
        assert_eq!(c.now(), 50);
    }

    #[test]
    fn rng_is_reproducible() {
        let mut a = SimRng::new(7);
        let mut b = SimRng::new(7);
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert!((0..1000).all(|_| a.below(10) < 10));
    }
}
