//! Each vfio-user command, checked and carried out on the device: VERSION,
//! region and IRQ info, region access, DMA map and unmap, SET_IRQS, reset.

use super::*;

impl Session {
    pub(super) fn dispatch(&mut self, hdr: &Header, p: &[u8], mut fds: Vec<File>) -> Result<Reply, Refusal> {
        let f = self.function;
        let no_fds = |fds: &Vec<File>, what: &str| -> Result<(), Refusal> {
            if fds.is_empty() {
                Ok(())
            } else {
                Err(refuse(libc::EINVAL, format!("{what} takes no file descriptors")))
            }
        };
        match hdr.command {
            cmd::VERSION => {
                no_fds(&fds, "VERSION")?;
                self.version(p)
            }
            cmd::DMA_MAP => {
                let m: wire::DmaMap = payload(p);
                if (m.argsz as usize) < std::mem::size_of::<wire::DmaMap>() {
                    return Err(refuse(libc::EINVAL, format!("DMA_MAP argsz {} < 32", m.argsz)));
                }
                if m.flags & !wire::dma_map_flags::ALL != 0 {
                    return Err(refuse(libc::EINVAL, format!("DMA_MAP flags {:#x}", m.flags)));
                }
                if fds.len() > 1 {
                    return Err(refuse(libc::EINVAL, "DMA_MAP takes at most one file descriptor"));
                }
                let writable = m.flags & wire::dma_map_flags::WRITE != 0;
                tracing::debug!(
                    function = f,
                    file = !fds.is_empty(),
                    "DMA_MAP {:#x}+{:#x} at {:#x}",
                    m.address,
                    m.size,
                    m.offset
                );
                self.device()
                    .dma_map(f, m.address, m.size, fds.pop(), m.offset, writable)
                    .map_err(|e| {
                        tracing::warn!(function = f, "DMA_MAP refused: {e}");
                        Refusal::from(e)
                    })?;
                Ok(Reply::empty())
            }
            cmd::DMA_UNMAP => {
                no_fds(&fds, "DMA_UNMAP")?;
                let u: wire::DmaUnmap = payload(p);
                use wire::dma_unmap_flags as uf;
                if u.flags & !(uf::ALL | uf::ALL_RUST_VMM | uf::GET_DIRTY_BITMAP) != 0 {
                    return Err(refuse(libc::EINVAL, format!("DMA_UNMAP flags {:#x}", u.flags)));
                }
                if u.flags & uf::GET_DIRTY_BITMAP != 0 {
                    return Err(refuse(libc::ENOTSUP, "dirty page tracking is not supported"));
                }
                let all = u.flags & (uf::ALL | uf::ALL_RUST_VMM) != 0;
                tracing::debug!(function = f, all, "DMA_UNMAP {:#x}+{:#x}", u.address, u.size);
                self.device().dma_unmap(f, u.address, u.size, all).map_err(|e| {
                    tracing::warn!(function = f, "DMA_UNMAP of {:#x}+{:#x} refused: {e}", u.address, u.size);
                    Refusal::from(e)
                })?;
                Ok(Reply::of(u.as_bytes()))
            }
            cmd::DEVICE_GET_INFO => {
                no_fds(&fds, "DEVICE_GET_INFO")?;
                let info = wire::DeviceInfo {
                    argsz: std::mem::size_of::<wire::DeviceInfo>() as u32,
                    flags: VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
                    num_regions: VFIO_PCI_NUM_REGIONS,
                    num_irqs: VFIO_PCI_NUM_IRQS,
                };
                Ok(Reply::of(info.as_bytes()))
            }
            cmd::DEVICE_GET_REGION_INFO => {
                no_fds(&fds, "DEVICE_GET_REGION_INFO")?;
                let q: wire::RegionInfo = payload(p);
                self.region_info(q)
            }
            cmd::DEVICE_GET_IRQ_INFO => {
                no_fds(&fds, "DEVICE_GET_IRQ_INFO")?;
                let q: wire::IrqInfo = payload(p);
                let (irq_flags, count) = self
                    .device()
                    .irq_desc(f, q.index)
                    .ok_or_else(|| refuse(libc::EINVAL, format!("no IRQ index {}", q.index)))?;
                let info = wire::IrqInfo {
                    argsz: std::mem::size_of::<wire::IrqInfo>() as u32,
                    flags: irq_flags,
                    index: q.index,
                    count,
                };
                Ok(Reply::of(info.as_bytes()))
            }
            cmd::DEVICE_SET_IRQS => {
                let s: wire::IrqSet = payload(p);
                if s.flags & VFIO_IRQ_SET_DATA_BOOL != 0 {
                    return Err(refuse(libc::ENOTSUP, "SET_IRQS with DATA_BOOL is not supported"));
                }
                if s.flags & VFIO_IRQ_SET_DATA_EVENTFD == 0 {
                    no_fds(&fds, "SET_IRQS without DATA_EVENTFD")?;
                }
                self.device().set_irqs(f, s.index, s.flags, s.start, s.count, fds)?;
                Ok(Reply::empty())
            }
            cmd::REGION_READ => {
                no_fds(&fds, "REGION_READ")?;
                let a: wire::RegionAccess = payload(p);
                let count = a.count as usize;
                if count > MAX_DATA_XFER {
                    return Err(refuse(
                        libc::EINVAL,
                        format!("REGION_READ of {count} bytes, max_data_xfer_size is {MAX_DATA_XFER}"),
                    ));
                }
                let mut out = Vec::with_capacity(16 + count);
                out.extend_from_slice(a.as_bytes());
                out.resize(16 + count, 0);
                self.device().region_read(f, a.region, a.offset, &mut out[16..])?;
                Ok(Reply {
                    payload: out,
                    fd: None,
                    sent: false,
                })
            }
            cmd::REGION_WRITE => {
                no_fds(&fds, "REGION_WRITE")?;
                let a: wire::RegionAccess = payload(p);
                let data = &p[16..];
                if data.len() != a.count as usize {
                    return Err(refuse(
                        libc::EINVAL,
                        format!("REGION_WRITE count {} but {} data bytes", a.count, data.len()),
                    ));
                }
                crate::device::check_region_write(a.region, data.len())?;
                // A client whose memory the device reaches by message is
                // answered before the write's effects: they may read that
                // memory, and a client waiting for this reply (QEMU, under
                // its big lock) could not answer. (Others are answered
                // after: the mailbox and the admin queue have run by then.)
                let mut reply = Reply::of(a.as_bytes());
                let first = self.device().functions[usize::from(f)].dma.has_remote_windows();
                if first && !hdr.no_reply() {
                    self.send_reply(hdr, &reply)?;
                    reply.sent = true;
                    self.remote.paid();
                    self.paid_early = true;
                }
                let r = self.device().region_write(f, a.region, a.offset, data);
                self.shared.wake_engine();
                match r {
                    // (Checked above: cannot be, once answered.)
                    Err(e) if reply.sent => tracing::warn!(function = f, "REGION_WRITE after its reply: {e}"),
                    Err(e) => return Err(e.into()),
                    Ok(()) => {}
                }
                Ok(reply)
            }
            cmd::DEVICE_RESET => {
                no_fds(&fds, "DEVICE_RESET")?;
                self.device().flr(f);
                Ok(Reply::empty())
            }
            c => Err(refuse(
                libc::ENOTSUP,
                format!("command {c} ({}) is not supported", cmd::name(c)),
            )),
        }
    }

