//! One PCI function of the device: its configuration space, its BAR0
//! registers (identity page, mailbox, interrupt control, MSI-X table), its
//! doorbell pages, its MSI-X vectors and eventfds, and its DMA space.

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

/// One MSI-X vector.
#[derive(Debug)]
pub struct Vector {
    /// Signalled to deliver the interrupt (from vfio-user `SET_IRQS`).
    pub eventfd: Option<File>,
    /// The MSI-X table entry (address, data, vector control).
    pub msix_entry: [u8; 16],
    /// Pending bit: an interrupt arrived while masked.
    pub pending: bool,
    /// Mask set through the interrupt control block.
    pub ctrl_mask: bool,
    /// Applied moderation.
    pub moderation: Moderation,
    /// Completions not yet acknowledged through `credits`.
    pub credits: u32,
    /// The moderation state machine for `moderation`.
    pub moderator: Moderator,
    /// When moderation raises the interrupt unless something changes.
    pub timer: Option<Nanos>,
    /// What the vector's consumer was doing when `timer` was set.
    pub timer_consumer: ConsumerFlag,
    /// The LIF whose completions are pending (counted when the timer
    /// fires).
    pub lif: u16,
    /// Scratch for one engine pass: what the consumers of this vector's
    /// queues are doing (armed wins over polling over idle).
    pub seen: Option<ConsumerFlag>,
}

impl Vector {
    fn new(vector: u16) -> Vector {
        let mut msix_entry = [0u8; 16];
        msix_entry[12] = 1; // masked at reset, per PCI
        Vector {
            eventfd: None,
            msix_entry,
            pending: false,
            ctrl_mask: false,
            moderation: default_moderation(vector),
            credits: 0,
            moderator: Moderator::new(moderation::Config::OFF),
            timer: None,
            timer_consumer: ConsumerFlag::Idle,
            lif: 0,
            seen: None,
        }
    }

    /// Apply moderation settings (already validated): pending completions
    /// are re-evaluated under the new rules on the next pass.
    pub fn set_moderation(&mut self, m: Moderation) {
        self.moderation = m;
        self.moderator.set_config(moderation::Config::from(&m));
        self.timer_consumer = ConsumerFlag::Idle;
        if self.moderator.pending() > 0 {
            self.timer = Some(0);
        }
    }

    fn masked(&self) -> bool {
        self.msix_entry[12] & 1 != 0 || self.ctrl_mask
    }
}

/// Moderation at reset: off (one interrupt per completion).
pub fn default_moderation(vector: u16) -> Moderation {
    Moderation {
        vector: vector.into(),
        mode: ModerationMode::Off.raw(),
        ..Default::default()
    }
}

/// The doorbell pages: a memfd the client maps (the sparse-mmap area of
/// BAR0) and the device polls. The memfd is sealed against shrinking and
/// growing (and against further seals) before a client sees it: a client
/// that truncates it cannot make the device fault on its next poll.
pub struct DoorbellPages {
    file: File,
    map: MmapRegion,
    len: u64,
}

impl std::fmt::Debug for DoorbellPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoorbellPages").field("len", &self.len).finish()
    }
}

