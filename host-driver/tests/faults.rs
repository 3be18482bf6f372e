//! Faults the simulator injects (virtual time, seeded where random), and
//! the driver detecting and recovering from each, with the books kept:
//! every frame the driver submitted is received, or dropped with a reason
//! (a reset queue's unsent frames, a device drop counter). Nothing is
//! unaccounted for.

mod support;

use dataplane::abi::{CompStatus, LifCounter};
use dataplane::packet::build_udp4;
use host_driver::irq::Waiter;
use host_driver::mem::{DmaMemory, MemKind};
use host_driver::nic::{Lif, Nic, NicConfig};
use host_driver::pool::{Mbuf, Pool};
use host_driver::queue::{QueueError, RxQueue, TxQueue};
use sim::device::faults::{self, Fault};
use sim::{ClockKind, PortSpec, Sim};
use std::sync::Arc;
use std::time::Duration;
use support::{open_nic, start_sim};

const POOL_IOVA: u64 = 0x50_0000_0000;
const US: u64 = 1_000;

struct Vf {
    nic: Nic,
    lif: Lif,
    tx: TxQueue,
    rx: RxQueue,
}

/// VF0 sends to VF1 through the simulated device; the test is the driver.
struct Rig {
    sim: Sim,
    pool: Pool,
    a: Vf,
    b: Vf,
    seq: u64,
    submitted: u64,
    received: Vec<u64>,
    dropped_by_reset: u64,
    recoveries: Vec<CompStatus>,
}

impl Rig {
    fn new(interrupts: bool) -> Rig {
        let sim = start_sim(2, ClockKind::Virtual, PortSpec::Null);
        let mem = Arc::new(DmaMemory::new(16 << 20, POOL_IOVA, MemKind::Pages).unwrap());
        let mut pool = Pool::new(mem.clone(), 4096).unwrap();
        let mut vf = |i: usize, vector: Option<u16>| {
            // A short admin timeout: a function that reset by itself no
            // longer answers, and the test should not wait long to see it.
            let cfg = NicConfig {
                timeout: Duration::from_millis(100),
                ..NicConfig::default()
            };
            let mut nic = open_nic(sim.vf_socket(i).unwrap(), &cfg, Some(&mem));
            let lif = nic.create_lif(&format!("vf{i}"), None).unwrap();
            let tx = nic.create_txq(&lif, 7, None).unwrap();
            let mut rx = nic.create_rxq(&lif, 10, vector).unwrap();
            if vector.is_none() {
                rx.set_polling();
            }
            rx.refill(&mut pool).unwrap();
            Vf { nic, lif, tx, rx }
        };
        let a = vf(0, None);
        let b = vf(1, interrupts.then_some(0));
        Rig {
            sim,
            pool,
            a,
            b,
            seq: 0,
            submitted: 0,
            received: Vec::new(),
            dropped_by_reset: 0,
            recoveries: Vec::new(),
        }
    }

    /// Offer `n` frames from VF0 (as many as the ring takes); a stopped
    /// queue is detected here and reset.
    fn send(&mut self, n: usize) -> usize {
        let mut burst: Vec<Mbuf> = (0..n)
            .map(|k| {
                let mut m = self.pool.alloc().unwrap();
                let f = build_udp4(
                    self.b.lif.mac,
                    self.a.lif.mac,
                    [10, 0, 0, 1],
                    [10, 0, 0, 2],
                    (1, 2),
                    &(self.seq + k as u64).to_le_bytes(),
                    64,
                );
                self.pool.buffer_mut(&mut m)[..64].copy_from_slice(&f);
                m.set_len(64);
                m
            })
            .collect();
        let sent = match self.a.tx.tx_burst(&mut self.pool, &mut burst) {
            Ok(k) => k,
            Err(QueueError::Device { .. }) => {
                self.recover();
                0
            }
            Err(e) => panic!("unexpected queue error: {e}"),
        };
        self.seq += sent as u64;
        self.submitted += sent as u64;
        for m in burst {
            self.pool.free(m);
        }
        sent
    }

