//! A buggy or hostile device: the simulator lies in admin completions
//! (`Fault::Lie`) and forges RX completions (`Fault::ForgeRxCompletion`),
//! and nicdrv must answer each lie with an error that names the value, the
//! allowed range and the function, never with a panic or an out-of-bounds
//! access. Each test brings a LIF and its queues up the way an application
//! does, so a driver that accepted the lie would go on to use it.

mod support;

use dataplane::abi::LIF_UPLINK;
use dataplane::packet::build_udp4;
use host_driver::mem::{DmaMemory, MemKind};
use host_driver::nic::{ErrorKind, Lif, Nic, NicConfig};
use host_driver::pool::{Mbuf, Pool};
use host_driver::queue::{QueueError, RxQueue, TxQueue};
use sim::device::faults::{Fault, Lie};
use sim::{ClockKind, PortSpec, Sim};
use std::sync::Arc;
use support::{open_nic, start_sim};

const POOL_IOVA: u64 = 0x50_0000_0000;
const US: u64 = 1_000;

/// A simulator with two VFs, VF0 open, and a pool both may use.
struct Rig {
    sim: Sim,
    nic: Nic,
    pool: Pool,
    mem: Arc<DmaMemory>,
    /// VF0's function number (1: VF `n` is function `n + 1`).
    function: u16,
}

impl Rig {
    fn new() -> Rig {
        let sim = start_sim(2, ClockKind::Virtual, PortSpec::Null);
        let mem = Arc::new(DmaMemory::new(16 << 20, POOL_IOVA, MemKind::Pages).unwrap());
        let pool = Pool::new(mem.clone(), 4096).unwrap();
        let nic = open_nic(sim.vf_socket(0).unwrap(), &NicConfig::default(), Some(&mem));
        let function = nic.identity.function_id;
        Rig {
            sim,
            nic,
            pool,
            mem,
            function,
        }
    }

    fn lie(&self, lie: Lie) {
        self.sim
            .device()
            .inject(Fault::Lie {
                function: self.function,
                lie,
            })
            .unwrap();
    }

    /// What an application does first: a LIF, a TX and an RX queue, the
    /// RX ring filled (its first doorbell), one frame sent (the TX
    /// doorbell).
    fn bring_up(&mut self) -> Result<(Lif, TxQueue, RxQueue), String> {
        let lif = self.nic.create_lif("hostile", None).map_err(|e| e.to_string())?;
        let mut tx = self.nic.create_txq(&lif, 6, None).map_err(|e| e.to_string())?;
        let mut rx = self.nic.create_rxq(&lif, 6, None).map_err(|e| e.to_string())?;
        rx.set_polling();
        rx.refill(&mut self.pool).map_err(|e| e.to_string())?;
        let mut burst = vec![self.frame(lif.mac, lif.mac, 0)];
        tx.tx_burst(&mut self.pool, &mut burst).map_err(|e| e.to_string())?;
        for m in burst {
            self.pool.free(m);
        }
        Ok((lif, tx, rx))
    }

    /// A 64-byte frame to `dst` carrying `seq`.
    fn frame(&mut self, dst: [u8; 6], src: [u8; 6], seq: u64) -> Mbuf {
        let mut m = self.pool.alloc().unwrap();
        let f = build_udp4(dst, src, [10, 0, 0, 1], [10, 0, 0, 2], (1, 2), &seq.to_le_bytes(), 64);
        self.pool.buffer_mut(&mut m)[..64].copy_from_slice(&f);
        m.set_len(64);
        m
    }
}

/// The PF (function 0) tells `lie` in its next answer to the command.
fn pf_lies(sim: &Sim, lie: Lie) {
    sim.device().inject(Fault::Lie { function: 0, lie }).unwrap();
}

/// `msg` names VF0 and every one of `words`.
fn names(msg: &str, words: &[&str]) {
    names_function(msg, "VF 0", words);
}

/// `msg` names `function` and every one of `words`.
fn names_function(msg: &str, function: &str, words: &[&str]) {
    eprintln!("refused: {msg}");
    assert!(msg.contains(function), "the function is named: {msg}");
    for w in words {
        assert!(msg.contains(w), "{w:?} is named: {msg}");
    }
}

#[test]
fn a_queue_index_past_the_doorbell_page_is_an_error() {
    // 300: no doorbell slot in a 4 KiB page (256 per type) has it.
    let mut r = Rig::new();
    r.lie(Lie::QueueIndex(300));
    let e = r.bring_up().unwrap_err();
    names(&e, &["QueueCreate", "queue index 300", "0..4"]);
}

