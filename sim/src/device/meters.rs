//! A LIF's meters, one per resource, with their policies, and what they
//! say about the LIF right now.
//!
//! Meters are charged after a packet is processed, with what it really
//! used (packets, bytes, pipeline cost, DMA bytes), and regulate the LIF's
//! further input: a meter that turned red keeps its LIF regulated until it
//! has repaid its debt: the packet that turned it red and whatever the LIF
//! used while red (a deprioritized LIF is still served when the others are
//! idle). The marking itself is RFC 2697/2698, which take no tokens for a
//! red packet; without the debt a LIF far over its rate would be green
//! again as soon as one packet's worth refilled, and the meter would
//! hardly regulate it. The debt is capped at the meter's depth (one
//! burst), so a LIF that stops overusing is regulated for at most the
//! time that burst takes to refill.

use dataplane::abi::{AdminStatus, MeterConfig, MeterMode, MeterPolicy, MeterResource};
use dataplane::fair::Class;
use dataplane::meter::{Amount, Bytes, Color, Cost, DmaBytes, LevelMeter, Meter, Nanos, Packets, Resource};

/// What one packet used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub cost: u64,
    pub dma_bytes: u64,
}

/// One rate meter with its policy and regulation state.
#[derive(Debug, Clone, Copy)]
struct Slot<R> {
    meter: Meter<R>,
    policy: MeterPolicy,
    /// What the LIF owes the meter (0: not regulating).
    debt: u64,
    /// The amount of the last packet colored: the best guess of the next.
    last: u64,
}

impl<R: Resource> Slot<R> {
    fn off() -> Self {
        Slot {
            meter: Meter::Off,
            policy: MeterPolicy::Backpressure,
            debt: 0,
            last: 0,
        }
    }

    /// Color a packet of `amount` (takes tokens, owes nothing yet). An
    /// off meter colors green and keeps nothing: it never regulates.
    #[inline]
    fn color(&mut self, now: Nanos, amount: u64) -> Color {
        if !self.meter.is_on() {
            return Color::Green;
        }
        self.last = amount;
        self.meter.color(now, Amount::new(amount))
    }

    /// Color a packet of `amount` the LIF was served, owing it when red.
    #[inline]
    fn charge(&mut self, now: Nanos, amount: u64) -> Color {
        let c = self.color(now, amount);
        if c == Color::Red {
            self.owe(amount);
        }
        c
    }

    /// Right after a packet of `amount` was charged: out of debt, and
    /// another like it would pass now, what [`Slot::red`] asks at this
    /// time (the charge refilled the meter to now, and with no debt there
    /// is nothing to repay).
    #[inline]
    fn passes_again(&self, amount: u64) -> bool {
        self.debt == 0 && (amount == 0 || self.meter.would_pass_held(Amount::new(amount)))
    }

    /// The LIF was served a packet of `amount` this meter colored red.
    fn owe(&mut self, amount: u64) {
        let cap = self.meter.depth().max(amount).max(1);
        self.debt = self.debt.saturating_add(amount.max(1)).min(cap);
    }

    /// Red now: still in debt after repaying what has refilled since, or
    /// unable to pass another packet like the last one (so a LIF held to
    /// its rate is held before its next packet, which is then green,
    /// rather than after it).
    #[inline]
    fn red(&mut self, now: Nanos) -> bool {
        if self.debt > 0 {
            let paid = self.meter.repay(now, Amount::new(self.debt)).get();
            self.debt -= paid.min(self.debt);
            if self.debt > 0 {
                return true;
            }
        }
        self.last > 0 && !self.meter.would_pass(now, Amount::new(self.last))
    }
}

