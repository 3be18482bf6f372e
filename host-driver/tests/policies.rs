//! The three policies of a red meter, end to end through the driver and the
//! simulated device on virtual time: backpressure holds a LIF to its rate
//! and loses nothing; deprioritize is work conserving; drop applies to
//! frames from the wire and is counted with its reason. Completions carry
//! the sender's meter color.

mod support;

use dataplane::abi::{
    function_config_flags, FunctionConfig, LifCounter, MeterColor, MeterConfig, MeterMode, MeterPolicy, MeterResource,
};
use dataplane::packet::build_udp4;
use host_driver::mem::{DmaMemory, MemKind};
use host_driver::nic::{Lif, NicConfig};
use host_driver::pool::{Mbuf, Pool};
use host_driver::queue::{RxQueue, TxQueue};
use sim::port::GenConfig;
use sim::{ClockKind, PortSpec};
use std::sync::Arc;
use support::{open_nic, start_sim};

const POOL_IOVA: u64 = 0x20_0000_0000;
/// The default virtual pipeline: 100 M units/s, 5 units per UDP frame.
const FRAME_COST: u64 = 5;

fn cost_meter(cir: u64, cburst: u64, policy: MeterPolicy) -> MeterConfig {
    MeterConfig {
        resource: MeterResource::Cost.raw(),
        mode: MeterMode::SrTcm.raw(),
        policy: policy.raw(),
        cir: cir.into(),
        cburst: cburst.into(),
        ..Default::default()
    }
}

struct Flow {
    tx: TxQueue,
    src: Lif,
    dst: Lif,
    sent: u64,
}

impl Flow {
    /// Post up to `max` more frames (as many as the ring takes).
    fn send(&mut self, pool: &mut Pool, max: u64) {
        let room = u64::from(self.tx.room(pool).unwrap()).min(max.saturating_sub(self.sent));
        let mut burst: Vec<Mbuf> = (0..room)
            .map(|k| {
                let mut m = pool.alloc().unwrap();
                let f = build_udp4(
                    self.dst.mac,
                    self.src.mac,
                    [10, 0, 0, 1],
                    [10, 0, 0, 2],
                    (1, 2),
                    &(self.sent + k).to_le_bytes(),
                    64,
                );
                pool.buffer_mut(&mut m)[..64].copy_from_slice(&f);
                m.set_len(64);
                m
            })
            .collect();
        self.sent += self.tx.tx_burst(pool, &mut burst).unwrap() as u64;
        assert!(burst.is_empty());
    }
}

/// Received frames: (seq, device timestamp, color, sender LIF).
fn drain(rx: &mut RxQueue, pool: &mut Pool, got: &mut Vec<(u64, u32, MeterColor, u16)>) {
    let mut out = Vec::new();
    rx.rx_burst(pool, &mut out, 4096).unwrap();
    for m in out {
        let seq = u64::from_le_bytes(pool.data(&m)[42..50].try_into().unwrap());
        let meta = m.rx_meta();
        got.push((seq, meta.timestamp, meta.meter, meta.src_lif));
        pool.free(m);
    }
}

