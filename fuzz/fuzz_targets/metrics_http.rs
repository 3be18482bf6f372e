//! A scraper's request head reaches `/metrics` from the network: any bytes
//! give a method, target and Accept header, or a reason for a 400; never a
//! panic, and what parses holds no space in the method or target.
#![no_main]

use host_driver::metrics::{parse_head, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((method, target, accept)) = parse_head(data) {
        assert!(!method.contains(' ') && !target.contains(' '));
        let _ = Format::for_accept(accept.as_deref()).content_type();
    }
});
