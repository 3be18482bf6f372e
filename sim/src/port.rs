//! Wire ports: where the device's uplink goes.
//!
//! A [`Port`] hands the device the frames that arrive from the wire by a
//! given time and takes the frames the device sends. Every port works in
//! virtual time: arrivals are stamped, and [`Port::next_arrival`] tells
//! the device when it next has something to do. Any port can have its
//! egress written to a capture ([`Port::set_capture`]).

use crate::clock::{Nanos, SimRng};
use crate::pcap::{PcapError, PcapReader, PcapWriter};
use dataplane::packet::{build_udp4, Mac};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

/// A frame on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFrame {
    /// When it arrives (ingress) or left (egress).
    pub at: Nanos,
    pub data: Vec<u8>,
}

/// Counters every port keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames handed to the device.
    pub rx_frames: u64,
    pub rx_bytes: u64,
    /// Frames the device sent.
    pub tx_frames: u64,
    pub tx_bytes: u64,
    /// Frames the source could not offer in time (a generator falling
    /// behind) or a capture could not record.
    pub dropped: u64,
}

/// Where the wire goes.
pub trait Port: Send + std::fmt::Debug {
    /// Short description (`loopback`, `pcap:in.pcap`, `gen:...`).
    fn describe(&self) -> String;
    /// Append to `out` up to `max` frames that arrive at or before `now`.
    fn receive(&mut self, now: Nanos, max: usize, out: &mut Vec<WireFrame>);
    /// The device sends `frame` at `now`.
    fn transmit(&mut self, now: Nanos, frame: &[u8]);
    /// When the next frame will arrive, if one is scheduled.
    fn next_arrival(&self) -> Option<Nanos>;
    /// The port's counters and capture.
    fn egress(&self) -> &Egress;
    /// The same, to change.
    fn egress_mut(&mut self) -> &mut Egress;
    /// Counters.
    fn stats(&self) -> PortStats {
        self.egress().stats
    }
    /// Write every frame the device sends to `capture` from now on.
    fn set_capture(&mut self, capture: PcapWriter<BufWriter<File>>) {
        self.egress_mut().capture = Some(capture);
    }
    /// Flush the capture, if any.
    fn flush(&mut self) {
        self.egress_mut().flush();
    }
}

/// State every port keeps: counters and the capture.
#[derive(Debug, Default)]
pub struct Egress {
    stats: PortStats,
    capture: Option<PcapWriter<BufWriter<File>>>,
}

impl Egress {
    fn sent(&mut self, now: Nanos, frame: &[u8]) {
        self.stats.tx_frames += 1;
        self.stats.tx_bytes += frame.len() as u64;
        if let Some(c) = &mut self.capture {
            if c.write(now, frame).is_err() {
                self.stats.dropped += 1;
            }
        }
    }

    fn received(&mut self, frame: &WireFrame) {
        self.stats.rx_frames += 1;
        self.stats.rx_bytes += frame.data.len() as u64;
    }

    fn flush(&mut self) {
        if let Some(c) = &mut self.capture {
            let _ = c.flush();
        }
    }
}

/// No wire: egress is counted (and captured) and goes nowhere.
#[derive(Debug, Default)]
pub struct NullPort {
    egress: Egress,
}

impl Port for NullPort {
    fn describe(&self) -> String {
        "null".into()
    }
    fn receive(&mut self, _now: Nanos, _max: usize, _out: &mut Vec<WireFrame>) {}
    fn transmit(&mut self, now: Nanos, frame: &[u8]) {
        self.egress.sent(now, frame);
    }
    fn next_arrival(&self) -> Option<Nanos> {
        None
    }
    fn egress(&self) -> &Egress {
        &self.egress
    }
    fn egress_mut(&mut self) -> &mut Egress {
        &mut self.egress
    }
}

/// A cable from the uplink back into itself: what the device sends arrives
/// again `delay` later.
#[derive(Debug, Default)]
pub struct LoopbackPort {
    delay: Nanos,
    in_flight: VecDeque<WireFrame>,
    egress: Egress,
}

