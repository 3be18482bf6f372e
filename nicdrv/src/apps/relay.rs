//! `forward` and `echo`: frames in, frames out, zero-copy (the buffer that
//! arrived is the buffer that leaves).
//!
//! - `forward`: ports are paired (0 with 1, 2 with 3, ...); what arrives on
//!   one leaves by its partner with its addresses rewritten as testpmd's
//!   `mac` forwarding mode does: the source is the egress LIF's MAC, the
//!   destination the peer's (`--peer-mac`; by default `02:00:00:00:00:NN`
//!   for egress port NN, testpmd's default, which no LIF has, so the device
//!   sends it out of the uplink). A frame addressed to the first LIF thus
//!   never comes straight back to it through the switch.
//! - `echo`: what arrives leaves by the same LIF back to its sender: the
//!   destination is the frame's source, the source the LIF's own MAC (a VF
//!   may send from no other: spoof check).
//!
//! A relay never sends to a group address or from one, and never sends a
//! frame that would arrive at one of its own LIFs and be relayed again:
//! such frames are dropped and counted by reason ([`Drop`]). So each frame
//! that arrives leaves at most once, and nothing circles inside the
//! device, whatever the wire sends (broadcasts are flooded to every LIF,
//! and each copy is relayed once, to a unicast address outside the relay).
//!
//! The books: frames received = frames sent on + frames dropped (by
//! reason, counted on the LIF they were to leave by).

use super::{AppError, Ports};
use dataplane::packet::{EthernetAddress, Mac, ParseAddressError};
use host_driver::pool::Mbuf;
use mgmt::proto::AppLif;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// `aa:bb:cc:dd:ee:ff` as a MAC (the command line's `--peer-mac`).
pub fn parse_mac(s: &str) -> Result<Mac, ParseAddressError> {
    s.parse::<EthernetAddress>().map(|a| a.0)
}

/// Which relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Relay {
    Forward,
    Echo,
}

/// Why a relay did not send a frame on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Drop {
    /// Shorter than an Ethernet header.
    Runt,
    /// Its source MAC is a group address: no station has it, and echoing
    /// to it would flood every LIF.
    GroupSource,
    /// Echo: its sender is one of this relay's LIFs (or claims to be):
    /// sent back, it would arrive there and be echoed again, for ever.
    WouldLoop,
    /// The TX ring was full.
    TxRingFull,
}

impl Drop {
    /// The name in reports: `runt`, `group_source`, `would_loop`,
    /// `tx_ring_full`.
    pub fn name(self) -> &'static str {
        match self {
            Drop::Runt => "runt",
            Drop::GroupSource => "group_source",
            Drop::WouldLoop => "would_loop",
            Drop::TxRingFull => "tx_ring_full",
        }
    }
}

/// Whether `mac` is a group (multicast or broadcast) address.
fn is_group(mac: &[u8]) -> bool {
    mac[0] & 1 != 0
}

/// Rewrite `frame` (the bytes received) to leave by the LIF with MAC
/// `egress`: `forward` to `peer`, `echo` back to the frame's source. `own`:
/// the MACs of every LIF the relay drives. A frame that must not be sent
/// is left as it was, and the reason returned.
pub fn rewrite(relay: Relay, frame: &mut [u8], egress: Mac, peer: Mac, own: &[Mac]) -> Result<(), Drop> {
    if frame.len() < 14 {
        return Err(Drop::Runt);
    }
    let src: Mac = frame[6..12].try_into().expect("6 bytes");
    if is_group(&src) {
        return Err(Drop::GroupSource);
    }
    let dst = match relay {
        Relay::Forward => peer,
        Relay::Echo if own.contains(&src) => return Err(Drop::WouldLoop),
        Relay::Echo => src,
    };
    frame[..6].copy_from_slice(&dst);
    frame[6..12].copy_from_slice(&egress);
    Ok(())
}

/// testpmd's default peer of port `i`: `02:00:00:00:00:ii`.
pub fn default_peer(i: usize) -> Mac {
    [0x02, 0, 0, 0, 0, i as u8]
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub relay: Relay,
    pub duration: Duration,
    pub stats_interval: Duration,
    /// Print live figures.
    pub live: bool,
    /// `forward`: the destination MAC of every frame sent on (default
    /// [`default_peer`] of the egress port). Unicast, and no LIF's of the
    /// relay.
    pub peer_mac: Option<Mac>,
}

