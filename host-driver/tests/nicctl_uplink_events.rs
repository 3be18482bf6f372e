//! nicctl shows where frames from the wire ended that no LIF took (the
//! uplink's row of `stats`, and `stats --lif uplink`), and the device's
//! events (`events`), through nicdrv's control socket over the simulated
//! device.

mod support;

use dataplane::abi::{
    lif_mac, AdminCommand, EventKind, LifCounter, MeterConfig, MeterMode, MeterPolicy, MeterResource,
};
use dataplane::packet::build_udp4;
use host_driver::control::describe_event;
use host_driver::nic::NicConfig;
use sim::pcap::PcapWriter;
use sim::{ClockKind, PortSpec};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use support::{nicctl, open_nic, socket_dir, start_control, start_sim};

/// A capture of `frames`, 1 µs apart.
fn capture(name: &str, frames: &[Vec<u8>]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{name}-{}.pcap", std::process::id()));
    let mut w = PcapWriter::new(std::io::BufWriter::new(std::fs::File::create(&path).unwrap())).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write(i as u64 * 1_000, f).unwrap();
    }
    w.flush().unwrap();
    path
}

/// Wire frames that end on the uplink: too short to parse, unicast to no
/// LIF, a group source; and one that reaches the VF's LIF.
fn wire_frames() -> Vec<Vec<u8>> {
    let udp = |dst, src| build_udp4(dst, src, [198, 18, 0, 1], [198, 18, 0, 2], (1, 2), b"wire", 64);
    let stranger = [0x02, 0x00, 0x00, 0x00, 0x00, 0x99];
    vec![
        vec![0xff; 10],
        vec![0x02; 13],
        udp([0x02, 0, 0, 0, 0, 0x42], stranger),
        udp([0x02, 0, 0, 0, 0, 0x43], stranger),
        udp([0x02, 0, 0, 0, 0, 0x44], stranger),
        udp(lif_mac(0), [0x01, 0x00, 0x5e, 0, 0, 1]),
        udp(lif_mac(0), stranger),
    ]
}

