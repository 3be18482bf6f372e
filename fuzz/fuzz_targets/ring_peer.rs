//! A hostile peer on the other side of a ring: the bytes script what the
//! "device" writes back as head and what the "driver" publishes as
//! outgoing_tail, interleaved with honest operations. Neither half may
//! panic, and the invariant holds for the honest side throughout.
#![no_main]

use dataplane::ring::RingMemory;
use libfuzzer_sys::fuzz_target;
use std::sync::atomic::Ordering;

fuzz_target!(|data: &[u8]| {
    let Some((&order, script)) = data.split_first() else {
        return;
    };
    let order = 1 + order % 8;
    let mut mem = RingMemory::<u64>::new(order).unwrap();
    let (mut p, mut c) = mem.split();
    let mut buf = [0u64; 16];
    for step in script.chunks(5) {
        let op = step[0];
        let arg = step
            .get(1..5)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .unwrap_or(0);
        match op % 8 {
            0 => {
                let _ = p.fill_burst(&buf[..(arg as usize % 16)]); // a full ring takes fewer: fine here
            }
            1 => {
                let _ = c.fetch_burst(&mut buf[..(arg as usize % 16)]);
            }
            2 => c.write_back(),
            3 => {
                let _ = p.reclaim();
            }
            // The hostile writes: raw values straight into the shared block.
            4 => c.state().outgoing_tail.store(arg, Ordering::Release),
            5 => c.state().head.store(arg, Ordering::Release),
            6 => {
                let _ = p.doorbell();
                let _ = c.try_idle();
            }
            _ => {
                p.commit();
                p.rollback();
            }
        }
        assert!(p.indices().holds(), "{:?}", p.indices());
    }
});
