//! The TX side of a pass: which LIF the fair scheduler serves next, its
//! descriptors fetched and checked, the frame read by DMA, charged to its
//! meters and the pipeline, and its completion.

use super::*;

impl Device {
    /// Every LIF's class if it has TX work, else `None`.
    pub(super) fn fill_classes(&mut self, now: Nanos, out: &mut Vec<Option<Class>>) {
        out.clear();
        for l in 0..self.lifs.len() {
            let has_work =
                self.lifs[l].as_ref().is_some_and(|lif| {
                    let func = &self.functions[usize::from(lif.function)];
                    func.config.bus_master()
                        && func.failed.is_none()
                        && lif.txqs.iter().flatten().any(|q| {
                            q.core.error.is_none() && now >= q.stalled_until && (q.active || !q.cache.is_empty())
                        })
                });
            if !has_work {
                out.push(None);
                continue;
            }
            let backlog = self.backlog(l);
            let lif = self.lifs[l].as_mut().expect("checked");
            let class = lif.meters.class(now, backlog);
            if class == Class::Blocked && !lif.blocked {
                lif.count(LifCounter::Backpressured, 1);
            }
            lif.blocked = class == Class::Blocked;
            out.push(Some(class));
        }
    }

    /// Descriptors LIF `l` has waiting (only computed when a
    /// descriptors-in-flight meter needs it).
    pub(super) fn backlog(&mut self, l: usize) -> u64 {
        self.lifs[l].as_mut().map_or(0, super::super::Lif::backlog)
    }

    /// Process one packet from LIF `l`'s TX queues (round robin among them).
    pub(super) fn serve(&mut self, l: usize, now: Nanos) -> Served {
        let (f, nq, next) = {
            let lif = self.lifs[l].as_mut().expect("caller checked");
            if std::mem::take(&mut lif.inject_panic) {
                panic!("fault injection: a bug in the engine while serving LIF {l}");
            }
            (usize::from(lif.function), lif.txqs.len(), lif.tx_next)
        };
        // Round robin from `next` (kept below `nq`), without a division
        // per queue looked at.
        let mut qi = if next < nq { next } else { 0 };
        for _ in 0..nq {
            let after = if qi + 1 == nq { 0 } else { qi + 1 };
            if let Served::Packet = self.serve_queue(l, qi, f, now) {
                self.lifs[l].as_mut().expect("exists").tx_next = after;
                return Served::Packet;
            }
            qi = after;
        }
        Served::Nothing
    }

    pub(super) fn txq(&mut self, l: usize, qi: usize) -> Option<&mut DeviceQueue<TxDesc>> {
        self.lifs[l].as_mut()?.txqs[qi].as_mut()
    }

    /// The next descriptor of TX queue `qi` of LIF `l` and its ring index,
    /// refilling the queue's cache from the ring when it is empty. A burst
    /// is never larger than the completion ring's room, so every
    /// descriptor in the cache can be completed.
    pub(super) fn next_tx_desc(&mut self, l: usize, qi: usize, f: usize, now: Nanos) -> Option<(TxDesc, RingIndex)> {
        let txq = self.lifs[l].as_mut()?.txqs[qi].as_mut()?;
        if txq.core.error.is_some() || now < txq.stalled_until {
            return None;
        }
        if txq.cache.is_empty() {
            if !txq.active {
                return None;
            }
            let room = (txq.core.cq_room() as usize).min(TX_BATCH);
            if room == 0 {
                return None;
            }
            let mut descs = [TxDesc::default(); TX_BATCH];
            txq.core.put_off = false;
            match txq.fetch(&mut descs[..room]) {
                Ok(0) if txq.core.detached => return None,
                // Put off (the client was waiting for the device): again
                // next pass, still active.
                Ok(0) if std::mem::take(&mut txq.core.put_off) => {
                    txq.stalled_until = now + 1;
                    return None;
                }
                Ok(0) => {
                    match txq.try_idle() {
                        Ok(true) => txq.active = false,
                        // Put off: still active, again next pass.
                        Ok(false) if std::mem::take(&mut txq.core.put_off) => txq.stalled_until = now + 1,
                        Ok(false) => {}
                        Err(_) => txq.core.fail(CompStatus::BadOutgoingTail, txq.ring.head(), now),
                    }
                    return None;
                }
                Ok(n) => {
                    txq.cache_index = txq.ring.head() - n as u32;
                    txq.cache.extend(descs[..n].iter().copied());
                    let dma = &self.functions[f].dma;
                    for d in &descs[..n] {
                        dma.prefetch(d.addr.get(), u64::from(d.len.get()));
                    }
                    if self.switch.program().is_some() {
                        self.preprocess(l, qi, f, &descs[..n], now);
                    }
                }
                Err(e) => {
                    tracing::debug!(lif = l, "tx ring: {e}");
                    txq.core.fail(CompStatus::BadOutgoingTail, txq.ring.head(), now);
                    return None;
                }
            }
        }
        self.pop_tx_desc(l, qi)
    }

