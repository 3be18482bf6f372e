//! One PCI function of the device: its configuration space, its BAR0
//! registers (identity page, mailbox, interrupt control, MSI-X table), its
//! doorbell pages, its MSI-X vectors and eventfds, and its DMA space.

mod doorbells;
mod vectors;

pub use doorbells::DoorbellPages;
use vectors::intr_ctrl;
pub use vectors::{default_moderation, TimerLateness, Vector};

use super::queue::DeviceQueue;
use crate::clock::Nanos;
use crate::dma::DmaSpace;
use crate::pci::ConfigSpace;
use dataplane::abi::ConsumerFlag;
use dataplane::abi::{
    self, caps, devcmd, AdminCmd, DevCmdRegs, DeviceIdentity, FromZeros, FunctionKind, IntoBytes, IntrCtrl, Moderation,
    ModerationMode, ABI_MAJOR, ABI_MINOR, DEVCMD_OFFSET, DOORBELL_OFFSET, DOORBELL_STRIDE, IDENTITY_OFFSET,
    INTR_CTRL_OFFSET, INTR_CTRL_STRIDE, MSIX_PBA_OFFSET, MSIX_TABLE_OFFSET,
};
use dataplane::moderation::{self, Action, Moderator};
use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use vm_memory::{FileOffset, MmapRegion};

/// Per-function limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionLimits {
    /// LIFs the function may own (doorbell pages).
    pub nlifs: u16,
    /// Queues per type per LIF.
    pub nqueues: u16,
    /// MSI-X vectors.
    pub nintrs: u16,
    pub min_ring_order: u8,
    pub max_ring_order: u8,
    /// DMA mappings its client may hold at once (vfio-user
    /// `max_dma_maps`); each is an mmap the device keeps, no descriptor.
    pub max_dma_maps: u16,
}

impl FunctionLimits {
    /// Defaults for the PF.
    pub const PF: FunctionLimits = FunctionLimits {
        nlifs: 4,
        nqueues: 8,
        nintrs: 16,
        min_ring_order: abi::MIN_RING_ORDER,
        max_ring_order: 13,
        max_dma_maps: 256,
    };
    /// Defaults for a VF.
    pub const VF: FunctionLimits = FunctionLimits {
        nlifs: 2,
        nqueues: 4,
        nintrs: 8,
        min_ring_order: abi::MIN_RING_ORDER,
        max_ring_order: 13,
        max_dma_maps: 64,
    };
}

/// Counters of things a function's client did wrong or the device had to
/// refuse; nothing of this stops the function.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FunctionCounters {
    /// Doorbell values that did not match their slot or had reserved bits.
    pub bad_doorbells: u64,
    /// Writes to read-only BAR0 registers, or outside BAR0.
    pub ignored_writes: u64,
    /// Admin or mailbox commands completed with an error status.
    pub admin_errors: u64,
    /// Interrupts not sent because bus mastering or MSI-X was off.
    pub interrupts_blocked: u64,
    /// Interrupts sent.
    pub interrupts: u64,
    /// Interrupts lost on the way (fault injection).
    pub interrupts_lost: u64,
    /// vfio-user requests refused, and connections ended for breaking the
    /// protocol.
    pub protocol_errors: u64,
    /// LIFs created in a slot the PF regulates, the PF's meters applied.
    pub regulation_applied: u64,
}

/// The PF's settings for one LIF slot of a function (`FunctionConfigSet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotConfig {
    /// The MAC a LIF created in the slot gets.
    pub mac: Option<dataplane::packet::Mac>,
    /// Drop frames the slot's LIF sends with another source MAC.
    pub spoof_check: bool,
    /// The function may choose its LIF's MAC.
    pub trust: bool,
}

impl SlotConfig {
    /// At reset: a VF's slots are checked and untrusted, the PF's trusted.
    pub fn default_for(kind: FunctionKind) -> SlotConfig {
        SlotConfig {
            mac: None,
            spoof_check: kind == FunctionKind::Vf,
            trust: kind == FunctionKind::Pf,
        }
    }

