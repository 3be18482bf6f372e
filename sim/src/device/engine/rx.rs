//! Where a frame goes after the pipeline: a LIF's RX ring, the uplink, or
//! a drop counter; and frames from the wire.

use super::*;

impl Device {
    pub(super) fn lif_count(&mut self, l: usize, c: LifCounter, n: u64) {
        if let Some(lif) = self.lifs[l].as_mut() {
            lif.count(c, n);
        }
    }

    pub(super) fn source_count(&mut self, src: Source, c: LifCounter) {
        match src {
            Source::Lif(l) => self.lif_count(usize::from(l), c, 1),
            // The CPU port's frames are the PF's: what they end in
            // before a LIF takes them is on the port's counters.
            Source::Uplink | Source::Cpu => self.uplink_counters[c as usize] += 1,
        }
    }

    /// Send a frame where the switch decided; `done` is its completion
    /// time. The usual verdict, a LIF, is inlined into the caller; the
    /// others go through [`Device::deliver_other`].
    #[inline]
    pub(super) fn deliver(&mut self, verdict: Verdict, frame: &[u8], m: Meta, now: Nanos) {
        match verdict {
            Verdict::ToLif(d) => {
                self.audit.to_lif += 1;
                self.rx_deliver(usize::from(d), frame, m, now)
            }
            other => self.deliver_other(other, frame, m, now),
        }
    }

    fn deliver_other(&mut self, verdict: Verdict, frame: &[u8], m: Meta, now: Nanos) {
        let src = m.src;
        match verdict {
            Verdict::ToLif(_) => self.deliver(verdict, frame, m, now),
            Verdict::ToUplink => {
                self.port.transmit(m.done, frame);
                self.uplink_counters[LifCounter::WireTxPackets as usize] += 1;
                match src {
                    Source::Lif(l) => self.lif_count(usize::from(l), LifCounter::ToUplink, 1),
                    Source::Uplink | Source::Cpu => self.audit.hairpins += 1,
                }
            }
            Verdict::Flood => {
                let reaches = self
                    .lifs
                    .iter()
                    .enumerate()
                    .any(|(d, l)| l.is_some() && src != Source::Lif(d as u16));
                if !reaches {
                    // No LIF to copy it to: a flood from a LIF leaves by
                    // the uplink alone; one from the wire has nowhere to go.
                    return match src {
                        Source::Lif(_) => self.deliver(Verdict::ToUplink, frame, m, now),
                        Source::Uplink | Source::Cpu => self.source_count(src, LifCounter::DropNoRoute),
                    };
                }
                self.audit.floods += 1;
                for d in 0..self.lifs.len() {
                    if self.lifs[d].is_some() && src != Source::Lif(d as u16) {
                        self.audit.flood_copies += 1;
                        self.rx_deliver(d, frame, m, now);
                    }
                }
                if matches!(src, Source::Lif(_)) {
                    self.port.transmit(m.done, frame);
                    self.uplink_counters[LifCounter::WireTxPackets as usize] += 1;
                }
            }
            Verdict::DropByTable => self.source_count(src, LifCounter::DropPipeline),
            Verdict::NoRoute => self.source_count(src, LifCounter::DropNoRoute),
            Verdict::ParseError => self.source_count(src, LifCounter::DropParseError),
            Verdict::Spoofed => self.source_dropped(src, LifCounter::DropSpoofed, now),
            Verdict::BadSource => self.source_dropped(src, LifCounter::DropBadSource, now),
            Verdict::ToCpu => {
                if self.cpu_queue.len() >= dataplane::abi::CPU_QUEUE_FRAMES {
                    self.source_count(src, LifCounter::DropCpuQueueFull);
                } else {
                    // A deparser emits no more than it extracted: the frame
                    // is no longer than the one that came in.
                    let len = frame.len().min(usize::from(dataplane::abi::MAX_FRAME_LEN));
                    self.cpu_queue.push_back((src.ingress_lif(), frame[..len].to_vec()));
                    self.source_count(src, LifCounter::ToCpu);
                }
            }
        }
    }