    /// The next cached descriptor and its ring index.
    pub(super) fn pop_tx_desc(&mut self, l: usize, qi: usize) -> Option<(TxDesc, RingIndex)> {
        let txq = self.lifs[l].as_mut()?.txqs[qi].as_mut()?;
        let d = txq.cache.pop_front()?;
        let index = txq.cache_index;
        txq.cache_index = index + 1;
        Some((d, index))
    }

    /// With a loaded program: read the frames of freshly fetched
    /// descriptors and run them through the program as one batch, up to
    /// the first descriptor that would fault (it and what follows are
    /// handled one by one, as without a program). Their decisions wait in
    /// the queue's `pre`, in order, for their turn in the scheduler; the
    /// program's meters and counters see them at fetch time.
    pub(super) fn preprocess(&mut self, l: usize, qi: usize, f: usize, descs: &[TxDesc], now: Nanos) {
        if self.cfg.forwarding == Forwarding::Floor {
            return;
        }
        // The batch's frames and decisions in scratch kept by the device
        // (no allocation per batch).
        let mut frames = std::mem::take(&mut self.pre_frames);
        let mut decisions = std::mem::take(&mut self.pre_decisions);
        frames.clear();
        decisions.clear();
        for d in descs {
            let mut frame = self.frame_pool.pop().unwrap_or_default();
            if d.validate().is_err() || self.read_tx_frame(f, d, &mut frame).is_err() {
                self.frame_pool.push(frame);
                break;
            }
            frames.push(frame);
        }
        let src = Source::Lif(l as u16);
        // Frames that fail the source checks never reach the program.
        let ran = if frames.is_empty() {
            false
        } else if frames.iter().all(|fr| self.check_source(src, fr).is_none()) {
            self.switch.process_batch(src, &mut frames, now, &mut decisions)
        } else {
            let checks: Vec<Option<Decision>> = frames.iter().map(|fr| self.check_source(src, fr)).collect();
            let mut good: Vec<Vec<u8>> = Vec::with_capacity(frames.len());
            for (fr, c) in frames.iter_mut().zip(&checks) {
                if c.is_none() {
                    good.push(std::mem::take(fr));
                }
            }
            let mut ran = Vec::with_capacity(good.len());
            if self.switch.process_batch(src, &mut good, now, &mut ran) {
                let mut good = good.into_iter();
                let mut ran = ran.into_iter();
                for (fr, c) in frames.iter_mut().zip(checks) {
                    match c {
                        Some(d) => decisions.push(d),
                        None => {
                            *fr = good.next().expect("one good frame per unchecked slot");
                            decisions.push(ran.next().expect("one decision per good frame"));
                        }
                    }
                }
                true
            } else {
                self.frame_pool.extend(good);
                false
            }
        };
        if ran {
            if let Some(txq) = self.txq(l, qi) {
                txq.pre.extend(frames.drain(..).zip(decisions.drain(..)));
            }
        }
        self.frame_pool.append(&mut frames);
        self.pre_frames = frames;
        self.pre_decisions = decisions;
    }

