//! `echo` and `forward` against hostile wire traffic: broadcasts (flooded
//! to every LIF), group sources, frames addressed to the other LIF of the
//! relay or claiming to come from it, runts. Each frame that arrives is
//! sent on at most once, and nothing circles inside the device: the
//! device moves no more frames out of the relay's LIFs than arrived at
//! them, and everything the LIFs receive came from the wire.
//!
//! The wire is a capture replayed on the simulator's virtual clock, which
//! a helper thread advances while the relay runs (in real time).

// The set-up host-driver's integration tests use, shared, not copied.
#[path = "../../host-driver/tests/support/mod.rs"]
mod support;

use dataplane::abi::{lif_mac, LifCounter, LifStats};
use dataplane::packet::{build_udp4, Mac};
use host_driver::mem::MemKind;
use host_driver::nic::NicConfig;
use nicdrv::apps::relay::{self, Relay, RelayConfig, RelayReport};
use nicdrv::apps::{Mode, Ports};
use sim::pcap::PcapWriter;
use sim::{ClockKind, PortSpec, Sim};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::{open_shared_vfs, start_sim};

const A: Mac = [0x02, 0xf4, 0x1c, 0, 0, 0];
const B: Mac = [0x02, 0xf4, 0x1c, 0, 0, 1];
const STATION: Mac = [0x02, 0, 0, 0, 0, 0x99];
const GROUP: Mac = [0x01, 0x00, 0x5e, 0, 0, 1];
/// Copies of the set of frames on the wire.
const ROUNDS: u64 = 10;

fn udp(dst: Mac, src: Mac) -> Vec<u8> {
    build_udp4(dst, src, [198, 18, 0, 1], [198, 18, 0, 2], (1, 2), b"hostile", 64)
}

/// Per round: a broadcast and a multicast from a station (each flooded to
/// both LIFs), a group source (dropped by the device at the uplink),
/// frames to the first LIF claiming to come from the second and from
/// itself, a frame to the second LIF from the first's MAC, a plain one to
/// the first, and a runt (the device's parse error).
fn hostile_capture(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{name}-{}.pcap", std::process::id()));
    let mut w = PcapWriter::new(std::io::BufWriter::new(std::fs::File::create(&path).unwrap())).unwrap();
    let mut t = 0;
    for _ in 0..ROUNDS {
        for f in [
            udp([0xff; 6], STATION),
            udp(GROUP, STATION),
            udp(A, GROUP),
            udp(A, B),
            udp(A, A),
            udp(B, A),
            udp(A, STATION),
            vec![0xff; 10],
        ] {
            w.write(t, &f).unwrap();
            t += 1_000;
        }
    }
    w.flush().unwrap();
    path
}

struct Run {
    report: RelayReport,
    /// The relay's LIFs' device counters, summed.
    tx: u64,
    rx: u64,
    rx_from_wire: u64,
    uplink: LifStats,
}

/// Run `relay` on two VFs' LIFs (one each) for 300 ms of real time while
/// the wire replays the hostile capture.
fn run(relay: Relay, name: &str) -> Run {
    let path = hostile_capture(name);
    let sim: Sim = start_sim(2, ClockKind::Virtual, PortSpec::Pcap { path: path.clone() });
    let nics = open_shared_vfs(&sim, 2, &NicConfig::default());
    let mut ports = Ports::setup(nics, 1, 8, 2048, Mode::Poll, MemKind::Pages).unwrap();
    assert_eq!(
        (ports.ports[0].lif.mac, ports.ports[1].lif.mac),
        (lif_mac(0), lif_mac(1))
    );
    assert_eq!((A, B), (lif_mac(0), lif_mac(1)));
    let cfg = RelayConfig {
        relay,
        duration: Duration::from_millis(300),
        stats_interval: Duration::from_secs(3600),
        live: false,
        peer_mac: None,
    };
    let stop = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let report = std::thread::scope(|s| {
        let (sim, done) = (&sim, &done);
        s.spawn(move || {
            while !done.load(Ordering::Acquire) {
                sim.advance(20_000);
                std::thread::sleep(Duration::from_micros(500));
            }
        });
        let r = relay::run(&mut ports, &cfg, &stop, &mut |_, _| {});
        done.store(true, Ordering::Release);
        r.unwrap()
    });
    sim.advance(1_000_000);
    let stats = ports.device_stats().unwrap();
    let sum = |c| stats.iter().map(|s| s.get(c)).sum::<u64>();
    let uplink = support::open_nic(sim.pf_socket(), &NicConfig::default(), None)
        .port_stats()
        .unwrap();
    let _ = std::fs::remove_file(path);
    Run {
        tx: sum(LifCounter::TxPackets),
        rx: sum(LifCounter::RxPackets),
        rx_from_wire: sum(LifCounter::RxFromWire),
        uplink,
        report,
    }
}

