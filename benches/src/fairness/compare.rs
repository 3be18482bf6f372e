//! The comparison the fairness benchmark and its test judge: every
//! setting run on one scenario, the checks, the table.

use super::*;
use crate::Need;

/// Every run the benchmark and its test compare.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub scenario: Scenario,
    pub off: RunResult,
    pub cost_drr: RunResult,
    pub on: RunResult,
    /// Each victim alone, meters on.
    pub solo: Vec<RunResult>,
}

/// One line of the bar: what, the figure, the bar, met? Virtual time: each
/// is a deterministic figure of the seed, judged in every run.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub what: String,
    pub value: f64,
    pub bar: crate::Need,
    pub met: bool,
}

impl Check {
    fn new(what: String, value: f64, bar: crate::Need) -> Check {
        Check {
            what,
            value,
            bar,
            met: bar.met_by(value),
        }
    }
}

impl Comparison {
    pub fn run(sc: &Scenario) -> Result<Comparison, String> {
        let solo = (0..sc.victims)
            .map(|i| run(sc, Setting::On, Who::Solo(i)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Comparison {
            scenario: sc.clone(),
            off: run(sc, Setting::Off, Who::All)?,
            cost_drr: run(sc, Setting::CostDrr, Who::All)?,
            on: run(sc, Setting::On, Who::All)?,
            solo,
        })
    }

    /// Victim `i`'s p99 in `r` over its solo p99.
    pub fn p99_ratio(&self, r: &RunResult, i: usize) -> f64 {
        r.tenants[i].p99_ns as f64 / self.solo[i].tenants[i].p99_ns.max(1) as f64
    }

    /// The bar, checked against the meters-on run.
    pub fn checks(&self) -> Vec<Check> {
        let on = &self.on;
        let mut v = vec![
            Check::new(
                "Jain's index over consumed cost, meters on".into(),
                on.jain,
                Need::AtLeast(0.98),
            ),
            Check::new(
                "utilisation, meters on / meters off".into(),
                on.utilisation / self.off.utilisation,
                Need::AtLeast(0.95),
            ),
        ];
        for i in 0..self.scenario.victims {
            let r = self.p99_ratio(on, i);
            v.push(Check::new(
                format!("victim{i} p99 latency, meters on / solo"),
                r,
                Need::AtMost(1.5),
            ));
        }
        for r in [&self.off, &self.cost_drr, &self.on].into_iter().chain(&self.solo) {
            v.push(Check::new(
                format!("unaccounted packets, {} {:?}", r.setting.name(), r.who),
                r.unaccounted as f64,
                Need::AtMost(0.0),
            ));
        }
        v
    }

    /// A Markdown report of every run.
    pub fn table(&self) -> String {
        let sc = &self.scenario;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Pipeline {} M units/s, transit {} us; {} victims at {:.2} of capacity each ({} B UDP, {} units/pkt); \
             aggressor at {}x a victim's packet rate, {}x the cost per packet; window {} ms after {} ms warm-up.\n",
            sc.capacity / 1_000_000,
            sc.transit_ns as f64 / 1000.0,
            sc.victims,
            sc.victim_load,
            sc.frame_len,
            sc.unit_cost(),
            sc.aggressor_rate_x,
            1 + sc.aggressor_passes,
            sc.measure_ns as f64 / 1e6,
            sc.warmup_ns as f64 / 1e6,
        );
        let _ = writeln!(
            s,
            "| setting | Jain (cost) | Jain / max-min | utilisation | tenant | share | fair share | p50 us | p99 us | p99 / solo | refused | green/yellow/red | misordered | unaccounted |"
        );
        let _ = writeln!(
            s,
            "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"
        );
        for r in [&self.off, &self.cost_drr, &self.on].into_iter().chain(&self.solo) {
            let label = match r.who {
                Who::All => r.setting.name().to_string(),
                Who::Solo(i) => format!("victim{i} solo"),
            };
            for (i, t) in r.tenants.iter().enumerate().filter(|(_, t)| t.demand > 0.0) {
                let ratio = if !t.aggressor && r.who == Who::All {
                    format!("{:.2}", self.p99_ratio(r, i))
                } else {
                    "-".into()
                };
                let _ = writeln!(
                    s,
                    "| {label} | {:.3} | {:.3} | {:.3} | {} | {:.3} | {:.3} | {:.2} | {:.2} | {ratio} | {} | {}/{}/{} | {} | {} |",
                    r.jain,
                    r.jain_normalized,
                    r.utilisation,
                    t.name,
                    t.share,
                    t.fair_share,
                    t.p50_ns as f64 / 1000.0,
                    t.p99_ns as f64 / 1000.0,
                    t.refused,
                    t.colors[0],
                    t.colors[1],
                    t.colors[2],
                    t.misordered,
                    r.unaccounted,
                );
            }
        }
        s
    }
}
