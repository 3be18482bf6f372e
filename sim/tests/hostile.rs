//! One tenant cannot break the others: each test is an attack a client of
//! one function can make through the vfio-user surface or its admin queue,
//! and asserts what the device guarantees instead (docs/nicsim.md,
//! "Isolation guarantees", names the test that holds each one).

#![allow(missing_debug_implementations)]

mod common;

use common::*;
use dataplane::abi::*;
use sim::device::DeviceConfig;
use sim::{ClockKind, PortSpec, Sim, SimConfig};
use std::os::fd::{AsRawFd, FromRawFd};
use vfio_bindings::bindings::vfio::*;
use zerocopy::{FromBytes, IntoBytes};

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

/// Send one frame from `a` to `b` and check it arrives.
fn still_works(s: &Sim, a: &mut Port1, b: &mut Port1) {
    let pkt = frame(b.mac, a.mac, 42, 100);
    let buf = a.f.alloc(2048, 64);
    a.f.mem.write(buf, &pkt);
    assert!(a.tx.ring.fill_bulk(&[TxDesc::new(buf, pkt.len() as u16, 0)]));
    a.f.ring_doorbell(&mut a.tx);
    s.advance(10_000);
    let c = b.f.completion(&mut b.rx).expect("the good frame arrives");
    assert_eq!((c.status, usize::from(c.len)), (CompStatus::Ok, pkt.len()));
    s.device()
        .check_books()
        .expect("every frame ended in exactly one counter");
}

/// Wait until the server has noticed a disconnect (it resets the function
/// when the client goes): the function holds no mapping and no LIF.
fn wait_until_released(s: &Sim, function: u16) {
    let t0 = std::time::Instant::now();
    loop {
        {
            let d = s.device();
            let f = &d.functions[usize::from(function)];
            if f.dma.is_empty() && f.lif_slots.iter().all(Option::is_none) {
                return;
            }
        }
        assert!(t0.elapsed().as_secs() < 10, "the function was not released");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// A shared mapping of `len` bytes of `fd` at `offset` (kept by the test
/// as a client process would keep it after its connection is gone).
fn map_fd(fd: i32, offset: u64, len: usize) -> *mut u8 {
    // SAFETY: a fresh shared mapping the test never unmaps (it lives until
    // the test process ends); the result is checked.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            offset as libc::off_t,
        )
    };
    assert_ne!(p, libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
    p.cast()
}

// ---- 1. A client's state ends with its connection ---------------------

#[test]
fn a_new_client_sees_none_of_the_previous_clients_memory_or_state() {
    let s = sim(1);
    let vf = s.vf_socket(0).unwrap().to_path_buf();
    // The first client brings the function up, sends traffic and keeps a
    // mapping of its doorbell page, then goes (a crash: no teardown).
    let (old_doorbells, old_retired_tx) = {
        let mut a = bring_up(&vf, "first");
        a.f.mem.write(IOVA + (4 << 20), b"the first client's secret");
        let bar0 = a.f.client.region(VFIO_PCI_BAR0_REGION_INDEX).unwrap();
        let fo = bar0.file_offset.as_ref().unwrap();
        let area = bar0.sparse_areas[0];
        let old = map_fd(fo.file().as_raw_fd(), fo.start() + area.offset, area.size as usize);
        let pkt = frame([0xff; 6], a.mac, 1, 64);
        let buf = a.f.alloc(2048, 64);
        a.f.mem.write(buf, &pkt);
        assert!(a.tx.ring.fill_bulk(&[TxDesc::new(buf, 64, 0)]));
        a.f.ring_doorbell(&mut a.tx);
        s.advance(10_000);
        (old, s.device().lif(a.lif).unwrap().counter(LifCounter::TxPackets))
    };
    assert_eq!(old_retired_tx, 1);
    wait_until_released(&s, 1);
    {
        let d = s.device();
        assert!(d.lifs.iter().flatten().all(|l| l.function != 1), "its LIFs are gone");
        assert_eq!(
            d.functions[1].retired[LifCounter::TxPackets as usize],
            1,
            "the gone LIF's counters are retired, not lost"
        );
        assert!(
            d.functions[1].vectors.iter().all(|v| v.eventfd.is_none()),
            "its eventfds are closed"
        );
    }
    // A new client that maps nothing cannot reach the old memory: its admin
    // queue at the old client's IOVA is a DMA fault.
    let mut b = RawFn::connect_with(&vf, false);
    b.enable(1);
    assert_eq!(b.devcmd(DevCommand::Reset).0, AdminStatus::Ok);
    let q = QueueCreate {
        qtype: QueueType::Admin.raw(),
        ring_order: 5,
        ring_base: IOVA.into(),
        cq_base: (IOVA + 0x1000).into(),
        state_base: (IOVA + 0x2000).into(),
        ..Default::default()
    };
    assert_eq!(
        b.devcmd(DevCommand::AdminQueueInit(q)).0,
        AdminStatus::DmaFault,
        "the previous client's mappings are gone"
    );
    // Mapping its own memory at the same IOVA works (it was EEXIST).
    b.client.dma_map(0, IOVA, MEM, b.mem.file.as_raw_fd()).unwrap();
    assert_eq!(s.device().functions[1].dma.len(), 1);
    b.init_admin();
    let (lif, slot) = b.create_lif("second");
    let mut tx = b.create_queue::<TxDesc>(lif, slot, QueueType::Tx, 6, None);
    assert_eq!(slot, 0, "the same doorbell slot as the old client's LIF");
    // The old process still has its doorbell mapping: its writes reach
    // nothing (the function has new doorbell pages).
    let rogue = Doorbell {
        qtype: QueueType::Tx,
        qindex: 0,
        outgoing_tail: 5,
    }
    .encode();
    // SAFETY: the old mapping is 8-aligned and at least a page long.
    unsafe { (old_doorbells as *mut u64).write_volatile(rogue.to_le()) };
    s.advance(10_000);
    assert_eq!(
        s.device().lif(lif).unwrap().counter(LifCounter::Doorbells),
        0,
        "a doorbell through the old client's mapping is not seen"
    );
    // The new client's own doorbell is.
    let pkt = frame([2, 0, 0, 0, 0, 9], lif_mac(lif), 1, 64);
    let buf = b.alloc(2048, 64);
    b.mem.write(buf, &pkt);
    assert!(tx.ring.fill_bulk(&[TxDesc::new(buf, 64, 0)]));
    b.ring_doorbell(&mut tx);
    s.advance(10_000);
    let d = s.device();
    assert_eq!(d.lif(lif).unwrap().counter(LifCounter::Doorbells), 1);
    assert_eq!(d.lif(lif).unwrap().counter(LifCounter::TxPackets), 1);
}

// ---- 2. Nothing a client can truncate ends the process ----------------

#[test]
fn the_bar0_memfd_cannot_be_resized_by_a_client() {
    let s = sim(1);
    let mut a = bring_up(s.vf_socket(0).unwrap(), "a");
    let mut pf = bring_up(s.pf_socket(), "pf");
    let bar0 = a.f.client.region(VFIO_PCI_BAR0_REGION_INDEX).unwrap();
    let fd = bar0.file_offset.as_ref().unwrap().file().as_raw_fd();
    for len in [0, 4096, 1 << 30] {
        // SAFETY: ftruncate on a descriptor the device handed us.
        let r = unsafe { libc::ftruncate(fd, len) };
        assert_eq!(r, -1, "ftruncate({len}) of the BAR0 memfd must fail");
        assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EPERM));
    }
    // Nor can its seals be changed (F_SEAL_SEAL).
    // SAFETY: fcntl on a descriptor the device handed us.
    assert_eq!(unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, libc::F_SEAL_WRITE) }, -1);
    // The engine polls the doorbells on: every function keeps working.
    still_works(&s, &mut a, &mut pf);
    still_works(&s, &mut pf, &mut a);
}

