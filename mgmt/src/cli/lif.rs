//! `nicctl hello` and `nicctl lif`: who the driver is, and the LIFs it
//! sees.

use super::{json_line, Ctx, Failure};
use crate::proto::{Answer, Request};
use clap::Subcommand;
use std::io::Write;

#[derive(Debug, Subcommand)]
pub(super) enum LifCmd {
    /// Every LIF the driver sees.
    List,
}

/// Run `nicctl hello`.
pub(super) fn hello(ctx: &Ctx, out: &mut dyn Write) -> Result<(), Failure> {
    let a = (ctx.call)(&Request::Hello)?;
    if ctx.json {
        return json_line(out, &a);
    }
    if let Answer::Hello(h) = a {
        writeln!(out, "{} (protocol {}), running {}", h.driver, h.protocol, h.app)?;
        writeln!(
            out,
            "device granularity: meter rates {} unit/s, bursts {} unit, moderation {} ns",
            h.meter_rate_granularity, h.meter_burst_granularity, h.moderation_granularity_ns
        )?;
        for f in h.functions {
            writeln!(out, "  {f}")?;
        }
    }
    Ok(())
}

/// Run `nicctl lif ...`.
pub(super) fn run(ctx: &Ctx, cmd: &LifCmd, out: &mut dyn Write) -> Result<(), Failure> {
    let LifCmd::List = cmd;
    let a = (ctx.call)(&Request::LifList)?;
    if ctx.json {
        return json_line(out, &a);
    }
    if let Answer::Lifs { lifs } = a {
        writeln!(
            out,
            "{:>5} {:>8} {:<16} {:<17} {:<5} {:>3} {:>3}",
            "lif", "function", "name", "mac", "state", "txq", "rxq"
        )?;
        for l in lifs {
            writeln!(
                out,
                "{:>5} {:>8} {:<16} {:<17} {:<5} {:>3} {:>3}",
                l.lif, l.function, l.name, l.mac, l.state, l.txq, l.rxq
            )?;
        }
    }
    Ok(())
}
