//! The kernel VFIO backend: a PCI function bound to `vfio-pci`, reached
//! through rust-vmm's `vfio-ioctls` (container, group, device, IOMMU type1
//! v2 DMA mapping, `VFIO_DEVICE_SET_IRQS`). Region reads, writes and mmaps
//! go straight to the device file descriptor at the offsets VFIO reports,
//! so failures come back as errors (vfio-ioctls only logs them).
//!
//! Before touching VFIO, `open` checks what usually goes wrong in a lab —
//! the device is missing, bound to another driver, has no IOMMU group, its
//! group is not viable, `/dev/vfio/N` is missing or not ours — and says so
//! with the command that fixes it.

use super::{area_covers, mmap_range, Backend, BackendError, BarMapping, IrqKind};
use crate::mem::DmaMemory;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vfio_bindings::bindings::vfio::{VFIO_PCI_CONFIG_REGION_INDEX, VFIO_REGION_INFO_FLAG_MMAP};
use vfio_ioctls::{VfioContainer, VfioDevice, VfioError, VfioOps, VfioRegionInfoCap};
use vmm_sys_util::eventfd::EventFd;

#[derive(Debug, Clone)]
struct Region {
    offset: u64,
    size: u64,
    flags: u32,
    /// Mappable areas; empty means the whole region (if MMAP is set).
    sparse: Vec<(u64, u64)>,
}

/// A PCI function bound to vfio-pci.
pub struct VfioBackend {
    bdf: String,
    regions: Vec<Region>,
    /// A duplicate of the device's fd (dropped before `device`: the
    /// device leaves its container only when no fd of it is open).
    fd: File,
    /// Shared with every BAR mapping handed out: an mmap keeps the device
    /// open, so the device (closing its fd, then leaving the container)
    /// goes after the last mapping. Before, the Nic's doorbell mapping
    /// outlived it and the kernel refused VFIO_GROUP_UNSET_CONTAINER with
    /// EBUSY.
    device: Arc<VfioDevice>,
    container: Arc<VfioContainer>,
    mapped: Vec<(u64, u64)>,
}

impl std::fmt::Debug for VfioBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioBackend").field("bdf", &self.bdf).finish()
    }
}

fn link_name(p: &Path) -> Option<String> {
    std::fs::read_link(p)
        .ok()?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
}

/// Drivers a viable IOMMU group may have its devices bound to.
const VIABLE_DRIVERS: &[&str] = &["vfio-pci", "pci-stub", "pcieport"];

/// The members of IOMMU group `group` that keep it from being viable, as
/// "0000:3b:02.1 (bound to ixgbevf)" strings.
pub fn group_blockers(sysfs: &Path, group: u32) -> Vec<String> {
    let dir = sysfs
        .join("kernel/iommu_groups")
        .join(group.to_string())
        .join("devices");
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut names: Vec<_> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for n in names {
            if let Some(d) = link_name(&sysfs.join("bus/pci/devices").join(&n).join("driver")) {
                if !VIABLE_DRIVERS.contains(&d.as_str()) {
                    out.push(format!("{n} (bound to {d})"));
                }
            }
        }
    }
    out
}

