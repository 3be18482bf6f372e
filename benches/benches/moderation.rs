//! Interrupt-moderation benchmark: the driver in interrupt mode, one RX
//! queue fed by the simulated wire at 1 kpps .. beyond the simulator's
//! maximum, with moderation off, fixed and adaptive. Reports interrupts
//! per second, packets per interrupt, wire-to-driver and
//! completion-to-driver latency (p50/p99/p999) with what each mode adds
//! over `off` at the same load, how late the device's moderation timers
//! fired (deadline to interrupt raised, device clock) at each load, and
//! this machine's own wakeup latency measured in the same run (the floor
//! of that lateness), and judges the bars.
//!
//! `cargo bench -p fairnic-benches --bench moderation`;
//! `FAIRNIC_MODERATION_MS` sets each point's window (default 1000 ms; the
//! 1 kpps points run three times as long), `FAIRNIC_BENCH_ROUNDS` the rounds
//! (default 3 under `cargo bench`, 1 otherwise), `FAIRNIC_MODERATION_LOADS`
//! the offered loads (comma-separated frames/s; default all). Real time:
//! the figures depend on this machine; each load's modes run back to back,
//! rounds interleave them.
//!
//! The bars:
//! - timer lateness: at 1 kpps (the timer probe, where every other
//!   interrupt waits for a timer; see `Params::TIMER_PROBE`), fixed and
//!   adaptive p99 lateness at most this machine's own wakeup p99 + 10 µs,
//!   the floor measured meanwhile (`wakeup_floor_during`): the difference
//!   is judged, not the absolute, per round (`judge_rounds`: three rounds,
//!   met when every round meets, "not judged: noise" with the rounds'
//!   spread when they straddle the bar).
//! - added latency: at 1 kpps, fixed and adaptive completion-to-driver p99
//!   at most `off`'s + latency interval + 10 µs, judged the same way, and
//!   only when this machine's own wakeup p99 (measured in the run) is at
//!   most what the bar allows (and 100 µs): above that the host's own
//!   stalls are larger than the signal, and the bar says "not judged"
//!   with that figure.
//! - adaptive packets per interrupt at the highest load, per round
//!   (`fairnic_benches::judge_rounds`).
//! - timer lateness on virtual time (deterministic, judged on every run,
//!   CI's short one too): the timer probe with the engine thread's own
//!   waiting policy against a modelled host whose every sleep ends on its
//!   next 1 ms scheduler tick (`virtual_probe`): fixed and adaptive max
//!   lateness at most two engine passes (2 µs).

use fairnic_benches::moderation::{run, virtual_probe, wakeup_floor_during, Params, Point, Setting};
use fairnic_benches::{judge_rounds, Bar, Need, Report, Verdict};
use hdrhistogram::Histogram;
use std::time::Duration;

/// Offered loads, frames/s; the last is more than the simulator carries.
const LOADS: [u64; 5] = [1_000, 10_000, 100_000, 1_000_000, 20_000_000];
/// The timer probe's load.
const PROBE_LOAD: u64 = 1_000;
/// The modes that have timers.
const TIMED: [Setting; 2] = [Setting::Fixed, Setting::Adaptive];
/// Above this wakeup p99 (µs, the machine's own, measured in the run), or
/// above the added latency the bar allows when that is less, the
/// added-latency bar is not judged.
const FLOOR_NOISE_US: f64 = 100.0;
/// Lateness the device may add to the machine's own wakeup p99, µs.
const LATENESS_SLACK_US: f64 = 10.0;
/// The modelled host of the virtual-time probe: a pass costs 1 µs, a
/// sleep ends on the next 1 ms tick.
const MODEL_HOST: sim::ModelHost = sim::ModelHost {
    pass_ns: 1_000,
    tick_ns: 1_000_000,
};
/// Fewest samples behind a judged p99.
const MIN_SAMPLES: u64 = 100;

