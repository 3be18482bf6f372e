//! A function's DMA address space: the memory its client mapped with
//! vfio-user `DMA_MAP`, each mapping an `mmap` of the file descriptor the
//! client passed (so the data path is plain shared memory).
//!
//! This is the IOMMU of the simulated device: every address a descriptor
//! or command carries is translated here, and an address outside the
//! function's mappings is a [`DmaFault`], never an access. Built on
//! rust-vmm's `vm-memory` (`GuestMemoryMmap`), whose regions are
//! reference-counted: a queue keeps a snapshot of the space its rings live
//! in, so a client unmapping memory under a running queue cannot make the
//! device touch unmapped pages (the queue is stopped with a DMA fault
//! instead, and the snapshot goes with it).
//!
//! A mapping outlives nothing the client controls: the file must be sealed
//! against shrinking (`F_SEAL_SHRINK`) before `DMA_MAP`, so no truncation
//! can turn a device access into SIGBUS (which would end the device for
//! every function), and the device maps it itself and closes the
//! descriptor at once, so a mapping costs a VMA, never a file descriptor.

use crate::server::remote::Remote;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::Arc;
use vm_memory::{
    Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion, GuestRegionMmap, MmapRegion,
};

/// Most mappings a function may be configured to hold
/// (`FunctionLimits::max_dma_maps` is at most this).
pub const MAX_MAPPINGS: u16 = 4096;
/// Mappings are page-granular.
pub const PAGE: u64 = 4096;

/// Why a `DMA_MAP` or `DMA_UNMAP` was refused.
#[derive(Debug, thiserror::Error)]
pub enum DmaMapError {
    #[error("DMA mapping of {size:#x} bytes at IOVA {iova:#x}, file offset {offset:#x}: not page aligned or empty")]
    Unaligned { iova: u64, size: u64, offset: u64 },
    #[error("DMA mapping at IOVA {iova:#x} + {size:#x} wraps the address space")]
    Wraps { iova: u64, size: u64 },
    #[error("DMA mapping at IOVA {iova:#x} overlaps an existing mapping")]
    Overlap { iova: u64 },
    #[error("the function's budget of {0} DMA mappings is spent (vfio-user max_dma_maps); unmap some first")]
    TooMany(usize),
    #[error(
        "the file of a DMA mapping must be sealed against shrinking, or a truncation would fault the device: \
         create it with memfd_create(MFD_ALLOW_SEALING) and fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) before DMA_MAP \
         (seals found: {seals:#x})"
    )]
    Unsealed { seals: i32 },
    #[error("DMA mapping needs a file descriptor (this device does not support DMA_READ/DMA_WRITE messages)")]
    NoFd,
    #[error(
        "DMA mapping of {size:#x} bytes at file offset {offset:#x} runs past the end of the file ({file_len:#x} bytes)"
    )]
    PastEof { offset: u64, size: u64, file_len: u64 },
    #[error("mmap of the client's file failed: {0}")]
    Mmap(std::io::Error),
    #[error("DMA unmap of IOVA {iova:#x} + {size:#x} would split the mapping at {mapping:#x} (unmap whole mappings)")]
    Splits { iova: u64, size: u64, mapping: u64 },
}

impl DmaMapError {
    /// The errno of the vfio-user error reply.
    pub fn errno(&self) -> i32 {
        match self {
            DmaMapError::Unaligned { .. } | DmaMapError::Wraps { .. } | DmaMapError::PastEof { .. } => libc::EINVAL,
            DmaMapError::Overlap { .. } => libc::EEXIST,
            DmaMapError::TooMany(_) => libc::ENOSPC,
            DmaMapError::NoFd => libc::ENOTSUP,
            DmaMapError::Unsealed { .. } => libc::EPERM,
            DmaMapError::Mmap(e) => e.raw_os_error().unwrap_or(libc::EIO),
            DmaMapError::Splits { .. } => libc::EINVAL,
        }
    }
}

