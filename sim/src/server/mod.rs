//! vfio-user serving: one thread per PCI function, each on its own
//! socket, all driving the one [`Device`].
//!
//! nicsim owns the server side of the protocol (the `vfu` crate's wire
//! format and framing, and `conn` here). It
//! started on rust-vmm's `vfio_user` 0.1.7 server, which does not frame
//! messages by their header (an unknown command's payload was parsed as
//! further messages; a short payload hung the connection), allocates what
//! a header announces before checking it (a 4 GiB header made it buffer
//! whatever was streamed), answers commands sent with the no-reply flag
//! (desynchronising the stream), panics on a malformed `VERSION`, and sends
//! errno 0 in most error replies; and it cannot send requests to its
//! client, which DMA without shared memory needs. Here:
//!
//! - every message is framed by its header: its size is checked against
//!   the command's limits (and the negotiated `max_data_xfer_size`) before
//!   a byte of payload is read or anything is allocated; an oversized
//!   message is answered with `EMSGSIZE` and the connection closed (the
//!   stream cannot be resynchronised without reading it);
//! - refusals are error replies carrying the errno the specification names
//!   (`EEXIST` for an overlapping `DMA_MAP`, ...), never a dropped
//!   connection; a command with the no-reply flag gets no reply, error or
//!   not (the refusal is logged and counted);
//! - one client per socket: a second one is turned away at once;
//! - when the client goes (closes, or breaks the protocol beyond repair),
//!   the function is reset and everything the client gave it is released:
//!   its DMA mappings, interrupt eventfds, LIFs and queues (their counters
//!   retired), and the doorbell pages it mapped (the next client gets new
//!   ones, so a process that keeps its old mapping rings nothing);
//! - nothing a client sends panics the server; if a bug panics it anyway,
//!   the function stops in its reported error state (a reset recovers it),
//!   the request is answered with EIO, and every other function carries
//!   on.
//!
//! rust-vmm's client stays in the tests as an independent peer. It reads
//! a full reply where the specification sends a header-only error reply,
//! so region accesses of valid regions are always answered in full (reads
//! of nothing come back as 0xff, as on real hardware).

pub mod conn;
pub mod remote;
pub use vfu::wire;

mod dispatch;
mod session;

use crate::device::{Device, RequestError, MAX_REGION_ACCESS};
use conn::{Conn, ReadError};
use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{JoinHandle, Thread};
use vfio_bindings::bindings::vfio::{
    VFIO_DEVICE_FLAGS_PCI, VFIO_DEVICE_FLAGS_RESET, VFIO_IRQ_SET_DATA_BOOL, VFIO_IRQ_SET_DATA_EVENTFD,
    VFIO_PCI_NUM_IRQS, VFIO_PCI_NUM_REGIONS, VFIO_REGION_INFO_CAP_SPARSE_MMAP, VFIO_REGION_INFO_FLAG_CAPS,
};
use vmm_sys_util::eventfd::EventFd;
use wire::{cmd, flags, Header};
use zerocopy::{FromBytes, IntoBytes};

/// What the server threads and the engine share.
#[derive(Debug)]
pub struct Shared {
    device: Mutex<Device>,
    /// Server threads waiting for the device lock; the engine yields to
    /// them between passes.
    waiters: AtomicUsize,
    /// Set to stop every thread.
    pub stop: AtomicBool,
    /// Readable once the threads must stop: wakes server threads blocked
    /// on their sockets (written once, never read).
    stop_fd: EventFd,
    /// Fault injection: the device is gone; every connection closes at
    /// once, as if the process had died.
    pub vanished: AtomicBool,
    /// The engine thread, to wake it after a control-plane change.
    engine: Mutex<Option<Thread>>,
    /// Real clock: time the engine spent in passes that did work, ns, and
    /// the work they did (descriptors and frames).
    pub engine_busy_ns: AtomicU64,
    pub engine_work: AtomicU64,
    /// Per client process (by its pid): the requests the device owes a
    /// reply on any of its connections.
    owed_by_process: Mutex<std::collections::HashMap<i32, std::sync::Weak<std::sync::atomic::AtomicU32>>>,
    /// `SimConfig::group_clients_by_process`.
    pub group_clients_by_process: bool,
    /// Per function: what the device reached by message, over all its
    /// clients (for reports).
    pub by_message: Vec<Arc<remote::RemoteStats>>,
    /// Per function: clients whose connection the server has finished
    /// with (reader thread joined, function reset), for waiting on it.
    pub clients_done: Vec<AtomicU64>,
}

