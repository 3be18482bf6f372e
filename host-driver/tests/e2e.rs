//! The driver against the simulator: several LIFs on several functions,
//! poll mode and interrupt mode, and the books balance:
//! sent = received + dropped with a reason.

mod support;

use dataplane::abi::{LifCounter, MeterConfig, MeterMode, MeterPolicy, MeterResource, Moderation, ModerationMode};
use dataplane::packet::build_udp4;
use host_driver::backend::vfio_user::VfioUserBackend;
use host_driver::irq::Waiter;
use host_driver::mem::{DmaMemory, MemKind};
use host_driver::nic::{ErrorKind, Lif, Nic, NicConfig};
use host_driver::pool::{Mbuf, Pool};
use host_driver::queue::{RxQueue, TxQueue};
use sim::{ClockKind, PortSpec, Sim};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{open_nic, start_sim};

const POOL_IOVA: u64 = 0x20_0000_0000;

struct Port {
    nic: Nic,
    lif: Lif,
    tx: TxQueue,
    rx: RxQueue,
}

fn open(sim: &Sim, vf: usize, pool_mem: &Arc<DmaMemory>, vector: Option<u16>) -> Port {
    let mut nic = open_nic(sim.vf_socket(vf).unwrap(), &NicConfig::default(), Some(pool_mem));
    let lif = nic.create_lif(&format!("vf{vf}"), None).unwrap();
    let tx = nic.create_txq(&lif, 8, None).unwrap();
    let rx = nic.create_rxq(&lif, 8, vector).unwrap();
    Port { nic, lif, tx, rx }
}

fn frame_into(pool: &mut Pool, dst: [u8; 6], src: [u8; 6], seq: u64, len: usize) -> Mbuf {
    let mut m = pool.alloc().expect("pool has buffers");
    let f = build_udp4(dst, src, [10, 0, 0, 1], [10, 0, 0, 2], (1, 2), &seq.to_le_bytes(), len);
    pool.buffer_mut(&mut m)[..len].copy_from_slice(&f);
    m.set_len(len);
    m
}

fn seq_of(pool: &Pool, m: &Mbuf) -> u64 {
    u64::from_le_bytes(pool.data(m)[42..50].try_into().unwrap())
}

#[test]
fn poll_mode_moves_traffic_between_three_lifs_and_the_books_balance() {
    let sim = start_sim(3, ClockKind::Virtual, PortSpec::Null);
    let mem = Arc::new(DmaMemory::new(32 << 20, POOL_IOVA, MemKind::Pages).unwrap());
    let mut pool = Pool::new(mem.clone(), 4096).unwrap();
    let mut ports: Vec<Port> = (0..3).map(|vf| open(&sim, vf, &mem, None)).collect();
    for p in &mut ports {
        p.rx.set_polling();
        p.rx.refill(&mut pool).unwrap();
    }
    let n = 2000u64;
    let mut sent = [0u64; 3];
    let mut got = [0u64; 3];
    let mut next_seq = [0u64; 3];
    let mut out = Vec::new();
    for _round in 0..200 {
        for i in 0..3 {
            let dst = ports[(i + 1) % 3].lif.mac;
            let src = ports[i].lif.mac;
            let mut burst: Vec<Mbuf> = (0..32.min(n - sent[i]))
                .map(|k| frame_into(&mut pool, dst, src, sent[i] + k, 64 + (k as usize % 5) * 100))
                .collect();
            let k = ports[i].tx.tx_burst(&mut pool, &mut burst).unwrap();
            sent[i] += k as u64;
            for m in burst {
                pool.free(m);
            }
        }
        sim.advance(100_000);
        for i in 0..3 {
            out.clear();
            ports[i].rx.rx_burst(&mut pool, &mut out, 256).unwrap();
            let from = (i + 2) % 3;
            for m in out.drain(..) {
                assert_eq!(
                    seq_of(&pool, &m),
                    next_seq[from],
                    "in order, none lost, none duplicated"
                );
                next_seq[from] += 1;
                got[i] += 1;
                pool.free(m);
            }
        }
        if sent.iter().all(|&s| s == n) && got.iter().sum::<u64>() == 3 * n {
            break;
        }
    }
    for p in &mut ports {
        p.tx.flush(&mut pool).unwrap();
    }
    assert_eq!(sent, [n; 3]);
    assert_eq!(got, [n; 3], "everything sent was received (ring sizes keep up)");
    for p in &mut ports {
        let st = p.nic.stats(p.lif.id).unwrap();
        assert_eq!(st.get(LifCounter::TxPackets), n);
        assert_eq!(st.get(LifCounter::RxPackets), n);
        assert_eq!(p.tx.in_flight(), 0, "every TX buffer reclaimed");
    }
    // Every buffer is back: 3 RX rings hold 256 each.
    assert_eq!(pool.available() + 3 * 256, 4096);
}