impl DoorbellPages {
    /// A zeroed memfd of `bar0_size` bytes (the whole BAR0, so that the
    /// sparse area's file offset equals its BAR offset); the device maps
    /// the doorbell part.
    pub fn new(bar0_size: u64, nlifs: u16) -> std::io::Result<DoorbellPages> {
        // SAFETY: plain syscalls; results checked.
        let file = unsafe {
            let fd = libc::memfd_create(c"nicsim-bar0".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            <File as std::os::fd::FromRawFd>::from_raw_fd(fd)
        };
        file.set_len(bar0_size)?;
        crate::dma::seal(&file, libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL)?;
        let len = u64::from(nlifs) * DOORBELL_STRIDE;
        let map = MmapRegion::from_file(FileOffset::new(file.try_clone()?, DOORBELL_OFFSET), len as usize)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(DoorbellPages { file, map, len })
    }

    /// The memfd (for the client's mmap).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The 64-bit doorbell word at `offset` within the doorbell area.
    fn word(&self, offset: u64) -> Option<&AtomicU64> {
        if offset % 8 != 0 || offset + 8 > self.len {
            return None;
        }
        // SAFETY: in bounds of the live mapping `self.map` owns (checked),
        // 8-aligned (mapping is page aligned, offset checked); the client
        // writes these words concurrently, so all access is atomic.
        Some(unsafe { AtomicU64::from_ptr(self.map.as_ptr().add(offset as usize).cast()) })
    }

    /// Read the doorbell of `(slot, offset in page)`.
    pub fn load(&self, slot: u16, offset_in_page: u64) -> u64 {
        self.word(u64::from(slot) * DOORBELL_STRIDE + offset_in_page)
            .map(|w| u64::from_le(w.load(Ordering::Acquire)))
            .unwrap_or(0)
    }

    /// Clear one queue's doorbell word (the queue was created or reset:
    /// an old value must not read as a new doorbell, nor hide one).
    pub fn clear(&self, slot: u16, offset_in_page: u64) {
        if let Some(w) = self.word(u64::from(slot) * DOORBELL_STRIDE + offset_in_page) {
            w.store(0, Ordering::Release);
        }
    }

    /// Clear every doorbell of `slot` (its LIF went away).
    pub fn clear_slot(&self, slot: u16) {
        for off in (0..DOORBELL_STRIDE).step_by(8) {
            if let Some(w) = self.word(u64::from(slot) * DOORBELL_STRIDE + off) {
                w.store(0, Ordering::Release);
            }
        }
    }

    /// Byte access for clients that write doorbells through region writes
    /// instead of mapping them. `offset` is relative to the doorbell area.
    fn access(&self, offset: u64, data: &mut [u8], write: bool) -> bool {
        let Some(end) = offset.checked_add(data.len() as u64) else {
            return false;
        };
        if end > self.len {
            return false;
        }
        // A single aligned word is done atomically, as a doorbell write is.
        if data.len() == 8 && offset % 8 == 0 {
            let w = self.word(offset).expect("checked");
            if write {
                w.store(
                    u64::from_le_bytes(data[..8].try_into().expect("8 bytes")).to_le(),
                    Ordering::Release,
                );
            } else {
                data.copy_from_slice(&w.load(Ordering::Acquire).to_le_bytes());
            }
            return true;
        }
        // SAFETY: [offset, end) is inside the mapping (checked above).
        unsafe {
            let p = self.map.as_ptr().add(offset as usize);
            if write {
                std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len());
            } else {
                std::ptr::copy_nonoverlapping(p, data.as_mut_ptr(), data.len());
            }
        }
        true
    }
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

    fn intr_ctrl_write(&mut self, within: usize, data: &[u8]) -> Bar0Effect {
        // Only aligned 32-bit writes to `mask` and `credits` mean anything.
        let v = within / INTR_CTRL_STRIDE as usize;
        let reg = (within % INTR_CTRL_STRIDE as usize) as u64;
        let Some(vec) = self.vectors.get_mut(v) else {
            self.counters.ignored_writes += 1;
            return Bar0Effect::None;
        };
        if data.len() != 4 {
            self.counters.ignored_writes += 1;
            return Bar0Effect::None;
        }
        let value = u32::from_le_bytes(data.try_into().expect("4 bytes"));
        match reg {
            abi::intr_ctrl::MASK => {
                let was = vec.masked();
                vec.ctrl_mask = value & 1 != 0;
                if was && !vec.masked() {
                    return Bar0Effect::Unmask(v as u16);
                }
            }
            abi::intr_ctrl::CREDITS => {
                vec.credits = vec.credits.saturating_sub(value & !abi::intr_ctrl::CREDITS_UNMASK);
                if value & abi::intr_ctrl::CREDITS_UNMASK != 0 && vec.ctrl_mask {
                    vec.ctrl_mask = false;
                    if !vec.masked() {
                        return Bar0Effect::Unmask(v as u16);
                    }
                }
            }
            _ => self.counters.ignored_writes += 1,
        }
        Bar0Effect::None
    }

