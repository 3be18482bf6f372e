//! Interrupt moderation per MSI-X vector: when the device raises the
//! vector's interrupt for the completions it posts.
//!
//! The consumer (the driver thread behind the vector's queues) says through
//! each queue's `consumer_flag` what it is doing, and moderation follows:
//!
//! | consumer | meaning | interrupts |
//! |---|---|---|
//! | polling | on a CPU, reading the rings | none (it will see the completions) |
//! | armed | blocked, waiting for this interrupt | at most one per `latency_interval` |
//! | idle | neither (descheduled, busy elsewhere) | at most one per `overflow_interval` |
//!
//! after the cooperated-moderation design: a short latency interval while
//! the consumer is active, a long overflow interval to wake an inactive one
//! in time for what matters. Whatever the interval:
//!
//! - `frame_threshold` completions pending interrupt at once;
//! - a ring filled to `high_watermark_pct` interrupts at once (a critical
//!   event: the ring is about to overflow);
//! - mode `Off` interrupts for every completion;
//! - mode `Adaptive` picks the interval from the observed completion rate
//!   (in the spirit of Linux's net_dim): the interval that would gather
//!   [`ADAPTIVE_TARGET`] completions per interrupt, at most the configured
//!   latency interval, so a quiet vector interrupts at once and a busy one
//!   gathers.
//!
//! The interval is a minimum spacing between interrupts (like an ITR), not
//! a delay after each completion: a completion arriving long after the
//! last interrupt interrupts at once, so moderation costs nothing when the
//! vector is quiet.
//!
//! Pure and deterministic: time is an argument (ns), so every rule is
//! tested on virtual time.

/// Nanoseconds.
pub type Nanos = u64;

use crate::abi::{ConsumerFlag, ModerationMode};

/// A vector's moderation settings (as the device applied them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The moderation mode.
    pub mode: ModerationMode,
    /// Minimum spacing while the consumer is armed, ns.
    pub latency_ns: Nanos,
    /// Minimum spacing while the consumer is idle, ns.
    pub overflow_ns: Nanos,
    /// Interrupt once this many completions are pending (0: no threshold).
    pub frame_threshold: u32,
    /// Interrupt at once when a ring is this full, percent (0: never).
    pub high_watermark_pct: u8,
}

impl Config {
    /// One interrupt per completion.
    pub const OFF: Config = Config {
        mode: ModerationMode::Off,
        latency_ns: 0,
        overflow_ns: 0,
        frame_threshold: 0,
        high_watermark_pct: 0,
    };
}

impl From<&crate::abi::Moderation> for Config {
    /// The ABI's settings (microseconds) in ns.
    fn from(m: &crate::abi::Moderation) -> Config {
        Config {
            mode: m.mode(),
            latency_ns: u64::from(m.latency_interval_us.get()) * 1_000,
            overflow_ns: u64::from(m.overflow_interval_us.get()) * 1_000,
            frame_threshold: m.frame_threshold.get(),
            high_watermark_pct: m.high_watermark_pct,
        }
    }
}

/// What the device should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Raise the interrupt now.
    Fire,
    /// Raise it at this time unless something changes first.
    At(Nanos),
    /// Nothing pending (or the consumer polls).
    None,
}

/// Completions per interrupt the adaptive mode aims for.
pub const ADAPTIVE_TARGET: u64 = 64;
/// Weight of the newest rate sample in the adaptive mode's average, 1/2^k.
const RATE_SHIFT: u32 = 2;

/// One vector's moderation state.
#[derive(Debug, Clone)]
pub struct Moderator {
    cfg: Config,
    /// Completions since the last interrupt (or since the consumer last
    /// polled).
    pending: u64,
    /// When the last interrupt fired (`None`: never).
    last_fire: Option<Nanos>,
    /// Completions between the last two interrupts, and when the window
    /// started: the adaptive mode's rate sample.
    window_start: Nanos,
    window_count: u64,
    /// Completion rate, per second, smoothed (adaptive).
    rate: u64,
}

