//! What the demo reports: per-LIF figures per interval and per phase,
//! the nicctl commands, the whole run's books, and all of it as text.

use super::super::gen::{format_drops, GenReport, Latency};
use super::observe::{Acc, Lifs};
use super::operator::Command;
use super::Role;
use dataplane::abi::{LifCounter, LifStats};
use serde::Serialize;
use std::collections::BTreeMap;

/// Meter marks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Marks {
    pub green: u64,
    pub yellow: u64,
    pub red: u64,
}

impl Marks {
    pub(super) fn of(d: &LifStats, base: &LifStats) -> Marks {
        let delta = |c| d.get(c).saturating_sub(base.get(c));
        Marks {
            green: delta(LifCounter::MeterGreen),
            yellow: delta(LifCounter::MeterYellow),
            red: delta(LifCounter::MeterRed),
        }
    }

    pub(super) fn add(&mut self, o: Marks) {
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

/// Each measured phase's figures per LIF, from its running sums (`accs`):
/// phase 1 up to the change at `change_at`, phase 2 (when the run got to
/// one) from the interval after it to `end`.
pub(super) fn phases(
    accs: &[Vec<Acc>; 2],
    lifs: &Lifs,
    capacity: u64,
    fair_share: u64,
    phase_start: [f64; 2],
    change_at: f64,
    end: f64,
) -> Vec<Phase> {
    let n = lifs.ids.len();
    let aggressor = lifs.aggressor();
    // A run stopped (Ctrl-C) before the change, or before the interval after
    // it ended, has no second phase.
    let measured = if accs[1][0].seconds > 0.0 { 2 } else { 1 };
    (0..measured)
        .map(|p| {
            let total_cost: f64 = accs[p].iter().map(|a| a.cost).sum::<f64>().max(1.0);
            let figures = (0..n)
                .map(|i| {
                    let a = &accs[p][i];
                    let secs = a.seconds.max(1e-9);
                    LifFigures {
                        lif: lifs.ids[i],
                        role: lifs.roles[i],
                        offered_pps: lifs.offered[i],
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
                    phase_title(1, capacity, fair_share, aggressor)
                } else {
                    format!(
                        "{} (changed at {change_at:.1} s; the interval after it, draining what the old \
                         thresholds queued, is left out)",
                        phase_title(2, capacity, fair_share, aggressor)
                    )
                },
                from_s: phase_start[p],
                to_s: if p == 0 { change_at } else { end },
                lifs: figures,
            }
        })
        .collect()
}

/// The per-LIF table's header (live and in the report).
pub(super) fn table_header() -> String {
    format!(
        "{:>4}  {:<9}  {:>8}  {:>8}  {:>8}  {:>6}  {:>10}  {:<28}  {:>9}  {:>8}",
        "lif", "role", "offered", "tx kpps", "rx kpps", "cost", "meter", "drops", "p99 µs", "irq/s"
    )
}

/// What phase 1 or 2 is, in words.
pub(super) fn phase_title(phase: u8, capacity: u64, fair_share: u64, aggressor: u16) -> String {
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

/// One LIF's row of the table.
pub(super) fn format_row(f: &LifFigures) -> String {
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
