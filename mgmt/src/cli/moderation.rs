//! `nicctl moderation` (alias `coalesce`): a vector's interrupt
//! moderation, shown and set.

use super::{json_line, unexpected, AbiArg, Ctx, Failure};
use crate::proto::{Answer, ModerationMode, ModerationSettings, Request};
use clap::Subcommand;
use std::io::Write;

#[derive(Debug, Subcommand)]
pub(super) enum ModerationCmd {
    /// A vector's moderation as the device applied it.
    Show {
        /// PCI function (0: the PF, n: VF n-1 as the device numbers them).
        #[arg(long)]
        function: u16,
        #[arg(long)]
        vector: u16,
    },
    /// Set a vector's moderation; unnamed fields keep their current value.
    Set {
        #[arg(long)]
        function: u16,
        #[arg(long)]
        vector: u16,
        #[arg(long, value_parser = AbiArg::<ModerationMode>::new())]
        mode: Option<ModerationMode>,
        /// Interval while the consumer is active, microseconds.
        #[arg(long)]
        latency_us: Option<u32>,
        /// Interval while the consumer is inactive, microseconds.
        #[arg(long)]
        overflow_us: Option<u32>,
        /// Interrupt after this many frames.
        #[arg(long)]
        frames: Option<u32>,
        /// Immediate interrupt at this ring fill, percent.
        #[arg(long)]
        high_watermark: Option<u8>,
    },
}

/// Run `nicctl moderation ...`.
pub(super) fn run(ctx: &Ctx, cmd: &ModerationCmd, out: &mut dyn Write) -> Result<(), Failure> {
    match *cmd {
        ModerationCmd::Show { function, vector } => {
            let a = (ctx.call)(&Request::ModerationGet { function, vector })?;
            if ctx.json {
                return json_line(out, &a);
            }
            write_moderation(out, &a)
        }
        ModerationCmd::Set {
            function,
            vector,
            mode,
            latency_us,
            overflow_us,
            frames,
            high_watermark,
        } => {
            if high_watermark.is_some_and(|p| p > 100) {
                return Err(Failure::Usage("--high-watermark is a percentage: 0..=100".into()));
            }
            let cur = match (ctx.call)(&Request::ModerationGet { function, vector })? {
                Answer::Moderation { moderation, .. } => moderation,
                other => return Err(unexpected(&other)),
            };
            let moderation = ModerationSettings {
                mode: mode.unwrap_or(cur.mode),
                latency_interval_us: latency_us.unwrap_or(cur.latency_interval_us),
                overflow_interval_us: overflow_us.unwrap_or(cur.overflow_interval_us),
                frame_threshold: frames.unwrap_or(cur.frame_threshold),
                high_watermark_pct: high_watermark.unwrap_or(cur.high_watermark_pct),
            };
            let a = (ctx.call)(&Request::ModerationSet {
                function,
                vector,
                moderation,
            })?;
            if ctx.json {
                return json_line(out, &a);
            }
            write!(out, "applied: ")?;
            write_moderation(out, &a)
        }
    }
}

fn write_moderation(out: &mut dyn Write, a: &Answer) -> Result<(), Failure> {
    let Answer::Moderation {
        function,
        vector,
        moderation: m,
    } = a
    else {
        return Err(unexpected(a));
    };
    writeln!(
        out,
        "function {function} vector {vector}: {}, latency {} us, overflow {} us, {} frames, high watermark {}%",
        m.mode, m.latency_interval_us, m.overflow_interval_us, m.frame_threshold, m.high_watermark_pct
    )?;
    Ok(())
}
