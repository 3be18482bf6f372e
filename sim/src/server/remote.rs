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
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vfu::channel::Channel;
use vfu::wire::{self, cmd, flags, Header};
use zerocopy::{FromBytes, IntoBytes};

/// How long the device waits for the client's reply to a DMA request.
pub const DMA_TIMEOUT: Duration = Duration::from_secs(2);

/// The writing half of a connection, shared by the replies the session
/// sends and the requests the device sends.
pub type Writer = Arc<Mutex<Channel>>;

/// What a reply to a request came to.
type Answer = Result<Vec<u8>, String>;

/// Messages the device sent by the message path, for reports.
#[derive(Debug, Default)]
pub struct RemoteStats {
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_written: AtomicU64,
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
    pub stats: RemoteStats,
}

impl Remote {
    pub fn new(writer: Writer) -> Arc<Remote> {
        Arc::new(Remote {
            writer,
            next_id: AtomicU16::new(0x8000),
            pending: Mutex::new(HashMap::new()),
            max_data: AtomicUsize::new(1 << 20),
            gone: AtomicBool::new(false),
            stats: RemoteStats::default(),
        })
    }

    /// The client announced how much one transfer may carry.
    pub fn set_max_data(&self, n: usize) {
        self.max_data.store(n.max(64), Ordering::Relaxed);
    }

    /// The connection ended: fail every waiter, and every later access.
    pub fn close(&self) {
        self.gone.store(true, Ordering::Release);
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for (_, tx) in p.drain() {
            let _ = tx.try_send(Err("the client is gone".into()));
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
            Err(format!(
                "the client refused it: {}",
                std::io::Error::from_raw_os_error(hdr.error as i32)
            ))
        } else {
            Ok(payload)
        };
        let _ = tx.try_send(answer);
        true
    }

    /// Send one request and wait for its reply's payload.
    fn request(&self, command: u16, payload: &[u8]) -> Answer {
        if self.is_gone() {
            return Err("the client is gone".into());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = sync_channel(1);
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(id, tx);
        let hdr = Header {
            msg_id: id,
            command,
            size: (wire::HEADER_SIZE + payload.len()) as u32,
            flags: flags::TYPE_COMMAND,
            error: 0,
        };
        let sent = self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(&hdr, payload, &[]);
        if let Err(e) = sent {
            self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            return Err(format!("sending {}: {e}", cmd::name(command)));
        }
        match rx.recv_timeout(DMA_TIMEOUT) {
            Ok(a) => a,
            Err(_) => {
                self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                // A client that does not answer cannot be waited on: the
                // session ends it.
                self.gone.store(true, Ordering::Release);
                Err(format!("no reply to {} within {DMA_TIMEOUT:?}", cmd::name(command)))
            }
        }
    }

    /// Read `buf.len()` bytes at `iova` by `DMA_READ`, a transfer of at
    /// most `max_data_xfer_size` each.
    pub fn read(&self, iova: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        let fault = DmaFault {
            iova,
            len: buf.len() as u64,
        };
        let max = self.max_data.load(Ordering::Relaxed);
        let mut at = iova;
        for chunk in buf.chunks_mut(max) {
            let q = wire::DmaAccess {
                address: at,
                count: chunk.len() as u64,
            };
            let r = self.request(cmd::DMA_READ, q.as_bytes()).and_then(|body| {
                let (a, data) = wire::DmaAccess::read_from_prefix(&body)
                    .map_err(|_| format!("a {}-byte DMA_READ reply", body.len()))?;
                if a.address != at || a.count != chunk.len() as u64 || data.len() != chunk.len() {
                    return Err(format!(
                        "a DMA_READ reply for {:#x}+{} with {} bytes, {at:#x}+{} asked",
                        a.address,
                        a.count,
                        data.len(),
                        chunk.len()
                    ));
                }
                chunk.copy_from_slice(data);
                Ok(())
            });
            if let Err(why) = r {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("DMA_READ {at:#x}+{}: {why}", chunk.len());
                return Err(fault);
            }
            self.stats.reads.fetch_add(1, Ordering::Relaxed);
            self.stats.bytes_read.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            at = at.wrapping_add(chunk.len() as u64);
        }
        Ok(())
    }

    /// Write `data` at `iova` by `DMA_WRITE`, in transfers of at most
    /// `max_data_xfer_size`.
    pub fn write(&self, iova: u64, data: &[u8]) -> Result<(), DmaFault> {
        let fault = DmaFault {
            iova,
            len: data.len() as u64,
        };
        let max = self.max_data.load(Ordering::Relaxed);
        let mut at = iova;
        for chunk in data.chunks(max) {
            let q = wire::DmaAccess {
                address: at,
                count: chunk.len() as u64,
            };
            let mut p = q.as_bytes().to_vec();
            p.extend_from_slice(chunk);
            let r = self.request(cmd::DMA_WRITE, &p).and_then(|body| {
                // The reply names the address and the count (a u32 in the
                // specification's table, a u64 in some clients: both taken).
                let address = body
                    .get(..8)
                    .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")));
                if address != Some(at) {
                    return Err(format!(
                        "a {}-byte DMA_WRITE reply that does not name {at:#x}",
                        body.len()
                    ));
                }
                Ok(())
            });
            if let Err(why) = r {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("DMA_WRITE {at:#x}+{}: {why}", chunk.len());
                return Err(fault);
            }
            self.stats.writes.fetch_add(1, Ordering::Relaxed);
            self.stats
                .bytes_written
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            at = at.wrapping_add(chunk.len() as u64);
        }
        Ok(())
    }
}
