//! Bringing one PCI function up, step by step as `docs/device-abi.md`
//! ("Bring-up, step by step") says, and the admin commands after that.
//!
//! [`Nic::open`] takes any [`Backend`] and returns a function with its
//! admin queue running, its doorbell pages mapped and its MSI-X vectors on
//! eventfds; LIFs and queues are created on it afterwards.

use crate::backend::{Backend, BackendError, BarMapping, ConfigExt, IrqKind};
use crate::mem::{DmaMemory, MemError, MemKind};
use crate::pool::Pool;
use crate::queue::{attach, CqReader, DoorbellWord, QueueError, QueueParts, Recovery, RxQueue, TxQueue};
use dataplane::abi::{
    self, devcmd, queue_flags, AbiError, AdminCmd, AdminCommand, AdminComp, AdminStatus, CmdHeader, DevCommand,
    DeviceEvent, DeviceIdentity, DeviceInfo, DmaRef, Doorbell, EventsRef, FromBytes, FunctionConfig, FunctionConfigRef,
    IntoBytes, LifCreate, LifInfo, LifStats, MeterConfig, MeterRef, MeterResource, Moderation, ModerationRef,
    QueueCreate, QueueRef, QueueType, TableEntry, DEVCMD_OFFSET, DOORBELL_OFFSET, DOORBELL_STRIDE, IDENTITY_OFFSET,
    LIF_NONE, PCI_DEVICE_ID_PF, PCI_DEVICE_ID_VF, PCI_VENDOR_ID, QUEUE_STATE_ALIGN, QUEUE_STATE_SIZE,
};
use dataplane::packet::Mac;
use dataplane::ring::{Producer, RingElem, RingError, SharedQueueState};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Why a function could not be brought up or a command failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("{0}")]
    Backend(#[from] BackendError),
    #[error("{0}")]
    Mem(#[from] MemError),
    #[error("{device}: vendor:device {vendor:04x}:{id:04x} is not a fairnic function (expected {PCI_VENDOR_ID:04x}:{PCI_DEVICE_ID_PF:04x} or {PCI_VENDOR_ID:04x}:{PCI_DEVICE_ID_VF:04x}; pass --pci-id VENDOR:DEVICE for other hardware)")]
    UnknownDevice { device: String, vendor: u16, id: u16 },
    #[error("{device}: the device's ABI does not match this driver: {source} (update nicdrv or the device firmware)")]
    Abi { device: String, source: AbiError },
    #[error("{device}: the device stopped answering: {what} not done after {after:?}")]
    NotAnswering {
        device: String,
        what: String,
        after: Duration,
    },
    #[error("{device}: {command} failed: the device said {status:?}")]
    Admin {
        device: String,
        command: &'static str,
        status: AdminStatus,
    },
    #[error("{device}: {what}: {source}")]
    Ring {
        device: String,
        what: &'static str,
        source: RingError,
    },
    #[error("{device}: {what}")]
    Other { device: String, what: String },
    /// The device answered a command with a value the driver cannot use
    /// (an index, a count, a slot out of range): a buggy or hostile
    /// device. The value was not used; nothing panicked.
    #[error("{device} ({function}): {command} answered {what} {value}, outside the allowed {allowed}; a buggy or hostile device: nicdrv did not use the value (reset the function, or update its firmware)")]
    DeviceLied {
        device: String,
        /// `PF` or `VF n`.
        function: String,
        /// The admin command that answered.
        command: &'static str,
        /// The field, in words (`queue index`, `doorbell slot`, ...).
        what: &'static str,
        value: u64,
        /// The range the driver accepts, and where it comes from.
        allowed: String,
    },
}

/// `PF` or `VF n` for a function number (0 the PF, `n + 1` VF `n`).
pub fn function_name(function_id: u16) -> String {
    match function_id {
        0 => "PF".into(),
        n => format!("VF {}", n - 1),
    }
}

/// Read a `T` from bytes the driver sized for it.
fn read_struct<T: FromBytes>(device: &str, what: &str, bytes: &[u8]) -> Result<T, DriverError> {
    T::read_from_bytes(bytes).map_err(|_| DriverError::Other {
        device: device.into(),
        what: format!("{what}: {} bytes, expected {}", bytes.len(), std::mem::size_of::<T>()),
    })
}

/// How to bring a function up.
#[derive(Debug, Clone)]
pub struct NicConfig {
    /// DMA memory for this function's rings and admin buffers.
    pub mem_bytes: u64,
    pub mem_kind: MemKind,
    /// IOVA the memory appears at.
    pub iova: u64,
    /// How long to wait for the mailbox and admin commands.
    pub timeout: Duration,
    /// Vendor:device pairs accepted besides fairnic's own.
    pub extra_ids: Vec<(u16, u16)>,
    /// log2 of the admin queue's length.
    pub admin_order: u8,
}

impl Default for NicConfig {
    fn default() -> Self {
        NicConfig {
            mem_bytes: 8 << 20,
            mem_kind: MemKind::Pages,
            iova: 0x10_0000_0000,
            timeout: Duration::from_secs(2),
            extra_ids: Vec::new(),
            admin_order: 5,
        }
    }
}

/// A LIF this driver created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lif {
    pub id: u16,
    pub slot: u16,
    pub mac: Mac,
}

