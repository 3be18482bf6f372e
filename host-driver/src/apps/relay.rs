//! `forward` and `echo`: frames in, frames out, zero-copy (the buffer that
//! arrived is the buffer that leaves).
//!
//! - `forward`: ports are paired (0 with 1, 2 with 3, ...); what arrives on
//!   one leaves on its partner, unchanged.
//! - `echo`: what arrives leaves by the same LIF with source and
//!   destination MAC swapped, back to its sender.
//!
//! The books: frames received = frames sent on + frames the TX ring could
//! not take (counted, and their buffers freed).

use super::{AppError, Ports};
use mgmt::proto::AppLif;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Which relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Relay {
    Forward,
    Echo,
}

/// One port's figures.
#[derive(Debug, Clone, Serialize)]
pub struct RelayLif {
    pub lif: u16,
    pub received: u64,
    pub transmitted: u64,
    /// Frames the TX ring could not take; freed and counted here.
    pub dropped_tx_full: u64,
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
    pub mpps: f64,
    pub balanced: bool,
}

/// Run until `duration` or `stop`.
pub fn run(
    ports: &mut Ports,
    relay: Relay,
    duration: Duration,
    stats_interval: Duration,
    stop: &AtomicBool,
    live: bool,
    on_stats: &mut dyn FnMut(f64, Vec<AppLif>),
) -> Result<RelayReport, AppError> {
    let n = ports.ports.len();
    if relay == Relay::Forward && n % 2 == 1 {
        return Err(AppError::Config(format!("forward pairs LIFs: {n} is odd")));
    }
    let partner = |i: usize| match relay {
        Relay::Forward => i ^ 1,
        Relay::Echo => i,
    };
    let mut received = vec![0u64; n];
    let mut transmitted = vec![0u64; n];
    let mut dropped = vec![0u64; n];
    let mut rx = Vec::with_capacity(256);
    let t0 = Instant::now();
    let mut last = t0;
    let mut last_rx = vec![0u64; n];
    while t0.elapsed() < duration && !stop.load(Ordering::Relaxed) {
        let mut work = 0;
        for i in 0..n {
            let got = ports.ports[i].rx.rx_burst(&mut ports.pool, &mut rx, 64)?;
            if got == 0 {
                continue;
            }
            work += got;
            received[i] += got as u64;
            if relay == Relay::Echo {
                for m in rx.iter_mut() {
                    let b = ports.pool.buffer_mut(m);
                    let (dst, rest) = b.split_at_mut(6);
                    dst.swap_with_slice(&mut rest[..6]);
                }
            }
            let o = partner(i);
            let sent = ports.ports[o].tx.tx_burst(&mut ports.pool, &mut rx)?;
            transmitted[o] += sent as u64;
            dropped[o] += rx.len() as u64;
            for m in rx.drain(..) {
                ports.pool.free(m);
            }
        }
        if work == 0 {
            for p in &mut ports.ports {
                p.tx.flush(&mut ports.pool)?;
            }
            ports.idle(Duration::from_millis(10))?;
        }
        let now = Instant::now();
        if now - last >= stats_interval {
            let dt = (now - last).as_secs_f64();
            let lifs: Vec<AppLif> = (0..n)
                .map(|i| AppLif {
                    lif: ports.ports[i].lif.id,
                    tx_pps: 0.0,
                    rx_pps: (received[i] - last_rx[i]) as f64 / dt,
                    tx_packets: transmitted[i],
                    rx_packets: received[i],
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
            last_rx = received.clone();
            last = now;
        }
    }
    for p in &mut ports.ports {
        p.tx.flush(&mut ports.pool)?;
    }
    let seconds = t0.elapsed().as_secs_f64();
    let (r, t, d) = (
        received.iter().sum::<u64>(),
        transmitted.iter().sum::<u64>(),
        dropped.iter().sum::<u64>(),
    );
    Ok(RelayReport {
        app: relay,
        mode: ports.mode,
        seconds,
        lifs: (0..n)
            .map(|i| RelayLif {
                lif: ports.ports[i].lif.id,
                received: received[i],
                transmitted: transmitted[i],
                dropped_tx_full: dropped[i],
            })
            .collect(),
        received: r,
        transmitted: t,
        dropped_tx_full: d,
        mpps: r as f64 / seconds / 1e6,
        balanced: r == t + d,
    })
}

impl RelayReport {
    /// The report as text.
    pub fn text(&self) -> String {
        let mut s = format!("{:?}: {:?} mode, {:.2} s\n", self.app, self.mode, self.seconds);
        for l in &self.lifs {
            s += &format!(
                "  lif {:>3}: received {:>10}  transmitted {:>10}  dropped (TX ring full) {}\n",
                l.lif, l.received, l.transmitted, l.dropped_tx_full
            );
        }
        s += &format!(
            "total: {:.3} Mpps; books: received {} = transmitted {} + dropped {} {}\n",
            self.mpps,
            self.received,
            self.transmitted,
            self.dropped_tx_full,
            if self.balanced { "(balanced)" } else { "(UNBALANCED)" }
        );
        s
    }
}
