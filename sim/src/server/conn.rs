//! One client connection of the server: `vfu`'s channel (framing by the
//! header, bounded reads with their descriptors, sends without SIGPIPE),
//! with waits that a stop request or a second client can interrupt.

use super::pollin;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
pub use vfu::channel::ReadError;
use vfu::channel::{Channel, Ready};
use vfu::wire::Header;

/// How long a reply may wait for the client to make room on the socket.
pub const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A connected client: the reading half (the writing half is a
/// [`super::remote::Writer`]).
#[derive(Debug)]
pub struct Conn {
    chan: Channel,
    /// Readable when the server must stop (level-triggered: never read).
    stop: RawFd,
    /// The function's listening socket: a second client that connects
    /// while this one is served is turned away at once instead of waiting
    /// in the backlog.
    listener: RawFd,
    /// Connections turned away.
    pub refused: u64,
}

impl Conn {
    /// The reading half, and the writing half to share.
    pub fn new(
        stream: UnixStream,
        stop: RawFd,
        listener: &UnixListener,
    ) -> std::io::Result<(Conn, super::remote::Writer)> {
        let chan = Channel::new(stream, SEND_TIMEOUT);
        let writer = std::sync::Arc::new(std::sync::Mutex::new(chan.try_clone()?));
        Ok((
            Conn {
                chan,
                stop,
                listener: listener.as_raw_fd(),
                refused: 0,
            },
            writer,
        ))
    }

    /// A wait before each read: until the stream is readable or the server
    /// must stop; clients that connect meanwhile are turned away.
    fn waiter(stop: RawFd, listener: RawFd, refused: &mut u64) -> impl FnMut(RawFd) -> std::io::Result<Ready> + '_ {
        move |stream| loop {
            let mut fds = [pollin(stream), pollin(stop), pollin(listener)];
            // SAFETY: `fds` is a valid array of three pollfd for the
            // duration of the call; the descriptors are open.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if fds[1].revents != 0 {
                return Ok(Ready::Stop);
            }
            // The stream first: a client that closed and reconnects at
            // once must find the server done with its old connection, not
            // be turned away as a second client.
            if fds[0].revents != 0 {
                return Ok(Ready::Data);
            }
            if fds[2].revents & libc::POLLIN != 0 && turn_away(listener) {
                *refused += 1;
            }
        }
    }

    /// Read exactly `buf.len()` bytes and their descriptors.
    pub fn read_exact(
        &mut self,
        buf: &mut [u8],
        fds: &mut Vec<File>,
        max_fds: usize,
        at_boundary: bool,
    ) -> Result<(), ReadError> {
        let mut wait = Self::waiter(self.stop, self.listener, &mut self.refused);
        self.chan.read_exact(buf, fds, max_fds, at_boundary, &mut wait)
    }

    /// Read a header.
    pub fn read_header(&mut self, fds: &mut Vec<File>, max_fds: usize) -> Result<Header, ReadError> {
        let mut wait = Self::waiter(self.stop, self.listener, &mut self.refused);
        self.chan.read_header(fds, max_fds, &mut wait)
    }
}

/// Accept and close a second client: vfio-user serves one client per
/// socket. Returns whether one was turned away.
fn turn_away(listener: RawFd) -> bool {
    // SAFETY: accept4 on our listening socket with no address buffer; the
    // returned descriptor, if any, is owned by the File and closed.
    let fd = unsafe {
        libc::accept4(
            listener,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
        )
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: a fresh descriptor accept4 returned; nobody else owns it.
    drop(unsafe { File::from_raw_fd(fd) });
    tracing::warn!("a second client connected while one is served: turned away");
    true
}
