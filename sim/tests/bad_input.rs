//! Every kind of bad input nicsim must survive: each test asserts the error
//! status or queue error the device reports, and that other queues,
//! functions and clients keep working afterwards.

#![allow(missing_debug_implementations)]

mod common;

use common::*;
use dataplane::abi::*;
use sim::device::DeviceConfig;
use sim::{ClockKind, PortSpec, Sim, SimConfig};
use std::io::{Read, Write};

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

/// Send one good frame from `a` to `b` and check it arrives.
fn still_works(s: &Sim, a: &mut Port1, b: &mut Port1) {
    let pkt = frame(b.mac, a.mac, 42, 100);
    let buf = a.f.alloc(2048, 64);
    a.f.mem.write(buf, &pkt);
    assert!(a.tx.ring.fill_bulk(&[TxDesc::new(buf, pkt.len() as u16, 0)]));
    a.f.ring_doorbell(&mut a.tx);
    s.advance(10_000);
    let c = b.f.completion(&mut b.rx).expect("the good frame arrives");
    assert_eq!((c.status, usize::from(c.len)), (CompStatus::Ok, pkt.len()));
}

#[test]
fn malformed_and_unknown_admin_commands_get_an_error_status() {
    let s = sim(1);
    let mut f = RawFn::ready(s.vf_socket(0).unwrap());
    // Unknown opcode.
    let mut raw = AdminCommand::Nop.encode(CmdHeader { tag: 100, lif: 0 });
    raw.opcode = 0x7e;
    let (st, c) = f.admin_raw(raw);
    assert_eq!((st, c.tag.get()), (AdminStatus::UnknownOpcode, 100));
    // Reserved bits in a known command.
    let mut raw = AdminCommand::Nop.encode(CmdHeader { tag: 101, lif: 0 });
    raw.body[3] = 1;
    assert_eq!(f.admin_raw(raw).0, AdminStatus::Invalid);
    // A field out of range: ring order 30.
    let mut body = f.queue_create_body(QueueType::Tx, 6, None);
    body.ring_order = 30;
    let mut raw = AdminCommand::QueueCreate(body).encode(CmdHeader { tag: 102, lif: 0 });
    raw.body[1] = 30;
    assert_eq!(f.admin_raw(raw).0, AdminStatus::Invalid);
    // Garbage in every byte.
    let raw: AdminCmd = FromBytes::read_from_bytes(&[0xa5u8; 64][..]).unwrap();
    assert_ne!(f.admin_raw(raw).0, AdminStatus::Ok);
    // The queue carries on.
    assert_eq!(f.admin(AdminCommand::Nop, LIF_NONE).0, AdminStatus::Ok);
    assert_eq!(s.device().functions[1].counters.admin_errors, 4);
    // Mailbox: unknown opcode and malformed body.
    let mut raw = [0u8; 64];
    raw[0] = 0x99;
    assert_eq!(f.devcmd_raw(&raw).0, AdminStatus::UnknownOpcode);
    raw[0] = DevCmdOpcode::Reset.raw();
    raw[20] = 1;
    assert_eq!(f.devcmd_raw(&raw).0, AdminStatus::Invalid);
}