    /// `VERSION`: same major, minor at most the client's, capabilities
    /// nicsim keeps to.
    pub(super) fn version(&mut self, p: &[u8]) -> Result<Reply, Refusal> {
        let v: wire::Version = payload(p);
        if v.major != PROTOCOL_MAJOR {
            return Err(refuse(
                libc::ENOTSUP,
                format!("protocol major {} (nicsim speaks {PROTOCOL_MAJOR})", v.major),
            ));
        }
        let json = &p[4..];
        // The JSON is NUL terminated (and optional).
        let text = json.split(|&b| b == 0).next().unwrap_or(&[]);
        // The client takes transfers of 1 MiB unless it says otherwise.
        let mut client_max_data = MAX_DATA_XFER;
        if !text.is_empty() {
            let caps: serde_json::Value = serde_json::from_slice(text)
                .map_err(|e| refuse(libc::EINVAL, format!("VERSION capabilities are not JSON: {e}")))?;
            if let Some(n) = caps
                .get("capabilities")
                .and_then(|c| c.get("max_data_xfer_size"))
                .and_then(serde_json::Value::as_u64)
            {
                client_max_data = usize::try_from(n).unwrap_or(usize::MAX).clamp(4096, MAX_DATA_XFER);
            }
        }
        self.remote.set_max_data(client_max_data);
        // From now on the client may map memory without a file: the
        // device reaches it by message.
        self.device().attach_remote(self.function, Some(self.remote.clone()));
        let max_dma_maps = self.device().max_dma_maps(self.function);
        let caps = serde_json::json!({
            "capabilities": {
                "max_msg_fds": self.max_fds,
                "max_data_xfer_size": MAX_DATA_XFER,
                "max_dma_maps": max_dma_maps,
                "pgsizes": crate::dma::PAGE,
            }
        });
        let mut out = wire::Version {
            major: PROTOCOL_MAJOR,
            minor: v.minor.min(PROTOCOL_MINOR),
        }
        .as_bytes()
        .to_vec();
        out.extend_from_slice(caps.to_string().as_bytes());
        out.push(0);
        self.negotiated = true;
        Ok(Reply {
            payload: out,
            fd: None,
            sent: false,
        })
    }

