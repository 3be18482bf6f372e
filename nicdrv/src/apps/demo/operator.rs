//! The operator: every change the demo makes goes through `nicctl`
//! against nicdrv's control socket, printed as the command line to
//! repeat by hand, and kept with its answer for the report.

use super::super::{AppError, Mode, Ports};
use super::{DemoConfig, AGGRESSOR_MAC, BURST_UNITS};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A nicctl command the demo ran, and what it answered.
#[derive(Debug, Clone, Serialize)]
pub struct Command {
    pub at_s: f64,
    pub line: String,
    pub output: String,
}

/// Runs nicctl in-process against the control socket and keeps what it
/// ran.
pub(super) struct Operator {
    control: PathBuf,
    /// When the demo started (the commands' times are from here).
    t0: Instant,
    /// Print each command line as it runs.
    live: bool,
    pub(super) commands: Vec<Command>,
}

impl Operator {
    /// An operator of the control socket `cfg.control`, from now on.
    pub(super) fn new(cfg: &DemoConfig) -> Operator {
        Operator {
            control: cfg.control.clone(),
            t0: Instant::now(),
            live: cfg.live,
            commands: Vec::new(),
        }
    }

    /// Run `nicctl ARGS` (printed first when live); its output is kept,
    /// its error is the demo's.
    pub(super) fn nicctl(&mut self, args: Vec<String>) -> Result<(), AppError> {
        let line = format!("nicctl {}", args.join(" "));
        if self.live {
            println!("$ {line}");
        }
        let output = run_nicctl(&self.control, &args).map_err(|e| AppError::Config(format!("{line}: {e}")))?;
        self.commands.push(Command {
            at_s: self.t0.elapsed().as_secs_f64(),
            line,
            output,
        });
        Ok(())
    }

    /// Phase 1 as the operator sets it up: the table entry that sends the
    /// aggressor's frames round `passes` extra times to the first port's
    /// LIF, every LIF's cost meter at the whole pipeline, and in interrupt
    /// mode adaptive moderation on every vector an RX queue uses.
    pub(super) fn set_up(&mut self, ports: &Ports, cfg: &DemoConfig, lif_ids: &[u16]) -> Result<(), AppError> {
        // The aggressor's frames: recirculated `passes` times on their way to
        // the first port's LIF.
        self.nicctl(vec![
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
        ])
        .map_err(|e| {
            AppError::Config(format!(
                "{e}\n(the demo needs the fairnic pipeline loaded: --pipeline fairnic)"
            ))
        })?;
        // Phase 1: every LIF may use the whole pipeline.
        for &lif in lif_ids {
            self.nicctl(cost_meter(lif, cfg.capacity))?;
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
                self.nicctl(vec![
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
                ])?;
            }
        }
        Ok(())
    }
}

/// `nicctl meter set` of `lif`'s cost meter at `units` per second
/// (`deprioritize`).
pub(super) fn cost_meter(lif: u16, units: u64) -> Vec<String> {
    vec![
        s("meter"),
        s("set"),
        s("--lif"),
        lif.to_string(),
        s("--resource"),
        s("cost"),
        s("--cir"),
        format!("{units}units/s"),
        s("--cburst"),
        format!("{BURST_UNITS}units"),
        s("--policy"),
        s("deprioritize"),
    ]
}

fn s(x: &str) -> String {
    x.to_string()
}

/// nicctl, in this process, against `control`: its output, or its error.
fn run_nicctl(control: &Path, args: &[String]) -> Result<String, String> {
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
