//! nicsim: serve a simulated fairnic SmartNIC (one PF, N VFs) over
//! vfio-user until interrupted.

use clap::{Parser, ValueEnum};
use dataplane::abi::{lif_mac, LifCounter, LIF_COUNTERS};
use sim::device::{Device, DeviceConfig};
use sim::port::GenConfig;
use sim::server::remote::RemoteStats;
use sim::{PortSpec, Sim, SimConfig};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PortKind {
    /// No wire: egress is counted and dropped.
    Null,
    /// Egress comes back as ingress.
    Loopback,
    /// Replay a capture as ingress (--pcap-in).
    Pcap,
    /// Offer generated traffic as ingress (--gen-*).
    Gen,
}

/// Serve a simulated fairnic SmartNIC over vfio-user.
#[derive(Debug, Parser)]
#[command(name = "nicsim", version, about)]
struct Args {
    /// Number of SR-IOV virtual functions (each gets its own socket).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(0..=64))]
    vfs: u16,
    /// Directory for the sockets (pf.sock, vf0.sock, ...).
    #[arg(long, default_value = "/tmp/nicsim")]
    socket_dir: PathBuf,
    /// What the uplink is connected to.
    #[arg(long, value_enum, default_value_t = PortKind::Loopback)]
    port: PortKind,
    /// Loopback delay in nanoseconds.
    #[arg(long, default_value_t = 0)]
    loopback_delay_ns: u64,
    /// Capture to replay (with --port pcap).
    #[arg(long)]
    pcap_in: Option<PathBuf>,
    /// Write the uplink's egress to this capture (Wireshark opens it).
    #[arg(long)]
    capture: Option<PathBuf>,
    /// Generator rate, frames per second.
    #[arg(long, default_value_t = 100_000)]
    gen_rate: u64,
    /// Generator frame sizes with weights, e.g. 64:7,576:4,1500:1.
    #[arg(long, default_value = "64:1")]
    gen_sizes: String,
    /// LIF numbers the generator sends to (their device-assigned MACs).
    #[arg(long, default_value = "0")]
    gen_lifs: String,
    /// Stop the generator after this many frames.
    #[arg(long)]
    gen_count: Option<u64>,
    /// Seed of the device's random choices.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Exit after this many seconds (default: run until interrupted).
    #[arg(long)]
    duration: Option<f64>,
    /// What the fetch scheduler's deficit round robin charges: pipeline
    /// cost (fairnic) or packets (a conventional NIC, for comparison).
    #[arg(long, value_enum, default_value_t = Sched::Cost)]
    sched: Sched,
    /// DRR quantum per LIF per round, in the scheduler's unit.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    quantum: u64,
    /// Pipeline capacity in cost units per second (a 64-byte UDP frame
    /// costs 5); default: as fast as this host runs the simulator.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    capacity: Option<u64>,
    /// Fixed latency from the pipeline to the completion, ns (with --capacity).
    #[arg(long, default_value_t = 0)]
    transit_ns: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Sched {
    Cost,
    Packets,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Release);
}

fn parse_sizes(s: &str) -> Result<Vec<(usize, u32)>, String> {
    s.split(',')
        .map(|part| {
            let (size, weight) = part.split_once(':').unwrap_or((part, "1"));
            let size = size
                .trim()
                .parse()
                .map_err(|_| format!("--gen-sizes: '{size}' is not a frame size"))?;
            let weight = weight
                .trim()
                .parse()
                .map_err(|_| format!("--gen-sizes: '{weight}' is not a weight"))?;
            Ok((size, weight))
        })
        .collect()
}

fn parse_lifs(s: &str) -> Result<Vec<[u8; 6]>, String> {
    s.split(',')
        .map(|p| {
            p.trim()
                .parse::<u16>()
                .map(lif_mac)
                .map_err(|_| format!("--gen-lifs: '{p}' is not a LIF number"))
        })
        .collect()
}

fn port_spec(a: &Args) -> Result<PortSpec, String> {
    Ok(match a.port {
        PortKind::Null => PortSpec::Null,
        PortKind::Loopback => PortSpec::Loopback {
            delay_ns: a.loopback_delay_ns,
        },
        PortKind::Pcap => PortSpec::Pcap {
            path: a.pcap_in.clone().ok_or("--port pcap needs --pcap-in FILE")?,
        },
        PortKind::Gen => PortSpec::Gen(GenConfig {
            rate_pps: a.gen_rate,
            sizes: parse_sizes(&a.gen_sizes)?,
            flows: parse_lifs(&a.gen_lifs)?,
            count: a.gen_count,
        }),
    })
}

/// `DropNoRxBuffer` -> `drop_no_rx_buffer` (as nicctl names counters).
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// Every non-zero counter, `name=value ...` (`-` if none).
fn nonzero(counters: &[u64; LIF_COUNTERS]) -> String {
    let v: Vec<String> = LifCounter::ALL
        .iter()
        .filter(|&&c| counters[c as usize] != 0)
        .map(|&c| format!("{}={}", snake(c.name()), counters[c as usize]))
        .collect();
    if v.is_empty() {
        "-".into()
    } else {
        v.join(" ")
    }
}

