//! `nicctl`: talk to a running `nicdrv` through its control socket.
//!
//! ```text
//! nicctl lif list
//! nicctl meter show --lif 3 [--resource bytes]
//! nicctl meter set --lif 3 --resource bytes --cir 2Gbit/s --cburst 64KiB [--policy deprioritize]
//! nicctl stats [--lif 3|uplink] [--watch [--interval 1] [--count N]] [--json]
//! nicctl events [--from SEQ]
//! nicctl moderation show --function 1 --vector 0
//! nicctl moderation set --function 1 --vector 0 --mode fixed --latency-us 20 --overflow-us 200
//! ```
//!
//! Every setting prints what the device applied (and says so when that is
//! not what was asked, e.g. a rate rounded to the device's granularity).
//! Exit status: 0 done, 1 the driver or device refused, 2 bad arguments,
//! 3 no driver to talk to.

mod events;
mod lif;
mod meter;
mod moderation;
mod stats;
mod table;
mod vf;

use crate::client::{self, ClientError};
use crate::proto::{Answer, Request};
use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::ErrorKind;
use clap::{Parser, Subcommand};
use dataplane::abi::AbiEnum;
use std::ffi::OsStr;
use std::io::Write;
use std::marker::PhantomData;
use std::path::PathBuf;

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
        cmd: lif::LifCmd,
    },
    /// Per-LIF meters (resource fairness).
    Meter {
        #[command(subcommand)]
        cmd: meter::MeterCmd,
    },
    /// Device counters per LIF, and the uplink's.
    Stats(stats::StatsArgs),
    /// What the device reports to the PF: LIFs created and destroyed,
    /// functions reset, regulation applied, frames dropped at the source.
    Events {
        /// From this sequence number on (default: the oldest the device
        /// keeps; the output ends with where to go on from).
        #[arg(long)]
        from: Option<u64>,
    },
    /// Interrupt moderation per vector (also spelt `coalesce`).
    #[command(alias = "coalesce")]
    Moderation {
        #[command(subcommand)]
        cmd: moderation::ModerationCmd,
    },
    /// Tables of the loaded P4 pipeline.
    Table {
        #[command(subcommand)]
        cmd: table::TableCmd,
    },
    /// What the PF decides for a VF's LIF slots, as `ip link set DEV vf N`
    /// does: the MAC its LIF gets, spoof check, trust.
    Vf {
        #[command(subcommand)]
        cmd: vf::VfCmd,
    },
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
    let ctx = Ctx {
        json: cli.json,
        call: &call,
    };
    match &cli.cmd {
        Cmd::Hello => lif::hello(&ctx, out),
        Cmd::Lif { cmd } => lif::run(&ctx, cmd, out),
        Cmd::Meter { cmd } => meter::run(&ctx, cmd, out),
        Cmd::Stats(s) => stats::run(&ctx, s, out),
        Cmd::Events { from } => events::run(&ctx, *from, out),
        Cmd::Vf { cmd } => vf::run(&ctx, cmd, out),
        Cmd::Table { cmd } => table::run(&ctx, cmd, out),
        Cmd::Moderation { cmd } => moderation::run(&ctx, cmd, out),
    }
}

/// What every subcommand gets: how to print and how to ask nicdrv.
struct Ctx<'a> {
    /// Print answers as JSON lines.
    json: bool,
    /// One request to nicdrv, one answer.
    call: &'a dyn Fn(&Request) -> Result<Answer, ClientError>,
}

fn unexpected(a: &Answer) -> Failure {
    Failure::Client(ClientError::Refused(format!("unexpected answer from nicdrv: {a:?}")))
}

fn json_line(out: &mut dyn Write, v: &impl serde::Serialize) -> Result<(), Failure> {
    writeln!(out, "{}", serde_json::to_string(v).expect("answers serialise"))?;
    Ok(())
}

/// clap's parser for an enumeration of the device ABI: `--help` lists its
/// keys (`dma_bytes`), and every spelling the ABI's `FromStr` takes is
/// accepted (`dma-bytes`, `DmaBytes`), so the CLI and the control
/// protocol never keep their own copy of the names.
#[derive(Clone)]
struct AbiArg<T>(PhantomData<T>);

impl<T> AbiArg<T> {
    fn new() -> Self {
        AbiArg(PhantomData)
    }
}

impl<T: AbiEnum> TypedValueParser for AbiArg<T> {
    type Value = T;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> Result<T, clap::Error> {
        let flag = arg.map(|a| a.to_string()).unwrap_or_default();
        let refuse = |msg: String| clap::Error::raw(ErrorKind::InvalidValue, msg).with_cmd(cmd);
        let s = value.to_str().ok_or_else(|| refuse(format!("{flag}: not UTF-8\n")))?;
        s.parse::<T>().map_err(|e| refuse(format!("{flag}: {e}\n")))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(T::all().iter().map(|v| PossibleValue::new(v.key()))))
    }
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

    /// The ABI's enumerations are the CLI's values: old spellings
    /// (`srtcm`, `dma-bytes`, the `coalesce` command) still work, and a
    /// wrong one lists the keys.
    #[test]
    fn abi_names_are_the_values_and_old_spellings_still_parse() {
        for line in [
            "nicctl --socket /nonexistent/s meter set --lif 1 --resource dma-bytes --mode srtcm --cir 1MB/s --cburst 1KiB",
            "nicctl --socket /nonexistent/s meter set --lif 1 --resource dma_bytes --mode sr_tcm --cir 1MB/s --cburst 1KiB --policy Deprioritize",
            "nicctl --socket /nonexistent/s coalesce show --function 0 --vector 0",
            "nicctl --socket /nonexistent/s moderation set --function 0 --vector 0 --mode adaptive",
        ] {
            let (code, _, err) = run_capture(line);
            assert_eq!(code, 3, "{line}: {err}");
        }
        let (code, _, err) = run_capture("nicctl --socket /x meter show --lif 1 --resource bits");
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("meter.resource: unknown value `bits` (expected one of: packets, bytes, cost, dma_bytes, desc_in_flight)"),
            "{err}"
        );
        let (_, out, _) = run_capture("nicctl meter set --help");
        assert!(out.contains("backpressure, deprioritize, drop"), "{out}");
    }

    #[test]
    fn lifs_are_numbers_or_the_uplink() {
        assert_eq!(stats::parse_lif("3"), Ok(3));
        assert_eq!(stats::parse_lif("uplink"), Ok(crate::proto::UPLINK));
        assert_eq!(stats::parse_lif("Uplink"), Ok(crate::proto::UPLINK));
        assert!(stats::parse_lif("70000")
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
