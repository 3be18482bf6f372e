//! The pipeline's untrusted inputs: images from the host (`PipelineLoad`)
//! must decode and validate or be refused, never panic, overflow the stack
//! or hang; packets of any bytes through `fairnic.p4` end in exactly one
//! verdict each.
#![no_main]

use dataplane::pipeline::{Input, Pipeline, Program, Verdict};
use libfuzzer_sys::fuzz_target;
use std::sync::Mutex;

static PIPE: Mutex<Option<Pipeline>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & 1 == 0 {
        if let Ok(p) = Program::from_image(rest) {
            let _ = Pipeline::new(p);
        }
        return;
    }
    let mut g = PIPE.lock().unwrap();
    let p = g.get_or_insert_with(|| Pipeline::new(p4::fairnic()).expect("fairnic.p4 loads"));
    // Split the rest into up to 8 packets at 0xff bytes.
    let mut pkts: Vec<Vec<u8>> = rest.split(|&b| b == 0xff).take(8).map(|s| s.to_vec()).collect();
    let n = pkts.len();
    let before = p.stats();
    let mut batch: Vec<Input<'_>> = pkts
        .iter_mut()
        .enumerate()
        .map(|(i, d)| Input {
            data: d,
            ingress_lif: if mode & 2 == 0 { i as u16 } else { 0xffff },
        })
        .collect();
    let mut out = Vec::new();
    p.process_batch(u64::from(mode), &mut batch, &mut out);
    assert_eq!(out.len(), n);
    let after = p.stats();
    assert_eq!(after.packets - before.packets, n as u64);
    let errors = out.iter().filter(|o| o.verdict == Verdict::ParseError).count() as u64;
    assert_eq!(after.parse_errors - before.parse_errors, errors);
});
