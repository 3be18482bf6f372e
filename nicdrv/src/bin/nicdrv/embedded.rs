//! The embedded simulator: without `--device`, nicdrv starts nicsim in
//! its own process (a PF and `--vfs` VFs) and drives it over vfio-user,
//! as it would a nicsim of its own. It is the cargo feature `sim`, on by
//! default; without it, nicdrv drives only what `--device` names and
//! says so when none is given.

use crate::args::{App, Args};
use dataplane::fair::Basis;
use host_driver::backend::Backend;

/// What nicdrv says when it has no device to drive and no simulator.
#[cfg(not(feature = "sim"))]
pub const NEEDS_FEATURE: &str = "no --device given, and this nicdrv was built without the embedded simulator \
     (cargo feature `sim`): give the functions to drive with --device vfio:BDF or --device sim:PATH \
     (a running nicsim), or build nicdrv with the feature (cargo build -p nicdrv --features sim)";

/// The simulator, running; dropped after the functions are closed.
#[cfg(feature = "sim")]
pub type Guard = sim::Sim;
/// No simulator in this build.
#[cfg(not(feature = "sim"))]
pub enum Guard {}

/// The embedded simulator and its functions' backends.
#[cfg_attr(not(feature = "sim"), allow(dead_code))]
pub struct Embedded {
    pub guard: Guard,
    pub pf: Box<dyn Backend>,
    pub vfs: Vec<Box<dyn Backend>>,
}

/// Start the embedded simulator for `app` as `args` set it up: its
/// uplink silent for gen and the demo, offering `sizes` at `--wire-rate`
/// to every LIF otherwise; `capacity` and `basis` for its pipeline.
#[cfg(feature = "sim")]
pub fn start(
    args: &Args,
    app: &App,
    sizes: &[(usize, u32)],
    capacity: Option<u64>,
    basis: Basis,
) -> Result<Embedded, String> {
    use dataplane::abi::lif_mac;
    use host_driver::backend::vfio_user::VfioUserBackend;
    use sim::device::DeviceConfig;
    use sim::port::GenConfig as WireGen;
    use sim::{PortSpec, Sim, SimConfig};

    let port = match app {
        App::Gen | App::Demo => PortSpec::Null,
        _ => PortSpec::Gen(WireGen {
            rate_pps: args.wire_rate,
            sizes: sizes.to_vec(),
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
        if basis == Basis::Packets { "packets" } else { "cost" },
        sim.pf_socket()
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    let pf: Box<dyn Backend> = Box::new(VfioUserBackend::connect(sim.pf_socket()).map_err(|e| e.to_string())?);
    let vfs: Vec<Box<dyn Backend>> = (0..usize::from(args.vfs))
        .map(|i| {
            VfioUserBackend::connect(sim.vf_socket(i).expect("socket exists")).map(|b| Box::new(b) as Box<dyn Backend>)
        })
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    Ok(Embedded { guard: sim, pf, vfs })
}

/// This build has no embedded simulator: say so, and what to do instead.
#[cfg(not(feature = "sim"))]
pub fn start(
    _args: &Args,
    _app: &App,
    _sizes: &[(usize, u32)],
    _capacity: Option<u64>,
    _basis: Basis,
) -> Result<Embedded, String> {
    Err(NEEDS_FEATURE.into())
}
