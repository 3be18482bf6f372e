//! nicdrv's traffic generator survives a queue error mid-run: the device
//! stops one LIF's TX queue on an injected bad descriptor, the generator
//! resets the queue and goes on, and its books still balance with the
//! lost frames counted under "queue_reset".

// The set-up host-driver's integration tests use, shared, not copied.
#[path = "../../host-driver/tests/support/mod.rs"]
mod support;

use host_driver::mem::MemKind;
use host_driver::nic::NicConfig;
use nicdrv::apps::gen::{self, Flows, GenConfig};
use nicdrv::apps::{Mode, Ports};
use sim::device::faults::Fault;
use sim::{ClockKind, PortSpec, Sim};
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use support::{open_shared_vfs, start_sim};

#[test]
fn gen_resets_a_stopped_queue_and_the_books_balance() {
    let sim = start_sim(2, ClockKind::Real, PortSpec::Null);
    let nics = open_shared_vfs(&sim, 2, &NicConfig::default());
    let mut ports = Ports::setup(nics, 1, 8, 4096, Mode::Poll, MemKind::Pages).unwrap();
    let lif = ports.ports[0].lif.id;
    let cfg = GenConfig {
        rate_pps: 200_000,
        ports: Vec::new(),
        sizes: vec![(64, 1)],
        flows: Flows::Ring,
        duration: Duration::from_millis(600),
        stats_interval: Duration::from_secs(3600),
        burst: 16,
        seed: 3,
        live: false,
    };
    let stop = AtomicBool::new(false);
    let report = std::thread::scope(|s| {
        let sim = &sim;
        s.spawn(move || {
            // Twice, well inside the run.
            for _ in 0..2 {
                std::thread::sleep(Duration::from_millis(150));
                sim.device().inject(Fault::BadDescriptor { lif, queue: 0 }).unwrap();
            }
        });
        gen::run(&mut ports, &cfg, &stop, &mut |_| std::ops::ControlFlow::Continue(())).unwrap()
    });
    let c = &report.conservation;
    assert!(c.balanced, "books: {c:?}");
    let resets = report.lifs[0].drops.get("queue_reset").copied().unwrap_or(0);
    assert!(
        resets >= 1,
        "the bad descriptors cost frames, counted: {:?}",
        report.lifs[0].drops
    );
    assert!(
        report.lifs[0].received > 1000 && report.lifs[1].received > 1000,
        "traffic went on"
    );
}

/// Two VFs (admin timeout 100 ms, so the watchdog's health check is quick)
/// with one LIF each, polled, rings of `2^order`.
fn two_vfs(order: u8) -> (Sim, Ports) {
    let sim = start_sim(2, ClockKind::Real, PortSpec::Null);
    let cfg = NicConfig {
        timeout: Duration::from_millis(100),
        ..NicConfig::default()
    };
    let nics = open_shared_vfs(&sim, 2, &cfg);
    let ports = Ports::setup(nics, 1, order, 8192, Mode::Poll, MemKind::Pages).unwrap();
    (sim, ports)
}

fn gen_cfg(ms: u64, rate_pps: u64) -> GenConfig {
    GenConfig {
        rate_pps,
        ports: Vec::new(),
        sizes: vec![(64, 1)],
        flows: Flows::Ring,
        duration: Duration::from_millis(ms),
        stats_interval: Duration::from_secs(3600),
        burst: 16,
        seed: 4,
        live: false,
    }
}

#[test]
fn gen_brings_back_a_function_that_reset_and_the_books_balance() {
    // 50 kpps on rings of 256: a debug build on a busy machine runs the RX
    // rings dry now and then, and the device's drop counts on the LIF the
    // reset takes away come back through the function's retired counters.
    let (sim, mut ports) = two_vfs(8);
    let vf0 = ports.nics[0].lock().unwrap().identity.function_id;
    let old_lif = ports.ports[0].lif.id;
    let cfg = gen_cfg(1500, 50_000);
    let stop = AtomicBool::new(false);
    let report = std::thread::scope(|s| {
        let sim = &sim;
        s.spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            sim.device().inject(Fault::ResetFunction { function: vf0 }).unwrap();
        });
        gen::run(&mut ports, &cfg, &stop, &mut |_| std::ops::ControlFlow::Continue(())).unwrap()
    });
    let c = &report.conservation;
    assert!(c.balanced, "books: {c:?}\n{}", report.text());
    assert!(report.fault.is_none());
    assert!(
        report.events.iter().any(|e| e.contains("had reset")),
        "the watchdog saw it: {:?}",
        report.events
    );
    // Frames the reset function held (or frames to its old LIF's MAC from
    // the other side) are counted with a reason; traffic flowed again both
    // ways on the new LIF after recovery.
    let new_lif = report.lifs[0].lif;
    assert_ne!(new_lif, u16::MAX);
    let _ = old_lif;
    assert!(
        report.lifs[0].received > 8_000 && report.lifs[1].received > 8_000,
        "{}",
        report.text()
    );
    assert!(report.lifs[0].sent > report.lifs[0].received / 2);
}

#[test]
fn gen_stops_clearly_when_the_simulator_vanishes() {
    // Rings of 1024 at 10 kpps: 100 ms of buffering, so that even a debug
    // build on a busy machine never runs the RX rings dry: a drop the
    // device counted before it vanished could not be read back.
    let (sim, mut ports) = two_vfs(10);
    let cfg = gen_cfg(5000, 10_000);
    let stop = AtomicBool::new(false);
    let t = std::time::Instant::now();
    let report = std::thread::scope(|s| {
        let sim = &sim;
        s.spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            sim.vanish();
        });
        gen::run(&mut ports, &cfg, &stop, &mut |_| std::ops::ControlFlow::Continue(())).unwrap()
    });
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "it stopped at the vanish, not at the end of the run"
    );
    let fault = report.fault.as_deref().expect("a fault is reported");
    assert!(fault.contains("the device is gone"), "{fault}");
    assert!(report.text().contains("STOPPED: "), "{}", report.text());
    // What the rings held is counted as lost with the device; at this rate
    // the device dropped nothing before, so the books still balance.
    let c = &report.conservation;
    assert!(c.balanced, "books: {c:?}\n{}", report.text());
    assert!(
        report.lifs.iter().any(|l| l.drops.contains_key("device_gone")),
        "{}",
        report.text()
    );
}