    /// The source checks every frame passes before the pipeline sees it:
    /// a group source address is no station's (dropped as `BadSource`,
    /// from a LIF or the wire); a LIF whose slot has spoof check on may
    /// send only from its own MAC (else `Spoofed`). `None`: it passes.
    pub(super) fn check_source(&self, src: Source, frame: &[u8]) -> Option<Decision> {
        let sa: Mac = frame.get(6..12)?.try_into().ok()?;
        let verdict = if sa[0] & 1 != 0 {
            Verdict::BadSource
        } else {
            match src {
                Source::Lif(l) => {
                    let lif = self.lifs.get(usize::from(l))?.as_ref()?;
                    if !lif.spoof_check || lif.mac == sa {
                        return None;
                    }
                    Verdict::Spoofed
                }
                Source::Uplink | Source::Cpu => return None,
            }
        };
        // The parser read the Ethernet header: one stage's cost.
        Some(Decision {
            verdict,
            passes: 0,
            pass_cost: Some(self.cost_model.per_header),
        })
    }

    /// Where `frame` from `src` goes: the source checks, then the switch or
    /// the loaded program (which may rewrite it); on the benchmark floor,
    /// the LIF its destination MAC names.
    pub(super) fn decide(&mut self, src: Source, frame: &mut [u8], now: Nanos) -> Decision {
        if self.cfg.forwarding == Forwarding::Floor {
            let verdict = match frame.get(4..6) {
                Some(&[hi, lo]) => Verdict::ToLif(u16::from_be_bytes([hi, lo])),
                _ => Verdict::ParseError,
            };
            return Decision {
                verdict,
                passes: 0,
                pass_cost: Some(0),
            };
        }
        match self.check_source(src, frame) {
            Some(d) => d,
            None => self.switch.process(src, frame, now),
        }
    }

    /// One packet from TX queue `qi` of LIF `l` (on function `f`) through
    /// the pipeline.
    pub(super) fn serve_queue(&mut self, l: usize, qi: usize, f: usize, now: Nanos) -> Served {
        // The usual case with a program loaded: the next descriptor's frame
        // already went through it (`preprocess`), its decision queued in
        // `pre` beside the cached descriptor (the two are popped together,
        // and cleared together on a fault). One look at the queue for what
        // `next_tx_desc` and the checks below would each look up again.
        if let Some(txq) = self.lifs[l].as_mut().and_then(|lif| lif.txqs.get_mut(qi)?.as_mut()) {
            let ready = txq.core.error.is_none() && now >= txq.stalled_until && !txq.inject_bad;
            if ready && !txq.pre.is_empty() && !txq.cache.is_empty() {
                if let Some((d, (frame, decision))) = txq.cache.pop_front().zip(txq.pre.pop_front()) {
                    let index = txq.cache_index;
                    txq.cache_index = index + 1;
                    return self.finish_tx(l, qi, d, index, frame, decision, false, now);
                }
            }
        }
        let Some((d, index)) = self.next_tx_desc(l, qi, f, now) else {
            return Served::Nothing;
        };
        let injected = self.txq(l, qi).is_some_and(|q| std::mem::take(&mut q.inject_bad));
        if !injected {
            if let Some((frame, decision)) = self.txq(l, qi).and_then(|q| q.pre.pop_front()) {
                return self.finish_tx(l, qi, d, index, frame, decision, false, now);
            }
        }
        let mut frame = std::mem::take(&mut self.scratch);
        let fault = if injected || d.validate().is_err() {
            Some(CompStatus::BadDescriptor)
        } else {
            match self.read_tx_frame(f, &d, &mut frame) {
                Ok(()) => None,
                Err(e) if e.busy => {
                    // Put off (the client was waiting for the device): the
                    // descriptor goes back first in line, for the next pass.
                    self.scratch = frame;
                    let txq = self.txq(l, qi).expect("served above");
                    txq.cache.push_front(d);
                    txq.cache_index = index;
                    txq.stalled_until = now + 1;
                    return Served::Nothing;
                }
                Err(_) => Some(CompStatus::DmaFault),
            }
        };
        if let Some(status) = fault {
            self.scratch = frame;
            let txq = self.txq(l, qi).expect("served above");
            txq.core.fail(status, index, now);
            txq.cache.clear();
            txq.pre.clear();
            txq.write_back_to(index);
            txq.write_back_pending = None;
            // A packet's worth of work: the descriptor was fetched.
            return Served::Packet;
        }
        let decision = self.decide(Source::Lif(l as u16), &mut frame, now);
        self.finish_tx(l, qi, d, index, frame, decision, true, now)
    }

