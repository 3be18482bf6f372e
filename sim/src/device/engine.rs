//! The data path: the fetch engine that follows each TX queue's doorbells
//! and outgoing tail, the switch, RX delivery into posted buffers, the
//! uplink port, and interrupts.
//!
//! One [`Device::poll`] pass visits every LIF's TX queues in a fixed order
//! (so a virtual-time run replays exactly), takes at most [`TX_BATCH`]
//! descriptors from each, then at most [`WIRE_BATCH`] frames from the wire,
//! then decides interrupts for every queue that completed something.
//!
//! Accounting: every frame a LIF sends counts once in its `TxPackets`;
//! every frame arriving at a LIF counts once in its `RxPackets` or in one
//! of its `Drop*` counters; a frame the switch cannot place counts on the
//! sender (or on the uplink's counters for frames from the wire).

use super::switch::{Source, Verdict};
use super::Device;
use crate::clock::Nanos;
use dataplane::abi::{
    comp_flags, doorbell_offset_in_page, tx_flags, CompStatus, Doorbell, LifCounter, QueueType, RxDesc, TxDesc,
    CONSUMER_POLLING, LIF_UPLINK,
};
use dataplane::packet::classify;

/// Descriptors taken from one TX queue per pass.
pub const TX_BATCH: usize = 64;
/// Frames taken from the wire per pass.
pub const WIRE_BATCH: usize = 64;

impl Device {
    /// One pass of the engines at the current time. Returns how much work
    /// it did (descriptors and frames handled); 0 means the device is idle
    /// until the next doorbell or [`Device::next_deadline`].
    pub fn poll(&mut self) -> usize {
        let now = self.now();
        let mut work = 0;
        for l in 0..self.lifs.len() {
            let Some(lif) = &self.lifs[l] else { continue };
            if !self.functions[usize::from(lif.function)].config.bus_master() {
                continue;
            }
            for q in 0..lif.txqs.len() {
                work += self.service_txq(l, q, now);
            }
        }
        work += self.service_uplink(now);
        self.signal_completions();
        work
    }

    /// When the device next has something to do without a doorbell: the
    /// next frame from the wire, or now if a fetch engine is active.
    pub fn next_deadline(&self) -> Option<Nanos> {
        let active = self
            .lifs
            .iter()
            .flatten()
            .any(|l| l.txqs.iter().flatten().any(|q| q.active && q.core.error.is_none()));
        if active {
            return Some(self.now());
        }
        self.port.next_arrival()
    }

    fn service_txq(&mut self, l: usize, q: usize, now: Nanos) -> usize {
        let Some(mut txq) = self.lifs[l].as_mut().and_then(|lif| lif.txqs[q].take()) else {
            return 0;
        };
        let work = self.run_txq(l, q as u16, &mut txq, now);
        if let Some(lif) = self.lifs[l].as_mut() {
            lif.txqs[q] = Some(txq);
        }
        work
    }

