//! The pipeline's untrusted inputs: images from the host (`PipelineLoad`)
//! must decode and validate or be refused, never panic, overflow the stack
//! or hang; an image that loads runs packets of any bytes, one verdict
//! each, charging no more than the cost bound validation proved; packets
//! of any bytes through `fairnic.p4` end in exactly one verdict each.
//!
//! Input: a mode byte. Even: the rest is an image, then (after the first
//! 0xfe 0xfe pair) packets split at 0xff, run through it if it loads.
//! Mode 1 and 3: packets through fairnic.p4 (with or without an ingress
//! LIF). Mode 5 and 7: fairnic.p4's image with the bytes after the mode
//! XORed into it, then packets (mutations of a real image reach deeper
//! than random bytes do).
#![no_main]

use dataplane::pipeline::{limits, Input, Pipeline, Program, Verdict};
use libfuzzer_sys::fuzz_target;
use std::sync::Mutex;

static PIPE: Mutex<Option<Pipeline>> = Mutex::new(None);
static IMAGE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// Run up to 8 packets (split at 0xff) through `p`; check one outcome per
/// packet, the stats, and the cost bound.
fn run(p: &mut Pipeline, bytes: &[u8], ingress: bool, now: u64) {
    let mut pkts: Vec<Vec<u8>> = bytes.split(|&b| b == 0xff).take(8).map(|s| s.to_vec()).collect();
    let n = pkts.len();
    let bound = p.program().max_packet_cost();
    assert!(bound <= limits::PACKET_COST);
    let before = p.stats();
    let mut batch: Vec<Input<'_>> = pkts
        .iter_mut()
        .enumerate()
        .map(|(i, d)| Input {
            data: d,
            ingress_lif: if ingress { i as u16 } else { 0xffff },
        })
        .collect();
    let mut out = Vec::new();
    p.process_batch(now, &mut batch, &mut out);
    assert_eq!(out.len(), n);
    let after = p.stats();
    assert_eq!(after.packets - before.packets, n as u64);
    let errors = out.iter().filter(|o| o.verdict == Verdict::ParseError).count() as u64;
    assert_eq!(after.parse_errors - before.parse_errors, errors);
    for o in &out {
        assert!(
            u64::from(o.cost) <= bound,
            "cost {} past the proved bound {bound}",
            o.cost
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode & 7 {
        0 | 2 | 4 | 6 => {
            let cut = rest.windows(2).position(|w| w == [0xfe, 0xfe]);
            let (image, pkts) = match cut {
                Some(i) => (&rest[..i], &rest[i + 2..]),
                None => (rest, &[][..]),
            };
            if let Ok(prog) = Program::from_image(image) {
                if let Ok(mut p) = Pipeline::new(prog) {
                    run(&mut p, pkts, mode & 2 == 0, u64::from(mode));
                }
            }
        }
        1 | 3 => {
            let mut g = PIPE.lock().unwrap();
            let p = g.get_or_insert_with(|| Pipeline::new(p4::fairnic()).expect("fairnic.p4 loads"));
            run(p, rest, mode & 2 == 0, u64::from(mode));
        }
        _ => {
            let mut image = IMAGE.get_or_init(|| p4::fairnic().to_image()).clone();
            let (flips, pkts) = rest.split_at(rest.len().min(64));
            for (i, b) in flips.iter().enumerate() {
                let at = (i * 97 + usize::from(*b)) % image.len();
                image[at] ^= b;
            }
            if let Ok(mut p) = Pipeline::from_image(&image) {
                run(&mut p, pkts, true, 0);
            }
        }
    }
});
