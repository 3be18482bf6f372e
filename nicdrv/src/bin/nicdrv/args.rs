//! nicdrv's command line.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Poll,
    Interrupt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlowsArg {
    Ring,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchedArg {
    /// Round robin by packets, as a conventional NIC arbitrates.
    Packets,
    /// Deficit round robin by pipeline cost (fairnic's).
    Cost,
}

#[derive(Debug, Subcommand)]
pub enum App {
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
pub struct Args {
    #[command(subcommand)]
    pub app: Option<App>,
    /// A function to drive: vfio:BDF (bound to vfio-pci) or sim:PATH (a
    /// nicsim socket, or a directory of them). Repeatable. None: start the
    /// embedded simulator.
    #[arg(long, global = true)]
    pub device: Vec<String>,
    /// VFs of the embedded simulator.
    #[arg(long, default_value_t = 4, global = true)]
    pub vfs: u16,
    /// LIFs to create on each function.
    #[arg(long, default_value_t = 1, global = true)]
    pub lifs: u16,
    /// Poll the rings, or sleep on MSI-X interrupts when idle (default:
    /// interrupt for demo, poll otherwise).
    #[arg(long, value_enum, global = true)]
    pub mode: Option<ModeArg>,
    /// Seconds to run, 0: until Ctrl-C (default: 10 for demo, 5 otherwise).
    #[arg(long, global = true)]
    pub duration: Option<f64>,
    /// Embedded simulator: pipeline capacity, cost units per second
    /// (default: 10000000 for demo, unbounded otherwise). The demo sets
    /// its meters against it.
    #[arg(long, global = true)]
    pub capacity: Option<u64>,
    /// Embedded simulator: what the fetch scheduler charges (default:
    /// packets for demo, so the meters do the regulating; cost otherwise).
    #[arg(long, value_enum, global = true)]
    pub sched: Option<SchedArg>,
    /// demo: frames per second each victim offers.
    #[arg(long, default_value_t = 400_000, global = true)]
    pub victim_rate: u64,
    /// demo: extra pipeline passes of each aggressor frame (1..=7).
    #[arg(long, default_value_t = 3, global = true)]
    pub passes: u8,
    /// gen: frames per second per LIF (0: as fast as possible).
    #[arg(long, default_value_t = 0, global = true)]
    pub rate: u64,
    /// gen: frame sizes with weights, e.g. 64:7,576:4,1500:1.
    #[arg(long, default_value = "64", global = true)]
    pub sizes: String,
    /// gen: who sends to whom.
    #[arg(long, value_enum, default_value_t = FlowsArg::Ring, global = true)]
    pub flows: FlowsArg,
    /// Frames per burst.
    #[arg(long, default_value_t = 32, global = true)]
    pub burst: usize,
    /// log2 of each ring's length.
    #[arg(long, default_value_t = 10, global = true)]
    pub ring_order: u8,
    /// Packet buffers in the pool.
    #[arg(long, default_value_t = 16384, global = true)]
    pub buffers: u32,
    /// Seconds between live table lines.
    #[arg(long, default_value_t = 1.0, global = true)]
    pub stats_interval: f64,
    /// Control socket for nicctl (default $XDG_RUNTIME_DIR/nicdrv.sock or /tmp/nicdrv-UID.sock).
    #[arg(long, global = true)]
    pub control: Option<PathBuf>,
    /// Serve /metrics for Prometheus here (OpenMetrics text, or the 0.0.4
    /// text to a scraper that does not ask for OpenMetrics), e.g.
    /// 127.0.0.1:9464; port 0 picks a free one (printed). Off by default.
    #[arg(long, global = true)]
    pub metrics: Option<std::net::SocketAddr>,
    /// Serve P4Runtime (gRPC) for controllers here, over the PF (default
    /// 127.0.0.1:9559 when given without a value; port 0 picks a free one,
    /// printed). Device id 1. Off by default.
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "127.0.0.1:9559")]
    pub p4runtime: Option<std::net::SocketAddr>,
    /// Write the final report as JSON here (demo default:
    /// nicdrv-demo.json in the temporary directory).
    #[arg(long, global = true)]
    pub json: Option<PathBuf>,
    /// No live table.
    #[arg(long, global = true)]
    pub quiet: bool,
    /// DMA memory from 2 MiB huge pages.
    #[arg(long, global = true)]
    pub hugepages: bool,
    /// Extra vendor:device IDs to accept (hex), e.g. 8086:154c.
    #[arg(long, global = true)]
    pub pci_id: Vec<String>,
    /// Embedded simulator, forward/echo: frames per second offered from the wire.
    #[arg(long, default_value_t = 100_000, global = true)]
    pub wire_rate: u64,
    /// Embedded simulator: write the uplink's egress to this capture.
    #[arg(long, global = true)]
    pub capture: Option<PathBuf>,
    /// forward: destination MAC of every frame forwarded (default
    /// 02:00:00:00:00:NN for egress port NN, as testpmd: no LIF's, so it
    /// leaves by the uplink).
    #[arg(long, global = true, value_parser = nicdrv::apps::relay::parse_mac)]
    pub peer_mac: Option<[u8; 6]>,
    /// Seed of the generators.
    #[arg(long, default_value_t = 1, global = true)]
    pub seed: u64,
    /// The P4 program the PF loads into the device: `fairnic` (the
    /// shipped p4/programs/fairnic.p4), a path to a .p4 file, or `none`
    /// (keep the device's built-in L2 switch).
    #[arg(long, default_value = "fairnic", global = true)]
    pub pipeline: String,
}