#[test]
fn the_uplink_is_a_row_of_stats_and_events_are_listed() {
    let path = capture("nicctl-uplink", &wire_frames());
    let sim = start_sim(1, ClockKind::Virtual, PortSpec::Pcap { path: path.clone() });
    let mut pf = open_nic(sim.pf_socket(), &NicConfig::default(), None);
    let mut vf = open_nic(sim.vf_socket(0).unwrap(), &NicConfig::default(), None);
    let vf_lif = vf.create_lif("tenant", None).unwrap();
    assert_eq!(vf_lif.mac, lif_mac(0), "the capture addresses the VF's LIF");
    // The PF regulates the VF's LIF slot; a new LIF there gets the meter
    // again (an event).
    let m = MeterConfig {
        resource: MeterResource::Cost.raw(),
        mode: MeterMode::SrTcm.raw(),
        policy: MeterPolicy::Backpressure.raw(),
        cir: 1_000_000.into(),
        cburst: 4096.into(),
        eburst: 4096.into(),
        ..Default::default()
    };
    pf.set_meter(vf_lif.id, m).unwrap();
    vf.admin(AdminCommand::LifDestroy, vf_lif.id).unwrap();
    let vf_lif = vf.create_lif("tenant", None).unwrap();
    assert_eq!(vf_lif.mac, lif_mac(0), "the LIF number is free again");
    sim.advance(1_000_000);
    let pf = Arc::new(Mutex::new(pf));
    let vf = Arc::new(Mutex::new(vf));
    let dir = socket_dir("nicctl-uplink");
    let both = start_control(&dir.join("both.sock"), "test", vec![pf.clone(), vf.clone()], None);
    let s = both.path().to_path_buf();

    // The uplink's own row: 7 frames from the wire, 6 of them ended there.
    let (code, out, err) = nicctl(&s, "stats");
    assert_eq!(code, 0, "{err}");
    let uplink = out
        .lines()
        .find(|l| l.trim_start().starts_with("uplink "))
        .unwrap_or_else(|| panic!("no uplink row: {out}"));
    let cells: Vec<&str> = uplink.split_whitespace().collect();
    assert_eq!(cells[1..3], ["0", "7"], "tx 0, rx 7 frames from the wire: {out}");
    for want in [
        "uplink drop_bad_source 1",
        "uplink drop_no_route 3",
        "uplink drop_parse_error 2",
        "uplink: rx = frames from the wire",
    ] {
        assert!(out.contains(want), "missing '{want}' in:\n{out}");
    }
    // The VF's LIF row and the uplink's account for every wire frame.
    let (code, out, err) = nicctl(&s, "--json stats");
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let rows = v["stats"].as_array().unwrap();
    let up = rows.iter().find(|r| r["lif"] == 65535).expect("the uplink row");
    let lif = rows.iter().find(|r| r["lif"] == vf_lif.id).expect("the LIF row");
    assert_eq!(up["counters"]["wire_rx_packets"], 7);
    assert_eq!(lif["counters"]["rx_from_wire"], 1);
    let uplink_drops: u64 = LifCounter::DROPS
        .iter()
        .map(|c| up["counters"][c.key()].as_u64().unwrap())
        .sum();
    assert_eq!(uplink_drops + 1, 7, "each wire frame ended in one counter: {v}");

    // --lif uplink alone; a bad --lif is named.
    let (code, out, err) = nicctl(&s, "stats --lif uplink");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().filter(|l| l.trim_start().starts_with("uplink ")).count(),
        1,
        "{out}"
    );
    assert!(
        !out.lines()
            .any(|l| l.trim_start().starts_with(&format!("{} ", vf_lif.id))),
        "{out}"
    );
    let (code, _, err) = nicctl(&s, "stats --lif upstream");
    assert_eq!(code, 2);
    assert!(
        err.contains("'upstream' is not a LIF number (0..=65535) or 'uplink'"),
        "{err}"
    );
    let (code, out, _) = nicctl(&s, "--json stats --lif uplink --watch --interval 0.01 --count 1");
    assert_eq!(code, 0);
    let w: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(w["lif"], 65535);
    assert_eq!(w["counters"]["wire_rx_packets"], 7);

    // Events: the LIFs made and gone, the regulation applied again, the
    // group source dropped at the uplink is not a LIF's event.
    let (code, out, err) = nicctl(&s, "events");
    assert_eq!(code, 0, "{err}");
    for want in [
        "VF 0 created LIF 0 in slot 0",
        "VF 0's LIF 0 in slot 0 destroyed",
        &format!(
            "VF 0 created LIF {} in slot 0: PF regulation applied (cost meter)",
            vf_lif.id
        ),
        "next: ",
    ] {
        assert!(out.contains(want), "missing '{want}' in:\n{out}");
    }
    let next: u64 = out
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("next: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    let (code, out, _) = nicctl(&s, &format!("events --from {next}"));
    assert_eq!(code, 0);
    assert!(out.starts_with("no events\n"), "nothing newer: {out}");
    let (code, out, _) = nicctl(&s, "--json events --from 1");
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(v["events"][0]["seq"], 1, "from where asked: {v}");
    let kinds: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in ["function_reset", "lif_created", "lif_destroyed", "regulation_applied"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    let destroyed = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "lif_destroyed")
        .unwrap();
    assert_eq!(
        (destroyed["function"].as_u64(), destroyed["lif"].as_u64()),
        (Some(1), Some(0))
    );

    // Without the PF: the uplink and the events are the PF's to read.
    let vf_only = start_control(&dir.join("vf.sock"), "test", vec![vf.clone()], None);
    let (code, out, err) = nicctl(vf_only.path(), "stats");
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("uplink"), "no uplink row without the PF: {out}");
    let (code, _, err) = nicctl(vf_only.path(), "stats --lif uplink");
    assert_eq!(code, 1);
    assert!(err.contains("the uplink's counters are read through the PF"), "{err}");
    let (code, _, err) = nicctl(vf_only.path(), "events");
    assert_eq!(code, 1);
    assert!(err.contains("device events are read through the PF"), "{err}");
    drop(both);
    drop(vf_only);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(path);
}

/// Every kind of event in words, and one the driver does not know.
#[test]
fn events_are_described() {
    let ev = |kind: EventKind, detail: u64| dataplane::abi::DeviceEvent {
        kind: kind.raw(),
        function: 2.into(),
        lif: 5.into(),
        slot: 0.into(),
        detail: detail.into(),
        ..Default::default()
    };
    let cases = [
        (ev(EventKind::LifCreated, 0), "VF 1 created LIF 5 in slot 0"),
        (
            ev(EventKind::RegulationApplied, 1 << MeterResource::Cost.raw()),
            "VF 1 created LIF 5 in slot 0: PF regulation applied (cost meter)",
        ),
        (
            ev(EventKind::RegulationApplied, (3 << 32) | 0b11),
            "PF regulation applied (packets, bytes meters); 3 times for this function",
        ),
        (
            ev(EventKind::FunctionReset, dataplane::abi::reset_reason::FLR),
            "VF 1 was reset by a function-level reset",
        ),
        (
            ev(EventKind::SourceDropped, u64::from(LifCounter::DropSpoofed.raw())),
            "VF 1's LIF 5 sent a frame the device dropped, drop_spoofed",
        ),
        (
            ev(EventKind::FunctionError, 0),
            "VF 1 stopped after an internal device error",
        ),
    ];
    for (e, want) in cases {
        let text = describe_event(&e);
        assert!(text.contains(want), "{text}");
    }
    let mut odd = ev(EventKind::LifCreated, 7);
    odd.kind = 99;
    assert!(describe_event(&odd).contains("event kind 99 this driver does not know"));
}
