//! `nicctl`: talk to a running `nicdrv` through its control socket.
//!
//! ```text
//! nicctl lif list
//! nicctl meter show --lif 3 [--resource bytes]
//! nicctl meter set --lif 3 --resource bytes --cir 2Gbit/s --cburst 64KiB [--policy deprioritize]
//! nicctl stats [--lif 3|uplink] [--watch [--interval 1] [--count N]] [--json]
//! nicctl events [--from SEQ]
//! nicctl coalesce show --function 1 --vector 0
//! nicctl coalesce set --function 1 --vector 0 --mode fixed --latency-us 20 --overflow-us 200
//! ```
//!
//! Every setting prints what the device applied (and says so when that is
//! not what was asked, e.g. a rate rounded to the device's granularity).
//! Exit status: 0 done, 1 the driver or device refused, 2 bad arguments,
//! 3 no driver to talk to.

use crate::client::{self, ClientError};
use crate::proto::{self, Answer, Coalesce, CoalesceMode, Meter, MeterMode, Policy, Request, Resource};
use crate::units::{self, Kind};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(
    name = "nicctl",
    version,
    about = "Manage a running nicdrv: LIFs, meters, interrupt moderation, statistics, device events."
)]
struct Cli {
    /// nicdrv's control socket (default: $XDG_RUNTIME_DIR/nicdrv.sock, else /tmp/nicdrv-UID.sock).
    #[arg(long, global = true)]
    socket: Option<PathBuf>,
    /// Print answers as JSON (one object per line).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// What the driver is and drives.
    Hello,
    /// Logical interfaces.
    Lif {
        #[command(subcommand)]
        cmd: LifCmd,
    },
    /// Per-LIF meters (resource fairness).
    Meter {
        #[command(subcommand)]
        cmd: MeterCmd,
    },
    /// Device counters per LIF, and the uplink's.
    Stats(StatsArgs),
    /// What the device reports to the PF: LIFs created and destroyed,
    /// functions reset, regulation applied, frames dropped at the source.
    Events {
        /// From this sequence number on (default: the oldest the device
        /// keeps; the output ends with where to go on from).
        #[arg(long)]
        from: Option<u64>,
    },
    /// Interrupt moderation per vector.
    Coalesce {
        #[command(subcommand)]
        cmd: CoalesceCmd,
    },
    /// Tables of the loaded P4 pipeline.
    Table {
        #[command(subcommand)]
        cmd: TableCmd,
    },
    /// What the PF decides for a VF's LIF slots, as `ip link set DEV vf N`
    /// does: the MAC its LIF gets, spoof check, trust.
    Vf {
        #[command(subcommand)]
        cmd: VfCmd,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Debug, Subcommand)]