#[test]
fn commands_on_missing_or_foreign_objects() {
    let s = sim(2);
    let mut pf = RawFn::ready(s.pf_socket());
    let mut vf0 = RawFn::ready(s.vf_socket(0).unwrap());
    let mut vf1 = RawFn::ready(s.vf_socket(1).unwrap());
    let (lif0, _) = vf0.create_lif("vf0");
    let (lif1, _) = vf1.create_lif("vf1");
    // No such LIF.
    assert_eq!(vf0.admin(AdminCommand::LifDestroy, 77).0, AdminStatus::NoEntry);
    // Another VF's LIF.
    assert_eq!(vf0.admin(AdminCommand::LifDestroy, lif1).0, AdminStatus::Permission);
    let body = vf0.queue_create_body(QueueType::Tx, 6, None);
    assert_eq!(
        vf0.admin(AdminCommand::QueueCreate(body), lif1).0,
        AdminStatus::Permission
    );
    let dma = DmaRef::new(vf0.alloc(4096, 64), 512);
    assert_eq!(vf0.admin(AdminCommand::StatsGet(dma), lif1).0, AdminStatus::Permission);
    // A queue that does not exist.
    let q = QueueRef {
        qtype: QueueType::Rx.raw(),
        qindex: 3.into(),
        ..Default::default()
    };
    assert_eq!(vf0.admin(AdminCommand::QueueDestroy(q), lif0).0, AdminStatus::NoEntry);
    // A vector the function does not have.
    let body = vf0.queue_create_body(QueueType::Rx, 6, Some(40));
    assert_eq!(vf0.admin(AdminCommand::QueueCreate(body), lif0).0, AdminStatus::NoEntry);
    // Out of LIF slots (a VF has two).
    vf0.create_lif("second");
    assert_eq!(
        vf0.admin(AdminCommand::LifCreate(LifCreate::default()), LIF_NONE).0,
        AdminStatus::NoSpace
    );
    // A MAC another LIF has.
    let dup = LifCreate {
        mac: lif_mac(lif1),
        ..Default::default()
    };
    assert_eq!(pf.admin(AdminCommand::LifCreate(dup), LIF_NONE).0, AdminStatus::Exists);
    // The PF may read another function's LIF stats; the VFs still work.
    let dma = DmaRef::new(pf.alloc(4096, 64), 512);
    assert_eq!(pf.admin(AdminCommand::StatsGet(dma), lif1).0, AdminStatus::Ok);
    assert_eq!(vf1.admin(AdminCommand::Nop, LIF_NONE).0, AdminStatus::Ok);
}

#[test]
fn only_the_pf_changes_meters_pipeline_and_tables() {
    let s = sim(1);
    let mut pf = RawFn::ready(s.pf_socket());
    let mut vf = RawFn::ready(s.vf_socket(0).unwrap());
    let (lif, _) = vf.create_lif("tenant");
    let meter = MeterConfig {
        resource: MeterResource::Bytes.raw(),
        mode: MeterMode::TrTcm.raw(),
        policy: MeterPolicy::Backpressure.raw(),
        cir: 250_000_000.into(),
        cburst: 65_536.into(),
        pir: 500_000_000.into(),
        pburst: 131_072.into(),
        ..Default::default()
    };
    assert_eq!(vf.admin(AdminCommand::MeterSet(meter), lif).0, AdminStatus::Permission);
    let image = vf.alloc(4096, 64);
    let chunk = PipelineChunk {
        dma: DmaRef::new(image, 64),
        offset: 0.into(),
        total_len: 64.into(),
        flags: pipeline_flags::FIRST | pipeline_flags::LAST,
        ..Default::default()
    };
    assert_eq!(
        vf.admin(AdminCommand::PipelineLoad(chunk), LIF_NONE).0,
        AdminStatus::Permission
    );
    let entry = vf.alloc(4096, 64);
    assert_eq!(
        vf.admin(AdminCommand::TableEntryAdd(DmaRef::new(entry, 112)), LIF_NONE)
            .0,
        AdminStatus::Permission
    );
    // The PF may, and reads back what the device applied.
    assert_eq!(pf.admin(AdminCommand::MeterSet(meter), lif).0, AdminStatus::Ok);
    let out = pf.alloc(4096, 64);
    let get = MeterRef {
        resource: MeterResource::Bytes.raw(),
        dma: DmaRef::new(out, 48),
        ..Default::default()
    };
    assert_eq!(pf.admin(AdminCommand::MeterGet(get), lif).0, AdminStatus::Ok);
    let applied: MeterConfig = FromBytes::read_from_bytes(&pf.mem.read(out, 48)[..]).unwrap();
    assert_eq!(applied, meter);
    // The VF may read its own meter.
    let out = vf.alloc(4096, 64);
    let get = MeterRef {
        resource: MeterResource::Bytes.raw(),
        dma: DmaRef::new(out, 48),
        ..Default::default()
    };
    assert_eq!(vf.admin(AdminCommand::MeterGet(get), lif).0, AdminStatus::Ok);
}

