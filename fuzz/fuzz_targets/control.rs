//! Control-socket lines are untrusted (any local process may connect):
//! parsing never panics, and what parses re-encodes to an equal request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mgmt::proto::{encode, parse_request, parse_response};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = parse_request(data) {
        let line = encode(&req);
        assert_eq!(parse_request(line.trim_end().as_bytes()), Ok(req));
    }
    let _ = parse_response(data);
});
