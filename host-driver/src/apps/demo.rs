//! `demo`: nicdrv's main job. Per-LIF fairness on a shared pipeline, shown
//! live and changed halfway through by an operator with `nicctl`.
//!
//! Every port but the last is a *victim* offering a steady rate of 64-byte
//! UDP frames to the next port; the last port is the *aggressor*, offering
//! all its ring takes to the first port, through a destination MAC the
//! pipeline's `l2_fwd` table sends round `passes` extra times
//! (`to_lif_recirc`): each of its frames costs the pipeline `passes + 1`
//! times a victim's. A device that schedules by packets, as a conventional
//! NIC does, gives the aggressor most of the pipeline and the victims what
//! is left.
//!
//! Everything the operator does goes through `nicctl` against nicdrv's
//! control socket, and is printed as the command line to repeat by hand:
//! the table entry, every LIF's cost meter at the whole pipeline (nothing
//! regulated), adaptive interrupt moderation in interrupt mode, and, at
//! half time, the aggressor's cost meter lowered to its fair share
//! (`capacity / LIFs`, `deprioritize`: it is served only when the victims
//! have nothing to send).
//!
//! Every interval the device's counters of each LIF are read (cost units,
//! meter marks, drops by reason, interrupts) next to the generator's
//! rates and latency, and shown as a table, redrawn in place on a
//! terminal. The report compares the two phases and keeps the books of the
//! whole run (sent = received + dropped with a reason).

use super::gen::{self, format_drops, latency_histogram, GenConfig, GenReport, Interval, Latency, PortTraffic};
use super::{AppError, Mode, Ports};
use crate::nic::Nic;
use dataplane::abi::{LifCounter, LifStats};
use hdrhistogram::Histogram;
use mgmt::proto::AppLif;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Destination MAC of the aggressor's frames (locally administered).
pub const AGGRESSOR_MAC: [u8; 6] = [0x02, 0xfa, 0x1e, 0x00, 0x00, 0x01];
/// Cost meters' committed burst, units.
const BURST_UNITS: u64 = 4096;

/// What the demo runs.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// The whole run; the meter change comes at half.
    pub duration: Duration,
    pub stats_interval: Duration,
    /// Frames per second each victim offers.
    pub victim_pps: u64,
    /// Extra pipeline passes of each aggressor frame (1..=7).
    pub passes: u8,
    /// The pipeline's capacity, cost units per second (what the meters are
    /// set against).
    pub capacity: u64,
    /// nicdrv's control socket, where nicctl talks.
    pub control: PathBuf,
    pub burst: usize,
    pub seed: u64,
    /// Show the live table.
    pub live: bool,
}

/// Who a LIF is in the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Victim,
    Aggressor,
}

/// Meter marks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Marks {
    pub green: u64,
    pub yellow: u64,
    pub red: u64,
}

impl Marks {
    fn of(d: &LifStats, base: &LifStats) -> Marks {
        let delta = |c| d.get(c).saturating_sub(base.get(c));
        Marks {
            green: delta(LifCounter::MeterGreen),
            yellow: delta(LifCounter::MeterYellow),
            red: delta(LifCounter::MeterRed),
        }
    }

    fn add(&mut self, o: Marks) {
        self.green += o.green;
        self.yellow += o.yellow;
        self.red += o.red;
    }

    /// The color most packets got and its share, e.g. `red 62%`.
    pub fn dominant(&self) -> String {
        let total = self.green + self.yellow + self.red;
        if total == 0 {
            return "-".into();
        }
        let (name, n) = [("green", self.green), ("yellow", self.yellow), ("red", self.red)]
            .into_iter()
            .max_by_key(|&(_, n)| n)
            .expect("three colors");
        format!("{name} {:.0}%", 100.0 * n as f64 / total as f64)
    }
}