/// Most frames a loopback cable holds before it drops (a wire has finite
/// length).
pub const LOOPBACK_CAPACITY: usize = 65536;

impl LoopbackPort {
    pub fn new(delay: Nanos) -> LoopbackPort {
        LoopbackPort {
            delay,
            ..Default::default()
        }
    }
}

impl Port for LoopbackPort {
    fn describe(&self) -> String {
        format!("loopback (delay {} ns)", self.delay)
    }
    fn receive(&mut self, now: Nanos, max: usize, out: &mut Vec<WireFrame>) {
        for _ in 0..max {
            match self.in_flight.front() {
                Some(f) if f.at <= now => {
                    let f = self.in_flight.pop_front().expect("front exists");
                    self.egress.received(&f);
                    out.push(f);
                }
                _ => break,
            }
        }
    }
    fn transmit(&mut self, now: Nanos, frame: &[u8]) {
        self.egress.sent(now, frame);
        if self.in_flight.len() >= LOOPBACK_CAPACITY {
            self.egress.stats.dropped += 1;
            return;
        }
        self.in_flight.push_back(WireFrame {
            at: now + self.delay,
            data: frame.to_vec(),
        });
    }
    fn next_arrival(&self) -> Option<Nanos> {
        self.in_flight.front().map(|f| f.at)
    }
    fn egress(&self) -> &Egress {
        &self.egress
    }
    fn egress_mut(&mut self) -> &mut Egress {
        &mut self.egress
    }
}

/// Replays a capture as ingress: frames keep their spacing, the first one
/// arriving when the port starts; egress is counted (and captured).
#[derive(Debug)]
pub struct PcapPort {
    path: String,
    reader: Option<PcapReader<BufReader<File>>>,
    next: Option<WireFrame>,
    /// Device time the capture's first frame maps to, and its timestamp.
    epoch: Option<(Nanos, u64)>,
    start: Nanos,
    /// A read error ends the replay; it is kept for the report.
    pub error: Option<String>,
    egress: Egress,
}

impl PcapPort {
    /// Open `path` for replay starting at device time `start`.
    pub fn open(path: &Path, start: Nanos) -> Result<PcapPort, PcapError> {
        let reader = PcapReader::new(BufReader::new(File::open(path)?))?;
        let mut p = PcapPort {
            path: path.display().to_string(),
            reader: Some(reader),
            next: None,
            epoch: None,
            start,
            error: None,
            egress: Egress::default(),
        };
        p.advance();
        Ok(p)
    }

    fn advance(&mut self) {
        let Some(r) = &mut self.reader else { return };
        match r.next_record() {
            Ok(Some(rec)) => {
                let (base, ts0) = *self.epoch.get_or_insert((self.start, rec.ts_ns));
                let at = base + rec.ts_ns.saturating_sub(ts0);
                self.next = Some(WireFrame { at, data: rec.data });
            }
            Ok(None) => self.reader = None,
            Err(e) => {
                self.error = Some(e.to_string());
                self.reader = None;
            }
        }
    }
}

impl Port for PcapPort {
    fn describe(&self) -> String {
        format!("pcap:{}", self.path)
    }
    fn receive(&mut self, now: Nanos, max: usize, out: &mut Vec<WireFrame>) {
        for _ in 0..max {
            match &self.next {
                Some(f) if f.at <= now => {
                    let f = self.next.take().expect("checked");
                    self.egress.received(&f);
                    out.push(f);
                    self.advance();
                }
                _ => break,
            }
        }
    }
    fn transmit(&mut self, now: Nanos, frame: &[u8]) {
        self.egress.sent(now, frame);
    }
    fn next_arrival(&self) -> Option<Nanos> {
        self.next.as_ref().map(|f| f.at)
    }
    fn egress(&self) -> &Egress {
        &self.egress
    }
    fn egress_mut(&mut self) -> &mut Egress {
        &mut self.egress
    }
}

