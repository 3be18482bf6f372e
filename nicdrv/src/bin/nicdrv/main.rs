//! nicdrv: fairnic's userspace driver and its built-in applications.
//!
//!     nicdrv                       the fairness demo on the embedded simulator (PF + 4 VFs)
//!     nicdrv gen                   offer load on every LIF; throughput, latency, books
//!     nicdrv gen --device vfio:0000:3b:02.0 --device vfio:0000:3b:02.1
//!     nicdrv echo --device sim:/tmp/nicsim
//!     nicdrv abi                   the device ABI this driver speaks

mod args;
mod devices;
mod embedded;

use args::{App, Args, FlowsArg, ModeArg, SchedArg};
use clap::Parser;
use dataplane::abi::{self, layout};
use host_driver::backend::Backend;
use host_driver::control::{ControlServer, ControlState, LoadedPipeline};
use host_driver::mem::MemKind;
use host_driver::nic::{Nic, NicConfig};
use nicdrv::apps::demo::{self, DemoConfig};
use nicdrv::apps::gen::{self, Flows, GenConfig};
use nicdrv::apps::relay::{self, Relay, RelayConfig};
use nicdrv::apps::{parse_sizes, EventWatch, Mode, Ports};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

static STOP: AtomicBool = AtomicBool::new(false);

use nicdrv::p4runtime::DEVICE_ID as P4RUNTIME_DEVICE_ID;

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Release);
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
fn run(mut args: Args) -> Result<bool, String> {
    let app = args.app.take().unwrap_or(App::Demo);
    let demo = matches!(app, App::Demo);
    if let App::Abi { markdown } = app {
        print!("{}", if markdown { layout::markdown() } else { abi_summary() });
        return Ok(true);
    }
    let sizes = parse_sizes(&args.sizes).map_err(|e| format!("--sizes: {e}"))?;
    let extra_ids = args
        .pci_id
        .iter()
        .map(|s| devices::parse_id(s))
        .collect::<Result<Vec<_>, _>>()?;
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

    // The device: given, or the embedded simulator (dropped last, after
    // the functions are closed).
    let (_sim, mgmt_backends, data_backends) = if args.device.is_empty() {
        let e = embedded::start(&args, &app, &sizes, capacity, basis)?;
        (Some(e.guard), vec![e.pf], e.vfs)
    } else {
        (None, Vec::new(), devices::backends(&args.device)?)
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
    let loaded = devices::load_pipeline(&args.pipeline, mgmt.iter().chain(&data))?;
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
    let metrics = Arc::new(host_driver::metrics::Metrics::new(state.clone()));
    let _metrics_server = match args.metrics {
        Some(addr) => match host_driver::metrics::MetricsServer::start(addr, metrics.clone()) {
            Ok(m) => {
                println!("nicdrv: metrics at http://{}/metrics", m.addr());
                Some(m)
            }
            Err(e) => return Err(format!("--metrics {addr}: {e}")),
        },
        None => None,
    };
    let _p4runtime = match args.p4runtime {
        Some(addr) => {
            let target = nicdrv::p4runtime::PfTarget { state: state.clone() };
            let service = p4rt::server::Service::new(P4RUNTIME_DEVICE_ID, target);
            match p4rt::server::Server::start(addr, service) {
                Ok(s) => {
                    println!("nicdrv: P4Runtime at {} (device id {P4RUNTIME_DEVICE_ID})", s.addr());
                    Some(s)
                }
                Err(e) => return Err(format!("--p4runtime {addr}: {e}")),
            }
        }
        None => None,
    };
    let mut publish = |t: f64, lifs: Vec<mgmt::proto::AppLif>| {
        *state.app_stats.lock().unwrap_or_else(|p| p.into_inner()) = (t, lifs);
    };
    // gen's and the demo's intervals: latencies into each LIF's cumulative
    // histogram and the rings' occupancy, read by /metrics.
    let record = |iv: &gen::Interval<'_>| {
        if args.metrics.is_none() {
            return;
        }
        let mut lat = metrics.app.latency.lock().unwrap_or_else(|p| p.into_inner());
        for (l, h) in iv.lifs.iter().zip(iv.latency) {
            let cum = lat.entry(l.lif).or_default();
            for v in h.iter_recorded() {
                cum.record(v.value_iterated_to(), v.count_at_value());
            }
        }
        drop(lat);
        let mut occ = metrics.app.ring_occupancy.lock().unwrap_or_else(|p| p.into_inner());
        for &(lif, q, tx, rx) in &iv.occupancy {
            occ.insert((lif, q, "tx"), tx);
            occ.insert((lif, q, "rx"), rx);
        }
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
            let r = demo::run(&mut ports, &cfg, &STOP, &mut |iv| {
                record(iv);
                publish(iv.elapsed.as_secs_f64(), iv.lifs.clone());
            })
            .map_err(|e| e.to_string())?;
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
            let r = gen::run(&mut ports, &cfg, &STOP, &mut |iv| {
                record(iv);
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

/// The device ABI this driver speaks, in brief (`nicdrv abi`).
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