/// One LIF over one interval or one phase.
#[derive(Debug, Clone, Serialize)]
pub struct LifFigures {
    pub lif: u16,
    pub role: Role,
    /// Offered frames per second (0: all the ring takes).
    pub offered_pps: u64,
    /// Frames per second its TX ring took (what it got to send).
    pub tx_pps: f64,
    /// Frames per second it received.
    pub rx_pps: f64,
    /// Frames per second the ring refused (backpressure; never sent).
    pub held_back_pps: f64,
    /// Pipeline cost units per second charged to it.
    pub cost_units_per_s: f64,
    /// Its share of every LIF's cost units.
    pub cost_share: f64,
    pub marks: Marks,
    /// Device drops at the LIF, by reason.
    pub drops: BTreeMap<String, u64>,
    /// p99 latency of the frames it sent (taken at their receiver: send
    /// time in the frame to receive time in the driver, ring waits
    /// included), µs.
    pub p99_us: f64,
    pub interrupts_per_s: f64,
}

/// One row of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Tick {
    pub t_s: f64,
    /// 1 before the meter change, 2 after.
    pub phase: u8,
    pub lifs: Vec<LifFigures>,
}

/// One phase's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub name: String,
    pub from_s: f64,
    pub to_s: f64,
    pub lifs: Vec<LifFigures>,
}

/// A nicctl command the demo ran, and what it answered.
#[derive(Debug, Clone, Serialize)]
pub struct Command {
    pub at_s: f64,
    pub line: String,
    pub output: String,
}

/// What the demo reports.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    pub app: &'static str,
    pub capacity_units_per_s: u64,
    pub victim_pps: u64,
    pub aggressor_lif: u16,
    pub aggressor_units_per_frame_ratio: u8,
    pub commands: Vec<Command>,
    pub timeline: Vec<Tick>,
    pub phases: Vec<Phase>,
    /// Victims' throughput after the change over before (1.0: unchanged);
    /// none when the run stopped before a second phase.
    pub victim_tx_ratio: Option<f64>,
    /// The whole run's books and per-LIF totals.
    pub gen: GenReport,
}

/// Running sums of one phase for one LIF.
struct Acc {
    seconds: f64,
    tx: f64,
    rx: f64,
    held: f64,
    cost: f64,
    marks: Marks,
    drops: BTreeMap<String, u64>,
    interrupts: f64,
    hist: Histogram<u64>,
}

impl Acc {
    fn new() -> Acc {
        Acc {
            seconds: 0.0,
            tx: 0.0,
            rx: 0.0,
            held: 0.0,
            cost: 0.0,
            marks: Marks::default(),
            drops: BTreeMap::new(),
            interrupts: 0.0,
            hist: latency_histogram(),
        }
    }
}

fn run_nicctl(control: &std::path::Path, args: &[String]) -> Result<String, String> {
    let mut argv = vec!["nicctl".to_string(), "--socket".into(), control.display().to_string()];
    argv.extend(args.iter().cloned());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = mgmt::cli::run(argv, &mut out, &mut err);
    let out = String::from_utf8_lossy(&out).trim_end().to_string();
    if status == 0 {
        Ok(out)
    } else {
        Err(String::from_utf8_lossy(&err).trim_end().to_string())
    }
}

