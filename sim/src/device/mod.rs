//! The simulated device: PCI functions, LIFs and their queues, the switch,
//! the uplink port, and the engines that move packets between them.
//!
//! `Device` is plain state with no threads of its own: the vfio-user
//! server threads call its region, DMA, interrupt and reset handlers, and
//! whoever drives time calls [`Device::poll`] (the engine thread in real
//! time, the test in virtual time). The caller serialises all of these
//! (one mutex in `Sim`), so the device never sees two at once, and a poll
//! pass is deterministic given the memory it reads.

mod admin;
pub mod engine;
pub mod events;
pub mod faults;
pub mod function;
pub mod meters;
pub mod queue;
pub mod switch;

use crate::clock::{Nanos, SimClock};
use crate::pci;
use crate::port::Port;
use dataplane::abi::{self, CompStatus, FunctionKind, LifCounter, RxDesc, TxDesc, LIF_COUNTERS, LIF_NONE};
use dataplane::fair::{Basis, Scheduler};
use dataplane::packet::Mac;
use function::{Bar0Effect, Function, FunctionLimits};
use queue::DeviceQueue;
use std::fs::File;
use switch::Switch;
use vfio_bindings::bindings::vfio::{
    VFIO_IRQ_INFO_EVENTFD, VFIO_IRQ_INFO_MASKABLE, VFIO_IRQ_INFO_NORESIZE, VFIO_IRQ_SET_ACTION_MASK,
    VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_ACTION_TYPE_MASK, VFIO_IRQ_SET_ACTION_UNMASK, VFIO_IRQ_SET_DATA_EVENTFD,
    VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_DATA_TYPE_MASK, VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX,
    VFIO_PCI_MSIX_IRQ_INDEX, VFIO_PCI_NUM_IRQS, VFIO_PCI_NUM_REGIONS, VFIO_REGION_INFO_FLAG_MMAP,
    VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE,
};

/// Largest region access the device serves in one message (the vfio-user
/// `max_data_xfer_size` both sides announce).
pub const MAX_REGION_ACCESS: usize = 1 << 20;

/// Whether a region write of `len` bytes to `region` is one the device
/// takes (what it does with it aside): checked by `Device::region_write`,
/// and by a server that answers the write before its effects.
pub fn check_region_write(region: u32, len: usize) -> Result<(), RequestError> {
    if len > MAX_REGION_ACCESS {
        return Err(RequestError::TooLarge(len));
    }
    if region >= vfio_bindings::bindings::vfio::VFIO_PCI_NUM_REGIONS {
        return Err(RequestError::NoRegion(region));
    }
    Ok(())
}

/// The whole device's configuration.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// Number of VFs.
    pub vfs: u16,
    pub pf: FunctionLimits,
    pub vf: FunctionLimits,
    /// Serial number in the identity page.
    pub serial: String,
    /// Pipeline capacity in cost units per second; `None`: as fast as the
    /// host runs the simulator. (The virtual clock always has one.)
    pub pipeline_units_per_sec: Option<u64>,
    /// Fixed latency from leaving the pipeline to the completion (DMA and
    /// pipeline depth), ns; with a capacity only.
    pub transit_ns: u64,
    /// How far ahead of the device clock the pipeline may be booked, ns
    /// (its input FIFO); with a capacity only. 0 on the virtual clock,
    /// where the engine runs exactly when the pipeline frees. On the real
    /// clock an engine thread that oversleeps would otherwise lose the
    /// pipeline time it slept through: with a lead as long as its longest
    /// sleep it delivers the configured capacity (`Sim::start` sets one
    /// on the real clock).
    pub pipeline_lead_ns: u64,
    /// What the fetch scheduler charges.
    pub basis: Basis,
    /// DRR quantum per LIF per round, in the basis's unit.
    pub quantum: u64,
    /// Cost units per pipeline stage.
    pub cost: engine::CostModel,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            vfs: 4,
            pf: FunctionLimits::PF,
            vf: FunctionLimits::VF,
            serial: "FNSIM0001".into(),
            pipeline_units_per_sec: None,
            transit_ns: 0,
            pipeline_lead_ns: 0,
            basis: Basis::Cost,
            quantum: 256,
            cost: engine::CostModel::default(),
        }
    }
}