    /// Send vector `v`'s interrupt, or mark it pending if masked. Returns
    /// whether a message was sent.
    pub fn fire(&mut self, v: u16) -> bool {
        if !self.config.bus_master() || !self.config.msix_enabled() {
            self.counters.interrupts_blocked += 1;
            return false;
        }
        let function_masked = self.config.msix_function_masked();
        let Some(vec) = self.vectors.get_mut(usize::from(v)) else {
            return false;
        };
        if function_masked || vec.masked() {
            vec.pending = true;
            return false;
        }
        vec.pending = false;
        vec.credits = vec.credits.saturating_add(1);
        if self.lose_interrupts > 0 {
            // Fault injection: raised, never delivered.
            self.lose_interrupts -= 1;
            self.counters.interrupts_lost += 1;
            self.counters.interrupts += 1;
            return true;
        }
        if let Some(fd) = &vec.eventfd {
            // An eventfd counts; EAGAIN (counter full) means it is already
            // signalled, which is all an interrupt needs.
            let _ = (&*fd).write(&1u64.to_ne_bytes());
        }
        self.counters.interrupts += 1;
        true
    }

    /// Deliver a pending interrupt after an unmask.
    pub fn unmasked(&mut self, v: u16) {
        if self.vectors.get(usize::from(v)).is_some_and(|vec| vec.pending) {
            self.fire(v);
        }
    }

    /// After MSI-X enable or function unmask: deliver what is pending.
    /// `n` completions for vector `v` from LIF `lif`'s queue, whose
    /// consumer is doing `consumer` and whose completion ring is now
    /// `fill_pct` full: moderation decides whether to interrupt now, later
    /// (the vector's timer), or not at all. Returns the interrupts raised.
    pub fn completions(&mut self, v: u16, lif: u16, now: Nanos, consumer: ConsumerFlag, fill_pct: u8, n: u32) -> u64 {
        let Some(vec) = self.vectors.get_mut(usize::from(v)) else {
            return 0;
        };
        vec.lif = lif;
        let mut raised = 0;
        for _ in 0..n {
            let a = self.vectors[usize::from(v)]
                .moderator
                .completion(now, consumer, fill_pct);
            raised += self.act(v, a, now, consumer);
        }
        raised
    }

    /// Timers due at `now`, and pending interrupts whose consumer changed
    /// since their timer was set (arming shortens an overflow interval to
    /// the latency interval; polling cancels). Uses and clears the
    /// vectors' `seen` scratch. Returns (LIF, interrupts) per interrupt.
    pub fn expire(&mut self, now: Nanos, raised: &mut Vec<(u16, u64)>) {
        for v in 0..self.vectors.len() {
            let vec = &mut self.vectors[v];
            let consumer = vec.seen.take().unwrap_or(ConsumerFlag::Idle);
            let Some(t) = vec.timer else { continue };
            if t > now && consumer == vec.timer_consumer {
                continue;
            }
            let a = vec.moderator.poll(now, consumer);
            let lif = vec.lif;
            let n = self.act(v as u16, a, now, consumer);
            if n > 0 {
                raised.push((lif, n));
            }
        }
    }

    /// Carry out a moderation decision for vector `v`.
    fn act(&mut self, v: u16, a: Action, now: Nanos, consumer: ConsumerFlag) -> u64 {
        match a {
            Action::Fire => {
                let vec = &mut self.vectors[usize::from(v)];
                vec.moderator.fired(now);
                vec.timer = None;
                u64::from(self.fire(v))
            }
            Action::At(t) => {
                let vec = &mut self.vectors[usize::from(v)];
                vec.timer = Some(t);
                vec.timer_consumer = consumer;
                0
            }
            Action::None => {
                self.vectors[usize::from(v)].timer = None;
                0
            }
        }
    }

    /// The soonest moderation timer of this function's vectors.
    pub fn next_timer(&self) -> Option<Nanos> {
        self.vectors.iter().filter_map(|v| v.timer).min()
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

fn intr_ctrl(vec: &Vector) -> IntrCtrl {
    let m = &vec.moderation;
    IntrCtrl {
        latency_interval_us: m.latency_interval_us,
        overflow_interval_us: m.overflow_interval_us,
        frame_threshold: m.frame_threshold,
        mode: u32::from(m.mode).into(),
        mask: u32::from(vec.ctrl_mask).into(),
        credits: vec.credits.into(),
        pending: u32::from(vec.pending).into(),
        current_interval_us: ((vec.moderator.interval(ConsumerFlag::Armed) / 1_000).min(u64::from(u32::MAX)) as u32)
            .into(),
    }
}
