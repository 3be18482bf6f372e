//! `/metrics` as a scraper sees it: after gen moved traffic through the
//! embedded simulator, every LIF counter the endpoint exports equals what
//! `nicctl --json stats` says; the format follows the `Accept` header;
//! `promtool check metrics` accepts the 0.0.4 text; a real Prometheus
//! server scrapes it and its query API returns nicctl's counts; and bad or
//! idle clients get an answer or a refusal without holding up the others.

// The set-up host-driver's integration tests use, shared, not copied.
#[path = "../../host-driver/tests/support/mod.rs"]
mod support;

use host_driver::control::{ControlServer, ControlState};
use host_driver::mem::MemKind;
use host_driver::metrics::{Metrics, MetricsServer, MAX_CONNECTIONS};
use host_driver::nic::NicConfig;
use nicdrv::apps::gen::{self, Flows, GenConfig};
use nicdrv::apps::{Mode, Ports};
use sim::{ClockKind, PortSpec};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::tools::outside_tool;
use support::{nicctl, open_shared, open_shared_vfs, socket_dir, start_sim};

/// One HTTP/1.1 GET: status, content type, body.
fn get(addr: SocketAddr, path: &str, accept: Option<&str>) -> (u16, String, String) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let accept = accept.map_or_else(String::new, |a| format!("Accept: {a}\r\n"));
    // A server that refuses may close before reading: what it wrote, if
    // anything, is the answer (status 0: none).
    let _ = write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n"
    );
    let mut resp = Vec::new();
    let _ = c.read_to_end(&mut resp);
    parse_response(&String::from_utf8_lossy(&resp))
}

fn parse_response(resp: &str) -> (u16, String, String) {
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((resp, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let ctype = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, ctype, body.to_string())
}

/// The samples of a text exposition: `name{labels}` -> value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// The exported sample that carries LIF counter `key` of `lif` on
/// `function`.
fn sample_name(key: &str, lif: u16, function: u16) -> String {
    let base = format!("lif=\"{lif}\",function=\"{function}\"");
    let (name, extra) = match key {
        "tx_packets" => ("fairnic_lif_packets_total", ",direction=\"tx\"".to_string()),
        "rx_packets" => ("fairnic_lif_packets_total", ",direction=\"rx\"".to_string()),
        "tx_bytes" => ("fairnic_lif_bytes_total", ",direction=\"tx\"".to_string()),
        "rx_bytes" => ("fairnic_lif_bytes_total", ",direction=\"rx\"".to_string()),
        k if k.starts_with("drop_") => ("fairnic_lif_drops_total", format!(",reason=\"{}\"", &k[5..])),
        k if k.starts_with("meter_") => ("fairnic_lif_meter_colors_total", format!(",color=\"{}\"", &k[6..])),
        "cost_units" => ("fairnic_lif_cost_units_total", String::new()),
        "dma_bytes" => ("fairnic_lif_dma_bytes_total", String::new()),
        "doorbells" => ("fairnic_lif_doorbells_total", String::new()),
        "interrupts" => ("fairnic_lif_interrupts_total", String::new()),
        "interrupts_suppressed" => ("fairnic_lif_interrupts_suppressed_total", String::new()),
        "backpressured" => ("fairnic_lif_backpressured_total", String::new()),
        "to_uplink" => ("fairnic_lif_to_uplink_total", String::new()),
        "rx_from_wire" => ("fairnic_lif_rx_from_wire_total", String::new()),
        "to_cpu" => ("fairnic_lif_to_cpu_total", String::new()),
        other => panic!("a counter this test does not know: {other}"),
    };
    format!("{name}{{{base}{extra}}}")
}

struct Setup {
    // Dropped in this order: the servers, the ports (their LIFs), the
    // device.
    control: ControlServer,
    server: MetricsServer,
    metrics: Arc<Metrics>,
    _ports: Ports,
    _sim: sim::Sim,
    /// The control socket's directory, removed last (after the control
    /// server, whose shutdown connects to its socket there).
    _dir: RemoveDir,
}

/// A directory removed when dropped.
struct RemoveDir(std::path::PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// PF + 2 VFs on the embedded simulator, gen's traffic for 300 ms, then
/// the control socket and /metrics over the quiet device.
fn setup(name: &str) -> Setup {
    let sim = start_sim(2, ClockKind::Real, PortSpec::Null);
    let pf = open_shared(sim.pf_socket(), &NicConfig::default());
    let vfs = open_shared_vfs(&sim, 2, &NicConfig::default());
    let mut ports = Ports::setup(vfs.clone(), 1, 9, 2048, Mode::Poll, MemKind::Pages).expect("ports");
    let cfg = GenConfig {
        rate_pps: 20_000,
        ports: Vec::new(),
        sizes: vec![(64, 3), (512, 1)],
        flows: Flows::Ring,
        duration: Duration::from_millis(300),
        stats_interval: Duration::from_millis(100),
        burst: 32,
        seed: 7,
        live: false,
    };
    let stop = AtomicBool::new(false);
    let r = gen::run(&mut ports, &cfg, &stop, &mut |_| std::ops::ControlFlow::Continue(())).expect("gen");
    assert!(r.conservation.balanced);
    let mut nics = vec![pf];
    nics.extend(vfs);
    let state = Arc::new(ControlState {
        nics,
        app: "gen".into(),
        app_stats: Mutex::new((0.0, Vec::new())),
        pipeline: Mutex::new(None),
    });
    let dir = socket_dir(name);
    let control = ControlServer::start(&dir.join("c.sock"), state.clone()).unwrap();
    let metrics = Arc::new(Metrics::new(state.clone()));
    let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), metrics.clone()).unwrap();
    Setup {
        control,
        server,
        metrics,
        _ports: ports,
        _sim: sim,
        _dir: RemoveDir(dir),
    }
}

