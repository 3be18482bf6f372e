//! A bare-hands client of one simulated function, built from rust-vmm's
//! vfio-user client and the ABI definitions only (no driver code): it maps
//! memory, rings doorbells, writes descriptors and reads completions the
//! way the ABI document says, so the tests prove the protocol surface.

#![allow(dead_code)]

pub mod msg;

use dataplane::abi::*;
use dataplane::ring::Producer;
use sim::pci;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering};
use vfio_bindings::bindings::vfio::*;
use vfio_user::Client;

/// IOVA where the test maps its memory.
pub const IOVA: u64 = 0x1000_0000;
/// Size of the test's DMA memory.
pub const MEM: u64 = 8 << 20;

/// A shared mapping of a memfd.
pub struct Mem {
    pub file: File,
    pub ptr: NonNull<u8>,
    pub len: u64,
}

impl Mem {
    pub fn new(len: u64) -> Mem {
        // SAFETY: plain syscalls with checked results; the mapping is owned
        // by the returned value and unmapped on drop.
        unsafe {
            let fd = libc::memfd_create(c"test-dma".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING);
            assert!(fd >= 0);
            let file = File::from_raw_fd(fd);
            file.set_len(len).unwrap();
            // The device maps only files that cannot shrink under it.
            assert_eq!(libc::fcntl(fd, libc::F_ADD_SEALS, libc::F_SEAL_SHRINK), 0);
            let p = libc::mmap(
                std::ptr::null_mut(),
                len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            Mem {
                file,
                ptr: NonNull::new(p.cast()).unwrap(),
                len,
            }
        }
    }

    fn at(&self, iova: u64, len: usize) -> *mut u8 {
        let off = iova.checked_sub(IOVA).expect("iova in test memory");
        assert!(off + len as u64 <= self.len);
        // SAFETY: in bounds (checked).
        unsafe { self.ptr.as_ptr().add(off as usize) }
    }

    pub fn write(&self, iova: u64, data: &[u8]) {
        // SAFETY: in bounds; the device may read concurrently, which is the
        // protocol's business, not a Rust aliasing question (raw pointers).
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.at(iova, data.len()), data.len()) }
    }

    pub fn read(&self, iova: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        // SAFETY: in bounds.
        unsafe { std::ptr::copy_nonoverlapping(self.at(iova, len), v.as_mut_ptr(), len) };
        v
    }

    pub fn ptr(&self, iova: u64, len: usize) -> NonNull<u8> {
        NonNull::new(self.at(iova, len)).unwrap()
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        // SAFETY: mapped in new() with this length.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len as usize) };
    }
}

/// A mapped doorbell area.
pub struct Doorbells {
    ptr: NonNull<u8>,
    len: usize,
}