#[test]
fn dma_map_of_a_file_that_can_shrink_is_refused() {
    let s = sim(1);
    let (mut p, _) = Proto::connect(s.vf_socket(0).unwrap());
    // SAFETY: plain syscalls on a memfd the test owns.
    let fd = unsafe {
        let fd = libc::memfd_create(c"unsealed".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING);
        assert!(fd >= 0);
        assert_eq!(libc::ftruncate(fd, 1 << 20), 0);
        fd
    };
    assert_eq!(
        p.dma_map(0x10_0000, 1 << 20, Some(fd)),
        libc::EPERM as u32,
        "unsealed: refused"
    );
    assert!(s.device().functions[1].dma.is_empty());
    // Sealed against shrinking, the same file maps; truncating it now fails.
    // SAFETY: fcntl/ftruncate on the test's memfd.
    unsafe {
        assert_eq!(libc::fcntl(fd, libc::F_ADD_SEALS, libc::F_SEAL_SHRINK), 0);
    }
    assert_eq!(p.dma_map(0x10_0000, 1 << 20, Some(fd)), 0);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::ftruncate(fd, 0) }, -1, "the seal holds");
    // A file that cannot be sealed at all (not a memfd) is refused too.
    let tmp = std::env::temp_dir().join(format!("hostile-{}", std::process::id()));
    let file = std::fs::File::create(&tmp).unwrap();
    file.set_len(1 << 20).unwrap();
    assert_eq!(
        p.dma_map(0x20_0000, 1 << 20, Some(file.as_raw_fd())),
        libc::EPERM as u32
    );
    let _ = std::fs::remove_file(&tmp);
    // SAFETY: closing the test's own descriptor.
    drop(unsafe { std::fs::File::from_raw_fd(fd) });
}

// ---- 4, 5. QueueReset acts on the owner's current memory and doorbells -

#[test]
fn queue_reset_after_unmap_writes_nothing_and_fails_with_a_dma_fault() {
    let s = sim(1);
    let mut a = bring_up(s.vf_socket(0).unwrap(), "a");
    // A second TX queue in memory of its own, mapped at another IOVA.
    let iova2 = 0x2000_0000u64;
    let mem2 = Mem::new(1 << 20);
    a.f.client.dma_map(0, iova2, 1 << 20, mem2.file.as_raw_fd()).unwrap();
    let order = 6u8;
    let body = QueueCreate {
        qtype: QueueType::Tx.raw(),
        ring_order: order,
        ring_base: iova2.into(),
        cq_base: (iova2 + 0x1000).into(),
        state_base: (iova2 + 0x2000).into(),
        ..Default::default()
    };
    let (st, c) = a.f.admin(AdminCommand::QueueCreate(body), a.lif);
    assert_eq!(st, AdminStatus::Ok);
    let qindex = c.value.get() as u16;
    // The client unmaps it, then reuses those pages for something else.
    a.f.client.dma_unmap(iova2, 1 << 20).unwrap();
    // Offsets in mem2 through the helper's IOVA arithmetic.
    let pattern = vec![0xabu8; 0x3000];
    mem2.write(IOVA, &pattern);
    let reset = QueueRef {
        qtype: QueueType::Tx.raw(),
        qindex: qindex.into(),
        start_index: 7.into(),
        ..Default::default()
    };
    assert_eq!(
        a.f.admin(AdminCommand::QueueReset(reset), a.lif).0,
        AdminStatus::DmaFault
    );
    s.advance(10_000);
    assert_eq!(
        mem2.read(IOVA, 0x3000),
        pattern,
        "not a byte of the unmapped queue was written"
    );
    // Mapped again, the reset succeeds and initialises the state block.
    a.f.client.dma_map(0, iova2, 1 << 20, mem2.file.as_raw_fd()).unwrap();
    assert_eq!(a.f.admin(AdminCommand::QueueReset(reset), a.lif).0, AdminStatus::Ok);
    assert_eq!(mem2.read(IOVA + 0x2000, 4), 7u32.to_le_bytes(), "head = start_index");
}

#[test]
fn a_pf_reset_of_a_vf_queue_leaves_the_pfs_doorbells_alone() {
    let s = sim(1);
    let mut pf = bring_up(s.pf_socket(), "pf");
    let mut vf = bring_up(s.vf_socket(0).unwrap(), "vf");
    assert_eq!(
        pf.tx.slot, vf.tx.slot,
        "both LIFs sit in doorbell slot 0 of their function"
    );
    // The PF rings for a frame; before the engine looks, it resets the
    // VF's TX queue.
    let pkt = frame(vf.mac, pf.mac, 1, 64);
    let buf = pf.f.alloc(2048, 64);
    pf.f.mem.write(buf, &pkt);
    assert!(pf.tx.ring.fill_bulk(&[TxDesc::new(buf, 64, 0)]));
    pf.f.ring_doorbell(&mut pf.tx);
    let reset = QueueRef {
        qtype: QueueType::Tx.raw(),
        qindex: vf.tx.qindex.into(),
        start_index: 0.into(),
        ..Default::default()
    };
    assert_eq!(pf.f.admin(AdminCommand::QueueReset(reset), vf.lif).0, AdminStatus::Ok);
    s.advance(10_000);
    assert_eq!(
        s.device().lif(pf.lif).unwrap().counter(LifCounter::TxPackets),
        1,
        "the PF's doorbell was not cleared by a reset of another function's queue"
    );
    let c = vf.f.completion(&mut vf.rx).expect("the frame arrives");
    assert_eq!(c.status, CompStatus::Ok);
}

// ---- 9, 11. Framing by the header, sizes checked first ----------------

#[test]
fn an_unknown_command_is_refused_by_its_header_and_the_stream_stays_in_step() {
    let s = sim(1);
    let (mut p, _) = Proto::connect(s.vf_socket(0).unwrap());
    // Its payload looks like a REGION_READ message: it must not be run.
    let inner = Proto::message(77, 9, 0, &[0; 16]);
    let (h, body) = p.call(99, &inner, &[]);
    assert!(h.is_error() && body.is_empty());
    assert_eq!(h.error, libc::ENOTSUP as u32);
    // Unsupported but defined commands likewise.
    for c in [6u16, 11, 12, 14, 15, 16, 17, 18] {
        let (h, _) = p.call(c, &[0; 24], &[]);
        assert_eq!(h.error, libc::ENOTSUP as u32, "command {c}");
    }
    // The next command is answered in step.
    let (e, data) = p.region_read(VFIO_PCI_CONFIG_REGION_INDEX, 0, 2);
    assert_eq!((e, data), (0, PCI_VENDOR_ID.to_le_bytes().to_vec()));
}

