//! The client against a server that lies: each test plays the server by
//! hand on one end of a socket and checks that the client ends with a
//! clear error, never a panic, a hang, or an allocation the server chose.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;
use vfu::client::{Client, Error};

/// A scripted server: accepts one client and runs `script` on it.
fn serve(script: impl FnOnce(UnixStream) + Send + 'static) -> (PathBuf, std::thread::JoinHandle<()>) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "vfu-hostile-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let l = UnixListener::bind(&path).unwrap();
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        script(s);
    });
    (path, t)
}

/// Read one request: (id, command, payload).
fn request(s: &mut UnixStream) -> (u16, u16, Vec<u8>) {
    let mut h = [0u8; 16];
    s.read_exact(&mut h).unwrap();
    let id = u16::from_ne_bytes([h[0], h[1]]);
    let cmd = u16::from_ne_bytes([h[2], h[3]]);
    let size = u32::from_ne_bytes(h[4..8].try_into().unwrap()) as usize;
    let mut p = vec![0u8; size - 16];
    s.read_exact(&mut p).unwrap();
    (id, cmd, p)
}

fn header(id: u16, cmd: u16, size: u32, flags: u32, error: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&id.to_ne_bytes());
    h.extend_from_slice(&cmd.to_ne_bytes());
    h.extend_from_slice(&size.to_ne_bytes());
    h.extend_from_slice(&flags.to_ne_bytes());
    h.extend_from_slice(&error.to_ne_bytes());
    h
}

fn reply(s: &mut UnixStream, id: u16, cmd: u16, payload: &[u8]) {
    let mut m = header(id, cmd, 16 + payload.len() as u32, 1, 0);
    m.extend_from_slice(payload);
    let _ = s.write_all(&m);
}

/// A proper VERSION reply.
fn version(s: &mut UnixStream) {
    let (id, cmd, _) = request(s);
    assert_eq!(cmd, 1);
    let mut p = vec![0, 0, 1, 0];
    p.extend_from_slice(b"{\"capabilities\":{\"max_data_xfer_size\":4096}}\0");
    reply(s, id, 1, &p);
}

/// A proper DEVICE_GET_INFO reply with `regions` regions.
fn info(s: &mut UnixStream, regions: u32) {
    let (id, cmd, _) = request(s);
    assert_eq!(cmd, 4);
    let mut p = Vec::new();
    for v in [16u32, 3, regions, 5] {
        p.extend_from_slice(&v.to_ne_bytes());
    }
    reply(s, id, 4, &p);
}

fn connect_err(path: &std::path::Path) -> Error {
    match Client::connect(path, Duration::from_secs(2)) {
        Ok(_) => panic!("the client accepted a lying server"),
        Err(e) => e,
    }
}

#[test]
fn a_version_reply_shorter_than_its_fixed_part_is_an_error_not_an_underflow() {
    let (path, t) = serve(|mut s| {
        let (id, _, _) = request(&mut s);
        // Size 18: two bytes of a four-byte fixed part.
        let mut m = header(id, 1, 18, 1, 0);
        m.extend_from_slice(&[0, 0]);
        s.write_all(&m).unwrap();
    });
    let e = connect_err(&path);
    assert!(matches!(e, Error::Protocol { .. }), "{e}");
    t.join().unwrap();
}

#[test]
fn a_reply_announcing_4_gib_is_refused_before_a_byte_is_read() {
    let (path, t) = serve(|mut s| {
        let (id, _, _) = request(&mut s);
        s.write_all(&header(id, 1, u32::MAX, 1, 0)).unwrap();
        // Whatever follows is never read (the client closes).
        let _ = s.write_all(&vec![0u8; 1 << 20]);
    });
    let e = connect_err(&path);
    assert!(e.to_string().contains("at most"), "{e}");
    t.join().unwrap();
}

#[test]
fn a_reply_to_another_request_is_a_protocol_error() {
    let (path, t) = serve(|mut s| {
        let (id, _, _) = request(&mut s);
        reply(&mut s, id.wrapping_add(7), 1, &[0, 0, 1, 0, 0]);
    });
    let e = connect_err(&path);
    assert!(e.to_string().contains("expected"), "{e}");
    t.join().unwrap();
}

#[test]
fn a_silent_server_times_out() {
    let (path, t) = serve(|mut s| {
        let _ = request(&mut s);
        std::thread::sleep(Duration::from_secs(4));
    });
    let e = connect_err(&path);
    assert!(matches!(e, Error::TimedOut { .. }), "{e}");
    t.join().unwrap();
}

#[test]
fn absurd_device_info_is_refused() {
    let (path, t) = serve(|mut s| {
        version(&mut s);
        info(&mut s, 1_000_000);
    });
    let e = connect_err(&path);
    assert!(e.to_string().contains("1000000 regions"), "{e}");
    t.join().unwrap();
}

