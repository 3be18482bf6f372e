//! Every ABI parser on untrusted bytes: none may panic, and whatever
//! parses must encode back to the same bytes.
#![no_main]

use dataplane::abi::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Identity::parse(data);
    let _ = TxDesc::parse(data);
    let _ = RxDesc::parse(data);
    if let Ok(c) = Completion::parse(data) {
        assert_eq!(c.encode().as_bytes(), &data[..16]);
    }
    if let Ok((hdr, cmd)) = AdminCommand::parse(data) {
        assert_eq!(cmd.encode(hdr).as_bytes(), &data[..64]);
    }
    if let Ok((hdr, cmd)) = DevCommand::parse(data) {
        assert_eq!(cmd.encode(hdr).as_bytes(), &data[..64]);
    }
    let _ = AdminComp::parse(data);
    if data.len() >= 8 {
        let v = u64::from_le_bytes(data[..8].try_into().unwrap());
        if let Ok(db) = Doorbell::decode(v) {
            assert_eq!(db.encode(), v);
        }
    }
});