/// nicctl's counters: LIF -> counter -> value (the uplink left out).
fn nicctl_stats(s: &Setup) -> BTreeMap<u16, BTreeMap<String, u64>> {
    let (code, out, err) = nicctl(s.control.path(), "--json stats");
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    v["stats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["lif"].as_u64() != Some(u64::from(mgmt::proto::UPLINK)))
        .map(|l| {
            let counters = l["counters"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
                .collect();
            (l["lif"].as_u64().unwrap() as u16, counters)
        })
        .collect()
}

/// LIF -> its function, as `nicctl --json lif list` says.
fn functions(s: &Setup) -> BTreeMap<u16, u16> {
    let (code, out, err) = nicctl(s.control.path(), "--json lif list");
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    v["lifs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["lif"].as_u64().unwrap() as u16,
                l["function"].as_u64().unwrap() as u16,
            )
        })
        .collect()
}

#[test]
fn every_lif_counter_equals_nicctls_in_both_formats() {
    let s = setup("metrics-counters");
    let want = nicctl_stats(&s);
    let function = functions(&s);
    assert!(want.len() >= 2);
    assert!(want.values().all(|c| c["tx_packets"] > 0 && c["rx_packets"] > 0));
    let (code, ctype, text) = get(s.server.addr(), "/metrics", None);
    assert_eq!(code, 200);
    assert_eq!(ctype, "text/plain; version=0.0.4; charset=utf-8");
    let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (code, octype, om) = get(s.server.addr(), "/metrics", Some(prom));
    assert_eq!(code, 200);
    assert!(
        octype.starts_with("application/openmetrics-text; version=1.0.0"),
        "{octype}"
    );
    assert!(om.ends_with("# EOF\n"));
    // What serving them cost is counted once each connection ends (before
    // the close the client read to): nothing before the first scrape.
    let cpu = s.metrics.serve_cpu();
    assert!(
        cpu > Duration::ZERO && cpu < Duration::from_secs(10),
        "CPU time serving two scrapes: {cpu:?}"
    );
    for body in [&text, &om] {
        let got = samples(body);
        for (lif, counters) in &want {
            // The wire's counters and the CPU port's injections are the
            // uplink's only (zero on a LIF, not exported there).
            for (k, v) in counters
                .iter()
                .filter(|(k, _)| !k.starts_with("wire_") && *k != "cpu_injected")
            {
                let name = sample_name(k, *lif, function[lif]);
                assert_eq!(got.get(&name), Some(&(*v as f64)), "{name} in:\n{body}");
            }
        }
        assert!(got.contains_key("process_cpu_seconds_total"));
        assert!(got.get("process_resident_memory_bytes").is_some_and(|v| *v > 0.0));
        assert!(got
            .keys()
            .any(|k| k.starts_with("fairnic_device_events_total{kind=\"lif_created\"}")));
        assert!(got.keys().any(|k| k.starts_with("fairnic_lif_info{")));
    }
    // The uplink's own counters, from the wire.
    assert!(samples(&text).contains_key("fairnic_wire_packets_total{lif=\"uplink\",direction=\"rx\"}"));
}

