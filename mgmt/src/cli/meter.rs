//! `nicctl meter`: a LIF's meters, shown and set through the PF.

use super::{json_line, AbiArg, Ctx, Failure};
use crate::proto::{Answer, Meter, MeterMode, MeterPolicy, MeterResource, Request};
use crate::units::{self, Kind};
use clap::{Args, Subcommand};
use std::io::Write;

#[derive(Debug, Subcommand)]
pub(super) enum MeterCmd {
    /// A LIF's meters as the device applied them.
    Show {
        #[arg(long)]
        lif: u16,
        /// One resource (default: all).
        #[arg(long, value_parser = AbiArg::<MeterResource>::new())]
        resource: Option<MeterResource>,
    },
    /// Configure a LIF's meter (through the PF).
    Set(MeterSetArgs),
}

#[derive(Debug, Args)]
pub(super) struct MeterSetArgs {
    #[arg(long)]
    lif: u16,
    #[arg(long, value_parser = AbiArg::<MeterResource>::new())]
    resource: MeterResource,
    /// srtcm (RFC 2697: cir, cburst, eburst) or trtcm (RFC 2698: cir,
    /// cburst, pir, pburst); default trtcm when --pir is given, else srtcm.
    #[arg(long, value_parser = AbiArg::<MeterMode>::new())]
    mode: Option<MeterMode>,
    /// What a red meter does to the LIF.
    #[arg(long, value_parser = AbiArg::<MeterPolicy>::new(), default_value = "backpressure")]
    policy: MeterPolicy,
    /// Committed rate, e.g. 2Gbit/s, 250MB/s, 1.5Mpps, 50Munits/s.
    #[arg(long)]
    cir: Option<String>,
    /// Committed burst, e.g. 64KiB, 32pkt, 4096units.
    #[arg(long)]
    cburst: Option<String>,
    /// Peak rate (trtcm).
    #[arg(long)]
    pir: Option<String>,
    /// Peak burst (trtcm).
    #[arg(long)]
    pburst: Option<String>,
    /// Excess burst (srtcm).
    #[arg(long)]
    eburst: Option<String>,
}

/// Run `nicctl meter ...`.
pub(super) fn run(ctx: &Ctx, cmd: &MeterCmd, out: &mut dyn Write) -> Result<(), Failure> {
    match cmd {
        MeterCmd::Show { lif, resource } => {
            let which: Vec<MeterResource> = match resource {
                Some(r) => vec![*r],
                None => MeterResource::ALL.to_vec(),
            };
            for r in which {
                let a = (ctx.call)(&Request::MeterGet { lif: *lif, resource: r })?;
                if ctx.json {
                    json_line(out, &a)?;
                } else if let Answer::Meter { lif, meter } = a {
                    write_meter(out, lif, &meter)?;
                }
            }
            Ok(())
        }
        MeterCmd::Set(a) => set(ctx, a, out),
    }
}

/// `nicctl meter set`: what was applied, and a note for each value the
/// device rounded.
fn set(ctx: &Ctx, a: &MeterSetArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let (meter, asked) = meter_from_args(a)?;
    let ans = (ctx.call)(&Request::MeterSet { lif: a.lif, meter })?;
    if ctx.json {
        return json_line(out, &ans);
    }
    let Answer::Meter { lif, meter: applied } = ans else {
        return Ok(());
    };
    write!(out, "applied: ")?;
    write_meter(out, lif, &applied)?;
    let got = [
        ("cir", applied.cir, Kind::Rate),
        ("cburst", applied.cburst, Kind::Size),
        ("pir", applied.pir, Kind::Rate),
        ("pburst", applied.pburst, Kind::Size),
        ("eburst", applied.eburst, Kind::Size),
    ];
    for ((name, v, kind), (_, exact)) in got.into_iter().zip(asked) {
        if let Some(exact) = exact {
            if (v as f64 - exact).abs() > 1e-9 {
                writeln!(
                    out,
                    "note: {name} {exact} {} was asked; the device applied {}",
                    units::unit_of(applied.resource, kind),
                    units::human(v, applied.resource, kind)
                )?;
            }
        }
    }
    Ok(())
}

