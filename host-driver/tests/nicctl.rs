//! nicctl against a real control socket, served by the driver's control
//! server over a simulated device (PF + one VF): what a lab engineer types,
//! end to end.

mod support;

use host_driver::nic::NicConfig;
use sim::{ClockKind, PortSpec};
use std::sync::{Arc, Mutex};
use support::{nicctl, open_nic, socket_dir, start_control, start_sim};

#[test]
fn lif_list_meter_set_show_stats_and_moderation_through_the_socket() {
    let sim = start_sim(1, ClockKind::Virtual, PortSpec::Null);
    let mut pf = open_nic(sim.pf_socket(), &NicConfig::default(), None);
    let mut vf = open_nic(sim.vf_socket(0).unwrap(), &NicConfig::default(), None);
    let pf_lif = pf.create_lif("uplink0", None).unwrap();
    let vf_lif = vf.create_lif("tenant3", None).unwrap();
    let dir = socket_dir("nicctl-test");
    let pf = Arc::new(Mutex::new(pf));
    let vf = Arc::new(Mutex::new(vf));
    let both = start_control(&dir.join("both.sock"), "test", vec![pf.clone(), vf.clone()], None);
    let s = both.path().to_path_buf();

    let (code, out, err) = nicctl(&s, "hello");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("device granularity: meter rates 1 unit/s, bursts 1 unit"),
        "{out}"
    );
    let (code, out, err) = nicctl(&s, "lif list");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("uplink0") && out.contains("tenant3"), "{out}");

    // The example, and the values the device applied.
    let lif = vf_lif.id.to_string();
    let (code, out, err) = nicctl(
        &s,
        &format!("meter set --lif {lif} --resource bytes --cir 2Gbit/s --cburst 64KiB"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("applied: lif")
            && out.contains("bytes: srtcm cir 250000000 B/s (2 Gbit/s) cburst 65536 B (64 KiB)"),
        "{out}"
    );
    assert!(!out.contains("note:"), "exact values need no note: {out}");
    // A value the device rounds is reported as such.
    let (code, out, err) = nicctl(
        &s,
        &format!("meter set --lif {lif} --resource packets --cir 2.5kpps --cburst 0.5pkt --policy deprioritize"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("note: cburst 0.5 pkt was asked; the device applied 1 pkt"),
        "{out}"
    );
    let (code, out, _) = nicctl(&s, &format!("meter show --lif {lif}"));
    assert_eq!(code, 0);
    assert!(out.contains("bytes: srtcm cir 250000000 B/s"), "{out}");
    assert!(
        out.contains("packets: srtcm cir 2500 pps (2.5 kpps) cburst 1 pkt"),
        "{out}"
    );
    assert!(out.contains("cost: off"), "{out}");
    // JSON for scripts.
    let (code, out, _) = nicctl(&s, &format!("--json meter show --lif {lif} --resource bytes"));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["meter"]["cir"], 250_000_000);
    // The device refuses nonsense the CLI let through (PIR below CIR).
    let (code, _, err) = nicctl(
        &s,
        &format!("meter set --lif {lif} --resource bytes --cir 2Gbit/s --cburst 1KiB --pir 1Gbit/s --pburst 1KiB"),
    );
    assert_eq!(code, 1);
    assert!(err.to_lowercase().contains("pir"), "{err}");

    let (code, out, err) = nicctl(&s, &format!("stats --lif {}", pf_lif.id));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("tx pkt") && out.lines().count() == 2, "{out}");
    let (code, out, err) = nicctl(&s, "--json stats --watch --interval 0.01 --count 2");
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 6, "2 samples x (2 LIFs and the uplink): {out}");
    assert!(lines[0]["per_second"]["tx_packets"].is_number());

    let (code, out, err) = nicctl(
        &s,
        "moderation set --function 1 --vector 0 --mode fixed --latency-us 20 --overflow-us 200",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("applied: function 1 vector 0: fixed, latency 20 us, overflow 200 us"),
        "{out}"
    );
    let (code, out, _) = nicctl(&s, "coalesce show --function 1 --vector 0");
    assert_eq!(code, 0);
    assert!(out.contains("fixed, latency 20 us"), "{out}");

    // A driver that holds only the VF: meters are the PF's business.
    let vf_only = start_control(&dir.join("vf.sock"), "test", vec![vf.clone()], None);
    let (code, _, err) = nicctl(
        vf_only.path(),
        &format!("meter set --lif {lif} --resource bytes --cir 1Gbit/s --cburst 64KiB"),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("permission denied: only the PF may change meters"),
        "{err}"
    );
    drop(both);
    drop(vf_only);
    let _ = std::fs::remove_dir_all(&dir);
}
