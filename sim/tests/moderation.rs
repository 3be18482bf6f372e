//! Interrupt moderation on the simulated device, on virtual time: frames
//! arrive from the wire at an exact rate, the "driver" is this test
//! (it sets the RX queue's consumer flag, consumes completions when the
//! interrupt comes), and every rule of `dataplane::moderation` is checked
//! where the driver sees it: on the vector's eventfd.

#![allow(missing_debug_implementations)]

mod common;

use common::*;
use dataplane::abi::*;
use sim::device::DeviceConfig;
use sim::port::GenConfig;
use sim::{ClockKind, PortSpec, Sim, SimConfig};

const US: u64 = 1_000;
/// RX ring of 512 entries, 256 buffers posted.
const RX_ORDER: u8 = 9;
const NBUF: u32 = 256;

/// One VF with an RX queue on vector 0, fed by the wire generator at
/// `rate_pps` for `count` frames.
struct Rig {
    s: Sim,
    b: Port1,
    /// Next RX ring index to post a buffer at.
    post_at: u32,
    /// Completions consumed.
    consumed: u64,
    /// Device timestamps of consumed completions.
    stamps: Vec<u64>,
}

impl Rig {
    fn new(rate_pps: u64, count: u64) -> Rig {
        let s = Sim::start(SimConfig {
            device: DeviceConfig {
                vfs: 1,
                ..DeviceConfig::default()
            },
            clock: ClockKind::Virtual,
            port: PortSpec::Gen(GenConfig {
                rate_pps,
                sizes: vec![(64, 1)],
                flows: vec![lif_mac(0)],
                count: Some(count),
            }),
            ..SimConfig::default()
        })
        .expect("sim starts");
        let mut f = RawFn::ready(s.vf_socket(0).unwrap());
        let (lif, slot) = f.create_lif("vf0");
        assert_eq!(lif, 0, "the generator's flow goes to the first LIF");
        let tx = f.create_queue::<TxDesc>(lif, slot, QueueType::Tx, 6, None);
        let mut rx = f.create_queue::<RxDesc>(lif, slot, QueueType::Rx, RX_ORDER, Some(0));
        let rx_bufs: Vec<u64> = (0..NBUF).map(|_| f.alloc(2048, 64)).collect();
        let descs: Vec<RxDesc> = rx_bufs.iter().map(|&a| RxDesc::new(a, 2048)).collect();
        assert!(rx.ring.fill_bulk(&descs));
        f.ring_doorbell(&mut rx);
        let b = Port1 {
            f,
            lif,
            mac: lif_mac(lif),
            tx,
            rx,
            rx_bufs,
        };
        Rig {
            s,
            b,
            post_at: NBUF,
            consumed: 0,
            stamps: Vec::new(),
        }
    }

    fn moderate(&mut self, m: Moderation) -> Moderation {
        let (st, _) = self.b.f.admin(AdminCommand::ModerationSet(m), LIF_NONE);
        assert_eq!(st, AdminStatus::Ok, "ModerationSet");
        let dma = self.b.f.alloc(64, 64);
        let (st, _) = self.b.f.admin(
            AdminCommand::ModerationGet(ModerationRef {
                vector: 0.into(),
                dma: DmaRef::new(dma, 16),
                ..Default::default()
            }),
            LIF_NONE,
        );
        assert_eq!(st, AdminStatus::Ok, "ModerationGet");
        Moderation::read_from_bytes(&self.b.f.mem.read(dma, 16)).unwrap()
    }

    fn flag(&self, f: ConsumerFlag) {
        self.b.f.set_consumer_flag(&self.b.rx, f.raw());
    }

    /// Take every completion and give its buffer back; returns how many.
    fn consume(&mut self) -> u64 {
        let mut n = 0;
        while let Some(c) = self.b.f.completion(&mut self.b.rx) {
            assert_eq!(c.status, CompStatus::Ok);
            self.stamps.push(u64::from(c.timestamp));
            n += 1;
        }
        if n > 0 {
            self.b.rx.ring.reclaim().unwrap();
            let descs: Vec<RxDesc> = (0..n)
                .map(|k| RxDesc::new(self.b.rx_bufs[((self.post_at + k as u32) % NBUF) as usize], 2048))
                .collect();
            assert!(self.b.rx.ring.fill_bulk(&descs));
            self.post_at += n as u32;
            self.b.f.ring_doorbell(&mut self.b.rx);
        }
        self.consumed += n;
        n
    }

