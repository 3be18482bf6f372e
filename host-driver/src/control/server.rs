//! The socket: a listening thread, one thread per client, one request
//! line in and one response line out, lines bounded on both sides.

use super::ControlState;
use mgmt::proto::{self, Response};
use std::io::{BufRead, BufReader, Read, Write};
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
        let listener = UnixListener::bind(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("nicdrv-control".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if s.load(Ordering::Acquire) {
                        break;
                    }
                    if let Ok(c) = conn {
                        let st = state.clone();
                        let _ = std::thread::Builder::new()
                            .name("nicdrv-client".into())
                            .spawn(move || serve_client(st, c));
                    }
                }
            })?;
        Ok(ControlServer {
            path: path.to_path_buf(),
            stop,
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
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}
