//! `nicctl vf`: the PF gives a VF's LIF slot its MAC, spoof check and
//! trust through nicdrv's control socket, as `ip link set DEV vf N` does,
//! and the VF's next LIF gets them.

mod support;

use host_driver::nic::NicConfig;
use sim::{ClockKind, PortSpec};
use std::sync::{Arc, Mutex};
use support::{nicctl, open_nic, socket_dir, start_control, start_sim};

/// The output with every run of spaces made one (columns line up
/// differently with widths).
fn norm(s: &str) -> String {
    s.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_pf_assigns_a_vfs_mac_and_checks_through_nicctl() {
    let sim = start_sim(2, ClockKind::Virtual, PortSpec::Null);
    let pf = open_nic(sim.pf_socket(), &NicConfig::default(), None);
    let dir = socket_dir("nicctl-vf");
    let sock = dir.join("nicdrv.sock");
    let server = start_control(&sock, "test", vec![Arc::new(Mutex::new(pf))], None);

    // The defaults: a VF's slots are checked, untrusted, with no MAC.
    let (code, out, err) = nicctl(&sock, "vf show 1");
    assert_eq!(code, 0, "{err}");
    assert!(norm(&out).contains("vf 1 0 (device's) on off"), "{out}");
    assert_eq!(out.lines().count(), 3, "two slots and a header: {out}");
    let (code, out, _) = nicctl(&sock, "vf show --pf --slot 0");
    assert_eq!(code, 0);
    assert!(norm(&out).contains("pf 0 (device's) off on"), "{out}");

    // Assign VF 1's slot 0 a MAC; change only what is given.
    let (code, out, err) = nicctl(&sock, "vf set 1 --mac 02:aa:bb:cc:dd:01");
    assert_eq!(code, 0, "{err}");
    assert!(norm(&out).contains("vf 1 0 02:aa:bb:cc:dd:01 on off"), "{out}");
    let (code, out, _) = nicctl(&sock, "vf set 1 --trust on");
    assert_eq!(code, 0);
    assert!(norm(&out).contains("02:aa:bb:cc:dd:01 on on"), "the MAC stays: {out}");
    // VF 1's LIF gets it.
    let mut vf = open_nic(sim.vf_socket(1).unwrap(), &NicConfig::default(), None);
    let lif = vf.create_lif("tenant", None).unwrap();
    assert_eq!(lif.mac, [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01]);

    // Refusals are clear, and change nothing.
    let (code, _, err) = nicctl(&sock, "vf set 0 --mac 02:aa:bb:cc:dd:01");
    assert_ne!(code, 0);
    assert!(err.contains("another slot has that MAC already"), "{err}");
    let (code, _, err) = nicctl(&sock, "vf set 0 --mac 01:00:5e:00:00:01");
    assert_ne!(code, 0);
    assert!(err.contains("unicast"), "{err}");
    let (code, _, err) = nicctl(&sock, "vf set 0 --mac nonsense");
    assert_ne!(code, 0);
    assert!(err.contains("not a MAC address"), "{err}");
    let (code, _, err) = nicctl(&sock, "vf set 9");
    assert_ne!(code, 0, "no VF 9");
    assert!(!err.is_empty());
    let (code, _, _) = nicctl(&sock, "vf set 0 --spoofchk maybe");
    assert_eq!(code, 2, "a usage error");
    let (code, out, _) = nicctl(&sock, "vf show 0");
    assert_eq!(code, 0);
    assert!(norm(&out).contains("vf 0 0 (device's) on off"), "{out}");
    // Back to the device's MAC.
    let (code, out, _) = nicctl(&sock, "vf set 1 --mac none");
    assert_eq!(code, 0);
    assert!(norm(&out).contains("(device's)"), "{out}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