impl DeviceConfig {
    /// Check the limits against what the ABI can express.
    pub fn validate(&self) -> Result<(), String> {
        for (who, l) in [("PF", &self.pf), ("VF", &self.vf)] {
            let bad = |what: &str| Err(format!("{who} {what}"));
            if !(1..=abi::MAX_LIFS_PER_FUNCTION).contains(&l.nlifs) {
                return bad("nlifs must be 1..=256");
            }
            if !(1..=abi::MAX_QUEUES_PER_TYPE).contains(&l.nqueues) {
                return bad("nqueues must be 1..=256");
            }
            if !(1..=abi::MAX_INTRS).contains(&l.nintrs) {
                return bad("nintrs must be 1..=128");
            }
            if !(1..=crate::dma::MAX_MAPPINGS).contains(&l.max_dma_maps) {
                return bad("max_dma_maps must be 1..=4096");
            }
            if l.min_ring_order < abi::MIN_RING_ORDER
                || l.min_ring_order > l.max_ring_order
                || l.max_ring_order > abi::MAX_RING_ORDER
            {
                return bad("ring orders must satisfy 2 <= min <= max <= 15");
            }
        }
        if usize::from(self.max_lifs()) >= usize::from(abi::LIF_NONE) {
            return Err("too many LIFs in all (at most 65534)".into());
        }
        if self.pipeline_units_per_sec == Some(0) {
            return Err("a pipeline capacity of 0 units/s moves nothing".into());
        }
        Ok(())
    }

    /// Most LIFs the device can hold: every function's slots.
    pub fn max_lifs(&self) -> u16 {
        self.pf.nlifs.saturating_add(self.vfs.saturating_mul(self.vf.nlifs))
    }
}

/// A logical interface.
#[derive(Debug)]
pub struct Lif {
    pub id: u16,
    /// Owning function.
    pub function: u16,
    /// Doorbell slot in the owning function's BAR0.
    pub slot: u16,
    pub name: [u8; 16],
    pub mac: Mac,
    pub txqs: Vec<Option<DeviceQueue<TxDesc>>>,
    pub rxqs: Vec<Option<DeviceQueue<RxDesc>>>,
    /// Indexed by [`LifCounter`].
    pub counters: [u64; LIF_COUNTERS],
    /// The LIF's meters and their policies.
    pub meters: meters::LifMeters,
    /// Next RX queue to try (round robin over healthy queues).
    rx_next: usize,
    /// Next TX queue to serve (round robin within the LIF).
    tx_next: usize,
    /// Whether its meters blocked it at the last look.
    blocked: bool,
    /// Drop frames it sends with a source MAC not its own (its slot's
    /// spoof check).
    pub spoof_check: bool,
    /// Source drops already reported as events (bit 0: spoofed, bit 1:
    /// group source): one event per LIF and reason.
    source_events: u8,
    /// Fault injection: the engine panics the next time it serves the LIF
    /// (a stand-in for a bug).
    pub inject_panic: bool,
}

impl Lif {
    /// Add to a counter.
    pub fn count(&mut self, c: LifCounter, n: u64) {
        self.counters[c as usize] += n;
    }

    /// A counter's value.
    pub fn counter(&self, c: LifCounter) -> u64 {
        self.counters[c as usize]
    }

    /// Whether any of the LIF's queues is in the error state.
    pub fn has_error(&self) -> bool {
        self.txqs.iter().flatten().any(|q| q.core.error.is_some())
            || self.rxqs.iter().flatten().any(|q| q.core.error.is_some())
    }
}

/// Why a vfio-user request was refused (becomes an error reply).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("no such region {0}")]
    NoRegion(u32),
    #[error("region access of {0} bytes exceeds {MAX_REGION_ACCESS}")]
    TooLarge(usize),
    #[error(transparent)]
    DmaMap(#[from] crate::dma::DmaMapError),
    #[error("SET_IRQS: {0}")]
    Irqs(&'static str),
}

impl RequestError {
    /// The errno of the vfio-user error reply.
    pub fn errno(&self) -> i32 {
        match self {
            RequestError::NoRegion(_) | RequestError::TooLarge(_) | RequestError::Irqs(_) => libc::EINVAL,
            RequestError::DmaMap(e) => e.errno(),
        }
    }
}

/// How a region looks to a client (`DEVICE_GET_REGION_INFO`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionDesc {
    /// `VFIO_REGION_INFO_FLAG_*`.
    pub flags: u32,
    pub size: u64,
    /// Mappable areas: (offset, size).
    pub sparse: Vec<(u64, u64)>,
    /// The descriptor to map them from (valid while the device lock is
    /// held and the client is connected).
    pub mmap_fd: Option<std::os::fd::RawFd>,
}

