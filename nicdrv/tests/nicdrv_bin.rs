//! The nicdrv binary end to end on its embedded simulator: it runs the
//! generator in poll and interrupt mode, balances the books, and answers
//! on its control socket while it runs. Built without the embedded
//! simulator (`cargo test -p nicdrv --no-default-features`), the tests
//! that need it are ignored, and nicdrv without `--device` must say what
//! is missing; `--device sim:PATH` still drives a nicsim.

use mgmt::proto::{
    Answer, Meter, MeterMode, MeterPolicy, MeterResource, ModerationMode, ModerationSettings, Request, Response,
};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("nicdrv-bin-{}-{name}", std::process::id()))
}

fn report(path: &PathBuf) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("report written")).expect("report is JSON")
}

/// Run nicdrv with `args`, its control socket and JSON report named after
/// `name`; it must succeed. Its standard output and report.
fn run_ok(args: &[&str], name: &str) -> (String, serde_json::Value) {
    let json = tmp(&format!("{name}.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_nicdrv"))
        .args(args)
        .arg("--control")
        .arg(tmp(&format!("{name}.sock")))
        .arg("--json")
        .arg(&json)
        .output()
        .expect("nicdrv runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&json);
    let _ = std::fs::remove_file(json);
    (stdout, r)
}

#[test]
#[cfg_attr(not(feature = "sim"), ignore = "needs the embedded simulator (feature sim)")]
fn gen_in_both_modes_balances_the_books() {
    for mode in ["poll", "interrupt"] {
        let (stdout, r) = run_ok(
            &[
                "gen",
                "--vfs",
                "3",
                "--duration",
                "1",
                "--rate",
                "50000",
                "--quiet",
                "--mode",
                mode,
                "--sizes",
                "64:3,512:1",
            ],
            mode,
        );
        assert!(stdout.contains("(balanced)"), "{stdout}");
        assert_eq!(r["conservation"]["balanced"], true);
        // The embedded simulator's PF reads the device's events.
        assert!(stdout.contains("event: VF 2 created LIF 2 in slot 0"), "{stdout}");
        assert!(r["device_events"].as_array().unwrap().len() >= 3, "{r}");
        let lifs = r["lifs"].as_array().unwrap();
        assert_eq!(lifs.len(), 3, "one LIF per VF");
        for l in lifs {
            assert!(l["received"].as_u64().unwrap() > 10_000, "{mode}: {l}");
        }
        if mode == "interrupt" {
            assert!(r["interrupts"].as_u64().unwrap() > 0);
        }
    }
}

/// The README's main command with no subcommand is the demo: here shorter
/// and lighter (a debug build on a busy machine carries it), with the
/// pipeline loaded through the PF, the nicctl commands, both phases and
/// the books in its JSON report. What the meters achieve is checked by
/// `tests/demo.rs`; this checks the binary's wiring.
#[test]
#[cfg_attr(not(feature = "sim"), ignore = "needs the embedded simulator (feature sim)")]
fn the_main_command_runs_the_demo() {
    let (stdout, r) = run_ok(
        &[
            "--duration",
            "2",
            "--stats-interval",
            "0.25",
            "--capacity",
            "1000000",
            "--victim-rate",
            "30000",
        ],
        "demo",
    );
    for want in [
        "pipeline fairnic loaded",
        "$ nicctl table add l2_fwd",
        "$ nicctl meter set --lif 3 --resource cost --cir 250000units/s",
        "phase 2: LIF 3's cost meter at its fair share",
        "after the change: victims sent",
        "(balanced)",
        "event: VF 0 created LIF 0 in slot 0",
    ] {
        assert!(stdout.contains(want), "missing '{want}' in:\n{stdout}");
    }
    assert_eq!(r["app"], "demo");
    assert_eq!(r["gen"]["conservation"]["balanced"], true);
    assert_eq!(r["phases"].as_array().unwrap().len(), 2);
    assert!(r["timeline"].as_array().unwrap().len() >= 6);
    assert_eq!(r["gen"]["lifs"].as_array().unwrap().len(), 4, "a LIF per VF");
    // The table entry, a meter per LIF, moderation per VF, the change.
    assert_eq!(r["commands"].as_array().unwrap().len(), 1 + 4 + 4 + 1);
}

fn ask(sock: &PathBuf, line: &str) -> Response {
    let mut s = UnixStream::connect(sock).unwrap();
    s.write_all(line.as_bytes()).unwrap();
    s.write_all(b"\n").unwrap();
    let mut resp = String::new();
    BufReader::new(s).read_line(&mut resp).unwrap();
    mgmt::proto::parse_response(resp.trim_end().as_bytes()).expect("a well-formed response")
}

fn ask_req(sock: &PathBuf, req: &Request) -> Response {
    ask(sock, mgmt::proto::encode(req).trim_end())
}

#[test]
#[cfg_attr(not(feature = "sim"), ignore = "needs the embedded simulator (feature sim)")]
fn the_control_socket_answers_while_traffic_runs() {
    let sock = tmp("ctl.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_nicdrv"))
        .args([
            "gen",
            "--vfs",
            "2",
            "--duration",
            "30",
            "--rate",
            "20000",
            "--quiet",
            "--stats-interval",
            "0.2",
        ])
        .arg("--control")
        .arg(&sock)
        .stdout(Stdio::null())
        .spawn()
        .expect("nicdrv runs");
    let t0 = Instant::now();
    while UnixStream::connect(&sock).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(20), "control socket never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    match ask_req(&sock, &Request::Hello) {
        Response::Ok(Answer::Hello(h)) => {
            assert_eq!(h.app, "gen");
            assert_eq!(h.functions.len(), 3, "PF + 2 VFs");
        }
        other => panic!("{other:?}"),
    }
    let lifs = match ask_req(&sock, &Request::LifList) {
        Response::Ok(Answer::Lifs { lifs }) => lifs,
        other => panic!("{other:?}"),
    };
    assert_eq!(lifs.iter().map(|l| l.lif).collect::<Vec<_>>(), [0, 1]);
    assert!(lifs.iter().all(|l| l.state == "up" && l.txq == 1 && l.rxq == 1));
    // A meter set through the PF comes back as applied.
    let m = Meter {
        resource: MeterResource::Bytes,
        mode: MeterMode::TrTcm,
        policy: MeterPolicy::Backpressure,
        cir: 125_000_000,
        cburst: 65_536,
        pir: 250_000_000,
        pburst: 131_072,
        eburst: 0,
    };
    assert_eq!(
        ask_req(&sock, &Request::MeterSet { lif: 1, meter: m }),
        Response::Ok(Answer::Meter { lif: 1, meter: m })
    );
    // An invalid one is refused with the field named.
    let bad = Meter { pir: 1, ..m };
    match ask_req(&sock, &Request::MeterSet { lif: 1, meter: bad }) {
        Response::Error(e) => assert!(e.contains("meter.pir") && e.contains("PIR must be at least CIR"), "{e}"),
        other => panic!("{other:?}"),
    }
    let c = ModerationSettings {
        mode: ModerationMode::Fixed,
        latency_interval_us: 20,
        overflow_interval_us: 200,
        frame_threshold: 32,
        high_watermark_pct: 90,
    };
    match ask_req(
        &sock,
        &Request::ModerationSet {
            function: 1,
            vector: 0,
            moderation: c,
        },
    ) {
        Response::Ok(Answer::Moderation { moderation, .. }) => assert_eq!(moderation, c),
        other => panic!("{other:?}"),
    }
    // Stats move while traffic runs.
    let rx = |r: Response| match r {
        Response::Ok(Answer::Stats { stats }) => stats[0].counters["rx_packets"],
        other => panic!("{other:?}"),
    };
    let a = rx(ask_req(&sock, &Request::Stats { lif: Some(0) }));
    std::thread::sleep(Duration::from_millis(300));
    let b = rx(ask_req(&sock, &Request::Stats { lif: Some(0) }));
    assert!(b > a, "counters move: {a} then {b}");
    match ask_req(&sock, &Request::AppStats) {
        Response::Ok(Answer::App { lifs, .. }) => assert_eq!(lifs.len(), 2),
        other => panic!("{other:?}"),
    }
    // Garbage gets an error response, and the socket keeps serving.
    match ask(&sock, "{\"op\": \"reboot\"}") {
        Response::Error(e) => assert!(e.contains("reboot"), "{e}"),
        other => panic!("{other:?}"),
    }
    match ask(&sock, "not json at all") {
        Response::Error(_) => {}
        other => panic!("{other:?}"),
    }
    match ask_req(&sock, &Request::Stats { lif: Some(99) }) {
        Response::Error(e) => assert!(e.contains("no LIF 99") || e.contains("NoEntry"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(ask_req(&sock, &Request::Hello), Response::Ok(_)));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert!(status.success(), "exits cleanly, books balanced, on Ctrl-C: {status}");
    assert!(!sock.exists(), "control socket removed");
}

/// Without the embedded simulator (the `sim` feature), nicdrv with no
/// `--device` names the feature and the way out, before it opens anything.
#[test]
#[cfg(not(feature = "sim"))]
fn without_the_sim_feature_no_device_is_explained() {
    for args in [&["gen", "--duration", "1"][..], &[][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_nicdrv")).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("built without the embedded simulator (cargo feature `sim`)")
                && stderr.contains("--device sim:PATH")
                && stderr.contains("--features sim"),
            "{args:?}: {stderr}"
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(" up: function"),
            "{args:?}: nothing opened"
        );
    }
}

#[test]
fn bad_arguments_are_explained() {
    let out = Command::new(env!("CARGO_BIN_EXE_nicdrv"))
        .args(["gen", "--sizes", "64:x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("'x' is not a weight"));
    let out = Command::new(env!("CARGO_BIN_EXE_nicdrv"))
        .args(["gen", "--device", "pci:0000:00:01.0"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("want vfio:BDF"));
    let out = Command::new(env!("CARGO_BIN_EXE_nicdrv"))
        .args(["gen", "--device", "vfio:0000:99:99.9"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("no PCI device 0000:99:99.9"));
    let out = Command::new(env!("CARGO_BIN_EXE_nicdrv"))
        .args(["gen", "--device", "sim:/nonexistent/pf.sock"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("no simulator at /nonexistent/pf.sock"));
    // Times and the demo's own limits, refused before anything starts.
    for (args, want) in [
        (
            &["--duration", "1"][..],
            "the demo needs at least 4 times --stats-interval",
        ),
        (&["--duration", "1e30"][..], "--duration 1000"),
        (
            &["gen", "--stats-interval", "nan"][..],
            "--stats-interval NaN: want seconds",
        ),
        (&["--victim-rate", "0"][..], "--victim-rate 0: the victims need a rate"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_nicdrv")).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(want), "{args:?}: {stderr}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("embedded simulator"),
            "{args:?}: refused before the simulator starts"
        );
    }
}

#[test]
#[cfg_attr(not(feature = "sim"), ignore = "needs the embedded simulator (feature sim)")]
fn forward_and_echo_relay_wire_traffic_and_balance() {
    for app in ["forward", "echo"] {
        let json = tmp(&format!("{app}.json"));
        let out = Command::new(env!("CARGO_BIN_EXE_nicdrv"))
            .args([app, "--vfs", "2", "--duration", "1", "--wire-rate", "20000", "--quiet"])
            .arg("--control")
            .arg(tmp(&format!("{app}.sock")))
            .arg("--json")
            .arg(&json)
            .output()
            .expect("nicdrv runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{app}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r = report(&json);
        assert_eq!(r["balanced"], true, "{app}: {r}");
        // The simulator's generator offers 20 kpps from the wire to the
        // LIFs' MACs; about a second's worth must have been relayed.
        let received = r["received"].as_u64().unwrap();
        assert!(received > 10_000, "{app}: {r}");
        assert_eq!(
            r["transmitted"].as_u64().unwrap() + r["dropped_tx_full"].as_u64().unwrap(),
            received
        );
        let _ = std::fs::remove_file(json);
    }
}

/// The case through the binary: nicdrv gen against a simulator
/// whose uplink delivers wire traffic to gen's LIFs (some too long for
/// their buffers, some broadcast) while it runs. The books, of gen's own
/// frames, balance (exit 0), and the foreign frames are reported apart.
#[test]
fn gen_against_a_device_with_wire_traffic_balances_and_reports_it() {
    let dir = tmp("wire-sim");
    let sim = sim::Sim::start(sim::SimConfig {
        device: sim::device::DeviceConfig {
            vfs: 2,
            ..Default::default()
        },
        port: sim::PortSpec::Gen(sim::port::GenConfig {
            rate_pps: 20_000,
            sizes: vec![(64, 2), (3000, 1)],
            flows: vec![dataplane::abi::lif_mac(0), dataplane::abi::lif_mac(1), [0xff; 6]],
            count: None,
        }),
        socket_dir: Some(dir.clone()),
        ..Default::default()
    })
    .unwrap();
    let device = format!("sim:{}", dir.display());
    let (stdout, r) = run_ok(
        &[
            "gen",
            "--device",
            &device,
            "--duration",
            "1",
            "--rate",
            "20000",
            "--quiet",
            "--pipeline",
            "none",
        ],
        "wire",
    );
    assert!(stdout.contains("(balanced)"), "{stdout}");
    assert!(stdout.contains("foreign at LIF 0: from the wire"), "{stdout}");
    assert!(
        stdout.contains("foreign frames (not gen's, not in the books)"),
        "{stdout}"
    );
    assert!(stdout.contains("event: PF created LIF 0 in slot 0"), "{stdout}");
    assert_eq!(r["conservation"]["balanced"], true);
    assert!(
        r["conservation"]["foreign"]["dropped_from_wire"].as_u64().unwrap() > 0,
        "{r}"
    );
    sim.shutdown();
}

/// `nicdrv gen --metrics 127.0.0.1:0` says where /metrics is, and while
/// gen runs the endpoint carries each LIF's latency histogram and ring
/// occupancy (what gen publishes) beside the device's counters.
#[test]
#[cfg_attr(not(feature = "sim"), ignore = "needs the embedded simulator (feature sim)")]
fn gen_serves_its_latency_and_ring_occupancy_on_metrics() {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_nicdrv"))
        .args(["gen", "--vfs", "2", "--duration", "4", "--rate", "50000", "--quiet"])
        .args(["--metrics", "127.0.0.1:0", "--control"])
        .arg(tmp("metrics.sock"))
        .arg("--json")
        .arg(tmp("metrics.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("nicdrv runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("nicdrv: metrics at http://")
                .and_then(|r| r.strip_suffix("/metrics"))
                .map(String::from)
        })
        .expect("nicdrv says where /metrics is");
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let mut c = std::net::TcpStream::connect(&addr).expect("metrics answers");
        write!(c, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
        let mut body = String::new();
        c.read_to_string(&mut body).unwrap();
        // After gen's first interval (1 s) both are published.
        if body.contains("fairnic_latency_seconds_count{lif=\"1\"}")
            && body.contains("fairnic_ring_occupancy{lif=\"1\"")
        {
            break body;
        }
        assert!(Instant::now() < deadline, "no latency or occupancy after 20 s:\n{body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    for lif in ["0", "1"] {
        for ring in ["tx", "rx"] {
            assert!(
                body.contains(&format!(
                    "fairnic_ring_occupancy{{lif=\"{lif}\",queue=\"0\",ring=\"{ring}\"}}"
                )),
                "{body}"
            );
        }
        let inf = body.lines().find(|l| {
            l.starts_with("fairnic_latency_seconds_bucket{")
                && l.contains(&format!("lif=\"{lif}\""))
                && l.contains("le=\"+Inf\"")
        });
        let count = inf
            .and_then(|l| l.rsplit_once(' '))
            .and_then(|(_, v)| v.parse::<f64>().ok());
        assert!(count.is_some_and(|c| c > 0.0), "{body}");
    }
    for _ in lines {}
    assert!(child.wait().unwrap().success());
}
