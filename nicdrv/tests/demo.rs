//! The demo (nicdrv's main job) through the library, as nicdrv runs it: a
//! real-clock simulator with a pipeline capacity and packet scheduling,
//! fairnic.p4 loaded through the PF, the control socket up, and the demo
//! driving nicctl against it. Scaled down (3 VFs, 0.2 Munits/s, 2 s) so that
//! a loaded CI machine carries it with room to spare: the figures checked
//! are shares and ratios the device's scheduler and meters decide, not
//! host speed.

// The set-up host-driver's integration tests use, shared, not copied.
#[path = "../../host-driver/tests/support/mod.rs"]
mod support;

use host_driver::control::LoadedPipeline;
use host_driver::mem::MemKind;
use host_driver::nic::NicConfig;
use nicdrv::apps::demo::{self, DemoConfig, Role};
use nicdrv::apps::{Mode, Ports};
use sim::device::DeviceConfig;
use sim::{ClockKind, PortSpec, Sim, SimConfig};
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use support::{open_shared, open_shared_vfs, socket_dir, start_control};

const CAPACITY: u64 = 200_000;
const VICTIM_PPS: u64 = 11_000;

/// One demo run on a fresh simulator.
fn run_demo() -> demo::DemoReport {
    let sim = Sim::start(SimConfig {
        device: DeviceConfig {
            vfs: 3,
            pipeline_units_per_sec: Some(CAPACITY),
            transit_ns: 2_000,
            basis: dataplane::fair::Basis::Packets,
            ..DeviceConfig::default()
        },
        clock: ClockKind::Real,
        port: PortSpec::Null,
        ..SimConfig::default()
    })
    .unwrap();
    let pf = open_shared(sim.pf_socket(), &NicConfig::default());
    let program = p4::fairnic();
    pf.lock().unwrap().load_pipeline(&program.to_image()).unwrap();
    let vfs = open_shared_vfs(&sim, 3, &NicConfig::default());
    let mut ports = Ports::setup(vfs.clone(), 1, 9, 4096, Mode::Interrupt, MemKind::Pages).unwrap();
    let dir = socket_dir("demo-test");
    let server = start_control(
        &dir.join("nicdrv.sock"),
        "demo",
        std::iter::once(pf.clone()).chain(vfs).collect(),
        Some(LoadedPipeline::new(program)),
    );
    let cfg = DemoConfig {
        duration: Duration::from_millis(2000),
        stats_interval: Duration::from_millis(250),
        victim_pps: VICTIM_PPS,
        passes: 3,
        capacity: CAPACITY,
        control: server.path().to_path_buf(),
        burst: 32,
        seed: 5,
        live: false,
    };
    let r = demo::run(&mut ports, &cfg, &AtomicBool::new(false), &mut |_| {}).unwrap();
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// Whether the pipeline, not this host, was the bottleneck before the
/// change: the LIFs used at least 90% of its capacity.
fn pipeline_bound(r: &demo::DemoReport) -> bool {
    let used: f64 = r.phases[0].lifs.iter().map(|l| l.cost_units_per_s).sum();
    used >= 0.9 * CAPACITY as f64
}

/// What the device's scheduler and meters decide, on one run: `Err` says
/// which figure missed. Real time: a host that cannot send what the
/// victims offer, or stalls through the change, gives the host's figures.
fn figures(r: &demo::DemoReport) -> Result<(), String> {
    let [before, after] = &r.phases[..] else {
        return Err("not two phases".into());
    };
    fn role(p: &demo::Phase, role: Role) -> Vec<demo::LifFigures> {
        p.lifs.iter().filter(|l| l.role == role).cloned().collect()
    }
    let aggressor = |p: &demo::Phase| role(p, Role::Aggressor).remove(0);
    let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_string()) };
    // Before: packet round robin gives the aggressor, whose frames cost 4x,
    // most of the pipeline (fair share 1/3; 4/6 by packets), and the
    // victims less than they offer; every meter is green.
    check(
        aggressor(before).cost_share > 0.55,
        "before: the aggressor's cost share above 55%",
    )?;
    for v in role(before, Role::Victim) {
        check(
            v.tx_pps < 0.92 * VICTIM_PPS as f64,
            "before: victims below 92% of what they offer",
        )?;
        check(v.marks.red == 0, "before: victims' meters never red")?;
    }
    check(
        aggressor(before).marks.red == 0,
        "before: the aggressor's meter never red",
    )?;
    // After: the aggressor's meter is red and deprioritizes it; the
    // victims get what they offer, and the aggressor what is left.
    check(
        aggressor(after).marks.red > aggressor(after).marks.green,
        "after: the aggressor's meter mostly red",
    )?;
    check(
        aggressor(after).cost_share < aggressor(before).cost_share - 0.1,
        "after: the aggressor's cost share 10 points lower",
    )?;
    for v in role(after, Role::Victim) {
        check(
            v.tx_pps > 0.95 * VICTIM_PPS as f64,
            "after: victims send 95% of what they offer",
        )?;
    }
    check(
        r.victim_tx_ratio.is_some_and(|x| x > 1.05),
        "victims sent more after the change",
    )?;
    Ok(())
}

