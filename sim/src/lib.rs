//! nicsim: the simulated fairnic SmartNIC, as seen through VFIO.
//!
//! One PF and N VFs, each a PCI function served on its own vfio-user
//! socket (nicsim's own server, [`server`]), implementing the device ABI of
//! [`dataplane::abi`]: configuration space with MSI-X and (on the PF)
//! SR-IOV, BAR0 with mappable doorbell pages backed by a shared memfd, DMA
//! through the memory the client maps, MSI-X through the eventfds the
//! client passes, reset. Behind the functions: the mailbox, the admin
//! queue, a fetch engine per TX queue, RX delivery into posted buffers, an
//! internal switch between LIFs and the uplink, and a wire port
//! (`loopback`, `pcap`, a traffic generator, or nothing).
//!
//! [`Sim::start`] is the embedded mode: it starts the device on threads in
//! this process and returns the socket paths. On the real clock an engine
//! thread polls the device; on the virtual clock nothing moves until the
//! caller calls [`Sim::advance`], so a seeded scenario replays exactly.
//!
//! What this crate must never do: panic or stop serving because of what a
//! client sent. Malformed commands complete with an error status, bad
//! descriptors stop their own queue with a completion naming the cause,
//! and a malformed protocol message drops that client's connection.

pub mod clock;
pub mod device;
pub mod dma;
pub mod pcap;
pub mod pci;
pub mod port;
pub mod server;

use clock::{Nanos, SimClock};
use device::engine::{IdleWait, Wait};
use device::{Device, DeviceConfig};
use port::{GenConfig, GenPort, LoopbackPort, NullPort, PcapPort, Port};
use server::Shared;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// Which clock the device runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockKind {
    /// Wall time; an engine thread polls the device.
    Real,
    /// Virtual time; the caller drives it with [`Sim::advance`].
    Virtual,
}

/// What the uplink is connected to.
#[derive(Debug, Clone, PartialEq)]
pub enum PortSpec {
    Null,
    Loopback { delay_ns: Nanos },
    Pcap { path: PathBuf },
    Gen(GenConfig),
}

/// Everything `Sim::start` needs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub device: DeviceConfig,
    pub clock: ClockKind,
    pub port: PortSpec,
    /// Write the uplink's egress to this capture.
    pub capture: Option<PathBuf>,
    /// Where the sockets go; `None`: a fresh directory under the system's
    /// temporary directory, removed again when the `Sim` stops.
    pub socket_dir: Option<PathBuf>,
    /// Seed of every random choice the device makes (traffic generator).
    pub seed: u64,
    /// Longest sleep of the idle engine (real clock): the worst-case delay
    /// before the device notices a doorbell after a quiet spell.
    pub max_idle_sleep: Duration,
    /// A client waiting for a reply on any connection of its process puts
    /// off the device's reads by message on all of them (QEMU's big lock
    /// covers every device it serves). Off: each connection counts alone
    /// (tests that run independent clients in one process).
    pub group_clients_by_process: bool,
}

/// Pipeline capacity on the virtual clock when the configuration names
/// none: 100 M cost units/s, 50 ns for a plain UDP frame (5 units).
pub const DEFAULT_VIRTUAL_CAPACITY: u64 = 100_000_000;