/// What every run must show: nothing circled, each arrival sent on at
/// most once, the books balance, and the device's view agrees.
fn check(r: &Run) {
    let rep = &r.report;
    eprintln!(
        "{:?}: wire frames at the LIFs {}, received {}, device moved out of the LIFs {}, dropped {:?}",
        rep.app, r.rx_from_wire, rep.received, r.tx, rep.drops
    );
    assert!(rep.balanced, "{}", rep.text());
    assert_eq!(r.rx, rep.received, "the relay took every frame delivered");
    assert!(
        r.rx <= r.rx_from_wire,
        "every frame the relay's LIFs received came from the wire: {} received, {} from the wire",
        r.rx,
        r.rx_from_wire
    );
    assert!(
        r.tx <= rep.received && r.tx == rep.transmitted,
        "each arrival left at most once: {} arrived, the device moved {}",
        rep.received,
        r.tx
    );
    // The device dropped what no relay should see.
    assert_eq!(r.uplink.get(LifCounter::DropBadSource), ROUNDS);
    assert_eq!(r.uplink.get(LifCounter::DropParseError), ROUNDS);
}

#[test]
fn echo_sends_each_frame_back_once_and_nothing_circles() {
    let r = run(Relay::Echo, "relay-echo");
    check(&r);
    let rep = &r.report;
    // Per round 7 arrivals: broadcast and multicast at both LIFs (4), the
    // frames claiming the relay's own MACs (3), the plain one (1); the
    // three from "relay LIFs" would ping-pong between A and B.
    assert_eq!(rep.received, 8 * ROUNDS, "{}", rep.text());
    assert_eq!(rep.transmitted, 5 * ROUNDS, "{}", rep.text());
    assert_eq!(rep.drops.get("would_loop").copied(), Some(3 * ROUNDS), "{}", rep.text());
    assert!(rep.text().contains("would_loop=30"), "{}", rep.text());
    // Echoed to the station: out of the uplink, from the LIFs' own MACs
    // (nothing dropped as spoofed).
    assert_eq!(r.uplink.get(LifCounter::WireTxPackets), 5 * ROUNDS);
}

#[test]
fn forward_rewrites_addresses_and_nothing_circles() {
    let r = run(Relay::Forward, "relay-forward");
    check(&r);
    let rep = &r.report;
    // Every arrival is forwarded once, to the peer (out of the uplink).
    assert_eq!(rep.received, 8 * ROUNDS, "{}", rep.text());
    assert_eq!(rep.transmitted, 8 * ROUNDS, "{}", rep.text());
    assert_eq!(rep.dropped, 0);
    assert_eq!(r.uplink.get(LifCounter::WireTxPackets), 8 * ROUNDS);
    assert_eq!(
        rep.lifs.iter().map(|l| l.peer_mac.clone().unwrap()).collect::<Vec<_>>(),
        ["02:00:00:00:00:00", "02:00:00:00:00:01"]
    );
}

#[test]
fn forward_refuses_a_peer_that_would_loop() {
    let sim = start_sim(2, ClockKind::Virtual, PortSpec::Null);
    let nics = open_shared_vfs(&sim, 2, &NicConfig::default());
    let mut ports = Ports::setup(nics, 1, 6, 256, Mode::Poll, MemKind::Pages).unwrap();
    let stop = AtomicBool::new(false);
    for (peer, want) in [
        (
            ports.ports[0].lif.mac,
            "--peer-mac 02:f4:1c:00:00:00: LIF 0's own MAC: forwarded frames would come back",
        ),
        ([0xff; 6], "a group address"),
    ] {
        let cfg = RelayConfig {
            relay: Relay::Forward,
            duration: Duration::from_millis(10),
            stats_interval: Duration::from_secs(1),
            live: false,
            peer_mac: Some(peer),
        };
        let e = relay::run(&mut ports, &cfg, &stop, &mut |_, _| {}).unwrap_err();
        assert!(e.to_string().contains(want), "{e}");
    }
}
