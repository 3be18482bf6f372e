//! The pieces every fairnic benchmark binary shares: CPU pinning, the TSC,
//! interleaved rounds, and a report written as a table and as JSON.
//!
//! Machines here are shared and noisy, so a benchmark never trusts one
//! absolute number: each round runs every variant once, in turn, so drift
//! hits all of them alike; the report gives the median over rounds, the
//! spread, and each variant's ratio to its peer measured in the same run.

pub mod fairness;
pub mod moderation;
#[cfg(feature = "dpdk")]
pub mod swx;

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

/// An error of setting a benchmark up, named by what failed to come up:
/// `.map_err(setup_err("simulator"))`.
pub fn setup_err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |e| format!("{what}: {e}")
}

/// The e2e bench's "meters on": a LIF's cost meter with room for the
/// offered load (10^10 units/s, bursts of 10^8), so the charging path runs
/// on every frame and nothing is regulated. `engine-frames` uses the same.
pub fn unregulating_cost_meter() -> dataplane::abi::MeterConfig {
    use dataplane::abi::{MeterConfig, MeterMode, MeterPolicy, MeterResource};
    MeterConfig {
        resource: MeterResource::Cost.raw(),
        mode: MeterMode::SrTcm.raw(),
        policy: MeterPolicy::Backpressure.raw(),
        cir: 10_000_000_000.into(),
        cburst: 100_000_000.into(),
        eburst: 100_000_000.into(),
        ..Default::default()
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

/// What a bar needs of its figure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Need {
    /// The figure must be at least this.
    AtLeast(f64),
    /// The figure must be at most this.
    AtMost(f64),
}

impl Need {
    /// Whether `v` meets the bar.
    pub fn met_by(self, v: f64) -> bool {
        match self {
            Need::AtLeast(b) => v >= b,
            Need::AtMost(b) => v <= b,
        }
    }
}

impl std::fmt::Display for Need {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Need::AtLeast(b) => write!(f, ">= {b}"),
            Need::AtMost(b) => write!(f, "<= {b}"),
        }
    }
}

/// A bar's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Verdict {
    Met,
    Missed,
    /// The run cannot say: why, with the noise figure where there is one.
    NotJudged(String),
}

/// One bar a benchmark holds itself to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bar {
    pub what: String,
    /// The judged figure (the median over rounds for a real-time figure).
    pub value: f64,
    pub need: Need,
    pub verdict: Verdict,
}

/// Rounds a real-time bar needs before it is judged: with fewer there is
/// no noise figure to judge against.
pub const MIN_JUDGED_ROUNDS: usize = 3;

/// Judge a real-time figure measured once per round: met when every round
/// meets the bar, missed when none does, otherwise the noise (the rounds'
/// spread) is larger than the distance to the bar and the bar is not
/// judged, with that spread as the noise figure. A judged verdict thus
/// holds for every round of the run, not just the median.
pub fn judge_rounds(rounds: &[f64], need: Need) -> (f64, Verdict) {
    let sorted = finite_sorted(rounds);
    let Some(&median) = sorted.get(sorted.len() / 2) else {
        return (f64::NAN, Verdict::NotJudged("no finite measurement".into()));
    };
    if sorted.len() < MIN_JUDGED_ROUNDS {
        return (
            median,
            Verdict::NotJudged(format!(
                "{} round(s), a real-time bar needs {MIN_JUDGED_ROUNDS} for a noise figure",
                sorted.len()
            )),
        );
    }
    let (lo, hi) = (sorted[0], sorted[sorted.len() - 1]);
    let meets = sorted.iter().filter(|&&v| need.met_by(v)).count();
    let verdict = if meets == sorted.len() {
        Verdict::Met
    } else if meets == 0 {
        Verdict::Missed
    } else {
        let pct = spread_pct(lo, hi, median);
        Verdict::NotJudged(if pct <= 1000.0 {
            format!("noise: rounds {lo:.3}..{hi:.3} ({pct:.0}% of the median) straddle the bar")
        } else {
            format!("noise: rounds {lo:.3}..{hi:.3} straddle the bar")
        })
    };
    (median, verdict)
}

/// A ratio bar is judged only when each side's own rounds spread at most
/// this much (percent of their median); see [`Report::bar_vs`].
pub const MAX_OWN_SPREAD_PCT: f64 = 50.0;