fn main() {
    let window_ms = std::env::var("FAIRNIC_MODERATION_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1000)
        .max(10);
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds = std::env::var("FAIRNIC_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(if quick { 1 } else { 3 })
        .max(1);
    let loads: Vec<u64> = std::env::var("FAIRNIC_MODERATION_LOADS")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .filter(|v: &Vec<u64>| !v.is_empty())
        .unwrap_or_else(|| LOADS.to_vec());
    let p = Params::STANDARD;
    let probe = Params::TIMER_PROBE;
    // The engine thread's longest idle sleep: the floor sleeps as long.
    let period = sim::SimConfig::default().max_idle_sleep;
    // At least 1 s: some 750 timer interrupts, so that the p99's
    // confidence interval stops short of the maximum.
    let probe_ms = (3 * window_ms).max(1_000);
    let ns = Setting::ALL.len();
    let mut points: Vec<Vec<Point>> = vec![Vec::new(); loads.len() * ns];
    let mut probes: Vec<Vec<Point>> = vec![Vec::new(); TIMED.len()];
    // The wakeup floor measured during each mode's probe points.
    let mut floors: Vec<Vec<Histogram<u64>>> = vec![Vec::new(); TIMED.len()];
    let point = |s: Setting, params: &Params, load: u64, ms: u64| -> Point {
        match run(
            s,
            params,
            load,
            Duration::from_millis(ms / 5 + 20),
            Duration::from_millis(ms),
        ) {
            Ok(pt) => pt,
            Err(e) => {
                eprintln!("moderation: {} at {load} pps: {e}", s.name());
                std::process::exit(1);
            }
        }
    };
    for _ in 0..rounds {
        for (i, &s) in TIMED.iter().enumerate() {
            let (pt, floor) = wakeup_floor_during(period, || point(s, &probe, PROBE_LOAD, probe_ms));
            probes[i].push(pt);
            floors[i].push(floor);
        }
        for (li, &load) in loads.iter().enumerate() {
            let ms = if load <= 1_000 { 3 * window_ms } else { window_ms };
            for (si, &s) in Setting::ALL.iter().enumerate() {
                points[li * ns + si].push(point(s, &p, load, ms));
            }
        }
    }
    let median = |v: &[Point], f: &dyn Fn(&Point) -> f64| {
        let mut x: Vec<f64> = v.iter().map(f).collect();
        x.sort_by(|a, b| a.total_cmp(b));
        x[x.len() / 2]
    };
    let merged = |v: &[Point], f: &dyn Fn(&Point) -> &Histogram<u64>| {
        let mut h = f(&v[0]).clone();
        for p in &v[1..] {
            h.add(f(p)).expect("same bounds");
        }
        h
    };
    let mut report = Report::new("moderation");
    let mut table = String::from(
        "| load | mode | received/s | interrupts/s | pkts/irq | wire p50/p99/p999 us | completion p50/p99/p999 us | completion p99 added vs off, us | timer irqs | timer lateness p50/p99/p999 us | drops | wait timeouts |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut row = |load: String, s: Setting, v: &[Point], added: Option<f64>| {
        let wire = merged(v, &|p| &p.wire);
        let comp = merged(v, &|p| &p.completion);
        let late = merged(v, &|p| &p.lateness);
        table.push_str(&format!(
            "| {load} | {} | {:.0} | {:.0} | {:.1} | {} | {} | {} | {} | {} | {:.0} | {} |\n",
            s.name(),
            median(v, &|p| p.received_pps),
            median(v, &|p| p.interrupts_per_s),
            median(v, &|p| p.packets_per_interrupt),
            percentiles(&wire),
            percentiles(&comp),
            added.map_or("".into(), |a| format!("{a:+.1}")),
            late.len(),
            if late.is_empty() {
                "-".into()
            } else {
                percentiles(&late)
            },
            median(v, &|p| (p.device_drops + p.not_offered) as f64),
            v.iter().map(|p| p.wait_timeouts).sum::<u64>(),
        ));
    };
    for (i, &s) in TIMED.iter().enumerate() {
        row(
            format!("{} (probe, {} us)", human(PROBE_LOAD), probe.latency_us),
            s,
            &probes[i],
            None,
        );
    }
    let mut added_bars = Vec::new();
    for (li, &load) in loads.iter().enumerate() {
        let off = merged(&points[li * ns], &|p| &p.completion);
        for (si, &s) in Setting::ALL.iter().enumerate() {
            let v = &points[li * ns + si];
            let group = format!("{} pps", human(load));
            let comp = merged(v, &|p| &p.completion);
            let added = us(&comp, 0.99) - us(&off, 0.99);
            row(human(load), s, v, Some(added));
            for (name, unit, hib, f) in [
                (
                    "interrupts/s",
                    "1/s",
                    false,
                    (|p: &Point| p.interrupts_per_s) as fn(&Point) -> f64,
                ),
                ("packets/interrupt", "pkts", true, |p| p.packets_per_interrupt),
                ("completion-to-driver p99", "us", false, |p| {
                    p.completion_p99_ns as f64 / 1e3
                }),
                ("wire-to-driver p99", "us", false, |p| p.p99_ns as f64 / 1e3),
            ] {
                report.add(
                    &group,
                    &format!("{} {name}", s.name()),
                    unit,
                    hib,
                    v.iter().map(f).collect(),
                );
            }
            if s != Setting::Off && v.iter().all(|p| p.timer_interrupts > 0) {
                report.add(
                    &group,
                    &format!("{} timer lateness p99", s.name()),
                    "us",
                    false,
                    v.iter().map(|p| p.lateness_p99_ns as f64 / 1e3).collect(),
                );
            }
            if s != Setting::Off {
                for name in ["interrupts/s", "packets/interrupt", "completion-to-driver p99"] {
                    report.compare(&group, &format!("{} {name}", s.name()), &format!("off {name}"));
                }
            }
            if load == 1_000 && s != Setting::Off {
                let allowed = f64::from(p.latency_us) + 10.0;
                added_bars.push(added_bar(s, v, &points[li * ns], allowed));
            }
            if li == loads.len() - 1 && load == *LOADS.last().unwrap() && s == Setting::Adaptive {
                report.bar_rounds(
                    "adaptive packets per interrupt at the highest load",
                    &v.iter().map(|p| p.packets_per_interrupt).collect::<Vec<_>>(),
                    Need::AtLeast(32.0),
                );
            }
        }
    }
    let probe_group = format!("{} pps timer probe", human(PROBE_LOAD));
    // Deterministic: the same figures on every machine and every run.
    for s in TIMED {
        let late = match virtual_probe(
            s,
            &probe,
            PROBE_LOAD,
            MODEL_HOST,
            Duration::from_millis(300),
            Duration::from_secs(2),
        ) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("moderation: virtual probe, {}: {e}", s.name());
                std::process::exit(1);
            }
        };
        report.notes.push(format!(
            "Virtual time, {}: the timer probe against a modelled host (a pass costs {} ns, every sleep ends on the next {} us tick): {} timer interrupts, lateness p50/p99/max {} / {} / {} ns.",
            s.name(),
            MODEL_HOST.pass_ns,
            MODEL_HOST.tick_ns / 1_000,
            late.len(),
            late.value_at_quantile(0.5),
            late.value_at_quantile(0.99),
            late.max()
        ));
        if late.len() < MIN_SAMPLES {
            report.bar_exact(
                &format!(
                    "{} timer interrupts on virtual time (the probe makes timers wait)",
                    s.name()
                ),
                late.len() as f64,
                Need::AtLeast(MIN_SAMPLES as f64),
            );
        }
        report.bar_exact(
            &format!(
                "{} max timer lateness on virtual time, modelled host with a 1 ms tick ({} timer interrupts), ns",
                s.name(),
                late.len()
            ),
            late.max() as f64,
            Need::AtMost(2.0 * MODEL_HOST.pass_ns as f64),
        );
    }
    for (i, &s) in TIMED.iter().enumerate() {
        report.add(
            &probe_group,
            &format!("wakeup floor p99 during {}", s.name()),
            "us",
            false,
            floors[i].iter().map(|h| us(h, 0.99)).collect(),
        );
    }
    for (i, &s) in TIMED.iter().enumerate() {
        report.bars.push(lateness_bar(s, &probes[i], &floors[i]));
        report.add(
            &probe_group,
            &format!("{} timer lateness p99", s.name()),
            "us",
            false,
            probes[i].iter().map(|p| p.lateness_p99_ns as f64 / 1e3).collect(),
        );
        report.compare(
            &probe_group,
            &format!("{} timer lateness p99", s.name()),
            &format!("wakeup floor p99 during {}", s.name()),
        );
    }
    // The added-latency bar compares p99s of a few hundred frames a round:
    // on a machine whose own wakeups stall at p99 (measured in this run)
    // for longer than the added latency the bar allows, the difference of
    // two p99s is the host's stalls as much as moderation's (the noise is
    // larger than the signal); then it is not judged, with that figure.
    // CI's run of 2026-12-02 missed it with the host's wakeup p99 at 38-43
    // us against 30 allowed; idle runs on the same VM measured 25-31.
    let floor_p99 = floors.iter().flatten().map(|h| us(h, 0.99)).fold(0.0, f64::max);
    for mut b in added_bars {
        let limit = match b.need {
            Need::AtMost(allowed) => allowed.min(FLOOR_NOISE_US),
            Need::AtLeast(_) => FLOOR_NOISE_US,
        };
        if floor_p99 > limit && !matches!(b.verdict, Verdict::NotJudged(_)) {
            b.verdict = Verdict::NotJudged(format!(
                "noise: this machine's own wakeup p99 reached {floor_p99:.1} us in this run, over the {limit:.0} us the bar allows: p99 latency here is the host's stalls as much as moderation's"
            ));
        }
        report.bars.push(b);
    }
    report.notes.push(format!(
        "Fixed and adaptive: latency interval {} us, overflow interval {} us, high watermark {}%; the timer probe: {} pps, latency and overflow interval {} us (every other interrupt waits for a timer between frames). Timer lateness: per interrupt raised for a moderation timer, the device clock when it was raised minus the timer's deadline. Offered {} pps is more than the simulator carries: its row is the maximum (its latency is the generator's backlog). {} round(s): rates are medians, latency percentiles over every round's frames.",
        p.latency_us,
        p.overflow_us,
        p.high_watermark_pct,
        human(PROBE_LOAD),
        probe.latency_us,
        human(*LOADS.last().unwrap()),
        rounds
    ));
    let mut note = format!(
        "Wakeup floor: this machine's own wakeup latency, measured during the probe points by a thread sleeping as the engine thread does (park_timeout, 1 us timer slack) to deadlines {} us apart; late by p50/p99/p999:",
        period.as_micros()
    );
    for (i, &s) in TIMED.iter().enumerate() {
        let f = merged_floor(&floors[i]);
        note.push_str(&format!(
            " during {}: {} us, max {:.1} us ({} wakeups);",
            s.name(),
            percentiles(&f),
            f.max() as f64 / 1e3,
            f.len()
        ));
    }
    report.notes.push(note);
    report.notes.push(table);
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-results");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("moderation-points.json"),
        serde_json::to_string_pretty(&(&points, &probes)).expect("serialises"),
    );
    // Exits 1 if a judged bar is missed.
    report.conclude();
}