#[test]
fn lowering_the_aggressors_meter_halfway_gives_the_victims_their_rate() {
    // Real time: on a host too busy to carry even this load (shared CI
    // machines: another tenant's burst) the figures are the host's, not
    // the device's; such a run is repeated (at most five times, waiting
    // longer each time: bursts on this VM have lasted over 30 s), and
    // must not happen every time. What does not depend on the host's speed
    // (the books, the commands, the timeline, the report) holds on every
    // run.
    let verdict = |r: &demo::DemoReport| {
        if pipeline_bound(r) {
            figures(r)
        } else {
            Err("not pipeline-bound before the change".to_string())
        }
    };
    let mut r = run_demo();
    let mut missed = Vec::new();
    while let Err(why) = verdict(&r) {
        missed.push(why);
        assert!(
            missed.len() < 6,
            "six runs, none with the device's figures ({missed:?}):\n{}",
            r.text()
        );
        eprintln!("run repeated ({}):\n{}", missed[missed.len() - 1], r.text());
        // Another tenant's burst lasts seconds: let it pass first (2, 4,
        // 8, 16, 32 s).
        std::thread::sleep(Duration::from_secs(1 << missed.len()));
        r = run_demo();
    }

    // The books balance over the whole run.
    let c = &r.gen.conservation;
    assert!(c.balanced, "{}", r.text());
    assert!(c.sent > 12_000, "{}", r.text());

    // Everything went through nicctl: the table entry, a meter per LIF,
    // moderation per VF, and the change.
    let lines: Vec<&str> = r.commands.iter().map(|c| c.line.as_str()).collect();
    assert!(lines[0].starts_with("nicctl table add l2_fwd --key 02:fa:1e:00:00:01 --action to_lif_recirc"));
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("nicctl meter set")).count(),
        3 + 1
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("nicctl moderation set")).count(),
        3
    );
    let change = r.commands.last().unwrap();
    assert!(
        change.line.contains(&format!("--lif {} ", r.aggressor_lif)) && change.line.contains("--cir 66666units/s"),
        "{}",
        change.line
    );
    assert!(change.at_s >= 0.9, "the change came at {} s", change.at_s);

    // The timeline has every interval, in both phases, with the device's
    // counters read each time.
    assert!(r.timeline.len() >= 6, "{}", r.timeline.len());
    assert!(r.timeline.iter().any(|t| t.phase == 1) && r.timeline.iter().any(|t| t.phase == 2));
    assert!(r
        .timeline
        .iter()
        .all(|t| t.lifs.iter().map(|l| l.cost_share).sum::<f64>() > 0.99));
    // The report as text and JSON.
    let text = r.text();
    assert!(
        text.contains("after the change: victims sent") && text.contains("(balanced)"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(json["phases"].as_array().unwrap().len(), 2);
    assert_eq!(json["gen"]["conservation"]["balanced"], true);
}
