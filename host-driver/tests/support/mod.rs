//! Set-up shared by the integration tests: a simulator, functions opened
//! on its sockets, a control server over them, and nicctl run in-process
//! against that server.

// Each test binary compiles this module on its own and uses a subset of it.
#![allow(dead_code)]

use host_driver::backend::vfio_user::VfioUserBackend;
use host_driver::control::{ControlServer, ControlState, LoadedPipeline};
use host_driver::mem::DmaMemory;
use host_driver::nic::{Nic, NicConfig};
use sim::device::DeviceConfig;
use sim::{ClockKind, PortSpec, Sim, SimConfig};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[path = "tools.rs"]
pub mod tools;

/// Start a simulator with `vfs` VFs on `clock`, its uplink port `port`,
/// and everything else as the defaults have it.
pub fn start_sim(vfs: u16, clock: ClockKind, port: PortSpec) -> Sim {
    Sim::start(SimConfig {
        device: DeviceConfig {
            vfs,
            ..DeviceConfig::default()
        },
        clock,
        port,
        ..SimConfig::default()
    })
    .expect("the simulator starts")
}

/// Bring up the function behind the simulator socket `path` with `cfg`,
/// and map `mem` into it for DMA if one is given.
pub fn open_nic(path: &Path, cfg: &NicConfig, mem: Option<&Arc<DmaMemory>>) -> Nic {
    let backend = VfioUserBackend::connect(path).expect("connect");
    let mut nic = Nic::open(Box::new(backend), cfg).expect("bring-up");
    if let Some(mem) = mem {
        nic.map_memory(mem).expect("map the DMA memory");
    }
    nic
}

/// Bring up the function behind `path` with `cfg`, ready to be shared (with
/// `Ports` or a control server).
pub fn open_shared(path: &Path, cfg: &NicConfig) -> Arc<Mutex<Nic>> {
    Arc::new(Mutex::new(open_nic(path, cfg, None)))
}

/// VFs 0 to `n - 1` of `sim`, each brought up with `cfg` and shared.
pub fn open_shared_vfs(sim: &Sim, n: usize, cfg: &NicConfig) -> Vec<Arc<Mutex<Nic>>> {
    (0..n).map(|i| open_shared(sim.vf_socket(i).unwrap(), cfg)).collect()
}

/// A fresh directory for control sockets, `<temp dir>/<name>-<pid>`; the
/// test removes it when done.
pub fn socket_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Serve `nics` on a control socket at `path`, as application `app`, with
/// `pipeline` as the program loaded through the PF (`None`: the built-in
/// switch).
pub fn start_control(
    path: &Path,
    app: &str,
    nics: Vec<Arc<Mutex<Nic>>>,
    pipeline: Option<LoadedPipeline>,
) -> ControlServer {
    let state = Arc::new(ControlState {
        nics,
        app: app.into(),
        app_stats: Mutex::new((0.0, Vec::new())),
        pipeline: Mutex::new(pipeline),
    });
    ControlServer::start(path, state).unwrap()
}

/// Run nicctl in-process on `socket` with `args` (words split on spaces):
/// its exit code, standard output and standard error.
pub fn nicctl(socket: &Path, args: &str) -> (i32, String, String) {
    let mut all = vec!["nicctl", "--socket", socket.to_str().unwrap()];
    all.extend(args.split_whitespace());
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let code = mgmt::cli::run(all, &mut o, &mut e);
    (code, String::from_utf8(o).unwrap(), String::from_utf8(e).unwrap())
}
