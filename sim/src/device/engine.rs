//! The data path: the fetch engine, the pipeline's cost and capacity, the
//! switch, RX delivery, the uplink, and interrupts.
//!
//! Each [`Device::poll`] pass:
//! 1. looks at the doorbell word of every idle TX queue; a new value wakes
//!    the queue's fetch engine (fetch flag set, so the driver may stop
//!    ringing);
//! 2. takes frames from the wire that have arrived;
//! 3. lets the fetch scheduler ([`dataplane::fair::Scheduler`]) pick, one
//!    packet at a time, the LIF to serve next among those with work, by
//!    deficit round robin over what each consumed (pipeline cost units by
//!    default), skipping LIFs their red meters block and serving the ones
//!    they deprioritize only when nobody else has work;
//! 4. charges each packet to its LIF's meters (packets, bytes, cost, DMA
//!    bytes) after processing it;
//! 5. decides interrupts for every queue that completed something.
//!
//! The pipeline has a capacity (cost units per second) when one is
//! configured (always on the virtual clock): each packet occupies it for
//! `cost / capacity`, and a pass stops when the pipeline is booked beyond
//! now plus its lead (`DeviceConfig::pipeline_lead_ns`, 0 on the virtual
//! clock). Completion timestamps are the time the packet leaves the
//! pipeline plus a fixed transit latency (DMA and pipeline depth).
//!
//! Accounting: every frame a LIF sends counts once in its `TxPackets`;
//! every frame arriving at a LIF counts once in its `RxPackets` or in one
//! of its `Drop*` counters; a frame the switch cannot place counts on the
//! sender (or on the uplink's counters for frames from the wire); a frame a
//! LIF sends out of the uplink counts in the sender's `ToUplink`.

use super::meters::Usage;
use super::queue::DeviceQueue;
use super::switch::{Decision, Source, Verdict};
use super::Device;
use crate::clock::Nanos;
use dataplane::abi::ConsumerFlag;
use dataplane::abi::{
    comp_flags, doorbell_offset_in_page, pkt_flags, tx_flags, CompStatus, Doorbell, EventKind, LifCounter, MeterColor,
    QueueType, RxDesc, TxDesc, LIF_UPLINK,
};
use dataplane::fair::Class;
use dataplane::meter::Color;
use dataplane::packet::classify;
use dataplane::packet::Mac;

/// Descriptors fetched into a queue's cache at a time.
pub const TX_BATCH: usize = 64;
/// RX descriptors fetched at a time.
pub const RX_BATCH: usize = 32;
/// Frames taken from the wire per pass.
pub const WIRE_BATCH: usize = 64;
/// Packets served per pass at most (a pass must end so time can move).
pub const PASS_BUDGET: usize = 4096;
/// How soon to look again when every LIF with work is blocked by its
/// meters (the buckets refill meanwhile).
pub const BLOCKED_RECHECK_NS: Nanos = 1_000;

/// Cost units the built-in pipeline charges per stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CostModel {
    /// Per header parsed (Ethernet, 802.1Q, IPv4/IPv6, TCP/UDP).
    pub per_header: u64,
    /// Per table lookup (`l2_fwd`).
    pub lookup: u64,
    /// Egress (deparse, queue selection).
    pub egress: u64,
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel {
            per_header: 1,
            lookup: 1,
            egress: 1,
        }
    }
}

impl CostModel {
    /// Cost of `frame` making `1 + recirculations` passes: a plain
    /// Ethernet/IPv4/UDP frame costs 5 units a pass.
    pub fn cost(&self, frame: &[u8], recirculations: u8) -> u64 {
        let flags = classify(frame).unwrap_or(0);
        let headers = 1
            + u64::from(flags & pkt_flags::VLAN != 0)
            + u64::from(flags & (pkt_flags::IPV4 | pkt_flags::IPV6) != 0)
            + u64::from(flags & (pkt_flags::TCP | pkt_flags::UDP) != 0);
        (headers * self.per_header + self.lookup + self.egress) * (1 + u64::from(recirculations))
    }
}