/// One port's figures.
#[derive(Debug, Clone, Serialize)]
pub struct RelayLif {
    pub lif: u16,
    pub received: u64,
    pub transmitted: u64,
    /// Frames meant to leave by this LIF that did not: the TX ring could
    /// not take them (freed and counted here).
    pub dropped_tx_full: u64,
    /// Frames meant to leave by this LIF that did not, by reason
    /// (`tx_ring_full` included).
    pub drops: BTreeMap<String, u64>,
    /// `forward`: where this LIF's frames go.
    pub peer_mac: Option<String>,
}

/// What a relay reports.
#[derive(Debug, Clone, Serialize)]
pub struct RelayReport {
    pub app: Relay,
    pub mode: super::Mode,
    pub seconds: f64,
    pub lifs: Vec<RelayLif>,
    pub received: u64,
    pub transmitted: u64,
    pub dropped_tx_full: u64,
    /// Every frame not sent on, all reasons.
    pub dropped: u64,
    /// By reason.
    pub drops: BTreeMap<String, u64>,
    pub mpps: f64,
    /// received = transmitted + dropped.
    pub balanced: bool,
}

/// Run until `cfg.duration` or `stop`.
pub fn run(
    ports: &mut Ports,
    cfg: &RelayConfig,
    stop: &AtomicBool,
    on_stats: &mut dyn FnMut(f64, Vec<AppLif>),
) -> Result<RelayReport, AppError> {
    let (own, peer) = addresses(ports, cfg)?;
    let mut books = Books::new(ports.ports.len());
    let t0 = Instant::now();
    let mut interval = Interval {
        start: t0,
        received: books.received.clone(),
        transmitted: books.transmitted.clone(),
    };
    let mut rx = Vec::with_capacity(256);
    let mut out = Vec::with_capacity(256);
    while t0.elapsed() < cfg.duration && !stop.load(Ordering::Relaxed) {
        let work = relay_pass(ports, cfg.relay, &own, &peer, &mut books, &mut rx, &mut out)?;
        if work == 0 {
            for p in &mut ports.ports {
                p.tx.flush(&mut ports.pool)?;
            }
            ports.idle(Duration::from_millis(10))?;
        }
        let now = Instant::now();
        if now - interval.start >= cfg.stats_interval {
            interval.report(now, ports, &books, t0, cfg.live, on_stats);
        }
    }
    for p in &mut ports.ports {
        p.tx.flush(&mut ports.pool)?;
    }
    Ok(books.report(ports, cfg.relay, &peer, t0.elapsed().as_secs_f64()))
}

/// The MACs of the relay's own LIFs, and the destination of the frames
/// each port sends on (`forward`: the peer, which must be unicast and no
/// LIF of the relay; `echo` uses the frame's source instead).
fn addresses(ports: &Ports, cfg: &RelayConfig) -> Result<(Vec<Mac>, Vec<Mac>), AppError> {
    let relay = cfg.relay;
    let n = ports.ports.len();
    if relay == Relay::Forward && n % 2 == 1 {
        return Err(AppError::Config(format!("forward pairs LIFs: {n} is odd")));
    }
    let own: Vec<Mac> = ports.ports.iter().map(|p| p.lif.mac).collect();
    let peer: Vec<Mac> = (0..n)
        .map(|o| cfg.peer_mac.unwrap_or_else(|| default_peer(o)))
        .collect();
    if relay == Relay::Forward {
        for (o, p) in peer.iter().enumerate() {
            if is_group(p) {
                return Err(AppError::Config(format!(
                    "--peer-mac {}: a group address: the device would flood every frame to every LIF; \
                     give a unicast MAC",
                    EthernetAddress(*p)
                )));
            }
            if let Some(k) = own.iter().position(|m| m == p) {
                let which = match cfg.peer_mac {
                    Some(_) => format!("--peer-mac {}", EthernetAddress(*p)),
                    None => format!("port {o}'s default peer {} (give --peer-mac)", EthernetAddress(*p)),
                };
                return Err(AppError::Config(format!(
                    "{which}: LIF {}'s own MAC: forwarded frames would come back to the relay and circle; \
                     give a MAC outside it",
                    ports.ports[k].lif.id
                )));
            }
        }
    }
    Ok((own, peer))
}

/// What the relay counted, per port.
struct Books {
    received: Vec<u64>,
    transmitted: Vec<u64>,
    /// Frames meant to leave by the port that did not, by reason.
    drops: Vec<BTreeMap<Drop, u64>>,
}