#[test]
fn table_entries_are_listed_by_the_pf_only_in_pages() {
    use sim::device::switch::{ACTION_DROP, ACTION_TO_LIF, L2_TABLE};
    let s = sim(1);
    let mut pf = RawFn::ready(s.pf_socket());
    let mut vf = RawFn::ready(s.vf_socket(0).unwrap());
    let (lif, _) = vf.create_lif("tenant");
    // The PF's entry; the device's own is the LIF's MAC (02:f4:1c:...,
    // after 02:00:... in key order).
    let drop = TableEntry::exact(L2_TABLE, &[2, 0, 0, 0, 0, 0x66], ACTION_DROP, &[]);
    let at = pf.alloc(4096, 64);
    pf.mem.write(at, drop.as_bytes());
    assert_eq!(
        pf.admin(AdminCommand::TableEntryAdd(DmaRef::new(at, 112)), LIF_NONE).0,
        AdminStatus::Ok
    );
    let out = pf.alloc(4096, 64);
    let list = |pf: &mut RawFn, table: u32, from: u32, len: u32| {
        let (st, c) = pf.admin(
            AdminCommand::TableEntryList(TableListRef {
                table_id: table.into(),
                from: from.into(),
                dma: DmaRef::new(out, len),
            }),
            LIF_NONE,
        );
        let n = c.value.get() as usize;
        let entries: Vec<TableEntry> = pf
            .mem
            .read(out, n * 112)
            .chunks_exact(112)
            .map(|b| TableEntry::parse(b).unwrap())
            .collect();
        (st, entries, c.data.get())
    };
    // One entry per page: the PF's, then the LIF's, then nothing.
    let (st, first, total) = list(&mut pf, L2_TABLE, 0, 112);
    assert_eq!((st, first.as_slice(), total), (AdminStatus::Ok, &[drop][..], 2));
    let (st, second, total) = list(&mut pf, L2_TABLE, 1, 200);
    assert_eq!((st, second.len(), total), (AdminStatus::Ok, 1, 2));
    assert_eq!(
        (
            second[0].action_id.get(),
            second[0].params(),
            second[0].key()[..3].to_vec()
        ),
        (ACTION_TO_LIF, &lif.to_le_bytes()[..], vec![2, 0xf4, 0x1c])
    );
    assert_eq!(list(&mut pf, L2_TABLE, 2, 4096).1.len(), 0);
    assert_eq!(
        list(&mut pf, L2_TABLE, u32::MAX, 4096).2,
        2,
        "past the end: none, and the count"
    );
    // Both at once.
    let (_, both, _) = list(&mut pf, L2_TABLE, 0, 4096);
    assert_eq!(both, [first[0], second[0]]);
    // A buffer under one entry, a table the switch lacks, a VF asking.
    assert_eq!(list(&mut pf, L2_TABLE, 0, 111).0, AdminStatus::Invalid);
    assert_eq!(list(&mut pf, 7, 0, 4096).0, AdminStatus::NoEntry);
    let vout = vf.alloc(4096, 64);
    let asked = vf.admin(
        AdminCommand::TableEntryList(TableListRef {
            table_id: L2_TABLE.into(),
            from: 0.into(),
            dma: DmaRef::new(vout, 4096),
        }),
        LIF_NONE,
    );
    assert_eq!(asked.0, AdminStatus::Permission);
    assert_eq!(vf.mem.read(vout, 112), vec![0; 112], "nothing written for a VF");
}