struct AdminQueue {
    ring: Producer<'static, AdminCmd>,
    cq: CqReader,
    state: std::ptr::NonNull<SharedQueueState>,
    tag: u16,
}

/// One PCI function, up.
pub struct Nic {
    backend: Box<dyn Backend>,
    device: String,
    pub identity: DeviceIdentity,
    pub info: DeviceInfo,
    mem: Arc<DmaMemory>,
    doorbells: Arc<BarMapping>,
    admin: AdminQueue,
    scratch: abi::DmaRef,
    eventfds: Vec<Arc<EventFd>>,
    mapped: Vec<Arc<DmaMemory>>,
    timeout: Duration,
}

impl std::fmt::Debug for Nic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nic")
            .field("device", &self.device)
            .field("function", &self.identity.function_id)
            .finish()
    }
}

// SAFETY: the admin queue's pointers refer to `mem`, which the Nic keeps;
// a Nic is used by one thread at a time (callers share it behind a Mutex).
unsafe impl Send for Nic {}

/// Scratch space for admin results read by DMA.
const SCRATCH: u64 = 64 * 1024;

impl Nic {
    /// Bring the function behind `backend` up.
    pub fn open(mut backend: Box<dyn Backend>, cfg: &NicConfig) -> Result<Nic, DriverError> {
        let device = backend.describe();
        // 1. Identify the function and enable memory space and bus
        //    mastering (nothing is DMA'd or signalled without the latter).
        let vendor = backend.config_read16(0)?;
        let id = backend.config_read16(2)?;
        let ours = vendor == PCI_VENDOR_ID && (id == PCI_DEVICE_ID_PF || id == PCI_DEVICE_ID_VF);
        if !ours && !cfg.extra_ids.contains(&(vendor, id)) {
            return Err(DriverError::UnknownDevice { device, vendor, id });
        }
        let cmd = backend.config_read16(4)?;
        backend.config_write16(4, cmd | 0b110)?;

        // 2. The identity page: signature and ABI version.
        let mut page = [0u8; 128];
        backend.bar_read(0, IDENTITY_OFFSET, &mut page)?;
        let identity = abi::Identity::parse(&page).map_err(|source| DriverError::Abi {
            device: device.clone(),
            source,
        })?;

        let mem = Arc::new(DmaMemory::new(cfg.mem_bytes, cfg.iova, cfg.mem_kind)?);
        backend.dma_map(&mem)?;

        // 3. Reset through the mailbox; 4. Identify.
        let mut mailbox = Mailbox {
            backend: backend.as_mut(),
            device: &device,
            timeout: cfg.timeout,
            tag: 0,
        };
        mailbox.run(DevCommand::Reset, "mailbox Reset")?;
        mailbox.run(DevCommand::Identify, "mailbox Identify")?;
        let mut data = [0u8; 128];
        backend.bar_read(0, DEVCMD_OFFSET + devcmd::DATA, &mut data)?;
        let info: DeviceInfo = read_struct(&device, "mailbox Identify", &data)?;

        // 5. The admin queue.
        let admin = admin_queue(backend.as_mut(), &device, &mem, cfg.admin_order, cfg.timeout)?;

        // 6. Doorbell pages.
        let db_len = u64::from(identity.nlifs) * DOORBELL_STRIDE;
        let doorbells = Arc::new(backend.map_bar(0, DOORBELL_OFFSET, db_len)?);

        // 7. MSI-X vectors on eventfds.
        let nvec = backend.irq_count(IrqKind::MsiX)?.min(u32::from(identity.nintrs));
        let eventfds: Vec<Arc<EventFd>> = (0..nvec)
            .map(|_| EventFd::new(EFD_NONBLOCK).map(Arc::new))
            .collect::<Result<_, _>>()
            .map_err(|e| DriverError::Other {
                device: device.clone(),
                what: format!("eventfd: {e}"),
            })?;
        if !eventfds.is_empty() {
            let refs: Vec<&EventFd> = eventfds.iter().map(|e| e.as_ref()).collect();
            backend.enable_irqs(IrqKind::MsiX, &refs)?;
        }

        let scratch = mem.alloc(SCRATCH, 4096)?;
        Ok(Nic {
            backend,
            device,
            identity,
            info,
            mem: mem.clone(),
            doorbells,
            admin,
            scratch: DmaRef::new(scratch.iova, SCRATCH as u32),
            eventfds,
            mapped: vec![mem],
            timeout: cfg.timeout,
        })
    }