impl Shared {
    pub fn new(device: Device) -> std::io::Result<Shared> {
        let by_message = (0..device.functions.len()).map(|_| Arc::default()).collect();
        let clients_done = (0..device.functions.len()).map(|_| AtomicU64::new(0)).collect();
        Ok(Shared {
            by_message,
            clients_done,
            device: Mutex::new(device),
            waiters: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            stop_fd: EventFd::new(libc::EFD_CLOEXEC | libc::EFD_NONBLOCK)?,
            vanished: AtomicBool::new(false),
            engine: Mutex::new(None),
            engine_busy_ns: AtomicU64::new(0),
            engine_work: AtomicU64::new(0),
            owed_by_process: Mutex::new(std::collections::HashMap::new()),
            group_clients_by_process: true,
        })
    }

    /// Ask every thread to stop; server threads close their connections.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.stop_fd.write(1);
        self.wake_engine();
    }

    /// Lock the device (server threads and tests).
    pub fn lock(&self) -> MutexGuard<'_, Device> {
        self.waiters.fetch_add(1, Ordering::AcqRel);
        let g = self.device.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.waiters.fetch_sub(1, Ordering::AcqRel);
        g
    }

    /// Lock the device for an engine pass.
    pub fn lock_for_engine(&self) -> MutexGuard<'_, Device> {
        self.device.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a server thread is waiting for the device.
    pub fn contended(&self) -> bool {
        self.waiters.load(Ordering::Acquire) > 0
    }

    /// The count of replies owed to the client process `pid`, shared by
    /// its connections (`None`: a process of its own).
    fn owed_by_process(&self, pid: Option<i32>) -> Arc<std::sync::atomic::AtomicU32> {
        let Some(pid) = pid.filter(|_| self.group_clients_by_process) else {
            return Arc::default();
        };
        let mut m = self.owed_by_process.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, w| w.strong_count() > 0);
        if let Some(c) = m.get(&pid).and_then(std::sync::Weak::upgrade) {
            return c;
        }
        let c = Arc::default();
        m.insert(pid, Arc::downgrade(&c));
        c
    }

    /// Register the engine thread for wake-ups.
    pub fn set_engine(&self, t: Thread) {
        *self.engine.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
    }

    /// Wake the engine (it may be sleeping in its idle back-off).
    pub fn wake_engine(&self) {
        if let Some(t) = self.engine.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            t.unpark();
        }
    }
}

/// The largest data transfer nicsim accepts in one message (its
/// `max_data_xfer_size`).
pub const MAX_DATA_XFER: usize = MAX_REGION_ACCESS;
/// The protocol version nicsim speaks.
pub const PROTOCOL_MAJOR: u16 = 0;
pub const PROTOCOL_MINOR: u16 = 1;

/// A command refused: the errno of the error reply and why (for the log).
#[derive(Debug)]
struct Refusal {
    errno: i32,
    why: String,
}

fn refuse(errno: i32, why: impl Into<String>) -> Refusal {
    Refusal { errno, why: why.into() }
}

impl From<RequestError> for Refusal {
    fn from(e: RequestError) -> Refusal {
        Refusal {
            errno: e.errno(),
            why: e.to_string(),
        }
    }
}

/// A reply's payload and the descriptor to attach.
struct Reply {
    payload: Vec<u8>,
    fd: Option<RawFd>,
    /// Sent already (before the command's effects).
    sent: bool,
}

impl Reply {
    fn empty() -> Reply {
        Reply {
            payload: Vec::new(),
            fd: None,
            sent: false,
        }
    }

    fn of(b: &[u8]) -> Reply {
        Reply {
            payload: b.to_vec(),
            fd: None,
            sent: false,
        }
    }
}

/// How a connection ended.
#[derive(Debug)]
enum End {
    /// The client left: reset the function.
    Client(String),
    /// The client broke the protocol beyond repair (counted): reset the
    /// function.
    Broken(String),
    /// The server is stopping.
    Stop,
}

