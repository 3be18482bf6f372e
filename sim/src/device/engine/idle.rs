//! How the engine thread waits between passes on the real clock.
//!
//! A pass that did work is followed by another at once. An idle engine
//! spins [`IDLE_SPIN_PASSES`] passes, then sleeps, longer and longer up to
//! its longest idle sleep (a doorbell is seen only by a pass), never past
//! the device's next deadline.
//!
//! A moderation timer needs more than that: its interrupt is due at its
//! deadline, and a thread that sleeps to a deadline wakes late by the
//! host's wakeup latency: microseconds on a busy host, a scheduler tick
//! or more now and then on an idle or virtualised one, and every sleep of
//! the idle back-off is another draw. A timer that waited on sleeps fired
//! that late, or only with the next frame's pass (at 1 kpps, a millisecond
//! after its deadline). So the engine stops sleeping its own wakeup
//! latency ([`IdleWait::timer_spin`], learnt from every sleep it takes)
//! before a timer's deadline and spins the rest, as an idle timer of a
//! device keeps time whatever the host does.
//!
//! Pure: time is an argument and the caller sleeps, so the policy runs on
//! virtual time in the tests (`sim/tests/timer_wakeup.rs`).

use crate::clock::Nanos;

/// Passes an idle engine spins before it sleeps.
pub const IDLE_SPIN_PASSES: u32 = 64;
/// The idle back-off: each idle pass after the spin sleeps this much
/// longer than the one before.
pub const IDLE_RAMP_NS: Nanos = 2_000;
/// The least the engine spins before a timer's deadline.
pub const MIN_TIMER_SPIN_NS: Nanos = 10_000;
/// The most it spins before a timer's deadline (a host whose wakeups are
/// later than this gets timers late by the difference).
pub const MAX_TIMER_SPIN_NS: Nanos = 2_000_000;
/// The spin before a timer is this many times the 90th percentile of the
/// engine's wakeup latency.
const SPIN_PER_LATENESS: Nanos = 2;
/// The percentile tracker's step is its estimate / 2^k (at least
/// [`MIN_STEP_NS`]): it moves up by a step when a wakeup comes later than
/// the estimate and down by a ninth of one otherwise, so it settles where
/// 90 % of the wakeups come earlier, and a rare outlier (a host that
/// preempts the thread for a tick) moves it by one step only.
const STEP_SHIFT: u32 = 2;
const MIN_STEP_NS: Nanos = 256;

/// What the engine does after a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Another pass at once (work was done, the idle spin goes on, or a
    /// timer is due within the engine's wakeup latency).
    Again,
    /// Sleep this long, ns (or until woken), then call [`IdleWait::woke`].
    Sleep(Nanos),
}

/// The engine thread's waiting policy (see the module documentation).
#[derive(Debug, Clone)]
pub struct IdleWait {
    max_sleep: Nanos,
    /// Idle passes in a row.
    idle: u32,
    /// How late the engine's wakeups come, ns: an estimate of their 90th
    /// percentile.
    lateness: Nanos,
    /// When the current sleep should end.
    wake_at: Option<Nanos>,
}

impl IdleWait {
    /// A policy whose longest idle sleep is `max_sleep` ns.
    pub fn new(max_sleep: Nanos) -> IdleWait {
        IdleWait {
            max_sleep,
            idle: 0,
            lateness: 0,
            wake_at: None,
        }
    }

    /// How long before a timer's deadline the engine stops sleeping, ns.
    /// Always: turning the spin off whenever any client was reached by
    /// message (DMA by message, where a pass costs the client a round trip
    /// per page) also turned it off for clients that map their memory and
    /// touch a little by message, and the moderation bench's timer
    /// lateness went back to the host's (+1267 us over the floor at p99).
    pub fn timer_spin(&self) -> Nanos {
        (SPIN_PER_LATENESS * self.lateness).clamp(MIN_TIMER_SPIN_NS, MAX_TIMER_SPIN_NS)
    }

    /// After a pass at `now` that did `work`: what next, given the
    /// device's next deadline (`Device::next_deadline`) and its soonest
    /// moderation timer (`Device::next_timer`).
    pub fn after_pass(&mut self, now: Nanos, work: usize, deadline: Option<Nanos>, timer: Option<Nanos>) -> Wait {
        if work > 0 {
            self.idle = 0;
            return Wait::Again;
        }
        self.idle = self.idle.saturating_add(1);
        let spin = self.timer_spin();
        // A timer within the engine's wakeup latency: a sleep would wake
        // after it. Spin to it.
        if timer.is_some_and(|t| t.saturating_sub(now) <= spin) {
            return Wait::Again;
        }
        if self.idle < IDLE_SPIN_PASSES {
            return Wait::Again;
        }
        let ramp = Nanos::from(self.idle - IDLE_SPIN_PASSES + 1) * IDLE_RAMP_NS;
        let mut sleep = deadline
            .map_or(self.max_sleep, |t| t.saturating_sub(now))
            .min(self.max_sleep)
            .min(ramp);
        if let Some(t) = timer {
            // Wake early enough to spin the rest.
            sleep = sleep.min(t.saturating_sub(spin).saturating_sub(now));
        }
        self.wake_at = Some(now + sleep);
        Wait::Sleep(sleep)
    }