enum VfCmd {
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

#[derive(Debug, Subcommand)]
enum TableCmd {
    /// Add an entry: one --key per key field in order (MAC, IPv4, number;
    /// `10.0.0.0/8` for LPM; `value&&&mask` or `*` for ternary).
    Add {
        table: String,
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
        #[arg(long)]
        action: String,
        /// One per action parameter, in order.
        #[arg(long = "arg")]
        args: Vec<String>,
        /// Ternary entries: larger wins.
        #[arg(long, default_value_t = 0)]
        priority: u32,
    },
    /// Delete the entry with these keys (and priority).
    Del {
        table: String,
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
        #[arg(long, default_value_t = 0)]
        priority: u32,
    },
    /// The program's tables (or one) with the entries added through nicdrv.
    Show { table: Option<String> },
}

#[derive(Debug, Subcommand)]
enum LifCmd {
    /// Every LIF the driver sees.
    List,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ResourceArg {
    Packets,
    Bytes,
    Cost,
    DmaBytes,
    DescInFlight,
}

impl From<ResourceArg> for Resource {
    fn from(r: ResourceArg) -> Resource {
        match r {
            ResourceArg::Packets => Resource::Packets,
            ResourceArg::Bytes => Resource::Bytes,
            ResourceArg::Cost => Resource::Cost,
            ResourceArg::DmaBytes => Resource::DmaBytes,
            ResourceArg::DescInFlight => Resource::DescInFlight,
        }
    }
}

const RESOURCES: [Resource; 5] = [
    Resource::Packets,
    Resource::Bytes,
    Resource::Cost,
    Resource::DmaBytes,
    Resource::DescInFlight,
];

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Off,
    Srtcm,
    Trtcm,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PolicyArg {
    Backpressure,
    Deprioritize,
    Drop,
}

#[derive(Debug, Subcommand)]
enum MeterCmd {
    /// A LIF's meters as the device applied them.
    Show {
        #[arg(long)]
        lif: u16,
        /// One resource (default: all).
        #[arg(long, value_enum)]
        resource: Option<ResourceArg>,
    },
    /// Configure a LIF's meter (through the PF).
    Set(MeterSetArgs),
}

#[derive(Debug, Args)]
struct MeterSetArgs {
    #[arg(long)]
    lif: u16,
    #[arg(long, value_enum)]
    resource: ResourceArg,
    /// srtcm (RFC 2697: cir, cburst, eburst) or trtcm (RFC 2698: cir,
    /// cburst, pir, pburst); default trtcm when --pir is given, else srtcm.
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// What a red meter does to the LIF.
    #[arg(long, value_enum, default_value = "backpressure")]
    policy: PolicyArg,
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

#[derive(Debug, Args)]
struct StatsArgs {
    /// One LIF, or `uplink` (default: every LIF and the uplink).
    #[arg(long, value_parser = parse_lif)]
    lif: Option<u16>,
    /// Keep printing per-second rates.
    #[arg(long)]
    watch: bool,
    /// Seconds between samples with --watch.
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// Stop after this many samples with --watch (default: until interrupted).
    #[arg(long)]
    count: Option<u64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CoalesceModeArg {
    Off,
    Fixed,
    Adaptive,
}

#[derive(Debug, Subcommand)]
enum CoalesceCmd {
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
        #[arg(long, value_enum)]
        mode: Option<CoalesceModeArg>,
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

/// A LIF number, or `uplink` (the ABI's `LIF_UPLINK`).
fn parse_lif(s: &str) -> Result<u16, String> {
    if s.eq_ignore_ascii_case("uplink") {
        return Ok(proto::UPLINK);
    }
    s.parse()
        .map_err(|_| format!("'{s}' is not a LIF number (0..={}) or 'uplink'", u16::MAX))
}

/// How a row of `stats` is labelled.
fn row_label(lif: u16) -> String {
    if lif == proto::UPLINK {
        "uplink".into()
    } else {
        lif.to_string()
    }
}

/// Counter `k` of a `stats` row: the uplink's "tx"/"rx" are the frames it
/// sent to and took from the wire.
fn cell(l: &proto::LifCounters, k: &str) -> u64 {
    let k = match (l.lif == proto::UPLINK, k) {
        (true, "tx_packets") => "wire_tx_packets",
        (true, "rx_packets") => "wire_rx_packets",
        _ => k,
    };
    l.counters.get(k).copied().unwrap_or(0)
}

/// Why nicctl stopped.
#[derive(Debug)]
enum Failure {
    /// Bad arguments (exit 2).
    Usage(String),
    /// No driver (exit 3) or a refusal (exit 1).
    Client(ClientError),
    /// Writing the output failed.
    Output(std::io::Error),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::Client(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Output(e)
    }
}

/// Run nicctl with `args` (program name first); output to `out`, errors
/// to `err`. Returns the exit status.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let text = e.render().to_string();
            let _ = if code == 0 {
                out.write_all(text.as_bytes())
            } else {
                err.write_all(text.as_bytes())
            };
            return code;
        }
    };
    let socket = cli.socket.clone().unwrap_or_else(client::default_socket);
    let r = execute(&cli, &socket, out);
    match r {
        Ok(()) => 0,
        Err(Failure::Usage(m)) => {
            let _ = writeln!(err, "nicctl: {m}");
            2
        }
        Err(Failure::Client(e @ ClientError::Refused(_))) => {
            let _ = writeln!(err, "nicctl: {e}");
            1
        }
        Err(Failure::Client(e)) => {
            let _ = writeln!(err, "nicctl: {e}");
            3
        }
        Err(Failure::Output(e)) => {
            let _ = writeln!(err, "nicctl: writing output: {e}");
            1
        }
    }
}

fn execute(cli: &Cli, socket: &std::path::Path, out: &mut dyn Write) -> Result<(), Failure> {
    let call = |req: &Request| client::call(socket, req);
    match &cli.cmd {
        Cmd::Hello => {
            let a = call(&Request::Hello)?;
            if cli.json {
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
        }
        Cmd::Lif { cmd: LifCmd::List } => {
            let a = call(&Request::LifList)?;
            if cli.json {
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
        }
        Cmd::Meter {
            cmd: MeterCmd::Show { lif, resource },
        } => {
            let which: Vec<Resource> = match resource {
                Some(r) => vec![(*r).into()],
                None => RESOURCES.to_vec(),
            };
            for r in which {
                let a = call(&Request::MeterGet { lif: *lif, resource: r })?;
                if cli.json {
                    json_line(out, &a)?;
                } else if let Answer::Meter { lif, meter } = a {
                    write_meter(out, lif, &meter)?;
                }
            }
        }
        Cmd::Meter { cmd: MeterCmd::Set(a) } => {
            let (meter, asked) = meter_from_args(a)?;
            let ans = call(&Request::MeterSet { lif: a.lif, meter })?;
            if cli.json {
                return json_line(out, &ans);
            }
            if let Answer::Meter { lif, meter: applied } = ans {
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
            }
        }
        Cmd::Stats(s) => stats(cli, s, &call, out)?,
        Cmd::Events { from } => events(cli, *from, &call, out)?,
        Cmd::Vf { cmd } => {
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
                    let mut cur = match call(&Request::SlotGet {
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
                    call(&Request::SlotSet { settings: cur })?;
                    (function, Some(*slot))
                }
            };
            let a = call(&Request::SlotGet { function, slot })?;
            if cli.json {
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
        }
        Cmd::Table { cmd } => {
            let req = match cmd {
                TableCmd::Add {
                    table,
                    keys,
                    action,
                    args,
                    priority,
                } => Request::TableAdd {
                    table: table.clone(),
                    keys: keys.clone(),
                    action: action.clone(),
                    args: args.clone(),
                    priority: *priority,
                },
                TableCmd::Del { table, keys, priority } => Request::TableDel {
                    table: table.clone(),
                    keys: keys.clone(),
                    priority: *priority,
                },
                TableCmd::Show { table } => Request::TableShow { table: table.clone() },
            };
            let a = call(&req)?;
            if cli.json {
                return json_line(out, &a);
            }
            write_tables(out, &a)?;
        }
        Cmd::Coalesce {
            cmd: CoalesceCmd::Show { function, vector },
        } => {
            let a = call(&Request::CoalesceGet {
                function: *function,
                vector: *vector,
            })?;
            if cli.json {
                return json_line(out, &a);
            }
            write_coalesce(out, &a)?;
        }
        Cmd::Coalesce {
            cmd:
                CoalesceCmd::Set {
                    function,
                    vector,
                    mode,
                    latency_us,
                    overflow_us,
                    frames,
                    high_watermark,
                },
        } => {
            let (function, vector) = (*function, *vector);
            let cur = match call(&Request::CoalesceGet { function, vector })? {
                Answer::Coalesce { coalesce, .. } => coalesce,
                other => return Err(unexpected(&other)),
            };
            if high_watermark.is_some_and(|p| p > 100) {
                return Err(Failure::Usage("--high-watermark is a percentage: 0..=100".into()));
            }
            let c = Coalesce {
                mode: match mode {
                    None => cur.mode,
                    Some(CoalesceModeArg::Off) => CoalesceMode::Off,
                    Some(CoalesceModeArg::Fixed) => CoalesceMode::Fixed,
                    Some(CoalesceModeArg::Adaptive) => CoalesceMode::Adaptive,
                },
                latency_interval_us: latency_us.unwrap_or(cur.latency_interval_us),
                overflow_interval_us: overflow_us.unwrap_or(cur.overflow_interval_us),
                frame_threshold: frames.unwrap_or(cur.frame_threshold),
                high_watermark_pct: high_watermark.unwrap_or(cur.high_watermark_pct),
            };
            let a = call(&Request::CoalesceSet {
                function,
                vector,
                coalesce: c,
            })?;
            if cli.json {
                return json_line(out, &a);
            }
            write!(out, "applied: ")?;
            write_coalesce(out, &a)?;
        }
    }
    Ok(())
}

fn write_tables(out: &mut dyn Write, a: &Answer) -> Result<(), Failure> {
    let Answer::Tables { program, tables } = a else {
        return Err(unexpected(a));
    };
    for t in tables {
        writeln!(
            out,
            "{program}.{} (table {}): key {}; actions {}; default {}; size {}; {} entr{} added",
            t.name,
            t.id,
            t.keys.join(", "),
            t.actions.join(", "),
            t.default_action,
            t.size,
            t.entries.len(),
            if t.entries.len() == 1 { "y" } else { "ies" }
        )?;
        for e in &t.entries {
            let prio = if e.priority != 0 {
                format!(" priority {}", e.priority)
            } else {
                String::new()
            };
            writeln!(
                out,
                "  {} -> {}({}){prio}",
                e.keys.join(", "),
                e.action,
                e.args.join(", ")
            )?;
        }
    }
    Ok(())
}

fn unexpected(a: &Answer) -> Failure {
    Failure::Client(ClientError::Refused(format!("unexpected answer from nicdrv: {a:?}")))
}

fn json_line(out: &mut dyn Write, v: &impl serde::Serialize) -> Result<(), Failure> {
    writeln!(out, "{}", serde_json::to_string(v).expect("answers serialise"))?;
    Ok(())
}

/// The request's meter, and each field's exact asked value (cir, cburst,
/// pir, pburst, eburst) for the applied-vs-asked note.
#[allow(clippy::type_complexity)]
fn meter_from_args(a: &MeterSetArgs) -> Result<(Meter, [(&'static str, Option<f64>); 5]), Failure> {
    let resource: Resource = a.resource.into();
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
    let level = resource == Resource::DescInFlight;
    let mode = match a.mode {
        Some(ModeArg::Off) => MeterMode::Off,
        Some(ModeArg::Srtcm) => MeterMode::SrTcm,
        Some(ModeArg::Trtcm) => MeterMode::TrTcm,
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
        policy: match a.policy {
            PolicyArg::Backpressure => Policy::Backpressure,
            PolicyArg::Deprioritize => Policy::Deprioritize,
            PolicyArg::Drop => Policy::Drop,
        },
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
    let policy = match m.policy {
        Policy::Backpressure => "backpressure",
        Policy::Deprioritize => "deprioritize",
        Policy::Drop => "drop",
    };
    match m.mode {
        MeterMode::Off => writeln!(out, "lif {lif} {}: off", units::name(r)),
        MeterMode::SrTcm => writeln!(
            out,
            "lif {lif} {}: srtcm cir {} cburst {} eburst {}, {policy} when red",
            units::name(r),
            units::human(m.cir, r, Kind::Rate),
            units::human(m.cburst, r, Kind::Size),
            units::human(m.eburst, r, Kind::Size)
        ),
        MeterMode::TrTcm if r == Resource::DescInFlight => writeln!(
            out,
            "lif {lif} {}: yellow at {} red at {}, {policy} when red",
            units::name(r),
            units::human(m.cburst, r, Kind::Size),
            units::human(m.pburst, r, Kind::Size)
        ),
        MeterMode::TrTcm => writeln!(
            out,
            "lif {lif} {}: trtcm cir {} cburst {} pir {} pburst {}, {policy} when red",
            units::name(r),
            units::human(m.cir, r, Kind::Rate),
            units::human(m.cburst, r, Kind::Size),
            units::human(m.pir, r, Kind::Rate),
            units::human(m.pburst, r, Kind::Size)
        ),
    }
}

fn write_coalesce(out: &mut dyn Write, a: &Answer) -> Result<(), Failure> {
    let Answer::Coalesce {
        function,
        vector,
        coalesce: c,
    } = a
    else {
        return Err(unexpected(a));
    };
    let mode = match c.mode {
        CoalesceMode::Off => "off",
        CoalesceMode::Fixed => "fixed",
        CoalesceMode::Adaptive => "adaptive",
    };
    writeln!(
        out,
        "function {function} vector {vector}: {mode}, latency {} us, overflow {} us, {} frames, high watermark {}%",
        c.latency_interval_us, c.overflow_interval_us, c.frame_threshold, c.high_watermark_pct
    )?;
    Ok(())
}

/// The counters `stats` shows as columns (all of them go to JSON).
const COLUMNS: [(&str, &str); 10] = [
    ("tx_packets", "tx pkt"),
    ("rx_packets", "rx pkt"),
    ("cost_units", "cost"),
    ("meter_green", "green"),
    ("meter_yellow", "yellow"),
    ("meter_red", "red"),
    ("backpressured", "bkpr"),
    ("drop_meter_red", "drop red"),
    ("drop_no_rx_buffer", "drop nobuf"),
    ("interrupts", "irq"),
];

fn stats(
    cli: &Cli,
    s: &StatsArgs,
    call: &dyn Fn(&Request) -> Result<Answer, ClientError>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    if !(s.interval > 0.0 && s.interval <= 3600.0) {
        return Err(Failure::Usage(format!(
            "--interval {}: want seconds in (0, 3600]",
            s.interval
        )));
    }
    let fetch = || -> Result<Vec<proto::LifCounters>, Failure> {
        match call(&Request::Stats { lif: s.lif })? {
            Answer::Stats { stats } => Ok(stats),
            other => Err(unexpected(&other)),
        }
    };
    if !s.watch {
        let st = fetch()?;
        if cli.json {
            return json_line(out, &Answer::Stats { stats: st });
        }
        write_header(out, "")?;
        for l in &st {
            write!(out, "{:>6}", row_label(l.lif))?;
            for (k, _) in COLUMNS {
                write!(out, " {:>10}", cell(l, k))?;
            }
            writeln!(out)?;
        }
        let drops: Vec<String> = st
            .iter()
            .flat_map(|l| {
                let who = if l.lif == proto::UPLINK {
                    "uplink".to_string()
                } else {
                    format!("lif {}", l.lif)
                };
                l.counters
                    .iter()
                    .filter(|(k, v)| k.starts_with("drop_") && **v > 0)
                    .map(move |(k, v)| format!("{who} {k} {v}"))
            })
            .collect();
        if !drops.is_empty() {
            writeln!(out, "drops: {}", drops.join(", "))?;
        }
        if st.iter().any(|l| l.lif == proto::UPLINK) {
            writeln!(
                out,
                "uplink: rx = frames from the wire, tx = frames to the wire; its drops are wire frames no LIF took"
            )?;
        }
        return Ok(());
    }
    // Watch: per-second rates over each interval, by the device's clock
    // where it moves (the simulator's virtual clock), else by ours.
    let mut prev: BTreeMap<u16, (u64, Instant, BTreeMap<String, u64>)> = BTreeMap::new();
    let mut n = 0u64;
    let mut first = true;
    loop {
        let st = fetch()?;
        let now = Instant::now();
        if !first {
            n += 1;
            if !cli.json && n == 1 {
                write_header(out, "/s")?;
            }
            for l in &st {
                let Some((clk, t, before)) = prev.get(&l.lif) else {
                    continue;
                };
                let dt = if l.device_clock_ns > *clk {
                    (l.device_clock_ns - clk) as f64 / 1e9
                } else {
                    now.duration_since(*t).as_secs_f64()
                };
                let rate = |k: &str| {
                    let was = proto::LifCounters {
                        lif: l.lif,
                        device_clock_ns: *clk,
                        counters: before.clone(),
                    };
                    let d = cell(l, k).saturating_sub(cell(&was, k));
                    if dt > 0.0 {
                        d as f64 / dt
                    } else {
                        0.0
                    }
                };
                if cli.json {
                    let rates: BTreeMap<&str, f64> = l.counters.keys().map(|k| (k.as_str(), rate(k))).collect();
                    let line = serde_json::json!({ "sample": n, "lif": l.lif, "seconds": dt, "per_second": rates, "counters": l.counters });
                    json_line(out, &line)?;
                } else {
                    write!(out, "{:>6}", row_label(l.lif))?;
                    for (k, _) in COLUMNS {
                        write!(out, " {:>10.0}", rate(k))?;
                    }
                    writeln!(out)?;
                }
            }
            out.flush()?;
            if s.count.is_some_and(|c| n >= c) {
                return Ok(());
            }
        }
        first = false;
        for l in st {
            prev.insert(l.lif, (l.device_clock_ns, now, l.counters));
        }
        std::thread::sleep(Duration::from_secs_f64(s.interval));
    }
}

/// `nicctl events`: every event from `from` on, asked for in pages.
fn events(
    cli: &Cli,
    from: Option<u64>,
    call: &dyn Fn(&Request) -> Result<Answer, ClientError>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let mut at = from;
    let mut shown = 0usize;
    // The device keeps 1024 events: a few pages; a driver that keeps
    // answering is cut off rather than followed forever.
    for _ in 0..64 {
        let (rows, next) = match call(&Request::Events { from: at })? {
            Answer::Events { events, next } => (events, next),
            other => return Err(unexpected(&other)),
        };
        if cli.json {
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
    if !cli.json {
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

fn write_header(out: &mut dyn Write, suffix: &str) -> std::io::Result<()> {
    write!(out, "{:>6}", "lif")?;
    for (_, h) in COLUMNS {
        write!(out, " {:>10}", format!("{h}{suffix}"))?;
    }
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run a command line (words split on spaces).
    fn run_capture(line: &str) -> (i32, String, String) {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let code = run(line.split_whitespace(), &mut o, &mut e);
        (code, String::from_utf8(o).unwrap(), String::from_utf8(e).unwrap())
    }

    #[test]
    fn bad_units_are_usage_errors_that_point_at_the_token() {
        let (code, _, err) = run_capture(
            "nicctl --socket /nonexistent.sock meter set --lif 3 --resource bytes --cir 2Gbitz/s --cburst 64KiB",
        );
        assert_eq!(code, 2, "{err}");
        assert!(err.starts_with("nicctl: --cir unknown unit 'Gbitz/s'"), "{err}");
        assert!(err.contains("\n  2Gbitz/s\n   ^^^^^^^"), "{err}");
    }

    #[test]
    fn incomplete_meters_are_named_before_anything_is_sent() {
        let (code, _, err) =
            run_capture("nicctl --socket /nonexistent.sock meter set --lif 3 --resource bytes --cir 1Gbit/s");
        assert_eq!(code, 2);
        assert!(err.contains("srtcm needs --cburst or --eburst"), "{err}");
        let (code, _, err) = run_capture("nicctl --socket /x meter set --lif 1 --resource desc-in-flight --cir 5");
        assert_eq!(code, 2);
        assert!(err.contains("level"), "{err}");
    }

    #[test]
    fn lifs_are_numbers_or_the_uplink() {
        assert_eq!(parse_lif("3"), Ok(3));
        assert_eq!(parse_lif("uplink"), Ok(proto::UPLINK));
        assert_eq!(parse_lif("Uplink"), Ok(proto::UPLINK));
        assert!(parse_lif("70000")
            .unwrap_err()
            .contains("'70000' is not a LIF number (0..=65535) or 'uplink'"));
        let (code, _, err) = run_capture("nicctl --socket /x stats --lif -1");
        assert_eq!(code, 2, "{err}");
        let (code, _, err) = run_capture("nicctl --socket /nonexistent/nicdrv.sock events --from 3");
        assert_eq!(code, 3, "{err}");
    }

    #[test]
    fn clap_errors_and_a_missing_driver_have_their_own_status() {
        let (code, _, err) = run_capture("nicctl meter set --lif 70000");
        assert_eq!(code, 2, "{err}");
        let (code, out, _) = run_capture("nicctl --help");
        assert_eq!(code, 0);
        assert!(out.contains("meter"));
        let (code, _, err) = run_capture("nicctl --socket /nonexistent/nicdrv.sock lif list");
        assert_eq!(code, 3);
        assert!(err.contains("cannot reach nicdrv at /nonexistent/nicdrv.sock"), "{err}");
        let (code, _, err) = run_capture("nicctl --socket /x stats --watch --interval 0");
        assert_eq!(code, 2, "{err}");
    }
}
