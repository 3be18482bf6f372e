//! `gen`: every LIF offers load to other LIFs, every LIF receives and
//! measures; at the end the books must balance: frames sent = frames
//! received + frames the device dropped with a reason.
//!
//! Each frame is Ethernet/IPv4/UDP (checksum 0: none, as RFC 768 allows)
//! with 22 bytes of payload after the UDP header: magic `FNGN`, the
//! sending port, a per-flow sequence number, and the send time in ns.
//! Latency is receive time minus send time, per receiving LIF, in an
//! hdrhistogram.

use super::{AppError, Health, Ports};
use crate::queue::QueueError;
use dataplane::abi::{LifCounter, LifStats};
use dataplane::packet::build_udp4;
use hdrhistogram::Histogram;
use mgmt::proto::AppLif;
use serde::Serialize;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Offset of the payload (after Ethernet, IPv4 and UDP headers).
const PAYLOAD: usize = 42;
const MAGIC: [u8; 4] = *b"FNGN";
/// How often the watchdog looks at the TX queues.
const WATCH_EVERY: Duration = Duration::from_millis(20);
/// How long a TX queue may hold frames the device does not move before the
/// watchdog asks its function whether it is alive.
pub const WATCHDOG: Duration = Duration::from_millis(250);
/// Smallest frame that carries the payload.
pub const MIN_FRAME: usize = PAYLOAD + 22;

/// Which LIF sends to which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flows {
    /// LIF i to LIF i+1 (the last to the first).
    Ring,
    /// Each LIF to every other, in turn.
    All,
}

/// What one port offers when it differs from the rest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortTraffic {
    /// Frames per second; 0: as fast as the ring takes them.
    pub rate_pps: u64,
    /// Destination MAC in place of the destination LIF's own (a MAC the
    /// pipeline's tables map to that LIF with another action). The frames
    /// still go to the LIF the flows name, and are counted there.
    pub dst_mac: Option<[u8; 6]>,
}

/// What to offer.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Frames per second per LIF; 0: as fast as the rings take them.
    pub rate_pps: u64,
    /// Per port, in port order, overriding `rate_pps` (empty: every port
    /// offers `rate_pps` to its destinations' own MACs).
    pub ports: Vec<PortTraffic>,
    pub sizes: Vec<(usize, u32)>,
    pub flows: Flows,
    pub duration: Duration,
    pub stats_interval: Duration,
    pub burst: usize,
    pub seed: u64,
    /// Print the live table.
    pub live: bool,
}

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
    /// Frames this LIF received (from the generator).
    pub received: u64,
    /// Frames the ring could not take when offered (backpressure: never
    /// sent, so not a loss).
    pub backpressured: u64,
    /// Frames received out of sequence order.
    pub reordered: u64,
    /// Device drops at this LIF, by reason.
    pub drops: std::collections::BTreeMap<String, u64>,
    pub tx_mpps: f64,
    pub rx_mpps: f64,
    pub latency: Latency,
}

/// The books.
#[derive(Debug, Clone, Serialize)]
pub struct Conservation {
    pub sent: u64,
    pub received: u64,
    pub dropped_with_reason: u64,
    /// Frames the device sent out of the uplink (to no LIF: a destination
    /// MAC the device did not know, e.g. a LIF's while its function was
    /// resetting).
    pub to_uplink: u64,
    pub unaccounted: i64,
    pub balanced: bool,
}

/// What `gen` reports.
#[derive(Debug, Clone, Serialize)]
pub struct GenReport {
    pub app: &'static str,
    pub mode: super::Mode,
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
    /// What the watchdog found and did, in order.
    pub events: Vec<String>,
    /// Why the run ended early: the device is gone.
    pub fault: Option<String>,
}