    fn recover(&mut self) {
        let r = self.a.nic.reset_txq(&mut self.a.tx, &mut self.pool).unwrap();
        self.dropped_by_reset += u64::from(r.dropped);
        self.recoveries.push(r.status.expect("a device error"));
    }

    fn receive(&mut self) {
        let mut out = Vec::new();
        self.b.rx.rx_burst(&mut self.pool, &mut out, 1024).unwrap();
        for m in out {
            self.received
                .push(u64::from_le_bytes(self.pool.data(&m)[42..50].try_into().unwrap()));
            self.pool.free(m);
        }
    }

    /// Run the device for `dt` and take what arrived (and notice a stopped
    /// queue between sends, as a driver's reclaim would).
    fn run(&mut self, dt: u64) {
        self.sim.advance(dt);
        self.receive();
        // An idle sender still sees its queue stop (the error completion).
        if let Err(QueueError::Device { .. }) = self.a.tx.tx_burst(&mut self.pool, &mut Vec::new()) {
            self.recover();
        }
    }

    fn device_drops(&mut self) -> u64 {
        let (ia, ib) = (self.a.lif.id, self.b.lif.id);
        self.a.nic.stats(ia).unwrap().dropped() + self.b.nic.stats(ib).unwrap().dropped()
    }

    /// The books: submitted = received + dropped with a reason, nothing in
    /// flight, nothing received twice.
    fn balance(&mut self) {
        for _ in 0..10 {
            self.run(100 * US);
        }
        let (in_flight, _) = self.a.tx.progress();
        assert_eq!(in_flight, 0, "nothing left in flight");
        let dev = self.device_drops();
        assert_eq!(
            self.submitted,
            self.received.len() as u64 + self.dropped_by_reset + dev,
            "submitted {} = received {} + dropped by queue resets {} + device drops {dev}",
            self.submitted,
            self.received.len(),
            self.dropped_by_reset
        );
        let mut seen = self.received.clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), self.received.len(), "no frame received twice");
    }
}

#[test]
fn a_bad_descriptor_stops_one_queue_and_the_driver_resets_it() {
    let mut r = Rig::new(false);
    for _ in 0..5 {
        r.send(20);
        r.run(20 * US);
    }
    assert_eq!(r.received.len(), 100);
    let (lif, _) = r.a.tx.id();
    r.sim.device().inject(Fault::BadDescriptor { lif, queue: 0 }).unwrap();
    r.send(20);
    r.run(20 * US);
    assert_eq!(r.recoveries, vec![CompStatus::BadDescriptor], "detected and reset");
    assert_eq!(r.dropped_by_reset, 20, "the bad descriptor and the burst behind it");
    // Traffic resumes on the reset queue.
    for _ in 0..5 {
        r.send(20);
        r.run(20 * US);
    }
    assert_eq!(r.received.len(), 200);
    assert_eq!(r.a.tx.stats().recoveries, 1);
    r.balance();
}

#[test]
fn seeded_bad_descriptors_replay_exactly_and_the_books_balance() {
    let run = |seed: u64| {
        let mut r = Rig::new(false);
        let (lif, _) = r.a.tx.id();
        let plan = faults::plan(seed, 6, 0, 2_000 * US, |_| Fault::BadDescriptor { lif, queue: 0 });
        let mut next = 0;
        let mut now = 0;
        while now < 2_500 * US {
            while next < plan.len() && plan[next].0 <= now {
                r.sim.device().inject(plan[next].1).unwrap();
                next += 1;
            }
            r.send(7);
            r.run(10 * US);
            now += 10 * US;
        }
        r.balance();
        (r.submitted, r.received.len(), r.dropped_by_reset, r.recoveries.len())
    };
    let a = run(7);
    assert_eq!(a, run(7), "the same seed replays exactly");
    assert!(a.3 >= 1, "faults happened: {a:?}");
}