    /// What the function is (for messages).
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Whether this is the PF.
    pub fn is_pf(&self) -> bool {
        self.identity.function_kind == abi::FunctionKind::Pf
    }

    /// Let this function DMA to and from `mem` too (a packet pool shared
    /// by several functions).
    pub fn map_memory(&mut self, mem: &Arc<DmaMemory>) -> Result<(), DriverError> {
        if self.mapped.iter().any(|m| Arc::ptr_eq(m, mem)) {
            return Ok(());
        }
        self.backend.dma_map(mem)?;
        self.mapped.push(mem.clone());
        Ok(())
    }

    /// The eventfd of MSI-X vector `v`.
    pub fn eventfd(&self, v: u16) -> Option<Arc<EventFd>> {
        self.eventfds.get(usize::from(v)).cloned()
    }

    /// Vectors available.
    pub fn vectors(&self) -> u16 {
        self.eventfds.len() as u16
    }

    /// Run an admin command; any status but Ok is an error.
    pub fn admin(&mut self, cmd: AdminCommand, lif: u16) -> Result<AdminComp, DriverError> {
        let name = cmd.opcode().name();
        let (status, comp) = self.admin_status(cmd, lif)?;
        if status != AdminStatus::Ok {
            return Err(DriverError::Admin {
                device: self.device.clone(),
                command: name,
                status,
            });
        }
        Ok(comp)
    }

    /// Run an admin command and return its status, whatever it is.
    pub fn admin_status(&mut self, cmd: AdminCommand, lif: u16) -> Result<(AdminStatus, AdminComp), DriverError> {
        let a = &mut self.admin;
        a.tag = a.tag.wrapping_add(1);
        let tag = a.tag;
        let raw = cmd.encode(CmdHeader { tag, lif });
        if !a.ring.fill_bulk(&[raw]) {
            a.ring.reclaim().map_err(|source| DriverError::Ring {
                device: self.device.clone(),
                what: "admin queue",
                source,
            })?;
            if !a.ring.fill_bulk(&[raw]) {
                return Err(DriverError::Other {
                    device: self.device.clone(),
                    what: "admin queue full".into(),
                });
            }
        }
        let tail = a.ring.indices().outgoing_tail;
        let db = Doorbell {
            qtype: QueueType::Admin,
            qindex: 0,
            outgoing_tail: tail,
        }
        .encode();
        self.backend
            .bar_write(0, DEVCMD_OFFSET + devcmd::ADMIN_DOORBELL, &db.to_le_bytes())?;
        let t0 = Instant::now();
        loop {
            let a = &mut self.admin;
            if let Some(e) = a.cq.next() {
                // SAFETY: the state block is in `mem`, kept by the Nic.
                a.cq.publish(unsafe { a.state.as_ref() });
                let (status, comp) = AdminComp::parse(&e).map_err(|e| DriverError::Other {
                    device: self.device.clone(),
                    what: format!("malformed admin completion: {e}"),
                })?;
                if comp.tag.get() != tag {
                    return Err(DriverError::Other {
                        device: self.device.clone(),
                        what: format!("admin completion for tag {} while waiting for {tag}", comp.tag.get()),
                    });
                }
                return Ok((status, comp));
            }
            if t0.elapsed() > self.timeout {
                return Err(DriverError::NotAnswering {
                    device: self.device.clone(),
                    what: format!("admin command {}", cmd.opcode().name()),
                    after: self.timeout,
                });
            }
            std::thread::yield_now();
        }
    }

    /// The first `len` bytes of the scratch buffer, if it has them.
    fn scratch_ptr(&self, len: usize) -> Result<std::ptr::NonNull<u8>, DriverError> {
        u64::try_from(len)
            .ok()
            .filter(|&l| l <= SCRATCH)
            .and_then(|l| self.mem.ptr(self.scratch.addr.get(), l))
            .ok_or_else(|| DriverError::Other {
                device: self.device.clone(),
                what: format!("{len} bytes do not fit the {SCRATCH}-byte admin scratch buffer"),
            })
    }

    fn write_scratch(&self, bytes: &[u8]) -> Result<(), DriverError> {
        let p = self.scratch_ptr(bytes.len())?;
        // SAFETY: `p` has `bytes.len()` bytes of the scratch buffer (checked
        // by scratch_ptr against SCRATCH and the mapping); the buffer is ours
        // and no command using it is outstanding (admin commands run one at
        // a time).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.as_ptr(), bytes.len()) };
        Ok(())
    }

    fn read_scratch(&self, len: usize) -> Result<Vec<u8>, DriverError> {
        let p = self.scratch_ptr(len)?;
        let mut v = vec![0u8; len];
        // SAFETY: `p` has `len` bytes of the scratch buffer (checked by
        // scratch_ptr); the buffer is ours, and the device wrote it before
        // completing the command we waited for.
        unsafe { std::ptr::copy_nonoverlapping(p.as_ptr(), v.as_mut_ptr(), len) };
        Ok(v)
    }

