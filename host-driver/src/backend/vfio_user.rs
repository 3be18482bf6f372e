//! The vfio-user backend: fairnic's own client (`vfu::client`) talking to
//! a vfio-user server (nicsim). Regions are accessed with messages, except
//! the areas the server offers for mmap (nicsim's doorbell pages); DMA
//! memory is shared by passing its memfd; interrupts arrive on eventfds
//! passed with `SET_IRQS`.
//!
//! On top of what the kernel's vfio-pci does by itself, this backend
//! enables the MSI-X capability and unmasks the table entries through
//! configuration and BAR writes when it enables interrupts, so the layer
//! above sees the same behaviour from both backends.
//!
//! The client trusts nothing the server sends (replies matched to
//! requests, every size checked before it is read, every count and offset
//! range-checked; a server silent for `REPLY_TIMEOUT` is an error), and
//! reports refusals with their errno. It replaced rust-vmm's `vfio_user`
//! 0.1.7 client, which ignored error replies and could panic or allocate
//! without bound on a malformed reply; that client stays in nicsim's tests
//! as an independent peer.

use super::{area_covers, find_capability, mmap_range, Backend, BackendError, BarMapping, ConfigExt, IrqKind};
use crate::mem::DmaMemory;
use dataplane::abi::pci;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use vfio_bindings::bindings::vfio::{
    VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE, VFIO_PCI_CONFIG_REGION_INDEX,
    VFIO_REGION_INFO_FLAG_MMAP,
};
use vmm_sys_util::eventfd::EventFd;

/// How long the driver waits for any reply of the server.
pub const REPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A function reached over vfio-user.
pub struct VfioUserBackend {
    client: vfu::client::Client,
    path: PathBuf,
}

impl std::fmt::Debug for VfioUserBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioUserBackend").field("path", &self.path).finish()
    }
}

impl VfioUserBackend {
    /// A failed request: a closed connection means the device is gone
    /// (the simulator exited or was killed), and says so.
    fn fail(&self, what: &'static str, e: vfu::client::Error) -> BackendError {
        match e {
            vfu::client::Error::Gone { .. } => BackendError::Gone {
                what,
                path: self.path.clone(),
            },
            other => BackendError::op(what, format!("{}: {other}", self.path.display())),
        }
    }

    /// Connect to the server at `path` and learn its regions.
    pub fn connect(path: &Path) -> Result<VfioUserBackend, BackendError> {
        let client = vfu::client::Client::connect(path, REPLY_TIMEOUT).map_err(|e| BackendError::NoSimulator {
            path: path.to_path_buf(),
            why: e.to_string(),
        })?;
        Ok(VfioUserBackend {
            client,
            path: path.to_path_buf(),
        })
    }
}

impl Backend for VfioUserBackend {
    fn describe(&self) -> String {
        format!("sim:{}", self.path.display())
    }