    fn run_txq(&mut self, l: usize, qindex: u16, txq: &mut super::queue::DeviceQueue<TxDesc>, now: Nanos) -> usize {
        if txq.core.error.is_some() {
            return 0;
        }
        let (f, slot) = {
            let lif = self.lifs[l].as_ref().expect("caller checked");
            (usize::from(lif.function), lif.slot)
        };
        if !txq.active {
            let offset = doorbell_offset_in_page(QueueType::Tx, qindex).expect("qindex < 256");
            let db = self.functions[f].doorbells.load(slot, offset);
            if db == txq.doorbell_seen {
                return 0;
            }
            txq.doorbell_seen = db;
            match Doorbell::decode(db) {
                Ok(d) if d.qtype == QueueType::Tx && d.qindex == qindex => {}
                _ => {
                    self.functions[f].counters.bad_doorbells += 1;
                    return 0;
                }
            }
            self.lif_count(l, LifCounter::Doorbells, 1);
            txq.active = true;
            txq.ring.set_fetching();
        }
        // Completions need room before descriptors are taken, so that a
        // COMPLETE descriptor or an error can always be reported.
        if !txq.core.cq_has_room() {
            return 0;
        }
        let mut descs = [TxDesc::default(); TX_BATCH];
        let n = match txq.ring.fetch_burst(&mut descs) {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(lif = l, qindex, "tx ring: {e}");
                txq.core.fail(CompStatus::BadOutgoingTail, txq.ring.head(), now);
                return 1;
            }
        };
        if n == 0 {
            match txq.ring.try_idle() {
                Ok(true) => txq.active = false,
                Ok(false) => {}
                Err(_) => txq.core.fail(CompStatus::BadOutgoingTail, txq.ring.head(), now),
            }
            return 0;
        }
        let first = txq.ring.head().wrapping_sub(n as u32);
        let mut frame = std::mem::take(&mut self.scratch);
        let mut done = n;
        for (i, d) in descs[..n].iter().enumerate() {
            let index = first.wrapping_add(i as u32);
            if d.validate().is_err() {
                txq.core.fail(CompStatus::BadDescriptor, index, now);
                done = i;
                break;
            }
            if self.read_tx_frame(f, d, &mut frame).is_err() {
                txq.core.fail(CompStatus::DmaFault, index, now);
                done = i;
                break;
            }
            self.lif_count(l, LifCounter::TxPackets, 1);
            self.lif_count(l, LifCounter::TxBytes, frame.len() as u64);
            self.lif_count(l, LifCounter::DmaBytes, 16 + u64::from(d.len.get()));
            self.switch_frame(Source::Lif(l as u16), &frame, now);
            if d.flags.get() & tx_flags::COMPLETE != 0 {
                let c = super::queue::completion(CompStatus::Ok, l as u16, index, 0, 0, now);
                txq.core.post_completion(c);
            }
        }
        self.scratch = frame;
        txq.ring.write_back_to(first.wrapping_add(done as u32));
        n
    }

    /// Copy a TX descriptor's frame out of the function's memory, inserting
    /// the 802.1Q tag it asks for.
    fn read_tx_frame(&self, f: usize, d: &TxDesc, frame: &mut Vec<u8>) -> Result<(), crate::dma::DmaFault> {
        let len = usize::from(d.len.get());
        frame.clear();
        frame.resize(len, 0);
        self.functions[f].dma.read(d.addr.get(), frame)?;
        if d.flags.get() & tx_flags::VLAN_INSERT != 0 {
            let mut tag = [0x81, 0x00, 0, 0];
            tag[2..].copy_from_slice(&d.vlan_tci.get().to_be_bytes());
            frame.splice(12..12, tag);
        }
        Ok(())
    }

    fn lif_count(&mut self, l: usize, c: LifCounter, n: u64) {
        if let Some(lif) = self.lifs[l].as_mut() {
            lif.count(c, n);
        }
    }

    fn source_count(&mut self, src: Source, c: LifCounter) {
        match src {
            Source::Lif(l) => self.lif_count(usize::from(l), c, 1),
            Source::Uplink => self.uplink_counters[c as usize] += 1,
        }
    }

    /// Send a frame where the switch says.
    fn switch_frame(&mut self, src: Source, frame: &[u8], now: Nanos) {
        match self.switch.forward(src, frame) {
            Verdict::ToLif(d) => self.rx_deliver(usize::from(d), src, frame, now),
            Verdict::ToUplink => self.port.transmit(now, frame),
            Verdict::Flood => {
                for d in 0..self.lifs.len() {
                    if self.lifs[d].is_some() && src != Source::Lif(d as u16) {
                        self.rx_deliver(d, src, frame, now);
                    }
                }
                if matches!(src, Source::Lif(_)) {
                    self.port.transmit(now, frame);
                }
            }
            Verdict::DropByTable => self.source_count(src, LifCounter::DropPipeline),
            Verdict::NoRoute => self.source_count(src, LifCounter::DropNoRoute),
            Verdict::ParseError => self.source_count(src, LifCounter::DropParseError),
        }
    }

    /// Put `frame` into the next posted buffer of LIF `d`.
    fn rx_deliver(&mut self, d: usize, src: Source, frame: &[u8], now: Nanos) {
        let Some(lif) = self.lifs.get_mut(d).and_then(Option::as_mut) else {
            return self.source_count(src, LifCounter::DropNoRoute);
        };
        let f = usize::from(lif.function);
        let func = &self.functions[f];
        if !func.config.bus_master() {
            lif.count(LifCounter::DropQueueError, 1);
            return;
        }
        // Round robin over queues that are healthy and have room to
        // complete.
        let nq = lif.rxqs.len();
        let Some(q) = (0..nq).map(|i| (lif.rx_next + i) % nq).find(|&i| {
            lif.rxqs[i]
                .as_ref()
                .is_some_and(|r| r.core.error.is_none() && r.core.cq_has_room())
        }) else {
            let reason = if lif.rxqs.iter().flatten().any(|r| r.core.error.is_none()) {
                LifCounter::DropNoRxBuffer
            } else {
                LifCounter::DropQueueError
            };
            lif.count(reason, 1);
            return;
        };
        lif.rx_next = (q + 1) % nq;
        let rxq = lif.rxqs[q].as_mut().expect("found above");
        let mut one = [RxDesc::default()];
        match rxq.ring.fetch_burst(&mut one) {
            Ok(1) => {}
            Ok(_) => {
                lif.count(LifCounter::DropNoRxBuffer, 1);
                return;
            }
            Err(e) => {
                tracing::debug!(lif = d, "rx ring: {e}");
                rxq.core.fail(CompStatus::BadOutgoingTail, rxq.ring.head(), now);
                lif.count(LifCounter::DropQueueError, 1);
                return;
            }
        }
        let index = rxq.ring.head().wrapping_sub(1);
        let desc = one[0];
        if desc.validate().is_err() {
            rxq.core.fail(CompStatus::BadDescriptor, index, now);
            lif.count(LifCounter::DropQueueError, 1);
            return;
        }
        let cap = usize::from(desc.len.get());
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
        };
        let mut c = super::queue::completion(
            CompStatus::Ok,
            src_lif,
            index,
            len as u16,
            classify(frame).unwrap_or(0),
            now,
        );
        if truncated {
            c.flags |= comp_flags::TRUNCATED;
        }
        rxq.core.post_completion(c);
        rxq.ring.write_back();
        lif.count(LifCounter::DmaBytes, 16 + 16 + len as u64);
        if truncated {
            lif.count(LifCounter::DropTooLong, 1);
        } else {
            lif.count(LifCounter::RxPackets, 1);
            lif.count(LifCounter::RxBytes, len as u64);
        }
    }

    fn service_uplink(&mut self, now: Nanos) -> usize {
        let mut frames = Vec::new();
        self.port.receive(now, WIRE_BATCH, &mut frames);
        for fr in &frames {
            self.switch_frame(Source::Uplink, &fr.data, now);
        }
        frames.len()
    }

    /// Interrupt for every queue that wrote completions, unless the driver
    /// is polling it.
    fn signal_completions(&mut self) {
        for l in 0..self.lifs.len() {
            let Some(lif) = self.lifs[l].as_mut() else { continue };
            let f = usize::from(lif.function);
            let mut fire = Vec::new();
            let mut suppressed = 0;
            let cores = lif
                .txqs
                .iter_mut()
                .flatten()
                .map(|q| &mut q.core)
                .chain(lif.rxqs.iter_mut().flatten().map(|q| &mut q.core));
            for core in cores {
                if core.unsignalled == 0 {
                    continue;
                }
                core.unsignalled = 0;
                let Some(v) = core.intr else { continue };
                if core.consumer_flag() == CONSUMER_POLLING {
                    suppressed += 1;
                } else if !fire.contains(&v) {
                    fire.push(v);
                }
            }
            lif.count(LifCounter::InterruptsSuppressed, suppressed);
            let mut sent = 0;
            for v in fire {
                sent += u64::from(self.functions[f].fire(v));
            }
            if let Some(lif) = self.lifs[l].as_mut() {
                lif.count(LifCounter::Interrupts, sent);
            }
        }
    }
}