    /// As the ABI writes it.
    pub fn to_abi(self, function: u16, slot: u16) -> abi::FunctionConfig {
        use abi::function_config_flags as ff;
        abi::FunctionConfig {
            function: function.into(),
            slot: slot.into(),
            flags: if self.mac.is_some() { ff::MAC } else { 0 }
                | if self.spoof_check { ff::SPOOF_CHECK } else { 0 }
                | if self.trust { ff::TRUST } else { 0 },
            mac: self.mac.unwrap_or([0; 6]),
            ..Default::default()
        }
    }
}

/// Meters the PF set on the LIF in a slot, by resource: they outlive the
/// LIF and are applied again to any LIF created in the slot, whatever the
/// function does to itself.
pub type Regulation = [Option<abi::MeterConfig>; 5];

/// What a BAR0 write asks the device to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bar0Effect {
    None,
    /// The mailbox doorbell was rung: execute the mailbox command.
    DevCmd,
    /// The admin queue doorbell was written with this value.
    AdminDoorbell(u64),
    /// A vector was unmasked: deliver what is pending.
    Unmask(u16),
}

/// The function's admin queue: commands in, admin completions out.
pub type AdminQueue = DeviceQueue<AdminCmd>;

/// One PCI function.
#[derive(Debug)]
pub struct Function {
    /// 0 for the PF, `n + 1` for VF `n`.
    pub id: u16,
    pub kind: FunctionKind,
    pub limits: FunctionLimits,
    pub config: ConfigSpace,
    pub mailbox: DevCmdRegs,
    pub vectors: Vec<Vector>,
    pub dma: DmaSpace,
    pub doorbells: DoorbellPages,
    pub admin: Option<AdminQueue>,
    /// The admin doorbell to serve again: a read by message was put off
    /// (the engine retries it).
    pub admin_retry: Option<u64>,
    /// The mailbox command is executed; `done` waits until its writes by
    /// message have landed (a fence at this address).
    pub devcmd_fence: Option<u64>,
    /// LIF number in each doorbell slot.
    pub lif_slots: Vec<Option<u16>>,
    pub counters: FunctionCounters,
    /// Fault injection: interrupts still to lose.
    pub lose_interrupts: u32,
    /// Fault injection: admin results still to lie about, in order.
    pub lies: Vec<super::faults::Lie>,
    /// The counters of this function's LIFs that were destroyed (by
    /// `LifDestroy`, a reset, an FLR), summed: `StatsGet` on `LIF_NONE`.
    /// Kept across resets, so a driver can close its books.
    pub retired: [u64; abi::LIF_COUNTERS],
    /// The PF's settings per LIF slot (kept across this function's resets;
    /// a PF reset returns them to defaults).
    pub slot_config: Vec<SlotConfig>,
    /// The PF's meters per LIF slot (kept likewise).
    pub regulation: Vec<Regulation>,
    /// Stopped after an internal error (what it was), until a reset.
    pub failed: Option<String>,
    /// How late its vectors' moderation timers fired.
    pub timer_lateness: TimerLateness,
}

impl Function {
    pub fn new(id: u16, kind: FunctionKind, limits: FunctionLimits, total_vfs: u16) -> std::io::Result<Function> {
        let bar0 = abi::bar0_size(limits.nlifs);
        Ok(Function {
            id,
            kind,
            limits,
            config: ConfigSpace::new(kind, limits.nintrs, bar0, total_vfs),
            mailbox: DevCmdRegs::new_zeroed(),
            vectors: (0..limits.nintrs).map(Vector::new).collect(),
            dma: DmaSpace::default(),
            doorbells: DoorbellPages::new(bar0, limits.nlifs)?,
            admin: None,
            admin_retry: None,
            devcmd_fence: None,
            lif_slots: vec![None; usize::from(limits.nlifs)],
            counters: FunctionCounters::default(),
            lose_interrupts: 0,
            lies: Vec::new(),
            retired: [0; abi::LIF_COUNTERS],
            slot_config: vec![SlotConfig::default_for(kind); usize::from(limits.nlifs)],
            regulation: vec![Regulation::default(); usize::from(limits.nlifs)],
            failed: None,
            timer_lateness: TimerLateness::default(),
        })
    }

