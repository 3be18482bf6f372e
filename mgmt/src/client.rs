//! The client half of the control socket: one request, one answer line.

use crate::proto::{self, Answer, Request, Response};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the client waits for an answer. The driver answers at once
/// unless an admin command is stuck in the device.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Where `nicdrv` listens unless told otherwise: `$XDG_RUNTIME_DIR/nicdrv.sock`,
/// else `/tmp/nicdrv-<uid>.sock`.
pub fn default_socket() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) => PathBuf::from(d).join("nicdrv.sock"),
        None => PathBuf::from(format!("/tmp/nicdrv-{}.sock", uid())),
    }
}

fn uid() -> u32 {
    // /proc/self is ours; its owner is our uid (no libc needed).
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0)
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach nicdrv at {path}: {source}\n  is nicdrv running? it prints its control socket when it starts; \
         pass that path with --socket"
    )]
    Connect { path: PathBuf, source: std::io::Error },
    #[error("talking to nicdrv at {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("nicdrv at {path} answered something that is not a response: {msg}")]
    Protocol { path: PathBuf, msg: String },
    /// The driver refused or the device failed the request.
    #[error("{0}")]
    Refused(String),
}

/// Send `req` and read the response line.
pub fn request(path: &Path, req: &Request) -> std::io::Result<Response> {
    let mut s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    s.write_all(proto::encode(req).as_bytes())?;
    let mut line = Vec::new();
    BufReader::new(s)
        .take(proto::MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the driver closed the connection without answering",
        ));
    }
    proto::parse_response(line.trim_ascii_end()).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Send `req`; its answer, or why there is none.
pub fn call(path: &Path, req: &Request) -> Result<Answer, ClientError> {
    match request(path, req) {
        Ok(Response::Ok(a)) => Ok(a),
        Ok(Response::Error(e)) => Err(ClientError::Refused(e)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            Err(ClientError::Connect {
                path: path.to_path_buf(),
                source: e,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Err(ClientError::Protocol {
            path: path.to_path_buf(),
            msg: e.to_string(),
        }),
        Err(e) => Err(ClientError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}