    /// The error for a value the device answered that the driver cannot
    /// use.
    fn lied(&self, command: &'static str, what: &'static str, value: impl Into<u64>, allowed: String) -> DriverError {
        DriverError::DeviceLied {
            device: self.device.clone(),
            function: function_name(self.identity.function_id),
            command,
            what,
            value: value.into(),
            allowed,
        }
    }

    /// `value` as a u16 if it is below `limit` (`from` says where the
    /// limit comes from), else the error naming it.
    fn below(
        &self,
        command: &'static str,
        what: &'static str,
        value: impl Into<u64>,
        limit: u16,
        from: &str,
    ) -> Result<u16, DriverError> {
        let value = value.into();
        u16::try_from(value)
            .ok()
            .filter(|&v| v < limit)
            .ok_or_else(|| self.lied(command, what, value, format!("0..{limit} ({from})")))
    }

    /// Create a LIF (MAC `None`: the device assigns one).
    pub fn create_lif(&mut self, name: &str, mac: Option<Mac>) -> Result<Lif, DriverError> {
        let c = self.admin(
            AdminCommand::LifCreate(LifCreate {
                name: abi::pad_ascii(name),
                mac: mac.unwrap_or([0; 6]),
                ..Default::default()
            }),
            LIF_NONE,
        )?;
        // The LIF number goes into every later command's header, and the
        // slot picks the doorbell page: both are checked before use (cut
        // to 16 bits they would name another LIF, or a page past the
        // mapping).
        let id = self.below(
            "LifCreate",
            "LIF number",
            c.value.get(),
            self.info.max_lifs.get(),
            "DeviceInfo.max_lifs",
        )?;
        let slot = self.below(
            "LifCreate",
            "doorbell slot",
            c.data.get(),
            self.identity.nlifs,
            "identity.nlifs, the doorbell pages mapped",
        )?;
        let info = self.lif_list()?.into_iter().find(|l| l.lif.get() == id);
        Ok(Lif {
            id,
            slot,
            mac: info.map(|i| i.mac).unwrap_or_else(|| mac.unwrap_or(abi::lif_mac(id))),
        })
    }

    /// Every LIF this function may see (PF: all).
    pub fn lif_list(&mut self) -> Result<Vec<LifInfo>, DriverError> {
        let c = self.admin(AdminCommand::LifList(self.scratch), LIF_NONE)?;
        // The count says how much of the buffer to read: no more entries
        // than fit it.
        let entry = std::mem::size_of::<LifInfo>();
        let room = SCRATCH / entry as u64;
        let n = c.data.get();
        if n > room {
            return Err(self.lied(
                "LifList",
                "entry count",
                n,
                format!("0..={room} (the entries that fit the {SCRATCH}-byte buffer)"),
            ));
        }
        let bytes = self.read_scratch(n as usize * entry)?;
        Ok(bytes
            .chunks_exact(std::mem::size_of::<LifInfo>())
            .filter_map(|c| LifInfo::read_from_bytes(c).ok())
            .collect())
    }

    /// The counters of this function's LIFs that the device destroyed (by
    /// `LifDestroy`, or a reset that took them with it), summed.
    pub fn retired_stats(&mut self) -> Result<LifStats, DriverError> {
        self.stats(LIF_NONE)
    }

    /// A LIF's device counters.
    pub fn stats(&mut self, lif: u16) -> Result<LifStats, DriverError> {
        self.admin(AdminCommand::StatsGet(self.scratch), lif)?;
        let b = self.read_scratch(std::mem::size_of::<LifStats>())?;
        let st: LifStats = read_struct(&self.device, "StatsGet", &b)?;
        if st.lif.get() != lif {
            return Err(self.lied("StatsGet", "LIF", st.lif.get(), format!("{lif} (the LIF asked for)")));
        }
        Ok(st)
    }

    /// The uplink's counters (PF only): frames from the wire and where
    /// those that no LIF took ended, frames sent to the wire.
    pub fn port_stats(&mut self) -> Result<LifStats, DriverError> {
        self.admin(AdminCommand::PortStatsGet(self.scratch), LIF_NONE)?;
        let b = self.read_scratch(std::mem::size_of::<LifStats>())?;
        read_struct(&self.device, "PortStatsGet", &b)
    }

