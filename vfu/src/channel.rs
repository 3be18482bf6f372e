//! One end of a vfio-user connection: bounded reads with the file
//! descriptors that come with them, and sends that never raise SIGPIPE.
//!
//! Every read is exactly as long as the caller asks, and callers ask only
//! for what a header announced after checking it against the command's
//! limits ([`crate::wire::payload_limits`], or the reply's expected size):
//! nothing the peer sends makes this side allocate more, read ahead, or
//! wait for bytes the header did not promise. Before each read the caller's
//! `wait` decides whether to go on (the server: until it must stop; the
//! client: until its timeout).

use crate::wire::{Header, HEADER_SIZE};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;
use vmm_sys_util::sock_ctrl_msg::ScmSocket;
use zerocopy::{FromBytes, IntoBytes};

/// Why a read did not complete.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection between messages.
    Closed,
    /// The peer closed the connection in the middle of a message.
    Truncated {
        wanted: usize,
        got: usize,
    },
    /// More file descriptors than allowed came with the message (the
    /// kernel closed the excess; the stream cannot be trusted any more).
    TooManyFds,
    /// `wait` said to stop (the server is stopping).
    Stopped,
    /// `wait` gave up (the peer sent nothing in time).
    TimedOut,
    Io(std::io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Closed => write!(f, "the peer closed the connection"),
            ReadError::Truncated { wanted, got } => {
                write!(
                    f,
                    "the peer closed the connection {got} bytes into a {wanted}-byte read"
                )
            }
            ReadError::TooManyFds => write!(f, "more file descriptors than allowed came with a message"),
            ReadError::Stopped => write!(f, "stopping"),
            ReadError::TimedOut => write!(f, "the peer sent nothing in time"),
            ReadError::Io(e) => write!(f, "socket: {e}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// What a wait before a read decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// Read.
    Data,
    /// Stop reading ([`ReadError::Stopped`]).
    Stop,
    /// Give up ([`ReadError::TimedOut`]).
    TimedOut,
}

/// Wait at most `timeout` for `fd` to be readable (or hung up).
pub fn wait_readable(fd: RawFd, timeout: Duration) -> std::io::Result<Ready> {
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    loop {
        let mut p = [libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: one valid pollfd for the duration of the call; `fd` is
        // open (the caller owns the stream).
        let r = unsafe { libc::poll(p.as_mut_ptr(), 1, ms) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(if r == 0 { Ready::TimedOut } else { Ready::Data });
    }
}

/// One end of a connection.
pub struct Channel {
    stream: UnixStream,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel").field("fd", &self.stream.as_raw_fd()).finish()
    }
}

impl Channel {
    /// A channel on a connected stream; sends wait at most `send_timeout`
    /// for room (a peer that reads nothing loses its connection rather
    /// than hold this side).
    pub fn new(stream: UnixStream, send_timeout: Duration) -> Channel {
        let _ = stream.set_write_timeout(Some(send_timeout));
        Channel { stream }
    }

    /// A second handle on the same connection (one thread reads, others
    /// write).
    pub fn try_clone(&self) -> std::io::Result<Channel> {
        Ok(Channel {
            stream: self.stream.try_clone()?,
        })
    }

    /// The stream's descriptor (to poll it).
    pub fn raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// Read exactly `buf.len()` bytes, collecting the descriptors that come
    /// with them (at most `max_fds` in all). `at_boundary`: a close before
    /// the first byte is a clean `Closed`. `wait` runs before every read.
    pub fn read_exact(
        &mut self,
        buf: &mut [u8],
        fds: &mut Vec<File>,
        max_fds: usize,
        at_boundary: bool,
        wait: &mut dyn FnMut(RawFd) -> std::io::Result<Ready>,
    ) -> Result<(), ReadError> {
        let mut got = 0;
        while got < buf.len() {
            match wait(self.stream.as_raw_fd()).map_err(ReadError::Io)? {
                Ready::Stop => return Err(ReadError::Stopped),
                Ready::TimedOut => return Err(ReadError::TimedOut),
                Ready::Data => {}
            }
            let rest = &mut buf[got..];
            let mut iov = [libc::iovec {
                iov_base: rest.as_mut_ptr().cast(),
                iov_len: rest.len(),
            }];
            // One slot more than allowed, so an excess is seen (and
            // closed) rather than silently truncated.
            let mut raw = vec![-1 as RawFd; max_fds.saturating_sub(fds.len()) + 1];
            // SAFETY: the iovec points into `buf`, which we borrow mutably
            // for the call; any bytes may be written there. `raw` has room
            // for the descriptors the call may return.
            let r = unsafe { self.stream.recv_with_fds(&mut iov, &mut raw) };
            let (n, nfds) = match r {
                Ok(x) => x,
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => continue,
                // The kernel truncated the descriptors (and closed them).
                Err(e) if e.errno() == libc::ENOBUFS => return Err(ReadError::TooManyFds),
                Err(e) => return Err(ReadError::Io(std::io::Error::from_raw_os_error(e.errno()))),
            };
            for &fd in &raw[..nfds] {
                // SAFETY: descriptors recvmsg just installed for us.
                fds.push(unsafe { File::from_raw_fd(fd) });
            }
            if fds.len() > max_fds {
                return Err(ReadError::TooManyFds);
            }
            if n == 0 {
                return Err(if got == 0 && at_boundary {
                    ReadError::Closed
                } else {
                    ReadError::Truncated { wanted: buf.len(), got }
                });
            }
            got += n;
        }
        Ok(())
    }

    /// Read a header.
    pub fn read_header(
        &mut self,
        fds: &mut Vec<File>,
        max_fds: usize,
        wait: &mut dyn FnMut(RawFd) -> std::io::Result<Ready>,
    ) -> Result<Header, ReadError> {
        let mut b = [0u8; HEADER_SIZE];
        self.read_exact(&mut b, fds, max_fds, true, wait)?;
        Ok(Header::read_from_bytes(&b).expect("16 bytes"))
    }

    /// Read and drop `n` bytes (a payload that is refused but whose size is
    /// within bounds), and whatever descriptors come with them.
    pub fn skip(
        &mut self,
        mut n: usize,
        max_fds: usize,
        wait: &mut dyn FnMut(RawFd) -> std::io::Result<Ready>,
    ) -> Result<(), ReadError> {
        let mut buf = [0u8; 4096];
        let mut fds = Vec::new();
        while n > 0 {
            let k = n.min(buf.len());
            self.read_exact(&mut buf[..k], &mut fds, max_fds, false, wait)?;
            fds.clear();
            n -= k;
        }
        Ok(())
    }

    /// Send a message: `hdr`, then `payload`, with `fds` attached to the
    /// first byte. Never raises SIGPIPE (a peer that is gone is an error
    /// here, not the end of the process).
    pub fn send(&mut self, hdr: &Header, payload: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
        let mut msg = Vec::with_capacity(HEADER_SIZE + payload.len());
        msg.extend_from_slice(hdr.as_bytes());
        msg.extend_from_slice(payload);
        let mut sent = 0;
        let mut fds = fds;
        while sent < msg.len() {
            match self.stream.send_with_fds(&[&msg[sent..]], fds) {
                Ok(n) => {
                    sent += n;
                    fds = &[];
                }
                Err(e) if e.errno() == libc::EINTR => {}
                // The send timeout passed: the peer reads nothing.
                Err(e) if e.errno() == libc::EAGAIN => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the peer read nothing in time",
                    ))
                }
                Err(e) => return Err(std::io::Error::from_raw_os_error(e.errno())),
            }
        }
        Ok(())
    }

    /// Shut the connection down both ways (the peer sees it close).
    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}
