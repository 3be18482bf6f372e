//! `gen`: every LIF offers load to other LIFs, every LIF receives and
//! measures; at the end the books must balance: frames sent = frames
//! received + frames the device dropped with a reason (+ frames it sent out
//! of the uplink).
//!
//! Each frame is Ethernet/IPv4/UDP (checksum 0: none, as RFC 768 allows)
//! with 22 bytes of payload after the UDP header: the run's 64-bit tag
//! (random, one per run), the sending port (u16), a per-flow sequence
//! number (48 bits) and the send time in ns since the start (48 bits, 78
//! hours), all little-endian. Latency is receive time minus send time, per
//! receiving LIF, in an hdrhistogram.
//!
//! The books count only gen's own frames: what arrives without the run's
//! tag (wire traffic, another LIF's, another run's) is *foreign*, counted
//! by where it came from (the wire or a LIF) and reported apart. The
//! device's drop counters of a LIF count every frame dropped there, gen's
//! or not; the foreign wire frames among them are told apart with the
//! LIF's `RxFromWire` counter (wire frames that arrived at the LIF,
//! delivered or dropped): foreign wire drops at a LIF = its `RxFromWire`
//! less the wire frames gen took from it. gen's own frames go from LIF to
//! LIF and reach the wire only when the switch sends them out of the
//! uplink (`ToUplink`, in the books as such); one that comes back in from
//! the wire (a loopback cable) is counted as such, not as received again.
//! Frames another LIF sends to gen's LIFs are counted when they arrive;
//! their drops at gen's LIFs cannot be told from gen's own (the device
//! counts no such thing), and would show as unaccounted.
//!
//! To close the books exactly, the run ends in order: sending stops; gen
//! waits until the device has taken back every TX descriptor (so every
//! frame it sent has been delivered to a ring or dropped, and counted)
//! and a receive pass finds none of its frames; then it destroys its RX
//! queues (after `QueueDestroy` completes the device writes nothing more
//! to them, and has written every completion it owed them), takes what
//! they hold, reads the counters, and gives each port a fresh RX queue.
//! The counters are the LIFs' whole counts (since each was made, with the
//! function's retired counters for LIFs a reset took): gen keeps the books
//! of ports made for the run ([`Ports::setup`]), not of ports that carried
//! traffic before.

use super::{AppError, Health, Ports};
use crate::queue::QueueError;
use dataplane::abi::{LifCounter, LifStats, LIF_UPLINK};
use dataplane::packet::build_udp4;
use hdrhistogram::Histogram;
use mgmt::proto::AppLif;
use serde::Serialize;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Offset of the payload (after Ethernet, IPv4 and UDP headers).
const PAYLOAD: usize = 42;
/// Payload offsets: the run's tag, the sending port, the sequence number
/// and the send time (see the module's documentation).
const TAG_AT: usize = PAYLOAD;
const PORT_AT: usize = PAYLOAD + 8;
const SEQ_AT: usize = PAYLOAD + 10;
const TS_AT: usize = PAYLOAD + 16;
/// The sequence number and send time are 48 bits wide.
const U48: u64 = (1 << 48) - 1;
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
    pub drops: std::collections::BTreeMap<String, u64>,
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
}