    /// Count a frame the source checks dropped; the first of each kind per
    /// LIF is also an event for the PF.
    pub(super) fn source_dropped(&mut self, src: Source, c: LifCounter, now: Nanos) {
        self.source_count(src, c);
        let Source::Lif(l) = src else { return };
        let Some(lif) = self.lifs.get_mut(usize::from(l)).and_then(Option::as_mut) else {
            return;
        };
        let bit = if c == LifCounter::DropSpoofed { 1 } else { 2 };
        if lif.source_events & bit == 0 {
            lif.source_events |= bit;
            let (function, slot) = (lif.function, lif.slot);
            self.events.push(
                now,
                EventKind::SourceDropped,
                function,
                Some((l, slot)),
                u64::from(c.raw()),
            );
        }
    }

    /// A frame the PF injected through the CPU port (`PacketInject`) into
    /// LIF `d`'s RX rings: no pipeline, no meter, no cost.
    pub(crate) fn inject_to_lif(&mut self, d: usize, frame: &[u8], now: Nanos) {
        let m = Meta {
            src: Source::Cpu,
            mark: MeterColor::Green,
            cost: 0,
            done: now,
        };
        self.rx_deliver(d, frame, m, now);
    }

    /// Put `frame` into the next posted buffer of LIF `d`.
    #[inline]
    pub(super) fn rx_deliver(&mut self, d: usize, frame: &[u8], m: Meta, now: Nanos) {
        // A bug while delivering is the receiver's function's to report.
        let owner = self.lifs.get(d).and_then(Option::as_ref).map(|l| l.function);
        let prev = self.blame;
        self.blame = owner.or(prev);
        self.rx_deliver_to(d, frame, m, now);
        self.blame = prev;
    }