#[test]
fn tx_descriptor_outside_dma_stops_only_its_queue() {
    let s = sim(2);
    let mut a = bring_up(s.vf_socket(0).unwrap(), "a");
    let mut b = bring_up(s.vf_socket(1).unwrap(), "b");
    // A second TX queue on the same LIF.
    let slot = a.tx.slot;
    let mut tx2 = a.f.create_queue::<TxDesc>(a.lif, slot, QueueType::Tx, 6, Some(0));
    // Points at memory the function never mapped.
    assert!(a.tx.ring.fill_bulk(&[TxDesc::new(0x9000_0000, 64, 0)]));
    a.f.ring_doorbell(&mut a.tx);
    s.advance(10_000);
    let c = a.f.completion(&mut a.tx).expect("an error completion");
    assert_eq!((c.status, c.index), (CompStatus::DmaFault, 0));
    assert_eq!(a.f.qstatus(&a.tx), u32::from(CompStatus::DmaFault.raw()));
    assert_eq!(s.device().lif(a.lif).unwrap().counter(LifCounter::TxPackets), 0);
    // The other TX queue of the same LIF, and the other VF, work.
    std::mem::swap(&mut a.tx, &mut tx2);
    still_works(&s, &mut a, &mut b);
    // The stopped queue stays stopped until reset...
    std::mem::swap(&mut a.tx, &mut tx2);
    let buf = a.f.alloc(2048, 64);
    a.f.mem.write(buf, &frame(b.mac, a.mac, 1, 64));
    assert!(a.tx.ring.fill_bulk(&[TxDesc::new(buf, 64, 0)]));
    a.f.ring_doorbell(&mut a.tx);
    s.advance(10_000);
    assert!(b.f.completion(&mut b.rx).is_none());
    // ... and QueueReset brings it back.
    let ring = a.tx.ring_base;
    let state = a.tx.state;
    let cq = a.tx.cq.base;
    a.f.mem.write(cq, &[0; 64 * 16]);
    let r = QueueRef {
        qtype: QueueType::Tx.raw(),
        qindex: a.tx.qindex.into(),
        start_index: 0.into(),
        ..Default::default()
    };
    assert_eq!(a.f.admin(AdminCommand::QueueReset(r), a.lif).0, AdminStatus::Ok);
    let body = QueueCreate {
        qtype: QueueType::Tx.raw(),
        ring_order: 6,
        ring_base: ring.into(),
        cq_base: cq.into(),
        state_base: state.into(),
        ..Default::default()
    };
    let qindex = a.tx.qindex;
    a.tx = a.f.attach_queue(&body, a.lif, slot, qindex);
    still_works(&s, &mut a, &mut b);
}

#[test]
fn malformed_tx_descriptor_is_named() {
    let s = sim(2);
    let mut a = bring_up(s.vf_socket(0).unwrap(), "a");
    let mut b = bring_up(s.vf_socket(1).unwrap(), "b");
    let buf = a.f.alloc(2048, 64);
    // Good, bad (length 5), good: the first goes, the queue stops at the
    // second, the third is never fetched.
    a.f.mem.write(buf, &frame(b.mac, a.mac, 1, 64));
    assert!(a
        .tx
        .ring
        .fill_bulk(&[TxDesc::new(buf, 64, 0), TxDesc::new(buf, 5, 0), TxDesc::new(buf, 64, 0)]));
    a.f.ring_doorbell(&mut a.tx);
    s.advance(10_000);
    let c = a.f.completion(&mut a.tx).unwrap();
    assert_eq!((c.status, c.index), (CompStatus::BadDescriptor, 1));
    assert!(b.f.completion(&mut b.rx).is_some(), "the good one before it went");
    assert!(b.f.completion(&mut b.rx).is_none());
    assert_eq!(a.tx.ring.reclaim(), Ok(1), "head written back up to the bad descriptor");
    let mut tx2 = a.f.create_queue::<TxDesc>(a.lif, a.tx.slot, QueueType::Tx, 6, None);
    std::mem::swap(&mut a.tx, &mut tx2);
    still_works(&s, &mut a, &mut b);
}

