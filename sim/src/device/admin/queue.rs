//! Queue commands: QueueCreate and QueueReset.

use super::*;

impl Device {
    pub(super) fn queue_create(&mut self, fi: usize, lif: u16, q: &QueueCreate) -> Res {
        self.owned_lif(fi, lif)?;
        let func = &self.functions[fi];
        let limits = func.limits;
        if self.lif(lif).map(|l| usize::from(l.function)) != Some(fi) {
            // Queues live in their owner's memory: even the PF creates
            // them only on its own LIFs.
            return Err(AdminStatus::Permission.into());
        }
        if !ring_order_ok(limits.min_ring_order, limits.max_ring_order, q) {
            return Err(AdminStatus::Invalid.into());
        }
        if q.flags & abi::queue_flags::INTR != 0 && q.intr_vector.get() >= limits.nintrs {
            return Err(AdminStatus::NoEntry.into());
        }
        let qtype = q.qtype();
        let l = self.lifs[usize::from(lif)].as_ref().expect("checked");
        if qtype == QueueType::Admin {
            return Err(AdminStatus::Invalid.into());
        }
        let qindex = l.free_queue_index(qtype).ok_or(Outcome::err(AdminStatus::NoSpace))? as u16;
        let func = &self.functions[fi];
        let dma = &func.dma;
        let l = self.lifs[usize::from(lif)].as_mut().expect("checked");
        if let Some(off) = abi::doorbell_offset_in_page(qtype, qindex) {
            func.doorbells.clear(l.slot, off);
        }
        match qtype {
            QueueType::Tx => {
                let tq = DeviceQueue::new(dma, q, lif, qindex).map_err(queue_mem_status)?;
                put_queue(&mut l.txqs, usize::from(qindex), tq);
            }
            _ => {
                let mut rq = DeviceQueue::new(dma, q, lif, qindex).map_err(queue_mem_status)?;
                rq.core.set_always_fetching();
                put_queue(&mut l.rxqs, usize::from(qindex), rq);
            }
        }
        Ok(Outcome::ok(u32::from(qindex), 0))
    }

    pub(super) fn queue_reset(&mut self, fi: usize, lif: u16, q: &QueueRef) -> Res {
        self.owned_lif(fi, lif)?;
        let l = self.lifs[usize::from(lif)]
            .as_mut()
            .ok_or(Outcome::err(AdminStatus::NoEntry))?;
        let i = usize::from(q.qindex.get());
        let start = q.start_index.get();
        // The queue lives in its owner's memory and rings its owner's
        // doorbells, whoever asks (the PF may reset a VF's queue).
        let owner = &self.functions[usize::from(l.function)];
        let r = match q.qtype() {
            QueueType::Tx => l
                .txqs
                .get_mut(i)
                .and_then(Option::as_mut)
                .map(|t| t.reset(&owner.dma, start)),
            QueueType::Rx => l.rxqs.get_mut(i).and_then(Option::as_mut).map(|r| {
                let res = r.reset(&owner.dma, start);
                if res.is_ok() {
                    r.core.set_always_fetching();
                }
                res
            }),
            QueueType::Admin => None,
        };
        if r.as_ref().is_some_and(Result::is_ok) {
            if let Some(off) = abi::doorbell_offset_in_page(q.qtype(), q.qindex.get()) {
                owner.doorbells.clear(l.slot, off);
            }
        }
        match r {
            None => Err(AdminStatus::NoEntry.into()),
            Some(Err(e)) => Err(queue_mem_status(e)),
            Some(Ok(())) => Ok(Outcome::ok(0, 0)),
        }
    }
}

/// Put queue `q` at `index` of `slots` (a free slot, or the one just past
/// the end: [`crate::device::Lif::free_queue_index`]).
fn put_queue<T>(slots: &mut Vec<Option<T>>, index: usize, q: T) {
    if index == slots.len() {
        slots.push(Some(q));
    } else {
        slots[index] = Some(q);
    }
}
