//! `nicctl vf`: what the PF decides for a VF's LIF slots.

use super::{json_line, unexpected, Ctx, Failure};
use crate::proto::{Answer, Request};
use clap::{Subcommand, ValueEnum};
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum OnOff {
    On,
    Off,
}

#[derive(Debug, Subcommand)]
pub(super) enum VfCmd {
    /// A VF's slots (or the PF's, with --pf).
    Show {
        /// The VF number (0 for the first VF).
        vf: Option<u16>,
        /// The PF's own slots.
        #[arg(long, conflicts_with = "vf")]
        pf: bool,
        /// One slot (default: every slot).
        #[arg(long)]
        slot: Option<u16>,
    },
    /// Change a VF's slot: the options given change, the others stay.
    Set {
        /// The VF number (0 for the first VF).
        vf: u16,
        /// The LIF slot (a VF's LIFs take slots 0, 1, ... in order).
        #[arg(long, default_value_t = 0)]
        slot: u16,
        /// The MAC the slot's next LIF gets (unicast), or `none` for the
        /// device's own.
        #[arg(long)]
        mac: Option<String>,
        /// Drop frames the LIF sends from another source MAC.
        #[arg(long, value_enum)]
        spoofchk: Option<OnOff>,
        /// Let the VF choose its LIF's MAC itself.
        #[arg(long, value_enum)]
        trust: Option<OnOff>,
    },
}

/// Run `nicctl vf ...`.
pub(super) fn run(ctx: &Ctx, cmd: &VfCmd, out: &mut dyn Write) -> Result<(), Failure> {
    let (function, slot) = match cmd {
        VfCmd::Show { vf, pf, slot } => {
            let function = match (vf, pf) {
                (Some(v), _) => v.checked_add(1).ok_or_else(|| Failure::Usage(format!("no VF {v}")))?,
                (None, true) => 0,
                (None, false) => return Err(Failure::Usage("name a VF (nicctl vf show 0) or --pf".into())),
            };
            (function, *slot)
        }
        VfCmd::Set {
            vf,
            slot,
            mac,
            spoofchk,
            trust,
        } => {
            let function = vf.checked_add(1).ok_or_else(|| Failure::Usage(format!("no VF {vf}")))?;
            let mut cur = match (ctx.call)(&Request::SlotGet {
                function,
                slot: Some(*slot),
            })? {
                Answer::Slots { slots } if slots.len() == 1 => slots[0].clone(),
                other => return Err(unexpected(&other)),
            };
            match mac.as_deref() {
                Some("none") => cur.mac = None,
                Some(m) => cur.mac = Some(m.to_string()),
                None => {}
            }
            if let Some(v) = spoofchk {
                cur.spoof_check = *v == OnOff::On;
            }
            if let Some(v) = trust {
                cur.trust = *v == OnOff::On;
            }
            (ctx.call)(&Request::SlotSet { settings: cur })?;
            (function, Some(*slot))
        }
    };
    let a = (ctx.call)(&Request::SlotGet { function, slot })?;
    if ctx.json {
        return json_line(out, &a);
    }
    let Answer::Slots { slots } = a else {
        return Err(unexpected(&a));
    };
    writeln!(
        out,
        "{:>8} {:>5}  {:<18} {:>9} {:>6}",
        "function", "slot", "mac", "spoofchk", "trust"
    )?;
    for s in slots {
        let who = if s.function == 0 {
            "pf".to_string()
        } else {
            format!("vf {}", s.function - 1)
        };
        let onoff = |b: bool| if b { "on" } else { "off" };
        writeln!(
            out,
            "{who:>8} {:>5}  {:<18} {:>9} {:>6}",
            s.slot,
            s.mac.as_deref().unwrap_or("(device's)"),
            onoff(s.spoof_check),
            onoff(s.trust)
        )?;
    }
    Ok(())
}