#[test]
fn a_payload_shorter_than_the_command_is_refused_without_hanging() {
    let s = sim(1);
    let (mut p, _) = Proto::connect(s.vf_socket(0).unwrap());
    for (cmd, len) in [(2u16, 8usize), (3, 4), (5, 0), (7, 3), (8, 10), (9, 15), (10, 2)] {
        let (h, _) = p.call(cmd, &vec![0; len], &[]);
        assert_eq!(h.error, libc::EINVAL as u32, "command {cmd} with {len} payload bytes");
    }
    let (e, _) = p.region_read(VFIO_PCI_CONFIG_REGION_INDEX, 0, 4);
    assert_eq!(e, 0);
}

#[test]
fn a_command_with_the_no_reply_flag_gets_no_reply_even_when_refused() {
    let s = sim(1);
    let (mut p, _) = Proto::connect(s.vf_socket(0).unwrap());
    // Refused (unknown command, a short DMA_MAP) and accepted (a config
    // write), all without replies.
    p.send(99, 1 << 4, &[0; 8], &[]);
    p.send(2, 1 << 4, &[0; 4], &[]);
    let mut w = Vec::new();
    w.extend_from_slice(&0x3cu64.to_ne_bytes());
    w.extend_from_slice(&VFIO_PCI_CONFIG_REGION_INDEX.to_ne_bytes());
    w.extend_from_slice(&1u32.to_ne_bytes());
    w.push(0x5a);
    p.send(10, 1 << 4, &w, &[]);
    // The first reply on the stream is the one to this read.
    let (e, data) = p.region_read(VFIO_PCI_CONFIG_REGION_INDEX, 0x3c, 1);
    assert_eq!((e, data), (0, vec![0x5a]), "the no-reply write was carried out");
    assert!(s.device().functions[1].counters.protocol_errors >= 2);
}

