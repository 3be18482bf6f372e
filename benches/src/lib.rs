//! The pieces every fairnic benchmark binary shares: CPU pinning, the TSC,
//! interleaved rounds, and a report written as a table and as JSON.
//!
//! Machines here are shared and noisy, so a benchmark never trusts one
//! absolute number: each round runs every variant once, in turn, so drift
//! hits all of them alike; the report gives the median over rounds, the
//! spread, and each variant's ratio to its peer measured in the same run.

pub mod fairness;
pub mod moderation;

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Pin the calling thread to one CPU (best effort: a container may forbid
/// it, and the numbers are then noisier, not wrong).
pub fn pin_to_cpu(cpu: usize) {
    #[cfg(target_os = "linux")]
    {
        let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        // SAFETY: cpu_set_t is plain data; CPU_SET writes inside it
        // (cpu % ncpu < CPU_SETSIZE); sched_setaffinity only reads it.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu % ncpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
}

/// The time-stamp counter, or nanoseconds where there is none.
#[inline(always)]
pub fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc has no preconditions on x86_64.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        use std::sync::OnceLock;
        static T0: OnceLock<Instant> = OnceLock::new();
        T0.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// TSC ticks per nanosecond, measured over 50 ms.
pub fn tsc_per_ns() -> f64 {
    let (t0, c0) = (Instant::now(), tsc());
    std::thread::sleep(Duration::from_millis(50));
    let (dt, dc) = (t0.elapsed(), tsc() - c0);
    dc as f64 / dt.as_nanos() as f64
}

/// One variant's measurements over the rounds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// What was measured.
    pub name: String,
    /// The group of variants compared with each other.
    pub group: String,
    /// The unit of `median`, `min`, `max` (e.g. "Melem/s", "cycles/elem").
    pub unit: String,
    /// Whether larger is better (throughput) or smaller (cost).
    pub higher_is_better: bool,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Every round's value.
    pub rounds: Vec<f64>,
    /// Comparisons with peers measured in the same run.
    pub vs: Vec<Versus>,
}

/// One row compared with a peer row of its group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Versus {
    pub peer: String,
    /// `self / peer` for throughput, `peer / self` for cost: above 1 means
    /// the row is better than its peer by that factor.
    pub advantage: f64,
}

/// A benchmark's report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub bench: String,
    pub machine: String,
    pub notes: Vec<String>,
    pub rows: Vec<Row>,
}

impl Report {
    pub fn new(bench: &str) -> Report {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        Report {
            bench: bench.into(),
            machine: format!("{model}, {cpus} CPUs"),
            notes: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// Add a row from per-round values.
    pub fn add(&mut self, group: &str, name: &str, unit: &str, higher_is_better: bool, rounds: Vec<f64>) {
        let mut sorted = rounds.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let median = if sorted.is_empty() {
            f64::NAN
        } else {
            sorted[sorted.len() / 2]
        };
        self.rows.push(Row {
            name: name.into(),
            group: group.into(),
            unit: unit.into(),
            higher_is_better,
            median,
            min: sorted.first().copied().unwrap_or(f64::NAN),
            max: sorted.last().copied().unwrap_or(f64::NAN),
            rounds,
            vs: Vec::new(),
        });
    }

    /// Compare row `name` with row `peer` of the same group.
    pub fn compare(&mut self, group: &str, name: &str, peer: &str) {
        let Some(p) = self
            .rows
            .iter()
            .find(|r| r.group == group && r.name == peer)
            .map(|r| r.median)
        else {
            return;
        };
        if let Some(r) = self.rows.iter_mut().find(|r| r.group == group && r.name == name) {
            let advantage = if r.higher_is_better { r.median / p } else { p / r.median };
            r.vs.push(Versus {
                peer: peer.into(),
                advantage,
            });
        }
    }

    /// The report as a Markdown table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "## {} ({})\n", self.bench, self.machine);
        let _ = writeln!(
            s,
            "| group | variant | median | unit | min..max | vs peers (>1: better) |"
        );
        let _ = writeln!(s, "|---|---|---:|---|---|---|");
        for r in &self.rows {
            let vs: Vec<String> = r.vs.iter().map(|v| format!("{:.2}x {}", v.advantage, v.peer)).collect();
            let vs = vs.join(", ");
            let _ = writeln!(
                s,
                "| {} | {} | {:.2} | {} | {:.2}..{:.2} | {} |",
                r.group, r.name, r.median, r.unit, r.min, r.max, vs
            );
        }
        for n in &self.notes {
            let _ = writeln!(s, "\n{n}");
        }
        s
    }

    /// Print the table and write `target/bench-results/<bench>.{json,md}`.
    pub fn finish(&self) -> PathBuf {
        let table = self.table();
        println!("{table}");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-results");
        let _ = std::fs::create_dir_all(&dir);
        let json = dir.join(format!("{}.json", self.bench));
        std::fs::write(&json, serde_json::to_string_pretty(self).expect("report serialises")).expect("write JSON");
        std::fs::write(dir.join(format!("{}.md", self.bench)), table).expect("write table");
        println!("results: {}", json.display());
        json
    }
}

/// Rounds to run: `FAIRNIC_BENCH_ROUNDS`, else 7 under `cargo bench`
/// (which passes `--bench`) and 1 under `cargo test --benches` (which
/// expects a quick run).
pub fn rounds() -> usize {
    let quick = !std::env::args().any(|a| a == "--bench");
    std::env::var("FAIRNIC_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 1 } else { 7 })
}

/// A named variant of a benchmark: one run returns one value.
pub type Variant<'a> = (&'a str, Box<dyn FnMut() -> f64 + 'a>);

/// Run `variants` for `rounds` rounds, interleaved, and return each
/// variant's per-round values in order.
pub fn interleave<F: FnMut() -> f64>(rounds: usize, variants: &mut [(&str, F)]) -> Vec<Vec<f64>> {
    let mut out = vec![Vec::with_capacity(rounds); variants.len()];
    for _ in 0..rounds {
        for (i, (_, f)) in variants.iter_mut().enumerate() {
            out[i].push(f());
        }
    }
    out
}