#[test]
fn outgoing_tail_beyond_the_ring_is_named() {
    let s = sim(2);
    let mut a = bring_up(s.vf_socket(0).unwrap(), "a");
    let mut b = bring_up(s.vf_socket(1).unwrap(), "b");
    // Write a tail 1000 slots ahead straight into the state block.
    a.f.mem.write(a.tx.state + 0x80, &1000u32.to_le_bytes());
    a.f.doorbells.ring(a.tx.slot, QueueType::Tx, a.tx.qindex, 1000);
    s.advance(10_000);
    let c = a.f.completion(&mut a.tx).unwrap();
    assert_eq!(c.status, CompStatus::BadOutgoingTail);
    let mut tx2 = a.f.create_queue::<TxDesc>(a.lif, a.tx.slot, QueueType::Tx, 6, None);
    std::mem::swap(&mut a.tx, &mut tx2);
    still_works(&s, &mut a, &mut b);
}

/// The admin queue's completion ring holds AdminComps: a broken ring
/// protocol there is said in the state block alone, never as a TX/RX
/// completion the driver would misread as an admin status.
#[test]
fn admin_outgoing_tail_beyond_the_ring_stops_the_admin_queue_without_a_completion() {
    let s = sim(2);
    let mut a = bring_up(s.vf_socket(0).unwrap(), "a");
    let mut b = bring_up(s.vf_socket(1).unwrap(), "b");
    let (state, base, order, head) = {
        let q = a.f.admin.as_ref().unwrap();
        (q.state, q.cq.base, q.cq.order, q.cq.head)
    };
    a.f.mem.write(state + 0x80, &5000u32.to_le_bytes());
    let v = Doorbell {
        qtype: QueueType::Admin,
        qindex: 0,
        outgoing_tail: 5000,
    }
    .encode();
    a.f.bar0_write(DEVCMD_OFFSET + devcmd::ADMIN_DOORBELL, &v.to_le_bytes());
    s.advance(10_000);
    let qstatus = u32::from_le_bytes(a.f.mem.read(state + 0x44, 4).try_into().unwrap());
    assert_eq!(qstatus, u32::from(CompStatus::BadOutgoingTail.raw()));
    assert_eq!(
        read_completion(&a.f.mem, base, order, head),
        None,
        "no completion written"
    );
    still_works(&s, &mut b, &mut a);
}

/// A VLAN tag inserted into the largest frame makes it 4 bytes longer
/// than any completion may say: delivered into a big enough buffer, it is
/// cut to the largest frame, flagged TRUNCATED and counted DropTooLong,
/// and the completion stays one the driver accepts.
#[test]
fn a_frame_grown_past_the_largest_is_truncated_and_counted() {
    let s = sim(2);
    let mut a = bring_up(s.vf_socket(0).unwrap(), "a");
    let mut f = RawFn::connect(s.vf_socket(1).unwrap());
    f.enable(2);
    f.init_admin();
    let (lif, slot) = f.create_lif("big");
    let mut rx = f.create_queue::<RxDesc>(lif, slot, QueueType::Rx, 4, Some(0));
    let buf = f.alloc(16384, 64);
    assert!(rx.ring.fill_bulk(&[RxDesc::new(buf, 16384)]));
    f.ring_doorbell(&mut rx);
    let max = usize::from(MAX_FRAME_LEN);
    let pkt = frame(lif_mac(lif), a.mac, 7, max);
    let tx_buf = a.f.alloc(max as u64, 64);
    a.f.mem.write(tx_buf, &pkt);
    let mut d = TxDesc::new(tx_buf, max as u16, tx_flags::VLAN_INSERT);
    d.vlan_tci = 5.into();
    assert!(a.tx.ring.fill_bulk(&[d]));
    a.f.ring_doorbell(&mut a.tx);
    s.advance(100_000);
    let c = f.completion(&mut rx).expect("delivered");
    assert_eq!((c.status, usize::from(c.len)), (CompStatus::Ok, max));
    assert!(c.truncated, "flagged TRUNCATED");
    let d = s.device();
    let l = d.lif(lif).unwrap();
    assert_eq!(l.counter(LifCounter::DropTooLong), 1);
    assert_eq!(l.counter(LifCounter::RxPackets), 0);
}

