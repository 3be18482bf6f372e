//! Gather every benchmark's report (`target/bench-results/<bench>.json`)
//! into one table and one JSON (`summary.md`, `summary.json`): each row's
//! median and, where a peer was measured in the same run, its ratio,
//! the bench's notes and its bars.
//! `scripts/bench-all` runs the benchmarks, then this.

use fairnic_benches::{bars_table, utc_now, Report, Verdict};
use std::fmt::Write as _;
use std::path::PathBuf;

/// The benchmarks, in the order the summary lists them.
const BENCHES: [&str; 7] = [
    "ring",
    "meter",
    "pipeline",
    "moderation",
    "fairness",
    "e2e",
    "p4runtime",
];

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-results");
    let mut md = format!(
        "# fairnic benchmarks\n\nGathered {} by `scripts/bench-all` (each bench's own command, date and machine below; \
         every ratio compares runs made side by side in the same process).\n\n",
        utc_now()
    );
    let mut missed = Vec::new();
    let mut all = Vec::new();
    let mut missing = Vec::new();
    for b in BENCHES {
        let path = dir.join(format!("{b}.json"));
        let report: Report = match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))
        {
            Ok(r) => r,
            Err(e) => {
                missing.push(format!("{b} ({}: {e})", path.display()));
                continue;
            }
        };
        let _ = writeln!(md, "## {}\n", report.bench);
        let _ = writeln!(md, "`{}` on {}, {}.\n", report.command, report.machine, report.date);
        let _ = writeln!(md, "| group | variant | median | unit | vs peer |");
        let _ = writeln!(md, "|---|---|---:|---|---|");
        for r in &report.rows {
            let vs: Vec<String> = r.vs.iter().map(|v| format!("{:.2}x {}", v.advantage, v.peer)).collect();
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} | {} | {} |",
                r.group,
                r.name,
                r.median,
                r.unit,
                vs.join(", ")
            );
        }
        md.push('\n');
        // The bench's own notes: its settings and the tables beside the
        // rows (per-load latency, per-scenario shares).
        for n in &report.notes {
            md.push_str(n.trim_end());
            md.push_str("\n\n");
        }
        if !report.bars.is_empty() {
            md.push_str(&bars_table(&report.bars));
            md.push('\n');
        }
        missed.extend(
            report
                .bars
                .iter()
                .filter(|b| b.verdict == Verdict::Missed)
                .map(|b| format!("{}: {}", report.bench, b.what)),
        );
        all.push(report);
    }
    if !missing.is_empty() {
        let _ = writeln!(md, "Missing: {}", missing.join("; "));
    }
    print!("{md}");
    std::fs::create_dir_all(&dir).expect("results directory");
    std::fs::write(dir.join("summary.md"), &md).expect("write summary.md");
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(&all).expect("reports serialise"),
    )
    .expect("write summary.json");
    println!("summary: {}", dir.join("summary.json").display());
    if !missed.is_empty() {
        eprintln!("bench-summary: bars missed: {}", missed.join("; "));
    }
    if !missing.is_empty() || !missed.is_empty() {
        std::process::exit(1);
    }
}
