//! Packet buffers: fixed-size buffers carved from DMA memory, owned one at
//! a time through [`Mbuf`] handles. An `Mbuf` is a unique owner: while the
//! driver holds it, the device has no descriptor pointing at its buffer,
//! so the driver may read and write the bytes through ordinary slices;
//! posting it (`tx_burst`, RX refill) hands it to the device and the handle
//! comes back only when the device is done with it.
//!
//! A pool belongs to one thread (no locks on the data path); its memory
//! must be DMA-mapped into every function whose queues carry its buffers.

use crate::mem::{DmaMemory, MemError};
use dataplane::abi::MeterColor;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

/// Buffer size: a full frame with room to spare.
pub const BUF_SIZE: u32 = 2048;

static NEXT_POOL: AtomicU16 = AtomicU16::new(1);

/// One packet buffer, owned.
#[derive(Debug, PartialEq, Eq)]
pub struct Mbuf {
    pool: u16,
    idx: u32,
    len: u16,
    /// What the device said about a received frame.
    rx: RxMeta,
}

/// What the RX completion said about a frame (all zero on a buffer that
/// was not received).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxMeta {
    /// Device time (ns, low 32 bits) the frame left the pipeline.
    pub timestamp: u32,
    /// The LIF that sent it (`LIF_UPLINK` for the wire).
    pub src_lif: u16,
    /// The color its sender's meters marked it with.
    pub meter: MeterColor,
}

impl Default for RxMeta {
    fn default() -> Self {
        RxMeta {
            timestamp: 0,
            src_lif: 0,
            meter: MeterColor::None,
        }
    }
}

impl Mbuf {
    /// What the device reported with the frame when it was received.
    pub fn rx_meta(&self) -> RxMeta {
        self.rx
    }

    pub(crate) fn set_rx_meta(&mut self, m: RxMeta) {
        self.rx = m;
    }

    /// Bytes of frame in the buffer.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether the buffer holds no frame.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Set the frame length (at most [`BUF_SIZE`]).
    pub fn set_len(&mut self, len: usize) {
        assert!(
            len <= BUF_SIZE as usize,
            "frame of {len} bytes in a {BUF_SIZE}-byte buffer"
        );
        self.len = len as u16;
    }
}

/// A pool of packet buffers.
#[derive(Debug)]
pub struct Pool {
    id: u16,
    mem: Arc<DmaMemory>,
    base_iova: u64,
    base: std::ptr::NonNull<u8>,
    count: u32,
    free: Vec<u32>,
}

// SAFETY: the pool's pointers refer to DMA memory kept alive by `mem`; a
// pool moves between threads as a whole, it is not shared.
unsafe impl Send for Pool {}

impl Pool {
    /// `count` buffers from `mem`.
    pub fn new(mem: Arc<DmaMemory>, count: u32) -> Result<Pool, MemError> {
        let buf = mem.alloc(u64::from(count) * u64::from(BUF_SIZE), 4096)?;
        Ok(Pool {
            id: NEXT_POOL.fetch_add(1, Ordering::Relaxed),
            base_iova: buf.iova,
            base: buf.ptr,
            mem,
            count,
            free: (0..count).rev().collect(),
        })
    }

    /// A number identifying this pool.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The memory the buffers live in.
    pub fn memory(&self) -> &Arc<DmaMemory> {
        &self.mem
    }

    /// Take a buffer.
    #[inline]
    #[must_use = "a buffer taken is the pool's no more until it is freed or posted"]
    pub fn alloc(&mut self) -> Option<Mbuf> {
        self.free.pop().map(|idx| Mbuf {
            pool: self.id,
            idx,
            len: 0,
            rx: RxMeta::default(),
        })
    }

    /// Give a buffer back.
    #[inline]
    pub fn free(&mut self, m: Mbuf) {
        self.check(&m);
        self.free.push(m.idx);
    }

    /// Buffers available.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Buffers in all.
    pub fn capacity(&self) -> u32 {
        self.count
    }

    /// What makes `data` and `buffer_mut` sound: the handle is this
    /// pool's, and its index names one of its buffers. Every handle is
    /// made by `alloc` or `reclaim_index`, which check the index, so the
    /// second test fails only for a handle of another pool that shares
    /// this one's number (numbers wrap after 65535 pools); it is a real
    /// check, not a debug one, because memory safety rests on it.
    #[inline]
    fn check(&self, m: &Mbuf) {
        assert_eq!(m.pool, self.id, "an Mbuf went to a pool it does not come from");
        assert!(
            m.idx < self.count,
            "an Mbuf names buffer {} of a {}-buffer pool",
            m.idx,
            self.count
        );
    }

    /// The buffer's IOVA.
    #[inline]
    pub fn iova(&self, m: &Mbuf) -> u64 {
        self.check(m);
        self.base_iova + u64::from(m.idx) * u64::from(BUF_SIZE)
    }