#[test]
fn rx_buffer_outside_dma_stops_the_rx_queue_and_counts_the_drop() {
    let s = sim(2);
    let mut a = bring_up(s.vf_socket(0).unwrap(), "a");
    let mut b = bring_up(s.vf_socket(1).unwrap(), "b");
    // A fresh RX queue on b whose only buffer is unmapped; b's old RX
    // queue is full of good buffers, so destroy it first.
    let q = QueueRef {
        qtype: QueueType::Rx.raw(),
        qindex: b.rx.qindex.into(),
        ..Default::default()
    };
    assert_eq!(b.f.admin(AdminCommand::QueueDestroy(q), b.lif).0, AdminStatus::Ok);
    let mut bad_rx = b.f.create_queue::<RxDesc>(b.lif, b.rx.slot, QueueType::Rx, 6, None);
    assert!(bad_rx.ring.fill_bulk(&[RxDesc::new(0x7000_0000, 2048)]));
    b.f.ring_doorbell(&mut bad_rx);
    let pkt = frame(b.mac, a.mac, 3, 64);
    let buf = a.f.alloc(2048, 64);
    a.f.mem.write(buf, &pkt);
    assert!(a.tx.ring.fill_bulk(&[TxDesc::new(buf, 64, 0)]));
    a.f.ring_doorbell(&mut a.tx);
    s.advance(10_000);
    let c = b.f.completion(&mut bad_rx).unwrap();
    assert_eq!(c.status, CompStatus::DmaFault);
    let d = s.device();
    let lb = d.lif(b.lif).unwrap();
    assert_eq!(
        lb.counter(LifCounter::DropQueueError),
        1,
        "the frame is counted, not lost"
    );
    assert_eq!(d.lif(a.lif).unwrap().counter(LifCounter::TxPackets), 1);
}

#[test]
fn no_rx_buffer_is_a_counted_drop() {
    let s = sim(2);
    let mut a = bring_up(s.vf_socket(0).unwrap(), "a");
    let b = bring_up(s.vf_socket(1).unwrap(), "b");
    let pkt = frame(b.mac, a.mac, 3, 64);
    let buf = a.f.alloc(2048, 64);
    a.f.mem.write(buf, &pkt);
    // b posted 32 buffers; send 40.
    let descs = vec![TxDesc::new(buf, 64, 0); 40];
    assert!(a.tx.ring.fill_bulk(&descs));
    a.f.ring_doorbell(&mut a.tx);
    s.advance(100_000);
    let d = s.device();
    let lb = d.lif(b.lif).unwrap();
    assert_eq!(lb.counter(LifCounter::RxPackets), 32);
    assert_eq!(lb.counter(LifCounter::DropNoRxBuffer), 8);
    assert_eq!(
        d.lif(a.lif).unwrap().counter(LifCounter::TxPackets),
        40,
        "sent = received + dropped"
    );
}

#[test]
fn queue_memory_outside_dma_is_refused() {
    let s = sim(1);
    let mut f = RawFn::ready(s.vf_socket(0).unwrap());
    let (lif, _) = f.create_lif("x");
    let mut body = f.queue_create_body(QueueType::Tx, 6, None);
    body.ring_base = 0x7000_0000.into();
    assert_eq!(f.admin(AdminCommand::QueueCreate(body), lif).0, AdminStatus::DmaFault);
    let mut body = f.queue_create_body(QueueType::Rx, 6, None);
    body.state_base = (IOVA + MEM - 128).into();
    assert_eq!(
        f.admin(AdminCommand::QueueCreate(body), lif).0,
        AdminStatus::DmaFault,
        "state block straddles the end"
    );
    let mut body = f.queue_create_body(QueueType::Rx, 6, None);
    body.ring_order = 14;
    assert_eq!(
        f.admin(AdminCommand::QueueCreate(body), lif).0,
        AdminStatus::Invalid,
        "above the function's limit"
    );
    assert_eq!(f.admin(AdminCommand::Nop, LIF_NONE).0, AdminStatus::Ok);
    // DMA results to unmapped memory.
    assert_eq!(
        f.admin(AdminCommand::StatsGet(DmaRef::new(0x6000_0000, 512)), lif).0,
        AdminStatus::DmaFault
    );
}

