//! A vfio-user client that trusts nothing its server sends: every reply is
//! matched to its request (id and command), its size checked against what
//! that command's reply can be before a byte of it is read, every count,
//! size and offset in it range-checked, and error replies reported with
//! their errno. A server that sends nothing within the timeout, or breaks
//! the protocol, gets an error, never a hang, an allocation it chose, or a
//! panic. (rust-vmm's `vfio_user` 0.1.7 client, which nicdrv used before,
//! ignores error replies, allocates what a `VERSION` reply's size says,
//! underflows on a short one and asserts on capability sizes.)
//!
//! Requests the server sends its client (`DMA_READ`/`DMA_WRITE`, for
//! memory shared without a descriptor) are answered `ENOTSUP`: this client
//! always shares its memory.

use crate::channel::{wait_readable, Channel, ReadError};
use crate::wire::{self, cmd, flags, Header, HEADER_SIZE};
use std::fs::File;
use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;
use zerocopy::{FromBytes, IntoBytes};

/// `VFIO_DEVICE_FLAGS_RESET`.
pub const DEVICE_FLAGS_RESET: u32 = 1 << 0;
/// `VFIO_DEVICE_FLAGS_PCI`.
pub const DEVICE_FLAGS_PCI: u32 = 1 << 1;
/// `VFIO_REGION_INFO_CAP_SPARSE_MMAP`.
const CAP_SPARSE_MMAP: u16 = 1;
/// Most regions a device may announce (PCI has 9, plus device-specific).
pub const MAX_REGIONS: u32 = 64;
/// Most interrupt types a device may announce.
pub const MAX_IRQ_TYPES: u32 = 16;
/// Largest region-info reply this client reads (capabilities included).
const MAX_REGION_INFO: usize = 64 << 10;
/// Most file descriptors this client takes in one message.
const MAX_RECV_FDS: usize = 1;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("{command}: the connection is gone ({why})")]
    Gone { command: &'static str, why: String },
    #[error("{command}: no reply within {timeout:?}")]
    TimedOut { command: &'static str, timeout: Duration },
    #[error("{command}: refused by the server: {}", std::io::Error::from_raw_os_error(*errno))]
    Refused { command: &'static str, errno: i32 },
    #[error("{command}: the server broke the protocol: {why}")]
    Protocol { command: &'static str, why: String },
}

impl Error {
    /// Whether the connection is unusable after this error.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, Error::Refused { .. })
    }
}

/// A region as the server described it.
#[derive(Debug)]
pub struct Region {
    pub index: u32,
    /// `VFIO_REGION_INFO_FLAG_*`.
    pub flags: u32,
    pub size: u64,
    /// The offset to give `mmap` for the region's file.
    pub offset: u64,
    /// Areas that may be mapped: (offset in the region, size), each inside
    /// the region.
    pub sparse: Vec<(u64, u64)>,
    /// The file to map them from.
    pub file: Option<File>,
}

/// An interrupt type as the server described it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrqInfo {
    pub index: u32,
    pub flags: u32,
    pub count: u32,
}

/// A connection to a vfio-user server.
#[derive(Debug)]
pub struct Client {
    chan: Channel,
    next_id: u16,
    timeout: Duration,
    /// The server's `max_data_xfer_size`: region accesses are split into
    /// transfers no larger.
    pub max_data: usize,
    /// The server's `max_msg_fds`: `set_irqs` sends no more per message.
    pub max_fds: usize,
    /// The server's `max_dma_maps`.
    pub max_dma_maps: u64,
    /// `DEVICE_GET_INFO`'s flags and counts.
    pub device_flags: u32,
    pub num_regions: u32,
    pub num_irqs: u32,
    regions: Vec<Region>,
    /// The connection broke (a fatal error): every request fails.
    broken: Option<String>,
}

fn protocol(command: &'static str, why: impl Into<String>) -> Error {
    Error::Protocol {
        command,
        why: why.into(),
    }
}

impl Client {
    /// Connect, negotiate the version, and learn the device's regions.
    /// `timeout` bounds every wait for a reply.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Client, Error> {
        let stream = UnixStream::connect(path).map_err(Error::Connect)?;
        Self::on_stream(stream, timeout)
    }

    /// As [`Client::connect`], on a stream already connected (a socket pair
    /// in tests and fuzzing).
    pub fn on_stream(stream: UnixStream, timeout: Duration) -> Result<Client, Error> {
        let mut c = Client {
            chan: Channel::new(stream, timeout),
            next_id: 0,
            timeout,
            max_data: 1 << 20,
            max_fds: 1,
            max_dma_maps: 65535,
            device_flags: 0,
            num_regions: 0,
            num_irqs: 0,
            regions: Vec::new(),
            broken: None,
        };
        c.version()?;
        c.device_info()?;
        for i in 0..c.num_regions {
            let r = c.region_info(i)?;
            c.regions.push(r);
        }
        Ok(c)
    }

    /// One request and its reply: `max_reply` bounds the reply's payload
    /// (checked before it is read). Returns the payload and the descriptors
    /// that came with it.
    fn call(
        &mut self,
        command: u16,
        payload: &[u8],
        fds: &[RawFd],
        max_reply: usize,
    ) -> Result<(Vec<u8>, Vec<File>), Error> {
        let name = cmd::name(command);
        if let Some(why) = &self.broken {
            return Err(Error::Gone {
                command: name,
                why: why.clone(),
            });
        }
        let r = self.call_inner(command, name, payload, fds, max_reply);
        if let Err(e) = &r {
            if e.is_fatal() {
                self.broken = Some(e.to_string());
                self.chan.shutdown();
            }
        }
        r
    }

    fn call_inner(
        &mut self,
        command: u16,
        name: &'static str,
        payload: &[u8],
        fds: &[RawFd],
        max_reply: usize,
    ) -> Result<(Vec<u8>, Vec<File>), Error> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let hdr = Header {
            msg_id: id,
            command,
            size: (HEADER_SIZE + payload.len()) as u32,
            flags: flags::TYPE_COMMAND,
            error: 0,
        };
        self.chan.send(&hdr, payload, fds).map_err(|e| Error::Gone {
            command: name,
            why: e.to_string(),
        })?;
        let timeout = self.timeout;
        let mut wait = |fd: RawFd| wait_readable(fd, timeout);
        let read_err = |e: ReadError| match e {
            ReadError::TimedOut => Error::TimedOut { command: name, timeout },
            ReadError::TooManyFds => protocol(name, "more file descriptors than a reply carries"),
            other => Error::Gone {
                command: name,
                why: other.to_string(),
            },
        };
        loop {
            let mut got = Vec::new();
            let r = self
                .chan
                .read_header(&mut got, MAX_RECV_FDS, &mut wait)
                .map_err(read_err)?;
            let size = r.size as usize;
            if size < HEADER_SIZE {
                return Err(protocol(
                    name,
                    format!("a message of {size} bytes, shorter than its header"),
                ));
            }
            let len = size - HEADER_SIZE;
            if r.kind() == flags::TYPE_COMMAND {
                // A request from the server (DMA_READ/WRITE): this client
                // shares its memory and serves none. Refuse and go on.
                let max = self.max_data + 64;
                if len > max {
                    return Err(protocol(
                        name,
                        format!("a server request of {len} bytes, at most {max}"),
                    ));
                }
                self.chan.skip(len, MAX_RECV_FDS, &mut wait).map_err(read_err)?;
                if !r.no_reply() {
                    let _ = self.chan.send(&r.error_reply(libc::ENOTSUP), &[], &[]);
                }
                continue;
            }
            if r.kind() != flags::TYPE_REPLY || r.flags & !flags::ALL != 0 {
                return Err(protocol(name, format!("message flags {:#x}", r.flags)));
            }
            if (r.msg_id, r.command) != (id, command) {
                return Err(protocol(
                    name,
                    format!(
                        "a reply to message {} ({}), {id} ({name}) expected",
                        r.msg_id,
                        cmd::name(r.command)
                    ),
                ));
            }
            if r.flags & flags::ERROR != 0 {
                // Header only, as the specification says; tolerate a
                // payload within the command's bound.
                if len > max_reply {
                    return Err(protocol(name, format!("an error reply of {len} bytes")));
                }
                self.chan.skip(len, MAX_RECV_FDS, &mut wait).map_err(read_err)?;
                let errno = i32::try_from(r.error).unwrap_or(libc::EIO);
                return Err(Error::Refused {
                    command: name,
                    errno: if errno == 0 { libc::EIO } else { errno },
                });
            }
            if len > max_reply {
                return Err(protocol(name, format!("a reply of {len} bytes, at most {max_reply}")));
            }
            let mut body = vec![0u8; len];
            self.chan
                .read_exact(&mut body, &mut got, MAX_RECV_FDS, false, &mut wait)
                .map_err(read_err)?;
            return Ok((body, got));
        }
    }

    fn version(&mut self) -> Result<(), Error> {
        let mut p = wire::Version { major: 0, minor: 1 }.as_bytes().to_vec();
        let caps = serde_json::json!({
            "capabilities": { "max_msg_fds": MAX_RECV_FDS, "max_data_xfer_size": 1 << 20 }
        });
        p.extend_from_slice(caps.to_string().as_bytes());
        p.push(0);
        let (body, _) = self.call(cmd::VERSION, &p, &[], 4 + wire::MAX_VERSION_JSON)?;
        let name = "VERSION";
        let v = wire::Version::read_from_prefix(&body)
            .map_err(|_| protocol(name, format!("a {}-byte reply", body.len())))?
            .0;
        if v.major != 0 || v.minor > 1 {
            return Err(protocol(name, format!("version {}.{}, 0.1 proposed", v.major, v.minor)));
        }
        let text = body[4..].split(|&b| b == 0).next().unwrap_or(&[]);
        if text.is_empty() {
            return Ok(());
        }
        let json: serde_json::Value =
            serde_json::from_slice(text).map_err(|e| protocol(name, format!("capabilities are not JSON: {e}")))?;
        let cap = |k: &str| json.get("capabilities").and_then(|c| c.get(k)).and_then(|v| v.as_u64());
        if let Some(n) = cap("max_data_xfer_size") {
            if n == 0 {
                return Err(protocol(name, "max_data_xfer_size 0"));
            }
            self.max_data = usize::try_from(n).unwrap_or(usize::MAX).min(1 << 20);
        }
        if let Some(n) = cap("max_msg_fds") {
            self.max_fds = usize::try_from(n).unwrap_or(usize::MAX).clamp(1, 253);
        }
        if let Some(n) = cap("max_dma_maps") {
            self.max_dma_maps = n;
        }
        Ok(())
    }

    fn device_info(&mut self) -> Result<(), Error> {
        let q = wire::DeviceInfo {
            argsz: 16,
            ..Default::default()
        };
        let (body, _) = self.call(cmd::DEVICE_GET_INFO, q.as_bytes(), &[], 16)?;
        let name = "DEVICE_GET_INFO";
        let i = wire::DeviceInfo::read_from_bytes(&body)
            .map_err(|_| protocol(name, format!("a {}-byte reply", body.len())))?;
        if i.flags & DEVICE_FLAGS_PCI == 0 {
            return Err(protocol(name, "not a PCI device"));
        }
        if i.num_regions > MAX_REGIONS || i.num_irqs > MAX_IRQ_TYPES {
            return Err(protocol(
                name,
                format!("{} regions and {} interrupt types", i.num_regions, i.num_irqs),
            ));
        }
        self.device_flags = i.flags;
        self.num_regions = i.num_regions;
        self.num_irqs = i.num_irqs;
        Ok(())
    }

    /// `DEVICE_GET_REGION_INFO`, asking again with the `argsz` the server
    /// says its capabilities need.
    fn region_info(&mut self, index: u32) -> Result<Region, Error> {
        let name = "DEVICE_GET_REGION_INFO";
        let base = std::mem::size_of::<wire::RegionInfo>();
        let mut argsz = base;
        for _ in 0..2 {
            let q = wire::RegionInfo {
                argsz: argsz as u32,
                index,
                ..Default::default()
            };
            let (body, mut files) = self.call(cmd::DEVICE_GET_REGION_INFO, q.as_bytes(), &[], MAX_REGION_INFO)?;
            let info = wire::RegionInfo::read_from_prefix(&body)
                .map_err(|_| protocol(name, format!("a {}-byte reply", body.len())))?
                .0;
            if info.index != index {
                return Err(protocol(
                    name,
                    format!("region {} described, {index} asked", info.index),
                ));
            }
            let need = info.argsz as usize;
            if need > argsz && body.len() == base {
                if need > MAX_REGION_INFO {
                    return Err(protocol(name, format!("argsz {need}, at most {MAX_REGION_INFO}")));
                }
                argsz = need;
                continue;
            }
            let sparse = sparse_areas(&body, &info).map_err(|why| protocol(name, why))?;
            for &(off, size) in &sparse {
                if off.checked_add(size).is_none_or(|end| end > info.size) {
                    return Err(protocol(
                        name,
                        format!("area {off:#x}+{size:#x} outside the {:#x}-byte region", info.size),
                    ));
                }
            }
            return Ok(Region {
                index,
                flags: info.flags,
                size: info.size,
                offset: info.offset,
                sparse,
                file: files.pop(),
            });
        }
        Err(protocol(name, "argsz grew on the second request"))
    }

    /// A region's description.
    pub fn region(&self, index: u32) -> Option<&Region> {
        self.regions.iter().find(|r| r.index == index)
    }

    /// Read `buf.len()` bytes of a region at `offset`.
    pub fn region_read(&mut self, region: u32, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        let name = "REGION_READ";
        let max = self.max_data;
        let mut done = 0usize;
        for chunk in buf.chunks_mut(max.max(1)) {
            let q = access(name, region, offset, done, chunk.len())?;
            let at = q.offset;
            let (body, _) = self.call(cmd::REGION_READ, q.as_bytes(), &[], 16 + chunk.len())?;
            let r = wire::RegionAccess::read_from_prefix(&body)
                .map_err(|_| protocol(name, format!("a {}-byte reply", body.len())))?
                .0;
            if (r.offset, r.region, r.count as usize) != (at, region, chunk.len()) || body.len() != 16 + chunk.len() {
                return Err(protocol(name, format!("a reply for {:?}, {:?} asked", r, q)));
            }
            chunk.copy_from_slice(&body[16..]);
            done += chunk.len();
        }
        Ok(())
    }

    /// Write `data` to a region at `offset`.
    pub fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> Result<(), Error> {
        let name = "REGION_WRITE";
        let mut done = 0usize;
        for chunk in data.chunks(self.max_data.max(1)) {
            let q = access(name, region, offset, done, chunk.len())?;
            let mut p = q.as_bytes().to_vec();
            p.extend_from_slice(chunk);
            self.call(cmd::REGION_WRITE, &p, &[], 16)?;
            done += chunk.len();
        }
        Ok(())
    }

    /// Share `size` bytes of `fd` at `offset` as DMA memory at `iova`.
    pub fn dma_map(&mut self, iova: u64, size: u64, fd: RawFd, offset: u64, writable: bool) -> Result<(), Error> {
        let m = wire::DmaMap {
            argsz: 32,
            flags: wire::dma_map_flags::READ | if writable { wire::dma_map_flags::WRITE } else { 0 },
            offset,
            address: iova,
            size,
        };
        self.call(cmd::DMA_MAP, m.as_bytes(), &[fd], 0).map(drop)
    }

    /// Take back the mapping that is exactly `iova..iova + size`.
    pub fn dma_unmap(&mut self, iova: u64, size: u64) -> Result<(), Error> {
        let u = wire::DmaUnmap {
            argsz: 24,
            flags: 0,
            address: iova,
            size,
        };
        self.call(cmd::DMA_UNMAP, u.as_bytes(), &[], 24 + 16).map(drop)
    }

    /// `DEVICE_GET_IRQ_INFO`.
    pub fn irq_info(&mut self, index: u32) -> Result<IrqInfo, Error> {
        let name = "DEVICE_GET_IRQ_INFO";
        let q = wire::IrqInfo {
            argsz: 16,
            index,
            ..Default::default()
        };
        let (body, _) = self.call(cmd::DEVICE_GET_IRQ_INFO, q.as_bytes(), &[], 16)?;
        let i = wire::IrqInfo::read_from_bytes(&body)
            .map_err(|_| protocol(name, format!("a {}-byte reply", body.len())))?;
        if i.index != index || i.count > 2048 {
            return Err(protocol(name, format!("index {} count {}", i.index, i.count)));
        }
        Ok(IrqInfo {
            index: i.index,
            flags: i.flags,
            count: i.count,
        })
    }

    /// `DEVICE_SET_IRQS`, with `fds` (one per vector, for `DATA_EVENTFD`)
    /// sent at most `max_fds` per message.
    pub fn set_irqs(&mut self, index: u32, irq_flags: u32, start: u32, count: u32, fds: &[RawFd]) -> Result<(), Error> {
        if fds.is_empty() {
            let s = wire::IrqSet {
                argsz: 20,
                flags: irq_flags,
                index,
                start,
                count,
            };
            return self.call(cmd::DEVICE_SET_IRQS, s.as_bytes(), &[], 0).map(drop);
        }
        let mut at = start;
        for group in fds.chunks(self.max_fds.max(1)) {
            let s = wire::IrqSet {
                argsz: 20,
                flags: irq_flags,
                index,
                start: at,
                count: group.len() as u32,
            };
            self.call(cmd::DEVICE_SET_IRQS, s.as_bytes(), group, 0)?;
            at = at.saturating_add(group.len() as u32);
        }
        Ok(())
    }

    /// `DEVICE_RESET`.
    pub fn reset(&mut self) -> Result<(), Error> {
        self.call(cmd::DEVICE_RESET, &[], &[], 0).map(drop)
    }
}