impl Moderator {
    /// A moderator with settings `cfg`, nothing pending, that has never
    /// fired.
    pub fn new(cfg: Config) -> Moderator {
        Moderator {
            cfg,
            pending: 0,
            last_fire: None,
            window_start: 0,
            window_count: 0,
            rate: 0,
        }
    }

    /// The settings in force.
    pub fn config(&self) -> Config {
        self.cfg
    }

    /// Apply new settings (pending completions stay pending).
    pub fn set_config(&mut self, cfg: Config) {
        self.cfg = cfg;
    }

    /// Completions pending an interrupt.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// The adaptive mode's smoothed completion rate, per second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// The minimum spacing that applies now.
    pub fn interval(&self, consumer: ConsumerFlag) -> Nanos {
        match (self.cfg.mode, consumer) {
            (ModerationMode::Off, _) | (_, ConsumerFlag::Polling) => 0,
            (ModerationMode::Fixed, ConsumerFlag::Armed) => self.cfg.latency_ns,
            (ModerationMode::Fixed | ModerationMode::Adaptive, ConsumerFlag::Idle) => {
                self.cfg.overflow_ns.max(self.cfg.latency_ns)
            }
            (ModerationMode::Adaptive, ConsumerFlag::Armed) => {
                if self.rate == 0 {
                    return 0;
                }
                let want = ADAPTIVE_TARGET.saturating_mul(1_000_000_000) / self.rate;
                want.min(self.cfg.latency_ns)
            }
        }
    }

    /// The device posted a completion at `now`; the ring it went to is now
    /// `fill_pct` full.
    pub fn completion(&mut self, now: Nanos, consumer: ConsumerFlag, fill_pct: u8) -> Action {
        self.window_count += 1;
        if consumer == ConsumerFlag::Polling {
            // The consumer sees it without an interrupt.
            self.pending = 0;
            return Action::None;
        }
        self.pending += 1;
        let hw = self.cfg.high_watermark_pct;
        if self.cfg.mode == ModerationMode::Off
            || (self.cfg.frame_threshold > 0 && self.pending >= u64::from(self.cfg.frame_threshold))
            || (hw > 0 && fill_pct >= hw)
        {
            return Action::Fire;
        }
        self.due(now, consumer)
    }

    /// What is due at `now` (a timer expired, or the consumer's state
    /// changed).
    pub fn poll(&mut self, now: Nanos, consumer: ConsumerFlag) -> Action {
        if consumer == ConsumerFlag::Polling {
            self.pending = 0;
            return Action::None;
        }
        if self.pending == 0 {
            return Action::None;
        }
        self.due(now, consumer)
    }

    fn due(&self, now: Nanos, consumer: ConsumerFlag) -> Action {
        let at = match self.last_fire {
            None => now,
            Some(t) => t.saturating_add(self.interval(consumer)),
        };
        if at <= now {
            Action::Fire
        } else {
            Action::At(at)
        }
    }