/// What a real-clock engine thread's wake-up may take beyond its sleep on
/// a loaded host, ns (part of the pipeline's lead on the real clock).
pub const REAL_CLOCK_WAKEUP_NS: u64 = 100_000;

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            device: DeviceConfig::default(),
            clock: ClockKind::Real,
            port: PortSpec::Loopback { delay_ns: 0 },
            capture: None,
            socket_dir: None,
            seed: 0,
            max_idle_sleep: Duration::from_micros(50),
            group_clients_by_process: true,
        }
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("socket directory {path}: {source}")]
    SocketDir { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Serve(#[from] server::ServeError),
    #[error("device: {0}")]
    Device(std::io::Error),
    #[error("port: {0}")]
    Port(String),
    #[error("capture {path}: {source}")]
    Capture { path: PathBuf, source: std::io::Error },
}

/// A running simulator.
#[derive(Debug)]
pub struct Sim {
    shared: Arc<Shared>,
    clock: SimClock,
    sockets: Vec<PathBuf>,
    dir: PathBuf,
    owns_dir: bool,
    threads: Vec<JoinHandle<()>>,
}

fn make_port(spec: &PortSpec, seed: u64, now: Nanos) -> Result<Box<dyn Port>, SimError> {
    Ok(match spec {
        PortSpec::Null => Box::new(NullPort::default()),
        PortSpec::Loopback { delay_ns } => Box::new(LoopbackPort::new(*delay_ns)),
        PortSpec::Pcap { path } => {
            Box::new(PcapPort::open(path, now).map_err(|e| SimError::Port(format!("{}: {e}", path.display())))?)
        }
        PortSpec::Gen(g) => Box::new(GenPort::new(g.clone(), seed, now).map_err(SimError::Port)?),
    })
}

impl Sim {
    /// Start the device and serve every function. Returns once all sockets
    /// accept connections.
    pub fn start(cfg: SimConfig) -> Result<Sim, SimError> {
        let clock = match cfg.clock {
            ClockKind::Real => SimClock::real(),
            ClockKind::Virtual => SimClock::virtual_at_zero(),
        };
        let (dir, owns_dir) = match &cfg.socket_dir {
            Some(d) => (d.clone(), false),
            None => (fresh_dir()?, true),
        };
        std::fs::create_dir_all(&dir).map_err(|source| SimError::SocketDir {
            path: dir.clone(),
            source,
        })?;
        let mut port = make_port(&cfg.port, cfg.seed, clock.now())?;
        if let Some(path) = &cfg.capture {
            let w = port::capture_file(path).map_err(|source| SimError::Capture {
                path: path.clone(),
                source,
            })?;
            port.set_capture(w);
        }
        let mut dcfg = cfg.device.clone();
        if cfg.clock == ClockKind::Virtual && dcfg.pipeline_units_per_sec.is_none() {
            // Virtual time only moves by the pipeline's occupancy.
            dcfg.pipeline_units_per_sec = Some(DEFAULT_VIRTUAL_CAPACITY);
        }
        if cfg.clock == ClockKind::Real {
            // The engine thread may oversleep its longest idle sleep (and a
            // scheduler tick more): let the pipeline be booked that far
            // ahead so the configured capacity is what it delivers.
            let lead = 2 * cfg.max_idle_sleep.as_nanos() as u64 + REAL_CLOCK_WAKEUP_NS;
            dcfg.pipeline_lead_ns = dcfg.pipeline_lead_ns.max(lead);
        }
        ensure_fd_budget(&dcfg)?;
        let device = Device::new(dcfg, clock.clone(), port).map_err(SimError::Device)?;
        let nfunctions = device.functions.len() as u16;
        let mut shared = Shared::new(device).map_err(SimError::Device)?;
        shared.group_clients_by_process = cfg.group_clients_by_process;
        let shared = Arc::new(shared);
        let mut sim = Sim {
            shared: shared.clone(),
            clock: clock.clone(),
            sockets: Vec::new(),
            dir: dir.clone(),
            owns_dir,
            threads: Vec::new(),
        };
        for f in 0..nfunctions {
            let path = dir.join(socket_name(f));
            let t = server::serve(shared.clone(), f, &path)?;
            sim.threads.push(t);
            sim.sockets.push(path);
        }
        if cfg.clock == ClockKind::Real {
            let max_sleep = cfg.max_idle_sleep;
            let s = shared.clone();
            let c = clock.clone();
            let t = std::thread::Builder::new()
                .name("nicsim-engine".into())
                .spawn(move || engine(s, c, max_sleep))
                .map_err(SimError::Device)?;
            shared.set_engine(t.thread().clone());
            sim.threads.push(t);
        }
        Ok(sim)
    }

    /// Socket paths: the PF's first, then VF 0, VF 1, ...
    pub fn sockets(&self) -> &[PathBuf] {
        &self.sockets
    }

    /// The PF's socket.
    pub fn pf_socket(&self) -> &Path {
        &self.sockets[0]
    }

    /// VF `n`'s socket.
    pub fn vf_socket(&self, n: usize) -> Option<&Path> {
        self.sockets.get(n + 1).map(PathBuf::as_path)
    }

    /// The device's clock.
    pub fn clock(&self) -> &SimClock {
        &self.clock
    }

    /// Real clock: how long the engine thread spent in passes that did
    /// work, and how much work (descriptors and frames) they did; their
    /// ratio is the device's cost per unit of work on this host, whatever
    /// else limits throughput.
    pub fn engine_load(&self) -> (Duration, u64) {
        (
            Duration::from_nanos(self.shared.engine_busy_ns.load(Ordering::Relaxed)),
            self.shared.engine_work.load(Ordering::Relaxed),
        )
    }

    /// The device, locked (for inspection; hold it briefly).
    pub fn device(&self) -> MutexGuard<'_, Device> {
        self.shared.lock()
    }

    /// How many clients of function `f` the server has finished with: the
    /// connection's threads joined and the function reset. A client that
    /// closed its socket waits for this to grow to know the server is
    /// done with it.
    pub fn clients_done(&self, f: u16) -> Option<u64> {
        self.shared
            .clients_done
            .get(usize::from(f))
            .map(|c| c.load(std::sync::atomic::Ordering::Acquire))
    }

    /// What the device reached by message (`DMA_READ`/`DMA_WRITE` on the
    /// client's socket) for function `f`, over all its clients.
    pub fn by_message(&self, f: u16) -> Option<&server::remote::RemoteStats> {
        self.shared.by_message.get(usize::from(f)).map(|s| &**s)
    }

    /// One engine pass at the current time. Returns the work done.
    pub fn poll(&self) -> usize {
        self.shared.lock().poll()
    }

    /// Virtual clock: one turn of the real-clock engine thread's loop
    /// (`engine`), run against a modelled host: a pass that costs the host
    /// `host.pass_ns`, then what `wait` says; a sleep ends on the host's
    /// next scheduler tick (`host.tick_ns`), as an idle host with coarse
    /// timers ends it. So the engine's waiting policy ([`IdleWait`]) is
    /// tested and benched deterministically. Returns the pass's work and
    /// the device time it ran at.
    pub fn engine_turn(&self, wait: &mut IdleWait, host: &ModelHost) -> (usize, Nanos) {
        let (work, deadline, timer, at) = {
            let mut d = self.shared.lock();
            let w = d.poll();
            (w, d.next_deadline(), d.next_timer(), d.now())
        };
        self.clock.advance(host.pass_ns);
        if let Wait::Sleep(ns) = wait.after_pass(self.clock.now(), work, deadline, timer) {
            let woke = (self.clock.now() + ns).next_multiple_of(host.tick_ns.max(1));
            self.clock.advance_to(woke);
            wait.woke(self.clock.now());
        }
        (work, at)
    }

    /// Virtual clock: run the device for `dt`, jumping from event to event
    /// (the pipeline freeing up, a frame arriving, a blocked LIF's meters
    /// refilling); returns the work done. Time never moves past an event
    /// before the device has handled it, so the result does not depend on
    /// how the caller slices `dt`. Real clock: poll until idle (time passes
    /// by itself).
    pub fn advance(&self, dt: Nanos) -> usize {
        if self.shared.vanished.load(Ordering::Acquire) {
            // Gone: nothing runs any more.
            return 0;
        }
        let mut total = 0;
        if !self.clock.is_virtual() {
            loop {
                let w = self.poll();
                total += w;
                if w == 0 {
                    return total;
                }
            }
        }
        let end = self.clock.now().saturating_add(dt);
        loop {
            let (work, next) = {
                let mut d = self.shared.lock();
                let w = d.poll();
                (w, d.next_deadline())
            };
            total += work;
            let now = self.clock.now();
            if now >= end {
                return total;
            }
            match next {
                // More to do at this instant (a pass ran out of budget).
                Some(t) if t <= now && work > 0 => {}
                // The next event, or nothing until the host acts.
                Some(t) if t > now => self.clock.advance_to(t.min(end)),
                _ => self.clock.advance_to(end),
            }
        }
    }

    /// Fault injection: the simulator vanishes as a killed process would.
    /// Connected clients see their sockets close at their next request;
    /// the engine stops; nothing more is delivered.
    pub fn vanish(&self) {
        self.shared.vanished.store(true, Ordering::Release);
        self.shared.request_stop();
    }

    /// Stop serving and remove the sockets.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        // Every server thread wakes (its poll includes the stop eventfd),
        // closes its connection and returns; the engine sees `stop`.
        self.shared.request_stop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        for s in &self.sockets {
            let _ = std::fs::remove_file(s);
        }
        self.shared.lock().port.flush();
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if !self.threads.is_empty() || self.owns_dir {
            self.stop();
        }
    }
}