impl Drop for Doorbells {
    fn drop(&mut self) {
        // SAFETY: mapped in RawFn::connect with this length.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

impl Doorbells {
    pub fn ring(&self, slot: u16, qtype: QueueType, qindex: u16, outgoing_tail: u32) {
        let off = usize::from(slot) * 4096 + doorbell_offset_in_page(qtype, qindex).unwrap() as usize;
        assert!(off + 8 <= self.len);
        let v = Doorbell {
            qtype,
            qindex,
            outgoing_tail,
        }
        .encode();
        // SAFETY: in bounds, 8-aligned, a shared mapping: atomic store.
        unsafe { AtomicU64::from_ptr(self.ptr.as_ptr().add(off).cast()).store(v.to_le(), Ordering::Release) };
    }

    pub fn write_raw(&self, slot: u16, offset: usize, v: u64) {
        let off = usize::from(slot) * 4096 + offset;
        // SAFETY: as above.
        unsafe { AtomicU64::from_ptr(self.ptr.as_ptr().add(off).cast()).store(v.to_le(), Ordering::Release) };
    }
}

/// A completion ring the test reads.
pub struct CompRing {
    pub base: u64,
    pub order: u8,
    pub head: u32,
}

/// One queue the test created.
pub struct Queue<T: dataplane::ring::RingElem> {
    pub ring: Producer<'static, T>,
    pub cq: CompRing,
    pub state: u64,
    pub ring_base: u64,
    pub qindex: u16,
    pub lif: u16,
    pub slot: u16,
    pub qtype: QueueType,
}

/// What the tests need of a vfio-user client: rust-vmm's (shared memory),
/// or [`msg::MsgClient`] (memory reached by message).
pub trait Transport {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> Result<(), String>;
    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> Result<(), String>;
    /// `fd` -1: map without a file (the device reaches it by message).
    fn dma_map(&mut self, offset: u64, address: u64, size: u64, fd: i32) -> Result<(), String>;
    fn dma_unmap(&mut self, address: u64, size: u64) -> Result<(), String>;
    fn region(&self, index: u32) -> Option<&vfio_user::Region>;
    fn reset(&mut self) -> Result<(), String>;
    fn set_irqs(&mut self, index: u32, flags: u32, start: u32, count: u32, fds: &[i32]) -> Result<(), String>;
    /// `DEVICE_GET_IRQ_INFO`: (flags, count).
    fn irq_info(&mut self, index: u32) -> Result<(u32, u32), String>;
}

impl Transport for Client {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> Result<(), String> {
        Client::region_read(self, region, offset, data).map_err(|e| e.to_string())
    }
    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> Result<(), String> {
        Client::region_write(self, region, offset, data).map_err(|e| e.to_string())
    }
    fn dma_map(&mut self, offset: u64, address: u64, size: u64, fd: i32) -> Result<(), String> {
        Client::dma_map(self, offset, address, size, fd).map_err(|e| e.to_string())
    }
    fn dma_unmap(&mut self, address: u64, size: u64) -> Result<(), String> {
        Client::dma_unmap(self, address, size).map_err(|e| e.to_string())
    }
    fn region(&self, index: u32) -> Option<&vfio_user::Region> {
        Client::region(self, index)
    }
    fn reset(&mut self) -> Result<(), String> {
        Client::reset(self).map_err(|e| e.to_string())
    }
    fn set_irqs(&mut self, index: u32, flags: u32, start: u32, count: u32, fds: &[i32]) -> Result<(), String> {
        Client::set_irqs(self, index, flags, start, count, fds).map_err(|e| e.to_string())
    }
    fn irq_info(&mut self, index: u32) -> Result<(u32, u32), String> {
        Client::get_irq_info(self, index)
            .map(|i| (i.flags, i.count))
            .map_err(|e| e.to_string())
    }
}

/// The test's view of one function. Field order is drop order: the admin
/// queue (which points into `mem`) goes before `mem`, and so does the
/// client (a message client's thread reads `mem`).
pub struct RawFn {
    pub admin: Option<Queue<AdminCmd>>,
    pub client: Box<dyn Transport>,
    pub doorbells: Doorbells,
    pub mem: Mem,
    next: u64,
    tag: u16,
    pub eventfds: Vec<File>,
    /// Whether `enable` unmasks the vectors in the device's MSI-X table
    /// (nicdrv's vfio-user backend does; QEMU emulates the table and
    /// never writes the device's).
    pub writes_msix_table: bool,
}

fn eventfd() -> File {
    // SAFETY: plain syscall, checked.
    unsafe {
        let fd = libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK);
        assert!(fd >= 0);
        File::from_raw_fd(fd)
    }
}

impl RawFn {
    /// Connect, map the test memory for DMA, and map the doorbell pages.
    pub fn connect(path: &Path) -> RawFn {
        Self::connect_with(path, true)
    }

    /// Connected, enabled with one vector, and its admin queue made: what
    /// most tests start from.
    pub fn ready(path: &Path) -> RawFn {
        let mut f = Self::connect(path);
        f.enable(1);
        f.init_admin();
        f
    }