#[test]
fn bad_doorbells_are_ignored_and_counted() {
    let s = sim(2);
    let mut a = bring_up(s.vf_socket(0).unwrap(), "a");
    let mut b = bring_up(s.vf_socket(1).unwrap(), "b");
    // A value naming the wrong queue, and one with reserved bits.
    let off = doorbell_offset_in_page(QueueType::Tx, a.tx.qindex).unwrap() as usize;
    a.f.doorbells.write_raw(
        a.tx.slot,
        off,
        Doorbell {
            qtype: QueueType::Tx,
            qindex: 9,
            outgoing_tail: 1,
        }
        .encode(),
    );
    s.advance(1000);
    a.f.doorbells.write_raw(a.tx.slot, off, 1 << 60);
    s.advance(1000);
    assert_eq!(s.device().functions[1].counters.bad_doorbells, 2);
    // A bad admin doorbell.
    a.f.bar0_write(DEVCMD_OFFSET + devcmd::ADMIN_DOORBELL, &(7u64 << 48).to_le_bytes());
    assert_eq!(s.device().functions[1].counters.bad_doorbells, 3);
    still_works(&s, &mut a, &mut b);
}

#[test]
fn unmapping_memory_under_a_queue_stops_it_without_writing_there() {
    let s = sim(2);
    let mut a = bring_up(s.vf_socket(0).unwrap(), "a");
    let mut b = bring_up(s.vf_socket(1).unwrap(), "b");
    a.f.client.dma_unmap(IOVA, MEM).unwrap();
    {
        let d = s.device();
        let la = d.lif(a.lif).unwrap();
        assert!(la
            .txqs
            .iter()
            .flatten()
            .all(|q| q.core.error == Some((CompStatus::DmaFault, dataplane::ring::RingIndex(0)))));
        assert_eq!(d.functions[1].dma.len(), 0);
    }
    // Another function is untouched: b can still receive from the wire or
    // from another function; send b -> a is dropped (a's RX queue stopped).
    let pkt = frame(a.mac, b.mac, 1, 64);
    let buf = b.f.alloc(2048, 64);
    b.f.mem.write(buf, &pkt);
    assert!(b.tx.ring.fill_bulk(&[TxDesc::new(buf, 64, 0)]));
    b.f.ring_doorbell(&mut b.tx);
    s.advance(10_000);
    let d = s.device();
    assert_eq!(d.lif(b.lif).unwrap().counter(LifCounter::TxPackets), 1);
    assert_eq!(d.lif(a.lif).unwrap().counter(LifCounter::DropQueueError), 1);
}

#[test]
fn a_malformed_version_gets_an_error_reply_and_the_socket_serves_on() {
    let s = sim(1);
    // A VERSION message whose capability string is not NUL-terminated (nor
    // JSON): rust-vmm's server panics on it; nicsim refuses it.
    let mut raw = std::os::unix::net::UnixStream::connect(s.pf_socket()).unwrap();
    let payload = b"{not json";
    let size = (16 + 4 + payload.len()) as u32;
    let mut msg = Vec::new();
    msg.extend_from_slice(&0u16.to_le_bytes()); // message id
    msg.extend_from_slice(&1u16.to_le_bytes()); // VERSION
    msg.extend_from_slice(&size.to_le_bytes());
    msg.extend_from_slice(&0u32.to_le_bytes()); // flags: command
    msg.extend_from_slice(&0u32.to_le_bytes()); // error
    msg.extend_from_slice(&0u16.to_le_bytes());
    msg.extend_from_slice(&1u16.to_le_bytes());
    msg.extend_from_slice(payload);
    raw.write_all(&msg).unwrap();
    let mut buf = [0u8; 16];
    raw.read_exact(&mut buf).unwrap();
    let flags = u32::from_le_bytes(buf[8..12].try_into().unwrap());
    let errno = u32::from_le_bytes(buf[12..16].try_into().unwrap());
    assert_eq!(
        u32::from_le_bytes(buf[4..8].try_into().unwrap()),
        16,
        "a header-only error reply"
    );
    assert_eq!((flags, errno), (1 | 1 << 5, libc::EINVAL as u32));
    drop(raw);
    // The same socket serves a well-behaved client next.
    let mut f = RawFn::connect(s.pf_socket());
    assert_eq!(f.cfg_read16(0), PCI_VENDOR_ID);
    f.enable(1);
    f.init_admin();
    assert_eq!(f.admin(AdminCommand::Nop, LIF_NONE).0, AdminStatus::Ok);
}

