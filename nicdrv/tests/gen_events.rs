//! gen reports what the device told the PF while it ran (`EventsGet`):
//! the LIFs it made, a function that reset by itself, and the PF's
//! regulation applied again to the LIF that function made next.

// The set-up host-driver's integration tests use, shared, not copied.
#[path = "../../host-driver/tests/support/mod.rs"]
mod support;

use dataplane::abi::{MeterConfig, MeterMode, MeterPolicy, MeterResource};
use host_driver::mem::MemKind;
use host_driver::nic::NicConfig;
use nicdrv::apps::gen::{self, Flows, GenConfig};
use nicdrv::apps::{EventWatch, Mode, Ports};
use sim::device::faults::Fault;
use sim::{ClockKind, PortSpec};
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use support::{open_shared, open_shared_vfs, start_sim};

#[test]
fn gen_reports_the_devices_events() {
    let sim = start_sim(2, ClockKind::Real, PortSpec::Null);
    // A quick admin timeout: the watchdog's health check is quick.
    let cfg = NicConfig {
        timeout: Duration::from_millis(100),
        ..NicConfig::default()
    };
    let pf = open_shared(sim.pf_socket(), &NicConfig::default());
    let vfs = open_shared_vfs(&sim, 2, &cfg);
    let vf1 = vfs[1].lock().unwrap().identity.function_id;
    // The PF drives no port here (as nicdrv's embedded simulator): its
    // events are watched from before the ports' LIFs are made.
    let watch = EventWatch::from_now(pf.clone()).unwrap();
    let mut ports = Ports::setup(vfs, 1, 8, 8192, Mode::Poll, MemKind::Pages).unwrap();
    assert!(ports.events.is_none(), "no PF among the ports' functions");
    ports.events = Some(watch);
    let (lif0, lif1) = (ports.ports[0].lif.id, ports.ports[1].lif.id);
    // The PF regulates VF 1's slot: whatever LIF it makes there next gets
    // the meter, and the PF hears of it.
    let meter = MeterConfig {
        resource: MeterResource::Cost.raw(),
        mode: MeterMode::SrTcm.raw(),
        policy: MeterPolicy::Deprioritize.raw(),
        cir: 1_000_000_000.into(),
        cburst: 1_000_000.into(),
        eburst: 1_000_000.into(),
        ..Default::default()
    };
    pf.lock().unwrap().set_meter(lif1, meter).unwrap();
    let gcfg = GenConfig {
        rate_pps: 20_000,
        ports: Vec::new(),
        sizes: vec![(64, 1)],
        flows: Flows::Ring,
        duration: Duration::from_millis(1200),
        stats_interval: Duration::from_millis(200),
        burst: 16,
        seed: 5,
        live: false,
    };
    let stop = AtomicBool::new(false);
    let report = std::thread::scope(|s| {
        let sim = &sim;
        s.spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            sim.device().inject(Fault::ResetFunction { function: vf1 }).unwrap();
        });
        gen::run(&mut ports, &gcfg, &stop, &mut |_| std::ops::ControlFlow::Continue(())).unwrap()
    });
    let text = report.text();
    assert!(report.conservation.balanced, "{text}");
    // VF 1 came back with a new LIF (the device may give it the number
    // again).
    let new_lif = report.lifs[1].lif;
    assert!(report.events.iter().any(|e| e.contains("had reset")), "{text}");
    for want in [
        format!("event: VF 0 created LIF {lif0} in slot 0"),
        format!("event: VF 1 created LIF {lif1} in slot 0"),
        "event: VF 1 was reset by the device itself".to_string(),
        format!("event: VF 1 created LIF {new_lif} in slot 0: PF regulation applied (cost meter)"),
    ] {
        assert!(text.contains(&want), "missing '{want}' in:\n{text}");
    }
    assert_eq!(
        report
            .device_events
            .iter()
            .filter(|e| e.contains("PF regulation applied"))
            .count(),
        1,
        "{:?}",
        report.device_events
    );
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["device_events"].as_array().unwrap().len() >= 4, "{json}");
}
