//! vfio-user serving: one rust-vmm `vfio_user::Server` per PCI function,
//! each on its own socket and thread, all driving the one [`Device`].
//!
//! Notes on the rust-vmm crate (vfio_user 0.1.7), read before building on
//! it: its server accepts one client per `run` and returns when the client
//! leaves (we loop); it can panic on a malformed `VERSION` message
//! (`CString::from_vec_with_nul(..).unwrap()`, an unchecked subtraction on
//! `message_size`), so each `run` is wrapped in `catch_unwind` and a
//! misbehaving client loses its connection, never the device; and it sends
//! a header-only error reply where its own client expects a full reply, so
//! the device answers every region access of a valid region (reads of
//! nothing come back as 0xff, as on real hardware) instead of failing it.

use crate::device::{Device, RequestError};
use dataplane::abi::{DOORBELL_OFFSET, DOORBELL_STRIDE};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{JoinHandle, Thread};
use vfio_bindings::bindings::vfio::{
    vfio_region_info, vfio_region_sparse_mmap_area, VFIO_IRQ_INFO_EVENTFD, VFIO_IRQ_INFO_MASKABLE,
    VFIO_IRQ_INFO_NORESIZE, VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_MSIX_IRQ_INDEX,
    VFIO_PCI_NUM_IRQS, VFIO_PCI_NUM_REGIONS, VFIO_REGION_INFO_FLAG_MMAP, VFIO_REGION_INFO_FLAG_READ,
    VFIO_REGION_INFO_FLAG_WRITE,
};
use vfio_user::{DmaMapFlags, DmaUnmapFlags, IrqInfo, Server, ServerBackend, ServerRegion, SparseArea};

/// What the server threads and the engine share.
#[derive(Debug)]
pub struct Shared {
    device: Mutex<Device>,
    /// Server threads waiting for the device lock; the engine yields to
    /// them between passes.
    waiters: AtomicUsize,
    /// Set to stop every thread.
    pub stop: AtomicBool,
    /// Fault injection: the device is gone; every connection drops at its
    /// next message, as if the process had died.
    pub vanished: AtomicBool,
    /// The engine thread, to wake it after a control-plane change.
    engine: Mutex<Option<Thread>>,
    /// Real clock: time the engine spent in passes that did work, ns, and
    /// the work they did (descriptors and frames).
    pub engine_busy_ns: AtomicU64,
    pub engine_work: AtomicU64,
}

impl Shared {
    pub fn new(device: Device) -> Shared {
        Shared {
            device: Mutex::new(device),
            waiters: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            vanished: AtomicBool::new(false),
            engine: Mutex::new(None),
            engine_busy_ns: AtomicU64::new(0),
            engine_work: AtomicU64::new(0),
        }
    }

    /// Lock the device (server threads and tests).
    pub fn lock(&self) -> MutexGuard<'_, Device> {
        self.waiters.fetch_add(1, Ordering::AcqRel);
        let g = self.device.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.waiters.fetch_sub(1, Ordering::AcqRel);
        g
    }

    /// Lock the device for an engine pass.
    pub fn lock_for_engine(&self) -> MutexGuard<'_, Device> {
        self.device.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a server thread is waiting for the device.
    pub fn contended(&self) -> bool {
        self.waiters.load(Ordering::Acquire) > 0
    }

    /// Register the engine thread for wake-ups.
    pub fn set_engine(&self, t: Thread) {
        *self.engine.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
    }

    /// Wake the engine (it may be sleeping in its idle back-off).
    pub fn wake_engine(&self) {
        if let Some(t) = self.engine.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            t.unpark();
        }
    }
}

fn io_err(e: RequestError) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
}

/// The `ServerBackend` of one function.
struct Backend {
    shared: Arc<Shared>,
    function: u16,
}

impl Backend {
    /// A vanished device drops the connection (unwinding out of the
    /// server's loop, which the serving thread catches) instead of
    /// answering: the client sees its socket close, as when a process
    /// dies.
    fn alive(&self) {
        if self.shared.vanished.load(Ordering::Acquire) {
            std::panic::resume_unwind(Box::new("nicsim vanished"));
        }
    }
}

impl ServerBackend for Backend {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> Result<(), std::io::Error> {
        self.alive();
        self.shared
            .lock()
            .region_read(self.function, region, offset, data)
            .map_err(io_err)
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.alive();
        let r = self
            .shared
            .lock()
            .region_write(self.function, region, offset, data)
            .map_err(io_err);
        self.shared.wake_engine();
        r
    }

    fn dma_map(
        &mut self,
        flags: DmaMapFlags,
        offset: u64,
        address: u64,
        size: u64,
        fd: Option<File>,
    ) -> Result<(), std::io::Error> {
        self.alive();
        let writable = flags.contains(DmaMapFlags::WRITE);
        self.shared
            .lock()
            .dma_map(self.function, address, size, fd, offset, writable)
            .map_err(|e| {
                tracing::warn!(function = self.function, "DMA_MAP refused: {e}");
                io_err(e)
            })
    }