/// One client's session with one function: the handler side (the
/// connection's reader thread frames the messages and hands the commands
/// over, see [`read_loop`]).
struct Session {
    shared: Arc<Shared>,
    function: u16,
    /// The writing half of the connection (replies; the device's requests
    /// go through `remote`, on the same half).
    writer: remote::Writer,
    /// The client's memory reached by message.
    remote: Arc<remote::Remote>,
    /// VERSION has been negotiated.
    negotiated: bool,
    /// Most descriptors nicsim takes in one message (announced).
    max_fds: usize,
    /// The command being handled was answered (and paid) before its
    /// effects.
    paid_early: bool,
}

/// What the reader thread hands the handler.
enum Incoming {
    /// A command, framed and read whole (sizes checked first).
    Command(Header, Vec<u8>, Vec<File>),
    /// A message the reader refused without a reply being due (a reply to
    /// no request): count it.
    Stray,
    /// The connection is over.
    End(End),
}

/// Commands the reader may hold for the handler before it waits (a client
/// that pipelines more is slowed, not buffered without bound).
const QUEUED_COMMANDS: usize = 256;

/// The reader thread of a connection: frame every message by its header,
/// refusing what is too large before reading it; replies to the device's
/// requests go to `remote` at once (so a device waiting on one, with the
/// device lock held, is never behind a command); commands go to the
/// handler. Never takes the device lock.
fn read_loop(
    mut conn: Conn,
    shared: Arc<Shared>,
    writer: remote::Writer,
    remote: Arc<remote::Remote>,
    max_fds: usize,
    tx: std::sync::mpsc::SyncSender<Incoming>,
) {
    let send_error = |hdr: &Header, errno: i32| {
        let _ = writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(&hdr.error_reply(errno), &[], &[]);
    };
    let end = loop {
        let mut fds = Vec::new();
        let hdr = match conn.read_header(&mut fds, max_fds) {
            Ok(h) => h,
            Err(ReadError::Closed) => break End::Client("the client closed the connection".into()),
            Err(ReadError::Stopped) => break End::Stop,
            Err(e) => break End::Broken(format!("reading a header: {e}")),
        };
        if shared.vanished.load(Ordering::Acquire) {
            break End::Stop;
        }
        let name = cmd::name(hdr.command);
        let size = hdr.size as usize;
        if size < wire::HEADER_SIZE {
            send_error(&hdr, libc::EINVAL);
            break End::Broken(format!("{name}: message size {size} < 16"));
        }
        let len = size - wire::HEADER_SIZE;
        let (_, max) = wire::payload_limits(hdr.command, MAX_DATA_XFER);
        if len > max {
            // Refused before a byte of it is read: the stream is lost.
            if hdr.kind() == flags::TYPE_COMMAND {
                send_error(&hdr, libc::EMSGSIZE);
            }
            break End::Broken(format!("{name}: payload of {len} bytes exceeds {max}"));
        }
        let mut body = vec![0u8; len];
        match conn.read_exact(&mut body, &mut fds, max_fds, false) {
            Ok(()) => {}
            Err(ReadError::Stopped) => break End::Stop,
            Err(e) => break End::Broken(format!("{name}: reading {len} payload bytes: {e}")),
        }
        let msg = if hdr.kind() == flags::TYPE_REPLY {
            if remote.deliver(&hdr, body) {
                continue;
            }
            Incoming::Stray
        } else {
            if !hdr.no_reply() {
                // Owed from now until the session answers: the device does
                // not wait on this client meanwhile.
                remote.owe();
            }
            Incoming::Command(hdr, body, fds)
        };
        if tx.send(msg).is_err() {
            break End::Client("the session ended".into());
        }
    };
    // Whoever waits on the client's memory stops waiting.
    remote.close();
    let _ = tx.send(Incoming::End(end));
}

fn payload<T: FromBytes>(p: &[u8]) -> T {
    // The framer checked the payload against the command's minimum size.
    T::read_from_prefix(p)
        .expect("payload checked against the command's size")
        .0
}

impl Session {
    fn device(&self) -> MutexGuard<'_, Device> {
        self.shared.lock()
    }
}