#[test]
fn overload_drops_are_counted_with_their_reason() {
    let sim = start_sim(2, ClockKind::Virtual, PortSpec::Null);
    let mem = Arc::new(DmaMemory::new(32 << 20, POOL_IOVA, MemKind::Pages).unwrap());
    let mut pool = Pool::new(mem.clone(), 4096).unwrap();
    let mut a = open(&sim, 0, &mem, None);
    let mut b = open(&sim, 1, &mem, None);
    b.rx.set_polling();
    b.rx.refill(&mut pool).unwrap();
    // Send 1000 without letting b drain: 256 buffers, the rest dropped.
    let mut sent = 0u64;
    while sent < 1000 {
        let mut burst: Vec<Mbuf> = (0..50)
            .map(|k| frame_into(&mut pool, b.lif.mac, a.lif.mac, sent + k, 64))
            .collect();
        let k = a.tx.tx_burst(&mut pool, &mut burst).unwrap();
        sent += k as u64;
        for m in burst {
            pool.free(m);
        }
        sim.advance(10_000);
    }
    sim.advance(1_000_000);
    let mut out = Vec::new();
    let received = b.rx.rx_burst(&mut pool, &mut out, 2000).unwrap() as u64;
    let st = b.nic.stats(b.lif.id).unwrap();
    let dropped = st.get(LifCounter::DropNoRxBuffer);
    assert_eq!(received, 256);
    assert_eq!(dropped, 744);
    assert_eq!(sent, received + dropped, "sent = received + dropped with a reason");
    assert_eq!(a.nic.stats(a.lif.id).unwrap().get(LifCounter::TxPackets), sent);
}

#[test]
fn interrupt_mode_sleeps_and_wakes_without_losing_a_packet() {
    let sim = start_sim(2, ClockKind::Real, PortSpec::Null);
    let mem = Arc::new(DmaMemory::new(32 << 20, POOL_IOVA, MemKind::Pages).unwrap());
    let mut pool = Pool::new(mem.clone(), 4096).unwrap();
    let mut a = open(&sim, 0, &mem, None);
    let mut b = open(&sim, 1, &mem, Some(0));
    b.rx.refill(&mut pool).unwrap();
    let mut waiter = Waiter::new([b.nic.eventfd(0).unwrap()]).unwrap();
    let total = 300u64;
    let mut sent = 0u64;
    let mut got = 0u64;
    let mut out = Vec::new();
    let t0 = Instant::now();
    while got < total {
        assert!(t0.elapsed() < Duration::from_secs(30), "stalled at {got}/{total}");
        if sent < total {
            // Trickle: 3 frames, then the receiver goes to sleep.
            let mut burst: Vec<Mbuf> = (0..3)
                .map(|k| frame_into(&mut pool, b.lif.mac, a.lif.mac, sent + k, 64))
                .collect();
            sent += a.tx.tx_burst(&mut pool, &mut burst).unwrap() as u64;
            for m in burst {
                pool.free(m);
            }
        }
        waiter.wait(&[&b.rx], Duration::from_secs(5)).unwrap();
        b.rx.rx_burst(&mut pool, &mut out, 64).unwrap();
        for m in out.drain(..) {
            assert_eq!(seq_of(&pool, &m), got);
            got += 1;
            pool.free(m);
        }
        a.tx.flush(&mut pool).unwrap();
    }
    let ws = waiter.stats();
    assert!(ws.interrupts > 0, "woken by interrupts: {ws:?}");
    assert_eq!(ws.timeouts, 0, "never slept through a packet: {ws:?}");
    let st = b.nic.stats(b.lif.id).unwrap();
    assert_eq!(st.get(LifCounter::RxPackets), total);
    assert!(st.get(LifCounter::Interrupts) > 0);
}

