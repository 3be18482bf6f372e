//! What gen sends: each port's destinations, a frame template per
//! destination and size, and the payload every frame carries (the run's
//! tag, the sending port, a per-flow sequence number and the send time).

use super::super::Ports;
use super::{Flows, GenConfig, PortTraffic};
use dataplane::packet::{build_udp4, Mac};

/// Offset of the payload (after Ethernet, IPv4 and UDP headers).
const PAYLOAD: usize = 42;
/// Payload offsets: the run's tag, the sending port, the sequence number
/// and the send time (see the module's documentation).
pub(super) const TAG_AT: usize = PAYLOAD;
pub(super) const PORT_AT: usize = PAYLOAD + 8;
pub(super) const SEQ_AT: usize = PAYLOAD + 10;
pub(super) const TS_AT: usize = PAYLOAD + 16;
/// The sequence number and send time are 48 bits wide.
pub(super) const U48: u64 = (1 << 48) - 1;
/// Smallest frame that carries the payload.
pub const MIN_FRAME: usize = PAYLOAD + 22;

/// The frames of a run: per port, where they go and what they look like.
pub(super) struct Frames {
    /// Destinations (port indices) of each port, in turn.
    pub(super) dsts: Vec<Vec<usize>>,
    /// `templates[i][k][s]`: port i to its k-th destination, size s
    /// (built again when a recovered function gives ports new LIF MACs).
    templates: Vec<Vec<Vec<Vec<u8>>>>,
    /// Each port's destination MAC in place of the destination LIF's.
    dst_macs: Vec<Option<Mac>>,
    sizes: Vec<(usize, u32)>,
    total_weight: u64,
    rng: Rng,
    /// The next destination of each port (an index into `dsts`).
    next_dst: Vec<usize>,
    /// The next sequence number per (sending port, destination port).
    seq: Vec<Vec<u64>>,
    /// The run's tag, in every frame.
    pub(super) tag: [u8; 8],
}

impl Frames {
    /// The frames `cfg` asks for, from the ports' LIFs as they are now.
    pub(super) fn new(ports: &Ports, cfg: &GenConfig, traffic: &[PortTraffic]) -> Frames {
        let n = ports.ports.len();
        // Destinations of each port, and one template per (src, dst, size).
        let dsts: Vec<Vec<usize>> = (0..n)
            .map(|i| match cfg.flows {
                Flows::Ring => vec![(i + 1) % n],
                Flows::All => (1..n).map(|k| (i + k) % n).collect(),
            })
            .collect();
        let mut frames = Frames {
            dsts,
            templates: Vec::new(),
            dst_macs: traffic.iter().map(|t| t.dst_mac).collect(),
            sizes: cfg.sizes.clone(),
            total_weight: cfg.sizes.iter().map(|&(_, w)| u64::from(w)).sum(),
            rng: Rng(cfg.seed | 1),
            next_dst: vec![0usize; n],
            seq: vec![vec![0u64; n]; n],
            tag: [0; 8],
        };
        frames.templates = (0..n)
            .map(|i| frames.dsts[i].iter().map(|&d| frames.build(ports, i, d)).collect())
            .collect();
        frames.tag = run_tag(cfg.seed);
        frames
    }

    /// Port `i`'s templates to port `d`, one per size.
    fn build(&self, ports: &Ports, i: usize, d: usize) -> Vec<Vec<u8>> {
        self.sizes
            .iter()
            .map(|&(size, _)| {
                let mut f = build_udp4(
                    self.dst_macs[i].unwrap_or(ports.ports[d].lif.mac),
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
    }

    /// Build again the templates from and to the ports in `moved`, whose
    /// LIFs (and MACs) a recovered function replaced.
    pub(super) fn readdress(&mut self, ports: &Ports, moved: &[usize]) {
        for a in 0..self.dsts.len() {
            for k in 0..self.dsts[a].len() {
                let d = self.dsts[a][k];
                if moved.contains(&d) || moved.contains(&a) {
                    self.templates[a][k] = self.build(ports, a, d);
                }
            }
        }
    }

    /// Write port `i`'s next frame, sent at `ts` (ns since the start), into
    /// `buf`: to its next destination, of a size drawn by weight. Returns
    /// its length.
    pub(super) fn write_next(&mut self, i: usize, ts: u64, buf: &mut [u8]) -> usize {
        let k = self.next_dst[i] % self.dsts[i].len();
        let d = self.dsts[i][k];
        self.next_dst[i] += 1;
        let mut pick = self.rng.next() % self.total_weight;
        let mut si = 0;
        for (x, &(_, w)) in self.sizes.iter().enumerate() {
            if pick < u64::from(w) {
                si = x;
                break;
            }
            pick -= u64::from(w);
        }
        let template = &self.templates[i][k][si];
        let size = template.len();
        buf[..size].copy_from_slice(template);
        buf[TAG_AT..TAG_AT + 8].copy_from_slice(&self.tag);
        buf[PORT_AT..PORT_AT + 2].copy_from_slice(&(i as u16).to_le_bytes());
        buf[SEQ_AT..SEQ_AT + 6].copy_from_slice(&(self.seq[i][d] & U48).to_le_bytes()[..6]);
        buf[TS_AT..TS_AT + 6].copy_from_slice(&(ts & U48).to_le_bytes()[..6]);
        self.seq[i][d] += 1;
        size
    }
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

/// xorshift64: the size draw, repeatable from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