/// What travels with a frame through the switch.
#[derive(Debug, Clone, Copy)]
struct Meta {
    src: Source,
    /// The color its meters marked it with.
    mark: MeterColor,
    /// Its pipeline cost (charged to the receiving LIF for wire frames).
    cost: u64,
    /// When it leaves the pipeline (its completions' timestamp).
    done: Nanos,
}

/// What serving a LIF came to.
enum Served {
    /// One packet went through the pipeline.
    Packet,
    /// The LIF had nothing after all (its queues went idle or stalled).
    Nothing,
}

impl Device {
    /// One pass of the engines at the current time. Returns the work done
    /// (descriptors and frames handled); 0 means the device is idle until
    /// the next doorbell or [`Device::next_deadline`].
    pub fn poll(&mut self) -> usize {
        // No input may panic the engine; if a bug does anyway, the
        // function it was working for stops in a reported error state
        // (a reset recovers it) and every other function carries on.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.poll_pass())) {
            Ok(work) => work,
            Err(payload) => {
                self.contain_panic(payload.as_ref());
                1
            }
        }
    }

    fn poll_pass(&mut self) -> usize {
        let now = self.now();
        self.blocked_with_work = false;
        for fi in 0..self.functions.len() {
            self.finish_put_off(fi);
        }
        self.scan_doorbells();
        let mut work = self.service_uplink(now);
        let mut budget = PASS_BUDGET;
        'pass: while budget > 0 {
            if self.pipeline_busy(now) {
                break;
            }
            let mut classes = std::mem::take(&mut self.classes);
            self.fill_classes(now, &mut classes);
            if classes.iter().flatten().any(|c| *c == Class::Blocked) {
                self.blocked_with_work = true;
            }
            let next = self.sched.next(|l| classes[l]);
            self.classes = classes;
            let Some(l) = next else { break };
            let class = self.classes[l];
            // Serve this LIF while it keeps its turn (deficit) and its class.
            self.blame = self.lifs[l].as_ref().map(|lif| lif.function);
            loop {
                match self.serve(l, now) {
                    Served::Packet => {
                        work += 1;
                        budget -= 1;
                    }
                    Served::Nothing => continue 'pass,
                }
                if budget == 0 || self.pipeline_busy(now) || !self.sched.still_serving(l) {
                    continue 'pass;
                }
                if self.lifs[l].as_ref().is_some_and(|lif| lif.meters.any_on()) {
                    let backlog = self.backlog(l);
                    let lif = self.lifs[l].as_mut().expect("served LIF exists");
                    if lif.meters.class(now, backlog) != class.unwrap_or(Class::Blocked) {
                        continue 'pass;
                    }
                }
            }
        }
        self.blame = None;
        self.signal_completions(now);
        self.blame = None;
        // Something put off to serve again keeps the engine coming back.
        work + usize::from(self.functions.iter().any(super::Function::has_put_off))
    }

    fn pipeline_busy(&self, now: Nanos) -> bool {
        self.cfg.pipeline_units_per_sec.is_some() && self.busy_until > now + self.cfg.pipeline_lead_ns
    }

    /// When the device next has something to do without a doorbell.
    pub fn next_deadline(&self) -> Option<Nanos> {
        let now = self.now();
        // One pass over the TX queues with work: any ready now, and the
        // soonest end of a stall (fault injection) among the others.
        let mut tx_work = false;
        let mut stall_end: Option<Nanos> = None;
        for q in self.lifs.iter().flatten().flat_map(|l| l.txqs.iter().flatten()) {
            let has_work = q.active || !q.cache.is_empty();
            if q.core.error.is_some() || !has_work {
                continue;
            }
            if now >= q.stalled_until {
                tx_work = true;
                break;
            }
            stall_end = Some(stall_end.map_or(q.stalled_until, |t| t.min(q.stalled_until)));
        }
        let wire = match (self.port.next_arrival(), stall_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let soonest_work = match (tx_work, wire) {
            (true, _) => Some(now),
            (false, w) => w,
        };
        let timer = self.functions.iter().filter_map(|f| f.next_timer()).min();
        let work = soonest_work.map(|t| {
            let mut t = t.max(now);
            if self.cfg.pipeline_units_per_sec.is_some() {
                t = t.max(self.busy_until.saturating_sub(self.cfg.pipeline_lead_ns));
            }
            if self.blocked_with_work && t <= now {
                t = now + BLOCKED_RECHECK_NS;
            }
            t
        });
        match (work, timer) {
            (Some(w), Some(t)) => Some(w.min(t.max(now))),
            (w, t) => w.or(t.map(|t| t.max(now))),
        }
    }

    /// Wake the fetch engine of every idle TX queue whose doorbell moved.
    fn scan_doorbells(&mut self) {
        for l in 0..self.lifs.len() {
            let Some(lif) = self.lifs[l].as_mut() else { continue };
            let f = usize::from(lif.function);
            let func = &mut self.functions[f];
            if !func.config.bus_master() || func.failed.is_some() {
                continue;
            }
            let mut rung = 0;
            for (qi, slot) in lif.txqs.iter_mut().enumerate() {
                let Some(q) = slot.as_mut() else { continue };
                if q.active || q.core.error.is_some() {
                    continue;
                }
                let offset = doorbell_offset_in_page(QueueType::Tx, qi as u16).expect("qindex < 256");
                let db = func.doorbells.load(lif.slot, offset);
                if db == q.doorbell_seen {
                    continue;
                }
                q.doorbell_seen = db;
                match Doorbell::decode(db) {
                    Ok(d) if d.qtype == QueueType::Tx && usize::from(d.qindex) == qi => {
                        rung += 1;
                        q.active = true;
                        q.set_fetching();
                    }
                    _ => func.counters.bad_doorbells += 1,
                }
            }
            lif.count(LifCounter::Doorbells, rung);
        }
    }

    /// Every LIF's class if it has TX work, else `None`.
    fn fill_classes(&mut self, now: Nanos, out: &mut Vec<Option<Class>>) {
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
    fn backlog(&mut self, l: usize) -> u64 {
        let Some(lif) = self.lifs[l].as_mut() else { return 0 };
        if !lif.meters.needs_backlog() {
            return 0;
        }
        lif.txqs
            .iter_mut()
            .flatten()
            .map(|q| q.cache.len() as u64 + u64::from(q.available().unwrap_or(0)))
            .sum()
    }

    /// Process one packet from LIF `l`'s TX queues (round robin among them).
    fn serve(&mut self, l: usize, now: Nanos) -> Served {
        if self.lifs[l]
            .as_mut()
            .is_some_and(|lif| std::mem::take(&mut lif.inject_panic))
        {
            panic!("fault injection: a bug in the engine while serving LIF {l}");
        }
        let (f, nq, next) = {
            let lif = self.lifs[l].as_ref().expect("caller checked");
            (usize::from(lif.function), lif.txqs.len(), lif.tx_next)
        };
        for k in 0..nq {
            let qi = (next + k) % nq;
            if let Served::Packet = self.serve_queue(l, qi, f, now) {
                self.lifs[l].as_mut().expect("exists").tx_next = (qi + 1) % nq;
                return Served::Packet;
            }
        }
        Served::Nothing
    }

    fn txq(&mut self, l: usize, qi: usize) -> Option<&mut DeviceQueue<TxDesc>> {
        self.lifs[l].as_mut()?.txqs[qi].as_mut()
    }

    /// The next descriptor of TX queue `qi` of LIF `l` and its ring index,
    /// refilling the queue's cache from the ring when it is empty. A burst
    /// is never larger than the completion ring's room, so every
    /// descriptor in the cache can be completed.
    fn next_tx_desc(&mut self, l: usize, qi: usize, f: usize, now: Nanos) -> Option<(TxDesc, u32)> {
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
                    txq.cache_index = txq.ring.head().wrapping_sub(n as u32);
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
    fn pop_tx_desc(&mut self, l: usize, qi: usize) -> Option<(TxDesc, u32)> {
        let txq = self.lifs[l].as_mut()?.txqs[qi].as_mut()?;
        let d = txq.cache.pop_front()?;
        let index = txq.cache_index;
        txq.cache_index = index.wrapping_add(1);
        Some((d, index))
    }

    /// With a loaded program: read the frames of freshly fetched
    /// descriptors and run them through the program as one batch, up to
    /// the first descriptor that would fault (it and what follows are
    /// handled one by one, as without a program). Their decisions wait in
    /// the queue's `pre`, in order, for their turn in the scheduler; the
    /// program's meters and counters see them at fetch time.
    fn preprocess(&mut self, l: usize, qi: usize, f: usize, descs: &[TxDesc], now: Nanos) {
        let mut frames: Vec<Vec<u8>> = Vec::with_capacity(descs.len());
        for d in descs {
            let mut frame = self.frame_pool.pop().unwrap_or_default();
            if d.validate().is_err() || self.read_tx_frame(f, d, &mut frame).is_err() {
                self.frame_pool.push(frame);
                break;
            }
            frames.push(frame);
        }
        if frames.is_empty() {
            return;
        }
        // Frames that fail the source checks never reach the program.
        let checks: Vec<Option<Decision>> = frames
            .iter()
            .map(|f| self.check_source(Source::Lif(l as u16), f))
            .collect();
        let decisions = if checks.iter().all(Option::is_none) {
            let Some(d) = self.switch.process_batch(Source::Lif(l as u16), &mut frames, now) else {
                self.frame_pool.extend(frames);
                return;
            };
            d
        } else {
            let mut good: Vec<Vec<u8>> = Vec::with_capacity(frames.len());
            for (f, c) in frames.iter_mut().zip(&checks) {
                if c.is_none() {
                    good.push(std::mem::take(f));
                }
            }
            let Some(mut ran) = self.switch.process_batch(Source::Lif(l as u16), &mut good, now) else {
                self.frame_pool.extend(frames);
                self.frame_pool.extend(good);
                return;
            };
            let mut good = good.into_iter();
            let mut out = Vec::with_capacity(frames.len());
            ran.reverse();
            for (f, c) in frames.iter_mut().zip(checks) {
                match c {
                    Some(d) => out.push(d),
                    None => {
                        *f = good.next().expect("one good frame per unchecked slot");
                        out.push(ran.pop().expect("one decision per good frame"));
                    }
                }
            }
            out
        };
        if let Some(txq) = self.txq(l, qi) {
            txq.pre.extend(frames.into_iter().zip(decisions));
        }
    }

    /// The source checks every frame passes before the pipeline sees it:
    /// a group source address is no station's (dropped as `BadSource`,
    /// from a LIF or the wire); a LIF whose slot has spoof check on may
    /// send only from its own MAC (else `Spoofed`). `None`: it passes.
    fn check_source(&self, src: Source, frame: &[u8]) -> Option<Decision> {
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
                Source::Uplink => return None,
            }
        };
        // The parser read the Ethernet header: one stage's cost.
        Some(Decision {
            verdict,
            passes: 0,
            pass_cost: Some(self.cost_model.per_header),
        })
    }

    /// One packet from TX queue `qi` of LIF `l` (on function `f`) through
    /// the pipeline.
    fn serve_queue(&mut self, l: usize, qi: usize, f: usize, now: Nanos) -> Served {
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
        let decision = match self.check_source(Source::Lif(l as u16), &frame) {
            Some(d) => d,
            None => self.switch.process(Source::Lif(l as u16), &mut frame, now),
        };
        self.finish_tx(l, qi, d, index, frame, decision, true, now)
    }

    /// Account, deliver and complete a TX frame the switch decided.
    /// `scratch`: the frame buffer is the engine's scratch (else it goes
    /// back to the frame pool).
    #[allow(clippy::too_many_arguments)]
    fn finish_tx(
        &mut self,
        l: usize,
        qi: usize,
        d: TxDesc,
        index: u32,
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
            let mut c = super::queue::completion(CompStatus::Ok, l as u16, index, 0, 0, done);
            c.flags |= mark.raw();
            txq.core.post_completion(c);
        }
        if txq.cache.is_empty() {
            txq.write_back_to(index.wrapping_add(1));
            txq.write_back_pending = None;
        } else {
            txq.write_back_pending = Some(index.wrapping_add(1));
        }
        Served::Packet
    }

    /// Occupy the pipeline for a packet of `cost` units starting no earlier
    /// than `now`; returns the time its completion carries.
    fn occupy_pipeline(&mut self, now: Nanos, cost: u64) -> Nanos {
        match self.cfg.pipeline_units_per_sec {
            None => now,
            Some(rate) => {
                let start = self.busy_until.max(now);
                let service = (u128::from(cost) * 1_000_000_000).div_ceil(u128::from(rate.max(1))) as u64;
                self.busy_until = start + service;
                self.busy_until + self.cfg.transit_ns
            }
        }
    }

    /// Copy a TX descriptor's frame out of the function's memory, inserting
    /// the 802.1Q tag it asks for.
    fn read_tx_frame(&self, f: usize, d: &TxDesc, frame: &mut Vec<u8>) -> Result<(), crate::dma::DmaFault> {
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

    /// Send a frame where the switch decided; `done` is its completion
    /// time.
    fn deliver(&mut self, verdict: Verdict, frame: &[u8], m: Meta, now: Nanos) {
        let src = m.src;
        match verdict {
            Verdict::ToLif(d) => {
                self.audit.to_lif += 1;
                self.rx_deliver(usize::from(d), frame, m, now)
            }
            Verdict::ToUplink => {
                self.port.transmit(m.done, frame);
                self.uplink_counters[LifCounter::WireTxPackets as usize] += 1;
                match src {
                    Source::Lif(l) => self.lif_count(usize::from(l), LifCounter::ToUplink, 1),
                    Source::Uplink => self.audit.hairpins += 1,
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
                        Source::Uplink => self.source_count(src, LifCounter::DropNoRoute),
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
        }
    }

    /// Count a frame the source checks dropped; the first of each kind per
    /// LIF is also an event for the PF.
    fn source_dropped(&mut self, src: Source, c: LifCounter, now: Nanos) {
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

    /// Put `frame` into the next posted buffer of LIF `d`.
    fn rx_deliver(&mut self, d: usize, frame: &[u8], m: Meta, now: Nanos) {
        // A bug while delivering is the receiver's function's to report.
        let owner = self.lifs.get(d).and_then(Option::as_ref).map(|l| l.function);
        let prev = self.blame;
        self.blame = owner.or(prev);
        self.rx_deliver_to(d, frame, m, now);
        self.blame = prev;
    }

    fn rx_deliver_to(&mut self, d: usize, frame: &[u8], m: Meta, now: Nanos) {
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
        let start = lif.rx_next;
        let Some(q) = (0..nq).map(|i| (start + i) % nq).find(|&i| {
            lif.rxqs[i]
                .as_mut()
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
                    rxq.cache_index = rxq.ring.head().wrapping_sub(k as u32);
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
        rxq.cache_index = index.wrapping_add(1);
        if std::mem::take(&mut rxq.inject_bad) || desc.validate().is_err() {
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
            done,
        );
        c.flags |= mark.raw();
        if truncated {
            c.flags |= comp_flags::TRUNCATED;
        }
        rxq.core.post_completion(c);
        // Slots up to the next cached descriptor are the driver's again.
        let next = rxq.next_index();
        rxq.write_back_to(next);
        lif.count(LifCounter::DmaBytes, 16 + 16 + len as u64);
        if truncated {
            lif.count(LifCounter::DropTooLong, 1);
        } else {
            lif.count(LifCounter::RxPackets, 1);
            lif.count(LifCounter::RxBytes, len as u64);
        }
    }

    /// Frames from the wire, while the pipeline has room.
    fn service_uplink(&mut self, now: Nanos) -> usize {
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
            } = match self.check_source(Source::Uplink, &fr.data) {
                Some(d) => d,
                None => self.switch.process(Source::Uplink, &mut fr.data, now),
            };
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

    /// Interrupts for the completions written this pass, as each vector's
    /// moderation decides (`dataplane::moderation`): none while the
    /// consumer polls, otherwise now or when the vector's timer expires.
    fn signal_completions(&mut self, now: Nanos) {
        for l in 0..self.lifs.len() {
            let Some(lif) = self.lifs[l].as_mut() else { continue };
            let f = usize::from(lif.function);
            self.blame = Some(lif.function);
            let func = &mut self.functions[f];
            let mut suppressed = 0;
            let mut sent = 0;
            // Published once per pass rather than per packet: the TX head
            // write-back and the informational cq_tail.
            for q in lif.txqs.iter_mut().flatten() {
                if let Some(i) = q.write_back_pending.take().filter(|_| !q.core.detached) {
                    q.write_back_to(i);
                }
                q.core.publish_cq_tail();
            }
            for q in lif.rxqs.iter_mut().flatten() {
                q.core.publish_cq_tail();
            }
            let cores = lif
                .txqs
                .iter_mut()
                .flatten()
                .map(|q| &mut q.core)
                .chain(lif.rxqs.iter_mut().flatten().map(|q| &mut q.core));
            for core in cores {
                let Some(v) = core.intr else {
                    core.unsignalled = 0;
                    continue;
                };
                let Some(vec) = func.vectors.get_mut(usize::from(v)) else {
                    continue;
                };
                let n = std::mem::take(&mut core.unsignalled);
                // Read the flag only when it matters (a fence and a load).
                if n == 0 && vec.timer.is_none() {
                    continue;
                }
                let consumer = core.consumer_flag();
                vec.seen = Some(match (vec.seen, consumer) {
                    (Some(ConsumerFlag::Armed), _) | (_, ConsumerFlag::Armed) => ConsumerFlag::Armed,
                    (Some(ConsumerFlag::Polling), _) | (_, ConsumerFlag::Polling) => ConsumerFlag::Polling,
                    _ => ConsumerFlag::Idle,
                });
                if n == 0 {
                    continue;
                }
                if consumer == ConsumerFlag::Polling {
                    suppressed += u64::from(n);
                }
                let size = core.size();
                let fill = (u64::from(size - core.cq_room().min(size)) * 100 / u64::from(size)) as u8;
                sent += func.completions(v, l as u16, now, consumer, fill, n);
            }
            lif.count(LifCounter::InterruptsSuppressed, suppressed);
            lif.count(LifCounter::Interrupts, sent);
        }
        let mut raised = std::mem::take(&mut self.raised_scratch);
        for func in &mut self.functions {
            func.expire(now, &mut raised);
        }
        for (id, n) in raised.drain(..) {
            if let Some(lif) = self.lifs.get_mut(usize::from(id)).and_then(|l| l.as_mut()) {
                lif.count(LifCounter::Interrupts, n);
            }
        }
        self.raised_scratch = raised;
    }
}

fn color_counter(c: Color) -> LifCounter {
    match c {
        Color::Green => LifCounter::MeterGreen,
        Color::Yellow => LifCounter::MeterYellow,
        Color::Red => LifCounter::MeterRed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::packet::build_udp4;

    #[test]
    fn cost_counts_headers_lookup_egress_and_passes() {
        let m = CostModel::default();
        let udp = build_udp4([2; 6], [4; 6], [1; 4], [2; 4], (1, 2), &[], 64);
        assert_eq!(m.cost(&udp, 0), 5);
        assert_eq!(m.cost(&udp, 3), 20, "three recirculations: four passes");
        let mut raw = vec![0u8; 60];
        raw[12] = 0x88;
        assert_eq!(m.cost(&raw, 0), 3, "Ethernet only");
        assert_eq!(m.cost(&[0; 5], 0), 3, "unparseable: the parser still ran");
    }
}