/// The finite values of `rounds`, smallest first.
fn finite_sorted(rounds: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = rounds.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// The spread of a variant's own rounds, percent of their median.
pub fn own_spread_pct(rounds: &[f64]) -> f64 {
    let v = finite_sorted(rounds);
    if v.len() < 2 {
        return 0.0;
    }
    spread_pct(v[0], v[v.len() - 1], v[v.len() / 2])
}

/// The spread `hi - lo` as a percentage of `median`.
pub fn spread_pct(lo: f64, hi: f64, median: f64) -> f64 {
    if median == 0.0 {
        f64::INFINITY
    } else {
        (hi - lo) / median.abs() * 100.0
    }
}

/// A benchmark's report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub bench: String,
    pub machine: String,
    /// When the run ended (UTC, RFC 3339).
    #[serde(default)]
    pub date: String,
    /// How it was run: the command and the `FAIRNIC_*` settings.
    #[serde(default)]
    pub command: String,
    pub notes: Vec<String>,
    pub rows: Vec<Row>,
    /// The bars, each judged (or said why not).
    #[serde(default)]
    pub bars: Vec<Bar>,
}

impl Report {
    pub fn new(bench: &str) -> Report {
        // Online CPUs, not this thread's affinity (benches pin themselves).
        // SAFETY: sysconf reads a system value; no memory involved.
        let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1);
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
            date: String::new(),
            command: command_line(bench),
            notes: Vec::new(),
            rows: Vec::new(),
            bars: Vec::new(),
        }
    }

    /// A row by group and name.
    pub fn row(&self, group: &str, name: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.group == group && r.name == name)
    }

    /// A ratio bar: row `name`'s advantage over `peer` (same group; above 1
    /// is better), taken round by round (the rounds interleave, so each
    /// ratio compares runs made side by side) and judged with
    /// [`judge_rounds`]. A missing peer is reported as not judged.
    pub fn bar_vs(&mut self, group: &str, name: &str, peer: &str, need: Need) {
        self.bar_vs_with(group, name, peer, need, MAX_OWN_SPREAD_PCT);
    }

    /// [`Report::bar_vs`] for a bar closer to 1.0 than the machine's noise
    /// usually allows (a few percent): a verdict stands only when its
    /// margin to the bar is wider than each variant's own spread across
    /// its rounds, whatever that spread; otherwise not judged, with the
    /// spread as the noise figure.
    pub fn bar_vs_tight(&mut self, group: &str, name: &str, peer: &str, need: Need) {
        self.bar_vs_with(group, name, peer, need, 0.0);
    }

    fn bar_vs_with(&mut self, group: &str, name: &str, peer: &str, need: Need, max_own_spread_pct: f64) {
        let what = format!("{name} vs {peer} ({group}), advantage");
        let (Some(r), Some(p)) = (self.row(group, name), self.row(group, peer)) else {
            let why = format!("no peer: `{peer}` was not measured in this run");
            self.bars.push(Bar {
                what,
                value: f64::NAN,
                need,
                verdict: Verdict::NotJudged(why),
            });
            return;
        };
        let ratios: Vec<f64> = r
            .rounds
            .iter()
            .zip(&p.rounds)
            .map(|(&a, &b)| if r.higher_is_better { a / b } else { b / a })
            .collect();
        let (value, mut verdict) = judge_rounds(&ratios, need);
        // A machine whose speed changed by more than half during the run
        // (another tenant's load: a variant's own rounds spread past
        // MAX_OWN_SPREAD_PCT of their median) cannot judge a ratio closer
        // to the bar than that spread: its rounds measured the machine, not
        // the code. A verdict with more margin than the noise stands.
        let sorted = finite_sorted(&ratios);
        let (lo, hi) = match (sorted.first(), sorted.last()) {
            (Some(&lo), Some(&hi)) => (lo, hi),
            _ => (f64::NAN, f64::NAN),
        };
        let margin_pct = match (&verdict, need) {
            (Verdict::Met, Need::AtLeast(b)) => (lo / b - 1.0) * 100.0,
            (Verdict::Met, Need::AtMost(b)) => (1.0 - hi / b) * 100.0,
            (Verdict::Missed, Need::AtLeast(b)) => (1.0 - hi / b) * 100.0,
            (Verdict::Missed, Need::AtMost(b)) => (lo / b - 1.0) * 100.0,
            _ => f64::INFINITY,
        };
        if verdict == Verdict::Missed || verdict == Verdict::Met {
            for row in [r, p] {
                let pct = own_spread_pct(&row.rounds);
                if pct > max_own_spread_pct && margin_pct < pct {
                    let rule = if max_own_spread_pct > 0.0 {
                        format!("judged below {max_own_spread_pct:.0}%, or with a wider margin to the bar")
                    } else {
                        "judged only with a wider margin to the bar".to_string()
                    };
                    verdict = Verdict::NotJudged(format!(
                        "noise: `{}` alone varied {pct:.0}% across its rounds ({rule}: {margin_pct:.0}%)",
                        row.name
                    ));
                    break;
                }
            }
        }
        self.bars.push(Bar {
            what,
            value,
            need,
            verdict,
        });
    }

    /// A bar on a real-time figure measured once per round.
    pub fn bar_rounds(&mut self, what: &str, rounds: &[f64], need: Need) {
        let (value, verdict) = judge_rounds(rounds, need);
        self.bars.push(Bar {
            what: what.into(),
            value,
            need,
            verdict,
        });
    }

    /// A bar on a deterministic figure (a count, or a figure on a virtual
    /// clock): always judged.
    pub fn bar_exact(&mut self, what: &str, value: f64, need: Need) {
        let verdict = if need.met_by(value) {
            Verdict::Met
        } else {
            Verdict::Missed
        };
        self.bars.push(Bar {
            what: what.into(),
            value,
            need,
            verdict,
        });
    }

    /// A bar this run cannot judge, and why.
    pub fn bar_not_judged(&mut self, what: &str, value: f64, need: Need, why: &str) {
        self.bars.push(Bar {
            what: what.into(),
            value,
            need,
            verdict: Verdict::NotJudged(why.into()),
        });
    }

    /// Whether any bar was missed.
    pub fn missed(&self) -> bool {
        self.bars.iter().any(|b| b.verdict == Verdict::Missed)
    }

    /// [`Report::finish`], then exit 1 if a bar was missed (the bench's
    /// verdict for `cargo bench`, CI and `scripts/bench-all`).
    pub fn conclude(mut self) {
        self.finish();
        let missed: Vec<&str> = self
            .bars
            .iter()
            .filter(|b| b.verdict == Verdict::Missed)
            .map(|b| b.what.as_str())
            .collect();
        if !missed.is_empty() {
            eprintln!("{}: bar missed: {}", self.bench, missed.join("; "));
            std::process::exit(1);
        }
        let judged = self.bars.iter().filter(|b| b.verdict == Verdict::Met).count();
        println!(
            "{}: {judged} bar(s) met, {} not judged",
            self.bench,
            self.bars.len() - judged
        );
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
        if !self.bars.is_empty() {
            let _ = writeln!(s, "\n{}", bars_table(&self.bars));
        }
        let _ = writeln!(s, "\nRun: `{}`, {}.", self.command, self.date);
        s
    }

    /// Print the table and write `target/bench-results/<bench>.{json,md}`.
    pub fn finish(&mut self) -> PathBuf {
        self.date = utc_now();
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

/// The bars as a Markdown table.
pub fn bars_table(bars: &[Bar]) -> String {
    let mut s = String::from("| bar | value | needs | verdict |\n|---|---:|---|---|\n");
    for b in bars {
        let verdict = match &b.verdict {
            Verdict::Met => "met".to_string(),
            Verdict::Missed => "**MISSED**".to_string(),
            Verdict::NotJudged(why) => format!("not judged: {why}"),
        };
        let _ = writeln!(s, "| {} | {:.3} | {} | {verdict} |", b.what, b.value, b.need);
    }
    s
}

/// How this bench was run, to quote beside its figures.
fn command_line(bench: &str) -> String {
    let mut env: Vec<String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("FAIRNIC_"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    env.sort();
    let features = if cfg!(feature = "dpdk") { " --features dpdk" } else { "" };
    let cmd = format!("cargo bench -p fairnic-benches{features} --bench {bench}");
    if env.is_empty() {
        cmd
    } else {
        format!("{} {cmd}", env.join(" "))
    }
}

/// Now, UTC, as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, no dependency).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
///
/// With `FAIRNIC_BENCH_ONLY` set, only the variants whose name contains it
/// run (the others measure NaN, and bars that need them are not judged):
/// for profiling one variant, e.g. under `perf record`.
pub fn interleave<F: FnMut() -> f64>(rounds: usize, variants: &mut [(&str, F)]) -> Vec<Vec<f64>> {
    let only = std::env::var("FAIRNIC_BENCH_ONLY").ok();
    let mut out = vec![Vec::with_capacity(rounds); variants.len()];
    for _ in 0..rounds {
        for (i, (name, f)) in variants.iter_mut().enumerate() {
            let run = only.as_deref().is_none_or(|o| name.contains(o));
            out[i].push(if run { f() } else { f64::NAN });
        }
    }
    out
}

/// A variant measured in slices: each call runs one slice and returns the
/// work it did (frames, say) and the seconds it took.
pub type Sliced<'a> = (&'a str, Box<dyn FnMut() -> (u64, f64) + 'a>);

/// Like [`interleave`], but each round runs every variant `slices` times
/// in turn, a slice each, and a variant's value for the round is its work
/// over its summed time, in millions per second. On a shared machine
/// whose speed moves within a second, peers measured in alternating
/// slices of a few milliseconds see the same machine: their per-round
/// ratio is far steadier than that of back-to-back runs.
pub fn interleave_sliced<F: FnMut() -> (u64, f64)>(
    rounds: usize,
    slices: usize,
    variants: &mut [(&str, F)],
) -> Vec<Vec<f64>> {
    let only = std::env::var("FAIRNIC_BENCH_ONLY").ok();
    let run: Vec<bool> = variants
        .iter()
        .map(|(name, _)| only.as_deref().is_none_or(|o| name.contains(o)))
        .collect();
    let mut out = vec![Vec::with_capacity(rounds); variants.len()];
    for _ in 0..rounds {
        let mut sums = vec![(0u64, 0f64); variants.len()];
        for _ in 0..slices.max(1) {
            for (i, (_, f)) in variants.iter_mut().enumerate() {
                if run[i] {
                    let (w, t) = f();
                    sums[i].0 += w;
                    sums[i].1 += t;
                }
            }
        }
        for (i, &(w, t)) in sums.iter().enumerate() {
            out[i].push(if run[i] && t > 0.0 {
                w as f64 / t / 1e6
            } else {
                f64::NAN
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliced_rounds_sum_work_and_time_over_their_slices() {
        let mut calls = [0u32; 2];
        let (c0, c1) = calls.split_at_mut(1);
        let mut variants: Vec<Sliced<'_>> = vec![
            // 2 M a slice, in 1 s and 3 s by turns.
            (
                "a",
                Box::new(|| {
                    c0[0] += 1;
                    (2_000_000, if c0[0] % 2 == 0 { 3.0 } else { 1.0 })
                }),
            ),
            (
                "b",
                Box::new(|| {
                    c1[0] += 1;
                    (1_000_000, 0.5)
                }),
            ),
        ];
        let r = interleave_sliced(2, 4, &mut variants);
        drop(variants);
        assert_eq!(calls, [8, 8], "every variant runs every slice of every round");
        // a: 8 M over 1 + 3 + 1 + 3 s a round; b: 4 M over 2 s.
        assert_eq!(r, vec![vec![1.0, 1.0], vec![2.0, 2.0]]);
    }

    #[test]
    fn a_bar_is_judged_only_when_every_round_agrees() {
        let need = Need::AtLeast(1.0);
        assert_eq!(judge_rounds(&[1.2, 1.1, 1.3], need), (1.2, Verdict::Met));
        assert_eq!(judge_rounds(&[0.9, 0.8, 0.95], need), (0.9, Verdict::Missed));
        let (m, v) = judge_rounds(&[0.9, 1.2, 1.1], need);
        assert_eq!(m, 1.1);
        assert!(matches!(v, Verdict::NotJudged(why) if why.contains("noise") && why.contains("0.900..1.200")));
        // Too few rounds for a noise figure: never "met".
        assert!(matches!(judge_rounds(&[5.0], need).1, Verdict::NotJudged(_)));
        assert!(matches!(judge_rounds(&[], need).1, Verdict::NotJudged(_)));
        assert_eq!(judge_rounds(&[3.0, 2.0, 1.0], Need::AtMost(3.0)).1, Verdict::Met);
    }

    #[test]
    fn ratio_bars_compare_round_by_round_and_a_missing_peer_is_said() {
        let mut r = Report::new("t");
        r.add("g", "ours", "Mpps", true, vec![10.0, 12.0, 11.0]);
        r.add("g", "peer", "Mpps", true, vec![5.0, 12.0, 5.5]);
        r.add("c", "ours", "ns", false, vec![2.0, 2.0, 2.0]);
        r.add("c", "peer", "ns", false, vec![4.0, 4.0, 5.0]);
        r.bar_vs("g", "ours", "peer", Need::AtLeast(1.5));
        r.bar_vs("c", "ours", "peer", Need::AtLeast(1.5));
        r.bar_vs("c", "ours", "absent", Need::AtLeast(1.5));
        r.bar_exact("mismatches", 1.0, Need::AtMost(0.0));
        // Round 2's ratio is 1.0: the medians alone (11 vs 5.5 = 2x) would
        // have said met.
        assert!(matches!(r.bars[0].verdict, Verdict::NotJudged(_)));
        assert_eq!(r.bars[1].verdict, Verdict::Met);
        assert_eq!(r.bars[1].value, 2.0);
        assert!(matches!(&r.bars[2].verdict, Verdict::NotJudged(w) if w.contains("absent")));
        assert_eq!(r.bars[3].verdict, Verdict::Missed);
        assert!(r.missed());
        assert!(bars_table(&r.bars).contains("**MISSED**"));
    }

    #[test]
    fn a_ratio_is_not_judged_when_a_side_alone_varied_by_half() {
        let mut r = Report::new("t");
        // Every round's ratio is below the bar, but the peer alone went
        // from 0.5 to 1.4 (a machine that changed speed): not judged.
        r.add("g", "ours", "Mpps", true, vec![3.0, 3.1, 3.2]);
        r.add("g", "peer", "Mpps", true, vec![0.5, 1.4, 1.0]);
        r.add("g", "steady", "Mpps", true, vec![4.0, 4.2, 4.1]);
        r.bar_vs("g", "peer", "ours", Need::AtLeast(0.85));
        r.bar_vs("g", "ours", "steady", Need::AtLeast(0.85));
        assert!(matches!(&r.bars[0].verdict, Verdict::NotJudged(w) if w.contains("`peer` alone varied")));
        assert_eq!(r.bars[1].verdict, Verdict::Missed, "steady sides are judged");
        assert!(own_spread_pct(&[4.0, 4.2, 4.1]) < MAX_OWN_SPREAD_PCT);
        // Far past the bar, every round: the noise cannot have made it.
        r.add("g", "fast", "Mpps", true, vec![15.0, 30.0, 25.0]);
        r.bar_vs("g", "fast", "ours", Need::AtLeast(1.0));
        assert_eq!(r.bars[2].verdict, Verdict::Met, "5x or more with 60% noise");
    }

    #[test]
    fn a_tight_ratio_bar_is_judged_only_past_the_sides_own_spread() {
        let mut r = Report::new("t");
        // Every round 3-8% under a 0.98x bar, but each side alone varied
        // about 10%: the miss is inside the noise.
        r.add("g", "scraped", "Mpps", true, vec![3.0, 3.2, 3.1]);
        r.add("g", "plain", "Mpps", true, vec![3.2, 3.4, 3.3]);
        r.bar_vs_tight("g", "scraped", "plain", Need::AtLeast(0.98));
        assert!(matches!(&r.bars[0].verdict, Verdict::NotJudged(w) if w.contains("alone varied")));
        // Steady sides 10% apart: a miss wider than the noise stands.
        r.add("g", "slow", "Mpps", true, vec![3.00, 3.01, 3.02]);
        r.add("g", "steady", "Mpps", true, vec![3.33, 3.34, 3.35]);
        r.bar_vs_tight("g", "slow", "steady", Need::AtLeast(0.98));
        assert_eq!(r.bars[1].verdict, Verdict::Missed);
        // ... and so does a meet.
        r.bar_vs_tight("g", "steady", "slow", Need::AtLeast(0.98));
        assert_eq!(r.bars[2].verdict, Verdict::Met);
    }

    #[test]
    fn utc_dates_are_civil() {
        let s = utc_now();
        assert_eq!(s.len(), 20, "{s}");
        assert!(s.starts_with("20") && s.ends_with('Z'), "{s}");
    }
}