impl Books {
    fn new(n: usize) -> Books {
        Books {
            received: vec![0; n],
            transmitted: vec![0; n],
            drops: vec![BTreeMap::new(); n],
        }
    }

    /// The report of a run of `seconds`.
    fn report(&self, ports: &Ports, relay: Relay, peer: &[Mac], seconds: f64) -> RelayReport {
        let n = ports.ports.len();
        let named = |d: &BTreeMap<Drop, u64>| -> BTreeMap<String, u64> {
            d.iter().map(|(k, v)| (k.name().to_string(), *v)).collect()
        };
        let mut all: BTreeMap<Drop, u64> = BTreeMap::new();
        for d in &self.drops {
            for (k, v) in d {
                *all.entry(*k).or_default() += v;
            }
        }
        let (r, t) = (self.received.iter().sum::<u64>(), self.transmitted.iter().sum::<u64>());
        let d: u64 = all.values().sum();
        let tx_full = all.get(&Drop::TxRingFull).copied().unwrap_or(0);
        RelayReport {
            app: relay,
            mode: ports.mode,
            seconds,
            lifs: (0..n)
                .map(|i| RelayLif {
                    lif: ports.ports[i].lif.id,
                    received: self.received[i],
                    transmitted: self.transmitted[i],
                    dropped_tx_full: self.drops[i].get(&Drop::TxRingFull).copied().unwrap_or(0),
                    drops: named(&self.drops[i]),
                    peer_mac: (relay == Relay::Forward).then(|| EthernetAddress(peer[i]).to_string()),
                })
                .collect(),
            received: r,
            transmitted: t,
            dropped_tx_full: tx_full,
            dropped: d,
            drops: named(&all),
            mpps: r as f64 / seconds / 1e6,
            balanced: r == t + d,
        }
    }
}

/// One pass over every port: take what arrived, rewrite it, and send it
/// on by the partner port (`forward`) or the same one (`echo`); what
/// must not or cannot be sent is freed and counted. Returns the frames
/// received.
fn relay_pass(
    ports: &mut Ports,
    relay: Relay,
    own: &[Mac],
    peer: &[Mac],
    books: &mut Books,
    rx: &mut Vec<Mbuf>,
    out: &mut Vec<Mbuf>,
) -> Result<usize, AppError> {
    let mut work = 0;
    for i in 0..ports.ports.len() {
        let got = ports.ports[i].rx.rx_burst(&mut ports.pool, rx, 64)?;
        if got == 0 {
            continue;
        }
        work += got;
        books.received[i] += got as u64;
        let o = match relay {
            Relay::Forward => i ^ 1,
            Relay::Echo => i,
        };
        let egress = ports.ports[o].lif.mac;
        for mut m in rx.drain(..) {
            let len = m.len();
            let frame = &mut ports.pool.buffer_mut(&mut m)[..len];
            match rewrite(relay, frame, egress, peer[o], own) {
                Ok(()) => out.push(m),
                Err(why) => {
                    *books.drops[o].entry(why).or_default() += 1;
                    ports.pool.free(m);
                }
            }
        }
        let sent = ports.ports[o].tx.tx_burst(&mut ports.pool, out)?;
        books.transmitted[o] += sent as u64;
        if !out.is_empty() {
            *books.drops[o].entry(Drop::TxRingFull).or_default() += out.len() as u64;
        }
        for m in out.drain(..) {
            ports.pool.free(m);
        }
    }
    Ok(work)
}

/// The live figures' interval: when it started and the counts then.
struct Interval {
    start: Instant,
    received: Vec<u64>,
    transmitted: Vec<u64>,
}

impl Interval {
    /// Rates over the interval ending `now` to `on_stats` (and printed
    /// when `live`), then start the next one.
    fn report(
        &mut self,
        now: Instant,
        ports: &Ports,
        books: &Books,
        t0: Instant,
        live: bool,
        on_stats: &mut dyn FnMut(f64, Vec<AppLif>),
    ) {
        let dt = (now - self.start).as_secs_f64();
        let lifs: Vec<AppLif> = (0..ports.ports.len())
            .map(|i| AppLif {
                lif: ports.ports[i].lif.id,
                tx_pps: (books.transmitted[i] - self.transmitted[i]) as f64 / dt,
                rx_pps: (books.received[i] - self.received[i]) as f64 / dt,
                tx_packets: books.transmitted[i],
                rx_packets: books.received[i],
                p50_us: 0.0,
                p99_us: 0.0,
                p999_us: 0.0,
            })
            .collect();
        if live {
            for l in &lifs {
                println!(
                    "{:>6.1}s  lif {:>3}  rx {:>10.3} Mpps  total rx {} tx {}",
                    t0.elapsed().as_secs_f64(),
                    l.lif,
                    l.rx_pps / 1e6,
                    l.rx_packets,
                    l.tx_packets
                );
            }
        }
        on_stats(t0.elapsed().as_secs_f64(), lifs);
        self.received.clone_from(&books.received);
        self.transmitted.clone_from(&books.transmitted);
        self.start = now;
    }
}

