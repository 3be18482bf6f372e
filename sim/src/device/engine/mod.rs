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

pub mod idle;
mod interrupts;
mod rx;
mod tx;

pub use idle::{IdleWait, Wait};

use super::meters::Usage;
use super::queue::DeviceQueue;
use super::switch::{Decision, Source, Verdict};
use super::{Device, Forwarding};
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
use dataplane::ring::RingIndex;

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
            let next = self.sched.next_of(&classes);
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
                if let Some(lif) = self.lifs[l].as_mut().filter(|lif| lif.meters.any_on()) {
                    let backlog = lif.backlog();
                    if lif.meters.class(now, backlog) != class.unwrap_or(Class::Blocked) {
                        continue 'pass;
                    }
                }
            }
        }
        self.blame = None;
        // At the clock's time now, not the pass's start: a timer that came
        // due while the pass worked fires now, and an interrupt's lateness
        // is measured when it is raised.
        self.signal_completions(self.now());
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
        let timer = self.next_timer();
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

    /// The soonest moderation timer of any vector (part of
    /// [`Device::next_deadline`]; the engine thread spins to it rather
    /// than sleep through its deadline, see [`IdleWait`]).
    pub fn next_timer(&self) -> Option<Nanos> {
        self.functions.iter().filter_map(|f| f.next_timer()).min()
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
