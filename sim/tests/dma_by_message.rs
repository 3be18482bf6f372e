//! A client that shares no memory with the device (as QEMU behind a
//! vIOMMU): it maps its DMA memory without a file descriptor, and the
//! device reaches it by `DMA_READ`/`DMA_WRITE` messages. Everything a
//! function does works the same: the mailbox, the admin queue, TX and RX
//! queues, completions, interrupts, and traffic with a function that does
//! share its memory.

#![allow(missing_debug_implementations)]

mod common;

use common::*;
use dataplane::abi::*;
use sim::device::DeviceConfig;
use sim::{ClockKind, PortSpec, Sim, SimConfig};
use std::sync::atomic::Ordering;

fn sim(vfs: u16) -> Sim {
    Sim::start(SimConfig {
        device: DeviceConfig {
            vfs,
            ..DeviceConfig::default()
        },
        clock: ClockKind::Virtual,
        port: PortSpec::Null,
        ..SimConfig::default()
    })
    .expect("sim starts")
}

fn send(s: &Sim, from: &mut Port1, to: [u8; 6], seq: u8, len: usize) {
    let pkt = frame(to, from.mac, seq, len);
    let buf = from.f.alloc(2048, 64);
    from.f.mem.write(buf, &pkt);
    assert!(from.tx.ring.fill_bulk(&[TxDesc::new(buf, len as u16, tx_flags::COMPLETE)]));
    from.f.ring_doorbell(&mut from.tx);
    s.advance(50_000);
}

#[test]
fn a_function_that_shares_no_memory_runs_its_queues_by_message() {
    let s = sim(2);
    let (f, served, _) = RawFn::connect_by_message(s.vf_socket(0).unwrap());
    let mut m = bring_up_fn(f, "by-message");
    let mut shared = bring_up(s.vf_socket(1).unwrap(), "shared");
    assert!(
        served.load(Ordering::Relaxed) > 0,
        "the admin queue already went by message"
    );
    {
        let d = s.device();
        let lif = d.lif(m.lif).unwrap();
        assert!(lif.txqs[0].as_ref().unwrap().core.is_remote());
        assert!(!d.lif(shared.lif).unwrap().txqs[0].as_ref().unwrap().core.is_remote());
    }
    // Both ways, several frames each, and one longer than a transfer is
    // not (the client takes 64 KiB a message; frames are smaller).
    for i in 0..20u8 {
        send(&s, &mut m, shared.mac, i, 64 + usize::from(i) * 50);
        let c = shared.f.completion(&mut shared.rx).expect("a frame from the message function");
        assert_eq!((c.status, usize::from(c.len)), (CompStatus::Ok, 64 + usize::from(i) * 50));
        let c = m.f.completion(&mut m.tx).expect("its TX completion, written by message");
        assert_eq!(c.status, CompStatus::Ok);
        send(&s, &mut shared, m.mac, i, 100);
        let c = m.f.completion(&mut m.rx).expect("a frame to the message function, written by message");
        assert_eq!((c.status, usize::from(c.len)), (CompStatus::Ok, 100));
        let at = m.rx_bufs[usize::from(i)];
        assert_eq!(m.f.mem.read(at, 100), frame(m.mac, shared.mac, i, 100), "the frame's bytes");
        let _ = shared.f.completion(&mut shared.tx);
    }
    // Interrupts went out on the message function's eventfd.
    assert!(m.f.take_interrupts(0) > 0);
    let d = s.device();
    d.check_books().unwrap();
    let st = d.lif(m.lif).unwrap();
    assert_eq!(st.counter(LifCounter::TxPackets), 20);
    assert_eq!(st.counter(LifCounter::RxPackets), 20);
    let r = d.functions[1].dma.remote().unwrap().clone();
    let (reads, writes) = (r.stats.reads.load(Ordering::Relaxed), r.stats.writes.load(Ordering::Relaxed));
    assert!(reads > 40 && writes > 40, "{reads} reads, {writes} writes by message");
    assert_eq!(r.stats.failures.load(Ordering::Relaxed), 0);
    assert_eq!(
        served.load(Ordering::Relaxed),
        reads + writes,
        "every request answered by the client"
    );
}

#[test]
fn unmapped_message_memory_stops_only_its_queues() {
    let s = sim(2);
    let (f, _, _) = RawFn::connect_by_message(s.vf_socket(0).unwrap());
    let mut m = bring_up_fn(f, "by-message");
    let mut a = bring_up(s.vf_socket(1).unwrap(), "a");
    let mut pf = bring_up(s.pf_socket(), "pf");
    // The message client unmaps its memory: the device may not reach it.
    m.f.client.dma_unmap(IOVA, MEM).unwrap();
    send(&s, &mut a, m.mac, 1, 64);
    send(&s, &mut a, pf.mac, 2, 64);
    let c = pf.f.completion(&mut pf.rx).expect("others still work");
    assert_eq!(c.status, CompStatus::Ok);
    let d = s.device();
    assert!(d.lif(m.lif).unwrap().counter(LifCounter::DropQueueError) >= 1);
    d.check_books().unwrap();
    assert!(d.internal_errors.is_empty());
}

#[test]
fn a_client_that_stops_answering_loses_its_connection_not_the_device() {
    let s = sim(2);
    let (f, _, mute) = RawFn::connect_by_message(s.vf_socket(0).unwrap());
    let mut m = bring_up_fn(f, "by-message");
    let mut a = bring_up(s.vf_socket(1).unwrap(), "a");
    let mut pf = bring_up(s.pf_socket(), "pf");
    mute.store(true, Ordering::Relaxed);
    // a frame for the silent client: the device waits for its memory at
    // most DMA_TIMEOUT, then gives up on it.
    let t0 = std::time::Instant::now();
    send(&s, &mut a, m.mac, 1, 64);
    assert!(t0.elapsed() < sim::server::remote::DMA_TIMEOUT * 3, "{:?}", t0.elapsed());
    // Everyone else goes on.
    send(&s, &mut a, pf.mac, 2, 64);
    assert_eq!(pf.f.completion(&mut pf.rx).expect("others still work").status, CompStatus::Ok);
    let d = s.device();
    let l = d.lif(m.lif).unwrap();
    assert!(l.rxqs[0].as_ref().unwrap().core.error.is_some(), "its RX queue stopped");
    d.check_books().unwrap();
    drop(d);
    // And the session is over: the function is released for a new client.
    drop(m);
    let t0 = std::time::Instant::now();
    loop {
        if s.device().functions[1].dma.is_empty() {
            break;
        }
        assert!(t0.elapsed().as_secs() < 10, "released");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
