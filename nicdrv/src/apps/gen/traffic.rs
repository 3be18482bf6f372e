//! A run's send and receive loop: each pass sends what is due, receives
//! and counts, gives TX buffers back, and now and then shows the live
//! figures and lets the watchdog look at the TX queues; it ends when the
//! sending has stopped and every frame is accounted for.

use super::super::{AppError, Health, Ports};
use super::frames::Frames;
use super::receiver::Receiver;
use super::report::Latency;
use super::{GenConfig, Interval, PortTraffic, WATCHDOG, WATCH_EVERY};
use dataplane::abi::LifStats;
use host_driver::nic::{DriverError, Nic};
use host_driver::pool::Mbuf;
use host_driver::queue::QueueError;
use mgmt::proto::AppLif;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A run in progress: what it sends, and everything it counts, per port.
pub(super) struct Run<'c> {
    pub(super) cfg: &'c GenConfig,
    pub(super) n: usize,
    pub(super) traffic: Vec<PortTraffic>,
    frames: Frames,
    pub(super) rcv: Receiver,
    /// Frames the TX ring accepted.
    pub(super) sent: Vec<u64>,
    /// Frames due so far (rate-limited ports).
    offered: Vec<u64>,
    /// Frames due that the ring refused (never sent).
    pub(super) backpressured: Vec<u64>,
    /// Frames a reset TX queue held and never sent.
    pub(super) reset_drops: Vec<u64>,
    /// Frames a function that reset by itself held.
    pub(super) device_reset: Vec<u64>,
    /// Doorbells the watchdog rang again.
    pub(super) kicks: Vec<u64>,
    /// Frames lost with a device that went away.
    pub(super) device_gone: Vec<u64>,
    /// What the device reported to the PF meanwhile.
    pub(super) device_events: Vec<String>,
    /// What the watchdog found and did, in order.
    pub(super) events: Vec<String>,
    /// Why the run ended early: the device is gone.
    pub(super) gone: Option<String>,
    /// Frames taken from a recovered function's old RX queue, per port.
    stash: Vec<Vec<Mbuf>>,
    /// Each function's retired counters (its LIFs the device destroyed)
    /// at the start: what a reset takes with the old LIFs is added back
    /// at the end from them.
    pub(super) retired_at_start: Vec<Option<LifStats>>,
    /// When the run started.
    pub(super) t0: Instant,
    burst: Vec<Mbuf>,
    rx: Vec<Mbuf>,
}

/// The live figures' interval: when it started, and the counts then.
struct Live {
    last: Instant,
    counts: (Vec<u64>, Vec<u64>),
    backpressured: Vec<u64>,
}

/// The watchdog: when it last looked, and per port the TX head last seen
/// and since when.
struct Watchdog {
    last: Instant,
    watch: Vec<(u32, Instant)>,
}