    /// The device raised the interrupt at `now`.
    pub fn fired(&mut self, now: Nanos) {
        self.pending = 0;
        self.last_fire = Some(now);
        // Rate sample over the window since the last interrupt, at least a
        // microsecond long so one burst does not read as an infinite rate.
        let dt = now.saturating_sub(self.window_start).max(1_000);
        let sample = (u128::from(self.window_count) * 1_000_000_000 / u128::from(dt)).min(u128::from(u64::MAX)) as u64;
        self.rate = if self.rate == 0 {
            sample
        } else {
            self.rate - (self.rate >> RATE_SHIFT) + (sample >> RATE_SHIFT)
        };
        self.window_start = now;
        self.window_count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const US: Nanos = 1_000;

    fn fixed() -> Config {
        Config {
            mode: ModerationMode::Fixed,
            latency_ns: 20 * US,
            overflow_ns: 200 * US,
            frame_threshold: 0,
            high_watermark_pct: 0,
        }
    }

    /// Drive a moderator: completions at `times`, timers honoured; returns
    /// when interrupts fired.
    fn simulate(cfg: Config, consumer: ConsumerFlag, times: &[Nanos]) -> Vec<Nanos> {
        let mut m = Moderator::new(cfg);
        let mut fired = Vec::new();
        let mut timer: Option<Nanos> = None;
        let step = |m: &mut Moderator, a: Action, now: Nanos, timer: &mut Option<Nanos>, fired: &mut Vec<Nanos>| match a
        {
            Action::Fire => {
                m.fired(now);
                fired.push(now);
                *timer = None;
            }
            Action::At(t) => *timer = Some(t),
            Action::None => *timer = None,
        };
        for &t in times {
            while let Some(d) = timer.filter(|&d| d <= t) {
                let a = m.poll(d, consumer);
                step(&mut m, a, d, &mut timer, &mut fired);
            }
            let a = m.completion(t, consumer, 0);
            step(&mut m, a, t, &mut timer, &mut fired);
        }
        while let Some(d) = timer {
            let a = m.poll(d, consumer);
            step(&mut m, a, d, &mut timer, &mut fired);
        }
        fired
    }

    #[test]
    fn abi_settings_convert_to_ns() {
        let m = crate::abi::Moderation {
            vector: 1.into(),
            mode: ModerationMode::Fixed.raw(),
            high_watermark_pct: 80,
            latency_interval_us: 20.into(),
            overflow_interval_us: 200.into(),
            frame_threshold: 32.into(),
        };
        let c = Config::from(&m);
        assert_eq!(
            c,
            Config {
                mode: ModerationMode::Fixed,
                latency_ns: 20 * US,
                overflow_ns: 200 * US,
                frame_threshold: 32,
                high_watermark_pct: 80
            }
        );
    }

    #[test]
    fn off_interrupts_for_every_completion() {
        let times: Vec<Nanos> = (0..10).map(|i| i * 100).collect();
        assert_eq!(simulate(Config::OFF, ConsumerFlag::Armed, &times), times);
    }

    #[test]
    fn polling_consumers_get_no_interrupt_and_nothing_stays_pending() {
        let mut m = Moderator::new(Config::OFF);
        assert_eq!(m.completion(0, ConsumerFlag::Polling, 99), Action::None);
        assert_eq!(m.pending(), 0);
        let mut f = Moderator::new(fixed());
        f.fired(0);
        assert_eq!(f.completion(1, ConsumerFlag::Armed, 0), Action::At(20 * US));
        // The consumer started polling before the timer: it saw them.
        assert_eq!(f.poll(5 * US, ConsumerFlag::Polling), Action::None);
        assert_eq!(
            f.poll(20 * US, ConsumerFlag::Armed),
            Action::None,
            "nothing pending any more"
        );
    }

    #[test]
    fn a_quiet_vector_interrupts_at_once() {
        // Completions 1 ms apart, a 20 us interval: each interrupts when it
        // comes, no added delay.
        let times: Vec<Nanos> = (0..5).map(|i| i * 1_000 * US).collect();
        assert_eq!(simulate(fixed(), ConsumerFlag::Armed, &times), times);
    }

    #[test]
    fn latency_interval_spaces_interrupts_while_armed() {
        // A completion every microsecond for 100 us: the first interrupts at
        // once, then one per 20 us, and the tail is not forgotten.
        let times: Vec<Nanos> = (0..100).map(|i| i * US).collect();
        let f = simulate(fixed(), ConsumerFlag::Armed, &times);
        assert_eq!(f, vec![0, 20 * US, 40 * US, 60 * US, 80 * US, 100 * US]);
    }

    #[test]
    fn overflow_interval_spaces_interrupts_while_idle() {
        let times: Vec<Nanos> = (0..500).map(|i| i * US).collect();
        let f = simulate(fixed(), ConsumerFlag::Idle, &times);
        assert_eq!(f, vec![0, 200 * US, 400 * US, 600 * US]);
    }

    #[test]
    fn frame_threshold_fires_before_the_interval() {
        let cfg = Config {
            frame_threshold: 8,
            ..fixed()
        };
        let times: Vec<Nanos> = (0..40).map(|i| i * 100).collect();
        let f = simulate(cfg, ConsumerFlag::Armed, &times);
        // First at once, then every 8th completion (0.8 us apart), well
        // inside the 20 us interval; the last 7 wait for the interval.
        assert_eq!(f, vec![0, 800, 1600, 2400, 3200, 3200 + 20 * US]);
    }

    #[test]
    fn high_watermark_is_a_critical_event() {
        let cfg = Config {
            high_watermark_pct: 80,
            ..fixed()
        };
        let mut m = Moderator::new(cfg);
        m.fired(0);
        assert_eq!(m.completion(US, ConsumerFlag::Idle, 79), Action::At(200 * US));
        assert_eq!(
            m.completion(2 * US, ConsumerFlag::Idle, 80),
            Action::Fire,
            "at once, idle or not"
        );
    }

    #[test]
    fn the_consumer_waking_up_shortens_the_wait() {
        let mut m = Moderator::new(fixed());
        m.fired(0);
        assert_eq!(m.completion(US, ConsumerFlag::Idle, 0), Action::At(200 * US));
        // It armed: the latency interval applies from the last interrupt.
        assert_eq!(m.poll(10 * US, ConsumerFlag::Armed), Action::At(20 * US));
        assert_eq!(m.poll(25 * US, ConsumerFlag::Armed), Action::Fire);
    }

    #[test]
    fn adaptive_gathers_under_load_and_not_when_quiet() {
        let cfg = Config {
            mode: ModerationMode::Adaptive,
            latency_ns: 100 * US,
            ..fixed()
        };
        // 5 Mpps for 2 ms: about 64 completions per interrupt.
        let busy: Vec<Nanos> = (0..10_000).map(|i| i * 200).collect();
        let f = simulate(cfg, ConsumerFlag::Armed, &busy);
        let per_irq = busy.len() as f64 / f.len() as f64;
        assert!((48.0..=80.0).contains(&per_irq), "{per_irq} completions per interrupt");
        // 1 kpps: every completion interrupts at once.
        let quiet: Vec<Nanos> = (0..20).map(|i| i * 1_000 * US).collect();
        assert_eq!(simulate(cfg, ConsumerFlag::Armed, &quiet), quiet);
        // Never longer than the latency interval, at any rate.
        let mut m = Moderator::new(cfg);
        m.rate = 1;
        assert_eq!(m.interval(ConsumerFlag::Armed), 100 * US);
    }

    proptest! {
        /// For any configuration and arrivals: no completion is left
        /// without an interrupt (the last interrupt comes at or after the
        /// last completion), and interrupts are never closer than the
        /// interval unless a threshold or the watermark fired them.
        #[test]
        fn no_lost_wakeup(
            gaps in proptest::collection::vec(0u64..50_000, 1..200),
            lat in 0u64..50_000,
            ovf in 0u64..500_000,
            idle in any::<bool>(),
            mode in 0u8..3,
        ) {
            let cfg = Config {
                mode: [ModerationMode::Off, ModerationMode::Fixed, ModerationMode::Adaptive][usize::from(mode)],
                latency_ns: lat,
                overflow_ns: ovf,
                frame_threshold: 0,
                high_watermark_pct: 0,
            };
            let consumer = if idle { ConsumerFlag::Idle } else { ConsumerFlag::Armed };
            let mut t = 0;
            let times: Vec<Nanos> = gaps.iter().map(|g| { t += g; t }).collect();
            let f = simulate(cfg, consumer, &times);
            prop_assert!(!f.is_empty());
            prop_assert!(*f.last().unwrap() >= *times.last().unwrap());
            if cfg.mode == ModerationMode::Fixed {
                let spacing = if idle { ovf.max(lat) } else { lat };
                for w in f.windows(2) {
                    prop_assert!(w[1] - w[0] >= spacing, "{:?}", w);
                }
            }
        }
    }
}
