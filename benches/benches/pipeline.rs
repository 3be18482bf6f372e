//! Pipeline benchmark: packets per second on one core through the
//! `fairnic.p4` program in `dataplane::pipeline`, 64-byte frames, with the
//! per-LIF meters configured (meters on), against the hand-written L2
//! switch the program replaces in the simulator (`sim::device::switch`
//! plus its cost model), in the same run.
//!
//! Traffic: 64-byte UDP/IPv4 frames from 64 LIFs to 64 LIF MACs installed
//! in `l2_fwd`, in batches of 64, over a working set of 4096 frames (the
//! program runs in place; nothing it does changes these frames).
//!
//! Four ways to run the program: compiled to machine code at load (the
//! Cranelift back end) and the reference executor (closures over
//! batches), each in batches of 64 and one packet per call.
//!
//! With `--features dpdk`, a production peer: DPDK's SWX pipeline
//! (`rte_swx_pipeline`, the target of p4c's DPDK back end) running
//! `csrc/fairnic_swx.spec`, a hand-written equivalent of fairnic.p4's path
//! for this traffic (parse Ethernet/IPv4/UDP, per-LIF packets and bytes
//! meters, the same counters, l2_fwd with the same entries), built from
//! the spec as DPDK 22.11 builds one (C generated and compiled at load),
//! one input and one output ring port per LIF, fed from the working set's
//! mbufs in this thread (see `fairnic_benches::swx`). Before timing, both
//! must send every frame of the working set to the same LIF with the same
//! meter colors.
//!
//! `cargo bench -p fairnic-benches --bench pipeline`; `FAIRNIC_BENCH_ROUNDS`
//! sets the rounds (default 7 under `cargo bench`).

use dataplane::abi::{MeterConfig, MeterMode, MeterResource, TableEntry};
use dataplane::packet::build_udp4;
use dataplane::pipeline::{Backend, Executor, Input, Outcome, Pipeline, Verdict};
use fairnic_benches::{interleave_sliced, pin_to_cpu, rounds, Need, Report, Sliced};
use sim::device::engine::CostModel;
use sim::device::switch::{Source, Switch};
use std::hint::black_box;
use std::time::Instant;

const LIFS: u16 = 64;
const FRAMES: usize = 4096;
const BATCH: usize = 64;
/// Frames per measured round.
const RUN: usize = 4_000_000;
/// Slices per round: the variants take turns, a slice each (a few
/// milliseconds), so that peers see the same machine (see
/// `fairnic_benches::interleave_sliced`).
const SLICES: usize = 16;

fn mac(lif: u16) -> [u8; 6] {
    dataplane::abi::lif_mac(lif)
}

fn frames() -> Vec<(Vec<u8>, u16)> {
    (0..FRAMES)
        .map(|i| {
            let src = (i % usize::from(LIFS)) as u16;
            let dst = ((i * 7 + 3) % usize::from(LIFS)) as u16;
            let f = build_udp4(
                mac(dst),
                mac(src),
                [10, 0, 0, src as u8],
                [10, 0, 1, dst as u8],
                (1000 + i as u16, 2000),
                &(i as u64).to_le_bytes(),
                64,
            );
            (f, src)
        })
        .collect()
}

fn pipeline(exec: Executor) -> Pipeline {
    let prog = p4::fairnic();
    let (l2, _) = prog.table("l2_fwd").expect("fairnic.p4 has l2_fwd");
    let (to_lif, _) = prog.action("to_lif").expect("fairnic.p4 has to_lif");
    let meters: Vec<(u16, MeterResource)> = prog
        .meters
        .iter()
        .enumerate()
        .map(|(i, m)| (i as u16, m.unit.resource()))
        .collect();
    let mut p = Pipeline::with_executor(prog, exec).expect("fairnic.p4 loads");
    for l in 0..LIFS {
        p.apply_entry(
            &TableEntry::exact(u32::from(l2), &mac(l), u32::from(to_lif), &l.to_be_bytes()),
            true,
        )
        .expect("entry");
        // Meters on: every LIF's packet and byte meters configured, with
        // rates the run stays within (so frames go through, green).
        for &(m, resource) in &meters {
            let cfg = MeterConfig {
                resource: resource.raw(),
                mode: MeterMode::SrTcm.raw(),
                cir: 1_000_000_000_000.into(),
                cburst: 1_000_000_000.into(),
                eburst: 1_000_000_000.into(),
                ..Default::default()
            };
            p.set_meter(m, u32::from(l), &cfg, 0).expect("meter");
        }
    }
    assert!(!meters.is_empty(), "fairnic.p4 declares per-LIF meters");
    p
}

