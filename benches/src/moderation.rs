//! Interrupt-moderation benchmark: the driver in interrupt mode receives
//! a constant-rate stream from the simulated wire on one RX queue, with
//! moderation off, fixed or adaptive, at offered loads from 1 kpps to more
//! than the simulator can carry.
//!
//! Real time on this machine (moderation is about real wakeups): the
//! simulator's engine thread and the driver thread share the two CPUs.
//! The generator stamps each frame with its arrival time on the device
//! clock; the driver reads the same clock when a burst comes out of
//! `rx_burst`. Two latencies per frame: wire arrival to driver (end to
//! end, including the simulator's own wakeups), and completion to driver
//! (from the completion's device timestamp): the interrupt path, the part
//! moderation acts on. What a mode adds is its figure minus `off`'s at the
//! same load.

use dataplane::abi::{LifCounter, Moderation, ModerationMode};
use host_driver::backend::vfio_user::VfioUserBackend;
use host_driver::irq::Waiter;
use host_driver::mem::{DmaMemory, MemKind};
use host_driver::nic::{Nic, NicConfig};
use host_driver::pool::{Mbuf, Pool};
use sim::device::DeviceConfig;
use sim::port::GenConfig;
use sim::{ClockKind, PortSpec, Sim, SimConfig};
use std::sync::Arc;
use std::time::Duration;

const POOL_IOVA: u64 = 0x40_0000_0000;
/// RX ring of 4096 entries.
const RX_ORDER: u8 = 12;

/// A moderation setting under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Setting {
    Off,
    Fixed,
    Adaptive,
}

impl Setting {
    pub const ALL: [Setting; 3] = [Setting::Off, Setting::Fixed, Setting::Adaptive];

    pub fn name(self) -> &'static str {
        match self {
            Setting::Off => "off",
            Setting::Fixed => "fixed",
            Setting::Adaptive => "adaptive",
        }
    }

    /// What the driver asks the device for (vector 0).
    pub fn moderation(self, p: &Params) -> Moderation {
        let mode = match self {
            Setting::Off => ModerationMode::Off,
            Setting::Fixed => ModerationMode::Fixed,
            Setting::Adaptive => ModerationMode::Adaptive,
        };
        Moderation {
            vector: 0.into(),
            mode: mode.raw(),
            high_watermark_pct: p.high_watermark_pct,
            latency_interval_us: p.latency_us.into(),
            overflow_interval_us: p.overflow_us.into(),
            frame_threshold: 0.into(),
        }
    }
}

/// The moderation parameters of the fixed and adaptive modes.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Params {
    pub latency_us: u32,
    pub overflow_us: u32,
    pub high_watermark_pct: u8,
}

impl Params {
    pub const STANDARD: Params = Params {
        latency_us: 20,
        overflow_us: 200,
        high_watermark_pct: 75,
    };

    /// The timer probe: at 1 kpps the standard 20 µs interval never makes
    /// an interrupt wait (every frame comes long after the last
    /// interrupt), so no timer runs. A 1300 µs interval makes every other
    /// frame's interrupt wait for a timer whose deadline falls between
    /// frames (0.3, 0.6, .. ms after one): the device must wake by itself
    /// to raise it, from idle.
    pub const TIMER_PROBE: Params = Params {
        latency_us: 1_300,
        overflow_us: 1_300,
        high_watermark_pct: 75,
    };
}

/// An empty latency histogram (ns, 1 ns .. 60 s, 3 significant digits).
pub fn histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

