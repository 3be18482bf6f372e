//! How the driver reaches a device: the [`Backend`] seam.
//!
//! Two real implementations: [`vfio::VfioBackend`] (kernel VFIO:
//! container, group, device, IOMMU type1 mappings, MSI-X through
//! `VFIO_DEVICE_SET_IRQS`) and [`vfio_user::VfioUserBackend`] (fairnic's
//! vfio-user client, `vfu`, reaching `nicsim`). Nothing above this module knows
//! which one it has: both give configuration space, BAR access (trapped and
//! mapped), DMA mapping of [`DmaMemory`], interrupt eventfds, and reset.

pub mod vfio;
pub mod vfio_user;

use crate::mem::DmaMemory;
use dataplane::abi::pci;
use std::ptr::NonNull;
use vmm_sys_util::eventfd::EventFd;

/// Which interrupt mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqKind {
    Msi,
    MsiX,
}

impl IrqKind {
    /// The VFIO IRQ index.
    pub fn index(self) -> u32 {
        match self {
            IrqKind::Msi => vfio_bindings::bindings::vfio::VFIO_PCI_MSI_IRQ_INDEX,
            IrqKind::MsiX => vfio_bindings::bindings::vfio::VFIO_PCI_MSIX_IRQ_INDEX,
        }
    }
}

/// Why a backend operation failed. The messages are meant for a lab
/// engineer: each says what is wrong and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("no PCI device {bdf} (lspci -D lists the devices; the address looks like 0000:3b:02.0)")]
    NoSuchDevice { bdf: String },
    #[error("device {bdf} is bound to {driver}, not vfio-pci: run 'driverctl set-override {bdf} vfio-pci' (or: echo {bdf} > /sys/bus/pci/devices/{bdf}/driver/unbind; echo vfio-pci > /sys/bus/pci/devices/{bdf}/driver_override; echo {bdf} > /sys/bus/pci/drivers_probe)")]
    WrongDriver { bdf: String, driver: String },
    #[error(
        "device {bdf} is bound to no driver: run 'driverctl set-override {bdf} vfio-pci' (after 'modprobe vfio-pci')"
    )]
    NoDriver { bdf: String },
    #[error("device {bdf} has no IOMMU group: enable the IOMMU (intel_iommu=on or amd_iommu=on on the kernel command line, VT-d/AMD-Vi in firmware)")]
    NoIommuGroup { bdf: String },
    #[error(
        "IOMMU group {group} is not viable: every device in it must be bound to vfio-pci or to no driver; {members}"
    )]
    GroupNotViable { group: u32, members: String },
    #[error("no permission on /dev/vfio/{group}: run nicdrv as root, or give your user the group device ('chown $USER /dev/vfio/{group}', or a udev rule) and raise 'ulimit -l' for DMA pinning")]
    GroupPermission { group: u32 },
    #[error("/dev/vfio/{group} does not exist: is vfio-pci loaded ('modprobe vfio-pci') and the device bound to it?")]
    NoGroupDevice { group: u32 },
    #[error("no simulator at {path}: start one ('cargo run --release -p sim --bin nicsim -- --socket-dir {dir}') or run nicdrv without --device to use the embedded one ({why})", dir = .path.parent().map(|p| p.display().to_string()).unwrap_or_default())]
    NoSimulator { path: std::path::PathBuf, why: String },
    #[error("{what}: {why}")]
    Op { what: &'static str, why: String },
    #[error("{what}: the device is gone: {path} closed the connection (the simulator exited or was killed); frames in flight are lost")]
    Gone {
        what: &'static str,
        path: std::path::PathBuf,
    },
    #[error("BAR{bar} range {offset:#x}+{len:#x} is not mappable (mappable areas: {areas})")]
    NotMappable {
        bar: u32,
        offset: u64,
        len: u64,
        areas: String,
    },
}

impl BackendError {
    pub(crate) fn op(what: &'static str, why: impl std::fmt::Display) -> BackendError {
        BackendError::Op {
            what,
            why: why.to_string(),
        }
    }
}

/// A BAR range mapped into this process. Accesses are volatile: it is
/// device memory (or, for the simulator, memory the device polls).
pub struct BarMapping {
    base: NonNull<u8>,
    map_len: usize,
    ptr: NonNull<u8>,
    len: usize,
    /// What must outlive the mapping (the kernel VFIO device: an mmap of
    /// its fd keeps the device open, and the device may only leave its
    /// container once every mapping is gone). Dropped after the unmap.
    _owner: Option<std::sync::Arc<dyn Send + Sync>>,
}

// SAFETY: the mapping is process-wide MMIO/shared memory; every access is
// a volatile read or write of an aligned word, which any thread may do.
unsafe impl Send for BarMapping {}
// SAFETY: as above.
unsafe impl Sync for BarMapping {}

impl std::fmt::Debug for BarMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BarMapping")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .finish()
    }
}

