//! One client connection: framing by the header, bounded reads with the
//! file descriptors that come with them, replies, and waiting that a stop
//! request or a second client can interrupt.
//!
//! Every read is bounded by what the caller asks for, and the caller asks
//! only for what the header announced after checking it against the
//! command's limits ([`super::wire::payload_limits`]): nothing a client
//! sends makes nicsim allocate more than that, read ahead, or wait for
//! bytes the header did not promise.

use super::wire::{Header, HEADER_SIZE};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use vmm_sys_util::sock_ctrl_msg::ScmSocket;
use zerocopy::{FromBytes, IntoBytes};

/// How long a reply may wait for the client to make room on the socket.
pub const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a read did not complete.
#[derive(Debug)]
pub enum ReadError {
    /// The client closed the connection between messages.
    Closed,
    /// The client closed the connection in the middle of a message.
    Truncated {
        wanted: usize,
        got: usize,
    },
    /// More file descriptors than announced came with the message (the
    /// kernel closed the excess; the stream cannot be trusted any more).
    TooManyFds,
    /// The server is stopping.
    Stopped,
    Io(std::io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Closed => write!(f, "the client closed the connection"),
            ReadError::Truncated { wanted, got } => {
                write!(
                    f,
                    "the client closed the connection {got} bytes into a {wanted}-byte read"
                )
            }
            ReadError::TooManyFds => write!(f, "more file descriptors than max_msg_fds came with a message"),
            ReadError::Stopped => write!(f, "the server is stopping"),
            ReadError::Io(e) => write!(f, "socket: {e}"),
        }
    }
}

/// A connected client.
pub struct Conn {
    stream: UnixStream,
    /// Readable when the server must stop (level-triggered: never read).
    stop: RawFd,
    /// The function's listening socket: a second client that connects
    /// while this one is served is turned away at once instead of waiting
    /// in the backlog.
    listener: RawFd,
    /// Connections turned away.
    pub refused: u64,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("fd", &self.stream.as_raw_fd()).finish()
    }
}

/// What a wait ended with.
enum Ready {
    Data,
    Stop,
}

impl Conn {
    pub fn new(stream: UnixStream, stop: RawFd, listener: &UnixListener) -> Conn {
        // Replies wait at most this long for room in the socket.
        let _ = stream.set_write_timeout(Some(SEND_TIMEOUT));
        Conn {
            stream,
            stop,
            listener: listener.as_raw_fd(),
            refused: 0,
        }
    }

    /// Wait until the stream is readable or the server must stop; turn
    /// away clients that connect meanwhile.
    fn wait(&mut self) -> Result<Ready, std::io::Error> {
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: self.stream.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.stop,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.listener,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: `fds` is a valid array of three pollfd for the
            // duration of the call; the descriptors are ours and open.
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
            // once must find the server done with its old connection,
            // not be turned away as a second client.
            if fds[0].revents != 0 {
                return Ok(Ready::Data);
            }
            if fds[2].revents & libc::POLLIN != 0 {
                self.turn_away();
            }
        }
    }

    /// Accept and close a second client: vfio-user serves one client per
    /// socket.
    fn turn_away(&mut self) {
        // SAFETY: accept4 on our listening socket with no address buffer;
        // the returned descriptor, if any, is owned by the File and closed.
        let fd = unsafe {
            libc::accept4(
                self.listener,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            )
        };
        if fd >= 0 {
            // SAFETY: a fresh descriptor accept4 returned; nobody else owns it.
            drop(unsafe { File::from_raw_fd(fd) });
            self.refused += 1;
            tracing::warn!("a second client connected while one is served: turned away");
        }
    }

    /// Read exactly `buf.len()` bytes, collecting the file descriptors that
    /// come with them (at most `max_fds` in all). `at_boundary`: a close
    /// before the first byte is a clean `Closed`.
    pub fn read_exact(
        &mut self,
        buf: &mut [u8],
        fds: &mut Vec<File>,
        max_fds: usize,
        at_boundary: bool,
    ) -> Result<(), ReadError> {
        let mut got = 0;
        while got < buf.len() {
            match self.wait().map_err(ReadError::Io)? {
                Ready::Stop => return Err(ReadError::Stopped),
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
    pub fn read_header(&mut self, fds: &mut Vec<File>, max_fds: usize) -> Result<Header, ReadError> {
        let mut b = [0u8; HEADER_SIZE];
        self.read_exact(&mut b, fds, max_fds, true)?;
        Ok(Header::read_from_bytes(&b).expect("16 bytes"))
    }

    /// Send a message: `hdr`, then `payload`, with `fd` attached to the
    /// first byte. Never raises SIGPIPE (a client that is gone is an error
    /// here, not the end of the process).
    pub fn send(&mut self, hdr: &Header, payload: &[u8], fd: Option<RawFd>) -> std::io::Result<()> {
        let mut msg = Vec::with_capacity(HEADER_SIZE + payload.len());
        msg.extend_from_slice(hdr.as_bytes());
        msg.extend_from_slice(payload);
        let mut sent = 0;
        let mut fds: Vec<RawFd> = fd.into_iter().collect();
        while sent < msg.len() {
            match self.stream.send_with_fds(&[&msg[sent..]], &fds) {
                Ok(n) => {
                    sent += n;
                    fds.clear();
                }
                Err(e) if e.errno() == libc::EINTR => {}
                // The send timeout passed: a client that does not read its
                // replies loses its connection rather than hold a thread.
                Err(e) if e.errno() == libc::EAGAIN => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("the client read nothing for {SEND_TIMEOUT:?}"),
                    ))
                }
                Err(e) => return Err(std::io::Error::from_raw_os_error(e.errno())),
            }
        }
        Ok(())
    }

    /// Read and drop `n` bytes (the payload of a message that is refused
    /// but whose size is within bounds), and whatever descriptors come
    /// with them.
    pub fn skip(&mut self, mut n: usize, max_fds: usize) -> Result<(), ReadError> {
        let mut buf = [0u8; 4096];
        let mut fds = Vec::new();
        while n > 0 {
            let k = n.min(buf.len());
            self.read_exact(&mut buf[..k], &mut fds, max_fds, false)?;
            fds.clear();
            n -= k;
        }
        Ok(())
    }
}