/// The machine's own wakeup latency, the floor of the device's timer
/// lateness, measured in the bench's own run and under the same
/// conditions: while `f` runs, a thread that sleeps the way the
/// simulator's engine thread does (`park_timeout`, timer slack set to
/// 1 µs) to deadlines `period` after its last wakeup records how late it
/// woke each time (ns). Returns what `f` returned and that histogram.
pub fn wakeup_floor_during<T>(period: Duration, f: impl FnOnce() -> T) -> (T, hdrhistogram::Histogram<u64>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let t = std::thread::Builder::new()
        .name("wakeup-floor".into())
        .spawn(move || {
            // As the engine thread does (sim's `engine`).
            // SAFETY: prctl with integer arguments; no memory involved.
            unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000, 0, 0, 0) };
            let mut h = histogram();
            let mut deadline = std::time::Instant::now() + period;
            while !s.load(Ordering::Relaxed) {
                let woke = loop {
                    let now = std::time::Instant::now();
                    if now >= deadline {
                        break now;
                    }
                    // Early returns (spurious or not) sleep again.
                    std::thread::park_timeout(deadline - now);
                };
                h.saturating_record((woke - deadline).as_nanos() as u64);
                deadline = woke + period;
            }
            h
        })
        .expect("spawn the wakeup-floor thread");
    let out = f();
    stop.store(true, Ordering::Relaxed);
    let h = t.join().expect("the wakeup-floor thread");
    (out, h)
}

/// One measured point.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Point {
    /// Wire arrival to driver, ns (all frames of the window).
    #[serde(skip)]
    pub wire: hdrhistogram::Histogram<u64>,
    /// Completion written to driver, ns.
    #[serde(skip)]
    pub completion: hdrhistogram::Histogram<u64>,
    /// Moderation timer lateness in the window, ns: per interrupt raised
    /// for a timer, the device clock when it was raised minus the timer's
    /// deadline (`sim::device::Device::timer_lateness`).
    #[serde(skip)]
    pub lateness: hdrhistogram::Histogram<u64>,
    /// Timer interrupts in the window (the lateness histogram's count).
    pub timer_interrupts: u64,
    /// Timer lateness, ns.
    pub lateness_p50_ns: u64,
    pub lateness_p99_ns: u64,
    pub lateness_p999_ns: u64,
    pub lateness_max_ns: u64,
    pub setting: Setting,
    pub offered_pps: u64,
    /// Length of the measured window, ns.
    pub window_ns: u64,
    /// Frames the driver received that arrived in the window.
    pub received: u64,
    pub received_pps: f64,
    /// Interrupts the device raised in the window, and per second.
    pub interrupts: u64,
    pub interrupts_per_s: f64,
    /// Received frames per interrupt.
    pub packets_per_interrupt: f64,
    /// Times the driver blocked, in the window, and waits that ended by
    /// timeout rather than an interrupt (a lost wakeup would show here).
    pub sleeps: u64,
    pub wait_timeouts: u64,
    /// Wire arrival to the driver, ns.
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
    /// Completion to the driver, ns.
    pub completion_p50_ns: u64,
    pub completion_p99_ns: u64,
    pub completion_p999_ns: u64,
    /// Frames the device dropped in the window (all reasons), and frames
    /// the generator could not offer in time (the simulator saturated).
    pub device_drops: u64,
    pub not_offered: u64,
}

/// A fresh simulator with the generator at `rate_pps` to LIF 0, the
/// driver's VF with one RX queue on vector 0, moderation set to `setting`.
struct Rig {
    sim: Sim,
    pool: Pool,
    nic: Nic,
    lif: host_driver::nic::Lif,
    rx: host_driver::queue::RxQueue,
    waiter: Waiter,
}