/// The checks before VFIO: returns the IOMMU group number. `sysfs` is
/// `/sys` (a parameter so tests can build a fake tree).
pub fn preflight(sysfs: &Path, dev_vfio: &Path, bdf: &str) -> Result<u32, BackendError> {
    let dev = sysfs.join("bus/pci/devices").join(bdf);
    if !dev.exists() {
        return Err(BackendError::NoSuchDevice { bdf: bdf.into() });
    }
    match link_name(&dev.join("driver")) {
        None => return Err(BackendError::NoDriver { bdf: bdf.into() }),
        Some(d) if d != "vfio-pci" => {
            return Err(BackendError::WrongDriver {
                bdf: bdf.into(),
                driver: d,
            })
        }
        Some(_) => {}
    }
    let group: u32 = link_name(&dev.join("iommu_group"))
        .and_then(|g| g.parse().ok())
        .ok_or(BackendError::NoIommuGroup { bdf: bdf.into() })?;
    let blockers = group_blockers(sysfs, group);
    if !blockers.is_empty() {
        return Err(BackendError::GroupNotViable {
            group,
            members: format!("bind these to vfio-pci too, or unbind them: {}", blockers.join(", ")),
        });
    }
    let node = dev_vfio.join(group.to_string());
    match std::fs::OpenOptions::new().read(true).write(true).open(&node) {
        Ok(_) => Ok(group),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BackendError::NoGroupDevice { group }),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(BackendError::GroupPermission { group }),
        // EBUSY: another process (or container) has the group; let VFIO say.
        Err(_) => Ok(group),
    }
}

fn vfio_err(bdf: &str, group: u32, e: VfioError) -> BackendError {
    match e {
        VfioError::GroupViable => BackendError::GroupNotViable {
            group,
            members: format!("members: {}", group_blockers(Path::new("/sys"), group).join(", ")),
        },
        VfioError::OpenContainer(io) => BackendError::op(
            "open /dev/vfio/vfio",
            format!("{io} (load the VFIO modules: 'modprobe vfio-pci')"),
        ),
        VfioError::OpenGroup(io, _) if io.kind() == std::io::ErrorKind::PermissionDenied => {
            BackendError::GroupPermission { group }
        }
        other => BackendError::op("VFIO", format!("{bdf}: {other}")),
    }
}

impl VfioBackend {
    /// Open PCI function `bdf` (e.g. `0000:3b:02.0`), bound to vfio-pci.
    pub fn open(bdf: &str) -> Result<VfioBackend, BackendError> {
        let group = preflight(Path::new("/sys"), Path::new("/dev/vfio"), bdf)?;
        let container = Arc::new(VfioContainer::new(None).map_err(|e| vfio_err(bdf, group, e))?);
        let sysfs = PathBuf::from("/sys/bus/pci/devices").join(bdf);
        let ops: Arc<dyn VfioOps> = container.clone();
        let device = VfioDevice::new(&sysfs, ops, false).map_err(|e| vfio_err(bdf, group, e))?;
        // SAFETY: dup of a valid fd we own through `device`; the new fd is
        // owned by the File.
        let fd = unsafe {
            let raw = libc::fcntl(device.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0);
            if raw < 0 {
                return Err(BackendError::op("dup device fd", std::io::Error::last_os_error()));
            }
            File::from_raw_fd(raw)
        };
        let regions = (0..vfio_bindings::bindings::vfio::VFIO_PCI_NUM_REGIONS)
            .map(|i| Region {
                offset: device.get_region_offset(i),
                size: device.get_region_size(i),
                flags: device.get_region_flags(i),
                sparse: device
                    .get_region_caps(i)
                    .into_iter()
                    .filter_map(|c| match c {
                        VfioRegionInfoCap::SparseMmap(s) => Some(s.areas.into_iter().map(|a| (a.offset, a.size))),
                        _ => None,
                    })
                    .flatten()
                    .collect(),
            })
            .collect();
        Ok(VfioBackend {
            bdf: bdf.into(),
            regions,
            fd,
            device: Arc::new(device),
            container,
            mapped: Vec::new(),
        })
    }

    fn region(&self, index: u32) -> Result<&Region, BackendError> {
        self.regions
            .get(index as usize)
            .filter(|r| r.size > 0)
            .ok_or_else(|| BackendError::op("region", format!("{} has no region {index}", self.bdf)))
    }