    /// Run `until` in 1 µs steps ending half-way between the generator's
    /// microsecond ticks; at each interrupt, consume (a driver woken by
    /// it) if `consume_on_irq`. Returns (step end, completions taken) per
    /// interrupt.
    fn run(&mut self, until: u64, consume_on_irq: bool) -> Vec<(u64, u64)> {
        let mut irqs = Vec::new();
        loop {
            let now = self.s.device().now();
            if now >= until {
                break;
            }
            self.s.advance(US - (now + US / 2) % US);
            let n = self.b.f.take_interrupts(0);
            if n > 0 {
                let took = if consume_on_irq { self.consume() } else { 0 };
                for k in 0..n {
                    irqs.push((self.s.device().now(), if k == 0 { took } else { 0 }));
                }
            }
        }
        irqs
    }

    fn lif_counter(&self, c: LifCounter) -> u64 {
        self.s.device().lif(self.b.lif).unwrap().counter(c)
    }
}

fn fixed(latency_us: u32, overflow_us: u32) -> Moderation {
    Moderation {
        vector: 0.into(),
        mode: ModerationMode::Fixed.raw(),
        high_watermark_pct: 0,
        latency_interval_us: latency_us.into(),
        overflow_interval_us: overflow_us.into(),
        frame_threshold: 0.into(),
    }
}

fn gaps(irqs: &[(u64, u64)]) -> Vec<u64> {
    irqs.windows(2).map(|w| w[1].0 - w[0].0).collect()
}

#[test]
fn off_raises_one_interrupt_per_completion() {
    // 2 Mpps: two frames per microsecond step, each its own interrupt.
    let mut r = Rig::new(2_000_000, 100);
    r.flag(ConsumerFlag::Armed);
    let irqs = r.run(100 * US, true);
    assert_eq!(r.consumed, 100);
    assert_eq!(irqs.len(), 100, "one interrupt per completion");
    assert_eq!(r.lif_counter(LifCounter::Interrupts), 100);
}

#[test]
fn polling_consumers_get_no_interrupt_whatever_the_mode() {
    let mut r = Rig::new(1_000_000, 20);
    r.flag(ConsumerFlag::Polling);
    assert!(r.run(30 * US, false).is_empty());
    assert_eq!(r.consume(), 20);
    assert_eq!(r.lif_counter(LifCounter::InterruptsSuppressed), 20);
    assert_eq!(r.lif_counter(LifCounter::Interrupts), 0);
}

#[test]
fn latency_interval_spaces_interrupts_while_armed_and_the_tail_is_not_lost() {
    // A frame per microsecond for 100 µs, latency interval 20 µs.
    let mut r = Rig::new(1_000_000, 100);
    let applied = r.moderate(fixed(20, 200));
    assert_eq!(applied, fixed(20, 200), "applied as given (1 µs steps)");
    r.flag(ConsumerFlag::Armed);
    let irqs = r.run(300 * US, true);
    assert_eq!(r.consumed, 100, "every completion taken on an interrupt");
    let first = r.stamps[0];
    assert!(irqs[0].0 - first <= US, "a quiet vector interrupts at once");
    for g in gaps(&irqs) {
        assert_eq!(g, 20 * US, "interrupts every latency interval while completions come");
    }
    assert_eq!(irqs.len(), 6, "100 µs of completions: at 0, 20, .., 100 µs");
    assert!(
        irqs.last().unwrap().0 >= *r.stamps.last().unwrap(),
        "the tail gets its interrupt"
    );
    let batch: Vec<u64> = irqs.iter().map(|i| i.1).collect();
    assert!(
        batch[1..5].iter().all(|&b| b == 20),
        "20 completions per interrupt: {batch:?}"
    );
}

#[test]
fn overflow_interval_spaces_interrupts_while_idle() {
    // 100 kpps: 20 frames per overflow interval, within the 32 buffers.
    let mut r = Rig::new(100_000, 50);
    r.moderate(fixed(20, 200));
    r.flag(ConsumerFlag::Idle);
    let irqs = r.run(1_000 * US, true);
    assert_eq!(r.consumed, 50);
    for g in gaps(&irqs) {
        assert_eq!(g, 200 * US, "inactive consumer: the overflow interval");
    }
    assert_eq!(irqs.len(), 4, "500 µs of completions: at 0, 200, 400, 600 µs");
}

#[test]
fn arming_shortens_a_pending_overflow_interval_to_the_latency_interval() {
    let mut r = Rig::new(1_000_000, 30);
    r.moderate(fixed(20, 200));
    r.flag(ConsumerFlag::Idle);
    let first = r.run(10 * US, true);
    assert_eq!(first.len(), 1, "the first completion interrupts at once");
    let t0 = first[0].0;
    // Completions pending, the overflow timer at t0 + 200 µs. The consumer
    // arms at 50 µs: more than the latency interval since the last
    // interrupt, so the next pass interrupts.
    let none = r.run(50 * US, true);
    assert!(none.is_empty(), "nothing before the consumer arms: {none:?}");
    r.flag(ConsumerFlag::Armed);
    let irqs = r.run(60 * US, true);
    assert_eq!(irqs.len(), 1);
    assert!(irqs[0].0 <= 52 * US && irqs[0].0 < t0 + 200 * US, "at {} ns", irqs[0].0);
    assert_eq!(r.consumed, 30);
}