    pub(super) fn rx_deliver_to(&mut self, d: usize, frame: &[u8], m: Meta, now: Nanos) {
        let Meta {
            src,
            mut mark,
            cost,
            done,
        } = m;
        self.audit.arrivals += 1;
        let Some(lif) = self.lifs.get_mut(d).and_then(Option::as_mut) else {
            self.audit.arrivals_no_lif += 1;
            return self.source_count(src, LifCounter::DropNoRoute);
        };
        if src == Source::Uplink {
            lif.count(LifCounter::RxFromWire, 1);
            // Traffic from the wire is the receiving LIF's: charge it, and
            // drop it there if a meter is red under the Drop policy.
            let usage = Usage {
                bytes: frame.len() as u64,
                cost,
                dma_bytes: 32 + frame.len() as u64,
            };
            lif.count(LifCounter::CostUnits, cost);
            if lif.meters.any_on() {
                let (color, drop) = lif.meters.ingress(now, usage);
                lif.count(color_counter(color), 1);
                mark = color.abi();
                if drop {
                    lif.count(LifCounter::DropMeterRed, 1);
                    return;
                }
            }
        }
        let f = usize::from(lif.function);
        let func = &self.functions[f];
        if !func.config.bus_master() || func.failed.is_some() {
            lif.count(LifCounter::DropQueueError, 1);
            return;
        }
        // Round robin over queues that are healthy and have room to
        // complete.
        let nq = lif.rxqs.len();
        let start = if lif.rx_next < nq { lif.rx_next } else { 0 };
        let usable = |r: &mut Option<DeviceQueue<RxDesc>>| {
            r.as_mut()
                .is_some_and(|r| r.core.error.is_none() && r.core.cq_has_room())
        };
        // From `start` to the end, then from the first (no division per
        // queue looked at).
        let Some(q) = (start..nq).chain(0..start).find(|&i| usable(&mut lif.rxqs[i])) else {
            let reason = if lif.rxqs.iter().flatten().any(|r| r.core.error.is_none()) {
                LifCounter::DropNoRxBuffer
            } else {
                LifCounter::DropQueueError
            };
            lif.count(reason, 1);
            return;
        };
        lif.rx_next = if q + 1 == nq { 0 } else { q + 1 };
        let rxq = lif.rxqs[q].as_mut().expect("found above");
        // RX descriptors are fetched RX_BATCH at a time, and their buffers'
        // first lines prefetched for writing, so that the frames that
        // follow find them in cache.
        if rxq.cache.is_empty() {
            let mut descs = [RxDesc::default(); RX_BATCH];
            match rxq.fetch(&mut descs) {
                Ok(0) => {
                    lif.count(LifCounter::DropNoRxBuffer, 1);
                    return;
                }
                Ok(k) => {
                    rxq.cache_index = rxq.ring.head() - k as u32;
                    rxq.cache.extend(descs[..k].iter().copied());
                    for d in &descs[..k] {
                        func.dma.prefetch_write(d.addr.get());
                    }
                }
                Err(e) => {
                    tracing::debug!(lif = d, "rx ring: {e}");
                    rxq.core.fail(CompStatus::BadOutgoingTail, rxq.ring.head(), now);
                    lif.count(LifCounter::DropQueueError, 1);
                    return;
                }
            }
        }
        let desc = rxq.cache.pop_front().expect("filled above");
        let index = rxq.cache_index;
        rxq.cache_index = index + 1;
        if std::mem::take(&mut rxq.inject_bad) || desc.validate().is_err() {
            rxq.core.fail(CompStatus::BadDescriptor, index, now);
            lif.count(LifCounter::DropQueueError, 1);
            return;
        }
        // No completion says more than the largest frame (a VLAN tag
        // inserted into a 9216-byte frame, a long frame from the wire):
        // the driver would refuse it.
        let cap = usize::from(desc.len.get()).min(usize::from(dataplane::abi::MAX_FRAME_LEN));
        let (len, truncated) = if frame.len() > cap {
            (cap, true)
        } else {
            (frame.len(), false)
        };
        if func.dma.write(desc.addr.get(), &frame[..len]).is_err() {
            rxq.core.fail(CompStatus::DmaFault, index, now);
            lif.count(LifCounter::DropQueueError, 1);
            return;
        }
        let src_lif = match src {
            Source::Lif(s) => s,
            Source::Uplink => LIF_UPLINK,
            Source::Cpu => dataplane::abi::LIF_CPU,
        };
        let mut c = crate::device::queue::completion(
            CompStatus::Ok,
            src_lif,
            index,
            len as u16,
            classify(frame).unwrap_or(0),
            done,
        );
        c.flags |= mark.raw();
        if truncated {
            c.flags |= comp_flags::TRUNCATED;
        }
        rxq.core.post_completion(c);
        // Slots up to the next cached descriptor are the driver's again.
        let next = rxq.next_index();
        rxq.done_to(next);
        lif.count(LifCounter::DmaBytes, 16 + 16 + len as u64);
        if truncated {
            lif.count(LifCounter::DropTooLong, 1);
        } else {
            lif.count(LifCounter::RxPackets, 1);
            lif.count(LifCounter::RxBytes, len as u64);
        }
    }

    /// Frames from the wire, while the pipeline has room.
    pub(super) fn service_uplink(&mut self, now: Nanos) -> usize {
        let mut n = 0;
        let mut frames = Vec::new();
        while n < WIRE_BATCH && !self.pipeline_busy(now) {
            frames.clear();
            self.port.receive(now, 1, &mut frames);
            let Some(mut fr) = frames.pop() else { break };
            self.uplink_counters[LifCounter::WireRxPackets as usize] += 1;
            let Decision {
                verdict,
                passes,
                pass_cost,
            } = self.decide(Source::Uplink, &mut fr.data, now);
            let cost = match pass_cost {
                Some(c) => c.saturating_mul(1 + u64::from(passes)),
                None => self.cost_model.cost(&fr.data, passes),
            };
            let done = self.occupy_pipeline(now.max(fr.at), cost);
            let m = Meta {
                src: Source::Uplink,
                mark: MeterColor::None,
                cost,
                done,
            };
            self.deliver(verdict, &fr.data, m, now);
            n += 1;
        }
        n
    }
}
