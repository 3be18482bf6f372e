//! What a client does to its function over vfio-user: region reads and
//! writes, DMA maps and unmaps, interrupts (SET_IRQS), and what the server
//! asks of the device about them.

use super::*;

impl Device {
    /// A vfio-user region read on function `f`. Configuration space and
    /// BAR0 are served; other regions are empty.
    pub fn region_read(&mut self, f: u16, region: u32, offset: u64, data: &mut [u8]) -> Result<(), RequestError> {
        if data.len() > MAX_REGION_ACCESS {
            return Err(RequestError::TooLarge(data.len()));
        }
        let now = self.now();
        let Some(func) = self.function(f) else {
            return Err(RequestError::NoRegion(region));
        };
        match region {
            VFIO_PCI_CONFIG_REGION_INDEX => func.config.read(offset, data),
            VFIO_PCI_BAR0_REGION_INDEX => func.bar0_read(offset, data, now, &self.cfg.serial),
            r if r < vfio_bindings::bindings::vfio::VFIO_PCI_NUM_REGIONS => data.fill(0xff),
            r => return Err(RequestError::NoRegion(r)),
        }
        Ok(())
    }

    /// A vfio-user region write on function `f`, with its side effects
    /// (mailbox commands, admin doorbells, MSI-X unmasking) carried out
    /// before it returns. Refused exactly when [`check_region_write`]
    /// refuses it.
    pub fn region_write(&mut self, f: u16, region: u32, offset: u64, data: &[u8]) -> Result<(), RequestError> {
        check_region_write(region, data.len())?;
        let fi = usize::from(f);
        match region {
            VFIO_PCI_CONFIG_REGION_INDEX => {
                let func = &mut self.functions[fi];
                let was_enabled = func.config.msix_enabled() && !func.config.msix_function_masked();
                func.config.write(offset, data);
                if !was_enabled && func.config.msix_enabled() && !func.config.msix_function_masked() {
                    func.deliver_pending();
                }
            }
            VFIO_PCI_BAR0_REGION_INDEX => match self.functions[fi].bar0_write(offset, data) {
                Bar0Effect::None => {}
                Bar0Effect::DevCmd => self.devcmd(fi),
                Bar0Effect::AdminDoorbell(v) => self.admin_doorbell(fi, v),
                Bar0Effect::Unmask(v) => self.functions[fi].unmasked(v),
            },
            // (Others were refused above.)
            _ => self.functions[fi].counters.ignored_writes += 1,
        }
        Ok(())
    }

    /// vfio-user `DMA_MAP` on function `f`.
    pub fn dma_map(
        &mut self,
        f: u16,
        iova: u64,
        size: u64,
        file: Option<File>,
        offset: u64,
        writable: bool,
    ) -> Result<(), RequestError> {
        let func = &mut self.functions[usize::from(f)];
        let budget = usize::from(func.limits.max_dma_maps);
        func.dma.map(iova, size, file, offset, writable, budget)?;
        Ok(())
    }

    /// `DEVICE_GET_REGION_INFO` of function `f`: BAR0 (its doorbell pages
    /// mappable from a sealed memfd) and configuration space; the other
    /// PCI regions exist and are empty. `None` past the PCI regions.
    pub fn region_desc(&self, f: u16, index: u32) -> Option<RegionDesc> {
        let func = self.function(f)?;
        if index >= VFIO_PCI_NUM_REGIONS {
            return None;
        }
        Some(match index {
            VFIO_PCI_BAR0_REGION_INDEX => RegionDesc {
                flags: VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP,
                size: func.bar0_size(),
                sparse: vec![(
                    abi::DOORBELL_OFFSET,
                    u64::from(func.limits.nlifs) * abi::DOORBELL_STRIDE,
                )],
                mmap_fd: Some(std::os::fd::AsRawFd::as_raw_fd(func.doorbells.file())),
            },
            VFIO_PCI_CONFIG_REGION_INDEX => RegionDesc {
                flags: VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
                size: pci::CONFIG_SIZE as u64,
                sparse: Vec::new(),
                mmap_fd: None,
            },
            _ => RegionDesc {
                flags: 0,
                size: 0,
                sparse: Vec::new(),
                mmap_fd: None,
            },
        })
    }

    /// `DEVICE_GET_IRQ_INFO` of function `f`: (flags, count); only MSI-X
    /// has vectors. `None` past the PCI interrupt types.
    pub fn irq_desc(&self, f: u16, index: u32) -> Option<(u32, u32)> {
        let func = self.function(f)?;
        match index {
            VFIO_PCI_MSIX_IRQ_INDEX => Some((
                VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_NORESIZE,
                u32::from(func.limits.nintrs),
            )),
            i if i < VFIO_PCI_NUM_IRQS => Some((0, 0)),
            _ => None,
        }
    }

