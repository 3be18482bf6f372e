//! A P4Info text file comes from a controller's toolchain: any bytes read
//! as a P4Info or give an error; one that reads writes back as text that
//! reads to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p4rt::p4info::{from_text, to_text};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(info) = from_text(s) {
        let again = from_text(&to_text(&info)).expect("fairnic's own text reads back");
        assert_eq!(again, info);
    }
});