#[test]
fn a_queue_index_past_the_functions_queues_is_an_error() {
    // 100 has a doorbell slot, but a VF has 4 queues per type.
    let mut r = Rig::new();
    r.lie(Lie::QueueIndex(100));
    let e = r.bring_up().unwrap_err();
    names(&e, &["QueueCreate", "queue index 100", "0..4"]);
    // 65537 would be queue 1 if cut to 16 bits.
    let mut r = Rig::new();
    r.lie(Lie::QueueIndex(65_537));
    let e = r.bring_up().unwrap_err();
    names(&e, &["QueueCreate", "queue index 65537"]);
}

#[test]
fn a_lif_slot_outside_the_doorbell_pages_is_an_error() {
    // A VF has 2 doorbell pages: slot 7 is past the mapping (the first
    // doorbell would write outside it).
    let mut r = Rig::new();
    r.lie(Lie::LifSlot(7));
    let e = r.bring_up().unwrap_err();
    names(&e, &["LifCreate", "doorbell slot 7", "0..2"]);
    // 65536 would be slot 0 if cut to 16 bits.
    let mut r = Rig::new();
    r.lie(Lie::LifSlot(1 << 16));
    let e = r.bring_up().unwrap_err();
    names(&e, &["LifCreate", "doorbell slot 65536"]);
}

#[test]
fn a_lif_number_the_device_does_not_have_is_an_error() {
    let mut r = Rig::new();
    let max = r.nic.info.max_lifs.get();
    // 65538 would be LIF 2 if cut to 16 bits: another function's.
    r.lie(Lie::LifNumber(65_538));
    let e = r.bring_up().unwrap_err();
    names(&e, &["LifCreate", "LIF number 65538", &format!("0..{max}")]);
    let mut r = Rig::new();
    r.lie(Lie::LifNumber(u32::from(LIF_UPLINK)));
    let e = r.bring_up().unwrap_err();
    names(&e, &["LifCreate", "LIF number 65535"]);
}

#[test]
fn a_lif_list_count_past_the_buffer_is_an_error() {
    for n in [2_000, 1 << 40, u64::MAX] {
        let mut r = Rig::new();
        let lif = r.nic.create_lif("listed", None).unwrap();
        r.lie(Lie::LifListCount(n));
        let e = r.nic.lif_list().unwrap_err().to_string();
        names(&e, &["LifList", &format!("entry count {n}"), "0..=1365"]);
        // The lie was told once: the next list is the truth.
        let l = r.nic.lif_list().unwrap();
        assert!(l.iter().any(|i| i.lif.get() == lif.id), "{l:?}");
    }
    // create_lif reads the list too (for the MAC).
    let mut r = Rig::new();
    r.lie(Lie::LifListCount(u64::MAX));
    let e = r.bring_up().unwrap_err();
    names(&e, &["LifList", "entry count 18446744073709551615"]);
}

#[test]
fn a_table_listing_past_the_buffer_or_the_table_is_an_error() {
    let sim = start_sim(1, ClockKind::Virtual, PortSpec::Null);
    let mut pf = open_nic(sim.pf_socket(), &NicConfig::default(), None);
    let mac = [2, 0, 0, 0, 0, 0x42];
    let drop = dataplane::abi::TableEntry::exact(1, &mac, 3, &[]);
    pf.table_add(&drop).unwrap();
    for (written, total, words) in [
        // More than the 64 KiB buffer holds (585 entries).
        (586, 586, vec!["TableEntryList", "entry count 586", "0..=585"]),
        // A table bigger than any program's.
        (1, 1 << 21, vec!["TableEntryList", "entries in the table 2097152"]),
        // More written than the table has.
        (2, 1, vec!["TableEntryList", "entries in the table 1"]),
    ] {
        pf_lies(&sim, Lie::TableListCount { written, total });
        names_function(&pf.table_entries(1).unwrap_err().to_string(), "(PF)", &words);
        // Told once: the next listing is the truth.
        assert_eq!(pf.table_entries(1).unwrap(), [drop]);
    }
}

#[test]
fn a_counter_read_past_the_buffer_or_the_array_is_an_error() {
    let sim = start_sim(1, ClockKind::Virtual, PortSpec::Null);
    let mut pf = open_nic(sim.pf_socket(), &NicConfig::default(), None);
    let prog = p4::fairnic();
    pf.load_pipeline(&prog.to_image()).unwrap();
    let cells = prog.counters[0].size;
    for (written, total, words) in [
        // More than the 64 KiB buffer holds (4096 cells).
        (4097, 4097, vec!["PipelineCounterGet", "cell count 4097", "0..=4096"]),
        // An array past the programs' limit.
        (1, 1 << 21, vec!["PipelineCounterGet", "cells in the array 2097152"]),
        // More written than the array has.
        (2, 1, vec!["PipelineCounterGet", "cells in the array 1"]),
    ] {
        pf_lies(&sim, Lie::CounterCellCount { written, total });
        names_function(&pf.pipeline_counters(0).unwrap_err().to_string(), "(PF)", &words);
        // Told once: the next read is the truth.
        assert_eq!(pf.pipeline_counters(0).unwrap(), vec![(0, 0); cells as usize]);
    }
}