    fn dma_unmap(&mut self, flags: DmaUnmapFlags, address: u64, size: u64) -> Result<(), std::io::Error> {
        let all = flags.contains(DmaUnmapFlags::UNMAP_ALL);
        self.shared
            .lock()
            .dma_unmap(self.function, address, size, all)
            .map_err(io_err)
    }

    fn reset(&mut self) -> Result<(), std::io::Error> {
        self.shared.lock().flr(self.function);
        Ok(())
    }

    fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> Result<(), std::io::Error> {
        self.shared
            .lock()
            .set_irqs(self.function, index, flags, start, count, fds)
            .map_err(io_err)
    }
}

/// The regions of a function: BAR0 (doorbell pages mappable from the
/// memfd) and configuration space; the other BARs, ROM and VGA are absent.
fn regions(device: &Device, function: u16) -> Vec<ServerRegion> {
    let func = &device.functions[usize::from(function)];
    (0..VFIO_PCI_NUM_REGIONS)
        .map(|index| {
            let mut info = vfio_region_info {
                argsz: std::mem::size_of::<vfio_region_info>() as u32,
                index,
                ..Default::default()
            };
            let mut sparse_areas = Vec::new();
            let mut mmap_fd = None;
            match index {
                VFIO_PCI_BAR0_REGION_INDEX => {
                    info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP;
                    info.size = func.bar0_size();
                    info.offset = 0;
                    sparse_areas.push(SparseArea {
                        area: vfio_region_sparse_mmap_area {
                            offset: DOORBELL_OFFSET,
                            size: u64::from(func.limits.nlifs) * DOORBELL_STRIDE,
                        },
                    });
                    mmap_fd = Some(func.doorbells.file().as_raw_fd());
                }
                VFIO_PCI_CONFIG_REGION_INDEX => {
                    info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
                    info.size = crate::pci::CONFIG_SIZE as u64;
                }
                _ => {}
            }
            ServerRegion {
                region_info: info,
                sparse_areas,
                mmap_fd,
            }
        })
        .collect()
}

fn irqs(device: &Device, function: u16) -> Vec<IrqInfo> {
    let nintrs = device.functions[usize::from(function)].limits.nintrs;
    (0..VFIO_PCI_NUM_IRQS)
        .map(|index| IrqInfo {
            index,
            flags: if index == VFIO_PCI_MSIX_IRQ_INDEX {
                VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_NORESIZE
            } else {
                0
            },
            count: if index == VFIO_PCI_MSIX_IRQ_INDEX {
                u32::from(nintrs)
            } else {
                0
            },
        })
        .collect()
}

/// Why serving could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("socket {path}: {why}")]
    Socket { path: PathBuf, why: String },
}

/// Remove a socket file left by a process that is gone (nobody accepts on
/// it); refuse one that is live.
fn clear_stale_socket(path: &Path) -> Result<(), ServeError> {
    if !path.exists() {
        return Ok(());
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(ServeError::Socket {
            path: path.into(),
            why: "another nicsim is serving it".into(),
        });
    }
    std::fs::remove_file(path).map_err(|e| ServeError::Socket {
        path: path.into(),
        why: format!("stale socket could not be removed: {e}"),
    })
}

/// Start serving `function` on `path`. The thread runs until `stop`.
pub fn serve(shared: Arc<Shared>, function: u16, path: &Path) -> Result<JoinHandle<()>, ServeError> {
    clear_stale_socket(path)?;
    let (regions, irqs) = {
        let d = shared.lock();
        (regions(&d, function), irqs(&d, function))
    };
    let server = Server::new(path, true, irqs, regions).map_err(|e| ServeError::Socket {
        path: path.into(),
        why: e.to_string(),
    })?;
    let name = if function == 0 {
        "nicsim-pf".to_string()
    } else {
        format!("nicsim-vf{}", function - 1)
    };
    let path = path.to_path_buf();
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let mut backend = Backend {
                shared: shared.clone(),
                function,
            };
            while !shared.stop.load(Ordering::Acquire) {
                match catch_unwind(AssertUnwindSafe(|| server.run(&mut backend))) {
                    Ok(Ok(())) => tracing::debug!(function, "client disconnected"),
                    Ok(Err(e)) => tracing::info!(function, "client session ended: {e}"),
                    Err(_) if shared.vanished.load(Ordering::Acquire) => break,
                    Err(_) => tracing::warn!(function, "malformed vfio-user message; connection dropped"),
                }
            }
            drop(server);
            let _ = std::fs::remove_file(&path);
        })
        .map_err(|e| ServeError::Socket {
            path: PathBuf::new(),
            why: format!("thread: {e}"),
        })
}
