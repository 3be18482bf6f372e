//! Capture files are untrusted input to nicsim's pcap port: the reader
//! returns records or a named error, never panics or over-allocates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sim::pcap::PcapReader;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut r) = PcapReader::new(data) {
        for _ in 0..64 {
            match r.next_record() {
                Ok(Some(rec)) => assert!(rec.data.len() <= 262_144),
                _ => break,
            }
        }
    }
});
