//! What gen reports: per LIF, the books of its own frames, the foreign
//! frames apart, and the report as text.

use super::super::Mode;
use super::Flows;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Latency {
    pub samples: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl Latency {
    /// Percentiles of a histogram of nanoseconds.
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Latency {
            samples: h.len(),
            p50_us: us(h.value_at_quantile(0.5)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }
}

/// One LIF's figures.
#[derive(Debug, Clone, Serialize)]
pub struct LifReport {
    pub lif: u16,
    pub function: String,
    /// Frames per second offered (0: all the ring takes).
    pub offered_pps: u64,
    /// Frames the TX ring accepted.
    pub sent: u64,
    /// Frames of this run this LIF received (from gen's LIFs).
    pub received: u64,
    /// Frames the ring could not take when offered (backpressure: never
    /// sent, so not a loss).
    pub backpressured: u64,
    /// Frames received out of sequence order.
    pub reordered: u64,
    /// Device drops at this LIF, by reason: frames it sent that the device
    /// dropped, and frames that arrived at it and were dropped there, gen's
    /// or foreign (`foreign.dropped_from_wire` of them were foreign); and
    /// gen's own (`queue_reset`, `device_reset`, `device_gone`).
    pub drops: BTreeMap<String, u64>,
    /// Frames that were not gen's, at this LIF.
    pub foreign: Foreign,
    pub tx_mpps: f64,
    pub rx_mpps: f64,
    pub latency: Latency,
}

/// Frames at gen's LIFs that were not gen's (no tag of this run), by
/// where they came from.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Foreign {
    /// Received from the wire (source `LIF_UPLINK`).
    pub from_wire: u64,
    /// Dropped at the LIF after arriving from the wire: the LIF's
    /// `RxFromWire` less the wire frames gen took from it.
    pub dropped_from_wire: u64,
    /// Received from LIFs that are not gen's (their drops at gen's LIFs
    /// cannot be told from gen's own).
    pub from_lifs: u64,
    /// gen's own frames that came back in from the wire after the switch
    /// sent them out of the uplink (in the books under `to_uplink`).
    pub own_back_from_wire: u64,
    /// Frames the controller injected through the CPU port (P4Runtime
    /// PacketOut; source `LIF_CPU`), gen's own frames among them (a
    /// controller that sends back what it was sent): not in the books.
    pub from_cpu: u64,
}

impl Foreign {
    pub(super) fn add(&mut self, o: &Foreign) {
        self.from_wire += o.from_wire;
        self.dropped_from_wire += o.dropped_from_wire;
        self.from_lifs += o.from_lifs;
        self.own_back_from_wire += o.own_back_from_wire;
        self.from_cpu += o.from_cpu;
    }

    fn is_empty(&self) -> bool {
        *self == Foreign::default()
    }
}

/// The books of gen's own frames.
#[derive(Debug, Clone, Serialize)]
pub struct Conservation {
    pub sent: u64,
    pub received: u64,
    /// gen's frames dropped with a reason: the drops at gen's LIFs
    /// (`device_drops`, every frame's) less the foreign frames' among them
    /// (`foreign.dropped_from_wire`).
    pub dropped_with_reason: u64,
    /// Every drop at gen's LIFs, gen's frames and foreign ones.
    pub device_drops: u64,
    /// Frames the device sent out of the uplink (to no LIF: a destination
    /// MAC the device did not know, e.g. a LIF's while its function was
    /// resetting).
    pub to_uplink: u64,
    /// Frames the pipeline program sent to the CPU port (the controller's
    /// PacketIn), at gen's LIFs.
    pub to_cpu: u64,
    pub unaccounted: i64,
    pub balanced: bool,
    /// Foreign frames at gen's LIFs, all together (not in the books).
    pub foreign: Foreign,
    /// Frames still in the TX rings when gen stopped waiting for the
    /// device (2 s after the end): their fate is unknown (in
    /// `unaccounted`).
    pub in_tx_rings_at_end: u64,
}

/// What `gen` reports.
#[derive(Debug, Clone, Serialize)]
pub struct GenReport {
    pub app: &'static str,
    pub mode: Mode,
    pub rate_pps_per_lif: u64,
    pub sizes: Vec<(usize, u32)>,
    pub flows: Flows,
    pub seconds: f64,
    pub lifs: Vec<LifReport>,
    pub total_tx_mpps: f64,
    pub total_rx_mpps: f64,
    pub total_rx_gbps: f64,
    pub latency: Latency,
    pub interrupts: u64,
    pub conservation: Conservation,
    /// The run's tag (hex), in every frame gen sent.
    pub tag: String,
    /// What the watchdog found and did, in order.
    pub events: Vec<String>,
    /// What the device reported to the PF meanwhile (`EventsGet`; empty
    /// without a PF).
    pub device_events: Vec<String>,
    /// Why the run ended early: the device is gone.
    pub fault: Option<String>,
}

/// Foreign frames in words: `from the wire 1200 received, 6 dropped at
/// the LIF; from other LIFs 3 received`.
fn describe_foreign(f: &Foreign) -> String {
    let mut parts = vec![format!(
        "from the wire {} received, {} dropped at the LIF",
        f.from_wire, f.dropped_from_wire
    )];
    if f.from_lifs > 0 {
        parts.push(format!("from other LIFs {} received", f.from_lifs));
    }
    if f.from_cpu > 0 {
        parts.push(format!("from the controller {} received", f.from_cpu));
    }
    if f.own_back_from_wire > 0 {
        parts.push(format!(
            "gen's own back from the wire {} (counted out of the uplink)",
            f.own_back_from_wire
        ));
    }
    parts.join("; ")
}

/// Drops by reason as `reason=count ...`, or `-` for none.
pub fn format_drops(drops: &BTreeMap<String, u64>) -> String {
    if drops.is_empty() {
        return "-".into();
    }
    drops
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl GenReport {
    /// The report as text.
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let rate = |pps: u64| {
            if pps == 0 {
                "as fast as possible".to_string()
            } else {
                format!("{pps} pps")
            }
        };
        let offered = if self.lifs.iter().all(|l| l.offered_pps == self.rate_pps_per_lif) {
            format!("{} per LIF", rate(self.rate_pps_per_lif))
        } else {
            let each: Vec<String> = self
                .lifs
                .iter()
                .map(|l| format!("LIF {} {}", l.lif, rate(l.offered_pps)))
                .collect();
            each.join(", ")
        };
        let _ = writeln!(
            s,
            "gen: {:?} mode, {} LIFs, {:.2} s, offered {offered}, sizes {:?}, flows {:?}",
            self.mode,
            self.lifs.len(),
            self.seconds,
            self.sizes,
            self.flows
        );
        let _ = writeln!(
            s,
            "{:>5}  {:>12}  {:>12}  {:>10}  {:>10}  {:>8}  {:>8}  {:>8}  drops",
            "lif", "sent", "received", "tx Mpps", "rx Mpps", "p50 µs", "p99 µs", "p999 µs"
        );
        for l in &self.lifs {
            let drops = format_drops(&l.drops);
            let _ = writeln!(
                s,
                "{:>5}  {:>12}  {:>12}  {:>10.3}  {:>10.3}  {:>8.1}  {:>8.1}  {:>8.1}  {}",
                l.lif,
                l.sent,
                l.received,
                l.tx_mpps,
                l.rx_mpps,
                l.latency.p50_us,
                l.latency.p99_us,
                l.latency.p999_us,
                drops
            );
        }
        let c = &self.conservation;
        for l in self.lifs.iter().filter(|l| !l.foreign.is_empty()) {
            let _ = writeln!(s, "foreign at LIF {}: {}", l.lif, describe_foreign(&l.foreign));
        }
        for e in &self.events {
            let _ = writeln!(s, "watchdog: {e}");
        }
        for e in &self.device_events {
            let _ = writeln!(s, "event: {e}");
        }
        if let Some(f) = &self.fault {
            let _ = writeln!(
                s,
                "STOPPED: {f}\n  (frames in the TX rings are counted as device_gone; the device's own drop counters could not be read)"
            );
        }
        let _ = writeln!(
            s,
            "total: {:.3} Mpps sent, {:.3} Mpps ({:.2} Gbit/s) received; latency p50 {:.1} µs, p99 {:.1} µs, p999 {:.1} µs; interrupts {}",
            self.total_tx_mpps, self.total_rx_mpps, self.total_rx_gbps, self.latency.p50_us, self.latency.p99_us, self.latency.p999_us, self.interrupts
        );
        let _ = writeln!(
            s,
            "books: sent {} = received {} + dropped with a reason {}{} {}",
            c.sent,
            c.received,
            c.dropped_with_reason,
            if c.to_uplink > 0 || c.to_cpu > 0 {
                let cpu = if c.to_cpu > 0 {
                    format!(" + to the CPU port {}", c.to_cpu)
                } else {
                    String::new()
                };
                format!(" + out of the uplink {}{cpu}", c.to_uplink)
            } else {
                String::new()
            },
            if c.balanced {
                "(balanced)".to_string()
            } else {
                format!("(UNACCOUNTED: {})", c.unaccounted)
            }
        );
        if !c.foreign.is_empty() {
            let _ = writeln!(
                s,
                "foreign frames (not gen's, not in the books): {}; the LIFs dropped {} frames in all, {} of them gen's",
                describe_foreign(&c.foreign),
                c.device_drops,
                c.dropped_with_reason
            );
        }
        if c.in_tx_rings_at_end > 0 {
            let _ = writeln!(
                s,
                "{} frames were still in the TX rings when gen stopped waiting for the device (2 s): \
                 their fate is unknown",
                c.in_tx_rings_at_end
            );
        }
        if !c.balanced && c.foreign.from_lifs > 0 {
            let _ = writeln!(
                s,
                "(other LIFs sent gen's LIFs {} frames: those dropped at gen's LIFs cannot be told from gen's drops)",
                c.foreign.from_lifs
            );
        }
        s
    }
}
