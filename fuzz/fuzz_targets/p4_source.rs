//! P4 sources are untrusted input to the front end: any text compiles to a
//! program that validates or gives diagnostics with a position, never a
//! panic, a stack overflow or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        match p4::compile_str(s, "fuzz.p4") {
            Ok(p) => assert!(p.validate().is_ok()),
            Err(d) => assert!(!d.is_empty() && d.iter().all(|d| d.line >= 1 && d.column >= 1)),
        }
    }
});
