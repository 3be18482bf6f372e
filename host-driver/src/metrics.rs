//! `/metrics` for Prometheus: the device's counters, LIF states, events and
//! the application's latency, read when a scraper asks (nothing is counted
//! on the data path for it), in the OpenMetrics text format or, for a
//! scraper that does not accept that, the Prometheus text format 0.0.4
//! (`promtool check metrics` reads only the latter).
//!
//! Every value is read through the same code as the control socket's
//! answers (`ControlState::handle`), so a counter here equals what
//! `nicctl stats --json` says at the same moment.
//!
//! The HTTP side is deliberately small: HTTP/1.x, `GET` only, one request
//! per connection, a request head of at most [`MAX_HEAD`] bytes read within
//! [`READ_TIMEOUT`], at most [`MAX_CONNECTIONS`] at once (more are answered
//! 503 and closed). Nothing a client sends can end the server or the
//! process.

use crate::control::ControlState;
use dataplane::abi::LifCounter;
use mgmt::proto::{self, Answer, Request};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Largest request head read (request line and headers).
pub const MAX_HEAD: usize = 16 * 1024;
/// How long a client may take to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;

/// The exposition formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text (`application/openmetrics-text`).
    OpenMetrics,
    /// Prometheus text 0.0.4 (`text/plain`).
    Text004,
}

impl Format {
    /// The format for a request's `Accept` header: OpenMetrics when the
    /// client names it (Prometheus does), else 0.0.4.
    pub fn for_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.to_ascii_lowercase().contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text004,
        }
    }

    /// The response's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text004 => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// A LIF's latency as a histogram (the application's, cumulative since it
/// started): upper bounds in seconds, a count per bucket (not cumulative),
/// and the sum and count of every sample.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyHistogram {
    pub buckets: Vec<(f64, u64)>,
    pub sum_seconds: f64,
    pub count: u64,
}

/// Latency bucket bounds, seconds: 1 us to 1 s, 1-2-5 steps, then +Inf.
pub const LATENCY_BOUNDS: [f64; 19] = [
    1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.2, 0.5, 1.0,
];

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram::new()
    }
}

impl LatencyHistogram {
    /// Empty, with [`LATENCY_BOUNDS`] and +Inf.
    pub fn new() -> LatencyHistogram {
        LatencyHistogram {
            buckets: LATENCY_BOUNDS.iter().chain(&[f64::INFINITY]).map(|&b| (b, 0)).collect(),
            sum_seconds: 0.0,
            count: 0,
        }
    }

    /// Add `n` samples of `ns` nanoseconds.
    pub fn record(&mut self, ns: u64, n: u64) {
        // Compared in whole nanoseconds: 1000 ns is in the 1 us bucket
        // (1000 * 1e-9 is a hair above 1e-6 in floating point).
        if let Some(b) = self
            .buckets
            .iter_mut()
            .find(|(le, _)| le.is_infinite() || ns as f64 <= (le * 1e9).round())
        {
            b.1 += n;
        }
        self.sum_seconds += ns as f64 * 1e-9 * n as f64;
        self.count += n;
    }
}