impl BarMapping {
    /// Wrap an mmap result: `base` mapped `map_len` bytes, of which the
    /// requested range starts at `ptr` and is `len` long.
    ///
    /// # Safety
    /// `base..base+map_len` must be a live mapping that this value may
    /// unmap on drop, containing `ptr..ptr+len`.
    pub unsafe fn from_raw(base: NonNull<u8>, map_len: usize, ptr: NonNull<u8>, len: usize) -> BarMapping {
        BarMapping {
            base,
            map_len,
            ptr,
            len,
            _owner: None,
        }
    }

    /// Keep `owner` alive until this mapping is unmapped.
    pub fn owned_by(mut self, owner: std::sync::Arc<dyn Send + Sync>) -> BarMapping {
        self._owner = Some(owner);
        self
    }

    /// Length of the mapped range.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Write a 64-bit register at `offset` (8-aligned, in range).
    #[inline]
    pub fn write64(&self, offset: usize, v: u64) {
        assert!(
            offset.is_multiple_of(8) && offset + 8 <= self.len,
            "BAR write64 at {offset:#x} outside {:#x}",
            self.len
        );
        // SAFETY: in range and aligned (checked); a volatile store of one
        // aligned word is how MMIO is written.
        unsafe { self.ptr.as_ptr().add(offset).cast::<u64>().write_volatile(v.to_le()) }
    }

    /// Read a 64-bit register at `offset` (8-aligned, in range).
    #[inline]
    pub fn read64(&self, offset: usize) -> u64 {
        assert!(
            offset.is_multiple_of(8) && offset + 8 <= self.len,
            "BAR read64 at {offset:#x} outside {:#x}",
            self.len
        );
        // SAFETY: as in write64.
        u64::from_le(unsafe { self.ptr.as_ptr().add(offset).cast::<u64>().read_volatile() })
    }

    /// Write a 32-bit register.
    #[inline]
    pub fn write32(&self, offset: usize, v: u32) {
        assert!(
            offset.is_multiple_of(4) && offset + 4 <= self.len,
            "BAR write32 at {offset:#x} outside {:#x}",
            self.len
        );
        // SAFETY: in range and aligned (checked).
        unsafe { self.ptr.as_ptr().add(offset).cast::<u32>().write_volatile(v.to_le()) }
    }

    /// Read a 32-bit register.
    #[inline]
    pub fn read32(&self, offset: usize) -> u32 {
        assert!(
            offset.is_multiple_of(4) && offset + 4 <= self.len,
            "BAR read32 at {offset:#x} outside {:#x}",
            self.len
        );
        // SAFETY: in range and aligned (checked).
        u32::from_le(unsafe { self.ptr.as_ptr().add(offset).cast::<u32>().read_volatile() })
    }
}

impl Drop for BarMapping {
    fn drop(&mut self) {
        // SAFETY: from_raw's contract: a mapping we own.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.map_len) };
    }
}

/// Whether `[offset, offset + len)` lies inside one of `areas` (each an
/// offset and a size, as a device or server reports them: any values, so
/// the sums are checked, never wrapped).
pub(crate) fn area_covers(areas: impl IntoIterator<Item = (u64, u64)>, offset: u64, len: u64) -> bool {
    let Some(end) = offset.checked_add(len) else {
        return false;
    };
    areas
        .into_iter()
        .any(|(o, s)| o.checked_add(s).is_some_and(|area_end| offset >= o && end <= area_end))
}

/// mmap `len` bytes of `fd` at file offset `file_offset` (any alignment:
/// the mapping is widened to pages) and wrap it.
pub(crate) fn mmap_range(fd: i32, file_offset: u64, len: u64) -> Result<BarMapping, BackendError> {
    let page = 4096u64;
    let start = file_offset & !(page - 1);
    let lead = file_offset - start;
    let too_big = || {
        BackendError::op(
            "mmap BAR",
            format!("{len:#x} bytes at {file_offset:#x} do not fit the address space"),
        )
    };
    let map_len = lead
        .checked_add(len)
        .and_then(|l| l.div_ceil(page).checked_mul(page))
        .and_then(|l| usize::try_from(l).ok())
        .ok_or_else(too_big)?;
    let len = usize::try_from(len).map_err(|_| too_big())?;
    let off = libc::off_t::try_from(start).map_err(|_| too_big())?;
    // SAFETY: a fresh shared mapping of a device/region fd; result checked;
    // ownership passes to the BarMapping.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            map_len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            off,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(BackendError::op("mmap BAR", std::io::Error::last_os_error()));
    }
    let base = NonNull::new(p.cast::<u8>()).ok_or_else(|| BackendError::op("mmap BAR", "mapped at address 0"))?;
    // SAFETY: lead < page <= map_len: inside the mapping just made.
    let ptr = unsafe { NonNull::new_unchecked(base.as_ptr().add(lead as usize)) };
    // SAFETY: we just mapped `map_len` bytes at `base`, and lead + len <=
    // map_len.
    Ok(unsafe { BarMapping::from_raw(base, map_len, ptr, len) })
}