/// Every meter of a LIF.
#[derive(Debug, Clone)]
pub struct LifMeters {
    packets: Slot<Packets>,
    bytes: Slot<Bytes>,
    cost: Slot<Cost>,
    dma: Slot<DmaBytes>,
    in_flight: (LevelMeter, MeterPolicy),
    /// Which of them are on (the `ON_*` bits): the data path looks only
    /// at those.
    on: u8,
    /// No rate meter is red until the next packet is charged: at the last
    /// charge every one that is on was out of debt and still held the
    /// tokens for another packet like the one it took. Tokens only grow
    /// until a packet takes some, so that holds at any later time, and
    /// [`LifMeters::class`] need not look at the rate meters (it would
    /// find none red). Cleared by anything else that changes a meter.
    clear: bool,
}

const ON_PACKETS: u8 = 1;
const ON_BYTES: u8 = 2;
const ON_COST: u8 = 4;
const ON_DMA: u8 = 8;
const ON_IN_FLIGHT: u8 = 16;

impl Default for LifMeters {
    fn default() -> Self {
        LifMeters {
            packets: Slot::off(),
            bytes: Slot::off(),
            cost: Slot::off(),
            dma: Slot::off(),
            in_flight: (LevelMeter::OFF, MeterPolicy::Backpressure),
            on: 0,
            clear: false,
        }
    }
}

