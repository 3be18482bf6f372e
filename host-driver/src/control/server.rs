//! The socket: a listening thread, one thread per client, one request
//! line in and one response line out, lines bounded on both sides.

use super::ControlState;
use mgmt::proto::{self, Response};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// One request line in, one response line out.
pub fn respond(state: &ControlState, line: &[u8]) -> Response {
    match proto::parse_request(line) {
        Err(e) => Response::Error(e.to_string()),
        Ok(req) => match state.handle(req) {
            Ok(a) => Response::Ok(a),
            Err(e) => Response::Error(e),
        },
    }
}

/// Serve one client until it hangs up, or sends a line too long (answered,
/// then the connection is closed).
fn serve_client(state: Arc<ControlState>, stream: UnixStream) {
    let Ok(w) = stream.try_clone() else { return };
    let mut w = w;
    let mut r = BufReader::new(stream);
    loop {
        let mut line = Vec::new();
        match (&mut r).take(proto::MAX_LINE as u64 + 1).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let too_long = line.len() > proto::MAX_LINE && !line.ends_with(b"\n");
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        let resp = if too_long {
            Response::Error(proto::ProtoError::TooLong(line.len()).to_string())
        } else {
            respond(&state, &line)
        };
        if w.write_all(proto::encode(&resp).as_bytes()).is_err() || too_long {
            return;
        }
    }
}

/// A running control socket; removes its socket file when dropped.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    /// The listening socket, shared with the accept thread: `Drop` shuts it
    /// down to wake that thread, which needs no socket file (one removed
    /// beforehand made a wake-up by connecting fail, and the join hang).
    listener: Arc<UnixListener>,
    /// The socket file's (device, inode) when bound: `Drop` removes the
    /// file only if it is still this one (not another driver's, bound on
    /// the same path after this one's was removed).
    file_id: Option<(u64, u64)>,
    thread: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Listen on `path` (replacing a stale socket).
    pub fn start(path: &Path, state: Arc<ControlState>) -> std::io::Result<ControlServer> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!(
                        "{} is in use by another nicdrv (pass --control elsewhere)",
                        path.display()
                    ),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = Arc::new(UnixListener::bind(path)?);
        let file_id = file_id(path);
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let l = listener.clone();
        let thread = std::thread::Builder::new()
            .name("nicdrv-control".into())
            .spawn(move || loop {
                let conn = l.accept();
                if s.load(Ordering::Acquire) {
                    break;
                }
                match conn {
                    Ok((c, _)) => {
                        let st = state.clone();
                        let _ = std::thread::Builder::new()
                            .name("nicdrv-client".into())
                            .spawn(move || serve_client(st, c));
                    }
                    // Out of descriptors or memory: the condition lasts, so
                    // wait a little rather than spin on it.
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            })?;
        Ok(ControlServer {
            path: path.to_path_buf(),
            stop,
            listener,
            file_id,
            thread: Some(thread),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // SAFETY: the descriptor is the listener's own, open for as long as
        // `self.listener` lives (past this call); shutdown(2) only changes
        // the socket's state: on Linux it makes a blocked or later accept(2)
        // on it return EINVAL, which wakes the accept thread.
        let rc = unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        if rc != 0 {
            // Not expected on Linux; fall back to a connection by path.
            let _ = UnixStream::connect(&self.path);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if self.file_id.is_some() && file_id(&self.path) == self.file_id {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The (device, inode) of the file at `path`.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn empty_state() -> Arc<ControlState> {
        Arc::new(ControlState {
            nics: Vec::new(),
            app: "test".into(),
            app_stats: Mutex::new((0.0, Vec::new())),
            pipeline: Mutex::new(None),
        })
    }

    fn socket_path(name: &str) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        (dir.join("ctl.sock"), dir)
    }

    /// Drop `server` on another thread; whether it finished within a
    /// minute (a hang is what this catches, not a speed).
    fn drops(server: ControlServer) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(server);
            let _ = tx.send(());
        });
        rx.recv_timeout(std::time::Duration::from_secs(60)).is_ok()
    }

    #[test]
    fn shuts_down_after_its_socket_file_and_directory_were_removed() {
        let (path, dir) = socket_path("ctl-removed");
        let server = ControlServer::start(&path, empty_state()).unwrap();
        // It serves before the removal.
        let mut c = UnixStream::connect(&path).unwrap();
        c.write_all(b"{\"cmd\":\"nonsense\"}\n").unwrap();
        let mut line = String::new();
        BufReader::new(&c).read_line(&mut line).unwrap();
        assert!(line.contains("error"), "{line}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(drops(server), "the control server's shutdown hung");
    }

    #[test]
    fn leaves_a_later_servers_socket_file_alone() {
        let (path, dir) = socket_path("ctl-replaced");
        let first = ControlServer::start(&path, empty_state()).unwrap();
        std::fs::remove_file(&path).unwrap();
        let second = ControlServer::start(&path, empty_state()).unwrap();
        assert!(drops(first));
        assert!(path.exists(), "the first server removed the second's socket");
        UnixStream::connect(&path).expect("the second server still listens");
        assert!(drops(second));
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn shuts_down_and_removes_its_socket_file() {
        let (path, dir) = socket_path("ctl-drop");
        let server = ControlServer::start(&path, empty_state()).unwrap();
        assert!(path.exists());
        assert!(drops(server), "the control server's shutdown hung");
        assert!(!path.exists(), "the socket file is left behind");
        // The path is free for the next driver.
        let again = ControlServer::start(&path, empty_state()).unwrap();
        assert!(drops(again));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
