//! nicctl's quantities (`2Gbit/s`, `64KiB`) come from the command line:
//! any text parses or gives an error whose caret lies inside the input;
//! a parsed value printed in the resource's unit parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mgmt::proto::MeterResource;
use mgmt::units::{parse, unit_of, Kind};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let Ok(s) = std::str::from_utf8(rest) else { return };
    let all = MeterResource::ALL;
    let r = all[usize::from(sel & 0x7f) % all.len()];
    let k = if sel & 0x80 != 0 { Kind::Rate } else { Kind::Size };
    match parse(s, r, k) {
        Ok(p) => {
            if p.value < (1 << 53) {
                let again = parse(&format!("{}{}", p.value, unit_of(r, k)), r, k).expect("own unit parses");
                assert_eq!(again.value, p.value);
            }
        }
        Err(e) => {
            assert!(e.at <= s.len() && s.is_char_boundary(e.at));
            let _ = e.to_string();
        }
    }
});