#[test]
fn a_header_announcing_4_gib_is_refused_before_a_byte_is_buffered() {
    let s = sim(1);
    let mut p = Proto::connect_raw(s.vf_socket(0).unwrap());
    let mut m = Proto::message(1, 10, 0, &[]);
    m[4..8].copy_from_slice(&u32::MAX.to_ne_bytes());
    use std::io::Write;
    p.s.write_all(&m).unwrap();
    // Stream 64 MiB after it: none of it is read, let alone kept.
    let junk = vec![0u8; 1 << 20];
    let mut sent = 0usize;
    p.s.set_write_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    for _ in 0..64 {
        match p.s.write(&junk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    let (h, _) = p.recv().expect("an error reply");
    assert!(h.is_error());
    assert_eq!(h.error, libc::EMSGSIZE as u32);
    assert!(p.recv().is_none(), "then the connection is closed");
    assert!(sent < 64 << 20, "the server stopped reading (sent {sent} bytes)");
    // The socket serves the next client.
    let (mut q, _) = Proto::connect(s.vf_socket(0).unwrap());
    assert_eq!(q.region_read(VFIO_PCI_CONFIG_REGION_INDEX, 0, 2).0, 0);
}

#[test]
fn oversized_transfers_are_refused_by_size_before_allocation() {
    let s = sim(1);
    let (mut p, caps) = Proto::connect(s.vf_socket(0).unwrap());
    assert!(caps.contains("\"max_data_xfer_size\":1048576"), "{caps}");
    // A read of 4 GiB - 1: refused, nothing allocated, stream in step.
    let (e, _) = p.region_read(VFIO_PCI_BAR0_REGION_INDEX, 0, u32::MAX);
    assert_eq!(e, libc::EINVAL as u32);
    // A write whose header and count disagree.
    let mut w = Vec::new();
    w.extend_from_slice(&0u64.to_ne_bytes());
    w.extend_from_slice(&VFIO_PCI_BAR0_REGION_INDEX.to_ne_bytes());
    w.extend_from_slice(&1000u32.to_ne_bytes());
    w.extend_from_slice(&[0; 8]);
    assert_eq!(p.call(10, &w, &[]).0.error, libc::EINVAL as u32);
    assert_eq!(p.region_read(VFIO_PCI_CONFIG_REGION_INDEX, 0, 2).0, 0);
}

#[test]
fn errors_carry_the_errno_the_specification_names() {
    let s = sim(1);
    let (mut p, _) = Proto::connect(s.vf_socket(0).unwrap());
    let m = Mem::new(1 << 20);
    let fd = m.file.as_raw_fd();
    assert_eq!(p.dma_map(0x10_0000, 1 << 20, Some(fd)), 0);
    assert_eq!(p.dma_map(0x10_0000, 1 << 20, Some(fd)), libc::EEXIST as u32, "overlap");
    assert_eq!(
        p.dma_map(0x8_0000, 1 << 20, Some(fd)),
        libc::EEXIST as u32,
        "partial overlap"
    );
    assert_eq!(p.dma_map(0x40_0001, 4096, Some(fd)), libc::EINVAL as u32, "unaligned");
    assert_eq!(
        p.dma_unmap(0x90_0000, 4096),
        0,
        "nothing mapped there: nothing to do (as the kernel's VFIO)"
    );
    assert_eq!(
        p.dma_unmap(0x10_0000, 4096),
        libc::EINVAL as u32,
        "it would cut a mapping in two"
    );
    assert_eq!(p.dma_unmap(0x10_0000, 1 << 20), 0);
    let (h, _) = p.call(7, &[16, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0], &[]);
    assert_eq!(h.error, libc::EINVAL as u32, "no IRQ index 9");
    let mut q = vec![0u8; 32];
    q[0] = 32;
    q[8] = 42;
    assert_eq!(p.call(5, &q, &[]).0.error, libc::EINVAL as u32, "no region 42");
}

#[test]
fn commands_before_version_are_refused_and_a_second_client_is_turned_away() {
    let s = sim(1);
    let mut p = Proto::connect_raw(s.vf_socket(0).unwrap());
    let (h, _) = p.call(4, &[16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[]);
    assert_eq!(h.error, libc::EINVAL as u32, "VERSION first");
    let mut v = vec![0u8, 0, 1, 0];
    v.extend_from_slice(b"{}\0");
    assert!(!p.call(1, &v, &[]).0.is_error());
    // A second client on the same socket is closed at once, not left
    // waiting; the first one carries on.
    let mut second = Proto::connect_raw(s.vf_socket(0).unwrap());
    // It may already be closed when this is written (EPIPE): either way
    // nothing is answered.
    use std::io::Write;
    let _ = second.s.write_all(&Proto::message(1, 1, 0, &v));
    assert!(second.recv().is_none(), "turned away");
    assert_eq!(p.region_read(VFIO_PCI_CONFIG_REGION_INDEX, 0, 2).0, 0);
    // A major version nicsim does not speak closes the connection.
    drop(p);
    let mut p = Proto::connect_raw(s.vf_socket(0).unwrap());
    let (h, _) = p.call(1, &[7, 0, 0, 0], &[]);
    assert_eq!(h.error, libc::ENOTSUP as u32);
    assert!(p.recv().is_none());
}

#[test]
fn more_descriptors_than_announced_close_only_that_connection() {
    let s = sim(2);
    let mut a = bring_up(s.vf_socket(0).unwrap(), "a");
    let mut pf = bring_up(s.pf_socket(), "pf");
    let mems: Vec<Mem> = (0..64).map(|_| Mem::new(4096)).collect();
    let fds: Vec<i32> = mems.iter().map(|m| m.file.as_raw_fd()).collect();
    let (mut p, caps) = Proto::connect(s.vf_socket(1).unwrap());
    assert!(
        caps.contains("\"max_msg_fds\":8"),
        "a VF takes at most its 8 vectors' eventfds: {caps}"
    );
    p.send(4, 0, &[16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], &fds);
    assert!(p.recv().is_none(), "the connection is closed");
    // The device carries on, and the socket serves the next client.
    still_works(&s, &mut a, &mut pf);
    let (mut q, _) = Proto::connect(s.vf_socket(1).unwrap());
    assert_eq!(q.region_read(VFIO_PCI_CONFIG_REGION_INDEX, 0, 2).0, 0);
}

// ---- 12. Budgets, advertised and released -----------------------------

#[test]
fn dma_mappings_are_budgeted_per_function_and_released_on_disconnect() {
    let s = sim(4);
    let budget = 64u64;
    for vf in 0..4 {
        let (mut p, caps) = Proto::connect(s.vf_socket(vf).unwrap());
        // Announced: mappings of both kinds (the most QEMU accepts); of
        // files, the function's own budget.
        assert!(
            caps.contains(&format!("\"max_dma_maps\":{}", sim::dma::MAX_DMA_MAPS)),
            "{caps}"
        );
        let m = Mem::new(4096);
        for i in 0..budget {
            assert_eq!(p.dma_map(0x100_0000 + i * 0x1000, 4096, Some(m.file.as_raw_fd())), 0);
        }
        // Past its budget of mmaps, a mapping of a file is one the device
        // reaches by message: it maps nothing more.
        assert_eq!(p.dma_map(0x900_0000, 4096, Some(m.file.as_raw_fd())), 0);
        assert_eq!(s.device().functions[vf + 1].dma.files(), budget as usize);
        assert!(s.device().functions[vf + 1].dma.is_remote(0x900_0000, 4096, true));
        drop(p);
        wait_until_released(&s, vf as u16 + 1);
    }
    // Every VF mapped its whole budget and left: the PF maps its own.
    let mut pf = bring_up(s.pf_socket(), "pf");
    let mut a = bring_up(s.vf_socket(0).unwrap(), "a");
    still_works(&s, &mut pf, &mut a);
}

// ---- 3. A VF cannot shed the meter its PF set -------------------------

fn cost_meter() -> MeterConfig {
    MeterConfig {
        resource: MeterResource::Cost.raw(),
        mode: MeterMode::SrTcm.raw(),
        policy: MeterPolicy::Backpressure.raw(),
        cir: 1_000_000.into(),
        cburst: 5_000.into(),
        ..Default::default()
    }
}

/// The VF's LIF's applied cost meter, as the PF reads it.
fn applied_cost_meter(pf: &mut RawFn, lif: u16) -> MeterConfig {
    let buf = pf.alloc(64, 64);
    let r = MeterRef {
        resource: MeterResource::Cost.raw(),
        dma: DmaRef::new(buf, 48),
        ..Default::default()
    };
    assert_eq!(pf.admin(AdminCommand::MeterGet(r), lif).0, AdminStatus::Ok);
    MeterConfig::read_from_bytes(&pf.mem.read(buf, 48)).unwrap()
}

/// Every event the device logged from `from` on.
fn events(pf: &mut RawFn, from: u64) -> Vec<DeviceEvent> {
    let buf = pf.alloc(32 * 256, 64);
    let (st, c) = pf.admin(
        AdminCommand::EventsGet(EventsRef {
            from_seq: from.into(),
            dma: DmaRef::new(buf, 32 * 256),
        }),
        LIF_NONE,
    );
    assert_eq!(st, AdminStatus::Ok);
    let n = c.value.get() as usize;
    pf.mem
        .read(buf, 32 * n)
        .chunks_exact(32)
        .map(|b| DeviceEvent::read_from_bytes(b).unwrap())
        .collect()
}

#[test]
fn a_vf_cannot_shed_the_meter_its_pf_set() {
    let s = sim(1);
    let mut pf = RawFn::ready(s.pf_socket());
    let vf_path = s.vf_socket(0).unwrap().to_path_buf();
    let mut vf = RawFn::ready(&vf_path);
    let (lif, slot) = vf.create_lif("tenant");
    assert_eq!(pf.admin(AdminCommand::MeterSet(cost_meter()), lif).0, AdminStatus::Ok);
    let since = events(&mut pf, 0).last().map_or(0, |e| e.seq.get() + 1);
    // Everything a VF can do to itself: destroy and re-create its LIF,
    // reset itself through the mailbox, FLR, disconnect and reconnect.
    let mut lifs = Vec::new();
    assert_eq!(vf.admin(AdminCommand::LifDestroy, lif).0, AdminStatus::Ok);
    lifs.push(vf.create_lif("again").0);
    vf.init_admin(); // mailbox Reset, new admin queue
    lifs.push(vf.create_lif("after-reset").0);
    vf.client.reset().unwrap(); // FLR
    vf.enable(1);
    vf.init_admin();
    lifs.push(vf.create_lif("after-flr").0);
    drop(vf);
    wait_until_released(&s, 1);
    let mut vf = RawFn::ready(&vf_path);
    let (l, sl) = vf.create_lif("new-client");
    lifs.push(l);
    assert_eq!(sl, slot);
    let now = *lifs.last().unwrap();
    let m = applied_cost_meter(&mut pf, now);
    assert_eq!(
        (m.mode(), m.cir.get(), m.cburst.get()),
        (MeterMode::SrTcm, 1_000_000, 5_000),
        "the PF's meter is on the LIF, whatever the VF did"
    );
    assert_eq!(
        vf.admin(AdminCommand::MeterSet(MeterConfig::default()), now).0,
        AdminStatus::Permission
    );
    // The PF heard of each re-application: an event and a count.
    let applied: Vec<DeviceEvent> = events(&mut pf, since)
        .into_iter()
        .filter(|e| e.kind == EventKind::RegulationApplied.raw())
        .collect();
    assert_eq!(applied.len(), 4, "{applied:?}");
    for (i, (e, &l)) in applied.iter().zip(&lifs).enumerate() {
        assert_eq!((e.function.get(), e.slot.get(), e.lif.get()), (1, slot, l));
        assert_eq!(
            e.detail.get() & 0xffff_ffff,
            1 << MeterResource::Cost.raw(),
            "the cost meter"
        );
        assert_eq!(
            e.detail.get() >> 32,
            i as u64 + 1,
            "the function's count of re-applications"
        );
    }
    assert_eq!(s.device().functions[1].counters.regulation_applied, 4);
    // The PF lifts it; the next LIF comes without it.
    let off = MeterConfig {
        resource: MeterResource::Cost.raw(),
        ..Default::default()
    };
    assert_eq!(pf.admin(AdminCommand::MeterSet(off), now).0, AdminStatus::Ok);
    assert_eq!(vf.admin(AdminCommand::LifDestroy, now).0, AdminStatus::Ok);
    let (l, _) = vf.create_lif("free");
    assert_eq!(applied_cost_meter(&mut pf, l).mode(), MeterMode::Off);
}

// ---- 8. MACs are the PF's to give; spoofed sources are dropped --------

fn function_config(f: u16, slot: u16, flags: u8, mac: [u8; 6]) -> FunctionConfig {
    FunctionConfig {
        function: f.into(),
        slot: slot.into(),
        flags,
        mac,
        ..Default::default()
    }
}

#[test]
fn a_vf_cannot_take_the_mac_meant_for_another() {
    use function_config_flags as ff;
    let s = sim(2);
    let mut pf = RawFn::ready(s.pf_socket());
    let mut vf0 = RawFn::ready(s.vf_socket(0).unwrap());
    let mut vf1 = RawFn::ready(s.vf_socket(1).unwrap());
    let meant_for_vf1 = [0x02, 0x11, 0x22, 0x33, 0x44, 0x01];
    // VF0 gets there first with VF1's MAC: refused, it is not trusted.
    let squat = LifCreate {
        mac: meant_for_vf1,
        ..Default::default()
    };
    assert_eq!(
        vf0.admin(AdminCommand::LifCreate(squat), LIF_NONE).0,
        AdminStatus::Permission
    );
    // Nor may it take another LIF's device-assigned MAC.
    let (lif0, _) = vf0.create_lif("vf0");
    let squat = LifCreate {
        mac: lif_mac(lif0 + 1),
        ..Default::default()
    };
    assert_eq!(
        vf0.admin(AdminCommand::LifCreate(squat), LIF_NONE).0,
        AdminStatus::Permission
    );
    // The PF assigns it to VF1's slot 0; VF1's LIF gets it.
    let c = function_config(2, 0, ff::MAC | ff::SPOOF_CHECK, meant_for_vf1);
    assert_eq!(
        pf.admin(AdminCommand::FunctionConfigSet(c), LIF_NONE).0,
        AdminStatus::Ok
    );
    let c2 = function_config(1, 1, ff::MAC | ff::SPOOF_CHECK, meant_for_vf1);
    assert_eq!(
        pf.admin(AdminCommand::FunctionConfigSet(c2), LIF_NONE).0,
        AdminStatus::Exists,
        "one slot per assigned MAC"
    );
    let (lif1, _) = vf1.create_lif("vf1");
    assert_eq!(s.device().lif(lif1).unwrap().mac, meant_for_vf1);
    // VFs may not read or change the configuration.
    assert_eq!(
        vf0.admin(AdminCommand::FunctionConfigSet(c), LIF_NONE).0,
        AdminStatus::Permission
    );
    // The PF reads back what it set.
    let buf = pf.alloc(64, 64);
    let r = FunctionConfigRef {
        function: 2.into(),
        slot: 0.into(),
        dma: DmaRef::new(buf, 16),
        ..Default::default()
    };
    assert_eq!(
        pf.admin(AdminCommand::FunctionConfigGet(r), LIF_NONE).0,
        AdminStatus::Ok
    );
    assert_eq!(FunctionConfig::read_from_bytes(&pf.mem.read(buf, 16)).unwrap(), c);
    // A trusted function may choose its MAC, but not one in use.
    let t = function_config(1, 1, ff::TRUST, [0; 6]);
    assert_eq!(
        pf.admin(AdminCommand::FunctionConfigSet(t), LIF_NONE).0,
        AdminStatus::Ok
    );
    let taken = LifCreate {
        mac: meant_for_vf1,
        ..Default::default()
    };
    assert_eq!(
        vf0.admin(AdminCommand::LifCreate(taken), LIF_NONE).0,
        AdminStatus::Exists
    );
}

#[test]
fn spoofed_and_group_source_macs_are_dropped_and_counted() {
    let s = sim(2);
    let mut a = bring_up(s.vf_socket(0).unwrap(), "a");
    let mut b = bring_up(s.vf_socket(1).unwrap(), "b");
    let mut pf = bring_up(s.pf_socket(), "pf");
    let send = |p: &mut Port1, src: [u8; 6], dst: [u8; 6]| {
        let pkt = frame(dst, src, 7, 64);
        let buf = p.f.alloc(2048, 64);
        p.f.mem.write(buf, &pkt);
        assert!(p.tx.ring.fill_bulk(&[TxDesc::new(buf, 64, 0)]));
        p.f.ring_doorbell(&mut p.tx);
    };
    // VF a pretends to be b, then the PF; then sends from a group address.
    send(&mut a, b.mac, pf.mac);
    send(&mut a, pf.mac, b.mac);
    send(&mut a, [0x01, 0, 0x5e, 0, 0, 1], b.mac);
    s.advance(20_000);
    {
        let d = s.device();
        let la = d.lif(a.lif).unwrap();
        assert_eq!(
            la.counter(LifCounter::TxPackets),
            3,
            "sent, and each in one drop counter"
        );
        assert_eq!(la.counter(LifCounter::DropSpoofed), 2);
        assert_eq!(la.counter(LifCounter::DropBadSource), 1);
        assert_eq!(d.lif(b.lif).unwrap().counter(LifCounter::RxPackets), 0);
        assert_eq!(d.lif(pf.lif).unwrap().counter(LifCounter::RxPackets), 0);
        let ev: Vec<_> = d
            .events
            .iter()
            .filter(|e| e.kind == EventKind::SourceDropped.raw())
            .map(|e| (e.lif.get(), e.detail.get()))
            .collect();
        assert_eq!(
            ev,
            [
                (a.lif, u64::from(LifCounter::DropSpoofed.raw())),
                (a.lif, u64::from(LifCounter::DropBadSource.raw()))
            ],
            "one event per LIF and reason"
        );
    }
    assert!(b.f.completion(&mut b.rx).is_none());
    // The PF is trusted and unchecked by default: it may relay; a group
    // source is dropped from it too.
    send(&mut pf, [2, 9, 9, 9, 9, 9], b.mac);
    send(&mut pf, [0xff; 6], b.mac);
    s.advance(20_000);
    let d = s.device();
    assert_eq!(d.lif(b.lif).unwrap().counter(LifCounter::RxPackets), 1);
    assert_eq!(d.lif(pf.lif).unwrap().counter(LifCounter::DropBadSource), 1);
    drop(d);
    assert!(b.f.completion(&mut b.rx).is_some(), "the PF's relayed frame");
    // a's own frames still go.
    still_works(&s, &mut a, &mut b);
}

#[test]
fn a_group_source_from_the_wire_is_dropped_on_the_uplinks_counters() {
    // A capture with one broadcast-sourced frame and one good one.
    let dir = std::env::temp_dir().join(format!("hostile-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("in.pcap");
    let mut cap = Vec::new();
    cap.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes()); // ns timestamps
    cap.extend_from_slice(&2u16.to_le_bytes());
    cap.extend_from_slice(&4u16.to_le_bytes());
    cap.extend_from_slice(&[0; 8]);
    cap.extend_from_slice(&65535u32.to_le_bytes());
    cap.extend_from_slice(&1u32.to_le_bytes());
    let dst = lif_mac(0);
    for (i, src) in [[0xffu8; 6], [2, 7, 7, 7, 7, 7]].iter().enumerate() {
        let f = frame(dst, *src, i as u8, 64);
        cap.extend_from_slice(&0u32.to_le_bytes());
        cap.extend_from_slice(&(1000 * (i as u32 + 1)).to_le_bytes());
        cap.extend_from_slice(&(f.len() as u32).to_le_bytes());
        cap.extend_from_slice(&(f.len() as u32).to_le_bytes());
        cap.extend_from_slice(&f);
    }
    std::fs::write(&path, &cap).unwrap();
    let s = Sim::start(SimConfig {
        device: DeviceConfig {
            vfs: 0,
            ..DeviceConfig::default()
        },
        clock: ClockKind::Virtual,
        port: PortSpec::Pcap { path: path.clone() },
        ..SimConfig::default()
    })
    .unwrap();
    let mut pf = bring_up(s.pf_socket(), "pf");
    assert_eq!(pf.lif, 0);
    s.advance(1_000_000);
    let d = s.device();
    assert_eq!(d.uplink_counters[LifCounter::WireRxPackets as usize], 2);
    assert_eq!(d.uplink_counters[LifCounter::DropBadSource as usize], 1);
    assert_eq!(d.lif(0).unwrap().counter(LifCounter::RxPackets), 1);
    drop(d);
    assert!(pf.f.completion(&mut pf.rx).is_some());
    assert!(pf.f.completion(&mut pf.rx).is_none(), "only the good frame arrived");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One `PipelineLoad` chunk from the PF: bytes `offset..offset + len` of
/// an image of `total` bytes, read from `buf`.
fn pipeline_chunk(pf: &mut RawFn, buf: u64, offset: u32, len: u32, total: u32, flags: u8) -> AdminStatus {
    let chunk = PipelineChunk {
        dma: DmaRef::new(buf, len),
        offset: offset.into(),
        total_len: total.into(),
        flags,
        ..Default::default()
    };
    pf.admin(AdminCommand::PipelineLoad(chunk), LIF_NONE).0
}

/// Load `image` through the PF in one chunk.
fn load_image(pf: &mut RawFn, image: &[u8]) -> AdminStatus {
    let buf = pf.alloc(image.len() as u64, 64);
    pf.mem.write(buf, image);
    let n = image.len() as u32;
    pipeline_chunk(pf, buf, 0, n, n, pipeline_flags::FIRST | pipeline_flags::LAST)
}

/// Load fairnic.p4 through the PF.
fn load_fairnic(pf: &mut RawFn) -> dataplane::pipeline::Program {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../p4/programs/fairnic.p4");
    let prog = p4::compile_file(&path).expect("fairnic.p4 compiles");
    assert_eq!(load_image(pf, &prog.to_image()), AdminStatus::Ok);
    prog
}

#[test]
fn lif_teardown_costs_the_same_with_10_or_10000_pf_table_entries() {
    let mut per_cycle = Vec::new();
    for entries in [10u32, 10_000] {
        let s = sim(1);
        let mut pf = RawFn::ready(s.pf_socket());
        let prog = load_fairnic(&mut pf);
        let (l2, _) = prog.table("l2_fwd").unwrap();
        let (route, _) = prog.table("route").unwrap();
        let (uplink, _) = prog.action("to_uplink").unwrap();
        let (to_lif, _) = prog.action("to_lif").unwrap();
        let (pf_lif, _) = pf.create_lif("pf");
        let buf = pf.alloc(112, 64);
        // Entries split between l2_fwd (at most 8000) and route, half of
        // them delivering to the PF's LIF.
        for i in 0..entries {
            let e = if i < 8000 {
                let mac = [2, 0x55, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8];
                if i % 2 == 0 {
                    TableEntry::exact(u32::from(l2), &mac, u32::from(uplink), &[])
                } else {
                    TableEntry::exact(u32::from(l2), &mac, u32::from(to_lif), &pf_lif.to_be_bytes())
                }
            } else {
                let mut e = TableEntry::exact(
                    u32::from(route),
                    &(0x0a00_0000 + (i << 8)).to_be_bytes(),
                    u32::from(to_lif),
                    &pf_lif.to_be_bytes(),
                );
                e.mask = [0; 32];
                e.prefix_len = 24.into();
                e
            };
            pf.mem.write(buf, e.as_bytes());
            assert_eq!(
                pf.admin(AdminCommand::TableEntryAdd(DmaRef::new(buf, 112)), LIF_NONE).0,
                AdminStatus::Ok,
                "entry {i}"
            );
        }
        let mut vf = RawFn::ready(s.vf_socket(0).unwrap());
        let before = s.device().switch.teardown_work;
        for _ in 0..100 {
            let (lif, _) = vf.create_lif("loop");
            assert_eq!(vf.admin(AdminCommand::LifDestroy, lif).0, AdminStatus::Ok);
        }
        per_cycle.push((s.device().switch.teardown_work - before) as f64 / 100.0);
    }
    assert_eq!(
        per_cycle,
        [1.0, 1.0],
        "a VF's LIF teardown visits its own MAC entry only"
    );
}

// ---- 10. Floods are charged for every copy ----------------------------

#[test]
fn a_flood_is_charged_to_its_sender_for_every_copy() {
    let s = sim(4);
    let mut ports: Vec<Port1> = (0..4).map(|v| bring_up(s.vf_socket(v).unwrap(), "v")).collect();
    let mut pf = bring_up(s.pf_socket(), "pf");
    let sender = &mut ports[0];
    let send = |p: &mut Port1, dst: [u8; 6]| {
        let pkt = frame(dst, p.mac, 1, 64);
        let buf = p.f.alloc(2048, 64);
        p.f.mem.write(buf, &pkt);
        assert!(p.tx.ring.fill_bulk(&[TxDesc::new(buf, 64, 0)]));
        p.f.ring_doorbell(&mut p.tx);
    };
    send(sender, pf.mac);
    s.advance(20_000);
    let unicast = s.device().lif(sender.lif).unwrap().counter(LifCounter::CostUnits);
    send(sender, [0xff; 6]);
    s.advance(20_000);
    let d = s.device();
    let l = d.lif(sender.lif).unwrap();
    let flood = l.counter(LifCounter::CostUnits) - unicast;
    // Five LIFs: four copies to the other LIFs and one to the wire, each
    // past the first an egress stage more.
    assert_eq!(unicast, 5, "Ethernet/IPv4/UDP: 3 headers, lookup, egress");
    assert_eq!(flood, 5 + 4, "the pass and four more copies");
    assert_eq!(
        l.counter(LifCounter::DmaBytes),
        2 * (16 + 64) + 4 * (32 + 64),
        "the copies' DMA too"
    );
    drop(d);
    for p in ports.iter_mut().skip(1).chain(std::iter::once(&mut pf)) {
        assert!(p.f.completion(&mut p.rx).is_some(), "every other LIF got its copy");
    }
}

// ---- 6. Pipeline images within the device's budget ----------------------

#[test]
fn pipeline_images_over_the_cost_or_state_budget_are_refused_with_the_limit_named() {
    use dataplane::pipeline::{limits, MeterDef, MeterUnit};
    let s = sim(0);
    let mut pf = RawFn::ready(s.pf_socket());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../p4/programs/fairnic.p4");
    let good = p4::compile_file(&path).unwrap();
    let mut costly = good.clone();
    costly.base_cost = u32::MAX;
    assert_eq!(load_image(&mut pf, &costly.to_image()), AdminStatus::Invalid);
    let why = s.device().pipeline_error.clone().unwrap();
    assert!(why.contains("base cost is 4294967295 units, at most 65535"), "{why}");
    let mut big = good.clone();
    big.meters.extend((0..8).map(|i| MeterDef {
        name: format!("huge{i}"),
        size: limits::ARRAY_SIZE,
        unit: MeterUnit::Bytes,
    }));
    let image = big.to_image();
    assert!(image.len() < 4096, "a {}-byte image", image.len());
    assert_eq!(load_image(&mut pf, &image), AdminStatus::Invalid);
    let why = s.device().pipeline_error.clone().unwrap();
    assert!(why.contains("the device's budget is 65536 KiB"), "{why}");
    assert!(s.device().switch.program().is_none(), "nothing was loaded");
    assert_eq!(load_image(&mut pf, &good.to_image()), AdminStatus::Ok, "within budget");
}

// ---- 7. A bug in the engine stops one function, not the device ----------

#[test]
fn an_engine_panic_stops_only_the_function_it_served_and_a_reset_recovers_it() {
    let s = sim(2);
    let mut a = bring_up(s.vf_socket(0).unwrap(), "a");
    let mut b = bring_up(s.vf_socket(1).unwrap(), "b");
    let mut pf = bring_up(s.pf_socket(), "pf");
    s.device()
        .inject(sim::device::faults::Fault::Panic { lif: a.lif })
        .unwrap();
    // a sends: the engine panics serving it.
    let pkt = frame(b.mac, a.mac, 1, 64);
    let buf = a.f.alloc(2048, 64);
    a.f.mem.write(buf, &pkt);
    assert!(a.tx.ring.fill_bulk(&[TxDesc::new(buf, 64, 0)]));
    a.f.ring_doorbell(&mut a.tx);
    s.advance(20_000);
    {
        let d = s.device();
        assert_eq!(d.internal_errors.len(), 1);
        assert_eq!(d.internal_errors[0].0, Some(1), "blamed on VF 0's function");
        assert!(d.functions[1].failed.is_some());
        assert!(d.functions[2].failed.is_none() && d.functions[0].failed.is_none());
        assert!(d
            .events
            .iter()
            .any(|e| e.kind == EventKind::FunctionError.raw() && e.function.get() == 1));
    }
    // Its queues say so; its admin queue answers Internal (Nop still Ok).
    assert_eq!(a.f.qstatus(&a.tx), u32::from(CompStatus::DeviceError.raw()));
    assert_eq!(a.f.admin(AdminCommand::Nop, LIF_NONE).0, AdminStatus::Ok);
    let dma = DmaRef::new(a.f.alloc(512, 64), 512);
    assert_eq!(a.f.admin(AdminCommand::StatsGet(dma), a.lif).0, AdminStatus::Internal);
    // Everyone else carries on, in both directions.
    still_works(&s, &mut b, &mut pf);
    still_works(&s, &mut pf, &mut b);
    // Frames to the stopped function are dropped and counted.
    let d = s.device();
    let before = d.lif(a.lif).unwrap().counter(LifCounter::DropQueueError);
    drop(d);
    let pkt = frame(a.mac, b.mac, 2, 64);
    let buf = b.f.alloc(2048, 64);
    b.f.mem.write(buf, &pkt);
    assert!(b.tx.ring.fill_bulk(&[TxDesc::new(buf, 64, 0)]));
    b.f.ring_doorbell(&mut b.tx);
    s.advance(20_000);
    assert_eq!(
        s.device().lif(a.lif).unwrap().counter(LifCounter::DropQueueError),
        before + 1
    );
    // A reset brings the function back.
    drop(a);
    wait_until_released(&s, 1);
    let mut a = bring_up(s.vf_socket(0).unwrap(), "a-again");
    assert!(s.device().functions[1].failed.is_none());
    still_works(&s, &mut a, &mut b);
}

// ---- 2 (cont.). No descriptor a client passes can block the device ------

#[test]
fn interrupt_descriptors_that_could_block_the_device_are_refused_or_made_harmless() {
    let s = std::sync::Arc::new(sim(1));
    // A pipe as an "eventfd": refused.
    let (mut p, _) = Proto::connect(s.pf_socket());
    let mut pipe = [0i32; 2];
    // SAFETY: pipe(2) fills the array; the test closes nothing it did not open.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    let mut set = Vec::new();
    for v in [
        20u32,
        VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
        VFIO_PCI_MSIX_IRQ_INDEX,
        0,
        1,
    ] {
        set.extend_from_slice(&v.to_ne_bytes());
    }
    assert_eq!(
        p.call(8, &set, &[pipe[1]]).0.error,
        libc::EINVAL as u32,
        "a pipe is not an eventfd"
    );
    drop(p);
    wait_until_released(&s, 0);
    // A blocking eventfd the client fills to the brim: the device's next
    // interrupt would block the engine (and every function) forever.
    let mut a = bring_up(s.vf_socket(0).unwrap(), "a");
    let mut pf = bring_up(s.pf_socket(), "pf");
    // SAFETY: eventfd(2); the File owns the result.
    let blocking = unsafe { std::fs::File::from_raw_fd(libc::eventfd(0, libc::EFD_CLOEXEC)) };
    a.f.client
        .set_irqs(
            VFIO_PCI_MSIX_IRQ_INDEX,
            VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            0,
            1,
            &[blocking.as_raw_fd()],
        )
        .unwrap();
    use std::io::Write;
    (&blocking).write_all(&0xffff_ffff_ffff_fffeu64.to_ne_bytes()).unwrap();
    // pf sends to a: a's RX completion raises vector 0.
    let pkt = frame(a.mac, pf.mac, 1, 64);
    let buf = pf.f.alloc(2048, 64);
    pf.f.mem.write(buf, &pkt);
    assert!(pf.tx.ring.fill_bulk(&[TxDesc::new(buf, 64, 0)]));
    pf.f.ring_doorbell(&mut pf.tx);
    let (tx, rx) = std::sync::mpsc::channel();
    let s2 = s.clone();
    std::thread::spawn(move || {
        s2.advance(20_000);
        let _ = tx.send(());
    });
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .expect("the engine did not block on the client's full eventfd");
    assert!(a.f.completion(&mut a.rx).is_some(), "the frame arrived");
    still_works(&s, &mut pf, &mut a);
}

#[test]
fn a_flood_with_no_lif_to_reach_still_ends_in_one_counter() {
    // From the wire, with no LIF: dropped as no route on the uplink.
    let s = Sim::start(SimConfig {
        device: DeviceConfig {
            vfs: 0,
            ..DeviceConfig::default()
        },
        clock: ClockKind::Virtual,
        port: PortSpec::Loopback { delay_ns: 0 },
        ..SimConfig::default()
    })
    .unwrap();
    let mut pf = bring_up(s.pf_socket(), "pf");
    // A broadcast from the only LIF: no other LIF to reach, so out of the
    // uplink alone (ToUplink); the loopback brings it back from the wire
    // as a flood, which the PF's LIF takes.
    let pkt = frame([0xff; 6], pf.mac, 1, 64);
    let buf = pf.f.alloc(2048, 64);
    pf.f.mem.write(buf, &pkt);
    assert!(pf.tx.ring.fill_bulk(&[TxDesc::new(buf, 64, 0)]));
    pf.f.ring_doorbell(&mut pf.tx);
    s.advance(100_000);
    {
        let d = s.device();
        let l = d.lif(pf.lif).unwrap();
        assert_eq!(
            l.counter(LifCounter::ToUplink),
            1,
            "the lone LIF's broadcast left by the uplink"
        );
        assert_eq!(
            l.counter(LifCounter::RxFromWire),
            1,
            "and came back from the wire to it"
        );
        d.check_books().unwrap();
    }
    // Now no LIF at all: the wire's broadcast is dropped, counted.
    assert_eq!(pf.f.admin(AdminCommand::LifDestroy, pf.lif).0, AdminStatus::Ok);
    // The loopback cable brings back what is sent into it.
    let now = s.clock().now();
    s.device()
        .port
        .transmit(now, &frame([0xff; 6], [2, 3, 3, 3, 3, 3], 2, 64));
    s.advance(100_000);
    let d = s.device();
    assert_eq!(d.uplink_counters[LifCounter::DropNoRoute as usize], 1);
    d.check_books().unwrap();
}

#[test]
fn pipeline_chunks_past_their_image_or_the_size_limit_are_refused_and_allocate_nothing() {
    use dataplane::pipeline::limits;
    let s = sim(0);
    let mut pf = RawFn::ready(s.pf_socket());
    let buf = pf.alloc(8192, 64);
    let send = |pf: &mut RawFn, offset, len, total, flags| pipeline_chunk(pf, buf, offset, len, total, flags);
    // A 4 GiB image is refused before the device allocates it, as is one
    // past the limit by a byte, and an empty one.
    assert_eq!(
        send(&mut pf, 0, 64, u32::MAX, pipeline_flags::FIRST),
        AdminStatus::Invalid
    );
    assert_eq!(
        send(&mut pf, 0, 64, limits::IMAGE_BYTES + 1, pipeline_flags::FIRST),
        AdminStatus::Invalid
    );
    assert_eq!(send(&mut pf, 0, 0, 0, pipeline_flags::FIRST), AdminStatus::Invalid);
    // A chunk longer than what is left of its image (was a panic).
    assert_eq!(send(&mut pf, 0, 128, 64, pipeline_flags::FIRST), AdminStatus::Invalid);
    assert_eq!(send(&mut pf, 0, 32, 64, pipeline_flags::FIRST), AdminStatus::Ok);
    assert_eq!(send(&mut pf, 32, 64, 64, pipeline_flags::LAST), AdminStatus::Invalid);
    // The device still serves, and a real image loads after all that.
    load_fairnic(&mut pf);
    assert!(s.device().switch.program().is_some());
}

#[test]
fn program_counters_are_read_in_pages_by_the_pf_only() {
    let s = sim(1);
    let mut pf = RawFn::ready(s.pf_socket());
    let mut vf = RawFn::ready(s.vf_socket(0).unwrap());
    let out = pf.alloc(4096, 64);
    let get = |f: &mut RawFn, counter: u32, from: u32, at: u64, len: u32| {
        let (st, c) = f.admin(
            AdminCommand::PipelineCounterGet(CounterRef {
                counter_id: counter.into(),
                from: from.into(),
                dma: DmaRef::new(at, len),
            }),
            LIF_NONE,
        );
        (st, c.value.get(), c.data.get())
    };
    // No program yet: no counters.
    assert_eq!(get(&mut pf, 0, 0, out, 4096).0, AdminStatus::NoEntry);
    let prog = load_fairnic(&mut pf);
    let c = prog.counters.iter().position(|c| c.name == "lif_in").unwrap() as u32;
    let cells = prog.counters[c as usize].size;
    // Pages: five cells, then as many as fit (256 in 4 KiB), the last
    // three, then none; all zero after a load.
    pf.mem.write(out, &[0xaa; 4096]);
    assert_eq!(
        get(&mut pf, c, 0, out, 5 * 16 + 15),
        (AdminStatus::Ok, 5, u64::from(cells))
    );
    assert_eq!(pf.mem.read(out, 5 * 16), vec![0; 5 * 16]);
    assert_eq!(
        pf.mem.read(out + 5 * 16, 16),
        vec![0xaa; 16],
        "only whole cells are written"
    );
    assert_eq!(
        get(&mut pf, c, 5, out, 4096),
        (AdminStatus::Ok, (cells - 5).min(256), u64::from(cells))
    );
    assert_eq!(
        get(&mut pf, c, cells - 3, out, 4096),
        (AdminStatus::Ok, 3, u64::from(cells))
    );
    assert_eq!(
        get(&mut pf, c, cells, out, 4096),
        (AdminStatus::Ok, 0, u64::from(cells))
    );
    assert_eq!(
        get(&mut pf, c, u32::MAX, out, 4096),
        (AdminStatus::Ok, 0, u64::from(cells))
    );
    // Under one cell, an array the program lacks, a VF asking.
    assert_eq!(get(&mut pf, c, 0, out, 15).0, AdminStatus::Invalid);
    assert_eq!(
        get(&mut pf, prog.counters.len() as u32, 0, out, 4096).0,
        AdminStatus::NoEntry
    );
    let vout = vf.alloc(4096, 64);
    assert_eq!(get(&mut vf, c, 0, vout, 4096).0, AdminStatus::Permission);
    assert_eq!(vf.mem.read(vout, 16), vec![0; 16], "nothing written for a VF");
}