    /// The DMA mappings function `f` may hold at once, of both kinds
    /// (announced as `max_dma_maps`): those reached by message and its
    /// mappings of files (each an mmap in the device, at most
    /// `FunctionLimits::max_dma_maps` of them).
    pub fn max_dma_maps(&self, f: u16) -> usize {
        if self.function(f).is_some() {
            crate::dma::MAX_DMA_MAPS
        } else {
            0
        }
    }

    /// Function `f`'s client can be reached by message (`None`: no more):
    /// its DMA mappings without a file go through `remote`.
    pub fn attach_remote(&mut self, f: u16, remote: Option<std::sync::Arc<crate::server::remote::Remote>>) {
        if let Some(func) = self.functions.get_mut(usize::from(f)) {
            func.dma.set_remote(remote);
        }
    }

    /// Count a protocol error of function `f`'s client.
    pub fn count_protocol_error(&mut self, f: u16) {
        if let Some(func) = self.functions.get_mut(usize::from(f)) {
            func.counters.protocol_errors += 1;
        }
    }

    /// vfio-user `DMA_UNMAP` on function `f`: queues whose memory the unmap
    /// takes away stop with a DMA fault (without a completion: the device
    /// may no longer write there).
    pub fn dma_unmap(&mut self, f: u16, iova: u64, size: u64, all: bool) -> Result<(), RequestError> {
        let fi = usize::from(f);
        if all {
            self.functions[fi].dma.unmap_all();
        } else {
            let _ = self.functions[fi].dma.unmap(iova, size)?;
        }
        let (lo, len) = if all { (0, u64::MAX) } else { (iova, size) };
        for lif in self.lifs.iter_mut().flatten().filter(|l| l.function == f) {
            for q in lif.txqs.iter_mut().flatten() {
                if q.core.uses(lo, len) {
                    q.core.fail_silently(CompStatus::DmaFault, q.next_index());
                }
            }
            for q in lif.rxqs.iter_mut().flatten() {
                if q.core.uses(lo, len) {
                    q.core.fail_silently(CompStatus::DmaFault, q.next_index());
                }
            }
        }
        let func = &mut self.functions[fi];
        if func.admin.as_ref().is_some_and(|q| q.core.uses(lo, len)) {
            if let Some(q) = func.admin.as_mut() {
                q.core.fail_silently(CompStatus::DmaFault, q.ring.head());
            }
        }
        Ok(())
    }

    /// vfio-user `SET_IRQS` on function `f`: only MSI-X has vectors.
    pub fn set_irqs(
        &mut self,
        f: u16,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> Result<(), RequestError> {
        let func = &mut self.functions[usize::from(f)];
        let data = flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
        let action = flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
        if index != VFIO_PCI_MSIX_IRQ_INDEX {
            // INTx, MSI, ERR, REQ: none exist; only "disable all" is fine.
            return if count == 0 && data == VFIO_IRQ_SET_DATA_NONE {
                Ok(())
            } else {
                Err(RequestError::Irqs("only MSI-X (index 2) has vectors"))
            };
        }
        let end = start
            .checked_add(count)
            .ok_or(RequestError::Irqs("start + count overflows"))?;
        if end as usize > func.vectors.len() {
            return Err(RequestError::Irqs("vector beyond the function's MSI-X table"));
        }
        match (data, action) {
            (VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_ACTION_TRIGGER) if fds.is_empty() => {
                // No descriptors: de-assign those vectors.
                for v in start..end {
                    func.vectors[v as usize].eventfd = None;
                }
            }
            (VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_ACTION_TRIGGER) => {
                if fds.len() != count as usize {
                    return Err(RequestError::Irqs("need one eventfd per vector"));
                }
                for fd in &fds {
                    interrupt_eventfd(fd)?;
                }
                // As the host kernel does when it enables a vector for a
                // vfio-pci user: the table entry is unmasked. A client
                // that emulates the MSI-X table itself (QEMU) never writes
                // the device's; the vector would stay masked from reset
                // and every interrupt pending. (Pending ones go now.)
                for (v, fd) in (start..end).zip(fds) {
                    let vec = &mut func.vectors[v as usize];
                    vec.eventfd = Some(fd);
                    vec.msix_entry[12] &= !1;
                    if vec.pending {
                        func.fire(v as u16);
                    }
                }
            }
            (VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_ACTION_TRIGGER) if count == 0 => {
                for v in &mut func.vectors {
                    v.eventfd = None;
                }
            }
            (VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_ACTION_TRIGGER) => {
                // Loopback: fire the vectors as the device would.
                for v in start..end {
                    func.fire(v as u16);
                }
            }
            (VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_ACTION_MASK) => {
                for v in start..end {
                    func.vectors[v as usize].ctrl_mask = true;
                }
            }
            (VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_ACTION_UNMASK) => {
                for v in start..end {
                    func.vectors[v as usize].ctrl_mask = false;
                    func.unmasked(v as u16);
                }
            }
            _ => return Err(RequestError::Irqs("unsupported data/action combination")),
        }
        Ok(())
    }
}