/// A `DEVICE_GET_REGION_INFO` reply's region info and its sparse-mmap
/// areas, checked (for clients other than [`Client`]: tests, tools).
pub fn parse_region_info(body: &[u8]) -> Result<(wire::RegionInfo, Vec<(u64, u64)>), String> {
    let info = wire::RegionInfo::read_from_prefix(body)
        .map_err(|_| format!("a {}-byte region-info reply", body.len()))?
        .0;
    if body.len() < info.argsz as usize {
        // The capabilities did not fit the argsz asked: none here.
        return Ok((info, Vec::new()));
    }
    let areas = sparse_areas(body, &info)?;
    for &(off, size) in &areas {
        if off.checked_add(size).is_none_or(|end| end > info.size) {
            return Err(format!(
                "area {off:#x}+{size:#x} outside the {:#x}-byte region",
                info.size
            ));
        }
    }
    Ok((info, areas))
}

/// The sparse-mmap areas in a region-info reply's capability chain:
/// offsets strictly increasing inside the reply, at most 16 capabilities,
/// area counts bounded by the bytes there are.
fn sparse_areas(body: &[u8], info: &wire::RegionInfo) -> Result<Vec<(u64, u64)>, String> {
    let mut areas = Vec::new();
    if info.flags & (1 << 3) == 0 || info.cap_offset == 0 {
        return Ok(areas);
    }
    let mut next = info.cap_offset as usize;
    let mut prev = 0usize;
    for _ in 0..16 {
        if next == 0 {
            return Ok(areas);
        }
        if next <= prev || next < std::mem::size_of::<wire::RegionInfo>() {
            return Err(format!("capability offset {next} does not advance"));
        }
        prev = next;
        let cap = body
            .get(next..)
            .ok_or_else(|| format!("capability at {next} outside the reply"))?;
        let h = wire::CapHeader::read_from_prefix(cap)
            .map_err(|_| format!("capability at {next} truncated"))?
            .0;
        next = h.next as usize;
        if h.id != CAP_SPARSE_MMAP {
            continue;
        }
        let rest = &cap[8..];
        let s = wire::SparseMmap::read_from_prefix(rest)
            .map_err(|_| "sparse-mmap capability truncated".to_string())?
            .0;
        let list = &rest[8..];
        let n = s.nr_areas as usize;
        if n > list.len() / 16 {
            return Err(format!("{n} sparse areas in {} bytes", list.len()));
        }
        for a in list.chunks_exact(16).take(n) {
            let off = u64::from_ne_bytes(a[..8].try_into().expect("8 bytes"));
            let size = u64::from_ne_bytes(a[8..].try_into().expect("8 bytes"));
            areas.push((off, size));
        }
    }
    Err("more than 16 region capabilities".into())
}

/// The access to a region for the chunk `done` bytes into one at `offset`.
fn access(name: &'static str, region: u32, offset: u64, done: usize, len: usize) -> Result<wire::RegionAccess, Error> {
    let at = offset
        .checked_add(done as u64)
        .ok_or_else(|| protocol(name, "offset wraps"))?;
    Ok(wire::RegionAccess {
        offset: at,
        region,
        count: len as u32,
    })
}
