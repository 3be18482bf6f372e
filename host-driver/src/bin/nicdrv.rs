//! nicdrv: fairnic's userspace driver and its built-in applications.
//!
//!     nicdrv                       the fairness demo on the embedded simulator (PF + 4 VFs)
//!     nicdrv gen                   offer load on every LIF; throughput, latency, books
//!     nicdrv gen --device vfio:0000:3b:02.0 --device vfio:0000:3b:02.1
//!     nicdrv echo --device sim:/tmp/nicsim
//!     nicdrv abi                   the device ABI this driver speaks

use clap::{Parser, Subcommand, ValueEnum};
use dataplane::abi::{self, layout, lif_mac};
use host_driver::apps::demo::DemoConfig;
use host_driver::apps::gen::{Flows, GenConfig};
use host_driver::apps::relay::{self, Relay, RelayConfig};
use host_driver::apps::{parse_sizes, EventWatch, Mode, Ports};
use host_driver::backend::vfio::VfioBackend;
use host_driver::backend::vfio_user::VfioUserBackend;
use host_driver::backend::Backend;
use host_driver::control::{ControlServer, ControlState, LoadedPipeline};
use host_driver::mem::MemKind;
use host_driver::nic::{Nic, NicConfig};
use sim::device::DeviceConfig;
use sim::port::GenConfig as WireGen;
use sim::{PortSpec, Sim, SimConfig};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    Poll,
    Interrupt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FlowsArg {
    Ring,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SchedArg {
    /// Round robin by packets, as a conventional NIC arbitrates.
    Packets,
    /// Deficit round robin by pipeline cost (fairnic's).
    Cost,
}

#[derive(Debug, Subcommand)]
enum App {
    /// The fairness demo (the default): victims and one aggressor share the
    /// pipeline; live per-LIF table; halfway through, nicctl lowers the
    /// aggressor's cost meter to its fair share; report of both halves.
    /// Defaults: 10 s, interrupt mode, packet scheduling, 10 Munits/s.
    Demo,
    /// Offer load on every LIF toward the others; measure throughput,
    /// latency, and the books.
    Gen,
    /// Pair the LIFs and forward what arrives on one out of the other, to
    /// --peer-mac from the egress LIF's MAC (testpmd's mac mode).
    Forward,
    /// Send what arrives back out of the LIF it came in on, to its sender
    /// from the LIF's MAC.
    Echo,
    /// Print the device ABI this driver speaks.
    Abi {
        /// As the Markdown tables of docs/device-abi.md.
        #[arg(long)]
        markdown: bool,
    },
}

/// fairnic's userspace driver.
#[derive(Debug, Parser)]
#[command(name = "nicdrv", version, about, long_about = None)]
struct Args {
    #[command(subcommand)]
    app: Option<App>,
    /// A function to drive: vfio:BDF (bound to vfio-pci) or sim:PATH (a
    /// nicsim socket, or a directory of them). Repeatable. None: start the
    /// embedded simulator.
    #[arg(long, global = true)]
    device: Vec<String>,
    /// VFs of the embedded simulator.
    #[arg(long, default_value_t = 4, global = true)]
    vfs: u16,
    /// LIFs to create on each function.
    #[arg(long, default_value_t = 1, global = true)]
    lifs: u16,
    /// Poll the rings, or sleep on MSI-X interrupts when idle (default:
    /// interrupt for demo, poll otherwise).
    #[arg(long, value_enum, global = true)]
    mode: Option<ModeArg>,
    /// Seconds to run, 0: until Ctrl-C (default: 10 for demo, 5 otherwise).
    #[arg(long, global = true)]
    duration: Option<f64>,
    /// Embedded simulator: pipeline capacity, cost units per second
    /// (default: 10000000 for demo, unbounded otherwise). The demo sets
    /// its meters against it.
    #[arg(long, global = true)]
    capacity: Option<u64>,
    /// Embedded simulator: what the fetch scheduler charges (default:
    /// packets for demo, so the meters do the regulating; cost otherwise).
    #[arg(long, value_enum, global = true)]
    sched: Option<SchedArg>,
    /// demo: frames per second each victim offers.
    #[arg(long, default_value_t = 400_000, global = true)]
    victim_rate: u64,
    /// demo: extra pipeline passes of each aggressor frame (1..=7).
    #[arg(long, default_value_t = 3, global = true)]
    passes: u8,
    /// gen: frames per second per LIF (0: as fast as possible).
    #[arg(long, default_value_t = 0, global = true)]
    rate: u64,
    /// gen: frame sizes with weights, e.g. 64:7,576:4,1500:1.
    #[arg(long, default_value = "64", global = true)]
    sizes: String,
    /// gen: who sends to whom.
    #[arg(long, value_enum, default_value_t = FlowsArg::Ring, global = true)]
    flows: FlowsArg,
    /// Frames per burst.
    #[arg(long, default_value_t = 32, global = true)]
    burst: usize,
    /// log2 of each ring's length.
    #[arg(long, default_value_t = 10, global = true)]
    ring_order: u8,
    /// Packet buffers in the pool.
    #[arg(long, default_value_t = 16384, global = true)]
    buffers: u32,
    /// Seconds between live table lines.
    #[arg(long, default_value_t = 1.0, global = true)]
    stats_interval: f64,
    /// Control socket for nicctl (default $XDG_RUNTIME_DIR/nicdrv.sock or /tmp/nicdrv-UID.sock).
    #[arg(long, global = true)]
    control: Option<PathBuf>,
    /// Write the final report as JSON here (demo default:
    /// nicdrv-demo.json in the temporary directory).
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// No live table.
    #[arg(long, global = true)]
    quiet: bool,
    /// DMA memory from 2 MiB huge pages.
    #[arg(long, global = true)]
    hugepages: bool,
    /// Extra vendor:device IDs to accept (hex), e.g. 8086:154c.
    #[arg(long, global = true)]
    pci_id: Vec<String>,
    /// Embedded simulator, forward/echo: frames per second offered from the wire.
    #[arg(long, default_value_t = 100_000, global = true)]
    wire_rate: u64,
    /// Embedded simulator: write the uplink's egress to this capture.
    #[arg(long, global = true)]
    capture: Option<PathBuf>,
    /// forward: destination MAC of every frame forwarded (default
    /// 02:00:00:00:00:NN for egress port NN, as testpmd: no LIF's, so it
    /// leaves by the uplink).
    #[arg(long, global = true, value_parser = relay::parse_mac)]
    peer_mac: Option<[u8; 6]>,
    /// Seed of the generators.
    #[arg(long, default_value_t = 1, global = true)]
    seed: u64,
    /// The P4 program the PF loads into the device: `fairnic` (the
    /// shipped p4/programs/fairnic.p4), a path to a .p4 file, or `none`
    /// (keep the device's built-in L2 switch).
    #[arg(long, default_value = "fairnic", global = true)]
    pipeline: String,
}

/// Compile the program `which` names and load it through the PF.
fn load_pipeline<'a>(
    which: &str,
    mut nics: impl Iterator<Item = &'a Arc<Mutex<Nic>>>,
) -> Result<Option<dataplane::pipeline::Program>, String> {
    if which == "none" {
        return Ok(None);
    }
    let program = if which == "fairnic" {
        p4::fairnic()
    } else {
        p4::compile_file(std::path::Path::new(which)).map_err(|diags| {
            let lines: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
            format!(
                "--pipeline {which}: the program does not compile:\n{}",
                lines.join("\n")
            )
        })?
    };
    let Some(pf) = nics.find(|n| n.lock().unwrap_or_else(|p| p.into_inner()).is_pf()) else {
        println!("nicdrv: no PF among the devices: the pipeline stays as the device has it");
        return Ok(None);
    };
    let image = program.to_image();
    let mut g = pf.lock().unwrap_or_else(|p| p.into_inner());
    g.load_pipeline(&image)
        .map_err(|e| format!("{}: loading pipeline {}: {e}", g.device(), program.name))?;
    println!(
        "nicdrv: pipeline {} loaded ({} bytes; tables {})",
        program.name,
        image.len(),
        program
            .tables
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(Some(program))
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Release);
}

