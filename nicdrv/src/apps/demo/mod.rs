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
//!
//! The code follows the demo's phases: [`run`] checks the configuration,
//! the operator sets phase 1 up (`operator`), the generator runs with an
//! observer that reads the counters, draws the table and makes the change
//! at half time (`observe`), and the report compares the phases
//! (`report`).

mod observe;
mod operator;
mod report;

pub use operator::Command;
pub use report::{DemoReport, LifFigures, Marks, Phase, Tick};

use super::gen::{self, GenConfig, PortTraffic};
use super::{AppError, Ports};
use observe::{Lifs, Observer};
use operator::Operator;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
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

/// Run the demo on `ports` (at least two; the last is the aggressor),
/// with nicdrv's control socket at `cfg.control` serving the PF;
/// `publish` receives the generator's every interval (per-LIF figures for
/// `nicctl stats`, latencies and ring occupancy for `/metrics`).
pub fn run(
    ports: &mut Ports,
    cfg: &DemoConfig,
    stop: &AtomicBool,
    publish: &mut dyn FnMut(&gen::Interval<'_>),
) -> Result<DemoReport, AppError> {
    check(ports, cfg)?;
    let n = ports.ports.len();
    let roles: Vec<Role> = (0..n)
        .map(|i| if i + 1 == n { Role::Aggressor } else { Role::Victim })
        .collect();
    let traffic = traffic(&roles, cfg);
    let lifs = Lifs {
        ids: ports.ports.iter().map(|p| p.lif.id).collect(),
        offered: traffic.iter().map(|t| t.rate_pps).collect(),
        roles,
        handles: ports.ports.iter().map(|p| ports.nics[p.nic].clone()).collect(),
    };
    let mut operator = Operator::new(cfg);
    operator.set_up(ports, cfg, &lifs.ids)?;
    let gcfg = GenConfig {
        rate_pps: cfg.victim_pps,
        ports: traffic,
        sizes: vec![(64, 1)],
        flows: gen::Flows::Ring,
        duration: cfg.duration,
        stats_interval: cfg.stats_interval,
        burst: cfg.burst,
        seed: cfg.seed,
        live: false,
    };
    let mut observer = Observer::new(cfg, &lifs, &mut operator, publish)?;
    if cfg.live {
        println!(
            "\nfairness demo: {} victims at {} kpps each, aggressor LIF {} (every frame {} pipeline passes), \
             pipeline {:.1} Munits/s; meter change at {:.1} s",
            n - 1,
            cfg.victim_pps / 1000,
            lifs.aggressor(),
            u32::from(cfg.passes) + 1,
            cfg.capacity as f64 / 1e6,
            (cfg.duration / 2).as_secs_f64()
        );
    }
    let gen_report = gen::run(ports, &gcfg, stop, &mut |iv| observer.observe(iv))?;
    if let Some(e) = observer.failure.take() {
        return Err(e);
    }
    let phases = report::phases(
        &observer.accs,
        &lifs,
        cfg.capacity,
        observer.fair_share,
        observer.phase_start,
        observer.change_at,
        gen_report.seconds,
    );
    let timeline = std::mem::take(&mut observer.timeline);
    drop(observer);
    let victims = |p: &Phase| -> f64 { p.lifs.iter().filter(|l| l.role == Role::Victim).map(|l| l.tx_pps).sum() };
    let victim_tx_ratio = match &phases[..] {
        [a, b] => Some(victims(b) / victims(a).max(1e-9)),
        _ => None,
    };
    Ok(DemoReport {
        app: "demo",
        capacity_units_per_s: cfg.capacity,
        victim_pps: cfg.victim_pps,
        aggressor_lif: lifs.aggressor(),
        aggressor_units_per_frame_ratio: cfg.passes + 1,
        commands: operator.commands,
        timeline,
        phases,
        victim_tx_ratio,
        gen: gen_report,
    })
}

/// Refuse a demo that cannot show anything: too few LIFs, passes out of
/// range, no capacity or victim rate, or too short for a second phase.
fn check(ports: &Ports, cfg: &DemoConfig) -> Result<(), AppError> {
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
    Ok(())
}

/// What each port offers: a victim its rate to the next port's LIF, the
/// aggressor all its ring takes, to the MAC the table recirculates.
fn traffic(roles: &[Role], cfg: &DemoConfig) -> Vec<PortTraffic> {
    roles
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
        .collect()
}
