//! nicsim's device against two hostile tenants at once: random admin
//! commands (raw and well formed), register writes, DMA map/unmap, ring
//! contents, frames, resets and disconnects from VF 0 and VF 1 (and now
//! and then the PF), interleaved with engine passes in virtual time.
//! After every step:
//! - nothing panicked, not even a panic the device would contain;
//! - what one VF did changed nothing of any other function's: its LIFs
//!   (number, slot, MAC, spoof check, queues, applied meters), its DMA
//!   mappings, its interrupt settings, the PF's settings for its slots;
//! - the books balance: every frame ended in exactly one outcome, every
//!   copy that arrived at a LIF in exactly one counter
//!   (`Device::check_books`).
#![no_main]

use dataplane::abi::*;
use dataplane::ring::Producer;
use libfuzzer_sys::fuzz_target;
use sim::clock::SimClock;
use sim::device::{Device, DeviceConfig};
use sim::port::NullPort;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::ptr::NonNull;

const IOVA: u64 = 0x1000_0000;
const MEM: u64 = 1 << 20;
const NF: usize = 3;

/// A function's DMA memory: a sealed memfd the device maps, and the
/// harness's own mapping of it.
struct Mem {
    file: File,
    ptr: NonNull<u8>,
}

impl Mem {
    fn new(len: u64) -> Mem {
        // SAFETY: plain syscalls with checked results; the mapping lives
        // until the process ends (a fuzz input's harness is small).
        unsafe {
            let fd = libc::memfd_create(c"fuzz".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING);
            assert!(fd >= 0);
            assert_eq!(libc::ftruncate(fd, len as libc::off_t), 0);
            assert_eq!(libc::fcntl(fd, libc::F_ADD_SEALS, libc::F_SEAL_SHRINK), 0);
            let p = libc::mmap(
                std::ptr::null_mut(),
                len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            Mem {
                file: File::from_raw_fd(fd),
                ptr: NonNull::new(p.cast()).unwrap(),
            }
        }
    }

    fn write(&self, off: u64, data: &[u8]) {
        if off.checked_add(data.len() as u64).is_some_and(|e| e <= MEM) {
            // SAFETY: in bounds of the mapping (checked); the device may
            // read it concurrently only under the harness's own calls.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(off as usize), data.len()) };
        }
    }

    fn at(&self, off: u64) -> NonNull<u8> {
        // SAFETY: callers pass offsets inside the mapping.
        unsafe { NonNull::new_unchecked(self.ptr.as_ptr().add(off as usize)) }
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        // SAFETY: mapped in `new` with this length; producers pointing
        // into it are dropped first (field order of `Harness`).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), MEM as usize) };
    }
}

/// A TX or RX queue the harness created, with its producer.
enum Q {
    /// The producer, the LIF's doorbell slot and the queue index.
    Tx(Producer<'static, TxDesc>, u16, u16),
    Rx(Producer<'static, RxDesc>),
}

struct Harness {
    queues: Vec<Vec<Q>>,
    dev: Device,
    clock: SimClock,
    mem: Vec<Mem>,
}

/// What the isolation invariant compares of a function.
fn snapshot(d: &Device, f: usize) -> String {
    let mut s = String::new();
    for l in d.lifs.iter().flatten().filter(|l| usize::from(l.function) == f) {
        let tx: Vec<bool> = l.txqs.iter().map(Option::is_some).collect();
        let rx: Vec<bool> = l.rxqs.iter().map(Option::is_some).collect();
        let meters: Vec<MeterConfig> = MeterResource::ALL.iter().map(|&r| l.meters.applied(r)).collect();
        s += &format!(
            "lif {} slot {} mac {:?} spoof {} tx {tx:?} rx {rx:?} meters {meters:?}\n",
            l.id, l.slot, l.mac, l.spoof_check
        );
    }
    let func = &d.functions[f];
    s += &format!(
        "dma {:?}\nslots {:?}\nregulation {:?}\nvectors {:?}\nfailed {:?}\n",
        func.dma.ranges(),
        func.slot_config,
        func.regulation,
        func.vectors
            .iter()
            .map(|v| (v.eventfd.is_some(), v.moderation))
            .collect::<Vec<_>>(),
        func.failed
    );
    s
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
    fn u32(&mut self) -> u32 {
        u32::from(self.u16()) | u32::from(self.u16()) << 16
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a.to_vec()
    }
}

impl Harness {
    fn new() -> Harness {
        let cfg = DeviceConfig {
            vfs: 2,
            pipeline_units_per_sec: Some(100_000_000),
            ..DeviceConfig::default()
        };
        let clock = SimClock::virtual_at_zero();
        let mut dev = Device::new(cfg, clock.clone(), Box::new(NullPort::default())).unwrap();
        let mem: Vec<Mem> = (0..NF).map(|_| Mem::new(MEM)).collect();
        for (f, m) in mem.iter().enumerate() {
            let fd = m.file.try_clone().unwrap();
            dev.dma_map(f as u16, IOVA, MEM, Some(fd), 0, true).unwrap();
            // Memory space, bus master; MSI-X enabled.
            dev.region_write(f as u16, 7, 4, &6u16.to_le_bytes()).unwrap();
            dev.region_write(f as u16, 7, 0x82, &(1u16 << 15).to_le_bytes())
                .unwrap();
        }
        Harness {
            queues: (0..NF).map(|_| Vec::new()).collect(),
            dev,
            clock,
            mem,
        }
    }

    fn admin(&mut self, f: u16, cmd: AdminCommand, lif: u16) -> AdminComp {
        self.dev.admin_command(f, &cmd.encode(CmdHeader { tag: 1, lif }))
    }

    fn own_lifs(&self, f: u16) -> Vec<(u16, u16, [u8; 6])> {
        self.dev
            .lifs
            .iter()
            .flatten()
            .filter(|l| l.function == f)
            .map(|l| (l.id, l.slot, l.mac))
            .collect()
    }

    fn any_lif(&self, i: u8) -> u16 {
        let all: Vec<u16> = self.dev.lifs.iter().flatten().map(|l| l.id).collect();
        if all.is_empty() || i == 0xff {
            u16::from(i)
        } else {
            all[usize::from(i) % all.len()]
        }
    }

    /// One step by function `f`.
    fn step(&mut self, f: u16, inp: &mut Input) {
        let fi = usize::from(f);
        match inp.byte() % 14 {
            0 => {
                // A raw command, whatever its bytes.
                let raw = inp.bytes(64);
                let mut b = [0u8; 64];
                b[..raw.len()].copy_from_slice(&raw);
                let cmd: AdminCmd = zerocopy::FromBytes::read_from_bytes(&b[..]).unwrap();
                self.dev.admin_command(f, &cmd);
                self.queues[fi].clear();
            }
            1 => {
                let mac = if inp.byte() & 1 == 0 {
                    [0; 6]
                } else {
                    [2, 0, 0, 0, inp.byte(), inp.byte()]
                };
                self.admin(
                    f,
                    AdminCommand::LifCreate(LifCreate {
                        mac,
                        ..Default::default()
                    }),
                    LIF_NONE,
                );
            }
            2 => {
                let l = self.any_lif(inp.byte());
                self.admin(f, AdminCommand::LifDestroy, l);
                self.queues[fi].clear();
            }
            3 => {
                // A queue in the function's own memory (mostly).
                let l = self.any_lif(inp.byte());
                let tx = inp.byte() & 1 == 0;
                let order = 2 + inp.byte() % 5;
                let base = IOVA + u64::from(inp.byte()) * 0x1000;
                let q = QueueCreate {
                    qtype: if tx { QueueType::Tx.raw() } else { QueueType::Rx.raw() },
                    ring_order: order,
                    ring_base: base.into(),
                    cq_base: (base + 0x800).into(),
                    state_base: (base + 0xc00).into(),
                    ..Default::default()
                };
                let c = self.admin(f, AdminCommand::QueueCreate(q), l);
                let slot = self.dev.lif(l).map(|x| x.slot);
                if c.status == AdminStatus::Ok.raw() && usize::from(l) < self.dev.lifs.len() {
                    let (Some(slot), off) = (slot, base - IOVA) else { return };
                    let m = &self.mem[fi];
                    // SAFETY: the state block and ring lie in the harness's
                    // mapping, which outlives the producers (field order);
                    // the device initialised the block.
                    let qi = c.value.get() as u16;
                    if tx {
                        if let Ok(p) = unsafe { Producer::attach(m.at(off + 0xc00), m.at(off).cast(), order) } {
                            self.queues[fi].push(Q::Tx(p, slot, qi));
                        }
                    } else if let Ok(p) = unsafe { Producer::attach(m.at(off + 0xc00), m.at(off).cast(), order) } {
                        self.queues[fi].push(Q::Rx(p));
                    }
                }
            }
            4 => {
                let l = self.any_lif(inp.byte());
                let r = QueueRef {
                    qtype: 1 + inp.byte() % 2,
                    qindex: u16::from(inp.byte() % 4).into(),
                    start_index: inp.u32().into(),
                    ..Default::default()
                };
                if inp.byte() & 1 == 0 {
                    self.admin(f, AdminCommand::QueueReset(r), l);
                } else {
                    self.admin(f, AdminCommand::QueueDestroy(r), l);
                }
                self.queues[fi].clear();
            }
            5 => {
                // A register write: BAR0 pages, doorbells, config space.
                let region = [0u32, 0, 0, 7, 1, 9][usize::from(inp.byte() % 6)];
                let offset = match inp.byte() % 5 {
                    0 => DEVCMD_OFFSET + u64::from(inp.byte()),
                    1 => INTR_CTRL_OFFSET + u64::from(inp.u16() % 0x1000),
                    2 => MSIX_TABLE_OFFSET + u64::from(inp.u16() % 0x1000),
                    3 => DOORBELL_OFFSET + u64::from(inp.u16()),
                    _ => u64::from(inp.u32()),
                };
                let len = usize::from(inp.byte() % 17);
                let data = inp.bytes(len);
                let _ = self.dev.region_write(f, region, offset, &data);
                if region == 0 && (DEVCMD_OFFSET..DEVCMD_OFFSET + 0x1000).contains(&offset) {
                    self.queues[fi].clear();
                }
            }
            6 => {
                // Its own memory: rings, descriptors, state blocks.
                let off = u64::from(inp.u16()) * 16;
                let n = usize::from(inp.byte() % 64);
                let data = inp.bytes(n);
                self.mem[fi].write(off, &data);
            }
            7 => {
                // Send frames: to another LIF, a group, anything.
                let dsts: Vec<[u8; 6]> = self.dev.lifs.iter().flatten().map(|l| l.mac).collect();
                let own = self.own_lifs(f);
                let pick = inp.byte();
                let len = 14 + usize::from(inp.byte());
                let mut frame = inp.bytes(len);
                frame.resize(len, 0);
                if !dsts.is_empty() && pick & 3 != 0 {
                    frame[..6].copy_from_slice(&dsts[usize::from(pick) % dsts.len()]);
                }
                if let Some((_, _, mac)) = own.first().filter(|_| pick & 4 != 0) {
                    frame[6..12].copy_from_slice(mac);
                }
                let buf = 0x80000 + u64::from(inp.byte()) * 0x800;
                self.mem[fi].write(buf, &frame);
                let n = self.queues[fi].len();
                if n > 0 {
                    let i = usize::from(inp.byte()) % n;
                    if let Q::Tx(p, slot, qi) = &mut self.queues[fi][i] {
                        let (slot, qi) = (*slot, *qi);
                        let _ = p.reclaim();
                        if p.fill_bulk(&[TxDesc::new(IOVA + buf, len as u16, tx_flags::COMPLETE)]) {
                            if let Some(tail) = p.doorbell() {
                                let v = Doorbell {
                                    qtype: QueueType::Tx,
                                    qindex: qi,
                                    outgoing_tail: tail.get(),
                                }
                                .encode();
                                let off = DOORBELL_OFFSET + u64::from(slot) * DOORBELL_STRIDE + 8 * u64::from(qi);
                                let _ = self.dev.region_write(f, 0, off, &v.to_le_bytes());
                            }
                        }
                    }
                }
            }
            8 => {
                // Post RX buffers.
                for q in &mut self.queues[fi] {
                    if let Q::Rx(p) = q {
                        let _ = p.reclaim();
                        let bufs: Vec<RxDesc> = (0..4).map(|i| RxDesc::new(IOVA + 0xc0000 + i * 0x800, 2048)).collect();
                        let _ = p.fill_bulk(&bufs);
                        let _ = p.doorbell();
                    }
                }
            }
            9 => {
                let extra = Mem::new(MEM);
                let iova = u64::from(inp.u32()) << 12;
                let len = 4096 * (1 + u64::from(inp.byte() % 8));
                if inp.byte() & 1 == 0 {
                    let _ = self.dev.dma_map(
                        f,
                        iova,
                        len,
                        Some(extra.file.try_clone().unwrap()),
                        0,
                        inp.byte() & 1 == 0,
                    );
                } else {
                    let _ = self.dev.dma_unmap(f, iova, len, inp.byte() & 1 == 0);
                }
            }
            10 => {
                let v = u32::from(inp.byte() % 10);
                let fd = File::open("/dev/null").ok();
                let flags = u32::from(inp.byte() & 0x3f);
                let _ = self
                    .dev
                    .set_irqs(f, u32::from(inp.byte() % 6), flags, v, 1, fd.into_iter().collect());
            }
            11 => {
                match inp.byte() % 3 {
                    0 => self.dev.flr(f),
                    1 => self.dev.client_gone(f),
                    _ => self.dev.reset_function(f, reset_reason::MAILBOX),
                }
                self.queues[fi].clear();
                if self.dev.functions[fi].dma.is_empty() {
                    let fd = self.mem[fi].file.try_clone().unwrap();
                    let _ = self.dev.dma_map(f, IOVA, MEM, Some(fd), 0, true);
                    let _ = self.dev.region_write(f, 7, 4, &6u16.to_le_bytes());
                    let _ = self.dev.region_write(f, 7, 0x82, &(1u16 << 15).to_le_bytes());
                }
            }
            12 => {
                // PF-only commands from this function (refused for VFs).
                let l = self.any_lif(inp.byte());
                let m = MeterConfig {
                    resource: MeterResource::Packets.raw(),
                    mode: MeterMode::SrTcm.raw(),
                    cir: u64::from(inp.u32()).into(),
                    cburst: (1 + u64::from(inp.byte())).into(),
                    ..Default::default()
                };
                self.admin(f, AdminCommand::MeterSet(m), l);
                let c = FunctionConfig {
                    function: u16::from(inp.byte() % 3).into(),
                    slot: u16::from(inp.byte() % 2).into(),
                    flags: inp.byte() & function_config_flags::ALL,
                    mac: [2, 0, 0, 1, inp.byte(), inp.byte()],
                    ..Default::default()
                };
                self.admin(f, AdminCommand::FunctionConfigSet(c), LIF_NONE);
                // Table entries: an add of fuzzed bytes, then a listing
                // from a fuzzed index into a fuzzed length.
                let mut entry = [0u8; 112];
                for b in entry.iter_mut().take(24) {
                    *b = inp.byte();
                }
                entry[14] = 6; // key_len: the built-in l2_fwd's
                self.mem[fi].write(0xe0000, &entry);
                self.admin(f, AdminCommand::TableEntryAdd(DmaRef::new(IOVA + 0xe0000, 112)), LIF_NONE);
                let list = TableListRef {
                    table_id: u32::from(inp.byte() % 3).into(),
                    from: u32::from(inp.byte()).into(),
                    dma: DmaRef::new(IOVA + 0xf0000, 1 + u32::from(inp.byte()) * 16),
                };
                self.admin(f, AdminCommand::TableEntryList(list), LIF_NONE);
                self.admin(f, AdminCommand::TableDataList(list), LIF_NONE);
                // An entry's direct cells (ABI 1.6): the entry above with
                // fuzzed flags, counter and meter bytes behind it.
                let mut data = [0u8; 192];
                data[..112].copy_from_slice(&entry);
                for b in data[112..].iter_mut().take(40) {
                    *b = inp.byte();
                }
                self.mem[fi].write(0xe1000, &data);
                let len = 160 + u32::from(inp.byte() % 64);
                self.admin(f, AdminCommand::TableDataSet(DmaRef::new(IOVA + 0xe1000, len)), LIF_NONE);
                // The program's meter arrays (ABI 1.6): a read into a
                // fuzzed length, a set of a fuzzed cell.
                let meters = PipelineMeterRef {
                    meter_id: u32::from(inp.byte() % 4).into(),
                    from: u32::from(inp.byte()).into(),
                    dma: DmaRef::new(IOVA + 0xf0000, 1 + u32::from(inp.byte()) * 24),
                };
                self.admin(f, AdminCommand::PipelineMeterGet(meters), LIF_NONE);
                let set = PipelineMeterSet {
                    meter_id: u32::from(inp.byte() % 4).into(),
                    index: u32::from(inp.u16()).into(),
                    config: MeterConfig {
                        resource: inp.byte() % 2,
                        mode: inp.byte() % 3,
                        cir: u64::from(inp.u32()).into(),
                        cburst: u64::from(inp.byte()).into(),
                        eburst: u64::from(inp.byte()).into(),
                        ..Default::default()
                    },
                };
                self.admin(f, AdminCommand::PipelineMeterSet(set), LIF_NONE);
                let cells = CounterRef {
                    counter_id: u32::from(inp.byte() % 8).into(),
                    from: u32::from(inp.byte()).into(),
                    dma: DmaRef::new(IOVA + 0xf0000, 1 + u32::from(inp.byte()) * 8),
                };
                self.admin(f, AdminCommand::PipelineCounterGet(cells), LIF_NONE);
                // The CPU port: a frame of fuzzed length to a fuzzed LIF
                // (or the uplink), then a read into a fuzzed length.
                let inject = PacketInject {
                    lif: if inp.byte() & 1 == 0 { LIF_NONE } else { self.any_lif(inp.byte()) }.into(),
                    rsvd: [0; 6],
                    dma: DmaRef::new(IOVA + 0xe0000, 1 + u32::from(inp.u16() % 10_000)),
                };
                self.admin(f, AdminCommand::PacketInject(inject), LIF_NONE);
                let read = DmaRef::new(IOVA + 0xf0000, 1 + u32::from(inp.u16()));
                self.admin(f, AdminCommand::PacketInRead(read), LIF_NONE);
                let set = CounterSet {
                    counter_id: u32::from(inp.byte() % 8).into(),
                    index: if inp.byte() & 1 == 0 { COUNTER_ALL_CELLS } else { inp.u32() }.into(),
                    packets: u64::from(inp.u32()).into(),
                    bytes: u64::from(inp.u32()).into(),
                };
                self.admin(f, AdminCommand::PipelineCounterSet(set), LIF_NONE);
            }
            _ => {
                let dma = DmaRef::new(IOVA + 0xf0000, 4096);
                let l = self.any_lif(inp.byte());
                self.admin(f, AdminCommand::StatsGet(dma), l);
                self.admin(f, AdminCommand::LifList(dma), LIF_NONE);
                self.admin(
                    f,
                    AdminCommand::EventsGet(EventsRef {
                        from_seq: 0.into(),
                        dma,
                    }),
                    LIF_NONE,
                );
            }
        }
    }

    fn pass(&mut self, ns: u64) {
        let now = self.clock.now();
        self.dev.poll();
        self.clock.advance_to(now + ns);
        self.dev.poll();
    }

    fn check(&self, what: &str) {
        assert!(
            self.dev.internal_errors.is_empty(),
            "{what}: {:?}",
            self.dev.internal_errors
        );
        if let Err(e) = self.dev.check_books() {
            panic!("{what}: books: {e}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut h = Harness::new();
    let mut inp = Input(data);
    let mut steps = 0;
    while !inp.0.is_empty() && steps < 200 {
        steps += 1;
        let who = inp.byte();
        if who % 8 == 7 {
            let ns = u64::from(inp.u16()) * 10;
            let before: Vec<String> = (0..NF).map(|f| snapshot(&h.dev, f)).collect();
            h.pass(ns);
            h.check("engine pass");
            let after: Vec<String> = (0..NF).map(|f| snapshot(&h.dev, f)).collect();
            for f in 0..NF {
                // The engine changes no configuration (meters' applied
                // settings, LIFs, mappings): only counters and rings.
                assert_eq!(before[f], after[f], "an engine pass changed function {f}");
            }
            continue;
        }
        // VF 0 and VF 1 act; the PF now and then (it may change theirs).
        let f: u16 = match who % 8 {
            0..=2 => 1,
            3..=5 => 2,
            _ => 0,
        };
        let before: Vec<String> = (0..NF).map(|g| snapshot(&h.dev, g)).collect();
        h.step(f, &mut inp);
        h.check("a step");
        if f != 0 {
            for g in (0..NF).filter(|&g| g != usize::from(f)) {
                let after = snapshot(&h.dev, g);
                assert_eq!(before[g], after, "function {f}'s step changed function {g}");
            }
        }
    }
    let _ = h.mem[0].file.as_raw_fd();
});
