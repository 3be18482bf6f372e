//! The ring between two processes: the producer in this process, the
//! consumer in a forked child, each mapping the same memfd at its own
//! address, exactly as the driver and the simulator share a queue.

#![cfg(all(target_os = "linux", not(miri)))]

use dataplane::abi::QUEUE_STATE_SIZE;
use dataplane::ring::{Consumer, Producer};
use std::ptr::NonNull;

const ORDER: u8 = 8;
const N: u64 = 200_000;

struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(fd: i32, len: usize) -> Mapping {
        // SAFETY: a fresh shared mapping of a memfd we own; checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
        Mapping {
            ptr: NonNull::new(p.cast()).unwrap(),
            len,
        }
    }

    fn slots(&self) -> NonNull<u64> {
        // SAFETY: QUEUE_STATE_SIZE is inside the mapping (len is larger).
        unsafe { NonNull::new_unchecked(self.ptr.as_ptr().add(QUEUE_STATE_SIZE)).cast() }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: mapped in `new` with this length.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// The child: consume N values, check order, exit 0 (or 1 on any error).
/// Only async-signal-safe work after fork: no allocation, no locks.
fn child(m: &Mapping) -> ! {
    // SAFETY: the mapping holds a state block and 2^ORDER u64 slots; this
    // process attaches the only consumer.
    let code = match unsafe { Consumer::<u64>::attach(m.ptr, m.slots(), ORDER) } {
        Err(_) => 2,
        Ok(mut c) => {
            let mut expect = 0u64;
            let mut buf = [0u64; 32];
            let mut code = 0;
            while expect < N && code == 0 {
                match c.fetch_burst(&mut buf) {
                    Ok(n) => {
                        for &v in &buf[..n] {
                            if v != expect {
                                code = 1;
                            }
                            expect += 1;
                        }
                        c.write_back();
                        if n == 0 {
                            std::hint::spin_loop();
                        }
                    }
                    Err(_) => code = 3,
                }
            }
            code
        }
    };
    // SAFETY: _exit is async-signal-safe and skips the parent's atexit state.
    unsafe { libc::_exit(code) }
}

#[test]
fn producer_and_consumer_in_two_processes() {
    let len = QUEUE_STATE_SIZE + (8usize << ORDER);
    // SAFETY: plain syscalls with checked results.
    let fd = unsafe { libc::memfd_create(c"fairnic-ring".as_ptr(), 0) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: fd is ours.
    assert_eq!(unsafe { libc::ftruncate(fd, len as libc::off_t) }, 0);
    let producer_map = Mapping::new(fd, len);
    let consumer_map = Mapping::new(fd, len);
    assert_ne!(
        producer_map.ptr, consumer_map.ptr,
        "two distinct mappings of one memory"
    );

    // SAFETY: fork in a test process; the child runs only `child`, which
    // does no allocation and exits with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        child(&consumer_map);
    }

    // SAFETY: the mapping is zeroed (a valid empty ring at index 0) and this
    // process attaches the only producer.
    let mut p = unsafe { Producer::<u64>::attach(producer_map.ptr, producer_map.slots(), ORDER) }.unwrap();
    let mut next = 0u64;
    let mut batch = [0u64; 32];
    while next < N {
        let k = (N - next).min(32) as usize;
        for (i, b) in batch[..k].iter_mut().enumerate() {
            *b = next + i as u64;
        }
        let sent = p.fill_burst(&batch[..k]);
        next += sent as u64;
        if sent == 0 {
            p.reclaim().unwrap();
            std::hint::spin_loop();
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "child saw values out of order (1) or a ring error (2, 3)"
    );
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
}