/// An errno's name, for logs.
fn errno_name(e: i32) -> String {
    std::io::Error::from_raw_os_error(e).to_string()
}

/// Why serving could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("socket {path}: {why}")]
    Socket { path: PathBuf, why: String },
}

/// Remove a socket file left by a process that is gone (nobody accepts on
/// it); refuse one that is live.
fn clear_stale_socket(path: &Path) -> Result<(), ServeError> {
    if !path.exists() {
        return Ok(());
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(ServeError::Socket {
            path: path.into(),
            why: "another nicsim is serving it".into(),
        });
    }
    std::fs::remove_file(path).map_err(|e| ServeError::Socket {
        path: path.into(),
        why: format!("stale socket could not be removed: {e}"),
    })
}

/// Start serving `function` on `path`. The thread runs until
/// [`Shared::request_stop`].
pub fn serve(shared: Arc<Shared>, function: u16, path: &Path) -> Result<JoinHandle<()>, ServeError> {
    clear_stale_socket(path)?;
    let listener = UnixListener::bind(path).map_err(|e| ServeError::Socket {
        path: path.into(),
        why: e.to_string(),
    })?;
    let name = if function == 0 {
        "nicsim-pf".to_string()
    } else {
        format!("nicsim-vf{}", function - 1)
    };
    let path = path.to_path_buf();
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            accept_loop(&shared, function, &listener);
            drop(listener);
            let _ = std::fs::remove_file(&path);
        })
        .map_err(|e| ServeError::Socket {
            path: PathBuf::new(),
            why: format!("thread: {e}"),
        })
}

/// The process at the other end of `s` (SO_PEERCRED), if the kernel says.
fn peer_pid(s: &std::os::unix::net::UnixStream) -> Option<i32> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given;
    // the descriptor is open (borrowed from `s`).
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (r == 0 && cred.pid > 0).then_some(cred.pid)
}

/// A `pollfd` waiting for `fd` to be readable.
pub(super) fn pollin(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Wait for a client, serve it, reset the function when it goes; until
/// the server stops.
fn accept_loop(shared: &Arc<Shared>, function: u16, listener: &UnixListener) {
    let stop = shared.stop_fd.as_raw_fd();
    while !shared.stop.load(Ordering::Acquire) {
        let mut fds = [pollin(listener.as_raw_fd()), pollin(stop)];
        // SAFETY: `fds` is a valid array of two pollfd for the call; both
        // descriptors are open for the life of this function.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if r < 0 || fds[1].revents != 0 {
            if r < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(function, "accept: {e}");
                continue;
            }
        };
        let owed = shared.owed_by_process(peer_pid(&stream));
        let max_fds = usize::from(shared.lock().functions[usize::from(function)].limits.nintrs).max(1);
        let (conn, writer) = match Conn::new(stream, stop, listener) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(function, "connection: {e}");
                continue;
            }
        };
        let remote = remote::Remote::new(writer.clone(), owed, shared.by_message[usize::from(function)].clone());
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUED_COMMANDS);
        let reader = {
            let (shared, writer, remote) = (shared.clone(), writer.clone(), remote.clone());
            std::thread::Builder::new()
                .name(format!("nicsim-rd{function}"))
                .spawn(move || read_loop(conn, shared, writer, remote, max_fds, tx))
        };
        let Ok(reader) = reader else {
            tracing::warn!(function, "no thread for the connection's reader");
            continue;
        };
        let mut session = Session {
            shared: shared.clone(),
            function,
            writer: writer.clone(),
            remote: remote.clone(),
            negotiated: false,
            max_fds,
            paid_early: false,
        };
        tracing::debug!(function, "client connected");
        let end = session.run(&rx);
        drop(session);
        // The reader stops at the closed socket (or has stopped already).
        remote.close();
        writer.lock().unwrap_or_else(|e| e.into_inner()).shutdown();
        drop(rx);
        let _ = reader.join();
        match end {
            End::Client(why) | End::Broken(why) => {
                tracing::info!(function, "client gone ({why}): function reset, its mappings released");
                shared.lock().client_gone(function);
                shared.wake_engine();
                shared.clients_done[usize::from(function)].fetch_add(1, Ordering::Release);
            }
            End::Stop => break,
        }
    }
}
