//! A client's memory reached by message: when a client maps DMA memory
//! without a file descriptor (QEMU does, behind a vIOMMU), the device
//! reads and writes it with `DMA_READ` and `DMA_WRITE` requests on the
//! client's socket, each at most the client's `max_data_xfer_size`, and
//! waits for the replies, which the connection's reader thread routes here
//! by message id.
//!
//! Nothing the client answers is trusted: a reply must name the request's
//! address and count and carry exactly the bytes asked for, and arrive
//! within [`DMA_TIMEOUT`]; otherwise the access is a DMA fault (and a
//! client that stops answering loses its connection: the device cannot
//! wait on it).

use crate::dma::DmaFault;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vfu::channel::Channel;
use vfu::wire::{self, cmd, flags, Header};
use zerocopy::{FromBytes, IntoBytes};

/// How long the device waits for the client's reply to a DMA request.
pub const DMA_TIMEOUT: Duration = Duration::from_secs(2);

/// How often a wait for a reply looks whether the client is waiting for
/// the device meanwhile.
const WAIT_SLICE: Duration = Duration::from_millis(1);

/// The writing half of a connection, shared by the replies the session
/// sends and the requests the device sends.
pub type Writer = Arc<Mutex<Channel>>;

/// Why a request got no answer.
#[derive(Debug)]
enum Failure {
    /// The client is waiting for a reply from the device: it may not
    /// answer until it has one (QEMU holds its big lock while a vCPU waits
    /// for a region access, and answers DMA requests under that lock).
    /// Nothing is known of the request's fate; try again later.
    Busy,
    /// The client refused, answered wrong, went, or did not answer in time.
    Failed(String),
}

/// What a reply to a request came to.
type Answer = Result<Vec<u8>, Failure>;

/// Messages the device sent by the message path, for reports.
#[derive(Debug, Default)]
pub struct RemoteStats {
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_written: AtomicU64,
    /// Reads put off because the client was waiting for the device.
    pub busy: AtomicU64,
    pub failures: AtomicU64,
}

/// One client's memory, reached by message.
#[derive(Debug)]
pub struct Remote {
    writer: Writer,
    next_id: AtomicU16,
    pending: Mutex<HashMap<u16, SyncSender<Answer>>>,
    /// The client's `max_data_xfer_size`.
    max_data: AtomicUsize,
    /// The connection is gone or broken: every access faults at once.
    gone: AtomicBool,
    /// Requests of this connection the device owes a reply.
    owed: AtomicU32,
    /// Requests the device owes a reply on any connection of the same
    /// client process (QEMU's big lock is one for all its devices).
    owed_by_process: Arc<AtomicU32>,
    /// Shared by the function's connections, one after the other.
    pub stats: Arc<RemoteStats>,
}

impl Remote {
    /// `owed_by_process`: the count shared by the connections of the same
    /// client process.
    pub fn new(writer: Writer, owed_by_process: Arc<AtomicU32>, stats: Arc<RemoteStats>) -> Arc<Remote> {
        Arc::new(Remote {
            writer,
            next_id: AtomicU16::new(0x8000),
            pending: Mutex::new(HashMap::new()),
            max_data: AtomicUsize::new(1 << 20),
            gone: AtomicBool::new(false),
            owed: AtomicU32::new(0),
            owed_by_process,
            stats,
        })
    }

    /// A request that wants a reply arrived (the reader, before handing it
    /// over).
    pub fn owe(&self) {
        self.owed.fetch_add(1, Ordering::AcqRel);
        self.owed_by_process.fetch_add(1, Ordering::AcqRel);
    }