#[test]
fn direct_cells_and_meter_cells_past_the_buffer_or_the_table_are_an_error() {
    let sim = start_sim(1, ClockKind::Virtual, PortSpec::Null);
    let mut pf = open_nic(sim.pf_socket(), &NicConfig::default(), None);
    let prog = p4::fairnic();
    pf.load_pipeline(&prog.to_image()).unwrap();
    let (acl, _) = prog.table("acl").unwrap();
    let acl = u32::from(acl);
    for (written, total, words) in [
        // More than the 64 KiB buffer holds (341 records of 192 bytes).
        (342, 342, vec!["TableDataList", "entry count 342", "0..=341"]),
        // A table bigger than any program's.
        (1, 1 << 21, vec!["TableDataList", "entries in the table 2097152"]),
        // More written than the table has.
        (1, 0, vec!["TableDataList", "entries in the table 0"]),
    ] {
        pf_lies(&sim, Lie::TableDataCount { written, total });
        names_function(&pf.table_data(acl).unwrap_err().to_string(), "(PF)", &words);
        // Told once: the next listing is the truth (the acl is empty).
        assert_eq!(pf.table_data(acl).unwrap(), []);
    }
    let lif_bytes = prog.meters.iter().position(|m| m.name == "lif_bytes").unwrap() as u32;
    for (written, total, words) in [
        // More than the 64 KiB buffer holds (1365 configs of 48 bytes).
        (1366, 4096, vec!["PipelineMeterGet", "cell count 1366", "0..=1365"]),
        (1, 1 << 21, vec!["PipelineMeterGet", "cells in the array 2097152"]),
    ] {
        pf_lies(&sim, Lie::MeterCellCount { written, total });
        names_function(&pf.pipeline_meters(lif_bytes).unwrap_err().to_string(), "(PF)", &words);
        assert_eq!(pf.pipeline_meters(lif_bytes).unwrap().len(), 4096);
    }
}

#[test]
fn a_packet_in_record_the_device_never_wrote_is_an_error() {
    let sim = start_sim(1, ClockKind::Virtual, PortSpec::Null);
    let mut pf = open_nic(sim.pf_socket(), &NicConfig::default(), None);
    pf.load_pipeline(&p4::fairnic().to_image()).unwrap();
    // Known bytes at the start of the scratch buffer: a broadcast frame
    // injected out of the uplink. Read as a record head its reserved bits
    // are 0xffff.
    let frame = build_udp4(
        [0xff; 6],
        [2, 0, 0, 0, 0, 1],
        [10, 0, 0, 1],
        [10, 0, 0, 2],
        (1, 2),
        b"x",
        64,
    );
    pf.packet_inject(None, &frame).unwrap();
    // Nothing queued, and the device says one record.
    pf_lies(&sim, Lie::PacketInCount(1));
    names_function(
        &pf.packet_in().unwrap_err().to_string(),
        "(PF)",
        &["PacketInRead", "record offset 0"],
    );
    // More records than the buffer holds.
    pf_lies(&sim, Lie::PacketInCount(100_000));
    names_function(
        &pf.packet_in().unwrap_err().to_string(),
        "(PF)",
        &["PacketInRead", "frame count 100000"],
    );
    // Told once: the next read is the truth.
    assert_eq!(pf.packet_in().unwrap(), (Vec::new(), 0));
}

#[test]
fn lies_are_driver_errors_that_say_what_they_are() {
    let mut r = Rig::new();
    r.lie(Lie::QueueIndex(1000));
    let lif = r.nic.create_lif("typed", None).unwrap();
    match r.nic.create_txq(&lif, 6, None).map_err(|e| e.into_kind()) {
        Err(ErrorKind::DeviceLied {
            command, what, value, ..
        }) => {
            assert_eq!((command, what, value), ("QueueCreate", "queue index", 1000));
        }
        other => panic!("expected DeviceLied, got {other:?}"),
    }
    // The function still works: the queue the device did create is
    // unknown to the driver, but new ones are fine.
    let mut tx = r.nic.create_txq(&lif, 6, None).unwrap();
    let mut burst = vec![r.frame(lif.mac, lif.mac, 1)];
    assert_eq!(tx.tx_burst(&mut r.pool, &mut burst).unwrap(), 1);
}