    /// `DEVICE_GET_REGION_INFO`: the region, and its sparse-mmap
    /// capability with the descriptor to map when the client's `argsz`
    /// has room for it (else the `argsz` needed, to ask again).
    pub(super) fn region_info(&mut self, q: wire::RegionInfo) -> Result<Reply, Refusal> {
        let d = self
            .device()
            .region_desc(self.function, q.index)
            .ok_or_else(|| refuse(libc::EINVAL, format!("no region {}", q.index)))?;
        let base = std::mem::size_of::<wire::RegionInfo>();
        let mut caps = Vec::new();
        if !d.sparse.is_empty() {
            caps.extend_from_slice(
                wire::CapHeader {
                    id: VFIO_REGION_INFO_CAP_SPARSE_MMAP as u16,
                    version: 1,
                    next: 0,
                }
                .as_bytes(),
            );
            caps.extend_from_slice(
                wire::SparseMmap {
                    nr_areas: d.sparse.len() as u32,
                    reserved: 0,
                }
                .as_bytes(),
            );
            for (off, size) in &d.sparse {
                caps.extend_from_slice(off.as_bytes());
                caps.extend_from_slice(size.as_bytes());
            }
        }
        let mut info = wire::RegionInfo {
            argsz: (base + caps.len()) as u32,
            flags: d.flags,
            index: q.index,
            cap_offset: 0,
            size: d.size,
            offset: 0,
        };
        let whole = q.argsz as usize >= base + caps.len();
        if !caps.is_empty() {
            info.flags |= VFIO_REGION_INFO_FLAG_CAPS;
            info.cap_offset = base as u32;
        }
        let mut out = info.as_bytes().to_vec();
        if whole {
            out.extend_from_slice(&caps);
        }
        // The descriptor comes with the complete reply only (a client
        // asking again with a larger argsz would get it twice).
        let fd = if whole { d.mmap_fd } else { None };
        Ok(Reply {
            payload: out,
            fd,
            sent: false,
        })
    }
}