impl LifMeters {
    /// Apply a `MeterSet` (already validated by the ABI decoder).
    pub fn set(&mut self, cfg: &MeterConfig, now: Nanos) -> Result<(), (AdminStatus, String)> {
        let policy = MeterPolicy::from_raw(cfg.policy).map_err(|e| (AdminStatus::Invalid, e.to_string()))?;
        let bad = |e: dataplane::meter::MeterError| (AdminStatus::Invalid, e.to_string());
        match cfg.resource() {
            MeterResource::Packets => self.packets = slot(Meter::from_config(cfg, now).map_err(bad)?, policy),
            MeterResource::Bytes => self.bytes = slot(Meter::from_config(cfg, now).map_err(bad)?, policy),
            MeterResource::Cost => self.cost = slot(Meter::from_config(cfg, now).map_err(bad)?, policy),
            MeterResource::DmaBytes => self.dma = slot(Meter::from_config(cfg, now).map_err(bad)?, policy),
            MeterResource::DescInFlight => self.in_flight = (LevelMeter::from_config(cfg), policy),
        }
        self.on = [
            (self.packets.meter.is_on(), ON_PACKETS),
            (self.bytes.meter.is_on(), ON_BYTES),
            (self.cost.meter.is_on(), ON_COST),
            (self.dma.meter.is_on(), ON_DMA),
            (self.in_flight.0 != LevelMeter::OFF, ON_IN_FLIGHT),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .fold(0, |m, (_, bit)| m | bit);
        self.clear = false;
        Ok(())
    }

    /// What a `MeterGet` reports: the configuration as applied.
    pub fn applied(&self, resource: MeterResource) -> MeterConfig {
        match resource {
            MeterResource::Packets => self.packets.meter.applied(self.packets.policy),
            MeterResource::Bytes => self.bytes.meter.applied(self.bytes.policy),
            MeterResource::Cost => self.cost.meter.applied(self.cost.policy),
            MeterResource::DmaBytes => self.dma.meter.applied(self.dma.policy),
            MeterResource::DescInFlight => {
                let (l, policy) = self.in_flight;
                if l == LevelMeter::OFF {
                    MeterConfig {
                        resource: resource.raw(),
                        policy: policy.raw(),
                        ..Default::default()
                    }
                } else {
                    MeterConfig {
                        resource: resource.raw(),
                        mode: MeterMode::TrTcm.raw(),
                        policy: policy.raw(),
                        cburst: l.yellow_at.into(),
                        pburst: l.red_at.into(),
                        ..Default::default()
                    }
                }
            }
        }
    }

    /// Whether any meter is configured.
    #[inline]
    pub fn any_on(&self) -> bool {
        self.on != 0
    }

    /// Whether regulation needs the LIF's descriptor backlog.
    #[inline]
    pub fn needs_backlog(&self) -> bool {
        self.on & ON_IN_FLIGHT != 0
    }

    /// Charge a processed packet; returns the worst color it got (green
    /// when no meter is on). Only the meters that are on are looked at.
    #[inline]
    pub fn charge(&mut self, now: Nanos, u: Usage) -> Color {
        let on = self.on;
        let mut worst = Color::Green;
        let mut clear = true;
        if on & ON_PACKETS != 0 {
            worst = worst.max(self.packets.charge(now, 1));
            clear &= self.packets.passes_again(1);
        }
        if on & ON_BYTES != 0 {
            worst = worst.max(self.bytes.charge(now, u.bytes));
            clear &= self.bytes.passes_again(u.bytes);
        }
        if on & ON_COST != 0 {
            worst = worst.max(self.cost.charge(now, u.cost));
            clear &= self.cost.passes_again(u.cost);
        }
        if on & ON_DMA != 0 {
            worst = worst.max(self.dma.charge(now, u.dma_bytes));
            clear &= self.dma.passes_again(u.dma_bytes);
        }
        self.clear = clear;
        worst
    }

    /// Color a frame from the wire to this LIF: red on a meter under the
    /// `Drop` policy means drop it (and then the LIF owes nothing for it).
    /// Returns (worst color, drop?).
    pub fn ingress(&mut self, now: Nanos, u: Usage) -> (Color, bool) {
        self.clear = false;
        let colors = self.colors(now, u);
        let policies = [
            self.packets.policy,
            self.bytes.policy,
            self.cost.policy,
            self.dma.policy,
        ];
        let drop = colors
            .iter()
            .zip(policies)
            .any(|(c, p)| *c == Color::Red && p == MeterPolicy::Drop);
        if !drop {
            self.owe(colors, u);
        }
        (colors.into_iter().max().unwrap_or(Color::Green), drop)
    }

    /// Each rate meter's color for `u`: packets, bytes, cost, DMA bytes.
    fn colors(&mut self, now: Nanos, u: Usage) -> [Color; 4] {
        [
            self.packets.color(now, 1),
            self.bytes.color(now, u.bytes),
            self.cost.color(now, u.cost),
            self.dma.color(now, u.dma_bytes),
        ]
    }

    fn owe(&mut self, colors: [Color; 4], u: Usage) {
        let red = |i: usize| colors[i] == Color::Red;
        if red(0) {
            self.packets.owe(1);
        }
        if red(1) {
            self.bytes.owe(u.bytes);
        }
        if red(2) {
            self.cost.owe(u.cost);
        }
        if red(3) {
            self.dma.owe(u.dma_bytes);
        }
    }

    /// The LIF's class for the fetch scheduler at `now`, given the
    /// descriptors it has waiting (`backlog`): the strictest policy of its
    /// red meters.
    #[inline]
    pub fn class(&mut self, now: Nanos, backlog: u64) -> Class {
        let mut class = if self.clear {
            // What the rate meters would say (see `clear`).
            Class::Normal
        } else {
            self.rate_class(now)
        };
        if self.on & ON_IN_FLIGHT != 0 {
            let (level, policy) = self.in_flight;
            class = class.max(Class::of(level.color(backlog) == Color::Red, policy));
        }
        class
    }

    /// The strictest policy of the red rate meters.
    fn rate_class(&mut self, now: Nanos) -> Class {
        let on = self.on;
        let mut class = Class::Normal;
        if on & ON_PACKETS != 0 {
            class = class.max(Class::of(self.packets.red(now), self.packets.policy));
        }
        if on & ON_BYTES != 0 {
            class = class.max(Class::of(self.bytes.red(now), self.bytes.policy));
        }
        if on & ON_COST != 0 {
            class = class.max(Class::of(self.cost.red(now), self.cost.policy));
        }
        if on & ON_DMA != 0 {
            class = class.max(Class::of(self.dma.red(now), self.dma.policy));
        }
        class
    }
}

fn slot<R: Resource>(meter: Meter<R>, policy: MeterPolicy) -> Slot<R> {
    Slot {
        meter,
        policy,
        debt: 0,
        last: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost_meter(cir: u64, burst: u64, policy: MeterPolicy) -> MeterConfig {
        MeterConfig {
            resource: MeterResource::Cost.raw(),
            mode: MeterMode::SrTcm.raw(),
            policy: policy.raw(),
            cir: cir.into(),
            cburst: burst.into(),
            ..Default::default()
        }
    }

    #[test]
    fn red_regulates_until_refilled() {
        let mut m = LifMeters::default();
        assert!(!m.any_on());
        m.set(&cost_meter(1_000_000, 100, MeterPolicy::Deprioritize), 0)
            .unwrap();
        assert!(m.any_on());
        let u = Usage {
            bytes: 64,
            cost: 60,
            dma_bytes: 80,
        };
        assert_eq!(m.charge(0, u), Color::Green);
        assert_eq!(m.charge(0, u), Color::Red);
        assert_eq!(m.class(0, 0), Class::Deprioritized);
        // It owes the 60 units of the red packet; 40 were left and are
        // repaid at once; at 1 M units/s the other 20 take 20 µs, and the
        // 60 the next packet needs another 60 µs.
        assert_eq!(m.class(19_000, 0), Class::Deprioritized);
        assert_eq!(m.class(79_000, 0), Class::Deprioritized);
        assert_eq!(
            m.class(80_100, 0),
            Class::Normal,
            "(the refill per ns is rounded down in 32.32)"
        );
        // ... and that next packet is green.
        assert_eq!(m.charge(80_100, u), Color::Green);
    }

    #[test]
    fn a_lif_served_while_red_stays_regulated_until_it_repays() {
        let mut m = LifMeters::default();
        m.set(&cost_meter(1_000_000, 100, MeterPolicy::Deprioritize), 0)
            .unwrap();
        let u = Usage {
            bytes: 64,
            cost: 50,
            dma_bytes: 80,
        };
        // 2 green, then 3 served red (others idle): 150 owed, but the debt
        // is capped at the meter's depth (100).
        for _ in 0..2 {
            assert_eq!(m.charge(0, u), Color::Green);
        }
        for _ in 0..3 {
            assert_eq!(m.charge(0, u), Color::Red);
        }
        assert_eq!(m.class(0, 0), Class::Deprioritized);
        assert_eq!(m.class(99_000, 0), Class::Deprioritized, "100 units take 100 µs");
        assert_eq!(
            m.class(149_000, 0),
            Class::Deprioritized,
            "and the next packet's 50 another 50"
        );
        assert_eq!(m.class(150_500, 0), Class::Normal);
        // A LIF under its rate never goes red.
        let mut v = LifMeters::default();
        v.set(&cost_meter(1_000_000, 100, MeterPolicy::Deprioritize), 0)
            .unwrap();
        for k in 1..=1000u64 {
            assert_eq!(v.charge(k * 60_000, u), Color::Green);
            assert_eq!(v.class(k * 60_000, 0), Class::Normal);
        }
    }

    #[test]
    fn backpressure_blocks_and_drop_drops_wire_frames() {
        let mut m = LifMeters::default();
        m.set(&cost_meter(1000, 10, MeterPolicy::Backpressure), 0).unwrap();
        let u = Usage {
            bytes: 64,
            cost: 10,
            dma_bytes: 0,
        };
        m.charge(0, u);
        m.charge(0, u);
        assert_eq!(m.class(0, 0), Class::Blocked);
        let mut d = LifMeters::default();
        d.set(&cost_meter(1000, 10, MeterPolicy::Drop), 0).unwrap();
        assert_eq!(d.ingress(0, u), (Color::Green, false));
        assert_eq!(d.ingress(0, u), (Color::Red, true));
    }

    #[test]
    fn descriptors_in_flight_is_a_level() {
        let mut m = LifMeters::default();
        let cfg = MeterConfig {
            resource: MeterResource::DescInFlight.raw(),
            mode: MeterMode::TrTcm.raw(),
            policy: MeterPolicy::Backpressure.raw(),
            cburst: 100.into(),
            pburst: 200.into(),
            ..Default::default()
        };
        m.set(&cfg, 0).unwrap();
        assert_eq!(m.class(0, 150), Class::Normal);
        assert_eq!(m.class(0, 200), Class::Blocked);
        assert_eq!(m.applied(MeterResource::DescInFlight), cfg);
    }

    #[test]
    fn applied_reports_each_resource() {
        let mut m = LifMeters::default();
        let c = cost_meter(5_000_000, 640, MeterPolicy::Deprioritize);
        m.set(&c, 7).unwrap();
        assert_eq!(m.applied(MeterResource::Cost), c);
        assert_eq!(m.applied(MeterResource::Bytes).mode, MeterMode::Off.raw());
        let too_fast = MeterConfig {
            cir: (dataplane::meter::MAX_RATE + 1).into(),
            ..c
        };
        let (st, why) = m.set(&too_fast, 0).unwrap_err();
        assert_eq!(st, AdminStatus::Invalid);
        assert!(why.contains("cir"), "{why}");
    }

    use proptest::prelude::*;

    proptest! {
        /// The class check's shortcut (`clear`) says what the full check
        /// says, and leaves the meters as the full check would: random
        /// configurations of every rate meter (srTCM and trTCM, each
        /// policy, rates from far below to far above the load), charges
        /// and frames from the wire at random steps of a clock that may
        /// also stand still or step back, and class checks between them,
        /// against a twin whose every check looks at each meter.
        #[test]
        fn the_class_shortcut_agrees_with_the_full_check(
            cfgs in proptest::collection::vec((0u8..4, any::<bool>(), 0u8..3, 1u64..4_000_000, 1u64..3_000, 0u64..3_000), 1..4),
            ops in proptest::collection::vec((0u8..4, 0u64..20_000, 0u64..2_000), 1..300),
        ) {
            let mut fast = LifMeters::default();
            for &(res, tr, pol, rate, cburst, extra) in &cfgs {
                let resource = [MeterResource::Packets, MeterResource::Bytes, MeterResource::Cost, MeterResource::DmaBytes][usize::from(res)];
                let policy = [MeterPolicy::Backpressure, MeterPolicy::Deprioritize, MeterPolicy::Drop][usize::from(pol)];
                let cfg = MeterConfig {
                    resource: resource.raw(),
                    mode: if tr { MeterMode::TrTcm } else { MeterMode::SrTcm }.raw(),
                    policy: policy.raw(),
                    cir: rate.into(),
                    cburst: cburst.into(),
                    eburst: extra.into(),
                    pir: (rate * 2).into(),
                    pburst: (cburst + extra).into(),
                    ..Default::default()
                };
                let set = fast.set(&cfg, 0);
                prop_assert!(set.is_ok(), "every generated configuration is valid: {:?}", set);
            }
            let mut full = fast.clone();
            let mut now: Nanos = 0;
            for &(op, step, amount) in &ops {
                // The clock: mostly forward, sometimes standing, sometimes
                // an earlier time (a meter never runs backwards).
                now = match step % 7 {
                    0 => now,
                    1 => now.saturating_sub(step),
                    _ => now + step,
                };
                let u = Usage { bytes: amount, cost: amount / 3, dma_bytes: amount + 32 };
                match op {
                    0 | 1 => {
                        prop_assert_eq!(fast.charge(now, u), full.charge(now, u));
                    }
                    2 => {
                        prop_assert_eq!(fast.ingress(now, u), full.ingress(now, u));
                    }
                    _ => {}
                }
                full.clear = false;
                prop_assert_eq!(fast.class(now, amount), full.class(now, amount));
                prop_assert_eq!(format!("{:?}", (fast.packets, fast.bytes, fast.cost, fast.dma)),
                    format!("{:?}", (full.packets, full.bytes, full.cost, full.dma)));
            }
        }
    }
}