    /// Connect and map the doorbell pages; map the test memory for DMA
    /// only if `map_dma`.
    pub fn connect_with(path: &Path, map_dma: bool) -> RawFn {
        let mut client = Client::new(path).expect("vfio-user handshake");
        let mem = Mem::new(MEM);
        if map_dma {
            client.dma_map(0, IOVA, MEM, mem.file.as_raw_fd()).unwrap();
        }
        Self::with_client(Box::new(client), mem)
    }

    /// Connect sharing no memory with the device: the test memory is mapped
    /// without a file and the client answers the device's DMA requests
    /// from it.
    /// Returns the count of requests the client answered, and its mute
    /// switch.
    pub fn connect_by_message(
        path: &Path,
    ) -> (
        RawFn,
        std::sync::Arc<std::sync::atomic::AtomicU64>,
        std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) {
        Self::connect_by_message_with(path, false)
    }

    /// As `connect_by_message`; with `page_by_page`, the memory is mapped
    /// as QEMU behind a vIOMMU maps it: a page a mapping, each with its
    /// file, far more than the function's budget of mmaps (the device maps
    /// the first 64 it is given and reaches the rest by message).
    pub fn connect_by_message_with(
        path: &Path,
        page_by_page: bool,
    ) -> (
        RawFn,
        std::sync::Arc<std::sync::atomic::AtomicU64>,
        std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) {
        let mem = Mem::new(MEM);
        let served = msg::Served {
            iova: IOVA,
            host: mem.ptr.as_ptr() as usize,
            len: MEM,
        };
        let mut client = msg::MsgClient::connect(path, served);
        let counter = client.served.clone();
        let mute = client.mute.clone();
        if page_by_page {
            // The device's 64 mmaps go to pages 0..49 (each its own mmap:
            // a ring there spans several), then to every other page up to
            // 77 (rings there mix the kinds); the rest is by message.
            let pages = MEM / 4096;
            let order = (0..49).chain((49..pages).step_by(2)).chain((50..pages).step_by(2));
            for page in order {
                client
                    .dma_map(page * 4096, IOVA + page * 4096, 4096, mem.file.as_raw_fd())
                    .expect("DMA_MAP of a page");
            }
        } else {
            client.dma_map(0, IOVA, MEM, -1).expect("DMA_MAP without a file");
        }
        let mut f = Self::with_client(Box::new(client), mem);
        // As QEMU: the MSI-X table is the client's own.
        f.writes_msix_table = false;
        (f, counter, mute)
    }