    fn config_read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        self.client
            .region_read(VFIO_PCI_CONFIG_REGION_INDEX, offset, buf)
            .map_err(|e| self.fail("config read", e))
    }

    fn config_write(&mut self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        self.client
            .region_write(VFIO_PCI_CONFIG_REGION_INDEX, offset, data)
            .map_err(|e| self.fail("config write", e))
    }

    fn bar_size(&self, bar: u32) -> u64 {
        self.client.region(bar).map(|r| r.size).unwrap_or(0)
    }

    fn bar_read(&mut self, bar: u32, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|end| end > self.bar_size(bar))
        {
            return Err(BackendError::op(
                "BAR read",
                format!("BAR{bar} {offset:#x}+{} out of range", buf.len()),
            ));
        }
        self.client
            .region_read(bar, offset, buf)
            .map_err(|e| self.fail("BAR read", e))
    }

    fn bar_write(&mut self, bar: u32, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        if offset
            .checked_add(data.len() as u64)
            .is_none_or(|end| end > self.bar_size(bar))
        {
            return Err(BackendError::op(
                "BAR write",
                format!("BAR{bar} {offset:#x}+{} out of range", data.len()),
            ));
        }
        self.client
            .region_write(bar, offset, data)
            .map_err(|e| self.fail("BAR write", e))
    }

    fn map_bar(&mut self, bar: u32, offset: u64, len: u64) -> Result<BarMapping, BackendError> {
        let region = self
            .client
            .region(bar)
            .ok_or_else(|| BackendError::op("map BAR", format!("no region {bar}")))?;
        let areas = || {
            region
                .sparse
                .iter()
                .map(|(o, s)| format!("{o:#x}+{s:#x}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        // Region sizes, sparse areas and the file offset are the server's
        // to choose: every sum is checked, and the range must lie in the
        // region, in a mappable area, and in the file behind it (a mapping
        // past the end of a file faults on first touch).
        let inside = offset.checked_add(len).is_some_and(|end| end <= region.size)
            && area_covers(region.sparse.iter().copied(), offset, len);
        let not_mappable = || BackendError::NotMappable {
            bar,
            offset,
            len,
            areas: areas(),
        };
        let Some(file) = region
            .file
            .as_ref()
            .filter(|_| inside && region.flags & VFIO_REGION_INFO_FLAG_MMAP != 0)
        else {
            return Err(not_mappable());
        };
        let at = region.offset.checked_add(offset).ok_or_else(not_mappable)?;
        if let Ok(meta) = file.metadata() {
            if meta.is_file() && at.checked_add(len).is_none_or(|end| end > meta.len()) {
                return Err(BackendError::op(
                    "map BAR",
                    format!(
                        "{}: BAR{bar} {offset:#x}+{len:#x} is file offset {at:#x}, past the end of the {:#x}-byte file the server gave",
                        self.path.display(),
                        meta.len()
                    ),
                ));
            }
        }
        mmap_range(file.as_raw_fd(), at, len)
    }

    fn dma_map(&mut self, mem: &DmaMemory) -> Result<(), BackendError> {
        self.client
            .dma_map(mem.iova(), mem.len(), mem.fd(), 0, true)
            .map_err(|e| self.fail("DMA map", e))
    }

    fn dma_unmap(&mut self, mem: &DmaMemory) -> Result<(), BackendError> {
        self.client
            .dma_unmap(mem.iova(), mem.len())
            .map_err(|e| self.fail("DMA unmap", e))
    }

    fn irq_count(&mut self, kind: IrqKind) -> Result<u32, BackendError> {
        self.client
            .irq_info(kind.index())
            .map(|i| i.count)
            .map_err(|e| self.fail("GET_IRQ_INFO", e))
    }

    fn enable_irqs(&mut self, kind: IrqKind, fds: &[&EventFd]) -> Result<(), BackendError> {
        let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
        self.client
            .set_irqs(
                kind.index(),
                VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
                0,
                raw.len() as u32,
                &raw,
            )
            .map_err(|e| self.fail("SET_IRQS", e))?;
        if kind == IrqKind::MsiX {
            // What the kernel does for vfio-pci users: enable the
            // capability and unmask the vectors.
            let cap = find_capability(self, pci::CAP_ID_MSIX)?
                .ok_or_else(|| BackendError::op("MSI-X", "no MSI-X capability"))?;
            let ctrl_at = cap + pci::MSIX_MSG_CTRL as u64;
            let ctrl = self.config_read16(ctrl_at)?;
            self.config_write16(
                ctrl_at,
                (ctrl | pci::msix_ctrl::ENABLE) & !pci::msix_ctrl::FUNCTION_MASK,
            )?;
            let table = u64::from(self.bar_read_cap_table(cap)?);
            for v in 0..fds.len() as u64 {
                self.bar_write32(0, table + v * 16 + 12, 0)?;
            }
        }
        Ok(())
    }

    fn disable_irqs(&mut self, kind: IrqKind) -> Result<(), BackendError> {
        self.client
            .set_irqs(
                kind.index(),
                VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
                0,
                0,
                &[],
            )
            .map_err(|e| self.fail("SET_IRQS", e))
    }

    fn reset(&mut self) -> Result<(), BackendError> {
        self.client.reset().map_err(|e| self.fail("reset", e))
    }
}

impl VfioUserBackend {
    /// The MSI-X table's offset in BAR0 (BIR must be 0 on this device).
    fn bar_read_cap_table(&mut self, cap: u64) -> Result<u32, BackendError> {
        let mut b = [0u8; 4];
        self.config_read(cap + 4, &mut b)?;
        let v = u32::from_le_bytes(b);
        if v & 7 != 0 {
            return Err(BackendError::op("MSI-X", "table not in BAR0"));
        }
        Ok(v & !7)
    }
}
