//! A client that shares no memory with the device, as QEMU behind a
//! vIOMMU: it maps its DMA memory without a file descriptor and answers
//! the device's `DMA_READ` and `DMA_WRITE` requests from a thread of its
//! own, from the test's memory. Written from the specification (vfu's
//! wire format and framing; its own request/reply handling).

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use vfio_bindings::bindings::vfio::vfio_region_sparse_mmap_area;
use vfu::channel::{wait_readable, Channel, Ready};
use vfu::wire::{self, cmd, flags, Header};
use zerocopy::{FromBytes, IntoBytes};

/// The memory the client serves: `len` bytes at host address `host`,
/// IOVA `iova` (the test keeps it mapped while the client lives).
#[derive(Debug, Clone, Copy)]
pub struct Served {
    pub iova: u64,
    pub host: usize,
    pub len: u64,
}

type Reply = (Header, Vec<u8>, Vec<File>);

/// See the module.
pub struct MsgClient {
    writer: Arc<Mutex<Channel>>,
    replies: Receiver<Reply>,
    reader: Option<JoinHandle<()>>,
    stream: UnixStream,
    next_id: u16,
    regions: Vec<vfio_user::Region>,
    /// DMA_READ and DMA_WRITE requests answered.
    pub served: Arc<AtomicU64>,
    /// Set: the client stops answering the device's requests (a hung or
    /// hostile VMM), though it keeps the connection.
    pub mute: Arc<std::sync::atomic::AtomicBool>,
    /// QEMU's big lock: held while the client waits for a reply to its own
    /// request, and taken to answer the device's (so a device that waits
    /// for its DMA while owing the client a reply deadlocks, as with QEMU).
    big_lock: Arc<Mutex<()>>,
}

/// Answer one DMA request from `mem`; returns the reply payload, or an
/// errno.
fn serve(mem: Served, hdr: &Header, body: &[u8]) -> Result<Vec<u8>, i32> {
    let (a, data) = wire::DmaAccess::read_from_prefix(body).map_err(|_| libc::EINVAL)?;
    let off = a.address.checked_sub(mem.iova).ok_or(libc::EFAULT)?;
    if off.checked_add(a.count).is_none_or(|end| end > mem.len) {
        return Err(libc::EFAULT);
    }
    let p = (mem.host + off as usize) as *mut u8;
    match hdr.command {
        cmd::DMA_READ => {
            let mut out = a.as_bytes().to_vec();
            let n = a.count as usize;
            out.resize(16 + n, 0);
            // SAFETY: [off, off + count) lies inside the served memory
            // (checked), which the test keeps mapped while this runs.
            unsafe { std::ptr::copy_nonoverlapping(p, out[16..].as_mut_ptr(), n) };
            Ok(out)
        }
        cmd::DMA_WRITE => {
            if data.len() as u64 != a.count {
                return Err(libc::EINVAL);
            }
            // SAFETY: as above.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
            Ok(a.as_bytes().to_vec())
        }
        _ => Err(libc::ENOTSUP),
    }
}

impl MsgClient {
    pub fn connect(path: &Path, mem: Served) -> MsgClient {
        let stream = UnixStream::connect(path).expect("connect");
        let chan = Channel::new(stream.try_clone().unwrap(), Duration::from_secs(10));
        let writer = Arc::new(Mutex::new(chan.try_clone().unwrap()));
        let (tx, replies) = channel();
        let served = Arc::new(AtomicU64::new(0));
        let mute = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let big_lock = Arc::new(Mutex::new(()));
        // As QEMU: one thread reads every message as it comes (requests
        // are queued, never left in the socket); another answers the
        // device's requests, under the big lock.
        let (req_tx, req_rx) = channel::<(Header, Vec<u8>)>();
        {
            let (writer, served, big_lock) = (writer.clone(), served.clone(), big_lock.clone());
            std::thread::spawn(move || {
                while let Ok((h, body)) = req_rx.recv() {
                    let _big = big_lock.lock().unwrap_or_else(|e| e.into_inner());
                    let r = match serve(mem, &h, &body) {
                        Ok(p) => (h.reply(p.len()), p),
                        Err(errno) => (h.error_reply(errno), Vec::new()),
                    };
                    served.fetch_add(1, Ordering::Relaxed);
                    if !h.no_reply() {
                        let _ = writer.lock().unwrap().send(&r.0, &r.1, &[]);
                    }
                }
            });
        }
        let reader = {
            let mute = mute.clone();
            let mut chan = chan;
            std::thread::spawn(move || {
                let mut wait = |fd: RawFd| -> std::io::Result<Ready> { wait_readable(fd, Duration::from_secs(3600)) };
                loop {
                    let mut fds = Vec::new();
                    let Ok(h) = chan.read_header(&mut fds, 4, &mut wait) else {
                        return;
                    };
                    let mut body = vec![0u8; (h.size as usize).saturating_sub(16).min(2 << 20)];
                    if chan.read_exact(&mut body, &mut fds, 4, false, &mut wait).is_err() {
                        return;
                    }
                    if h.kind() == flags::TYPE_COMMAND {
                        if mute.load(Ordering::Relaxed) {
                            continue;
                        }
                        if req_tx.send((h, body)).is_err() {
                            return;
                        }
                    } else if tx.send((h, body, fds)).is_err() {
                        return;
                    }
                }
            })
        };
        let mut c = MsgClient {
            writer,
            replies,
            reader: Some(reader),
            stream,
            next_id: 0,
            regions: Vec::new(),
            served,
            mute,
            big_lock,
        };
        let mut v = vec![0u8, 0, 1, 0];
        v.extend_from_slice(b"{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":65536}}\0");
        c.call(cmd::VERSION, &v, &[]).expect("VERSION");
        for index in 0..9u32 {
            let mut argsz = 32u32;
            let (info, areas, file) = loop {
                let q = wire::RegionInfo {
                    argsz,
                    index,
                    ..Default::default()
                };
                let (body, mut files) = c
                    .call(cmd::DEVICE_GET_REGION_INFO, q.as_bytes(), &[])
                    .expect("region info");
                let (info, areas) = vfu::client::parse_region_info(&body).expect("a valid region");
                if info.argsz > argsz && body.len() == 32 {
                    argsz = info.argsz;
                    continue;
                }
                break (info, areas, files.pop());
            };
            c.regions.push(vfio_user::Region {
                flags: info.flags,
                index,
                size: info.size,
                file_offset: file.map(|f| vm_memory::FileOffset::new(f, info.offset)),
                sparse_areas: areas
                    .into_iter()
                    .map(|(offset, size)| vfio_region_sparse_mmap_area { offset, size })
                    .collect(),
            });
        }
        c
    }

    /// One request, its reply's payload (or the errno of an error reply).
    pub fn call(&mut self, command: u16, payload: &[u8], fds: &[RawFd]) -> Result<(Vec<u8>, Vec<File>), i32> {
        let big_lock = self.big_lock.clone();
        let _big = big_lock.lock().unwrap_or_else(|e| e.into_inner());
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let hdr = Header {
            msg_id: id,
            command,
            size: (16 + payload.len()) as u32,
            flags: flags::TYPE_COMMAND,
            error: 0,
        };
        self.writer.lock().unwrap().send(&hdr, payload, fds).expect("send");
        loop {
            match self.replies.recv_timeout(Duration::from_secs(20)) {
                Ok((h, body, fds)) if h.msg_id == id => {
                    return if h.flags & flags::ERROR != 0 {
                        Err(h.error as i32)
                    } else {
                        Ok((body, fds))
                    };
                }
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => panic!("no reply to {}", cmd::name(command)),
                Err(RecvTimeoutError::Disconnected) => return Err(libc::EPIPE),
            }
        }
    }
}

