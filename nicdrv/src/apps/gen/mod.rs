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
//!
//! The code follows a run's phases: [`run`] checks the configuration and
//! lays out the traffic (`frames`: templates, destinations, the payload),
//! runs the send and receive loop with its watchdog and live figures
//! (`traffic`), drains and closes the books (`books`), and reports
//! (`report`); `receiver` counts what arrives.

mod books;
mod frames;
mod receiver;
mod report;
mod traffic;

pub use frames::MIN_FRAME;
pub use receiver::latency_histogram;
pub use report::{format_drops, Conservation, Foreign, GenReport, Latency, LifReport};

use super::{AppError, Ports};
use hdrhistogram::Histogram;
use mgmt::proto::AppLif;
use serde::Serialize;
use std::ops::ControlFlow;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use traffic::Run;

/// How often the watchdog looks at the TX queues.
const WATCH_EVERY: Duration = Duration::from_millis(20);
/// How long a TX queue may hold frames the device does not move before the
/// watchdog asks its function whether it is alive.
pub const WATCHDOG: Duration = Duration::from_millis(250);

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
    /// Per port at the interval's end: (LIF, queue, TX descriptors posted
    /// and not yet reclaimed, RX buffers posted and not yet written back).
    pub occupancy: Vec<(u16, u16, u32, u32)>,
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
    let traffic = plan(ports, cfg)?;
    let mut run = Run::start(ports, cfg, traffic);
    let end = run.traffic(ports, stop, on_stats)?;
    let closed = run.close_books(ports, end)?;
    Ok(run.report(ports, closed))
}

/// Check `cfg` against `ports`, and what each port offers.
fn plan(ports: &Ports, cfg: &GenConfig) -> Result<Vec<PortTraffic>, AppError> {
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
    Ok(traffic)
}