impl Foreign {
    fn add(&mut self, o: &Foreign) {
        self.from_wire += o.from_wire;
        self.dropped_from_wire += o.dropped_from_wire;
        self.from_lifs += o.from_lifs;
        self.own_back_from_wire += o.own_back_from_wire;
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

/// What the receive side counts, per port.
struct Receiver {
    tag: [u8; 8],
    n: usize,
    /// Next sequence number expected, per (sending port, receiving port).
    expect: Vec<Vec<u64>>,
    received: Vec<u64>,
    rx_bytes: u64,
    reordered: Vec<u64>,
    hist: Vec<Histogram<u64>>,
    interval_hist: Vec<Histogram<u64>>,
    foreign: Vec<Foreign>,
}

impl Receiver {
    fn new(n: usize, tag: [u8; 8]) -> Receiver {
        Receiver {
            tag,
            n,
            expect: vec![vec![0u64; n]; n],
            received: vec![0; n],
            rx_bytes: 0,
            reordered: vec![0; n],
            hist: (0..n).map(|_| latency_histogram()).collect(),
            interval_hist: (0..n).map(|_| latency_histogram()).collect(),
            foreign: vec![Foreign::default(); n],
        }
    }

    /// A frame port `j` received from `src_lif` at `now_ns` (since the
    /// start); returns whether it is one of gen's, from a LIF.
    fn take(&mut self, j: usize, data: &[u8], src_lif: u16, now_ns: u64) -> bool {
        let own = data.len() >= MIN_FRAME && data[TAG_AT..TAG_AT + 8] == self.tag;
        let from_wire = src_lif == LIF_UPLINK;
        if !own {
            if from_wire {
                self.foreign[j].from_wire += 1;
            } else {
                self.foreign[j].from_lifs += 1;
            }
            return false;
        }
        if from_wire {
            // Out of the uplink and back in: counted as to_uplink.
            self.foreign[j].own_back_from_wire += 1;
            return false;
        }
        let src = usize::from(u16::from_le_bytes([data[PORT_AT], data[PORT_AT + 1]]));
        let s = read_u48(&data[SEQ_AT..SEQ_AT + 6]);
        let ts = read_u48(&data[TS_AT..TS_AT + 6]);
        if src < self.n {
            if s < self.expect[src][j] {
                self.reordered[j] += 1;
            } else {
                self.expect[src][j] = s + 1;
            }
        }
        let lat = (now_ns.wrapping_sub(ts) & U48).max(1);
        let _ = self.hist[j].record(lat);
        let _ = self.interval_hist[j].record(lat);
        self.received[j] += 1;
        self.rx_bytes += data.len() as u64;
        true
    }
}

fn read_u48(b: &[u8]) -> u64 {
    let mut v = [0u8; 8];
    v[..6].copy_from_slice(&b[..6]);
    u64::from_le_bytes(v)
}

/// A tag no other run draws: the process's random hasher keys, the time
/// and the seed, hashed.
fn run_tag(seed: u64) -> [u8; 8] {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(seed);
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish().to_le_bytes()
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
    let tag = run_tag(cfg.seed);
    let mut rcv = Receiver::new(n, tag);
    let mut sent = vec![0u64; n];
    let mut offered = vec![0u64; n];
    let mut backpressured = vec![0u64; n];
    let mut reset_drops = vec![0u64; n];
    let mut device_events: Vec<String> = Vec::new();
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
        // Frames gen handed the device and has not had back, before this
        // pass's receiving: 0 while draining means every frame gen sent
        // was delivered to a ring or dropped (and counted) by now.
        let in_flight_before_rx: u32 = ports.ports.iter().map(|p| p.tx.in_flight()).sum();
        let mut own_rx = 0usize;
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
                    buf[TAG_AT..TAG_AT + 8].copy_from_slice(&tag);
                    buf[PORT_AT..PORT_AT + 2].copy_from_slice(&(i as u16).to_le_bytes());
                    buf[SEQ_AT..SEQ_AT + 6].copy_from_slice(&(seq[i][d] & U48).to_le_bytes()[..6]);
                    buf[TS_AT..TS_AT + 6].copy_from_slice(&(ts & U48).to_le_bytes()[..6]);
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
                if rcv.take(j, ports.pool.data(&m), m.rx_meta().src_lif, now_ns) {
                    own_rx += 1;
                }
                ports.pool.free(m);
            }
        }
        // Give the device's buffers back as TX completes (and reset a
        // queue the device stopped, as above).
        for i in 0..n {
            let p = &mut ports.ports[i];
            // Draining, always: the end waits for every frame to be taken
            // back, however busy foreign traffic keeps the receive side.
            if p.tx.in_flight() > 0 && (work == 0 || p.tx.in_flight() > 128 || !sending) {
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
                let rxr = (rcv.received[i] - last_counts.1[i]) as f64 / dt;
                let l = Latency::of(&rcv.interval_hist[i]);
                if cfg.live {
                    println!(
                        "{:>6.1}s  {:>5}  {:>10.3}  {:>10.3}  {:>10}  {:>9.1}",
                        elapsed.as_secs_f64(),
                        ports.ports[i].lif.id,
                        txr / 1e6,
                        rxr / 1e6,
                        rcv.received[i],
                        l.p99_us
                    );
                }
                lifs.push(AppLif {
                    lif: ports.ports[i].lif.id,
                    tx_pps: txr,
                    rx_pps: rxr,
                    tx_packets: sent[i],
                    rx_packets: rcv.received[i],
                    p50_us: l.p50_us,
                    p99_us: l.p99_us,
                    p999_us: l.p999_us,
                });
            }
            let flow = on_stats(&Interval {
                elapsed,
                length: now - last_stats,
                lifs,
                latency: &rcv.interval_hist,
                backpressured: (0..n).map(|i| backpressured[i] - last_backpressured[i]).collect(),
            });
            observer_stop |= flow.is_break();
            for h in &mut rcv.interval_hist {
                h.reset();
            }
            last_backpressured.clone_from(&backpressured);
            last_counts = (sent.clone(), rcv.received.clone());
            last_stats = now;
            poll_events(ports, &mut device_events, cfg.live);
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
            // Every frame gen sent had been taken back before this pass
            // looked at the RX rings, and the pass found none of gen's:
            // all of them have arrived or been dropped. (Completions the
            // device has not written yet are taken when the RX queues are
            // destroyed below.) Not by time: on a loaded machine the device
            // may take longer than any fixed wait.
            let done = in_flight_before_rx == 0 && own_rx == 0;
            if done || now - since > Duration::from_secs(2) {
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
    // Frames the device never took back (the drain gave up): their fate is
    // unknown.
    let mut in_tx_rings_at_end = 0u64;
    for i in 0..n {
        if gone.is_none() {
            let _ = ports.ports[i].tx.flush(&mut ports.pool);
        }
        in_tx_rings_at_end += u64::from(ports.ports[i].tx.in_flight());
    }
    // Close the books at one moment: each RX queue goes, what it holds is
    // taken, then the counters are read (see the module's documentation).
    let mut stopped = vec![false; n];
    if gone.is_none() {
        let now_ns = t0.elapsed().as_nanos() as u64;
        for j in 0..n {
            match ports.stop_rx(j) {
                Ok(left) => {
                    stopped[j] = true;
                    for m in left {
                        rcv.take(j, ports.pool.data(&m), m.rx_meta().src_lif, now_ns);
                        ports.pool.free(m);
                    }
                }
                Err(e) => events.push(format!(
                    "LIF {}: its RX queue could not be stopped to close the books ({e}); \
                     frames that arrived after the last receive pass count as dropped",
                    ports.ports[j].lif.id
                )),
            }
        }
    }
    // A vanished device's counters cannot be read: its drops are unknown
    // (and show as unaccounted).
    let stats = match gone {
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
    if gone.is_none() {
        for (f, nic) in ports.nics.iter().enumerate() {
            let (Some(base), Some(owner)) = (&retired_at_start[f], ports.ports.iter().position(|p| p.nic == f)) else {
                continue;
            };
            let now = retired(nic)?;
            for c in LifCounter::DROPS
                .into_iter()
                .chain([LifCounter::ToUplink, LifCounter::RxFromWire])
            {
                let v = stats[owner].get(c) + now.get(c).saturating_sub(base.get(c));
                stats[owner].counters[c as usize] = v.into();
            }
        }
    }
    poll_events(ports, &mut device_events, false);
    let mut lifs = Vec::new();
    let mut device_drops = 0u64;
    let mut app_drops = 0u64;
    let mut to_uplink = 0u64;
    // Wire frames that arrived at gen's LIFs, and those gen took.
    let (mut wire_arrived, mut wire_taken) = (0u64, 0u64);
    let mut foreign_all = Foreign::default();
    let mut all = latency_histogram();
    for i in 0..n {
        let mut drops = std::collections::BTreeMap::new();
        for c in LifCounter::DROPS {
            let v = stats[i].get(c);
            device_drops += v;
            if v > 0 {
                drops.insert(c.key().to_string(), v);
            }
        }
        for (reason, v) in [
            ("queue_reset", reset_drops[i]),
            ("device_reset", device_reset[i]),
            ("device_gone", device_gone[i]),
        ] {
            if v > 0 {
                app_drops += v;
                drops.insert(reason.into(), v);
            }
        }
        to_uplink += stats[i].get(LifCounter::ToUplink);
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
            offered_pps: traffic[i].rate_pps,
            sent: sent[i],
            received: rcv.received[i],
            backpressured: backpressured[i],
            reordered: rcv.reordered[i],
            drops,
            foreign,
            tx_mpps: sent[i] as f64 / seconds / 1e6,
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
    let total_sent: u64 = sent.iter().sum();
    let total_received: u64 = rcv.received.iter().sum();
    let unaccounted = total_sent as i64 - total_received as i64 - own_dropped - to_uplink as i64;
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
        total_rx_gbps: rcv.rx_bytes as f64 * 8.0 / seconds / 1e9,
        latency: Latency::of(&all),
        interrupts: ports.waiter.as_ref().map(|w| w.stats().interrupts).unwrap_or(0),
        tag: format!("{:016x}", u64::from_le_bytes(tag)),
        events,
        device_events,
        fault: gone,
        conservation: Conservation {
            sent: total_sent,
            received: total_received,
            dropped_with_reason: own_dropped.max(0) as u64,
            device_drops: device_drops + app_drops,
            to_uplink,
            unaccounted,
            balanced: unaccounted == 0,
            foreign: foreign_all,
            in_tx_rings_at_end,
        },
    })
}

/// New device events into `log` (and on standard output when `live`, and
/// in the log at info level); a PF that cannot answer is said once and
/// asked no more.
fn poll_events(ports: &mut Ports, log: &mut Vec<String>, live: bool) {
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
    if f.own_back_from_wire > 0 {
        parts.push(format!(
            "gen's own back from the wire {} (counted out of the uplink)",
            f.own_back_from_wire
        ));
    }
    parts.join("; ")
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