fn rig(clock: ClockKind, setting: Setting, p: &Params, rate_pps: u64) -> Result<Rig, String> {
    let e = |what: &'static str| move |err: &dyn std::fmt::Display| format!("{what}: {err}");
    let sim = Sim::start(SimConfig {
        device: DeviceConfig {
            vfs: 1,
            ..DeviceConfig::default()
        },
        clock,
        port: PortSpec::Gen(GenConfig {
            rate_pps,
            sizes: vec![(64, 1)],
            flows: vec![dataplane::abi::lif_mac(0)],
            count: None,
        }),
        ..SimConfig::default()
    })
    .map_err(|x| e("simulator")(&x))?;
    let sock = sim.vf_socket(0).ok_or("no VF socket")?;
    let ring = 1u32 << RX_ORDER;
    let buffers = (2 * ring).next_power_of_two();
    let mem = Arc::new(
        DmaMemory::new(u64::from(buffers) * 2048 + (2 << 20), POOL_IOVA, MemKind::Pages)
            .map_err(|x| e("DMA memory")(&x))?,
    );
    let mut pool = Pool::new(mem.clone(), buffers).map_err(|x| e("pool")(&x))?;
    let mut nic = Nic::open(
        Box::new(VfioUserBackend::connect(sock).map_err(|x| e("VF")(&x))?),
        &NicConfig::default(),
    )
    .map_err(|x| e("bring-up")(&x))?;
    nic.map_memory(&mem).map_err(|x| e("map")(&x))?;
    let lif = nic.create_lif("rx", None).map_err(|x| e("LIF")(&x))?;
    if lif.id != 0 {
        return Err(format!("the generator sends to LIF 0, the LIF is {}", lif.id));
    }
    let mut rx = nic.create_rxq(&lif, RX_ORDER, Some(0)).map_err(|x| e("RX queue")(&x))?;
    rx.refill(&mut pool).map_err(|x| e("refill")(&x))?;
    let want = setting.moderation(p);
    let applied = nic.set_moderation(want).map_err(|x| e("moderation")(&x))?;
    if applied.mode() != want.mode() {
        return Err(format!("device applied {applied:?} for {want:?}"));
    }
    let waiter = Waiter::new([nic.eventfd(0).ok_or("no vector 0")?]).map_err(|x| e("waiter")(&x))?;
    Ok(Rig {
        sim,
        pool,
        nic,
        lif,
        rx,
        waiter,
    })
}

/// Run one point: a fresh simulator with the generator at `rate_pps`, the
/// driver in interrupt mode with `setting`, `warmup` then `window`.
pub fn run(setting: Setting, p: &Params, rate_pps: u64, warmup: Duration, window: Duration) -> Result<Point, String> {
    let e = |what: &'static str| move |err: &dyn std::fmt::Display| format!("{what}: {err}");
    let Rig {
        sim,
        mut pool,
        mut nic,
        lif,
        mut rx,
        mut waiter,
    } = rig(ClockKind::Real, setting, p, rate_pps)?;
    let clock = sim.clock().clone();

    let mut hist = histogram();
    let mut chist = hist.clone();
    let mut out: Vec<Mbuf> = Vec::with_capacity(256);
    let start = clock.now();
    let t_measure = start + warmup.as_nanos() as u64;
    let t_end = t_measure + window.as_nanos() as u64;
    let mut base = None;
    let mut received = 0u64;
    loop {
        let now = clock.now();
        if base.is_none() && now >= t_measure {
            let st = nic.stats(lif.id).map_err(|x| e("stats")(&x))?;
            let mut d = sim.device();
            d.reset_timer_lateness();
            base = Some((st, waiter.stats(), d.port.stats().dropped, now));
        }
        if now >= t_end {
            break;
        }
        let n = rx.rx_burst(&mut pool, &mut out, 256).map_err(|x| e("rx")(&x))?;
        if n == 0 {
            let left = Duration::from_nanos(t_end.saturating_sub(now)).min(Duration::from_millis(10));
            waiter
                .wait(&[&rx], left.max(Duration::from_millis(1)))
                .map_err(|x| e("wait")(&x))?;
            continue;
        }
        let seen = clock.now();
        for m in out.drain(..) {
            let d = pool.data(&m);
            let sent = u64::from_le_bytes(d[50..58].try_into().expect("8 bytes"));
            if sent >= t_measure && sent < t_end {
                hist.saturating_record(seen.saturating_sub(sent).max(1));
                // The completion's timestamp is the device clock's low 32 bits.
                let ts = m.rx_meta().timestamp;
                chist.saturating_record(u64::from((seen as u32).wrapping_sub(ts)).max(1));
                received += 1;
            }
            pool.free(m);
        }
    }
    let (b_st, b_w, b_drop, b_now) = base.ok_or("the window never started")?;
    let st = nic.stats(lif.id).map_err(|x| e("stats")(&x))?;
    let w = waiter.stats();
    let (not_offered, lateness) = {
        let d = sim.device();
        (d.port.stats().dropped - b_drop, d.timer_lateness())
    };
    let window_ns = clock.now() - b_now;
    let interrupts = st.get(LifCounter::Interrupts) - b_st.get(LifCounter::Interrupts);
    drop(rx);
    drop(nic);
    sim.shutdown();
    let secs = window_ns as f64 / 1e9;
    Ok(Point {
        setting,
        offered_pps: rate_pps,
        window_ns,
        received,
        received_pps: received as f64 / secs,
        interrupts,
        interrupts_per_s: interrupts as f64 / secs,
        packets_per_interrupt: if interrupts == 0 {
            received as f64
        } else {
            received as f64 / interrupts as f64
        },
        sleeps: w.sleeps - b_w.sleeps,
        wait_timeouts: w.timeouts - b_w.timeouts,
        p50_ns: hist.value_at_quantile(0.5),
        p99_ns: hist.value_at_quantile(0.99),
        p999_ns: hist.value_at_quantile(0.999),
        max_ns: hist.max(),
        completion_p50_ns: chist.value_at_quantile(0.5),
        completion_p99_ns: chist.value_at_quantile(0.99),
        completion_p999_ns: chist.value_at_quantile(0.999),
        wire: hist,
        completion: chist,
        timer_interrupts: lateness.len(),
        lateness_p50_ns: lateness.value_at_quantile(0.5),
        lateness_p99_ns: lateness.value_at_quantile(0.99),
        lateness_p999_ns: lateness.value_at_quantile(0.999),
        lateness_max_ns: lateness.max(),
        lateness,
        device_drops: st.dropped() - b_st.dropped(),
        not_offered,
    })
}