/// Quantile `q` of `h` in µs.
fn us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1e3
}

/// "p50 / p99 / p999" of `h` in µs.
fn percentiles(h: &Histogram<u64>) -> String {
    format!("{:.1} / {:.1} / {:.1}", us(h, 0.5), us(h, 0.99), us(h, 0.999))
}

/// Every round's wakeup floor in one histogram.
fn merged_floor(rounds: &[Histogram<u64>]) -> Histogram<u64> {
    let mut h = rounds[0].clone();
    for f in &rounds[1..] {
        h.add(f).expect("same bounds");
    }
    h
}

/// Judge per round the difference `ours - base` of two p99s (µs) against
/// `need` (`fairnic_benches::judge_rounds`: met when every round meets,
/// missed when none does, otherwise not judged with the rounds' spread);
/// a round with fewer than [`MIN_SAMPLES`] samples on either side makes
/// the bar not judged. Rounds, not the run's pooled samples: on a shared
/// machine the tail comes from stalls that last milliseconds, so one
/// round's samples are not independent and a confidence interval over
/// all of them would claim more than the run knows.
fn p99_gap_bar(what: String, ours: &[&Histogram<u64>], base: &[&Histogram<u64>], need: Need) -> Bar {
    let gaps: Vec<f64> = ours.iter().zip(base).map(|(o, b)| us(o, 0.99) - us(b, 0.99)).collect();
    let short = ours.iter().chain(base).map(|h| h.len()).min().unwrap_or(0);
    let (value, verdict) = if short < MIN_SAMPLES {
        let mut g = gaps.clone();
        g.sort_by(|a, b| a.total_cmp(b));
        (
            g.get(g.len() / 2).copied().unwrap_or(f64::NAN),
            Verdict::NotJudged(format!(
                "noise: a round with {short} samples (fewer than {MIN_SAMPLES})"
            )),
        )
    } else {
        judge_rounds(&gaps, need)
    };
    Bar {
        what,
        value,
        need,
        verdict,
    }
}