impl RelayReport {
    /// The report as text.
    pub fn text(&self) -> String {
        let mut s = format!("{:?}: {:?} mode, {:.2} s\n", self.app, self.mode, self.seconds);
        let drops = |d: &BTreeMap<String, u64>| {
            if d.is_empty() {
                "-".to_string()
            } else {
                d.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
            }
        };
        for l in &self.lifs {
            s += &format!(
                "  lif {:>3}: received {:>10}  transmitted {:>10}{}  dropped {}\n",
                l.lif,
                l.received,
                l.transmitted,
                l.peer_mac.as_ref().map(|p| format!(" (to {p})")).unwrap_or_default(),
                drops(&l.drops)
            );
        }
        s += &format!(
            "total: {:.3} Mpps; books: received {} = transmitted {} + dropped {} {}\n",
            self.mpps,
            self.received,
            self.transmitted,
            self.dropped,
            if self.balanced { "(balanced)" } else { "(UNBALANCED)" }
        );
        if !self.drops.is_empty() {
            s += &format!("dropped by reason: {}\n", drops(&self.drops));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Mac = [0x02, 0xf4, 0x1c, 0, 0, 0];
    const B: Mac = [0x02, 0xf4, 0x1c, 0, 0, 1];
    const S: Mac = [0x02, 0, 0, 0, 0, 0x99];
    const PEER: Mac = [0x02, 0, 0, 0, 0, 1];

    fn frame(dst: Mac, src: Mac) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        f
    }

    #[test]
    fn echo_sends_back_from_its_own_mac_and_never_to_a_group_or_itself() {
        let own = [A, B];
        // A broadcast from a station: back to the station, from the LIF.
        let mut f = frame([0xff; 6], S);
        assert_eq!(rewrite(Relay::Echo, &mut f, A, PEER, &own), Ok(()));
        assert_eq!((&f[..6], &f[6..12]), (&S[..], &A[..]));
        // A group source: echoing would flood every LIF.
        let mut f = frame(A, [0x01, 0x00, 0x5e, 0, 0, 1]);
        let before = f.clone();
        assert_eq!(rewrite(Relay::Echo, &mut f, A, PEER, &own), Err(Drop::GroupSource));
        assert_eq!(f, before, "left as it was");
        assert_eq!(
            rewrite(Relay::Echo, &mut frame(A, [0xff; 6]), A, PEER, &own),
            Err(Drop::GroupSource)
        );
        // From (or claiming to be from) a LIF of the relay: it would be
        // echoed back and forth.
        assert_eq!(
            rewrite(Relay::Echo, &mut frame(A, B), A, PEER, &own),
            Err(Drop::WouldLoop)
        );
        assert_eq!(
            rewrite(Relay::Echo, &mut frame(A, A), A, PEER, &own),
            Err(Drop::WouldLoop)
        );
        assert_eq!(rewrite(Relay::Echo, &mut [0u8; 13], A, PEER, &own), Err(Drop::Runt));
    }

    #[test]
    fn forward_rewrites_like_testpmd_mac_mode() {
        let own = [A, B];
        // Addressed to the first LIF, it leaves by the second to the peer:
        // not back to the first.
        let mut f = frame(A, S);
        assert_eq!(rewrite(Relay::Forward, &mut f, B, PEER, &own), Ok(()));
        assert_eq!((&f[..6], &f[6..12]), (&PEER[..], &B[..]));
        let mut f = frame([0xff; 6], B);
        assert_eq!(rewrite(Relay::Forward, &mut f, A, PEER, &own), Ok(()));
        assert_eq!((&f[..6], &f[6..12]), (&PEER[..], &A[..]));
        assert_eq!(
            rewrite(Relay::Forward, &mut frame(A, [0x33, 0x33, 0, 0, 0, 1]), B, PEER, &own),
            Err(Drop::GroupSource)
        );
        assert_eq!(default_peer(3), [2, 0, 0, 0, 0, 3]);
    }
}