#[test]
fn lost_interrupts_end_in_a_wait_timeout_and_nothing_is_lost() {
    let mut r = Rig::new(true);
    let mut waiter = Waiter::new([r.b.nic.eventfd(0).unwrap()]).unwrap();
    let vf1 = r.b.nic.identity.function_id;
    r.sim
        .device()
        .inject(Fault::LoseInterrupts {
            function: vf1,
            count: 3,
        })
        .unwrap();
    for _ in 0..6 {
        r.send(1);
        // The driver arms and finds nothing; the device delivers while it
        // is asleep (its interrupt may be lost); it sleeps until the
        // interrupt or the timeout.
        assert!(!waiter.arm(&[&r.b.rx]), "nothing there yet");
        r.sim.advance(50 * US);
        let ready = waiter.sleep(&[&r.b.rx], Duration::from_millis(20)).unwrap();
        assert!(ready, "the frame is found either way");
        r.receive();
    }
    assert_eq!(r.received.len(), 6, "every frame taken, interrupt or not");
    let st = waiter.stats();
    assert_eq!(
        (st.timeouts, st.lost_interrupts),
        (3, 3),
        "the three lost interrupts became timeouts"
    );
    assert_eq!(st.interrupts, 3, "the other three came");
    let lost = r.sim.device().functions[usize::from(vf1)].counters.interrupts_lost;
    assert_eq!(lost, 3);
    r.balance();
}

#[test]
fn a_stalled_fetch_engine_is_detected_and_traffic_resumes() {
    let mut r = Rig::new(false);
    let (lif, _) = r.a.tx.id();
    let until = r.sim.device().now() + 500 * US;
    r.sim
        .device()
        .inject(Fault::StallFetch { lif, queue: 0, until })
        .unwrap();
    r.send(10);
    // The watchdog: frames in flight and the head not moving for 100 µs.
    let (in_flight, head) = r.a.tx.progress();
    r.run(100 * US);
    let (still, head2) = r.a.tx.progress();
    assert_eq!((in_flight, still, head2), (10, 10, head), "stalled: detected");
    assert!(r.received.is_empty());
    // Remedy: ring again (harmless if it was only slow); the stall ends.
    r.a.tx.kick();
    r.run(500 * US);
    assert_eq!(r.received.len(), 10, "traffic resumed, nothing lost");
    r.balance();
}

#[test]
fn a_full_ring_is_backpressure_not_loss() {
    let mut r = Rig::new(false);
    // 128 slots; offer 200 without letting the device run.
    let first = r.send(200);
    assert_eq!(first, 128);
    assert_eq!(r.send(10), 0, "full");
    assert!(r.a.tx.stats().ring_full >= 1);
    r.run(100 * US);
    assert_eq!(r.send(50), 50, "room again once the device took them");
    r.balance();
    assert_eq!(r.received.len(), 178);
    assert_eq!(r.device_drops(), 0);
    // The RX side: VF1 stops taking buffers; frames beyond its ring are
    // counted by the device as DropNoRxBuffer, not lost.
    let ib = r.b.lif.id;
    let before = r.b.nic.stats(ib).unwrap().get(LifCounter::DropNoRxBuffer);
    for _ in 0..20 {
        r.send(100);
        r.sim.advance(50 * US);
    }
    let after = r.b.nic.stats(ib).unwrap().get(LifCounter::DropNoRxBuffer);
    assert!(after > before, "overflow counted");
    r.balance();
}