    /// Its reply went out, or never will (the session).
    pub fn paid(&self) {
        if self
            .owed
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
        {
            self.owed_by_process.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Whether the client process waits for a reply from the device: then
    /// a request to it may not be answered until that reply goes.
    pub fn client_waiting(&self) -> bool {
        self.owed_by_process.load(Ordering::Acquire) > 0
    }

    /// The client announced how much one transfer may carry.
    pub fn set_max_data(&self, n: usize) {
        self.max_data.store(n.max(64), Ordering::Relaxed);
    }

    /// The connection ended: fail every waiter, and every later access.
    pub fn close(&self) {
        self.gone.store(true, Ordering::Release);
        let n = self.owed.swap(0, Ordering::AcqRel);
        self.owed_by_process.fetch_sub(n, Ordering::AcqRel);
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for (_, tx) in p.drain() {
            let _ = tx.try_send(Err(Failure::Failed("the client is gone".into())));
        }
    }

    /// Whether the connection ended.
    pub fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    /// A reply arrived (the reader thread): hand it to its waiter. Returns
    /// false for a reply nobody asked for.
    pub fn deliver(&self, hdr: &Header, payload: Vec<u8>) -> bool {
        let tx = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&hdr.msg_id);
        let Some(tx) = tx else { return false };
        let answer = if hdr.flags & flags::ERROR != 0 {
            Err(Failure::Failed(format!(
                "the client refused it: {}",
                std::io::Error::from_raw_os_error(hdr.error as i32)
            )))
        } else {
            Ok(payload)
        };
        let _ = tx.try_send(answer);
        true
    }

    /// Send one request and, unless `posted`, wait for its reply's
    /// payload. A posted request carries the no-reply flag (a DMA write,
    /// as PCIe posts memory writes); the client handles requests in order,
    /// so a later waited request is answered after it took effect.
    fn request(&self, command: u16, payload: &[u8], posted: bool) -> Answer {
        if self.is_gone() {
            return Err(Failure::Failed("the client is gone".into()));
        }
        if !posted && self.client_waiting() {
            return Err(Failure::Busy);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = sync_channel(1);
        if !posted {
            self.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(id, tx);
        }
        let hdr = Header {
            msg_id: id,
            command,
            size: (wire::HEADER_SIZE + payload.len()) as u32,
            flags: flags::TYPE_COMMAND | if posted { flags::NO_REPLY } else { 0 },
            error: 0,
        };
        let sent = self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(&hdr, payload, &[]);
        if let Err(e) = sent {
            self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            return Err(Failure::Failed(format!("sending {}: {e}", cmd::name(command))));
        }
        if posted {
            return Ok(Vec::new());
        }
        let t0 = std::time::Instant::now();
        loop {
            match rx.recv_timeout(WAIT_SLICE) {
                Ok(a) => return a,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Failure::Failed("the client is gone".into()))
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
            if self.client_waiting() {
                // The reply may come late: its entry stays to absorb it.
                return Err(Failure::Busy);
            }
            if t0.elapsed() >= DMA_TIMEOUT {
                self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                // A client that does not answer cannot be waited on: the
                // session ends it.
                self.gone.store(true, Ordering::Release);
                return Err(Failure::Failed(format!(
                    "no reply to {} within {DMA_TIMEOUT:?}",
                    cmd::name(command)
                )));
            }
        }
    }

    /// Read `buf.len()` bytes at `iova` by `DMA_READ`, a transfer of at
    /// most `max_data_xfer_size` each. A `busy` fault: the client was
    /// waiting for the device, try again later (nothing was read for
    /// sure).
    pub fn read(&self, iova: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        let fault = DmaFault::new(iova, buf.len() as u64);
        let max = self.max_data.load(Ordering::Relaxed);
        let mut at = iova;
        for chunk in buf.chunks_mut(max) {
            let q = wire::DmaAccess {
                address: at,
                count: chunk.len() as u64,
            };
            let r = self.request(cmd::DMA_READ, q.as_bytes(), false).and_then(|body| {
                let (a, data) = wire::DmaAccess::read_from_prefix(&body)
                    .map_err(|_| Failure::Failed(format!("a {}-byte DMA_READ reply", body.len())))?;
                if a.address != at || a.count != chunk.len() as u64 || data.len() != chunk.len() {
                    return Err(Failure::Failed(format!(
                        "a DMA_READ reply for {:#x}+{} with {} bytes, {at:#x}+{} asked",
                        a.address,
                        a.count,
                        data.len(),
                        chunk.len()
                    )));
                }
                chunk.copy_from_slice(data);
                Ok(())
            });
            match r {
                Ok(()) => {}
                Err(Failure::Busy) => {
                    self.stats.busy.fetch_add(1, Ordering::Relaxed);
                    return Err(DmaFault { busy: true, ..fault });
                }
                Err(Failure::Failed(why)) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("DMA_READ {at:#x}+{}: {why}", chunk.len());
                    return Err(fault);
                }
            }
            self.stats.reads.fetch_add(1, Ordering::Relaxed);
            self.stats.bytes_read.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            at = at.wrapping_add(chunk.len() as u64);
        }
        Ok(())
    }

    /// Write `data` at `iova` by `DMA_WRITE`, in transfers of at most
    /// `max_data_xfer_size`, posted (no reply asked). With `fence`, the
    /// last one waits for its reply, which comes once every earlier write
    /// took effect (before an interrupt tells the driver to look) — unless
    /// the client is waiting for the device: then it is posted too, and
    /// lands when the client gets to it.
    pub fn write(&self, iova: u64, data: &[u8], fence: bool) -> Result<(), DmaFault> {
        let fault = DmaFault::new(iova, data.len() as u64);
        let max = self.max_data.load(Ordering::Relaxed);
        let mut at = iova;
        let n = data.len().div_ceil(max);
        for (i, chunk) in data.chunks(max).enumerate() {
            let q = wire::DmaAccess {
                address: at,
                count: chunk.len() as u64,
            };
            let mut p = q.as_bytes().to_vec();
            p.extend_from_slice(chunk);
            let posted = !fence || i + 1 < n || self.client_waiting();
            let r = self.request(cmd::DMA_WRITE, &p, posted).and_then(|body| {
                // The reply names the address and the count (a u32 in the
                // specification's table, a u64 in some clients: both taken).
                let address = body
                    .get(..8)
                    .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")));
                if !posted && address != Some(at) {
                    return Err(Failure::Failed(format!(
                        "a {}-byte DMA_WRITE reply that does not name {at:#x}",
                        body.len()
                    )));
                }
                Ok(())
            });
            match r {
                // Sent: it lands when the client gets to it.
                Ok(()) | Err(Failure::Busy) => {}
                Err(Failure::Failed(why)) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("DMA_WRITE {at:#x}+{}: {why}", chunk.len());
                    return Err(fault);
                }
            }
            self.stats.writes.fetch_add(1, Ordering::Relaxed);
            self.stats
                .bytes_written
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            at = at.wrapping_add(chunk.len() as u64);
        }
        Ok(())
    }

    /// Wait until every write posted so far has landed: a one-byte
    /// `DMA_READ` at `iova` (the client handles requests in order, so its
    /// reply comes after theirs took effect). A `busy` fault: the client
    /// is waiting for the device, try again later.
    pub fn fence(&self, iova: u64) -> Result<(), DmaFault> {
        self.read(iova, &mut [0u8; 1])
    }
}