/// What the traffic generator offers.
#[derive(Debug, Clone, PartialEq)]
pub struct GenConfig {
    /// Frames per second.
    pub rate_pps: u64,
    /// Frame sizes with weights, e.g. IMIX `[(64, 7), (576, 4), (1500, 1)]`.
    pub sizes: Vec<(usize, u32)>,
    /// Destination MACs, one flow each, chosen uniformly.
    pub flows: Vec<Mac>,
    /// Stop after this many frames.
    pub count: Option<u64>,
}

/// Source MAC of generated frames.
pub const GEN_SRC_MAC: Mac = [0x02, 0xf4, 0x1c, 0xff, 0x00, 0x01];

/// Offers frames from the wire at a fixed rate: Ethernet/IPv4/UDP, sizes
/// and flows drawn from a seeded generator, each carrying its sequence
/// number and send time in the first 16 bytes of the UDP payload.
#[derive(Debug)]
pub struct GenPort {
    cfg: GenConfig,
    rng: SimRng,
    interval: Nanos,
    next_at: Nanos,
    seq: u64,
    total_weight: u64,
    egress: Egress,
}

/// A generator behind by more than this drops what it could not offer
/// rather than queueing without bound.
pub const GEN_MAX_LAG: Nanos = 10_000_000;

impl GenPort {
    pub fn new(cfg: GenConfig, seed: u64, start: Nanos) -> Result<GenPort, String> {
        if cfg.rate_pps == 0 || cfg.rate_pps > 1_000_000_000 {
            return Err(format!("generator rate {} pps: must be 1..=1e9", cfg.rate_pps));
        }
        if cfg.flows.is_empty() {
            return Err("generator needs at least one flow (destination MAC)".into());
        }
        if cfg.sizes.is_empty() || cfg.sizes.iter().any(|&(s, _)| !(60..=9216).contains(&s)) {
            return Err("generator frame sizes must be 60..=9216 bytes".into());
        }
        let total_weight = cfg.sizes.iter().map(|&(_, w)| u64::from(w)).sum::<u64>();
        if total_weight == 0 {
            return Err("generator size weights sum to zero".into());
        }
        Ok(GenPort {
            interval: 1_000_000_000 / cfg.rate_pps,
            cfg,
            rng: SimRng::new(seed),
            next_at: start,
            seq: 0,
            total_weight,
            egress: Egress::default(),
        })
    }

    fn make(&mut self) -> WireFrame {
        let mut pick = self.rng.below(self.total_weight);
        let mut size = self.cfg.sizes[0].0;
        for &(s, w) in &self.cfg.sizes {
            if pick < u64::from(w) {
                size = s;
                break;
            }
            pick -= u64::from(w);
        }
        let flow = self.rng.below(self.cfg.flows.len() as u64) as usize;
        let mut prefix = [0u8; 16];
        prefix[..8].copy_from_slice(&self.seq.to_le_bytes());
        prefix[8..].copy_from_slice(&self.next_at.to_le_bytes());
        let data = build_udp4(
            self.cfg.flows[flow],
            GEN_SRC_MAC,
            [198, 18, 0, 1],
            [198, 18, 1, flow as u8],
            (4000 + flow as u16, 5000),
            &prefix,
            size,
        );
        WireFrame { at: self.next_at, data }
    }

    fn exhausted(&self) -> bool {
        self.cfg.count.is_some_and(|c| self.seq >= c)
    }
}