/// One slice of frames through `p` in batches of [`BATCH`]: the frames
/// run (`RUN / SLICES`, rounded up to whole working sets) and the seconds.
/// The batches' `Input`s are made once a slice, as a driver keeps its
/// burst arrays (the hand-written switch allocates nothing per frame
/// either); the program runs in place and leaves the frames as they were.
fn run_batches(p: &mut Pipeline, pkts: &mut [(Vec<u8>, u16)], now: &mut u64) -> (u64, f64) {
    let mut out: Vec<Outcome> = Vec::with_capacity(BATCH);
    let t0 = Instant::now();
    let mut batches: Vec<Vec<Input<'_>>> = pkts
        .chunks_mut(BATCH)
        .map(|chunk| {
            chunk
                .iter_mut()
                .map(|(f, src)| Input {
                    data: f.as_mut_slice(),
                    ingress_lif: *src,
                })
                .collect()
        })
        .collect();
    let mut done = 0;
    let mut delivered = 0u64;
    while done < RUN / SLICES {
        for batch in &mut batches {
            out.clear();
            *now += 1_000;
            p.process_batch(*now, batch, &mut out);
            delivered += out.iter().filter(|o| matches!(o.verdict, Verdict::ToLif(_))).count() as u64;
            done += batch.len();
        }
    }
    let t = t0.elapsed().as_secs_f64();
    assert_eq!(delivered, done as u64, "every frame delivered");
    (done as u64, t)
}

/// One slice of frames through `p` one packet per call (a quarter of a
/// batch slice): the frames run and the seconds.
fn run_single(p: &mut Pipeline, pkts: &mut [(Vec<u8>, u16)], now: &mut u64) -> (u64, f64) {
    let t0 = Instant::now();
    let mut done = 0;
    while done < RUN / 4 / SLICES {
        for (f, src) in pkts.iter_mut() {
            *now += 16;
            black_box(p.process(*now, f, *src));
            done += 1;
        }
    }
    (done as u64, t0.elapsed().as_secs_f64())
}

const COMPILED: &str = "fairnic.p4 compiled, meters on";
const COMPILED_1: &str = "fairnic.p4 compiled, meters on, one packet per call";
const REFERENCE: &str = "fairnic.p4 reference executor, meters on";
const REFERENCE_1: &str = "fairnic.p4 reference executor, meters on, one packet per call";
const SWITCH: &str = "hand-written L2 switch + cost model";
#[cfg(feature = "dpdk")]
const SWX: &str = "DPDK SWX pipeline (rte_swx_pipeline), fairnic_swx.spec, ring ports";

/// The SWX peer, built and checked against the compiled program on the
/// working set; `Err` says why there is none (the bench runs without it,
/// and fails when the tools are required).
#[cfg(feature = "dpdk")]
fn swx_peer(jit: &mut Pipeline) -> Result<(fairnic_benches::swx::Swx, usize), String> {
    use fairnic_benches::swx::Swx;
    let ws = frames();
    let mut s = Swx::new(u32::from(LIFS))?;
    s.load(&ws)?;
    let field = |name: &str| {
        jit.program()
            .meta
            .iter()
            .position(|f| f.name.ends_with(name))
            .ok_or_else(|| format!("fairnic.p4 has no metadata field {name}"))
    };
    let (cp, cb) = (field("color_packets")?, field("color_bytes")?);
    let mut differ = 0;
    for (i, (mut f, src)) in ws.into_iter().enumerate() {
        let o = jit.process(0, &mut f, src);
        let m = jit.last_meta();
        let ours = (
            match o.verdict {
                Verdict::ToLif(l) => Some(l),
                _ => None,
            },
            (m[cp] as u32, m[cb] as u32),
        );
        let t = s.trace(i as u32)?;
        if (t.egress, t.colors) != ours {
            differ += 1;
            if differ <= 3 {
                eprintln!("pipeline: SWX and fairnic.p4 differ on frame {i}: {t:?} vs {ours:?}");
            }
        }
    }
    Ok((s, differ))
}