    /// The frame's bytes.
    #[inline]
    pub fn data<'a>(&'a self, m: &'a Mbuf) -> &'a [u8] {
        self.check(m);
        // SAFETY: buffer `idx` lies inside the pool's allocation of `count`
        // buffers (idx < count: `check`), which `mem` keeps mapped, and
        // `len <= BUF_SIZE` (`set_len`, `reclaim_index`); the Mbuf is the
        // buffer's unique owner and no descriptor points at it (module
        // docs), so nobody writes it meanwhile.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(m.idx as usize * BUF_SIZE as usize), m.len()) }
    }

    /// The whole buffer, for writing a frame (then [`Mbuf::set_len`]).
    #[inline]
    pub fn buffer_mut<'a>(&'a self, m: &'a mut Mbuf) -> &'a mut [u8] {
        self.check(m);
        // SAFETY: as in `data` (idx < count: `check`); `&mut Mbuf` makes
        // the access exclusive.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.base.as_ptr().add(m.idx as usize * BUF_SIZE as usize),
                BUF_SIZE as usize,
            )
        }
    }

    /// Re-create the handle of a buffer the device handed back (RX
    /// completion, TX reclaim), by index. Only queues call this, for
    /// indices they posted; `None` if `idx` is not a buffer of this pool or
    /// `len` does not fit one (the handle's bytes are read through
    /// [`Pool::data`], so this is checked in every build).
    #[must_use = "the buffer the device handed back is lost to the pool unless freed or kept"]
    pub(crate) fn reclaim_index(&self, idx: u32, len: u16) -> Option<Mbuf> {
        (idx < self.count && u32::from(len) <= BUF_SIZE).then_some(Mbuf {
            pool: self.id,
            idx,
            len,
            rx: RxMeta::default(),
        })
    }

    /// The index of a buffer (queues remember it per slot).
    #[must_use = "the handle is gone: the index is all that names the buffer now"]
    pub(crate) fn index(&self, m: Mbuf) -> u32 {
        self.check(&m);
        m.idx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::MemKind;

    #[test]
    fn buffers_come_and_go() {
        let mem = Arc::new(DmaMemory::new(1 << 20, 0x4000_0000, MemKind::Pages).unwrap());
        let mut p = Pool::new(mem, 8).unwrap();
        let mut a = p.alloc().unwrap();
        let b = p.alloc().unwrap();
        assert_ne!(p.iova(&a), p.iova(&b));
        p.buffer_mut(&mut a)[..4].copy_from_slice(&[1, 2, 3, 4]);
        a.set_len(4);
        assert_eq!(p.data(&a), &[1, 2, 3, 4]);
        p.free(a);
        p.free(b);
        assert_eq!(p.available(), 8);
        let all: Vec<Mbuf> = std::iter::from_fn(|| p.alloc()).collect();
        assert_eq!(all.len(), 8);
        assert!(p.alloc().is_none());
    }

    #[test]
    fn reclaimed_indices_and_lengths_are_bounded() {
        let mem = Arc::new(DmaMemory::new(1 << 20, 0x4000_0000, MemKind::Pages).unwrap());
        let mut p = Pool::new(mem, 4).unwrap();
        let all: Vec<Mbuf> = std::iter::from_fn(|| p.alloc()).collect();
        let idx: Vec<u32> = all.into_iter().map(|m| p.index(m)).collect();
        let m = p.reclaim_index(idx[3], BUF_SIZE as u16).expect("in range");
        assert_eq!(p.data(&m).len(), BUF_SIZE as usize);
        p.free(m);
        assert!(p.reclaim_index(4, 0).is_none(), "past the last buffer");
        assert!(p.reclaim_index(u32::MAX, 0).is_none(), "the empty-slot marker");
        assert!(
            p.reclaim_index(0, BUF_SIZE as u16 + 1).is_none(),
            "longer than a buffer"
        );
    }

    #[test]
    #[should_panic(expected = "names buffer 9 of a 4-buffer pool")]
    fn a_handle_past_the_pool_is_refused_before_any_access() {
        let mem = Arc::new(DmaMemory::new(1 << 20, 0x4000_0000, MemKind::Pages).unwrap());
        let p = Pool::new(mem, 4).unwrap();
        // What a handle of another pool with the same (wrapped) number
        // looks like.
        let m = Mbuf {
            pool: p.id(),
            idx: 9,
            len: 64,
            rx: RxMeta::default(),
        };
        let _ = p.data(&m);
    }

    #[test]
    #[should_panic(expected = "does not come from")]
    fn a_foreign_mbuf_is_refused() {
        let mem = Arc::new(DmaMemory::new(1 << 20, 0x4000_0000, MemKind::Pages).unwrap());
        let mut p = Pool::new(mem.clone(), 4).unwrap();
        let mut q = Pool::new(mem, 4).unwrap();
        let m = p.alloc().unwrap();
        q.free(m);
    }
}
