//! The P4 pipeline end to end: the driver compiles `fairnic.p4`, loads it
//! into the simulated device through the PF's admin queue, and the device
//! runs it on frames between VFs; `nicctl table` programs its tables
//! through the control socket; a bad image is refused and changes nothing.

mod support;

use dataplane::abi::{AdminStatus, LifCounter, MeterConfig, MeterMode, MeterPolicy, MeterResource};
use dataplane::packet::build_udp4;
use host_driver::control::LoadedPipeline;
use host_driver::mem::{DmaMemory, MemKind};
use host_driver::nic::{Lif, Nic, NicConfig};
use host_driver::pool::{Mbuf, Pool};
use host_driver::queue::{RxQueue, TxQueue};
use sim::{ClockKind, PortSpec, Sim};
use std::sync::{Arc, Mutex};
use support::{nicctl, open_nic, socket_dir, start_control, start_sim};

const POOL_IOVA: u64 = 0x30_0000_0000;

struct Vf {
    nic: Nic,
    lif: Lif,
    tx: TxQueue,
    rx: RxQueue,
}

fn send(vf: &mut Vf, pool: &mut Pool, frame: &[u8]) {
    let mut m = pool.alloc().unwrap();
    pool.buffer_mut(&mut m)[..frame.len()].copy_from_slice(frame);
    m.set_len(frame.len());
    let mut burst = vec![m];
    assert_eq!(vf.tx.tx_burst(pool, &mut burst).unwrap(), 1);
}

fn recv(vf: &mut Vf, pool: &mut Pool) -> Vec<Vec<u8>> {
    let mut out: Vec<Mbuf> = Vec::new();
    vf.rx.rx_burst(pool, &mut out, 64).unwrap();
    out.into_iter()
        .map(|m| {
            let d = pool.data(&m).to_vec();
            pool.free(m);
            d
        })
        .collect()
}

/// A simulator (virtual time) with two VFs, each with a LIF, a TX queue
/// and a polled RX queue with buffers posted; the pool; the PF.
fn two_vfs() -> (Sim, Pool, Nic, Vec<Vf>) {
    let sim = start_sim(2, ClockKind::Virtual, PortSpec::Null);
    let mem = Arc::new(DmaMemory::new(8 << 20, POOL_IOVA, MemKind::Pages).unwrap());
    let mut pool = Pool::new(mem.clone(), 1024).unwrap();
    let pf = open_nic(sim.pf_socket(), &NicConfig::default(), Some(&mem));
    let vfs: Vec<Vf> = (0..2)
        .map(|i| {
            let mut nic = open_nic(sim.vf_socket(i).unwrap(), &NicConfig::default(), Some(&mem));
            let lif = nic.create_lif(&format!("vf{i}"), None).unwrap();
            let tx = nic.create_txq(&lif, 8, None).unwrap();
            let mut rx = nic.create_rxq(&lif, 8, None).unwrap();
            rx.set_polling();
            rx.refill(&mut pool).unwrap();
            Vf { nic, lif, tx, rx }
        })
        .collect();
    (sim, pool, pf, vfs)
}