/// How frames went through the switch (not ABI: the device's own
/// bookkeeping, to check the counters against).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Audit {
    /// Frames the switch sent to one LIF.
    pub to_lif: u64,
    /// Frames it flooded, and the copies that went to LIFs.
    pub floods: u64,
    pub flood_copies: u64,
    /// Frames from the wire it sent back to the wire.
    pub hairpins: u64,
    /// Copies that arrived at a LIF (each ends in one of the receiver's
    /// counters), and those whose LIF had gone (`DropNoRoute` on the
    /// sender).
    pub arrivals: u64,
    pub arrivals_no_lif: u64,
}

/// The device.
pub struct Device {
    pub cfg: DeviceConfig,
    pub clock: SimClock,
    pub functions: Vec<Function>,
    /// Device-wide LIF table; the index is the LIF number.
    pub lifs: Vec<Option<Lif>>,
    pub switch: Switch,
    /// Why the last `PipelineLoad` was refused (for `nicsim` logs and
    /// tests).
    pub pipeline_error: Option<String>,
    pub port: Box<dyn Port>,
    /// The uplink's counters, indexed like a LIF's: frames from the wire
    /// (`WireRxPackets`) and those of them that ended in a drop there (no
    /// LIF to charge them to), frames sent to the wire (`WireTxPackets`).
    pub uplink_counters: [u64; LIF_COUNTERS],
    /// What `EventsGet` reads.
    pub events: events::EventLog,
    /// The function the engine is working for, to blame if it panics.
    blame: Option<u16>,
    /// How frames went through the switch, beside the counters: what
    /// [`Device::check_books`] balances them against.
    pub audit: Audit,
    /// Internal errors (panics) the device contained: (function or `None`
    /// for the device's own work, what happened).
    pub internal_errors: Vec<(Option<u16>, String)>,
    pipeline: admin::PipelineUpload,
    scratch: Vec<u8>,
    /// Frame buffers for TX frames run through a program ahead of their
    /// turn (see `Device::preprocess`).
    frame_pool: Vec<Vec<u8>>,
    /// The fetch scheduler.
    sched: Scheduler,
    /// The pipeline is occupied until then (with a capacity).
    busy_until: Nanos,
    /// The last pass found work only on LIFs its meters block.
    blocked_with_work: bool,
    /// Scratch for the fetch scheduler: each LIF's class, `None` if idle.
    classes: Vec<Option<dataplane::fair::Class>>,
    cost_model: engine::CostModel,
    /// Scratch for interrupt moderation: (LIF, interrupts) raised by
    /// timers in one pass.
    raised_scratch: Vec<(u16, u64)>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("functions", &self.functions.len())
            .field("lifs", &self.lifs.iter().flatten().count())
            .field("port", &self.port)
            .finish()
    }
}

impl Device {
    /// A device with one PF and `cfg.vfs` VFs, all in power-on state.
    pub fn new(cfg: DeviceConfig, clock: SimClock, port: Box<dyn Port>) -> std::io::Result<Device> {
        cfg.validate().map_err(std::io::Error::other)?;
        let mut functions = Vec::with_capacity(usize::from(cfg.vfs) + 1);
        functions.push(Function::new(0, FunctionKind::Pf, cfg.pf, cfg.vfs)?);
        for vf in 0..cfg.vfs {
            functions.push(Function::new(vf + 1, FunctionKind::Vf, cfg.vf, 0)?);
        }
        let lifs: Vec<Option<Lif>> = (0..cfg.max_lifs()).map(|_| None).collect();
        let sched = Scheduler::new(lifs.len(), cfg.basis, cfg.quantum);
        let cost_model = cfg.cost;
        Ok(Device {
            sched,
            busy_until: 0,
            blocked_with_work: false,
            classes: Vec::new(),
            raised_scratch: Vec::new(),
            frame_pool: Vec::new(),
            cost_model,
            cfg,
            clock,
            functions,
            lifs,
            switch: Switch::default(),
            pipeline_error: None,
            port,
            uplink_counters: [0; LIF_COUNTERS],
            events: events::EventLog::default(),
            blame: None,
            audit: Audit::default(),
            internal_errors: Vec::new(),
            pipeline: admin::PipelineUpload::default(),
            scratch: Vec::with_capacity(9216),
        })
    }

