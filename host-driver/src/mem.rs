//! DMA memory: one shared mapping of a memfd (optionally backed by huge
//! pages) that every backend maps at the same IOVA, carved into rings,
//! completion rings, state blocks, admin buffers and the packet pool.
//!
//! The memory is shared with the device, which reads and writes it
//! concurrently, so this module hands out raw pointers, never references;
//! a reference to part of it is made only where the protocol says the
//! device is not touching that part (a packet buffer the driver owns).

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::ptr::NonNull;
use std::sync::Mutex;

/// Where DMA memory comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemKind {
    /// Ordinary pages (memfd).
    Pages,
    /// 2 MiB huge pages (memfd with MFD_HUGETLB): fewer IOTLB misses on
    /// real hardware; needs pages reserved in /proc/sys/vm/nr_hugepages.
    HugePages,
}

/// Why DMA memory could not be had.
#[derive(Debug, thiserror::Error)]
pub enum MemError {
    #[error("no hugepages: need {need} free 2 MiB pages, {free} free; reserve them with 'echo {need} > /proc/sys/vm/nr_hugepages' (or run without --hugepages)")]
    NoHugepages { need: u64, free: u64 },
    #[error("DMA memory ({len} bytes): {0}", len = .1)]
    Os(std::io::Error, u64),
    #[error("DMA memory exhausted: {need} more bytes wanted, {left} left of {total} (raise --mem)")]
    Exhausted { need: u64, left: u64, total: u64 },
}

/// A bump allocation in DMA memory.
#[derive(Debug, Clone, Copy)]
pub struct DmaBuf {
    pub iova: u64,
    pub ptr: NonNull<u8>,
    pub len: u64,
}

/// The driver's DMA memory.
#[derive(Debug)]
pub struct DmaMemory {
    file: File,
    /// Owns the mapping (unmapped on drop); accessed through `ptr`.
    _map: memmap2::MmapRaw,
    ptr: NonNull<u8>,
    len: u64,
    iova: u64,
    kind: MemKind,
    next: Mutex<u64>,
}

// SAFETY: the mapping is shared memory accessed only through raw pointers
// (and atomics); the bump allocator is behind a mutex.
unsafe impl Send for DmaMemory {}
// SAFETY: as above.
unsafe impl Sync for DmaMemory {}

const HUGE: u64 = 2 << 20;