#[test]
fn oversized_region_access_and_unknown_region_are_refused() {
    let s = sim(1);
    let mut d = s.device();
    let mut big = vec![0u8; sim::device::MAX_REGION_ACCESS + 1];
    assert!(d.region_read(1, 0, 0, &mut big).is_err());
    assert!(d.region_write(1, 0, 0, &big).is_err());
    assert!(d.region_read(1, 99, 0, &mut [0; 4]).is_err());
    let mut b = [0u8; 4];
    d.region_read(1, 3, 0, &mut b).unwrap();
    assert_eq!(b, [0xff; 4], "an absent BAR reads all ones");
    assert!(
        d.set_irqs(1, 0, 4 | 32, 0, 1, Vec::new()).is_err(),
        "INTx has no vectors"
    );
    assert!(
        d.set_irqs(1, 2, 4 | 32, 6, 4, Vec::new()).is_err(),
        "past the MSI-X table"
    );
}

/// Queue indices: a new queue takes the first free index, the limit (a
/// VF's 4 of each type) answers `NoSpace`, a destroyed queue's index is
/// taken again, and frames keep flowing on a queue past a gap.
#[test]
fn queue_indices_fill_gaps_and_stop_at_the_limit() {
    let s = sim(2);
    let mut a = bring_up(s.vf_socket(0).unwrap(), "a");
    let mut b = bring_up(s.vf_socket(1).unwrap(), "b");
    let slot = a.tx.slot;
    let destroy = |a: &mut Port1, qindex: u16| {
        let q = QueueRef {
            qtype: QueueType::Tx.raw(),
            qindex: qindex.into(),
            ..Default::default()
        };
        a.f.admin(AdminCommand::QueueDestroy(q), a.lif).0
    };
    let mut txqs: Vec<Queue<TxDesc>> = Vec::new();
    for want in 1..4u16 {
        let q = a.f.create_queue::<TxDesc>(a.lif, slot, QueueType::Tx, 6, None);
        assert_eq!(q.qindex, want, "the first free index");
        txqs.push(q);
    }
    let body = a.f.queue_create_body(QueueType::Tx, 6, None);
    assert_eq!(
        a.f.admin(AdminCommand::QueueCreate(body), a.lif).0,
        AdminStatus::NoSpace
    );
    // The last and a middle one go; they come back in index order.
    assert_eq!(destroy(&mut a, 3), AdminStatus::Ok);
    assert_eq!(destroy(&mut a, 2), AdminStatus::Ok);
    assert_eq!(destroy(&mut a, 3), AdminStatus::NoEntry, "already gone");
    txqs.truncate(1);
    for want in [2u16, 3] {
        let q = a.f.create_queue::<TxDesc>(a.lif, slot, QueueType::Tx, 6, None);
        assert_eq!(q.qindex, want, "a destroyed queue's index is taken again");
        txqs.push(q);
    }
    // Queue 2 goes again: queue 3, past the gap, still sends.
    assert_eq!(destroy(&mut a, 2), AdminStatus::Ok);
    let mut q3 = txqs.pop().expect("queue 3");
    let pkt = frame(b.mac, a.mac, 9, 80);
    let buf = a.f.alloc(2048, 64);
    a.f.mem.write(buf, &pkt);
    assert!(q3.ring.fill_bulk(&[TxDesc::new(buf, pkt.len() as u16, 0)]));
    a.f.ring_doorbell(&mut q3);
    s.advance(10_000);
    let c = b.f.completion(&mut b.rx).expect("the frame from queue 3 arrives");
    assert_eq!((c.status, usize::from(c.len)), (CompStatus::Ok, pkt.len()));
    still_works(&s, &mut a, &mut b);
}