/// Descriptors the device may hold at once for its functions: per
/// function its clients' eventfds (one per vector), the descriptors a
/// message may bring (as many again, transiently), its doorbell memfd, its
/// listening and its connected socket. DMA mappings hold none (the device
/// closes the client's descriptor once it has mapped the file).
pub fn fd_budget(cfg: &DeviceConfig) -> u64 {
    let per = |l: &device::function::FunctionLimits| 2 * u64::from(l.nintrs) + 3;
    per(&cfg.pf) + u64::from(cfg.vfs) * per(&cfg.vf)
}

/// Make sure the process may open what the functions' clients can make it
/// hold ([`fd_budget`], plus room for everything else): raise the soft
/// limit on open files if it is lower, or refuse to start with the limit
/// named, rather than have one client's eventfds starve another's
/// `DMA_MAP`.
fn ensure_fd_budget(cfg: &DeviceConfig) -> Result<(), SimError> {
    let need = fd_budget(cfg) + 256;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 || lim.rlim_cur >= need {
        return Ok(());
    }
    if lim.rlim_max < need {
        return Err(SimError::Device(std::io::Error::other(format!(
            "{} functions need up to {need} open files, the hard limit is {} (raise it with 'ulimit -Hn {need}' or use fewer VFs or vectors)",
            cfg.vfs + 1,
            lim.rlim_max
        ))));
    }
    lim.rlim_cur = need;
    // SAFETY: setrlimit reads the struct we pass.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    Ok(())
}