    /// Set LIF `lif`'s share in the fetch scheduler (default 1).
    pub fn set_weight(&mut self, lif: u16, weight: u32) {
        self.sched.set_weight(usize::from(lif), weight);
    }

    /// Change what the fetch scheduler charges (deficits start over).
    pub fn set_basis(&mut self, basis: Basis, quantum: u64) {
        self.cfg.basis = basis;
        self.cfg.quantum = quantum;
        self.sched.set_basis(basis, quantum);
    }

    /// The current device time.
    pub fn now(&self) -> Nanos {
        self.clock.now()
    }

    /// A LIF by number.
    pub fn lif(&self, lif: u16) -> Option<&Lif> {
        self.lifs.get(usize::from(lif)).and_then(Option::as_ref)
    }

    fn function(&self, f: u16) -> Option<&Function> {
        self.functions.get(usize::from(f))
    }

    /// A vfio-user region read on function `f`. Configuration space and
    /// BAR0 are served; other regions are empty.
    pub fn region_read(&mut self, f: u16, region: u32, offset: u64, data: &mut [u8]) -> Result<(), RequestError> {
        if data.len() > MAX_REGION_ACCESS {
            return Err(RequestError::TooLarge(data.len()));
        }
        let now = self.now();
        let Some(func) = self.function(f) else {
            return Err(RequestError::NoRegion(region));
        };
        match region {
            VFIO_PCI_CONFIG_REGION_INDEX => func.config.read(offset, data),
            VFIO_PCI_BAR0_REGION_INDEX => func.bar0_read(offset, data, now, &self.cfg.serial),
            r if r < vfio_bindings::bindings::vfio::VFIO_PCI_NUM_REGIONS => data.fill(0xff),
            r => return Err(RequestError::NoRegion(r)),
        }
        Ok(())
    }

    /// A vfio-user region write on function `f`, with its side effects
    /// (mailbox commands, admin doorbells, MSI-X unmasking) carried out
    /// before it returns. Refused exactly when [`check_region_write`]
    /// refuses it.
    pub fn region_write(&mut self, f: u16, region: u32, offset: u64, data: &[u8]) -> Result<(), RequestError> {
        check_region_write(region, data.len())?;
        let fi = usize::from(f);
        match region {
            VFIO_PCI_CONFIG_REGION_INDEX => {
                let func = &mut self.functions[fi];
                let was_enabled = func.config.msix_enabled() && !func.config.msix_function_masked();
                func.config.write(offset, data);
                if !was_enabled && func.config.msix_enabled() && !func.config.msix_function_masked() {
                    func.deliver_pending();
                }
            }
            VFIO_PCI_BAR0_REGION_INDEX => match self.functions[fi].bar0_write(offset, data) {
                Bar0Effect::None => {}
                Bar0Effect::DevCmd => self.devcmd(fi),
                Bar0Effect::AdminDoorbell(v) => self.admin_doorbell(fi, v),
                Bar0Effect::Unmask(v) => self.functions[fi].unmasked(v),
            },
            // (Others were refused above.)
            _ => self.functions[fi].counters.ignored_writes += 1,
        }
        Ok(())
    }

    /// vfio-user `DMA_MAP` on function `f`.
    pub fn dma_map(
        &mut self,
        f: u16,
        iova: u64,
        size: u64,
        file: Option<File>,
        offset: u64,
        writable: bool,
    ) -> Result<(), RequestError> {
        let func = &mut self.functions[usize::from(f)];
        let budget = usize::from(func.limits.max_dma_maps);
        func.dma.map(iova, size, file, offset, writable, budget)?;
        Ok(())
    }

