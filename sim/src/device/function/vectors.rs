//! A function's MSI-X vectors: their interrupt control blocks, masking,
//! and raising interrupts as each vector's moderation decides.

use super::*;
use hdrhistogram::Histogram;

/// How late moderation timers fire: for every interrupt raised at or
/// after a vector's timer deadline, the device clock when it was raised
/// minus the deadline, ns. Allocated at the first record (a function
/// whose vectors never wait costs nothing).
#[derive(Debug, Default)]
pub struct TimerLateness(Option<Box<Histogram<u64>>>);

impl TimerLateness {
    /// Longest lateness told apart, ns (later saturates here).
    pub const MAX_NS: u64 = 60_000_000_000;

    /// An empty histogram with the bounds every record uses (1 ns to
    /// [`TimerLateness::MAX_NS`], 2 significant digits: 1 %, some 30 KB).
    pub fn empty() -> Histogram<u64> {
        Histogram::new_with_bounds(1, Self::MAX_NS, 2).expect("valid bounds")
    }

    /// One timer interrupt raised `ns` after its deadline.
    pub fn record(&mut self, ns: u64) {
        self.0
            .get_or_insert_with(|| Box::new(Self::empty()))
            .saturating_record(ns);
    }

    /// What was recorded since the last [`TimerLateness::clear`].
    pub fn histogram(&self) -> Option<&Histogram<u64>> {
        self.0.as_deref()
    }

    /// Start over.
    pub fn clear(&mut self) {
        if let Some(h) = self.0.as_mut() {
            h.reset();
        }
    }
}

/// One MSI-X vector.
#[derive(Debug)]
pub struct Vector {
    /// Signalled to deliver the interrupt (from vfio-user `SET_IRQS`).
    pub eventfd: Option<File>,
    /// The MSI-X table entry (address, data, vector control).
    pub msix_entry: [u8; 16],
    /// Pending bit: an interrupt arrived while masked.
    pub pending: bool,
    /// Mask set through the interrupt control block.
    pub ctrl_mask: bool,
    /// Applied moderation.
    pub moderation: Moderation,
    /// Interrupts raised and not yet acknowledged through `credits`.
    pub credits: u32,
    /// The moderation state machine for `moderation`.
    pub moderator: Moderator,
    /// When moderation raises the interrupt unless something changes
    /// (`Some(0)`: look again at the next pass, the settings changed).
    pub timer: Option<Nanos>,
    /// What the vector's consumer was doing when `timer` was set.
    pub timer_consumer: ConsumerFlag,
    /// The LIF whose completions are pending (counted when the timer
    /// fires).
    pub lif: u16,
    /// Scratch for one engine pass: what the consumers of this vector's
    /// queues are doing (armed wins over polling over idle).
    pub seen: Option<ConsumerFlag>,
}

impl Vector {
    pub(super) fn new(vector: u16) -> Vector {
        let mut msix_entry = [0u8; 16];
        msix_entry[12] = 1; // masked at reset, per PCI
        Vector {
            eventfd: None,
            msix_entry,
            pending: false,
            ctrl_mask: false,
            moderation: default_moderation(vector),
            credits: 0,
            moderator: Moderator::new(moderation::Config::OFF),
            timer: None,
            timer_consumer: ConsumerFlag::Idle,
            lif: 0,
            seen: None,
        }
    }

    /// Apply moderation settings (already validated): pending completions
    /// are re-evaluated under the new rules on the next pass.
    pub fn set_moderation(&mut self, m: Moderation) {
        self.moderation = m;
        self.moderator.set_config(moderation::Config::from(&m));
        self.timer_consumer = ConsumerFlag::Idle;
        if self.moderator.pending() > 0 {
            self.timer = Some(0);
        }
    }

    pub(super) fn masked(&self) -> bool {
        self.msix_entry[12] & 1 != 0 || self.ctrl_mask
    }
}

/// Moderation at reset: off (one interrupt per completion).
pub fn default_moderation(vector: u16) -> Moderation {
    Moderation {
        vector: vector.into(),
        mode: ModerationMode::Off.raw(),
        ..Default::default()
    }
}

pub(super) fn intr_ctrl(vec: &Vector) -> IntrCtrl {
    let m = &vec.moderation;
    IntrCtrl {
        latency_interval_us: m.latency_interval_us,
        overflow_interval_us: m.overflow_interval_us,
        frame_threshold: m.frame_threshold,
        mode: u32::from(m.mode).into(),
        mask: u32::from(vec.ctrl_mask).into(),
        credits: vec.credits.into(),
        pending: u32::from(vec.pending).into(),
        current_interval_us: ((vec.moderator.interval(ConsumerFlag::Armed) / 1_000).min(u64::from(u32::MAX)) as u32)
            .into(),
    }
}