/// Add `seals` to a memfd.
pub fn seal(file: &File, seals: i32) -> std::io::Result<()> {
    // SAFETY: fcntl with an integer argument on a descriptor we own.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The seals of a file (0 for a file that cannot be sealed).
fn seals(file: &File) -> i32 {
    // SAFETY: fcntl with no argument on a descriptor we own.
    let s = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
    s.max(0)
}

/// A mapping of a client's file that the device made and unmaps when the
/// last space holding it goes (vm-memory's own mappings would keep the
/// descriptor open for as long as they live).
#[derive(Debug)]
struct Mapping {
    addr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; `Mapping` only unmaps it.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `addr..addr+len` is a mapping this value made and nothing
        // else unmaps; every user holds an `Arc` to it, so none is left.
        unsafe { libc::munmap(self.addr.as_ptr().cast(), self.len) };
    }
}

/// An access outside the function's mappings (or a write to a read-only
/// one), or (`busy`) a read by message put off: the client was waiting
/// for the device and could not answer; nothing failed, try again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaFault {
    pub iova: u64,
    pub len: u64,
    pub busy: bool,
}

impl DmaFault {
    pub fn new(iova: u64, len: u64) -> DmaFault {
        DmaFault { iova, len, busy: false }
    }
}

impl std::fmt::Display for DmaFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.busy {
            "DMA by message put off (the client is waiting for the device)"
        } else {
            "DMA fault"
        };
        write!(f, "{what} at IOVA {:#x} + {:#x}", self.iova, self.len)
    }
}

impl std::error::Error for DmaFault {}

/// The mappings of one function.
#[derive(Debug, Default, Clone)]
pub struct DmaSpace {
    mem: GuestMemoryMmap,
    /// IOVA ranges mapped read-only.
    read_only: Vec<(u64, u64)>,
    /// Every mapping as a flat window, for the data path: a frame or a
    /// descriptor lies in one mapping, found by a scan of a few entries
    /// and copied with one memcpy (vm-memory's general path, a region
    /// search and a volatile copy in chunks, is for everything else).
    /// Rebuilt whenever `mem` changes; the addresses stay valid while
    /// `mem` holds the regions.
    windows: Vec<Window>,
    /// The data path's view of `windows`: the [`HOT_WINDOWS`] largest in
    /// a fixed array it scans (a driver's usual few mappings; the unused
    /// entries are empty and match nothing), the rest in IOVA order,
    /// searched by halving. A function that holds its whole budget
    /// of mappings costs the shared engine a search of them, not a scan:
    /// with a scan, one that put its buffers past hundreds of mappings
    /// would have made every one of its frames cost the engine hundreds
    /// of compares that no meter charges.
    hot: [Window; HOT_WINDOWS],
    rest: Vec<Window>,
    /// The mappings behind `mem`'s regions (vm-memory sees them as raw
    /// ranges): a clone of the space keeps them mapped.
    maps: Vec<std::sync::Arc<Mapping>>,
    /// Mappings without a file (the client keeps the memory; the device
    /// reaches it by `DMA_READ`/`DMA_WRITE` messages): IOVA -> (length,
    /// writable).
    remote_windows: BTreeMap<u64, (u64, bool)>,
    /// The client connection those messages go through (set while a client
    /// that may map without a file is connected).
    remote: Option<Arc<Remote>>,
}

/// Most mappings of both kinds a function may hold at once (announced as
/// `max_dma_maps`): those without a file cost the device an entry each (a
/// vIOMMU maps guest memory page by page); those of files are further held
/// to the function's own budget. 65,535 is Linux's `dma_entry_limit`
/// default and the most QEMU's vfio-user client accepts.
pub const MAX_DMA_MAPS: usize = 65_535;

/// Mappings the data path scans before it searches (see `DmaSpace::hot`).
const HOT_WINDOWS: usize = 4;

/// One mapping: IOVA range, host address, writability (an empty one,
/// the default, matches nothing).
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    iova: u64,
    len: u64,
    host: usize,
    writable: bool,
}