/// What the application publishes beside the device's counters.
#[derive(Debug, Default)]
pub struct AppMetrics {
    /// Per LIF: its latency histogram.
    pub latency: Mutex<BTreeMap<u16, LatencyHistogram>>,
    /// Per (LIF, queue, `"tx"` or `"rx"`): descriptors the driver has
    /// posted and the device has not finished, as last published.
    pub ring_occupancy: Mutex<BTreeMap<(u16, u16, &'static str), u32>>,
}

/// The collector: reads everything on each scrape.
#[derive(Debug)]
pub struct Metrics {
    state: Arc<ControlState>,
    pub app: Arc<AppMetrics>,
    /// Events read so far, by kind, and where to read from next.
    events: Mutex<(Option<u64>, BTreeMap<String, u64>)>,
    /// Device reads that failed during scrapes.
    scrape_errors: AtomicU64,
    scrapes: AtomicU64,
    /// CPU time the threads serving `/metrics` connections used, summed
    /// as each connection ends (ns).
    serve_cpu_ns: AtomicU64,
}

/// The family and label a LIF counter is exported under. Exhaustive, so a
/// counter added to the ABI must be given its place here.
fn family(c: LifCounter) -> (&'static str, &'static str, Option<(&'static str, &'static str)>) {
    use LifCounter as C;
    const PACKETS: &str =
        "Frames, by direction: tx the LIF sent (taken from its TX rings), rx delivered to its RX rings.";
    const BYTES: &str = "Bytes of those frames, by direction.";
    const DROPS: &str = "Frames dropped, by reason (each frame ends in exactly one counter).";
    const COLORS: &str = "Frames the LIF's meters marked, by color.";
    const UPLINK: &str = "Uplink only: frames from the wire (rx) and to the wire (tx).";
    match c {
        C::TxPackets => ("fairnic_lif_packets", PACKETS, Some(("direction", "tx"))),
        C::RxPackets => ("fairnic_lif_packets", PACKETS, Some(("direction", "rx"))),
        C::TxBytes => ("fairnic_lif_bytes", BYTES, Some(("direction", "tx"))),
        C::RxBytes => ("fairnic_lif_bytes", BYTES, Some(("direction", "rx"))),
        C::CostUnits => ("fairnic_lif_cost_units", "Pipeline cost units charged.", None),
        C::DmaBytes => ("fairnic_lif_dma_bytes", "Bytes moved by DMA on the LIF's behalf.", None),
        C::DropNoRxBuffer => ("fairnic_lif_drops", DROPS, Some(("reason", "no_rx_buffer"))),
        C::DropMeterRed => ("fairnic_lif_drops", DROPS, Some(("reason", "meter_red"))),
        C::DropParseError => ("fairnic_lif_drops", DROPS, Some(("reason", "parse_error"))),
        C::DropNoRoute => ("fairnic_lif_drops", DROPS, Some(("reason", "no_route"))),
        C::DropQueueError => ("fairnic_lif_drops", DROPS, Some(("reason", "queue_error"))),
        C::DropTooLong => ("fairnic_lif_drops", DROPS, Some(("reason", "too_long"))),
        C::DropPipeline => ("fairnic_lif_drops", DROPS, Some(("reason", "pipeline"))),
        C::DropSpoofed => ("fairnic_lif_drops", DROPS, Some(("reason", "spoofed"))),
        C::DropBadSource => ("fairnic_lif_drops", DROPS, Some(("reason", "bad_source"))),
        C::MeterGreen => ("fairnic_lif_meter_colors", COLORS, Some(("color", "green"))),
        C::MeterYellow => ("fairnic_lif_meter_colors", COLORS, Some(("color", "yellow"))),
        C::MeterRed => ("fairnic_lif_meter_colors", COLORS, Some(("color", "red"))),
        C::Doorbells => ("fairnic_lif_doorbells", "Doorbells received.", None),
        C::Interrupts => (
            "fairnic_lif_interrupts",
            "Interrupts raised for the LIF's queues.",
            None,
        ),
        C::InterruptsSuppressed => (
            "fairnic_lif_interrupts_suppressed",
            "Interrupts withheld because the consumer was polling.",
            None,
        ),
        C::Backpressured => (
            "fairnic_lif_backpressured",
            "Times the fetch scheduler skipped the LIF for backpressure.",
            None,
        ),
        C::ToUplink => (
            "fairnic_lif_to_uplink",
            "Frames the LIF sent that went out of the uplink only.",
            None,
        ),
        C::WireRxPackets => ("fairnic_wire_packets", UPLINK, Some(("direction", "rx"))),
        C::WireTxPackets => ("fairnic_wire_packets", UPLINK, Some(("direction", "tx"))),
        C::RxFromWire => (
            "fairnic_lif_rx_from_wire",
            "Frames from the wire that arrived at this LIF (then delivered or dropped here).",
            None,
        ),
        C::ToCpu => (
            "fairnic_lif_to_cpu",
            "Frames the pipeline program sent to the CPU port (queued for the controller).",
            None,
        ),
        C::DropCpuQueueFull => ("fairnic_lif_drops", DROPS, Some(("reason", "cpu_queue_full"))),
        C::CpuInjected => (
            "fairnic_cpu_injected",
            "Uplink only: frames the controller injected through the CPU port (PacketOut).",
            None,
        ),
    }
}

type Labels = Vec<(&'static str, String)>;

/// One family's samples before encoding.
#[derive(Default)]
struct Family {
    help: &'static str,
    samples: Vec<(Labels, u64)>,
}

impl Metrics {
    pub fn new(state: Arc<ControlState>) -> Metrics {
        Metrics {
            state,
            app: Arc::default(),
            events: Mutex::new((None, BTreeMap::new())),
            scrape_errors: AtomicU64::new(0),
            scrapes: AtomicU64::new(0),
            serve_cpu_ns: AtomicU64::new(0),
        }
    }

    /// CPU time nicdrv's threads spent serving `/metrics` connections that
    /// have ended (reading the request, reading the device, encoding and
    /// writing the answer): what monitoring costs this process.
    pub fn serve_cpu(&self) -> Duration {
        Duration::from_nanos(self.serve_cpu_ns.load(Ordering::Relaxed))
    }

    /// The exposition in `format`.
    pub fn render(self: &Arc<Self>, format: Format) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.clone()));
        let mut out = String::new();
        // Writing to a String cannot fail, and the collector only reports
        // what it read.
        let r = match format {
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry),
            Format::Text004 => prometheus_client::encoding::prometheus_text::encode(&mut out, &registry),
        };
        if r.is_err() {
            self.scrape_errors.fetch_add(1, Ordering::Relaxed);
        }
        out
    }

    fn ask(&self, req: Request) -> Option<Answer> {
        match self.state.handle(req) {
            Ok(a) => Some(a),
            Err(_) => {
                self.scrape_errors.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Read the device's events since the last scrape into the tally.
    fn tally_events(&self) -> BTreeMap<String, u64> {
        let mut g = self.events.lock().unwrap_or_else(|p| p.into_inner());
        // At most 64 pages a scrape: the rest waits for the next one.
        for _ in 0..64 {
            let Some(Answer::Events { events, next }) = self.ask(Request::Events { from: g.0 }) else {
                break;
            };
            for e in &events {
                *g.1.entry(e.kind.clone()).or_insert(0) += 1;
            }
            g.0 = Some(next);
            if events.is_empty() {
                break;
            }
        }
        g.1.clone()
    }
}

fn counter_family(enc: &mut DescriptorEncoder, name: &str, f: &Family) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, f.help, None, MetricType::Counter)?;
    match f.samples.as_slice() {
        [(labels, v)] if labels.is_empty() => ConstCounter::new(*v).encode(m),
        samples => {
            for (labels, v) in samples {
                ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
            }
            Ok(())
        }
    }
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(Labels, f64)],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    match samples {
        [(labels, v)] if labels.is_empty() => ConstGauge::new(*v).encode(m),
        samples => {
            for (labels, v) in samples {
                ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
            }
            Ok(())
        }
    }
}