/// The timer probe on virtual time: the engine thread's own waiting
/// policy (`sim::device::engine::IdleWait`, what the real-clock engine
/// runs) drives the device against a modelled host (`host`: what a pass
/// costs, and the scheduler tick every sleep ends on), the driver taking
/// each interrupt as it comes. Deterministic: the device's timer lateness
/// (ns) over `window` after `warmup`, the same on every machine, so a
/// short run judges it.
pub fn virtual_probe(
    setting: Setting,
    p: &Params,
    rate_pps: u64,
    host: sim::ModelHost,
    warmup: Duration,
    window: Duration,
) -> Result<hdrhistogram::Histogram<u64>, String> {
    let e = |what: &'static str| move |err: &dyn std::fmt::Display| format!("{what}: {err}");
    let Rig {
        sim,
        mut pool,
        nic,
        lif: _,
        mut rx,
        mut waiter,
    } = rig(ClockKind::Virtual, setting, p, rate_pps)?;
    let efd = nic.eventfd(0).ok_or("no vector 0")?;
    let mut out: Vec<Mbuf> = Vec::with_capacity(256);
    let mut wait = sim::device::engine::IdleWait::new(SimConfig::default().max_idle_sleep.as_nanos() as u64);
    let t_measure = sim.clock().now() + warmup.as_nanos() as u64;
    let t_end = t_measure + window.as_nanos() as u64;
    let mut measuring = false;
    // Asleep on the interrupt from the start.
    let _ = waiter.arm(&[&rx]);
    while sim.clock().now() < t_end {
        if !measuring && sim.clock().now() >= t_measure {
            sim.device().reset_timer_lateness();
            measuring = true;
        }
        sim.engine_turn(&mut wait, &host);
        if efd.read().is_err() {
            continue;
        }
        // Woken: take everything, then sleep again.
        loop {
            rx.set_polling();
            while rx.rx_burst(&mut pool, &mut out, 256).map_err(|x| e("rx")(&x))? > 0 {
                for m in out.drain(..) {
                    pool.free(m);
                }
            }
            rx.refill(&mut pool).map_err(|x| e("refill")(&x))?;
            if !waiter.arm(&[&rx]) {
                break;
            }
        }
    }
    let lateness = sim.device().timer_lateness();
    drop(rx);
    drop(nic);
    sim.shutdown();
    Ok(lateness)
}
