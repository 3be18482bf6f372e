//! nicdrv's vfio-user client against a server that sends anything: the
//! fuzz input is the server's side of the stream. The client must end
//! every call with a value or an error, never panic, hang (the replies
//! are there or the stream is closed) or allocate what a reply announces.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    // No Rust `main` here to ignore SIGPIPE: a write to a closed socket
    // must be an error, not the end of the fuzzer.
    static IGNORE: std::sync::Once = std::sync::Once::new();
    // SAFETY: installing SIG_IGN for SIGPIPE, once, before any write.
    IGNORE.call_once(|| unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    });
    let (client_end, mut server_end) = UnixStream::pair().unwrap();
    // The whole reply stream up front, then the server's side closes: a
    // client waiting for more sees the end, not a timeout.
    let data = data.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = server_end.write_all(&data);
        let _ = server_end.shutdown(std::net::Shutdown::Write);
        // Drain what the client sends so its writes never block.
        let mut sink = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut server_end, &mut sink) {
            if n == 0 {
                break;
            }
        }
    });
    if let Ok(mut c) = vfu::client::Client::on_stream(client_end, Duration::from_secs(5)) {
        let mut buf = [0u8; 64];
        let _ = c.region_read(0, 0, &mut buf);
        let _ = c.region_write(7, 4, &[6, 0]);
        let _ = c.irq_info(2);
        let _ = c.dma_unmap(0x1000, 0x1000);
        let _ = c.reset();
        if let Some(r) = c.region(0) {
            for &(o, s) in &r.sparse {
                assert!(o.checked_add(s).is_some_and(|e| e <= r.size));
            }
        }
    }
    drop(writer.join());
});
