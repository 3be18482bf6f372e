//! `nicctl events`: what the device reported to the PF.

use super::{json_line, unexpected, Ctx, Failure};
use crate::proto::{Answer, Request};
use std::io::Write;

/// `nicctl events`: every event from `from` on, asked for in pages.
pub(super) fn run(ctx: &Ctx, from: Option<u64>, out: &mut dyn Write) -> Result<(), Failure> {
    let mut at = from;
    let mut shown = 0usize;
    // The device keeps 1024 events: a few pages; a driver that keeps
    // answering is cut off rather than followed forever.
    for _ in 0..64 {
        let (rows, next) = match (ctx.call)(&Request::Events { from: at })? {
            Answer::Events { events, next } => (events, next),
            other => return Err(unexpected(&other)),
        };
        if ctx.json {
            json_line(
                out,
                &Answer::Events {
                    events: rows.clone(),
                    next,
                },
            )?;
        } else {
            for e in &rows {
                if let (Some(want), true) = (at, shown == 0) {
                    if e.seq > want {
                        writeln!(
                            out,
                            "({} events before {} are gone: the device keeps only its latest)",
                            e.seq - want,
                            e.seq
                        )?;
                    }
                }
                writeln!(
                    out,
                    "{:>6}  {:>10.3} s  {}",
                    e.seq,
                    e.device_clock_ns as f64 / 1e9,
                    e.text
                )?;
                shown += 1;
            }
        }
        let done = rows.is_empty() || at == Some(next);
        at = Some(next);
        if done {
            break;
        }
    }
    if !ctx.json {
        if shown == 0 {
            writeln!(out, "no events")?;
        }
        writeln!(
            out,
            "next: {} (nicctl events --from {} shows only newer ones)",
            at.unwrap_or(0),
            at.unwrap_or(0)
        )?;
    }
    Ok(())
}