    fn with_client(client: Box<dyn Transport>, mem: Mem) -> RawFn {
        let bar0 = client.region(VFIO_PCI_BAR0_REGION_INDEX).expect("BAR0");
        let fo = bar0.file_offset.as_ref().expect("BAR0 comes with an mmap fd");
        let area = bar0.sparse_areas[0];
        // SAFETY: mapping the device's doorbell area at the offset it
        // announced; checked result; unmapped on drop.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                area.size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fo.file().as_raw_fd(),
                (fo.start() + area.offset) as libc::off_t,
            )
        };
        assert_ne!(
            p,
            libc::MAP_FAILED,
            "mmap doorbells: {}",
            std::io::Error::last_os_error()
        );
        let doorbells = Doorbells {
            ptr: NonNull::new(p.cast()).unwrap(),
            len: area.size as usize,
        };
        RawFn {
            client,
            mem,
            next: IOVA,
            doorbells,
            admin: None,
            tag: 0,
            eventfds: Vec::new(),
            writes_msix_table: true,
        }
    }

    /// Allocate `len` bytes of DMA memory aligned to `align`, zeroed.
    pub fn alloc(&mut self, len: u64, align: u64) -> u64 {
        let at = (self.next + align - 1) & !(align - 1);
        assert!(at + len <= IOVA + MEM, "test memory exhausted");
        self.next = at + len;
        self.mem.write(at, &vec![0; len as usize]);
        at
    }

    pub fn cfg_read(&mut self, offset: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0; len];
        self.client
            .region_read(VFIO_PCI_CONFIG_REGION_INDEX, offset, &mut b)
            .unwrap();
        b
    }

    pub fn cfg_read16(&mut self, offset: u64) -> u16 {
        u16::from_le_bytes(self.cfg_read(offset, 2).try_into().unwrap())
    }

    pub fn cfg_write16(&mut self, offset: u64, v: u16) {
        self.client
            .region_write(VFIO_PCI_CONFIG_REGION_INDEX, offset, &v.to_le_bytes())
            .unwrap();
    }

    pub fn bar0_read(&mut self, offset: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0; len];
        self.client
            .region_read(VFIO_PCI_BAR0_REGION_INDEX, offset, &mut b)
            .unwrap();
        b
    }

    pub fn bar0_write(&mut self, offset: u64, data: &[u8]) {
        self.client
            .region_write(VFIO_PCI_BAR0_REGION_INDEX, offset, data)
            .unwrap();
    }

    /// Memory space, bus master, MSI-X on; `nvec` eventfds installed.
    pub fn enable(&mut self, nvec: u32) {
        self.cfg_write16(pci::COMMAND as u64, pci::command::MEMORY | pci::command::BUS_MASTER);
        let ctrl = self.cfg_read16(pci::MSIX_CAP as u64 + 2);
        self.cfg_write16(pci::MSIX_CAP as u64 + 2, ctrl | pci::msix_ctrl::ENABLE);
        self.eventfds = (0..nvec).map(|_| eventfd()).collect();
        let fds: Vec<i32> = self.eventfds.iter().map(|f| f.as_raw_fd()).collect();
        self.client
            .set_irqs(
                VFIO_PCI_MSIX_IRQ_INDEX,
                VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
                0,
                nvec,
                &fds,
            )
            .unwrap();
        // Unmask the vectors in the MSI-X table (masked at reset; the
        // device unmasks them itself when SET_IRQS installs them, as the
        // host kernel does, for clients that keep the table to
        // themselves).
        let n = if self.writes_msix_table { u64::from(nvec) } else { 0 };
        for v in 0..n {
            self.bar0_write(MSIX_TABLE_OFFSET + v * 16 + 12, &0u32.to_le_bytes());
        }
    }

    /// Read and reset vector `v`'s eventfd counter (0 if not signalled).
    pub fn take_interrupts(&self, v: usize) -> u64 {
        let mut b = [0u8; 8];
        // SAFETY: reading 8 bytes from our own non-blocking eventfd.
        let n = unsafe { libc::read(self.eventfds[v].as_raw_fd(), b.as_mut_ptr().cast(), 8) };
        if n == 8 {
            u64::from_ne_bytes(b)
        } else {
            0
        }
    }

    pub fn identity(&mut self) -> Result<DeviceIdentity, AbiError> {
        let b = self.bar0_read(IDENTITY_OFFSET, 128);
        Identity::parse(&b)
    }

    /// Run a mailbox command; returns the completion.
    pub fn devcmd(&mut self, cmd: DevCommand) -> (AdminStatus, AdminComp) {
        self.tag += 1;
        let raw = cmd.encode(CmdHeader {
            tag: self.tag,
            lif: LIF_NONE,
        });
        self.devcmd_raw(raw.as_bytes())
    }

    pub fn devcmd_raw(&mut self, raw: &[u8]) -> (AdminStatus, AdminComp) {
        self.bar0_write(DEVCMD_OFFSET + devcmd::CMD, raw);
        self.bar0_write(DEVCMD_OFFSET + devcmd::DONE, &0u32.to_le_bytes());
        self.bar0_write(DEVCMD_OFFSET + devcmd::DOORBELL, &1u32.to_le_bytes());
        // Polled, as the ABI says: a device that reaches the client's
        // memory by message sets `done` once its writes there landed.
        let t0 = std::time::Instant::now();
        while self.bar0_read(DEVCMD_OFFSET + devcmd::DONE, 4) != 1u32.to_le_bytes() {
            assert!(t0.elapsed().as_secs() < 10, "the mailbox answers");
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        let comp = self.bar0_read(DEVCMD_OFFSET + devcmd::COMP, 16);
        AdminComp::parse(&comp).unwrap()
    }

    fn queue_memory(&mut self, order: u8) -> (u64, u64, u64) {
        let size = 1u64 << order;
        let ring = self.alloc(size * 64, 64);
        let cq = self.alloc(size * 16, 64);
        let state = self.alloc(QUEUE_STATE_SIZE as u64, 128);
        (ring, cq, state)
    }

    /// Reset the function, then create the admin queue.
    pub fn init_admin(&mut self) {
        assert_eq!(self.devcmd(DevCommand::Reset).0, AdminStatus::Ok);
        let order = 5;
        let (ring, cq, state) = self.queue_memory(order);
        let q = QueueCreate {
            qtype: QueueType::Admin.raw(),
            ring_order: order,
            ring_base: ring.into(),
            cq_base: cq.into(),
            state_base: state.into(),
            ..Default::default()
        };
        assert_eq!(self.devcmd(DevCommand::AdminQueueInit(q)).0, AdminStatus::Ok);
        // SAFETY: the state block and ring live in `self.mem`, which
        // outlives `self.admin` (field order); the device initialised the
        // block; this is the only producer.
        let producer =
            unsafe { Producer::attach(self.mem.ptr(state, 256), self.mem.ptr(ring, 64 << order).cast(), order) }
                .unwrap();
        self.admin = Some(Queue {
            ring: producer,
            cq: CompRing {
                base: cq,
                order,
                head: 0,
            },
            state,
            ring_base: ring,
            qindex: 0,
            lif: LIF_NONE,
            slot: 0,
            qtype: QueueType::Admin,
        });
    }

    /// Post one admin command and return its completion.
    pub fn admin_raw(&mut self, raw: AdminCmd) -> (AdminStatus, AdminComp) {
        let q = self.admin.as_mut().expect("init_admin first");
        assert!(q.ring.fill_bulk(&[raw]));
        let tail = q.ring.indices().outgoing_tail;
        let v = Doorbell {
            qtype: QueueType::Admin,
            qindex: 0,
            outgoing_tail: tail.get(),
        }
        .encode();
        self.bar0_write(DEVCMD_OFFSET + devcmd::ADMIN_DOORBELL, &v.to_le_bytes());
        // Done when the write returns, unless the device reaches the
        // client's memory by message: then it answers the write first, and
        // the driver polls (as on hardware).
        let t0 = std::time::Instant::now();
        let e = loop {
            if let Some(e) = self.next_completion_admin() {
                break e;
            }
            assert!(t0.elapsed().as_secs() < 10, "the admin queue answers");
            std::thread::sleep(std::time::Duration::from_micros(200));
        };
        self.admin.as_mut().unwrap().ring.reclaim().unwrap();
        AdminComp::parse(&e).unwrap()
    }

    pub fn admin(&mut self, cmd: AdminCommand, lif: u16) -> (AdminStatus, AdminComp) {
        self.tag += 1;
        let raw = cmd.encode(CmdHeader { tag: self.tag, lif });
        let (st, c) = self.admin_raw(raw);
        assert_eq!(c.tag.get(), self.tag, "completion echoes the tag");
        (st, c)
    }

    fn next_completion_admin(&mut self) -> Option<[u8; 16]> {
        let q = self.admin.as_mut().unwrap();
        let (base, order, head, state) = (q.cq.base, q.cq.order, q.cq.head, q.state);
        let e = read_completion(&self.mem, base, order, head)?;
        let q = self.admin.as_mut().unwrap();
        q.cq.head += 1;
        publish_cq_head(&self.mem, state, q.cq.head);
        Some(e)
    }

    pub fn create_lif(&mut self, name: &str) -> (u16, u16) {
        let (st, c) = self.admin(
            AdminCommand::LifCreate(LifCreate {
                name: pad_ascii(name),
                ..Default::default()
            }),
            LIF_NONE,
        );
        assert_eq!(st, AdminStatus::Ok, "LifCreate");
        (c.value.get() as u16, c.data.get() as u16)
    }

    /// The raw QueueCreate body for a new queue's memory.
    pub fn queue_create_body(&mut self, qtype: QueueType, order: u8, intr: Option<u16>) -> QueueCreate {
        let (ring, cq, state) = self.queue_memory(order);
        QueueCreate {
            qtype: qtype.raw(),
            ring_order: order,
            flags: if intr.is_some() { queue_flags::INTR } else { 0 },
            intr_vector: intr.unwrap_or(0).into(),
            ring_base: ring.into(),
            cq_base: cq.into(),
            state_base: state.into(),
            ..Default::default()
        }
    }

    pub fn create_queue<T: dataplane::ring::RingElem>(
        &mut self,
        lif: u16,
        slot: u16,
        qtype: QueueType,
        order: u8,
        intr: Option<u16>,
    ) -> Queue<T> {
        let body = self.queue_create_body(qtype, order, intr);
        let (st, c) = self.admin(AdminCommand::QueueCreate(body), lif);
        assert_eq!(st, AdminStatus::Ok, "QueueCreate");
        self.attach_queue(&body, lif, slot, c.value.get() as u16)
    }

    pub fn attach_queue<T: dataplane::ring::RingElem>(
        &mut self,
        body: &QueueCreate,
        lif: u16,
        slot: u16,
        qindex: u16,
    ) -> Queue<T> {
        let order = body.ring_order;
        let state = body.state_base.get();
        // SAFETY: the queue's memory lives in `self.mem`, which the test
        // keeps alive while it uses the queue.
        let ring = unsafe {
            Producer::attach(
                self.mem.ptr(state, 256),
                self.mem.ptr(body.ring_base.get(), 16 << order).cast(),
                order,
            )
        }
        .unwrap();
        Queue {
            ring,
            cq: CompRing {
                base: body.cq_base.get(),
                order,
                head: 0,
            },
            state,
            ring_base: body.ring_base.get(),
            qindex,
            lif,
            slot,
            qtype: body.qtype(),
        }
    }

    /// Publish what the producer has filled and ring the doorbell if the
    /// device is not fetching.
    pub fn ring_doorbell<T: dataplane::ring::RingElem>(&self, q: &mut Queue<T>) {
        if let Some(tail) = q.ring.doorbell() {
            self.doorbells.ring(q.slot, q.qtype, q.qindex, tail.get());
        }
    }

    /// The next completion of `q`, if its color says it is there.
    pub fn completion<T: dataplane::ring::RingElem>(&self, q: &mut Queue<T>) -> Option<CompletionInfo> {
        let e = read_completion(&self.mem, q.cq.base, q.cq.order, q.cq.head)?;
        q.cq.head += 1;
        publish_cq_head(&self.mem, q.state, q.cq.head);
        Some(Completion::parse(&e).expect("device writes valid completions"))
    }

    /// `qstatus` of a queue's state block.
    pub fn qstatus<T: dataplane::ring::RingElem>(&self, q: &Queue<T>) -> u32 {
        let b = self.mem.read(q.state + 0x44, 4);
        u32::from_le_bytes(b.try_into().unwrap())
    }

    pub fn set_consumer_flag<T: dataplane::ring::RingElem>(&self, q: &Queue<T>, flag: u32) {
        // SAFETY: the state block is in our memory, 128-aligned.
        unsafe {
            AtomicU32::from_ptr(self.mem.ptr(q.state + 0xc0, 4).as_ptr().cast()).store(flag.to_le(), Ordering::SeqCst)
        };
    }
}