    fn io(&self, index: u32, offset: u64, len: usize) -> Result<u64, BackendError> {
        let r = self.region(index)?;
        if offset.checked_add(len as u64).is_none_or(|end| end > r.size) {
            return Err(BackendError::op(
                "region access",
                format!("region {index} {offset:#x}+{len} past its {:#x} bytes", r.size),
            ));
        }
        r.offset.checked_add(offset).ok_or_else(|| {
            BackendError::op(
                "region access",
                format!("region {index} at {:#x}: offset {offset:#x} overflows", r.offset),
            )
        })
    }
}

impl Backend for VfioBackend {
    fn describe(&self) -> String {
        format!("vfio:{}", self.bdf)
    }

    fn config_read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        let at = self.io(VFIO_PCI_CONFIG_REGION_INDEX, offset, buf.len())?;
        self.fd
            .read_exact_at(buf, at)
            .map_err(|e| BackendError::op("config read", e))
    }

    fn config_write(&mut self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        let at = self.io(VFIO_PCI_CONFIG_REGION_INDEX, offset, data.len())?;
        self.fd
            .write_all_at(data, at)
            .map_err(|e| BackendError::op("config write", e))
    }

    fn bar_size(&self, bar: u32) -> u64 {
        self.regions.get(bar as usize).map(|r| r.size).unwrap_or(0)
    }

    fn bar_read(&mut self, bar: u32, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        let at = self.io(bar, offset, buf.len())?;
        self.fd
            .read_exact_at(buf, at)
            .map_err(|e| BackendError::op("BAR read", e))
    }

    fn bar_write(&mut self, bar: u32, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        let at = self.io(bar, offset, data.len())?;
        self.fd
            .write_all_at(data, at)
            .map_err(|e| BackendError::op("BAR write", e))
    }

    fn map_bar(&mut self, bar: u32, offset: u64, len: u64) -> Result<BarMapping, BackendError> {
        let r = self.region(bar)?.clone();
        // The region's offset, size and sparse areas are the kernel's
        // report of the device: sums are checked, not wrapped.
        let at = r.offset.checked_add(offset);
        let ok = r.flags & VFIO_REGION_INFO_FLAG_MMAP != 0
            && offset.checked_add(len).is_some_and(|end| end <= r.size)
            && (r.sparse.is_empty() || area_covers(r.sparse.iter().copied(), offset, len));
        let Some(at) = at.filter(|_| ok) else {
            return Err(BackendError::NotMappable {
                bar,
                offset,
                len,
                areas: if r.flags & VFIO_REGION_INFO_FLAG_MMAP == 0 {
                    "none".into()
                } else if r.sparse.is_empty() {
                    format!("0x0+{:#x}", r.size)
                } else {
                    r.sparse
                        .iter()
                        .map(|(o, s)| format!("{o:#x}+{s:#x}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            });
        };
        let owner: Arc<dyn Send + Sync> = self.device.clone();
        Ok(mmap_range(self.fd.as_raw_fd(), at, len)?.owned_by(owner))
    }

    fn dma_map(&mut self, mem: &DmaMemory) -> Result<(), BackendError> {
        // SAFETY: `mem` is a live shared mapping of `mem.len()` bytes that
        // stays mapped while the backend maps it (the driver unmaps before
        // dropping it); the driver accesses it through raw pointers and
        // atomics, and makes references only to packet buffers the protocol
        // gives it exclusive use of.
        unsafe {
            self.container
                .vfio_dma_map(mem.iova(), mem.len() as usize, mem.host_base().as_ptr())
        }
        .map_err(|e| {
            BackendError::op(
                "VFIO_IOMMU_MAP_DMA",
                format!("{e} (is 'ulimit -l' large enough to pin {} bytes?)", mem.len()),
            )
        })?;
        self.mapped.push((mem.iova(), mem.len()));
        Ok(())
    }

    fn dma_unmap(&mut self, mem: &DmaMemory) -> Result<(), BackendError> {
        self.container
            .vfio_dma_unmap(mem.iova(), mem.len() as usize)
            .map_err(|e| BackendError::op("VFIO_IOMMU_UNMAP_DMA", e))?;
        self.mapped.retain(|&(i, _)| i != mem.iova());
        Ok(())
    }

    fn irq_count(&mut self, kind: IrqKind) -> Result<u32, BackendError> {
        Ok(self.device.get_irq_info(kind.index()).map(|i| i.count).unwrap_or(0))
    }

    fn enable_irqs(&mut self, kind: IrqKind, fds: &[&EventFd]) -> Result<(), BackendError> {
        self.device
            .enable_irq(kind.index(), fds.to_vec())
            .map_err(|e| BackendError::op("VFIO_DEVICE_SET_IRQS", e))
    }

    fn disable_irqs(&mut self, kind: IrqKind) -> Result<(), BackendError> {
        self.device
            .disable_irq(kind.index())
            .map_err(|e| BackendError::op("VFIO_DEVICE_SET_IRQS", e))
    }

    fn reset(&mut self) -> Result<(), BackendError> {
        self.device.reset();
        Ok(())
    }
}

impl Drop for VfioBackend {
    fn drop(&mut self) {
        for &(iova, len) in &self.mapped {
            let _ = self.container.vfio_dma_unmap(iova, len as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fake /sys with one device per (bdf, driver, group).
    fn fake_sysfs(devs: &[(&str, Option<&str>, u32)]) -> PathBuf {
        let root = std::env::temp_dir().join(format!(
            "fake-sysfs-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        for &(bdf, driver, group) in devs {
            let dev = root.join("bus/pci/devices").join(bdf);
            std::fs::create_dir_all(&dev).unwrap();
            if let Some(d) = driver {
                let drv = root.join("bus/pci/drivers").join(d);
                std::fs::create_dir_all(&drv).unwrap();
                symlink(&drv, dev.join("driver")).unwrap();
            }
            let g = root.join("kernel/iommu_groups").join(group.to_string());
            std::fs::create_dir_all(g.join("devices")).unwrap();
            let _ = symlink(&g, dev.join("iommu_group"));
            let _ = symlink(&dev, g.join("devices").join(bdf));
        }
        root
    }

    #[test]
    fn preflight_names_the_problem_and_the_fix() {
        let sys = fake_sysfs(&[
            ("0000:3b:02.0", Some("ixgbevf"), 7),
            ("0000:3b:02.1", Some("vfio-pci"), 8),
            ("0000:3b:02.2", Some("ixgbevf"), 8),
            ("0000:3b:02.3", None, 9),
            ("0000:3b:02.4", Some("vfio-pci"), 10),
        ]);
        let dev = sys.join("dev-vfio");
        std::fs::create_dir_all(&dev).unwrap();
        let e = preflight(&sys, &dev, "0000:99:00.0").unwrap_err().to_string();
        assert!(e.contains("no PCI device 0000:99:00.0"), "{e}");
        let e = preflight(&sys, &dev, "0000:3b:02.0").unwrap_err().to_string();
        assert!(
            e.contains("bound to ixgbevf, not vfio-pci") && e.contains("driverctl set-override 0000:3b:02.0 vfio-pci"),
            "{e}"
        );
        let e = preflight(&sys, &dev, "0000:3b:02.3").unwrap_err().to_string();
        assert!(e.contains("bound to no driver"), "{e}");
        let e = preflight(&sys, &dev, "0000:3b:02.1").unwrap_err().to_string();
        assert!(
            e.contains("IOMMU group 8 is not viable") && e.contains("0000:3b:02.2 (bound to ixgbevf)"),
            "{e}"
        );
        let e = preflight(&sys, &dev, "0000:3b:02.4").unwrap_err().to_string();
        assert!(e.contains("/dev/vfio/10 does not exist"), "{e}");
        std::fs::write(dev.join("10"), b"").unwrap();
        assert_eq!(preflight(&sys, &dev, "0000:3b:02.4").unwrap(), 10);
        let _ = std::fs::remove_dir_all(&sys);
    }
}