    /// BAR0 size.
    pub fn bar0_size(&self) -> u64 {
        self.config.bar0_size()
    }

    /// The identity page as it reads at `now`.
    pub fn identity(&self, now: Nanos, serial: &str) -> abi::Identity {
        DeviceIdentity {
            abi_major: ABI_MAJOR,
            abi_minor: ABI_MINOR,
            capabilities: caps::THREE_INDEX_RING
                | caps::HEAD_WRITEBACK
                | caps::DOORBELL_SUPPRESSION
                | caps::CONSUMER_FLAG
                | caps::MODERATION
                | caps::ADAPTIVE_MODERATION
                | caps::METERS
                | caps::P4_PIPELINE
                | caps::TIMESTAMPS
                | caps::EVENTS
                | caps::FUNCTION_CONFIG
                | caps::PORT_STATS,
            function_id: self.id,
            function_kind: self.kind,
            nlifs: self.limits.nlifs,
            nqueues: self.limits.nqueues,
            nintrs: self.limits.nintrs,
            min_ring_order: self.limits.min_ring_order,
            max_ring_order: self.limits.max_ring_order,
            clock_hz: 1_000_000_000,
            device_clock: now,
            serial: serial.into(),
            fw_version: concat!("nicsim ", env!("CARGO_PKG_VERSION")).into(),
        }
        .encode()
    }

    /// A BAR0 read. Unimplemented or out-of-range bytes read as 0 (inside
    /// BAR0) or 0xff (past it), as a real device's would; a read never
    /// fails.
    pub fn bar0_read(&self, offset: u64, data: &mut [u8], now: Nanos, serial: &str) {
        let size = self.bar0_size();
        if offset.checked_add(data.len() as u64).is_none_or(|end| end > size) {
            data.fill(0xff);
            return;
        }
        if offset >= DOORBELL_OFFSET {
            if !self.doorbells.access(offset - DOORBELL_OFFSET, data, false) {
                data.fill(0);
            }
            return;
        }
        let page = offset & !0xfff;
        let within = (offset & 0xfff) as usize;
        let mut buf = [0u8; 4096];
        match page {
            IDENTITY_OFFSET => {
                let id = self.identity(now, serial);
                buf[..128].copy_from_slice(id.as_bytes());
            }
            DEVCMD_OFFSET => buf.copy_from_slice(self.mailbox.as_bytes()),
            INTR_CTRL_OFFSET => {
                for (v, vec) in self.vectors.iter().enumerate() {
                    let at = v * INTR_CTRL_STRIDE as usize;
                    buf[at..at + 32].copy_from_slice(intr_ctrl(vec).as_bytes());
                }
            }
            MSIX_TABLE_OFFSET => {
                for (v, vec) in self.vectors.iter().enumerate() {
                    buf[v * 16..v * 16 + 16].copy_from_slice(&vec.msix_entry);
                }
                for (v, vec) in self.vectors.iter().enumerate() {
                    let pba = (MSIX_PBA_OFFSET - MSIX_TABLE_OFFSET) as usize;
                    if vec.pending {
                        buf[pba + v / 8] |= 1 << (v % 8);
                    }
                }
            }
            _ => {}
        }
        // Accesses that straddle a page boundary read the rest as zero.
        let n = data.len().min(4096 - within);
        data[..n].copy_from_slice(&buf[within..within + n]);
        data[n..].fill(0);
    }