#[test]
fn polling_cancels_a_pending_interrupt() {
    let mut r = Rig::new(1_000_000, 30);
    r.moderate(fixed(20, 200));
    r.flag(ConsumerFlag::Idle);
    assert_eq!(r.run(10 * US, true).len(), 1);
    // The consumer polls: it will see what is pending, no interrupt.
    r.flag(ConsumerFlag::Polling);
    assert!(r.run(400 * US, false).is_empty());
    r.consume();
    assert_eq!(r.consumed, 30);
}

#[test]
fn frame_threshold_interrupts_before_the_interval() {
    let mut r = Rig::new(1_000_000, 65);
    let mut m = fixed(1_000, 1_000);
    m.frame_threshold = 8.into();
    r.moderate(m);
    r.flag(ConsumerFlag::Armed);
    let irqs = r.run(80 * US, true);
    assert_eq!(r.consumed, 65);
    let batch: Vec<u64> = irqs.iter().map(|i| i.1).collect();
    assert_eq!(
        batch,
        vec![1, 8, 8, 8, 8, 8, 8, 8, 8],
        "the first at once, then every 8"
    );
}

#[test]
fn high_watermark_is_a_critical_event() {
    // Ring of 512 completions; 128 waiting is 25 %: interrupt at once even
    // though the latency interval (10 ms) has not passed.
    let mut r = Rig::new(1_000_000, 300);
    let mut m = fixed(10_000, 10_000);
    m.high_watermark_pct = 25;
    r.moderate(m);
    r.flag(ConsumerFlag::Armed);
    let irqs = r.run(350 * US, true);
    let batch: Vec<u64> = irqs.iter().map(|i| i.1).collect();
    assert_eq!(batch, vec![1, 128, 128], "at once, then at every 128 waiting");
    // Without the watermark the same traffic gets one interrupt.
    let mut r = Rig::new(1_000_000, 300);
    r.moderate(fixed(10_000, 10_000));
    r.flag(ConsumerFlag::Armed);
    assert_eq!(r.run(350 * US, true).len(), 1);
}

#[test]
fn adaptive_gathers_under_load_and_interrupts_at_once_when_quiet() {
    // Quiet: 10 kpps, 100 µs apart; each completion interrupts the step
    // it is written.
    let mut r = Rig::new(10_000, 20);
    let mut m = fixed(100, 400);
    m.mode = ModerationMode::Adaptive.raw();
    r.moderate(m);
    r.flag(ConsumerFlag::Armed);
    let irqs = r.run(2_000 * US, true);
    assert_eq!(irqs.len(), 20);
    for (i, s) in irqs.iter().zip(&r.stamps) {
        assert!(i.0.abs_diff(*s) <= US, "interrupt at {} ns, its completion at {s}", i.0);
    }
    // Busy: 2 Mpps for 4 ms. The interval grows to gather the target,
    // capped by the latency interval (100 µs = 200 frames at this rate).
    let mut r = Rig::new(2_000_000, 8_000);
    r.moderate(m);
    r.flag(ConsumerFlag::Armed);
    let irqs = r.run(4_100 * US, true);
    assert_eq!(r.consumed, 8_000);
    let late: Vec<u64> = irqs[irqs.len() / 2..irqs.len() - 1].iter().map(|i| i.1).collect();
    let mean = late.iter().sum::<u64>() as f64 / late.len() as f64;
    assert!(
        (48.0..=96.0).contains(&mean),
        "about {} completions per interrupt at steady state, got {mean}",
        dataplane::moderation::ADAPTIVE_TARGET
    );
    let cur = r.b.f.bar0_read(INTR_CTRL_OFFSET + 0x1c, 4);
    let cur = u32::from_le_bytes(cur.try_into().unwrap());
    assert!(
        (24..=48).contains(&cur),
        "current interval {cur} µs (64 frames at 2 Mpps: 32 µs)"
    );
}

#[test]
fn off_clears_the_intervals_and_reset_restores_off() {
    let mut r = Rig::new(1_000_000, 10);
    let mut m = fixed(20, 200);
    m.mode = ModerationMode::Off.raw();
    m.high_watermark_pct = 50;
    let applied = r.moderate(m);
    assert_eq!(applied.mode(), ModerationMode::Off);
    assert_eq!(applied.latency_interval_us.get(), 0);
    assert_eq!(applied.high_watermark_pct, 50);
    r.flag(ConsumerFlag::Armed);
    assert_eq!(r.run(20 * US, true).len(), 10);
}
