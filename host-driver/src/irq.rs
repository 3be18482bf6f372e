//! Interrupt mode: sleep on the MSI-X eventfds of a set of RX queues until
//! one has completions, without ever missing one.
//!
//! The protocol (docs/device-abi.md, "The consumer flag"): while the
//! application polls, each queue's consumer flag says POLLING and the
//! device raises no interrupt for it. To sleep, [`Waiter::wait`] marks
//! every queue ARMED, issues a full fence, and looks at each completion
//! ring once more; only if all are empty does it block in `epoll_pwait2`.
//! The device writes a completion, fences, and reads the flag, so either
//! the driver sees the completion before sleeping, or the device sees
//! ARMED and interrupts. After waking, the queues go back to POLLING.

use crate::queue::RxQueue;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;
use vmm_sys_util::eventfd::EventFd;

/// Counters of the waiter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaitStats {
    /// Times `wait` blocked.
    pub sleeps: u64,
    /// Times the last look after arming found work (the race the
    /// protocol closes).
    pub rechecks_hit: u64,
    /// Interrupts received (eventfd counts summed).
    pub interrupts: u64,
    /// Waits that timed out.
    pub timeouts: u64,
    /// Timeouts that found work waiting: an interrupt that never came,
    /// recovered by the timeout.
    pub lost_interrupts: u64,
}

/// Sleeps on a set of eventfds.
#[derive(Debug)]
pub struct Waiter {
    epoll: OwnedFd,
    fds: Vec<Arc<EventFd>>,
    stats: WaitStats,
    /// `epoll_pwait2` is not available (a kernel before 5.11, or a seccomp
    /// filter refuses it).
    no_pwait2: bool,
}

impl Waiter {
    /// A waiter over these eventfds (duplicates are fine).
    pub fn new(fds: impl IntoIterator<Item = Arc<EventFd>>) -> std::io::Result<Waiter> {
        // SAFETY: plain syscall; checked; the fd is owned by the OwnedFd.
        let epoll = unsafe {
            let fd = libc::epoll_create1(libc::EPOLL_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            OwnedFd::from_raw_fd(fd)
        };
        let mut uniq: Vec<Arc<EventFd>> = Vec::new();
        for f in fds {
            if uniq.iter().any(|u| u.as_raw_fd() == f.as_raw_fd()) {
                continue;
            }
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: uniq.len() as u64,
            };
            // SAFETY: valid epoll fd and eventfd; `ev` lives across the call.
            if unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, f.as_raw_fd(), &mut ev) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
            uniq.push(f);
        }
        Ok(Waiter {
            epoll,
            fds: uniq,
            stats: WaitStats::default(),
            no_pwait2: false,
        })
    }

    /// Block until one of `queues` has a completion or `timeout` passes.
    /// Returns whether work is (probably) waiting. A timeout with work
    /// waiting is a lost interrupt, recovered here: the rings are looked at
    /// whatever woke the thread.
    pub fn wait(&mut self, queues: &[&RxQueue], timeout: Duration) -> std::io::Result<bool> {
        if self.arm(queues) {
            for q in queues {
                q.parts.disarm();
            }
            return Ok(true);
        }
        self.sleep(queues, timeout)
    }

    /// The first half of [`Waiter::wait`]: mark every queue ARMED and look
    /// once more; true if work is already there (then do not sleep, and
    /// disarm by polling). Split out so a test can let the device run
    /// between the two halves, as it does when the driver is asleep.
    #[must_use = "true: work is already there; do not sleep, and disarm the queues"]
    pub fn arm(&mut self, queues: &[&RxQueue]) -> bool {
        let mut ready = false;
        for q in queues {
            if q.parts.arm() {
                ready = true;
            }
        }
        if ready {
            self.stats.rechecks_hit += 1;
        }
        ready
    }

    /// The second half of [`Waiter::wait`]: block on the eventfds, then
    /// disarm and look at the rings.
    pub fn sleep(&mut self, queues: &[&RxQueue], timeout: Duration) -> std::io::Result<bool> {
        self.stats.sleeps += 1;
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 16];
        let n = self.epoll_wait(&mut events, timeout);
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        if n == 0 {
            self.stats.timeouts += 1;
        }
        for ev in events.iter().take(n.max(0) as usize) {
            if let Some(fd) = self.fds.get(ev.u64 as usize) {
                if let Ok(c) = fd.read() {
                    self.stats.interrupts += c;
                }
            }
        }
        for q in queues {
            q.parts.disarm();
        }
        let work = queues.iter().any(|q| q.ready());
        if n == 0 && work {
            self.stats.lost_interrupts += 1;
        }
        Ok(n > 0 || work)
    }

    /// `epoll_pwait2` with a nanosecond timeout (a rate-limited sender
    /// sleeps microseconds: `epoll_wait`'s milliseconds would turn 20 µs
    /// into a busy poll or a 1 ms stall); `epoll_wait` where it is not
    /// available.
    fn epoll_wait(&mut self, events: &mut [libc::epoll_event; 16], timeout: Duration) -> i32 {
        if !self.no_pwait2 {
            let ts = libc::timespec {
                tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
            };
            // SAFETY: epoll_pwait2(2) on our epoll fd with `events` writable
            // for its 16 entries, `ts` alive for the call, no signal mask.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    self.epoll.as_raw_fd(),
                    events.as_mut_ptr(),
                    events.len() as libc::c_int,
                    &ts as *const libc::timespec,
                    std::ptr::null::<libc::sigset_t>(),
                    0usize,
                )
            };
            // ENOSYS: a kernel before 5.11; EPERM: a seccomp filter that
            // does not know the call (older container profiles).
            let errno = std::io::Error::last_os_error().raw_os_error();
            if n >= 0 || !matches!(errno, Some(libc::ENOSYS) | Some(libc::EPERM)) {
                return n as i32;
            }
            self.no_pwait2 = true;
        }
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: valid epoll fd; `events` is writable for 16 entries.
        unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), events.as_mut_ptr(), events.len() as i32, ms) }
    }

    /// Counters.
    pub fn stats(&self) -> WaitStats {
        self.stats
    }
}