impl Port for GenPort {
    fn describe(&self) -> String {
        format!(
            "gen: {} pps, sizes {:?}, {} flows{}",
            self.cfg.rate_pps,
            self.cfg.sizes,
            self.cfg.flows.len(),
            self.cfg.count.map(|c| format!(", {c} frames")).unwrap_or_default()
        )
    }
    fn receive(&mut self, now: Nanos, max: usize, out: &mut Vec<WireFrame>) {
        if now > self.next_at + GEN_MAX_LAG {
            let behind = (now - GEN_MAX_LAG - self.next_at) / self.interval;
            let behind = match self.cfg.count {
                Some(c) => behind.min(c.saturating_sub(self.seq)),
                None => behind,
            };
            self.egress.stats.dropped += behind;
            self.seq += behind;
            self.next_at += behind * self.interval;
        }
        for _ in 0..max {
            if self.next_at > now || self.exhausted() {
                break;
            }
            let f = self.make();
            self.egress.received(&f);
            out.push(f);
            self.seq += 1;
            self.next_at += self.interval;
        }
    }
    fn transmit(&mut self, now: Nanos, frame: &[u8]) {
        self.egress.sent(now, frame);
    }
    fn next_arrival(&self) -> Option<Nanos> {
        (!self.exhausted()).then_some(self.next_at)
    }
    fn egress(&self) -> &Egress {
        &self.egress
    }
    fn egress_mut(&mut self) -> &mut Egress {
        &mut self.egress
    }
}

/// Open a capture file for a port's egress.
pub fn capture_file(path: &Path) -> std::io::Result<PcapWriter<BufWriter<File>>> {
    PcapWriter::new(BufWriter::new(File::create(path)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_returns_frames_after_the_delay() {
        let mut p = LoopbackPort::new(100);
        p.transmit(10, &[1; 60]);
        let mut out = Vec::new();
        p.receive(50, 8, &mut out);
        assert!(out.is_empty());
        assert_eq!(p.next_arrival(), Some(110));
        p.receive(110, 8, &mut out);
        assert_eq!(
            out,
            vec![WireFrame {
                at: 110,
                data: vec![1; 60]
            }]
        );
        assert_eq!(p.stats().tx_frames, 1);
        assert_eq!(p.stats().rx_frames, 1);
    }

    #[test]
    fn generator_is_paced_seeded_and_bounded() {
        let cfg = GenConfig {
            rate_pps: 1_000_000,
            sizes: vec![(64, 1), (1500, 1)],
            flows: vec![[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]],
            count: Some(5),
        };
        let mut a = GenPort::new(cfg.clone(), 9, 0).unwrap();
        let mut b = GenPort::new(cfg, 9, 0).unwrap();
        let (mut fa, mut fb) = (Vec::new(), Vec::new());
        a.receive(2_500, 100, &mut fa);
        assert_eq!(fa.len(), 3, "frames at 0, 1000 and 2000 ns");
        a.receive(1_000_000, 100, &mut fa);
        b.receive(1_000_000, 100, &mut fb);
        assert_eq!(fa.len(), 5, "count bounds the run");
        assert_eq!(fa, fb, "same seed, same frames");
        assert!(fa.iter().all(|f| dataplane::packet::classify(&f.data).is_ok()));
        assert_eq!(a.next_arrival(), None);
    }

    #[test]
    fn generator_drops_what_it_cannot_offer() {
        let cfg = GenConfig {
            rate_pps: 1_000_000,
            sizes: vec![(64, 1)],
            flows: vec![[2, 0, 0, 0, 0, 1]],
            count: None,
        };
        let mut g = GenPort::new(cfg, 1, 0).unwrap();
        let mut out = Vec::new();
        g.receive(50_000_000, 10, &mut out);
        assert_eq!(out.len(), 10);
        assert_eq!(g.stats().dropped, 40_000);
    }

    #[test]
    fn generator_rejects_bad_configs() {
        let ok = GenConfig {
            rate_pps: 10,
            sizes: vec![(64, 1)],
            flows: vec![[2; 6]],
            count: None,
        };
        assert!(GenPort::new(
            GenConfig {
                rate_pps: 0,
                ..ok.clone()
            },
            0,
            0
        )
        .is_err());
        assert!(GenPort::new(
            GenConfig {
                flows: vec![],
                ..ok.clone()
            },
            0,
            0
        )
        .is_err());
        assert!(GenPort::new(
            GenConfig {
                sizes: vec![(10, 1)],
                ..ok.clone()
            },
            0,
            0
        )
        .is_err());
        assert!(GenPort::new(
            GenConfig {
                sizes: vec![(64, 0)],
                ..ok
            },
            0,
            0
        )
        .is_err());
    }
}