fn main() {
    let mut report = Report::new("pipeline");
    pin_to_cpu(1);
    let mut sw = Switch::default();
    for l in 0..LIFS {
        assert!(sw.add_lif(mac(l), l));
    }
    let cost = CostModel::default();
    let mut jit = pipeline(Executor::Best);
    let compiled = matches!(jit.backend(), Backend::Compiled { .. });
    report.notes.push(format!("fairnic.p4 loads on: {}.", jit.backend()));
    let mut reference = pipeline(Executor::Reference);
    #[cfg(feature = "dpdk")]
    let (mut swx, swx_differ) = match swx_peer(&mut pipeline(Executor::Best)) {
        Ok((s, d)) => (Some(s), Some(d)),
        Err(e) => {
            let why =
                format!("skipped: the DPDK SWX peer: {e} (install what it needs with `scripts/install-deps --bench`)");
            eprintln!("pipeline: {why}");
            report.notes.push(why);
            (None, None)
        }
    };
    // Before timing anything, deterministic bars: the program and the
    // switch send every frame to the same place, and the compiled program
    // and the reference executor agree on every frame's verdict, cost and
    // bytes (the timed work is the same work).
    let mut disagree = 0usize;
    let mut differ = 0usize;
    for (f, src) in frames() {
        let (mut a, mut b) = (f.clone(), f.clone());
        let o = reference.process(0, &mut a, src);
        let oj = jit.process(0, &mut b, src);
        if o != oj || a != b {
            differ += 1;
            eprintln!("pipeline: compiled and reference differ: {oj:?} vs {o:?}");
        }
        let (v, _) = sw.decide(Source::Lif(src), &f);
        match (o.verdict, v) {
            (Verdict::ToLif(a), sim::device::switch::Verdict::ToLif(b)) if a == b => {}
            other => {
                disagree += 1;
                eprintln!("pipeline: program and switch disagree: {other:?}");
            }
        }
    }
    let (mut pk_j, mut pk_j1, mut pk_r, mut pk_r1) = (frames(), frames(), frames(), frames());
    let mut jit1 = pipeline(Executor::Best);
    let mut reference1 = pipeline(Executor::Reference);
    let (mut t_j, mut t_j1, mut t_r, mut t_r1) = (0u64, 0u64, 0u64, 0u64);
    let frames_ro: Vec<(Vec<u8>, u16)> = frames();
    let run_switch = || {
        let t0 = Instant::now();
        let mut done = 0;
        let mut units = 0u64;
        while done < RUN / SLICES {
            for (f, src) in &frames_ro {
                let (v, passes) = sw.decide(Source::Lif(*src), f);
                units += cost.cost(f, passes);
                black_box(v);
                done += 1;
            }
        }
        black_box(units);
        (done as u64, t0.elapsed().as_secs_f64())
    };
    let n = rounds();
    let r = {
        let mut variants: Vec<Sliced<'_>> = vec![
            (COMPILED, Box::new(|| run_batches(&mut jit, &mut pk_j, &mut t_j))),
            (COMPILED_1, Box::new(|| run_single(&mut jit1, &mut pk_j1, &mut t_j1))),
            (REFERENCE, Box::new(|| run_batches(&mut reference, &mut pk_r, &mut t_r))),
            (
                REFERENCE_1,
                Box::new(|| run_single(&mut reference1, &mut pk_r1, &mut t_r1)),
            ),
            (SWITCH, Box::new(run_switch)),
        ];
        #[cfg(feature = "dpdk")]
        if let Some(s) = swx.as_mut() {
            variants.push((
                SWX,
                Box::new(move || {
                    let slice = (RUN / SLICES) as u64;
                    let t0 = Instant::now();
                    let n = s.run(slice).expect("SWX run");
                    let t = t0.elapsed().as_secs_f64();
                    assert_eq!(n, slice, "SWX delivered every frame");
                    (n, t)
                }),
            ));
        }
        interleave_sliced(n, SLICES, &mut variants)
    };
    let g = "64-byte frames, one core";
    let names = [COMPILED, COMPILED_1, REFERENCE, REFERENCE_1, SWITCH];
    #[cfg(feature = "dpdk")]
    let names: Vec<&str> = names.iter().copied().chain(swx.is_some().then_some(SWX)).collect();
    for (name, runs) in names.iter().zip(r) {
        report.add(g, name, "Mpps", true, runs);
    }
    #[cfg(feature = "dpdk")]
    if swx.is_some() {
        report.compare(g, COMPILED, SWX);
        report.compare(g, COMPILED_1, SWX);
    }
    for name in [COMPILED, COMPILED_1, REFERENCE, REFERENCE_1] {
        report.compare(g, name, SWITCH);
    }
    report.compare(g, COMPILED, REFERENCE);
    let st = jit.stats();
    let sr = reference.stats();
    report.notes.push(format!(
        "Per frame the program parses Ethernet/IPv4/UDP, runs two meters, five counters and the l2_fwd lookup (acl and route are empty, as the device starts). \
         Stats over all rounds: compiled {} packets, {} parse errors, {} drops; reference {} packets, {} parse errors, {} drops. BMv2, the P4 reference \
         software switch, documents about 80 kpps; 10GbE line rate at 64 bytes is 14.88 Mpps.",
        st.packets, st.parse_errors, st.drops, sr.packets, sr.parse_errors, sr.drops
    ));
    report.bar_exact(
        &format!("frames of the {FRAMES}-frame working set that fairnic.p4 and the switch send to different places"),
        disagree as f64,
        Need::AtMost(0.0),
    );
    report.bar_exact(
        &format!("frames of the {FRAMES}-frame working set on which the compiled program and the reference executor differ (verdict, cost or bytes)"),
        differ as f64,
        Need::AtMost(0.0),
    );
    report.bar_exact(
        "frames either executor counted as parse errors or drops over all rounds",
        (st.parse_errors + st.drops + sr.parse_errors + sr.drops) as f64,
        Need::AtMost(0.0),
    );
    report.bar_exact(
        "fairnic.p4 compiled at load (1: yes)",
        f64::from(u8::from(compiled)),
        Need::AtLeast(1.0),
    );
    // Real time: ratios to the hand-written switch, round by round (each
    // round's peers measured in alternating slices). Issue 18's bar: the
    // compiled program at 0.8x or more. On 2026-12-03's 2-vCPU AMD EPYC
    // VM, alternated 3-round runs gave 0.925-0.944 after the exact
    // index's multiply-shift hash and the strides by `lea` (0.84-0.88
    // before them, 0.73-0.76 on the Intel VMs of 2026-12-02 with code
    // about 10 % slower than that). A run misses only when every round is
    // below 0.8x; rounds that straddle it are "not judged" with their
    // spread. One at a time 0.46-0.49.
    report.bar_vs(g, COMPILED, SWITCH, Need::AtLeast(0.8));
    report.bar_vs(g, COMPILED_1, SWITCH, Need::AtLeast(0.4));
    // The reference executor held to what it does (0.25x and 0.11x in the
    // run that set these): it stays the fallback.
    report.bar_vs(g, REFERENCE, SWITCH, Need::AtLeast(0.2));
    report.bar_vs(g, REFERENCE_1, SWITCH, Need::AtLeast(0.08));
    #[cfg(feature = "dpdk")]
    {
        let required = std::env::var_os("FAIRNIC_REQUIRE_TOOLS").is_some();
        if swx.is_some() || required {
            report.bar_exact(
                "DPDK SWX peer built and run (1: yes; required when FAIRNIC_REQUIRE_TOOLS is set)",
                f64::from(u8::from(swx.is_some())),
                Need::AtLeast(1.0),
            );
        }
        if let Some(d) = swx_differ {
            report.bar_exact(
                &format!("frames of the {FRAMES}-frame working set that SWX and the compiled fairnic.p4 send to different LIFs or color differently"),
                d as f64,
                Need::AtMost(0.0),
            );
            let dropped = swx.as_ref().map_or(0, |s| s.dropped());
            report.bar_exact(
                "frames the SWX pipeline dropped over all rounds",
                dropped as f64,
                Need::AtMost(0.0),
            );
            // Issue 18: the compiled program at least as fast as DPDK's
            // production P4 software target, round by round.
            report.bar_vs(g, COMPILED, SWX, Need::AtLeast(1.0));
            report.notes.push(
                "SWX's figure includes its ring ports (it has no other way in from memory when built from a spec): the same harness with a spec that only receives and transmits ran 18-22 Mpps on this VM (2026-12-01), about 50 ns of each frame.".into(),
            );
        }
    }
    report.conclude();
}