impl Function {
    pub(super) fn intr_ctrl_write(&mut self, within: usize, data: &[u8]) -> Bar0Effect {
        // Only aligned 32-bit writes to `mask` and `credits` mean anything.
        let v = within / INTR_CTRL_STRIDE as usize;
        let reg = (within % INTR_CTRL_STRIDE as usize) as u64;
        let Some(vec) = self.vectors.get_mut(v) else {
            self.counters.ignored_writes += 1;
            return Bar0Effect::None;
        };
        if data.len() != 4 {
            self.counters.ignored_writes += 1;
            return Bar0Effect::None;
        }
        let value = u32::from_le_bytes(data.try_into().expect("4 bytes"));
        match reg {
            abi::intr_ctrl::MASK => {
                let was = vec.masked();
                vec.ctrl_mask = value & 1 != 0;
                if was && !vec.masked() {
                    return Bar0Effect::Unmask(v as u16);
                }
            }
            abi::intr_ctrl::CREDITS => {
                vec.credits = vec.credits.saturating_sub(value & !abi::intr_ctrl::CREDITS_UNMASK);
                if value & abi::intr_ctrl::CREDITS_UNMASK != 0 && vec.ctrl_mask {
                    vec.ctrl_mask = false;
                    if !vec.masked() {
                        return Bar0Effect::Unmask(v as u16);
                    }
                }
            }
            _ => self.counters.ignored_writes += 1,
        }
        Bar0Effect::None
    }

    /// Send vector `v`'s interrupt, or mark it pending if masked. Returns
    /// whether a message was sent.
    pub fn fire(&mut self, v: u16) -> bool {
        if !self.config.bus_master() || !self.config.msix_enabled() {
            self.counters.interrupts_blocked += 1;
            return false;
        }
        let function_masked = self.config.msix_function_masked();
        let Some(vec) = self.vectors.get_mut(usize::from(v)) else {
            return false;
        };
        if function_masked || vec.masked() {
            vec.pending = true;
            return false;
        }
        vec.pending = false;
        vec.credits = vec.credits.saturating_add(1);
        if self.lose_interrupts > 0 {
            // Fault injection: raised, never delivered.
            self.lose_interrupts -= 1;
            self.counters.interrupts_lost += 1;
            self.counters.interrupts += 1;
            return true;
        }
        if let Some(fd) = &vec.eventfd {
            // An eventfd counts; EAGAIN (counter full) means it is already
            // signalled, which is all an interrupt needs.
            let _ = (&*fd).write(&1u64.to_ne_bytes());
        }
        self.counters.interrupts += 1;
        true
    }

    /// Deliver a pending interrupt after an unmask.
    pub fn unmasked(&mut self, v: u16) {
        if self.vectors.get(usize::from(v)).is_some_and(|vec| vec.pending) {
            self.fire(v);
        }
    }

    /// After MSI-X enable or function unmask: deliver what is pending.
    /// `n` completions for vector `v` from LIF `lif`'s queue, whose
    /// consumer is doing `consumer` and whose completion ring is now
    /// `fill_pct` full: moderation decides whether to interrupt now, later
    /// (the vector's timer), or not at all. Returns the interrupts raised.
    pub fn completions(&mut self, v: u16, lif: u16, now: Nanos, consumer: ConsumerFlag, fill_pct: u8, n: u32) -> u64 {
        let Some(vec) = self.vectors.get_mut(usize::from(v)) else {
            return 0;
        };
        vec.lif = lif;
        let mut raised = 0;
        for _ in 0..n {
            let a = self.vectors[usize::from(v)]
                .moderator
                .completion(now, consumer, fill_pct);
            raised += self.act(v, a, now, consumer);
        }
        raised
    }

    /// Timers due at `now`, and pending interrupts whose consumer changed
    /// since their timer was set (arming shortens an overflow interval to
    /// the latency interval; polling cancels). Uses and clears the
    /// vectors' `seen` scratch. Returns (LIF, interrupts) per interrupt.
    pub fn expire(&mut self, now: Nanos, raised: &mut Vec<(u16, u64)>) {
        for v in 0..self.vectors.len() {
            let vec = &mut self.vectors[v];
            let consumer = vec.seen.take().unwrap_or(ConsumerFlag::Idle);
            let Some(t) = vec.timer else { continue };
            if t > now && consumer == vec.timer_consumer {
                continue;
            }
            let a = vec.moderator.poll(now, consumer);
            let lif = vec.lif;
            let n = self.act(v as u16, a, now, consumer);
            if n > 0 {
                raised.push((lif, n));
            }
        }
    }

    /// Carry out a moderation decision for vector `v`.
    pub(super) fn act(&mut self, v: u16, a: Action, now: Nanos, consumer: ConsumerFlag) -> u64 {
        match a {
            Action::Fire => {
                let vec = &mut self.vectors[usize::from(v)];
                vec.moderator.fired(now);
                // Raised for a timer that is due (by the timer's pass or by
                // a completion's, whichever came first): how late. (A timer
                // at 0 is no deadline: new settings, look again.)
                let due = vec.timer.take().filter(|&t| t > 0 && t <= now);
                let sent = self.fire(v);
                if let Some(t) = due.filter(|_| sent) {
                    self.timer_lateness.record(now - t);
                }
                u64::from(sent)
            }
            Action::At(t) => {
                let vec = &mut self.vectors[usize::from(v)];
                vec.timer = Some(t);
                vec.timer_consumer = consumer;
                0
            }
            Action::None => {
                self.vectors[usize::from(v)].timer = None;
                0
            }
        }
    }

    /// The soonest moderation timer of this function's vectors.
    pub fn next_timer(&self) -> Option<Nanos> {
        self.vectors.iter().filter_map(|v| v.timer).min()
    }
}