fn hugepages_free() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("HugePages_Free:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

impl DmaMemory {
    /// `len` bytes (rounded up to the page size) that the device will see
    /// at `iova`, zeroed. The pages are a memfd (hugetlbfs-backed with
    /// [`MemKind::HugePages`]) mapped shared with `memmap2` and populated
    /// up front, so a shortage shows here and not as a fault later.
    pub fn new(len: u64, iova: u64, kind: MemKind) -> Result<DmaMemory, MemError> {
        let page = if kind == MemKind::HugePages { HUGE } else { 4096 };
        let len = len.div_ceil(page) * page;
        if kind == MemKind::HugePages {
            let need = len / HUGE;
            let free = hugepages_free();
            if free < need {
                return Err(MemError::NoHugepages { need, free });
            }
        }
        // Sealable: the device maps only memory that cannot shrink under
        // it (a truncation would fault its accesses).
        let flags = libc::MFD_CLOEXEC
            | libc::MFD_ALLOW_SEALING
            | if kind == MemKind::HugePages {
                libc::MFD_HUGETLB
            } else {
                0
            };
        // SAFETY: plain syscall; the result is checked and owned by the File.
        let file = unsafe {
            let fd = libc::memfd_create(c"nicdrv-dma".as_ptr(), flags);
            if fd < 0 {
                return Err(MemError::Os(std::io::Error::last_os_error(), len));
            }
            File::from_raw_fd(fd)
        };
        file.set_len(len).map_err(|e| MemError::Os(e, len))?;
        // SAFETY: fcntl with an integer argument on the memfd we own.
        if unsafe {
            libc::fcntl(
                file.as_raw_fd(),
                libc::F_ADD_SEALS,
                libc::F_SEAL_SHRINK | libc::F_SEAL_GROW,
            )
        } < 0
        {
            return Err(MemError::Os(std::io::Error::last_os_error(), len));
        }
        let map = memmap2::MmapOptions::new()
            .len(len as usize)
            .populate()
            .map_raw(&file)
            .map_err(|e| {
                if kind == MemKind::HugePages {
                    MemError::NoHugepages {
                        need: len / HUGE,
                        free: hugepages_free(),
                    }
                } else {
                    MemError::Os(e, len)
                }
            })?;
        let ptr = NonNull::new(map.as_mut_ptr()).expect("a mapping is never at address 0");
        Ok(DmaMemory {
            file,
            _map: map,
            ptr,
            len,
            iova,
            kind,
            next: Mutex::new(0),
        })
    }

    /// Allocate `len` bytes aligned to `align` (a power of two), zeroed
    /// (fresh memory is zero and allocations are never reused).
    pub fn alloc(&self, len: u64, align: u64) -> Result<DmaBuf, MemError> {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let at = next.div_ceil(align).saturating_mul(align);
        let Some(end) = at.checked_add(len).filter(|&end| end <= self.len) else {
            return Err(MemError::Exhausted {
                need: len,
                left: self.len.saturating_sub(at),
                total: self.len,
            });
        };
        *next = end;
        Ok(DmaBuf {
            iova: self.iova + at,
            // SAFETY: at + len <= self.len: inside the mapping.
            ptr: unsafe { NonNull::new_unchecked(self.ptr.as_ptr().add(at as usize)) },
            len,
        })
    }

    /// Host address of `iova`, if `[iova, iova + len)` is inside.
    pub fn ptr(&self, iova: u64, len: u64) -> Option<NonNull<u8>> {
        let off = iova.checked_sub(self.iova)?;
        if off.checked_add(len)? > self.len {
            return None;
        }
        // SAFETY: inside the mapping (checked).
        Some(unsafe { NonNull::new_unchecked(self.ptr.as_ptr().add(off as usize)) })
    }

    /// IOVA of the first byte.
    pub fn iova(&self) -> u64 {
        self.iova
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the memory is empty (never: kept for API completeness).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Host address of the first byte.
    pub fn host_base(&self) -> NonNull<u8> {
        self.ptr
    }

    /// The backing file (vfio-user passes it to the device).
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// The page kind.
    pub fn kind(&self) -> MemKind {
        self.kind
    }

    /// Bytes not yet allocated.
    pub fn remaining(&self) -> u64 {
        self.len - *self.next.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_aligned_bounded_and_translate() {
        let m = DmaMemory::new(10_000, 0x1_0000_0000, MemKind::Pages).unwrap();
        assert_eq!(m.len(), 12_288, "rounded up to pages");
        let a = m.alloc(100, 64).unwrap();
        let b = m.alloc(100, 256).unwrap();
        assert_eq!(a.iova, 0x1_0000_0000);
        assert_eq!(b.iova % 256, 0);
        assert_eq!(m.ptr(b.iova, 100), Some(b.ptr));
        assert!(m.ptr(0x1_0000_0000 + 12_200, 100).is_none());
        assert!(m.ptr(0xfff, 1).is_none());
        assert!(matches!(m.alloc(20_000, 64), Err(MemError::Exhausted { .. })));
        assert!(
            matches!(m.alloc(u64::MAX, 64), Err(MemError::Exhausted { .. })),
            "no wrap"
        );
    }

    #[test]
    fn hugepages_shortage_names_the_fix() {
        // 1 TiB of huge pages: more than any machine has reserved.
        let e = DmaMemory::new(1 << 40, 0, MemKind::HugePages).unwrap_err();
        assert!(e.to_string().contains("/proc/sys/vm/nr_hugepages"), "{e}");
    }
}