    /// The device's events from sequence number `from` on (PF only), and
    /// the sequence number to ask from next. A gap in the numbers means the
    /// device's log overflowed meanwhile.
    pub fn events(&mut self, from: u64) -> Result<(Vec<DeviceEvent>, u64), DriverError> {
        let c = self.admin(
            AdminCommand::EventsGet(EventsRef {
                from_seq: from.into(),
                dma: self.scratch,
            }),
            LIF_NONE,
        )?;
        let size = std::mem::size_of::<DeviceEvent>();
        let room = SCRATCH / size as u64;
        let n = u64::from(c.value.get());
        if n > room {
            return Err(self.lied(
                "EventsGet",
                "event count",
                n,
                format!("0..={room} (the events that fit the {SCRATCH}-byte buffer)"),
            ));
        }
        let next = c.data.get();
        let bytes = self.read_scratch(n as usize * size)?;
        let events: Vec<DeviceEvent> = bytes
            .chunks_exact(size)
            .filter_map(|c| DeviceEvent::read_from_bytes(c).ok())
            .collect();
        if events.iter().any(|e| e.seq.get() < from || e.seq.get() >= next) {
            return Err(self.lied(
                "EventsGet",
                "event sequence number",
                events.first().map_or(0, |e| e.seq.get()),
                format!("{from}..{next} (the range asked for and answered)"),
            ));
        }
        Ok((events, next))
    }

    /// Set a function's LIF slot's MAC, spoof check and trust (PF only).
    pub fn set_function_config(&mut self, c: &FunctionConfig) -> Result<(), DriverError> {
        self.admin(AdminCommand::FunctionConfigSet(*c), LIF_NONE)?;
        Ok(())
    }

    /// A function's LIF slot's settings (PF only).
    pub fn function_config(&mut self, function: u16, slot: u16) -> Result<FunctionConfig, DriverError> {
        let r = FunctionConfigRef {
            function: function.into(),
            slot: slot.into(),
            dma: DmaRef::new(self.scratch.addr.get(), 16),
            ..Default::default()
        };
        self.admin(AdminCommand::FunctionConfigGet(r), LIF_NONE)?;
        let c: FunctionConfig = read_struct(&self.device, "FunctionConfigGet", &self.read_scratch(16)?)?;
        if (c.function.get(), c.slot.get()) != (function, slot) {
            return Err(self.lied(
                "FunctionConfigGet",
                "function and slot",
                u64::from(c.function.get()) << 16 | u64::from(c.slot.get()),
                format!("function {function} slot {slot} (asked for)"),
            ));
        }
        Ok(c)
    }

    /// Set a LIF's meter (PF only); returns what the device applied.
    pub fn set_meter(&mut self, lif: u16, m: MeterConfig) -> Result<MeterConfig, DriverError> {
        self.admin(AdminCommand::MeterSet(m), lif)?;
        self.meter(lif, m.resource())
    }

    /// A LIF's applied meter for `resource`.
    pub fn meter(&mut self, lif: u16, resource: MeterResource) -> Result<MeterConfig, DriverError> {
        let r = MeterRef {
            resource: resource.raw(),
            dma: DmaRef::new(self.scratch.addr.get(), 48),
            ..Default::default()
        };
        self.admin(AdminCommand::MeterGet(r), lif)?;
        let m: MeterConfig = read_struct(&self.device, "MeterGet", &self.read_scratch(48)?)?;
        if m.resource != resource.raw() {
            return Err(self.lied(
                "MeterGet",
                "meter resource",
                m.resource,
                format!("{} (the resource asked for)", resource.raw()),
            ));
        }
        if abi::MeterMode::from_raw(m.mode).is_err() || abi::MeterPolicy::from_raw(m.policy).is_err() {
            return Err(self.lied(
                "MeterGet",
                "meter mode or policy",
                u64::from(m.mode) << 8 | u64::from(m.policy),
                "the modes and policies of the ABI (mode << 8 | policy)".into(),
            ));
        }
        Ok(m)
    }

    /// Load a pipeline program image into the device (PF only), in
    /// chunks through the scratch buffer; the device activates it with the
    /// last chunk, or refuses it whole (then the running pipeline stays).
    pub fn load_pipeline(&mut self, image: &[u8]) -> Result<(), DriverError> {
        let total = u32::try_from(image.len()).map_err(|_| DriverError::Other {
            device: self.device().to_string(),
            what: format!("pipeline image of {} bytes", image.len()),
        })?;
        let step = SCRATCH as usize;
        let n = image.len().div_ceil(step).max(1);
        for (i, chunk) in image.chunks(step).enumerate() {
            self.write_scratch(chunk)?;
            let mut flags = 0;
            if i == 0 {
                flags |= abi::pipeline_flags::FIRST;
            }
            if i + 1 == n {
                flags |= abi::pipeline_flags::LAST;
            }
            let c = abi::PipelineChunk {
                dma: DmaRef::new(self.scratch.addr.get(), chunk.len() as u32),
                offset: ((i * step) as u32).into(),
                total_len: total.into(),
                flags,
                rsvd: [0; 7],
            };
            self.admin(AdminCommand::PipelineLoad(c), LIF_NONE)?;
        }
        Ok(())
    }

    /// Whether the device runs a loaded pipeline program.
    pub fn pipeline_active(&mut self) -> Result<bool, DriverError> {
        Ok(self.device_info()?.pipeline_active != 0)
    }