#[test]
fn bad_and_idle_clients_get_an_answer_and_do_not_hold_up_a_scrape() {
    let s = setup("metrics-hostile");
    let addr = s.server.addr();
    let raw = |req: &[u8]| {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let _ = c.write_all(req);
        let mut resp = String::new();
        let _ = c.read_to_string(&mut resp);
        parse_response(&resp).0
    };
    assert_eq!(raw(b"POST /metrics HTTP/1.1\r\n\r\n"), 405);
    assert_eq!(raw(b"GET /nope HTTP/1.1\r\n\r\n"), 404);
    assert_eq!(raw(b"\xff\xfe\r\n\r\n"), 400);
    assert_eq!(raw(b"GET /metrics SPDY/3\r\n\r\n"), 400);
    let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 64 * 1024));
    assert_eq!(raw(&huge), 400);
    // Idle connections (a client that never sends) take slots until the
    // read timeout; past the limit, a refusal, never a hang; a scrape
    // still gets through once they go.
    let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    let (code, _, _) = get(addr, "/metrics", None);
    // 503, or closed before the answer arrived: never a wait.
    assert!(code == 503 || code == 0, "{code}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (code, _, body) = get(addr, "/metrics", None);
        if code == 200 {
            assert!(body.contains("fairnic_lif_packets_total"));
            break;
        }
        assert!(Instant::now() < deadline, "still refused after the idle clients left");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn promtool_accepts_the_text_and_prometheus_scrapes_nicctls_counts() {
    let s = setup("metrics-prometheus");
    let install = "scripts/install-deps --prometheus";
    if outside_tool("promtool", install) {
        let (_, _, text) = get(s.server.addr(), "/metrics", None);
        let mut p = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let out = p.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if !outside_tool("prometheus", install) {
        return;
    }
    let want = nicctl_stats(&s);
    let function = functions(&s);
    let dir = socket_dir("metrics-prometheus-tsdb");
    // A free port for Prometheus's own web API.
    let web = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: fairnic\n    static_configs:\n      - targets: ['{}']\n",
            s.server.addr()
        ),
    )
    .unwrap();
    let mut prom = std::process::Command::new("prometheus")
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .arg(format!("--web.listen-address={web}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (lif, counters) = want.iter().next().unwrap();
    let query = format!(
        "/api/v1/query?query=fairnic_lif_packets_total%7Blif%3D%22{lif}%22%2Cfunction%3D%22{}%22%2Cdirection%3D%22tx%22%7D",
        function[lif]
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let got = loop {
        if let Ok(mut c) = TcpStream::connect(web) {
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let _ = write!(c, "GET {query} HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\n\r\n");
            let mut resp = String::new();
            let _ = c.read_to_string(&mut resp);
            let (code, _, body) = parse_response(&resp);
            if code == 200 {
                // Chunked or not, the JSON object is the body's {...}.
                let json = &body[body.find('{').unwrap_or(0)..=body.rfind('}').unwrap_or(0)];
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(json) {
                    if let Some(val) = v["data"]["result"][0]["value"][1].as_str() {
                        break val.parse::<u64>().unwrap();
                    }
                }
            }
        }
        if Instant::now() > deadline {
            let _ = prom.kill();
            panic!("Prometheus did not scrape nicdrv within 60 s");
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let _ = prom.kill();
    let _ = prom.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(got, counters["tx_packets"]);
}

/// The fairness demo (nicdrv's default application) publishes its
/// latencies and ring occupancy on `/metrics` as gen does: a histogram per
/// receiving LIF whose count grows while the demo runs.
#[test]
fn the_demo_exports_its_latency_histogram() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = socket_dir("metrics-demo");
    let mut nicdrv = Command::new(env!("CARGO_BIN_EXE_nicdrv"))
        .args(["--duration", "30", "--quiet", "--metrics", "127.0.0.1:0", "--control"])
        .arg(dir.join("control.sock"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("nicdrv runs");
    let mut lines = std::io::BufReader::new(nicdrv.stdout.take().unwrap()).lines();
    let addr: SocketAddr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("nicdrv: metrics at http://")
                .and_then(|r| r.strip_suffix("/metrics"))
                .map(|a| a.parse().unwrap())
        })
        .expect("nicdrv says where /metrics is");
    let drain = std::thread::spawn(move || for _ in lines {});
    // The count of LIF 0's latencies, once the demo published some.
    let count = || {
        let (_, _, body) = get(addr, "/metrics", None);
        samples(&body)
            .iter()
            .find(|(k, _)| k.starts_with("fairnic_latency_seconds_count{") && k.contains("lif=\"0\""))
            .map(|(_, &v)| v)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = loop {
        match count() {
            Some(c) if c > 0.0 => break c,
            _ if Instant::now() > deadline => panic!("no latency histogram on /metrics within 20 s"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let (_, _, body) = get(addr, "/metrics", None);
    assert!(body.contains("fairnic_latency_seconds_bucket{"), "{body}");
    assert!(body.contains("fairnic_ring_occupancy{"), "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while count().unwrap_or(0.0) <= first {
        assert!(Instant::now() < deadline, "the count stayed at {first} for 20 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    // SAFETY: kill(2) with a pid this test spawned and has not reaped.
    unsafe { libc::kill(nicdrv.id() as i32, libc::SIGINT) };
    let _ = nicdrv.wait();
    drain.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
