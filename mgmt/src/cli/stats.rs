//! `nicctl stats`: device counters per LIF and the uplink's, once or as
//! per-second rates.

use super::{json_line, unexpected, Ctx, Failure};
use crate::proto::{self, Answer, Request};
use clap::Args;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub(super) struct StatsArgs {
    /// One LIF, or `uplink` (default: every LIF and the uplink).
    #[arg(long, value_parser = parse_lif)]
    lif: Option<u16>,
    /// Keep printing per-second rates.
    #[arg(long)]
    watch: bool,
    /// Seconds between samples with --watch.
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// Stop after this many samples with --watch (default: until interrupted).
    #[arg(long)]
    count: Option<u64>,
}

/// A LIF number, or `uplink` (the ABI's `LIF_UPLINK`).
pub(super) fn parse_lif(s: &str) -> Result<u16, String> {
    if s.eq_ignore_ascii_case("uplink") {
        return Ok(proto::UPLINK);
    }
    s.parse()
        .map_err(|_| format!("'{s}' is not a LIF number (0..={}) or 'uplink'", u16::MAX))
}

/// How a row of `stats` is labelled.
fn row_label(lif: u16) -> String {
    if lif == proto::UPLINK {
        "uplink".into()
    } else {
        lif.to_string()
    }
}

/// Counter `k` of a `stats` row: the uplink's "tx"/"rx" are the frames it
/// sent to and took from the wire.
fn cell(l: &proto::LifCounters, k: &str) -> u64 {
    let k = match (l.lif == proto::UPLINK, k) {
        (true, "tx_packets") => "wire_tx_packets",
        (true, "rx_packets") => "wire_rx_packets",
        _ => k,
    };
    l.counters.get(k).copied().unwrap_or(0)
}

/// The counters `stats` shows as columns (all of them go to JSON).
const COLUMNS: [(&str, &str); 10] = [
    ("tx_packets", "tx pkt"),
    ("rx_packets", "rx pkt"),
    ("cost_units", "cost"),
    ("meter_green", "green"),
    ("meter_yellow", "yellow"),
    ("meter_red", "red"),
    ("backpressured", "bkpr"),
    ("drop_meter_red", "drop red"),
    ("drop_no_rx_buffer", "drop nobuf"),
    ("interrupts", "irq"),
];

/// Run `nicctl stats`.
pub(super) fn run(ctx: &Ctx, s: &StatsArgs, out: &mut dyn Write) -> Result<(), Failure> {
    if !(s.interval > 0.0 && s.interval <= 3600.0) {
        return Err(Failure::Usage(format!(
            "--interval {}: want seconds in (0, 3600]",
            s.interval
        )));
    }
    let fetch = || -> Result<Vec<proto::LifCounters>, Failure> {
        match (ctx.call)(&Request::Stats { lif: s.lif })? {
            Answer::Stats { stats } => Ok(stats),
            other => Err(unexpected(&other)),
        }
    };
    if !s.watch {
        let st = fetch()?;
        if ctx.json {
            return json_line(out, &Answer::Stats { stats: st });
        }
        write_header(out, "")?;
        for l in &st {
            write!(out, "{:>6}", row_label(l.lif))?;
            for (k, _) in COLUMNS {
                write!(out, " {:>10}", cell(l, k))?;
            }
            writeln!(out)?;
        }
        let drops: Vec<String> = st
            .iter()
            .flat_map(|l| {
                let who = if l.lif == proto::UPLINK {
                    "uplink".to_string()
                } else {
                    format!("lif {}", l.lif)
                };
                l.counters
                    .iter()
                    .filter(|(k, v)| k.starts_with("drop_") && **v > 0)
                    .map(move |(k, v)| format!("{who} {k} {v}"))
            })
            .collect();
        if !drops.is_empty() {
            writeln!(out, "drops: {}", drops.join(", "))?;
        }
        if st.iter().any(|l| l.lif == proto::UPLINK) {
            writeln!(
                out,
                "uplink: rx = frames from the wire, tx = frames to the wire; its drops are wire frames no LIF took"
            )?;
        }
        return Ok(());
    }
    // Watch: per-second rates over each interval, by the device's clock
    // where it moves (the simulator's virtual clock), else by ours.
    let mut prev: BTreeMap<u16, (u64, Instant, BTreeMap<String, u64>)> = BTreeMap::new();
    let mut n = 0u64;
    let mut first = true;
    loop {
        let st = fetch()?;
        let now = Instant::now();
        if !first {
            n += 1;
            if !ctx.json && n == 1 {
                write_header(out, "/s")?;
            }
            for l in &st {
                let Some((clk, t, before)) = prev.get(&l.lif) else {
                    continue;
                };
                let dt = if l.device_clock_ns > *clk {
                    (l.device_clock_ns - clk) as f64 / 1e9
                } else {
                    now.duration_since(*t).as_secs_f64()
                };
                let rate = |k: &str| {
                    let was = proto::LifCounters {
                        lif: l.lif,
                        device_clock_ns: *clk,
                        counters: before.clone(),
                    };
                    let d = cell(l, k).saturating_sub(cell(&was, k));
                    if dt > 0.0 {
                        d as f64 / dt
                    } else {
                        0.0
                    }
                };
                if ctx.json {
                    let rates: BTreeMap<&str, f64> = l.counters.keys().map(|k| (k.as_str(), rate(k))).collect();
                    let line = serde_json::json!({ "sample": n, "lif": l.lif, "seconds": dt, "per_second": rates, "counters": l.counters });
                    json_line(out, &line)?;
                } else {
                    write!(out, "{:>6}", row_label(l.lif))?;
                    for (k, _) in COLUMNS {
                        write!(out, " {:>10.0}", rate(k))?;
                    }
                    writeln!(out)?;
                }
            }
            out.flush()?;
            if s.count.is_some_and(|c| n >= c) {
                return Ok(());
            }
        }
        first = false;
        for l in st {
            prev.insert(l.lif, (l.device_clock_ns, now, l.counters));
        }
        std::thread::sleep(Duration::from_secs_f64(s.interval));
    }
}

fn write_header(out: &mut dyn Write, suffix: &str) -> std::io::Result<()> {
    write!(out, "{:>6}", "lif")?;
    for (_, h) in COLUMNS {
        write!(out, " {:>10}", format!("{h}{suffix}"))?;
    }
    writeln!(out)
}