    /// The device's information, read again through the admin queue.
    pub fn device_info(&mut self) -> Result<DeviceInfo, DriverError> {
        let r = DmaRef::new(self.scratch.addr.get(), 128);
        self.admin(AdminCommand::Identify(r), LIF_NONE)?;
        let info: DeviceInfo = read_struct(&self.device, "Identify", &self.read_scratch(128)?)?;
        self.info = info;
        Ok(info)
    }

    /// Add a pipeline table entry (PF only).
    pub fn table_add(&mut self, e: &TableEntry) -> Result<(), DriverError> {
        self.write_scratch(e.as_bytes())?;
        let r = DmaRef::new(self.scratch.addr.get(), std::mem::size_of::<TableEntry>() as u32);
        self.admin(AdminCommand::TableEntryAdd(r), LIF_NONE).map(|_| ())
    }

    /// Delete a pipeline table entry (PF only; key and table as added).
    pub fn table_del(&mut self, e: &TableEntry) -> Result<(), DriverError> {
        self.write_scratch(e.as_bytes())?;
        let r = DmaRef::new(self.scratch.addr.get(), std::mem::size_of::<TableEntry>() as u32);
        self.admin(AdminCommand::TableEntryDel(r), LIF_NONE).map(|_| ())
    }

    /// Set a vector's moderation; returns what the device applied.
    pub fn set_moderation(&mut self, m: Moderation) -> Result<Moderation, DriverError> {
        self.admin(AdminCommand::ModerationSet(m), LIF_NONE)?;
        self.moderation(m.vector.get())
    }

    /// A vector's applied moderation.
    pub fn moderation(&mut self, vector: u16) -> Result<Moderation, DriverError> {
        let r = ModerationRef {
            vector: vector.into(),
            dma: DmaRef::new(self.scratch.addr.get(), 16),
            ..Default::default()
        };
        self.admin(AdminCommand::ModerationGet(r), LIF_NONE)?;
        let m: Moderation = read_struct(&self.device, "ModerationGet", &self.read_scratch(16)?)?;
        if m.vector.get() != vector {
            return Err(self.lied(
                "ModerationGet",
                "vector",
                m.vector.get(),
                format!("{vector} (the vector asked for)"),
            ));
        }
        if abi::ModerationMode::from_raw(m.mode).is_err() {
            return Err(self.lied(
                "ModerationGet",
                "moderation mode",
                m.mode,
                "the modes of the ABI".into(),
            ));
        }
        Ok(m)
    }

    fn queue_parts(
        &mut self,
        lif: &Lif,
        qtype: QueueType,
        order: u8,
        vector: Option<u16>,
    ) -> Result<(QueueParts, QMem), DriverError> {
        if let Some(v) = vector {
            if usize::from(v) >= self.eventfds.len() {
                return Err(DriverError::Other {
                    device: self.device.clone(),
                    what: format!("vector {v}: the function has {}", self.eventfds.len()),
                });
            }
        }
        let (ring, cq, state) = queue_memory(&self.mem, order, 16)?;
        let q = QueueCreate {
            qtype: qtype.raw(),
            ring_order: order,
            flags: if vector.is_some() { queue_flags::INTR } else { 0 },
            intr_vector: vector.unwrap_or(0).into(),
            ring_base: ring.iova.into(),
            cq_base: cq.iova.into(),
            state_base: state.iova.into(),
            ..Default::default()
        };
        let c = self.admin(AdminCommand::QueueCreate(q), lif.id)?;
        // The index picks the doorbell word: checked before use (the
        // identity page's nqueues is at most 256, the doorbell slots a
        // page has per type).
        let qindex = self.below(
            "QueueCreate",
            "queue index",
            c.value.get(),
            self.identity.nqueues,
            "identity.nqueues",
        )?;
        let doorbell = DoorbellWord::new(self.doorbells.clone(), lif.slot, qtype, qindex).ok_or_else(|| {
            DriverError::Other {
                device: self.device.clone(),
                what: format!(
                    "LIF {} (doorbell slot {}) {qtype:?} queue {qindex} has no doorbell in the {}-byte doorbell mapping (identity.nlifs {})",
                    lif.id,
                    lif.slot,
                    self.doorbells.len(),
                    self.identity.nlifs
                ),
            }
        })?;
        let parts = QueueParts {
            cq: CqReader::new(cq.ptr, order),
            state: state.ptr.cast(),
            slots: ring.ptr,
            doorbell,
            lif: lif.id,
            qindex,
            qtype,
            vector,
            pool: None,
            _mem: self.mem.clone(),
        };
        Ok((parts, QMem { ring, state }))
    }

    /// Whether the function still answers its admin queue (a Nop). A
    /// function that reset by itself has no admin queue: this times out
    /// (`NotAnswering`); a device that vanished fails at once (`Backend`).
    pub fn check_alive(&mut self) -> Result<(), DriverError> {
        self.admin(AdminCommand::Nop, LIF_NONE).map(|_| ())
    }