#[test]
fn a_function_that_resets_mid_traffic_is_detected_and_brought_back() {
    let mut r = Rig::new(false);
    for _ in 0..3 {
        r.send(20);
        r.run(20 * US);
    }
    assert_eq!(r.received.len(), 60);
    // 20 more handed to the device, then it resets before sending them.
    r.send(20);
    let vf0 = r.a.nic.identity.function_id;
    r.sim.device().inject(Fault::ResetFunction { function: vf0 }).unwrap();
    r.sim.advance(100 * US);
    // The watchdog sees no progress; the health check says why.
    let (in_flight, _) = r.a.tx.progress();
    assert_eq!(in_flight, 20);
    let e = r.a.nic.check_alive().unwrap_err();
    assert!(e.to_string().contains("stopped answering"), "{e}");
    // Recovery: the function again, a new LIF and queues; what the old
    // queue held is dropped with the reason "device reset".
    r.a.nic.recover_from_reset().unwrap();
    // The old LIF's counters outlive it, in the function's retired counters.
    let retired = r.a.nic.retired_stats().unwrap();
    assert_eq!(retired.lif.get(), dataplane::abi::LIF_NONE);
    assert!(retired.get(LifCounter::TxPackets) >= 60, "{retired:?}");
    let dropped = r.a.tx.abandon(&mut r.pool);
    r.a.rx.release_buffers(&mut r.pool);
    assert_eq!(dropped, 20);
    r.dropped_by_reset += u64::from(dropped);
    let lif = r.a.nic.create_lif("vf0-again", None).unwrap();
    r.a.tx = r.a.nic.create_txq(&lif, 7, None).unwrap();
    r.a.rx = r.a.nic.create_rxq(&lif, 10, None).unwrap();
    r.a.rx.set_polling();
    r.a.rx.refill(&mut r.pool).unwrap();
    r.a.lif = lif;
    for _ in 0..3 {
        r.send(20);
        r.run(20 * US);
    }
    assert_eq!(r.received.len(), 120, "traffic flows again");
    r.balance();
}

#[test]
fn a_vanished_simulator_is_a_clear_error_and_the_books_still_balance() {
    let mut r = Rig::new(false);
    r.send(30);
    r.run(20 * US);
    assert_eq!(r.received.len(), 30);
    r.send(10);
    // The simulator goes away with 10 frames in flight.
    r.sim.vanish();
    let e = r.a.nic.check_alive().unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("vf0.sock") && msg.contains("the device is gone"),
        "a clear error: {msg}"
    );
    // Nothing more arrives.
    r.sim.advance(100 * US);
    r.receive();
    assert_eq!(r.received.len(), 30);
    let lost = r.a.tx.abandon(&mut r.pool);
    assert_eq!(lost, 10);
    assert_eq!(
        r.submitted,
        r.received.len() as u64 + u64::from(lost),
        "every frame accounted for"
    );
    eprintln!("vanished: {msg}");
}

#[test]
fn a_bad_rx_buffer_stops_the_rx_queue_and_the_driver_resets_it() {
    let mut r = Rig::new(false);
    r.send(20);
    r.run(20 * US);
    assert_eq!(r.received.len(), 20);
    let (lif, _) = r.b.rx.id();
    r.sim.device().inject(Fault::BadRxDescriptor { lif, queue: 0 }).unwrap();
    r.send(10);
    r.sim.advance(20 * US);
    // The receiver sees its queue stopped.
    let mut out = Vec::new();
    let e = r.b.rx.rx_burst(&mut r.pool, &mut out, 64).unwrap_err();
    assert!(
        matches!(
            e,
            QueueError::Device {
                status: CompStatus::BadDescriptor,
                ..
            }
        ),
        "{e}"
    );
    for m in out {
        r.received
            .push(u64::from_le_bytes(r.pool.data(&m)[42..50].try_into().unwrap()));
        r.pool.free(m);
    }
    r.b.nic.reset_rxq(&mut r.b.rx, &mut r.pool).unwrap();
    assert_eq!(r.b.rx.stats().recoveries, 1);
    // Frames sent while it was stopped, and the one that hit the bad
    // buffer, are the device's DropQueueError; traffic flows again.
    r.send(20);
    r.run(20 * US);
    let ib = r.b.lif.id;
    let qerr = r.b.nic.stats(ib).unwrap().get(LifCounter::DropQueueError);
    assert!(qerr >= 1, "counted");
    assert!(r.received.len() >= 40, "{} received", r.received.len());
    r.balance();
}
