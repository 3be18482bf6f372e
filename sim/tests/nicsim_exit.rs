//! What the nicsim binary prints when it exits: every non-zero counter of
//! the uplink (and of every LIF), by name, and a check that every frame
//! from the wire ended in exactly one counter.

use dataplane::packet::build_udp4;
use sim::pcap::PcapWriter;

#[test]
fn nicsim_names_every_counter_of_the_uplink_at_exit_and_checks_the_wire() {
    let dir = std::env::temp_dir().join(format!("nicsim-exit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("in.pcap");
    let stranger = [0x02, 0, 0, 0, 0, 0x99];
    let udp = |dst, src| build_udp4(dst, src, [198, 18, 0, 1], [198, 18, 0, 2], (1, 2), b"x", 64);
    let frames = [
        vec![0xff; 10],
        vec![0x02; 13],
        udp([0x02, 0, 0, 0, 0, 0x42], stranger),
        udp([0x02, 0, 0, 0, 0, 0x43], stranger),
        udp([0x02, 0, 0, 0, 0, 0x44], stranger),
        udp([0x02, 0, 0, 0, 0, 0x45], [0x01, 0x00, 0x5e, 0, 0, 1]),
    ];
    let mut w = PcapWriter::new(std::io::BufWriter::new(std::fs::File::create(&pcap).unwrap())).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write(i as u64 * 1_000, f).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nicsim"))
        .args(["--vfs", "1", "--port", "pcap", "--duration", "0.5", "--socket-dir"])
        .arg(dir.join("socks"))
        .arg("--pcap-in")
        .arg(&pcap)
        .output()
        .expect("nicsim runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every reason, by name, in the ABI's order (not three of eleven).
    assert!(
        stdout.contains("uplink: drop_parse_error=2 drop_no_route=3 drop_bad_source=1 wire_rx_packets=6\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "wire check: 6 frames from the wire; 6 dropped at the uplink + 0 arrivals at LIFs \
             (rx_from_wire, destroyed LIFs' included) = 6: every frame from the wire ended in exactly one counter"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("port pcap:"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