    /// After the function reset by itself: reset it through the mailbox,
    /// identify it again and give it a new admin queue. Its LIFs and
    /// queues are gone: the caller abandons the old queues
    /// ([`TxQueue::abandon`], [`RxQueue::release_buffers`]), counting what
    /// they held as dropped, and creates new ones. DMA mappings, doorbell
    /// pages and interrupt eventfds are the function's and stay.
    pub fn recover_from_reset(&mut self) -> Result<(), DriverError> {
        let mut mailbox = Mailbox {
            backend: self.backend.as_mut(),
            device: &self.device,
            timeout: self.timeout,
            tag: 0,
        };
        mailbox.run(DevCommand::Reset, "mailbox Reset")?;
        mailbox.run(DevCommand::Identify, "mailbox Identify")?;
        let order = self.admin.cq.order;
        self.admin = admin_queue(self.backend.as_mut(), &self.device, &self.mem, order, self.timeout)?;
        self.device_info()?;
        Ok(())
    }

    /// Restart a TX queue the device stopped (an error completion, or a
    /// watchdog's verdict): what it sent is reclaimed, what it never sent
    /// goes back to `pool` and is reported as dropped, and the queue
    /// restarts empty through `QueueReset`, ready for `tx_burst`.
    pub fn reset_txq(&mut self, q: &mut TxQueue, pool: &mut Pool) -> Result<Recovery, DriverError> {
        let status = match q.error() {
            Some(QueueError::Device { status, .. }) => Some(*status),
            _ => None,
        };
        let (completed, dropped, start) = q.drain_for_reset(pool);
        let ring = self.restart_queue(&q.parts, start, "TX queue after reset")?;
        q.restarted(ring, dropped);
        Ok(Recovery {
            status,
            completed,
            dropped,
        })
    }

    /// Restart an RX queue the device stopped (a malformed buffer, a DMA
    /// fault): its posted buffers go back to `pool`, it restarts empty
    /// through `QueueReset`, and it is refilled. The frame it could not
    /// deliver is the device's `DropQueueError`.
    pub fn reset_rxq(&mut self, q: &mut RxQueue, pool: &mut Pool) -> Result<(), DriverError> {
        let start = q.drain_for_reset(pool);
        let ring = self.restart_queue(&q.parts, start, "RX queue after reset")?;
        q.restarted(ring);
        q.refill(pool).map_err(|e| DriverError::Other {
            device: self.device.clone(),
            what: format!("refilling the reset RX queue: {e}"),
        })?;
        Ok(())
    }

    /// `QueueReset` the queue behind `parts` at `start`, and attach a
    /// producer to its re-initialised ring.
    fn restart_queue<T: RingElem>(
        &mut self,
        parts: &QueueParts,
        start: u32,
        what: &'static str,
    ) -> Result<Producer<'static, T>, DriverError> {
        let r = QueueRef {
            qtype: parts.qtype.raw(),
            qindex: parts.qindex.into(),
            start_index: start.into(),
            ..Default::default()
        };
        self.admin(AdminCommand::QueueReset(r), parts.lif)?;
        let (state, slots, order) = parts.memory();
        // SAFETY: the queue's own ring and state block, kept mapped by the
        // queue (`parts._mem`); the device re-initialised the block for
        // `start`.
        unsafe { attach(state, slots, order) }.map_err(|source| DriverError::Ring {
            device: self.device.clone(),
            what,
            source,
        })
    }

    /// Create a TX queue of `1 << order` descriptors on `lif`.
    pub fn create_txq(&mut self, lif: &Lif, order: u8, vector: Option<u16>) -> Result<TxQueue, DriverError> {
        let (parts, m) = self.queue_parts(lif, QueueType::Tx, order, vector)?;
        // SAFETY: the ring and state block are in `self.mem`, which the
        // queue keeps (`parts._mem`); the device initialised the block.
        let ring = unsafe { attach(m.state.ptr, m.ring.ptr, order) }.map_err(|source| DriverError::Ring {
            device: self.device.clone(),
            what: "TX queue",
            source,
        })?;
        Ok(TxQueue::new(ring, parts))
    }

    /// Create an RX queue of `1 << order` descriptors on `lif` (empty:
    /// post buffers with [`RxQueue::refill`]).
    pub fn create_rxq(&mut self, lif: &Lif, order: u8, vector: Option<u16>) -> Result<RxQueue, DriverError> {
        let (parts, m) = self.queue_parts(lif, QueueType::Rx, order, vector)?;
        // SAFETY: as in create_txq.
        let ring = unsafe { attach(m.state.ptr, m.ring.ptr, order) }.map_err(|source| DriverError::Ring {
            device: self.device.clone(),
            what: "RX queue",
            source,
        })?;
        Ok(RxQueue::new(ring, parts))
    }

    /// Destroy a queue on the device (its buffers are the caller's again).
    pub fn destroy_queue(&mut self, lif: u16, qtype: QueueType, qindex: u16) -> Result<(), DriverError> {
        let r = QueueRef {
            qtype: qtype.raw(),
            qindex: qindex.into(),
            ..Default::default()
        };
        self.admin(AdminCommand::QueueDestroy(r), lif).map(|_| ())
    }

    /// Reset the function and take back its DMA mappings.
    pub fn close(mut self) -> Result<(), DriverError> {
        let _ = Mailbox {
            backend: self.backend.as_mut(),
            device: &self.device,
            timeout: self.timeout,
            tag: 3,
        }
        .run(DevCommand::Reset, "mailbox Reset");
        let _ = self.backend.disable_irqs(IrqKind::MsiX);
        for m in std::mem::take(&mut self.mapped) {
            self.backend.dma_unmap(&m)?;
        }
        Ok(())
    }
}

