//! nicsim's vfio-user server against a client that sends anything: the
//! fuzz input is the client's side of the stream (after an optional valid
//! VERSION, so the commands behind it are reached). The server must answer
//! or close, never panic or hang, and a well-behaved client on another
//! function must be served all along.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;
use std::time::Duration;

static SIM: OnceLock<sim::Sim> = OnceLock::new();

fn sim() -> &'static sim::Sim {
    SIM.get_or_init(|| {
        sim::Sim::start(sim::SimConfig {
            device: sim::device::DeviceConfig {
                vfs: 1,
                ..Default::default()
            },
            clock: sim::ClockKind::Virtual,
            port: sim::PortSpec::Null,
            ..Default::default()
        })
        .expect("sim starts")
    })
}

fn version() -> Vec<u8> {
    let json = b"{\"capabilities\":{}}\0";
    let mut m = Vec::new();
    m.extend_from_slice(&0u16.to_ne_bytes());
    m.extend_from_slice(&1u16.to_ne_bytes());
    m.extend_from_slice(&((16 + 4 + json.len()) as u32).to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[0, 0, 1, 0]);
    m.extend_from_slice(json);
    m
}

/// Wait until the server has finished with one more client of function
/// `f` than `before`: its threads for the connection are joined. Without
/// this the last input's threads may still be ending when the fuzzer
/// exits, and the leak check at exit reports their memory.
fn wait_done(s: &sim::Sim, f: u16, before: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while s.clients_done(f).unwrap() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not finish with function {f}'s client within 10 s"
        );
        std::thread::sleep(Duration::from_micros(50));
    }
}

fuzz_target!(|data: &[u8]| {
    // No Rust `main` here to ignore SIGPIPE: a write to a closed socket
    // must be an error, not the end of the fuzzer.
    static IGNORE: std::sync::Once = std::sync::Once::new();
    // SAFETY: installing SIG_IGN for SIGPIPE, once, before any write.
    IGNORE.call_once(|| unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    });
    let s = sim();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let vf_done = s.clients_done(1).unwrap();
    let mut c = UnixStream::connect(s.vf_socket(0).unwrap()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    if mode & 1 == 1 {
        c.write_all(&version()).unwrap();
    }
    let _ = c.write_all(rest);
    let _ = c.shutdown(std::net::Shutdown::Write);
    // Read until the server closes: it must, once the input ends.
    let mut sink = vec![0u8; 1 << 16];
    loop {
        match c.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                panic!("the server neither answered nor closed within 10 s")
            }
            Err(_) => break,
        }
    }
    drop(c);
    wait_done(s, 1, vf_done);
    // The PF is served meanwhile and after.
    let pf_done = s.clients_done(0).unwrap();
    let mut pf = UnixStream::connect(s.pf_socket()).unwrap();
    pf.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    pf.write_all(&version()).unwrap();
    let mut h = [0u8; 16];
    pf.read_exact(&mut h).expect("the PF's socket answers");
    assert_eq!(u16::from_ne_bytes([h[2], h[3]]), 1);
    drop(pf);
    wait_done(s, 0, pf_done);
    let d = s.device();
    assert!(d.internal_errors.is_empty(), "{:?}", d.internal_errors);
});