/// A region-info reply for region `index` with the given capability bytes.
fn region_reply(s: &mut UnixStream, size: u64, cap_offset: u32, caps: &[u8]) {
    let (id, cmd, p) = request(s);
    assert_eq!(cmd, 5);
    let index = u32::from_ne_bytes(p[8..12].try_into().unwrap());
    let mut r = Vec::new();
    r.extend_from_slice(&(32 + caps.len() as u32).to_ne_bytes());
    r.extend_from_slice(&(if caps.is_empty() { 3u32 } else { 3 | 4 | 8 }).to_ne_bytes());
    r.extend_from_slice(&index.to_ne_bytes());
    r.extend_from_slice(&cap_offset.to_ne_bytes());
    r.extend_from_slice(&size.to_ne_bytes());
    r.extend_from_slice(&0u64.to_ne_bytes());
    r.extend_from_slice(caps);
    reply(s, id, 5, &r);
}

fn sparse_cap(next: u32, nr: u32, areas: &[(u64, u64)]) -> Vec<u8> {
    let mut c = Vec::new();
    c.extend_from_slice(&1u16.to_ne_bytes());
    c.extend_from_slice(&1u16.to_ne_bytes());
    c.extend_from_slice(&next.to_ne_bytes());
    c.extend_from_slice(&nr.to_ne_bytes());
    c.extend_from_slice(&0u32.to_ne_bytes());
    for (o, s) in areas {
        c.extend_from_slice(&o.to_ne_bytes());
        c.extend_from_slice(&s.to_ne_bytes());
    }
    c
}

#[test]
fn region_capabilities_that_loop_overrun_or_point_outside_are_refused() {
    let cases: Vec<(Vec<u8>, u64, &str)> = vec![
        (sparse_cap(32, 1, &[(0, 0x1000)]), 0x10000, "does not advance"),
        (sparse_cap(0, u32::MAX, &[(0, 0x1000)]), 0x10000, "sparse areas in"),
        (sparse_cap(0, 1, &[(u64::MAX - 4, 0x1000)]), 0x10000, "outside the"),
        (sparse_cap(0, 1, &[(0x8000, 0x9000)]), 0x10000, "outside the"),
        (sparse_cap(4096, 1, &[(0, 0x1000)]), 0x10000, "outside the reply"),
    ];
    for (caps, size, want) in cases {
        let c2 = caps.clone();
        let (path, t) = serve(move |mut s| {
            version(&mut s);
            info(&mut s, 1);
            // First the short form (asks for a larger argsz), then the caps.
            let (id, _, _) = request(&mut s);
            let mut r = Vec::new();
            r.extend_from_slice(&(32 + c2.len() as u32).to_ne_bytes());
            r.extend_from_slice(&(3u32 | 4 | 8).to_ne_bytes());
            r.extend_from_slice(&0u32.to_ne_bytes());
            r.extend_from_slice(&32u32.to_ne_bytes());
            r.extend_from_slice(&size.to_ne_bytes());
            r.extend_from_slice(&0u64.to_ne_bytes());
            reply(&mut s, id, 5, &r);
            region_reply(&mut s, size, 32, &c2);
        });
        let e = connect_err(&path);
        assert!(e.to_string().contains(want), "{want}: {e}");
        t.join().unwrap();
    }
}

#[test]
fn error_replies_carry_their_errno_and_a_good_server_works() {
    let (path, t) = serve(|mut s| {
        version(&mut s);
        info(&mut s, 1);
        region_reply(&mut s, 0x10000, 0, &[]);
        // DMA_MAP refused with EEXIST (header only, as the spec says).
        let (id, cmd, _) = request(&mut s);
        assert_eq!(cmd, 2);
        s.write_all(&header(id, 2, 16, 1 | 1 << 5, libc::EEXIST as u32))
            .unwrap();
        // A region read split by max_data_xfer_size (4096): two requests.
        for k in 0..2u8 {
            let (id, cmd, p) = request(&mut s);
            assert_eq!(cmd, 9);
            let count = u32::from_ne_bytes(p[12..16].try_into().unwrap());
            assert!(count <= 4096);
            let mut r = p[..16].to_vec();
            r.extend(std::iter::repeat_n(k, count as usize));
            reply(&mut s, id, 9, &r);
        }
        // A read whose reply has the wrong count.
        let (id, _, p) = request(&mut s);
        let mut r = p[..12].to_vec();
        r.extend_from_slice(&1u32.to_ne_bytes());
        r.push(0);
        reply(&mut s, id, 9, &r);
    });
    let mut c = Client::connect(&path, Duration::from_secs(5)).unwrap();
    assert_eq!(c.max_data, 4096);
    // SAFETY: a memfd the test owns; only its number is sent.
    let fd = unsafe { libc::memfd_create(c"t".as_ptr(), 0) };
    let e = c.dma_map(0x1000, 0x1000, fd, 0, true).unwrap_err();
    assert!(
        matches!(e, Error::Refused { errno, .. } if errno == libc::EEXIST),
        "{e}"
    );
    let mut buf = vec![9u8; 6000];
    c.region_read(0, 0, &mut buf).unwrap();
    assert!(buf[..4096].iter().all(|&b| b == 0) && buf[4096..].iter().all(|&b| b == 1));
    let e = c.region_read(0, 0, &mut [0u8; 8]).unwrap_err();
    assert!(matches!(e, Error::Protocol { .. }), "{e}");
    t.join().unwrap();
    // After a protocol error the connection is done with.
    assert!(matches!(c.region_read(0, 0, &mut [0u8; 8]), Err(Error::Gone { .. })));
}