struct QMem {
    ring: crate::mem::DmaBuf,
    state: crate::mem::DmaBuf,
}

/// Ring (entries of `entry` bytes), completion ring, and state block.
fn queue_memory(
    mem: &DmaMemory,
    order: u8,
    entry: u64,
) -> Result<(crate::mem::DmaBuf, crate::mem::DmaBuf, crate::mem::DmaBuf), MemError> {
    let size = 1u64 << order;
    let ring = mem.alloc(size * entry, 64)?;
    let cq = mem.alloc(size * 16, 64)?;
    let state = mem.alloc(QUEUE_STATE_SIZE as u64, QUEUE_STATE_ALIGN)?;
    Ok((ring, cq, state))
}

/// The device-command mailbox, used before the admin queue exists.
struct Mailbox<'a> {
    backend: &'a mut dyn Backend,
    device: &'a str,
    timeout: Duration,
    tag: u16,
}

impl Mailbox<'_> {
    fn run(&mut self, cmd: DevCommand, what: &'static str) -> Result<AdminComp, DriverError> {
        self.tag += 1;
        let raw = cmd.encode(CmdHeader {
            tag: self.tag,
            lif: LIF_NONE,
        });
        let b = &mut *self.backend;
        b.bar_write(0, DEVCMD_OFFSET + devcmd::CMD, raw.as_bytes())?;
        b.bar_write(0, DEVCMD_OFFSET + devcmd::DONE, &0u32.to_le_bytes())?;
        b.bar_write(0, DEVCMD_OFFSET + devcmd::DOORBELL, &1u32.to_le_bytes())?;
        let t0 = Instant::now();
        loop {
            let mut done = [0u8; 4];
            b.bar_read(0, DEVCMD_OFFSET + devcmd::DONE, &mut done)?;
            if u32::from_le_bytes(done) == 1 {
                break;
            }
            if t0.elapsed() > self.timeout {
                return Err(DriverError::NotAnswering {
                    device: self.device.into(),
                    what: what.into(),
                    after: self.timeout,
                });
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        let mut comp = [0u8; 16];
        b.bar_read(0, DEVCMD_OFFSET + devcmd::COMP, &mut comp)?;
        let (status, c) = AdminComp::parse(&comp).map_err(|e| DriverError::Other {
            device: self.device.into(),
            what: format!("{what}: malformed completion: {e}"),
        })?;
        if status != AdminStatus::Ok {
            return Err(DriverError::Admin {
                device: self.device.into(),
                command: what,
                status,
            });
        }
        Ok(c)
    }
}

/// Give the function an admin queue (`1 << order` entries) in `mem`
/// through the mailbox.
fn admin_queue(
    backend: &mut dyn Backend,
    device: &str,
    mem: &Arc<DmaMemory>,
    order: u8,
    timeout: Duration,
) -> Result<AdminQueue, DriverError> {
    let (ring, cq, state) = queue_memory(mem, order, 64)?;
    let q = QueueCreate {
        qtype: QueueType::Admin.raw(),
        ring_order: order,
        ring_base: ring.iova.into(),
        cq_base: cq.iova.into(),
        state_base: state.iova.into(),
        ..Default::default()
    };
    Mailbox {
        backend,
        device,
        timeout,
        tag: 2,
    }
    .run(DevCommand::AdminQueueInit(q), "mailbox AdminQueueInit")?;
    // SAFETY: ring and state lie in `mem`, which the Nic keeps for as long
    // as the producer lives; the device initialised the block.
    let producer = unsafe { attach::<AdminCmd>(state.ptr, ring.ptr, order) }.map_err(|source| DriverError::Ring {
        device: device.to_string(),
        what: "admin queue",
        source,
    })?;
    Ok(AdminQueue {
        ring: producer,
        cq: CqReader::new(cq.ptr, order),
        state: state.ptr.cast(),
        tag: 16,
    })
}
