//! The end of a run: close the books at one moment (each RX queue goes,
//! what it holds is taken, then the counters are read; see the module's
//! documentation), and balance them into the report.

use super::super::AppError;
use super::super::Ports;
use super::receiver::latency_histogram;
use super::report::{Conservation, Foreign, GenReport, Latency, LifReport};
use super::traffic::{poll_events, retired, Run};
use dataplane::abi::{LifCounter, LifStats};
use std::collections::BTreeMap;
use std::time::Instant;

/// The books as they were closed.
pub(super) struct Closed {
    /// The measured time: from the start to when the sending stopped.
    seconds: f64,
    /// Each port's LIF's counters (with what a reset took), or zeros for a
    /// device that is gone.
    stats: Vec<LifStats>,
    /// Frames still in the TX rings: their fate is unknown.
    in_tx_rings_at_end: u64,
}

impl Run<'_> {
    /// Close the books: take back what the TX rings hold, destroy each RX
    /// queue and take what it holds, read the counters, give each port a
    /// new RX queue, and add what LIFs a reset destroyed had counted.
    /// `end`: when the sending stopped.
    pub(super) fn close_books(&mut self, ports: &mut Ports, end: Option<Instant>) -> Result<Closed, AppError> {
        let n = self.n;
        let seconds = (end.unwrap_or_else(Instant::now) - self.t0).as_secs_f64().max(1e-9);
        for i in 0..n {
            if self.kicks[i] > 1 {
                self.events.push(format!(
                    "LIF {}: the watchdog rang the doorbell {} times in all (a LIF its meters hold back shows no progress too)",
                    ports.ports[i].lif.id, self.kicks[i]
                ));
            }
        }
        // Frames the device never took back (the drain gave up): their fate is
        // unknown.
        let mut in_tx_rings_at_end = 0u64;
        for i in 0..n {
            if self.gone.is_none() {
                // A queue the device stopped keeps what it holds: counted
                // just below as in the rings at the end.
                let _ = ports.ports[i].tx.flush(&mut ports.pool);
            }
            in_tx_rings_at_end += u64::from(ports.ports[i].tx.in_flight());
        }
        // Close the books at one moment: each RX queue goes, what it holds is
        // taken, then the counters are read (see the module's documentation).
        let mut stopped = vec![false; n];
        if self.gone.is_none() {
            let now_ns = self.t0.elapsed().as_nanos() as u64;
            for j in 0..n {
                match ports.stop_rx(j) {
                    Ok(left) => {
                        stopped[j] = true;
                        for m in left {
                            self.rcv.take(j, ports.pool.data(&m), m.rx_meta().src_lif, now_ns);
                            ports.pool.free(m);
                        }
                    }
                    Err(e) => self.events.push(format!(
                        "LIF {}: its RX queue could not be stopped to close the books ({e}); \
                         frames that arrived after the last receive pass count as dropped",
                        ports.ports[j].lif.id
                    )),
                }
            }
        }
        // A vanished device's counters cannot be read: its drops are unknown
        // (and show as unaccounted).
        let stats = match self.gone {
            None => ports.device_stats(),
            Some(_) => Ok(vec![LifStats::default(); n]),
        };
        // Every port gets its RX queue back, whatever the counters said.
        for j in (0..n).filter(|&j| stopped[j]) {
            ports.restart_rx(j)?;
        }
        let mut stats = stats?;
        // What LIFs a reset destroyed had counted: on the first port of their
        // function (the old LIF's successor).
        if self.gone.is_none() {
            for (f, nic) in ports.nics.iter().enumerate() {
                let (Some(base), Some(owner)) =
                    (&self.retired_at_start[f], ports.ports.iter().position(|p| p.nic == f))
                else {
                    continue;
                };
                let now = retired(nic)?;
                for c in LifCounter::DROPS.into_iter().chain([
                    LifCounter::ToUplink,
                    LifCounter::ToCpu,
                    LifCounter::RxFromWire,
                ]) {
                    let v = stats[owner].get(c) + now.get(c).saturating_sub(base.get(c));
                    stats[owner].counters[c as usize] = v.into();
                }
            }
        }
        poll_events(ports, &mut self.device_events, false);
        Ok(Closed {
            seconds,
            stats,
            in_tx_rings_at_end,
        })
    }

    /// The report: per LIF its figures and drops by reason, and the books
    /// of gen's own frames (sent = received + dropped with a reason + out
    /// of the uplink), the foreign frames apart.
    pub(super) fn report(self, ports: &Ports, closed: Closed) -> GenReport {
        let Closed {
            seconds,
            stats,
            in_tx_rings_at_end,
        } = closed;
        let n = self.n;
        let rcv = &self.rcv;
        let gone = &self.gone;
        let mut lifs = Vec::new();
        let mut device_drops = 0u64;
        let mut app_drops = 0u64;
        let mut to_uplink = 0u64;
        let mut to_cpu = 0u64;
        // Wire frames that arrived at gen's LIFs, and those gen took.
        let (mut wire_arrived, mut wire_taken) = (0u64, 0u64);
        let mut foreign_all = Foreign::default();
        let mut all = latency_histogram();
        for i in 0..n {
            let mut drops = BTreeMap::new();
            for c in LifCounter::DROPS {
                let v = stats[i].get(c);
                device_drops += v;
                if v > 0 {
                    drops.insert(c.key().to_string(), v);
                }
            }
            for (reason, v) in [
                ("queue_reset", self.reset_drops[i]),
                ("device_reset", self.device_reset[i]),
                ("device_gone", self.device_gone[i]),
            ] {
                if v > 0 {
                    app_drops += v;
                    drops.insert(reason.into(), v);
                }
            }
            to_uplink += stats[i].get(LifCounter::ToUplink);
            to_cpu += stats[i].get(LifCounter::ToCpu);
            let mut foreign = rcv.foreign[i];
            let arrived = stats[i].get(LifCounter::RxFromWire);
            let taken = foreign.from_wire + foreign.own_back_from_wire;
            wire_arrived += arrived;
            wire_taken += taken;
            // Per LIF (after a function reset, its old LIFs' counters are on
            // the function's first port, and a port's share may look negative:
            // shown as 0; the books use the sums).
            foreign.dropped_from_wire = if gone.is_none() {
                arrived.saturating_sub(taken)
            } else {
                0
            };
            foreign_all.add(&foreign);
            let _ = all.add(&rcv.hist[i]);
            let function = ports.nics[ports.ports[i].nic]
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .device()
                .to_string();
            lifs.push(LifReport {
                lif: ports.ports[i].lif.id,
                function,
                offered_pps: self.traffic[i].rate_pps,
                sent: self.sent[i],
                received: rcv.received[i],
                backpressured: self.backpressured[i],
                reordered: rcv.reordered[i],
                drops,
                foreign,
                tx_mpps: self.sent[i] as f64 / seconds / 1e6,
                rx_mpps: rcv.received[i] as f64 / seconds / 1e6,
                latency: Latency::of(&rcv.hist[i]),
            });
        }
        // Foreign wire frames dropped at gen's LIFs (and gen's own that came
        // back from the wire, already in to_uplink): not gen's drops.
        let foreign_dropped = if gone.is_none() {
            wire_arrived as i64 - wire_taken as i64
        } else {
            0
        };
        foreign_all.dropped_from_wire = foreign_dropped.max(0) as u64;
        let own_dropped = device_drops as i64 - foreign_dropped + app_drops as i64;
        let total_sent: u64 = self.sent.iter().sum();
        let total_received: u64 = rcv.received.iter().sum();
        let unaccounted = total_sent as i64 - total_received as i64 - own_dropped - to_uplink as i64 - to_cpu as i64;
        let cfg = self.cfg;
        GenReport {
            app: "gen",
            mode: ports.mode,
            rate_pps_per_lif: cfg.rate_pps,
            sizes: cfg.sizes.clone(),
            flows: cfg.flows,
            seconds,
            lifs,
            total_tx_mpps: total_sent as f64 / seconds / 1e6,
            total_rx_mpps: total_received as f64 / seconds / 1e6,
            total_rx_gbps: rcv.rx_bytes as f64 * 8.0 / seconds / 1e9,
            latency: Latency::of(&all),
            interrupts: ports.waiter.as_ref().map(|w| w.stats().interrupts).unwrap_or(0),
            tag: format!("{:016x}", u64::from_le_bytes(self.tag())),
            events: self.events,
            device_events: self.device_events,
            fault: self.gone,
            conservation: Conservation {
                sent: total_sent,
                received: total_received,
                dropped_with_reason: own_dropped.max(0) as u64,
                device_drops: device_drops + app_drops,
                to_uplink,
                to_cpu,
                unaccounted,
                balanced: unaccounted == 0,
                foreign: foreign_all,
                in_tx_rings_at_end,
            },
        }
    }
}