impl Collector for Metrics {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.scrapes.fetch_add(1, Ordering::Relaxed);
        let rows = match self.ask(Request::LifList) {
            Some(Answer::Lifs { lifs }) => lifs,
            _ => Vec::new(),
        };
        let function_of: BTreeMap<u16, u16> = rows.iter().map(|r| (r.lif, r.function)).collect();
        let stats = match self.ask(Request::Stats { lif: None }) {
            Some(Answer::Stats { stats }) => stats,
            _ => Vec::new(),
        };
        let mut families: BTreeMap<&'static str, Family> = BTreeMap::new();
        for s in &stats {
            let base: Labels = if s.lif == proto::UPLINK {
                vec![("lif", "uplink".to_string())]
            } else {
                vec![
                    ("lif", s.lif.to_string()),
                    (
                        "function",
                        function_of.get(&s.lif).map_or_else(String::new, u16::to_string),
                    ),
                ]
            };
            for &c in LifCounter::ALL {
                let uplink_only = matches!(
                    c,
                    LifCounter::WireRxPackets | LifCounter::WireTxPackets | LifCounter::CpuInjected
                );
                // The wire's counters (and the CPU port's injections) exist
                // on the uplink only.
                if uplink_only != (s.lif == proto::UPLINK) {
                    continue;
                }
                let Some(&v) = s.counters.get(c.key()) else { continue };
                let (name, help, label) = family(c);
                let mut labels = base.clone();
                if let Some((k, val)) = label {
                    labels.push((k, val.to_string()));
                }
                let f = families.entry(name).or_default();
                f.help = help;
                f.samples.push((labels, v));
            }
        }
        for (name, f) in &families {
            counter_family(&mut enc, name, f)?;
        }
        let up: Vec<(Labels, f64)> = rows
            .iter()
            .map(|r| {
                (
                    vec![
                        ("lif", r.lif.to_string()),
                        ("function", r.function.to_string()),
                        ("name", r.name.clone()),
                        ("state", r.state.clone()),
                    ],
                    1.0,
                )
            })
            .collect();
        gauge(
            &mut enc,
            "fairnic_lif_info",
            "Every LIF the device has, with its function, name and state (up, down, error).",
            &up,
        )?;
        let events = self.tally_events();
        let events = Family {
            help: "Device events read since nicdrv started, by kind (resets, faults, regulation, LIFs made and gone).",
            samples: events.into_iter().map(|(k, v)| (vec![("kind", k)], v)).collect(),
        };
        counter_family(&mut enc, "fairnic_device_events", &events)?;
        let occupancy: Vec<(Labels, f64)> = self
            .app
            .ring_occupancy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(&(lif, q, ring), &v)| {
                (
                    vec![
                        ("lif", lif.to_string()),
                        ("queue", q.to_string()),
                        ("ring", ring.to_string()),
                    ],
                    f64::from(v),
                )
            })
            .collect();
        gauge(
            &mut enc,
            "fairnic_ring_occupancy",
            "Descriptors the driver posted that the device has not finished, per queue and ring (tx, rx), as the application last published them.",
            &occupancy,
        )?;
        {
            let latency = self.app.latency.lock().unwrap_or_else(|p| p.into_inner());
            let mut m = enc.encode_descriptor(
                "fairnic_latency_seconds",
                "Frame latency the application measured (sent to received), per receiving LIF.",
                None,
                MetricType::Histogram,
            )?;
            for (lif, h) in latency.iter() {
                let labels: Labels = vec![("lif", lif.to_string())];
                m.encode_family(&labels)?
                    .encode_histogram::<NoLabelSet>(h.sum_seconds, h.count, &h.buckets, None)?;
            }
        }
        process_metrics(&mut enc)?;
        let own = Family {
            help: "Device reads that failed while serving /metrics.",
            samples: vec![(Vec::new(), self.scrape_errors.load(Ordering::Relaxed))],
        };
        counter_family(&mut enc, "fairnic_scrape_errors", &own)?;
        Ok(())
    }
}