fn function_name(f: u16) -> String {
    match f {
        0 => "PF".into(),
        n => format!("VF {}", n - 1),
    }
}

/// What nicsim prints when it exits: the uplink's counters, every LIF's
/// (and each function's destroyed LIFs'), every non-zero one by name, and
/// a check that every frame from the wire ended in exactly one counter.
/// The device is locked throughout: one moment's counters.
fn exit_report(d: &Device, by_message: &[&RemoteStats], seconds: f64) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let ps = d.port.stats();
    let _ = writeln!(
        s,
        "nicsim: {seconds:.1} s; port {}: {} frames in, {} out",
        d.port.describe(),
        ps.rx_frames,
        ps.tx_frames
    );
    let up = &d.uplink_counters;
    let _ = writeln!(s, "uplink: {}", nonzero(up));
    let mut at_lifs = 0u64;
    for l in d.lifs.iter().flatten() {
        at_lifs += l.counter(LifCounter::RxFromWire);
        let _ = writeln!(
            s,
            "lif {} ({} slot {}): {}",
            l.id,
            function_name(l.function),
            l.slot,
            nonzero(&l.counters)
        );
    }
    for (f, m) in d.functions.iter().zip(by_message) {
        let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        let (reads, writes) = (get(&m.reads), get(&m.writes));
        if reads + writes + get(&m.busy) + get(&m.failures) > 0 {
            let _ = writeln!(
                s,
                "{} by message (DMA_READ/DMA_WRITE on its socket): {reads} reads ({} bytes), {writes} writes ({} bytes), \
                 {} reads put off (the client was waiting for the device), {} failed",
                function_name(f.id),
                get(&m.bytes_read),
                get(&m.bytes_written),
                get(&m.busy),
                get(&m.failures)
            );
        }
    }
    for f in &d.functions {
        at_lifs += f.retired[LifCounter::RxFromWire as usize];
        if f.retired.iter().any(|&v| v != 0) {
            let _ = writeln!(
                s,
                "{}, its destroyed LIFs: {}",
                function_name(f.id),
                nonzero(&f.retired)
            );
        }
    }
    // Each frame from the wire ends in one of the uplink's drop counters,
    // or arrives at a LIF (RxFromWire there, then delivered or dropped and
    // counted there). A flood arrives at every LIF: one frame, several
    // arrivals.
    let wire = up[LifCounter::WireRxPackets as usize];
    let dropped: u64 = LifCounter::DROPS.iter().map(|&c| up[c as usize]).sum();
    let ended = dropped + at_lifs;
    let _ = write!(
        s,
        "wire check: {wire} frames from the wire; {dropped} dropped at the uplink + {at_lifs} arrivals at LIFs \
         (rx_from_wire, destroyed LIFs' included) = {ended}: "
    );
    let _ = writeln!(
        s,
        "{}",
        match ended.cmp(&wire) {
            std::cmp::Ordering::Equal => "every frame from the wire ended in exactly one counter (a flooded frame \
                 arrives at every LIF and counts at each: with floods, extra arrivals could hide as many lost \
                 frames)"
                .to_string(),
            std::cmp::Ordering::Greater => format!(
                "{} more arrivals than frames: copies of flooded (group-addressed) frames, one per LIF; \
                 with floods this check cannot show that no frame was lost",
                ended - wire
            ),
            std::cmp::Ordering::Less => format!(
                "{} frames from the wire are in no counter (sent back out of the uplink by a table entry, \
                 flooded when no LIF exists, or lost)",
                wire - ended
            ),
        }
    );
    s
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("NICSIM_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let port = match port_spec(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("nicsim: {e}");
            return ExitCode::from(2);
        }
    };
    let cfg = SimConfig {
        device: DeviceConfig {
            vfs: args.vfs,
            basis: match args.sched {
                Sched::Cost => dataplane::fair::Basis::Cost,
                Sched::Packets => dataplane::fair::Basis::Packets,
            },
            quantum: args.quantum,
            pipeline_units_per_sec: args.capacity,
            transit_ns: args.transit_ns,
            ..DeviceConfig::default()
        },
        port,
        capture: args.capture.clone(),
        socket_dir: Some(args.socket_dir.clone()),
        seed: args.seed,
        ..SimConfig::default()
    };
    let sim = match Sim::start(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nicsim: {e}");
            return ExitCode::FAILURE;
        }
    };
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    println!("nicsim: 1 PF + {} VFs, port {}", args.vfs, sim.device().port.describe());
    for (i, s) in sim.sockets().iter().enumerate() {
        let name = if i == 0 {
            "pf".to_string()
        } else {
            format!("vf{}", i - 1)
        };
        println!("  {name:<4} {}", s.display());
    }
    let t0 = Instant::now();
    while !STOP.load(Ordering::Acquire) && args.duration.is_none_or(|d| t0.elapsed().as_secs_f64() < d) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let by_message: Vec<&RemoteStats> = (0..sim.device().functions.len() as u16)
        .filter_map(|f| sim.by_message(f))
        .collect();
    print!(
        "{}",
        exit_report(&sim.device(), &by_message, t0.elapsed().as_secs_f64())
    );
    sim.shutdown();
    ExitCode::SUCCESS
}