/// The timer-lateness bar of mode `s`: per round, the probe's p99
/// lateness at most this machine's own wakeup p99 (measured meanwhile)
/// + 10 µs.
fn lateness_bar(s: Setting, probes: &[Point], floors: &[Histogram<u64>]) -> Bar {
    let late: Vec<&Histogram<u64>> = probes.iter().map(|p| &p.lateness).collect();
    let floor: Vec<&Histogram<u64>> = floors.iter().collect();
    let f = merged_floor(floors);
    let what = format!(
        "{} timer lateness p99 minus this machine's wakeup p99 in the same round, {} pps probe (median round; {} timer interrupts; wakeup p50/p99/p999 {} us), us",
        s.name(),
        human(PROBE_LOAD),
        late.iter().map(|h| h.len()).sum::<u64>(),
        percentiles(&f)
    );
    p99_gap_bar(what, &late, &floor, Need::AtMost(LATENESS_SLACK_US))
}

/// The added-latency bar of mode `s` at 1 kpps: per round,
/// completion-to-driver p99 minus `off`'s at most `allowed` µs.
fn added_bar(s: Setting, ours: &[Point], off: &[Point], allowed: f64) -> Bar {
    let what = format!(
        "{} p99 added latency at 1 kpps (completion to driver, minus off's in the same round, median round), us",
        s.name()
    );
    let o: Vec<&Histogram<u64>> = ours.iter().map(|p| &p.completion).collect();
    let b: Vec<&Histogram<u64>> = off.iter().map(|p| &p.completion).collect();
    p99_gap_bar(what, &o, &b, Need::AtMost(allowed))
}

fn human(pps: u64) -> String {
    match pps {
        p if p >= 1_000_000 => format!("{}M", p / 1_000_000),
        p if p >= 1_000 => format!("{}k", p / 1_000),
        p => p.to_string(),
    }
}