/// Read the completion at `head` if its color is the expected one.
pub fn read_completion(mem: &Mem, base: u64, order: u8, head: u32) -> Option<[u8; 16]> {
    let idx = u64::from(head & ((1 << order) - 1));
    let at = base + idx * 16;
    // SAFETY: 16-byte entry in our memory, 2-aligned for the status/flags
    // half-word the device stores last.
    let sf = unsafe { AtomicU16::from_ptr(mem.ptr(at, 2).as_ptr().cast()).load(Ordering::Acquire) };
    let color = (sf >> 8) as u8 & comp_flags::COLOR != 0;
    if color != expected_color(head, order) {
        return None;
    }
    let mut e = [0u8; 16];
    e.copy_from_slice(&mem.read(at, 16));
    e[0] = sf as u8;
    e[1] = (sf >> 8) as u8;
    Some(e)
}

fn publish_cq_head(mem: &Mem, state: u64, head: u32) {
    // SAFETY: the state block is in our memory.
    unsafe { AtomicU32::from_ptr(mem.ptr(state + 0x84, 4).as_ptr().cast()).store(head.to_le(), Ordering::Release) };
}

/// An Ethernet frame of `len` bytes to `dst` with a recognisable payload.
pub fn frame(dst: [u8; 6], src: [u8; 6], seq: u8, len: usize) -> Vec<u8> {
    dataplane::packet::build_udp4(dst, src, [10, 0, 0, 1], [10, 0, 0, 2], (1000, 2000), &[seq; 16], len)
}