impl Drop for MsgClient {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl super::Transport for MsgClient {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> Result<(), String> {
        let q = wire::RegionAccess {
            offset,
            region,
            count: data.len() as u32,
        };
        let (body, _) = self
            .call(cmd::REGION_READ, q.as_bytes(), &[])
            .map_err(|e| format!("errno {e}"))?;
        data.copy_from_slice(&body[16..]);
        Ok(())
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> Result<(), String> {
        let q = wire::RegionAccess {
            offset,
            region,
            count: data.len() as u32,
        };
        let mut p = q.as_bytes().to_vec();
        p.extend_from_slice(data);
        self.call(cmd::REGION_WRITE, &p, &[])
            .map(drop)
            .map_err(|e| format!("errno {e}"))
    }

    fn dma_map(&mut self, offset: u64, address: u64, size: u64, fd: RawFd) -> Result<(), String> {
        let m = wire::DmaMap {
            argsz: 32,
            flags: 3,
            offset,
            address,
            size,
        };
        let fds: Vec<RawFd> = (fd >= 0).then_some(fd).into_iter().collect();
        self.call(cmd::DMA_MAP, m.as_bytes(), &fds)
            .map(drop)
            .map_err(|e| format!("errno {e}"))
    }

    fn dma_unmap(&mut self, address: u64, size: u64) -> Result<(), String> {
        let u = wire::DmaUnmap {
            argsz: 24,
            flags: 0,
            address,
            size,
        };
        self.call(cmd::DMA_UNMAP, u.as_bytes(), &[])
            .map(drop)
            .map_err(|e| format!("errno {e}"))
    }

    fn region(&self, index: u32) -> Option<&vfio_user::Region> {
        self.regions.iter().find(|r| r.index == index)
    }

    fn reset(&mut self) -> Result<(), String> {
        self.call(cmd::DEVICE_RESET, &[], &[])
            .map(drop)
            .map_err(|e| format!("errno {e}"))
    }

    fn irq_info(&mut self, index: u32) -> Result<(u32, u32), String> {
        self.irq_info_impl(index)
    }

    fn set_irqs(&mut self, index: u32, irq_flags: u32, start: u32, count: u32, fds: &[RawFd]) -> Result<(), String> {
        let s = wire::IrqSet {
            argsz: 20,
            flags: irq_flags,
            index,
            start,
            count,
        };
        self.call(cmd::DEVICE_SET_IRQS, s.as_bytes(), fds)
            .map(drop)
            .map_err(|e| format!("errno {e}"))
    }
}

impl MsgClient {
    fn irq_info_impl(&mut self, index: u32) -> Result<(u32, u32), String> {
        let q = wire::IrqInfo {
            argsz: 16,
            index,
            ..Default::default()
        };
        let (body, _) = self
            .call(cmd::DEVICE_GET_IRQ_INFO, q.as_bytes(), &[])
            .map_err(|e| format!("errno {e}"))?;
        let i = wire::IrqInfo::read_from_bytes(&body).map_err(|_| "a short reply".to_string())?;
        Ok((i.flags, i.count))
    }

    /// The stream's descriptor (for tests that need it).
    pub fn raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}