impl Window {
    /// The offset of `iova` in this window, if it holds all of `[iova,
    /// iova + len)` (len > 0). Below the window the difference wraps past
    /// any window's length (a mapping is far shorter than 2^63 bytes).
    #[inline(always)]
    fn offset_of(&self, iova: u64, len: u64) -> Option<usize> {
        let off = iova.wrapping_sub(self.iova);
        (off < self.len && len <= self.len - off && len > 0).then_some(off as usize)
    }
}

impl DmaSpace {
    /// Map `size` bytes of `file` at `offset` to IOVA `iova`, if the
    /// space holds fewer than `budget` mappings of files. The file must be
    /// sealed against shrinking; its descriptor is closed once it is
    /// mapped. Without a file, or past `budget` with a client that can
    /// answer `DMA_READ`/`DMA_WRITE` (`set_remote`), the mapping is a
    /// window the device reaches by message; either way at most
    /// `MAX_DMA_MAPS` in all.
    pub fn map(
        &mut self,
        iova: u64,
        size: u64,
        file: Option<File>,
        offset: u64,
        writable: bool,
        budget: usize,
    ) -> Result<(), DmaMapError> {
        if size == 0 || !iova.is_multiple_of(PAGE) || !size.is_multiple_of(PAGE) || !offset.is_multiple_of(PAGE) {
            return Err(DmaMapError::Unaligned { iova, size, offset });
        }
        if iova.checked_add(size).is_none() || usize::try_from(size).is_err() {
            return Err(DmaMapError::Wraps { iova, size });
        }
        if self.overlaps(iova, size) {
            return Err(DmaMapError::Overlap { iova });
        }
        if self.len() >= MAX_DMA_MAPS {
            return Err(DmaMapError::TooMany(MAX_DMA_MAPS));
        }
        // Reached by message: a mapping without a file, or one of a file
        // past the function's budget of mmaps (a vIOMMU maps guest memory
        // page by page, each with its file) when the client can answer.
        let file = match file {
            Some(f) if self.mem.num_regions() < budget => f,
            Some(_) if self.remote.is_none() => return Err(DmaMapError::TooMany(budget)),
            None if self.remote.is_none() => return Err(DmaMapError::NoFd),
            _ => {
                self.remote_windows.insert(iova, (size, writable));
                return Ok(());
            }
        };
        let s = seals(&file);
        if s & libc::F_SEAL_SHRINK == 0 {
            return Err(DmaMapError::Unsealed { seals: s });
        }
        // A mapping past the end of the file would raise SIGBUS on access
        // (and the seal keeps the end where it is).
        let file_len = file.metadata().map_err(DmaMapError::Mmap)?.len();
        if offset.checked_add(size).is_none_or(|end| end > file_len) {
            return Err(DmaMapError::PastEof { offset, size, file_len });
        }
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        let len = size as usize;
        // SAFETY: a fresh shared mapping of `len` bytes of the client's
        // file at a kernel-chosen address (no MAP_FIXED); the result is
        // checked. It lies within the file (checked above), which cannot
        // shrink (sealed).
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(DmaMapError::Mmap(std::io::Error::last_os_error()));
        }
        drop(file);
        let mapping = std::sync::Arc::new(Mapping {
            addr: NonNull::new(addr.cast()).ok_or(DmaMapError::Wraps { iova, size })?,
            len,
        });
        // SAFETY: `addr..addr+len` is the mapping just made with `prot`
        // and MAP_SHARED; `self.maps` (and every clone of this space) holds
        // it for as long as vm-memory's region refers to it.
        let region = unsafe { MmapRegion::build_raw(addr.cast(), len, prot, libc::MAP_SHARED) }
            .map_err(|e| DmaMapError::Mmap(std::io::Error::other(e.to_string())))?;
        let region = GuestRegionMmap::new(region, GuestAddress(iova)).ok_or(DmaMapError::Wraps { iova, size })?;
        self.mem = self
            .mem
            .insert_region(std::sync::Arc::new(region))
            .map_err(|_| DmaMapError::Overlap { iova })?;
        self.maps.push(mapping);
        if !writable {
            self.read_only.push((iova, size));
        }
        self.rebuild_windows();
        Ok(())
    }

    fn rebuild_windows(&mut self) {
        self.windows = self
            .mem
            .iter()
            .filter_map(|r| {
                let host = r.get_host_address(vm_memory::MemoryRegionAddress(0)).ok()? as usize;
                let (iova, len) = (r.start_addr().raw_value(), r.len());
                let writable = !self.read_only.iter().any(|&(a, _)| a == iova);
                Some(Window {
                    iova,
                    len,
                    host,
                    writable,
                })
            })
            .collect();
        // vm-memory keeps its regions in address order and refuses
        // overlaps; each is an mmap, far shorter than the 2^63 bytes that
        // `offset_of`'s wrapping difference needs.
        debug_assert!(self.windows.windows(2).all(|p| p[0].iova + p[0].len <= p[1].iova));
        debug_assert!(self.windows.iter().all(|w| w.len < 1 << 62));
        // The hot few: the largest mappings (where a driver's buffers and
        // rings most likely are: its buffer pool, a QEMU guest's RAM past
        // its ROMs), largest first, ties in IOVA order, picked in one pass
        // (a map or unmap runs this, and a function may hold thousands);
        // the rest stay in IOVA order for the search.
        let mut top: Vec<Window> = Vec::with_capacity(HOT_WINDOWS + 1);
        for w in &self.windows {
            let at = top.iter().position(|t| t.len < w.len).unwrap_or(top.len());
            if at < HOT_WINDOWS {
                top.insert(at, *w);
                top.truncate(HOT_WINDOWS);
            }
        }
        self.hot = [Window::default(); HOT_WINDOWS];
        for (h, t) in self.hot.iter_mut().zip(&top) {
            *h = *t;
        }
        // A window is its IOVA: they do not overlap.
        self.rest = self
            .windows
            .iter()
            .filter(|w| top.iter().all(|t| t.iova != w.iova))
            .copied()
            .collect();
    }

    /// The window holding all of `[iova, iova + len)` (len > 0): a scan of
    /// the hot few, then a search of the rest.
    #[inline]
    fn window(&self, iova: u64, len: u64) -> Option<(Window, usize)> {
        for w in &self.hot {
            if let Some(off) = w.offset_of(iova, len) {
                return Some((*w, off));
            }
        }
        if self.rest.is_empty() {
            None
        } else {
            self.window_past_hot(iova, len)
        }
    }

    /// [`DmaSpace::window`] past the hot few: the only candidate is the
    /// last of the rest starting at or below `iova` (windows do not
    /// overlap, and a range in a hot one was found there), found by
    /// halving.
    #[cold]
    #[inline(never)]
    fn window_past_hot(&self, iova: u64, len: u64) -> Option<(Window, usize)> {
        let i = self.rest.partition_point(|w| w.iova <= iova);
        let w = self.rest.get(i.checked_sub(1)?)?;
        Some((*w, w.offset_of(iova, len)?))
    }

    /// Whether `[iova, iova + size)` (not empty, not wrapping) meets a
    /// mapping of either kind.
    fn overlaps(&self, iova: u64, size: u64) -> bool {
        let end = iova + size;
        self.windows.iter().any(|w| iova < w.iova + w.len && w.iova < end)
            || self
                .remote_windows
                .range(..end)
                .next_back()
                .is_some_and(|(&a, &(len, _))| iova < a + len)
    }

    /// Let mappings without a file go through `remote` (a client that
    /// can answer `DMA_READ`/`DMA_WRITE`), or stop that (`None`).
    pub fn set_remote(&mut self, remote: Option<Arc<Remote>>) {
        self.remote = remote;
    }

    /// The remote window holding `iova`: (start, length, writable).
    fn remote_window(&self, iova: u64) -> Option<(u64, u64, bool)> {
        let (&a, &(len, w)) = self.remote_windows.range(..=iova).next_back()?;
        (iova - a < len).then_some((a, len, w))
    }

    /// Whether `[iova, iova + len)` is mapped, writable too if `write`,
    /// in adjacent mappings at least one of which is reached by message
    /// (the rest may be files: past its budget of mmaps a function's
    /// mappings of one file alternate between the kinds). Such a range
    /// goes by message as a whole; the client answers for all it mapped.
    fn remote_covers(&self, iova: u64, len: u64, write: bool) -> bool {
        self.has_remote_windows() && self.covered(iova, len, write) == Some(true)
    }

    /// Whether `[iova, iova + len)` is mapped, writable too if `write`, in
    /// adjacent mappings of either kind: `Some(true)` if one of them is
    /// reached by message.
    fn covered(&self, iova: u64, len: u64, write: bool) -> Option<bool> {
        let end = iova.checked_add(len)?;
        let (mut at, mut by_message) = (iova, false);
        while at < end {
            if let Some((a, l, w)) = self.remote_window(at) {
                if write && !w {
                    return None;
                }
                (at, by_message) = (a + l, true);
            } else if let Some((w, _)) = self.window(at, 1) {
                if write && !w.writable {
                    return None;
                }
                at = w.iova + w.len;
            } else {
                return None;
            }
        }
        (len > 0).then_some(by_message)
    }

    /// Whether some mapping is reached by message.
    pub fn has_remote_windows(&self) -> bool {
        !self.remote_windows.is_empty()
    }

    /// The client connection behind the remote windows, if any.
    pub fn remote(&self) -> Option<&Arc<Remote>> {
        self.remote.as_ref()
    }

    /// Whether `[iova, iova + len)` can be reached by message, writable
    /// too if `write`: the client answers `DMA_READ`/`DMA_WRITE` and the
    /// range is mapped, in mappings of either kind (a queue across several
    /// mappings of files, not adjacent in the file, goes by message too).
    pub fn is_remote(&self, iova: u64, len: u64, write: bool) -> bool {
        self.remote.is_some() && self.covered(iova, len, write).is_some()
    }

    /// Remove every mapping (of either kind) inside `[iova, iova + size)`,
    /// as the kernel's VFIO type1 `UNMAP_DMA` does: a range may hold
    /// several mappings (QEMU's vIOMMU unmaps a 2 MiB range of pages it
    /// mapped one by one) or none (it unmaps the whole address space in
    /// large pieces); a range that would cut a mapping in two is refused
    /// and removes nothing. Returns how many went.
    pub fn unmap(&mut self, iova: u64, size: u64) -> Result<usize, DmaMapError> {
        // The last byte, not the end: a range may run to the top of the
        // address space (QEMU unmaps up to 2^64).
        let last = size
            .checked_sub(1)
            .and_then(|s| iova.checked_add(s))
            .ok_or(DmaMapError::Wraps { iova, size })?;
        let split = |mapping| DmaMapError::Splits { iova, size, mapping };
        // A mapping [a, a + len) is cut if it holds iova past its start,
        // or holds last short of its end.
        let cut = |a: u64, len: u64| (a < iova && iova - a < len) || (a <= last && last - a < len - 1);
        if let Some(w) = self.windows.iter().find(|w| cut(w.iova, w.len)) {
            return Err(split(w.iova));
        }
        for at in [iova, last] {
            if let Some((a, _, _)) = self.remote_window(at).filter(|&(a, len, _)| cut(a, len)) {
                return Err(split(a));
            }
        }
        let remote: Vec<u64> = self.remote_windows.range(iova..=last).map(|(&a, _)| a).collect();
        for a in &remote {
            self.remote_windows.remove(a);
        }
        let files: Vec<(u64, u64)> = self
            .windows
            .iter()
            .filter(|w| w.iova >= iova && w.iova <= last)
            .map(|w| (w.iova, w.len))
            .collect();
        for &(a, len) in &files {
            let (mem, _) = self.mem.remove_region(GuestAddress(a), len).map_err(|_| split(a))?;
            self.mem = mem;
            self.read_only.retain(|&(r, _)| r != a);
        }
        if !files.is_empty() {
            self.rebuild_windows();
            // Release the mappings (clones held by queues keep them until
            // they go).
            let live: Vec<usize> = self.windows.iter().map(|w| w.host).collect();
            self.maps.retain(|m| live.contains(&(m.addr.as_ptr() as usize)));
        }
        Ok(remote.len() + files.len())
    }

    /// Remove every mapping.
    pub fn unmap_all(&mut self) {
        let remote = self.remote.take();
        *self = DmaSpace::default();
        self.remote = remote;
    }

    /// Forget every mapping and the client connection (the client is
    /// gone).
    pub fn clear(&mut self) {
        *self = DmaSpace::default();
    }

    /// Whether `[iova, iova + len)` is entirely mapped (in one or more
    /// adjacent mappings).
    pub fn contains(&self, iova: u64, len: u64) -> bool {
        usize::try_from(len).is_ok_and(|len| self.mem.check_range(GuestAddress(iova), len))
            || self.remote_covers(iova, len, false)
    }

    /// Whether the range overlaps a read-only mapping.
    fn touches_read_only(&self, iova: u64, len: u64) -> bool {
        self.read_only
            .iter()
            .any(|&(a, s)| iova < a + s && a < iova.saturating_add(len))
    }

    /// Copy from device memory into `buf`.
    pub fn read(&self, iova: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        if let Some((w, off)) = self.window(iova, buf.len() as u64) {
            // SAFETY: `[off, off + buf.len())` lies inside the window, a
            // live mapping `self.mem` holds; `buf` is ours and cannot
            // overlap shared memory we only reach through raw pointers. The
            // client may write the bytes meanwhile (a racing client reads
            // back garbage it wrote, as with real DMA).
            unsafe { std::ptr::copy_nonoverlapping((w.host + off) as *const u8, buf.as_mut_ptr(), buf.len()) };
            return Ok(());
        }
        if let Some(r) = self
            .remote
            .as_ref()
            .filter(|_| self.remote_covers(iova, buf.len() as u64, false))
        {
            return r.read(iova, buf);
        }
        self.mem
            .read_slice(buf, GuestAddress(iova))
            .map_err(|_| DmaFault::new(iova, buf.len() as u64))
    }

    /// Copy `buf` into device memory.
    pub fn write(&self, iova: u64, buf: &[u8]) -> Result<(), DmaFault> {
        let fault = DmaFault::new(iova, buf.len() as u64);
        if let Some((w, off)) = self.window(iova, buf.len() as u64).filter(|(w, _)| w.writable) {
            // SAFETY: as in `read`, the destination lies inside a live
            // writable mapping held by `self.mem`.
            unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), (w.host + off) as *mut u8, buf.len()) };
            return Ok(());
        }
        if self.touches_read_only(iova, buf.len() as u64) {
            return Err(fault);
        }
        if let Some(r) = self
            .remote
            .as_ref()
            .filter(|_| self.remote_covers(iova, buf.len() as u64, true))
        {
            return r.write(iova, buf, false);
        }
        self.mem.write_slice(buf, GuestAddress(iova)).map_err(|_| fault)
    }

    /// The host address of `[iova, iova + len)`, which must lie in a single
    /// writable mapping. The pointer is valid as long as this space (or a
    /// clone of it) keeps that mapping.
    pub fn host_range(&self, iova: u64, len: u64) -> Result<NonNull<u8>, DmaFault> {
        if self.touches_read_only(iova, len) {
            return Err(DmaFault::new(iova, len));
        }
        self.host_range_for_read(iova, len)
    }

    /// Hint that `[iova, iova + len)` will be read soon (the first two
    /// cache lines), as a device's DMA engine starts reads for a burst of
    /// descriptors before it processes them. Does nothing for unmapped
    /// addresses.
    pub fn prefetch(&self, iova: u64, len: u64) {
        #[cfg(target_arch = "x86_64")]
        if let Ok(p) = self.host_range_for_read(iova, len.clamp(1, 128)) {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let p = p.as_ptr().cast::<i8>().cast_const();
            // SAFETY: a prefetch is a hint that never faults nor reads
            // into the program (any address is allowed); SSE is part of
            // the x86_64 baseline.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(p);
                if len > 64 {
                    _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64));
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (iova, len);
    }

    /// Hint that the cache line at `iova` will be written soon (an RX
    /// buffer the next frame goes to). Does nothing for unmapped or
    /// read-only addresses.
    pub fn prefetch_write(&self, iova: u64) {
        #[cfg(target_arch = "x86_64")]
        if let Some((w, off)) = self.window(iova, 1).filter(|(w, _)| w.writable) {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_ET0};
            let p = (w.host + off) as *const i8;
            // SAFETY: a prefetch is a hint that never faults nor reads
            // into the program; the address lies in a live mapping anyway.
            unsafe { _mm_prefetch::<_MM_HINT_ET0>(p) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = iova;
    }

    /// As [`DmaSpace::host_range`], for reading only (read-only mappings
    /// qualify).
    pub fn host_range_for_read(&self, iova: u64, len: u64) -> Result<NonNull<u8>, DmaFault> {
        let fault = DmaFault::new(iova, len);
        let ulen = usize::try_from(len).map_err(|_| fault)?;
        if ulen == 0 {
            return Err(fault);
        }
        if let Some((w, off)) = self.window(iova, len) {
            return NonNull::new((w.host + off) as *mut u8).ok_or(fault);
        }
        let (region, addr) = self.mem.to_region_addr(GuestAddress(iova)).ok_or(fault)?;
        let slice = region.get_slice(addr, ulen).map_err(|_| fault)?;
        NonNull::new(slice.ptr_guard_mut().as_ptr()).ok_or(fault)
    }

    /// Copy `len` bytes from `src` at `src_iova` to `dst` at `dst_iova` (a
    /// frame moving from one function's TX buffer to another's RX buffer)
    /// without an intermediate buffer when both ranges are contiguous.
    pub fn copy(src: &DmaSpace, src_iova: u64, dst: &DmaSpace, dst_iova: u64, len: usize) -> Result<(), DmaFault> {
        if len == 0 {
            return Ok(());
        }
        let s = src.host_range_for_read(src_iova, len as u64);
        let d = dst.host_range(dst_iova, len as u64);
        match (s, d) {
            (Ok(s), Ok(d)) => {
                // SAFETY: both ranges are `len` bytes inside live mappings
                // (host_range checked); `copy` allows overlap (the two
                // functions may have mapped the same memory).
                unsafe { std::ptr::copy(s.as_ptr(), d.as_ptr(), len) };
                Ok(())
            }
            _ => {
                let mut tmp = vec![0u8; len];
                src.read(src_iova, &mut tmp)?;
                dst.write(dst_iova, &tmp)
            }
        }
    }

    /// Every mapping: (IOVA, length, writable), by IOVA.
    pub fn ranges(&self) -> Vec<(u64, u64, bool)> {
        let mut r: Vec<(u64, u64, bool)> = self.windows.iter().map(|w| (w.iova, w.len, w.writable)).collect();
        r.extend(self.remote_windows.iter().map(|(&a, &(l, w))| (a, l, w)));
        r.sort_unstable();
        r
    }

    /// Number of mappings of files (each an mmap in the device).
    pub fn files(&self) -> usize {
        self.mem.num_regions()
    }

    /// Number of mappings (of both kinds).
    pub fn len(&self) -> usize {
        self.mem.num_regions() + self.remote_windows.len()
    }

    /// Whether nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
pub(crate) mod tests;