/// Bring a function up with one LIF, a TX and an RX queue (RX buffers of
/// 2 KiB posted), interrupts on vector 0.
pub struct Port1 {
    pub f: RawFn,
    pub lif: u16,
    pub mac: [u8; 6],
    pub tx: Queue<TxDesc>,
    pub rx: Queue<RxDesc>,
    pub rx_bufs: Vec<u64>,
}

pub fn bring_up(path: &Path, name: &str) -> Port1 {
    bring_up_fn(RawFn::connect(path), name)
}

/// As [`bring_up`], on a function already connected.
pub fn bring_up_fn(f: RawFn, name: &str) -> Port1 {
    bring_up_fn_order(f, name, 6)
}

/// As `bring_up_fn`, with rings of 2^`order` entries.
pub fn bring_up_fn_order(mut f: RawFn, name: &str, order: u8) -> Port1 {
    f.enable(2);
    f.init_admin();
    let (lif, slot) = f.create_lif(name);
    let tx = f.create_queue::<TxDesc>(lif, slot, QueueType::Tx, order, Some(0));
    let mut rx = f.create_queue::<RxDesc>(lif, slot, QueueType::Rx, order, Some(0));
    let rx_bufs: Vec<u64> = (0..32).map(|_| f.alloc(2048, 64)).collect();
    let descs: Vec<RxDesc> = rx_bufs.iter().map(|&a| RxDesc::new(a, 2048)).collect();
    assert!(rx.ring.fill_bulk(&descs));
    f.ring_doorbell(&mut rx);
    Port1 {
        f,
        lif,
        mac: lif_mac(lif),
        tx,
        rx,
        rx_bufs,
    }
}