/// The request's meter, and each field's exact asked value (cir, cburst,
/// pir, pburst, eburst) for the applied-vs-asked note.
#[allow(clippy::type_complexity)]
fn meter_from_args(a: &MeterSetArgs) -> Result<(Meter, [(&'static str, Option<f64>); 5]), Failure> {
    let resource = a.resource;
    let q = |flag: &'static str, v: &Option<String>, kind: Kind| -> Result<Option<units::Parsed>, Failure> {
        v.as_deref()
            .map(|s| units::parse(s, resource, kind).map_err(|e| Failure::Usage(format!("--{flag} {e}"))))
            .transpose()
    };
    let cir = q("cir", &a.cir, Kind::Rate)?;
    let cburst = q("cburst", &a.cburst, Kind::Size)?;
    let pir = q("pir", &a.pir, Kind::Rate)?;
    let pburst = q("pburst", &a.pburst, Kind::Size)?;
    let eburst = q("eburst", &a.eburst, Kind::Size)?;
    let level = resource == MeterResource::DescInFlight;
    let mode = match a.mode {
        Some(mode) => mode,
        None if level || pir.is_some() || pburst.is_some() => MeterMode::TrTcm,
        None => MeterMode::SrTcm,
    };
    let need = |ok: bool, m: &str| if ok { Ok(()) } else { Err(Failure::Usage(m.into())) };
    match mode {
        MeterMode::Off => {}
        _ if level => need(
            cburst.is_some() && pburst.is_some(),
            "desc_in_flight takes --cburst (yellow at) and --pburst (red at), in descriptors",
        )?,
        MeterMode::SrTcm => {
            need(cir.is_some(), "srtcm needs --cir")?;
            need(cburst.is_some() || eburst.is_some(), "srtcm needs --cburst or --eburst")?;
            need(
                pir.is_none() && pburst.is_none(),
                "--pir/--pburst belong to trtcm (--mode trtcm)",
            )?;
        }
        MeterMode::TrTcm => {
            need(cir.is_some() && pir.is_some(), "trtcm needs --cir and --pir")?;
            need(
                cburst.is_some() && pburst.is_some(),
                "trtcm needs --cburst and --pburst",
            )?;
            need(eburst.is_none(), "--eburst belongs to srtcm (--mode srtcm)")?;
        }
    }
    let v = |p: Option<units::Parsed>| p.map_or(0, |p| p.value);
    let e = |p: Option<units::Parsed>| p.map(|p| p.exact);
    let meter = Meter {
        resource,
        mode,
        policy: a.policy,
        cir: v(cir),
        cburst: v(cburst),
        pir: v(pir),
        pburst: v(pburst),
        eburst: v(eburst),
    };
    let asked = [
        ("cir", e(cir)),
        ("cburst", e(cburst)),
        ("pir", e(pir)),
        ("pburst", e(pburst)),
        ("eburst", e(eburst)),
    ];
    Ok((meter, asked))
}

fn write_meter(out: &mut dyn Write, lif: u16, m: &Meter) -> std::io::Result<()> {
    let r = m.resource;
    let policy = m.policy;
    match m.mode {
        MeterMode::Off => writeln!(out, "lif {lif} {}: off", r),
        MeterMode::SrTcm => writeln!(
            out,
            "lif {lif} {}: srtcm cir {} cburst {} eburst {}, {policy} when red",
            r,
            units::human(m.cir, r, Kind::Rate),
            units::human(m.cburst, r, Kind::Size),
            units::human(m.eburst, r, Kind::Size)
        ),
        MeterMode::TrTcm if r == MeterResource::DescInFlight => writeln!(
            out,
            "lif {lif} {}: yellow at {} red at {}, {policy} when red",
            r,
            units::human(m.cburst, r, Kind::Size),
            units::human(m.pburst, r, Kind::Size)
        ),
        MeterMode::TrTcm => writeln!(
            out,
            "lif {lif} {}: trtcm cir {} cburst {} pir {} pburst {}, {policy} when red",
            r,
            units::human(m.cir, r, Kind::Rate),
            units::human(m.cburst, r, Kind::Size),
            units::human(m.pir, r, Kind::Rate),
            units::human(m.pburst, r, Kind::Size)
        ),
    }
}
