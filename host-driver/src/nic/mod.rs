//! Bringing one PCI function up, step by step as `docs/device-abi.md`
//! ("Bring-up, step by step") says, and the admin commands after that.
//!
//! [`Nic::open`] takes any [`Backend`] and returns a function with its
//! admin queue running, its doorbell pages mapped and its MSI-X vectors on
//! eventfds; LIFs and queues are created on it afterwards.
//!
//! - this module: bring-up ([`Nic::open`]), what the function is, its DMA
//!   mappings and vectors, and closing it;
//! - `admin`: the device-command mailbox, the admin queue and its scratch
//!   buffer, liveness and recovery after the function reset by itself;
//! - `lifs`: LIFs, their counters, the device's events, slot settings;
//! - `queues`: creating, resetting and destroying TX and RX queues;
//! - `settings`: meters, interrupt moderation, the pipeline program and
//!   its tables.

mod admin;
mod cpu_port;
mod lifs;
mod queues;
mod settings;

pub use crate::error::{DriverError, ErrorKind};
pub use cpu_port::PacketIn;

use crate::backend::{Backend, BarMapping, ConfigExt, IrqKind};
use crate::error::OnDevice;
use crate::mem::{DmaMemory, MemKind};
use admin::{admin_queue, AdminQueue, Mailbox};
use dataplane::abi::pci;
use dataplane::abi::{
    self, devcmd, DevCommand, DeviceIdentity, DeviceInfo, DmaRef, FromBytes, DEVCMD_OFFSET, DOORBELL_OFFSET,
    DOORBELL_STRIDE, IDENTITY_OFFSET, PCI_DEVICE_ID_PF, PCI_DEVICE_ID_VF, PCI_VENDOR_ID,
};
use dataplane::packet::Mac;
use std::sync::Arc;
use std::time::Duration;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// `PF` or `VF n` for a function number (0 the PF, `n + 1` VF `n`).
pub fn function_name(function_id: u16) -> String {
    match function_id {
        0 => "PF".into(),
        n => format!("VF {}", n - 1),
    }
}

/// Read a `T` from bytes the driver sized for it.
fn read_struct<T: FromBytes>(device: &str, what: &str, bytes: &[u8]) -> Result<T, DriverError> {
    T::read_from_bytes(bytes).map_err(|_| {
        DriverError::other(
            device,
            format!("{what}: {} bytes, expected {}", bytes.len(), std::mem::size_of::<T>()),
        )
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
        let vendor = backend.config_read16(0).on(&device)?;
        let id = backend.config_read16(2).on(&device)?;
        let ours = vendor == PCI_VENDOR_ID && (id == PCI_DEVICE_ID_PF || id == PCI_DEVICE_ID_VF);
        if !ours && !cfg.extra_ids.contains(&(vendor, id)) {
            return Err(DriverError::new(device, ErrorKind::UnknownDevice { vendor, id }));
        }
        let cmd = backend.config_read16(pci::COMMAND as u64).on(&device)?;
        backend
            .config_write16(
                pci::COMMAND as u64,
                cmd | pci::command::MEMORY | pci::command::BUS_MASTER,
            )
            .on(&device)?;

        // 2. The identity page: signature and ABI version.
        let mut page = [0u8; 128];
        backend.bar_read(0, IDENTITY_OFFSET, &mut page).on(&device)?;
        let identity =
            abi::Identity::parse(&page).map_err(|source| DriverError::new(&device, ErrorKind::Abi { source }))?;

        let mem = Arc::new(DmaMemory::new(cfg.mem_bytes, cfg.iova, cfg.mem_kind).on(&device)?);
        backend.dma_map(&mem).on(&device)?;

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
        backend
            .bar_read(0, DEVCMD_OFFSET + devcmd::DATA, &mut data)
            .on(&device)?;
        let info: DeviceInfo = read_struct(&device, "mailbox Identify", &data)?;

        // 5. The admin queue.
        let admin = admin_queue(backend.as_mut(), &device, &mem, cfg.admin_order, cfg.timeout)?;

        // 6. Doorbell pages.
        let db_len = u64::from(identity.nlifs) * DOORBELL_STRIDE;
        let doorbells = Arc::new(backend.map_bar(0, DOORBELL_OFFSET, db_len).on(&device)?);

        // 7. MSI-X vectors on eventfds.
        let nvec = backend
            .irq_count(IrqKind::MsiX)
            .on(&device)?
            .min(u32::from(identity.nintrs));
        let eventfds: Vec<Arc<EventFd>> = (0..nvec)
            .map(|_| EventFd::new(EFD_NONBLOCK).map(Arc::new))
            .collect::<Result<_, _>>()
            .map_err(|e| DriverError::other(&device, format!("eventfd: {e}")))?;
        if !eventfds.is_empty() {
            let refs: Vec<&EventFd> = eventfds.iter().map(|e| e.as_ref()).collect();
            backend.enable_irqs(IrqKind::MsiX, &refs).on(&device)?;
        }

        let scratch = mem.alloc(SCRATCH, 4096).on(&device)?;
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
        self.backend.dma_map(mem).on(&self.device)?;
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

    /// `kind` on this function.
    fn err(&self, kind: ErrorKind) -> DriverError {
        DriverError::new(&self.device, kind)
    }

    /// An [`ErrorKind::Other`] on this function.
    fn other(&self, what: impl Into<String>) -> DriverError {
        DriverError::other(&self.device, what)
    }

    /// The error for a value the device answered that the driver cannot
    /// use.
    fn lied(&self, command: &'static str, what: &'static str, value: impl Into<u64>, allowed: String) -> DriverError {
        self.err(ErrorKind::DeviceLied {
            function: function_name(self.identity.function_id),
            command,
            what,
            value: value.into(),
            allowed,
        })
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
            self.backend.dma_unmap(&m).on(&self.device)?;
        }
        Ok(())
    }
}