fn parse_id(s: &str) -> Result<(u16, u16), String> {
    let (v, d) = s
        .split_once(':')
        .ok_or_else(|| format!("--pci-id {s}: want VENDOR:DEVICE in hex"))?;
    let h = |x: &str| u16::from_str_radix(x, 16).map_err(|_| format!("--pci-id {s}: '{x}' is not hex"));
    Ok((h(v)?, h(d)?))
}

/// Expand `--device` values into backends; a sim directory means every
/// socket in it, PF first.
fn backends(devices: &[String]) -> Result<Vec<Box<dyn Backend>>, String> {
    let mut out: Vec<Box<dyn Backend>> = Vec::new();
    for d in devices {
        if let Some(bdf) = d.strip_prefix("vfio:") {
            out.push(Box::new(VfioBackend::open(bdf).map_err(|e| e.to_string())?));
        } else if let Some(path) = d.strip_prefix("sim:") {
            let p = Path::new(path);
            if p.is_dir() {
                let mut socks: Vec<PathBuf> = std::fs::read_dir(p)
                    .map_err(|e| format!("{path}: {e}"))?
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "sock"))
                    .collect();
                socks.sort_by_key(|s| (s.file_name() != Some("pf.sock".as_ref()), s.clone()));
                if socks.is_empty() {
                    return Err(format!("{path}: no nicsim sockets (*.sock) in it"));
                }
                for s in socks {
                    out.push(Box::new(VfioUserBackend::connect(&s).map_err(|e| e.to_string())?));
                }
            } else {
                out.push(Box::new(VfioUserBackend::connect(p).map_err(|e| e.to_string())?));
            }
        } else {
            return Err(format!(
                "--device {d}: want vfio:BDF (e.g. vfio:0000:3b:02.0) or sim:PATH"
            ));
        }
    }
    Ok(out)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("NICDRV_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(3),
        Err(e) => {
            eprintln!("nicdrv: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Returns whether the books balanced.
fn run(args: Args) -> Result<bool, String> {
    let app = args.app.unwrap_or(App::Demo);
    let demo = matches!(app, App::Demo);
    if let App::Abi { markdown } = app {
        print!("{}", if markdown { layout::markdown() } else { abi_summary() });
        return Ok(true);
    }
    let sizes = parse_sizes(&args.sizes).map_err(|e| format!("--sizes: {e}"))?;
    let extra_ids = args.pci_id.iter().map(|s| parse_id(s)).collect::<Result<Vec<_>, _>>()?;
    let mode = match args
        .mode
        .unwrap_or(if demo { ModeArg::Interrupt } else { ModeArg::Poll })
    {
        ModeArg::Poll => Mode::Poll,
        ModeArg::Interrupt => Mode::Interrupt,
    };
    let capacity = args.capacity.or(if demo { Some(10_000_000) } else { None });
    if capacity == Some(0) {
        return Err("--capacity 0: a pipeline that moves nothing".into());
    }
    if demo && !(1..=7).contains(&args.passes) {
        return Err(format!("--passes {}: must be 1..=7", args.passes));
    }
    // Times, checked before anything starts.
    let seconds = args.duration.unwrap_or(if demo { 10.0 } else { 5.0 });
    let duration = if seconds == 0.0 {
        Duration::from_secs(u64::MAX / 4)
    } else {
        Duration::try_from_secs_f64(seconds)
            .ok()
            .filter(|d| *d <= Duration::from_secs(1 << 40))
            .ok_or_else(|| format!("--duration {seconds}: want seconds, 0 (until Ctrl-C) or more"))?
    };
    let interval = Duration::try_from_secs_f64(args.stats_interval)
        .ok()
        .filter(|d| *d <= Duration::from_secs(1 << 40))
        .ok_or_else(|| format!("--stats-interval {}: want seconds", args.stats_interval))?
        .max(Duration::from_millis(50));
    if demo {
        if seconds == 0.0 {
            return Err("the demo needs a --duration (its meter change comes at half time)".into());
        }
        if duration < 4 * interval {
            return Err(format!(
                "--duration {seconds}: the demo needs at least 4 times --stats-interval ({:?}): \
                 half time, an interval to settle, two to measure",
                interval
            ));
        }
        if args.victim_rate == 0 {
            return Err("--victim-rate 0: the victims need a rate (frames per second)".into());
        }
    }
    let basis = match args
        .sched
        .unwrap_or(if demo { SchedArg::Packets } else { SchedArg::Cost })
    {
        SchedArg::Packets => dataplane::fair::Basis::Packets,
        SchedArg::Cost => dataplane::fair::Basis::Cost,
    };
    // SAFETY: installing handlers that only store to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }

    // The device: given, or the embedded simulator.
    let mut _sim = None;
    let (mgmt_backends, data_backends) = if args.device.is_empty() {
        let port = match app {
            App::Gen | App::Demo => PortSpec::Null,
            _ => PortSpec::Gen(WireGen {
                rate_pps: args.wire_rate,
                sizes: sizes.clone(),
                flows: (0..args.vfs * args.lifs).map(lif_mac).collect(),
                count: None,
            }),
        };
        let sim = Sim::start(SimConfig {
            device: DeviceConfig {
                vfs: args.vfs,
                pipeline_units_per_sec: capacity,
                // DMA and pipeline depth, with a capacity only.
                transit_ns: if capacity.is_some() { 2_000 } else { 0 },
                basis,
                ..DeviceConfig::default()
            },
            port,
            capture: args.capture.clone(),
            seed: args.seed,
            ..SimConfig::default()
        })
        .map_err(|e| format!("embedded simulator: {e}"))?;
        println!(
            "nicdrv: embedded simulator, 1 PF + {} VFs, pipeline {}, scheduling by {} ({})",
            args.vfs,
            capacity.map_or("as fast as this host runs it".to_string(), |c| format!(
                "{:.1} Munits/s",
                c as f64 / 1e6
            )),
            if basis == dataplane::fair::Basis::Packets {
                "packets"
            } else {
                "cost"
            },
            sim.pf_socket()
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
        let pf: Box<dyn Backend> = Box::new(VfioUserBackend::connect(sim.pf_socket()).map_err(|e| e.to_string())?);
        let vfs: Vec<Box<dyn Backend>> = (0..usize::from(args.vfs))
            .map(|i| {
                VfioUserBackend::connect(sim.vf_socket(i).expect("socket exists"))
                    .map(|b| Box::new(b) as Box<dyn Backend>)
            })
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        _sim = Some(sim);
        (vec![pf], vfs)
    } else {
        (Vec::new(), backends(&args.device)?)
    };

    let nic_cfg = NicConfig {
        mem_kind: if args.hugepages {
            MemKind::HugePages
        } else {
            MemKind::Pages
        },
        extra_ids,
        ..NicConfig::default()
    };
    let open = |b: Box<dyn Backend>| {
        Nic::open(b, &nic_cfg)
            .map(|n| Arc::new(Mutex::new(n)))
            .map_err(|e| e.to_string())
    };
    let mgmt: Vec<Arc<Mutex<Nic>>> = mgmt_backends.into_iter().map(open).collect::<Result<_, _>>()?;
    let data: Vec<Arc<Mutex<Nic>>> = data_backends.into_iter().map(open).collect::<Result<_, _>>()?;
    for n in mgmt.iter().chain(&data) {
        let g = n.lock().unwrap_or_else(|p| p.into_inner());
        println!(
            "nicdrv: {} up: function {} ({:?}), ABI {}.{}, {} LIF slots, {} vectors, {}",
            g.device(),
            g.identity.function_id,
            g.identity.function_kind,
            g.identity.abi_major,
            g.identity.abi_minor,
            g.identity.nlifs,
            g.vectors(),
            g.identity.fw_version
        );
    }
    let loaded = load_pipeline(&args.pipeline, mgmt.iter().chain(&data))?;
    let mem_kind = nic_cfg.mem_kind;
    // The device's events, through the PF, from before the LIFs are made
    // (the applications report them).
    let watch = mgmt
        .iter()
        .chain(&data)
        .find(|n| n.lock().unwrap_or_else(|p| p.into_inner()).is_pf())
        .and_then(|pf| EventWatch::from_now(pf.clone()).ok());
    let mut ports = Ports::setup(data.clone(), args.lifs, args.ring_order, args.buffers, mode, mem_kind)
        .map_err(|e| e.to_string())?;
    if ports.events.is_none() {
        ports.events = watch;
    }

    let state = Arc::new(ControlState {
        nics: mgmt.iter().chain(&data).cloned().collect(),
        app: format!("{app:?}").to_lowercase(),
        app_stats: Mutex::new((0.0, Vec::new())),
        pipeline: Mutex::new(loaded.map(LoadedPipeline::new)),
    });
    let control_path = args.control.clone().unwrap_or_else(mgmt::client::default_socket);
    let _control = match ControlServer::start(&control_path, state.clone()) {
        Ok(c) => {
            println!(
                "nicdrv: control socket {} (nicctl --socket {})",
                c.path().display(),
                c.path().display()
            );
            Some(c)
        }
        Err(e) => {
            eprintln!("nicdrv: no control socket: {e}");
            None
        }
    };
    let mut publish = |t: f64, lifs: Vec<mgmt::proto::AppLif>| {
        *state.app_stats.lock().unwrap_or_else(|p| p.into_inner()) = (t, lifs);
    };
    let (text, json, balanced, fault) = match app {
        App::Demo => {
            if _control.is_none() {
                return Err("the demo changes meters through nicctl, which needs the control socket".into());
            }
            let cfg = DemoConfig {
                duration,
                stats_interval: interval,
                victim_pps: args.victim_rate,
                passes: args.passes,
                capacity: capacity.unwrap_or(10_000_000),
                control: control_path.clone(),
                burst: args.burst.clamp(1, 256),
                seed: args.seed,
                live: !args.quiet,
            };
            let r = host_driver::apps::demo::run(&mut ports, &cfg, &STOP, &mut publish).map_err(|e| e.to_string())?;
            (
                r.text(),
                serde_json::to_string_pretty(&r).expect("serialises"),
                r.gen.conservation.balanced,
                r.gen.fault.clone(),
            )
        }
        App::Gen => {
            let cfg = GenConfig {
                rate_pps: args.rate,
                ports: Vec::new(),
                sizes,
                flows: match args.flows {
                    FlowsArg::Ring => Flows::Ring,
                    FlowsArg::All => Flows::All,
                },
                duration,
                stats_interval: interval,
                burst: args.burst.clamp(1, 256),
                seed: args.seed,
                live: !args.quiet,
            };
            let r = host_driver::apps::gen::run(&mut ports, &cfg, &STOP, &mut |iv| {
                publish(iv.elapsed.as_secs_f64(), iv.lifs.clone());
                std::ops::ControlFlow::Continue(())
            })
            .map_err(|e| e.to_string())?;
            (
                r.text(),
                serde_json::to_string_pretty(&r).expect("serialises"),
                r.conservation.balanced,
                r.fault.clone(),
            )
        }
        App::Forward | App::Echo => {
            let relay = if matches!(app, App::Forward) {
                Relay::Forward
            } else {
                Relay::Echo
            };
            let cfg = RelayConfig {
                relay,
                duration,
                stats_interval: interval,
                live: !args.quiet,
                peer_mac: args.peer_mac,
            };
            let r = relay::run(&mut ports, &cfg, &STOP, &mut publish).map_err(|e| e.to_string())?;
            (
                r.text(),
                serde_json::to_string_pretty(&r).expect("serialises"),
                r.balanced,
                None,
            )
        }
        App::Abi { .. } => unreachable!("handled above"),
    };
    print!("{text}");
    let json_path = args
        .json
        .clone()
        .or_else(|| demo.then(|| std::env::temp_dir().join("nicdrv-demo.json")));
    if let Some(p) = &json_path {
        std::fs::write(p, json).map_err(|e| format!("{}: {e}", p.display()))?;
        println!("report as JSON: {}", p.display());
    }
    if let Some(f) = fault {
        return Err(format!("stopped early: {f}"));
    }
    for n in mgmt.into_iter().chain(data) {
        if let Ok(m) = Arc::try_unwrap(n) {
            let _ = m.into_inner().map(|nic| nic.close());
        }
    }
    Ok(balanced)
}

fn abi_summary() -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "fairnic device ABI {}.{}  (PCI {:04x}:{:04x} PF, {:04x}:{:04x} VF)\n",
        abi::ABI_MAJOR,
        abi::ABI_MINOR,
        abi::PCI_VENDOR_ID,
        abi::PCI_DEVICE_ID_PF,
        abi::PCI_VENDOR_ID,
        abi::PCI_DEVICE_ID_VF
    );
    let _ = writeln!(s, "BAR0");
    for (off, size, what) in layout::bar0_map() {
        let _ = writeln!(s, "  {off:#07x} +{size:<#7x} {what}");
    }
    let _ = writeln!(s, "\nStructures (offset:size, little-endian)");
    for st in layout::structs() {
        let fields: Vec<String> = st
            .fields
            .iter()
            .filter(|f| !f.name.starts_with("rsvd"))
            .map(|f| format!("{}@{}:{}", f.name, f.offset, f.size))
            .collect();
        let _ = writeln!(s, "  {:<16} {:>4} B  {}", st.name, st.size, fields.join(" "));
    }
    let _ = writeln!(s, "\nEnumerations");
    for en in layout::enums() {
        let values: Vec<String> = en.values.iter().map(|(n, _, v, _)| format!("{n}={v:#x}")).collect();
        let _ = writeln!(s, "  {:<14} {}", en.name, values.join(" "));
    }
    let _ = writeln!(s, "\nSpec: docs/device-abi.md");
    s
}