    /// Account, deliver and complete a TX frame the switch decided.
    /// `scratch`: the frame buffer is the engine's scratch (else it goes
    /// back to the frame pool).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn finish_tx(
        &mut self,
        l: usize,
        qi: usize,
        d: TxDesc,
        index: RingIndex,
        frame: Vec<u8>,
        decision: Decision,
        scratch: bool,
        now: Nanos,
    ) -> Served {
        let Decision {
            verdict,
            passes,
            pass_cost,
        } = decision;
        let mut cost = match pass_cost {
            Some(c) => c.saturating_mul(1 + u64::from(passes)),
            None => self.cost_model.cost(&frame, passes),
        };
        let mut dma_bytes = 16 + u64::from(d.len.get());
        if verdict == Verdict::Flood {
            // A flood is one pass and a copy per destination: the sender
            // pays the egress stage and the DMA of every copy past the
            // first (each LIF but itself, and the wire).
            let copies = self.lifs.iter().flatten().count() as u64;
            let extra = copies.saturating_sub(1);
            cost = cost.saturating_add(extra.saturating_mul(self.cost_model.egress));
            dma_bytes = dma_bytes.saturating_add(extra.saturating_mul(32 + frame.len() as u64));
        }
        let done = self.occupy_pipeline(now, cost);
        let mut mark = MeterColor::None;
        {
            let lif = self.lifs[l].as_mut().expect("exists");
            lif.count(LifCounter::TxPackets, 1);
            lif.count(LifCounter::TxBytes, frame.len() as u64);
            lif.count(LifCounter::DmaBytes, dma_bytes);
            lif.count(LifCounter::CostUnits, cost);
            if lif.meters.any_on() {
                let color = lif.meters.charge(
                    now,
                    Usage {
                        bytes: frame.len() as u64,
                        cost,
                        dma_bytes,
                    },
                );
                lif.count(color_counter(color), 1);
                mark = color.abi();
            }
        }
        self.sched.charge(l, cost);
        let m = Meta {
            src: Source::Lif(l as u16),
            mark,
            cost,
            done,
        };
        self.deliver(verdict, &frame, m, now);
        if scratch {
            self.scratch = frame;
        } else {
            self.frame_pool.push(frame);
        }
        let txq = self.txq(l, qi).expect("served above");
        if d.flags.get() & tx_flags::COMPLETE != 0 {
            let mut c = crate::device::queue::completion(CompStatus::Ok, l as u16, index, 0, 0, done);
            c.flags |= mark.raw();
            txq.core.post_completion(c);
        }
        txq.done_to(index + 1);
        Served::Packet
    }

    /// Occupy the pipeline for a packet of `cost` units starting no earlier
    /// than `now`; returns the time its completion carries.
    pub(super) fn occupy_pipeline(&mut self, now: Nanos, cost: u64) -> Nanos {
        match self.cfg.pipeline_units_per_sec {
            None => now,
            Some(rate) => {
                let start = self.busy_until.max(now);
                let rate = rate.max(1);
                // In 64 bits while the product fits (any cost below 18e9
                // units), one hardware divide instead of the 128-bit
                // division's call; the same quotient either way.
                let service = match cost.checked_mul(1_000_000_000) {
                    Some(units_ns) => units_ns.div_ceil(rate),
                    None => (u128::from(cost) * 1_000_000_000).div_ceil(u128::from(rate)) as u64,
                };
                self.busy_until = start + service;
                self.busy_until + self.cfg.transit_ns
            }
        }
    }

    /// Copy a TX descriptor's frame out of the function's memory, inserting
    /// the 802.1Q tag it asks for.
    pub(super) fn read_tx_frame(&self, f: usize, d: &TxDesc, frame: &mut Vec<u8>) -> Result<(), crate::dma::DmaFault> {
        let len = usize::from(d.len.get());
        // Every byte is overwritten by the read: no zeroing when the buffer
        // already has the length (frames of one size, as usual).
        if frame.len() != len {
            frame.resize(len, 0);
        }
        self.functions[f].dma.read(d.addr.get(), frame)?;
        if d.flags.get() & tx_flags::VLAN_INSERT != 0 {
            let mut tag = [0x81, 0x00, 0, 0];
            tag[2..].copy_from_slice(&d.vlan_tci.get().to_be_bytes());
            frame.splice(12..12, tag);
        }
        Ok(())
    }
}