#[test]
fn backpressure_holds_a_lif_to_its_rate_and_loses_nothing() {
    let sim = start_sim(2, ClockKind::Virtual, PortSpec::Null);
    let mem = Arc::new(DmaMemory::new(32 << 20, POOL_IOVA, MemKind::Pages).unwrap());
    let mut pool = Pool::new(mem.clone(), 8192).unwrap();
    let mut pf = open_nic(sim.pf_socket(), &NicConfig::default(), Some(&mem));
    let mut a = open_nic(sim.vf_socket(0).unwrap(), &NicConfig::default(), Some(&mem));
    let mut b = open_nic(sim.vf_socket(1).unwrap(), &NicConfig::default(), Some(&mem));
    let la = a.create_lif("a", None).unwrap();
    let lb = b.create_lif("b", None).unwrap();
    let mut rx = b.create_rxq(&lb, 11, None).unwrap();
    rx.set_polling();
    rx.refill(&mut pool).unwrap();
    // 10 M units/s: 2 Mpps of 5-unit frames, a tenth of the pipeline.
    pf.set_meter(la.id, cost_meter(10_000_000, 100, MeterPolicy::Backpressure))
        .unwrap();
    let mut flow = Flow {
        tx: a.create_txq(&la, 10, None).unwrap(),
        src: la,
        dst: lb,
        sent: 0,
    };
    let n = 5000u64;
    let mut got = Vec::new();
    for _ in 0..10_000 {
        flow.send(&mut pool, n);
        sim.advance(20_000);
        drain(&mut rx, &mut pool, &mut got);
        if got.len() as u64 == n {
            break;
        }
    }
    assert_eq!(got.len() as u64, n, "nothing lost");
    assert!(got.iter().enumerate().all(|(i, g)| g.0 == i as u64), "in order");
    // The first 20 frames ride the 100-unit burst; the rest leave at 2 Mpps.
    let span = got[n as usize - 1].1.wrapping_sub(got[20].1) as f64;
    let expect = (n - 21) as f64 * FRAME_COST as f64 / 10e6 * 1e9;
    assert!(
        (span - expect).abs() < 0.02 * expect,
        "{span} ns vs {expect} ns at the metered rate"
    );
    let st = pf.stats(la.id).unwrap();
    assert!(
        st.get(LifCounter::Backpressured) > 100,
        "held back {} times",
        st.get(LifCounter::Backpressured)
    );
    assert_eq!(st.get(LifCounter::DropMeterRed), 0);
    assert_eq!(pf.stats(lb.id).unwrap().get(LifCounter::DropNoRxBuffer), 0);
    // Held back before each frame rather than after: all green, and the
    // completions say so, as do the counters.
    let green = got.iter().filter(|g| g.2 == MeterColor::Green).count() as u64;
    assert_eq!(green, n, "every frame conformed");
    assert_eq!(st.get(LifCounter::MeterGreen), n);
}

#[test]
fn deprioritize_is_work_conserving_and_yields_to_others() {
    let sim = start_sim(3, ClockKind::Virtual, PortSpec::Null);
    let mem = Arc::new(DmaMemory::new(64 << 20, POOL_IOVA, MemKind::Pages).unwrap());
    let mut pool = Pool::new(mem.clone(), 16384).unwrap();
    let mut pf = open_nic(sim.pf_socket(), &NicConfig::default(), Some(&mem));
    let mut a = open_nic(sim.vf_socket(0).unwrap(), &NicConfig::default(), Some(&mem));
    let mut c = open_nic(sim.vf_socket(1).unwrap(), &NicConfig::default(), Some(&mem));
    let mut b = open_nic(sim.vf_socket(2).unwrap(), &NicConfig::default(), Some(&mem));
    let la = a.create_lif("a", None).unwrap();
    let lc = c.create_lif("c", None).unwrap();
    let lb = b.create_lif("sink", None).unwrap();
    let mut rx = b.create_rxq(&lb, 12, None).unwrap();
    rx.set_polling();
    rx.refill(&mut pool).unwrap();
    pf.set_meter(la.id, cost_meter(10_000_000, 100, MeterPolicy::Deprioritize))
        .unwrap();
    let mut fa = Flow {
        tx: a.create_txq(&la, 10, None).unwrap(),
        src: la,
        dst: lb,
        sent: 0,
    };
    let mut fc = Flow {
        tx: c.create_txq(&lc, 10, None).unwrap(),
        src: lc,
        dst: lb,
        sent: 0,
    };
    // Alone, A runs at the pipeline's full 20 Mpps, ten times its meter.
    let mut got = Vec::new();
    let t0 = sim.clock().now();
    for _ in 0..1000 {
        fa.send(&mut pool, 5000);
        sim.advance(10_000);
        drain(&mut rx, &mut pool, &mut got);
        if got.len() == 5000 {
            break;
        }
    }
    assert_eq!(got.len(), 5000);
    let took = sim.clock().now() - t0;
    assert!(
        took < 400_000,
        "5000 frames in {took} ns: at the pipeline's rate (250 us), not the meter's (2.5 ms)"
    );
    let red = got.iter().filter(|g| g.2 == MeterColor::Red).count();
    assert!(red > 4000, "and marked red beyond its meter: {red}");
    // With C saturating the pipeline too, A gets only what C leaves: C's
    // frames go first while A is red.
    got.clear();
    for _ in 0..50 {
        fa.send(&mut pool, u64::MAX);
        fc.send(&mut pool, u64::MAX);
        sim.advance(10_000);
        drain(&mut rx, &mut pool, &mut got);
    }
    let da = got.iter().filter(|g| g.3 == la.id).count();
    let dc = got.iter().filter(|g| g.3 == lc.id).count();
    assert!(dc > 8 * da, "C (unmetered) {dc} frames vs A (red, deprioritized) {da}");
    // A is not starved either: it got about its metered rate.
    assert!(da > 500, "A still moved {da} frames in 500 us (2 Mpps is 1000)");
    let st = pf.stats(la.id).unwrap();
    assert_eq!(st.get(LifCounter::DropMeterRed), 0, "deprioritize never drops");
}