    /// `DEVICE_GET_REGION_INFO` of function `f`: BAR0 (its doorbell pages
    /// mappable from a sealed memfd) and configuration space; the other
    /// PCI regions exist and are empty. `None` past the PCI regions.
    pub fn region_desc(&self, f: u16, index: u32) -> Option<RegionDesc> {
        let func = self.function(f)?;
        if index >= VFIO_PCI_NUM_REGIONS {
            return None;
        }
        Some(match index {
            VFIO_PCI_BAR0_REGION_INDEX => RegionDesc {
                flags: VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP,
                size: func.bar0_size(),
                sparse: vec![(
                    abi::DOORBELL_OFFSET,
                    u64::from(func.limits.nlifs) * abi::DOORBELL_STRIDE,
                )],
                mmap_fd: Some(std::os::fd::AsRawFd::as_raw_fd(func.doorbells.file())),
            },
            VFIO_PCI_CONFIG_REGION_INDEX => RegionDesc {
                flags: VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
                size: pci::CONFIG_SIZE as u64,
                sparse: Vec::new(),
                mmap_fd: None,
            },
            _ => RegionDesc {
                flags: 0,
                size: 0,
                sparse: Vec::new(),
                mmap_fd: None,
            },
        })
    }

    /// `DEVICE_GET_IRQ_INFO` of function `f`: (flags, count); only MSI-X
    /// has vectors. `None` past the PCI interrupt types.
    pub fn irq_desc(&self, f: u16, index: u32) -> Option<(u32, u32)> {
        let func = self.function(f)?;
        match index {
            VFIO_PCI_MSIX_IRQ_INDEX => Some((
                VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_NORESIZE,
                u32::from(func.limits.nintrs),
            )),
            i if i < VFIO_PCI_NUM_IRQS => Some((0, 0)),
            _ => None,
        }
    }

    /// The DMA mappings function `f` may hold at once, of both kinds
    /// (announced as `max_dma_maps`): those reached by message and its
    /// mappings of files (each an mmap in the device, at most
    /// `FunctionLimits::max_dma_maps` of them).
    pub fn max_dma_maps(&self, f: u16) -> usize {
        if self.function(f).is_some() {
            crate::dma::MAX_DMA_MAPS
        } else {
            0
        }
    }

    /// Function `f`'s client can be reached by message (`None`: no more):
    /// its DMA mappings without a file go through `remote`.
    pub fn attach_remote(&mut self, f: u16, remote: Option<std::sync::Arc<crate::server::remote::Remote>>) {
        if let Some(func) = self.functions.get_mut(usize::from(f)) {
            func.dma.set_remote(remote);
        }
    }

    /// Count a protocol error of function `f`'s client.
    pub fn count_protocol_error(&mut self, f: u16) {
        if let Some(func) = self.functions.get_mut(usize::from(f)) {
            func.counters.protocol_errors += 1;
        }
    }

    /// Function `f`'s client is gone (closed its connection, or broke the
    /// protocol): a function-level reset, and everything the client gave
    /// the function is released — its LIFs and queues (counters retired),
    /// its DMA mappings, its interrupt eventfds, a pipeline image it was
    /// uploading, and the doorbell pages it mapped (the function gets new
    /// ones: a process that keeps its old mapping rings nothing). The next
    /// client starts from power-on state and sees none of this one's
    /// memory or state.
    pub fn client_gone(&mut self, f: u16) {
        let fi = usize::from(f);
        if fi >= self.functions.len() {
            return;
        }
        self.reset_function(f, abi::reset_reason::CLIENT_GONE);
        self.functions[fi].flr();
        if fi == 0 {
            self.pipeline = admin::PipelineUpload::default();
        }
        let func = &mut self.functions[fi];
        func.dma.clear();
        for v in &mut func.vectors {
            v.eventfd = None;
        }
        match function::DoorbellPages::new(func.bar0_size(), func.limits.nlifs) {
            Ok(d) => func.doorbells = d,
            Err(e) => {
                // The old pages stay (cleared by the reset): the worst a
                // lingering mapping can do is ring doorbells of queues the
                // next client creates, in its own function.
                tracing::error!(function = f, "new doorbell pages: {e}; the old ones stay");
            }
        }
    }