    /// The sleep [`IdleWait::after_pass`] asked for ended at `now`: learn
    /// how late the host woke the engine (a sleep cut short by a wakeup
    /// teaches nothing).
    pub fn woke(&mut self, now: Nanos) {
        let Some(at) = self.wake_at.take() else { return };
        if now < at {
            return;
        }
        let step = (self.lateness >> STEP_SHIFT).max(MIN_STEP_NS);
        self.lateness = if now - at > self.lateness {
            (self.lateness + step).min(MAX_TIMER_SPIN_NS)
        } else {
            self.lateness.saturating_sub(step / 9)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Nanos = 1_000;

    fn idle_for(w: &mut IdleWait, now: Nanos, deadline: Option<Nanos>, timer: Option<Nanos>) -> Wait {
        loop {
            match w.after_pass(now, 0, deadline, timer) {
                Wait::Again if w.idle < IDLE_SPIN_PASSES => {}
                other => return other,
            }
        }
    }

    #[test]
    fn work_means_another_pass_and_idle_backs_off_to_the_longest_sleep() {
        let mut w = IdleWait::new(50 * US);
        assert_eq!(w.after_pass(0, 3, Some(0), None), Wait::Again);
        assert_eq!(idle_for(&mut w, 0, None, None), Wait::Sleep(2 * US));
        assert_eq!(w.after_pass(0, 0, None, None), Wait::Sleep(4 * US));
        for _ in 0..100 {
            let _ = w.after_pass(0, 0, None, None);
        }
        assert_eq!(w.after_pass(0, 0, None, None), Wait::Sleep(50 * US));
        assert_eq!(
            w.after_pass(0, 0, Some(7 * US), None),
            Wait::Sleep(7 * US),
            "never past the next deadline"
        );
    }

    #[test]
    fn a_timer_is_slept_to_less_the_spin_then_spun_to() {
        let mut w = IdleWait::new(50 * US);
        for _ in 0..100 {
            let _ = w.after_pass(0, 0, None, None);
        }
        assert_eq!(w.timer_spin(), MIN_TIMER_SPIN_NS, "no wakeup measured yet");
        let t = 30 * US;
        assert_eq!(w.after_pass(0, 0, Some(t), Some(t)), Wait::Sleep(20 * US));
        assert_eq!(w.after_pass(20 * US, 0, Some(t), Some(t)), Wait::Again);
        assert_eq!(w.after_pass(29 * US, 0, Some(t), Some(t)), Wait::Again);
    }

    #[test]
    fn the_spin_follows_the_hosts_wakeup_latency() {
        let mut w = IdleWait::new(50 * US);
        let mut now = 0;
        // A host that wakes every sleep 1 ms late.
        for _ in 0..200 {
            if let Wait::Sleep(ns) = w.after_pass(now, 0, None, None) {
                now += ns + 1_000 * US;
                w.woke(now);
            }
        }
        let spin = w.timer_spin();
        assert!((1_000 * US..=MAX_TIMER_SPIN_NS).contains(&spin), "spin {spin} ns");
        assert_eq!(
            w.after_pass(now, 0, Some(now + 900 * US), Some(now + 900 * US)),
            Wait::Again,
            "a timer 900 µs away is spun to"
        );
        // The host recovers: the spin comes back down.
        for _ in 0..400 {
            if let Wait::Sleep(ns) = w.after_pass(now, 0, None, None) {
                now += ns + 2 * US;
                w.woke(now);
            }
        }
        assert_eq!(w.timer_spin(), MIN_TIMER_SPIN_NS);
    }

    #[test]
    fn a_rare_late_wakeup_does_not_make_the_engine_spin_for_long() {
        let mut w = IdleWait::new(50 * US);
        let mut now = 0;
        // Wakeups 6 µs late, one in a hundred 3 ms late (a preempted
        // thread): spinning a millisecond before every timer would make
        // the engine a CPU hog, which a busy host preempts all the more.
        for i in 0..5_000u64 {
            if let Wait::Sleep(ns) = w.after_pass(now, 0, None, None) {
                now += ns + if i % 100 == 99 { 3_000 * US } else { 6 * US };
                w.woke(now);
            }
        }
        let spin = w.timer_spin();
        assert!((12 * US..=30 * US).contains(&spin), "spin {spin} ns");
    }
}