#[test]
fn drop_applies_to_wire_ingress_and_is_counted_with_its_reason() {
    let mac = [0x02, 0x00, 0x00, 0x00, 0x0a, 0x01];
    let offered = 2000u64;
    let sim = start_sim(
        1,
        ClockKind::Virtual,
        PortSpec::Gen(GenConfig {
            rate_pps: 1_000_000,
            sizes: vec![(64, 1)],
            flows: vec![mac],
            count: Some(offered),
        }),
    );
    let mem = Arc::new(DmaMemory::new(32 << 20, POOL_IOVA, MemKind::Pages).unwrap());
    let mut pool = Pool::new(mem.clone(), 8192).unwrap();
    let mut pf = open_nic(sim.pf_socket(), &NicConfig::default(), Some(&mem));
    let mut v = open_nic(sim.vf_socket(0).unwrap(), &NicConfig::default(), Some(&mem));
    // The PF assigns the VF's MAC (an untrusted VF may not choose one).
    pf.set_function_config(&FunctionConfig {
        function: 1.into(),
        slot: 0.into(),
        flags: function_config_flags::MAC | function_config_flags::SPOOF_CHECK,
        mac,
        ..Default::default()
    })
    .unwrap();
    let lv = v.create_lif("v", None).unwrap();
    assert_eq!(lv.mac, mac, "the LIF got the MAC the PF assigned");
    let mut rx = v.create_rxq(&lv, 12, None).unwrap();
    rx.set_polling();
    rx.refill(&mut pool).unwrap();
    // 100 kpps with a burst of 10 packets: of 1 Mpps for 2 ms, about 210 pass.
    let m = MeterConfig {
        resource: MeterResource::Packets.raw(),
        mode: MeterMode::SrTcm.raw(),
        policy: MeterPolicy::Drop.raw(),
        cir: 100_000.into(),
        cburst: 10.into(),
        ..Default::default()
    };
    pf.set_meter(lv.id, m).unwrap();
    let mut got = Vec::new();
    for _ in 0..400 {
        sim.advance(10_000);
        drain(&mut rx, &mut pool, &mut got);
    }
    let st = pf.stats(lv.id).unwrap();
    let dropped = st.get(LifCounter::DropMeterRed);
    let received = got.len() as u64;
    assert_eq!(received, st.get(LifCounter::RxPackets));
    assert_eq!(
        received + dropped,
        offered,
        "every frame from the wire is received or counted as dropped"
    );
    assert!((190..=230).contains(&received), "{received} passed the meter");
    assert_eq!(st.get(LifCounter::MeterRed), dropped, "every red frame was dropped");
    assert!(
        got.iter().all(|g| g.2 == MeterColor::Green),
        "what passed is marked green"
    );
}