/// The process's CPU time, memory, descriptors, threads and start time,
/// from /proc/self (the names Prometheus's client libraries use).
fn process_metrics(enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let Some(p) = ProcStat::read() else { return Ok(()) };
    let m = enc.encode_descriptor(
        "process_cpu_seconds",
        "Total user and system CPU time spent in seconds.",
        None,
        MetricType::Counter,
    )?;
    ConstCounter::new(p.cpu_seconds).encode(m)?;
    let g = |enc: &mut DescriptorEncoder, name: &str, help: &str, v: f64| gauge(enc, name, help, &[(Vec::new(), v)]);
    g(
        enc,
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        p.rss_bytes,
    )?;
    g(
        enc,
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        p.vsize_bytes,
    )?;
    g(
        enc,
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        p.start_time_seconds,
    )?;
    g(enc, "process_open_fds", "Number of open file descriptors.", p.open_fds)?;
    g(
        enc,
        "process_threads",
        "Number of OS threads in the process.",
        p.threads,
    )?;
    Ok(())
}

struct ProcStat {
    cpu_seconds: f64,
    rss_bytes: f64,
    vsize_bytes: f64,
    start_time_seconds: f64,
    open_fds: f64,
    threads: f64,
}

impl ProcStat {
    fn read() -> Option<ProcStat> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may
        // hold spaces: field 3 (state) is the first.
        let rest = stat.get(stat.rfind(')')? + 2..)?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i - 3).and_then(|s| s.parse::<f64>().ok());
        // SAFETY: sysconf only reads a configuration value.
        let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
        let (ticks, page) = (ticks.max(1) as f64, page.max(1) as f64);
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<f64>().ok()))?;
        let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()) as f64;
        Some(ProcStat {
            cpu_seconds: (num(14)? + num(15)?) / ticks,
            threads: num(20)?,
            start_time_seconds: boot + num(22)? / ticks,
            vsize_bytes: num(23)?,
            rss_bytes: num(24)? * page,
            open_fds,
        })
    }
}