impl<'c> Run<'c> {
    /// Set a run up: its frames, its counters, the functions' retired
    /// counters; the clock starts.
    pub(super) fn start(ports: &Ports, cfg: &'c GenConfig, traffic: Vec<PortTraffic>) -> Run<'c> {
        let n = ports.ports.len();
        let frames = Frames::new(ports, cfg, &traffic);
        let rcv = Receiver::new(n, frames.tag);
        let retired_at_start: Vec<Option<LifStats>> = ports.nics.iter().map(|n| retired(n).ok()).collect();
        Run {
            cfg,
            n,
            traffic,
            frames,
            rcv,
            sent: vec![0; n],
            offered: vec![0; n],
            backpressured: vec![0; n],
            reset_drops: vec![0; n],
            device_reset: vec![0; n],
            kicks: vec![0; n],
            device_gone: vec![0; n],
            device_events: Vec::new(),
            events: Vec::new(),
            gone: None,
            stash: (0..n).map(|_| Vec::new()).collect(),
            retired_at_start,
            t0: Instant::now(),
            burst: Vec::with_capacity(cfg.burst),
            rx: Vec::with_capacity(256),
        }
    }

    /// The run's tag, in every frame it sent.
    pub(super) fn tag(&self) -> [u8; 8] {
        self.frames.tag
    }

    /// Send and receive until `cfg.duration`, `stop` or the observer ends
    /// the sending, then drain until every frame sent is accounted for (or
    /// 2 s pass, or the device is gone). Returns when the sending stopped:
    /// the end of the time the rates are over.
    pub(super) fn traffic(
        &mut self,
        ports: &mut Ports,
        stop: &AtomicBool,
        on_stats: &mut dyn FnMut(&Interval<'_>) -> ControlFlow<()>,
    ) -> Result<Option<Instant>, AppError> {
        if self.cfg.live {
            println!(
                "{:>7}  {:>5}  {:>10}  {:>10}  {:>10}  {:>9}",
                "time", "lif", "tx Mpps", "rx Mpps", "rx total", "p99 µs"
            );
        }
        let mut live = Live {
            last: self.t0,
            counts: (vec![0u64; self.n], vec![0u64; self.n]),
            backpressured: vec![0u64; self.n],
        };
        let mut watchdog = Watchdog {
            last: self.t0,
            watch: vec![(0, self.t0); self.n],
        };
        let mut sending = true;
        let mut observer_stop = false;
        let mut drain_since: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let elapsed = now - self.t0;
            if sending && (elapsed >= self.cfg.duration || stop.load(Ordering::Relaxed) || observer_stop) {
                sending = false;
                drain_since = Some(now);
            }
            let mut work = 0usize;
            // Frames gen handed the device and has not had back, before this
            // pass's receiving: 0 while draining means every frame gen sent
            // was delivered to a ring or dropped (and counted) by now.
            let in_flight_before_rx: u32 = ports.ports.iter().map(|p| p.tx.in_flight()).sum();
            if sending {
                work += self.send(ports, elapsed)?;
            }
            let (got, own_rx) = self.receive(ports)?;
            work += got;
            self.reclaim(ports, work, sending)?;
            if now - live.last >= self.cfg.stats_interval {
                observer_stop |= self.live_figures(ports, &mut live, now, elapsed, on_stats);
            }
            if now - watchdog.last >= WATCH_EVERY {
                self.watchdog(ports, &mut watchdog, now)?;
            }
            if self.gone.is_some() && sending {
                // Nothing more moves: what the TX rings hold is lost with the
                // device; what already arrived is taken in the passes left.
                for i in 0..self.n {
                    self.device_gone[i] += u64::from(ports.ports[i].tx.abandon(&mut ports.pool));
                }
                sending = false;
                drain_since = Some(now);
            }
            if self.gone.is_some() && work == 0 {
                break;
            }
            if let Some(since) = drain_since {
                if drained(in_flight_before_rx, own_rx, now - since) {
                    break;
                }
            }
            if work == 0 {
                self.idle(ports, sending)?;
            }
        }
        Ok(drain_since)
    }

    /// Send what each port has due (a rate-limited port) or what its ring
    /// takes (a port without a rate), stamped with one send time per
    /// burst; a TX queue the device stopped is reset. Returns the frames
    /// sent.
    fn send(&mut self, ports: &mut Ports, elapsed: Duration) -> Result<usize, AppError> {
        let mut work = 0;
        for i in 0..self.n {
            let rate = self.traffic[i].rate_pps;
            let most = self.cfg.burst as u64;
            let wanted = if rate == 0 {
                most
            } else {
                (elapsed.as_nanos() as u64 / 1000 * rate / 1_000_000)
                    .saturating_sub(self.offered[i])
                    .min(most)
            };
            // Build only what the ring takes now, stamped with one send
            // time. A rate-limited port's due frames the ring refuses
            // are backpressure; a port without a rate offers what fits.
            let room = if wanted == 0 {
                0
            } else {
                match ports.ports[i].tx.room_for(&mut ports.pool, wanted as u32) {
                    Ok(r) => u64::from(r),
                    // A queue the device stopped is reset below, when
                    // tx_burst reports it.
                    Err(QueueError::Device { .. }) => 1,
                    Err(e) => return Err(e.into()),
                }
            };
            let due = if rate == 0 { wanted.min(room) } else { wanted };
            let ts = if room > 0 {
                self.t0.elapsed().as_nanos() as u64
            } else {
                0
            };
            for _ in 0..due.min(room) {
                let Some(mut m) = ports.pool.alloc() else { break };
                let size = self.frames.write_next(i, ts, ports.pool.buffer_mut(&mut m));
                m.set_len(size);
                self.burst.push(m);
            }
            self.offered[i] += due;
            let k = match ports.ports[i].tx.tx_burst(&mut ports.pool, &mut self.burst) {
                Ok(k) => k,
                // The device stopped the queue (a bad descriptor, a
                // DMA fault): reset it; what it held and never sent is
                // dropped, counted with the reason "queue_reset".
                Err(QueueError::Device { .. }) => {
                    self.reset_drops[i] += u64::from(ports.reset_tx(i)?);
                    0
                }
                Err(e) => return Err(e.into()),
            };
            self.sent[i] += k as u64;
            work += k;
            // What the ring did not take was never sent (backpressure,
            // not loss); the sequence numbers of frames built and
            // refused stay unused, which the receiver does not count as
            // anything.
            self.backpressured[i] += due - k as u64;
            for m in self.burst.drain(..) {
                ports.pool.free(m);
            }
        }
        Ok(work)
    }

    /// Receive on every port (and take what a recovered function's old RX
    /// queue held); an RX queue the device stopped is reset. Returns the
    /// frames received, and how many of them were gen's.
    fn receive(&mut self, ports: &mut Ports) -> Result<(usize, usize), AppError> {
        let (mut work, mut own_rx) = (0, 0);
        for j in 0..self.n {
            let got = match ports.ports[j].rx.rx_burst(&mut ports.pool, &mut self.rx, 256) {
                Ok(k) => k,
                // The device stopped the RX queue (a bad buffer): reset it;
                // the frames it could not deliver meanwhile are its
                // drop_queue_error.
                Err(QueueError::Device { .. }) => {
                    ports.reset_rx(j)?;
                    self.events.push(format!(
                        "{:.2} s: LIF {}: the device stopped the RX queue; reset",
                        self.t0.elapsed().as_secs_f64(),
                        ports.ports[j].lif.id
                    ));
                    0
                }
                Err(e) => return Err(e.into()),
            };
            let got = got + self.stash[j].len();
            self.rx.append(&mut self.stash[j]);
            work += got;
            let now_ns = self.t0.elapsed().as_nanos() as u64;
            for m in self.rx.drain(..) {
                if self.rcv.take(j, ports.pool.data(&m), m.rx_meta().src_lif, now_ns) {
                    own_rx += 1;
                }
                ports.pool.free(m);
            }
        }
        Ok((work, own_rx))
    }

    /// Give the device's buffers back as TX completes (and reset a queue
    /// the device stopped, as in [`Run::send`]): when a pass did nothing,
    /// when a ring holds many, and always while draining.
    fn reclaim(&mut self, ports: &mut Ports, work: usize, sending: bool) -> Result<(), AppError> {
        for i in 0..self.n {
            let p = &mut ports.ports[i];
            // Draining, always: the end waits for every frame to be taken
            // back, however busy foreign traffic keeps the receive side.
            if p.tx.in_flight() > 0 && (work == 0 || p.tx.in_flight() > 128 || !sending) {
                match p.tx.flush(&mut ports.pool) {
                    Ok(_) => {}
                    Err(QueueError::Device { .. }) => self.reset_drops[i] += u64::from(ports.reset_tx(i)?),
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// The interval ending `now`: rates and latency per port to the
    /// observer (and the live table), and the device's new events.
    /// Returns whether the observer asked to stop sending.
    fn live_figures(
        &mut self,
        ports: &mut Ports,
        live: &mut Live,
        now: Instant,
        elapsed: Duration,
        on_stats: &mut dyn FnMut(&Interval<'_>) -> ControlFlow<()>,
    ) -> bool {
        let dt = (now - live.last).as_secs_f64();
        let mut lifs = Vec::new();
        for i in 0..self.n {
            let txr = (self.sent[i] - live.counts.0[i]) as f64 / dt;
            let rxr = (self.rcv.received[i] - live.counts.1[i]) as f64 / dt;
            let l = Latency::of(&self.rcv.interval_hist[i]);
            if self.cfg.live {
                println!(
                    "{:>6.1}s  {:>5}  {:>10.3}  {:>10.3}  {:>10}  {:>9.1}",
                    elapsed.as_secs_f64(),
                    ports.ports[i].lif.id,
                    txr / 1e6,
                    rxr / 1e6,
                    self.rcv.received[i],
                    l.p99_us
                );
            }
            lifs.push(AppLif {
                lif: ports.ports[i].lif.id,
                tx_pps: txr,
                rx_pps: rxr,
                tx_packets: self.sent[i],
                rx_packets: self.rcv.received[i],
                p50_us: l.p50_us,
                p99_us: l.p99_us,
                p999_us: l.p999_us,
            });
        }
        let flow = on_stats(&Interval {
            elapsed,
            length: now - live.last,
            lifs,
            latency: &self.rcv.interval_hist,
            backpressured: (0..self.n)
                .map(|i| self.backpressured[i] - live.backpressured[i])
                .collect(),
            occupancy: ports
                .ports
                .iter()
                .map(|p| {
                    let (lif, q) = p.tx.id();
                    (lif, q, p.tx.in_flight(), p.rx.in_flight())
                })
                .collect(),
        });
        for h in &mut self.rcv.interval_hist {
            h.reset();
        }
        live.backpressured.clone_from(&self.backpressured);
        live.counts = (self.sent.clone(), self.rcv.received.clone());
        live.last = now;
        poll_events(ports, &mut self.device_events, self.cfg.live);
        flow.is_break()
    }

    /// The watchdog's look at every TX queue: one that holds frames the
    /// device has not moved for [`WATCHDOG`] gets its function checked
    /// ([`Ports::check_port`]): kicked, recovered (its ports' frames are
    /// re-addressed to their new LIFs), or gone (the run ends).
    fn watchdog(&mut self, ports: &mut Ports, w: &mut Watchdog, now: Instant) -> Result<(), AppError> {
        w.last = now;
        for i in 0..self.n {
            let (in_flight, head) = ports.ports[i].tx.progress();
            if in_flight == 0 || head != w.watch[i].0 {
                w.watch[i] = (head, now);
                continue;
            }
            if now - w.watch[i].1 < WATCHDOG {
                continue;
            }
            let at = (now - self.t0).as_secs_f64();
            let lif = ports.ports[i].lif.id;
            match ports.check_port(i)? {
                Health::Kicked => {
                    // A LIF its meters hold back looks the same: one
                    // line per LIF, repeats counted.
                    w.watch[i].1 = now;
                    self.kicks[i] += 1;
                    if self.kicks[i] == 1 {
                        self.events.push(format!(
                            "{at:.2} s: LIF {lif}: {in_flight} frames not completed for {WATCHDOG:?}; \
                             the function answers: doorbell rung again"
                        ));
                    }
                }
                Health::Recovered(dropped) => {
                    let moved: Vec<usize> = dropped.iter().map(|&(k, ..)| k).collect();
                    let lost: u64 = dropped.iter().map(|&(_, d, _)| u64::from(d)).sum();
                    for (k, d, arrived) in dropped {
                        self.device_reset[k] += u64::from(d);
                        w.watch[k] = (0, now);
                        self.stash[k].extend(arrived);
                    }
                    self.frames.readdress(ports, &moved);
                    self.events.push(format!(
                        "{at:.2} s: LIF {lif}'s function stopped answering: it had reset; \
                         brought back with new LIFs {:?}, {} frames it held dropped (device_reset)",
                        moved.iter().map(|&k| ports.ports[k].lif.id).collect::<Vec<_>>(),
                        lost
                    ));
                }
                Health::Gone(msg) => {
                    self.events.push(format!("{at:.2} s: {msg}"));
                    self.gone = Some(msg);
                    break;
                }
            }
        }
        Ok(())
    }

    /// Nothing to do this pass: wait until the next frame is due on the
    /// fastest port (a port offering all it can is waiting for its ring:
    /// look again soon), in interrupt mode asleep.
    fn idle(&self, ports: &mut Ports, sending: bool) -> Result<(), AppError> {
        let fastest = self.traffic.iter().map(|t| t.rate_pps).max().unwrap_or(0);
        let unlimited = self.traffic.iter().any(|t| t.rate_pps == 0);
        let wait = if sending && unlimited {
            Duration::from_micros(20)
        } else if sending && fastest > 0 {
            Duration::from_nanos((1_000_000_000 / fastest).max(1))
        } else {
            Duration::from_millis(10)
        };
        ports.idle(wait)?;
        Ok(())
    }
}

/// Whether the drain, `draining` long so far, is over: every frame gen
/// sent had been taken back before this pass looked at the RX rings, and
/// the pass found none of gen's, so all of them have arrived or been
/// dropped. (Completions the device has not written yet are taken when the
/// RX queues are destroyed, closing the books.) Not by time: on a loaded
/// machine the device may take longer than any fixed wait; but after 2 s
/// gen gives up waiting.
fn drained(in_flight_before_rx: u32, own_rx: usize, draining: Duration) -> bool {
    let done = in_flight_before_rx == 0 && own_rx == 0;
    done || draining > Duration::from_secs(2)
}

/// New device events into `log` (and on standard output when `live`, and
/// in the log at info level); a PF that cannot answer is said once and
/// asked no more.
pub(super) fn poll_events(ports: &mut Ports, log: &mut Vec<String>, live: bool) {
    let Some(w) = &mut ports.events else { return };
    match w.poll() {
        Ok(new) => {
            for e in new {
                tracing::info!("event: {e}");
                if live {
                    println!("event: {e}");
                }
                log.push(e);
            }
        }
        Err(e) => {
            log.push(format!("the device's events could not be read any more: {e}"));
            ports.events = None;
        }
    }
}

/// A function's retired counters.
pub(super) fn retired(nic: &Arc<Mutex<Nic>>) -> Result<LifStats, DriverError> {
    nic.lock().unwrap_or_else(|e| e.into_inner()).retired_stats()
}