/// What the generator hands its observer every stats interval.
#[derive(Debug)]
pub struct Interval<'a> {
    /// Since the start of the run.
    pub elapsed: Duration,
    /// Length of this interval.
    pub length: Duration,
    /// Per port, in port order: rates and latency over the interval.
    pub lifs: Vec<AppLif>,
    /// Per port, in port order: the interval's latencies, ns.
    pub latency: &'a [Histogram<u64>],
    /// Per port: frames the ring refused over the interval (backpressure).
    pub backpressured: Vec<u64>,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Run the generator on `ports` until `cfg.duration` or `stop`; `on_stats`
/// receives the live figures every interval, and may end the sending
/// (`ControlFlow::Break`) as `stop` does.
pub fn run(
    ports: &mut Ports,
    cfg: &GenConfig,
    stop: &AtomicBool,
    on_stats: &mut dyn FnMut(&Interval<'_>) -> ControlFlow<()>,
) -> Result<GenReport, AppError> {
    let n = ports.ports.len();
    if n < 2 {
        return Err(AppError::Config("gen needs at least two LIFs".into()));
    }
    if !cfg.ports.is_empty() && cfg.ports.len() != n {
        return Err(AppError::Config(format!(
            "gen: traffic given for {} ports, but there are {n}",
            cfg.ports.len()
        )));
    }
    let traffic: Vec<PortTraffic> = if cfg.ports.is_empty() {
        vec![
            PortTraffic {
                rate_pps: cfg.rate_pps,
                dst_mac: None,
            };
            n
        ]
    } else {
        cfg.ports.clone()
    };
    if cfg.sizes.iter().any(|&(s, _)| s < MIN_FRAME) {
        return Err(AppError::Config(format!("gen frames are at least {MIN_FRAME} bytes")));
    }
    // Destinations of each port, and one template per (src, dst, size).
    let dsts: Vec<Vec<usize>> = (0..n)
        .map(|i| match cfg.flows {
            Flows::Ring => vec![(i + 1) % n],
            Flows::All => (1..n).map(|k| (i + k) % n).collect(),
        })
        .collect();
    // templates[i][k][s]: port i to its k-th destination, size s (built
    // again when a recovered function gives ports new LIF MACs).
    let build = |ports: &Ports, i: usize, d: usize| -> Vec<Vec<u8>> {
        cfg.sizes
            .iter()
            .map(|&(size, _)| {
                let mut f = build_udp4(
                    traffic[i].dst_mac.unwrap_or(ports.ports[d].lif.mac),
                    ports.ports[i].lif.mac,
                    [10, 0, i as u8, 1],
                    [10, 0, d as u8, 1],
                    (10_000 + i as u16, 20_000 + d as u16),
                    &[],
                    size,
                );
                f[40] = 0; // UDP checksum: none
                f[41] = 0;
                f
            })
            .collect()
    };
    let mut templates: Vec<Vec<Vec<Vec<u8>>>> = (0..n)
        .map(|i| dsts[i].iter().map(|&d| build(ports, i, d)).collect())
        .collect();
    let total_weight: u64 = cfg.sizes.iter().map(|&(_, w)| u64::from(w)).sum();
    let mut rng = Rng(cfg.seed | 1);
    let mut next_dst = vec![0usize; n];
    let mut seq = vec![vec![0u64; n]; n];
    let mut expect = vec![vec![0u64; n]; n];
    let mut sent = vec![0u64; n];
    let mut offered = vec![0u64; n];
    let mut received = vec![0u64; n];
    let mut rx_bytes = 0u64;
    let mut backpressured = vec![0u64; n];
    let mut reset_drops = vec![0u64; n];
    let mut reordered = vec![0u64; n];
    let new_hist = latency_histogram;
    let mut hist: Vec<Histogram<u64>> = (0..n).map(|_| new_hist()).collect();
    let mut interval_hist: Vec<Histogram<u64>> = (0..n).map(|_| new_hist()).collect();
    let mut burst = Vec::with_capacity(cfg.burst);
    let mut rx = Vec::with_capacity(256);
    // Each function's retired counters (its LIFs the device destroyed) at
    // the start: what a reset takes with the old LIFs is added back at the
    // end from them.
    let retired_at_start: Vec<Option<LifStats>> = ports.nics.iter().map(|n| retired(n).ok()).collect();
    let t0 = Instant::now();
    let mut last_stats = t0;
    let mut last_counts = (vec![0u64; n], vec![0u64; n]);
    let mut last_backpressured = vec![0u64; n];
    // The watchdog: per port, the TX head last seen and since when.
    let mut watch: Vec<(u32, Instant)> = vec![(0, t0); n];
    let mut last_watch = t0;
    let mut device_reset = vec![0u64; n];
    let mut kicks = vec![0u64; n];
    let mut device_gone = vec![0u64; n];
    let mut events: Vec<String> = Vec::new();
    let mut gone: Option<String> = None;
    // Frames taken from a recovered function's old RX queue, per port.
    let mut stash: Vec<Vec<crate::pool::Mbuf>> = (0..n).map(|_| Vec::new()).collect();
    if cfg.live {
        println!(
            "{:>7}  {:>5}  {:>10}  {:>10}  {:>10}  {:>9}",
            "time", "lif", "tx Mpps", "rx Mpps", "rx total", "p99 µs"
        );
    }
    let mut sending = true;
    let mut observer_stop = false;
    let mut drain_since: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let elapsed = now - t0;
        if sending && (elapsed >= cfg.duration || stop.load(Ordering::Relaxed) || observer_stop) {
            sending = false;
            drain_since = Some(now);
        }
        let mut work = 0usize;
        if sending {
            for i in 0..n {
                let rate = traffic[i].rate_pps;
                let most = cfg.burst as u64;
                let wanted = if rate == 0 {
                    most
                } else {
                    (elapsed.as_nanos() as u64 / 1000 * rate / 1_000_000)
                        .saturating_sub(offered[i])
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
                let ts = if room > 0 { t0.elapsed().as_nanos() as u64 } else { 0 };
                for _ in 0..due.min(room) {
                    let Some(mut m) = ports.pool.alloc() else { break };
                    let k = next_dst[i] % dsts[i].len();
                    let d = dsts[i][k];
                    next_dst[i] += 1;
                    let mut pick = rng.next() % total_weight;
                    let mut si = 0;
                    for (x, &(_, w)) in cfg.sizes.iter().enumerate() {
                        if pick < u64::from(w) {
                            si = x;
                            break;
                        }
                        pick -= u64::from(w);
                    }
                    let template = &templates[i][k][si];
                    let size = template.len();
                    let buf = ports.pool.buffer_mut(&mut m);
                    buf[..size].copy_from_slice(template);
                    buf[PAYLOAD..PAYLOAD + 4].copy_from_slice(&MAGIC);
                    buf[PAYLOAD + 4..PAYLOAD + 6].copy_from_slice(&(i as u16).to_le_bytes());
                    buf[PAYLOAD + 6..PAYLOAD + 14].copy_from_slice(&seq[i][d].to_le_bytes());
                    buf[PAYLOAD + 14..PAYLOAD + 22].copy_from_slice(&ts.to_le_bytes());
                    seq[i][d] += 1;
                    m.set_len(size);
                    burst.push(m);
                }
                offered[i] += due;
                let k = match ports.ports[i].tx.tx_burst(&mut ports.pool, &mut burst) {
                    Ok(k) => k,
                    // The device stopped the queue (a bad descriptor, a
                    // DMA fault): reset it; what it held and never sent is
                    // dropped, counted with the reason "queue_reset".
                    Err(QueueError::Device { .. }) => {
                        reset_drops[i] += u64::from(ports.reset_tx(i)?);
                        0
                    }
                    Err(e) => return Err(e.into()),
                };
                sent[i] += k as u64;
                work += k;
                // What the ring did not take was never sent (backpressure,
                // not loss); the sequence numbers of frames built and
                // refused stay unused, which the receiver does not count as
                // anything.
                backpressured[i] += due - k as u64;
                for m in burst.drain(..) {
                    ports.pool.free(m);
                }
            }
        }
        for j in 0..n {
            let got = match ports.ports[j].rx.rx_burst(&mut ports.pool, &mut rx, 256) {
                Ok(k) => k,
                // The device stopped the RX queue (a bad buffer): reset it;
                // the frames it could not deliver meanwhile are its
                // drop_queue_error.
                Err(QueueError::Device { .. }) => {
                    ports.reset_rx(j)?;
                    events.push(format!(
                        "{:.2} s: LIF {}: the device stopped the RX queue; reset",
                        t0.elapsed().as_secs_f64(),
                        ports.ports[j].lif.id
                    ));
                    0
                }
                Err(e) => return Err(e.into()),
            };
            let got = got + stash[j].len();
            rx.append(&mut stash[j]);
            work += got;
            let now_ns = t0.elapsed().as_nanos() as u64;
            for m in rx.drain(..) {
                let data = ports.pool.data(&m);
                if data.len() >= MIN_FRAME && data[PAYLOAD..PAYLOAD + 4] == MAGIC {
                    let src = usize::from(u16::from_le_bytes(
                        data[PAYLOAD + 4..PAYLOAD + 6].try_into().expect("2 bytes"),
                    ));
                    let s = u64::from_le_bytes(data[PAYLOAD + 6..PAYLOAD + 14].try_into().expect("8 bytes"));
                    let ts = u64::from_le_bytes(data[PAYLOAD + 14..PAYLOAD + 22].try_into().expect("8 bytes"));
                    if src < n {
                        if s < expect[src][j] {
                            reordered[j] += 1;
                        } else {
                            expect[src][j] = s + 1;
                        }
                    }
                    let lat = now_ns.saturating_sub(ts).max(1);
                    let _ = hist[j].record(lat);
                    let _ = interval_hist[j].record(lat);
                    received[j] += 1;
                    rx_bytes += data.len() as u64;
                }
                ports.pool.free(m);
            }
        }
        // Give the device's buffers back as TX completes (and reset a
        // queue the device stopped, as above).
        for i in 0..n {
            let p = &mut ports.ports[i];
            if p.tx.in_flight() > 0 && (work == 0 || p.tx.in_flight() > 128) {
                match p.tx.flush(&mut ports.pool) {
                    Ok(_) => {}
                    Err(QueueError::Device { .. }) => reset_drops[i] += u64::from(ports.reset_tx(i)?),
                    Err(e) => return Err(e.into()),
                }
            }
        }
        if now - last_stats >= cfg.stats_interval {
            let dt = (now - last_stats).as_secs_f64();
            let mut lifs = Vec::new();
            for i in 0..n {
                let txr = (sent[i] - last_counts.0[i]) as f64 / dt;
                let rxr = (received[i] - last_counts.1[i]) as f64 / dt;
                let l = Latency::of(&interval_hist[i]);
                if cfg.live {
                    println!(
                        "{:>6.1}s  {:>5}  {:>10.3}  {:>10.3}  {:>10}  {:>9.1}",
                        elapsed.as_secs_f64(),
                        ports.ports[i].lif.id,
                        txr / 1e6,
                        rxr / 1e6,
                        received[i],
                        l.p99_us
                    );
                }
                lifs.push(AppLif {
                    lif: ports.ports[i].lif.id,
                    tx_pps: txr,
                    rx_pps: rxr,
                    tx_packets: sent[i],
                    rx_packets: received[i],
                    p50_us: l.p50_us,
                    p99_us: l.p99_us,
                    p999_us: l.p999_us,
                });
            }
            let flow = on_stats(&Interval {
                elapsed,
                length: now - last_stats,
                lifs,
                latency: &interval_hist,
                backpressured: (0..n).map(|i| backpressured[i] - last_backpressured[i]).collect(),
            });
            observer_stop |= flow.is_break();
            for h in &mut interval_hist {
                h.reset();
            }
            last_backpressured.clone_from(&backpressured);
            last_counts = (sent.clone(), received.clone());
            last_stats = now;
        }
        if now - last_watch >= WATCH_EVERY {
            last_watch = now;
            for i in 0..n {
                let (in_flight, head) = ports.ports[i].tx.progress();
                if in_flight == 0 || head != watch[i].0 {
                    watch[i] = (head, now);
                    continue;
                }
                if now - watch[i].1 < WATCHDOG {
                    continue;
                }
                let at = (now - t0).as_secs_f64();
                let lif = ports.ports[i].lif.id;
                match ports.check_port(i)? {
                    Health::Kicked => {
                        // A LIF its meters hold back looks the same: one
                        // line per LIF, repeats counted.
                        watch[i].1 = now;
                        kicks[i] += 1;
                        if kicks[i] == 1 {
                            events.push(format!(
                                "{at:.2} s: LIF {lif}: {in_flight} frames not completed for {WATCHDOG:?}; \
                                 the function answers: doorbell rung again"
                            ));
                        }
                    }
                    Health::Recovered(dropped) => {
                        let moved: Vec<usize> = dropped.iter().map(|&(k, ..)| k).collect();
                        let lost: u64 = dropped.iter().map(|&(_, d, _)| u64::from(d)).sum();
                        for (k, d, arrived) in dropped {
                            device_reset[k] += u64::from(d);
                            watch[k] = (0, now);
                            stash[k].extend(arrived);
                        }
                        for a in 0..n {
                            for (k, &d) in dsts[a].iter().enumerate() {
                                if moved.contains(&d) || moved.contains(&a) {
                                    templates[a][k] = build(ports, a, d);
                                }
                            }
                        }
                        events.push(format!(
                            "{at:.2} s: LIF {lif}'s function stopped answering: it had reset; \
                             brought back with new LIFs {:?}, {} frames it held dropped (device_reset)",
                            moved.iter().map(|&k| ports.ports[k].lif.id).collect::<Vec<_>>(),
                            lost
                        ));
                    }
                    Health::Gone(msg) => {
                        events.push(format!("{at:.2} s: {msg}"));
                        gone = Some(msg);
                        break;
                    }
                }
            }
        }
        if gone.is_some() && sending {
            // Nothing more moves: what the TX rings hold is lost with the
            // device; what already arrived is taken in the passes left.
            for i in 0..n {
                device_gone[i] += u64::from(ports.ports[i].tx.abandon(&mut ports.pool));
            }
            sending = false;
            drain_since = Some(now);
        }
        if gone.is_some() && work == 0 {
            break;
        }
        if let Some(since) = drain_since {
            let in_flight: u32 = ports.ports.iter().map(|p| p.tx.in_flight()).sum();
            let quiet = work == 0 && in_flight == 0;
            if (quiet && now - since > Duration::from_millis(50)) || now - since > Duration::from_secs(2) {
                break;
            }
        }
        if work == 0 {
            // Until the next frame is due on the fastest port (a port
            // offering all it can is waiting for its ring: look again soon).
            let fastest = traffic.iter().map(|t| t.rate_pps).max().unwrap_or(0);
            let unlimited = traffic.iter().any(|t| t.rate_pps == 0);
            let wait = if sending && unlimited {
                Duration::from_micros(20)
            } else if sending && fastest > 0 {
                Duration::from_nanos((1_000_000_000 / fastest).max(1))
            } else {
                Duration::from_millis(10)
            };
            ports.idle(wait)?;
        }
    }
    let seconds = (drain_since.unwrap_or_else(Instant::now) - t0).as_secs_f64().max(1e-9);
    for i in 0..n {
        if kicks[i] > 1 {
            events.push(format!(
                "LIF {}: the watchdog rang the doorbell {} times in all (a LIF its meters hold back shows no progress too)",
                ports.ports[i].lif.id, kicks[i]
            ));
        }
    }
    // A vanished device's counters cannot be read: its drops are unknown
    // (and show as unaccounted).
    let mut stats = match gone {
        None => ports.device_stats()?,
        Some(_) => vec![LifStats::default(); n],
    };
    // What LIFs a reset destroyed had counted: on the first port of their
    // function (the old LIF's successor).
    if gone.is_none() {
        for (f, nic) in ports.nics.iter().enumerate() {
            let (Some(base), Some(owner)) = (&retired_at_start[f], ports.ports.iter().position(|p| p.nic == f)) else {
                continue;
            };
            let now = retired(nic)?;
            for c in LifCounter::DROPS.into_iter().chain([LifCounter::ToUplink]) {
                let v = stats[owner].get(c) + now.get(c).saturating_sub(base.get(c));
                stats[owner].counters[c as usize] = v.into();
            }
        }
    }
    let drop_counters = LifCounter::DROPS;
    let mut lifs = Vec::new();
    let mut dropped = 0u64;
    let mut to_uplink = 0u64;
    let mut all = new_hist();
    for i in 0..n {
        let mut drops = std::collections::BTreeMap::new();
        for &c in &drop_counters {
            let v = stats[i].get(c);
            dropped += v;
            if v > 0 {
                drops.insert(crate::control::counter_name(c), v);
            }
        }
        for (reason, v) in [
            ("queue_reset", reset_drops[i]),
            ("device_reset", device_reset[i]),
            ("device_gone", device_gone[i]),
        ] {
            if v > 0 {
                dropped += v;
                drops.insert(reason.into(), v);
            }
        }
        to_uplink += stats[i].get(LifCounter::ToUplink);
        let _ = all.add(&hist[i]);
        let function = ports.nics[ports.ports[i].nic]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .device()
            .to_string();
        lifs.push(LifReport {
            lif: ports.ports[i].lif.id,
            function,
            offered_pps: traffic[i].rate_pps,
            sent: sent[i],
            received: received[i],
            backpressured: backpressured[i],
            reordered: reordered[i],
            drops,
            tx_mpps: sent[i] as f64 / seconds / 1e6,
            rx_mpps: received[i] as f64 / seconds / 1e6,
            latency: Latency::of(&hist[i]),
        });
    }
    let total_sent: u64 = sent.iter().sum();
    let total_received: u64 = received.iter().sum();
    let unaccounted = total_sent as i64 - total_received as i64 - dropped as i64 - to_uplink as i64;
    Ok(GenReport {
        app: "gen",
        mode: ports.mode,
        rate_pps_per_lif: cfg.rate_pps,
        sizes: cfg.sizes.clone(),
        flows: cfg.flows,
        seconds,
        lifs,
        total_tx_mpps: total_sent as f64 / seconds / 1e6,
        total_rx_mpps: total_received as f64 / seconds / 1e6,
        total_rx_gbps: rx_bytes as f64 * 8.0 / seconds / 1e9,
        latency: Latency::of(&all),
        interrupts: ports.waiter.as_ref().map(|w| w.stats().interrupts).unwrap_or(0),
        events,
        fault: gone,
        conservation: Conservation {
            sent: total_sent,
            received: total_received,
            dropped_with_reason: dropped,
            to_uplink,
            unaccounted,
            balanced: unaccounted == 0,
        },
    })
}

/// Drops by reason as `reason=count ...`, or `-` for none.
pub fn format_drops(drops: &std::collections::BTreeMap<String, u64>) -> String {
    if drops.is_empty() {
        return "-".into();
    }
    drops
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A histogram of latencies in ns, 1 ns to 60 s, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

/// A function's retired counters.
fn retired(nic: &std::sync::Arc<std::sync::Mutex<crate::nic::Nic>>) -> Result<LifStats, crate::nic::DriverError> {
    nic.lock().unwrap_or_else(|e| e.into_inner()).retired_stats()
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
        for e in &self.events {
            let _ = writeln!(s, "watchdog: {e}");
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
            if c.to_uplink > 0 {
                format!(" + out of the uplink {}", c.to_uplink)
            } else {
                String::new()
            },
            if c.balanced {
                "(balanced)".to_string()
            } else {
                format!("(UNACCOUNTED: {})", c.unaccounted)
            }
        );
        s
    }
}