/// How the driver reaches a device. Nothing above this trait knows whether
/// it is kernel VFIO or vfio-user.
pub trait Backend: Send + std::fmt::Debug {
    /// What this is, for messages (`vfio:0000:3b:02.0`, `sim:/tmp/...`).
    fn describe(&self) -> String;
    /// Read configuration space.
    fn config_read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError>;
    /// Write configuration space.
    fn config_write(&mut self, offset: u64, data: &[u8]) -> Result<(), BackendError>;
    /// Size of a BAR (0 if absent).
    fn bar_size(&self, bar: u32) -> u64;
    /// Trapped read of a BAR.
    fn bar_read(&mut self, bar: u32, offset: u64, buf: &mut [u8]) -> Result<(), BackendError>;
    /// Trapped write of a BAR.
    fn bar_write(&mut self, bar: u32, offset: u64, data: &[u8]) -> Result<(), BackendError>;
    /// Map `[offset, offset + len)` of a BAR into this process.
    fn map_bar(&mut self, bar: u32, offset: u64, len: u64) -> Result<BarMapping, BackendError>;
    /// Let the device DMA to and from `mem` at its IOVA.
    fn dma_map(&mut self, mem: &DmaMemory) -> Result<(), BackendError>;
    /// Take that away again.
    fn dma_unmap(&mut self, mem: &DmaMemory) -> Result<(), BackendError>;
    /// Interrupt vectors of `kind` the device has.
    fn irq_count(&mut self, kind: IrqKind) -> Result<u32, BackendError>;
    /// Deliver vectors `0..fds.len()` of `kind` to these eventfds (enables
    /// the capability; unmasks the vectors).
    fn enable_irqs(&mut self, kind: IrqKind, fds: &[&EventFd]) -> Result<(), BackendError>;
    /// Stop delivering interrupts of `kind`.
    fn disable_irqs(&mut self, kind: IrqKind) -> Result<(), BackendError>;
    /// Function-level reset.
    fn reset(&mut self) -> Result<(), BackendError>;
}

/// Config-space helpers over any backend.
pub trait ConfigExt {
    fn config_read16(&mut self, offset: u64) -> Result<u16, BackendError>;
    fn config_write16(&mut self, offset: u64, v: u16) -> Result<(), BackendError>;
    fn bar_read32(&mut self, bar: u32, offset: u64) -> Result<u32, BackendError>;
    fn bar_write32(&mut self, bar: u32, offset: u64, v: u32) -> Result<(), BackendError>;
}

impl<B: Backend + ?Sized> ConfigExt for B {
    fn config_read16(&mut self, offset: u64) -> Result<u16, BackendError> {
        let mut b = [0u8; 2];
        self.config_read(offset, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }
    fn config_write16(&mut self, offset: u64, v: u16) -> Result<(), BackendError> {
        self.config_write(offset, &v.to_le_bytes())
    }
    fn bar_read32(&mut self, bar: u32, offset: u64) -> Result<u32, BackendError> {
        let mut b = [0u8; 4];
        self.bar_read(bar, offset, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn bar_write32(&mut self, bar: u32, offset: u64, v: u32) -> Result<(), BackendError> {
        self.bar_write(bar, offset, &v.to_le_bytes())
    }
}

/// Find a PCI capability in configuration space (`id`: a
/// `dataplane::abi::pci::CAP_ID_*`), walking the list from
/// `CAPABILITY_LIST`; at most 48 steps, so a looping list ends.
pub fn find_capability<B: Backend + ?Sized>(b: &mut B, id: u8) -> Result<Option<u64>, BackendError> {
    let mut at = {
        let mut p = [0u8; 1];
        b.config_read(pci::CAPABILITY_LIST as u64, &mut p)?;
        u64::from(p[0] & !3)
    };
    for _ in 0..48 {
        if at < pci::CAPABILITIES_START as u64 {
            return Ok(None);
        }
        let mut h = [0u8; 2];
        b.config_read(at, &mut h)?;
        if h[0] == id {
            return Ok(Some(at));
        }
        at = u64::from(h[pci::CAP_NEXT] & !3);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_cover_ranges_without_overflowing() {
        let areas = [(0x8000, 0x2000)];
        assert!(area_covers(areas, 0x8000, 0x2000));
        assert!(area_covers(areas, 0x9000, 0x1000));
        assert!(!area_covers(areas, 0x9000, 0x1001));
        assert!(!area_covers(areas, 0x7000, 0x1000));
        // A server's area whose end does not fit u64 covers nothing (it
        // used to wrap to a small end, or panic in a debug build).
        assert!(!area_covers([(u64::MAX - 0xfff, 0x2000)], u64::MAX - 0xfff, 8));
        assert!(!area_covers([(1, u64::MAX)], 0x1000, 8));
        // A request whose end does not fit u64 is never covered.
        assert!(!area_covers([(0, u64::MAX)], u64::MAX - 4, 8));
        assert!(area_covers([(0, u64::MAX)], u64::MAX - 8, 8));
        assert!(!area_covers([], 0, 0));
    }

    #[test]
    fn an_unmappable_length_is_an_error_not_a_wrap() {
        let e = mmap_range(-1, u64::MAX - 10, 100).unwrap_err();
        assert!(e.to_string().contains("do not fit"), "{e}");
        let e = mmap_range(-1, 0, u64::MAX).unwrap_err();
        assert!(e.to_string().contains("do not fit"), "{e}");
    }
}
