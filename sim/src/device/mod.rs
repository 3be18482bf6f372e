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
mod books;
mod client;
pub mod engine;
pub mod events;
pub mod faults;
pub mod function;
pub mod meters;
pub mod queue;
mod reset;
pub mod switch;

use crate::clock::{Nanos, SimClock};
use crate::pci;
use crate::port::Port;
use dataplane::abi::{self, CompStatus, FunctionKind, LifCounter, QueueType, RxDesc, TxDesc, LIF_COUNTERS, LIF_NONE};
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
    /// How the engine decides where frames go: the switch (or the loaded
    /// program), or the benchmark floor.
    pub forwarding: Forwarding,
}

/// How the engine decides where a frame goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Forwarding {
    /// The source checks, then the loaded P4 program or the built-in L2
    /// switch, with the cost model: the device.
    #[default]
    Switch,
    /// A benchmark floor, not a device: the engine only moves descriptors.
    /// A frame goes to the LIF whose number is in bytes 4..6 of its
    /// destination MAC (the LIF MACs the device gives out, `abi::lif_mac`),
    /// read without a lookup; no source checks, no program, no switch
    /// table, no cost (the fairness meters still see what is configured).
    /// The end-to-end bench measures how far the device's own forwarding
    /// is from this.
    Floor,
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
            forwarding: Forwarding::Switch,
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
    /// Its queues by index. Each vector ends at its highest queue (it
    /// grows when a queue is created past it and shrinks when the last
    /// is destroyed), so the engine's round robins never walk empty
    /// slots past the last queue; `max_queues` is the limit.
    pub txqs: Vec<Option<DeviceQueue<TxDesc>>>,
    pub rxqs: Vec<Option<DeviceQueue<RxDesc>>>,
    /// Queues of each type the LIF may have (its function's limit).
    pub max_queues: usize,
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
    /// The index a new queue of `qtype` gets: the first free one, or
    /// `None` at the limit.
    pub fn free_queue_index(&self, qtype: QueueType) -> Option<usize> {
        let (free, len) = match qtype {
            QueueType::Tx => (self.txqs.iter().position(Option::is_none), self.txqs.len()),
            QueueType::Rx => (self.rxqs.iter().position(Option::is_none), self.rxqs.len()),
            QueueType::Admin => return None,
        };
        free.or((len < self.max_queues).then_some(len))
    }

    /// Descriptors the LIF has waiting: cached and published, over its
    /// TX queues (only computed when a descriptors-in-flight meter needs
    /// it, else 0).
    #[inline]
    pub fn backlog(&mut self) -> u64 {
        if !self.meters.needs_backlog() {
            return 0;
        }
        self.queued_descriptors()
    }

    fn queued_descriptors(&mut self) -> u64 {
        self.txqs
            .iter_mut()
            .flatten()
            .map(|q| q.cache.len() as u64 + u64::from(q.available().unwrap_or(0)))
            .sum()
    }

    /// Drop the empty slots past the last queue of each type.
    pub fn trim_queues(&mut self) {
        fn trim<T>(slots: &mut Vec<Option<T>>) {
            while let Some(None) = slots.last() {
                slots.pop();
            }
        }
        trim(&mut self.txqs);
        trim(&mut self.rxqs);
    }

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
    /// Frames the PF injected out of the uplink (`PacketInject`).
    pub injected_to_wire: u64,
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
    /// The CPU port's queue, oldest first: (the sender's `ingress_lif`,
    /// the frame), at most `CPU_QUEUE_FRAMES`; `PacketInRead` drains it.
    pub cpu_queue: std::collections::VecDeque<(u16, Vec<u8>)>,
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
    /// Scratch for `Device::preprocess`: one batch's frames and decisions.
    pre_frames: Vec<Vec<u8>>,
    pre_decisions: Vec<switch::Decision>,
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
            pre_frames: Vec::new(),
            pre_decisions: Vec::new(),
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
            cpu_queue: std::collections::VecDeque::new(),
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
