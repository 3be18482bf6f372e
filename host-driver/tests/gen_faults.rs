//! nicdrv's traffic generator survives a queue error mid-run: the device
//! stops one LIF's TX queue on an injected bad descriptor, the generator
//! resets the queue and goes on, and its books still balance with the
//! lost frames counted under "queue_reset".

use host_driver::apps::gen::{self, Flows, GenConfig};
use host_driver::apps::{Mode, Ports};
use host_driver::backend::vfio_user::VfioUserBackend;
use host_driver::mem::MemKind;
use host_driver::nic::{Nic, NicConfig};
use sim::device::faults::Fault;
use sim::device::DeviceConfig;
use sim::{ClockKind, PortSpec, Sim, SimConfig};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn gen_resets_a_stopped_queue_and_the_books_balance() {
    let sim = Sim::start(SimConfig {
        device: DeviceConfig {
            vfs: 2,
            ..DeviceConfig::default()
        },
        clock: ClockKind::Real,
        port: PortSpec::Null,
        ..SimConfig::default()
    })
    .unwrap();
    let nics: Vec<Arc<Mutex<Nic>>> = (0..2)
        .map(|i| {
            let b = VfioUserBackend::connect(sim.vf_socket(i).unwrap()).unwrap();
            Arc::new(Mutex::new(Nic::open(Box::new(b), &NicConfig::default()).unwrap()))
        })
        .collect();
    let mut ports = Ports::setup(nics, 1, 8, 4096, Mode::Poll, MemKind::Pages).unwrap();
    let lif = ports.ports[0].lif.id;
    let cfg = GenConfig {
        rate_pps: 200_000,
        ports: Vec::new(),
        sizes: vec![(64, 1)],
        flows: Flows::Ring,
        duration: Duration::from_millis(600),
        stats_interval: Duration::from_secs(3600),
        burst: 16,
        seed: 3,
        live: false,
    };
    let stop = AtomicBool::new(false);
    let report = std::thread::scope(|s| {
        let sim = &sim;
        s.spawn(move || {
            // Twice, well inside the run.
            for _ in 0..2 {
                std::thread::sleep(Duration::from_millis(150));
                sim.device().inject(Fault::BadDescriptor { lif, queue: 0 }).unwrap();
            }
        });
        gen::run(&mut ports, &cfg, &stop, &mut |_| {}).unwrap()
    });
    let c = &report.conservation;
    assert!(c.balanced, "books: {c:?}");
    let resets = report.lifs[0].drops.get("queue_reset").copied().unwrap_or(0);
    assert!(
        resets >= 1,
        "the bad descriptors cost frames, counted: {:?}",
        report.lifs[0].drops
    );
    assert!(
        report.lifs[0].received > 1000 && report.lifs[1].received > 1000,
        "traffic went on"
    );
}