    /// vfio-user `DMA_UNMAP` on function `f`: queues whose memory the unmap
    /// takes away stop with a DMA fault (without a completion: the device
    /// may no longer write there).
    pub fn dma_unmap(&mut self, f: u16, iova: u64, size: u64, all: bool) -> Result<(), RequestError> {
        let fi = usize::from(f);
        if all {
            self.functions[fi].dma.unmap_all();
        } else {
            let _ = self.functions[fi].dma.unmap(iova, size)?;
        }
        let (lo, len) = if all { (0, u64::MAX) } else { (iova, size) };
        for lif in self.lifs.iter_mut().flatten().filter(|l| l.function == f) {
            for q in lif.txqs.iter_mut().flatten() {
                if q.core.uses(lo, len) {
                    q.core.fail_silently(CompStatus::DmaFault, q.next_index());
                }
            }
            for q in lif.rxqs.iter_mut().flatten() {
                if q.core.uses(lo, len) {
                    q.core.fail_silently(CompStatus::DmaFault, q.next_index());
                }
            }
        }
        let func = &mut self.functions[fi];
        if func.admin.as_ref().is_some_and(|q| q.core.uses(lo, len)) {
            if let Some(q) = func.admin.as_mut() {
                q.core.fail_silently(CompStatus::DmaFault, q.ring.head());
            }
        }
        Ok(())
    }