/// `pf.sock`, `vf0.sock`, `vf1.sock`, ...
pub fn socket_name(function: u16) -> String {
    if function == 0 {
        "pf.sock".into()
    } else {
        format!("vf{}.sock", function - 1)
    }
}

fn fresh_dir() -> Result<PathBuf, SimError> {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!(
        "nicsim-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|source| SimError::SocketDir {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

/// A host as [`Sim::engine_turn`] models it.
#[derive(Debug, Clone, Copy)]
pub struct ModelHost {
    /// What one engine pass costs, ns.
    pub pass_ns: Nanos,
    /// Sleeps end on multiples of this, ns (a scheduler tick).
    pub tick_ns: Nanos,
}

/// The engine thread on the real clock: poll; when idle, back off from
/// spinning to sleeping at most `max_sleep` (any region write wakes it),
/// never through a moderation timer's deadline ([`device::engine::IdleWait`]).
fn engine(shared: Arc<Shared>, clock: SimClock, max_sleep: Duration) {
    // Sleep as precisely as asked: the default 50 µs timer slack would be
    // the device's idle latency.
    // SAFETY: prctl with an integer argument; no memory involved.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000, 0, 0, 0) };
    let mut wait = IdleWait::new(max_sleep.as_nanos() as Nanos);
    while !shared.stop.load(Ordering::Acquire) {
        let (work, deadline, timer, now, started) = {
            let mut d = shared.lock_for_engine();
            // After the lock: the time waiting for a server thread is not
            // the engine's.
            let started = std::time::Instant::now();
            let w = d.poll();
            (w, d.next_deadline(), d.next_timer(), d.now(), started)
        };
        // A server thread waits for the device: it has it before the next
        // pass. The mutex is not fair: an engine that locks again at once
        // takes it back before the woken waiter runs on the other CPU, and
        // with work always waiting (a wire faster than the engine) it did
        // so for as long as the work lasted: a client's register access
        // went unanswered for seconds. Waiters count down once they hold
        // the lock; 10 ms at most, should one never get it.
        if shared.contended() {
            let since = std::time::Instant::now();
            while shared.contended() && since.elapsed() < Duration::from_millis(10) {
                std::thread::yield_now();
            }
        }
        if work > 0 {
            shared
                .engine_busy_ns
                .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            shared.engine_work.fetch_add(work as u64, Ordering::Relaxed);
        }
        match wait.after_pass(now, work, deadline, timer) {
            Wait::Again if work == 0 => std::hint::spin_loop(),
            Wait::Again => {}
            Wait::Sleep(ns) => {
                std::thread::park_timeout(Duration::from_nanos(ns));
                wait.woke(clock.now());
            }
        }
    }
}
