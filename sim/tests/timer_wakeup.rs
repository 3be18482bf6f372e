//! The moderation timer keeps time at low load whatever the host's
//! wakeups do: the engine thread's waiting policy
//! (`sim::device::engine::IdleWait`, what the real-clock engine thread
//! runs) drives the device on virtual time against a modelled host whose
//! sleeps end only on its 1 ms scheduler tick. Frames come at 1 kpps,
//! fixed moderation makes every other interrupt wait for a timer whose
//! deadline falls between two frames; each interrupt must be raised at
//! its deadline, not at the next tick (which is the next frame's pass).

#![allow(missing_debug_implementations)]

mod common;

use common::*;
use dataplane::abi::*;
use sim::device::engine::IdleWait;
use sim::device::DeviceConfig;
use sim::port::GenConfig;
use sim::{ClockKind, ModelHost, PortSpec, Sim, SimConfig};

const US: u64 = 1_000;
const MS: u64 = 1_000 * US;
/// What one engine pass costs the modelled host.
const PASS_NS: u64 = US;
/// The modelled host ends every sleep on its next tick.
const TICK: u64 = MS;
/// The latency interval: after an interrupt at a frame, the next frame's
/// interrupt waits until 1.3 ms after it, between two frames.
const LATENCY_US: u32 = 1_300;

/// The engine thread's loop on virtual time against the modelled host.
/// Returns the device time of each pass that raised vector 0's interrupt.
fn run_engine(s: &Sim, f: &RawFn, wait: &mut IdleWait, until: u64) -> Vec<u64> {
    let host = ModelHost {
        pass_ns: PASS_NS,
        tick_ns: TICK,
    };
    let mut irqs = Vec::new();
    while s.clock().now() < until {
        let (_, at) = s.engine_turn(wait, &host);
        if f.take_interrupts(0) > 0 {
            irqs.push(at);
        }
    }
    irqs
}

#[test]
fn a_timer_interrupt_comes_at_its_deadline_not_with_the_next_frame() {
    let s = Sim::start(SimConfig {
        device: DeviceConfig {
            vfs: 1,
            ..DeviceConfig::default()
        },
        clock: ClockKind::Virtual,
        port: PortSpec::Gen(GenConfig {
            rate_pps: 1_000,
            sizes: vec![(64, 1)],
            flows: vec![lif_mac(0)],
            count: Some(400),
        }),
        ..SimConfig::default()
    })
    .expect("sim starts");
    let mut f = RawFn::ready(s.vf_socket(0).unwrap());
    let (lif, slot) = f.create_lif("vf0");
    assert_eq!(lif, 0, "the generator's flow goes to the first LIF");
    let mut rx = f.create_queue::<RxDesc>(lif, slot, QueueType::Rx, 9, Some(0));
    let bufs: Vec<u64> = (0..400).map(|_| f.alloc(2048, 64)).collect();
    let descs: Vec<RxDesc> = bufs.iter().map(|&a| RxDesc::new(a, 2048)).collect();
    assert!(rx.ring.fill_bulk(&descs));
    f.ring_doorbell(&mut rx);
    let m = Moderation {
        vector: 0.into(),
        mode: ModerationMode::Fixed.raw(),
        high_watermark_pct: 0,
        latency_interval_us: LATENCY_US.into(),
        overflow_interval_us: LATENCY_US.into(),
        frame_threshold: 0.into(),
    };
    let (st, _) = f.admin(AdminCommand::ModerationSet(m), LIF_NONE);
    assert_eq!(st, AdminStatus::Ok);
    f.set_consumer_flag(&rx, ConsumerFlag::Armed.raw());

    let mut wait = IdleWait::new(SimConfig::default().max_idle_sleep.as_nanos() as u64);
    // Long enough for the policy to learn the host's wakeups (about a
    // hundred sleeps).
    let warm = 200 * MS;
    run_engine(&s, &f, &mut wait, warm);
    s.device().reset_timer_lateness();
    let irqs = run_engine(&s, &f, &mut wait, warm + 60 * MS);

    // The device's own account: every timer interrupt at its deadline.
    let late = s.device().timer_lateness();
    assert!(late.len() >= 30, "{} timer interrupts", late.len());
    assert!(
        late.max() <= 2 * PASS_NS,
        "timer interrupts raised up to {} ns after their deadline (p50 {} ns)",
        late.max(),
        late.value_at_quantile(0.5)
    );

    // And the driver's: each interrupt comes when fixed moderation says,
    // the first completion after the last interrupt or the latency
    // interval after it, whichever is later.
    let mut stamps = Vec::new();
    while let Some(c) = f.completion(&mut rx) {
        stamps.push(u64::from(c.timestamp));
    }
    let lat = u64::from(LATENCY_US) * US;
    let mut between_frames = 0;
    for w in irqs.windows(2) {
        let first = stamps
            .iter()
            .copied()
            .find(|&c| c >= w[0] + PASS_NS)
            .expect("an interrupt after the last completion");
        let due = first.max(w[0] + lat);
        assert!(
            (due..=due + 2 * PASS_NS).contains(&w[1]),
            "interrupt at {} µs, due at {} µs (last at {} µs, next completion at {} µs)",
            w[1] as f64 / 1e3,
            due as f64 / 1e3,
            w[0] as f64 / 1e3,
            first as f64 / 1e3
        );
        if w[1] % MS > 50 * US && w[1] % MS < 950 * US {
            between_frames += 1;
        }
    }
    assert!(between_frames >= 30, "{between_frames} interrupts between frames");
}
