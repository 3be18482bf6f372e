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
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;

fn sim(vfs: u16) -> Sim {
    // The tests' clients are independent, though in one process.
    sim_grouped(vfs, false)
}

/// As `sim`; with `grouped`, the clients of this process count as one
/// (QEMU's big lock).
fn sim_grouped(vfs: u16, grouped: bool) -> Sim {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("NICSIM_LOG"))
        .with_test_writer()
        .try_init();
    Sim::start(SimConfig {
        device: DeviceConfig {
            vfs,
            ..DeviceConfig::default()
        },
        clock: ClockKind::Virtual,
        port: PortSpec::Null,
        group_clients_by_process: grouped,
        ..SimConfig::default()
    })
    .expect("sim starts")
}

fn send(s: &Sim, from: &mut Port1, to: [u8; 6], seq: u8, len: usize) {
    let pkt = frame(to, from.mac, seq, len);
    let buf = from.f.alloc(2048, 64);
    from.f.mem.write(buf, &pkt);
    assert!(from
        .tx
        .ring
        .fill_bulk(&[TxDesc::new(buf, len as u16, tx_flags::COMPLETE)]));
    from.f.ring_doorbell(&mut from.tx);
    s.advance(50_000);
}

#[test]
fn a_function_that_shares_no_memory_runs_its_queues_by_message() {
    queues_by_message(false);
}

#[test]
fn a_function_that_maps_page_by_page_past_its_mmaps_runs_its_queues_by_message() {
    queues_by_message(true);
}