/// CPU time the calling thread has used (ns; 0 if the clock is not
/// readable).
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for the call to write; the clock id
    // is a constant every Linux has.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if r != 0 {
        return 0;
    }
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// A running `/metrics` server; stops when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsServer {
    /// Listen on `addr` (port 0: any free port) and serve `metrics`.
    pub fn start(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let busy = Arc::new(AtomicUsize::new(0));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("nicdrv-metrics".into())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        let Ok(mut conn) = conn else { continue };
                        if busy.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                            busy.fetch_sub(1, Ordering::AcqRel);
                            // Take what request has arrived without waiting
                            // (closing on unread bytes would reset the
                            // connection before the client reads the 503).
                            let _ = conn.set_nonblocking(true);
                            let _ = conn.read(&mut [0u8; 4096]);
                            let _ = conn.set_nonblocking(false);
                            let _ = conn.set_write_timeout(Some(Duration::from_millis(100)));
                            let _ = respond(&mut conn, 503, "text/plain", b"too many connections\n");
                            continue;
                        }
                        let (metrics, busy) = (metrics.clone(), busy.clone());
                        let spawned = std::thread::Builder::new()
                            .name("nicdrv-metrics-conn".into())
                            .spawn(move || {
                                serve(&mut conn, &metrics);
                                // This thread serves one connection: its CPU
                                // time is that connection's. Both counted
                                // before the close the client waits for:
                                // once it has its answer, the slot is free.
                                metrics.serve_cpu_ns.fetch_add(thread_cpu_ns(), Ordering::Relaxed);
                                busy.fetch_sub(1, Ordering::AcqRel);
                                drop(conn);
                            });
                        if spawned.is_err() {
                            // The connection was moved into the closure that
                            // did not run: it is closed; the slot is ours to
                            // give back.
                            continue;
                        }
                    }
                })?
        };
        Ok(MetricsServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The method, target and `Accept` header of a request head (the bytes
/// before the blank line), or why not.
pub fn parse_head(head: &[u8]) -> Result<(String, String, Option<String>), &'static str> {
    let text = std::str::from_utf8(head).map_err(|_| "request head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let request = lines.next().ok_or("no request line")?;
    let mut parts = request.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed request line");
    };
    if !version.starts_with("HTTP/1.") {
        return Err("not HTTP/1.x");
    }
    let accept = lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("accept").then(|| v.trim().to_string())
    });
    Ok((method.to_string(), target.to_string(), accept))
}

