//! What gen receives: its own frames (the run's tag) told from foreign
//! ones, sequence order per flow, and latency per receiving port.

use super::frames::{MIN_FRAME, PORT_AT, SEQ_AT, TAG_AT, TS_AT, U48};
use super::report::Foreign;
use dataplane::abi::{LIF_CPU, LIF_UPLINK};
use hdrhistogram::Histogram;

/// What the receive side counts, per port.
pub(super) struct Receiver {
    tag: [u8; 8],
    n: usize,
    /// Next sequence number expected, per (sending port, receiving port).
    expect: Vec<Vec<u64>>,
    /// gen's frames received, per receiving port.
    pub(super) received: Vec<u64>,
    pub(super) rx_bytes: u64,
    pub(super) reordered: Vec<u64>,
    /// Latencies (ns) per receiving port, over the run and over the
    /// current stats interval.
    pub(super) hist: Vec<Histogram<u64>>,
    pub(super) interval_hist: Vec<Histogram<u64>>,
    pub(super) foreign: Vec<Foreign>,
}

impl Receiver {
    /// Counts for `n` ports, of frames carrying `tag`.
    pub(super) fn new(n: usize, tag: [u8; 8]) -> Receiver {
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
    pub(super) fn take(&mut self, j: usize, data: &[u8], src_lif: u16, now_ns: u64) -> bool {
        if src_lif == LIF_CPU {
            // Injected by the controller, whatever it carries.
            self.foreign[j].from_cpu += 1;
            return false;
        }
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

/// A little-endian 48-bit number.
fn read_u48(b: &[u8]) -> u64 {
    let mut v = [0u8; 8];
    v[..6].copy_from_slice(&b[..6]);
    u64::from_le_bytes(v)
}

/// A histogram of latencies in ns, 1 ns to 60 s, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}