    /// A BAR0 write. Returns what the device must do about it.
    pub fn bar0_write(&mut self, offset: u64, data: &[u8]) -> Bar0Effect {
        let size = self.bar0_size();
        if offset.checked_add(data.len() as u64).is_none_or(|end| end > size) {
            self.counters.ignored_writes += 1;
            return Bar0Effect::None;
        }
        if offset >= DOORBELL_OFFSET {
            let mut copy = data.to_vec();
            if !self.doorbells.access(offset - DOORBELL_OFFSET, &mut copy, true) {
                self.counters.ignored_writes += 1;
            }
            return Bar0Effect::None;
        }
        let page = offset & !0xfff;
        let within = (offset & 0xfff) as usize;
        if within + data.len() > 4096 {
            self.counters.ignored_writes += 1;
            return Bar0Effect::None;
        }
        match page {
            DEVCMD_OFFSET => {
                let regs = self.mailbox.as_mut_bytes();
                regs[within..within + data.len()].copy_from_slice(data);
                let touches = |at: u64, len: u64| (within as u64) < at + len && at < (within + data.len()) as u64;
                if touches(devcmd::ADMIN_DOORBELL, 8) {
                    let v = self.mailbox.admin_doorbell.get();
                    return Bar0Effect::AdminDoorbell(v);
                }
                if touches(devcmd::DOORBELL, 4) && self.mailbox.doorbell.get() == 1 {
                    self.mailbox.doorbell = 0.into();
                    return Bar0Effect::DevCmd;
                }
                Bar0Effect::None
            }
            INTR_CTRL_OFFSET => self.intr_ctrl_write(within, data),
            MSIX_TABLE_OFFSET => {
                let pba = (MSIX_PBA_OFFSET - MSIX_TABLE_OFFSET) as usize;
                if within >= pba {
                    self.counters.ignored_writes += 1;
                    return Bar0Effect::None;
                }
                let mut effect = Bar0Effect::None;
                for (i, &b) in data.iter().enumerate() {
                    let at = within + i;
                    let (v, byte) = (at / 16, at % 16);
                    let Some(vec) = self.vectors.get_mut(v) else {
                        self.counters.ignored_writes += 1;
                        continue;
                    };
                    let was_masked = vec.masked();
                    vec.msix_entry[byte] = if byte >= 12 { b & 1 } else { b };
                    if was_masked && !vec.masked() {
                        effect = Bar0Effect::Unmask(v as u16);
                    }
                }
                effect
            }
            _ => {
                self.counters.ignored_writes += 1;
                Bar0Effect::None
            }
        }
    }

    /// Whether an admin doorbell or a mailbox command's `done` waits for
    /// the client to be free to answer the device.
    pub fn has_put_off(&self) -> bool {
        self.admin_retry.is_some() || self.devcmd_fence.is_some()
    }

    pub fn deliver_pending(&mut self) {
        for v in 0..self.vectors.len() as u16 {
            self.unmasked(v);
        }
    }

    /// Forget the mailbox, the admin queue, and moderation (the LIFs and
    /// their queues are the device's to remove). The MSI-X table is PCI
    /// state and stays; see [`Function::flr`].
    pub fn reset_registers(&mut self) {
        self.mailbox = DevCmdRegs::new_zeroed();
        self.admin = None;
        self.admin_retry = None;
        self.devcmd_fence = None;
        for (v, vec) in self.vectors.iter_mut().enumerate() {
            vec.moderation = default_moderation(v as u16);
            vec.moderator = Moderator::new(moderation::Config::OFF);
            vec.timer = None;
            vec.pending = false;
            vec.ctrl_mask = false;
            vec.credits = 0;
        }
    }

    /// Function-level reset of the PCI state: configuration space, and the
    /// MSI-X table back to all vectors masked.
    pub fn flr(&mut self) {
        self.config.reset();
        for vec in &mut self.vectors {
            vec.msix_entry = [0; 16];
            vec.msix_entry[12] = 1;
        }
    }
}