#[test]
fn fairnic_p4_loads_forwards_and_its_tables_are_programmed_by_nicctl() {
    let (sim, mut pool, mut pf, mut vfs) = two_vfs();

    // Before: the built-in switch. Load the program through the PF.
    assert!(!pf.pipeline_active().unwrap());
    let prog = p4::fairnic();
    assert_eq!(pf.pipeline_executor().unwrap(), None, "no program, no executor");
    pf.load_pipeline(&prog.to_image()).unwrap();
    assert!(pf.pipeline_active().unwrap());
    // The device says which executor runs it (DeviceInfo, ABI 1.2): the
    // compiler takes fairnic.p4.
    let exec = pf.pipeline_executor().unwrap().expect("a program is loaded");
    assert!(exec.starts_with("compiled to machine code ("), "{exec}");
    assert!(
        vfs[0].nic.load_pipeline(&prog.to_image()).map_err(|e| e.admin_status()) == Err(Some(AdminStatus::Permission)),
        "a VF may not load the pipeline"
    );

    // VF0 -> VF1 through the program (LIF MACs installed by the device).
    let (a, b) = (vfs[0].lif.mac, vfs[1].lif.mac);
    let f = build_udp4(b, a, [10, 0, 0, 1], [10, 0, 0, 2], (1, 2), b"through p4", 64);
    send(&mut vfs[0], &mut pool, &f);
    sim.advance(100_000);
    assert_eq!(recv(&mut vfs[1], &mut pool), vec![f.clone()]);
    // The program's cost: base 1 + three headers + the l2_fwd lookup.
    let id0 = vfs[0].lif.id;
    let st = vfs[0].nic.stats(id0).unwrap();
    assert_eq!(st.get(LifCounter::CostUnits), 5);
    // The program's counters, read back through the PF (PipelineCounterGet,
    // ABI 1.4): the frame came in from VF0's LIF and went out to VF1's.
    let counter = |name: &str| prog.counters.iter().position(|c| c.name == name).unwrap();
    let lif_in = pf.pipeline_counters(counter("lif_in") as u32).unwrap();
    assert_eq!(lif_in.len() as u32, prog.counters[counter("lif_in")].size);
    assert_eq!(lif_in[usize::from(id0)], (1, f.len() as u64));
    let id1 = vfs[1].lif.id;
    let lif_out = pf.pipeline_counters(counter("lif_out") as u32).unwrap();
    assert_eq!(lif_out[usize::from(id1)], (1, f.len() as u64));
    assert_eq!(lif_in.iter().map(|c| c.0).sum::<u64>(), 1, "{lif_in:?}");
    // Set (and reset) through the PF (PipelineCounterSet, ABI 1.5): one
    // cell, then every cell.
    let c_in = counter("lif_in") as u32;
    assert_eq!(pf.set_pipeline_counter(c_in, Some(u32::from(id0)), 7, 700).unwrap(), 1);
    assert_eq!(pf.pipeline_counters(c_in).unwrap()[usize::from(id0)], (7, 700));
    let size = prog.counters[counter("lif_in")].size;
    assert_eq!(pf.set_pipeline_counter(c_in, None, 0, 0).unwrap(), size);
    assert!(pf.pipeline_counters(c_in).unwrap().iter().all(|&c| c == (0, 0)));
    assert!(
        pf.set_pipeline_counter(c_in, Some(size), 0, 0)
            .map_err(|e| e.admin_status())
            == Err(Some(AdminStatus::NoEntry)),
        "no such cell"
    );
    assert!(
        vfs[0]
            .nic
            .set_pipeline_counter(c_in, None, 0, 0)
            .map_err(|e| e.admin_status())
            == Err(Some(AdminStatus::Permission)),
        "a VF may not reset them"
    );
    assert!(
        vfs[0].nic.pipeline_counters(0).map_err(|e| e.admin_status()) == Err(Some(AdminStatus::Permission)),
        "a VF may not read them"
    );

    // A truncated IPv4 header is a counted parse error at the sender.
    let mut short = f[..30].to_vec();
    short[12..14].copy_from_slice(&[0x08, 0x00]);
    send(&mut vfs[0], &mut pool, &short);
    sim.advance(100_000);
    let id0 = vfs[0].lif.id;
    let st = vfs[0].nic.stats(id0).unwrap();
    assert_eq!(st.get(LifCounter::DropParseError), 1);

    // The control plane: a drop entry through nicctl.
    let dir = socket_dir("pipeline-test");
    let pf = Arc::new(Mutex::new(pf));
    let server = start_control(
        &dir.join("p4.sock"),
        "test",
        vec![pf.clone()],
        Some(LoadedPipeline::new(prog)),
    );
    let s = server.path().to_path_buf();
    let mac_b = b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":");
    let (code, out, err) = nicctl(&s, "table show");
    assert!(
        out.contains("fairnic: executor: compiled to machine code ("),
        "nicctl table show names the executor: {out}"
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("fairnic.l2_fwd (table 1): key hdr.ethernet.dst_addr:exact:48"),
        "{out}"
    );
    assert!(
        out.contains("fairnic.route (table 2): key hdr.ipv4.dst_addr:lpm:32"),
        "{out}"
    );
    // Overriding a LIF MAC: the device's entry exists, so this is refused.
    let (code, _, err) = nicctl(&s, &format!("table add l2_fwd --key {mac_b} --action drop"));
    assert_eq!(code, 1);
    assert!(err.contains("already has an entry"), "{err}");
    let (code, out, err) = nicctl(&s, "table add l2_fwd --key 02:00:00:00:00:66 --action drop");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("02:00:00:00:00:66 -> drop()"), "{out}");
    let (code, out, err) = nicctl(&s, "table add route --key 10.9.0.0/16 --action to_lif --arg 1");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("10.9.0.0/16 -> to_lif(1)"), "{out}");
    // Bad input is explained and changes nothing.
    for (args, why) in [
        (
            "table add l2_fwd --key 02:00:00:00:00:67 --action nope",
            "has no action 'nope'",
        ),
        (
            "table add l2_fwd --key 10.0.0.0/8 --action drop",
            "exact key takes a plain value",
        ),
        ("table add nope --key 1 --action drop", "no table 'nope'"),
        (
            "table add l2_fwd --key 02:00:00:00:00:67 --action to_lif",
            "takes 1 argument",
        ),
        (
            "table add l2_fwd --key 02:00:00:00:00:67 --action to_lif --arg 70000",
            "does not fit in 16 bits",
        ),
        ("table add acl --key 1 --action drop", "3 key field(s)"),
    ] {
        let (code, _, err) = nicctl(&s, args);
        assert_eq!(code, 1, "{args}");
        assert!(err.contains(why), "{args}: {err}");
    }
    let drop_to = build_udp4([2, 0, 0, 0, 0, 0x66], a, [10, 0, 0, 1], [10, 0, 0, 2], (1, 2), b"x", 64);
    send(&mut vfs[0], &mut pool, &drop_to);
    sim.advance(100_000);
    let id0 = vfs[0].lif.id;
    let st = vfs[0].nic.stats(id0).unwrap();
    assert_eq!(st.get(LifCounter::DropPipeline), 1, "dropped by the program's entry");
    let (code, out, _) = nicctl(&s, "table del l2_fwd --key 02:00:00:00:00:66");
    assert_eq!(code, 0);
    // Left: the device's own entries, gen's two LIFs' MACs.
    assert!(out.contains("; 2 entries\n"), "{out}");
    assert!(!out.contains("02:00:00:00:00:66"), "{out}");
    // Now unknown unicast from a LIF: the uplink.
    let before = sim.device().port.stats().tx_frames;
    send(&mut vfs[0], &mut pool, &drop_to);
    sim.advance(100_000);
    assert_eq!(sim.device().port.stats().tx_frames, before + 1);

    // The PF's meter settings reach the program's per-LIF meters: a
    // 128-byte committed and 64-byte excess burst on VF0's bytes meter
    // colors four 64-byte frames green, green, yellow, red in the program.
    let cfg = MeterConfig {
        resource: MeterResource::Bytes.raw(),
        mode: MeterMode::SrTcm.raw(),
        policy: MeterPolicy::Deprioritize.raw(),
        cir: 1.into(),
        cburst: 128.into(),
        eburst: 64.into(),
        ..Default::default()
    };
    lock(&pf).set_meter(id0, cfg).unwrap();
    let colors = |sim: &Sim| {
        let d = sim.device();
        let p = d.switch.program().unwrap();
        let c = p
            .program()
            .counters
            .iter()
            .position(|c| c.name == "byte_colors")
            .unwrap() as u16;
        [0, 1, 2].map(|i| p.counter(c, i).unwrap().0)
    };
    let before = colors(&sim);
    for _ in 0..4 {
        send(&mut vfs[0], &mut pool, &f);
    }
    sim.advance(100_000);
    assert_eq!(recv(&mut vfs[1], &mut pool).len(), 4, "deprioritized, not dropped");
    let after = colors(&sim);
    assert_eq!(
        [after[0] - before[0], after[1] - before[1], after[2] - before[2]],
        [2, 1, 1]
    );

    // A corrupt image is refused whole; the program keeps running.
    let mut bad = p4::fairnic().to_image();
    let n = bad.len();
    bad.truncate(n - 10);
    assert_eq!(
        lock(&pf).load_pipeline(&bad).map_err(|e| e.admin_status()),
        Err(Some(AdminStatus::Invalid))
    );
    assert!(lock(&pf).pipeline_active().unwrap());
    send(&mut vfs[0], &mut pool, &f);
    sim.advance(100_000);
    assert_eq!(recv(&mut vfs[1], &mut pool), vec![f]);

    // A big table (2,000 entries, as a controller may write): nicctl shows
    // the count and the first rows, inside the control line's 64 KiB.
    let l2 = prog_l2_and_drop();
    for i in 0..2000u32 {
        let [_, x, y, z] = i.to_be_bytes();
        let e = dataplane::abi::TableEntry::exact(l2.0, &[2, 0x99, 0, x, y, z], l2.1, &[]);
        lock(&pf).table_add(&e).unwrap();
    }
    let (code, out, err) = nicctl(&s, "table show l2_fwd");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("; 2002 entries (the first 128 shown)\n"),
        "{}",
        &out[..300.min(out.len())]
    );
    assert_eq!(out.lines().filter(|l| l.contains(" -> ")).count(), 128);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The CPU port (ABI 1.5): a frame fairnic.p4 sends to `to_cpu` is queued
