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

use dataplane::pipeline::{limits, Executor, Input, Pipeline, Program, Verdict};
use libfuzzer_sys::fuzz_target;
use std::sync::Mutex;

static PIPE: Mutex<Option<(Pipeline, Pipeline)>> = Mutex::new(None);
static IMAGE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// Run up to 8 packets (split at 0xff) through `p` as a batch; check one
/// outcome per packet, the stats, and the cost bound. Then the same
/// packets one at a time through `r`, the reference executor: everything
/// must agree.
fn run(p: &mut Pipeline, r: &mut Pipeline, bytes: &[u8], ingress: bool, now: u64) {
    let mut pkts: Vec<Vec<u8>> = bytes.split(|&b| b == 0xff).take(8).map(|s| s.to_vec()).collect();
    let mut ref_pkts = pkts.clone();
    let n = pkts.len();
    let bound = p.program().max_packet_cost();
    assert!(bound <= limits::PACKET_COST);
    let before = p.stats();
    let lif = |i: usize| if ingress { i as u16 } else { 0xffff };
    let mut batch: Vec<Input<'_>> = pkts
        .iter_mut()
        .enumerate()
        .map(|(i, d)| Input {
            data: d,
            ingress_lif: lif(i),
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
    let nm = p.program().meta.len();
    let meta = p.last_meta().to_vec();
    for (i, d) in ref_pkts.iter_mut().enumerate() {
        let o = r.process(now, d, lif(i));
        assert_eq!(o, out[i], "packet {i}: outcome ({})", p.backend());
        assert_eq!(*d, pkts[i], "packet {i}: bytes ({})", p.backend());
        assert_eq!(
            r.last_meta(),
            &meta[i * nm..(i + 1) * nm],
            "packet {i}: metadata ({})",
            p.backend()
        );
    }
    assert_eq!(r.stats(), p.stats(), "statistics ({})", p.backend());
    for (c, def) in p.program().counters.iter().enumerate() {
        for i in 0..def.size.min(64) {
            assert_eq!(r.counter(c as u16, i), p.counter(c as u16, i), "counter {c}[{i}]");
        }
    }
}

/// The program on both executors (None if it does not load).
fn both(prog: Program) -> Option<(Pipeline, Pipeline)> {
    let p = Pipeline::with_executor(prog.clone(), Executor::Best).ok()?;
    let r = Pipeline::with_executor(prog, Executor::Reference).expect("loads on one executor, loads on the other");
    Some((p, r))
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
                if let Some((mut p, mut r)) = both(prog) {
                    run(&mut p, &mut r, pkts, mode & 2 == 0, u64::from(mode));
                }
            }
        }
        1 | 3 => {
            let mut g = PIPE.lock().unwrap();
            let (p, r) = g.get_or_insert_with(|| both(p4::fairnic()).expect("fairnic.p4 loads"));
            run(p, r, rest, mode & 2 == 0, u64::from(mode));
        }
        _ => {
            let mut image = IMAGE.get_or_init(|| p4::fairnic().to_image()).clone();
            let (flips, pkts) = rest.split_at(rest.len().min(64));
            for (i, b) in flips.iter().enumerate() {
                let at = (i * 97 + usize::from(*b)) % image.len();
                image[at] ^= b;
            }
            if let Some((mut p, mut r)) = Program::from_image(&image).ok().and_then(both) {
                run(&mut p, &mut r, pkts, true, 0);
            }
        }
    }
});