/// Run the demo on `ports` (at least two; the last is the aggressor),
/// with nicdrv's control socket at `cfg.control` serving the PF;
/// `publish` receives the generator's per-LIF figures every interval (for
/// `nicctl stats`).
pub fn run(
    ports: &mut Ports,
    cfg: &DemoConfig,
    stop: &AtomicBool,
    publish: &mut dyn FnMut(f64, Vec<AppLif>),
) -> Result<DemoReport, AppError> {
    let n = ports.ports.len();
    if n < 2 {
        return Err(AppError::Config(
            "the demo needs at least two LIFs (victims and an aggressor)".into(),
        ));
    }
    if !(1..=7).contains(&cfg.passes) {
        return Err(AppError::Config("--passes must be 1..=7".into()));
    }
    if cfg.capacity == 0 {
        return Err(AppError::Config("the demo needs a pipeline capacity".into()));
    }
    if cfg.victim_pps == 0 {
        return Err(AppError::Config(
            "the victims need a rate (--victim-rate, frames per second)".into(),
        ));
    }
    // Half time, then an interval to settle, then at least two to measure.
    if cfg.duration < 4 * cfg.stats_interval {
        return Err(AppError::Config(format!(
            "a demo of {:?} with {:?} between samples has no second phase to measure: \
             give --duration at least 4 times --stats-interval",
            cfg.duration, cfg.stats_interval
        )));
    }
    let roles: Vec<Role> = (0..n)
        .map(|i| if i + 1 == n { Role::Aggressor } else { Role::Victim })
        .collect();
    let lif_ids: Vec<u16> = ports.ports.iter().map(|p| p.lif.id).collect();
    let aggressor = lif_ids[n - 1];
    let handles: Vec<Arc<Mutex<Nic>>> = ports.ports.iter().map(|p| ports.nics[p.nic].clone()).collect();
    let read_stats = |i: usize| -> Result<LifStats, String> {
        let mut g = handles[i].lock().unwrap_or_else(|e| e.into_inner());
        g.stats(lif_ids[i]).map_err(|e| e.to_string())
    };

    let t0 = std::time::Instant::now();
    let mut commands = Vec::new();
    let nicctl = |args: Vec<String>, commands: &mut Vec<Command>, live: bool| -> Result<(), AppError> {
        let line = format!("nicctl {}", args.join(" "));
        if live {
            println!("$ {line}");
        }
        let output = run_nicctl(&cfg.control, &args).map_err(|e| AppError::Config(format!("{line}: {e}")))?;
        commands.push(Command {
            at_s: t0.elapsed().as_secs_f64(),
            line,
            output,
        });
        Ok(())
    };
    let s = |x: &str| x.to_string();
    let units = |u: u64| format!("{u}units/s");

    // The aggressor's frames: recirculated `passes` times on their way to
    // the first port's LIF.
    nicctl(
        vec![
            s("table"),
            s("add"),
            s("l2_fwd"),
            s("--key"),
            mgmt::tables::format_value(
                u128::from_be_bytes({
                    let mut b = [0u8; 16];
                    b[10..].copy_from_slice(&AGGRESSOR_MAC);
                    b
                }),
                48,
                false,
            ),
            s("--action"),
            s("to_lif_recirc"),
            s("--arg"),
            lif_ids[0].to_string(),
            s("--arg"),
            cfg.passes.to_string(),
        ],
        &mut commands,
        cfg.live,
    )
    .map_err(|e| {
        AppError::Config(format!(
            "{e}\n(the demo needs the fairnic pipeline loaded: --pipeline fairnic)"
        ))
    })?;
    // Phase 1: every LIF may use the whole pipeline.
    for &lif in &lif_ids {
        nicctl(
            vec![
                s("meter"),
                s("set"),
                s("--lif"),
                lif.to_string(),
                s("--resource"),
                s("cost"),
                s("--cir"),
                units(cfg.capacity),
                s("--cburst"),
                format!("{BURST_UNITS}units"),
                s("--policy"),
                s("deprioritize"),
            ],
            &mut commands,
            cfg.live,
        )?;
    }
    if ports.mode == Mode::Interrupt {
        // Every (function, vector) an RX queue interrupts on, once.
        let mut vectors: Vec<(u16, u16)> = ports
            .ports
            .iter()
            .filter_map(|p| {
                let f = ports.nics[p.nic]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .identity
                    .function_id;
                Some((f, p.rx.vector()?))
            })
            .collect();
        vectors.sort_unstable();
        vectors.dedup();
        for (f, v) in vectors {
            nicctl(
                vec![
                    s("moderation"),
                    s("set"),
                    s("--function"),
                    f.to_string(),
                    s("--vector"),
                    v.to_string(),
                    s("--mode"),
                    s("adaptive"),
                    s("--latency-us"),
                    s("20"),
                    s("--overflow-us"),
                    s("200"),
                ],
                &mut commands,
                cfg.live,
            )?;
        }
    }

    let traffic: Vec<PortTraffic> = roles
        .iter()
        .map(|r| match r {
            Role::Victim => PortTraffic {
                rate_pps: cfg.victim_pps,
                dst_mac: None,
            },
            Role::Aggressor => PortTraffic {
                rate_pps: 0,
                dst_mac: Some(AGGRESSOR_MAC),
            },
        })
        .collect();
    let gcfg = GenConfig {
        rate_pps: cfg.victim_pps,
        ports: traffic.clone(),
        sizes: vec![(64, 1)],
        flows: gen::Flows::Ring,
        duration: cfg.duration,
        stats_interval: cfg.stats_interval,
        burst: cfg.burst,
        seed: cfg.seed,
        live: false,
    };

    let fair_share = cfg.capacity / n as u64;
    let half = cfg.duration / 2;
    let mut phase = 1u8;
    let mut phase_start = [0.0f64, half.as_secs_f64()];
    let mut change_at = half.as_secs_f64();
    let mut settled = false;
    let mut accs: [Vec<Acc>; 2] = [
        (0..n).map(|_| Acc::new()).collect(),
        (0..n).map(|_| Acc::new()).collect(),
    ];
    let mut last: Vec<LifStats> = (0..n)
        .map(read_stats)
        .collect::<Result<_, _>>()
        .map_err(AppError::Config)?;
    let mut timeline: Vec<Tick> = Vec::new();
    let mut failure: Option<AppError> = None;
    let tty = cfg.live && std::io::stdout().is_terminal();
    let mut drawn = 0usize;
    let header = table_header();
    if cfg.live {
        println!(
            "\nfairness demo: {} victims at {} kpps each, aggressor LIF {aggressor} (every frame {} pipeline passes), \
             pipeline {:.1} Munits/s; meter change at {:.1} s",
            n - 1,
            cfg.victim_pps / 1000,
            u32::from(cfg.passes) + 1,
            cfg.capacity as f64 / 1e6,
            half.as_secs_f64()
        );
    }

    let mut observe = |iv: &Interval<'_>| {
        publish(iv.elapsed.as_secs_f64(), iv.lifs.clone());
        let dt = iv.length.as_secs_f64().max(1e-9);
        let now: Vec<LifStats> = match (0..n).map(read_stats).collect::<Result<_, _>>() {
            Ok(v) => v,
            Err(e) => {
                // Stop at once (the report says why) rather than run on
                // with a frozen table.
                failure = Some(AppError::Config(format!("reading the device's counters: {e}")));
                return ControlFlow::Break(());
            }
        };
        let cost: Vec<f64> = (0..n)
            .map(|i| {
                now[i]
                    .get(LifCounter::CostUnits)
                    .saturating_sub(last[i].get(LifCounter::CostUnits)) as f64
            })
            .collect();
        let total_cost: f64 = cost.iter().sum::<f64>().max(1.0);
        let p = usize::from(phase - 1);
        // The first interval after the change drains what the old
        // thresholds queued: in the timeline, not in the phase's figures.
        let settling = phase == 2 && !settled;
        let mut row = Vec::with_capacity(n);
        for i in 0..n {
            let mut drops = BTreeMap::new();
            for c in LifCounter::DROPS {
                let d = now[i].get(c).saturating_sub(last[i].get(c));
                if d > 0 {
                    drops.insert(c.key().to_string(), d);
                }
            }
            let marks = Marks::of(&now[i], &last[i]);
            let irqs = now[i]
                .get(LifCounter::Interrupts)
                .saturating_sub(last[i].get(LifCounter::Interrupts)) as f64;
            let l = &iv.lifs[i];
            // Ring flows: port i's frames arrive at port i + 1.
            let sent_latency = &iv.latency[(i + 1) % n];
            let p99_us = iv.lifs[(i + 1) % n].p99_us;
            let f = LifFigures {
                lif: lif_ids[i],
                role: roles[i],
                offered_pps: traffic[i].rate_pps,
                tx_pps: l.tx_pps,
                rx_pps: l.rx_pps,
                held_back_pps: iv.backpressured[i] as f64 / dt,
                cost_units_per_s: cost[i] / dt,
                cost_share: cost[i] / total_cost,
                marks,
                drops,
                p99_us,
                interrupts_per_s: irqs / dt,
            };
            if !settling {
                let a = &mut accs[p][i];
                a.seconds += dt;
                a.tx += l.tx_pps * dt;
                a.rx += l.rx_pps * dt;
                a.held += iv.backpressured[i] as f64;
                a.cost += cost[i];
                a.marks.add(marks);
                for (k, v) in &f.drops {
                    *a.drops.entry(k.clone()).or_default() += v;
                }
                a.interrupts += irqs;
                let _ = a.hist.add(sent_latency);
            }
            row.push(f);
        }
        last = now;
        let t = iv.elapsed.as_secs_f64();
        if settling {
            settled = true;
            phase_start[1] = t;
        }
        if cfg.live {
            let mut out = String::new();
            out.push_str(&format!(
                "t={t:>5.1} s  phase {phase}: {}\n{header}\n",
                phase_title(phase, cfg.capacity, fair_share, aggressor)
            ));
            for f in &row {
                out.push_str(&format_row(f));
                out.push('\n');
            }
            if tty {
                // Rows longer than the terminal would wrap, and the redraw
                // would go up too few lines.
                let width = terminal_width();
                out = out
                    .lines()
                    .map(|l| l.chars().take(width.saturating_sub(1)).collect::<String>() + "\n")
                    .collect();
            }
            let mut stdout = std::io::stdout().lock();
            if tty && drawn > 0 {
                // Redraw in place: up over the last table, clear below.
                let _ = write!(stdout, "\x1b[{drawn}A\x1b[J");
            }
            let _ = write!(stdout, "{out}");
            let _ = stdout.flush();
            drawn = if tty { out.lines().count() } else { 0 };
        }
        timeline.push(Tick {
            t_s: t,
            phase,
            lifs: row,
        });
        if phase == 1 && iv.elapsed >= half {
            // The operator lowers the aggressor's threshold to its share.
            let args = vec![
                s("meter"),
                s("set"),
                s("--lif"),
                aggressor.to_string(),
                s("--resource"),
                s("cost"),
                s("--cir"),
                units(fair_share),
                s("--cburst"),
                format!("{BURST_UNITS}units"),
                s("--policy"),
                s("deprioritize"),
            ];
            drawn = 0;
            if let Err(e) = nicctl(args, &mut commands, cfg.live) {
                failure = Some(e);
                return ControlFlow::Break(());
            }
            phase = 2;
            phase_start[1] = t;
            change_at = t;
        }
        ControlFlow::Continue(())
    };
    let gen_report = gen::run(ports, &gcfg, stop, &mut observe)?;
    if let Some(e) = failure {
        return Err(e);
    }
    let end = gen_report.seconds;
    // A run stopped (Ctrl-C) before the change, or before the interval after
    // it ended, has no second phase.
    let measured = if accs[1][0].seconds > 0.0 { 2 } else { 1 };
    let phases: Vec<Phase> = (0..measured)
        .map(|p| {
            let total_cost: f64 = accs[p].iter().map(|a| a.cost).sum::<f64>().max(1.0);
            let lifs = (0..n)
                .map(|i| {
                    let a = &accs[p][i];
                    let secs = a.seconds.max(1e-9);
                    LifFigures {
                        lif: lif_ids[i],
                        role: roles[i],
                        offered_pps: traffic[i].rate_pps,
                        tx_pps: a.tx / secs,
                        rx_pps: a.rx / secs,
                        held_back_pps: a.held / secs,
                        cost_units_per_s: a.cost / secs,
                        cost_share: a.cost / total_cost,
                        marks: a.marks,
                        drops: a.drops.clone(),
                        p99_us: Latency::of(&a.hist).p99_us,
                        interrupts_per_s: a.interrupts / secs,
                    }
                })
                .collect();
            Phase {
                name: if p == 0 {
                    phase_title(1, cfg.capacity, fair_share, aggressor)
                } else {
                    format!(
                        "{} (changed at {change_at:.1} s; the interval after it, draining what the old \
                         thresholds queued, is left out)",
                        phase_title(2, cfg.capacity, fair_share, aggressor)
                    )
                },
                from_s: phase_start[p],
                to_s: if p == 0 { change_at } else { end },
                lifs,
            }
        })
        .collect();
    let victims = |p: &Phase| -> f64 { p.lifs.iter().filter(|l| l.role == Role::Victim).map(|l| l.tx_pps).sum() };
    let victim_tx_ratio = match &phases[..] {
        [a, b] => Some(victims(b) / victims(a).max(1e-9)),
        _ => None,
    };
    Ok(DemoReport {
        app: "demo",
        capacity_units_per_s: cfg.capacity,
        victim_pps: cfg.victim_pps,
        aggressor_lif: aggressor,
        aggressor_units_per_frame_ratio: cfg.passes + 1,
        commands,
        timeline,
        phases,
        victim_tx_ratio,
        gen: gen_report,
    })
}