/// VF0 with a LIF and a polled RX queue of 64 buffers, nothing received.
fn rx_rig() -> (Rig, Lif, RxQueue) {
    let mut r = Rig::new();
    let lif = r.nic.create_lif("rx", None).unwrap();
    let mut rx = r.nic.create_rxq(&lif, 6, None).unwrap();
    rx.set_polling();
    assert_eq!(rx.refill(&mut r.pool).unwrap(), 64);
    (r, lif, rx)
}

fn forge(r: &Rig, lif: &Lif, index: u32, len: u16) {
    r.sim
        .device()
        .inject(Fault::ForgeRxCompletion {
            lif: lif.id,
            queue: 0,
            index,
            len,
        })
        .unwrap();
}

/// After a lie stopped the queue: the buffers come back, the queue is
/// reset, and a frame from VF1 arrives on it.
fn recovers(r: &mut Rig, lif: &Lif, rx: &mut RxQueue) {
    r.nic.reset_rxq(rx, &mut r.pool).unwrap();
    assert_eq!(rx.stats().recoveries, 1);
    assert_eq!(
        r.pool.available(),
        r.pool.capacity() as usize - 64,
        "every buffer is back in the pool or posted again"
    );
    let mut vf1 = open_nic(r.sim.vf_socket(1).unwrap(), &NicConfig::default(), Some(&r.mem));
    let l1 = vf1.create_lif("sender", None).unwrap();
    let mut tx = vf1.create_txq(&l1, 6, None).unwrap();
    let mut burst = vec![r.frame(lif.mac, l1.mac, 42)];
    assert_eq!(tx.tx_burst(&mut r.pool, &mut burst).unwrap(), 1);
    r.sim.advance(50 * US);
    let mut out = Vec::new();
    assert_eq!(rx.rx_burst(&mut r.pool, &mut out, 8).unwrap(), 1);
    assert_eq!(r.pool.data(&out[0])[42..50], 42u64.to_le_bytes());
    for m in out {
        r.pool.free(m);
    }
}

#[test]
fn an_rx_completion_for_a_descriptor_never_posted_stops_the_queue() {
    let (mut r, lif, mut rx) = rx_rig();
    let free = r.pool.available();
    // Descriptors 0..64 are posted; 0x8000_0000 is none of them (but
    // would name slot 0 if masked to the ring).
    forge(&r, &lif, 0x8000_0000, 64);
    let mut out = Vec::new();
    let e = rx.rx_burst(&mut r.pool, &mut out, 8).unwrap_err();
    assert!(out.is_empty(), "no frame handed up");
    let msg = e.to_string();
    assert!(
        matches!(
            e,
            QueueError::DeviceLied {
                what: "descriptor index",
                value: 0x8000_0000,
                ..
            }
        ),
        "{e:?}"
    );
    eprintln!("stopped: {msg}");
    assert!(
        msg.contains("descriptor index 2147483648") && msg.contains("0..64"),
        "{msg}"
    );
    assert_eq!(rx.error(), Some(&e), "the queue stays stopped");
    assert_eq!(r.pool.available(), free, "no buffer taken or lost");
    recovers(&mut r, &lif, &mut rx);
}

#[test]
fn an_rx_completion_longer_than_its_buffer_stops_the_queue() {
    let (mut r, lif, mut rx) = rx_rig();
    let free = r.pool.available();
    // Descriptor 0 is posted with a 2048-byte buffer; 4000 bytes cannot
    // be in it (9216 is a legal frame, so the ABI decoder lets it by).
    forge(&r, &lif, 0, 4000);
    let mut out = Vec::new();
    let e = rx.rx_burst(&mut r.pool, &mut out, 8).unwrap_err();
    assert!(out.is_empty(), "no frame handed up");
    let msg = e.to_string();
    assert!(
        matches!(
            e,
            QueueError::DeviceLied {
                what: "frame length",
                value: 4000,
                ..
            }
        ),
        "{e:?}"
    );
    eprintln!("stopped: {msg}");
    assert!(msg.contains("frame length 4000") && msg.contains("0..=2048"), "{msg}");
    assert_eq!(r.pool.available(), free + 1, "the buffer went back to the pool");
    recovers(&mut r, &lif, &mut rx);
}

#[test]
fn a_second_rx_completion_for_one_descriptor_stops_the_queue() {
    let (mut r, lif, mut rx) = rx_rig();
    forge(&r, &lif, 3, 64);
    forge(&r, &lif, 3, 64);
    let mut out = Vec::new();
    let e = rx.rx_take(&mut r.pool, &mut out, 8).unwrap_err();
    assert_eq!(out.len(), 1, "the first was a frame as far as the driver can tell");
    assert!(e.to_string().contains("descriptor index 3"), "{e}");
    for m in out {
        r.pool.free(m);
    }
    recovers(&mut r, &lif, &mut rx);
}