/// for the PF with its sender's LIF, a full queue drops at the sender, and
/// the PF injects frames to a LIF or the uplink past the pipeline; the
/// device's books balance throughout.
#[test]
fn the_cpu_port_queues_what_the_program_sends_it_and_injects_the_pfs_frames() {
    use dataplane::abi::{TableEntry, CPU_QUEUE_FRAMES};
    let (sim, mut pool, mut pf, mut vfs) = two_vfs();
    let prog = p4::fairnic();
    pf.load_pipeline(&prog.to_image()).unwrap();
    let (l2, _) = prog_l2_and_drop();
    let (to_cpu, _) = prog.action("to_cpu").unwrap();
    let punt = [2, 0, 0, 0, 0, 0x99];
    pf.table_add(&TableEntry::exact(l2, &punt, u32::from(to_cpu), &[]))
        .unwrap();

    // VF0's frame to the punted MAC reaches the PF, with VF0's LIF.
    let (id0, id1) = (vfs[0].lif.id, vfs[1].lif.id);
    let f = build_udp4(
        punt,
        vfs[0].lif.mac,
        [10, 0, 0, 1],
        [10, 0, 0, 9],
        (1, 2),
        b"to the cpu",
        64,
    );
    send(&mut vfs[0], &mut pool, &f);
    sim.advance(100_000);
    assert!(recv(&mut vfs[1], &mut pool).is_empty());
    let (got, left) = pf.packet_in().unwrap();
    assert_eq!(left, 0);
    assert_eq!(
        got,
        vec![host_driver::nic::PacketIn {
            ingress_lif: id0,
            frame: f.clone()
        }]
    );
    assert_eq!(pf.packet_in().unwrap(), (Vec::new(), 0), "read once");
    assert_eq!(vfs[0].nic.stats(id0).unwrap().get(LifCounter::ToCpu), 1);
    assert!(
        vfs[0].nic.packet_in().map_err(|e| e.admin_status()) == Err(Some(AdminStatus::Permission)),
        "a VF may not read the CPU port"
    );

    // Past the queue's depth, the rest drop at the sender, counted.
    let over = 8;
    for _ in 0..(CPU_QUEUE_FRAMES + over) / 8 {
        for _ in 0..8 {
            send(&mut vfs[0], &mut pool, &f);
        }
        sim.advance(100_000);
    }
    let st = vfs[0].nic.stats(id0).unwrap();
    assert_eq!(st.get(LifCounter::ToCpu), 1 + CPU_QUEUE_FRAMES as u64);
    assert_eq!(st.get(LifCounter::DropCpuQueueFull), over as u64);
    let (got, left) = pf.packet_in().unwrap();
    assert_eq!((got.len(), left), (CPU_QUEUE_FRAMES, 0));
    assert!(got.iter().all(|p| p.ingress_lif == id0 && p.frame == f));

    // The PF injects: to VF1's LIF (no pipeline: VF1's MAC is not the
    // destination), out of the uplink, to no LIF, a runt.
    let g = build_udp4(
        [2, 0, 0, 0, 0, 0x42],
        [2, 0, 0, 0, 0, 0x43],
        [10, 0, 0, 3],
        [10, 0, 0, 4],
        (5, 6),
        b"from the controller",
        80,
    );
    pf.packet_inject(Some(id1), &g).unwrap();
    sim.advance(100_000);
    assert_eq!(recv(&mut vfs[1], &mut pool), vec![g.clone()]);
    let before = pf.port_stats().unwrap();
    pf.packet_inject(None, &g).unwrap();
    let after = pf.port_stats().unwrap();
    assert_eq!(
        after.get(LifCounter::WireTxPackets),
        before.get(LifCounter::WireTxPackets) + 1
    );
    assert_eq!(after.get(LifCounter::CpuInjected), 2);
    assert!(
        pf.packet_inject(Some(4000), &g).map_err(|e| e.admin_status()) == Err(Some(AdminStatus::NoEntry)),
        "no such LIF"
    );
    assert!(pf.packet_inject(Some(id1), &g[..10]).is_err(), "a runt is refused");
    assert!(
        vfs[1].nic.packet_inject(Some(id0), &g).map_err(|e| e.admin_status()) == Err(Some(AdminStatus::Permission)),
        "a VF may not inject"
    );
    assert_eq!(vfs[1].nic.stats(id1).unwrap().get(LifCounter::RxPackets), 1);
    sim.device().check_books().unwrap();
}