/// The per-LIF table's header (live and in the report).
fn table_header() -> String {
    format!(
        "{:>4}  {:<9}  {:>8}  {:>8}  {:>8}  {:>6}  {:>10}  {:<28}  {:>9}  {:>8}",
        "lif", "role", "offered", "tx kpps", "rx kpps", "cost", "meter", "drops", "p99 µs", "irq/s"
    )
}

/// Columns of the terminal on stdout (80 when it cannot say).
fn terminal_width() -> usize {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into `ws`, which lives across
    // the call; a failure leaves it zeroed.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        usize::from(ws.ws_col)
    } else {
        80
    }
}

fn phase_title(phase: u8, capacity: u64, fair_share: u64, aggressor: u16) -> String {
    if phase == 1 {
        format!(
            "every LIF's cost meter at the whole pipeline ({:.1} Munits/s)",
            capacity as f64 / 1e6
        )
    } else {
        format!(
            "LIF {aggressor}'s cost meter at its fair share ({:.2} Munits/s, deprioritize)",
            fair_share as f64 / 1e6
        )
    }
}

fn format_row(f: &LifFigures) -> String {
    let drops = format_drops(&f.drops);
    let offered = if f.offered_pps == 0 {
        "max".to_string()
    } else {
        format!("{}k", f.offered_pps / 1000)
    };
    format!(
        "{:>4}  {:<9}  {:>8}  {:>8.1}  {:>8.1}  {:>5.1}%  {:>10}  {:<28}  {:>9.1}  {:>8.0}",
        f.lif,
        match f.role {
            Role::Victim => "victim",
            Role::Aggressor => "aggressor",
        },
        offered,
        f.tx_pps / 1e3,
        f.rx_pps / 1e3,
        100.0 * f.cost_share,
        f.marks.dominant(),
        drops,
        f.p99_us,
        f.interrupts_per_s
    )
}