#[test]
fn admin_surface_meters_moderation_and_permission() {
    let sim = start_sim(1, ClockKind::Virtual, PortSpec::Null);
    let mem = Arc::new(DmaMemory::new(4 << 20, POOL_IOVA, MemKind::Pages).unwrap());
    let mut vf = open(&sim, 0, &mem, None);
    let mut pf = open_nic(sim.pf_socket(), &NicConfig::default(), None);
    assert!(pf.is_pf() && !vf.nic.is_pf());
    let m = MeterConfig {
        resource: MeterResource::Packets.raw(),
        mode: MeterMode::SrTcm.raw(),
        policy: MeterPolicy::Deprioritize.raw(),
        cir: 100_000.into(),
        cburst: 1000.into(),
        eburst: 2000.into(),
        ..Default::default()
    };
    let e = vf.nic.set_meter(vf.lif.id, m).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Admin {
                status: dataplane::abi::AdminStatus::Permission,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("MeterSet failed: the device said Permission"),
        "{e}"
    );
    assert_eq!(pf.set_meter(vf.lif.id, m).unwrap(), m);
    let lifs = pf.lif_list().unwrap();
    assert_eq!(lifs.len(), 1, "the PF sees the VF's LIF");
    let md = Moderation {
        vector: 1.into(),
        mode: ModerationMode::Fixed.raw(),
        high_watermark_pct: 80,
        latency_interval_us: 20.into(),
        overflow_interval_us: 200.into(),
        frame_threshold: 32.into(),
    };
    assert_eq!(vf.nic.set_moderation(md).unwrap(), md);
}

#[test]
fn a_missing_simulator_is_a_clear_error() {
    let e = VfioUserBackend::connect(std::path::Path::new("/nonexistent/nicsim/pf.sock")).unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains("no simulator at /nonexistent/nicsim/pf.sock") && s.contains("--socket-dir /nonexistent/nicsim"),
        "{s}"
    );
}

/// Reading completions in small bites while the device is far ahead: the
/// head write-back runs ahead of the completions read, and a refill must
/// not reuse a slot whose completion is still unread.
#[test]
fn small_rx_bursts_behind_a_large_backlog_lose_nothing() {
    let sim = start_sim(2, ClockKind::Virtual, PortSpec::Null);
    let mem = Arc::new(DmaMemory::new(32 << 20, POOL_IOVA, MemKind::Pages).unwrap());
    let mut pool = Pool::new(mem.clone(), 4096).unwrap();
    let mut a = open(&sim, 0, &mem, None);
    let mut b = open(&sim, 1, &mem, None);
    b.rx.set_polling();
    b.rx.refill(&mut pool).unwrap();
    let mut sent = 0u64;
    let mut got = 0u64;
    let mut next = 0u64;
    let mut out = Vec::new();
    for _round in 0..2000 {
        if sent < 3000 {
            let mut burst: Vec<Mbuf> = (0..64)
                .map(|k| frame_into(&mut pool, b.lif.mac, a.lif.mac, sent + k, 64))
                .collect();
            sent += a.tx.tx_burst(&mut pool, &mut burst).unwrap() as u64;
            for m in burst {
                pool.free(m);
            }
        }
        sim.advance(1_000_000);
        // Far fewer than the 256 completions waiting.
        b.rx.rx_burst(&mut pool, &mut out, 5).unwrap();
        for m in out.drain(..) {
            let s = seq_of(&pool, &m);
            assert!(s >= next, "no frame twice, none out of order: {s} after {next}");
            next = s + 1;
            got += 1;
            pool.free(m);
        }
        a.tx.flush(&mut pool).unwrap();
        if sent == 3000 && b.rx.stats().packets == b.nic.stats(b.lif.id).unwrap().get(LifCounter::RxPackets) {
            break;
        }
    }
    // The ring overflowed (the receiver reads 5 per round while 64
    // arrive): the device dropped the rest, with a reason.
    let st = b.nic.stats(b.lif.id).unwrap();
    assert!(st.get(LifCounter::DropNoRxBuffer) > 0);
    assert_eq!(
        got,
        st.get(LifCounter::RxPackets),
        "every frame the device delivered was read"
    );
    assert_eq!(
        got + st.get(LifCounter::DropNoRxBuffer),
        sent,
        "sent = received + dropped with a reason"
    );
}