/// Read one request head (to the blank line) within the limits.
fn read_head(conn: &mut TcpStream) -> Result<Vec<u8>, &'static str> {
    conn.set_read_timeout(Some(READ_TIMEOUT)).map_err(|_| "socket")?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            head.truncate(end);
            return Ok(head);
        }
        if head.len() >= MAX_HEAD {
            return Err("request head too large");
        }
        match conn.read(&mut buf) {
            Ok(0) => return Err("closed before the request ended"),
            Ok(n) => head.extend_from_slice(&buf[..n.min(MAX_HEAD + 4 - head.len())]),
            Err(_) => return Err("no complete request within the timeout"),
        }
    }
}

fn serve(conn: &mut TcpStream, metrics: &Arc<Metrics>) {
    let _ = conn.set_write_timeout(Some(READ_TIMEOUT));
    let head = match read_head(conn) {
        Ok(h) => h,
        Err(why) => {
            let _ = respond(conn, 400, "text/plain", format!("{why}\n").as_bytes());
            return;
        }
    };
    let (method, target, accept) = match parse_head(&head) {
        Ok(r) => r,
        Err(why) => {
            let _ = respond(conn, 400, "text/plain", format!("{why}\n").as_bytes());
            return;
        }
    };
    if method != "GET" && method != "HEAD" {
        let _ = respond(conn, 405, "text/plain", b"only GET\n");
        return;
    }
    let path = target.split('?').next().unwrap_or("");
    match path {
        "/metrics" => {
            let format = Format::for_accept(accept.as_deref());
            let body = metrics.render(format);
            let body = if method == "HEAD" { &b""[..] } else { body.as_bytes() };
            let _ = respond(conn, 200, format.content_type(), body);
        }
        "/" => {
            let _ = respond(conn, 200, "text/plain", b"nicdrv: metrics at /metrics\n");
        }
        _ => {
            let _ = respond(conn, 404, "text/plain", b"not found: metrics are at /metrics\n");
        }
    }
}

fn respond(conn: &mut TcpStream, code: u16, content_type: &str, body: &[u8]) -> std::io::Result<()> {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)?;
    conn.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lif_counter_has_a_family_and_no_two_share_labels() {
        let mut seen = std::collections::HashSet::new();
        for &c in LifCounter::ALL {
            let (name, help, label) = family(c);
            assert!(name.starts_with("fairnic_") && !name.ends_with("_total"), "{name}");
            assert!(!help.is_empty());
            assert!(seen.insert((name, label)), "{c:?} shares {name} {label:?}");
        }
    }

    #[test]
    fn the_format_follows_the_accept_header() {
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::for_accept(Some(prom)), Format::OpenMetrics);
        assert_eq!(Format::for_accept(Some("*/*")), Format::Text004);
        assert_eq!(Format::for_accept(None), Format::Text004);
    }

    #[test]
    fn request_heads_parse_or_are_refused() {
        let (m, t, a) = parse_head(b"GET /metrics HTTP/1.1\r\nHost: x\r\naccept: text/plain").unwrap();
        assert_eq!(
            (m.as_str(), t.as_str(), a.as_deref()),
            ("GET", "/metrics", Some("text/plain"))
        );
        assert!(parse_head(b"GET /metrics").is_err());
        assert!(parse_head(b"GET /metrics SPDY/3").is_err());
        assert!(parse_head(b"GET  /metrics HTTP/1.1").is_err());
        assert!(parse_head(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn latency_samples_land_in_their_bucket() {
        let mut h = LatencyHistogram::new();
        h.record(1_000, 2); // 1 us: the first bucket (le 1e-6)
        h.record(1_500, 1); // 1.5 us: le 2e-6
        h.record(5_000_000_000, 1); // 5 s: +Inf
        assert_eq!(h.buckets[0], (1e-6, 2));
        assert_eq!(h.buckets[1], (2e-6, 1));
        assert_eq!(h.buckets.last().unwrap().1, 1);
        assert_eq!(h.count, 4);
        assert!((h.sum_seconds - 5.0000035).abs() < 1e-9);
    }
}