    /// vfio-user `SET_IRQS` on function `f`: only MSI-X has vectors.
    pub fn set_irqs(
        &mut self,
        f: u16,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> Result<(), RequestError> {
        let func = &mut self.functions[usize::from(f)];
        let data = flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
        let action = flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
        if index != VFIO_PCI_MSIX_IRQ_INDEX {
            // INTx, MSI, ERR, REQ: none exist; only "disable all" is fine.
            return if count == 0 && data == VFIO_IRQ_SET_DATA_NONE {
                Ok(())
            } else {
                Err(RequestError::Irqs("only MSI-X (index 2) has vectors"))
            };
        }
        let end = start
            .checked_add(count)
            .ok_or(RequestError::Irqs("start + count overflows"))?;
        if end as usize > func.vectors.len() {
            return Err(RequestError::Irqs("vector beyond the function's MSI-X table"));
        }
        match (data, action) {
            (VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_ACTION_TRIGGER) if fds.is_empty() => {
                // No descriptors: de-assign those vectors.
                for v in start..end {
                    func.vectors[v as usize].eventfd = None;
                }
            }
            (VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_ACTION_TRIGGER) => {
                if fds.len() != count as usize {
                    return Err(RequestError::Irqs("need one eventfd per vector"));
                }
                for fd in &fds {
                    interrupt_eventfd(fd)?;
                }
                // As the host kernel does when it enables a vector for a
                // vfio-pci user: the table entry is unmasked. A client
                // that emulates the MSI-X table itself (QEMU) never writes
                // the device's; the vector would stay masked from reset
                // and every interrupt pending. (Pending ones go now.)
                for (v, fd) in (start..end).zip(fds) {
                    let vec = &mut func.vectors[v as usize];
                    vec.eventfd = Some(fd);
                    vec.msix_entry[12] &= !1;
                    if vec.pending {
                        func.fire(v as u16);
                    }
                }
            }
            (VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_ACTION_TRIGGER) if count == 0 => {
                for v in &mut func.vectors {
                    v.eventfd = None;
                }
            }
            (VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_ACTION_TRIGGER) => {
                // Loopback: fire the vectors as the device would.
                for v in start..end {
                    func.fire(v as u16);
                }
            }
            (VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_ACTION_MASK) => {
                for v in start..end {
                    func.vectors[v as usize].ctrl_mask = true;
                }
            }
            (VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_ACTION_UNMASK) => {
                for v in start..end {
                    func.vectors[v as usize].ctrl_mask = false;
                    func.unmasked(v as u16);
                }
            }
            _ => return Err(RequestError::Irqs("unsupported data/action combination")),
        }
        Ok(())
    }

    /// Function-level reset of `f` (vfio-user `DEVICE_RESET`): the
    /// function's LIFs, queues, admin queue and registers return to
    /// power-on state, and so does its configuration space (bus mastering
    /// and MSI-X off). DMA mappings and eventfds belong to the client's
    /// session and stay.
    pub fn flr(&mut self, f: u16) {
        self.reset_function(f, abi::reset_reason::FLR);
        self.functions[usize::from(f)].flr();
    }

    /// The mailbox's Reset (and the device's own, `reason` says which):
    /// LIFs, queues and registers, not configuration space. The PF's
    /// settings for the function's slots (MACs, spoof check, meters) stay:
    /// nothing a VF does to itself sheds them. A reset of the PF returns
    /// every function's settings to their defaults (they are the PF's).
    pub fn reset_function(&mut self, f: u16, reason: u64) {
        let owned: Vec<u16> = self
            .lifs
            .iter()
            .flatten()
            .filter(|l| l.function == f)
            .map(|l| l.id)
            .collect();
        for lif in owned {
            self.destroy_lif(lif);
        }
        self.functions[usize::from(f)].reset_registers();
        self.functions[usize::from(f)].failed = None;
        if f == 0 {
            for func in &mut self.functions {
                let kind = func.kind;
                func.slot_config.fill(function::SlotConfig::default_for(kind));
                func.regulation.fill(function::Regulation::default());
            }
            for lif in self.lifs.iter_mut().flatten() {
                lif.spoof_check =
                    self.functions[usize::from(lif.function)].slot_config[usize::from(lif.slot)].spoof_check;
            }
        }
        let now = self.now();
        self.events.push(now, abi::EventKind::FunctionReset, f, None, reason);
    }

    /// Contain a panic of the engine or a request handler: the function
    /// it was working for (`blame`, else `function`) stops in a reported
    /// error state; with nobody to blame (the uplink, the device's own
    /// bookkeeping) it is logged and counted and the device carries on.
    pub fn contain_panic(&mut self, payload: &(dyn std::any::Any + Send)) {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        let who = self.blame.take();
        tracing::error!(function = ?who, "internal error contained: {what}");
        self.internal_errors.push((who, what.clone()));
        if self.internal_errors.len() > 64 {
            self.internal_errors.remove(0);
        }
        if let Some(f) = who {
            // If even this fails, the device must still not die.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.fail_function(f, &what)));
            if r.is_err() {
                tracing::error!(function = f, "stopping the function failed too");
            }
        }
    }

    /// Blame function `f` for the next contained panic (a request handler
    /// working for it).
    pub fn blame_function(&mut self, f: u16) {
        self.blame = Some(f);
    }

    /// Stop function `f` after an internal error: its queues stop with
    /// `DeviceError` in their state blocks (no completion is written: the
    /// queue's bookkeeping may be what broke), its LIFs read `ERROR`, its
    /// admin commands complete with `Internal`, frames to it are dropped
    /// as `DropQueueError`, and the PF gets a `FunctionError` event. A
    /// reset of the function (mailbox `Reset`, FLR, a new client) brings it
    /// back.
    pub fn fail_function(&mut self, f: u16, why: &str) {
        let Some(func) = self.functions.get_mut(usize::from(f)) else {
            return;
        };
        func.failed = Some(why.to_string());
        for lif in self.lifs.iter_mut().flatten().filter(|l| l.function == f) {
            for q in lif.txqs.iter_mut().flatten() {
                q.core.stop_quietly(CompStatus::DeviceError);
            }
            for q in lif.rxqs.iter_mut().flatten() {
                q.core.stop_quietly(CompStatus::DeviceError);
            }
        }
        let now = self.now();
        self.events.push(now, abi::EventKind::FunctionError, f, None, 0);
    }

    fn destroy_lif(&mut self, lif: u16) {
        let Some(l) = self.lifs.get_mut(usize::from(lif)).and_then(Option::take) else {
            return;
        };
        self.switch.remove_lif(l.mac, lif);
        self.sched.set_weight(usize::from(lif), 1);
        let func = &mut self.functions[usize::from(l.function)];
        for (r, c) in func.retired.iter_mut().zip(&l.counters) {
            *r += c;
        }
        func.lif_slots[usize::from(l.slot)] = None;
        func.doorbells.clear_slot(l.slot);
        let now = self.now();
        self.events
            .push(now, abi::EventKind::LifDestroyed, l.function, Some((lif, l.slot)), 0);
    }

    /// Sum of a counter over every LIF, live and retired, and the uplink.
    pub fn total_with_retired(&self, c: LifCounter) -> u64 {
        self.total(c) + self.functions.iter().map(|f| f.retired[c as usize]).sum::<u64>()
    }

    /// The books: every frame that entered the switch (sent by a LIF, or
    /// from the wire) ended in exactly one outcome, and every copy that
    /// arrived at a LIF in exactly one of its counters. `Err` names the
    /// equation that does not hold.
    pub fn check_books(&self) -> Result<(), String> {
        let t = |c| self.total_with_retired(c);
        let a = self.audit;
        let frames = t(LifCounter::TxPackets) + t(LifCounter::WireRxPackets);
        let sender_drops = t(LifCounter::DropPipeline)
            + t(LifCounter::DropParseError)
            + t(LifCounter::DropSpoofed)
            + t(LifCounter::DropBadSource)
            + t(LifCounter::DropNoRoute).saturating_sub(a.arrivals_no_lif);
        let outcomes = a.to_lif + a.floods + t(LifCounter::ToUplink) + a.hairpins + sender_drops;
        if frames != outcomes {
            return Err(format!(
                "{frames} frames entered the switch, {outcomes} outcomes (to a LIF {}, floods {}, to the wire {}, \
                 hairpins {}, dropped at the sender {sender_drops})",
                a.to_lif,
                a.floods,
                t(LifCounter::ToUplink),
                a.hairpins
            ));
        }
        if a.arrivals != a.to_lif + a.flood_copies {
            return Err(format!(
                "{} arrivals, {} sent to LIFs and {} flood copies",
                a.arrivals, a.to_lif, a.flood_copies
            ));
        }
        let ended = t(LifCounter::RxPackets)
            + t(LifCounter::DropTooLong)
            + t(LifCounter::DropNoRxBuffer)
            + t(LifCounter::DropMeterRed)
            + t(LifCounter::DropQueueError)
            + a.arrivals_no_lif;
        if a.arrivals != ended {
            return Err(format!(
                "{} arrivals at LIFs, {ended} ended in a receiver's counter",
                a.arrivals
            ));
        }
        Ok(())
    }

    /// Sum of a counter over every LIF plus the uplink's drops.
    pub fn total(&self, c: LifCounter) -> u64 {
        self.lifs.iter().flatten().map(|l| l.counter(c)).sum::<u64>() + self.uplink_counters[c as usize]
    }

    /// The value `LifList` and `StatsGet` use for "no LIF".
    pub const NO_LIF: u16 = LIF_NONE;
}

/// Check that a client's interrupt descriptor is an eventfd and make it
/// non-blocking: the engine signals it under the device lock, and a
/// client that passed a pipe it never reads, or an eventfd it filled to
/// the brim itself, must not block the device for every function (a
/// full eventfd is already signalled; the write is simply skipped).
fn interrupt_eventfd(fd: &File) -> Result<(), RequestError> {
    use std::os::fd::AsRawFd;
    let raw = fd.as_raw_fd();
    let kind = std::fs::read_link(format!("/proc/self/fd/{raw}")).unwrap_or_default();
    if kind.as_os_str() != "anon_inode:[eventfd]" {
        return Err(RequestError::Irqs("an interrupt descriptor must be an eventfd"));
    }
    // SAFETY: fcntl with integer arguments on a descriptor we own.
    let ok = unsafe {
        let flags = libc::fcntl(raw, libc::F_GETFL);
        flags >= 0 && libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
    };
    if !ok {
        return Err(RequestError::Irqs("the eventfd cannot be made non-blocking"));
    }
    Ok(())
}

/// BAR0 size for limits (re-exported for the server).
pub fn bar0_size(limits: &FunctionLimits) -> u64 {
    pci::bar0_size(limits.nlifs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_limits_are_refused() {
        let mut cfg = DeviceConfig::default();
        assert!(cfg.validate().is_ok());
        cfg.vf.nqueues = 0;
        assert!(cfg.validate().unwrap_err().contains("nqueues"));
        let mut cfg = DeviceConfig::default();
        cfg.pf.max_ring_order = 16;
        assert!(cfg.validate().is_err());
        let mut cfg = DeviceConfig {
            vfs: 64,
            ..DeviceConfig::default()
        };
        cfg.vf.nlifs = 256;
        assert!(cfg.validate().is_ok());
        cfg.vfs = 300;
        assert!(cfg.validate().is_err());
    }
}