/// fairnic.p4's l2_fwd table and drop action numbers.
fn prog_l2_and_drop() -> (u32, u32) {
    let p = p4::fairnic();
    let (t, _) = p.table("l2_fwd").unwrap();
    let (a, _) = p.action("drop").unwrap();
    (u32::from(t), u32::from(a))
}

fn lock(n: &Arc<Mutex<Nic>>) -> std::sync::MutexGuard<'_, Nic> {
    n.lock().unwrap()
}

/// Direct counters and meters (ABI 1.6) through the PF: `TableDataList`
/// reads each entry's cells, `TableDataSet` sets them; every hit counts in
/// its own entry's cell, the entry's meter polices only its own flow, and
/// an entry added again starts at zero with its meter off.
#[test]
fn direct_counters_and_meters_belong_to_their_entries() {
    use dataplane::abi::{table_data_flags, TableEntry, TableEntryData};
    let (sim, mut pool, mut pf, mut vfs) = two_vfs();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../p4/tests/programs/direct.p4");
    let prog = p4::compile_file(std::path::Path::new(path)).expect("direct.p4 compiles");
    pf.load_pipeline(&prog.to_image()).unwrap();
    let (acl, _) = prog.table("acl").unwrap();
    let (flows, _) = prog.table("flows").unwrap();
    let (police, _) = prog.action("police").unwrap();
    let (deny, _) = prog.action("deny").unwrap();
    let (a, b) = (vfs[0].lif.mac, vfs[1].lif.mac);
    let id1 = vfs[1].lif.id;
    let flow = |dst: u32| {
        TableEntry::builder(u32::from(flows), 0)
            .key(32, u128::from(dst), u128::from(u32::MAX))
            .unwrap()
            .action(u32::from(police))
            .param(16, u128::from(id1))
            .unwrap()
            .build()
    };
    let (to2, to3) = (flow(0x0a00_0002), flow(0x0a00_0003));
    pf.table_add(&to2).unwrap();
    pf.table_add(&to3).unwrap();
    let rule = TableEntry::builder(u32::from(acl), 1)
        .key(32, 0x0a00_0009, u128::from(u32::MAX))
        .unwrap()
        .action(u32::from(deny))
        .build();
    pf.table_add(&rule).unwrap();

    let frame = |dst: [u8; 4]| build_udp4(b, a, [10, 0, 0, 1], dst, (1, 2), b"direct", 64);
    let (f2, f3) = (frame([10, 0, 0, 2]), frame([10, 0, 0, 3]));
    let len = f2.len() as u64;
    for f in [&f2, &f2, &f3] {
        send(&mut vfs[0], &mut pool, f);
    }
    sim.advance(100_000);
    assert_eq!(recv(&mut vfs[1], &mut pool).len(), 3);

    let data = |pf: &mut Nic, t: u16| pf.table_data(u32::from(t)).unwrap();
    let cells = data(&mut pf, flows);
    assert_eq!(cells.len(), 2);
    let by_key = |cells: &[TableEntryData], e: &TableEntry| *cells.iter().find(|d| d.entry.key == e.key).unwrap();
    let d2 = by_key(&cells, &to2);
    assert_eq!(d2.flags.get(), table_data_flags::COUNTER | table_data_flags::METER);
    assert_eq!((d2.packets.get(), d2.bytes.get()), (2, 2 * len), "two hits on 10.0.0.2");
    assert_eq!(d2.meter.mode, MeterMode::Off.raw(), "a new entry's meter is off");
    let d3 = by_key(&cells, &to3);
    assert_eq!((d3.packets.get(), d3.bytes.get()), (1, len));
    assert_ne!(d2.slot, d3.slot);
    // The acl has a counter only; its rule matched nothing.
    let r = data(&mut pf, acl);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].flags.get(), table_data_flags::COUNTER);
    assert_eq!((r[0].packets.get(), r[0].bytes.get()), (0, 0));
    // The same cells through PipelineCounterGet, by slot.
    let c = prog.counters.iter().position(|c| c.name == "flow_hits").unwrap() as u32;
    assert_eq!(pf.pipeline_counters(c).unwrap()[d2.slot.get() as usize], (2, 2 * len));

    // A byte meter on 10.0.0.2's entry: one frame's worth of committed
    // burst at 1 byte/s, so the next frame is red (direct.p4 drops red).
    let meter = MeterConfig {
        resource: MeterResource::Bytes.raw(),
        mode: MeterMode::SrTcm.raw(),
        cir: 1.into(),
        cburst: len.into(),
        eburst: 1.into(),
        ..Default::default()
    };
    let set = |entry: TableEntry, flags: u32, packets: u64, meter: MeterConfig| TableEntryData {
        entry,
        flags: flags.into(),
        slot: 0.into(),
        packets: packets.into(),
        bytes: 0.into(),
        meter,
        rsvd: [0; 8],
    };
    pf.set_table_data(&set(to2, table_data_flags::METER | table_data_flags::COUNTER, 0, meter))
        .unwrap();
    for f in [&f2, &f2, &f3, &f3] {
        send(&mut vfs[0], &mut pool, f);
    }
    sim.advance(100_000);
    assert_eq!(
        recv(&mut vfs[1], &mut pool).len(),
        3,
        "one red frame dropped, 10.0.0.3 unpoliced"
    );
    let cells = data(&mut pf, flows);
    let d2 = by_key(&cells, &to2);
    assert_eq!(
        (d2.packets.get(), d2.bytes.get()),
        (2, 2 * len),
        "counted from the reset"
    );
    assert_eq!(d2.meter.mode, MeterMode::SrTcm.raw());
    assert_eq!(
        (d2.meter.cir.get(), d2.meter.cburst.get()),
        (1, len),
        "the meter as applied"
    );
    assert_eq!(by_key(&cells, &to3).packets.get(), 3);

    // Refused, nothing changed: a meter on a table without one, an entry
    // that is not there, unknown flags, a VF.
    let status = |r: Result<(), host_driver::nic::DriverError>| r.map_err(|e| e.admin_status());
    assert_eq!(
        status(pf.set_table_data(&set(rule, table_data_flags::METER, 0, meter))),
        Err(Some(AdminStatus::NoEntry))
    );
    assert_eq!(
        status(pf.set_table_data(&set(
            flow(0x0a00_0004),
            table_data_flags::COUNTER,
            5,
            Default::default()
        ))),
        Err(Some(AdminStatus::NoEntry))
    );
    assert_eq!(
        status(pf.set_table_data(&set(to2, 4, 0, Default::default()))),
        Err(Some(AdminStatus::Invalid))
    );
    let mut red = meter;
    red.resource = MeterResource::Packets.raw();
    assert_eq!(
        status(pf.set_table_data(&set(to2, table_data_flags::METER, 0, red))),
        Err(Some(AdminStatus::Invalid)),
        "flow_rate meters bytes"
    );
    assert_eq!(
        status(
            vfs[0]
                .nic
                .set_table_data(&set(to2, table_data_flags::COUNTER, 0, Default::default()))
        ),
        Err(Some(AdminStatus::Permission))
    );
    assert!(matches!(
        vfs[0].nic.table_data(u32::from(flows)).map_err(|e| e.admin_status()),
        Err(Some(AdminStatus::Permission))
    ));
    let d2 = by_key(&data(&mut pf, flows), &to2);
    assert_eq!((d2.packets.get(), d2.meter.mode), (2, MeterMode::SrTcm.raw()));

    // The program's indexed meter (PipelineMeterSet/Get, ABI 1.6): one
    // cell set, read back as applied; a direct meter or a per-LIF one is
    // not set this way.
    let rate = prog.meters.iter().position(|m| m.name == "lif_rate").unwrap() as u32;
    let flow_rate = prog.meters.iter().position(|m| m.name == "flow_rate").unwrap() as u32;
    let one = MeterConfig {
        resource: MeterResource::Packets.raw(),
        mode: MeterMode::SrTcm.raw(),
        cir: 10.into(),
        cburst: 2.into(),
        eburst: 1.into(),
        ..Default::default()
    };
    pf.set_pipeline_meter(rate, 1, &one).unwrap();
    let cells = pf.pipeline_meters(rate).unwrap();
    assert_eq!(cells.len(), 4);
    assert_eq!(
        (cells[1].mode, cells[1].cir.get(), cells[1].cburst.get()),
        (MeterMode::SrTcm.raw(), 10, 2)
    );
    assert!(cells
        .iter()
        .enumerate()
        .all(|(i, c)| i == 1 || c.mode == MeterMode::Off.raw()));
    let pstatus = |r: Result<(), host_driver::nic::DriverError>| r.map_err(|e| e.admin_status());
    assert_eq!(
        pstatus(pf.set_pipeline_meter(rate, 4, &one)),
        Err(Some(AdminStatus::NoEntry))
    );
    assert_eq!(
        pstatus(pf.set_pipeline_meter(flow_rate, 0, &meter)),
        Err(Some(AdminStatus::Invalid)),
        "a direct meter is set with its entry"
    );
    let mut bytes = one;
    bytes.resource = MeterResource::Bytes.raw();
    assert_eq!(
        pstatus(pf.set_pipeline_meter(rate, 1, &bytes)),
        Err(Some(AdminStatus::Invalid)),
        "lif_rate meters packets"
    );
    assert_eq!(
        pstatus(vfs[0].nic.set_pipeline_meter(rate, 1, &one)),
        Err(Some(AdminStatus::Permission))
    );
    // The direct meter's array reads by slot as any array.
    let by_slot = pf.pipeline_meters(flow_rate).unwrap();
    assert_eq!(by_slot[d2.slot.get() as usize].mode, MeterMode::SrTcm.raw());

    // Deleted and added again: counter zero, meter off.
    pf.table_del(&to2).unwrap();
    pf.table_add(&to2).unwrap();
    let d2 = by_key(&data(&mut pf, flows), &to2);
    assert_eq!(
        (d2.packets.get(), d2.bytes.get(), d2.meter.mode),
        (0, 0, MeterMode::Off.raw())
    );

    // nicctl shows each entry's cells beside it.
    send(&mut vfs[0], &mut pool, &f2);
    sim.advance(100_000);
    assert_eq!(recv(&mut vfs[1], &mut pool).len(), 1);
    let dir = socket_dir("direct-test");
    let pf = Arc::new(Mutex::new(pf));
    let server = start_control(
        &dir.join("p4.sock"),
        "test",
        vec![pf.clone()],
        Some(LoadedPipeline::new(prog)),
    );
    let s = server.path().to_path_buf();
    let (code, out, err) = nicctl(&s, "table show flows");
    assert_eq!(code, 0, "{err}");
    let row = |ip: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(ip))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        row("10.0.0.2").ends_with(&format!("; hits 1 packets {len} bytes; meter off")),
        "{out}"
    );
    assert!(row("10.0.0.3").contains("; hits 3 packets"), "{out}");
    let (_, out, _) = nicctl(&s, "table show acl");
    assert!(
        out.contains("; hits 0 packets 0 bytes") && !out.contains("meter"),
        "{out}"
    );
}