/// A vfio-user header as the tests read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hdr {
    pub id: u16,
    pub cmd: u16,
    pub size: u32,
    pub flags: u32,
    pub error: u32,
}

impl Hdr {
    pub fn is_error(&self) -> bool {
        self.flags & (1 << 5) != 0
    }
}

/// vfio-user by hand: bytes on the socket, written from the specification
/// (no client library), to send what a hostile client would.
pub struct Proto {
    pub s: std::os::unix::net::UnixStream,
    id: u16,
}

impl Proto {
    /// Connect without negotiating.
    pub fn connect_raw(path: &Path) -> Proto {
        let s = std::os::unix::net::UnixStream::connect(path).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        Proto { s, id: 0 }
    }

    /// Connect and negotiate VERSION; returns the server's capabilities.
    pub fn connect(path: &Path) -> (Proto, String) {
        let mut p = Proto::connect_raw(path);
        let mut v = vec![0u8, 0, 1, 0];
        v.extend_from_slice(br#"{"capabilities":{"max_msg_fds":8}}"#);
        v.push(0);
        let (h, body) = p.call(1, &v, &[]);
        assert!(!h.is_error(), "VERSION refused: {h:?}");
        let json = String::from_utf8_lossy(&body[4..]).trim_end_matches('\0').to_string();
        (p, json)
    }

    /// The bytes of a message.
    pub fn message(id: u16, cmd: u16, flags: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&id.to_ne_bytes());
        m.extend_from_slice(&cmd.to_ne_bytes());
        m.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(payload);
        m
    }

