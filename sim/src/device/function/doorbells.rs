//! The doorbell pages a client maps and the device polls.

use super::*;

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
    pub(super) fn word(&self, offset: u64) -> Option<&AtomicU64> {
        if !offset.is_multiple_of(8) || offset + 8 > self.len {
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
    pub(super) fn access(&self, offset: u64, data: &mut [u8], write: bool) -> bool {
        let Some(end) = offset.checked_add(data.len() as u64) else {
            return false;
        };
        if end > self.len {
            return false;
        }
        // A single aligned word is done atomically, as a doorbell write is.
        if data.len() == 8 && offset.is_multiple_of(8) {
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