impl DemoReport {
    /// The final report as text.
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "\nfairness demo: pipeline {:.1} Munits/s; victims offer {} kpps each; aggressor LIF {} \
             (each frame costs {}x a victim's)",
            self.capacity_units_per_s as f64 / 1e6,
            self.victim_pps / 1000,
            self.aggressor_lif,
            self.aggressor_units_per_frame_ratio
        );
        for p in &self.phases {
            let _ = writeln!(s, "\n{:.1}-{:.1} s: {}", p.from_s, p.to_s, p.name);
            let _ = writeln!(s, "{}", table_header());
            for l in &p.lifs {
                let _ = writeln!(s, "{}", format_row(l));
            }
        }
        let vp99 = |p: &Phase| {
            p.lifs
                .iter()
                .filter(|l| l.role == Role::Victim)
                .map(|l| l.p99_us)
                .fold(0.0, f64::max)
        };
        let share = |p: &Phase| {
            p.lifs
                .iter()
                .find(|l| l.role == Role::Aggressor)
                .map(|l| 100.0 * l.cost_share)
                .unwrap_or(0.0)
        };
        if let ([a, b], Some(ratio)) = (&self.phases[..], self.victim_tx_ratio) {
            let _ = writeln!(
                s,
                "\nafter the change: victims sent {:.2}x as much; their worst p99 {:.1} -> {:.1} µs; \
                 the aggressor's cost share {:.1}% -> {:.1}%",
                ratio,
                vp99(a),
                vp99(b),
                share(a),
                share(b)
            );
        }
        if self.phases.len() < 2 {
            let _ = writeln!(s, "\nno second phase: the run stopped before the change was measured");
        }
        let _ = writeln!(s, "\nwhole run:");
        s.push_str(&self.gen.text());
        s
    }
}