    /// Send a command; returns its message id.
    pub fn send(&mut self, cmd: u16, flags: u32, payload: &[u8], fds: &[i32]) -> u16 {
        use vmm_sys_util::sock_ctrl_msg::ScmSocket;
        self.id = self.id.wrapping_add(1);
        let m = Self::message(self.id, cmd, flags, payload);
        if fds.is_empty() {
            self.s.write_all(&m).expect("send");
        } else {
            let n = self.s.send_with_fds(&[&m[..]], fds).expect("send with fds");
            self.s.write_all(&m[n..]).expect("send the rest");
        }
        self.id
    }

    /// Read one message; `None` when the server closed the connection.
    /// Panics if nothing comes within 10 s (a hung connection).
    pub fn recv(&mut self) -> Option<(Hdr, Vec<u8>)> {
        let mut h = [0u8; 16];
        match self.s.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
            Err(e) => panic!("no reply (the connection hangs?): {e}"),
        }
        let u16_at = |i: usize| u16::from_ne_bytes(h[i..i + 2].try_into().unwrap());
        let u32_at = |i: usize| u32::from_ne_bytes(h[i..i + 4].try_into().unwrap());
        let hdr = Hdr {
            id: u16_at(0),
            cmd: u16_at(2),
            size: u32_at(4),
            flags: u32_at(8),
            error: u32_at(12),
        };
        assert!((16..=(2 << 20)).contains(&hdr.size), "reply size {}", hdr.size);
        let mut body = vec![0u8; hdr.size as usize - 16];
        self.s.read_exact(&mut body).expect("reply payload");
        Some((hdr, body))
    }

    /// Send a command and read its reply.
    pub fn call(&mut self, cmd: u16, payload: &[u8], fds: &[i32]) -> (Hdr, Vec<u8>) {
        let id = self.send(cmd, 0, payload, fds);
        let (h, b) = self.recv().expect("a reply");
        assert_eq!((h.id, h.cmd), (id, cmd), "the reply answers the command");
        (h, b)
    }

    /// DMA_MAP of `fd` at `iova`; returns the errno (0: mapped).
    pub fn dma_map(&mut self, iova: u64, size: u64, fd: Option<i32>) -> u32 {
        let mut p = Vec::new();
        p.extend_from_slice(&32u32.to_ne_bytes());
        p.extend_from_slice(&3u32.to_ne_bytes());
        p.extend_from_slice(&0u64.to_ne_bytes());
        p.extend_from_slice(&iova.to_ne_bytes());
        p.extend_from_slice(&size.to_ne_bytes());
        let fds: Vec<i32> = fd.into_iter().collect();
        let (h, _) = self.call(2, &p, &fds);
        if h.is_error() {
            assert_ne!(h.error, 0, "an error reply names its errno");
        }
        h.error
    }

    /// DMA_UNMAP; returns the errno.
    pub fn dma_unmap(&mut self, iova: u64, size: u64) -> u32 {
        let mut p = Vec::new();
        p.extend_from_slice(&24u32.to_ne_bytes());
        p.extend_from_slice(&0u32.to_ne_bytes());
        p.extend_from_slice(&iova.to_ne_bytes());
        p.extend_from_slice(&size.to_ne_bytes());
        self.call(3, &p, &[]).0.error
    }

    /// REGION_READ of `count` bytes; the errno and the data.
    pub fn region_read(&mut self, region: u32, offset: u64, count: u32) -> (u32, Vec<u8>) {
        let mut p = Vec::new();
        p.extend_from_slice(&offset.to_ne_bytes());
        p.extend_from_slice(&region.to_ne_bytes());
        p.extend_from_slice(&count.to_ne_bytes());
        let (h, b) = self.call(9, &p, &[]);
        (h.error, if h.is_error() { Vec::new() } else { b[16..].to_vec() })
    }
}
