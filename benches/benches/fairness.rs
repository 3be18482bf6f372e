//! Fairness benchmark: three victims and one aggressor (10x a victim's
//! packet rate, 4x the pipeline cost per packet) share the simulated
//! device, with meters off, cost DRR alone, and meters on; each victim also
//! runs alone. Reports Jain's index over consumed cost, each victim's p99
//! latency against its solo run, utilisation, and conservation, and checks
//! the bar of the fairness issue. Virtual time: the figures describe the
//! device model, not this machine, and are the same on every run of a
//! seed.
//!
//! `cargo bench -p fairnic-benches --bench fairness`;
//! `FAIRNIC_FAIRNESS_MS` sets the measured window (default 20 ms).

use fairnic_benches::fairness::{Comparison, Scenario, Setting};
use fairnic_benches::Report;
use std::time::Instant;

fn main() {
    let mut sc = Scenario::standard();
    if let Some(ms) = std::env::var("FAIRNIC_FAIRNESS_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        sc.measure_ns = ms.max(1) * 1_000_000;
        sc.warmup_ns = sc.warmup_ns.min(sc.measure_ns / 2);
    }
    if let Some(q) = std::env::var("FAIRNIC_FAIRNESS_QUANTUM")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        sc.quantum = q.max(1);
    }
    let t0 = Instant::now();
    let c = match Comparison::run(&sc) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fairness: {e}");
            std::process::exit(1);
        }
    };
    // The first millisecond, warm-up included: the aggressor spends its
    // initial burst (cburst) within its meter, as configured.
    let first_ms = Scenario {
        warmup_ns: 0,
        measure_ns: 1_000_000,
        ..sc.clone()
    };
    let transient = fairnic_benches::fairness::run(&first_ms, Setting::On, fairnic_benches::fairness::Who::All);
    let wall = t0.elapsed();
    let mut report = Report::new("fairness");
    for r in [&c.off, &c.cost_drr, &c.on] {
        let g = "fairness";
        report.add(g, &format!("Jain, {}", r.setting.name()), "index", true, vec![r.jain]);
        report.add(
            g,
            &format!("utilisation, {}", r.setting.name()),
            "of capacity",
            true,
            vec![r.utilisation],
        );
        for (i, t) in r.tenants.iter().enumerate().filter(|(_, t)| !t.aggressor) {
            report.add(
                "victim p99 / solo p99",
                &format!("{}, {}", t.name, r.setting.name()),
                "ratio",
                false,
                vec![c.p99_ratio(r, i)],
            );
        }
    }
    report.compare(
        "fairness",
        &format!("Jain, {}", Setting::On.name()),
        &format!("Jain, {}", Setting::Off.name()),
    );
    report.compare(
        "fairness",
        &format!("utilisation, {}", Setting::On.name()),
        &format!("utilisation, {}", Setting::Off.name()),
    );
    let table = c.table();
    report.notes.push(table);
    match transient {
        Ok(r) => {
            let p99: Vec<String> = r
                .tenants
                .iter()
                .enumerate()
                .filter(|(_, t)| !t.aggressor)
                .map(|(i, t)| {
                    format!(
                        "{} {:.2} us ({:.2}x solo)",
                        t.name,
                        t.p99_ns as f64 / 1e3,
                        c.p99_ratio(&r, i)
                    )
                })
                .collect();
            report.notes.push(format!(
                "First 1 ms with meters on (no warm-up: the aggressor starts with a full {}-unit bucket): Jain {:.3}, victim p99 {}",
                sc.cburst,
                r.jain,
                p99.join(", ")
            ));
        }
        Err(e) => report.notes.push(format!("first-millisecond run failed: {e}")),
    }
    report.notes.push(format!(
        "simulated {} runs in {:.1} s of wall time",
        3 + c.solo.len(),
        wall.as_secs_f64()
    ));
    for k in c.checks() {
        report.bar_exact(&k.what, k.value, k.bar);
    }
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-results");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("fairness-runs.json"),
        serde_json::to_string_pretty(&c).expect("serialises"),
    );
    report.conclude();
}