fn queues_by_message(page_by_page: bool) {
    let s = sim(2);
    let (f, served, _) = RawFn::connect_by_message_with(s.vf_socket(0).unwrap(), page_by_page);
    if page_by_page {
        // 64 pages mapped in the device (its budget of mmaps), the rest
        // by message.
        let d = s.device();
        assert_eq!(d.functions[1].dma.files(), 64);
        let dma = &d.functions[1].dma;
        assert!(dma.host_range(IOVA, 4096).is_ok(), "a page the device maps");
        assert!(
            dma.host_range(IOVA, 8192).is_err(),
            "two pages: two mmaps, not adjacent"
        );
        assert!(dma.is_remote(IOVA, 8192, true), "so by message");
        assert!(dma.host_range(IOVA + 50 * 4096, 4096).is_err(), "a page by message");
        assert!(
            dma.is_remote(IOVA + 48 * 4096, 4 * 4096, true),
            "a range across both kinds"
        );
        assert!(dma.is_remote(IOVA + 200 * 4096, 4096, true));
    }
    // Paged, rings of several pages (each page its own mapping).
    let mut m = bring_up_fn_order(f, "by-message", if page_by_page { 8 } else { 6 });
    let mut shared = bring_up(s.vf_socket(1).unwrap(), "shared");
    if !page_by_page {
        assert!(
            served.load(Ordering::Relaxed) > 0,
            "the admin queue already went by message"
        );
    }
    {
        let d = s.device();
        let lif = d.lif(m.lif).unwrap();
        assert!(lif.txqs[0].as_ref().unwrap().core.is_remote());
        assert!(!d.lif(shared.lif).unwrap().txqs[0].as_ref().unwrap().core.is_remote());
        if page_by_page {
            // The admin queue lies in page 0, which the device maps; it
            // goes by message all the same: the function writes by
            // message elsewhere, and a completion written directly would
            // land before the posted writes it follows.
            let aq = d.functions[1].admin.as_ref().unwrap();
            assert!(d.functions[1].dma.host_range(aq.core.state_base, 256).is_ok());
            assert!(aq.core.is_remote());
        }
    }
    // Both ways, several frames each, and one longer than a transfer is
    // not (the client takes 64 KiB a message; frames are smaller).
    for i in 0..20u8 {
        send(&s, &mut m, shared.mac, i, 64 + usize::from(i) * 50);
        let c = shared
            .f
            .completion(&mut shared.rx)
            .expect("a frame from the message function");
        assert_eq!(
            (c.status, usize::from(c.len)),
            (CompStatus::Ok, 64 + usize::from(i) * 50)
        );
        let c =
            m.f.completion(&mut m.tx)
                .expect("its TX completion, written by message");
        assert_eq!(c.status, CompStatus::Ok);
        send(&s, &mut shared, m.mac, i, 100);
        let c =
            m.f.completion(&mut m.rx)
                .expect("a frame to the message function, written by message");
        assert_eq!((c.status, usize::from(c.len)), (CompStatus::Ok, 100));
        let at = m.rx_bufs[usize::from(i)];
        assert_eq!(
            m.f.mem.read(at, 100),
            frame(m.mac, shared.mac, i, 100),
            "the frame's bytes"
        );
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
    let (reads, writes) = (
        r.stats.reads.load(Ordering::Relaxed),
        r.stats.writes.load(Ordering::Relaxed),
    );
    assert!(reads > 40 && writes > 40, "{reads} reads, {writes} writes by message");
    assert_eq!(r.stats.failures.load(Ordering::Relaxed), 0);
    // Every request was served by the client: the reads and writes the
    // device counted, and reads it gave up waiting for (put off while the
    // client waited for the device) that the client served late. The
    // engine may still be at work: let it settle.
    let t0 = std::time::Instant::now();
    loop {
        let done = served.load(Ordering::Relaxed);
        let (reads, writes, busy) = (
            r.stats.reads.load(Ordering::Relaxed),
            r.stats.writes.load(Ordering::Relaxed),
            r.stats.busy.load(Ordering::Relaxed),
        );
        if (reads + writes..=reads + writes + busy).contains(&done) {
            break;
        }
        assert!(
            t0.elapsed().as_secs() < 10,
            "served {done}, {reads} reads + {writes} writes + {busy} put off"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
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
    let m = bring_up_fn(f, "by-message");
    let mut a = bring_up(s.vf_socket(1).unwrap(), "a");
    let mut pf = bring_up(s.pf_socket(), "pf");
    mute.store(true, Ordering::Relaxed);
    // a frame for the silent client: the device waits for its memory at
    // most DMA_TIMEOUT, then gives up on it.
    let t0 = std::time::Instant::now();
    send(&s, &mut a, m.mac, 1, 64);
    assert!(
        t0.elapsed() < sim::server::remote::DMA_TIMEOUT * 3,
        "{:?}",
        t0.elapsed()
    );
    // Everyone else goes on.
    send(&s, &mut a, pf.mac, 2, 64);
    assert_eq!(
        pf.f.completion(&mut pf.rx).expect("others still work").status,
        CompStatus::Ok
    );
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

#[test]
fn mappings_by_message_share_one_budget_with_mappings_of_files() {
    let s = sim(1);
    let (mut p, caps) = Proto::connect(s.vf_socket(0).unwrap());
    let max = sim::dma::MAX_DMA_MAPS as u64;
    assert!(caps.contains(&format!("\"max_dma_maps\":{max}")), "{caps}");
    let m = Mem::new(4096);
    // A few mappings of files, then mappings without a file up to the
    // announced total.
    for i in 0..4 {
        assert_eq!(p.dma_map(0x1000_0000 + i * 0x1000, 4096, Some(m.file.as_raw_fd())), 0);
    }
    for i in 0..max - 4 {
        assert_eq!(p.dma_map(0x2000_0000 + i * 0x1000, 4096, None), 0, "mapping {i}");
    }
    let past = 0x2000_0000 + max * 0x1000;
    assert_eq!(p.dma_map(past, 4096, None), libc::ENOSPC as u32, "the total is spent");
    assert_eq!(
        p.dma_map(0x1800_0000, 4096, Some(m.file.as_raw_fd())),
        libc::ENOSPC as u32,
        "files count against the same total"
    );
    // One released makes room for one.
    assert_eq!(p.dma_unmap(0x2000_0000, 4096), 0);
    assert_eq!(p.dma_map(past, 4096, None), 0);
    // Overlaps are refused whichever kind holds the address.
    assert_eq!(p.dma_unmap(0x1000_0000, 4096), 0);
    assert_eq!(
        p.dma_map(0x2000_1000, 4096, Some(m.file.as_raw_fd())),
        libc::EEXIST as u32
    );
    assert_eq!(p.dma_map(0x1000_1000, 4096, None), libc::EEXIST as u32);
    // One unmap takes every mapping inside its range, of both kinds (as
    // QEMU's vIOMMU unmaps 2 MiB of pages it mapped one by one).
    let before = s.device().functions[1].dma.len();
    assert_eq!(p.dma_unmap(0x1000_0000, 0x1000_0000 + 16 * 4096), 0);
    assert_eq!(s.device().functions[1].dma.len(), before - 3 - 15);
    assert_eq!(s.device().functions[1].dma.files(), 0);
    drop(p);
    let t0 = std::time::Instant::now();
    while !s.device().functions[1].dma.is_empty() {
        assert!(t0.elapsed().as_secs() < 10, "released on disconnect");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Wait for the next completion of `q`, running the device meanwhile: by
/// message, a completion may land after the device's pass (posted).
#[track_caller]
fn wait_completion<T: dataplane::ring::RingElem>(s: &Sim, f: &RawFn, q: &mut Queue<T>) -> CompletionInfo {
    let t0 = std::time::Instant::now();
    loop {
        if let Some(c) = f.completion(q) {
            return c;
        }
        assert!(t0.elapsed().as_secs() < 10, "a completion within 10 s");
        s.advance(10_000);
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
}

#[test]
fn a_client_process_waiting_for_the_device_puts_off_its_reads_and_loses_nothing() {
    // As QEMU: the clients of one process share one big lock, so while
    // any of them waits for the device, the device reads none of their
    // memory (it would wait for an answer that cannot come).
    let s = sim_grouped(3, true);
    let (f, _, _) = RawFn::connect_by_message(s.vf_socket(0).unwrap());
    let mut m = bring_up_fn(f, "by-message");
    let mut a = bring_up(s.vf_socket(1).unwrap(), "a");
    // Another function of the same process keeps asking the device.
    let path = s.vf_socket(2).unwrap().to_path_buf();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut h = RawFn::connect(&path);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(h.cfg_read16(0), 0xf41c);
                n += 1;
                std::thread::sleep(std::time::Duration::from_micros(20));
            }
            n
        })
    };
    // To the message function: each frame is delivered or, when its RX
    // descriptors could not be read (put off) and none were fetched ahead,
    // counted as DropNoRxBuffer; never lost. (With a process that waits
    // for the device all the time, as here, that is most of them: a known
    // limit, docs/nicsim.md.)
    let no_buffer = |s: &Sim| s.device().lif(m.lif).unwrap().counter(LifCounter::DropNoRxBuffer);
    let mut delivered = 0;
    for i in 0..50u8 {
        let dropped = no_buffer(&s);
        send(&s, &mut a, m.mac, i, 64);
        let t0 = std::time::Instant::now();
        loop {
            if let Some(c) = m.f.completion(&mut m.rx) {
                assert_eq!(
                    (c.status, c.len),
                    (CompStatus::Ok, 64),
                    "frame {i} to the message function"
                );
                let at = m.rx_bufs[c.index as usize % m.rx_bufs.len()];
                assert_eq!(m.f.mem.read(at, 64), frame(m.mac, a.mac, i, 64));
                delivered += 1;
                break;
            }
            if no_buffer(&s) > dropped {
                break;
            }
            assert!(t0.elapsed().as_secs() < 10, "frame {i} delivered or counted");
            s.advance(10_000);
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
        let _ = wait_completion(&s, &a.f, &mut a.tx);
    }
    // From the message function: every frame goes (its descriptor and
    // frame reads put off are tried again, never dropped). As many as
    // the other side has buffers posted.
    for i in 0..30u8 {
        send(&s, &mut m, a.mac, i, 64);
        let c = wait_completion(&s, &a.f, &mut a.rx);
        assert_eq!(
            (c.status, c.len),
            (CompStatus::Ok, 64),
            "frame {i} from the message function"
        );
        assert_eq!(wait_completion(&s, &m.f, &mut m.tx).status, CompStatus::Ok);
    }
    stop.store(true, Ordering::Relaxed);
    let asked = hammer.join().expect("the other client");
    assert!(asked > 0);
    let d = s.device();
    d.check_books().unwrap();
    let l = d.lif(m.lif).unwrap();
    assert_eq!(l.counter(LifCounter::RxPackets), delivered);
    assert_eq!(
        l.counter(LifCounter::RxPackets) + l.counter(LifCounter::DropNoRxBuffer),
        50
    );
    assert_eq!(l.counter(LifCounter::TxPackets), 30);
    assert_eq!(l.counter(LifCounter::DropQueueError), 0);
    let st = s.by_message(1).unwrap();
    let busy = st.busy.load(Ordering::Relaxed);
    assert_eq!(st.failures.load(Ordering::Relaxed), 0);
    assert!(
        busy > 0,
        "reads were put off while the other client waited ({asked} requests)"
    );
}
